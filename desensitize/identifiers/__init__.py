"""Check characters of Chinese identifiers, scalar and vectorized.

Why this package exists: classifying a column as "公民身份号码" or "统一社会信用代码" by a
regular expression alone mistakes any 18-digit number (order numbers, timestamps, bank
references) for a personal identifier.  Every one of these identifiers carries a check
character defined by a national standard, and a value that passes both the format and
its check character is an identifier with near certainty (a random 18-character string
passes a mod-11 check one time in eleven, a mod-31 check one time in thirty-one).  The
same arithmetic lets the synthetic-data generator emit identifiers that downstream
recognizers accept, so the demo and the tests exercise the real code paths.

Standards implemented:

* GB 11643-1999 《公民身份号码》: 18 characters = 6-digit address code (GB/T 2260) +
  8-digit birth date YYYYMMDD + 3-digit sequence code (odd for men, even for women) +
  1 check character computed with ISO 7064:1983 MOD 11-2.  The legacy 15-digit number
  (before 1999) has a 6-digit birth date YYMMDD in the 1900s and no check character.
* GB 32100-2015 《法人和其他组织统一社会信用代码编码规则》: 18 characters = registration
  authority (1) + entity category (1) + administrative division code (6) + subject
  identifier, i.e. the organization code of GB 11714 (9) + check character (1), over a
  31-character alphabet without I, O, Z, S, V, check computed modulo 31.
* GB 11714-1997 《全国组织机构代码编制规则》: 8 body characters + 1 check character,
  modulo 11 with weights 3, 7, 9, 10, 5, 8, 4, 2; 10 is written 'X' and 11 is written '0'.
* Luhn (ISO/IEC 7812-1 Annex B): bank card numbers (银行卡号).

Scalar functions take and return Python strings and never raise on malformed input (they
answer False or None).  Vectorized functions work on numpy digit matrices or pandas
Series with numpy arithmetic only: column validation over millions of rows must not loop
in Python (see PITFALLS: per-cell Python work on pandas 3 strings is ~6x slower).

One module per standard (``resident_id``, ``uscc`` with the GB 11714 organization code inside it,
``luhn``) and the code-point matrices they share (``codepoints``). This package imports nothing
from other Keyong packages; it owns the check-character arithmetic, and the recognizers
(``desensitize.recognizers``), the generators and the column tests ask it.
"""

from desensitize.identifiers.codepoints import codepoint_matrix
from desensitize.identifiers.luhn import is_luhn_valid, luhn_check_digit, valid_luhn
from desensitize.identifiers.resident_id import (
    RESIDENT_ID_CHECK_MAP,
    RESIDENT_ID_WEIGHTS,
    id_check_char,
    is_valid_resident_id,
    resident_id_birth_date,
    resident_id_check_chars,
    resident_id_gender,
    valid_resident_ids,
)
from desensitize.identifiers.uscc import (
    ORG_CODE_WEIGHTS,
    USCC_ALPHABET,
    USCC_REGISTRATION_AUTHORITIES,
    USCC_WEIGHTS,
    is_valid_org_code,
    is_valid_uscc,
    org_code_check_char,
    org_code_check_chars,
    uscc_check_char,
    uscc_check_chars,
    valid_usccs,
)

__all__ = [
    "ORG_CODE_WEIGHTS",
    "RESIDENT_ID_CHECK_MAP",
    "RESIDENT_ID_WEIGHTS",
    "USCC_ALPHABET",
    "USCC_REGISTRATION_AUTHORITIES",
    "USCC_WEIGHTS",
    "codepoint_matrix",
    "id_check_char",
    "is_luhn_valid",
    "is_valid_org_code",
    "is_valid_resident_id",
    "is_valid_uscc",
    "luhn_check_digit",
    "org_code_check_char",
    "org_code_check_chars",
    "resident_id_birth_date",
    "resident_id_check_chars",
    "resident_id_gender",
    "uscc_check_char",
    "uscc_check_chars",
    "valid_luhn",
    "valid_resident_ids",
    "valid_usccs",
]
