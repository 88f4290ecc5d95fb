"""Encryption at rest of copies, fingerprints, outputs and products; crypto-shredding; vault key rotation
(issue 22, SATRE 2.8.01, 3.1.09, 2.4.05; 黑龙江省政务数据管理暂行办法 第三十八条 加密, 双鸭山市公共数据管理暂行办法
第六十二条 销毁). Both databases.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap
from sqlalchemy import select, text
from typer.testing import CliRunner

from app import Instance
from app.cli import cli
from app.key_rotation import encrypt_home, rotate_vault_master
from app.keys import DATA_MASTER_KEY, SECRETS_DIR
from core import Actor
from operators import Role
from registry import DataKeys, VaultError, dataset_scope, is_sealed, master_id
from registry.models import DataKeyRow
from sandbox.release import ReleaseError
from tests.job_worker_proc import OPERATOR, SCENARIO, FakeResult, fast_runner
from tests.remote_worker_support import licensed_with_markers

ACME = Actor(OPERATOR, "operator")
AGENCY = Actor("demo-agency", "agency")
R2 = Actor("reviewer-2", "agency")
HOST = Actor("host:test", "host")
AT_REST = ("copies", "fingerprints", "work", "products")  # what Keyong keeps of the data outside the vault


def assert_nothing_in_clear(home: Path) -> None:
    """No Parquet, NumPy array or CSV in clear anywhere in the home, and everything Keyong keeps of the
    data (copies, fingerprints, job files, products) sealed. ``demo-products`` is the operator's
    download (delivered outside the store) and ``demo-ledger`` the ledger's public export."""
    checked = 0
    for path in sorted(home.rglob("*")):
        relative = path.relative_to(home)
        if not path.is_file() or path.is_symlink() or relative.parts[0] in ("demo-products", "demo-ledger"):
            continue
        head = path.read_bytes()[:8]
        assert not head.startswith(b"PAR1"), f"{relative} is Parquet in clear"
        assert not head.startswith(b"\x93NUMPY"), f"{relative} is a fingerprint array in clear"
        if relative.parts[0] in AT_REST:
            assert is_sealed(path), f"{relative} is kept in clear"
            checked += 1
        else:
            assert path.suffix.lower() != ".csv", f"{relative} is a CSV in clear"
    assert checked, "nothing was sealed: the check checked nothing"


@pytest.fixture
def instance(initialised: tuple[Instance, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Instance:
    instance = licensed_with_markers(initialised[0], tmp_path, monkeypatch)
    instance.identity.create_principal(R2.name, Role.AGENCY)
    return instance


def _sealed_copy(instance: Instance) -> Path:
    """The licensed dataset's copy, sealed under its dataset key as a desensitization writes it."""
    copy = instance.home / "datasets" / "traffic" / "v1.parquet"
    instance.registry.at_rest.seal_file(copy, dataset_scope("traffic"), by=HOST)
    assert is_sealed(copy)
    return copy


def reading_runner(kind: str, code: str, *, datasets: Mapping[str, Path], out_dir: Path, limits: Any = None) -> Any:
    """Stands in for the sandbox: reads each granted copy as a job would, writes what it read."""
    out_dir.mkdir(parents=True, exist_ok=True)
    read = {
        name: {"rows": pq.read_table(path).num_rows, "mode": oct(path.stat().st_mode & 0o777), "dir": str(path.parent)}
        for name, path in datasets.items()
    }
    (out_dir / "read.json").write_text(json.dumps(read), encoding="utf-8")
    return FakeResult(outputs=[{"name": "read.json", "bytes": 1, "sha256": "0" * 64}])


def test_a_job_reads_its_sealed_copy_in_a_private_directory_removed_after(instance: Instance) -> None:
    _sealed_copy(instance)
    job = instance.jobs.submit(OPERATOR, ["traffic"], "python", "read", SCENARIO)
    (view,) = instance.worker(runner=reading_runner, worker_id="atrest").run_pending()
    assert view.id == job and view.state == "done", view.reason
    (kept,) = instance.registry.licences.workdir(OPERATOR, view.licence_id or 0).rglob("read.json")
    assert is_sealed(kept)  # judged, then sealed under the licence's key before the end was recorded
    read = json.loads(instance.registry.at_rest.read(kept))
    assert read["traffic"]["rows"] == 10 and read["traffic"]["mode"] == "0o644"
    assert not Path(read["traffic"]["dir"]).exists()  # the plaintext lived only for the run and its judgement
    for log in ("stdout.txt", "stderr.txt", "run.json"):
        assert is_sealed(kept.parent.parent / log)


def test_a_tampered_copy_fails_the_job_closed_with_the_reason(instance: Instance) -> None:
    copy = _sealed_copy(instance)
    data = bytearray(copy.read_bytes())
    data[-40] ^= 0x01  # one bit inside the last frame's ciphertext
    copy.write_bytes(bytes(data))
    instance.jobs.submit(OPERATOR, ["traffic"], "python", "read", SCENARIO)
    (view,) = instance.worker(runner=reading_runner, worker_id="atrest").run_pending()
    assert view.state == "failed" and view.verdict is None
    assert "could not be opened" in (view.reason or "") and "failed authentication" in (view.reason or "")


def test_a_worker_without_keys_refuses_a_sealed_copy(instance: Instance) -> None:
    _sealed_copy(instance)
    instance.jobs.submit(OPERATOR, ["traffic"], "python", "read", SCENARIO)
    (view,) = instance.worker(runner=reading_runner, worker_id="atrest", at_rest=None).run_pending()
    assert view.state == "failed" and "encrypted and this worker has no keys" in (view.reason or "")


def _released(instance: Instance) -> tuple[Path, Path]:
    """A fast job's output released as product ``trips``; the stored output and the stored artifact."""
    job = instance.jobs.submit(OPERATOR, ["traffic"], "python", "print(1)", SCENARIO)
    instance.worker(runner=fast_runner, worker_id="atrest").run_pending()
    release = instance.releases.request(job, product="trips", by=ACME).id
    instance.releases.vote(release, "approve", by=AGENCY)
    instance.releases.vote(release, "approve", by=R2)
    output = instance.home / instance.jobs.show(job).outputs[0]["path"]
    artifact = instance.home / instance.registry.products.get("trips", viewer=AGENCY).artifacts[0]["path"]
    return output, artifact


def test_a_product_is_stored_sealed_and_downloads_intact(instance: Instance, tmp_path: Path) -> None:
    output, artifact = _released(instance)
    assert is_sealed(output) and is_sealed(artifact)
    product = instance.registry.products.get("trips", viewer=AGENCY)
    assert product.artifacts[0]["bytes"] == len(instance.registry.at_rest.read(artifact))
    fetched = instance.releases.fetch("trips", tmp_path / "mine", by=ACME)
    body = Path(fetched["files"][0]["path"]).read_bytes()
    assert body.startswith(b"python:print(1):['traffic']")  # the plaintext, stamped in a sidecar


def test_revoking_a_licence_shreds_its_outputs_and_products_and_is_ledgered(instance: Instance, tmp_path: Path) -> None:
    output, artifact = _released(instance)
    kept_output, kept_artifact = tmp_path / "output.bak", tmp_path / "artifact.bak"  # as a backup would hold them
    kept_output.write_bytes(output.read_bytes())
    kept_artifact.write_bytes(artifact.read_bytes())
    licence = instance.jobs.show(1).licence_id or 0
    instance.registry.licences.transition(licence, "revoked", by=AGENCY, reason="违约")

    destroyed = {e.payload["scope"]: e for e in instance.ledger.entries(action="datakey.destroyed")}
    assert set(destroyed) == {f"licence:{licence}", f"products:{licence}"}
    for entry in destroyed.values():
        assert set(entry.payload) == {"scope", "covers", "reason", "master_id"}  # never key material
        assert entry.subject.startswith("datakey:") and "revoked" in entry.payload["reason"]
    for kept in (kept_output, kept_artifact):
        with pytest.raises(VaultError, match="crypto-shredded"):
            instance.registry.at_rest.read(kept)
    with pytest.raises(ReleaseError, match="crypto-shredded"):
        instance.releases.fetch("trips", tmp_path / "late", by=ACME)


def test_an_expired_licence_shreds_its_outputs_but_keeps_its_products(instance: Instance, tmp_path: Path) -> None:
    output, artifact = _released(instance)
    kept = tmp_path / "output.bak"
    kept.write_bytes(output.read_bytes())
    licence = instance.jobs.show(1).licence_id or 0
    with instance.engine.begin() as connection:  # its term is over
        connection.execute(text("UPDATE licences SET valid_until = :day WHERE id = :id"),
                           {"day": date.today() - timedelta(days=1), "id": licence})  # fmt: skip
    instance.registry.licences.transition(licence, "expired", by=AGENCY, reason="到期")
    scopes = [e.payload["scope"] for e in instance.ledger.entries(action="datakey.destroyed")]
    assert scopes == [f"licence:{licence}"]
    with pytest.raises(VaultError, match="crypto-shredded"):
        instance.registry.at_rest.read(kept)
    assert instance.registry.at_rest.read(artifact).startswith(b"python:")


def test_rotating_the_vault_master_rewraps_keys_and_the_old_master_opens_nothing(instance: Instance) -> None:
    copy = _sealed_copy(instance)
    before = instance.registry.at_rest.read(copy)
    old_master = instance.keys.data_master
    summary = rotate_vault_master(instance, by=HOST)
    assert summary["old_master_id"] == master_id(old_master) and summary["rewrapped"] == 1
    (rotated,) = instance.ledger.entries(action="keys.rotated")
    assert rotated.payload == summary and old_master.hex() not in json.dumps(rotated.payload)

    new_master = bytes.fromhex((instance.home / SECRETS_DIR / DATA_MASTER_KEY).read_text())
    assert new_master != old_master and master_id(new_master) == summary["new_master_id"]
    reopened = Instance.open(instance.settings)
    try:
        assert reopened.registry.at_rest.read(copy) == before  # written before the rotation, read after it
    finally:
        reopened.engine.dispose()
    with instance.registry.recorder.read() as session:
        row = session.scalars(select(DataKeyRow)).one()
    with pytest.raises(InvalidUnwrap):
        aes_key_unwrap(old_master, bytes.fromhex(row.wrapped or ""))
    stale = DataKeys(instance.registry.recorder, _config_with(instance, old_master))
    with pytest.raises(VaultError, match="not this instance's"):
        stale.resolve(bytes.fromhex(row.id))


def _config_with(instance: Instance, master: bytes) -> Any:
    from dataclasses import replace

    return replace(instance.registry.config, data_master=master)


def test_an_interrupted_rotation_is_settled_at_the_next_open(instance: Instance) -> None:
    """A kill between the re-wrap's commit and the rename: the next open installs the new master."""
    copy = _sealed_copy(instance)
    new_master = bytes(range(32))
    with instance.registry.data_keys.rewrapping(new_master, by=HOST):
        pass  # committed; the process "dies" before it renames the next master into place
    (instance.home / SECRETS_DIR / "data_master.key.next").write_text(new_master.hex())
    (instance.home / SECRETS_DIR / "data_master.key.next").chmod(0o600)
    reopened = Instance.open(instance.settings)
    try:
        assert reopened.registry.at_rest.read(copy).startswith(b"PAR1")
        assert (instance.home / SECRETS_DIR / DATA_MASTER_KEY).read_text() == new_master.hex()
        assert not (instance.home / SECRETS_DIR / "data_master.key.next").exists()
    finally:
        reopened.engine.dispose()


def test_encrypt_home_seals_what_an_earlier_version_wrote_in_clear(instance: Instance) -> None:
    legacy = instance.home / "copies" / "traffic" / "0123456789abcdef.00000000.parquet"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes((instance.home / "datasets" / "traffic" / "v1.parquet").read_bytes())
    output = instance.home / "work" / OPERATOR / "licence-1" / "jobs" / "1" / "1" / "out" / "result.csv"
    output.parent.mkdir(parents=True)
    output.write_text("district,trips\n尖山区,10\n", encoding="utf-8")
    first = encrypt_home(instance, by=HOST)
    assert (first.copies, first.outputs) == (1, 1) and is_sealed(legacy) and is_sealed(output)
    assert instance.registry.at_rest.read(output).decode() == "district,trips\n尖山区,10\n"
    assert encrypt_home(instance, by=HOST).as_json() == {"copies": 0, "fingerprints": 0, "outputs": 0, "products": 0}
    assert len(instance.ledger.entries(action="keys.home_encrypted")) == 2


def test_keys_cli_needs_to_be_told_which_key(instance: Instance) -> None:
    runner = CliRunner()
    refused = runner.invoke(cli, ["keys", "rotate", "--home", str(instance.home)])
    assert refused.exit_code == 2 and "--vault" in refused.output
    listed = runner.invoke(cli, ["keys", "list", "--home", str(instance.home), "--json"])
    assert listed.exit_code == 0 and json.loads(listed.output) == {"keys": []}
    _sealed_copy(instance)
    rotated = runner.invoke(cli, ["keys", "rotate", "--vault", "--home", str(instance.home), "--json"])
    assert rotated.exit_code == 0, rotated.output
    assert json.loads(rotated.output)["rotated"][0]["rewrapped"] == 1


def test_destroying_a_dataset_key_shreds_its_copies_and_jobs_fail_closed(instance: Instance) -> None:
    _sealed_copy(instance)
    runner = CliRunner()
    home = ["--home", str(instance.home)]
    assert runner.invoke(cli, ["keys", "destroy", "--dataset", "traffic", "--reason", " ", *home]).exit_code == 2
    assert runner.invoke(cli, ["keys", "destroy", "--dataset", "nosuch", "--reason", "x", *home]).exit_code == 1
    shredded = runner.invoke(
        cli, ["keys", "destroy", "--dataset", "traffic", "--reason", "数据集撤销", "--json", *home]
    )
    assert shredded.exit_code == 0, shredded.output
    (entry,) = instance.ledger.entries(action="datakey.destroyed")
    assert entry.payload["scope"] == "dataset:traffic" and entry.payload["reason"] == "数据集撤销"
    assert entry.subject == f"datakey:{json.loads(shredded.output)['destroyed'][0]}"
    again = runner.invoke(cli, ["keys", "destroy", "--dataset", "traffic", "--reason", "x", *home])
    assert again.exit_code == 1 and "no live data key" in again.output
    instance.jobs.submit(OPERATOR, ["traffic"], "python", "read", SCENARIO)
    (view,) = instance.worker(runner=reading_runner, worker_id="atrest").run_pending()
    assert view.state == "failed" and "crypto-shredded" in (view.reason or "")
