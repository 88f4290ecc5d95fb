"""Never wedge (issue 15, principle 6): a job whose judging or recording raises ends ``failed`` with
verdict ``block`` and a finding, and the jobs queued behind it still run — in one ``run-pending`` and
in a long-running worker. The crash that started it (a job with thousands of long output names made
the ledger payload exceed 64 KiB) now ends with a verdict. Both databases."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import sandbox.guard as guard
from app import Instance
from tests.job_worker_proc import OPERATOR, SCENARIO, FakeResult, licensed


@pytest.fixture
def instance(initialised: tuple[Instance, dict[str, str]]) -> Instance:
    inst = initialised[0]
    licensed(inst.registry, inst.home)
    return inst


def _runner(kind: str, code: str, *, out_dir: Path, **_: Any) -> FakeResult:
    """A stand-in run: ``many`` writes 3,000 files with 150-character names, anything else one small table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [f"{'n' * 200}{i:05d}.csv" for i in range(3000)] if code == "many" else ["t.csv"]
    outputs = []
    for name in names:
        (out_dir / name).write_text("区县,n\n尖山区,5\n", encoding="utf-8")
        data = (out_dir / name).read_bytes()
        outputs.append({"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    return FakeResult(out_dir=out_dir, outputs=outputs, stdout="done\n")


def _submit(instance: Instance, code: str) -> int:
    return instance.jobs.submit(OPERATOR, ["traffic"], "python", code, SCENARIO)


def test_a_guard_that_raises_fails_the_job_with_block_and_the_next_job_runs(
    instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = guard.judge
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the guard fell over")
        return real(*args, **kwargs)

    monkeypatch.setattr(guard, "judge", flaky)
    first, second = _submit(instance, "one"), _submit(instance, "two")
    views = {v.id: v for v in instance.worker(runner=_runner, fingerprints=None).run_pending()}
    assert views[first].state == "failed" and views[first].verdict == "block"
    assert [f["rule"] for f in views[first].findings] == ["guard.error"]
    assert views[second].state == "done" and views[second].verdict in ("pass", "review")
    ended = instance.ledger.entries(action="job.failed")
    assert any(e.subject == f"job:{first}" for e in ended)


def test_recording_that_raises_still_ends_the_job(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = instance.jobs.queue
    real = queue.finish
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("payload refused")
        return real(*args, **kwargs)

    monkeypatch.setattr(queue, "finish", flaky)
    first, second = _submit(instance, "one"), _submit(instance, "two")
    views = {v.id: v for v in instance.worker(runner=_runner, fingerprints=None).run_pending()}
    assert views[first].state == "failed" and views[first].verdict == "block"
    assert views[second].state == "done" and views[second].verdict is not None


def test_thousands_of_long_output_names_end_with_a_verdict(instance: Instance) -> None:
    many, after = _submit(instance, "many"), _submit(instance, "after")
    views = {v.id: v for v in instance.worker(runner=_runner, fingerprints=None).run_pending()}
    assert views[many].state == "done" and views[many].verdict == "block"
    assert {"manifest.file_count", "manifest.name"} <= {f["rule"] for f in views[many].findings}
    assert views[after].state == "done" and views[after].verdict is not None
    payload = instance.ledger.entries(action="job.finished")[-2].payload
    assert payload["outputs"]["count"] == 3000 and len(str(payload)) < 8192


def test_a_long_running_worker_goes_on_after_a_job_it_could_not_judge(
    instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = guard.judge
    seen: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("job") is None:  # the worker's warm-up judgement when it starts (sandbox.guard.warm)
            return real(*args, **kwargs)
        seen.append(1)
        if len(seen) == 1:
            raise MemoryError("judging ran out of memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(guard, "judge", flaky)
    first, second = _submit(instance, "one"), _submit(instance, "two")
    worker = instance.worker(runner=_runner, fingerprints=None)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,), kwargs={"poll": 0.05}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and instance.jobs.queue.get(second).state in ("queued", "running"):
        time.sleep(0.05)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    failed, done = instance.jobs.queue.get(first), instance.jobs.queue.get(second)
    assert failed.state == "failed" and failed.verdict == "block"
    assert done.state == "done" and done.verdict is not None
