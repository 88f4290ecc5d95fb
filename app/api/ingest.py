"""``POST /datasets/{name}/ingest``: a custodian uploads a raw file (multipart), as ``keyong dataset ingest``.

Only the custodian ingests (DESIGN.md, Roles): agencies, operators and regulators get 403.

The body is bounded at the edge (issue 17; the bounds are :class:`registry.IngestLimits`, quoted in
each refusal): a declared ``Content-Length`` over the upload bound is refused with 413 before a byte
of the body is read (Starlette would otherwise spool the whole multipart body to the system temp
directory before the route runs), and the body is counted while it streams, so one larger than
declared or than the bound is refused with 413 as soon as it crosses. The multipart stream is parsed
here, not by Starlette: the file part goes straight into a scratch file sealed under a key that lives
only in this process (:class:`registry.scratch.Scratch`), so the raw upload is never written in clear,
and a ``kill -9`` leaves only ciphertext, swept at the next start. Refusals of the file: 409 (the
existing malformed-file family), 422 (a shape Keyong does not ingest: a DTD, broken XML, nested or
binary columns, too many columns, controls in headers), 413 (too large, declared, received or inflated).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from app.api.limits import Name
from app.api.schemas import IngestOut
from core import actor_of, invisible_character
from registry import FileInvalidError, FileTooLargeError, IngestLimits, Registry, Scratch

ENVELOPE = 64 * 1024  # multipart boundaries, part headers and the text fields, beyond the file itself
FIELDS = ("provider", "provider_code", "level", "encoding", "title", "industry")
UPLOAD_FIELD = "file"
_TEXT = {"type": "string", "maxLength": 4096}
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [UPLOAD_FIELD, "provider"],
                    "properties": {
                        UPLOAD_FIELD: {
                            "type": "string",
                            "format": "binary",
                            "description": "CSV (UTF-8 or GB18030), Parquet or XLSX.",
                        },
                        "provider": {**_TEXT, "description": "提供方名称"},
                        "provider_code": {**_TEXT, "description": "提供方代码 (统一社会信用代码); new datasets"},
                        "level": {**_TEXT, "description": "L1..L4 for a new dataset"},
                        "encoding": {**_TEXT, "description": "auto, utf-8 or gb18030", "default": "auto"},
                        "title": {**_TEXT, "description": "数据资源名称"},
                        "industry": {**_TEXT, "description": "行业分类"},
                    },
                },
                "example": {
                    UPLOAD_FIELD: "traffic.csv",
                    "provider": "市交通运输局",
                    "provider_code": "91230500MA0000002G",
                    "level": "L2",
                    "encoding": "auto",
                    "title": "交通流量",
                    "industry": "交通出行",
                },
            }
        },
    }
}


def _too_large(what: str, limits: IngestLimits) -> HTTPException:
    return HTTPException(
        413,
        detail=f"the upload {what} exceeds the bound of {limits.max_upload_bytes:,} bytes: ingest larger files with "
        "`keyong dataset ingest` on the host",
    )


def _invalid(message: str) -> HTTPException:
    return HTTPException(422, detail=message)


@dataclass
class _Upload:
    """The multipart body as it streams in: text fields in memory, the file into a sealed scratch file."""

    scratch: Scratch
    limits: IngestLimits
    extra: tuple[str, ...] = ()  # text fields a caller adds (the console's CSRF token, name, new-version flag)
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    file: Any = None  # the sealed scratch writer of the file part
    _headers: dict[bytes, bytes] = field(default_factory=dict)
    _header: tuple[bytearray, bytearray] = field(default_factory=lambda: (bytearray(), bytearray()))
    _part: str | None = None
    _text: bytearray = field(default_factory=bytearray)

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda data, start, end: self._header[0].extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._header[1].extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self._headers, self._part, self._text = {}, None, bytearray()

    def _header_end(self) -> None:
        self._headers[bytes(self._header[0]).lower()] = bytes(self._header[1])
        self._header[0].clear()
        self._header[1].clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        part = options.get(b"name", b"").decode("utf-8", "replace")
        if part == UPLOAD_FIELD:
            if self.file is not None:
                raise _invalid("the upload carries more than one file part: send one file per request")
            self.filename = options.get(b"filename", b"upload").decode("utf-8", "replace")
            self.file = self.scratch.writer("upload")
        elif part not in FIELDS + self.extra:
            known = ", ".join(FIELDS + self.extra)
            raise _invalid(f"unknown form field {part[:64]!r}: the fields are {UPLOAD_FIELD}, {known}")
        elif part in self.fields:
            raise _invalid(f"form field {part!r} is given twice")
        self._part = part

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._part == UPLOAD_FIELD and self.file is not None:
            self.file.write(data[start:end])
            if self.file.size > self.limits.max_upload_bytes:
                raise _too_large("file", self.limits)
            return
        self._text.extend(data[start:end])
        if len(self._text) > 4 * self.limits.max_form_field_chars:
            raise _invalid(f"form field {self._part!r} exceeds {self.limits.max_form_field_chars:,} characters")

    def _end(self) -> None:
        if self._part == UPLOAD_FIELD and self.file is not None:
            self.file.close()
        elif self._part is not None:
            try:
                text = bytes(self._text).decode("utf-8")
            except UnicodeDecodeError:
                raise _invalid(f"form field {self._part!r} is not valid UTF-8") from None
            if len(text) > self.limits.max_form_field_chars:
                raise _invalid(f"form field {self._part!r} exceeds {self.limits.max_form_field_chars:,} characters")
            found = invisible_character(text)
            if found is not None:  # a NUL was a 500 in PostgreSQL; a control or bidi character a look-alike name
                position, code, kind = found
                raise _invalid(f"form field {self._part!r} holds the {kind} character {code} at character {position}")
            self.fields[self._part] = text


def _declared(request: Request, limits: IngestLimits) -> int | None:
    """The declared body size, refused with 413 over the bound before any of the body is read."""
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    if not declared.isdigit() or len(declared) > 19:
        raise HTTPException(400, detail="the Content-Length header is not a byte count")
    size = int(declared)
    if size > limits.max_upload_bytes + ENVELOPE:
        raise _too_large(f"declares {size:,} bytes (Content-Length), which", limits)
    return size


def _feed(parser: MultipartParser, chunk: bytes | None) -> None:
    """Feed the parser (``None``: the body is complete); its own errors mean a malformed body (422)."""
    try:
        if chunk is None:
            parser.finalize()
        else:
            parser.write(chunk)
    except HTTPException:
        raise
    except Exception as exc:  # python-multipart's errors: bad boundaries, too many or too long part headers
        raise _invalid(f"the multipart body is malformed ({type(exc).__name__})") from None


async def _receive(request: Request, upload: _Upload) -> None:
    """Stream the multipart body into ``upload``, counting what arrives against the bounds."""
    limits = upload.limits
    declared = _declared(request, limits)
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise HTTPException(415, detail="send the file as multipart/form-data (a `file` part and the form fields)")
    parser = MultipartParser(boundary, upload.callbacks())  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if declared is not None and received > declared:
                raise HTTPException(400, detail=f"the body is longer than its declared Content-Length of {declared:,}")
            if received > limits.max_upload_bytes + ENVELOPE:
                raise _too_large(f"body ({received:,} bytes received so far)", limits)
            _feed(parser, chunk)
    except ClientDisconnect:
        raise HTTPException(400, detail="the client disconnected before the upload was complete") from None
    _feed(parser, None)
    if upload.file is None:
        raise _invalid(f"the upload has no `{UPLOAD_FIELD}` part: attach the raw file")
    if not upload.fields.get("provider", "").strip():
        raise _invalid("the form field `provider` (提供方名称) is required")


def build_router(registry: Registry, require: Callable[..., Callable[..., Any]]) -> APIRouter:
    """Routes; ``require(*roles)`` gives a dependency returning the acting principal (name, role)."""
    router = APIRouter(tags=["datasets"])
    custodian = require("custodian")

    @router.post("/datasets/{name}/ingest", openapi_extra=UPLOAD_BODY, response_model=IngestOut)
    async def ingest(name: Name, request: Request, principal: Annotated[Any, Depends(custodian)]) -> dict[str, Any]:
        """Ingest an uploaded raw file as a new raw version of ``name`` (publishing the entry if new)."""
        ingestor = registry.ingestor
        registry.config.home.mkdir(parents=True, exist_ok=True)
        with Scratch(registry.config.home) as scratch:
            upload = _Upload(scratch, ingestor.limits)
            await _receive(request, upload)
            fields = upload.fields
            # The client's file name is only a label: invisible characters become "_" (it is printed and stored).
            label = "".join(c if invisible_character(c) is None else "_" for c in upload.filename or "upload")
            original = Path(label).name[:200] or "upload"

            def run() -> dict[str, Any]:
                result = ingestor.ingest(
                    scratch.read("upload"),
                    name=name,
                    provider=fields["provider"],
                    provider_code=fields.get("provider_code") or None,
                    level=fields.get("level") or None,
                    encoding=fields.get("encoding") or "auto",
                    title=fields.get("title"),
                    industry=fields.get("industry", ""),
                    by=actor_of(principal),
                    source_name=original,
                    scratch=scratch,
                )
                return result.as_json()

            try:
                return await run_in_threadpool(run)
            except FileTooLargeError as exc:
                raise HTTPException(413, detail=str(exc)) from None
            except FileInvalidError as exc:
                raise HTTPException(422, detail=str(exc)) from None

    return router


#: The streaming upload and its reader, shared with the console's upload form (issue 18): one core, one
#: set of bounds and refusals, whichever door the file comes through.
Upload = _Upload
receive_upload = _receive
