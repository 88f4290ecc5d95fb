"""requirements.lock, what ``make install`` installs from (SATRE v2 2.7.02; issue 22).

The lock must cover every declared dependency (a package missing from it would make ``make install``
fail at ``pip check``, or worse, be fetched unpinned), hash every pin, lock torch to the CPU wheel
that pip really takes here, and pip must refuse a file whose hash is not the locked one.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
TORCH_WHEEL = Path("/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")
ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s*\\\s*--hash=sha256:[0-9a-f]{64})*)", re.MULTILINE)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(spec: str) -> str:
    found = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec.strip())
    assert found, spec
    return canonical(found.group(0))


def locked() -> dict[str, tuple[str, list[str]]]:
    """``name -> (version, hashes)`` of the lock."""
    return {
        canonical(m.group(1)): (m.group(2), re.findall(r"sha256:([0-9a-f]{64})", m.group(3)))
        for m in ENTRY.finditer(LOCK.read_text(encoding="utf-8"))
    }


def test_every_declared_dependency_is_locked_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = [
        *project["project"]["dependencies"],
        *project["project"]["optional-dependencies"]["dev"],
        *project["build-system"]["requires"],  # the project is built from the lock (--no-build-isolation)
    ]
    pins = locked()
    missing = sorted({_requirement_name(spec) for spec in declared} - set(pins))
    assert not missing, f"not in requirements.lock: {missing}; run `make lock`"
    unhashed = sorted(name for name, (_, hashes) in pins.items() if not hashes)
    assert not unhashed, f"pinned without a hash: {unhashed}"
    assert "keyong" not in pins  # the project itself is installed with --no-deps, not from the lock


def test_torch_is_locked_to_the_cpu_wheel_on_disk() -> None:
    version, hashes = locked()["torch"]
    assert version == "2.13.0+cpu"  # the CUDA build from the index would be several GB
    if not TORCH_WHEEL.exists():
        pytest.skip(f"{TORCH_WHEEL} is not on this machine (it is on every machine of the project's kind)")
    digest = hashlib.sha256(TORCH_WHEEL.read_bytes()).hexdigest()
    assert hashes == [digest]


@pytest.mark.slow
@pytest.mark.attack
def test_pip_refuses_a_file_whose_hash_is_not_the_locked_one(tmp_path: Path) -> None:
    """The lock is only as good as pip's check: a changed file (here: a changed hash) is refused."""
    name = "idna"
    version, hashes = locked()[name]
    good = tmp_path / "good.lock"
    good.write_text(f"{name}=={version} " + " ".join(f"--hash=sha256:{h}" for h in hashes) + "\n")
    bad = tmp_path / "bad.lock"
    bad.write_text(f"{name}=={version} --hash=sha256:{'0' * 64}\n")

    def download(lock: Path) -> subprocess.CompletedProcess[str]:
        pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes"]
        return subprocess.run(
            [*pip, "-r", str(lock), "-d", str(tmp_path / lock.stem)],
            capture_output=True,
            text=True,
            timeout=300,
        )

    accepted = download(good)
    if accepted.returncode != 0:
        pytest.skip(f"no package index reachable to download {name} from: {accepted.stderr[-300:]}")
    refused = download(bad)
    assert refused.returncode != 0 and "DO NOT MATCH THE HASHES" in refused.stderr
    assert not list((tmp_path / "bad").glob("*.whl"))
