"""Pure transformations over tables and text: Chinese identifier checks, recognizers (presidio and a
vectorized scanner built from the same definitions), column profiling, policies by level, the table
pipeline (pseudonyms, masking, generalization, k-anonymity) and the guard's fingerprints, plus the
synthetic public data the demo, tests and benchmarks use. Imports nothing of Keyong's: callers record
what was done (the registry ledgers every desensitized copy).
"""

from desensitize.fingerprints import FingerprintError, FingerprintSet
from desensitize.identifiers import is_valid_resident_id, is_valid_uscc
from desensitize.pipeline import DesensitizedTable, desensitize_table
from desensitize.policy import Policy, PolicyError, load_policy
from desensitize.profiling import ColumnProfile, max_level, profile_columns
from desensitize.recognizers import build_analyzer, build_registry
from desensitize.screening import direct_identifiers, direct_identifiers_in
from desensitize.textscan import Span, find_entities, redact
from desensitize.validators import valid_values

__all__ = [
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
    "is_valid_resident_id",
    "is_valid_uscc",
    "load_policy",
    "max_level",
    "profile_columns",
    "redact",
    "valid_values",
]
