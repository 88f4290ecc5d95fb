"""The job tests' registry and job service as fixtures, found by name (``pytest_plugins`` in ``tests/conftest.py``).

Why a plugin and not an import: a fixture imported into a test module is a module-level name, so a test
parameter of the same name is a redefinition to ruff (F811); fixtures a plugin registers are looked up
by name, with nothing imported. A module whose set-up differs (another licence, a DP budget, other
quotas) defines its own ``registry`` or ``job_quotas``, which wins over these for that module.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app import Instance
from operators.jobs import Jobs, Quotas
from registry import Registry
from sandbox.queue import JobQueue
from tests.conftest import FakeClock
from tests.job_worker_proc import MARKERS_ENV, licensed
from tests.test_registry_licences import make_registry


@pytest.fixture
def registry(instance: Instance, clock: FakeClock) -> Registry:
    """A registry on the fake clock where ``OPERATOR`` holds ``traffic`` (a real tiny copy) for ``SCENARIO``
    under an active licence (:func:`tests.job_worker_proc.licensed`)."""
    reg = make_registry(instance, clock)
    licensed(reg, instance.home)
    return reg


@pytest.fixture
def job_quotas() -> Quotas:
    """Quotas no test of the queue reaches; the modules that test quotas set their own."""
    return Quotas(concurrent=1000, per_day=1000)


@pytest.fixture
def jobs(registry: Registry, clock: FakeClock, job_quotas: Quotas) -> Jobs:
    """Job submission over ``registry``'s queue, on the fake clock."""
    return Jobs(registry, JobQueue(registry.recorder, clock=clock), job_quotas)


@pytest.fixture
def markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The crash points' marker directory (``core.crashpoints``: ``MARKERS_ENV``), fresh per test."""
    path = tmp_path / "markers"
    path.mkdir()
    monkeypatch.setenv(MARKERS_ENV, str(path))
    return path
