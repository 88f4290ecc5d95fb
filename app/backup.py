"""Backup and restore of a home: its database, its files and (sealed) its secrets (SATRE 2.2.06, 3.1.09).

双鸭山市公共数据管理暂行办法 第十八条 asks that public data be stored 统一 and 备份保护; 第六十条 for 数据备份
and 加密认证 against loss, damage and tampering. A backup is one tar (format in :mod:`app.backup_archive`):

- the database as the SQLite online backup API copies it, so it is consistent while a server runs
  (a PostgreSQL-backed home is refused: its database is backed up with the server's own tools);
- every regular file of the home (vault, copies, fingerprints, work, outputs, products, …), read
  after the database snapshot: files are written before the rows that name them, so every row of
  the snapshot finds its file;
- the secrets and the home's marker, only encrypted under the passphrase;
- a manifest (each member's SHA-256 and size, the ledger's head and latest checkpoint at snapshot
  time) authenticated under the passphrase. Making the backup is itself ledgered.

Restore checks everything before it writes anything, writes into a temporary sibling of the new home,
renames it into place, then verifies the restored ledger against the manifest's head.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import sqlite3
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from app.backup_archive import (
    ARCHIVE_FORMAT,
    DATABASE_MEMBER,
    MANIFEST,
    MANIFEST_MAC,
    MAX_MANIFEST_BYTES,
    SECRETS_MEMBER,
    BackupError,
    SealKeys,
    canonical,
    check_passphrase,
    expected_files,
    home_member,
    home_path_of,
    keys_for,
    new_kdf,
    parse_manifest,
    safe_member_name,
)
from app.database import current_revision, make_engine, sqlite_url
from app.instance import MARKER, Instance
from app.keys import SECRETS_DIR
from app.settings import Settings
from ledger import Ledger, VerifyReport
from operators import host_actor

DATABASE_FILE = "keyong.db"
# Not copied as files: the live database (snapshotted instead) and what goes sealed.
NOT_FILES = {DATABASE_FILE, f"{DATABASE_FILE}-wal", f"{DATABASE_FILE}-shm", f"{DATABASE_FILE}-journal", MARKER}
CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BackupResult:
    archive: Path
    manifest_sha256: str
    files: int
    bytes: int
    ledger: dict[str, Any]
    skipped: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "archive": str(self.archive),
            "manifest_sha256": self.manifest_sha256,
            "files": self.files,
            "bytes": self.bytes,
            "ledger": self.ledger,
            "skipped": self.skipped,
        }


@dataclass(frozen=True, slots=True)
class RestoreResult:
    home: Path
    manifest_sha256: str
    files: int
    verify: VerifyReport
    head_matches: bool

    @property
    def ok(self) -> bool:
        return self.verify.ok and self.head_matches

    def as_json(self) -> dict[str, Any]:
        return {
            "home": str(self.home),
            "manifest_sha256": self.manifest_sha256,
            "files": self.files,
            "ok": self.ok,
            "head_matches": self.head_matches,
            "ledger": self.verify.as_json(),
        }


class _Hashing:
    """A reader that hashes what passes through it (tarfile copies exactly the member's size)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.digest, self.count = raw, hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        self.count += len(data)
        return data


# --- create ---------------------------------------------------------------------------------------


def _snapshot_sqlite(instance: Instance, into: Path) -> None:
    """The live database copied page by page by SQLite's online backup API (consistent under writers)."""
    source = sqlite3.connect(f"file:{instance.home / DATABASE_FILE}?mode=ro", uri=True)
    target = sqlite3.connect(into)
    try:
        with target:
            source.backup(target)
    finally:
        target.close()
        source.close()


def _ledger_state(database: Path, instance: Instance) -> dict[str, Any]:
    """Head and latest checkpoint of the ledger as the snapshot holds it, and the schema revision."""
    engine = make_engine(f"sqlite:///{database}")
    try:
        snapshot = Ledger(engine, instance.keys.ledger_key, origin=instance.ledger.origin)
        size, head = snapshot.head()
        checkpoint = snapshot.latest_checkpoint()
        revision = current_revision(engine)
    finally:
        engine.dispose()
    return {
        "size": size,
        "head": head,
        "checkpoint": None
        if checkpoint is None
        else {"tree_size": checkpoint.tree_size, "root": checkpoint.root, "time": checkpoint.time},
        "revision": revision,
    }


def _home_files(home: Path, exclude: Path) -> tuple[list[Path], list[str]]:
    """Regular files of the home to copy, and what was skipped (links, sockets) with why."""
    files: list[Path] = []
    skipped: list[str] = []
    for directory, dirnames, filenames in os.walk(home):
        here = Path(directory)
        dirnames.sort()
        if here == home:
            dirnames[:] = [d for d in dirnames if d != SECRETS_DIR]
        for name in sorted(filenames) + [d for d in dirnames if (here / d).is_symlink()]:
            path = here / name
            relative = path.relative_to(home)
            if (here == home and name in NOT_FILES) or path == exclude:
                continue
            mode = path.lstat().st_mode
            if not stat.S_ISREG(mode):
                skipped.append(f"{relative.as_posix()} (not a regular file)")
                continue
            files.append(relative)
    return files, skipped


def _add_file(archive: tarfile.TarFile, member: str, path: Path, listing: list[dict[str, Any]]) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        _add_stream(archive, member, handle, info.st_size, stat.S_IMODE(info.st_mode), listing)


def _add_stream(
    archive: tarfile.TarFile, member: str, handle: IO[bytes], size: int, mode: int, listing: list[dict[str, Any]]
) -> None:
    tarinfo = tarfile.TarInfo(safe_member_name(member))
    tarinfo.size, tarinfo.mode, tarinfo.mtime = size, 0o600, int(datetime.now(UTC).timestamp())
    reader = _Hashing(handle)
    try:
        archive.addfile(tarinfo, reader)  # tarfile reads through .read only
    except OSError as exc:
        raise BackupError(f"{member} changed while it was copied ({exc}); run the backup again") from None
    listing.append({"path": member, "sha256": reader.digest.hexdigest(), "size": size, "mode": mode & 0o700})


def _add_bytes(archive: tarfile.TarFile, member: str, data: bytes, listing: list[dict[str, Any]]) -> None:
    import io

    _add_stream(archive, member, io.BytesIO(data), len(data), 0o600, listing)


def _sealed_secrets(home: Path) -> dict[str, str]:
    """The secrets directory and the marker, by home-relative name, base64 (sealed before writing)."""
    found = {MARKER: base64.b64encode((home / MARKER).read_bytes()).decode()}
    for path in sorted((home / SECRETS_DIR).rglob("*")):
        if path.is_symlink() or not path.is_file():
            raise BackupError(f"{path} is not a regular file; secrets must be plain files")
        found[path.relative_to(home).as_posix()] = base64.b64encode(path.read_bytes()).decode()
    return found


@contextmanager
def _created_exclusively(out: Path) -> Iterator[Path]:
    """A partial file beside ``out``, renamed onto it only when the block succeeds (never replaced)."""
    if out.exists() or out.is_symlink():
        raise BackupError(f"{out} already exists; nothing was written")
    if not out.parent.is_dir():
        raise BackupError(f"{out.parent} is not a directory")
    partial = out.with_name(f".{out.name}.partial")
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        yield partial
        os.link(partial, out)  # fails if out appeared meanwhile: never overwrite
    finally:
        partial.unlink(missing_ok=True)


def create_backup(instance: Instance, out: Path, passphrase: str | None) -> BackupResult:
    """Write ``out``: the database snapshot, the home's files, sealed secrets, the manifest; ledger it."""
    passphrase = check_passphrase(passphrase)
    out = out.expanduser().absolute()
    if instance.engine.dialect.name != "sqlite":
        raise BackupError(
            f"this home's database is {instance.engine.dialect.name}: back it up with pg_dump; "
            "keyong backup covers SQLite-backed homes"
        )
    if out.is_relative_to(instance.home):
        raise BackupError("the archive may not be written inside the home it backs up")
    instance.ledger.checkpoint()  # so the manifest's root is usually that of the head itself
    kdf = new_kdf()
    keys = SealKeys.derive(passphrase, bytes.fromhex(kdf["salt"]), kdf["n"], kdf["r"], kdf["p"])
    listing: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="keyong-backup-") as scratch, _created_exclusively(out) as partial:
        database = Path(scratch) / DATABASE_FILE
        _snapshot_sqlite(instance, database)
        ledger_state = _ledger_state(database, instance)
        files, skipped = _home_files(instance.home, out)
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive:
            _add_file(archive, DATABASE_MEMBER, database, listing)
            for relative in files:
                _add_file(archive, home_member(relative.as_posix()), instance.home / relative, listing)
            secrets_blob = json.dumps(_sealed_secrets(instance.home)).encode()
            _add_bytes(archive, SECRETS_MEMBER, keys.seal(secrets_blob), listing)
            manifest = canonical(
                {
                    "format": ARCHIVE_FORMAT,
                    "created": datetime.now(UTC).isoformat(),
                    "instance_id": instance.instance_id,
                    "source_home": str(instance.home),
                    "database": {"dialect": "sqlite", "method": "sqlite3 online backup API", "member": DATABASE_MEMBER},
                    "ledger": ledger_state,
                    "kdf": kdf,
                    "files": listing,
                    "skipped": skipped,
                }
            )
            _add_bytes(archive, MANIFEST, manifest, [])
            _add_bytes(archive, MANIFEST_MAC, keys.sign(manifest), [])
    digest = hashlib.sha256(manifest).hexdigest()
    actor, role = host_actor()
    total = sum(int(item["size"]) for item in listing)
    instance.ledger.append(
        actor=actor,
        role=role,
        action="home.backed_up",
        subject=f"instance:{instance.instance_id}",
        payload={
            "manifest_sha256": digest,
            "archive": out.name,
            "files": len(listing),
            "bytes": total,
            "ledger_size": ledger_state["size"],
        },
    )
    return BackupResult(out, digest, len(listing), total, ledger_state, skipped)


# --- restore --------------------------------------------------------------------------------------


def _members(archive: tarfile.TarFile) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
    """Every member, refused unless it is a regular file with a safe name (links, devices, dirs: refused)."""
    seen: set[str] = set()
    try:
        for member in archive:
            name = safe_member_name(member.name)
            if not member.isreg():
                raise BackupError(
                    f"archive member {name!r} is not a regular file (link or special); nothing was written"
                )
            if name in seen:
                raise BackupError(f"archive member {name!r} appears twice; nothing was written")
            seen.add(name)
            handle = archive.extractfile(member)
            if handle is None:
                raise BackupError(f"archive member {name!r} cannot be read")
            yield member, handle
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackupError(f"the archive is not a readable tar: {exc}") from None


@contextmanager
def _open_tar(path: Path) -> Iterator[tarfile.TarFile]:
    """An uncompressed tar, opened for reading; anything else is refused."""
    try:
        archive = tarfile.open(path, "r:")  # noqa: SIM115  (closed below; open errors become refusals)
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"{path} is not a readable tar archive: {exc}") from None
    with archive:
        yield archive


def _digest(handle: IO[bytes], sink: IO[bytes] | None = None) -> tuple[str, int]:
    digest, count = hashlib.sha256(), 0
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
        count += len(chunk)
        if sink is not None:
            sink.write(chunk)
    return digest.hexdigest(), count


def _check_archive(path: Path, passphrase: str) -> tuple[dict[str, Any], bytes, dict[str, str]]:
    """First pass, writing nothing: names, types, the manifest's MAC, every member's hash; the secrets."""
    actual: dict[str, tuple[str, int]] = {}
    manifest_raw = mac = sealed = None
    with _open_tar(path) as archive:
        for member, handle in _members(archive):
            if member.name in (MANIFEST, MANIFEST_MAC) and member.size > MAX_MANIFEST_BYTES:
                raise BackupError(f"{member.name} is too large")
            if member.name == MANIFEST:
                manifest_raw = handle.read()
            elif member.name == MANIFEST_MAC:
                mac = handle.read()
            elif member.name == SECRETS_MEMBER:
                sealed = handle.read(MAX_MANIFEST_BYTES + 1)
                actual[member.name] = (hashlib.sha256(sealed).hexdigest(), len(sealed))
            else:
                actual[member.name] = _digest(handle)
    if manifest_raw is None or mac is None:
        raise BackupError(f"the archive has no {MANIFEST} or {MANIFEST_MAC}; it is not a Keyong backup")
    manifest = parse_manifest(manifest_raw)
    keys = keys_for(manifest, passphrase)
    keys.check(manifest_raw, mac)
    expected = expected_files(manifest)
    for name in sorted(expected.keys() - actual.keys()):
        raise BackupError(f"archive member {name!r} listed in the manifest is missing; nothing was written")
    for name in sorted(actual.keys() - expected.keys()):
        raise BackupError(f"archive member {name!r} is not in the manifest; nothing was written")
    for name, (digest, size) in sorted(expected.items()):
        if actual[name] != (digest, size):
            raise BackupError(f"archive member {name!r} was altered (sha256 or size differs); nothing was written")
    if manifest.get("database", {}).get("dialect") != "sqlite" or DATABASE_MEMBER not in expected:
        raise BackupError("this archive holds no SQLite database snapshot")
    if sealed is None:
        raise BackupError(f"the archive has no {SECRETS_MEMBER}")
    secret_files = _secret_files(json.loads(keys.open(sealed)))
    return manifest, manifest_raw, secret_files


def _secret_files(blob: Any) -> dict[str, str]:
    if not isinstance(blob, dict) or MARKER not in blob:
        raise BackupError(f"{SECRETS_MEMBER} does not hold the home's marker and secrets")
    for name in blob:
        safe_member_name(str(name))
        if name != MARKER and not str(name).startswith(f"{SECRETS_DIR}/"):
            raise BackupError(f"{SECRETS_MEMBER} holds {name!r}, which is not a secret")
    return {str(k): str(v) for k, v in blob.items()}


def _target_path(staging: Path, member: str) -> Path:
    """Where a verified member lands in the staging home; reserved names are refused."""
    if member == DATABASE_MEMBER:
        return staging / DATABASE_FILE
    relative = home_path_of(member)
    if relative is None:
        raise BackupError(f"archive member {member!r} has no place in a home")
    if relative in NOT_FILES or relative.split("/")[0] == SECRETS_DIR:
        raise BackupError(f"archive member {member!r} would replace the database, marker or a secret")
    return staging / relative


def _write_new(path: Path, data_mode: int) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, data_mode)
    return os.fdopen(fd, "wb")


def _write_home(archive_path: Path, manifest: dict[str, Any], secret_files: dict[str, str], staging: Path) -> int:
    """Second pass: every member written to the staging home and hashed again while written."""
    expected = expected_files(manifest)
    modes = {str(item["path"]): int(item.get("mode", 0o600)) & 0o700 | 0o600 for item in manifest["files"]}
    written = 0
    with _open_tar(archive_path) as archive:
        for member, handle in _members(archive):
            if member.name in (MANIFEST, MANIFEST_MAC, SECRETS_MEMBER):
                continue
            if member.name not in expected:
                raise BackupError(f"archive member {member.name!r} appeared after the check; nothing was kept")
            with _write_new(_target_path(staging, member.name), modes[member.name]) as sink:
                if _digest(handle, sink) != expected[member.name]:
                    raise BackupError(f"archive member {member.name!r} changed during the restore; nothing was kept")
            written += 1
    (staging / SECRETS_DIR).mkdir(mode=0o700, exist_ok=True)
    for name, encoded in secret_files.items():
        with _write_new(staging / name, 0o600) as sink:
            sink.write(base64.b64decode(encoded))
    return written


def _empty_target(home: Path) -> None:
    if home.is_symlink() or (home.exists() and (not home.is_dir() or any(home.iterdir()))):
        raise BackupError(f"{home} exists and is not an empty directory; nothing was written")


def restore_backup(archive: Path, home: Path, passphrase: str | None, settings: Settings) -> RestoreResult:
    """Check ``archive`` in full, restore it as the new home ``home``, then verify its ledger."""
    passphrase = check_passphrase(passphrase)
    home = home.expanduser().absolute()
    _empty_target(home)
    manifest, manifest_raw, secret_files = _check_archive(archive, passphrase)
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{home.name}.restore-", dir=home.parent))
    try:
        os.chmod(staging, 0o700)
        written = _write_home(archive, manifest, secret_files, staging)
        _empty_target(home)
        if home.exists():
            home.rmdir()
        os.rename(staging, home)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    digest = hashlib.sha256(manifest_raw).hexdigest()
    return _verify_restored(settings.model_copy(update={"home": home, "database_url": None}), manifest, digest, written)


def _verify_restored(settings: Settings, manifest: dict[str, Any], digest: str, written: int) -> RestoreResult:
    """The restored ledger verified in full and compared with the head the manifest recorded; ledgered if so."""
    if not Path(sqlite_url(settings.home).removeprefix("sqlite:///")).exists():
        raise BackupError("the restored home has no database")
    instance = Instance.open(settings)
    try:
        report = instance.ledger.verify()
        size, head = instance.ledger.head()
        recorded = manifest.get("ledger", {})
        checkpoint = instance.ledger.latest_checkpoint()
        want_cp = recorded.get("checkpoint")
        head_matches = (size, head) == (recorded.get("size"), recorded.get("head")) and (
            want_cp is None
            or (
                checkpoint is not None
                and (checkpoint.tree_size, checkpoint.root) == (want_cp["tree_size"], want_cp["root"])
            )
        )
        if report.ok and head_matches:
            actor, role = host_actor()
            instance.ledger.append(
                actor=actor,
                role=role,
                action="home.restored",
                subject=f"instance:{instance.instance_id}",
                payload={"manifest_sha256": digest, "files": written, "ledger_size": size},
            )
    finally:
        instance.close()
    return RestoreResult(settings.home, digest, written, report, head_matches)
