"""Strict readers, one per output format an operator may write (a registry: suffix -> reader).

Why a closed list: the guard can only vouch for bytes a reader accounts for, so a format without a
reader is refused with a finding that names the formats to write instead (fail closed). Each reader
turns a file into :class:`sandbox.guard.content.Content`: tables, text, findings and the canonical
bytes the operator will receive.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sandbox.guard.content import Content
from sandbox.guard.readers import csv, json, parquet, png, svg, text
from sandbox.guard.readers.strict import hard

Reader = Callable[[Path, str], Content]

READERS: dict[str, Reader] = {
    ".csv": csv.read,
    ".parquet": parquet.read,
    ".json": json.read,
    ".txt": text.read,
    ".md": text.read,
    ".svg": svg.read,
    ".png": png.read,
}
TABULAR = frozenset({".csv", ".parquet", ".json"})
WRITE_INSTEAD = "write tables as CSV, Parquet or JSON, text as TXT or MD, images as PNG or SVG"


def reader_for(name: str) -> Reader | None:
    return READERS.get(Path(name).suffix.lower())


def read_output(path: Path, name: str) -> Content:
    """The strict reading of one output, or a content holding only the finding that refuses it."""
    reader = reader_for(name)
    if reader is None:
        suffix = Path(name).suffix.lower() or "(none)"
        content = Content(name, "unknown")
        content.findings.append(hard("manifest.type", name, "file", f"file type {suffix} not allowed: {WRITE_INSTEAD}"))
        return content
    return reader(path, name)


__all__ = ["READERS", "TABULAR", "WRITE_INSTEAD", "Reader", "read_output", "reader_for"]
