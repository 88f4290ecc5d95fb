"""``keyong demo``: the whole flow of DESIGN.md on generated data (issue 9).

It initialises an instance when the home has none, generates the three tables a city would hold —
residents, social insurance, market entities — one of them as a GB18030 CSV, the way many government
systems still export, ingests them into the registry (catalog entry, profiled columns, encrypted vault
copy, raw version), desensitizes each by the policy of its level (the copy a sandbox mounts,
k-anonymity, the guard's fingerprints), declares the public facts DP jobs rely on, registers the demo
operator, records its people's identity checks, terms acceptance and training (issue 22), and licenses it
for two scenarios, granting joint analysis of residents and social insurance (issue 23: their copies carry
a person key of the licence's own, and k must hold on their joined view). The operator then submits eight
jobs: an SQL aggregate, a Python analysis that draws an SVG chart, a dp-query, a dp-train, two attempts to
export records that the export guard blocks (raw rows; pseudonyms hex-encoded in a "summary"), one out of
scope that is refused and logged as a violation, and an SQL aggregate joining the two granted datasets on
their shared per-licence key. The releasable outputs are requested as named products, approved by
the configured number of independent agency reviewers and, for the datasets whose custodian did not delegate
its say to the agency, signed off by the custodian, then registered with lineage and attribution; the
data provider objects to one product, whose delivery stops until the agency resolves the objection,
after which the operator fetches it stamped with its source and date. Last, the ledger is verified,
exported with an inclusion proof of the product's registration, and both are checked by the
regulator's standalone verifier run as its own process.

It runs only on a fresh home and never over earlier work (``app.demo.home``): a home whose demo finished
is kept as it is, and ``keyong demo --reset`` is the explicit way to start over.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from app.demo.home import KeptDemo, check_home, finished_record, replacing, started_record, write_record
from app.demo.model import model_summary
from app.demo.onboarding import onboard, onboard_person
from app.demo.proof import prove
from app.demo.report import DemoReport, DemoTable
from app.demo.scenario import (
    ACCESS_AGREEMENT,
    ACCESS_DELEGATED,
    CUSTODIAN_SIGNOFF,
    DEFAULT_JUSTIFICATION,
    DELEGATED,
    DEMO_DIR,
    DEMO_JOBS,
    DEMO_JOINT,
    DEMO_NOT_QUASI,
    DEMO_OPERATOR_ORG,
    DEMO_SCENARIOS,
    ENCODINGS,
    JUSTIFICATIONS,
    OBJECTION_REASON,
    OBJECTION_RESOLUTION,
    PRODUCTS_DIR,
    PROVIDERS,
    PUBLIC_FACTS,
    DemoJob,
    demo_uscc,
)
from app.instance import DEMO_PRINCIPALS, Instance
from app.settings import Settings
from core import Actor
from operators import Principal, Role
from samples import generate_all, write_csv

if TYPE_CHECKING:
    from registry import ConsentView, LicenceView


def run_demo(
    settings: Settings, *, residents: int, seed: int, console: Console, reset: bool = False
) -> DemoReport | KeptDemo:
    """The demo on a fresh home; a home whose demo finished is kept as it is unless ``reset`` (app.demo.home)."""
    kept = check_home(settings, reset=reset)
    if kept is not None:
        return kept
    with replacing(settings.home, reset=reset):
        return _run(settings, residents=residents, seed=seed, console=console)


def _run(settings: Settings, *, residents: int, seed: int, console: Console) -> DemoReport:
    started = time.perf_counter()
    instance, init_result = Instance.init(settings)
    record = started_record(residents=residents, seed=seed)
    try:
        write_record(settings.home, record)
        data_dir = settings.home / DEMO_DIR
        data_dir.mkdir(exist_ok=True)
        report = DemoReport(home=settings.home, data_dir=data_dir, tokens=init_result.tokens, totp=init_result.totp)
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
            prove(instance, report, progress)
            lap("ledger")
    finally:
        instance.close()
    report.seconds = time.perf_counter() - started
    write_record(settings.home, finished_record(record, report.as_json()))
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
        # The source system's export has done its work once its raw copy is sealed in the vault: no
        # readable CSV of the data is left in the home (issue 22, SATRE 2.8.01; 双鸭山 第三十五条).
        table.path.unlink()
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
    # Its people known, bound by the terms and trained before the licence opens data (issue 22).
    report.people = [
        {"person": s["person"], "ok": s["ok"], "training_expires_on": (s["training"] or {}).get("expires_on")}
        for s in onboard(instance)
    ]


def _desensitize(instance: Instance, report: DemoReport, progress: Progress, custodian: Actor) -> None:
    """Make each table's desensitized copy: the only data the demo operator's jobs will ever see."""
    task = progress.add_task("desensitizing", total=len(report.tables))
    for table in report.tables:
        progress.update(task, description=f"desensitizing {table.name}")
        result = instance.registry.copies.make(table.name, by=custodian, not_quasi=DEMO_NOT_QUASI.get(table.name))
        report.desensitized.append(
            {
                "dataset": result.dataset,
                "version": result.version,
                "rows": result.rows,
                "k_anonymity": result.k_anonymity.get("k_achieved"),
                "suppressed_rows": result.k_anonymity.get("suppressed_rows"),
                "actions": {c["name"]: c["action"] for c in result.columns},
                # The custodian's rulings against default quasi-identifiers, as ledgered (issue 23).
                "not_quasi_identifiers": result.report.get("quasi_identifier_rulings", []),
            }
        )
        progress.advance(task)
    # Public facts DP jobs clip to and group by (issue 8): declared by the custodian, never read off the data.
    for dataset, column, bounds, domain in PUBLIC_FACTS:
        instance.registry.catalog.set_public_bounds(dataset, column, bounds=bounds, domain=domain, by=custodian)


def _licence(instance: Instance, operator: str, agency: Actor) -> tuple[LicenceView, ConsentView]:
    """Grant the demo licence with its custodian's agreement (SATRE 1.5.04): a standing access delegation for
    :data:`ACCESS_DELEGATED`, the custodian's own agreement for the other dataset, then the agency activates it."""
    from datetime import date, timedelta

    registry = instance.registry
    custodian = Actor(DEMO_PRINCIPALS[Role.CUSTODIAN], Role.CUSTODIAN.value)
    for dataset, why in ACCESS_DELEGATED.items():  # SATRE 1.5.04: the custodian's standing access delegation
        if registry.access.get(dataset).mode != "delegated":
            registry.access.delegate(dataset, by=custodian, reason=why)
    licence = registry.licences.grant(
        operator,
        datasets=["residents", "social_insurance"],
        scenarios=DEMO_SCENARIOS,
        valid_until=date.today() + timedelta(days=365),
        publicity_days=0,
        by=agency,
        reason="demo: licence for population and social-security analysis",
        joint=DEMO_JOINT,  # issue 23: linkage granted, not given
    )
    consent = registry.licence_consent.get(licence.id, viewer=agency)
    for dataset, item in consent.datasets.items():  # the rest: the custodian agrees to this licence itself
        if item["status"] == "awaiting":
            agree = registry.licence_consent.decide
            consent = agree(licence.id, dataset, "agree", by=custodian, reason=ACCESS_AGREEMENT)
    if licence.state != "active":  # it waited for the agreement (a draft): the agency activates it now
        licence = registry.licences.transition(licence.id, "active", by=agency, reason="demo: 托管方已同意 · agreed")
    return licence, consent


def _operate(instance: Instance, report: DemoReport, progress: Progress) -> dict[int, DemoJob]:
    """License the demo operator, submit its jobs (one out of scope), and run them in the sandbox.

    Returns the jobs that ran, by id, so the release step knows which product each one becomes.
    """
    from operators import JobRefusedError
    from sandbox import SandboxUnavailable

    registry = instance.registry
    operator = DEMO_PRINCIPALS[Role.OPERATOR]
    agency = Actor(DEMO_PRINCIPALS[Role.AGENCY], Role.AGENCY.value)
    per_batch = max(1, instance.settings.job_concurrent_limit)  # the operator's quota of jobs in flight
    batches = -(-len(DEMO_JOBS) // per_batch)
    task = progress.add_task("licensing and running jobs", total=2 + batches)
    licence, consent = _licence(instance, operator, agency)
    report.licence = {"id": licence.id, "state": licence.state, "datasets": ["residents", "social_insurance"],
                      "scenarios": DEMO_SCENARIOS,
                      "consent": {d: i["status"] for d, i in consent.datasets.items()}}  # fmt: skip
    # Issue 23: what the operator can link under it, with the joined view's risk (its copies made on activation).
    report.licence["linkage"] = registry.licences.get(licence.id, viewer=agency).linkage
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
        if view.kind == "dp-train" and view.state == "done":  # its holdout accuracy against the majority share
            report.jobs[-1]["model"] = model_summary(instance, view.outputs)
    report.jobs.sort(key=lambda j: (j["job"] is None, j["job"] or 0))
    progress.update(task, description="jobs run", completed=2 + batches)
    standing = registry.licences.get_operator(operator, viewer=agency)
    if standing.qualification == "suspended":
        # Should the out-of-scope attempt reach violation_limit (a lower limit in the settings), usage
        # monitoring closes access by itself (第三十一条): products are not registered for a suspended
        # operator, so the agency restores it after rectification, on the record.
        registry.licences.restore_operator(operator, by=agency, reason="demo: the operator has rectified (整改)")
        report.rerun["auto_suspended"] = standing.suspended_reason
    return ran


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
            new = instance.identity.create_principal(name, Role.AGENCY, enrol_totp=True)
            report.reviewer_keys[name] = new.api_key
            report.reviewer_totp[name] = str(new.totp_secret)  # its second factor, shown once with the key
            onboard_person(instance, name, Role.AGENCY)  # known, bound by the terms, trained (issue 22)
            # Made by the host after init, it counts only once a second agency person confirms it (SATRE 3.2.01).
            first = Principal(DEMO_PRINCIPALS[Role.AGENCY], Role.AGENCY)
            instance.identity.confirm_recovery(name, by=first, reason="演示：经办人核实新审核人身份 identity verified")
            report.reviewer_confirmed_by[name] = first.name
    report.reviewers = names
    return [Actor(name, Role.AGENCY.value) for name in names]


def _egress(instance: Instance, report: DemoReport, custodian: Actor) -> None:
    """The custodian's say on egress, per dataset (SATRE 3.1.06): a standing delegation to the agency for
    some datasets (:data:`DELEGATED`), its own sign-off of every release for the others (the default)."""
    egress = instance.registry.egress
    for dataset, reason in DELEGATED.items():
        if egress.get(dataset).mode != "delegated":
            egress.delegate(dataset, by=custodian, reason=reason)
    report.egress = {table.name: egress.get(table.name).mode for table in report.tables}


def _release(instance: Instance, report: DemoReport, progress: Progress, ran: dict[int, DemoJob]) -> None:
    """Request each releasable job's outputs as a named product; the independent reviewers approve them.

    Soft findings are justified by the operator (the reviewers read the justification); approval registers
    the product with its lineage and attribution (双鸭山 第五十二条 review, 第四十一条 source and date).
    """
    from sandbox import Decision

    releasable = [(job_id, job) for job_id, job in ran.items() if job.product is not None]
    done = {int(str(j["job"])): j for j in report.jobs if j["job"] is not None}
    releasable = [(i, job) for i, job in releasable if done.get(i, {}).get("verdict") in ("pass", "review")]
    if not releasable:
        return
    reviewers = _reviewers(instance, report)
    operator = Actor(DEMO_PRINCIPALS[Role.OPERATOR], Role.OPERATOR.value)
    custodian = Actor(DEMO_PRINCIPALS[Role.CUSTODIAN], Role.CUSTODIAN.value)
    _egress(instance, report, custodian)
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
        if view.signoffs_pending:  # the custodian's own say on its data (SATRE 3.1.06): it signs off
            view = releases.sign_off(view.id, "approve", by=custodian, reason=CUSTODIAN_SIGNOFF)
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
            "signoffs": [{"dataset": s["dataset"], "custodian": s["custodian"]} for s in decided.signoffs],
            "delegated": sorted(decided.delegated),
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
    from registry import read_attribution

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
