"""Charts the platform draws itself: a strict Vega-Lite subset rendered outside the sandbox.

Why this module exists. A job in the sandbox may draw anything in pixels, and no guard can
audit pixels: an image drawn inside the sandbox can carry raw records as glyphs, so it goes to
human review at best. A chart the platform draws itself, outside the sandbox, from a table the
export guard already passed, carries only that table's cells plus the spec's own strings; both
are judged content, so such a chart may pass. This keeps the promise that raw data never leaves
the domain (原始数据不出域, 数据可用不可见; shuangyashan-2026-public-data.txt art. 35) while
products still go through compliance review before release (art. 52).

So a job writes a Vega-Lite spec as an output named ``*.vl.json`` whose data names one other
output table of the same job (``{"data": {"url": "table.csv"}}``). :func:`check_spec` reads it
strictly and fails closed: every key is on an allowlist, anything that evaluates an expression,
fetches, or draws free-form paths is a problem, and every free-text string is returned so the
guard can probe and judge it. :func:`render_svg` then renders the spec with the platform's own
copy of the judged table inlined, with vl-convert's bundled Vega (no browser, no network: data
URLs are refused by ``allowed_base_urls=[]`` and ``$schema`` is dropped, never fetched).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import vl_convert
from pyarrow import types as pat

from sandbox.guard.chart_grammar import MAX_LIST, MAX_PIXELS, SCHEMA_RE, TABLE_SUFFIXES, TOP, Walker, structure

MAX_SPEC_BYTES = 256 * 1024
MAX_DEPTH = 16  # the deepest allowed construct (layer -> view -> encoding -> scale -> scheme) needs ~8
MAX_ROWS = 5000
SPEC_SUFFIX = ".vl.json"


class ChartError(ValueError):
    """The platform will not render this chart; the message says why."""


@dataclass(frozen=True)
class SpecCheck:
    """What the guard needs to judge a chart spec before the platform renders it."""

    table: str | None  # the output table the spec draws from
    fields: frozenset[str]  # every column the spec refers to
    strings: tuple[str, ...]  # every free-text string: content the guard must probe and judge
    problems: tuple[str, ...]  # why the platform cannot render it; empty when it can

    @property
    def ok(self) -> bool:
        return not self.problems


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, iteratively (no recursion limit to trip)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Two values for one key would let the guard judge one and the renderer draw the other."""
    value = dict(pairs)
    if len(value) != len(pairs):
        raise ValueError(f"duplicate key {next(k for k, _ in pairs if [q for q, _ in pairs].count(k) > 1)!r}")
    return value


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    if not math.isfinite(value := float(text)):
        raise ValueError(f"number {text[:20]} overflows")
    return value


def _parse(text: str | bytes) -> Any:
    """Strict JSON: UTF-8, size-capped, no NaN/Infinity, no duplicate keys, bounded nesting."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "strict")
    if len(raw) > MAX_SPEC_BYTES:
        raise ValueError(f"spec is {len(raw)} bytes, more than {MAX_SPEC_BYTES}")
    try:
        value = json.loads(raw.decode(), object_pairs_hook=_no_duplicates, parse_constant=_refuse, parse_float=_finite)
    except RecursionError:
        raise ValueError(f"nesting deeper than {MAX_DEPTH}") from None
    if _depth(value) > MAX_DEPTH:
        raise ValueError(f"nesting deeper than {MAX_DEPTH}")
    json.dumps(value, ensure_ascii=False).encode("utf-8", "strict")  # a lone surrogate escape fails here
    return value


def check_spec(text: str | bytes) -> SpecCheck:
    """Judge a chart spec before anything renders it: what it draws from, refers to and says.

    Fails closed: anything this reader does not understand is a problem, so a spec only renders
    when every key, value and string in it is accounted for.
    """
    try:
        spec = _parse(text)
    except (ValueError, UnicodeError) as exc:
        return SpecCheck(None, frozenset(), (), (f"not strict JSON: {exc}",))
    w = Walker()
    TOP(w, spec, "")
    if isinstance(spec, dict):
        structure(w, spec)
    tables = set(w.tables)
    table = w.tables[0] if len(tables) == 1 else None
    return SpecCheck(table, frozenset(w.fields), tuple(w.strings), tuple(dict.fromkeys(w.problems)))


def _cell(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, decimal.Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


_NUMERIC = (pat.is_integer, pat.is_floating, pat.is_decimal, pat.is_boolean, pat.is_null)
_TEXTUAL = (pat.is_string, pat.is_large_string, pat.is_date, pat.is_timestamp)


def _chartable(kind: pa.DataType) -> bool:
    """Scalars Vega-Lite draws as they are; binary, nested and duration columns are refused."""
    kind = kind.value_type if pat.is_dictionary(kind) else kind
    return any(check(kind) for check in _NUMERIC + _TEXTUAL)


def _values(table: pa.Table, fields: list[str]) -> list[dict[str, Any]]:
    """The judged table as Vega-Lite inline rows, keeping only the columns the chart uses."""
    names = table.column_names
    for name in fields:
        if names.count(name) != 1:
            raise ChartError(f"field {name!r} is not exactly one column of the table")
        if not _chartable(table.schema.field(name).type):
            raise ChartError(f"column {name!r} of type {table.schema.field(name).type} cannot be charted")
    columns = [[_cell(v) for v in table.column(name).to_pylist()] for name in fields]
    return [dict(zip(fields, row, strict=True)) for row in zip(*columns, strict=True)] or [{}] * table.num_rows


def _vl_version(schema_url: Any) -> str:
    """The bundled Vega-Lite to use: the newest of the major the spec names, else the newest."""
    versions = sorted(vl_convert.get_vegalite_versions(), key=lambda v: tuple(int(x) for x in v.split(".")))
    match = SCHEMA_RE.fullmatch(schema_url) if isinstance(schema_url, str) else None
    same = [v for v in versions if match and v.split(".")[0] == match.group(1)]
    return (same or versions)[-1]


def render_svg(spec_text: str | bytes, table: pa.Table) -> bytes:
    """Render a checked spec over the platform's own copy of the judged table, offline, as SVG.

    The table's rows replace the data reference, so nothing the sandbox wrote other than the spec's
    judged strings reaches the picture; vl-convert refuses every data URL and ``$schema`` is dropped.
    """
    check = check_spec(spec_text)
    if check.problems:
        raise ChartError("chart spec cannot be rendered: " + "; ".join(check.problems))
    missing = sorted(check.fields - set(table.column_names))
    if missing:
        raise ChartError(f"fields not in the table: {missing}")
    if table.num_rows > MAX_ROWS:
        raise ChartError(f"table has {table.num_rows} rows; charts draw at most {MAX_ROWS}")
    spec = json.loads(spec_text)
    version = _vl_version(spec.pop("$schema", None))
    for view in spec.get("layer", []):
        view.pop("data", None)
    spec["data"] = {"values": _values(table, sorted(check.fields))}
    try:
        text = json.dumps(spec, ensure_ascii=False, allow_nan=False)
        svg = vl_convert.vegalite_to_svg(text, vl_version=version, allowed_base_urls=[], show_warnings=False)
    except ValueError as exc:
        reason = next((line.strip() for line in str(exc).splitlines() if line.startswith("Error")), "unknown error")
        raise ChartError(f"Vega-Lite could not render the chart: {reason}") from exc  # no JS stack for operators
    return svg.encode("utf-8")


__all__ = [
    "MAX_DEPTH",
    "MAX_LIST",
    "MAX_PIXELS",
    "MAX_ROWS",
    "MAX_SPEC_BYTES",
    "SPEC_SUFFIX",
    "TABLE_SUFFIXES",
    "ChartError",
    "SpecCheck",
    "check_spec",
    "render_svg",
]
