"""Backup and restore of a home (issue 22; SATRE 2.2.06, 3.1.09; 双鸭山 第十八条 备份保护, 第六十条 数据备份、加密认证).

A home with a vault file, desensitized copies, a licence and a judged job is backed up, restored into
a new home, and the restored ledger verifies while the registry shows the same datasets, licences and
jobs. Attacks on the archive (a changed byte, an added or removed member, traversal names, absolute
names, links) and a wrong passphrase are refused with nothing written; no secret is in the tar in clear.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from app import Instance, Settings, backup_seal
from app.backup_archive import MANIFEST, PASSPHRASE_ENV, SECRETS_MEMBER
from app.backup_seal import SealError, SealingReader, unseal
from app.cli import cli
from core import Actor
from ledger import drop_append_only_ddl
from registry import is_sealed
from tests.job_worker_proc import MARKERS_ENV, OPERATOR, SCENARIO, fast_runner, licensed
from tests.test_registry_licences import uscc

PASSPHRASE = "correct horse battery staple"
REGULATOR = Actor("demo-regulator", "regulator")
CSV = "姓名,区县,年龄\n张三,尖山区,34\n李四,岭东区,51\n王五,尖山区,28\n"


def keyong(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """SQLite in the home: the database ``keyong backup`` snapshots (a PostgreSQL home: the last test)."""
    return Settings(home=tmp_path / "home", database_url=None)


@pytest.fixture
def worked(initialised: tuple[Instance, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Instance:
    """A demo-ish home: an ingested dataset (encrypted vault file), a licensed dataset with a copy, a run job."""
    instance = initialised[0]
    do_work(instance, tmp_path, monkeypatch)
    return instance


def do_work(instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv(MARKERS_ENV, str(markers))
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    source = tmp_path / "people.csv"
    source.write_text(CSV, encoding="utf-8")
    instance.registry.ingestor.ingest(
        source, name="people", provider="双鸭山市民政局", provider_code=uscc(4242), level="L3", by=Actor.host()
    )
    licensed(instance.registry, instance.home)
    job = instance.jobs.submit(OPERATOR, ["traffic"], "python", "print(1)", SCENARIO)
    instance.worker(runner=fast_runner, worker_id="backup-test").run_pending()
    assert instance.jobs.show(job).state == "done"


def passphrase_file(tmp_path: Path, text: str = PASSPHRASE) -> Path:
    path = tmp_path / "passphrase"
    path.write_text(text + "\n", encoding="utf-8")
    return path


def backup(instance: Instance, tmp_path: Path, name: str = "home.tar") -> Path:
    out = tmp_path / name
    code, stdout, stderr = keyong(
        "backup",
        "create",
        str(out),
        "--home",
        str(instance.home),
        "--passphrase-file",
        str(passphrase_file(tmp_path)),
        "--json",
    )
    assert code == 0, stderr
    data = json.loads(stdout)
    assert data["archive"] == str(out) and data["files"] > 3
    return out


def restore(
    archive: Path, target: Path, tmp_path: Path, passphrase: str = PASSPHRASE, database_url: str | None = None
) -> tuple[int, str, str]:
    secret = tmp_path / "restore-passphrase"
    secret.write_text(passphrase, encoding="utf-8")
    url = ["--database-url", database_url] if database_url else []
    args = ["backup", "restore", str(archive), "--home", str(target), "--passphrase-file", str(secret), *url]
    return keyong(*args, "--json")


def state(instance: Instance) -> dict[str, object]:
    """What the registry shows: datasets, licences, jobs (full views), principals."""
    return {
        "datasets": instance.registry.catalog.list(),
        "licences": instance.registry.licences.list(viewer=REGULATOR),
        "jobs": instance.jobs.list(viewer=REGULATOR),
        "principals": instance.identity.list_principals(),
    }


def test_backup_then_restore_verifies_and_shows_the_same_registry(worked: Instance, tmp_path: Path) -> None:
    before = state(worked)
    archive = backup(worked, tmp_path)
    entry = worked.ledger.entries(action="home.backed_up")[-1]  # the backup is ledgered, with who and what
    assert entry.actor.startswith("host:")
    with tarfile.open(archive) as opened:
        raw_manifest = opened.extractfile(MANIFEST).read()  # type: ignore[union-attr]
    manifest = json.loads(raw_manifest)
    assert entry.payload["manifest_sha256"] == hashlib.sha256(raw_manifest).hexdigest()
    assert manifest["ledger"]["size"] == entry.seq - 1  # the snapshot's head: every entry before the backup's
    assert manifest["database"]["method"] == "sqlite3 online backup API"

    target = tmp_path / "restored"
    code, stdout, stderr = restore(archive, target, tmp_path)
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["ok"] and result["head_matches"] and result["ledger"]["ok"]

    code, stdout, stderr = keyong("ledger", "verify", "--home", str(target), "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["ok"] is True

    restored = Instance.open(Settings(home=target))
    try:
        assert state(restored) == before
        assert (
            restored.ledger.entries(action="home.restored")[-1].payload["manifest_sha256"] == result["manifest_sha256"]
        )
        # The secrets came back (decrypted): the vault opens, pseudonyms and tokens stay the same, checkpoints verify.
        for secret in ("jwt_key", "pseudonym_pepper", "vault_key", "data_master"):
            assert getattr(restored.keys, secret) == getattr(worked.keys, secret)
        assert restored.ledger.public_key_hex == worked.ledger.public_key_hex
        outputs = [output for job in restored.jobs.list(viewer=REGULATOR) for output in job.outputs]
        assert outputs
        for output in outputs:  # sealed at rest (issue 22): the restored data keys and master open them
            assert is_sealed(target / output["path"])
            plain = restored.registry.at_rest.read(target / output["path"])
            assert hashlib.sha256(plain).hexdigest() == output["sha256"]
        secrets_dir = target / "secrets"
        assert oct(secrets_dir.stat().st_mode & 0o777) == "0o700"
        assert all(p.stat().st_mode & 0o077 == 0 for p in secrets_dir.iterdir())
    finally:
        restored.close()
    assert files_of(target) == files_of(worked.home)  # vault, copies, work, outputs, secrets: byte for byte


def files_of(home: Path) -> dict[str, str]:
    """Every file of a home but the live database and the live ledger head (each home remembers its own
    commits: ``app.ledger_whole.remembered_head_file``), by relative path, with its SHA-256."""
    return {
        p.relative_to(home).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in home.rglob("*")
        if p.is_file() and not p.name.startswith(("keyong.db", "ledger_head.json"))
    }


def test_a_backup_taken_while_the_ledger_grows_restores_consistently(worked: Instance, tmp_path: Path) -> None:
    """The online backup API copies one consistent state while another connection keeps appending."""
    server = Instance.open(worked.settings)  # another engine, as `keyong serve` would hold
    stop = threading.Event()
    appended = [0]

    def write() -> None:
        while not stop.is_set():
            server.ledger.append(actor="load", role="host", action="test.noise", subject="noise", payload={})
            appended[0] += 1

    writer = threading.Thread(target=write)
    start = worked.ledger.size()
    writer.start()
    try:
        archive = backup(worked, tmp_path)
    finally:
        stop.set()
        writer.join()
        server.close()
    code, stdout, stderr = restore(archive, tmp_path / "restored", tmp_path)
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["ok"] and result["head_matches"]
    assert start <= result["ledger"]["entries"] <= worked.ledger.size() and appended[0] > 0


def test_a_restored_ledger_that_does_not_verify_exits_1(worked: Instance, tmp_path: Path) -> None:
    """An archive made honestly of a home whose ledger was already rewritten: restored, but exit 1, unledgered."""
    with worked.engine.begin() as connection:
        for statement in drop_append_only_ddl("sqlite"):
            connection.execute(text(statement))
        connection.execute(text("UPDATE ledger_entries SET actor = 'someone-else' WHERE seq = 2"))
    archive = backup(worked, tmp_path)
    target = tmp_path / "restored"
    code, stdout, stderr = restore(archive, target, tmp_path)
    assert code == 1 and "does not verify" in stderr
    result = json.loads(stdout)
    assert result["ok"] is False and result["ledger"]["ok"] is False and result["ledger"]["problems"]
    restored = Instance.open(Settings(home=target))
    try:
        assert restored.ledger.entries(action="home.restored") == []
    finally:
        restored.close()


def test_no_secret_is_in_the_archive_in_clear(worked: Instance, tmp_path: Path) -> None:
    leftover = worked.home / ".backup-scratch-crashed"  # a crashed backup's clear snapshot is never archived
    leftover.mkdir()
    (leftover / "database").write_bytes(b"SQLite format 3\x00")
    archive = backup(worked, tmp_path)
    raw = archive.read_bytes()
    with tarfile.open(archive) as opened:
        assert not [m.name for m in opened if "scratch" in m.name]
    secrets = [worked.keys.jwt_key, worked.keys.vault_key, worked.keys.pseudonym_pepper]
    for secret in secrets:
        assert secret not in raw and secret.hex().encode() not in raw
    assert b"PRIVATE KEY" not in raw
    assert (worked.home / "secrets" / "jwt_signing.key").read_bytes().strip() not in raw
    # Every file member is sealed too: no database page, no copy, no job output, no catalog text in clear.
    assert b"SQLite format 3" not in raw and b"PAR1" not in raw
    assert b"python:print(1):['traffic']" not in raw  # the fast runner's job output
    assert "双鸭山市民政局".encode() not in raw and b"demo-operator" not in raw


def test_no_passphrase_no_backup(worked: Instance, tmp_path: Path) -> None:
    out = tmp_path / "x.tar"
    code, _, stderr = keyong("backup", "create", str(out), "--home", str(worked.home))
    assert code == 1 and "passphrase is required" in stderr
    code, _, stderr = keyong("backup", "create", str(out), "--home", str(worked.home), env={PASSPHRASE_ENV: "short"})
    assert code == 1 and "at least" in stderr
    assert not out.exists() and not list(tmp_path.glob(".x.tar*"))
    code, _, stderr = keyong("backup", "create", str(out), "--home", str(worked.home), env={PASSPHRASE_ENV: PASSPHRASE})
    assert code == 0, stderr  # the environment variable works too
    code, _, stderr = keyong("backup", "create", str(out), "--home", str(worked.home), env={PASSPHRASE_ENV: PASSPHRASE})
    assert code == 1 and "already exists" in stderr  # never overwritten


def test_a_wrong_passphrase_is_refused_with_nothing_written(worked: Instance, tmp_path: Path) -> None:
    archive = backup(worked, tmp_path)
    target = tmp_path / "restored"
    code, stdout, stderr = restore(archive, target, tmp_path, passphrase="not the passphrase at all")
    assert code == 1 and stdout == ""
    assert "wrong passphrase" in stderr
    assert nothing_written(tmp_path, target)


def test_restore_refuses_a_non_empty_target(worked: Instance, tmp_path: Path) -> None:
    archive = backup(worked, tmp_path)
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep.txt").write_text("mine", encoding="utf-8")
    code, _, stderr = restore(archive, target, tmp_path)
    assert code == 1 and "not an empty directory" in stderr
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    code, _, stderr = restore(archive, worked.home, tmp_path)
    assert code == 1 and "not an empty directory" in stderr


def nothing_written(tmp_path: Path, target: Path) -> bool:
    return not target.exists() and not list(tmp_path.glob(f".{target.name}.restore-*"))


def rewrite(archive: Path, out: Path, change: object) -> Path:
    """``archive`` copied member by member into ``out``, each member passed through ``change``."""
    with tarfile.open(archive) as source, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as sink:
        members = [(m, source.extractfile(m).read()) for m in source]  # type: ignore[union-attr]
        for member, data in change(members):  # type: ignore[operator]
            member.size = len(data)
            sink.addfile(member, io.BytesIO(data) if member.isreg() else None)
    return out


def flip_byte(members: list[tuple[tarfile.TarInfo, bytes]]) -> list[tuple[tarfile.TarInfo, bytes]]:
    out = []
    for member, data in members:
        if member.name.startswith("home/datasets/"):
            data = bytes([data[0] ^ 1]) + data[1:]
        out.append((member, data))
    return out


def drop_member(members: list[tuple[tarfile.TarInfo, bytes]]) -> list[tuple[tarfile.TarInfo, bytes]]:
    return [(m, d) for m, d in members if not m.name.startswith("home/datasets/")]


def add_named(name: str, kind: bytes = tarfile.REGTYPE) -> object:
    def change(members: list[tuple[tarfile.TarInfo, bytes]]) -> list[tuple[tarfile.TarInfo, bytes]]:
        extra = tarfile.TarInfo(name)
        extra.type = kind
        if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
            extra.linkname = "/etc/passwd"
        return [(extra, b"pwned\n" if kind == tarfile.REGTYPE else b""), *members]

    return change


def replace_member(members: list[tuple[tarfile.TarInfo, bytes]]) -> list[tuple[tarfile.TarInfo, bytes]]:
    """A member swapped for a symlink of the same name (listed in the manifest, but a link now)."""
    out = []
    for member, data in members:
        if member.name.startswith("home/datasets/") and not any(m.issym() for m, _ in out):
            link = tarfile.TarInfo(member.name)
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            out.append((link, b""))
        else:
            out.append((member, data))
    return out


def forge_manifest(members: list[tuple[tarfile.TarInfo, bytes]]) -> list[tuple[tarfile.TarInfo, bytes]]:
    """A changed member with the manifest updated to match (but no passphrase to re-sign it)."""
    changed = flip_byte(members)
    digests = {m.name: hashlib.sha256(d).hexdigest() for m, d in changed}
    out = []
    for member, data in changed:
        if member.name == MANIFEST:
            manifest = json.loads(data)
            for item in manifest["files"]:
                item["sha256"] = digests[item["path"]]
            data = json.dumps(manifest).encode()
        out.append((member, data))
    return out


@pytest.mark.attack
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (flip_byte, "was altered"),
        (drop_member, "is missing"),
        (add_named("home/extra.txt"), "is not in the manifest"),
        (add_named("../x"), "unsafe name"),
        (add_named("home/../../x"), "unsafe name"),
        (add_named("/tmp/keyong-absolute"), "unsafe name"),
        (add_named("home/link", tarfile.SYMTYPE), "not a regular file"),
        (add_named("home/hard", tarfile.LNKTYPE), "not a regular file"),
        (add_named("home/dir", tarfile.DIRTYPE), "not a regular file"),
        (replace_member, "not a regular file"),
        (forge_manifest, "not authentic"),
    ],
    ids=[
        "byte",
        "removed",
        "added",
        "dotdot",
        "nested-dotdot",
        "absolute",
        "symlink",
        "hardlink",
        "dir",
        "swapped-link",
        "forged-manifest",
    ],
)
def test_a_tampered_archive_is_refused_with_nothing_written(
    worked: Instance, tmp_path: Path, change: object, message: str
) -> None:
    archive = rewrite(backup(worked, tmp_path), tmp_path / "tampered.tar", change)
    target = tmp_path / "restored"
    code, stdout, stderr = restore(archive, target, tmp_path)
    assert code == 1 and stdout == "", stderr
    assert message in stderr
    assert nothing_written(tmp_path, target)
    assert not (tmp_path / "x").exists() and not Path("/tmp/keyong-absolute").exists()


@pytest.mark.attack
def test_the_tampered_member_is_named(worked: Instance, tmp_path: Path) -> None:
    archive = rewrite(backup(worked, tmp_path), tmp_path / "tampered.tar", flip_byte)
    with tarfile.open(archive) as opened:
        name = next(m.name for m in opened if m.name.startswith("home/datasets/"))
    code, _, stderr = restore(archive, tmp_path / "restored", tmp_path)
    assert code == 1 and name in stderr


@pytest.mark.attack
def test_the_sealed_secrets_cannot_be_swapped(worked: Instance, tmp_path: Path) -> None:
    """Secrets sealed under another passphrase's key do not pass: the manifest pins secrets.enc's hash."""
    first = backup(worked, tmp_path, "first.tar")
    second = backup(worked, tmp_path, "second.tar")
    with tarfile.open(second) as opened:
        other = opened.extractfile(SECRETS_MEMBER).read()  # type: ignore[union-attr]

    def swap(members: list[tuple[tarfile.TarInfo, bytes]]) -> list[tuple[tarfile.TarInfo, bytes]]:
        return [(m, other if m.name == SECRETS_MEMBER else d) for m, d in members]

    archive = rewrite(first, tmp_path / "swapped.tar", swap)
    code, _, stderr = restore(archive, tmp_path / "restored", tmp_path)
    assert code == 1 and SECRETS_MEMBER in stderr
    assert nothing_written(tmp_path, tmp_path / "restored")


@pytest.fixture
def pg_target(pg_database: str) -> Iterator[str]:
    """A second fresh, empty schema of the run's database: where a PostgreSQL home is restored to."""
    schema = f"r_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_database, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (
            make_url(pg_database)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def test_a_postgresql_home_round_trips(
    pg_url: str, pg_target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PostgreSQL home: its schema dumped through SQLAlchemy in one snapshot, restored into an empty schema."""
    instance, _ = Instance.init(Settings(home=tmp_path / "pg-home", database_url=pg_url))
    try:
        do_work(instance, tmp_path, monkeypatch)
        before = state(instance)
        archive = backup(instance, tmp_path, "pg.tar")
        with tarfile.open(archive) as opened:
            manifest = json.loads(opened.extractfile(MANIFEST).read())  # type: ignore[union-attr]
        assert manifest["database"]["dialect"] == "postgresql" and "SQLAlchemy" in manifest["database"]["method"]

        # The source schema is not empty: refused, nothing written. No URL at all: refused.
        code, _, stderr = restore(archive, tmp_path / "r1", tmp_path, database_url=pg_url)
        assert code == 1 and "already holds tables" in stderr and nothing_written(tmp_path, tmp_path / "r1")
        code, _, stderr = restore(archive, tmp_path / "r1", tmp_path)
        assert code == 1 and "--database-url" in stderr and nothing_written(tmp_path, tmp_path / "r1")

        target = tmp_path / "pg-restored"
        code, stdout, stderr = restore(archive, target, tmp_path, database_url=pg_target)
        assert code == 0, stderr
        assert json.loads(stdout)["ok"] is True
        assert not list(target.glob(".restore-*"))
        code, stdout, stderr = keyong("ledger", "verify", "--home", str(target), "--json")
        assert code == 0 and json.loads(stdout)["ok"], stderr
        restored = Instance.open(Settings(home=target))
        try:
            assert restored.database == make_url(pg_target).render_as_string(hide_password=True)
            assert state(restored) == before
            # Sequences moved past the restored keys: new rows get new ids.
            job = restored.jobs.submit(OPERATOR, ["traffic"], "python", "print(2)", SCENARIO)
            assert job > max(j.id for j in before["jobs"])  # type: ignore[attr-defined]
        finally:
            restored.close()
    finally:
        instance.close()


@pytest.mark.attack
def test_sealed_streams_refuse_truncation_reordering_and_another_members_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backup_seal, "SEAL_CHUNK", 16)  # small chunks, so a 50-byte file has four
    key, data = bytes(range(32)), bytes(range(50))
    sealed = SealingReader(io.BytesIO(data), len(data), "home/a", key).read()
    assert len(sealed) == backup_seal.sealed_size(len(data)) == 8 + 50 + 4 * 16
    out = io.BytesIO()
    assert unseal(io.BytesIO(sealed), "home/a", key, out) == (hashlib.sha256(data).hexdigest(), 50)
    assert out.getvalue() == data
    step, body = 16 + 16, sealed[8:]
    attacks = {
        "cut at a chunk boundary": sealed[: 8 + 2 * step],
        "chunks swapped": sealed[:8] + body[step : 2 * step] + body[:step] + body[2 * step :],
        "one bit": sealed[:20] + bytes([sealed[20] ^ 1]) + sealed[21:],
    }
    for what, bad in attacks.items():
        with pytest.raises(SealError):
            unseal(io.BytesIO(bad), "home/a", key, io.BytesIO())
            pytest.fail(what)
    with pytest.raises(SealError):  # another member's stream under this name
        unseal(io.BytesIO(sealed), "home/b", key, io.BytesIO())
    empty = SealingReader(io.BytesIO(b""), 0, "home/e", key).read()
    assert len(empty) == backup_seal.sealed_size(0) == 8 + 16
    assert unseal(io.BytesIO(empty), "home/e", key, io.BytesIO())[1] == 0
    with pytest.raises(OSError, match="shrank"):  # a file shorter than its stat said: the backup fails
        SealingReader(io.BytesIO(data[:10]), len(data), "home/a", key).read()
