"""Several processes appending at once never fork the chain; a writer killed mid-batch loses
nothing it had acknowledged (issue 3, Must show). Both on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app import Instance, Settings

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def worker(settings: Settings, name: str, count: int, batch: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.ledger_worker",
            str(settings.home),
            settings.database_url or "",
            name,
            str(count),
            str(batch),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_four_processes_append_5000_each_into_one_gapless_chain(
    settings: Settings, initialised: tuple[Instance, dict[str, str]]
) -> None:
    instance, _ = initialised
    base = instance.ledger.size()
    workers = [worker(settings, f"w{i}", 5000, 50) for i in range(4)]
    for process in workers:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        acks = [int(line.split()[1]) for line in out.splitlines()]
        assert len(acks) == 100 and acks == sorted(acks)
    report = instance.ledger.verify()
    assert report.ok, report.problems[:5]
    assert report.entries == base + 20_000
    # Every writer's entries are all there, each exactly once.
    entries = instance.ledger.entries(after=base, limit=10_000) + instance.ledger.entries(
        after=base + 10_000, limit=10_000
    )
    subjects = [e.subject for e in entries]
    assert len(subjects) == len(set(subjects)) == 20_000
    assert [e.seq for e in entries] == list(range(base + 1, base + 20_001))
    # Batches of different writers interleave: the lock, not luck, kept the chain whole.
    actors = [e.actor for e in entries]
    switches = sum(1 for a, b in itertools.pairwise(actors) if a != b)
    assert switches >= 3


def test_writer_killed_mid_batch_keeps_every_acknowledged_entry(
    settings: Settings, initialised: tuple[Instance, dict[str, str]]
) -> None:
    instance, _ = initialised
    process = worker(settings, "victim", 1_000_000, 2000)
    assert process.stdout is not None
    acked = 0
    for _ in range(4):
        line = process.stdout.readline()
        assert line.startswith("ack "), process.stderr.read() if process.stderr else line
        acked = int(line.split()[1])
    os.kill(process.pid, signal.SIGKILL)  # while the next batch is being built or committed
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    instance.engine.dispose()
    report = instance.ledger.verify()
    assert report.ok, report.problems[:5]
    assert report.entries >= acked
    assert (report.entries - 5) % 2000 == 0  # whole batches only: the killed one left nothing half-written
    assert instance.ledger.get(acked).subject.startswith("job:victim-")
    # And the ledger takes appends again.
    instance.ledger.append(actor="a", role="r", action="ledger.recovered", subject="test:kill")
    assert instance.ledger.verify().ok
