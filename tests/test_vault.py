"""The raw-data vault: raw copies are encrypted at rest and any alteration is detected.

黑龙江省政务数据管理暂行办法 第三十八条 (security management, encryption and access control of
government data) and 双鸭山市公共数据管理暂行办法 第三十五条 (原始数据不出域): the raw copy lies only
in the vault, encrypted with AES-256-GCM, readable only with the instance's vault key.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import stat
import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from registry.vault import HEADER_BYTES, PREFIX_BYTES, Vault, VaultError

KEY = bytes(range(32))


def frames(raw: bytes) -> list[tuple[int, int]]:
    """(start, end) byte ranges of each frame of a vault file."""
    out = []
    offset = HEADER_BYTES
    while offset < len(raw):
        (length,) = struct.unpack(">I", raw[offset : offset + 4])
        end = offset + PREFIX_BYTES + length
        out.append((offset, end))
        offset = end
    return out


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return Vault(tmp_path, KEY, frame_size=1000)


def test_roundtrip_of_bytes_paths_and_streams(vault: Vault, tmp_path: Path) -> None:
    """What goes in comes out, whatever the source, with the plaintext's SHA-256 and size."""
    data = secrets.token_bytes(4321)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    for i, given in enumerate([data, source, io.BytesIO(data)], start=1):
        stored = vault.put("residents", i, given)
        assert stored.path.startswith(f"vault/residents/v{i}-") and stored.path.endswith(".parquet.kyv")
        assert stored.sha256 == hashlib.sha256(data).hexdigest()
        assert stored.bytes == len(data)
        assert vault.open(stored.path) == data


def test_the_file_holds_no_plaintext(vault: Vault) -> None:
    """Encrypted at rest: a recognisable plaintext does not appear in the stored bytes."""
    marker = "230502199001011234 张三 13912345678".encode() * 50
    stored = vault.put("residents", 1, marker)
    raw = (vault.root / stored.path).read_bytes()
    assert b"230502199001011234" not in raw
    assert "张三".encode() not in raw


def test_empty_and_exact_frame_multiples_roundtrip(vault: Vault) -> None:
    for size in (0, 1, 999, 1000, 1001, 3000):
        data = secrets.token_bytes(size)
        assert vault.open(vault.put("edge", 1, data).path) == data


def test_parquet_table_roundtrip(vault: Vault) -> None:
    table = pa.table({"公民身份号码": ["11010519491231002X"], "姓名": ["张三"]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    stored = vault.put("people", 1, buffer.getvalue())
    assert vault.read_table(stored.path).equals(table)


def test_vault_files_are_owner_only(vault: Vault) -> None:
    stored = vault.put("residents", 1, b"x" * 10)
    file = vault.root / stored.path
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(file.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(vault.directory.stat().st_mode) == 0o700
    assert not [p for p in file.parent.iterdir() if p.name.startswith(".")], "no temporary file left"


def test_flipping_any_single_byte_is_detected(vault: Vault) -> None:
    """One altered byte anywhere (header, length, flag, nonce, ciphertext, tag) is refused."""
    stored = vault.put("residents", 1, secrets.token_bytes(2500))
    file = vault.root / stored.path
    original = file.read_bytes()
    positions = sorted({0, 8, 9, 20, HEADER_BYTES - 1, HEADER_BYTES + 2, HEADER_BYTES + 4, HEADER_BYTES + 10}
                       | {len(original) // 2, len(original) - 1})  # fmt: skip
    for position in positions:
        altered = bytearray(original)
        altered[position] ^= 0x01
        file.write_bytes(bytes(altered))
        with pytest.raises(VaultError):
            vault.open(stored.path)
    file.write_bytes(original)
    assert len(vault.open(stored.path)) == 2500


def test_ciphertext_tamper_names_the_frame(vault: Vault) -> None:
    stored = vault.put("residents", 1, secrets.token_bytes(2500))
    file = vault.root / stored.path
    raw = bytearray(file.read_bytes())
    start, _ = frames(bytes(raw))[1]
    raw[start + PREFIX_BYTES + 3] ^= 0xFF
    file.write_bytes(bytes(raw))
    with pytest.raises(VaultError, match="frame 1 failed authentication"):
        vault.open(stored.path)


def test_truncated_files_are_refused(vault: Vault) -> None:
    """Dropping the final frame, or cutting inside a frame, is detected (the final flag is authenticated)."""
    stored = vault.put("residents", 1, secrets.token_bytes(2500))
    file = vault.root / stored.path
    raw = file.read_bytes()
    spans = frames(raw)
    assert len(spans) == 3
    for cut in (spans[-1][0], spans[-1][0] + 5, len(raw) - 1, HEADER_BYTES, HEADER_BYTES - 3):
        file.write_bytes(raw[:cut])
        with pytest.raises(VaultError, match=r"truncated|header"):
            vault.open(stored.path)


def test_reordered_frames_are_refused(vault: Vault) -> None:
    stored = vault.put("residents", 1, secrets.token_bytes(2000) + secrets.token_bytes(1000))
    file = vault.root / stored.path
    raw = file.read_bytes()
    (a0, a1), (b0, b1), (c0, c1) = frames(raw)
    file.write_bytes(raw[:a0] + raw[b0:b1] + raw[a0:a1] + raw[c0:c1])
    with pytest.raises(VaultError, match="frame 0 failed authentication"):
        vault.open(stored.path)


def test_frames_from_another_file_are_refused(vault: Vault) -> None:
    """Two files under the same key: swapping a frame in from the other one fails (file id in the AAD)."""
    one = vault.put("residents", 1, secrets.token_bytes(2500))
    two = vault.put("residents", 2, secrets.token_bytes(2500))
    raw_one = (vault.root / one.path).read_bytes()
    raw_two = (vault.root / two.path).read_bytes()
    (s1, e1) = frames(raw_one)[1]
    (s2, e2) = frames(raw_two)[1]
    (vault.root / one.path).write_bytes(raw_one[:s1] + raw_two[s2:e2] + raw_one[e1:])
    with pytest.raises(VaultError, match="frame 1 failed authentication"):
        vault.open(one.path)


def test_appended_bytes_are_refused(vault: Vault) -> None:
    stored = vault.put("residents", 1, b"abc")
    file = vault.root / stored.path
    file.write_bytes(file.read_bytes() + b"\x00")
    with pytest.raises(VaultError, match="after its final frame"):
        vault.open(stored.path)


def test_wrong_key_is_named_as_such(vault: Vault, tmp_path: Path) -> None:
    stored = vault.put("residents", 1, b"secret rows")
    other = Vault(tmp_path, secrets.token_bytes(32))
    with pytest.raises(VaultError, match="wrong key"):
        other.open(stored.path)


def test_paths_outside_the_vault_are_refused(vault: Vault, tmp_path: Path) -> None:
    (tmp_path / "elsewhere.parquet.kyv").write_bytes(b"x")
    for path in ("../elsewhere.parquet.kyv", "elsewhere.parquet.kyv", "vault/../elsewhere.parquet.kyv", "/etc/passwd"):
        with pytest.raises(VaultError, match="not a vault file path"):
            vault.open(path)
    with pytest.raises(VaultError, match="does not exist"):
        vault.open("vault/residents/v1-missing.parquet.kyv")


def test_bad_names_versions_and_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(VaultError, match="32 bytes"):
        Vault(tmp_path, b"short")
    vault = Vault(tmp_path, KEY)
    for name in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(VaultError, match="cannot name a vault directory"):
            vault.put(name, 1, b"x")
    with pytest.raises(VaultError, match="at least 1"):
        vault.put("ok", 0, b"x")
    assert not vault.directory.exists() or not any(vault.directory.rglob("*.kyv"))


def test_a_failed_write_leaves_nothing(vault: Vault) -> None:
    class Broken(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0

        def read(self, size: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 2:
                raise OSError("disk went away")
            return b"x" * 1000

    with pytest.raises(OSError, match="disk went away"):
        vault.put("residents", 1, Broken())  # type: ignore[arg-type]
    assert [p for p in vault.directory.rglob("*") if p.is_file()] == []
    assert os.listdir(vault.directory / "residents") == []


def test_default_frames_are_four_mebibytes(tmp_path: Path) -> None:
    vault = Vault(tmp_path, KEY)
    data = secrets.token_bytes(4 * 1024 * 1024 + 10)
    stored = vault.put("big", 1, data)
    assert len(frames((vault.root / stored.path).read_bytes())) == 2
    assert vault.open(stored.path) == data
