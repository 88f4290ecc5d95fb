"""The operator's job form, catalog pages and job actions over a TestClient (issue 18).

The form offers only what the operator's live licences grant, but the server decides: a forged kind,
dataset or scenario is refused with the platform's reason, as over ``POST /jobs`` (use outside the licence
is a violation, 双鸭山 第三十一条; data used only as licensed, 第三十五条). A title and a purpose (用途) are
kept and ledgered with the job, bounded in length. One's own job may be cloned and withdrawn; another
operator's job is "not found". A failed, refused or cancelled job shows no verdict at all, and a catalog
page shows a synthetic sample drawn from public facts only — never a value of the data (原始数据不出域).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import Instance, create_app
from core import Actor
from sandbox import MAX_PURPOSE, MAX_TITLE
from tests.conftest import bearer_headers
from tests.console_support import console_client as _login
from tests.console_support import csrf_of as _csrf
from tests.console_support import flash as _flash
from tests.job_worker_proc import MARKERS_ENV, SCENARIO, licensed

OPERATOR = "demo-operator"  # the principal behind the operator API key of `keyong init`
OTHER = "other-ops"
ME = Actor(OPERATOR, "operator")


@pytest.fixture
def console(
    initialised: tuple[Instance, dict[str, str]], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[Instance, dict[str, str]]:
    instance, tokens = initialised
    monkeypatch.setenv(MARKERS_ENV, str(tmp_path))
    licensed(instance.registry, instance.home, operator=OPERATOR)
    licensed(instance.registry, instance.home, operator=OTHER, datasets=("roads",))
    return instance, tokens


def _submit(client: TestClient, **fields: Any) -> Any:
    data: dict[str, Any] = {"kind": "python", "datasets": ["traffic"], "scenario": SCENARIO, "code": "print(1)"}
    data.update(fields)
    data.setdefault("csrf", _csrf(client, "/console/operator/jobs/new"))
    return client.post("/console/operator/jobs", data=data, follow_redirects=False)


def _queued_id(response: Any) -> int:
    found = re.search(r"job (\d+) queued", _flash(response))
    assert found, _flash(response)
    return int(found.group(1))


def _end(instance: Instance, job: int, **end: Any) -> None:
    """End ``job`` as a worker would, with the state and verdict given by the test."""
    claimed = instance.jobs.queue.claim("console-test")
    assert claimed is not None and claimed.job.id == job
    assert instance.jobs.queue.finish(job, "console-test", claimed.attempt, **end) is not None


def test_the_form_offers_only_granted_datasets_and_the_licences_scenarios(
    console: tuple[Instance, dict[str, str]],
) -> None:
    instance, tokens = console
    operator = _login(instance, tokens["operator"])
    page = operator.get("/console/operator/jobs/new")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert 'name="datasets" value="traffic"' in text and 'value="roads"' not in text
    assert re.search(r'<select id="scenario" name="scenario" required>\s*<option value="交通出行"', text)
    templates = json.loads(re.search(r"data-templates='(.*?)'>", text, re.S).group(1))  # type: ignore[union-attr]
    assert set(templates) == {"sql", "python", "dp-query", "dp-train"} and set(templates["sql"]) == {"traffic"}
    assert 'FROM "traffic"' in templates["sql"]["traffic"] and "/data/traffic.parquet" in templates["python"]["traffic"]
    assert json.loads(templates["dp-query"]["traffic"])["epsilon"] > 0
    assert "group_by" in text and "aggregate" in text  # the dp-query spec is documented on the page
    chosen = html.unescape(
        operator.get("/console/operator/jobs/new", params={"kind": "sql", "dataset": "traffic"}).text
    )
    assert 'FROM "traffic"' in chosen
    for params in ({"kind": "shell", "dataset": "traffic"}, {"kind": "sql", "dataset": "roads"}):
        refused = operator.get("/console/operator/jobs/new", params=params)
        assert refused.status_code == 400 and 'FROM "roads"' not in refused.text, params


def test_forged_kind_dataset_or_scenario_is_refused_by_the_server(console: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = console
    operator = _login(instance, tokens["operator"])
    entries = len(instance.ledger.entries())
    bad_kind = _submit(operator, kind="shell")
    assert bad_kind.status_code == 303 and "unknown job kind" in _flash(bad_kind)
    assert instance.jobs.list() == [] and len(instance.ledger.entries()) == entries  # a usage error records nothing
    stolen = _submit(operator, datasets=["roads"])  # another operator's dataset: a violation, recorded
    assert "refused" in _flash(stolen)
    forged = _submit(operator, scenario="金融风控")  # not the licence's scenario
    assert "refused" in _flash(forged) and "金融风控" in _flash(forged)
    assert sorted(j.state for j in instance.jobs.list()) == ["refused", "refused"]
    assert len(instance.ledger.entries(action="scope.refused")) == 2


def test_title_and_purpose_are_kept_shown_and_ledgered_and_bounded(console: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = console
    operator = _login(instance, tokens["operator"])
    entries = len(instance.ledger.entries())
    for fields, reason in (
        ({"title": "长" * (MAX_TITLE + 1)}, "title exceeds"),
        ({"title": "两行\n标题"}, "title is one line"),
        ({"purpose": "用" * (MAX_PURPOSE + 1)}, "purpose exceeds"),
    ):
        response = _submit(operator, **fields)
        assert response.status_code == 303 and reason in _flash(response), _flash(response)
    assert instance.jobs.list() == [] and len(instance.ledger.entries()) == entries

    made = _submit(operator, title="  区县出行统计 ", purpose="评估各区县出行量")
    job = _queued_id(made)
    assert made.headers["location"].startswith(f"/console/operator/jobs/{job}?")
    view = instance.jobs.show(job)
    assert (view.title, view.purpose) == ("区县出行统计", "评估各区县出行量")
    queued = instance.ledger.entries(action="job.queued")[-1]
    assert queued.payload["title"] == "区县出行统计" and queued.payload["purpose"] == "评估各区县出行量"
    page = html.unescape(operator.get(f"/console/operator/jobs/{job}").text)
    assert '<span id="job-title">区县出行统计</span>' in page and "评估各区县出行量" in page
    assert "区县出行统计" in operator.get("/console/operator/jobs").text

    # Over the API: the same optional keys, the same bounds (422 before anything runs).
    http = TestClient(create_app(instance=instance))
    headers = bearer_headers(http, tokens)["operator"]
    body = {"datasets": ["traffic"], "kind": "python", "code": "print(1)", "scenario": SCENARIO}
    assert http.post("/jobs", json={**body, "title": "x" * (MAX_TITLE + 1)}, headers=headers).status_code == 422
    made_api = http.post("/jobs", json={**body, "title": "API 作业", "purpose": "测试"}, headers=headers)
    assert made_api.status_code == 201
    shown = http.get(f"/jobs/{made_api.json()['job']}", headers=headers).json()
    assert (shown["title"], shown["purpose"]) == ("API 作业", "测试")
    untitled = http.post("/jobs", json=body, headers=headers).json()["job"]
    assert http.get(f"/jobs/{untitled}", headers=headers).json()["title"] == ""


def test_clone_opens_the_form_with_ones_own_job_and_never_anothers(
    console: tuple[Instance, dict[str, str]],
) -> None:
    instance, tokens = console
    mine = instance.jobs.submit(OPERATOR, ["traffic"], "python", "print('mine')", SCENARIO, title="我的作业")
    theirs = instance.jobs.submit(OTHER, ["roads"], "python", "print('secret plan')", SCENARIO, title="他们的")
    operator = _login(instance, tokens["operator"])
    page = html.unescape(operator.get("/console/operator/jobs/new", params={"clone": mine}).text)
    assert "print('mine')" in page and "我的作业（副本 copy）" in page and 'id="clone-note"' in page
    assert re.search(r'<option value="python" selected>', page)
    other = operator.get("/console/operator/jobs/new", params={"clone": theirs})
    assert other.status_code == 404 and "secret plan" not in other.text and "他们的" not in other.text
    assert operator.get("/console/operator/jobs/new", params={"clone": "x"}).status_code == 422
    job_page = html.unescape(operator.get(f"/console/operator/jobs/{mine}").text)
    assert "print('mine')" in job_page and f"/jobs/new?clone={mine}" in job_page


def test_withdraw_cancels_ones_own_queued_job_and_is_ledgered(console: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = console
    job = instance.jobs.submit(OPERATOR, ["traffic"], "python", "print(1)", SCENARIO)
    theirs = instance.jobs.submit(OTHER, ["roads"], "python", "print(2)", SCENARIO)
    operator = _login(instance, tokens["operator"])
    page = operator.get(f"/console/operator/jobs/{job}").text
    assert 'id="withdraw-form"' in page and 'data-refresh="' in page  # a queued job's page refreshes itself
    assert operator.post(f"/console/operator/jobs/{job}/cancel", data={"csrf": ""}).status_code == 403
    csrf = _csrf(operator, f"/console/operator/jobs/{job}")
    done = operator.post(f"/console/operator/jobs/{job}/cancel", data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303 and f"job {job} withdrawn" in _flash(done)
    assert instance.jobs.show(job).state == "cancelled"
    assert [e.subject for e in instance.ledger.entries(action="job.cancelled")] == [f"job:{job}"]
    again = operator.post(f"/console/operator/jobs/{job}/cancel", data={"csrf": csrf}, follow_redirects=False)
    assert "not withdrawn" in _flash(again) and "already ended" in _flash(again)
    stolen = operator.post(f"/console/operator/jobs/{theirs}/cancel", data={"csrf": csrf}, follow_redirects=False)
    assert f"no job {theirs}" in _flash(stolen) and instance.jobs.show(theirs).state == "queued"
    after = operator.get(f"/console/operator/jobs/{job}").text
    assert 'id="withdraw-form"' not in after and "data-refresh" not in after
    assert operator.post("/console/operator/jobs/abc/cancel", data={"csrf": csrf}).status_code == 422


@pytest.mark.parametrize("state", ["failed", "cancelled"])
def test_a_job_that_did_not_finish_shows_no_verdict_at_all(
    console: tuple[Instance, dict[str, str]], state: str
) -> None:
    instance, tokens = console
    job = instance.jobs.submit(OPERATOR, ["traffic"], "python", "print(4)", SCENARIO)
    _end(
        instance,
        job,
        state=state,
        exit_code=1,
        reason="stopped",
        verdict="review",
        outputs=[{"name": "half.csv", "bytes": 9, "sha256": "ab" * 32, "path": "work/half.csv"}],
        findings=[{"rule": "sdc.free_text", "severity": "soft", "file": "half.csv", "location": "", "detail": "x"}],
        log_excerpt="judged",
    )
    operator = _login(instance, tokens["operator"])
    page = operator.get(f"/console/operator/jobs/{job}").text
    assert 'id="job-verdict"' not in page and "data-verdict" not in page and "badge pass" not in page
    # The findings (rules and places) stay; the outputs are not listed and nothing can be released.
    assert 'id="no-verdict"' in page and 'data-output="half.csv"' not in page and 'id="release-form"' not in page
    listed = operator.get("/console/operator/jobs").text
    row = re.search(rf'<tr data-job="{job}"[^>]*>.*?</tr>', listed, re.S)
    assert row is not None and "data-verdict" not in row.group(0)


def test_catalog_pages_show_granted_datasets_with_a_synthetic_sample(console: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = console
    operator = _login(instance, tokens["operator"])
    listing = html.unescape(operator.get("/console/operator/catalog").text)
    assert 'href="/console/operator/catalog/traffic"' in listing
    assert 'href="/console/operator/catalog/roads"' not in listing  # listed (public facts), but no page of its own
    page = operator.get("/console/operator/catalog/traffic")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert 'data-column="trips"' in text and "合成数据" in text
    sample = re.search(r'<table id="synthetic-sample">.*?</table>', text, re.S).group(0)  # type: ignore[union-attr]
    assert sample.count("<tr>") == 11  # a header and ten rows
    assert "〈trips1〉" in sample or re.search(r"<td>\d+</td>", sample)
    assert text == html.unescape(operator.get("/console/operator/catalog/traffic").text)  # seeded: the same sample
    assert 'href="/console/operator/jobs/new?kind=dp-query&amp;dataset=traffic"' in page.text
    for name in ("roads", "nope", "x" * 300):
        missing = operator.get(f"/console/operator/catalog/{name}")
        assert missing.status_code == 404 and "合成" not in missing.text, name
    for role in ("custodian", "agency", "regulator"):
        other = _login(instance, tokens[role])
        assert other.get("/console/operator/catalog/traffic").status_code == 403, role
        assert other.get("/console/operator/jobs/new").status_code == 403, role


def test_the_new_pages_hold_no_inline_code_the_csp_would_block(console: tuple[Instance, dict[str, str]]) -> None:
    """The form's templates ride in a data attribute, the refresh in console.js: nothing inline (issue 17)."""
    from tests.test_console_hardening import _assert_csp_clean

    instance, tokens = console
    job = instance.jobs.submit(OPERATOR, ["traffic"], "python", "print('<script>x</script>')", SCENARIO)
    operator = _login(instance, tokens["operator"])
    for path in (
        "/console/operator/jobs/new",
        f"/console/operator/jobs/new?clone={job}",
        "/console/operator/jobs/new?kind=dp-train&dataset=traffic",
        "/console/operator/catalog/traffic",
        f"/console/operator/jobs/{job}",
    ):
        response = operator.get(path)
        assert response.status_code == 200, path
        assert "default-src" in response.headers["content-security-policy"], path
        _assert_csp_clean(response.text, path)


def test_the_cli_takes_the_same_title_and_purpose(console: tuple[Instance, dict[str, str]], tmp_path: Any) -> None:
    """``keyong job submit --title --purpose``: the host's tool has what the API and the console have."""
    from typer.testing import CliRunner

    from app.cli import cli

    instance, _ = console
    runner = CliRunner()
    home = ["--home", str(instance.home), "--json"]
    script = tmp_path / "job.sql"
    script.write_text("SELECT count(*) AS n FROM traffic", encoding="utf-8")
    args = ["job", "submit", "--operator", OPERATOR, "--dataset", "traffic", "--kind", "sql", "--file", str(script)]
    env = {"KEYONG_DATABASE_URL": instance.settings.database_url or ""}
    stated = ["--scenario", SCENARIO, "--title", "命令行作业", "--purpose", "核对"]
    made = runner.invoke(cli, [*args, *stated, *home], env=env)
    assert made.exit_code == 0, made.output
    shown = json.loads(runner.invoke(cli, ["job", "show", str(json.loads(made.stdout)["job"]), *home], env=env).stdout)
    assert (shown["title"], shown["purpose"]) == ("命令行作业", "核对")
    long = runner.invoke(cli, [*args, "--scenario", SCENARIO, "--title", "长" * (MAX_TITLE + 1), *home], env=env)
    assert long.exit_code != 0 and "title exceeds" in long.stderr


def _passed(instance: Instance, operator: str, dataset: str, content: bytes, *, verdict: str = "pass") -> int:
    """A finished job of ``operator`` with one output ``result.csv`` (in clear under the home) and ``verdict``."""
    job = instance.jobs.submit(operator, [dataset], "python", f"print({len(content)})", SCENARIO)
    relative = f"work/test-outputs/{job}/result.csv"
    (instance.home / relative).parent.mkdir(parents=True, exist_ok=True)
    (instance.home / relative).write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    output = {"name": "result.csv", "bytes": len(content), "sha256": digest, "path": relative}
    _end(instance, job, state="done", exit_code=0, reason="finished", outputs=[output], verdict=verdict)
    return job


def test_a_passed_jobs_outputs_are_viewed_and_downloaded_and_every_read_is_ledgered(
    console: tuple[Instance, dict[str, str]],
) -> None:
    instance, tokens = console
    table = "区县,n\n尖山区,120\n岭东区,95\n".encode()
    job = _passed(instance, OPERATOR, "traffic", table)
    operator = _login(instance, tokens["operator"])
    page = operator.get(f"/console/operator/jobs/{job}").text
    assert f"/operator/jobs/{job}/outputs/result.csv/view" in page
    viewed = operator.get(f"/console/operator/jobs/{job}/outputs/result.csv/view")
    assert viewed.status_code == 200
    assert re.search(r"<td>尖山区</td><td>120</td>", viewed.text) and "<th>区县</th>" in viewed.text
    got = operator.get(f"/console/operator/jobs/{job}/outputs/result.csv")
    assert got.status_code == 200 and got.content == table and "attachment" in got.headers["content-disposition"]
    reads = instance.ledger.entries(action="job.output_read")
    assert [(e.subject, e.payload["name"], e.actor) for e in reads] == [(f"job:{job}", "result.csv", OPERATOR)] * 2
    missing = operator.get(f"/console/operator/jobs/{job}/outputs/nope.csv", follow_redirects=False)
    assert missing.status_code == 303 and "no output named" in _flash(missing)

    # Over the API: the same call, the same rules.
    http = TestClient(create_app(instance=instance))
    headers = bearer_headers(http, tokens)
    fetched = http.get(f"/jobs/{job}/outputs/result.csv", headers=headers["operator"])
    assert fetched.status_code == 200 and fetched.content == table
    assert http.get(f"/jobs/{job}/outputs/result.csv", headers=headers["agency"]).status_code == 403

    # The platform frozen (an incident, 双鸭山 第六十一条): nothing leaves, and nothing more is recorded.
    instance.registry.freeze.freeze(reason="演练 drill", by=Actor("demo-agency", "agency"))
    frozen = operator.get(f"/console/operator/jobs/{job}/outputs/result.csv", follow_redirects=False)
    assert frozen.status_code == 303 and "not readable" in _flash(frozen)
    assert len(instance.ledger.entries(action="job.output_read")) == 3


def test_outputs_of_a_reviewed_or_anothers_job_are_not_readable(console: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = console
    reviewed = _passed(instance, OPERATOR, "traffic", b"n\n3\n", verdict="review")
    theirs = _passed(instance, OTHER, "roads", b"n\n4\n")
    operator = _login(instance, tokens["operator"])
    page = operator.get(f"/console/operator/jobs/{reviewed}").text
    assert "/outputs/result.csv" not in page and "release review" in page  # listed by hash, and says why
    for job, reason in ((reviewed, "with the verdict review"), (theirs, f"no job {theirs}")):
        refused = operator.get(f"/console/operator/jobs/{job}/outputs/result.csv/view", follow_redirects=False)
        assert refused.status_code == 303 and reason in _flash(refused), _flash(refused)
    http = TestClient(create_app(instance=instance))
    headers = bearer_headers(http, tokens)["operator"]
    assert http.get(f"/jobs/{reviewed}/outputs/result.csv", headers=headers).status_code == 409
    assert http.get(f"/jobs/{theirs}/outputs/result.csv", headers=headers).status_code in (404, 409)
    assert instance.ledger.entries(action="job.output_read") == []
