"""The export guard follows linkage (issue 23): joined aggregates are re-derived from the joined view.

A licence granting ``people`` and ``enrol`` jointly lets a job join their copies on the licence's person
key; the guard re-derives a joined table from the same join of the mounted copies (``people+enrol``), so an
honest aggregate is accounted for and the SDC rules (minimum cell count) run on the joined counts, while
person-level joined rows are still blocked (数据可用不可见, 双鸭山 第三十五条). Datasets granted to one licence
but not jointly never get a joined view (their per-licence keys do not join). Differencing compares a new
output with products released from the same dataset under another licence, by another operator. Real jobs
through the worker, with a stand-in runner that computes what the SQL would (the sandbox is not needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from app import Instance
from core import Actor
from operators import Role
from sandbox.guard_sources import GuardSources, Mounted, link_groups
from tests.job_worker_proc import delegated
from tests.linkage_support import APART, JOINT, SCENARIO, Compute, Linked, joined, linked, table_runner
from tests.recovery_support import confirm
from tests.totp_support import create_enrolled

JOIN_SQL = (
    "SELECT p.性别, e.参保状态, count(*) AS 人数 FROM people p JOIN enrol e ON p.公民身份号码 = e.身份证号 "
    "GROUP BY p.性别, e.参保状态"
)


@pytest.fixture
def database_url() -> None:
    """SQLite only: these tests are about the guard's sources, not about the database."""
    return None


@pytest.fixture
def env(initialised: tuple[Instance, dict[str, str]], tmp_path: Path) -> Linked:
    return linked(initialised[0], tmp_path)


def _counts(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return joined(frames).groupby(["性别", "参保状态"]).size().rename("人数").reset_index()


def _run(env: Linked, operator: str, compute: Compute, code: str = JOIN_SQL, worker: str = "joined") -> Any:
    job = env.instance.jobs.submit(operator, ["people", "enrol"], "sql", code, SCENARIO)
    (view,) = env.instance.worker(runner=table_runner(compute), worker_id=worker).run_pending()
    assert view.id == job and view.state == "done", view
    return view


def _rules(view: Any) -> set[str]:
    return {f["rule"] for f in view.findings}


def test_a_joint_job_carries_its_link_group_and_person_key(env: Linked) -> None:
    joint = env.instance.jobs.show(env.instance.jobs.submit(JOINT, ["people", "enrol"], "sql", "SELECT 1", SCENARIO))
    assert {n: (s["link_group"], s["person_key"]) for n, s in joint.datasets.items()} == {
        "people": ("enrol+people", "公民身份号码"),
        "enrol": ("enrol+people", "身份证号"),
    }
    apart = env.instance.jobs.show(env.instance.jobs.submit(APART, ["people", "enrol"], "sql", "SELECT 1", SCENARIO))
    assert all("link_group" not in s and "person_key" not in s for s in apart.datasets.values())
    assert link_groups([Mounted.of(n, s) for n, s in apart.datasets.items()]) == {}
    sources = GuardSources(env.instance.home, env.registry.at_rest)
    assert set(sources.of(apart.datasets)) == {"people", "enrol"}  # no joined view: not granted jointly
    joined = sources.of(joint.datasets)
    assert list(joined) == ["people", "enrol", "enrol+people"] or list(joined) == ["enrol", "people", "enrol+people"]


def _having(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The demo's join (``HAVING count(*) >= 10``): every cell of these copies is above it."""
    counts = _counts(frames)
    return counts[counts["人数"] >= 10]


def test_an_honest_joined_aggregate_is_accounted_for(env: Linked) -> None:
    view = _run(env, JOINT, _having)
    assert "table.unaccounted" not in _rules(view), view.findings
    assert view.verdict == "pass", view.findings


def test_a_small_joined_cell_is_reviewed_for_the_minimum_cell_count(env: Linked) -> None:
    """The same honest table, under a minimum cell count of 30: the joined counts 28 and 25 fall below it,
    and only the joined view tells the guard so (SDC on the platform's own counts, not the operator's)."""
    from sandbox.guard import GuardConfig
    from sandbox.sdc import SdcConfig

    strict = GuardConfig(sdc=SdcConfig(min_cell_count=30))
    job = env.instance.jobs.submit(JOINT, ["people", "enrol"], "sql", JOIN_SQL, SCENARIO)
    (view,) = env.instance.worker(runner=table_runner(_counts), worker_id="strict", guard_config=strict).run_pending()
    assert view.id == job and view.verdict == "review"
    assert _rules(view) == {"sdc.min_cell_count"}, view.findings
    (finding,) = view.findings
    assert finding["detail"].startswith("2 cell(s)") and finding["severity"] == "soft"


def test_beyond_the_fan_out_bound_no_joined_view_is_made_and_the_table_is_reviewed(env: Linked) -> None:
    """Fail closed, as before the joined view: the table is unaccounted for, never passed. Here it is even
    blocked: people's only quasi-identifier is 性别, so each row matches its quasi-identifier tuples, which
    only a table the platform re-derived as one row per group is excused from (``records._groups_only``)."""
    job = env.instance.jobs.submit(JOINT, ["people", "enrol"], "sql", JOIN_SQL, SCENARIO)
    worker = env.instance.worker(runner=table_runner(_having), worker_id="bounded")
    worker.sources.bound = 416  # the join holds 417 rows
    (view,) = worker.run_pending()
    assert view.id == job and view.verdict == "block", [f["detail"] for f in view.findings]
    assert _rules(view) == {"table.unaccounted", "record.matching_rows"}, view.findings
    env.instance.jobs.submit(JOINT, ["people", "enrol"], "sql", JOIN_SQL, SCENARIO)
    (view,) = env.instance.worker(runner=table_runner(_counts), worker_id="bounded-2").run_pending()
    assert view.verdict == "pass", view.findings  # the same join within the default bound


def test_person_level_joined_rows_are_still_blocked(env: Linked) -> None:
    def rows(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
        return joined(frames)[["公民身份号码", "性别", "参保状态"]]

    view = _run(env, JOINT, rows, code="SELECT p.公民身份号码, p.性别, e.参保状态 FROM people p JOIN enrol e ON "
                "p.公民身份号码 = e.身份证号")  # fmt: skip
    assert view.verdict == "block"
    assert "identifier.fingerprint" in _rules(view), view.findings


def test_datasets_not_granted_jointly_get_no_joined_view(env: Linked) -> None:
    """Under the licence granting both apart, the per-licence keys join nothing: the job's join is empty, and
    a table of the joined counts (here computed from the jointly keyed copies, as if smuggled in) cannot be
    tied to anything: the guard has no joined view to tie it to."""
    joint_view = _run(env, JOINT, _counts, worker="joint")
    assert joint_view.verdict == "pass", joint_view.findings
    joint_paths = {n: env.instance.home / s["path"] for n, s in joint_view.datasets.items()}

    def elsewhere(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
        assert joined(frames).empty  # this licence's copies do not join
        return _counts({n: pd.read_parquet(_plain(env, p)) for n, p in joint_paths.items()})

    view = _run(env, APART, elsewhere, worker="apart")
    assert "people+enrol" not in str(view.findings) and "enrol+people" not in str(view.findings)
    # Unaccounted for (and, as without any joined view, its rows match people's quasi-identifier tuples).
    assert view.verdict == "block" and _rules(view) == {"table.unaccounted", "record.matching_rows"}, view.findings


def _plain(env: Linked, path: Path) -> Any:
    import io

    return io.BytesIO(env.registry.at_rest.read(path))


def test_differencing_compares_with_products_released_under_another_licence(env: Linked) -> None:
    """Per-licence keys hide no earlier release: a total released by one operator from ``people``, and a
    total differing by three computed by another operator under its own licence, isolate three persons."""
    reviewer = Actor("reviewer-2", "agency")
    create_enrolled(env.instance.identity, reviewer.name, Role.AGENCY)
    confirm(env.instance.identity, reviewer.name)
    delegated(env.registry, "people")  # the custodian's egress say delegated: the reviewers decide

    def total(value: int) -> Compute:
        return lambda frames: pd.DataFrame({"区县": ["尖山区"], "人数": [value]})

    first = env.instance.jobs.submit(APART, ["people"], "python", "print(1234)", SCENARIO)
    (view,) = env.instance.worker(runner=table_runner(total(1234)), worker_id="diff-1").run_pending()
    assert view.id == first and "sdc.differencing" not in _rules(view)
    release = env.instance.releases.request(first, product="尖山区人口", by=Actor(APART, "operator")).id
    env.instance.releases.vote(release, "approve", by=Actor("demo-agency", "agency"))
    assert env.instance.releases.vote(release, "approve", by=reviewer).state == "approved"

    second = env.instance.jobs.submit(JOINT, ["people", "enrol"], "python", "print(1231)", SCENARIO)
    (view,) = env.instance.worker(runner=table_runner(total(1231)), worker_id="diff-2").run_pending()
    assert view.id == second and view.verdict == "review"
    (finding,) = [f for f in view.findings if f["rule"] == "sdc.differencing"]
    assert "尖山区人口" in finding["detail"]


def test_the_joined_view_is_sql_s_inner_join() -> None:
    """Null or blank keys join nothing (NULL = NULL is not true), a person's rows multiply, shared column names
    are told apart by dataset, and the fan-out bound is counted before anything is joined."""
    from sandbox.guard.joined import LinkedCopy, joined_frame, joined_rows, joined_source

    a = LinkedCopy("a", pd.DataFrame({"k": ["p1", "p2", None, " ", "p3"], "x": [1, 2, 3, 4, 5]}), "k")
    b = LinkedCopy("b", pd.DataFrame({"id": ["p1", "p1", None, " ", "p4"], "x": [10, 11, 12, 13, 14]}), "id")
    assert joined_rows([a, b]) == 2
    frame = joined_frame([a, b])
    assert frame is not None and list(frame.columns) == ["k", "a.x", "id", "b.x"]
    assert sorted(zip(frame["a.x"], frame["b.x"], strict=True)) == [(1, 10), (1, 11)]
    assert joined_frame([a, b], bound=1) is None and joined_frame([a]) is None
    source = joined_source([b, a])
    assert source is not None and source.name == "a+b" and source.rows == 2


def test_a_table_of_one_copy_s_groups_is_not_rare_for_being_rare_in_the_joined_view(tmp_path: Path) -> None:
    """The join keeps only the persons found in both datasets: eight districts of 12 people each shrink to
    about 6 in the joined view, which must not make an honest table of ``people``'s groups a list of people."""
    import numpy as np

    from sandbox.guard import SourceCopy, judge
    from sandbox.guard.joined import LinkedCopy, joined_source
    from tests.test_guard import _write

    n = 8 * 12
    people = pd.DataFrame({"pid": [f"p{i:04d}" for i in range(n)], "区县": np.repeat([f"区{i}" for i in range(8)], 12)})
    enrol = pd.DataFrame(
        {
            "eid": [f"p{i:04d}" for i in range(0, n, 2)],
            "状态": np.random.default_rng(1).choice(["正常", "暂停"], n // 2),
        }
    )
    joined = joined_source([LinkedCopy("people", people, "pid"), LinkedCopy("enrol", enrol, "eid")])
    assert joined is not None and joined.members == ("enrol", "people")
    sources = {"people": SourceCopy.from_frame("people", people), "enrol": SourceCopy.from_frame("enrol", enrol)}
    table = people.groupby("区县").size().rename("人数").reset_index().to_csv(index=False)
    judged = judge(tmp_path, _write(tmp_path, {"t.csv": table}), sources={**sources, joined.name: joined})
    assert judged.verdict == "pass", judged.findings
    # A list of the joined view's groups is still judged on it: each is smaller than the minimum cell count.
    rare = pd.DataFrame({"区县": [f"区{i}" for i in range(8)], "状态": ["正常"] * 8}).to_csv(index=False)
    judged = judge(tmp_path / "b", _write(tmp_path / "b", {"r.csv": rare}), sources={**sources, joined.name: joined})
    assert [(f.rule, f.detail) for f in judged.findings] == [
        ("sdc.min_cell_count", "8 listed group(s) of fewer than 10 records")
    ]
