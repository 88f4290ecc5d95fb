"""The release workflow (issue 7; 双鸭山 第五十二条 pre-release review, 第四十一条 attribution, 第四十条
objections): block or unjudged verdicts cannot be requested; independent sealed reviews; disagreement
needs a further reviewer; returned → resubmit; withdraw; approval registers the product with its
lineage; only the owning operator fetches it, only while no objection suspends it. Both databases.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from app import Instance
from app.cli import cli
from core import Actor, NotFoundError, PermissionDeniedError
from operators import Role
from registry import read_attribution
from sandbox.release import Decision, ReleaseError, outcome_of, votes_needed
from tests.job_worker_proc import MARKERS_ENV, OPERATOR, SCENARIO, fast_runner, licensed
from tests.recovery_support import confirm, issue_key
from tests.totp_support import code_by_name, create_enrolled

ACME = Actor(OPERATOR, "operator")
R1 = Actor("demo-agency", "agency")
R2 = Actor("reviewer-2", "agency")
R3 = Actor("reviewer-3", "agency")
SOFT = {"rule": "sdc.min_cell", "severity": "soft", "file": "result.txt", "location": "row 3", "detail": "count < 10"}
HARD = {"rule": "identifier", "severity": "hard", "file": "result.txt", "location": "row 1", "detail": "id number"}


@pytest.fixture
def instance(initialised: tuple[Instance, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Instance:
    instance = initialised[0]
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv(MARKERS_ENV, str(markers))
    licensed(instance.registry, instance.home)
    for reviewer in (R2, R3):
        create_enrolled(instance.identity, reviewer.name, Role.AGENCY)  # with a second factor, for votes by key
        confirm(instance.identity, reviewer.name)  # made by the host: counts once an agency person confirmed it
    return instance


def done_job(
    instance: Instance, verdict: str | None, findings: list[dict[str, str]] | None = None, code: str = "1"
) -> int:
    """A job run by the fast stand-in runner, then judged as the export guard would have judged it."""
    job = instance.jobs.submit(OPERATOR, ["traffic"], "python", f"print({code})", SCENARIO)
    instance.worker(runner=fast_runner, worker_id="release-test").run_pending()
    with instance.engine.begin() as connection:
        connection.execute(
            text("UPDATE jobs SET verdict = :verdict, findings = :findings WHERE id = :id"),
            {"verdict": verdict, "findings": json.dumps(findings or []), "id": job},
        )
    return job


def test_decision_rule_unanimity_then_majority_after_a_further_reviewer() -> None:
    assert outcome_of(["approve"], 2) is None and votes_needed(["approve"], 2) == 1
    assert outcome_of(["approve", "approve"], 2) == Decision.APPROVE
    assert outcome_of(["approve", "reject"], 2) is None and votes_needed(["approve", "reject"], 2) == 1
    assert outcome_of(["approve", "reject", "reject"], 2) == Decision.REJECT
    assert outcome_of(["approve", "reject", "changes_requested"], 2) is None
    assert outcome_of(["changes_requested"] * 3, 3) == Decision.CHANGES_REQUESTED


def test_blocked_or_unjudged_jobs_cannot_be_requested(instance: Instance) -> None:
    blocked = done_job(instance, "block", [HARD])
    with pytest.raises(ReleaseError, match="blocked"):
        instance.releases.request(blocked, product="p-block", by=ACME)
    unjudged = done_job(instance, None, code="2")
    with pytest.raises(ReleaseError, match="not been judged"):
        instance.releases.request(unjudged, product="p-null", by=ACME)
    with pytest.raises(PermissionDeniedError):
        instance.releases.request(unjudged, product="p-null", by=R1)
    assert instance.releases.list(viewer=R1) == []


def test_request_checks_fee_class_and_justifications(instance: Instance) -> None:
    job = done_job(instance, "review", [SOFT, HARD])
    with pytest.raises(ReleaseError, match="fee class"):
        instance.releases.request(job, product="p", by=ACME, fee_class="经营性")
    with pytest.raises(ReleaseError, match="hard"):
        instance.releases.request(job, product="p", by=ACME, justifications={"1": "please"})
    with pytest.raises(ReleaseError, match="no finding 5"):
        instance.releases.request(job, product="p", by=ACME, justifications={"5": "please"})
    view = instance.releases.request(job, product="p", by=ACME, justifications={"0": "区县合计，非个体"})
    assert view.state == "submitted" and view.fee_class == "公益" and view.justifications == {"0": "区县合计，非个体"}
    pending = instance.releases.list(viewer=R1, state="submitted")
    assert [p.id for p in pending] == [view.id] and pending[0].findings[0]["rule"] == "sdc.min_cell"
    assert pending[0].outputs and "path" not in pending[0].outputs[0]  # a remote reviewer never gets home paths
    with pytest.raises(ReleaseError, match="pending release"):
        instance.releases.request(job, product="p", by=ACME)


def test_an_operator_cannot_review_its_own_release(instance: Instance) -> None:
    release = instance.releases.request(done_job(instance, "pass"), product="own", by=ACME).id
    with pytest.raises(PermissionDeniedError):
        instance.releases.vote(release, "approve", by=ACME)
    with pytest.raises(PermissionDeniedError):
        instance.releases.vote(release, "approve", by=Actor.host())
    instance.identity.create_principal(OPERATOR, Role.AGENCY)  # an agency principal bearing the org's own name
    with pytest.raises(PermissionDeniedError, match="own organisation"):
        instance.releases.vote(release, "approve", by=Actor(OPERATOR, "agency"))
    with pytest.raises(PermissionDeniedError, match="not an active agency principal"):
        instance.releases.vote(release, "approve", by=Actor("nobody", "agency"))
    assert instance.releases.get(release, viewer=R1).votes_cast == 0


def test_votes_are_sealed_until_all_required_reviewers_voted(instance: Instance) -> None:
    release = instance.releases.request(done_job(instance, "pass"), product="sealed", by=ACME).id
    first = instance.releases.vote(release, "approve", by=R1, reason="聚合结果")
    assert first.state == "under_review" and first.votes_needed == 1
    assert [v["reviewer"] for v in first.votes] == [R1.name]  # one's own vote only
    for viewer in (R2, ACME, Actor("demo-regulator", "regulator"), Actor.host()):
        seen = instance.releases.get(release, viewer=viewer)
        assert seen.votes == [] and seen.votes_cast == 1
    with pytest.raises(ReleaseError, match="already voted"):
        instance.releases.vote(release, "reject", by=R1, reason="changed my mind")
    decided = instance.releases.vote(release, "approve", by=R2)
    assert decided.state == "approved" and decided.product_id is not None
    assert sorted(v["reviewer"] for v in instance.releases.get(release, viewer=ACME).votes) == [R1.name, R2.name]
    voted = instance.ledger.entries(action="release.voted")
    assert len(voted) == 2 and all("decision" not in e.payload for e in voted)
    (revealed,) = instance.ledger.entries(action="release.decided")
    assert [v["decision"] for v in revealed.payload["votes"]] == ["approve", "approve"]


def test_disagreement_needs_a_further_reviewer(instance: Instance) -> None:
    release = instance.releases.request(done_job(instance, "review", [SOFT]), product="split", by=ACME).id
    instance.releases.vote(release, "approve", by=R1)
    split = instance.releases.vote(release, "reject", by=R2, reason="小单元格")
    assert split.state == "under_review" and split.votes_needed == 1 and split.product_id is None
    final = instance.releases.vote(release, "approve", by=R3)
    assert final.state == "approved" and final.product_id is not None
    product = instance.registry.products.get("split", viewer=R1)
    assert [r["reviewer"] for r in product.reviews] == [R1.name, R3.name]
    # The outvoted reviewer stays in the product's lineage, with the reason.
    assert product.dissent == [{"reviewer": R2.name, "decision": "reject", "reason": "小单元格"}]
    assert product.guard == {"verdict": "review", "findings": [SOFT]}


def test_per_file_votes_take_the_worst_decision(instance: Instance) -> None:
    release = instance.releases.request(done_job(instance, "pass"), product="perfile", by=ACME).id
    with pytest.raises(ReleaseError, match="no file"):
        instance.releases.vote(release, "approve", by=R1, files={"other.csv": "reject"})
    with pytest.raises(ReleaseError, match="reason"):
        instance.releases.vote(release, "approve", by=R1, files={"result.txt": "changes_requested"})
    with pytest.raises(ReleaseError, match="need your comment"):  # a return comes with a comment (issue 18)
        instance.releases.vote(release, "approve", by=R1, files={"result.txt": "changes_requested"}, reason="取整")
    instance.releases.comments.post(release, "请取整到 5", by=R1, file="result.txt")
    instance.releases.comments.post(release, "同上", by=R2)
    instance.releases.vote(release, "approve", by=R1, files={"result.txt": "changes_requested"}, reason="取整")
    view = instance.releases.vote(release, "changes_requested", by=R2, reason="同上")
    assert view.state == "returned"
    assert view.votes[0]["files"] == {"result.txt": "changes_requested"} and view.votes[0]["decision"] == (
        "changes_requested"
    )


def test_returned_release_is_resubmitted_after_a_rerun(instance: Instance) -> None:
    release = instance.releases.request(done_job(instance, "review", [SOFT]), product="again", by=ACME).id
    for reviewer in (R1, R2):
        instance.releases.comments.post(release, "合并小区县", by=reviewer)
    instance.releases.vote(release, "changes_requested", by=R1, reason="合并小区县")
    returned = instance.releases.vote(release, "changes_requested", by=R2, reason="合并小区县")
    assert returned.state == "returned" and returned.reason and "合并小区县" in returned.reason
    with pytest.raises(ReleaseError, match="not awaiting review"):
        instance.releases.vote(release, "approve", by=R3)
    blocked = done_job(instance, "block", [HARD], code="3")
    with pytest.raises(ReleaseError, match="blocked"):
        instance.releases.resubmit(release, job_id=blocked, by=ACME)
    rerun = done_job(instance, "pass", code="4")
    again = instance.releases.resubmit(release, job_id=rerun, by=ACME)
    assert again.state == "submitted" and again.round == 2 and again.job == rerun and again.votes_cast == 0
    instance.releases.vote(release, "approve", by=R1)  # the same reviewers vote afresh in the new round
    approved = instance.releases.vote(release, "approve", by=R2)
    assert approved.state == "approved"
    assert instance.registry.products.get("again", viewer=R1).job == str(rerun)
    assert len(instance.ledger.entries(action="release.resubmitted")) == 1


def test_withdraw(instance: Instance) -> None:
    release = instance.releases.request(done_job(instance, "pass"), product="gone", by=ACME).id
    instance.releases.vote(release, "approve", by=R1)
    with pytest.raises(NotFoundError):
        instance.releases.withdraw(release, by=Actor("other-ops", "operator"))
    view = instance.releases.withdraw(release, by=ACME, reason="不再需要")
    assert view.state == "withdrawn"
    with pytest.raises(ReleaseError):
        instance.releases.vote(release, "approve", by=R2)
    with pytest.raises(ReleaseError):
        instance.releases.withdraw(release, by=ACME)
    assert len(instance.ledger.entries(action="release.withdrawn")) == 1
    # the name is free again for a new request
    assert instance.releases.request(done_job(instance, "pass", code="5"), product="gone", by=ACME).state == "submitted"


def test_only_the_owner_fetches_an_available_product_with_its_attribution(instance: Instance, tmp_path: Path) -> None:
    licensed(instance.registry, instance.home, operator="other-ops", datasets=("buses",))
    job = done_job(instance, "pass")
    release = instance.releases.request(job, product="trips", by=ACME).id
    instance.releases.vote(release, "approve", by=R1)
    instance.releases.vote(release, "approve", by=R2)
    product = instance.registry.products.get("trips", viewer=R1)
    assert product.datasets[0]["name"] == "traffic" and product.code_sha256 == instance.jobs.show(job).code_sha256
    stored = instance.home / product.artifacts[0]["path"]
    assert stored.is_file() and stored.is_relative_to(instance.home / "products" / "trips")

    with pytest.raises(NotFoundError):
        instance.releases.fetch("trips", tmp_path / "theft", by=Actor("other-ops", "operator"))
    with pytest.raises(PermissionDeniedError):
        instance.releases.fetch("trips", tmp_path / "agency", by=R1)
    fetched = instance.releases.fetch("trips", tmp_path / "mine", by=ACME)
    (item,) = fetched["files"]
    attribution = read_attribution(Path(item["path"]))
    assert attribution is not None and attribution["product"] == "trips" and attribution["licence_id"]
    assert attribution["data_source"] and attribution["acquisition_date"]
    assert len(instance.ledger.entries(action="product.fetched")) == 1

    instance.registry.objections.file("product", "trips", "含有个人信息", by=Actor("someone", "regulator"))
    with pytest.raises(Exception, match="suspended"):
        instance.releases.fetch("trips", tmp_path / "later", by=ACME)


def test_cli_request_vote_list_show_fetch(instance: Instance, tmp_path: Path) -> None:
    home = ["--home", str(instance.home)]
    job = done_job(instance, "review", [SOFT])
    justify = tmp_path / "justify.json"
    justify.write_text(json.dumps({"0": "区县合计"}, ensure_ascii=False), encoding="utf-8")
    runner = CliRunner()
    made = runner.invoke(
        cli, ["release", "request", str(job), "--product", "cli-p", "--justify", str(justify), "--json", *home]
    )
    assert made.exit_code == 0, made.output
    release = json.loads(made.stdout)["release"]
    keys = {name: tmp_path / f"{name}.key" for name in (R1.name, R2.name, R3.name)}
    for name, path in keys.items():  # each reviewer votes with their own key (issue 22, SATRE 3.1.06)
        path.write_text(issue_key(instance.identity, name), encoding="utf-8")
        path.chmod(0o600)  # a key file others can read is refused (app.cli.credentials)
    own = runner.invoke(cli, ["release", "approve", str(release), "--reviewer", OPERATOR, *home])
    assert own.exit_code == 1 and "credential" in own.output
    approve = ["release", "approve", str(release), "--key-file", str(keys[R1.name]), "--reviewer", R1.name, *home]
    approve += ["--totp", code_by_name(R1.name)]  # a key is one factor: its principal's code goes with it
    assert runner.invoke(cli, approve).exit_code == 0
    shown = json.loads(runner.invoke(cli, ["release", "show", str(release), "--json", *home]).stdout)
    assert shown["votes"] == [] and shown["votes_cast"] == 1 and shown["justifications"] == {"0": "区县合计"}
    rejected = runner.invoke(
        cli,
        [
            "release",
            "reject",
            str(release),
            "--key-file",
            str(keys[R2.name]),
            "--reason",
            "太细",
            "--json",
            *home,
            "--totp",
            code_by_name(R2.name),
        ],
    )
    assert rejected.exit_code == 0 and json.loads(rejected.stdout)["state"] == "under_review"
    listed = json.loads(runner.invoke(cli, ["release", "list", "--json", *home]).stdout)
    assert [r["release"] for r in listed["releases"]] == [release]
    final = runner.invoke(
        cli,
        [
            "release",
            "approve",
            str(release),
            "--key-file",
            str(keys[R3.name]),
            "--json",
            *home,
            "--totp",
            code_by_name(R3.name),
        ],
    )
    assert json.loads(final.stdout)["state"] == "approved"
    out = tmp_path / "fetched"
    theft = runner.invoke(cli, ["product", "fetch", "cli-p", "--to", str(out), "--operator", "other", *home])
    assert theft.exit_code == 1
    got = runner.invoke(cli, ["product", "fetch", "cli-p", "--to", str(out), "--operator", OPERATOR, "--json", *home])
    assert got.exit_code == 0, got.output
    assert read_attribution(Path(json.loads(got.stdout)["files"][0]["path"])) is not None


def test_a_total_differing_from_a_released_one_by_a_handful_goes_to_review(instance: Instance) -> None:
    """Differencing across releases (issue 7): a later job whose total, with a released product's total of
    the same dataset, isolates fewer than 10 people is a soft finding naming the earlier product."""
    from types import SimpleNamespace

    def totals_runner(kind: str, code: str, *, datasets: object, out_dir: Path, limits: object = None) -> object:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "total.csv").write_text(f"区县,人数\n尖山区,{code.strip()}\n", encoding="utf-8")
        data = (out_dir / "total.csv").read_bytes()
        return SimpleNamespace(
            status="ok", exit_code=0, reason=None, wall_seconds=0.01, cpu_seconds=0.01, max_rss_bytes=1,
            stdout="", stderr="", out_dir=out_dir, removed=[],
            outputs=[{"name": "total.csv", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}],
        )  # fmt: skip

    first = instance.jobs.submit(OPERATOR, ["traffic"], "python", "1234", SCENARIO)
    (view,) = instance.worker(runner=totals_runner, worker_id="diff-1").run_pending()
    assert view.id == first and "sdc.differencing" not in {f["rule"] for f in view.findings}
    release = instance.releases.request(first, product="尖山区人口", by=ACME).id
    instance.releases.vote(release, "approve", by=R1)
    instance.releases.vote(release, "approve", by=R2)

    second = instance.jobs.submit(OPERATOR, ["traffic"], "python", "1231", SCENARIO)
    (view,) = instance.worker(runner=totals_runner, worker_id="diff-2").run_pending()
    assert view.id == second and view.verdict == "review"
    (finding,) = [f for f in view.findings if f["rule"] == "sdc.differencing"]
    assert "尖山区人口" in finding["detail"] and "1231" not in finding["detail"]


@pytest.mark.parametrize("product", ["../../x", "a/b", ".hidden", "x" * 129, "a\\b"])
def test_a_product_name_the_registry_would_refuse_is_refused_at_request_time(instance: Instance, product: str) -> None:
    """Issue 17: ``../../x`` was accepted, then the deciding vote crashed and the release was stuck. The
    request now asks the registry's one product-name rule, so no release holds a name no vote can register."""
    job = done_job(instance, "pass")
    with pytest.raises(ReleaseError, match="product name"):
        instance.releases.request(job, product=product, by=ACME)
    assert instance.releases.list(viewer=R1) == []
    assert instance.releases.request(job, product=" 人口-2026.v1 ", by=ACME).product == "人口-2026.v1"
