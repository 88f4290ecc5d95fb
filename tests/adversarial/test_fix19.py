"""fix19: attacks on the closures of red team 19's breaks that tests/adversarial/test_redteam19.py does not
already make (legacy absolute artifact paths, FIFOs and symlinks at an object, credentials in URLs, the
rendered role policies)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from core import LocalStorage, StorageError, check_key

pytestmark = pytest.mark.attack


def test_a_legacy_absolute_artifact_path_is_read_only_inside_work_or_products(tmp_path: Path) -> None:
    from registry import legacy_artifact_path

    home = tmp_path / "home"
    (home / "secrets").mkdir(parents=True)
    (home / "secrets" / "vault.key").write_bytes(b"KEY")
    (home / "work" / "op").mkdir(parents=True)
    (home / "work" / "op" / "out.csv").write_bytes(b"a,b\n")
    (home / "work" / "op" / "escape.csv").symlink_to(home / "secrets" / "vault.key")
    assert legacy_artifact_path(home, str(home / "work" / "op" / "out.csv")).read_bytes() == b"a,b\n"
    for forged in (
        home / "secrets" / "vault.key",
        home / "work" / ".." / "secrets" / "vault.key",
        home / "work" / "op" / "escape.csv",  # a link inside work/ to a secret: its real path decides
        Path("/etc/passwd"),
        home / "work" / "op",  # a directory, not a file
    ):
        with pytest.raises(StorageError):
            legacy_artifact_path(home, str(forged))
    with pytest.raises(StorageError):
        check_key(str(home / "work" / "op" / "out.csv"))


def test_an_object_that_is_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "home")
    storage.put("work/op/real.csv", b"x")
    os.mkfifo(tmp_path / "home" / "work" / "op" / "pipe.csv")
    with pytest.raises(StorageError):
        storage.read("work/op/pipe.csv")
    assert not storage.exists("work/op/pipe.csv")
    assert [i.key for i in storage.list("work")] == ["work/op/real.csv"]


def test_local_path_and_open_refuse_an_object_that_is_a_symlink(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "home")
    storage.put("work/op/real.csv", b"x")
    (tmp_path / "secret").write_bytes(b"secret")
    (tmp_path / "home" / "work" / "op" / "link.csv").symlink_to(tmp_path / "secret")
    with pytest.raises(StorageError):
        storage.local_path("work/op/link.csv")
    with pytest.raises(StorageError):
        storage.read("work/op/link.csv")
    storage.delete("work/op/link.csv")  # removes the link, never its target
    assert (tmp_path / "secret").read_bytes() == b"secret"


def test_open_storage_refuses_user_info_in_any_url(tmp_path: Path) -> None:
    from core.storage_urls import open_storage

    for url, endpoint in (
        ("s3://bucket/prefix", "https://AKID:TOPSECRETVALUE@s3.example"),
        ("file://u:TOPSECRETVALUE@localhost/x", None),
    ):
        with pytest.raises(StorageError) as caught:
            open_storage(url, home=tmp_path, endpoint_url=endpoint)
        assert "TOPSECRETVALUE" not in str(caught.value)


def test_rendered_policies_keep_ledger_to_the_signer_and_workers_create_only() -> None:
    from core.storage_roles import ROLE_ACCESS, aws_policies, seaweedfs_bucket_policy

    assert [r for r, a in ROLE_ACCESS.items() if "ledger" in a.write] == ["signer"]
    aws = aws_policies("b", "p")
    for role in ("worker", "signer"):
        text = json.dumps(aws[role])
        assert "s3:DeleteObject" not in text and "s3:if-none-match" in text
    denied = seaweedfs_bucket_policy("b", "p")["Statement"]
    assert all(s["Effect"] == "Deny" and s["Action"] == ["s3:DeleteObject"] for s in denied)
    assert any("keyong-worker" in str(s["Principal"]) and "b/p/work/*" in str(s["Resource"]) for s in denied)


def test_a_forged_released_artifact_path_never_reaches_a_worker(tmp_path: Path) -> None:
    """``products.artifacts[].path`` feeds the worker's differencing guard, which opens the files on its own
    host: an absolute path outside the home's work/ and products/ (a forged row) is refused, not opened."""
    from types import SimpleNamespace

    from sandbox.ports import RegistryHooks

    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "data_master.key").write_bytes(b"KEY")
    for forged in (str(tmp_path / "secrets" / "data_master.key"), "/etc/passwd", "products/../secrets/x"):
        product = SimpleNamespace(name="p", datasets=[{"name": "ds"}], artifacts=[{"path": forged}])
        registry = SimpleNamespace(
            config=SimpleNamespace(home=tmp_path), products=SimpleNamespace(list=lambda viewer, p=product: [p])
        )
        with pytest.raises(StorageError):
            RegistryHooks(registry).released("ds")
