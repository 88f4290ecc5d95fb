"""The built-in recognizers, in one list every engine reads, and the order that breaks ties.

Why here and not in each engine: presidio's registry (``desensitize.recognizers.presidio``), the
column scanner (``desensitize.textscan``) and the cell tests (``desensitize.validators``) all
iterate this list, so a recognizer added to it is known to all three. The dataset's own names are
added per call (``dataset_names_spec``).
"""

from __future__ import annotations

from desensitize.recognizers.address import ADDRESS
from desensitize.recognizers.bank_card import BANK_CARD
from desensitize.recognizers.email_address import EMAIL
from desensitize.recognizers.ip_address import IP_ADDRESS
from desensitize.recognizers.landline import LANDLINE
from desensitize.recognizers.license_plate import LICENSE_PLATE
from desensitize.recognizers.mobile import MOBILE
from desensitize.recognizers.passport import PASSPORT
from desensitize.recognizers.person import PERSON
from desensitize.recognizers.resident_id import RESIDENT_ID
from desensitize.recognizers.spec import CellTest, RecognizerSpec
from desensitize.recognizers.travel_permit import TRAVEL_PERMIT
from desensitize.recognizers.uscc import USCC

__all__ = ["CELL_TESTS", "ENTITY_TO_PII_TYPE", "ENTITY_TYPES", "RECOGNIZER_SPECS"]

#: The built-in recognizers, in the order presidio's registry holds them and the scanner runs them.
RECOGNIZER_SPECS: tuple[RecognizerSpec, ...] = (
    RESIDENT_ID,
    USCC,
    BANK_CARD,
    MOBILE,
    LANDLINE,
    PASSPORT,
    TRAVEL_PERMIT,
    LICENSE_PLATE,
    EMAIL,
    IP_ADDRESS,
    PERSON,
    ADDRESS,
)

#: The entity types, in the order that breaks ties between equal-score spans of equal length:
#: checksummed identifiers first, then the more specific formats.
ENTITY_TYPES: tuple[str, ...] = (
    "CN_RESIDENT_ID",
    "CN_USCC",
    "CN_MOBILE",
    "CN_LANDLINE",
    "CN_BANK_CARD",
    "CN_PASSPORT",
    "CN_TRAVEL_PERMIT",
    "CN_LICENSE_PLATE",
    "EMAIL_ADDRESS",
    "IP_ADDRESS",
    "PERSON",
    "CN_ADDRESS",
)

_BY_ENTITY = {spec.entity_type: spec for spec in RECOGNIZER_SPECS}

#: Presidio entity name -> column type (the shared vocabulary of ``desensitize.profiling``).
ENTITY_TO_PII_TYPE: dict[str, str] = {entity: _BY_ENTITY[entity].pii_type for entity in ENTITY_TYPES}

#: Column type -> the entity's test of whole cells (``desensitize.validators``).
CELL_TESTS: dict[str, CellTest] = {spec.pii_type: spec.cells for spec in RECOGNIZER_SPECS if spec.cells is not None}
