"""``keyong demo``: the whole flow of DESIGN.md on generated data (issue 9).

It initialises an instance when the home has none, generates the three tables a city would hold —
residents, social insurance, market entities — one of them as a GB18030 CSV, the way many government
systems still export, ingests them into the registry (catalog entry, profiled columns, encrypted vault
copy, raw version), desensitizes each by the policy of its level (the copy a sandbox mounts,
k-anonymity, the guard's fingerprints), declares the public facts DP jobs rely on, registers the demo
operator and licenses it for two scenarios. The operator then submits seven jobs: an SQL aggregate, a
Python analysis that draws an SVG chart, a dp-query, a dp-train, two attempts to export records that
the export guard blocks (raw rows; pseudonyms hex-encoded in a "summary"), and one out of scope that is
refused and logged as a violation. The releasable outputs are requested as named products, approved by
the configured number of independent agency reviewers and registered with lineage and attribution; the
data provider objects to one product, whose delivery stops until the agency resolves the objection,
after which the operator fetches it stamped with its source and date. Last, the ledger is verified,
exported with an inclusion proof of the product's registration, and both are checked by the
regulator's standalone verifier run as its own process.

A second run in the same home works: a new raw version and copy, a new licence, products named with
the licence number.
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
from core import Actor
from desensitize.identifiers import org_code_check_char, uscc_check_char
from desensitize.synthetic import generate_all, write_csv
from operators import Role

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
    rerun: dict[str, object] = field(default_factory=dict)  # what a rerun ended or restored first
    reviewers: list[str] = field(default_factory=list)
    reviewer_keys: dict[str, str] = field(default_factory=dict)  # API keys of reviewers made by this run
    releases: list[dict[str, object]] = field(default_factory=list)
    products: list[dict[str, object]] = field(default_factory=list)
    objection: dict[str, object] = field(default_factory=dict)
    ledger: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step, for the under-a-minute budget

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
            "rerun": self.rerun,
            "reviewers": self.reviewers,
            "reviewer_keys": self.reviewer_keys,
            "releases": self.releases,
            "products": self.products,
            "objection": self.objection,
            "ledger": self.ledger,
            "seconds": round(self.seconds, 3),
            "timings": {step: round(seconds, 3) for step, seconds in self.timings.items()},
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
            report.timings["data"] = time.perf_counter() - started
            mark = time.perf_counter()

            def lap(step: str) -> None:
                nonlocal mark
                now = time.perf_counter()
                report.timings[step] = now - mark
                mark = now

            _register(instance, report, progress)
            lap("register")
            ran = _operate(instance, report, progress)
            lap("jobs")
            _release(instance, report, progress, ran)
            lap("release")
            _object(instance, report, progress)
            lap("objection")
            _prove(instance, report, progress)
            lap("ledger")
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
#: A Python analysis with a chart. matplotlib is not in the sandbox, so the script draws the SVG bar chart itself;
#: the CSV beside it holds the same numbers. Images always go to agency review (a soft finding, 双鸭山 第五十二条).
DEMO_PYTHON = """import html
import pandas as pd

df = pd.read_parquet("/data/social_insurance.parquet")
table = df.groupby("参保状态").size().rename("人数").reset_index().sort_values("人数", ascending=False)
table.to_csv("/out/enrolment_by_status.csv", index=False)
width, left, bar, gap, top = 640, 110, 34, 12, 56
peak = max(int(table["人数"].max()), 1)
svg = [
    f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + len(table) * (bar + gap) + 16}" '
    'font-family="sans-serif" font-size="14">',
    '<text x="12" y="30" font-size="18">参保状态分布 Enrolment by status</text>',
]
for i, (status, count) in enumerate(zip(table["参保状态"], table["人数"])):
    y = top + i * (bar + gap)
    w = round((width - left - 90) * int(count) / peak)
    svg.append(f'<text x="{left - 8}" y="{y + 22}" text-anchor="end">{html.escape(str(status))}</text>')
    svg.append(f'<rect x="{left}" y="{y}" width="{w}" height="{bar}" fill="#2f6fca"/>')
    svg.append(f'<text x="{left + w + 6}" y="{y + 22}">{int(count)}</text>')
svg.append("</svg>")
with open("/out/enrolment_by_status.svg", "w", encoding="utf-8") as handle:
    handle.write("\\n".join(svg) + "\\n")
print(table.to_string(index=False))
"""

#: An attempt to take records out: the guard recognises the rows and the pseudonyms and blocks it.
DEMO_EXFILTRATION = """import pandas as pd
pd.read_parquet("/data/residents.parquet").head(500).to_csv("/out/residents_sample.csv", index=False)
"""
#: A subtler one: each insured person's pseudonym, hex-encoded into a "summary" column so it does not look like
#: one. The guard decodes hex/base64 before matching the dataset's pseudonyms (双鸭山: no restoring records
#: "through reversible algorithms") and blocks it too.
DEMO_EXFILTRATION_ENCODED = """import pandas as pd
df = pd.read_parquet("/data/social_insurance.parquet").head(300)
summary = pd.DataFrame({"批次": range(1, len(df) + 1), "摘要": [str(v).encode().hex() for v in df["身份证号"]]})
summary.to_csv("/out/contribution_summary.csv", index=False)
"""


@dataclass(frozen=True, slots=True)
class DemoJob:
    """One job the demo operator submits; ``product`` names what it is released as (None: not releasable)."""

    what: str
    kind: str
    datasets: list[str]
    code: str
    scenario: str
    product: str | None = None


DEMO_JOBS = [
    DemoJob("SQL aggregate 人口性别民族统计", "sql", ["residents"], DEMO_SQL, DEMO_SCENARIOS[0], "人口性别民族统计"),
    DemoJob("Python analysis + SVG chart 参保状态分布图", "python", ["social_insurance"], DEMO_PYTHON,
            DEMO_SCENARIOS[1], "参保状态分布图"),
    # ε is charged to the licence's budget before it runs; the platform signs the answer.
    DemoJob("dp-query 缴费基数均值 (ε 0.5)", "dp-query", ["social_insurance"], DEMO_DP_QUERY, DEMO_SCENARIOS[1],
            "缴费基数差分隐私均值"),
    # The model leaves only with the platform's DP certificate.
    DemoJob("dp-train 参保状态模型 (ε 1.0)", "dp-train", ["social_insurance"], DEMO_DP_TRAIN, DEMO_SCENARIOS[1],
            "参保状态预测模型"),
    DemoJob("export attempt: resident rows", "python", ["residents"], DEMO_EXFILTRATION, DEMO_SCENARIOS[0]),
    DemoJob("export attempt: hex-encoded pseudonyms", "python", ["social_insurance"], DEMO_EXFILTRATION_ENCODED,
            DEMO_SCENARIOS[1]),
    DemoJob("out of scope: market_entities", "sql", ["market_entities"], "SELECT count(*) FROM market_entities",
            DEMO_SCENARIOS[0]),
]  # fmt: skip

#: Why each kind of soft finding is acceptable, as the operator justifies it when requesting release.
JUSTIFICATIONS = {
    "sdc.image": "柱状图只画出三类参保状态的汇总人数，与同一产品的 CSV 表数字一致，不含任何个人记录。",
    "sdc.min_cell_count": "小单元格来自合成演示数据的规模；请审核人员核对后决定。",
}
DEFAULT_JUSTIFICATION = "汇总统计结果，不含个人记录；请审核人员按统计披露控制规则核对。"
#: The objection the data provider files against the chart product, and the agency's resolution (第四十条).
OBJECTION_REASON = "图中“暂停参保”人数与本局对外公布的统计口径不一致，请核实后再提供。"
OBJECTION_RESOLUTION = "已核实：产品按脱敏副本全部参保记录统计，口径差异已在产品说明中注明，恢复提供。"
PRODUCTS_DIR = "demo-products"
LEDGER_DIR = "demo-ledger"


def _operate(instance: Instance, report: DemoReport, progress: Progress) -> dict[int, DemoJob]:
    """License the demo operator, submit its jobs (one out of scope), and run them in the sandbox.

    Returns the jobs that ran, by id, so the release step knows which product each one becomes.
    """
    from datetime import date, timedelta

    from operators import JobRefusedError
    from sandbox import SandboxUnavailable

    registry = instance.registry
    operator = DEMO_PRINCIPALS[Role.OPERATOR]
    agency = Actor(DEMO_PRINCIPALS[Role.AGENCY], Role.AGENCY.value)
    per_batch = max(1, instance.settings.job_concurrent_limit)  # the operator's quota of jobs in flight
    batches = -(-len(DEMO_JOBS) // per_batch)
    task = progress.add_task("licensing and running jobs", total=2 + batches)
    report.rerun = _supersede(instance, operator, agency)
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
    ran: dict[int, DemoJob] = {}
    worker = instance.worker(worker_id="demo")
    for number, start in enumerate(range(0, len(DEMO_JOBS), per_batch), 1):
        progress.update(task, description=f"running jobs (batch {number}/{batches} of ≤{per_batch} in flight)")
        for job in DEMO_JOBS[start : start + per_batch]:
            try:
                ran[instance.jobs.submit(operator, job.datasets, job.kind, job.code, job.scenario)] = job
            except JobRefusedError as exc:
                report.jobs.append({"job": exc.job, "what": job.what, "kind": job.kind, "datasets": job.datasets,
                                    "state": "refused", "verdict": None, "reason": exc.reason})  # fmt: skip
        try:
            worker.run_pending()
        except SandboxUnavailable as exc:
            report.jobs.append({"job": None, "what": "sandbox", "kind": None, "datasets": [], "state": "not run",
                                "verdict": None, "reason": f"sandbox unavailable: {exc}"})  # fmt: skip
            break
        progress.advance(task)
    for job_id, job in ran.items():
        view = instance.jobs.show(job_id)
        report.jobs.append({"job": view.id, "what": job.what, "kind": view.kind, "datasets": list(view.datasets),
                            "state": view.state, "verdict": view.verdict, "reason": view.reason,
                            "findings": sorted({str(f["rule"]) for f in view.findings or []}),
                            "outputs": [o["name"] for o in view.outputs]})  # fmt: skip
    report.jobs.sort(key=lambda j: (j["job"] is None, j["job"] or 0))
    progress.update(task, description="jobs run", completed=2 + batches)
    standing = registry.licences.get_operator(operator, viewer=agency)
    if standing.qualification == "suspended":
        # From the third run on within violation_window_hours, the out-of-scope attempts of all runs reach
        # violation_limit and usage monitoring closes access by itself (第三十一条): products are not
        # registered for a suspended operator, so the agency restores it after rectification, on the record.
        registry.licences.restore_operator(operator, by=agency, reason="demo: the operator has rectified (整改)")
        report.rerun["auto_suspended"] = standing.suspended_reason
    return ran


def _supersede(instance: Instance, operator: str, agency: Actor) -> dict[str, object]:
    """On a rerun, end the previous run's licences and lift an automatic suspension, each ledgered with why.

    Without this a rerun's jobs would run under the first licence, whose ε/δ budget the first run spent
    (the dp-train would be refused), and the out-of-scope attempt of every run counts towards automatic
    suspension (limit ``violation_limit`` in ``violation_window_hours``, 双鸭山 第三十一条), so the third run
    would find the operator's access closed. Revoking destroys the operator's copies under those licences
    (第六十二条); the products already registered stay.
    """
    licences = instance.registry.licences
    revoked = []
    for old in licences.list(viewer=agency, operator=operator):
        if old.state in ("active", "suspended"):
            licences.transition(old.id, "revoked", by=agency, reason="demo rerun: superseded by a new demo licence")
            revoked.append(old.id)
    restored = False
    if licences.get_operator(operator, viewer=agency).qualification == "suspended":
        licences.restore_operator(operator, by=agency, reason="demo rerun: the operator has rectified (整改)")
        restored = True
    return {"licences_revoked": revoked, "operator_restored": restored}


def _reviewers(instance: Instance, report: DemoReport) -> list[Actor]:
    """The agency principals who review: the demo agency, plus as many more as the settings require.

    Independence (sandbox/release.py) needs ``release_reviewers`` distinct, active agency principals; the
    ones a fresh instance lacks are registered through the identity service (ledgered as principal.created).
    """
    needed = max(1, instance.settings.release_reviewers)
    names = [DEMO_PRINCIPALS[Role.AGENCY]] + [f"demo-reviewer-{n}" for n in range(2, needed + 1)]
    known = {str(p["name"]) for p in instance.identity.list_principals()}
    for name in names:
        if name not in known:
            report.reviewer_keys[name] = instance.identity.create_principal(name, Role.AGENCY).api_key
    report.reviewers = names
    return [Actor(name, Role.AGENCY.value) for name in names]


def _release(instance: Instance, report: DemoReport, progress: Progress, ran: dict[int, DemoJob]) -> None:
    """Request each releasable job's outputs as a named product; the independent reviewers approve them.

    Soft findings are justified by the operator (the reviewers read the justification); approval registers
    the product with its lineage and attribution (双鸭山 第五十二条 review, 第四十一条 source and date).
    """
    from sandbox.release import Decision

    releasable = [(job_id, job) for job_id, job in ran.items() if job.product is not None]
    done = {int(str(j["job"])): j for j in report.jobs if j["job"] is not None}
    releasable = [(i, job) for i, job in releasable if done.get(i, {}).get("verdict") in ("pass", "review")]
    if not releasable:
        return
    reviewers = _reviewers(instance, report)
    operator = Actor(DEMO_PRINCIPALS[Role.OPERATOR], Role.OPERATOR.value)
    releases = instance.releases
    products = instance.registry.products
    host = Actor.host()
    task = progress.add_task("release review", total=len(releasable))
    for job_id, job in releasable:
        name = f"{job.product}-{report.licence.get('id')}"  # the licence number keeps a rerun's names unique
        progress.update(task, description=f"reviewing {name}")
        findings = instance.jobs.show(job_id).findings  # the guard's, in the order a justification indexes
        justifications = {  # every soft finding is explained to the reviewers (hard ones never reach here)
            str(i): JUSTIFICATIONS.get(str(f.get("rule")), DEFAULT_JUSTIFICATION)
            for i, f in enumerate(findings)
            if f.get("severity") == "soft"
        }
        view = releases.request(job_id, product=name, by=operator, justifications=justifications)
        for reviewer in reviewers:
            view = releases.vote(view.id, Decision.APPROVE, by=reviewer, reason="符合发布前合规审核要求")
        decided = releases.get(view.id, viewer=host)
        entry: dict[str, object] = {
            "release": decided.id,
            "job": job_id,
            "kind": job.kind,
            "product": name,
            "state": decided.state,
            "verdict": decided.verdict,
            "findings": sorted({str(f.get("rule")) for f in findings}),
            "justified": len(decided.justifications),
            "votes": [{"reviewer": v["reviewer"], "decision": v["decision"]} for v in decided.votes],
        }
        report.releases.append(entry)
        if decided.product_id is not None:
            product = products.get(name, viewer=host)
            report.products.append(
                {
                    "name": product.name,
                    "job": job_id,
                    "kind": job.kind,
                    "state": product.state,
                    "scenario": product.scenario,
                    "datasets": [f"{d.get('name')} v{d.get('version')}" for d in product.datasets],
                    "reviews": [str(r.get("reviewer")) for r in product.reviews],
                    "files": [
                        {"name": a["name"], "bytes": a["bytes"], "sha256": a["sha256"]} for a in product.artifacts
                    ],
                    "attribution": product.attribution.get("statement"),
                }
            )
        progress.advance(task)


def _object(instance: Instance, report: DemoReport, progress: Progress) -> None:
    """The data provider objects to the chart product; delivery stops at once and resumes on resolution.

    双鸭山 第四十条: whoever holds published data wrong may object; it is stopped at once (立即中止), verified,
    then restored; the objector reads the result. The operator's fetch is refused in between.
    """
    from core import RegistryError

    chart = next((p for p in report.products if p["kind"] == "python"), None)
    if chart is None:
        return
    name = str(chart["name"])
    registry = instance.registry
    custodian = Actor(DEMO_PRINCIPALS[Role.CUSTODIAN], Role.CUSTODIAN.value)
    agency = Actor(DEMO_PRINCIPALS[Role.AGENCY], Role.AGENCY.value)
    operator = Actor(DEMO_PRINCIPALS[Role.OPERATOR], Role.OPERATOR.value)
    to = report.home / PRODUCTS_DIR / name
    task = progress.add_task(f"objection against {name}", total=4)
    filed = registry.objections.file("product", name, OBJECTION_REASON, by=custodian)
    suspended = registry.products.get(name, viewer=agency).state
    progress.advance(task)
    try:
        instance.releases.fetch(name, to, by=operator)
        refused: str | None = None
    except RegistryError as exc:
        refused = str(exc)
    progress.advance(task)
    resolved = registry.objections.resolve(filed.id, "restore", OBJECTION_RESOLUTION, by=agency)
    restored = registry.products.get(name, viewer=agency).state
    progress.advance(task)
    fetched = instance.releases.fetch(name, to, by=operator)
    progress.advance(task)
    from registry.products import read_attribution

    report.objection = {
        "id": filed.id,
        "product": name,
        "filed_by": filed.filed_by,
        "filed_role": filed.filed_role,
        "reason": filed.reason,
        "state_while_open": suspended,
        "fetch_while_suspended": {"refused": refused is not None, "reason": refused},
        "outcome": resolved.outcome,
        "resolved_by": resolved.resolved_by,
        "resolution": resolved.resolution,
        "state_after": restored,
        "fetched": {
            "to": str(to),
            "files": [
                {"name": f["name"], "sha256": f["sha256"], "stamped": read_attribution(Path(f["path"])) is not None}
                for f in fetched["files"]
            ],
            "attribution": fetched["attribution"].get("statement"),
        },
    }


def _prove(instance: Instance, report: DemoReport, progress: Progress) -> None:
    """Verify the ledger, then let the regulator's standalone verifier check an export and an inclusion proof.

    ``python -m ledger.verify`` runs as its own process over files only (no database, no instance): what a
    regulator would run on the export it was handed (双鸭山 第六十条, 第六十四条).
    """
    import subprocess
    import sys

    ledger = instance.ledger
    task = progress.add_task("verifying the ledger", total=ledger.size())
    verified = ledger.verify(progress=lambda n: progress.advance(task, n))
    report.ledger = {
        "entries": verified.entries,
        "ok": verified.ok,
        "head": verified.head,
        "checkpoints": verified.checkpoints,
        "problems": [p.as_json() for p in verified.problems],
    }
    # The entry to prove: the registration of the product the objection was about (else the latest product).
    subject = report.objection.get("product") or (report.products[-1]["name"] if report.products else None)
    found = ledger.entries(action="product.registered", subject=f"product:{subject}", limit=1) if subject else []
    entry = found[0] if found else ledger.get(ledger.size())
    proof = ledger.prove(entry.seq, checkpoint_if_needed=True)
    out_dir = report.home / LEDGER_DIR
    out_dir.mkdir(exist_ok=True)
    export, proof_file = out_dir / "ledger.jsonl", out_dir / f"proof-{entry.seq}.json"
    proof_file.write_text(json.dumps(proof.as_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    exported = progress.add_task(f"exporting to {export.name}", total=ledger.size())
    with export.open("w", encoding="utf-8") as handle:
        count, checkpoints = ledger.export(handle, progress=lambda n: progress.advance(exported, n))
    command = [sys.executable, "-m", "ledger.verify", str(export), "--public-key", ledger.public_key_hex,
               "--proof", str(proof_file)]  # fmt: skip
    standalone = progress.add_task("standalone verifier (python -m ledger.verify)", total=1)
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=out_dir)
    progress.advance(standalone)
    try:
        verdict: dict[str, object] = json.loads(done.stdout)
    except json.JSONDecodeError:
        verdict = {"ok": False, "problems": [{"kind": "output", "detail": done.stderr.strip()[-500:]}]}
    report.ledger["export"] = {"file": str(export), "entries": count, "checkpoints": checkpoints,
                               "public_key": ledger.public_key_hex}  # fmt: skip
    report.ledger["proof"] = {
        "seq": entry.seq,
        "action": entry.action,
        "subject": entry.subject,
        "entry_hash": proof.entry_hash,
        "tree_size": proof.tree_size,
        "root": proof.root,
        "file": str(proof_file),
        "matches_export": _in_export(export, proof.as_json()),
    }
    report.ledger["standalone"] = {
        "command": ["python", "-m", "ledger.verify", str(export), "--public-key", ledger.public_key_hex,
                    "--proof", str(proof_file)],
        "exit_code": done.returncode,
        "ok": verdict.get("ok"),
        "proof": verdict.get("proof"),
        "entries": verdict.get("entries"),
        "checkpoints": verdict.get("checkpoints"),
        "problems": verdict.get("problems", []),
    }  # fmt: skip


def _in_export(export: Path, proof: dict[str, object]) -> bool:
    """The proved entry and its checkpoint are the export's own (same entry hash, same signed root).

    The verifier checks the proof against the key; this ties it to the very file the regulator was given.
    """
    entry_ok = checkpoint_ok = False
    checkpoint = proof.get("checkpoint")
    with export.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("seq") == proof["seq"] and "hash" in record:
                entry_ok = record["hash"] == proof["entry_hash"]
            if isinstance(checkpoint, dict) and "signature" in record and record.get("tree_size") == proof["tree_size"]:
                checkpoint_ok = record.get("root") == proof["root"] and record["signature"] == checkpoint.get(
                    "signature"
                )
    return entry_ok and checkpoint_ok
