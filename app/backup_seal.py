"""Every file member of a backup sealed as a stream: AES-256-GCM in 1 MiB chunks (STREAM construction).

A backup leaves the host; what the home holds in clear (desensitized copies, job outputs the guard
blocked, the database's catalog and ledger payloads) must not be readable from the archive without
the passphrase (双鸭山 第六十条 加密认证). Each member gets a random 8-byte nonce prefix; chunk ``i``
is sealed with nonce ``prefix || i`` and associated data naming the member, ``i`` and whether it is the
last chunk, so chunks cannot be reordered, moved to another member, or cut off at a chunk boundary.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import IO

SEAL_CHUNK = 1024 * 1024
TAG = 16
PREFIX = 8


class SealError(Exception):
    """A sealed member does not open: altered, truncated, or another key."""


def sealed_size(plain: int) -> int:
    """Bytes the sealed stream of ``plain`` bytes takes (an empty file still has one, final, chunk)."""
    return PREFIX + plain + TAG * max(1, -(-plain // SEAL_CHUNK))


def _aad(member: str, index: int, final: bool) -> bytes:
    return f"{member}\x00{index}\x00{int(final)}".encode()


class SealingReader:
    """Reads exactly ``size`` plaintext bytes from ``raw`` and yields their sealed stream through ``read``."""

    def __init__(self, raw: IO[bytes], size: int, member: str, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # only a backup pays for it (issue 21)

        self.raw, self.left, self.member = raw, size, member
        self.aead = AESGCM(key)
        self.prefix = secrets.token_bytes(PREFIX)
        self.buffer = bytearray(self.prefix)
        self.index, self.done, self.offset = 0, False, 0
        self.plain = hashlib.sha256()

    def _next_chunk(self) -> None:
        want = min(SEAL_CHUNK, self.left)
        chunk = self.raw.read(want)
        if len(chunk) != want:
            raise OSError(f"{self.member} shrank while it was read")
        self.left -= want
        final = self.left == 0
        self.plain.update(chunk)
        nonce = self.prefix + self.index.to_bytes(4, "big")
        self.buffer += self.aead.encrypt(nonce, chunk, _aad(self.member, self.index, final))
        self.index += 1
        self.done = final

    def read(self, size: int = -1) -> bytes:
        while not self.done and (size < 0 or len(self.buffer) - self.offset < size):
            if self.offset:  # drop what was read once per chunk, not once per read (tarfile reads 16 KiB)
                del self.buffer[: self.offset]
                self.offset = 0
            self._next_chunk()
        end = len(self.buffer) if size < 0 else min(len(self.buffer), self.offset + size)
        out = bytes(self.buffer[self.offset : end])
        self.offset = end
        return out


def unseal(source: IO[bytes], member: str, key: bytes, sink: IO[bytes]) -> tuple[str, int]:
    """Open ``member``'s sealed stream into ``sink``; the plaintext's SHA-256 and size."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead, plain, total = AESGCM(key), hashlib.sha256(), 0
    prefix = source.read(PREFIX)
    block = source.read(SEAL_CHUNK + TAG)
    index = 0
    while True:
        following = source.read(SEAL_CHUNK + TAG)
        final = not following
        try:
            chunk = aead.decrypt(prefix + index.to_bytes(4, "big"), block, _aad(member, index, final))
        except (InvalidTag, ValueError):
            raise SealError(f"archive member {member!r} does not decrypt: altered or truncated") from None
        plain.update(chunk)
        total += len(chunk)
        sink.write(chunk)
        if final:
            return plain.hexdigest(), total
        block, index = following, index + 1
