"""The agency's console pages (issue 9): the release review is ``app.console.review_pages`` and the
administrator's pages (operators, licences, budgets, findings, objections, people) are
``app.console.agency_admin_pages`` (issue 18); this module keeps what they share.

The agency (授权运营实施机构) reviews every product before release (双鸭山市公共数据管理暂行办法
第五十二条): a reviewer must see what would leave — the outputs themselves, the export guard's
findings, the operator's justifications and the lineage — before voting. Every read and every action
goes through the same package calls the HTTP API makes for an agency principal (app/api/releases.py,
app/api/jobs.py, app/api/licences.py, app/api/products.py), so the console shows and
allows exactly what the API does. Refusals of the packages (a second vote, a reviewer from the requesting
organisation, a resolved finding…) come back as the page's flash message, never as a 500.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request

from app.console import review_pages
from app.console.context import Console
from app.console.release_files import GONE, TOO_LARGE, stored_plaintext
from app.console.session import Session
from core import Actor
from operators import Role
from registry import AtRest

#: Outputs larger than this are listed by name, size and hash only: a preview is for reading, not export.
PREVIEW_MAX_BYTES = 2 * 1024 * 1024
PREVIEW_ROWS = 20
PREVIEW_JSON_CHARS = 6000


def preview(at_rest: AtRest, key: str, name: str, expected_sha256: str) -> dict[str, Any] | None:
    """The first rows of a small CSV, JSON or Parquet output, for the reviewer's eyes only.

    Read only when the file's content still has the hash the release recorded: the reviewer must see
    exactly what would be released, never a file changed since. ``None`` when there is nothing to
    show (other types, gone after the licence's copies were destroyed). The object is read through the
    instance's storage (issue 19: it may live in a bucket, written by a worker on another host) and
    decrypted in memory only (outputs are sealed at rest, issue 22).
    """
    suffix = Path(name).suffix.lower()
    if suffix not in (".csv", ".json", ".parquet"):
        return None
    data, why = stored_plaintext(at_rest, key, expected_sha256, limit=PREVIEW_MAX_BYTES)
    if data is None:
        if why == GONE:
            return None
        return {"note": "文件较大，不预览 · too large to preview" if why == TOO_LARGE else why}
    try:
        if suffix == ".csv":
            text = data.decode("utf-8-sig", errors="replace")
            rows = list(csv.reader(io.StringIO(text)))
            header, body = (rows[0], rows[1:]) if rows else ([], [])
            return {"columns": header, "rows": body[:PREVIEW_ROWS], "total_rows": len(body)}
        if suffix == ".json":
            shown = json.dumps(json.loads(data.decode("utf-8")), ensure_ascii=False, indent=2)
            cut = len(shown) > PREVIEW_JSON_CHARS
            return {"json": shown[:PREVIEW_JSON_CHARS] + ("\n…" if cut else "")}
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(pa.BufferReader(data))
        head = table.slice(0, PREVIEW_ROWS).to_pylist()
        return {
            "columns": table.column_names,
            "rows": [[row.get(c) for c in table.column_names] for row in head],
            "total_rows": table.num_rows,
        }
    except Exception as exc:  # a preview must never take the review page down
        return {"note": f"无法预览 · cannot preview: {type(exc).__name__}"}


def _agency(console: Console, request: Request) -> tuple[Session, Actor]:
    """The logged-in agency principal; anyone else is refused by the session check."""
    session = console.session(request, Role.AGENCY)
    return session, session.actor


def register(router: APIRouter, console: Console) -> None:
    """The agency's pages on the console router, in the order they match."""
    review_pages.register(router, console)  # the release review, its thread and queue (issue 18)
