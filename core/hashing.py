"""Digests of files and free texts, shared by every package that records what it wrote or read."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["file_sha256", "text_sha256"]


def file_sha256(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in 1 MiB blocks: raw files, copies and artifacts can be large."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def text_sha256(text: str) -> str:
    """What a ledger payload carries of a free text (a reason, an objection): its SHA-256, never the text.

    Free texts may hold personal data the screen cannot recognise; the table row keeps the text,
    the ledger its hash, so the record still proves what was written.
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
