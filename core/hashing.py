"""Digests of files and free texts, shared by every package that records what it wrote or read."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import IO

__all__ = ["file_sha256", "stream_sha256", "text_sha256"]

BLOCK = 1 << 20


def stream_sha256(stream: IO[bytes], sink: IO[bytes] | None = None) -> tuple[str, int]:
    """SHA-256 (hex) and size of what ``stream`` yields to its end, in 1 MiB blocks, each also written to
    ``sink`` when one is given (a put that hashes what it writes): objects and files can be large."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(BLOCK):
        digest.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
    return digest.hexdigest(), size


def file_sha256(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in 1 MiB blocks: raw files, copies and artifacts can be large."""
    with open(path, "rb") as stream:
        return stream_sha256(stream)


def text_sha256(text: str) -> str:
    """What a ledger payload carries of a free text (a reason, an objection): its SHA-256, never the text.

    Free texts may hold personal data the screen cannot recognise; the table row keeps the text,
    the ledger its hash, so the record still proves what was written.
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
