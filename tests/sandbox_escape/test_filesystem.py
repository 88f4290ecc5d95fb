"""Filesystem and environment attacks: the job sees a fresh root with only its grant (issue 6).

What it must not reach: /etc/shadow, the instance home and its vault (raw data, 原始数据不出域),
another job's outputs, pid 1's environment, the host's environment variables; nor write anywhere
but /out (and its own /tmp, which vanishes with it). GB/T 35273-2020 §6.3 (access control).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pandas as pd
import pytest

from sandbox.runner import JOB_ENV
from tests.sandbox_escape import attack, sandbox_required

pytestmark = pytest.mark.attack
__all__ = ["sandbox_required"]

PROBE = """
import json, os, sys
results = {}
for path in json.loads(open("/job/paths.json").read()) if os.path.exists("/job/paths.json") else []:
    try:
        with open(path, "rb") as handle:
            results[path] = "READ " + handle.read(200).decode("utf-8", "replace")
    except OSError as exc:
        results[path] = type(exc).__name__
print(json.dumps(results))
"""


def _probe(tmp_path: Path, paths: list[str], out: str = "out") -> dict[str, str]:
    from sandbox.runner import sandbox_python
    from tests.sandbox_escape import SMALL, processes_with, sandbox_run

    marker = f"keyong-probe-{uuid.uuid4().hex}"
    result = sandbox_run(
        [sandbox_python(), "-I", "-B", "/job/probe.py", marker],
        data={},
        out_dir=tmp_path / out,
        limits=SMALL,
        files={"probe.py": PROBE.encode(), "paths.json": json.dumps(paths).encode()},
        marker=marker,
    )
    assert result.status == "ok", result.stderr
    assert processes_with(marker) == []
    return json.loads(result.stdout)


def test_etc_shadow_and_host_users_are_not_visible(tmp_path: Path) -> None:
    found = _probe(tmp_path, ["/etc/shadow", "/etc/gshadow", "/etc/passwd"])
    assert found["/etc/shadow"] == "FileNotFoundError"
    assert found["/etc/gshadow"] == "FileNotFoundError"
    # The sandbox's passwd names only root and nobody, not the host's accounts.
    host_users = {line.split(":")[0] for line in Path("/etc/passwd").read_text().splitlines() if line}
    seen = {line.split(":")[0] for line in found["/etc/passwd"].removeprefix("READ ").splitlines() if line}
    assert seen == {"root", "nobody"}
    assert host_users - seen  # the host has more accounts: they did not leak in


def test_instance_home_vault_and_other_outputs_are_not_visible(tmp_path: Path) -> None:
    home = tmp_path / "home"
    secret = "SECRET-身份证-110101199003071234"
    (home / "vault").mkdir(parents=True)
    (home / "keyong.toml").write_text(f"signing_key = '{secret}'\n")
    (home / "vault" / "raw.parquet").write_text(secret)
    other = tmp_path / "jobs" / "other-operator" / "out"
    other.mkdir(parents=True)
    (other / "result.csv").write_text(secret)
    targets = [str(home / "keyong.toml"), str(home / "vault" / "raw.parquet"), str(other / "result.csv")]
    found = _probe(tmp_path, targets, out="jobs/mine/out")
    assert found == dict.fromkeys(targets, "FileNotFoundError")
    assert secret not in json.dumps(found, ensure_ascii=False)


def test_another_jobs_out_dir_is_invisible_to_the_next_job(tmp_path: Path) -> None:
    first, _ = attack('open("/out/result.txt", "w").write("job A result")', tmp_path / "a")
    assert first.status == "ok"
    second, _ = attack(
        f"""
        import os
        print(sorted(os.listdir("/out")))
        for path in ("{tmp_path / "a" / "result.txt"}", "{tmp_path / "a"}"):
            try:
                os.stat(path)
                print("VISIBLE", path)
            except OSError as exc:
                print(type(exc).__name__)
        """,
        tmp_path / "b",
    )
    assert second.status == "ok", second.stderr
    assert second.stdout.splitlines() == ["[]", "FileNotFoundError", "FileNotFoundError"]
    assert (tmp_path / "a" / "result.txt").read_text() == "job A result"


def test_pid1_environ_and_host_environment_do_not_leak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = "HOST-ENV-MARKER-5f1c0e"
    monkeypatch.setenv("KEYONG_SECRET_MARKER", marker)
    result, _ = attack(
        """
        import json, os
        seen = {"env": dict(os.environ)}
        for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
            try:
                seen[pid] = open(f"/proc/{pid}/environ", "rb").read().decode("utf-8", "replace")
            except OSError as exc:
                seen[pid] = type(exc).__name__
        print(json.dumps(seen))
        """,
        tmp_path / "out",
    )
    assert result.status == "ok", result.stderr
    seen = json.loads(result.stdout)
    assert marker not in result.stdout
    assert seen["env"] == {**JOB_ENV, "PWD": "/out"}  # the minimal environment (bwrap adds PWD), no host vars
    assert seen["1"] == "PermissionError"  # bwrap's pid 1 runs as root; the job is uid 65534


def test_writes_outside_out_fail_and_host_files_are_unchanged(tmp_path: Path) -> None:
    data = tmp_path / "granted.parquet"
    pd.DataFrame({"x": [1, 2, 3]}).to_parquet(data)
    before = hashlib.sha256(data.read_bytes()).hexdigest()
    import sys

    targets = [
        "/evil",
        "/etc/passwd",
        "/usr/evil",
        "/data/granted.parquet",
        "/data/evil.parquet",
        "/job/script.py",
        f"{sys.prefix}/evil.pth",
        "/proc/sys/kernel/hostname",
        "/sys/evil",
    ]
    result, _ = attack(
        f"""
        import json
        outcome = {{}}
        for path in {targets!r}:
            try:
                with open(path, "a") as handle:
                    handle.write("pwned")
                outcome[path] = "WROTE"
            except OSError as exc:
                outcome[path] = type(exc).__name__
        open("/tmp/scratch", "w").write("tmp is the job's own")
        open("/out/ok.txt", "w").write("fine")
        print(json.dumps(outcome))
        """,
        tmp_path / "out",
        data={"granted": data},
    )
    assert result.status == "ok", result.stderr
    outcome = json.loads(result.stdout)
    assert "WROTE" not in outcome.values(), outcome
    assert hashlib.sha256(data.read_bytes()).hexdigest() == before
    assert not Path(f"{sys.prefix}/evil.pth").exists()
    assert not Path("/evil").exists() and not Path("/usr/evil").exists()
    assert [entry["name"] for entry in result.outputs] == ["ok.txt"]
