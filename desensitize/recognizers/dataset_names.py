"""PERSON by the dataset's own names: exact matches of the names in its name columns, without context.

Why: a custodian who knows that 王小明 is in the table wants 王小明 removed from its notes too, even
where no context word announces a name. presidio matches the names with one trie-shaped regular
expression (``dataset_names_spec``); the column scanner looks them up in a packed table built from
the same cleaned list (``clean_names``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from desensitize.recognizers.person import NAME_SCORE
from desensitize.recognizers.spec import RecognizerSpec, spec
from desensitize.recognizers.text import normalize_joined, normalize_text
from desensitize.recognizers.vocabulary import NAME_PLACEHOLDERS, PERSON_DENY

__all__ = ["DATASET_NAME_SCORE", "clean_names", "dataset_names_spec"]

#: The score of a dataset name found in text (both engines): that of every name pattern, so that
#: where a known name and a name read from its context overlap, the longer reading wins.
DATASET_NAME_SCORE = NAME_SCORE


def _trie_regex(words: Iterable[str]) -> str:
    """One regular expression matching any of ``words``, longest first, as a character trie.

    A flat alternation of 100,000 names makes the engine try every name at every position; the
    trie tries only the names that share the characters read so far.
    """
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    # Post-order without recursion: a name is a path of one node per character, and a name of a few hundred
    # characters (junk in a name column, red team diff22 F2) went past Python's recursion limit.
    emitted: dict[int, str] = {}
    stack: list[tuple[dict[str, Any], bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if not children_done:
            stack.append((node, True))
            stack.extend((child, False) for ch, child in node.items() if ch)
            continue
        branches = [re.escape(ch) + emitted.pop(id(child)) for ch, child in sorted(node.items()) if ch]
        if not branches:
            emitted[id(node)] = ""
            continue
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:
            body = body + "?" if len(branches) == 1 and len(branches[0]) == 1 else f"(?:{body})?"
        emitted[id(node)] = body
    return emitted[id(root)]


def clean_names(names: Iterable[object]) -> tuple[str, ...]:
    """Distinct names of at least two characters (one would match everywhere), normalised like the
    text, without the placeholders and common words a name column also holds (不详, 同上)."""
    texts = [n for n in names if isinstance(n, str)]
    joined = "\x00".join(texts)
    if joined.count("\x00") == max(len(texts) - 1, 0):  # one pass at numpy speed, split again
        normalized = normalize_joined(joined).split("\x00") if texts else []
    else:
        normalized = [normalize_text(n) for n in texts]
    # Sorted before made distinct: a dataset's names arrive sorted (``desensitize.pipeline.dataset_names``),
    # which Python's sort takes in one pass; a set's order would cost a full sort of 10^5 names.
    out = dict.fromkeys(sorted(n.strip() for n in normalized))
    return tuple(n for n in out if len(n) >= 2 and n.lower() not in NAME_PLACEHOLDERS and n not in PERSON_DENY)


@functools.lru_cache(maxsize=8)
def _dataset_names_spec(names: tuple[str, ...]) -> RecognizerSpec | None:
    if not names:
        return None
    return spec(
        "DatasetNameRecognizer",
        "PERSON",
        [("dataset_names", _trie_regex(names), DATASET_NAME_SCORE)],
        pii_type="person_name",
    )


def dataset_names_spec(names: Iterable[object]) -> RecognizerSpec | None:
    """The recognizer of the dataset's own names (from its name columns), or None without names.

    These names are recognised wherever they occur, without context: a custodian who knows that
    王小明 is in the table wants 王小明 removed from its notes too.
    """
    return _dataset_names_spec(clean_names(names))
