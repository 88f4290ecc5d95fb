"""Pure transformations over tables and text: Chinese identifier checks, recognizers (presidio and a
vectorized scanner built from the same definitions), column profiling, policies by level, the table
pipeline (pseudonyms, masking, generalization, k-anonymity) and the guard's fingerprints. (The
generated data the demo, tests and benchmarks use lives in ``samples``, on top of this face.)
Imports nothing of Keyong's: callers record what was done (the registry ledgers every desensitized
copy).
"""

from desensitize.fingerprints import FingerprintError, FingerprintSet
from desensitize.identifiers import (
    USCC_ALPHABET,
    id_check_char,
    is_valid_org_code,
    is_valid_resident_id,
    is_valid_uscc,
    luhn_check_digit,
    org_code_check_char,
    org_code_check_chars,
    resident_id_check_chars,
    uscc_check_char,
    uscc_check_chars,
)
from desensitize.pipeline import DesensitizedTable, desensitize_table
from desensitize.policy import Policy, PolicyError, load_policy
from desensitize.profiling import ColumnProfile, max_level, profile_columns
from desensitize.recognizers import ENTITY_TYPES, build_analyzer, build_registry
from desensitize.screening import direct_identifiers, direct_identifiers_in
from desensitize.textscan import Span, find_entities, redact
from desensitize.validators import valid_values

__all__ = [
    "ENTITY_TYPES",
    "USCC_ALPHABET",
    "ColumnProfile",
    "DesensitizedTable",
    "FingerprintError",
    "FingerprintSet",
    "Policy",
    "PolicyError",
    "Span",
    "build_analyzer",
    "build_registry",
    "desensitize_table",
    "direct_identifiers",
    "direct_identifiers_in",
    "find_entities",
    "id_check_char",
    "is_valid_org_code",
    "is_valid_resident_id",
    "is_valid_uscc",
    "load_policy",
    "luhn_check_digit",
    "max_level",
    "org_code_check_char",
    "org_code_check_chars",
    "profile_columns",
    "redact",
    "resident_id_check_chars",
    "uscc_check_char",
    "uscc_check_chars",
    "valid_values",
]
