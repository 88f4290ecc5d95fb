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
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request

from app.console import review_pages
from app.console.context import Console
from app.console.session import Session
from core import Actor, RegistryError
from operators import Role

#: Outputs larger than this are listed by name, size and hash only: a preview is for reading, not export.
PREVIEW_MAX_BYTES = 2 * 1024 * 1024
PREVIEW_ROWS = 20
PREVIEW_JSON_CHARS = 6000


def preview(
    path: Path, name: str, expected_sha256: str, opener: Callable[[Path], bytes] = Path.read_bytes
) -> dict[str, Any] | None:
    """The first rows of a small CSV, JSON or Parquet output, for the reviewer's eyes only.

    Read only when the file's content still has the hash the release recorded: the reviewer must see
    exactly what would be released, never a file changed since. ``None`` when there is nothing to
    show (other types, too large, gone after the licence's copies were destroyed). ``opener`` gives
    the plaintext (``registry.AtRest.read``: outputs are sealed at rest, issue 22); it is decrypted in
    memory only.
    """
    suffix = Path(name).suffix.lower()
    if suffix not in (".csv", ".json", ".parquet") or not path.is_file():
        return None
    if path.stat().st_size > PREVIEW_MAX_BYTES:
        return {"note": "文件较大,不预览 · too large to preview"}
    try:
        data = opener(path)
    except (RegistryError, OSError) as exc:  # altered, or its key destroyed with the licence
        return {"note": f"无法打开 · cannot be opened: {exc}"}
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        return {"note": "文件与申请记录的哈希不符 · the file no longer matches the recorded SHA-256"}
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
