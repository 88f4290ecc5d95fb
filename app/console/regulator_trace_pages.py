"""The regulator's trace, proof downloads and range export (issue 18).

A regulator (监管部门) checks that what left the platform came from a licensed job through the export guard
and the agency's review: the trace goes from a job to its release(s), the product, the product's fetches and
the objections against it — and back from a product to its job — with every step's ledger entry linked
(双鸭山市公共数据管理暂行办法 第六十条: 全流程可追溯). An entry's inclusion proof and the signed checkpoint note it
rests on download as files in exactly the format ``python -m ledger.verify --proof P --note N`` reads (the
same documents ``GET /ledger/proof/{seq}`` and ``GET /ledger/checkpoint.note`` serve), so the check needs no
trust in the console. A range of entries downloads as JSON lines in the export's own line format.

Reads only: the same calls as app/api/ledger.py, app/api/jobs.py, app/api/releases.py, app/api/products.py.
A bad id, an unknown product or a reversed range is a 4xx, never a 500.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse

from app.console.context import Console, PathId, PathSeq, decimal
from app.console.glossary import label as action_label
from app.console.session import Session
from core import Actor, RegistryError
from ledger import Entry, LedgerError
from operators import Role

#: Ledger entries shown per subject on a trace: a job has a few dozen at most; more is a page of its own.
SUBJECT_ENTRIES = 500
#: The largest range one export may hold (the whole ledger is ``/regulator/export``).
RANGE_MAX = 100_000
ProductName = Annotated[str, PathParam(pattern=r"^[^/\x00-\x1f]{1,200}$")]


def _regulator(console: Console, request: Request) -> tuple[Session, Actor]:
    session = console.session(request, Role.REGULATOR)
    return session, session.actor


def _entries(ledger: Any, subject: str) -> list[Entry]:
    return list(ledger.entries(subject=subject, limit=SUBJECT_ENTRIES))


def job_trace(console: Console, actor: Actor, job_id: int) -> dict[str, Any]:
    """A job, its releases, their products with fetches and objections, and each one's ledger entries.

    Raises ``RegistryError`` when there is no such job."""
    instance, ledger = console.instance, console.instance.ledger
    job = instance.jobs.show(job_id, viewer=actor)
    releases = [r for r in instance.releases.list(viewer=actor) if r.job == job_id]
    names = {r.product for r in releases}
    products = [p for p in instance.registry.products.list(viewer=actor) if p.job == str(job_id) or p.name in names]
    return {
        "job": job,
        "job_entries": _entries(ledger, f"job:{job_id}"),
        "releases": [{"release": r, "entries": _entries(ledger, f"release:{r.id}")} for r in releases],
        "products": [product_trace(console, actor, p) for p in products],
    }


def product_trace(console: Console, actor: Actor, product: Any) -> dict[str, Any]:
    """A product with its ledger entries split into fetches and the rest, and the objections against it."""
    instance, ledger = console.instance, console.instance.ledger
    entries = _entries(ledger, f"product:{product.name}")
    objections = [
        o
        for o in instance.registry.objections.list(viewer=actor)
        if o.target_kind == "product" and (o.target == product.name or o.target_id == product.id)
    ]
    return {
        "product": product,
        "entries": [e for e in entries if e.action != "product.fetched"],
        "fetches": [e for e in entries if e.action == "product.fetched"],
        "objections": [{"objection": o, "entries": _entries(ledger, f"objection:{o.id}")} for o in objections],
    }


def read_range(q: Any) -> tuple[int, int | None, str | None, str | None]:
    """(after, last seq, since, until) of an export range from the query: ``from``/``to`` seqs or
    ``since``/``until`` days (UTC, both inclusive). Raises ``ValueError`` with what is wrong."""

    def seq(name: str) -> int | None:
        text = (q.get(name) or "").strip()
        if not text:
            return None
        number = decimal(text, low=1, high=10**18 - 1)
        if number is None:
            raise ValueError(f"{name} must be a ledger position ≥ 1")
        return number

    def day(name: str) -> date | None:
        text = (q.get(name) or "").strip()
        if not text:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{name} {text[:40]!r} is not a date YYYY-MM-DD") from None

    first, last, since, until = seq("from"), seq("to"), day("since"), day("until")
    if first is None and last is None and since is None and until is None:
        raise ValueError("give from/to (ledger positions) or since/until (dates)")
    if first is not None and last is not None and last < first:
        raise ValueError(f"to {last} is before from {first}")
    if since is not None and until is not None and until < since:
        raise ValueError(f"until {until} is before since {since}")
    if first is not None and last is not None and last - first >= RANGE_MAX:
        raise ValueError(f"at most {RANGE_MAX} entries per range; export the whole ledger instead")
    return (
        (first or 1) - 1,
        last,
        since.isoformat() if since else None,
        # The last representable day has no next day (OverflowError, red team 18 F2): it leaves the range open.
        (until + timedelta(days=1)).isoformat() if until and until < date.max else None,
    )


def range_lines(ledger: Any, after: int, last: int | None, since: str | None, before_day: str | None) -> Iterator[str]:
    """The entries of a range as export lines (``Entry.as_json``: the hashed fields plus ``hash``)."""
    count = 0
    while count < RANGE_MAX:
        chunk = ledger.entries(since=since, after=after, limit=min(5_000, RANGE_MAX - count))
        if not chunk:
            return
        for entry in chunk:
            if (last is not None and entry.seq > last) or (before_day is not None and entry.time >= before_day):
                return
            yield json.dumps(entry.as_json(), ensure_ascii=False, separators=(",", ":")) + "\n"
            count += 1
        after = chunk[-1].seq


def register(router: APIRouter, console: Console) -> None:
    """The trace pages, the proof and note downloads and the range export."""
    _trace(router, console)
    _downloads(router, console)


def _trace(router: APIRouter, console: Console) -> None:
    instance = console.instance

    @router.get("/regulator/trace", response_class=HTMLResponse)
    def trace_index(request: Request, job: str = "", product: str = "") -> Response:
        session, actor = _regulator(console, request)
        job, product = job.strip(), product.strip()
        if job:
            job_id = decimal(job, high=10**12 - 1)  # ASCII digits only: '²'.isdigit() but int('²') fails (F1)
            if job_id is None:
                return console.flash(session, "/regulator/trace", "trace_unavailable", reason=f"no job {job[:40]!r}")
            return console.redirect(f"/regulator/trace/jobs/{job_id}")
        if product:
            from urllib.parse import quote

            return console.redirect(f"/regulator/trace/products/{quote(product[:200], safe='')}")
        products = instance.registry.products.list(viewer=actor)[::-1][:100]
        releases = instance.releases.list(viewer=actor)[::-1][:100]
        objections: dict[str, int] = {}
        for o in instance.registry.objections.list(viewer=actor):
            if o.target_kind == "product":
                objections[o.target] = objections.get(o.target, 0) + 1
        fetches: dict[str, int] = {}
        for e in instance.ledger.entries(action="product.fetched", limit=10_000):
            name = e.subject.partition(":")[2]
            fetches[name] = fetches.get(name, 0) + 1
        return console.render(
            request, session, "console/regulator/trace_index.html", products=products, releases=releases,
            fetches=fetches, objections=objections,
        )  # fmt: skip

    @router.get("/regulator/trace/jobs/{job_id}", response_class=HTMLResponse)
    def trace_job(request: Request, job_id: PathId) -> Response:
        session, actor = _regulator(console, request)
        try:
            trace = job_trace(console, actor, job_id)
        except RegistryError as exc:
            return console.render(request, session, "console/error.html", status_code=404, message=f"无此作业 · {exc}")
        return console.render(
            request, session, "console/regulator/trace.html", focus="job", action_label=action_label, **trace
        )

    @router.get("/regulator/trace/products/{name}", response_class=HTMLResponse)
    def trace_product(request: Request, name: ProductName) -> Response:
        session, actor = _regulator(console, request)
        try:
            product = instance.registry.products.get(name, viewer=actor)
        except RegistryError as exc:
            return console.render(request, session, "console/error.html", status_code=404, message=f"无此产品 · {exc}")
        job_id = int(product.job) if re.fullmatch(r"\d{1,12}", product.job) else None
        return console.render(
            request, session, "console/regulator/trace_product.html", action_label=action_label,
            job_id=job_id, job_entries=_entries(instance.ledger, f"job:{job_id}") if job_id else [],
            **product_trace(console, actor, product),
        )  # fmt: skip


def _downloads(router: APIRouter, console: Console) -> None:
    """Files a regulator checks offline: a proof, a checkpoint note, the public key, a range of entries."""
    ledger = console.instance.ledger

    @router.get("/regulator/entries/{seq}/proof.json")
    def proof(request: Request, seq: PathSeq) -> Response:
        """``keyong ledger prove SEQ --json`` as a file (``python -m ledger.verify --proof``)."""
        _regulator(console, request)
        try:
            ledger.get(seq)
            found = ledger.prove(seq, checkpoint_if_needed=True)
        except LedgerError as exc:
            return PlainTextResponse(f"no proof: {exc}", status_code=404)
        body = json.dumps(found.as_json(), ensure_ascii=False, indent=2) + "\n"
        return Response(
            body,
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="keyong-proof-{seq}.json"'},
        )

    @router.get("/regulator/checkpoints/{tree_size}/note")
    def note(request: Request, tree_size: PathSeq) -> Response:
        """The signed checkpoint of this size as a C2SP note (``python -m ledger.verify --note``)."""
        _regulator(console, request)
        try:
            text = ledger.checkpoint_note(tree_size) if tree_size > 0 else ""
        except LedgerError as exc:
            return PlainTextResponse(f"no checkpoint: {exc}", status_code=404)
        if not text:
            return PlainTextResponse("no checkpoint of size 0", status_code=404)
        return PlainTextResponse(
            text, headers={"Content-Disposition": f'attachment; filename="keyong-checkpoint-{tree_size}.note"'}
        )

    @router.get("/regulator/public-key")
    def public_key(request: Request) -> Response:
        """The ledger's public key (hex), for ``--public-key``."""
        _regulator(console, request)
        return PlainTextResponse(
            ledger.public_key_hex + "\n",
            headers={"Content-Disposition": 'attachment; filename="keyong-ledger-public-key.txt"'},
        )

    @router.get("/regulator/export/range")
    def export_range(request: Request) -> Response:
        """Entries ``from``..``to`` (positions) or ``since``..``until`` (UTC days, inclusive) as JSON lines."""
        _regulator(console, request)
        try:
            after, last, since, before_day = read_range(request.query_params)
        except ValueError as exc:
            return _bad(exc)
        name = "keyong-ledger-" + "-".join(
            str(v) for v in (request.query_params.get(k, "").strip() for k in ("from", "to", "since", "until")) if v
        )
        return StreamingResponse(
            range_lines(ledger, after, last, since, before_day),
            media_type="application/x-ndjson",
            headers={"Content-Disposition": f'attachment; filename="{re.sub(r"[^0-9A-Za-z.-]", "", name)}.jsonl"'},
        )


def _bad(exc: ValueError) -> Response:
    """A bad range is the request's fault: 400 with the reason (a download link has no page to flash on)."""
    return PlainTextResponse(f"导出范围有误 · bad export range: {exc}", status_code=400)
