"""ACRO's mitigations, applied by the operator and re-checked by the guard (issue 7): suppression with
secondary suppression so margins cannot restore a hidden cell, rounding to base 5, and the mitigation
as a job of its own with a fresh verdict. Both databases for the job path."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app import Instance
from core import Actor, RegistryError
from sandbox.guard import SourceCopy, judge
from sandbox.mitigation import Mitigation, mitigate_table
from tests.job_worker_proc import OPERATOR, SCENARIO, FakeResult, licensed, record_copy

TABLE_2D = pd.DataFrame(
    {
        "区县": ["尖山区"] * 3 + ["岭东区"] * 3 + ["宝山区"] * 3,
        "年龄段": ["0-17", "18-59", "60+"] * 3,
        "人数": [120, 340, 4, 98, 310, 150, 77, 260, 133],
        "平均缴费基数": [0.0, 5200.5, 4100.0, 0.0, 5100.0, 3900.0, 0.0, 5000.0, 3800.0],
    }
)


def test_suppression_hides_small_cells_and_one_more_per_margin() -> None:
    mitigated, done = mitigate_table(TABLE_2D, Mitigation(source_job=1, suppress=True))
    hidden = mitigated["人数"].isna()
    assert hidden[2]  # the primary cell (4 < 10)
    # Secondary: no row or column of the table keeps exactly one hidden cell, so no margin restores it.
    for dim in ("区县", "年龄段"):
        per_group = hidden.groupby(mitigated[dim]).sum()
        assert not (per_group == 1).any(), dim
    assert done["suppressed"] == int(hidden.sum()) >= 4
    assert mitigated.loc[hidden, "平均缴费基数"].isna().all()  # a hidden cell's mean goes with it
    assert not any(i.rule == "sdc.min_cell_count" for i in _soft(mitigated))


def test_a_one_way_table_suppresses_a_second_cell_against_the_grand_total() -> None:
    table = pd.DataFrame({"区县": ["尖山区", "岭东区", "宝山区"], "人数": [120, 3, 80]})
    mitigated, done = mitigate_table(table, Mitigation(source_job=1, suppress=True))
    assert mitigated["人数"].isna().tolist() == [False, True, True]
    assert done["suppressed"] == 2


def test_rounding_to_base_five() -> None:
    mitigated, done = mitigate_table(TABLE_2D, Mitigation(source_job=1, round_base=5))
    assert (mitigated["人数"].astype(int) % 5 == 0).all()
    assert done["rounded"] == int((TABLE_2D["人数"] % 5 != 0).sum())
    with pytest.raises(ValueError, match="choose a mitigation"):
        Mitigation(source_job=1)


def _soft(frame: pd.DataFrame) -> list[Any]:
    from sandbox.sdc import check_table

    return check_table(frame)


def _writes(frame: pd.DataFrame) -> Any:
    """A stand-in runner: the job 'ran' and wrote ``frame`` as result.csv."""

    def runner(kind: str, code: str, *, out_dir: Path, **_: Any) -> FakeResult:
        out_dir.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out_dir / "result.csv", index=False)
        data = (out_dir / "result.csv").read_bytes()
        entry = {"name": "result.csv", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        return FakeResult(out_dir=out_dir, outputs=[entry])

    return runner


@pytest.fixture
def instance(initialised: tuple[Instance, dict[str, str]]) -> Instance:
    inst = initialised[0]
    licensed(inst.registry, inst.home)
    return inst


def _copy_behind(table: pd.DataFrame, seed: int = 3) -> pd.DataFrame:
    """Person rows whose counts per 区县 x 年龄段 are ``table``'s 人数 (what a copy the job read holds)."""
    rng = np.random.default_rng(seed)
    rows = table.loc[table.index.repeat(table["人数"]), ["区县", "年龄段"]].reset_index(drop=True)
    return rows.assign(缴费基数=rng.integers(2000, 9000, len(rows)).astype(float))


def test_a_mitigated_job_is_rechecked_and_passes(instance: Instance) -> None:
    # The guard passes only what it can re-derive from the granted copy (issue 15), so the job's table
    # is the copy's own aggregate: counts and mean contribution per district and age band.
    copy = _copy_behind(TABLE_2D)
    copy.to_parquet(instance.home / "datasets" / "traffic" / "v1.parquet", index=False)
    record_copy(instance.registry, "traffic", instance.home / "datasets" / "traffic" / "v1.parquet")
    table = copy.groupby(["区县", "年龄段"], sort=False).agg(
        人数=("缴费基数", "size"), 平均缴费基数=("缴费基数", "mean")
    )
    worker = instance.worker(runner=_writes(table.reset_index()), fingerprints=None, released=None)
    code = "select 区县, 年龄段, count(*) as 人数, avg(缴费基数) as 平均缴费基数 from traffic group by 1, 2"
    source = instance.jobs.submit(OPERATOR, ["traffic"], "sql", code, SCENARIO)
    judged = worker.run_once()
    assert judged is not None and judged.id == source and judged.verdict == "review"
    assert any(f["rule"] == "sdc.min_cell_count" for f in judged.findings)

    me = Actor(OPERATOR, "operator")
    with pytest.raises(RegistryError, match=r"not yours|no job"):
        instance.jobs.mitigate(source, suppress=True, by=Actor("other-ops", "operator"))
    mitigated = instance.jobs.mitigate(source, suppress=True, round_base=5, by=me)
    view = worker.run_once()
    assert view is not None and view.id == mitigated and view.kind == "mitigation"
    assert view.state == "done" and view.verdict == "pass", view.findings
    at_rest = instance.registry.at_rest  # the outputs are sealed under the licence's key once judged (issue 22)
    with at_rest.private_dir() as plain:
        for output in view.outputs:
            at_rest.artifact_to(output["path"], plain / Path(output["path"]).name)
        out = plain / Path(view.outputs[0]["path"]).name
        table = pd.read_csv(out)
        assert table["人数"].isna().sum() >= 4 and (table["人数"].dropna() % 5 == 0).all()
        # Judged again on its own, the mitigated table passes only against the copy it was made from.
        assert judge(out.parent, view.outputs).verdict == "review"
        assert (
            judge(
                out.parent, view.outputs, sources={"traffic": SourceCopy.from_frame("traffic", copy)}, code=code
            ).verdict
            == "pass"
        )
    assert instance.ledger.entries(action="job.queued")[-1].payload["kind"] == "mitigation"


def test_only_judged_jobs_can_be_mitigated(instance: Instance) -> None:
    queued = instance.jobs.submit(OPERATOR, ["traffic"], "sql", "SELECT 1", SCENARIO)
    with pytest.raises(RegistryError, match="no judged outputs"):
        instance.jobs.mitigate(queued, suppress=True, by=Actor(OPERATOR, "operator"))
