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

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from fastapi.testclient import TestClient

from app import Instance, create_app
from app.console.next_page import safe_next
from app.console.session import COOKIE, MAX_SESSION, Session, Sessions
from operators import Principal, Role
from operators.tokens import Claims
from tests.console_support import ORIGIN, console_client
from tests.totp_support import login_form


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
