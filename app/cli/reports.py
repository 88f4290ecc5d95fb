"""Rich renderings of ``keyong init`` and ``keyong demo`` for a person at a terminal.

With ``--json`` none of this runs; the JSON keys are the contract, these tables only the human view.
The demo's report has one section per step of DESIGN.md's data flow, Chinese with English labels.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # the demo's generators are heavy; only ``keyong demo`` imports them
    from app.demo import DemoReport, KeptDemo


def tokens_table(tokens: dict[str, str], totp: dict[str, str] | None = None) -> Table:
    """The demo principals' API keys and TOTP secrets (their second factor: a code from an authenticator
    app, or ``oathtool --totp -b SECRET``, goes with the key to POST /auth/token and the console's login)."""
    table = Table(title="API keys and TOTP secrets of the demo principals (shown once; both are needed to log in)")
    table.add_column("role")
    table.add_column("API key", overflow="fold")
    table.add_column("TOTP secret (oathtool --totp -b)", overflow="fold")
    for role, key in tokens.items():
        table.add_row(role, key, (totp or {}).get(role, "-"))
    return table


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    return table


def render_kept(console: Console, kept: KeptDemo) -> None:
    """A rerun of the demo on a home whose demo finished: what is there, and how to go on."""
    home = escape(str(kept.home))
    saved = kept.record.get("report") or {}
    licence = saved.get("licence") or {}
    jobs, products = list(saved.get("jobs") or []), list(saved.get("products") or [])
    if saved:
        console.print(f"The demo in [bold]{home}[/] is kept as it was: licence {licence.get('id')}, "
                      f"{len(jobs)} jobs, {len(products)} products.")  # fmt: skip
    else:
        console.print(f"The demo in [bold]{home}[/] (made by an earlier version) is kept as it was.")
    # Commands to copy are never broken by rich's wrapping (a long home would be split mid-path): the
    # terminal wraps them on screen, a copy gets them whole.
    console.print(
        f"Open it with [bold]keyong serve --home {home}[/]; the API keys were shown by the first run.", soft_wrap=True
    )
    console.print(f"To start over (deletes this demo): [bold]keyong demo --reset --home {home}[/]", soft_wrap=True)


def render_demo(console: Console, report: DemoReport, seed: int) -> None:
    """The demo's report, one section per step of DESIGN.md's data flow, Chinese with English labels."""
    if report.tokens:
        console.print(f"Initialised a new instance at [bold]{report.home}[/]")
        console.print(tokens_table(report.tokens, report.totp))
    _data(console, report, seed)
    _licence(console, report)
    _jobs(console, report)
    if report.releases:
        _releases(console, report)
    if report.products:
        _products(console, report)
    if report.objection:
        _objection(console, report)
    _ledger(console, report)
    steps = ", ".join(f"{step} {seconds:.1f}" for step, seconds in report.timings.items())
    console.print(f"Done in {report.seconds:.1f} s ({steps}). Next: [bold]keyong serve[/] and open /docs and /console.")


def _data(console: Console, report: DemoReport, seed: int) -> None:
    """Step 1: the generated tables, their catalog entries and their desensitized copies."""
    console.rule("1 数据生成与归集 Data: generate, ingest, desensitize")
    table = _table(f"Synthetic public data (seed {seed}) in {report.data_dir}", "file", "rows", "columns", "encoding")
    for t in report.tables:
        table.add_row(t.path.name, f"{t.rows:,}", str(len(t.columns)), t.encoding)
    console.print(table)
    if report.ingested:
        catalog = _table(
            "资源目录 Ingested (raw copies encrypted in the vault)",
            "dataset",
            "v",
            "rows",
            "level",
            "encoding",
            "personal columns",
        )
        for item in report.ingested:
            personal = item["personal_columns"]
            catalog.add_row(
                str(item["dataset"]),
                str(item["version"]),
                f"{item['rows']:,}",
                str(item["level"]),
                str(item["encoding"]),
                ", ".join(personal) if isinstance(personal, list) else "",
            )
        console.print(catalog)
    if report.desensitized:
        copies = _table(
            "脱敏副本 Desensitized copies (all a sandbox mounts)", "dataset", "v", "rows", "k", "suppressed", "actions"
        )
        for item in report.desensitized:
            actions = item["actions"] if isinstance(item["actions"], dict) else {}
            changed = ", ".join(f"{col}: {action}" for col, action in actions.items() if action != "keep")
            copies.add_row(
                str(item["dataset"]),
                str(item["version"]),
                f"{item['rows']:,}",
                str(item["k_anonymity"]),
                str(item["suppressed_rows"]),
                changed,
            )
        console.print(copies)


def _licence(console: Console, report: DemoReport) -> None:
    """Step 2, first half: the operator and its licence."""
    console.rule("2 授权运营 Licence and jobs")
    if report.operator:
        console.print(f"运营机构 Operator: [bold]{report.operator}[/]")
    if report.licence:
        scenarios = report.licence.get("scenarios")
        console.print(
            f"授权 Licence {report.licence.get('id')} ({report.licence.get('state')}): "
            f"{', '.join(report.licence.get('datasets') or [])} for {', '.join(scenarios or [])}"
        )
        linkage = report.licence.get("linkage")
        if isinstance(linkage, list) and linkage:  # issue 23: what the operator can link, and the joined risk
            from app.cli.licence import linkage_table

            console.print(linkage_table(linkage))


def _jobs(console: Console, report: DemoReport) -> None:
    """Step 2, second half: each job's state and the export guard's verdict."""
    if report.jobs:
        jobs = _table(
            "作业 Jobs (sandboxed, over the desensitized copies only)",
            "job",
            "what",
            "state",
            "verdict",
            "outputs / reason",
        )
        colour = {"pass": "green", "review": "yellow", "block": "bold red"}
        for job in report.jobs:
            detail = ", ".join(job.get("outputs") or []) if job["state"] == "done" else str(job.get("reason") or "")
            verdict = str(job["verdict"]) if job["verdict"] else "—"
            style = colour.get(verdict, "red" if job["state"] == "refused" else "")
            jobs.add_row(
                str(job["job"]),
                str(job.get("what") or job["kind"]),
                str(job["state"]),
                f"[{style}]{verdict}[/]" if style else verdict,
                detail,
            )
        console.print(jobs)
        _models(console, report)
    if report.rerun.get("auto_suspended"):
        console.print(
            f"Usage monitoring suspended the operator ({report.rerun['auto_suspended']}); "
            "the agency restored it after rectification (整改).",
            markup=False,
        )


def _models(console: Console, report: DemoReport) -> None:
    """Each dp-train model's holdout accuracy against the majority share, with the verdict (issue 16):
    a model that only ever answers the most common label must not pass for one that learnt something."""
    for job in report.jobs:
        model = job.get("model")
        if job.get("kind") != "dp-train" or job.get("state") != "done":
            continue
        if not isinstance(model, dict):
            console.print(f"模型 Model of job {job['job']}: no platform certificate, so no accuracy to report")
            continue
        style = "green" if model.get("beats_majority") else "bold red"
        console.print(
            f"模型 Model of job {job['job']} ({', '.join(model.get('features') or [])} → {model.get('model')}, "
            f"ε {model.get('epsilon')}): [{style}]{escape(str(model.get('verdict')))}[/]"
        )


def _releases(console: Console, report: DemoReport) -> None:
    """Step 3: release requests and the independent reviewers' votes."""
    console.rule("3 发布审核 Release review (独立审核, 双鸭山 第五十二条)")
    if report.reviewer_keys:
        for name, key in report.reviewer_keys.items():
            secret = report.reviewer_totp.get(name, "-")
            console.print(
                f"New agency reviewer [bold]{name}[/] (shown once) API key: {key}  TOTP secret: {secret}", markup=True
            )
            confirmer = report.reviewer_confirmed_by.get(name)
            console.print(
                f"  made by the host, so it counted only once {confirmer}, a second agency person, confirmed it "
                "(SATRE 3.2.01; principal.recovery_confirmed)"
                if confirmer
                else f"  held until another agency person confirms it (SATRE 3.2.01): "
                f"keyong principal confirm-recovery {name} --reason R --key-file F --totp C",
                markup=False,
            )
    releases = _table(
        f"Release requests; reviewers (sealed votes): {', '.join(report.reviewers)}",
        "release",
        "product",
        "job",
        "guard",
        "justified",
        "votes",
        "custodian",
        "state",
    )
    for r in report.releases:
        votes = r.get("votes")
        signoffs = r.get("signoffs") or []
        delegated = r.get("delegated") or []
        custodian = [f"{s['dataset']} signed" for s in signoffs if isinstance(s, dict)]
        custodian += [f"{d} delegated" for d in delegated if isinstance(delegated, list)]
        decisions = Counter(str(v["decision"]) for v in (votes if isinstance(votes, list) else []))
        releases.add_row(
            str(r["release"]),
            str(r["product"]),
            f"{r['job']} {r['kind']}",
            str(r["verdict"]) + "".join(f"\n{rule}" for rule in r.get("findings") or []),
            str(r["justified"]),
            ", ".join(f"{n} {d}" for d, n in decisions.items()),
            "\n".join(custodian) or "-",
            f"[green]{r['state']}[/]" if r["state"] == "approved" else str(r["state"]),
        )
    console.print(releases)
    if report.egress:
        modes = ", ".join(f"{d} {'delegated to the agency' if m == 'delegated' else 'custodian sign-off'}"
                          for d, m in report.egress.items())  # fmt: skip
        console.print(f"Custodians' say on egress (SATRE 3.1.06): {modes}")


def _products(console: Console, report: DemoReport) -> None:
    """Step 3, registered: each product's lineage and files."""
    products = _table(
        "数据产品登记 Registered products (lineage and attribution, 第四十一条)",
        "product",
        "datasets",
        "file",
        "bytes",
        "sha256",
    )
    for p in report.products:
        files = p["files"] if isinstance(p["files"], list) else []
        for i, f in enumerate(files):
            products.add_row(
                str(p["name"]) if i == 0 else "",
                ", ".join(p["datasets"]) if i == 0 else "",
                str(f["name"]),
                f"{f['bytes']:,}",
                f"{str(f['sha256'])[:12]}…",
            )
    console.print(products)


def _objection(console: Console, report: DemoReport) -> None:
    """Step 4: the provider's objection, the refused fetch while it was open, its resolution."""
    objection = report.objection
    console.rule("4 异议处理 Objection (双鸭山 第四十条)")
    fetch = objection["fetch_while_suspended"]
    fetched = objection["fetched"]
    assert isinstance(fetch, dict) and isinstance(fetched, dict)
    console.print(
        f"Objection #{objection['id']} against [bold]{objection['product']}[/] by {objection['filed_by']} "
        f"({objection['filed_role']}): {objection['reason']}",
        f"  product state while open: [yellow]{objection['state_while_open']}[/]",
        "  operator's fetch while suspended: "
        + (f"[green]refused[/] ({fetch['reason']})" if fetch["refused"] else "[bold red]NOT refused[/]"),
        f"  resolved by {objection['resolved_by']}: {objection['outcome']} — {objection['resolution']}",
        f"  product state after: [green]{objection['state_after']}[/]",
        f"  fetched into {fetched['to']}: "
        + ", ".join(f"{f['name']}{' (stamped)' if f['stamped'] else ''}" for f in fetched["files"]),
        f"  attribution: {fetched['attribution']}",
        sep="\n",
    )


def _ledger(console: Console, report: DemoReport) -> None:
    """Step 5: the ledger's verification, the export, the inclusion proof and the standalone verifier."""
    ledger = report.ledger
    console.rule("5 存证与核验 Ledger and the regulator's verifier")
    state = "[green]ok[/]" if ledger.get("ok") else "[bold red]FAILED[/]"
    console.print(
        f"ledger verify: {state}, {ledger.get('entries')} entries, {ledger.get('checkpoints')} checkpoints, "
        f"head {ledger.get('head')}"
    )
    proof, standalone, export = ledger.get("proof"), ledger.get("standalone"), ledger.get("export")
    if isinstance(proof, dict) and isinstance(standalone, dict) and isinstance(export, dict):
        console.print(
            f"export: {export['file']} ({export['entries']} entries, {export['checkpoints']} checkpoints)",
            f"inclusion proof of entry {proof['seq']} ({proof['action']} {proof['subject']}) in the tree of size "
            f"{proof['tree_size']}: {proof['file']}" + (" — matches the export" if proof["matches_export"] else ""),
            "$ " + " ".join(str(a) for a in standalone["command"]),
            sep="\n",
            markup=False,
        )
        ok = standalone["ok"] is True and standalone["proof"] is True
        verdict = "[green]ok, proof verified[/]" if ok else f"[bold red]FAILED[/] {standalone['problems']}"
        console.print(f"standalone verifier (exit {standalone['exit_code']}): {verdict}")
