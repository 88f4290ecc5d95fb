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
from desensitize.forking import Forked, worth_forking
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
