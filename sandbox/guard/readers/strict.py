"""Helpers every strict reader shares: decoding, and the characters no reader accepts.

Why refuse control and invisible characters rather than strip them: they are where a value hides
from the person who reviews an output (a zero-width space between digits, a right-to-left mark
that reorders them); a statistical output never needs them, so any is a hard finding that names the
fix (write plain UTF-8).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sandbox.guard.content import Content
from sandbox.guard.findings import HARD, Finding

BOM = "\ufeff"
#: C0 and C1 controls except tab, line feed and carriage return.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: Format characters (Unicode Cf) and fillers that render as nothing.
INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb\U000e0000-\U000e0fff]"
)


#: The same two classes in RE2 syntax, for Arrow's vectorized matching of table cells.
HIDDEN_RE2 = (
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x{9f}\x{ad}\x{34f}\x{61c}\x{115f}\x{1160}\x{17b4}\x{17b5}"
    r"\x{180b}-\x{180f}\x{200b}-\x{200f}\x{2028}-\x{202e}\x{2060}-\x{206f}\x{3164}\x{fe00}-\x{fe0f}"
    r"\x{feff}\x{ffa0}\x{fff0}-\x{fffb}\x{e0000}-\x{e0fff}]"
)


def hidden_cells(array: pa.Array | pa.ChunkedArray) -> int:
    """How many strings of ``array`` hold a control or invisible character."""
    if len(array) == 0:
        return 0
    return int(pc.sum(pc.match_substring_regex(array, HIDDEN_RE2)).as_py() or 0)


def hard(rule: str, file: str, location: str, detail: str) -> Finding:
    return Finding(rule, HARD, file, location, detail)


def decode_text(data: bytes, file: str, format_name: str) -> tuple[str | None, list[Finding]]:
    """Strict UTF-8 (a leading BOM allowed and dropped), with no control or invisible characters.

    ``None`` and the findings when the bytes are not such text."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, [hard("format.encoding", file, "file", f"not valid UTF-8: write the {format_name} as UTF-8 text")]
    if text.startswith(BOM):
        text = text[1:]
    return text, character_findings(text, file)


def read_text(path: Path, content: Content) -> str | None:
    """The file as strict text, its problems recorded on ``content``; None when it must not be read further."""
    text, problems = decode_text(path.read_bytes(), content.file, content.format)
    content.findings += problems
    return None if problems else text


def character_findings(text: str, file: str, location: str = "text") -> list[Finding]:
    """Hard findings for control and invisible characters in ``text``."""
    findings: list[Finding] = []
    if not CONTROL.search(text) and not INVISIBLE.search(text):
        return findings
    controls = len(CONTROL.findall(text))
    if controls:
        findings.append(hard("format.control_characters", file, location, f"{controls} control character(s)"))
    invisible = len(INVISIBLE.findall(text))
    if invisible:
        findings.append(
            hard(
                "format.invisible_characters",
                file,
                location,
                f"{invisible} invisible formatting character(s) (zero-width, direction marks): write plain text",
            )
        )
    return findings


@dataclass(frozen=True, slots=True)
class Encoded:
    """A text column by its distinct values: ``codes`` per cell (-1 for null), ``uniques`` as Python
    strings and ``dictionary`` as Arrow, in order of first appearance (what ``pd.factorize`` gives)."""

    codes: np.ndarray
    uniques: np.ndarray
    dictionary: pa.Array


def dictionary_codes(array: pa.Array | pa.ChunkedArray) -> Encoded:
    """A text column encoded by Arrow's dictionary encoding, at C speed, while the reader still holds
    the Arrow column: the rules then never hash the cells again, and checks that depend on a cell's
    text alone (hidden characters, quoting) run once per distinct value instead of once per cell."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks else pa.array([], array.type)
    encoded = pc.dictionary_encode(array)
    uniques = np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=object)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return Encoded(codes, uniques, encoded.dictionary)


__all__ = [
    "BOM",
    "CONTROL",
    "HIDDEN_RE2",
    "INVISIBLE",
    "Encoded",
    "character_findings",
    "decode_text",
    "dictionary_codes",
    "hard",
    "hidden_cells",
    "read_text",
]
