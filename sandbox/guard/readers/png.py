"""Strict PNG: known chunks with valid checksums, nothing after IEND; re-encoded from its pixels.

Why review at best: pixels cannot be audited — a picture can draw a number as well as a bar — so a
person looks at every image drawn inside the sandbox. What the reader makes sure of is that the
person sees everything the file holds: text chunks are probed (and never leave), unknown or
private chunks, animation and bytes after the image end are refused, and the operator receives
the platform's re-encoding of the decoded pixels, not the job's bytes.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path

from PIL import Image

from sandbox.guard.content import Content
from sandbox.guard.readers.strict import hard

FORMAT = "PNG"
SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PIXELS = 40_000_000
IMAGE_CHUNKS = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"pHYs",
                b"bKGD", b"tIME", b"hIST"}  # fmt: skip
TEXT_CHUNKS = {b"tEXt", b"zTXt", b"iTXt"}


def _chunk_text(kind: bytes, body: bytes) -> str:
    """The readable payload of a text chunk (keyword and text; compressed text inflated, bounded)."""
    keyword, _, rest = body.partition(b"\x00")
    if kind == b"zTXt":
        rest = zlib.decompressobj().decompress(rest[1:], 1 << 20)
    elif kind == b"iTXt":
        compressed, rest = rest[:1], rest[2:]
        _language, _, rest = rest.partition(b"\x00")
        _translated, _, rest = rest.partition(b"\x00")
        if compressed == b"\x01":
            rest = zlib.decompressobj().decompress(rest, 1 << 20)
    return (keyword + b"\n" + rest).decode("utf-8", errors="replace")


def _chunks(raw: bytes, content: Content, name: str) -> bool:
    """Walk the chunks; False when the file must be refused."""
    at = len(SIGNATURE)
    texts: list[str] = []
    while at + 12 <= len(raw):
        length = int.from_bytes(raw[at : at + 4], "big")
        kind = raw[at + 4 : at + 8]
        body = raw[at + 8 : at + 8 + length]
        crc = raw[at + 8 + length : at + 12 + length]
        if len(body) != length or len(crc) != 4 or zlib.crc32(kind + body).to_bytes(4, "big") != crc:
            content.findings.append(hard("png.malformed", name, "chunks", "a chunk with a bad length or checksum"))
            return False
        at += 12 + length
        if kind in TEXT_CHUNKS:
            try:
                texts.append(_chunk_text(kind, body))
            except zlib.error:
                content.findings.append(hard("png.malformed", name, "chunks", "a text chunk that cannot be read"))
                return False
        elif kind not in IMAGE_CHUNKS:
            content.findings.append(
                hard("png.chunk", name, "chunks", "a chunk that is not part of the image (private or animation data)")
            )
            return False
        if kind == b"IEND":
            break
    if at != len(raw):
        content.findings.append(hard("png.trailing", name, "file", "bytes after the image end"))
        return False
    content.add_text("text chunks", [line for t in texts for line in t.splitlines() if line.strip()])
    return True


def read(path: Path, name: str) -> Content:
    content = Content(name, FORMAT, image=True)
    raw = path.read_bytes()
    if not raw.startswith(SIGNATURE) or raw[12:16] != b"IHDR":
        content.findings.append(hard("png.malformed", name, "file", "not a PNG image"))
        return content
    width, height = int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")
    if width * height > MAX_PIXELS:
        content.findings.append(hard("png.size", name, "file", f"more than {MAX_PIXELS} pixels"))
        return content
    if not _chunks(raw, content, name):
        return content
    try:
        with Image.open(io.BytesIO(raw)) as image:
            image.load()
            out = io.BytesIO()
            clean = Image.frombytes(image.mode, image.size, image.tobytes())
            if image.mode == "P":
                clean.putpalette(image.getpalette() or [])
            clean.save(out, format="PNG")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        content.findings.append(hard("png.malformed", name, "file", "the image data cannot be decoded"))
        return content
    content.canonical = out.getvalue()
    return content


__all__ = ["FORMAT", "read"]
