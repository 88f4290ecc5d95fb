"""The operator's console pages over a TestClient (issue 9): only the operator opens them, every form needs
its CSRF token, a job page shows outputs by name and hash and never a host path, another operator's job
is not found, and a bad submission shows its reason and records nothing else. A blocked job's page shows
its findings but no output, log or exit code, and a failed job never shows or counts as ``pass`` (issue 15;
原始数据不出域, 双鸭山 第三十五条)."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import Instance, create_app
from core import Actor
from tests.console_support import console_client as _login
from tests.console_support import csrf_of as _csrf
from tests.console_support import flash as _flash
from tests.job_worker_proc import MARKERS_ENV, SCENARIO, fast_runner, licensed

OPERATOR = "demo-operator"  # the principal behind the operator API key of `keyong init`
OTHER = "other-ops"


@pytest.fixture
def console(
    initialised: tuple[Instance, dict[str, str]], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[Instance, dict[str, str]]:
    instance, tokens = initialised
    monkeypatch.setenv(MARKERS_ENV, str(tmp_path))  # where the fast stand-in runner leaves its markers
    licensed(instance.registry, instance.home, operator=OPERATOR)
    licensed(instance.registry, instance.home, operator=OTHER, datasets=("roads",))
    return instance, tokens


def _submit(client: TestClient, **fields: Any) -> Any:
    data: dict[str, Any] = {"kind": "python", "datasets": ["traffic"], "scenario": SCENARIO, "code": "print(1)"}
    data.update(fields)
    data.setdefault("csrf", _csrf(client, "/console/operator/jobs"))
    return client.post("/console/operator/jobs", data=data, follow_redirects=False)


def test_only_the_operator_opens_operator_pages(console: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = console
    operator = _login(instance, tokens["operator"])
    for path in ("/console/operator", "/console/operator/jobs", "/console/operator/products"):
        assert operator.get(path).status_code == 200, path
    for role in ("custodian", "agency", "regulator"):
        other = _login(instance, tokens[role])
        for path in ("/console/operator", "/console/operator/jobs", "/console/operator/jobs/1"):
            assert other.get(path).status_code == 403, (role, path)
    anonymous = TestClient(create_app(instance=instance))
    response = anonymous.get("/console/operator/jobs", follow_redirects=False)
    assert response.status_code == 303 and "/console/login" in response.headers["location"]


def test_a_post_without_its_csrf_token_is_refused_and_changes_nothing(
    console: tuple[Instance, dict[str, str]],
) -> None:
    instance, tokens = console
    operator = _login(instance, tokens["operator"])
    for csrf in ("", "0" * 64):
        response = _submit(operator, csrf=csrf)
        assert response.status_code == 403 and "CSRF" in response.text
    assert instance.jobs.list(viewer=Actor(OPERATOR, "operator")) == []
    job = instance.jobs.submit(OPERATOR, ["traffic"], "python", "print(2)", SCENARIO)
    instance.worker(runner=fast_runner, worker_id="console-test").run_pending()
    refused = operator.post(f"/console/operator/jobs/{job}/release", data={"product": "无令牌产品"})
    assert refused.status_code == 403
    assert instance.releases.list(viewer=Actor(OPERATOR, "operator")) == []


def test_the_job_page_shows_verdict_findings_and_outputs_without_paths(
    console: tuple[Instance, dict[str, str]],
) -> None:
    instance, tokens = console
    operator = _login(instance, tokens["operator"])
    submitted = _submit(operator)
    assert submitted.status_code == 303 and "queued" in _flash(submitted)
    job = int(re.search(r"job (\d+) queued", _flash(submitted)).group(1))  # type: ignore[union-attr]
    listed = operator.get("/console/operator/jobs").text
    assert f'data-job="{job}"' in listed and "queued" in listed
    instance.worker(runner=fast_runner, worker_id="console-test").run_pending()

    page = operator.get(f"/console/operator/jobs/{job}")
    assert page.status_code == 200
    view = instance.jobs.show(job)
    assert view.verdict == "review" and view.outputs  # the host view has paths ...
    assert view.outputs[0]["sha256"] in page.text and "result.txt" in page.text
    assert "sdc.free_text" in page.text  # the guard's soft finding on a text output
    assert (view.log_excerpt or "") in page.text
    # ... the operator's page never does: no home, no storage path, not even the word.
    assert str(instance.home) not in page.text and "path" not in page.text.lower()
    assert view.outputs[0]["path"] not in page.text

    # Release as a product, justifying the soft findings; a second request for the name is refused.
    csrf = _csrf(operator, f"/console/operator/jobs/{job}")
    soft = [str(i) for i, f in enumerate(view.findings) if f["severity"] != "hard"]
    form = {"csrf": csrf, "product": "交通出行统计", "files": ["result.txt"]}
    form.update({f"justify_{i}": "汇总结果 aggregate only" for i in soft})
    made = operator.post(f"/console/operator/jobs/{job}/release", data=form, follow_redirects=False)
    assert made.status_code == 303 and "requested" in _flash(made), _flash(made)
    releases = instance.releases.list(viewer=Actor(OPERATOR, "operator"))
    assert [(r.job, r.product, r.state) for r in releases] == [(job, "交通出行统计", "submitted")]
    assert set(releases[0].justifications) == set(soft)
    again = operator.post(f"/console/operator/jobs/{job}/release", data=form, follow_redirects=False)
    assert "already asks for the product name" in _flash(again)
    assert len(instance.releases.list(viewer=Actor(OPERATOR, "operator"))) == 1
    assert "交通出行统计" in operator.get(f"/console/operator/jobs/{job}").text
    assert "交通出行统计" in operator.get("/console/operator/products").text


def test_another_operators_job_is_not_found(console: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = console
    theirs = instance.jobs.submit(OTHER, ["roads"], "python", "print('secret plan')", SCENARIO)
    instance.worker(runner=fast_runner, worker_id="console-test").run_pending()
    operator = _login(instance, tokens["operator"])
    page = operator.get(f"/console/operator/jobs/{theirs}")
    assert page.status_code == 404 and "roads" not in page.text
    assert operator.get("/console/operator/jobs/99999").status_code == 404
    listed = operator.get("/console/operator/jobs").text
    assert f'data-job="{theirs}"' not in listed and "<td>roads</td>" not in listed
    csrf = _csrf(operator, "/console/operator/jobs")
    stolen = operator.post(
        f"/console/operator/jobs/{theirs}/release", data={"csrf": csrf, "product": "偷来的"}, follow_redirects=False
    )
    assert stolen.status_code == 303 and f"no job {theirs}" in _flash(stolen)
    mitigated = operator.post(
        f"/console/operator/jobs/{theirs}/mitigate", data={"csrf": csrf, "suppress": "on"}, follow_redirects=False
    )
    assert mitigated.status_code == 303 and "refused" in _flash(mitigated)
    assert instance.releases.list(viewer=Actor(OTHER, "operator")) == []
    fetched = operator.get("/console/operator/products/偷来的/artifacts/result.txt", follow_redirects=False)
    assert fetched.status_code == 303 and "no product named" in _flash(fetched)
    assert [j.id for j in instance.jobs.list()] == [theirs]


def test_a_bad_submission_shows_its_reason_and_records_nothing_else(
    console: tuple[Instance, dict[str, str]],
) -> None:
    instance, tokens = console
    operator = _login(instance, tokens["operator"])
    entries = len(instance.ledger.entries())
    for fields, reason in (
        ({"code": "   "}, "code is empty"),
        ({"kind": "shell"}, "unknown job kind"),
        ({"datasets": []}, "must name the datasets"),
        ({"scenario": ""}, "application scenario"),
    ):
        response = _submit(operator, **fields)
        assert response.status_code == 303 and reason in _flash(response), _flash(response)
        assert reason in html.unescape(operator.get(response.headers["location"]).text)
    assert instance.jobs.list() == [] and len(instance.ledger.entries()) == entries

    # Out of the licence's purpose: refused with the platform's reason, and only the refusal is recorded.
    refused = _submit(operator, scenario="金融风控")
    assert "refused" in _flash(refused) and "金融风控" in _flash(refused)
    jobs = instance.jobs.list()
    assert [(j.state, j.scenario) for j in jobs] == [("refused", "金融风控")]
    assert len(instance.ledger.entries(action="scope.refused")) == 1

    # A DP cost check charges nothing; a bad spec says why on the page.
    csrf = _csrf(operator, "/console/operator/jobs")
    data = {"csrf": csrf, "kind": "dp-query", "datasets": ["traffic"], "scenario": SCENARIO, "code": "{}"}
    cost = operator.post("/console/operator/jobs", data={**data, "action": "cost"})
    assert cost.status_code == 200 and "cost refused" in cost.text
    assert len(instance.jobs.list()) == 1


SECRET = "110101199001011234"  # a key: in an output's name and in a DuckDB error echoed into the log


def _end(instance: Instance, job: int, **end: Any) -> None:
    """End ``job`` as a worker would, with the export guard's verdict given by the test."""
    claimed = instance.jobs.queue.claim("console-test")
    assert claimed is not None and claimed.job.id == job
    assert instance.jobs.queue.finish(job, "console-test", claimed.attempt, **end) is not None


def test_a_blocked_job_page_shows_findings_but_no_outputs_log_or_exit_code(
    console: tuple[Instance, dict[str, str]],
) -> None:
    instance, tokens = console
    job = instance.jobs.submit(OPERATOR, ["traffic"], "python", "print(3)", SCENARIO)
    _end(
        instance,
        job,
        state="done",
        exit_code=0,
        reason=f"finished: {SECRET}",
        resources={"wall": 1.0, "cpu": 1.0, "max_rss": 1},
        outputs=[{"name": f"{SECRET}.csv", "bytes": 4321, "sha256": "ef" * 32, "path": "work/x.csv"}],
        verdict="block",
        findings=[{"rule": "manifest.name", "severity": "hard", "file": "*", "location": "name", "detail": "a key"}],
        log_excerpt=f"Binder Error: {SECRET}",
    )
    operator = _login(instance, tokens["operator"])
    page = operator.get(f"/console/operator/jobs/{job}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert SECRET not in text and "ef" * 32 not in text and "4321" not in text
    assert "manifest.name" in text and "blocked by the export guard" in text
    assert 'id="release-form"' not in text and 'id="mitigate-form"' not in text
    assert SECRET not in html.unescape(operator.get("/console/operator/jobs").text)
    assert instance.jobs.show(job).log_excerpt == f"Binder Error: {SECRET}"  # the host keeps the record


def test_a_failed_job_never_shows_or_counts_as_pass(console: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = console
    job = instance.jobs.submit(OPERATOR, ["traffic"], "python", "print(4)", SCENARIO)
    _end(instance, job, state="failed", exit_code=7, reason="exit status 7", verdict="pass", log_excerpt="judged")
    operator = _login(instance, tokens["operator"])
    page = operator.get(f"/console/operator/jobs/{job}").text
    assert 'class="badge pass"' not in page and 'id="job-verdict">pass' not in page
    assert "exit status 7" not in page and "judged" in page  # the stored (judged) log is shown
    listed = operator.get("/console/operator/jobs").text
    row = re.search(rf'<tr data-job="{job}"[^>]*>.*?</tr>', listed, re.S)
    assert row is not None and "badge pass" not in row.group(0)
    overview = operator.get("/console/operator").text
    assert re.search(r'id="count-pass">\s*0\s*<', overview), "a failed job counted as pass"
