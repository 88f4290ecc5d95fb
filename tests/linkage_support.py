"""Set-up of the linked-copies tests (issue 23): two personal datasets sharing a person, two operators.

``people`` (公民身份号码, 性别) and ``enrol`` (身份证号, 参保状态) are cut from the synthetic residents and
their social insurance, so most enrolled persons are people. Both are ingested and desensitized by the
shipped L3/L4 policy: the ID columns become pseudonyms keyed with the instance pepper, the same person the
same pseudonym in both base copies. Their quasi-identifiers are few and coarse, so the joined view meets k
as it stands (the tests are about keys and surfaces, not about the joint search of ``desensitize.linkage``).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from app import Instance
from core import Actor
from desensitize.identifiers import uscc_check_char
from registry import Registry
from samples import synthetic
from tests.consent_support import consent_to_access
from tests.job_worker_proc import FakeResult
from tests.people_support import stand

CUSTODIAN = Actor("demo-custodian", "custodian")
AGENCY = Actor("demo-agency", "agency")
PROVIDER = "双鸭山市公安局"
PROVIDER_CODE = "11230500MB1234567" + uscc_check_char("11230500MB1234567")
SCENARIO = "人口统计"
JOINT = "acme-joint"  # granted people + enrol jointly
APART = "beta-apart"  # granted both, not jointly


def _uscc(n: int) -> str:
    base = f"91230500MA{n:07d}A"[:17]
    return base + uscc_check_char(base)


def tables(n: int = 600, seed: int = 7) -> dict[str, pd.DataFrame]:
    made = synthetic.generate_all(n, seed=seed)
    people = made["residents"][["公民身份号码", "性别"]].reset_index(drop=True)
    enrol = made["social_insurance"][["身份证号", "参保状态"]].reset_index(drop=True)
    return {"people": people, "enrol": enrol}


@dataclass
class Linked:
    instance: Instance
    registry: Registry
    licences: dict[str, int]

    def mounted(self, operator: str, dataset: str) -> tuple[str, pd.DataFrame]:
        """The path a job of ``operator`` over ``dataset`` mounts, and the copy read as the job reads it."""
        grant = self.registry.licences.check_scope(operator, [dataset], SCENARIO, dry_run=True)
        (mount,) = grant.datasets
        data = self.registry.at_rest.read(self.instance.home / mount.path)
        return mount.path, pq.read_table(io.BytesIO(data)).to_pandas()

    def base(self, dataset: str) -> tuple[str, pd.DataFrame]:
        version = self.registry.copies.newest(dataset)
        data = self.registry.at_rest.read(self.instance.home / version.path)
        return version.path, pq.read_table(io.BytesIO(data)).to_pandas()


def ingest(registry: Registry, tmp: Path, frames: dict[str, pd.DataFrame]) -> None:
    for name, frame in frames.items():
        path = tmp / f"{name}.csv"
        synthetic.write_csv(frame, path)
        registry.ingestor.ingest(path, name=name, provider=PROVIDER, provider_code=PROVIDER_CODE, by=CUSTODIAN)
        registry.copies.make(name, by=CUSTODIAN)


def grant(registry: Registry, operator: str, number: int, *, joint: list[list[str]] | None = None) -> int:
    registry.licences.add_operator(operator, _uscc(number), by=AGENCY)
    stand(registry, operator)
    view = registry.licences.grant(
        operator,
        datasets=["people", "enrol"],
        scenarios=[SCENARIO],
        valid_until=date.today() + timedelta(days=60),
        publicity_days=0,
        by=AGENCY,
        reason="linkage test",
        joint=joint,
    )
    return view.id


def linked(instance: Instance, tmp: Path) -> Linked:
    registry = instance.registry
    ingest(registry, tmp, tables())
    consent_to_access(registry, "people", "enrol")
    licences = {
        JOINT: grant(registry, JOINT, 1, joint=[["people", "enrol"]]),
        APART: grant(registry, APART, 2),
    }
    return Linked(instance, registry, licences)


#: A stand-in job's computation over the granted copies (name -> frame) -> the table it writes.
Compute = Callable[[dict[str, pd.DataFrame]], pd.DataFrame]


def joined(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """``people JOIN enrol ON 公民身份号码 = 身份证号`` as the SQL engine computes it."""
    return frames["people"].merge(frames["enrol"], left_on="公民身份号码", right_on="身份证号", how="inner")


def table_runner(compute: Compute) -> Any:
    """A runner standing in for the sandbox: reads the granted copies, writes ``compute``'s table as
    ``result.csv`` with its true size and SHA-256 (the guard judges it as a job's output)."""

    def run(kind: str, code: str, *, datasets: Any, out_dir: Path, limits: Any = None) -> FakeResult:
        frames = {name: pd.read_parquet(path) for name, path in datasets.items()}
        out_dir.mkdir(parents=True, exist_ok=True)
        data = compute(frames).to_csv(index=False).encode("utf-8")
        (out_dir / "result.csv").write_bytes(data)
        output = {"name": "result.csv", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        return FakeResult(out_dir=out_dir, outputs=[output])

    return run
