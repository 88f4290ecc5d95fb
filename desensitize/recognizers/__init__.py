"""Recognizers of Chinese personal information: one definition per entity, asked by every engine.

Why one definition: presidio is the reference engine for free text (the issue asks for presidio
``PatternRecognizer``s in a ``RecognizerRegistry``), but it analyses one string at a time and runs
at a few thousand rows per second; ``desensitize.textscan`` scans a whole column at once, and
``desensitize.validators`` tests whole cells of a typed column. All three read the one
``RecognizerSpec`` of each entity (its module here, one per entity as presidio has them: patterns,
context words, validators and cell test), so they cannot drift apart, and a test checks that the two
free-text engines find the same spans. The check-character arithmetic is ``desensitize.identifiers``'.

What is recognised (entity name -> column type of ``desensitize.profiling``):

* ``CN_RESIDENT_ID`` 公民身份号码, GB 11643-1999: 18 characters with the ISO 7064 MOD 11-2 check and a
  real birth date not in the future, or a legacy 15-digit number (YYMMDD in the 1900s).
* ``CN_USCC`` 统一社会信用代码, GB 32100-2015: 18 characters with the mod-31 check character.
* ``CN_BANK_CARD`` 银行卡号: 16 or 19 digits starting 3-6 (ISO/IEC 7812 major industry identifiers
  of bank cards, 62 for UnionPay) passing Luhn; 16-19 digits after a card context word (卡号, 银行卡,
  账号 …). 17- and 18-digit numbers need the context word because order and waybill numbers have
  those lengths and one in ten passes Luhn by chance.
* ``CN_MOBILE`` 手机号码: 1[3-9] + 9 digits, optional +86/0086, optional 3-4-4 spaces or hyphens.
* ``CN_LANDLINE`` 固定电话: area code (010, 02X, or 0[3-9]XX; optionally in parentheses) + a 7-8 digit
  local number starting 2-8, optional extension.
* ``CN_PASSPORT`` 护照号码: E + 8 digits or E + letter + 7 digits (ordinary passports since 2012),
  G + 8 digits (older), D/S/P (+E) + 7-8 digits (diplomatic, service, public affairs).
* ``CN_TRAVEL_PERMIT`` 通行证: 往来港澳通行证 C + 8 digits or C + letter + 7 digits; 港澳居民来往内地通行证
  H/M + 8 (or 10) digits; 往来台湾通行证 T + 8 digits; 台湾居民来往大陆通行证 8 digits after its name.
* ``CN_LICENSE_PLATE`` 机动车号牌 (GA 36-2018): province abbreviation + letter (no I/O) + 5 characters
  (at most 2 letters), or a new-energy 6-character serial (D/F first or last).
* ``EMAIL_ADDRESS``, ``IP_ADDRESS`` (IPv4 with octets <= 255, IPv6 checked by ``ipaddress``).
* ``PERSON`` 姓名: a surname of ``vocabulary`` + 1-2 given-name characters, only where the text
  says a name follows (姓名, 联系人, 法定代表人, 户主, 申请人 …) or precedes a title (先生, 女士, 同志 …);
  plus exact matches of the dataset's own names (``names=``), which is how names without any
  context are found.
* ``CN_ADDRESS`` 地址: province / city / district / town / village / road / house-number patterns;
  a road needs a house number unless an administrative division precedes it.

Noisy digits: full-width characters are mapped to ASCII before matching, length-preserving, and
tokens glued to other letters or digits do not match (``desensitize.recognizers.text``).

presidio must run offline: ``build_analyzer`` uses presidio's no-op NLP engine (no spaCy model to
download). presidio's context enhancement needs NLP tokens, which no-op does not produce, so the
context words are part of the patterns themselves (a name pattern starts with its context word and
reports only the name, through the regex group ``e``).

presidio itself takes about two seconds to import, so the presidio classes are created on first use
(PEP 562 module ``__getattr__`` below, ``desensitize.recognizers.presidio``): the column profiler
and the scanner import this package without paying for presidio.

Standards: GB 11643-1999, GB 32100-2015, ISO/IEC 7812-1 (Luhn), GA 36-2018 (号牌); what counts as
personal information follows GB/T 35273-2020 附录A and 个人信息保护法 第二十八条.
"""

from __future__ import annotations

from typing import Any

from desensitize.recognizers.bank_card import validate_bank_card, validate_bank_cards
from desensitize.recognizers.dataset_names import DATASET_NAME_SCORE, clean_names, dataset_names_spec
from desensitize.recognizers.entities import CELL_TESTS, ENTITY_TO_PII_TYPE, ENTITY_TYPES, RECOGNIZER_SPECS
from desensitize.recognizers.ip_address import validate_ip
from desensitize.recognizers.license_plate import validate_plate
from desensitize.recognizers.person import validate_person
from desensitize.recognizers.presidio import (
    OFFLINE_NLP,
    PRESIDIO_EXPORTS,
    build_analyzer,
    build_registry,
    recognizer_classes,
)
from desensitize.recognizers.resident_id import validate_resident_id, validate_resident_ids
from desensitize.recognizers.spec import CellTest, PatternSpec, RecognizerSpec
from desensitize.recognizers.text import (
    CJK,
    LANGUAGE,
    PATTERN_FLAGS,
    fullmatch_cells,
    normalize_codepoints,
    normalize_text,
)
from desensitize.recognizers.uscc import validate_uscc, validate_usccs
from desensitize.recognizers.vocabulary import (
    COMPOUND_SURNAMES,
    ID_PROVINCE_CODES,
    NAME_PLACEHOLDERS,
    NAME_STOP_CHARS,
    PERSON_CONTEXT,
    PERSON_DENY,
    PERSON_TITLES,
    PERSON_VERBS,
    PROVINCE_ABBREVIATIONS,
    PROVINCE_CODES,
    PROVINCES,
    SINGLE_SURNAMES,
)

__all__ = [
    "CELL_TESTS",
    "CJK",
    "COMPOUND_SURNAMES",
    "DATASET_NAME_SCORE",
    "ENTITY_TO_PII_TYPE",
    "ENTITY_TYPES",
    "ID_PROVINCE_CODES",
    "LANGUAGE",
    "NAME_PLACEHOLDERS",
    "NAME_STOP_CHARS",
    "OFFLINE_NLP",
    "PATTERN_FLAGS",
    "PERSON_CONTEXT",
    "PERSON_DENY",
    "PERSON_TITLES",
    "PERSON_VERBS",
    "PROVINCES",
    "PROVINCE_ABBREVIATIONS",
    "PROVINCE_CODES",
    "RECOGNIZER_SPECS",
    "SINGLE_SURNAMES",
    "CellTest",
    "PatternSpec",
    "RecognizerSpec",
    "build_analyzer",
    "build_registry",
    "clean_names",
    "dataset_names_spec",
    "fullmatch_cells",
    "normalize_codepoints",
    "normalize_text",
    "recognizer_classes",
    "validate_bank_card",
    "validate_bank_cards",
    "validate_ip",
    "validate_person",
    "validate_plate",
    "validate_resident_id",
    "validate_resident_ids",
    "validate_uscc",
    "validate_usccs",
]


def __getattr__(name: str) -> Any:  # PEP 562: the presidio classes on first access
    if name in PRESIDIO_EXPORTS:
        return recognizer_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
