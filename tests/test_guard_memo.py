"""The probe memo (issue 21 "Job latency"): the same judgement with it off, cold and warm; never stale.

Why: ``sandbox.guard.probe_memo`` answers a fingerprint probe from an earlier judgement of the worker.
A memo that answered for another set, or let a judgement skip the probe budget, would open the guard
(双鸭山 第五十四条: no raw data out, nor restored through reversible algorithms), so each test compares
it with the plain computation or shows it recomputing when what it is keyed by changes.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from desensitize import FingerprintSet
from sandbox.guard import GuardConfig, SourceCopy, explain, judge, probe_memo
from sandbox.guard.probe_memo import MEMO, StringsMemo, call_key, set_digest
from tests.adversarial import residents


@pytest.fixture(autouse=True)
def fresh_memo() -> Iterator[None]:
    """Each test starts from an empty memo (tests of one xdist worker share its process)."""
    MEMO.clear()
    yield
    MEMO.clear()


def _raw(i: int, column: str = "公民身份号码") -> str:
    return str(residents()[0][column].iloc[i])


def _pseudonym(i: int) -> str:
    return str(residents()[1]["公民身份号码"].iloc[i])


def _outputs() -> dict[str, dict[str, str]]:
    """Outputs of every kind the probe reads: passing aggregates, values plain, wrapped, glued, split,
    in text, in names, in JSON, in logs."""
    pseudonym, phone = _pseudonym(5), _raw(7, "手机号码")
    districts = residents()[1].groupby(["性别", "民族"]).size()
    aggregate = "性别,民族,人数\n" + "".join(f"{s},{e},{n}\n" for (s, e), n in districts.items())
    answer = {"rows": [{"group": {"性别": s, "民族": e}, "value": float(n) + 0.25} for (s, e), n in districts.items()]}
    return {
        "aggregate": {"t.csv": aggregate},
        "aggregate-again": {"t.csv": aggregate, "stdout": "rows written"},
        "raw-id": {"t.csv": f"k,n\n{_raw(3)},40\n"},
        "pseudonym-base64": {"t.csv": f"k,n\n{base64.b64encode(pseudonym.encode()).decode()},40\n"},
        "pseudonym-split": {"t.csv": f"a,b,c\n{pseudonym[:10]},{pseudonym[10:20]},{pseudonym[20:]}\n"},
        "phone-in-text": {"note.txt": f"联系电话{phone}请勿外传"},
        "phone-glued-down": {"t.csv": f"a,n\n{phone[:6]},1\n{phone[6:]},2\n"},
        "json": {"r.json": json.dumps({**answer, "note": pseudonym[:16]}, ensure_ascii=False)},
        "name": {f"{_raw(4)}.csv": aggregate},
        "log": {"t.csv": aggregate, "stdout": f"debug {pseudonym}"},
    }


def _copy() -> SourceCopy:
    """A copy as a worker indexes it once per file version (its ``memo`` starts empty)."""
    return SourceCopy.from_frame("residents", residents()[1])


def _judge(
    tmp: Path, files: dict[str, str], prints: FingerprintSet, source: SourceCopy | None = None, **kw: Any
) -> dict[str, Any]:
    """The whole judgement as plain data (verdict, findings, outputs, the operator's log)."""
    tmp.mkdir(parents=True)
    outputs = []
    stdout = files.get("stdout", "")
    for name, body in files.items():
        if name == "stdout":
            continue
        data = body.encode("utf-8")
        (tmp / name).write_bytes(data)
        outputs.append({"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    judged = judge(
        tmp,
        outputs,
        stdout=stdout,
        fingerprints={"residents": prints},
        sources={"residents": source if source is not None else _copy()},
        **kw,
    )
    return {
        "verdict": judged.verdict,
        "findings": [f.as_json() for f in judged.findings],
        "outputs": judged.outputs,
        "log": dataclasses.asdict(judged.log),
    }


def test_the_judgement_is_the_same_with_the_memo_off_cold_and_warm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Probes off and a fresh copy per judgement, against one copy and the process's memo, cold then warm."""
    prints = residents()[2]
    cases = _outputs()
    with monkeypatch.context() as off:
        off.setattr(MEMO, "entries", 0)  # nothing kept: every probe computed
        plain = {case: _judge(tmp_path / "off" / case, files, prints) for case, files in cases.items()}
        assert len(MEMO) == 0
    source = _copy()
    cold = {case: _judge(tmp_path / "cold" / case, files, prints, source) for case, files in cases.items()}
    assert len(MEMO) > 0 and source.memo  # both memos were filled
    before = MEMO.hits
    warm = {case: _judge(tmp_path / "warm" / case, files, prints, source) for case, files in cases.items()}
    assert MEMO.hits > before  # the warm round was answered from the memo
    assert cold == plain and warm == plain
    verdicts = {case: result["verdict"] for case, result in plain.items()}
    assert verdicts["aggregate"] != "block" and verdicts["json"] == "block"  # the set of outputs means something
    assert all(verdicts[case] != "pass" for case in cases if not case.startswith("aggregate")), sorted(verdicts.items())


def _without(prints: FingerprintSet, value: str) -> FingerprintSet:
    """The same set without one value (as another version of the copy would hold)."""
    values = np.setdiff1d(prints.arrays["values"], prints.hash_values([value]))
    return FingerprintSet({**prints.arrays, "values": values}, dict(prints.columns), prints._key, dict(prints.meta))


@pytest.mark.parametrize("first", ["with", "without"])
def test_another_set_is_never_answered_from_the_memo(first: str, tmp_path: Path) -> None:
    prints = residents()[2]
    pseudonym = _pseudonym(5)
    files = {"t.csv": f"k,n\n{pseudonym},40\n"}
    sets = {"with": prints, "without": _without(prints, pseudonym)}
    order = [first, "without" if first == "with" else "with"]
    rules = {name: {f["rule"] for f in _judge(tmp_path / name, files, sets[name])["findings"]} for name in order}
    assert "identifier.fingerprint" in rules["with"]
    assert "identifier.fingerprint" not in rules["without"]


def test_a_set_changed_in_place_is_probed_again(tmp_path: Path) -> None:
    """The memo keys on the sets' content, digested per judgement, never on the object or its name."""
    prints = residents()[2]
    pseudonym = _pseudonym(5)
    files = {"t.csv": f"k,n\n{pseudonym},40\n"}
    changing = _without(prints, pseudonym)
    first = _judge(tmp_path / "a", files, changing)
    changing.arrays["values"] = prints.arrays["values"]  # same object, same name: other content
    second = _judge(tmp_path / "b", files, changing)
    assert "identifier.fingerprint" not in {f["rule"] for f in first["findings"]}
    assert "identifier.fingerprint" in {f["rule"] for f in second["findings"]}


def test_a_read_only_set_is_hashed_once_and_a_replaced_array_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's kept sets are read-only: their arrays' digest is kept; other arrays are hashed again."""
    prints = residents()[2]
    frozen = FingerprintSet({k: a.copy() for k, a in prints.arrays.items()}, dict(prints.columns), prints._key,
                            dict(prints.meta))  # fmt: skip
    writeable = set_digest(frozen)
    for array in frozen.arrays.values():
        array.flags.writeable = False
    hashed: list[int] = []
    real = probe_memo._arrays_digest

    def counted(fingerprints: FingerprintSet) -> bytes:
        hashed.append(1)
        return real(fingerprints)

    monkeypatch.setattr(probe_memo, "_arrays_digest", counted)
    assert set_digest(frozen) == writeable and set_digest(frozen) == writeable and len(hashed) == 1
    values = frozen.arrays["values"][1:].copy()
    values.flags.writeable = False
    frozen.arrays["values"] = values
    assert set_digest(frozen) != writeable and len(hashed) == 2
    frozen.meta["lengths"] = {}
    assert set_digest(frozen) != set_digest(_without(prints, _pseudonym(5)))  # meta is always hashed


def test_a_remembered_probe_still_counts_against_the_budget(tmp_path: Path) -> None:
    """A smaller probe budget (another rule config) is met by the memo's recorded probe counts exactly as
    by the probes themselves: the same judgement warm and cold, for budgets on both sides of the limit."""
    prints = residents()[2]
    files = _outputs()["phone-in-text"]
    limited = set()
    for budget in (1, 10, 100, 1_000, 10_000, 100_000):
        MEMO.clear()
        _judge(tmp_path / f"fill-{budget}", files, prints)  # a generous budget fills the memo
        hits = MEMO.hits
        warm = _judge(tmp_path / f"warm-{budget}", files, prints, config=GuardConfig(max_probes=budget))
        assert MEMO.hits > hits
        MEMO.clear()
        cold = _judge(tmp_path / f"cold-{budget}", files, prints, config=GuardConfig(max_probes=budget))
        assert warm == cold, budget
        if "guard.limit" in {f["rule"] for f in cold["findings"]}:
            limited.add(budget)
    assert limited and limited != {1, 10, 100, 1_000, 10_000, 100_000}  # the limit was met and not met


def test_a_copy_of_other_content_re_derives_its_aggregates(tmp_path: Path) -> None:
    """Aggregates kept with one copy never serve another: a table the first copy accounts for is not
    accounted for by a copy with other rows (another version), judged right after with the same memo state."""
    prints = residents()[2]
    frame = residents()[1]
    counts = frame.groupby(["性别", "民族"]).size()
    files = {"t.csv": "性别,民族,人数\n" + "".join(f"{s},{e},{n}\n" for (s, e), n in counts.items())}
    same = _copy()
    first = _judge(tmp_path / "a", files, prints, same)
    again = _judge(tmp_path / "b", files, prints, same)
    other = SourceCopy.from_frame("residents", frame.iloc[: len(frame) // 2])
    changed = _judge(tmp_path / "c", files, prints, other)
    fresh = _judge(tmp_path / "d", files, prints, SourceCopy.from_frame("residents", frame.iloc[: len(frame) // 2]))
    assert first == again and first["verdict"] == "pass"
    assert changed == fresh and changed["verdict"] != "pass"
    assert "table.unaccounted" in {f["rule"] for f in changed["findings"]}


def test_aggregates_kept_with_a_copy_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(explain, "MEMO_GROUPINGS", 2)
    prints = residents()[2]
    frame = residents()[1]
    source = _copy()
    for i, dims in enumerate((["性别"], ["民族"], ["性别", "民族"], ["出生日期"])):
        counts = frame.groupby(dims).size()
        rows = "".join(",".join([*(str(v) for v in (k if isinstance(k, tuple) else (k,))), str(n)]) + "\n"
                       for k, n in counts.items())  # fmt: skip
        _judge(tmp_path / str(i), {"t.csv": ",".join([*dims, "n"]) + "\n" + rows}, prints, source)
        assert 0 < sum(1 for key in source.memo if key[0] == "candidates") <= 2


def test_the_memo_is_bounded_and_keys_only_small_calls() -> None:
    memo = StringsMemo(entries=3)
    for i in range(5):
        memo.put(bytes([i]) * 32, {}, 0, i, checked=False)
    assert len(memo) == 3 and memo.get(bytes([0]) * 32) is None and memo.get(bytes([4]) * 32) is not None
    digest = b"\0" * 32
    assert call_key(digest, ["a"] * 3000, decode=True, windows=True) is None
    assert call_key(digest, ["x" * 70_000], decode=True, windows=True) is None
    switches = [(d, w) for d in (False, True) for w in (False, True)]
    keys = {call_key(digest, v, decode=d, windows=w) for v in (["ab", "c"], ["a", "bc"]) for d, w in switches}
    assert len(keys) == 8  # strings are delimited, switches are part of the key
