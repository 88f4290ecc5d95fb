"""The custodian's upload form (issue 18): a raw file and its catalog fields, ingested in the browser.

The same core as ``POST /datasets/{name}/ingest`` (``app.api.ingest``): the multipart body is streamed by
the API's own reader (:func:`app.api.ingest.receive_upload`) into a sealed scratch file, under the same
bounds (``registry.IngestLimits``: a declared or received body over the bound is refused before it is
kept), and handed to the same :meth:`registry.Ingestor.ingest`, which reads the file strictly, profiles
it, locks it in the vault and publishes the catalog entry (资源目录, 双鸭山 第十二条) in one transaction.

A refusal re-renders the form with a 4xx status, the reason in words and every typed field back (nothing
the custodian typed is lost; the refused file leaves no vault file, catalog entry or ledger entry, which
is the ingest's own guarantee). Beyond the API the form guards one slip: an existing name is refused
unless the custodian ticks "new version", so a typo cannot append a file to someone else's dataset.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from app.api.ingest import Upload, receive_upload
from app.console.context import Console
from app.console.session import Session
from core import NotFoundError, PermissionDeniedError, RegistryError, invisible_character
from operators import Role
from registry import FileInvalidError, FileTooLargeError, Level, Scratch

#: The form's own text fields besides the API's (``app.api.ingest.FIELDS``).
CONSOLE_FIELDS = ("csrf", "name", "new_version")
#: What the form shows back after a refusal (never the CSRF token, never the file).
KEPT = ("name", "provider", "provider_code", "level", "encoding", "title", "industry", "new_version")
ENCODINGS = ("auto", "utf-8", "gb18030")


class UploadRefusedError(Exception):
    """An upload refused with an HTTP status and a reason the form shows."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _checked(fields: dict[str, str], exists: bool) -> dict[str, str]:
    """The form's own checks before the ingest: a name, a level and encoding from the lists, no slip."""
    name = fields.get("name", "").strip()
    if not name:
        raise UploadRefusedError(422, "须填写数据集名称 · the dataset name is required")
    level = fields.get("level", "").strip()
    if level and level not in {lv.value for lv in Level}:
        raise UploadRefusedError(422, f"分级须为 L1–L4 · unknown level {level[:20]!r}: choose L1, L2, L3 or L4")
    encoding = fields.get("encoding", "auto") or "auto"
    if encoding not in ENCODINGS:
        raise UploadRefusedError(422, f"未知编码 · unknown encoding {encoding[:20]!r}: choose auto, utf-8 or gb18030")
    if exists and fields.get("new_version") != "1":
        raise UploadRefusedError(
            409,
            f"数据集 {name} 已存在；如要追加新版本，请勾选“追加新版本” · dataset {name!r} already exists: "
            "tick “new version” to add this file as its next raw version",
        )
    return {"name": name, "level": level, "encoding": encoding}


def register(router: APIRouter, console: Console) -> None:
    registry = console.instance.registry
    ingestor = registry.ingestor

    def page(request: Request, session: Session, status: int = 200, **context: Any) -> HTMLResponse:
        return console.render(
            request,
            session,
            "console/custodian/upload.html",
            status_code=status,
            limit=ingestor.limits.max_upload_bytes,
            levels=[lv.value for lv in Level],
            encodings=ENCODINGS,
            values=context.pop("values", {}),
            error=context.pop("error", ""),
            **context,
        )

    @router.get("/custodian/upload", response_class=HTMLResponse)
    def upload_form(request: Request) -> HTMLResponse:
        session = console.session(request, Role.CUSTODIAN)
        return page(request, session, values={"encoding": "auto"})

    @router.post("/custodian/upload", response_model=None)
    async def upload(request: Request) -> Response:
        """Stream, check and ingest the file; a refusal is the form again with its reason and status."""
        session = console.session(request, Role.CUSTODIAN)
        registry.config.home.mkdir(parents=True, exist_ok=True)
        with Scratch(registry.config.home) as scratch:
            received = Upload(scratch, ingestor.limits, extra=CONSOLE_FIELDS)
            try:
                await receive_upload(request, received)
            except HTTPException as exc:
                # The CSRF token comes first in the form; a body refused before it arrived is a 403 like any
                # other form without its token, except an upload too large to read at all (413: nothing was
                # read and nothing changes; the custodian must learn the bound, not that the form expired).
                if exc.status_code != 413:
                    console.sessions.check_csrf(session, received.fields)
                return page(request, session, exc.status_code, values=_kept(received.fields), error=str(exc.detail))
            console.sessions.check_csrf(session, received.fields)
            fields = received.fields
            try:
                name = fields.get("name", "").strip()
                checked = _checked(fields, exists=bool(name) and _exists(registry, name))
                result = await run_in_threadpool(_ingest, ingestor, received, checked, session, scratch)
            except UploadRefusedError as exc:
                return page(request, session, exc.status, values=_kept(fields), error=exc.reason)
            except FileTooLargeError as exc:
                return page(request, session, 413, values=_kept(fields), error=str(exc))
            except FileInvalidError as exc:
                return page(request, session, 422, values=_kept(fields), error=str(exc))
            except RegistryError as exc:
                status = (
                    404 if isinstance(exc, NotFoundError) else 403 if isinstance(exc, PermissionDeniedError) else 409
                )
                return page(request, session, status, values=_kept(fields), error=str(exc))
        return console.flash(
            session,
            f"/custodian/datasets/{checked['name']}/profile",
            "dataset_ingested",
            name=checked["name"],
            version=str(result.version),
            rows=str(result.rows),
        )


def _exists(registry: Any, name: str) -> bool:
    try:
        registry.catalog.get(name)
    except (NotFoundError, RegistryError):
        return False
    return True


def _ingest(ingestor: Any, received: Upload, checked: dict[str, str], session: Session, scratch: Scratch) -> Any:
    fields = received.fields
    label = "".join(c if invisible_character(c) is None else "_" for c in received.filename or "upload")
    return ingestor.ingest(
        scratch.read("upload"),
        name=checked["name"],
        provider=fields["provider"],
        provider_code=fields.get("provider_code", "").strip() or None,
        level=checked["level"] or None,
        encoding=checked["encoding"],
        title=fields.get("title", "").strip() or None,
        industry=fields.get("industry", ""),
        by=session.actor,
        source_name=label.rsplit("/", 1)[-1][:200] or "upload",
        scratch=scratch,
    )


def _kept(fields: dict[str, str]) -> dict[str, str]:
    return {key: fields[key] for key in KEPT if key in fields}
