"""Bounds of every input the HTTP API takes, declared once and used by every router (issue 17).

A request outside them is answered 413 or 422 before any domain code runs, never a 500: ids are
SQL INTEGERs and ledger positions BIGINTs (a larger number names nothing, and PostgreSQL or SQLite
would fail on it rather than find nothing), texts have
a length, integers a range, enums their members, and a product's name the registry's one rule
(:data:`registry.PRODUCT_NAME_PATTERN`); names hold visible characters only and texts add line breaks
(:func:`core.invisible_character`, so no terminal escape or bidi override reaches a CLI table or a page).
JSON that is not finite or not valid Unicode is refused for
every route by :mod:`app.api.edge`, which also caps a JSON body at :data:`MAX_JSON_BYTES`.
"""

from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints

from core import MAX_ROW_ID, invisible_character
from registry import (
    EARLIEST_DATE,
    LATEST_DATE,
    MAX_EPSILON,
    MAX_PRICE_CENTS,
    MAX_PUBLICITY_DAYS,
    PRODUCT_NAME_PATTERN,
    PRODUCT_NAME_RULE,
)

#: Ids (jobs, licences, releases, objections, findings, requests) are INTEGER (signed 32-bit) columns.
MAX_ID = MAX_ROW_ID
#: Ledger positions and tree sizes are BIGINT (signed 64-bit) columns.
MAX_SEQ = 2**63 - 1
#: A JSON request body: job code is at most 256 Ki characters (4 bytes each in UTF-8 at worst, 6 escaped).
MAX_JSON_BYTES = 2 * 1024 * 1024
#: How deeply a JSON body may nest: no route takes more than a few levels.
MAX_JSON_DEPTH = 32
MAX_NAME_CHARS = 128
MAX_REASON_CHARS = 4000
MAX_CODE_CHARS = 256 * 1024
MAX_FILTER_CHARS = 256
MAX_LIST_ITEMS = 256
# A licence's knobs (publicity days, price, ε, dates) are bounded by the registry, their one owner
# (registry.licence_terms): the API only repeats them so a request is refused before any route runs.


def _visible(value: str) -> str:
    """A name: visible characters only (:func:`core.invisible_character`); a ValueError is pydantic's 422."""
    found = invisible_character(value)
    if found is not None:
        position, code, kind = found
        raise ValueError(f"holds the {kind} character {code} at character {position}: names are visible text")
    return value


def visible_text(value: str) -> str:
    """A reason or other text: visible characters, line breaks and tabs."""
    found = invisible_character(value, multiline=True)
    if found is not None:
        position, code, kind = found
        raise ValueError(f"holds the {kind} character {code} at character {position}: text is visible characters")
    return value


Visible = AfterValidator(_visible)
VisibleText = AfterValidator(visible_text)

Id = Annotated[int, Field(ge=1, le=MAX_ID, description=f"An id: 1 to {MAX_ID} (2^31 - 1).")]
Seq = Annotated[int, Field(ge=0, le=MAX_SEQ, description="A ledger position (0 before the first entry).")]
TreeSize = Annotated[int, Field(ge=1, le=MAX_SEQ, description="A ledger tree size (entries covered).")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS), Visible]
ProductName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_NAME_CHARS, pattern=PRODUCT_NAME_PATTERN),
    Field(description=f"A product's name: {PRODUCT_NAME_RULE}."),
    Visible,
]
Reason = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_REASON_CHARS), Field(description="Why; recorded."), VisibleText
]
OptionalReason = Annotated[str, StringConstraints(max_length=MAX_REASON_CHARS), VisibleText]
Text = Annotated[str, StringConstraints(max_length=MAX_REASON_CHARS), VisibleText]
Code = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CODE_CHARS)]
Filter = Annotated[str, StringConstraints(max_length=MAX_FILTER_CHARS), Visible]
FileName = Annotated[str, StringConstraints(min_length=1, max_length=255), Visible]
Names = Annotated[list[Name], Field(max_length=MAX_LIST_ITEMS)]
PublicityDays = Annotated[int, Field(ge=0, le=MAX_PUBLICITY_DAYS, description="公示 days (双鸭山 第四十八条).")]
PriceCents = Annotated[int, Field(ge=0, le=MAX_PRICE_CENTS, description="Price in fen (分).")]
Day = Annotated[date, Field(ge=EARLIEST_DATE, le=LATEST_DATE)]
Epsilon = Annotated[float, Field(gt=0, le=MAX_EPSILON, allow_inf_nan=False, description="Privacy budget ε.")]
Delta = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False, description="Privacy budget δ.")]
#: Finding states (``registry.models.FindingRow.state``): open until the agency resolves it.
FindingState = Literal["open", "resolved"]

__all__ = [
    "EARLIEST_DATE",
    "LATEST_DATE",
    "MAX_CODE_CHARS",
    "MAX_FILTER_CHARS",
    "MAX_ID",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_LIST_ITEMS",
    "MAX_NAME_CHARS",
    "MAX_PRICE_CENTS",
    "MAX_PUBLICITY_DAYS",
    "MAX_REASON_CHARS",
    "MAX_SEQ",
    "Code",
    "Day",
    "Delta",
    "Epsilon",
    "FileName",
    "Filter",
    "FindingState",
    "Id",
    "Name",
    "Names",
    "OptionalReason",
    "PriceCents",
    "ProductName",
    "PublicityDays",
    "Reason",
    "Seq",
    "Text",
    "TreeSize",
    "Visible",
    "VisibleText",
    "visible_text",
]
