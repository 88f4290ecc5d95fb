"""Pure transformations over tables and text: Chinese identifier checks, recognizers (presidio and a
vectorized scanner built from the same definitions), column profiling, policies by level, the table
pipeline (pseudonyms, masking, generalization, k-anonymity) and the guard's fingerprints. (The
generated data the demo, tests and benchmarks use lives in ``samples``, on top of this face.)
Imports nothing of Keyong's: callers record what was done (the registry ledgers every desensitized
copy).

The face loads on first use (module ``__getattr__``): a name imports the module that defines it, and that
module's own imports only, so ``from desensitize import is_valid_uscc`` or ``direct_identifiers_in`` (the
registry's checks, the instance's open) loads no pandas, NumPy, pyarrow or presidio (issue 21); the table
pipeline, profiling and fingerprints load theirs when they are asked for. (Written out here, not with
``core.LazyFace``: this package imports nothing of Keyong's.)
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from desensitize.errors import DesensitizeError
    from desensitize.fingerprint_hashes import fragment_candidates
    from desensitize.fingerprints import (
        IDENTIFIER_TYPES,
        FingerprintError,
        FingerprintSet,
        join_normalised,
        normalise_for_fingerprint,
    )
    from desensitize.identifiers import (
        USCC_ALPHABET,
        id_check_char,
        is_luhn_valid,
        is_valid_org_code,
        is_valid_resident_id,
        is_valid_uscc,
        luhn_check_digit,
        org_code_check_char,
        org_code_check_chars,
        resident_id_birth_date,
        resident_id_check_chars,
        resident_id_gender,
        uscc_check_char,
        uscc_check_chars,
        valid_luhn,
        valid_resident_ids,
        valid_usccs,
    )
    from desensitize.kanonymity import KAnonymityResult, k_anonymize, l_diversity
    from desensitize.keys import check_keep, visible_reason
    from desensitize.letters import non_alnum_pattern
    from desensitize.linkage import JointResult, LinkedTable, group_name, licence_key, link_tables, rekey
    from desensitize.pipeline import DesensitizedTable, dataset_names, desensitize_table
    from desensitize.policy import PII_TYPE_NAMES, Policy, PolicyError, Rule, load_policy
    from desensitize.profiling import PII_TYPES, ColumnProfile, max_level, profile_columns
    from desensitize.quasi import NOT_QUASI_REASON_CHARS, RulingError, check_not_quasi
    from desensitize.recognizers import ENTITY_TO_PII_TYPE, ENTITY_TYPES, build_analyzer, build_registry
    from desensitize.screening import direct_identifiers, direct_identifiers_in
    from desensitize.textscan import Span, find_entities, redact, resolve_overlaps
    from desensitize.transforms import TransformError, as_text, pseudonymize
    from desensitize.validators import VALUE_TYPES, valid_values

__all__ = [
    "ENTITY_TO_PII_TYPE",
    "ENTITY_TYPES",
    "IDENTIFIER_TYPES",
    "NOT_QUASI_REASON_CHARS",
    "PII_TYPES",
    "PII_TYPE_NAMES",
    "USCC_ALPHABET",
    "VALUE_TYPES",
    "ColumnProfile",
    "DesensitizeError",
    "DesensitizedTable",
    "FingerprintError",
    "FingerprintSet",
    "JointResult",
    "KAnonymityResult",
    "LinkedTable",
    "Policy",
    "PolicyError",
    "Rule",
    "RulingError",
    "Span",
    "TransformError",
    "as_text",
    "build_analyzer",
    "build_registry",
    "check_keep",
    "check_not_quasi",
    "dataset_names",
    "desensitize_table",
    "direct_identifiers",
    "direct_identifiers_in",
    "find_entities",
    "fragment_candidates",
    "group_name",
    "id_check_char",
    "is_luhn_valid",
    "is_valid_org_code",
    "is_valid_resident_id",
    "is_valid_uscc",
    "join_normalised",
    "k_anonymize",
    "l_diversity",
    "licence_key",
    "link_tables",
    "load_policy",
    "luhn_check_digit",
    "max_level",
    "non_alnum_pattern",
    "normalise_for_fingerprint",
    "org_code_check_char",
    "org_code_check_chars",
    "profile_columns",
    "pseudonymize",
    "redact",
    "rekey",
    "resident_id_birth_date",
    "resident_id_check_chars",
    "resident_id_gender",
    "resolve_overlaps",
    "uscc_check_char",
    "uscc_check_chars",
    "valid_luhn",
    "valid_resident_ids",
    "valid_usccs",
    "valid_values",
    "visible_reason",
]

#: Each module of this face -> the names it gives.
_NAMES: dict[str, str] = {
    "desensitize.errors": "DesensitizeError",
    "desensitize.fingerprint_hashes": "fragment_candidates",
    "desensitize.fingerprints": (
        "IDENTIFIER_TYPES FingerprintError FingerprintSet join_normalised normalise_for_fingerprint"
    ),
    "desensitize.identifiers": (
        "USCC_ALPHABET id_check_char is_luhn_valid is_valid_org_code is_valid_resident_id is_valid_uscc "
        "luhn_check_digit org_code_check_char org_code_check_chars resident_id_birth_date "
        "resident_id_check_chars resident_id_gender uscc_check_char uscc_check_chars valid_luhn "
        "valid_resident_ids valid_usccs"
    ),
    "desensitize.kanonymity": "KAnonymityResult k_anonymize l_diversity",
    "desensitize.keys": "check_keep visible_reason",
    "desensitize.letters": "non_alnum_pattern",
    "desensitize.linkage": "JointResult LinkedTable group_name licence_key link_tables rekey",
    "desensitize.pipeline": "DesensitizedTable dataset_names desensitize_table",
    "desensitize.policy": "PII_TYPE_NAMES Policy PolicyError Rule load_policy",
    "desensitize.profiling": "PII_TYPES ColumnProfile max_level profile_columns",
    "desensitize.quasi": "NOT_QUASI_REASON_CHARS RulingError check_not_quasi",
    "desensitize.recognizers": "ENTITY_TO_PII_TYPE ENTITY_TYPES build_analyzer build_registry",
    "desensitize.screening": "direct_identifiers direct_identifiers_in",
    "desensitize.textscan": "Span find_entities redact resolve_overlaps",
    "desensitize.transforms": "TransformError as_text pseudonymize",
    "desensitize.validators": "VALUE_TYPES valid_values",
}
_HOME = {name: module for module, names in _NAMES.items() for name in names.split()}


def __getattr__(name: str) -> Any:
    """A public name, imported from its module now and kept here (later look-ups cost nothing); anything else
    is no attribute, so ``from desensitize import recognizers`` still finds the submodule."""
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'desensitize' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
