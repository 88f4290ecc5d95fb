"""fix22 item 4: a job whose judging raised ends ``block`` and is reported to usage monitoring like any block.

``sandbox.worker`` reports a guard's ``block`` (repeated blocked exports are a security anomaly, 双鸭山 第三十一条);
a crash of the guard set ``block`` by another path (``Worker._wedged``) that reported nothing, so a guard made
to fall over was quieter than one that blocked. Both databases.
"""

from __future__ import annotations

from typing import Any

import pytest

import sandbox.guard as guard
from app import Instance
from core import Actor
from registry.monitoring import Monitoring
from tests.job_worker_proc import OPERATOR, licensed
from tests.test_guard_worker import _runner, _submit

AGENCY = Actor("demo-agency", "agency")


@pytest.fixture
def instance(initialised: tuple[Instance, dict[str, str]]) -> Instance:
    inst = initialised[0]
    licensed(inst.registry, inst.home)
    return inst


def _blocked_exports(instance: Instance) -> list[str]:
    violations = instance.registry.monitoring.list_violations(viewer=AGENCY, operator=OPERATOR)
    return [v.subject for v in violations if v.kind == "blocked_export"]


def _crashing_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the guard fell over")

    monkeypatch.setattr(guard, "judge", crash)


def test_a_judging_crash_is_reported_as_a_blocked_export(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    _crashing_guard(monkeypatch)
    job = _submit(instance, "one")
    (view,) = instance.worker(runner=_runner, fingerprints=None).run_pending()
    assert view.id == job and view.state == "failed" and view.verdict == "block"
    assert _blocked_exports(instance) == [f"job:{job}"]
    assert instance.ledger.verify().ok


def test_a_crash_whose_joined_report_fails_still_ends_and_is_reported(
    instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The monitoring record failing inside the end transaction rolls it back: the end is recorded alone, then
    reported after the commit (as a guard's block whose joined report cannot be made)."""
    _crashing_guard(monkeypatch)
    real = Monitoring.record_blocked_export
    calls: list[int] = []

    def flaky(self: Monitoring, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("monitoring fell over")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Monitoring, "record_blocked_export", flaky)
    job = _submit(instance, "one")
    (view,) = instance.worker(runner=_runner, fingerprints=None).run_pending()
    assert view.id == job and view.state == "failed" and view.verdict == "block"
    assert len(calls) == 2
    assert _blocked_exports(instance) == [f"job:{job}"]
