"""Mount sources: a job cannot learn from its mount table where the platform keeps data (issue 15, principle 8).

``/proc/self/mountinfo`` names the source path of every bind. Were the granted copies and ``/out``
bound from the instance home, a job would read the home's path, the operator's name, the licence
id and the job id there — facts about the platform, not the data it was granted
(数据可用不可见, shuangyashan-2026-public-data.txt 第三十五条). The runner stages both under neutral
names in its per-run directory; these tests read every mount table a job can reach.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pandas as pd
import pytest

from sandbox import runner
from tests.sandbox_escape import job_run, sandbox_required

pytestmark = pytest.mark.attack
__all__ = ["sandbox_required"]

SECRETS = ("SECRETHOME", "operator-ACME", "licence-42", "jobs/9917")

READ_MOUNTS = """
import json, os
import pandas as pd
seen = {}
for path in ("/proc/self/mountinfo", "/proc/self/mounts", "/proc/1/mountinfo", "/proc/self/mountstats",
             "/proc/1/mounts"):
    try:
        seen[path] = open(path, encoding="utf-8", errors="replace").read()
    except OSError as exc:
        seen[path] = type(exc).__name__
for link in ("/proc/self/cwd", "/proc/self/root", "/proc/1/cwd", "/proc/1/root"):
    try:
        seen[link] = os.readlink(link)
    except OSError as exc:
        seen[link] = type(exc).__name__
frame = pd.read_parquet("/data/residents.parquet")
os.makedirs("/out/sub")
frame.groupby("区县").size().rename("n").to_csv("/out/summary.csv")
open("/out/sub/rows.txt", "w").write(str(len(frame)))
print(json.dumps(seen))
"""


def _home_layout(tmp_path: Path) -> tuple[Path, Path]:
    """A copy and an out dir laid out as an instance home lays them out, with tell-tale names."""
    home = tmp_path / "home-SECRETHOME"
    copy = home / "copies" / "residents" / "v3" / "residents.parquet"
    copy.parent.mkdir(parents=True)
    pd.DataFrame({"区县": ["南山", "福田", "南山"], "年龄段": ["20-29", "30-39", "20-29"]}).to_parquet(copy)
    out_dir = home / "work" / "operator-ACME" / "licence-42" / "jobs" / "9917" / "1" / "out"
    return copy, out_dir


def _assert_nothing_of_the_host(seen: dict[str, str], copy: Path, out_dir: Path) -> None:
    text = json.dumps(seen, ensure_ascii=False)
    for secret in (*SECRETS, str(copy), str(copy.resolve()), str(out_dir), str(out_dir.parent)):
        assert secret not in text, f"{secret!r} visible inside the sandbox"
    mountinfo = seen["/proc/self/mountinfo"]
    assert " /data " in mountinfo and " /out " in mountinfo
    assert "residents" not in mountinfo  # the copy is a file under the bound /data, not a mount of its own
    # Field 4 is the bind's source inside its filesystem, field 5 the mount point.
    roots = {fields[4]: fields[3] for fields in (line.split(" ") for line in mountinfo.splitlines())}
    neutral = re.compile(r"^(/[^/]+)*/keyong-run-[^/]+/(data|out|etc|job)$")
    for target in ("/data", "/out", "/etc", "/job"):
        assert neutral.match(roots[target]), f"{target} is bound from {roots[target]}"
    for path in ("/proc/1/mountinfo", "/proc/1/mounts"):  # bwrap's own pid 1: unreadable or the same table
        assert seen[path] in ("PermissionError", seen[path.replace("/1/", "/self/")])


def test_mountinfo_names_no_home_operator_licence_or_job(tmp_path: Path) -> None:
    copy, out_dir = _home_layout(tmp_path)
    result = job_run("python", READ_MOUNTS, datasets={"residents": copy}, out_dir=out_dir)
    assert result.status == "ok", result.stderr
    seen = json.loads(result.stdout)
    _assert_nothing_of_the_host(seen, copy, out_dir)
    assert seen["/proc/self/cwd"] == "/out"
    # The job still worked: it read the copy and its outputs arrived in the caller's out_dir.
    assert result.out_dir == out_dir
    assert [o["name"] for o in result.outputs] == ["sub/rows.txt", "summary.csv"]
    assert (out_dir / "sub" / "rows.txt").read_text() == "3"
    assert pd.read_csv(out_dir / "summary.csv").set_index("区县")["n"].to_dict() == {"南山": 2, "福田": 1}
    for path in (out_dir / "sub" / "rows.txt", out_dir / "summary.csv"):
        info = os.lstat(path)
        assert stat.S_ISREG(info.st_mode) and info.st_nlink == 1
        assert info.st_mode & 0o7777 == 0o600 and info.st_uid == os.geteuid()
    assert os.stat(copy).st_nlink == 1  # the staged hard link went with the run's staging directory


def test_copied_staging_and_cross_filesystem_delivery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a hard link is refused (another filesystem, protected_hardlinks), the copy is copied, and
    outputs still arrive when ``out_dir`` is on another filesystem than the staging directory."""
    copy, out_dir = _home_layout(tmp_path)
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and os.stat(shm).st_dev != os.stat(runner.tempfile.gettempdir()).st_dev:
        out_dir = Path(runner.tempfile.mkdtemp(prefix="keyong-test-", dir=shm)) / "operator-ACME" / "licence-42" / "out"

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(runner.os, "link", refuse)
    try:
        result = job_run("python", READ_MOUNTS, datasets={"residents": copy}, out_dir=out_dir)
        assert result.status == "ok", result.stderr
        _assert_nothing_of_the_host(json.loads(result.stdout), copy, out_dir)
        assert sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*")) == ["sub", "sub/rows.txt", "summary.csv"]
        assert (out_dir / "sub" / "rows.txt").read_text() == "3"
    finally:
        if out_dir.is_relative_to(shm):
            runner.shutil.rmtree(out_dir.parents[2], ignore_errors=True)
