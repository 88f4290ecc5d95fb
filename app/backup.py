"""Backup and restore of a home: its database, its files and (sealed) its secrets (SATRE 2.2.06, 3.1.09).

双鸭山市公共数据管理暂行办法 第十八条 asks that public data be stored 统一 and 备份保护; 第六十条 for 数据备份
and 加密认证 against loss, damage and tampering. A backup is one tar (format in :mod:`app.backup_archive`):

- the database as the SQLite online backup API copies it, so it is consistent while a server runs
  (a PostgreSQL-backed home is refused: its database is backed up with the server's own tools);
- every regular file of the home (vault, copies, fingerprints, work, outputs, products, …), read
  after the database snapshot: files are written before the rows that name them, so every row of
  the snapshot finds its file;
- the secrets and the home's marker; every member is encrypted under keys derived from the passphrase;
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
    MANIFEST,
    MANIFEST_MAC,
    MAX_MANIFEST_BYTES,
    SECRETS_MEMBER,
    BackupError,
    SealKeys,
    add_bytes,
    add_sealed,
    canonical,
    check_passphrase,
    expected_files,
    home_member,
    home_path_of,
    keys_for,
    members,
    new_kdf,
    open_tar,
    parse_manifest,
    safe_member_name,
)
from app.backup_database import (
    POSTGRESQL_MEMBER,
    SQLITE_MEMBER,
    load_postgresql,
    require_empty_database,
    snapshot_postgresql,
    snapshot_sqlite,
)
from app.backup_seal import SealError, unseal
from app.instance import MARKER, Instance
from app.keys import SECRETS_DIR
from app.ledger_whole import LEDGER_HEAD, instance_verified, remembered_head_file
from app.settings import Settings
from core import stream_sha256
from ledger import VerifyReport, forget_head
from operators import host_actor

DATABASE_FILE = "keyong.db"
# Not copied as files: the live database (snapshotted instead) and what goes sealed.
DUMP_FILE = ".restore-tables.jsonl"
SCRATCH_PREFIX = ".backup-scratch-"
NOT_FILES = {DATABASE_FILE, *(f"{DATABASE_FILE}-{s}" for s in ("wal", "shm", "journal")), DUMP_FILE, MARKER}


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


# --- create ---------------------------------------------------------------------------------------


def _home_files(home: Path) -> tuple[list[Path], list[str]]:
    """Regular files of the home to copy, and what was skipped (links, sockets) with why."""
    files: list[Path] = []
    skipped: list[str] = []
    for directory, dirnames, filenames in os.walk(home):
        here = Path(directory)
        dirnames.sort()
        if here == home:
            # not the secrets (sealed apart), nor this or a crashed backup's scratch
            dirnames[:] = [d for d in dirnames if d != SECRETS_DIR and not d.startswith(SCRATCH_PREFIX)]
        for name in sorted(filenames) + [d for d in dirnames if (here / d).is_symlink()]:
            path = here / name
            relative = path.relative_to(home)
            if here == home and name in NOT_FILES:
                continue
            mode = path.lstat().st_mode
            if not stat.S_ISREG(mode):
                skipped.append(f"{relative.as_posix()} (not a regular file)")
                continue
            files.append(relative)
    return files, skipped


def _add_file(archive: tarfile.TarFile, member: str, path: Path, key: bytes, listing: list[dict[str, Any]]) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        add_sealed(archive, member, handle, info.st_size, stat.S_IMODE(info.st_mode), key, listing)


def _sealed_secrets(home: Path) -> dict[str, str]:
    """The secrets directory and the marker, by home-relative name, base64 (sealed before writing)."""
    found = {MARKER: base64.b64encode((home / MARKER).read_bytes()).decode()}
    for path in sorted((home / SECRETS_DIR).rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue  # recreated (0700) around the files it holds
        if path.name.startswith(LEDGER_HEAD) or path.name.startswith(f".{LEDGER_HEAD}"):
            continue  # the live head, ahead of the snapshot: the manifest's ledger state is the archive's
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
    dialect = instance.engine.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise BackupError(f"cannot back up a {dialect} database")
    if out.is_relative_to(instance.home):
        raise BackupError("the archive may not be written inside the home it backs up")
    instance.ledger.checkpoint()  # so the manifest's root is usually that of the head itself
    kdf = new_kdf()
    keys = SealKeys.derive(passphrase, bytes.fromhex(kdf["salt"]), kdf["n"], kdf["r"], kdf["p"])
    listing: list[dict[str, Any]] = []
    # The snapshot waits in clear inside the home (0700), where the same data already lies, never in /tmp.
    with (
        tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX, dir=instance.home) as scratch,
        _created_exclusively(out) as partial,
    ):
        database = Path(scratch) / "database"
        snapshot = (snapshot_sqlite if dialect == "sqlite" else snapshot_postgresql)(instance, database)
        ledger_state = snapshot.pop("ledger")
        files, skipped = _home_files(instance.home)
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive:
            _add_file(archive, snapshot["member"], database, keys.files, listing)
            for relative in files:
                try:
                    _add_file(archive, home_member(relative.as_posix()), instance.home / relative, keys.files, listing)
                except FileNotFoundError:  # removed after the walk (a sweeper, a deletion): nothing was added
                    skipped.append(f"{relative.as_posix()} (removed during the backup)")
            secrets_blob = json.dumps(_sealed_secrets(instance.home)).encode()
            add_bytes(archive, SECRETS_MEMBER, keys.seal(secrets_blob), listing)
            manifest = canonical(
                {
                    "format": ARCHIVE_FORMAT,
                    "created": datetime.now(UTC).isoformat(),
                    "instance_id": instance.instance_id,
                    "source_home": str(instance.home),
                    "database": snapshot,
                    "ledger": ledger_state,
                    "kdf": kdf,
                    "files": listing,
                    "skipped": skipped,
                }
            )
            add_bytes(archive, MANIFEST, manifest, [])
            add_bytes(archive, MANIFEST_MAC, keys.sign(manifest), [])
    manifest_sha256 = hashlib.sha256(manifest).hexdigest()
    actor, role = host_actor()
    total = sum(int(item["size"]) for item in listing)
    instance.ledger.append(
        actor=actor,
        role=role,
        action="home.backed_up",
        subject=f"instance:{instance.instance_id}",
        payload={
            "manifest_sha256": manifest_sha256,
            "archive": out.name,
            "files": len(listing),
            "bytes": total,
            "ledger_size": ledger_state["size"],
        },
    )
    return BackupResult(out, manifest_sha256, len(listing), total, ledger_state, skipped)


# --- restore --------------------------------------------------------------------------------------


def _check_archive(path: Path, passphrase: str) -> tuple[dict[str, Any], bytes, dict[str, str], SealKeys]:
    """First pass, writing nothing: names, types, the manifest's MAC, every member's hash; the secrets."""
    actual: dict[str, tuple[str, int]] = {}
    manifest_raw = mac = sealed = None
    with open_tar(path) as archive:
        for member, handle in members(archive):
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
                actual[member.name] = stream_sha256(handle)
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
    for name, listed in sorted(expected.items()):
        if actual[name] != listed:
            raise BackupError(f"archive member {name!r} was altered (sha256 or size differs); nothing was written")
    if _database_member(manifest) not in expected:
        raise BackupError("this archive holds no database snapshot")
    if sealed is None:
        raise BackupError(f"the archive has no {SECRETS_MEMBER}")
    secret_files = _secret_files(json.loads(keys.open(sealed)))
    return manifest, manifest_raw, secret_files, keys


def _secret_files(blob: Any) -> dict[str, str]:
    if not isinstance(blob, dict) or MARKER not in blob:
        raise BackupError(f"{SECRETS_MEMBER} does not hold the home's marker and secrets")
    for name in blob:
        safe_member_name(str(name))
        if name != MARKER and not str(name).startswith(f"{SECRETS_DIR}/"):
            raise BackupError(f"{SECRETS_MEMBER} holds {name!r}, which is not a secret")
    return {str(k): str(v) for k, v in blob.items()}


def _database_member(manifest: dict[str, Any]) -> str:
    database = manifest.get("database")
    dialect = database.get("dialect") if isinstance(database, dict) else None
    if dialect not in ("sqlite", "postgresql"):
        raise BackupError("the manifest names no SQLite or PostgreSQL database snapshot")
    return SQLITE_MEMBER if dialect == "sqlite" else POSTGRESQL_MEMBER


def _target_path(staging: Path, member: str) -> Path:
    """Where a verified member lands in the staging home; reserved names are refused."""
    if member == SQLITE_MEMBER:
        return staging / DATABASE_FILE
    if member == POSTGRESQL_MEMBER:
        return staging / DUMP_FILE  # loaded into the target database, then removed
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


def _write_home(
    archive_path: Path, manifest: dict[str, Any], secret_files: dict[str, str], key: bytes, staging: Path
) -> int:
    """Second pass: every member decrypted into the staging home, its plaintext hashed against the manifest."""
    expected = expected_files(manifest)
    try:
        modes = {str(item["path"]): int(item.get("mode", 0o600)) & 0o700 | 0o600 for item in manifest["files"]}
        plain = {
            str(item["path"]): (str(item["plain_sha256"]), int(item["plain_size"]))
            for item in manifest["files"]
            if str(item["path"]) != SECRETS_MEMBER
        }
    except (KeyError, TypeError, ValueError):
        raise BackupError(f"{MANIFEST} has a malformed file entry") from None
    written = 0
    with open_tar(archive_path) as archive:
        for member, handle in members(archive):
            if member.name in (MANIFEST, MANIFEST_MAC, SECRETS_MEMBER):
                continue
            if member.name not in expected:
                raise BackupError(f"archive member {member.name!r} appeared after the check; nothing was kept")
            with _write_new(_target_path(staging, member.name), modes[member.name]) as sink:
                try:
                    opened = unseal(handle, member.name, key, sink)
                except SealError as exc:
                    raise BackupError(str(exc)) from None
                if opened != plain[member.name]:
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


def _retarget(secret_files: dict[str, str], database_url: str | None) -> dict[str, str]:
    """The marker pointed at the database the rows are restored into (a PostgreSQL home), else as it was."""
    if database_url is None:
        return secret_files
    try:
        marker = json.loads(base64.b64decode(secret_files[MARKER]))
    except ValueError:
        raise BackupError("the archived marker is not JSON") from None
    marker["database_url"] = database_url
    return {**secret_files, MARKER: base64.b64encode(json.dumps(marker, indent=2).encode()).decode()}


def restore_backup(
    archive: Path, home: Path, passphrase: str | None, settings: Settings, database_url: str | None = None
) -> RestoreResult:
    """Check ``archive`` in full, restore it as the new home ``home``, then verify its ledger.

    A PostgreSQL home's rows go into ``database_url``, which must hold no tables yet; a SQLite home's
    database becomes the new home's ``keyong.db`` and takes no URL."""
    passphrase = check_passphrase(passphrase)
    home = home.expanduser().absolute()
    _empty_target(home)
    manifest, manifest_raw, secret_files, keys = _check_archive(archive, passphrase)
    postgresql = _database_member(manifest) == POSTGRESQL_MEMBER
    if postgresql:
        database_url = database_url or settings.database_url
    if postgresql and not database_url:
        raise BackupError("this archive holds a PostgreSQL database: give --database-url (or $KEYONG_DATABASE_URL)")
    if not postgresql and database_url:
        raise BackupError(
            "this archive holds a SQLite database, restored inside the home: --database-url does not apply"
        )
    if database_url:
        require_empty_database(database_url)
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{home.name}.restore-", dir=home.parent))
    try:
        os.chmod(staging, 0o700)
        written = _write_home(archive, manifest, _retarget(secret_files, database_url), keys.files, staging)
        if database_url:
            load_postgresql(database_url, staging / DUMP_FILE, str(manifest["ledger"].get("revision")))
            (staging / DUMP_FILE).unlink()
        _empty_target(home)
        if home.exists():
            home.rmdir()
        os.rename(staging, home)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # A new home where none was: what this process remembers of a head file at this path was another home's
    # (ledger.head.forget_head); the restored ledger is checked against its manifest's head below.
    forget_head(remembered_head_file(home))
    manifest_sha256 = hashlib.sha256(manifest_raw).hexdigest()
    restored = settings.model_copy(update={"home": home, "database_url": database_url})
    return _verify_restored(restored, manifest, manifest_sha256, written)


def _verify_restored(settings: Settings, manifest: dict[str, Any], digest: str, written: int) -> RestoreResult:
    """The restored ledger verified in full and compared with the head the manifest recorded; ledgered if so."""
    instance = Instance.open(settings)
    try:
        report = instance_verified(instance.ledger.verify())
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
