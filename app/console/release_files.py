"""A release's outputs as a reviewer reads them in full (issue 18): tables paged and sorted, images
inline, JSON and text whole, and a per-table SDC summary (SACRO-Viewer style) even when the guard passed.

Why: the agency approves what leaves (双鸭山市公共数据管理暂行办法 第五十二条: pre-release compliance
review); a reviewer who saw the first twenty rows approved the rest unseen. Every byte shown is read
only when its plaintext still has the SHA-256 the release recorded (outputs are sealed at rest, issue
22: decrypted in memory only), so the reviewer sees exactly what would leave. The SDC rule has one owner,
``sandbox.sdc``: the summary calls :func:`sandbox.sdc.check_table` with the guard's own thresholds
(``sandbox.guard.GuardConfig().sdc``) and reports what it says, never a copy of the rule.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from core import ObjectMissingError, RegistryError
from registry import AtRest

#: Outputs larger than this are listed by name, size and hash only: the page is for reading, not export.
MAX_SHOWN_BYTES = 8 * 1024 * 1024
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 500
TABLES = (".csv", ".parquet")
IMAGES = {".png": "image/png", ".svg": "image/svg+xml"}
TEXTS = (".txt", ".md", ".log", ".tsv")
#: An image is served with no right to run anything: an SVG is a document that could hold script, so it is
#: only ever shown inside <img> (where browsers run none) and, fetched directly, this policy forbids it too.
IMAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


@dataclass(frozen=True, slots=True)
class Shown:
    """One output as the page shows it: ``kind`` is table, image, json, text or note (why not shown)."""

    index: int
    name: str
    kind: str
    note: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    total_rows: int = 0
    page: int = 1
    pages: int = 1
    per: int = DEFAULT_PER_PAGE
    sort: int | None = None
    desc: bool = False
    text: str = ""
    sdc: dict[str, Any] | None = None


GONE = "文件已不存在 · the file is gone (the licence's copies may have been destroyed)"
TOO_LARGE = "文件较大，不在页面显示 · too large to show on the page"


def stored_plaintext(
    at_rest: AtRest, key: str, expected_sha256: str, *, limit: int = MAX_SHOWN_BYTES
) -> tuple[bytes | None, str]:
    """The output's plaintext if it still has the recorded SHA-256, else ``None`` and why (never a changed file).

    Read through the instance's storage (issue 19: the worker that wrote it may be on another host, and
    the object lives in the bucket, not under this host's home): authenticated frame by frame and
    decrypted in memory only, never more than ``limit`` bytes. A row from before the home layout
    (an absolute path) is read as the local file it names."""
    data = bytearray()
    try:
        chunks = at_rest.chunks(Path(key)) if Path(key).is_absolute() else at_rest.object_chunks(key)
        for chunk in chunks:
            data += chunk
            if len(data) > limit:
                return None, TOO_LARGE
    except (ObjectMissingError, FileNotFoundError):
        return None, GONE
    except (RegistryError, OSError) as exc:  # altered, its key destroyed with the licence, storage refused
        return None, f"无法打开 · cannot be opened: {exc}"
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        return None, "文件与申请记录的哈希不符 · the file no longer matches the recorded SHA-256"
    return bytes(data), ""


def read_table(data: bytes, suffix: str) -> tuple[list[str], list[list[Any]]]:
    """Header and every row of a CSV or Parquet output."""
    if suffix == ".csv":
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig", errors="replace"))))
        return (rows[0], rows[1:]) if rows else ([], [])
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(data))
    names = [str(c) for c in table.column_names]
    return names, [[row.get(c) for c in table.column_names] for row in table.to_pylist()]


def _sort_key(value: Any) -> tuple[int, float, str]:
    """Numbers by value before text (a CSV's numbers are text: '9' < '10' must hold)."""
    try:
        number = float(str(value).strip())
        if math.isfinite(number):
            return (0, number, "")
    except ValueError:
        pass
    return (1, 0.0, "" if value is None else str(value))


def page_of(
    columns: list[str], rows: list[list[Any]], *, page: int, per: int, sort: int | None, desc: bool
) -> dict[str, Any]:
    """One page of the rows, sorted by column ``sort`` (server-side: a page needs no script)."""
    per = max(1, min(per, MAX_PER_PAGE))
    ordered = rows
    if sort is not None and 0 <= sort < len(columns):
        by = sort
        ordered = sorted(rows, key=lambda r: _sort_key(r[by] if by < len(r) else None), reverse=desc)
    else:
        sort = None
    pages = max(1, math.ceil(len(rows) / per))
    page = max(1, min(page, pages))
    return {
        "rows": ordered[(page - 1) * per : page * per],
        "page": page,
        "pages": pages,
        "per": per,
        "sort": sort,
        "desc": desc and sort is not None,
    }


def sdc_summary(columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    """SACRO-Viewer's summary of one table: rows, cells, the minimum cell count, dominance, the thresholds
    the guard applies and whether each passes, all from ``sandbox.sdc`` (its one owner)."""
    import pandas as pd

    from sandbox import TOP_NAMES, TOTAL_NAMES, GuardConfig, check_table, count_columns

    config = GuardConfig().sdc
    frame = pd.DataFrame(rows, columns=columns) if columns else pd.DataFrame()
    for column in frame.columns:  # a CSV's cells are text: numbers are compared as numbers, as the guard reads them
        converted = pd.to_numeric(frame[column], errors="coerce")
        if len(frame) and converted.notna().all():
            frame[column] = converted
    issues = check_table(frame, config)
    rules = {issue.rule for issue in issues}
    counts = count_columns(frame)
    minimum = None
    if counts:
        values = pd.concat([pd.to_numeric(frame[c], errors="coerce") for c in counts]).dropna()
        positive = values[values > 0]
        minimum = int(positive.min()) if len(positive) else None
    top = next((str(c) for c in frame.columns if TOP_NAMES.match(str(c))), None)
    total = next((str(c) for c in frame.columns if TOTAL_NAMES.match(str(c))), None)
    if top and total:
        with_total = frame[pd.to_numeric(frame[total], errors="coerce") > 0]
        shares = pd.to_numeric(with_total[top], errors="coerce") / pd.to_numeric(with_total[total], errors="coerce")
        dominance: str = f"{float(shares.max()) * 100:.1f}%" if len(shares.dropna()) else "n/a"
        dominance_why = f"{top} / {total}"
    else:
        dominance = "n/a"
        dominance_why = (
            "表中没有最大贡献者列（max/top1 与 sum/total） · no largest-contributor column (max/top1 with sum/total)"
        )
    return {
        "rows": len(frame),
        "cells": len(frame) * len(frame.columns),
        "count_columns": counts,
        "min_cell": minimum,
        "min_cell_threshold": config.min_cell_count,
        "min_cell_pass": "sdc.min_cell_count" not in rules,
        "zero_cells_pass": "sdc.zero_cell" not in rules,
        "dominance": dominance,
        "dominance_why": dominance_why,
        "dominance_threshold": f"p% {config.p_percent:g} · n-k {config.nk_n}/{config.nk_k:g}",
        "dominance_pass": not rules & {"sdc.p_percent", "sdc.nk_rule"} if top and total else None,
        "max_rows": config.max_rows,
        "rows_pass": "sdc.row_cap" not in rules,
        "issues": [f"{i.rule}: {i.location}: {i.detail}" for i in issues],
    }


def shown(index: int, name: str, data: bytes | None, note: str, view: dict[str, Any] | None = None) -> Shown:
    """The output ``name`` as the page shows it; ``view`` its table's page, sort and size from the query."""
    suffix = PurePosixPath(name).suffix.lower()
    if data is None:
        return Shown(index, name, "note", note=note)
    try:
        if suffix in TABLES:
            columns, rows = read_table(data, suffix)
            wanted = view or {}
            paged = page_of(
                columns,
                rows,
                page=int(wanted.get("page", 1)),
                per=int(wanted.get("per", DEFAULT_PER_PAGE)),
                sort=wanted.get("sort"),
                desc=bool(wanted.get("desc")),
            )
            return Shown(index, name, "table", columns=columns, total_rows=len(rows), sdc=sdc_summary(columns, rows),
                         **paged)  # fmt: skip
        if suffix in IMAGES:
            return Shown(index, name, "image")
        if suffix == ".json":
            text = json.dumps(json.loads(data.decode("utf-8")), ensure_ascii=False, indent=2)
            return Shown(index, name, "json", text=text)
        if suffix in TEXTS:
            return Shown(index, name, "text", text=data.decode("utf-8", errors="replace"))
    except Exception as exc:  # a malformed output must never take the review page down
        return Shown(index, name, "note", note=f"无法显示 · cannot show: {type(exc).__name__}")
    return Shown(index, name, "note", note="此类文件不在页面显示，请核对哈希 · not shown on the page: check its hash")


__all__ = [
    "DEFAULT_PER_PAGE",
    "IMAGES",
    "IMAGE_CSP",
    "MAX_PER_PAGE",
    "Shown",
    "page_of",
    "read_table",
    "sdc_summary",
    "shown",
    "stored_plaintext",
]
