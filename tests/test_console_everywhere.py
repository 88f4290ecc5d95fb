"""What every console page shares (issue 18, "Everywhere"), each tested by what would break it.

- Sessions renew while in use: a request in the second half of the token's life gets a new cookie (a new
  jti, the same session id, ledgered as ``auth.token_renewed``); a fresh token is not renewed; renewal stops
  at the absolute maximum after login (the renewed token never outlives it); logging out with the renewed
  cookie also ends the token it was renewed from; a suspended principal is not renewed but sent to log in.
  A form rendered before the renewal still posts (its CSRF token is the request cookie's).
- Back to the page after login: the login redirect carries ``next``; the login form sends the person
  there; a forged ``next`` (another site, a protocol-relative URL, a backslash, dot segments, encoded
  forms) is dropped and the person lands on the role's home.
- Unknown console paths answer an HTML 404 page (with the role's navigation when logged in); unknown API
  paths keep their JSON 404.
"""

from __future__ import annotations

import ast
import enum
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
import pytest
from fastapi.testclient import TestClient

from app import Instance, create_app
from app.console.downloads import HEADER
from app.console.flash import LOGIN_REASONS, MESSAGES, Flashes
from app.console.glossary import ACTIONS, LABELS, beijing, chinese, label
from app.console.next_page import safe_next
from app.console.session import COOKIE, MAX_SESSION, Session, Sessions
from ledger.entry import ACTION_RE
from operators import Principal, Role
from operators.recovery import HoldKind
from operators.tokens import Claims
from registry.people import EvidenceKind, RecordKind
from registry.request_models import FINAL_STATES, OPEN_STATES
from registry.security_events import SecurityEventKind
from registry.usability import Usability
from registry.vocabulary import (
    FindingKind,
    LicenceState,
    ObjectionOutcome,
    ObjectionState,
    ProductState,
    Qualification,
    RequestState,
    ResourceState,
    ViolationKind,
)
from sandbox.kinds import JobKind
from sandbox.models import JobState
from sandbox.release_models import Decision, ReleaseState, SignOff
from tests.conftest import bearer
from tests.console_support import ORIGIN, console_client
from tests.test_release import ACME, R1, R2, done_job
from tests.test_release import instance as instance  # the licensed instance fixture (for the download)
from tests.totp_support import create_enrolled, login_form


def _claims(token: str) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _aged_cookie(instance: Instance, client: TestClient, *, age: timedelta, started: timedelta | None = None) -> str:
    """Replace the client's session cookie with a token of the same login issued ``age`` ago (and, with
    ``started``, continuing a session that began ``started`` ago)."""
    current = _claims(str(client.cookies.get(COOKIE)))
    now = datetime.now(UTC)
    renewing = None
    if started is not None:
        renewing = Claims(
            sub=str(current["sub"]), role=Role(str(current["role"])), jti="s" * 32,
            issued_at=now - started, expires_at=now, session_start=(now - started).replace(microsecond=0),
        )  # fmt: skip
    issued = instance.identity.tokens.issue(
        str(current["sub"]), Role(str(current["role"])), key_id=str(current["kid"]),
        epoch=int(str(current.get("cep", 0))), now=now - age, renewing=renewing,
    )  # fmt: skip
    client.cookies.clear()
    client.cookies.set(COOKIE, issued.token, path="/console")
    return issued.token


def _renewed(response: object) -> str | None:
    for header in response.headers.get_list("set-cookie"):  # type: ignore[attr-defined]
        if header.startswith(COOKIE + "=") and "Max-Age=0" not in header:
            return str(header.split(";", 1)[0].split("=", 1)[1].strip('"'))
    return None


def console_flashes(instance: Instance) -> Flashes:
    return Flashes(instance.keys.jwt_key)


def _renewals(instance: Instance) -> int:
    return len(instance.ledger.entries(action="auth.token_renewed", limit=1_000_000))


# --- sessions renew while in use --------------------------------------------------------------------


def test_a_fresh_session_is_not_renewed(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = initialised
    client = console_client(instance, tokens["operator"])
    response = client.get("/console/operator", follow_redirects=False)
    assert response.status_code == 200
    assert _renewed(response) is None
    assert _renewals(instance) == 0


def test_a_session_in_its_second_half_is_renewed_and_ledgered(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = initialised
    client = console_client(instance, tokens["operator"])
    ttl = instance.identity.tokens.ttl
    old = _aged_cookie(instance, client, age=ttl * 0.6)
    response = client.get("/console/operator", follow_redirects=False)
    assert response.status_code == 200
    new = _renewed(response)
    assert new and new != old
    old_claims, new_claims = _claims(old), _claims(new)
    assert new_claims["sid"] == old_claims["jti"] and new_claims["jti"] != old_claims["jti"]
    assert new_claims["sst"] == old_claims["iat"]
    assert int(str(new_claims["exp"])) > int(str(old_claims["exp"]))
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE))
    assert "HttpOnly" in cookie and "Path=/console" in cookie and "SameSite=strict" in cookie
    entries = instance.ledger.entries(action="auth.token_renewed", limit=10)
    assert len(entries) == 1 and entries[0].payload["previous_jti"] == old_claims["jti"]
    # the page rendered now carries the new session's CSRF token; the renewed cookie works
    client.cookies.clear()
    client.cookies.set(COOKIE, new, path="/console")
    assert client.get("/console/operator/jobs", follow_redirects=False).status_code == 200


def test_logout_after_renewal_ends_the_older_token_too(initialised: tuple[Instance, dict[str, str]]) -> None:
    """Revocation still works: the whole chain of a login ends with its logout (issue 18)."""
    instance, tokens = initialised
    client = console_client(instance, tokens["operator"])
    old = _aged_cookie(instance, client, age=instance.identity.tokens.ttl * 0.6)
    new = _renewed(client.get("/console/operator", follow_redirects=False))
    assert new
    client.cookies.clear()
    client.cookies.set(COOKIE, new, path="/console")
    assert client.post("/console/logout", follow_redirects=False).status_code == 303
    for token in (new, old):
        stale = TestClient(create_app(instance=instance), headers={"origin": ORIGIN})
        stale.cookies.set(COOKIE, token, path="/console")
        response = stale.get("/console/operator", follow_redirects=False)
        assert response.status_code == 303 and "reason=session_ended" in response.headers["location"]


def test_renewal_stops_at_the_absolute_maximum(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = initialised
    client = console_client(instance, tokens["operator"])
    ttl = instance.identity.tokens.ttl
    _aged_cookie(instance, client, age=ttl * 0.6, started=MAX_SESSION + timedelta(minutes=1))
    response = client.get("/console/operator", follow_redirects=False)
    assert response.status_code == 200  # the token itself is still valid: it simply is not renewed
    assert _renewed(response) is None
    # near the maximum, the renewed token ends at login + maximum, not a full ttl later
    started = MAX_SESSION - timedelta(seconds=120)
    _aged_cookie(instance, client, age=ttl * 0.6, started=started)
    new = _renewed(client.get("/console/operator", follow_redirects=False))
    assert new
    claims = _claims(new)
    assert int(str(claims["exp"])) == int(str(claims["sst"])) + int(MAX_SESSION.total_seconds())


def test_a_page_showing_a_signed_message_is_not_where_the_session_renews(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    """A flash message is signed for the request's own token (``app.console.flash``): renewing on that page
    would hide it, so the renewal waits for the next request."""
    instance, tokens = initialised
    client = console_client(instance, tokens["operator"])
    token = _aged_cookie(instance, client, age=instance.identity.tokens.ttl * 0.6)
    query = console_flashes(instance).query(token, "job_queued", job=7)
    page = client.get(f"/console/operator?{query}", follow_redirects=False)
    assert page.status_code == 200 and "作业 7 已提交" in page.text
    assert _renewed(page) is None
    assert _renewed(client.get("/console/operator", follow_redirects=False))


def test_a_suspended_principal_is_not_renewed(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = initialised
    client = console_client(instance, tokens["operator"])
    _aged_cookie(instance, client, age=instance.identity.tokens.ttl * 0.6)
    name = str(_claims(str(client.cookies.get(COOKIE)))["sub"])
    instance.identity.set_active(name, False, reason="test")
    response = client.get("/console/operator", follow_redirects=False)
    assert response.status_code == 303 and "/console/login" in response.headers["location"]
    assert _renewed(response) is None
    assert _renewals(instance) == 0


def test_a_form_rendered_before_the_renewal_still_posts(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, _ = initialised
    sessions = Sessions(instance.identity, b"k" * 32)
    old, new = sessions.csrf_for("old"), sessions.csrf_for("new")
    renewed = Session(Principal("x", Role.OPERATOR), "new", new, previous_csrf=old)
    sessions.check_csrf(renewed, {"csrf": old})
    sessions.check_csrf(renewed, {"csrf": new})
    with pytest.raises(Exception, match="CSRF"):
        sessions.check_csrf(renewed, {"csrf": sessions.csrf_for("other")})
    with pytest.raises(Exception, match="CSRF"):
        sessions.check_csrf(Session(Principal("x", Role.OPERATOR), "new", new), {"csrf": old})


# --- back to the page after login -------------------------------------------------------------------


def test_a_deep_link_returns_to_its_page_after_login(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = initialised
    client = TestClient(create_app(instance=instance), headers={"origin": ORIGIN})
    response = client.get("/console/operator/jobs?state=done", follow_redirects=False)
    assert response.status_code == 303
    location = response.headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert query["next"] == ["/console/operator/jobs?state=done"]
    form = client.get(location)
    assert 'name="next" value="/console/operator/jobs?state=done"' in form.text
    login = login_form(tokens["operator"], client) | {"next": query["next"][0]}
    response = client.post("/console/login", data=login, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/console/operator/jobs?state=done"


@pytest.mark.parametrize(
    "forged",
    [
        "//evil.com",
        "https://evil",
        "https://evil.com/console/operator",
        "/console/../x",
        "/console/%2e%2e/x",
        "/console/%2E%2E/admin",
        "/console/..%2fx",
        "/console/%252e%252e/x",
        "/console\\@evil.com",
        "/console/\\\\evil.com",
        "//console/x",
        "/\\evil.com",
        "/consolex",
        "/console.evil.com",
        "javascript:alert(1)",
        "/console/operator\r\nLocation: https://evil",
        "/console/operator#x",
        "/public",
        "/console/login",
        "%2Fconsole%2Foperator",
        " /console/operator",
        "/console/" + "a" * 2000,
    ],
)
def test_a_forged_next_is_dropped(initialised: tuple[Instance, dict[str, str]], forged: str) -> None:
    instance, tokens = initialised
    assert safe_next(forged) is None
    client = TestClient(create_app(instance=instance), headers={"origin": ORIGIN})
    form = client.get("/console/login", params={"next": forged})
    assert form.status_code in (200, 422) and 'name="next"' not in form.text  # 422: the edge refuses a CR/LF
    login = login_form(tokens["operator"], client) | {"next": forged}
    response = client.post("/console/login", data=login, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/console"


def test_safe_next_keeps_console_pages() -> None:
    assert safe_next("/console") == "/console"
    assert safe_next("/console/agency/releases/3") == "/console/agency/releases/3"
    assert safe_next("/console/operator/jobs?state=done&page=2") == "/console/operator/jobs?state=done&page=2"


def test_a_post_with_an_ended_session_does_not_carry_next(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, _ = initialised
    client = TestClient(create_app(instance=instance), headers={"origin": ORIGIN})
    response = client.post("/console/operator/jobs", data={"csrf": "x"}, follow_redirects=False)
    assert response.status_code == 303
    assert "next=" not in response.headers["location"]


# --- the 404 page -----------------------------------------------------------------------------------


def test_an_unknown_console_page_is_an_html_404(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = initialised
    anonymous = TestClient(create_app(instance=instance), headers={"origin": ORIGIN})
    response = anonymous.get("/console/no/such/page")
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
    assert "页面不存在" in response.text and "/console/login" in response.text
    client = console_client(instance, tokens["agency"])
    response = client.get("/console/agency/nothing-here")
    assert response.status_code == 404 and 'id="not-found"' in response.text
    assert "授权 Licences" in response.text  # the role's navigation
    assert "Content-Security-Policy" in response.headers


def test_an_unknown_api_path_keeps_its_json_404(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, _ = initialised
    client = TestClient(create_app(instance=instance))
    for path in ("/no/such/path", "/jobs/x/y/z", "/consolex"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == {"detail": "Not Found"}


# --- one glossary: every state and every ledgered action has its Chinese label ----------------------

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("app", "core", "ledger", "operators", "registry", "sandbox", "security", "desensitize", "dp")
#: Actions the code builds from a pattern (an f-string), with every value the pattern takes. A new pattern
#: fails the test until it is listed here and labelled.
PATTERNS: dict[str, tuple[str, ...]] = {
    "dataset.{}_delegated": ("egress", "access"),  # registry.egress (kind)
    "dataset.{}_withdrawn": ("egress", "access"),
    "person.{}_recorded": tuple(k.value for k in RecordKind),  # registry.people
    "request.{}": ("submitted", "in_review", "granted", "refused", "answered", "withdrawn", "recounted", "overdue"),
}


def _strings(node: ast.AST) -> Iterator[str]:
    """The string values an expression may take: a constant, both branches of ``a if c else b``, a dict's values
    (``{STATE: "x.y"}.get(...)``), or an f-string as a pattern with ``{}`` for each placeholder."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.IfExp):
        yield from _strings(node.body)
        yield from _strings(node.orelse)
    elif isinstance(node, ast.Dict):
        for value in node.values:
            yield from _strings(value)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        yield from _strings(node.func.value)
        for arg in node.args[1:]:
            yield from _strings(arg)
    elif isinstance(node, ast.JoinedStr):
        yield "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)


def _action_candidates(node: ast.AST) -> list[ast.AST]:
    """Where the sources name a ledger action: ``change.log(ACTION, …)``, ``_change(by, ACTION, …)``, a product's
    ``_transition(change, row, state, ACTION)``, an ``action=``/``event=`` keyword, a name holding ``action``."""
    found: list[ast.AST] = []
    if isinstance(node, ast.Call):
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        position = {"log": 0, "_change": 1, "_transition": 3}.get(name)
        if position is not None and len(node.args) > position:
            found.append(node.args[position])
        found += [k.value for k in node.keywords if k.arg in ("action", "event")]
    if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if any(isinstance(t, ast.Name) and "action" in t.id.lower() for t in targets):
            found.append(node.value)
    return found


def ledgered_actions() -> dict[str, str]:
    """Every action (or action pattern) the sources write, with the file naming it first."""
    actions: dict[str, str] = {}
    for package in SOURCES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                for candidate in _action_candidates(node):
                    for text in _strings(candidate):
                        if ACTION_RE.match(text.replace("{}", "x")):
                            actions.setdefault(text, str(path.relative_to(ROOT)))
    return actions


def test_every_ledgered_action_has_a_chinese_label() -> None:
    """The regulator reads every ledger entry in Chinese (issue 18): an action without a label fails here."""
    actions = ledgered_actions()
    assert len(actions) > 80, "the scan found too few actions: the way the code ledgers changed"
    assert {"auth.token_renewed", "licence.granted", "release.voted", "product.fetched"} <= set(actions)
    missing = []
    for action, where in sorted(actions.items()):
        if "{}" in action:
            assert action in PATTERNS, f"{where} ledgers the pattern {action!r}: list its values in PATTERNS"
            names = [action.replace("{}", value) for value in PATTERNS[action]]
        else:
            names = [action]
        missing += [f"{name} ({where})" for name in names if name not in ACTIONS]
    assert not missing, f"ledger actions with no Chinese label in app/console/glossary.py ACTIONS: {missing}"
    for action, chinese_text in ACTIONS.items():
        assert ACTION_RE.match(action) and CJK.search(chinese_text), action
        assert label(action) == f"{chinese_text} {action}"


@pytest.mark.parametrize(
    "states",
    [JobState, ReleaseState, Decision, SignOff, LicenceState, ProductState, ObjectionState, ObjectionOutcome,
     RequestState, Qualification, FindingKind, ViolationKind, SecurityEventKind, ResourceState, Usability,
     RecordKind, EvidenceKind, HoldKind, JobKind],
    ids=lambda e: e.__name__,
)  # fmt: skip
def test_every_state_and_kind_has_a_chinese_label(states: type[enum.Enum]) -> None:
    missing = [m.value for m in states if m.value not in LABELS]
    assert not missing, f"{states.__name__} values with no label: {missing}"


def test_other_codes_shown_on_pages_have_labels() -> None:
    """Codes that are not enums: guard verdicts, request states, incident and alert states."""
    codes = {"pass", "review", "block", "open", "closed", "acknowledged", *OPEN_STATES, *FINAL_STATES}
    assert not codes - set(LABELS)
    assert label("approved") == "已批准 approved" and chinese("approved") == "已批准"
    assert label("no-such-code") == "no-such-code" and label(None) == ""


def test_times_are_beijing_time_and_labelled() -> None:
    assert beijing(datetime(2026, 12, 7, 3, 20, 5)) == "2026-12-07 11:20:05 北京时间"
    assert beijing("2026-12-06T20:00:00Z") == "2026-12-07 04:00:00 北京时间"
    assert beijing(datetime(2026, 12, 7, 3, 20, 5, tzinfo=UTC)) == "2026-12-07 11:20:05 北京时间"
    assert beijing(None) == "" and beijing("not a time") == "not a time"


def test_the_glossary_page_shows_every_term_code_and_action(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = initialised
    anonymous = TestClient(create_app(instance=instance), headers={"origin": ORIGIN})
    response = anonymous.get("/console/glossary", follow_redirects=False)
    assert response.status_code == 303 and "next=/console/glossary" in response.headers["location"]
    for role in ("regulator", "operator"):
        page = console_client(instance, tokens[role]).get("/console/glossary")
        assert page.status_code == 200 and 'id="glossary-link"' in page.text
        assert page.text.count("<tr data-action=") == len(ACTIONS)
        assert page.text.count("<tr data-code=") == len(LABELS) - len(ACTIONS)
        assert '<tr data-action="licence.granted"><td><code>licence.granted</code></td><td>授予授权</td>' in page.text
        assert "<td>出口审查</td><td>export guard</td>" in page.text


# --- 授权, never 许可; full-width punctuation in Chinese sentences -------------------------------------

TEMPLATES = ROOT / "app" / "templates"
CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff]")
#: A Chinese character (or full-width punctuation) followed by an ASCII comma, colon, semicolon or parenthesis:
#: in a Chinese sentence these are full-width (，：；（）). A bilingual label "中文 English" has a space between
#: the two languages, so "授权 Licence (active)" or "授权 · licence: x" passes; "授权,生效" or "暂停(应急)" fails.
HALF_WIDTH = re.compile("[\u3400-\u4dbf\u4e00-\u9fff（）。，：；、][,:;()]")
_HIDDEN = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|<script\b.*?</script>|<style\b.*?</style>|<[^>]*>", re.S)


def visible_text(html: str) -> str:
    """What a reader sees of a template: no tags, attributes, scripts or Jinja expressions (a tag between
    two words still joins them, as on the page)."""
    return _HIDDEN.sub("", html)


def _templates() -> list[tuple[str, str]]:
    return [
        (p.relative_to(TEMPLATES).as_posix(), p.read_text(encoding="utf-8")) for p in sorted(TEMPLATES.rglob("*.html"))
    ]


def test_the_punctuation_rule_itself() -> None:
    for bad in ("授权,生效", "暂停(应急)", "原因:无", "已记录;其他", "<b>登录</b>(无需登录)"):
        assert HALF_WIDTH.search(visible_text(bad)), bad
    for good in ("授权 Licence (active)", "授权 · licence: x", "已记录；其他（还需 2 票）", "状态 State: {{ x }}",
                 '<a title="a,b">授权</a> Licences', "{{ '%g' % x }}（上限）", "类型 Kind"):  # fmt: skip
        assert not HALF_WIDTH.search(visible_text(good)), good


def test_chinese_sentences_in_templates_use_full_width_punctuation() -> None:
    problems = []
    for name, html in _templates():
        hits = [m.group() for m in HALF_WIDTH.finditer(visible_text(html))]
        if hits:
            problems.append(f"{name}: {hits}")
    assert not problems, f"half-width punctuation after Chinese (use ，：；（）): {problems}"


def test_chinese_in_flash_messages_uses_full_width_punctuation() -> None:
    bad = {k: v for k, v in {**MESSAGES, **LOGIN_REASONS}.items() if HALF_WIDTH.search(v)}
    assert not bad


def test_no_template_says_xuke_for_a_licence() -> None:
    """授权 (授权运营, 双鸭山市公共数据管理暂行办法 第四十六条) is the licence; 许可 is never used for it."""
    found = {name for name, html in _templates() if "许可" in html}
    assert not found, f"许可 in {found}: say 授权"
    assert not [v for v in {**MESSAGES, **LOGIN_REASONS}.values() if "许可" in v]


# --- downloads carry the attribution, as the API's do -----------------------------------------------


def test_a_console_download_carries_the_apis_attribution(instance: Instance) -> None:
    """双鸭山市公共数据管理暂行办法 第四十一条: 数据来源 and 获取日期 travel with every delivered file, in the browser
    as over the API: the same ``X-Keyong-Attribution`` header, and the same stamped bytes."""
    release = instance.releases.request(done_job(instance, "pass", code="18"), product="attr-p", by=ACME).id
    instance.releases.vote(release, "approve", by=R1)
    instance.releases.vote(release, "approve", by=R2)
    key = create_enrolled(instance.identity, ACME.name, Role.OPERATOR)
    browser = console_client(instance, key)
    page = browser.get("/console/operator/products/attr-p/artifacts/result.txt", follow_redirects=False)
    assert page.status_code == 200, page.headers.get("location")
    api = TestClient(create_app(instance=instance))
    fetched = api.get("/products/attr-p/artifacts/result.txt", headers=bearer(api, key))
    assert fetched.status_code == 200
    assert page.headers[HEADER] == fetched.headers[HEADER]
    attribution = json.loads(unquote(page.headers[HEADER]))
    assert attribution["data_source"] and attribution["acquisition_date"]
    assert attribution["statement"].startswith("数据来源：") and "获取日期：" in attribution["statement"]
    assert page.content == fetched.content
    fetches = instance.ledger.entries(action="product.fetched", limit=10)
    assert len(fetches) == 2  # each delivery is ledgered, the console's too
    missing = browser.get("/console/operator/products/attr-p/artifacts/nope.txt", follow_redirects=False)
    assert missing.status_code == 303 and HEADER not in missing.headers


# --- the README for newcomers ----------------------------------------------------------------------


def test_the_readme_is_short_and_keeps_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for command in ("make run", "make test"):
        assert f"\n{command}    #" in readme or f"\n{command}   #" in readme
        assert f"\n{command.split()[1]}:" in makefile
    for term in ("授权", "出口审查", "发布审核", "脱敏副本", "原始数据库", "账本", "北京时间"):
        assert term in readme
    for problem in ("bubblewrap", "namespace", "address already in use", "chromium"):
        assert problem in readme
    for role in ("operator-jobs", "agency-review", "custodian-report", "regulator-trace", "agency-licences"):
        assert f"docs/screenshots/{role}.png" in readme


def test_every_document_the_readme_names_exists_and_the_cli_reference_moved_whole() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for doc in re.findall(r"`(docs/[a-z_]+\.md)`", readme):
        assert (ROOT / doc).is_file(), doc
    cli_doc = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for command in ("keyong init", "keyong demo", "keyong serve", "keyong ledger verify", "keyong backup create"):
        assert f"| `{command}" in cli_doc, command
    assert "KEYONG_HOME" in cli_doc
    assert "| 双鸭山 第四十一条 |" in (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert "What the export guard guarantees" in (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
