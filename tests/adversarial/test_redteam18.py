"""Red team 18: the web console of issue 18, attacked from its code and routes (without reading
tests/test_console_*.py or tests/browser/*).

Each test fails on the code as merged (branch redteam18, 587ef5e) and passes once its finding is fixed
(FINDINGS_redteam18.md says what each is, how severe, and what should happen). The console's rule is that
every bad request is a 4xx, never a 500.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import Instance, create_app
from tests.console_support import ORIGIN, csrf_of
from tests.totp_support import login_form

pytestmark = pytest.mark.attack


@pytest.fixture
def clients(initialised: tuple[Instance, dict[str, str]]) -> dict[str, Any]:
    instance, tokens = initialised
    return {"instance": instance, "tokens": tokens}


def _as(clients: dict[str, Any], role: str) -> TestClient:
    """A console client logged in as the demo principal of ``role``; a server error comes back as a 500
    response (as a browser sees it), not as the exception."""
    client = TestClient(
        create_app(instance=clients["instance"]), headers={"origin": ORIGIN}, raise_server_exceptions=False
    )
    response = client.post("/console/login", data=login_form(clients["tokens"][role], client), follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def _csrf(client: TestClient, path: str) -> str:
    return csrf_of(client, path)


def _session_csrf(instance: Instance, client: TestClient) -> str:
    """The CSRF token of the client's session, as the console binds it (``Sessions.csrf_for``), for pages
    that show no form until there is something to act on."""
    from app.console.session import COOKIE, Sessions

    return Sessions(instance.identity, instance.keys.jwt_key).csrf_for(str(client.cookies.get(COOKIE)))


# --- F1: a regulator's trace search with a non-ASCII digit is a 500 ------------------------------------------


def test_trace_search_with_a_unicode_digit_is_a_4xx_not_a_500(clients: dict[str, Any]) -> None:
    """``str.isdigit`` is true for '²' (and '١', '①'…) but ``int('²')`` raises: the job search of
    /console/regulator/trace must refuse it as it refuses 'abc' (a flash or a 4xx), never a 500."""
    regulator = _as(clients, "regulator")
    response = regulator.get("/console/regulator/trace", params={"job": "²"}, follow_redirects=False)
    assert response.status_code < 500, response.status_code


# --- F2: a range export until the last representable day is a 500 -------------------------------------------


@pytest.mark.parametrize("query", [{"until": "9999-12-31"}, {"since": "2026-01-01", "until": "9999-12-31"}])
def test_range_export_until_the_last_day_is_a_4xx_or_an_export_not_a_500(
    clients: dict[str, Any], query: dict[str, str]
) -> None:
    """``read_range`` adds a day to ``until``: 9999-12-31 + 1 day overflows (OverflowError, not the
    ValueError the route turns into a 400). Either refuse it with a 400 or export up to the end."""
    regulator = _as(clients, "regulator")
    response = regulator.get("/console/regulator/export/range", params=query)
    assert response.status_code in (200, 400), response.status_code


# --- F3: the job form's clone= with an integer beyond the database's range is a 500 -------------------------


def test_job_form_clone_of_a_huge_id_is_a_404_not_a_500(clients: dict[str, Any]) -> None:
    """``clone`` is an unbounded ``int`` query parameter (the path ids are bounded by ``PathId``): a value
    beyond 64 bits reaches SQLite and raises OverflowError. It is no job of the operator's: 404/400."""
    operator = _as(clients, "operator")
    response = operator.get("/console/operator/jobs/new", params={"clone": str(10**20)})
    assert 400 <= response.status_code < 500, response.status_code
    negative = operator.get("/console/operator/jobs/new", params={"clone": str(-(10**20))})
    assert 400 <= negative.status_code < 500, negative.status_code


# --- F4: a retention period typed with a non-ASCII digit is a 500 -------------------------------------------


@pytest.mark.parametrize("days", ["²", "①"])
def test_retention_days_with_a_unicode_digit_is_refused_not_a_500(clients: dict[str, Any], days: str) -> None:
    """``parse_days`` checks ``str.isdigit`` and then ``int()``: '²' and '①' pass the check and make
    ``int`` raise ValueError, which the route does not catch (it catches RegistryError): a 500."""
    custodian = _as(clients, "custodian")
    token = _csrf(custodian, "/console/custodian/upload")
    response = custodian.post(
        "/console/custodian/datasets/any/retention", data={"csrf": token, "days": days}, follow_redirects=False
    )
    assert response.status_code < 500, response.status_code


# --- a demo home with releases (module scope: the demo runs the sandbox once) --------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A finished demo (one agency reviewer per round, so one console reviewer decides a round) and its instance."""
    from rich.console import Console as RichConsole

    from app import Settings
    from app.demo.steps import run_demo

    settings = Settings(home=tmp_path_factory.mktemp("rt18demo") / "home", release_reviewers=1)
    report = run_demo(settings, residents=120, seed=18, console=RichConsole(quiet=True))
    instance = Instance.open(settings)
    try:
        yield {"instance": instance, "tokens": report.tokens, "report": report}
    finally:
        instance.close()


def _demo_client(demo: dict[str, Any], role: str) -> TestClient:
    client = TestClient(
        create_app(instance=demo["instance"]), headers={"origin": ORIGIN}, raise_server_exceptions=False
    )
    response = client.post("/console/login", data=login_form(demo["tokens"][role], client), follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


# --- F5: a vote form shown for one round is recorded as the vote of the next round --------------------------


def _hidden_vote_fields(html: str) -> dict[str, str]:
    """The hidden inputs of the page's vote form other than the CSRF token (what a browser posts with it)."""
    import re
    from html import unescape

    form = html[html.index('id="vote-form"') :]
    form = form[: form.index("</form>")]
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    return {unescape(k): unescape(v) for k, v in fields if k != "csrf"}


def test_a_vote_form_of_an_earlier_round_is_not_counted_for_a_resubmitted_round(demo: dict[str, Any]) -> None:
    """The review page's vote form carries no round and no output hashes: a reviewer's form filled while
    reading round 1 (a second tab, a slow decision), posted after the operator resubmitted other outputs
    under the same file names, is recorded as the reviewer's approval of round 2 — files the reviewer never
    saw. The vote must be bound to the round (and the files' SHA-256) the page showed, and refused when the
    release moved on (the reviewer reloads and reads the new round first)."""
    from core import Actor
    from sandbox import Decision

    instance = demo["instance"]
    operator = Actor("demo-operator", "operator")
    jobs = {j.id: j for j in instance.jobs.list(viewer=operator)}
    released = {r.job for r in instance.releases.list(viewer=operator)}
    fresh = next(j.id for j in sorted(jobs.values(), key=lambda j: -j.id)
                 if j.state == "done" and j.verdict == "pass" and j.id not in released)  # fmt: skip
    view = instance.releases.request(fresh, product="rt18-stale-vote", by=operator)
    names = [str(o["name"]) for o in view.outputs]
    # Another of the operator's releasable jobs with the same file names (other content: another run).
    other = next(
        j.id for j in jobs.values()
        if j.state == "done" and j.verdict == "pass" and j.id != fresh
        and sorted(str(o.get("name")) for o in instance.jobs.show(j.id, viewer=operator).outputs) == sorted(names)
    )  # fmt: skip

    reviewer = _demo_client(demo, "agency")
    page = reviewer.get(f"/console/agency/releases/{view.id}")
    assert page.status_code == 200
    token = csrf_of(reviewer, f"/console/agency/releases/{view.id}")
    # What the vote form carries besides the decisions, as a browser posts it (fix18: the round and each
    # file's SHA-256 the page showed; a hand-made form without them is refused outright).
    shown = _hidden_vote_fields(page.text)
    assert shown.get("round") == "1" and {k for k in shown if k.startswith("sha256:")} == {f"sha256:{n}" for n in names}
    stale_form = {
        "csrf": token, **shown, **{f"file:{n}": Decision.APPROVE.value for n in names}, "reason": "looks fine"
    }  # fmt: skip

    # The same reviewer, in another tab, returns round 1 with a comment; the operator resubmits.
    returned = reviewer.post(
        f"/console/agency/releases/{view.id}/vote",
        data={
            "csrf": token,
            **shown,
            **{f"file:{n}": Decision.CHANGES_REQUESTED.value for n in names},
            "reason": "merge the small cells",
            "comment": "请合并小单元格",
        },
        follow_redirects=False,
    )
    assert returned.status_code == 303
    assert instance.releases.get(view.id, viewer=operator).state == "returned", "round 1 was not returned"
    instance.releases.resubmit(view.id, job_id=other, by=operator, justifications={})
    round2 = instance.releases.get(view.id, viewer=Actor("demo-agency", "agency"))
    assert round2.round == 2
    assert [o["sha256"] for o in round2.outputs] != [o["sha256"] for o in view.outputs], "round 2 holds other bytes"

    # The form of round 1 is posted now: it must not become a vote on round 2.
    stale = reviewer.post(f"/console/agency/releases/{view.id}/vote", data=stale_form, follow_redirects=False)
    assert stale.status_code < 500
    after = instance.releases.get(view.id, viewer=Actor("demo-agency", "agency"))
    mine = [v for v in after.votes if v["reviewer"] == "demo-agency" and v["round"] == 2]
    assert not mine, f"a form shown for round 1 was recorded as round 2's vote: {mine}"


# --- F6: asking for an artifact a product does not have is ledgered as a delivery --------------------------


def test_a_download_of_a_missing_artifact_records_no_delivery(demo: dict[str, Any]) -> None:
    """``/console/operator/products/{name}/artifacts/{file}`` fetches (and ledgers, ``product.fetched``) the
    whole product before it looks for ``file``: a mistyped or invented file name delivers nothing, yet the
    usage record (第二十条, what the custodian's usage page and the regulator's trace count) says the product
    was fetched. Check the name against the product's artifacts first; ledger only what is delivered."""
    from core import Actor

    instance = demo["instance"]
    operator = Actor("demo-operator", "operator")
    product = instance.registry.products.list(viewer=operator)[0]
    client = _demo_client(demo, "operator")

    def fetched() -> int:
        return len(instance.ledger.entries(action="product.fetched", limit=10_000))

    before = fetched()
    response = client.get(
        f"/console/operator/products/{product.name}/artifacts/no-such-file.csv", follow_redirects=False
    )
    assert response.status_code in (303, 404)
    assert fetched() == before, "a download that delivered nothing was ledgered as product.fetched"


# --- F7: unbounded integer ids in the security pages' POST routes are a 500 ---------------------------------


@pytest.mark.parametrize(
    ("role", "path"),
    [
        ("regulator", "/console/regulator/security/alerts/{n}/acknowledge"),
        ("regulator", "/console/regulator/security/events/{n}/acknowledge"),
        ("regulator", "/console/regulator/incidents/{n}/close"),
        ("agency", "/console/agency/incidents/{n}/close"),
    ],
)
def test_security_ids_beyond_64_bits_are_a_4xx_not_a_500(clients: dict[str, Any], role: str, path: str) -> None:
    """``item_id: int`` and ``incident_id: int`` are path parameters without the bound every other console id
    has (``PathId``): an id beyond 64 bits reaches SQLite (OverflowError) and the request is a 500."""
    client = _as(clients, role)
    token = _session_csrf(clients["instance"], client)
    response = client.post(path.format(n=10**20), data={"csrf": token, "note": "x"}, follow_redirects=False)
    assert response.status_code < 500, response.status_code
