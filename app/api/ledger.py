"""Read-only HTTP access to the ledger for regulators (监管部门: read and verify, change nothing).

Role enforcement is injected by the application (``require``), so this module needs nothing
of Keyong's beyond the ledger itself.
"""

import logging
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field

from app.api.limits import Filter, Seq, TreeSize
from app.api.schemas import CheckpointOut, ConsistencyOut, EntryOut, ProofOut, VerifyOut, text_response
from app.api.unavailable import BUSY_RETRY_AFTER_SECONDS, TROUBLE_DETAILS, unavailable_response
from app.bounded_waits import bound_lock_waits, install_bounded_waits
from app.instance_read import database_trouble, unreachable
from app.ledger_whole import instance_verified
from ledger import Ledger, LedgerBusyError, LedgerError, LedgerUnavailableError

PAGE_MAX = 1000
logger = logging.getLogger("keyong")


class EntriesPage(BaseModel):
    entries: list[EntryOut] = Field(description="Ledger entries, oldest first.")
    next_after: int | None = Field(description="Pass as ``after`` for the next page; null on the last page.")


def export_response(ledger: Ledger) -> StreamingResponse:
    """The whole ledger as a JSON-lines download, spooled first so the stream is one consistent export."""
    spool = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024, mode="w+", encoding="utf-8")  # noqa: SIM115
    ledger.export(spool)
    spool.seek(0)

    def lines() -> Iterator[str]:
        try:
            while chunk := spool.read(1 << 16):
                yield chunk
        finally:
            spool.close()

    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="keyong-ledger.jsonl"'},
    )


def verified_or_busy(ledger: Ledger, lock_timeout_ms: int) -> dict[str, Any] | JSONResponse:
    """The instance's verification report, or 503 with Retry-After when a read waited on another database
    session's lock (a DBA's ``LOCK TABLE``) past ``lock_timeout_ms``: it verified nothing, and no request or
    server worker hangs as long as the lock is held (ledger23; the CLI's own bound is redteam22 T7)."""
    try:
        report = ledger.verify(lock_timeout_ms=lock_timeout_ms)
    except LedgerBusyError as exc:
        logger.warning("503 on GET /ledger/verify: %s", exc)
        return unavailable_response(str(exc), "ledger_busy", BUSY_RETRY_AFTER_SECONDS)
    except LedgerUnavailableError as exc:  # the fast reader's own connections failed: ADBC's, not SQLAlchemy's
        cause = exc.__cause__ or exc
        logger.error("503 on GET /ledger/verify: %s", unreachable(None, cause))
        return unavailable_response(TROUBLE_DETAILS[database_trouble(cause)], "database_unavailable")
    return instance_verified(report).as_json()


def bounded_waits(ledger: Ledger, lock_timeout_ms: int) -> Callable[[], Awaitable[None]]:
    """A dependency to run before the token is checked: its reads (principal, key, revocation, recovery hold)
    wait on a lock no longer than the verification does (red team 23b F1); a regulator's other reads here alike.
    Async, so that it sets the bound in the request's own context, which the dependencies after it copy."""
    install_bounded_waits(ledger.engine)

    async def bounded() -> None:
        bound_lock_waits(lock_timeout_ms)

    return bounded


def refused(exc: LedgerError) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, detail=str(exc))


def build_router(ledger: Ledger, require_regulator: Callable[..., Any], *, verify_lock_timeout_ms: int) -> APIRouter:
    """``verify_lock_timeout_ms``: how long ``/verify`` waits on another session's lock (then 503, Retry-After)."""
    waits = [Depends(bounded_waits(ledger, verify_lock_timeout_ms)), Depends(require_regulator)]  # in this order
    router = APIRouter(prefix="/ledger", tags=["ledger"], dependencies=waits)

    @router.get("/entries", response_model=EntriesPage)
    def list_entries(
        action: Filter | None = None,
        subject: Filter | None = None,
        actor: Filter | None = None,
        since: Annotated[Filter | None, Query(description="UTC ISO 8601 lower bound on entry time")] = None,
        after: Annotated[Seq, Query(description="seq to continue after (pagination)")] = 0,
        limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 100,
    ) -> dict[str, Any]:
        """Entries matching every filter, oldest first; follow ``next_after`` for the next page."""
        found = ledger.entries(action=action, subject=subject, actor=actor, since=since, after=after, limit=limit)
        return {"entries": [e.as_json() for e in found], "next_after": found[-1].seq if len(found) == limit else None}

    @router.get("/entries/{seq}", response_model=EntryOut)
    def get_entry(seq: Seq) -> dict[str, Any]:
        """One ledger entry by its position."""
        try:
            return ledger.get(seq).as_json()
        except LedgerError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None

    @router.get("/verify", response_model=VerifyOut)
    def verify() -> dict[str, Any] | JSONResponse:
        """Recompute the whole chain, Merkle tree and checkpoints now (503 while another session locks it)."""
        return verified_or_busy(ledger, verify_lock_timeout_ms)

    @router.get("/proof/{seq}", response_model=ProofOut)
    def proof(seq: Seq, tree_size: Annotated[TreeSize | None, Query()] = None) -> dict[str, Any]:
        """Inclusion proof of entry ``seq`` against the latest (or the given) signed checkpoint."""
        try:
            return ledger.prove(seq, tree_size=tree_size).as_json()
        except LedgerError as exc:
            raise refused(exc) from None

    @router.get("/consistency", response_model=ConsistencyOut)
    def consistency(old: Annotated[Seq, Query()], new: Annotated[Seq, Query()]) -> dict[str, Any]:
        """Consistency proof between two tree sizes (RFC 9162 §2.1.4)."""
        try:
            return ledger.consistency(old, new).as_json()
        except LedgerError as exc:
            raise refused(exc) from None

    @router.get("/checkpoint", response_model=CheckpointOut)
    def checkpoint() -> dict[str, Any]:
        """The latest signed checkpoint, its C2SP signed note (with cosignatures) and the log's key."""
        latest = ledger.latest_checkpoint()
        if latest is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no checkpoint yet")
        note, vkey = ledger.checkpoint_note(latest.tree_size), ledger.verifier_for(latest.public_key).vkey
        return {**latest.as_json(), "note": note, "vkey": vkey}

    @router.get(
        "/checkpoint.note",
        response_class=PlainTextResponse,
        responses=text_response("text/plain", "A C2SP tlog-checkpoint signed note."),
    )
    def checkpoint_note() -> str:
        """The latest checkpoint as a C2SP tlog-checkpoint signed note, for witnesses and tlog tools."""
        try:
            return ledger.checkpoint_note()
        except LedgerError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None

    @router.get(
        "/export",
        response_class=StreamingResponse,
        responses=text_response("application/x-ndjson", "JSON lines: one ledger entry per line, oldest first."),
    )
    def export() -> StreamingResponse:
        """The whole ledger as JSON lines, the format ``python -m ledger.verify`` checks."""
        return export_response(ledger)

    return router
