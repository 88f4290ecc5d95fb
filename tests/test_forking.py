"""The forked second-core worker: same results as in-process, failures raised, no child left behind.

Large desensitizations split free-text scanning and fingerprint hashing over two processes
(``desensitize.forking``); a result that depended on whether a fork happened would make the copy a
sandbox mounts, or the guard's fingerprints, differ between a laptop and a server.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from desensitize import FingerprintSet
from desensitize.forking import BACKGROUND_NICENESS, Forked, WorkerLostError, worth_forking
from desensitize.textscan import redact
from samples import synthetic

PEPPER = b"forking-test-pepper-0123456789ab"


def test_a_forked_result_crosses_the_pipe() -> None:
    data = np.arange(200_000)
    with Forked(lambda: (os.getpid(), data * 2)) as job:
        pid, doubled = job.result()
    assert pid != os.getpid()
    assert np.array_equal(doubled, data * 2)


def test_a_failing_child_is_raised_in_the_parent() -> None:
    def boom() -> None:
        raise ValueError("broken row 17")

    with pytest.raises(ValueError, match=r"^broken row 17$"), Forked(boom) as job:  # its own type (odd23)
        job.result()

    class UnpicklableError(Exception):
        def __init__(self, row: int, *, why: str) -> None:  # a required keyword: unpickling fails
            super().__init__(f"row {row}: {why}")

    def unpicklable() -> None:
        raise UnpicklableError(17, why="broken")

    # what cannot cross the pipe comes back as its text
    with pytest.raises(RuntimeError, match="UnpicklableError: row 17: broken"), Forked(unpicklable) as job:
        job.result()


def test_leaving_early_kills_the_child() -> None:
    import time

    with pytest.raises(KeyError), Forked(lambda: time.sleep(30)) as job:
        pid = job._pid
        raise KeyError("the parent failed first")
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: no zombie, no sleeper


def test_a_background_child_yields_the_cores_to_its_parent() -> None:
    """Work done ahead for a later stage runs niced, so the stage the parent runs meanwhile is not slowed by it."""
    own = os.getpriority(os.PRIO_PROCESS, 0)
    with Forked(lambda: os.getpriority(os.PRIO_PROCESS, 0), background=True) as job:
        assert job.result() == min(19, own + BACKGROUND_NICENESS)
    with Forked(lambda: os.getpriority(os.PRIO_PROCESS, 0)) as job:
        assert job.result() == own  # what the parent waits for next keeps its priority
    assert os.getpriority(os.PRIO_PROCESS, 0) == own


def test_a_child_that_leaves_without_its_result_is_a_lost_worker() -> None:
    with (
        pytest.raises(
            WorkerLostError, match=r"the worker process for the leaver exited with status 0 without a result"
        ),
        Forked(lambda: os._exit(0), "the leaver") as job,
    ):
        job.result()
    with pytest.raises(WorkerLostError, match="exited with status 3"), Forked(lambda: os._exit(3)) as job:
        job.result()


def test_a_large_result_crosses_and_no_descriptor_is_left_open() -> None:
    """The result crosses through an anonymous file in memory, read once the child has ended: a result far
    larger than a pipe's buffer arrives whole, and neither a read nor a cancel leaves a descriptor behind."""
    before = len(os.listdir("/proc/self/fd"))
    big = np.arange(12_000_000, dtype=np.int64)  # 96 MB
    with Forked(lambda: big[::-1].copy()) as job:
        assert np.array_equal(job.result(), big[::-1])
    for _ in range(20):
        with Forked(lambda: b"x" * 100_000) as job:
            assert job.result() == b"x" * 100_000
        with Forked(lambda: 1) as job:
            job.cancel()
    assert len(os.listdir("/proc/self/fd")) == before


def test_workers_decide_and_small_inputs_stay_in_process() -> None:
    assert not worth_forking(10)
    assert not worth_forking(10_000_000, workers=1)
    assert worth_forking(10, workers=2)


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    return synthetic.residents(6000, seed=21)


def test_redaction_is_the_same_forked_or_not(people: pd.DataFrame) -> None:
    names = people["姓名"].tolist()
    inline = redact(people["备注"], names=names, workers=1)
    forked = redact(people["备注"], names=names, workers=2)
    pd.testing.assert_series_equal(inline, forked)
    assert inline.notna().sum() == people["备注"].notna().sum()


def test_fingerprints_are_the_same_forked_or_not(people: pd.DataFrame) -> None:
    types = {"姓名": "person_name", "公民身份号码": "cn_resident_id", "手机号码": "cn_phone", "住址": "address"}
    raw = people[list(types)]
    copy = raw.assign(公民身份号码=raw["公民身份号码"].str.slice(0, 6))
    sets = [
        FingerprintSet.build(
            raw, copy, types, pepper=PEPPER, pseudonym_columns=["公民身份号码"], quasi_identifier_columns=[], workers=w
        )
        for w in (1, 2)
    ]
    assert sets[0].counts() == sets[1].counts()
    for kind, array in sets[0].arrays.items():
        assert np.array_equal(array, sets[1].arrays[kind]), kind


def test_pseudonym_pieces_are_the_same_on_threads_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above ``MIN_ROWS`` pseudonyms the three piece lengths are numbered on threads; the result must not
    depend on it (the fingerprints pick the kept rows' pieces from it)."""
    from desensitize import pseudonym_pieces as pieces_module
    from desensitize.fingerprint_hashes import fingerprint_key

    rng = np.random.default_rng(7)
    high, low = rng.integers(0, 2**63, 120_000), rng.integers(0, 2**63, 120_000)
    hexes = [f"{a:016x}{b:016x}" for a, b in zip(high, low, strict=True)]
    hexes[5:50] = hexes[:45]  # repeated pseudonyms: pieces shared between rows
    frame = pd.DataFrame({"p": pd.array(hexes, dtype="str")})
    key = fingerprint_key(PEPPER)
    threaded = pieces_module.pseudonym_pieces(frame, ["p"], key)
    monkeypatch.setattr(pieces_module, "worth_forking", lambda rows: False)
    inline = pieces_module.pseudonym_pieces(frame, ["p"], key)
    assert threaded is not None and inline is not None
    assert list(threaded.codes) == list(inline.codes) == [10, 12, 16]
    for n in inline.codes:
        assert np.array_equal(threaded.codes[n], inline.codes[n]), n
        assert np.array_equal(threaded.prints[n], inline.prints[n]), n
