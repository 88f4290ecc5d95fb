"""How identifiers are read in running text and in table cells: normalisation and pattern building blocks.

Noisy digits: full-width characters (U+FF01-U+FF5E) and the ideographic space (U+3000) are mapped
to ASCII before matching by a length-preserving translation, so offsets stay those of the original
text. Tokens glued to other letters or digits do not match: Python's ``\\b`` never fires between a
Chinese character and a digit, so every free-text pattern uses explicit lookarounds instead
(``lead``, ``NOT_ALNUM_AFTER``). Cells are matched whole, by RE2 through pandas' Arrow strings,
which has no lookarounds: ``fullmatch_cells`` anchors a pattern to the cell instead.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = [
    "ALNUM",
    "CJK",
    "DIGIT_SEPARATORS",
    "LANGUAGE",
    "LETTERS_WITHOUT_I_O",
    "NOT_ALNUM_AFTER",
    "NOT_A_FRACTION",
    "NOT_BEFORE_A_FRACTION",
    "PATTERN_FLAGS",
    "SEP",
    "cjk_except",
    "compact",
    "compact_cells",
    "fullmatch_cells",
    "lead",
    "normalize_codepoints",
    "normalize_joined",
    "normalize_text",
]

LANGUAGE = "zh"

#: Flags both engines compile every pattern with. Case matters (a lower-case "e12345678" is not a
#: passport number, a USCC is printed in upper case), so presidio's default IGNORECASE is not used.
PATTERN_FLAGS = re.DOTALL

#: The CJK Unified Ideographs block as literal characters (so that the class also works in RE2,
#: which has no \\u escapes).
CJK = "\u4e00-\u9fff"

# ---------------------------------------------------------------------------
# Length-preserving normalisation
# ---------------------------------------------------------------------------

_FULLWIDTH_TABLE: dict[int, int] = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_FULLWIDTH_TABLE[0x3000] = 0x20


def normalize_text(text: str) -> str:
    """Full-width ASCII variants (U+FF01-U+FF5E) and U+3000 mapped to ASCII, one character for one.

    Clerks type identifiers with a Chinese input method in full-width mode ("１３８…"); mapping
    character for character keeps every offset of the original text valid.
    """
    return text.translate(_FULLWIDTH_TABLE)


def normalize_joined(text: str) -> str:
    """``normalize_text`` of a long string (a column or a list of names joined) through its code points."""
    if text.isascii():
        return text
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).copy()
    normalize_codepoints(codes)
    return codes.tobytes().decode("utf-32-le", "surrogatepass")


def normalize_codepoints(codes: np.ndarray) -> None:
    """``normalize_text`` in place on an array of code points (uint32): a whole column at numpy speed."""
    wide = (codes >= 0xFF01) & (codes <= 0xFF5E)
    codes[wide] -= 0xFEE0
    codes[codes == 0x3000] = 0x20


# ---------------------------------------------------------------------------
# Free-text pattern building blocks
# ---------------------------------------------------------------------------

ALNUM = "0-9A-Za-z"
#: Not followed by a letter or digit.
NOT_ALNUM_AFTER = rf"(?![{ALNUM}])"


def lead(first: str) -> str:
    """A first character class followed by 'and the character before it is no letter or digit'.

    The lookbehind sits *after* the first consumed character ("X(?<![..].)"), which gives Python's
    `re` a literal first character to search for: three times faster than a leading lookbehind, and
    the same set of matches.
    """
    return rf"{first}(?<![{ALNUM}].)"


#: At most one space or hyphen between digit groups. (Between a context word and its value the
#: patterns allow a colon, 为/是, spaces or tabs; not \s: Python's `re` and the `regex` module presidio
#: uses disagree on whether \x1c-\x1f are spaces.)
SEP = r"[ \-]?"

# A bare digit run right after "<digit>." is the fractional part of a decimal, not an identifier: a
# float printed at full precision ("17563.18839598282") has 11 digits after the point one time in
# five, one in twenty of those reads as a mobile or landline number, and a 15-digit fraction reads
# as a legacy resident id one time in 1,200 (the check sits after the first character, like lead).
# Nor is the integer part of a decimal: a sum of 1.5e10 yuan prints as "15234567890.123". Known raw
# values written as decimals are still caught by the guard's fingerprint rule.
NOT_A_FRACTION = r"(?<![0-9]\..)"
NOT_BEFORE_A_FRACTION = rf"(?![{ALNUM}]|\.[0-9])"  # nor its integer part

#: Plates and some document numbers leave out I and O.
LETTERS_WITHOUT_I_O = "A-HJ-NP-Z"


def cjk_except(excluded: str) -> str:
    """A character class of the CJK block without ``excluded``, written as ranges.

    One class test per character is several times faster than a negative lookahead followed by the
    CJK class, which matters in patterns that try every position of a long text.
    """
    ranges: list[str] = []
    low = 0x4E00
    for code in sorted({ord(c) for c in excluded if "\u4e00" <= c <= "\u9fff"}):
        if code > low:
            ranges.append(chr(low) if code - 1 == low else f"{chr(low)}-{chr(code - 1)}")
        low = code + 1
    if low <= 0x9FFF:
        ranges.append(f"{chr(low)}-\u9fff")
    return "[" + "".join(ranges) + "]"


def compact(text: str) -> str:
    """Digits without the spaces and hyphens the patterns allow between groups."""
    return text.replace(" ", "").replace("-", "")


# ---------------------------------------------------------------------------
# Cells (whole values, RE2 over Arrow strings)
# ---------------------------------------------------------------------------

#: What a clerk puts between digit groups in a cell.
DIGIT_SEPARATORS = r"[\s\-]"


def compact_cells(text: pd.Series) -> pd.Series:
    """Cells without the spaces and hyphens between digit groups."""
    return text.str.replace(DIGIT_SEPARATORS, "", regex=True)


def fullmatch_cells(text: pd.Series, pattern: str) -> pd.Series:
    """Which cells ``pattern`` matches whole (nulls: False)."""
    return text.str.fullmatch(f"(?:{pattern})", na=False)
