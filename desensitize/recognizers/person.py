"""PERSON 姓名: the one definition every engine asks (the dataset's own names: ``dataset_names``).

A surname from the national list + 1-2 given-name characters, only where the text says a name
follows (姓名, 联系人, 法定代表人, 户主, 申请人 …) or precedes a title (先生, 女士, 同志 …) or a verb
that follows the subject of a clause (于, 称, 负责 …). presidio's context enhancement needs NLP
tokens, which its offline no-op engine does not produce, so the context words are part of the
patterns themselves: a name pattern starts with its context word and reports only the name,
through the regex group ``e``. In a name column the header is the context: a cell is a name when
it is a surname and one to three characters (or a minority name written with ·).
"""

from __future__ import annotations

import pandas as pd

from desensitize.recognizers.spec import spec
from desensitize.recognizers.text import CJK, cjk_except, fullmatch_cells
from desensitize.recognizers.vocabulary import (
    COMPOUND_SURNAMES,
    NAME_STOP_CHARS,
    PERSON_CONTEXT,
    PERSON_DENY,
    PERSON_TITLES,
    PERSON_VERBS,
    SINGLE_SURNAMES,
)

__all__ = ["NAME_SCORE", "PERSON", "person_cells", "validate_person"]

_SURNAME = "(?:" + "|".join(COMPOUND_SURNAMES) + f"|[{SINGLE_SURNAMES}])"
_GIVEN = cjk_except(NAME_STOP_CHARS)
_NAME = f"{_SURNAME}{_GIVEN}{{1,2}}"
#: One score for every name pattern: where a known name and a name read from its context overlap
#: (known 李英, text 李英梅同志), the longer reading wins.
NAME_SCORE = 0.8
_PERSON_WITH_CONTEXT = "(?:" + "|".join(PERSON_CONTEXT) + r")(?:为|是|:|[ \t])?[ \t]?" + f"(?P<e>{_NAME})"
# A name before a title (张伟先生) or opening a clause before one of PERSON_VERBS. It must not continue
# a Chinese word, unless that word is a particle that commonly precedes a name (向张伟先生, 由李娜负责).
# The check sits after the surname (one lookbehind per surname length), which gives `re` a literal
# first character to search for.
_AFTER = "向给和与及请由经对被让把跟叫是为找问称派据令陪将、"
# 向 and 和 are surnames too, but before a name they are far more often "to" and "and".
_OPENING_SURNAMES = SINGLE_SURNAMES.replace("向", "").replace("和", "")
_TITLE_OR_VERB = "|".join((*PERSON_TITLES, *PERSON_VERBS))
_PERSON_BEFORE_TITLE_OR_VERB = (
    "(?:(?:" + "|".join(COMPOUND_SURNAMES) + f")(?:(?<![{CJK}]..)|(?<=[{_AFTER}]..))"
    f"|[{_OPENING_SURNAMES}](?:(?<![{CJK}].)|(?<=[{_AFTER}].)))"
    f"{_GIVEN}{{1,2}}(?={_TITLE_OR_VERB})"
)
_NAME_CELL = (
    f"[{SINGLE_SURNAMES}][{CJK}]{{1,3}}|(?:" + "|".join(COMPOUND_SURNAMES) + f")[{CJK}]{{1,2}}"
    f"|[{CJK}]{{2,8}}·[{CJK}]{{2,8}}"  # names of some minorities: 买买提·艾力
)


def validate_person(text: str) -> bool | None:
    """Reject words that merely start with a surname character (全体同志, 于本月)."""
    if text in PERSON_DENY or text[:2] in PERSON_DENY:
        return False
    return None


def person_cells(text: pd.Series) -> pd.Series:
    """Cells holding a person's name."""
    return fullmatch_cells(text, _NAME_CELL)


PERSON = spec(
    "ChinesePersonRecognizer",
    "PERSON",
    [
        ("person_context", _PERSON_WITH_CONTEXT, NAME_SCORE),
        ("person_title_or_verb", _PERSON_BEFORE_TITLE_OR_VERB, NAME_SCORE, _TITLE_OR_VERB, 4),
    ],
    PERSON_CONTEXT,
    validate_person,
    pii_type="person_name",
    cells=person_cells,
)
