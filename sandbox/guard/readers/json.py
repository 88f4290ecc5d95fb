"""Strict JSON: UTF-8, no NaN or Infinity, no repeated keys; every key and leaf is content.

Why: ``json.loads`` accepts NaN and keeps the last of two equal keys, so a document can say more
than its parsed value shows; here both are hard findings. Table-shaped parts (arrays of objects,
arrays of arrays, objects of equal-length arrays, pandas' ``columns``/``index``/``split`` layouts,
objects of scalars) become tables for the record and statistics rules; every key and every leaf,
inside a table or not, is also probed as text. A document with strings outside any table is free
text for a person to read. The canonical bytes are the parsed value written again (compact, UTF-8).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from sandbox.guard.content import Content, Table
from sandbox.guard.readers.strict import character_findings, hard, read_text

FORMAT = "JSON"
MAX_DEPTH = 64
Scalar = str | int | float | bool | None


class _RefusedError(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _RefusedError("a key is repeated in one object")
    return dict(pairs)


def _constant(name: str) -> Any:
    raise _RefusedError(f"{name} is not JSON")


def parse(text: str) -> Any:
    """The strict parse (``_RefusedError`` for repeated keys and non-finite constants)."""
    return json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant)


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            return depth
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _table(location: str, header: list[str], rows: list[list[Scalar]]) -> Table:
    columns = [pd.Series([r[i] if i < len(r) else None for r in rows], dtype=object) for i in range(len(header))]
    return Table(location, header, [_typed(c) for c in columns])


def _typed(column: pd.Series) -> pd.Series:
    """Numbers stay exact: integers that fit int64 as Int64, others as float64; anything else as is."""
    values = column.dropna()
    if not len(values) or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return column
    if all(isinstance(v, int) and -(2**63) <= v < 2**63 for v in values):
        return column.astype("Int64")
    if all(isinstance(v, float) or abs(v) < 2**53 for v in values):
        return pd.to_numeric(column, errors="coerce").astype("float64")
    return column


def _as_table(location: str, node: Any) -> Table | None:
    """``node`` as a table when it has one of the shapes above, else None."""
    if isinstance(node, list) and node:
        if all(isinstance(r, dict) and all(_scalar(v) for v in r.values()) for r in node):
            header = list(dict.fromkeys(k for r in node for k in r))
            return _table(location, header, [[r.get(k) for k in header] for r in node])
        if all(isinstance(r, list) and all(_scalar(v) for v in r) for r in node):
            width = max(len(r) for r in node)
            return _table(location, [f"column {i + 1}" for i in range(width)], node)
        return None
    if not isinstance(node, dict) or not node:
        return None
    if set(node) <= {"columns", "index", "data", "name"} and isinstance(node.get("data"), list):
        header = [str(c) for c in node.get("columns") or []]
        rows = node["data"]
        if all(isinstance(r, list) and all(_scalar(v) for v in r) for r in rows):
            index = node.get("index")
            if isinstance(index, list) and len(index) == len(rows) and all(_scalar(v) for v in index):
                return _table(location, ["index", *header], [[i, *r] for i, r in zip(index, rows, strict=True)])
            return _table(location, header or [f"column {i + 1}" for i in range(max(map(len, rows), default=0))], rows)
    values = list(node.values())
    if all(_scalar(v) for v in values):
        return _table(location, ["key", "value"], [[k, v] for k, v in node.items()])
    if all(isinstance(v, list) and all(_scalar(x) for x in v) for v in values) and len({len(v) for v in values}) == 1:
        return _table(location, list(node), [list(r) for r in zip(*values, strict=True)])
    if all(isinstance(v, dict) and all(_scalar(x) for x in v.values()) for v in values):
        index = list(dict.fromkeys(k for v in values for k in v))
        return _table(location, ["index", *node], [[i, *(v.get(i) for v in values)] for i in index])
    return None


def _tables(node: Any, location: str, tables: list[Table], loose: list[str]) -> None:
    """Collect table-shaped subtrees (not descending into them) and the strings outside every table."""
    if isinstance(node, str):
        loose.append(node)
        return
    if _scalar(node):
        return
    table = _as_table(location, node)
    if table is not None:
        tables.append(table)
        return
    # Locations are positions, never keys: a key is content and findings must not echo it.
    values = node.values() if isinstance(node, dict) else node
    for i, value in enumerate(values):
        _tables(value, f"{location}/{i}", tables, loose)


def _leaves(node: Any) -> tuple[list[str], list[str], list[str]]:
    """(keys, leaves as text, string leaves) of a subtree, in document order."""
    keys: list[str] = []
    leaves: list[str] = []
    strings: list[str] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            keys.extend(item)
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, bool):
            leaves.append(str(item).lower())
        elif isinstance(item, float):
            leaves.append(repr(item) if item != int(item) or abs(item) >= 2**63 else str(int(item)))
        elif isinstance(item, str):
            leaves.append(item)
            strings.append(item)
        elif item is not None:
            leaves.append(str(item))
    return keys, leaves, strings


def read(path: Path, name: str) -> Content:
    content = Content(name, FORMAT)
    text = read_text(path, content)
    if text is None:
        return content
    try:
        document = parse(text)
    except _RefusedError as exc:
        content.findings.append(hard("json.strict", name, "document", str(exc)))
        return content
    except (ValueError, RecursionError):
        content.findings.append(hard("json.malformed", name, "document", "not one valid JSON document"))
        return content
    if _depth(document) > MAX_DEPTH:
        content.findings.append(hard("json.depth", name, "document", f"nested deeper than {MAX_DEPTH} levels"))
        return content
    keys, leaves, strings = _leaves(document)
    content.findings += character_findings("\n".join(keys + leaves), name, "values")  # escapes like \u200b
    content.add_text("keys", keys)
    content.add_text("values", leaves)
    content.add_sequence("string values", strings)
    loose: list[str] = []
    _tables(document, "table", content.tables, loose)
    content.free_text = bool(loose) or not content.tables
    content.canonical = (json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)).encode()
    return content


__all__ = ["FORMAT", "parse", "read"]
