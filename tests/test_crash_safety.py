"""Every multi-step write survives a ``kill -9`` between its steps (issue 17, "Crash safety").

Each test prepares a home, closes it, and runs one write in a real child process
(:mod:`tests.crash_child`) with a named crash point set (:mod:`core.crashpoints`): the child sends
itself ``SIGKILL`` there, between two steps. Then the home is reopened — ``Instance.open`` runs the
start-up sweep (:mod:`registry.leftovers`) — and the test checks the invariant of that write:

- desensitization: the version with its copy and fingerprints, or none of them;
- the deciding release vote: the vote, the decision, the product row, its store and their ledger
  entries, or none of them (双鸭山 第五十条 登记, 第五十二条: the reviewer simply votes again);
- fetching a product: its files reach the operator's directory only after the delivery is ledgered;
- licence revocation: the revocation, the destruction of the work tree and its record, or none
  (双鸭山 第六十二条: destruction logged; the ledger never records what did not happen);
- a job's end: a worker killed while judging leaves no unjudged output on the job, and the job is
  requeued and judged, never ``running`` forever; a block's monitoring record commits with the end;
- cancelling a queued DP job: the cancellation and its ε refund, or neither;
- key rotation: one transaction, so the old key still works and no new key exists.

Every time, the ledger (双鸭山 第二十条) verifies and holds no entry for what did not commit. Both
databases: SQLite (whose hot journal the next start rolls back) and PostgreSQL (which rolls back the
dead child's transaction when its connection drops).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from app import Instance
from app.settings import Settings
from core import CRASH_POINT_ENVIRONMENT, Actor, NotFoundError
from desensitize.identifiers import id_check_char, uscc_check_char
from operators import Role
from registry import Scratch
from tests.dp_support import DATASET, DP_OPERATOR, DP_SCENARIO, dp_licensed
from tests.job_worker_proc import OPERATOR, SCENARIO, fast_runner, licensed

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
CUSTODIAN = Actor("demo-custodian", "custodian")
AGENCY = Actor("demo-agency", "agency")
ACME = Actor(OPERATOR, "operator")
R1 = Actor("demo-agency", "agency")
R2 = Actor("reviewer-2", "agency")
PROVIDER_CODE = "11230500MB1234567" + uscc_check_char("11230500MB1234567")
CSV = "编号,备注,住所\n" + "".join(f"{i:06d},备注{i % 7},黑龙江省双鸭山市尖山区{i % 40}号\n" for i in range(300))


def kill_at(home: Path, point: str, *arguments: str) -> None:
    """Run ``tests.crash_child`` with ``point`` set and require that it died of SIGKILL there."""
    env = {**os.environ, CRASH_POINT_ENVIRONMENT: point}
    child = subprocess.run(
        [sys.executable, "-m", "tests.crash_child", str(home), *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -signal.SIGKILL, f"never reached {point}: {child.stdout} {child.stderr[-3000:]}"


def files(home: Path, sub: str) -> list[str]:
    root = home / sub
    return sorted(p.relative_to(home).as_posix() for p in root.rglob("*") if p.is_file()) if root.exists() else []


def actions_after(instance: Instance, seq: int) -> list[str]:
    return [e.action for e in instance.ledger.entries(after=seq)]


def reopen(home: Path) -> Instance:
    return Instance.open(Settings(home=home))


# --- desensitization ----------------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["desensitize.files-written", "before-commit:dataset.desensitized"])
def test_a_killed_desensitization_leaves_no_copy_and_no_version(
    initialised: tuple[Instance, dict[str, str]], tmp_path: Path, point: str
) -> None:
    instance, _ = initialised
    home = instance.home
    source = tmp_path / "people.csv"
    source.write_text(CSV, encoding="utf-8")
    instance.registry.ingestor.ingest(
        source, name="people", provider="双鸭山市民政局", provider_code=PROVIDER_CODE, by=CUSTODIAN
    )
    before = instance.ledger.size()
    instance.close()

    kill_at(home, point, "desensitize", "people")
    assert files(home, "copies") and files(home, "fingerprints"), "the child was killed after writing its files"

    reopened = reopen(home)
    try:
        assert files(home, "copies") == [] and files(home, "fingerprints") == []
        assert [v.kind for v in reopened.registry.catalog.get("people").versions] == ["raw"]
        assert "dataset.desensitized" not in actions_after(reopened, before)
        assert reopened.ledger.verify().ok

        made = reopened.registry.copies.make("people", by=CUSTODIAN)  # and it then runs cleanly
        assert made.version == 2 and made.copy.is_file() and made.fingerprints.is_dir()
        assert reopened.registry.copies.fingerprints("people").counts()
        reopened.close()
        again = reopen(home)  # a start never touches what a committed version names
        assert made.copy.is_file() and made.fingerprints.is_dir() and len(files(home, "copies")) == 1
        assert again.registry.sweep().missing == []
        made.copy.unlink()  # a row without its file: only a hand or the disk does that, and a start reports it
        assert again.registry.sweep().missing == [made.copy.relative_to(home).as_posix()]
        again.close()
    finally:
        reopened.close()


# --- the deciding release vote -------------------------------------------------------------------------


def _release_awaiting_its_deciding_vote(instance: Instance) -> int:
    licensed(instance.registry, instance.home)
    instance.identity.create_principal(R2.name, Role.AGENCY)
    job = instance.jobs.submit(OPERATOR, ["traffic"], "python", "print(1)", SCENARIO)
    instance.worker(runner=fast_runner, worker_id="setup").run_pending()
    with instance.engine.begin() as connection:  # judged as the guard would judge an aggregate table
        connection.execute(
            text("UPDATE jobs SET verdict = 'pass', findings = :f WHERE id = :id"), {"f": "[]", "id": job}
        )
    release = instance.releases.request(job, product="trips", by=ACME).id
    instance.releases.vote(release, "approve", by=R1)
    return release


@pytest.mark.parametrize("point", ["release.store-written", "before-commit:release.voted"])
def test_a_killed_deciding_vote_registers_nothing_and_can_be_cast_again(
    initialised: tuple[Instance, dict[str, str]], markers: Path, point: str
) -> None:
    instance, _ = initialised
    home = instance.home
    release = _release_awaiting_its_deciding_vote(instance)
    before = instance.ledger.size()
    instance.close()

    kill_at(home, point, "vote", str(release), R2.name)
    assert files(home, "products"), "the child was killed with the product store in place"

    reopened = reopen(home)
    try:
        assert files(home, "products") == []
        view = reopened.releases.get(release, viewer=AGENCY)
        assert view.state == "under_review" and view.votes_cast == 1 and view.product_id is None
        with pytest.raises(NotFoundError):
            reopened.registry.products.get("trips", viewer=AGENCY)
        assert actions_after(reopened, before) == []
        assert reopened.ledger.verify().ok

        decided = reopened.releases.vote(release, "approve", by=R2)  # the reviewer votes again
        assert decided.state == "approved" and decided.product_id is not None
        product = reopened.registry.products.get("trips", viewer=AGENCY)
        assert all((home / a["path"]).is_file() for a in product.artifacts)
    finally:
        reopened.close()


def test_a_running_server_reclaims_a_dead_votes_store_instead_of_sticking(
    initialised: tuple[Instance, dict[str, str]], markers: Path
) -> None:
    """A killed CLI vote's store met by a long-running process before any start swept it."""
    instance, _ = initialised
    release = _release_awaiting_its_deciding_vote(instance)
    orphan = instance.home / "products" / "trips"
    orphan.mkdir(parents=True)
    (orphan / "result.txt").write_text("left by a vote killed before its commit", encoding="utf-8")
    decided = instance.releases.vote(release, "approve", by=R2)
    assert decided.state == "approved"
    product = instance.registry.products.get("trips", viewer=AGENCY)
    assert [p.name for p in orphan.iterdir()] == ["result.txt"]
    stored = instance.home / product.artifacts[0]["path"]  # sealed under the licence's products key (issue 22)
    assert instance.registry.at_rest.read(stored).decode("utf-8").startswith("python:")


@pytest.mark.parametrize("point", ["before-commit:product.fetched", "product.fetch-recorded"])
def test_a_killed_fetch_never_delivers_unrecorded(
    initialised: tuple[Instance, dict[str, str]], markers: Path, tmp_path: Path, point: str
) -> None:
    """A product's files reach the operator's directory only after the ledger recorded the delivery."""
    instance, _ = initialised
    home = instance.home
    release = _release_awaiting_its_deciding_vote(instance)
    instance.releases.vote(release, "approve", by=R2)
    before = instance.ledger.size()
    instance.close()
    to = tmp_path / "delivered"

    kill_at(home, point, "fetch", "trips", str(to), OPERATOR)
    assert list(to.iterdir()) == []  # nothing delivered, not even a partial file
    assert files(home, ".scratch"), "the child was killed holding its stamped copies in scratch"

    reopened = reopen(home)
    try:
        assert files(home, ".scratch") == []
        recorded = actions_after(reopened, before)
        assert recorded == ([] if point.startswith("before-commit") else ["product.fetched"])
        fetched = reopened.releases.fetch("trips", to, by=ACME)  # fetching again delivers and records again
        assert [f["path"] for f in fetched["files"]] == [str(to / "result.txt")]
        assert sorted(p.name for p in to.iterdir()) == ["result.txt", "result.txt.attribution.json"]
        assert actions_after(reopened, before).count("product.fetched") == len(recorded) + 1
        assert reopened.ledger.verify().ok
    finally:
        reopened.close()


# --- licence revocation and the destruction of its work -------------------------------------------------


def _licence_with_work(instance: Instance) -> tuple[int, Path]:
    licence = licensed(instance.registry, instance.home)
    tree = instance.registry.licences.workdir(OPERATOR, licence)
    (tree / "jobs" / "1" / "1" / "out").mkdir(parents=True)
    (tree / "jobs" / "1" / "1" / "out" / "result.csv").write_text("区县,n\n尖山区,12\n", encoding="utf-8")
    return licence, tree


def test_a_revocation_killed_before_its_commit_destroys_nothing(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    instance, _ = initialised
    home = instance.home
    licence, tree = _licence_with_work(instance)
    before = instance.ledger.size()
    instance.close()

    kill_at(home, "licence.tree-moved", "revoke", str(licence))
    assert not tree.exists(), "the child was killed with the tree moved aside"

    reopened = reopen(home)
    try:
        assert (tree / "jobs" / "1" / "1" / "out" / "result.csv").is_file()  # moved back: nothing happened
        assert reopened.registry.licences.get(licence, viewer=AGENCY).state == "active"
        assert reopened.registry.licences.destructions(licence, viewer=AGENCY) == []
        assert actions_after(reopened, before) == []
        assert reopened.ledger.verify().ok
        assert [p.name for p in tree.parent.iterdir()] == [tree.name]
    finally:
        reopened.close()


def test_a_revocation_killed_after_its_commit_is_completed_at_the_next_start(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    instance, _ = initialised
    home = instance.home
    licence, tree = _licence_with_work(instance)
    before = instance.ledger.size()
    instance.close()

    kill_at(home, "licence.destruction-committed", "revoke", str(licence))
    (tomb,) = list(tree.parent.iterdir())  # recorded, not yet deleted: out of every path Keyong serves
    assert tomb.name.startswith(".destroyed-licence-") and not tree.exists()

    reopened = reopen(home)
    try:
        assert list(tree.parent.iterdir()) == []
        assert reopened.registry.licences.get(licence, viewer=AGENCY).state == "revoked"
        (destruction,) = reopened.registry.licences.destructions(licence, viewer=AGENCY)
        assert destruction.files == 1
        actions = actions_after(reopened, before)
        assert "licence.revoked" in actions and "licence.destroyed" in actions
        assert reopened.ledger.verify().ok
    finally:
        reopened.close()


# --- a job's end -------------------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["job.judging", "job.judged"])
def test_a_worker_killed_while_judging_delivers_nothing_and_the_job_is_rerun(
    initialised: tuple[Instance, dict[str, str]], markers: Path, point: str
) -> None:
    instance, _ = initialised
    home = instance.home
    licensed(instance.registry, home)
    job = instance.jobs.submit(OPERATOR, ["traffic"], "python", "print(2)", SCENARIO)
    instance.close()

    kill_at(home, point, "work")

    reopened = reopen(home)
    try:
        killed = reopened.jobs.show(job)
        assert killed.state == "running" and killed.outputs == [] and killed.verdict is None  # nothing unjudged shown
        first_attempt = reopened.registry.licences.workdir(OPERATOR, killed.licence_id or 0) / "jobs" / str(job) / "1"
        assert (first_attempt / "out" / "result.txt").is_file()

        worker = reopened.worker(runner=fast_runner, worker_id="survivor", stale_after=timedelta(seconds=0.5))
        time.sleep(0.6)  # the dead worker's last heartbeat goes stale
        (done,) = worker.run_pending()
        assert done.id == job and done.state == "done" and done.attempts == 2 and done.verdict is not None
        assert all("/2/out/" in o["path"] for o in done.outputs)
        assert not first_attempt.exists()  # the unjudged attempt is gone
        requeued = [e for e in reopened.ledger.entries(action="job.requeued") if e.subject == f"job:{job}"]
        assert len(requeued) == 1 and json.dumps(requeued[0].payload, ensure_ascii=False).count("worker") >= 1
        assert reopened.ledger.verify().ok
    finally:
        reopened.close()


def test_a_dp_job_cancelled_while_queued_is_refunded_in_the_same_transaction(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    """Killed between the cancellation and the refund: neither happened, and the cancel can be repeated."""
    instance, _ = initialised
    home = instance.home
    dp_licensed(instance.registry, home, residents=300)
    spec = {"aggregate": "mean", "column": "月缴费基数", "epsilon": 0.5, "group_by": ["参保状态"]}
    job = instance.jobs.submit(DP_OPERATOR, [DATASET], "dp-query", json.dumps(spec, ensure_ascii=False), DP_SCENARIO)
    (charged,) = instance.registry.budgets.show(DP_OPERATOR, viewer=AGENCY)
    before = instance.ledger.size()
    instance.close()

    kill_at(home, "before-commit:budget.refunded", "cancel", str(job), DP_OPERATOR)

    reopened = reopen(home)
    try:
        assert reopened.jobs.show(job).state == "queued"
        (budget,) = reopened.registry.budgets.show(DP_OPERATOR, viewer=AGENCY)
        assert budget.epsilon_spent == charged.epsilon_spent > 0
        assert actions_after(reopened, before) == []
        reopened.jobs.cancel(job, by=Actor(DP_OPERATOR, "operator"))
        (refunded,) = reopened.registry.budgets.show(DP_OPERATOR, viewer=AGENCY)
        assert refunded.epsilon_spent == pytest.approx(charged.epsilon_spent - 0.5)
        assert reopened.ledger.verify().ok
    finally:
        reopened.close()


def test_a_blocked_exports_monitoring_record_commits_with_the_jobs_end(
    initialised: tuple[Instance, dict[str, str]], markers: Path
) -> None:
    """Killed right after the job's end committed: its block already counts for usage monitoring
    (repeated blocked exports are a security anomaly, 双鸭山 第三十一条)."""
    instance, _ = initialised
    home = instance.home
    licensed(instance.registry, home)
    resident = "11010119900307451" + id_check_char("11010119900307451")
    job = instance.jobs.submit(OPERATOR, ["traffic"], "python", f"print('{resident}')", SCENARIO)
    instance.close()

    kill_at(home, "job.recorded", "work")

    reopened = reopen(home)
    try:
        ended = reopened.jobs.show(job)
        assert ended.state == "done" and ended.verdict == "block"
        violations = reopened.registry.monitoring.list_violations(viewer=AGENCY, operator=OPERATOR)
        assert [v.subject for v in violations if v.kind == "blocked_export"] == [f"job:{job}"]
        assert reopened.ledger.verify().ok
    finally:
        reopened.close()


# --- keys ----------------------------------------------------------------------------------------------


def test_a_key_rotation_killed_before_its_commit_keeps_the_old_key(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    instance, tokens = initialised
    home = instance.home
    old_key = tokens["operator"]
    principal = instance.identity.authenticate_api_key(old_key)
    (key,) = instance.identity.get_principal(principal.name)["keys"]  # type: ignore[misc]
    before = instance.ledger.size()
    instance.close()

    kill_at(home, "before-commit:principal.key_rotated", "rotate", str(key["key_id"]))

    reopened = reopen(home)
    try:
        assert reopened.identity.authenticate_api_key(old_key).name == principal.name
        assert [k["live"] for k in reopened.identity.get_principal(principal.name)["keys"]] == [True]  # type: ignore[union-attr]
        assert actions_after(reopened, before) == []
        assert reopened.ledger.verify().ok
    finally:
        reopened.close()


# --- the sweep spares live operations ----------------------------------------------------------------


def test_the_sweep_spares_what_a_live_operation_noted_and_removes_it_once_that_died(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    instance, _ = initialised
    home = instance.home
    store = home / "products" / "inflight"
    copy = home / "copies" / "inflight" / "0123456789abcdef.00000000.parquet"
    live = Scratch(home, purpose="release")
    live.note_paths("products/inflight", "copies/inflight/")
    store.mkdir(parents=True)
    (store / "a.csv").write_text("x\n", encoding="utf-8")
    copy.parent.mkdir(parents=True)
    copy.write_bytes(b"PAR1")
    reopen(home).close()  # another process starting while the operation is live
    assert (store / "a.csv").is_file() and copy.is_file()
    live.close()  # as if it had died: its lock is gone and it never committed
    reopen(home).close()
    assert not store.exists() and not copy.exists()


def test_the_crash_hook_is_no_setting_and_inert_without_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the environment of the process itself arms a crash point: no setting, request or row can."""
    from core import crash_point

    assert not any("crash" in name for name in Settings.model_fields)
    monkeypatch.delenv(CRASH_POINT_ENVIRONMENT, raising=False)
    crash_point("before-commit:principal.key_rotated")  # still alive
    monkeypatch.setenv(CRASH_POINT_ENVIRONMENT, "another-point")
    crash_point("before-commit:principal.key_rotated")  # still alive
