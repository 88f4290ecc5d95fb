"""Shared helpers of the console's TestClient tests: log in through the form, read a form's CSRF token,
read the flash message a redirect carries.

The clients send ``Origin: http://testserver`` as a browser does on a form post: the console refuses a
state-changing request from anywhere but its own origin (``app.console.security``)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient

from app import Instance, create_app
from app.console.flash import PARAM, PREFIX, text_of
from tests.totp_support import login_form

ORIGIN = "http://testserver"  # TestClient's base URL


def console_client(instance: Instance, api_key: str) -> TestClient:
    """A client logged in to the console with ``api_key`` and a fresh code of its principal's second factor
    (the session cookie set by the login form)."""
    client = TestClient(create_app(instance=instance), headers={"origin": ORIGIN})
    response = client.post("/console/login", data=login_form(api_key, client), follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def csrf_of(client: TestClient, path: str) -> str:
    return csrf_in(client.get(path).text)


def flash(response: Any) -> str:
    """The catalogue text of the message a console redirect carries (``?msg=<id>`` and its values), or ''.

    The page the redirect leads to shows it only with a valid signature for the session
    (``tests/test_console_hardening.py`` follows the redirects to check that)."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}
    values = {k.removeprefix(PREFIX): v for k, v in query.items() if k.startswith(PREFIX)}
    return text_of(query.get(PARAM, ""), values)


def vote_shown(html: str) -> dict[str, str]:
    """The hidden fields of a release page's vote form besides the CSRF token: the round and each file's
    SHA-256 the page showed, which a browser posts with the vote (fix18, red team 18 F5)."""
    from html import unescape

    form = html[html.index('id="vote-form"') :]
    form = form[: form.index("</form>")]
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    return {unescape(k): unescape(v) for k, v in fields if k != "csrf"}
