"""The console's browser-facing defences (issue 17), each tested by the attack it stops.

- Login CSRF and forced logout: a POST from another site's page (a foreign ``Origin``, ``Origin:
  null``, a foreign ``Referer``, or neither header) is refused with a 403 page and changes nothing;
  the console's own origin logs in and out. A form post with a valid CSRF token but a foreign origin
  is refused too, and every state-changing form (found by walking the app's routes, so a form added
  later is covered) refuses a missing, wrong or unreadable token with a 403 page, never a 500.
- Clickjacking, sniffing, leaking, caching: every console page of every role (its whole navigation),
  the login, error and redirect responses and the static assets carry a strict CSP (no inline script
  or style), ``frame-ancestors 'none'``/``X-Frame-Options: DENY``, ``nosniff`` and
  ``Referrer-Policy: same-origin``; console pages ``Cache-Control: no-store``. No page has an inline
  script, style attribute or event handler the CSP would silently break.
- Phishing through the official banner: ``?msg=`` (and the login form's ``?reason=``) with any text,
  markup or an unknown id shows nothing; a catalogue id shows its text; a message naming values shows
  only with the server's signature for this very session (a forged, tampered or another session's
  link shows nothing).
- Cookies: HttpOnly, SameSite=Strict, scoped to ``/console``; Secure over https or when configured.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from app import Instance, create_app
from app.console import build_console
from app.console.context import NAV
from app.console.flash import LOGIN_REASONS, MESSAGES, Flashes, fields_of, text_of
from app.console.security import API_HEADERS
from app.console.session import COOKIE
from tests.console_support import ORIGIN, csrf_of
from tests.console_support import console_client as _login
from tests.console_support import flash as _flash
from tests.test_registry_licences import add_dataset
from tests.totp_support import login_form

EVIL = "https://evil.example"
ROLES = ("operator", "agency", "regulator", "custodian")
WELL_KNOWN = {"name": "traffic"}  # path parameters that are not ids


def _anonymous(instance: Instance, **kwargs: Any) -> TestClient:
    return TestClient(create_app(instance=instance), **kwargs)


def _token_issued(instance: Instance) -> int:
    return len(instance.ledger.entries(action="auth.token_issued", limit=1_000_000))


def _bounds(instance: Instance) -> Any:
    item = instance.registry.catalog.get("traffic").items[0]
    return item.public_bounds, item.public_domain


# --- the Origin check -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": EVIL},
        {"origin": "null"},  # a sandboxed iframe or a page with Referrer-Policy: no-referrer
        {"origin": "http://testserver.evil.example"},
        {"origin": "http://testserver:8080"},  # same host, another port: another origin
        {"origin": "https://testserver"},  # same host, another scheme
        {"referer": EVIL + "/phish.html"},  # no Origin: the Referer decides
        {},  # neither: not a browser's form post
    ],
    ids=["foreign", "null", "lookalike", "port", "scheme", "foreign-referer", "none"],
)
def test_a_cross_site_login_is_refused_and_records_nothing(
    initialised: tuple[Instance, dict[str, str]], headers: dict[str, str]
) -> None:
    instance, tokens = initialised
    issued = _token_issued(instance)
    client = _anonymous(instance)
    response = client.post(
        "/console/login", data=login_form(tokens["operator"]), headers=headers, follow_redirects=False
    )
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "跨站请求被拒绝" in response.text or "请求没有来源" in response.text
    assert "set-cookie" not in response.headers and COOKIE not in client.cookies
    assert _token_issued(instance) == issued  # no token was even issued


@pytest.mark.parametrize(
    "headers",
    [{"origin": ORIGIN}, {"origin": "HTTP://TESTSERVER:80"}, {"referer": ORIGIN + "/console/login?reason=x"}],
    ids=["origin", "origin-default-port", "referer"],
)
def test_a_same_origin_login_works(initialised: tuple[Instance, dict[str, str]], headers: dict[str, str]) -> None:
    instance, tokens = initialised
    client = _anonymous(instance)
    response = client.post(
        "/console/login", data=login_form(tokens["operator"]), headers=headers, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/console"
    assert client.get("/console/operator").status_code == 200


def test_a_configured_proxy_origin_may_post_and_a_malformed_one_is_refused_at_start(
    initialised: tuple[Instance, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    instance, tokens = initialised
    public = "https://data.example.gov.cn"
    monkeypatch.setattr(instance, "settings", instance.settings.model_copy(update={"console_origins": [public]}))
    client = _anonymous(instance)
    ok = client.post("/console/login", data=login_form(tokens["agency"]), headers={"origin": public})
    assert ok.status_code == 200 and "/console/agency" in str(ok.url)
    refused = client.post("/console/logout", headers={"origin": EVIL}, follow_redirects=False)
    assert refused.status_code == 403
    monkeypatch.setattr(instance, "settings", instance.settings.model_copy(update={"console_origins": ["evil"]}))
    with pytest.raises(ValueError, match="console_origins"):
        create_app(instance=instance)


def test_a_cross_site_logout_is_refused_and_the_session_survives(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    instance, tokens = initialised
    client = _login(instance, tokens["operator"])
    for headers in ({"origin": EVIL}, {"origin": "null"}):
        forced = client.post("/console/logout", headers=headers, follow_redirects=False)
        assert forced.status_code == 403 and "跨站请求被拒绝" in forced.text
        assert "set-cookie" not in forced.headers
    assert client.get("/console/operator").status_code == 200
    out = client.post("/console/logout", follow_redirects=False)  # the client's own Origin
    assert out.status_code == 303 and COOKIE not in client.cookies


def test_a_form_with_a_valid_token_from_another_site_is_refused_and_changes_nothing(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    instance, tokens = initialised
    add_dataset(instance.registry, "traffic", level="L2")
    custodian = _login(instance, tokens["custodian"])
    csrf = csrf_of(custodian, "/console/custodian/datasets/traffic")
    data = {"csrf": csrf, "column": "trips", "bounds": "0, 100", "domain": ""}
    path = "/console/custodian/datasets/traffic/bounds"
    for headers in ({"origin": EVIL}, {"origin": "", "referer": EVIL + "/"}):
        refused = custodian.post(path, data=data, headers=headers, follow_redirects=False)
        assert refused.status_code == 403, refused.text
    assert _bounds(instance) == (None, None)
    made = custodian.post(path, data=data, follow_redirects=False)
    assert made.status_code == 303 and "declared" in _flash(made)


# --- CSRF tokens on every form ------------------------------------------------------------------------


def _console_posts(instance: Instance) -> list[tuple[str, str]]:
    """(role, path) of every state-changing console route but login (and its enrolment) and logout, path
    parameters filled."""
    found = []
    for route in build_console(instance).routes:
        assert isinstance(route, APIRoute)
        if not route.methods - {"GET", "HEAD", "OPTIONS"} or route.path in (
            "/console/login",
            "/console/login/enrol",
            "/console/logout",
        ):
            continue
        assert route.methods == {"POST"}, route.path  # the test below posts; a PUT or DELETE form needs its own
        role = route.path.split("/")[2]
        path = re.sub(r"\{(\w+)\}", lambda m: WELL_KNOWN.get(m.group(1), "1"), route.path)
        found.append((role, path))
    return found


def test_every_form_refuses_a_missing_wrong_or_unreadable_csrf_token_with_a_403_page(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    instance, tokens = initialised
    add_dataset(instance.registry, "traffic", level="L2")
    posts = _console_posts(instance)
    assert {role for role, _ in posts} == {"operator", "agency", "custodian", "regulator"} and len(posts) >= 8
    clients = {role: _login(instance, tokens[role]) for role in {role for role, _ in posts}}

    # Refusals raise security alerts (issue 22: ledgered); what counts here is that no form did anything.
    def acts() -> int:
        return sum(not e.action.startswith("security.") for e in instance.ledger.entries(limit=1_000_000))

    entries = acts()
    bodies: list[dict[str, Any]] = [
        {"data": {"decision": "approve", "product": "x", "column": "trips", "bounds": "0, 1"}},
        {"data": {"csrf": "", "product": "x"}},
        {"data": {"csrf": "0" * 64, "product": "x"}},
        {"content": b"--xyz\r\ngarbage", "headers": {"content-type": "multipart/form-data; boundary=xyz"}},
        {"content": b"abc", "headers": {"content-type": "multipart/form-data"}},
        {"content": b'{"csrf": "x"}', "headers": {"content-type": "application/json"}},
    ]
    for role, path in posts:
        for body in bodies:
            response = clients[role].post(path, follow_redirects=False, **body)
            assert response.status_code == 403, (path, body, response.status_code, response.text[:300])
            assert response.headers["content-type"].startswith("text/html")
            assert "CSRF" in response.text or "表单无法读取" in response.text, (path, body)
    assert acts() == entries  # nothing was recorded, so nothing was done
    for client in clients.values():
        client.app.state.security_buffer.flush()  # type: ignore[attr-defined]
    assert instance.ledger.entries(action="security.alert_raised")  # a storm of forged forms is an alert


# --- security headers ------------------------------------------------------------------------------


def _directives(csp: str) -> dict[str, list[str]]:
    parsed = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            parsed[words[0].lower()] = words[1:]
    return parsed


def _assert_headers(response: Any, *, page: bool) -> None:
    where = f"{response.request.method} {response.request.url.path} → {response.status_code}"
    headers = response.headers
    csp = _directives(headers.get("content-security-policy", ""))
    assert csp.get("default-src") == ["'self'"], where
    assert csp.get("frame-ancestors") == ["'none'"], where
    assert headers.get("x-frame-options") == "DENY", where
    assert headers.get("x-content-type-options") == "nosniff", where
    assert headers.get("referrer-policy") == "same-origin", where
    if page:
        assert headers.get("cache-control") == "no-store", where


def test_the_csp_allows_no_inline_script_or_style_and_no_framing(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, _ = initialised
    csp = _directives(_anonymous(instance).get("/console/login").headers["content-security-policy"])
    for directive in ("script-src", "style-src"):
        sources = csp.get(directive, csp["default-src"])
        assert sources == ["'self'"], (directive, sources)
        for loose in ("'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"):
            assert loose not in sources
    assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"] and csp["form-action"] == ["'self'"]


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style\b", re.I), "a <style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an inline event handler"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def _assert_csp_clean(html: str, where: str) -> None:
    for pattern, what in INLINE:
        found = pattern.search(html)
        assert found is None, f"{where} has {what} the CSP would block: {found.group(0) if found else ''}"


def test_every_console_page_of_every_role_carries_the_headers_and_no_inline_code(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    instance, tokens = initialised
    anonymous = _anonymous(instance)
    for response in (
        anonymous.get("/console/login"),
        anonymous.get("/console/operator", follow_redirects=False),  # the redirect to the login form
        anonymous.post("/console/login", data={"api_key": "ky_nope"}, headers={"origin": ORIGIN}),  # 401 page
        anonymous.post("/console/login", data={"api_key": "ky_nope"}, headers={"origin": EVIL}),  # 403 page
    ):
        _assert_headers(response, page=True)
        if response.status_code != 303:
            _assert_csp_clean(response.text, str(response.request.url))
    for asset in ("/static/console.css", "/static/console.js"):
        response = anonymous.get(asset)
        assert response.status_code == 200
        _assert_headers(response, page=False)
    walked = 0
    for role in ROLES:
        client = _login(instance, tokens[role])
        _assert_headers(client.get("/console", follow_redirects=False), page=True)
        for path, _ in NAV[role]:
            response = client.get("/console" + path)
            assert response.status_code == 200, (role, path)
            _assert_headers(response, page=True)
            _assert_csp_clean(response.text, f"{role} {path}")
            walked += 1
        other = next(r for r in ROLES if r != role)
        forbidden = client.get("/console" + NAV[other][0][0])
        assert forbidden.status_code == 403
        _assert_headers(forbidden, page=True)
    assert walked == sum(len(pages) for pages in NAV.values())
    # The API keeps its own: no framing or sniffing (issue 17 red team), not the console's strict CSP.
    assert anonymous.get("/healthz").headers["content-security-policy"] == API_HEADERS["Content-Security-Policy"]


# --- flash messages by id --------------------------------------------------------------------------

PHISHING = [
    "<script>alert(document.cookie)</script>",
    "您的账户已被冻结，请致电 400-000-0000 · your account is suspended, call 400-000-0000",
    "job_queued ",
    "JOB_QUEUED",
    "__class__",
]


def _flash_of(html: str) -> str | None:
    found = re.search(r'<p class="flash" role="status">(.*?)</p>', html, re.S)
    return found.group(1) if found else None


def test_msg_shows_no_text_from_the_url_only_catalogue_ids(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = initialised
    operator = _login(instance, tokens["operator"])
    for text in PHISHING:
        page = operator.get("/console/operator/jobs", params={"msg": text})
        assert page.status_code == 200
        assert _flash_of(page.text) is None, text
        assert "400-000-0000" not in page.text and "alert(document.cookie)" not in page.text
    known = operator.get("/console/operator/jobs", params={"msg": "round_base_out_of_range"})
    assert _flash_of(known.text) == "取整基数 2–1000 · round base must be 2 to 1000"
    # A message naming values, with values but no signature, a made-up one, or one for other values.
    for params in (
        {"msg": "job_queued", "msg_job": "42"},
        {"msg": "job_refused", "msg_reason": "call 400-000-0000", "msg_sig": "0" * 32},
        {"msg": "entry_not_found", "msg_reason": "<b>x</b>", "msg_sig": ""},
    ):
        assert _flash_of(operator.get("/console/operator/jobs", params=params).text) is None, params


def test_the_login_forms_reason_is_an_id_too(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, _ = initialised
    client = _anonymous(instance)
    for text in PHISHING:
        page = client.get("/console/login", params={"reason": text})
        # The only alert allowed is the platform's own "no live worker" banner (issue 17), never a reason.
        assert '<p class="error" role="alert">' not in page.text and "400-000-0000" not in page.text
    ended = client.get("/console/login", params={"reason": "session_ended"})
    assert LOGIN_REASONS["session_ended"] in ended.text
    client.cookies.set(COOKIE, "not-a-jwt", path="/console")
    redirected = client.get("/console/operator", follow_redirects=False)
    # the reason is an id, and the page asked for comes back after login (issue 18, app.console.next_page)
    assert redirected.headers["location"] == "/console/login?reason=session_ended&next=/console/operator"


def test_a_signed_message_shows_only_in_its_own_session(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = initialised
    add_dataset(instance.registry, "traffic", level="L2")
    custodian = _login(instance, tokens["custodian"])
    csrf = csrf_of(custodian, "/console/custodian/datasets/traffic")
    made = custodian.post(
        "/console/custodian/datasets/traffic/bounds",
        data={"csrf": csrf, "column": "trips", "bounds": "0, 100", "domain": ""},
        follow_redirects=False,
    )
    location = made.headers["location"]
    assert made.status_code == 303 and "msg=bounds_declared" in location and "msg_sig=" in location
    shown = _flash_of(custodian.get(location).text)
    assert shown is not None and "trips" in shown and "[0, 100]" in shown and "declared" in shown
    tampered = location.replace("trips", "call+400-000-0000")
    assert _flash_of(custodian.get(tampered).text) is None
    another = _login(instance, tokens["custodian"])  # the same principal, another session
    assert _flash_of(another.get(location).text) is None


def test_the_catalogue_is_complete_and_misuse_is_a_programming_error() -> None:
    flashes = Flashes(b"k" * 32)
    for msg_id in MESSAGES:
        values = {name: f"<{name}>" for name in fields_of(msg_id)}
        text = text_of(msg_id, values)
        assert text and "·" in text, msg_id  # Chinese · English
        query = flashes.query("session-token", msg_id, **values)
        parsed = dict(re.findall(r"([^&=]+)=([^&]*)", query))
        assert parsed["msg"] == msg_id
    assert text_of("no_such_id", {}) == "" and text_of("job_queued", {}) == ""
    with pytest.raises(ValueError, match="unknown"):
        flashes.query("t", "no_such_id")
    with pytest.raises(ValueError, match="takes"):
        flashes.query("t", "job_queued", jobs=1)
    with pytest.raises(ValueError, match="session"):
        flashes.query(None, "job_queued", job=1)
    long = flashes.query("t", "job_refused", reason="x" * 10_000)
    assert len(long) < 1000  # a long reason is cut, the URL stays short


# --- cookies -----------------------------------------------------------------------------------------


def _set_cookie(response: Any) -> str:
    return "; ".join(v for k, v in response.headers.multi_items() if k == "set-cookie").lower()


def test_the_session_cookie_is_httponly_strict_scoped_and_secure_over_https(
    initialised: tuple[Instance, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    instance, tokens = initialised
    plain = _anonymous(instance).post(
        "/console/login", data=login_form(tokens["operator"]), headers={"origin": ORIGIN}, follow_redirects=False
    )
    cookie = _set_cookie(plain)
    assert f"{COOKIE}=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert "path=/console" in cookie and "secure" not in cookie
    https = _anonymous(instance, base_url="https://testserver")
    secure = https.post(
        "/console/login",
        data=login_form(tokens["operator"]),
        headers={"origin": "https://testserver"},
        follow_redirects=False,
    )
    assert "secure" in _set_cookie(secure) and "httponly" in _set_cookie(secure)
    out = https.post("/console/logout", headers={"origin": "https://testserver"}, follow_redirects=False)
    cleared = _set_cookie(out)
    assert f'{COOKIE}=""' in cleared and "secure" in cleared and "samesite=strict" in cleared
    monkeypatch.setattr(instance, "settings", instance.settings.model_copy(update={"console_secure_cookies": True}))
    forced = _anonymous(instance).post(
        "/console/login", data=login_form(tokens["operator"]), headers={"origin": ORIGIN}, follow_redirects=False
    )
    assert "secure" in _set_cookie(forced)
