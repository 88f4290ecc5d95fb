"""``POST /datasets/{name}/ingest``: a custodian uploads a raw file (multipart), as ``keyong dataset ingest``.

Only the custodian ingests (DESIGN.md, Roles): agencies, operators and regulators get 403. The
upload is copied into a private temporary directory inside the instance home (owner-only, never the
shared system temp), bounded by :data:`MAX_UPLOAD_BYTES`, ingested, and removed; refusals of the
file come back as 409 with the reason, an oversized upload as 413.
"""

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile

from app.api.limits import Name
from core import actor_of
from registry import FORMATS, Level, Registry

MAX_UPLOAD_BYTES = 512 * 1024 * 1024
CHUNK = 1024 * 1024


def _too_large() -> HTTPException:
    return HTTPException(
        413,
        detail=f"the upload exceeds {MAX_UPLOAD_BYTES:,} bytes: ingest larger files with `keyong dataset ingest` "
        "on the host",
    )


def build_router(registry: Registry, require: Callable[..., Callable[..., Any]]) -> APIRouter:
    """Routes; ``require(*roles)`` gives a dependency returning the acting principal (name, role)."""
    router = APIRouter(tags=["datasets"])
    custodian = require("custodian")

    @router.post("/datasets/{name}/ingest")
    def ingest(
        name: Name,
        request: Request,
        principal: Annotated[Any, Depends(custodian)],
        file: Annotated[UploadFile, File(description="CSV (UTF-8 or GB18030), Parquet or XLSX.")],
        provider: Annotated[str, Form(min_length=1, max_length=200, description="提供方名称")],
        provider_code: Annotated[
            str | None, Form(max_length=64, description="提供方代码 (统一社会信用代码); new datasets")
        ] = None,
        level: Annotated[Level | None, Form(description="L1..L4 for a new dataset")] = None,
        encoding: Annotated[Literal["auto", "utf-8", "gb18030"], Form(description="auto, utf-8 or gb18030")] = "auto",
        title: Annotated[str | None, Form(max_length=200, description="数据资源名称")] = None,
        industry: Annotated[str, Form(max_length=64, description="行业分类")] = "",
    ) -> dict[str, Any]:
        """Ingest an uploaded raw file as a new raw version of ``name`` (publishing the entry if new)."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + 64 * 1024:
            raise _too_large()
        original = Path(file.filename or "upload").name[:200] or "upload"
        suffix = Path(original).suffix.lower()
        registry.config.home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".ingest-", dir=registry.config.home) as scratch:
            target = Path(scratch) / f"upload{suffix if suffix in FORMATS or suffix == '.xls' else ''}"
            size = 0
            with open(target, "wb") as out:
                while chunk := file.file.read(CHUNK):
                    size += len(chunk)
                    if size > MAX_UPLOAD_BYTES:
                        raise _too_large()
                    out.write(chunk)
            result = registry.ingestor.ingest(
                target,
                name=name,
                provider=provider,
                provider_code=provider_code or None,
                level=level or None,
                encoding=encoding,
                title=title,
                industry=industry,
                by=actor_of(principal),
                source_name=original,
            )
        return result.as_json()

    return router
