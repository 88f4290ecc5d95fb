"""``keyong demo``: the whole flow of DESIGN.md on generated data.

So far it initialises an instance when the home has none, generates the three tables a city
would hold — residents, social insurance, market entities — one of them as a GB18030 CSV, the
way many government systems still export, ingests them into the registry (catalog entry,
profiled columns, encrypted vault copy, raw version), desensitizes each by the policy of its level
(the copy a sandbox mounts, k-anonymity, the guard's fingerprints), registers the demo operator,
licenses it for two scenarios, submits jobs (an SQL aggregate, a Python analysis, an attempt to
export records that the guard blocks, one out of scope that is refused), runs them in the sandbox,
and verifies the ledger. Later issues extend the flow:
dp jobs, release review, objections.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from app.instance import DEMO_PRINCIPALS, MARKER, Instance
from app.settings import Settings
from desensitize.identifiers import org_code_check_char, uscc_check_char
from desensitize.synthetic import generate_all, write_csv
from operators import Role
from registry import Actor

DEMO_DIR = "demo-data"
# Which table is written in which encoding: one GB18030 file exercises the encoding detection.
ENCODINGS = {"residents": "utf-8", "social_insurance": "utf-8", "market_entities": "gb18030"}
# Who provides each table: 提供方名称, the 统一社会信用代码's 9-character organisation code, 行业分类.
PROVIDERS = {
    "residents": ("双鸭山市公安局", "01234567", "公共安全"),
    "social_insurance": ("双鸭山市人力资源和社会保障局", "01234568", "社会保障"),
    "market_entities": ("双鸭山市市场监督管理局", "01234569", "市场监管"),
}
DEMO_OPERATOR_ORG = "MA1D2E3F4"  # organisation code stem of the demo operator's 统一社会信用代码


def demo_uscc(org_stem: str, kind: str = "11") -> str:
    """A well-formed 统一社会信用代码 in 双鸭山 (230500): ``kind`` 11 is a government organ."""
    org = org_stem[:8] + org_code_check_char(org_stem[:8])
    first17 = f"{kind}230500{org}"
    return first17 + uscc_check_char(first17)


@dataclass(frozen=True, slots=True)
class DemoTable:
    name: str
    rows: int
    columns: list[str]
    path: Path
    encoding: str
    bytes: int


@dataclass
class DemoReport:
    home: Path
    data_dir: Path
    tokens: dict[str, str] | None
    tables: list[DemoTable] = field(default_factory=list)
    ingested: list[dict[str, object]] = field(default_factory=list)
    desensitized: list[dict[str, object]] = field(default_factory=list)
    licence: dict[str, object] = field(default_factory=dict)
    jobs: list[dict[str, object]] = field(default_factory=list)
    operator: str | None = None
    ledger: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0

    def as_json(self) -> dict[str, object]:
        return {
            "home": str(self.home),
            "initialized": self.tokens is not None,
            "tokens": self.tokens,
            "data_dir": str(self.data_dir),
            "tables": [
                {
                    "name": t.name,
                    "rows": t.rows,
                    "columns": t.columns,
                    "path": str(t.path),
                    "encoding": t.encoding,
                    "bytes": t.bytes,
                }
                for t in self.tables
            ],
            "ingested": self.ingested,
            "desensitized": self.desensitized,
            "licence": self.licence,
            "jobs": self.jobs,
            "operator": self.operator,
            "ledger": self.ledger,
            "seconds": round(self.seconds, 3),
        }


def run_demo(settings: Settings, *, residents: int, seed: int, console: Console) -> DemoReport:
    started = time.perf_counter()
    tokens: dict[str, str] | None = None
    if (settings.home / MARKER).exists():
        instance = Instance.open(settings)
    else:
        instance, init_result = Instance.init(settings)
        tokens = init_result.tokens
    try:
        data_dir = settings.home / DEMO_DIR
        data_dir.mkdir(exist_ok=True)
        report = DemoReport(home=settings.home, data_dir=data_dir, tokens=tokens)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("generating synthetic tables", total=1 + len(ENCODINGS))
            tables = generate_all(residents, seed=seed)
            progress.advance(task)
            for name, frame in tables.items():
                encoding = ENCODINGS.get(name, "utf-8")
                path = data_dir / f"{name}.csv"
                progress.update(task, description=f"writing {path.name} ({encoding})")
                write_csv(frame, path, encoding=encoding)
                report.tables.append(
                    DemoTable(name, len(frame), [str(c) for c in frame.columns], path, encoding, path.stat().st_size)
                )
                progress.advance(task)
            progress.update(task, description="synthetic tables written")
            _register(instance, report, progress)
            _operate(instance, report, progress)
        verified = instance.ledger.verify()
        report.ledger = {"entries": verified.entries, "ok": verified.ok, "head": verified.head}
    finally:
        instance.close()
    report.seconds = time.perf_counter() - started
    return report


def _register(instance: Instance, report: DemoReport, progress: Progress) -> None:
    """Ingest the tables as the demo custodian, and register the demo operator as the agency."""
    registry = instance.registry
    custodian = Actor(DEMO_PRINCIPALS[Role.CUSTODIAN], Role.CUSTODIAN.value)
    task = progress.add_task("ingesting into the registry", total=len(report.tables))
    for table in report.tables:
        provider, org, industry = PROVIDERS[table.name]
        progress.update(task, description=f"ingesting {table.path.name}")
        result = registry.ingestor.ingest(
            table.path,
            name=table.name,
            provider=provider,
            provider_code=demo_uscc(org),
            industry=industry,
            by=custodian,
        )
        report.ingested.append(
            {
                "dataset": result.dataset,
                "version": result.version,
                "rows": result.rows,
                "encoding": result.encoding,
                "level": registry.catalog.get(result.dataset).level,
                "personal_columns": [c["name"] for c in result.columns if c.get("pii_type")],
            }
        )
        progress.advance(task)
    _desensitize(instance, report, progress, custodian)
    operator = DEMO_PRINCIPALS[Role.OPERATOR]
    names = {o.name for o in registry.licences.list_operators()}
    if operator not in names:
        agency = Actor(DEMO_PRINCIPALS[Role.AGENCY], Role.AGENCY.value)
        registry.licences.add_operator(operator, demo_uscc(DEMO_OPERATOR_ORG, kind="91"), by=agency)
    report.operator = operator


def _desensitize(instance: Instance, report: DemoReport, progress: Progress, custodian: Actor) -> None:
    """Make each table's desensitized copy: the only data the demo operator's jobs will ever see."""
    task = progress.add_task("desensitizing", total=len(report.tables))
    for table in report.tables:
        progress.update(task, description=f"desensitizing {table.name}")
        result = instance.registry.copies.make(table.name, by=custodian)
        report.desensitized.append(
            {
                "dataset": result.dataset,
                "version": result.version,
                "rows": result.rows,
                "k_anonymity": result.k_anonymity.get("k_achieved"),
                "suppressed_rows": result.k_anonymity.get("suppressed_rows"),
                "actions": {c["name"]: c["action"] for c in result.columns},
            }
        )
        progress.advance(task)
    # Public facts DP jobs clip to and group by (issue 8): declared by the custodian, never read off the data.
    for dataset, column, bounds, domain in PUBLIC_FACTS:
        instance.registry.catalog.set_public_bounds(dataset, column, bounds=bounds, domain=domain, by=custodian)


#: (dataset, column, public bounds, public domain) the demo custodian declares.
PUBLIC_FACTS: list[tuple[str, str, list[float] | None, list[str] | None]] = [
    ("social_insurance", "月缴费基数", [3000, 40000], None),  # the statutory contribution-base range
    ("social_insurance", "参保日期", [1995, 2027], None),
    ("social_insurance", "参保状态", None, ["正常参保", "暂停参保", "终止参保"]),
]
DEMO_DP_QUERY = json.dumps(
    {"aggregate": "mean", "column": "月缴费基数", "epsilon": 0.5, "group_by": ["参保状态"]}, ensure_ascii=False
)
DEMO_DP_TRAIN = json.dumps(
    {
        "features": ["月缴费基数", "参保日期"],
        "label": "参保状态",
        "model": "logistic",
        "epochs": 3,
        "batch_size": 256,
        "epsilon": 1.0,
        "delta": 1e-5,
        "max_grad_norm": 1.0,
    },
    ensure_ascii=False,
)

DEMO_SCENARIOS = ["人口结构分析", "社会保障分析"]
DEMO_SQL = (
    "SELECT 性别, 民族, count(*) AS 人数 FROM residents GROUP BY 性别, 民族 HAVING count(*) >= 10 ORDER BY 人数 DESC"
)
DEMO_PYTHON = """import pandas as pd
df = pd.read_parquet("/data/social_insurance.parquet")
table = df.groupby("参保状态").size().rename("人数").reset_index()
table.to_csv("/out/enrolment_by_status.csv", index=False)
print(table.to_string(index=False))
"""

#: An attempt to take records out: the guard recognises the rows and the pseudonyms and blocks it.
DEMO_EXFILTRATION = """import pandas as pd
pd.read_parquet("/data/residents.parquet").head(500).to_csv("/out/residents_sample.csv", index=False)
"""


def _operate(instance: Instance, report: DemoReport, progress: Progress) -> None:
    """License the demo operator, submit its jobs (one out of scope), and run them in the sandbox."""
    from datetime import date, timedelta

    from operators.jobs import JobRefusedError
    from sandbox import SandboxUnavailable

    registry = instance.registry
    operator = DEMO_PRINCIPALS[Role.OPERATOR]
    agency = Actor(DEMO_PRINCIPALS[Role.AGENCY], Role.AGENCY.value)
    task = progress.add_task("licensing and running jobs", total=3)
    licence = registry.licences.grant(
        operator,
        datasets=["residents", "social_insurance"],
        scenarios=DEMO_SCENARIOS,
        valid_until=date.today() + timedelta(days=365),
        publicity_days=0,
        by=agency,
        reason="demo: licence for population and social-security analysis",
    )
    report.licence = {"id": licence.id, "state": licence.state, "datasets": ["residents", "social_insurance"],
                      "scenarios": DEMO_SCENARIOS}  # fmt: skip
    progress.advance(task)
    submitted = [
        ("sql", ["residents"], DEMO_SQL, DEMO_SCENARIOS[0]),
        ("python", ["social_insurance"], DEMO_PYTHON, DEMO_SCENARIOS[1]),
        ("dp-query", ["social_insurance"], DEMO_DP_QUERY, DEMO_SCENARIOS[1]),  # ε charged before it runs
        ("dp-train", ["social_insurance"], DEMO_DP_TRAIN, DEMO_SCENARIOS[1]),  # the model leaves with a certificate
        ("python", ["residents"], DEMO_EXFILTRATION, DEMO_SCENARIOS[0]),  # the export guard blocks it
        ("sql", ["market_entities"], "SELECT count(*) FROM market_entities", DEMO_SCENARIOS[0]),  # not licensed
    ]
    ids: list[int] = []
    worker = instance.worker(worker_id="demo")
    per_batch = max(1, instance.settings.job_concurrent_limit)  # the operator's quota of jobs in flight
    for start in range(0, len(submitted), per_batch):
        for kind, datasets, code, scenario in submitted[start : start + per_batch]:
            try:
                ids.append(instance.jobs.submit(operator, datasets, kind, code, scenario))
            except JobRefusedError as exc:
                report.jobs.append({"job": exc.job, "kind": kind, "datasets": datasets, "state": "refused",
                                    "verdict": None, "reason": exc.reason})  # fmt: skip
        try:
            worker.run_pending()
        except SandboxUnavailable as exc:
            report.jobs.append({"job": None, "kind": None, "datasets": [], "state": "not run", "verdict": None,
                                "reason": f"sandbox unavailable: {exc}"})  # fmt: skip
            break
    progress.advance(task)
    for job in ids:
        view = instance.jobs.show(job)
        report.jobs.append({"job": view.id, "kind": view.kind, "datasets": list(view.datasets), "state": view.state,
                            "verdict": view.verdict, "reason": view.reason,
                            "outputs": [o["name"] for o in view.outputs]})  # fmt: skip
    report.jobs.sort(key=lambda j: (j["job"] is None, j["job"] or 0))
    progress.advance(task)
