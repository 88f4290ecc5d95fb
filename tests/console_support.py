"""Shared helpers of the console's TestClient tests: log in through the form, read a form's CSRF token,
read the flash message a redirect carries."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from fastapi.testclient import TestClient

from app import Instance, create_app


def console_client(instance: Instance, api_key: str) -> TestClient:
    """A client logged in to the console with ``api_key`` (the session cookie set by the login form)."""
    client = TestClient(create_app(instance=instance))
    response = client.post("/console/login", data={"api_key": api_key}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def csrf_of(client: TestClient, path: str) -> str:
    return csrf_in(client.get(path).text)


def flash(response: Any) -> str:
    """The message a console redirect carries (``?msg=``), or ''."""
    location = response.headers["location"]
    return unquote(location.split("msg=", 1)[1]) if "msg=" in location else ""
