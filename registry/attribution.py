"""The attribution a product carries (双鸭山市公共数据管理暂行办法 第四十一条): its data's source and date.

第四十一条: 开发的数据产品和服务应当注明数据的来源和获取日期. The block (providers' names and codes,
the creation dates of the versions used) is stored with the product at registration and embedded in
every delivered artifact by :func:`stamp_artifact`, so it travels with the data: in Parquet schema
metadata, SVG ``<metadata>``, PNG ``iTXt``, or a sidecar file for formats with no such place.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from core import RegistryError
from registry.models import ResourceRow, VersionRow

ATTRIBUTION_KEY = b"keyong.attribution"  # Parquet schema-metadata key of the attribution block
SIDECAR_SUFFIX = ".attribution.json"  # beside any other file: <file>.attribution.json
ATTRIBUTION_RULE = "双鸭山市公共数据管理暂行办法 第四十一条: 开发的数据产品和服务应当注明数据的来源和获取日期"


def build_attribution(sources: list[tuple[ResourceRow, VersionRow]]) -> dict[str, Any]:
    """The 数据来源 (providers' names and codes) and 获取日期 (creation dates of the versions used).

    ``acquisition_date`` is the latest of the versions' dates (the product reflects data as
    acquired up to that day); each source also carries its own date.
    """
    entries: list[dict[str, Any]] = [
        {
            "dataset": resource.name,
            "title": resource.title,
            "provider_name": resource.provider_name,
            "provider_code": resource.provider_code,
            "version": version.version,
            "acquisition_date": version.created_at.date().isoformat(),
        }
        for resource, version in sources
    ]
    providers: list[str] = []
    for entry in entries:
        label = f"{entry['provider_name']}（{entry['provider_code']}）"
        if label not in providers:
            providers.append(label)
    dates = sorted({entry["acquisition_date"] for entry in entries})
    return {
        "data_source": providers,
        "acquisition_date": dates[-1] if dates else "",
        "sources": entries,
        "statement": f"数据来源：{'、'.join(providers)}；获取日期：{'、'.join(dates)}",
        "rule": ATTRIBUTION_RULE,
    }


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in (".parquet", ".pq"):
        return True
    with path.open("rb") as handle:
        return handle.read(4) == b"PAR1"


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def stamp_artifact(path: Path, attribution: dict[str, Any]) -> None:
    """Embed ``attribution`` in the artifact so the source and date travel with the data (第四十一条).

    Parquet files carry it in their schema metadata under ``keyong.attribution`` (existing
    metadata kept; the file is rewritten atomically); SVG charts in a ``<metadata>`` element and PNG
    images in an ``iTXt`` chunk, both under the same key, where image viewers ignore it. Any other file
    (CSV, JSON, models…) gets a sidecar ``<file>.attribution.json``, since those formats have no place
    for it that every reader preserves.
    """
    path = Path(path)
    if not path.is_file():
        raise RegistryError(f"cannot stamp {path}: no such file")
    encoded = json.dumps(attribution, ensure_ascii=False, sort_keys=True)
    embedded = _embed_in_image(path, encoded)
    if embedded is not None:
        _replace_atomically(path, embedded)
        return
    if not _is_parquet(path):
        sidecar_path(path).write_text(encoded + "\n", encoding="utf-8")
        return
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    metadata = dict(table.schema.metadata or {})
    metadata[ATTRIBUTION_KEY] = encoded.encode("utf-8")
    stamped = table.replace_schema_metadata(metadata)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".stamping", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(stamped, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SVG_OPEN = re.compile(rb"<svg\b[^>]*>", re.IGNORECASE)
_SVG_ATTRIBUTION = re.compile(rb'<metadata id="keyong-attribution"><!\[CDATA\[(.*?)\]\]></metadata>', re.DOTALL)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    import zlib

    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def _embed_in_image(path: Path, encoded: str) -> bytes | None:
    """The SVG or PNG at ``path`` with the attribution embedded; ``None`` for other files."""
    raw = path.read_bytes()
    if raw.startswith(_PNG_SIGNATURE) and raw.endswith(_png_chunk(b"IEND", b"")):
        # iTXt: keyword, NUL, no compression, method 0, empty language tag and translated keyword, UTF-8 text.
        body = ATTRIBUTION_KEY + b"\x00\x00\x00\x00\x00" + encoded.encode("utf-8")
        iend = len(raw) - 12
        return raw[:iend] + _png_chunk(b"iTXt", body) + raw[iend:]
    opening = _SVG_OPEN.search(raw) if path.suffix.lower() == ".svg" else None
    if opening is not None and b"]]>" not in encoded.encode("utf-8"):
        element = b'<metadata id="keyong-attribution"><![CDATA[' + encoded.encode("utf-8") + b"]]></metadata>"
        return raw[: opening.end()] + element + raw[opening.end() :]
    return None


def _replace_atomically(path: Path, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".stamping", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _image_attribution(path: Path) -> dict[str, Any] | None:
    raw = path.read_bytes()
    if raw.startswith(_PNG_SIGNATURE):
        at, prefix = 8, ATTRIBUTION_KEY + b"\x00\x00\x00\x00\x00"
        while at + 8 <= len(raw):
            length = int.from_bytes(raw[at : at + 4], "big")
            kind, body = raw[at + 4 : at + 8], raw[at + 8 : at + 8 + length]
            if kind == b"iTXt" and body.startswith(prefix):
                found: dict[str, Any] = json.loads(body[len(prefix) :].decode("utf-8"))
                return found
            at += 12 + length
        return None
    match = _SVG_ATTRIBUTION.search(raw) if path.suffix.lower() == ".svg" else None
    return json.loads(match.group(1).decode("utf-8")) if match else None


def read_attribution(path: Path) -> dict[str, Any] | None:
    """The attribution a stamped artifact carries (Parquet or image metadata, or sidecar), or ``None``."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() in (".svg", ".png"):
        embedded = _image_attribution(path)
        if embedded is not None:
            return embedded
    if path.is_file() and _is_parquet(path):
        import pyarrow.parquet as pq

        metadata = pq.read_schema(path).metadata or {}
        raw = metadata.get(ATTRIBUTION_KEY)
        return json.loads(raw.decode("utf-8")) if raw is not None else None
    sidecar = sidecar_path(path)
    if sidecar.is_file():
        loaded: dict[str, Any] = json.loads(sidecar.read_text(encoding="utf-8"))
        return loaded
    return None


__all__ = [
    "ATTRIBUTION_KEY",
    "ATTRIBUTION_RULE",
    "SIDECAR_SUFFIX",
    "build_attribution",
    "read_attribution",
    "sidecar_path",
    "stamp_artifact",
]
