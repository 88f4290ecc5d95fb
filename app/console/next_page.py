"""Returning to the page after login (issue 18), without an open redirect.

Why: a deep link (a release to review, sent by mail) that meets an ended session used to land on the
role's home after login, and the person had to find the page again. The login redirect now carries the
page as ``next``; after the login the console sends the person there. A ``next`` is a value from the
URL, so anyone can craft one: it is followed only when it is a path of this console (``/console/…``),
with no scheme, no host, no ``//`` (a protocol-relative URL is another site), no backslash (browsers
read ``/\\evil.com`` as ``//evil.com``), no control character, no dot segment and no percent-encoded
dot, slash or backslash (``/console/%2e%2e/x`` is ``/x`` to some servers). Anything else is dropped
and the person lands on the role's home, as before (SATRE 2.5.03: the platform controls where its
login sends people; OWASP's unvalidated-redirect rule).
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode, urlsplit

from app.console.session import PATH

#: A ``next`` longer than this is no page of the console.
MAX_NEXT = 1024
_FORBIDDEN = re.compile(r"[\\\x00-\x1f\x7f\s]|%(?:2e|2f|5c|0[0-9a-f]|1[0-9a-f]|25)", re.IGNORECASE)
#: Pages that make no sense to come back to (the login itself would loop).
_NOT_BACK = (PATH + "/login", PATH + "/logout")


def safe_next(value: object) -> str | None:
    """``value`` when it is a path (and query) of this console, else ``None``."""
    if not isinstance(value, str) or not value or len(value) > MAX_NEXT:
        return None
    if _FORBIDDEN.search(value) or not value.startswith(PATH) or value.startswith("//"):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme or parts.netloc or parts.fragment:
        return None
    path = parts.path
    if path != PATH and not path.startswith(PATH + "/"):
        return None
    if any(segment in {".", ".."} for segment in path.split("/")):
        return None
    if path.rstrip("/") in _NOT_BACK or path.startswith(PATH + "/login/"):
        return None
    return path + (f"?{parts.query}" if parts.query else "")


def login_url(reason: str, back: str = "") -> str:
    """The login form's URL with ``reason`` (an id of ``LOGIN_REASONS``) and ``back`` when it is safe."""
    query = {"reason": reason}
    checked = safe_next(back)
    if checked:
        query["next"] = checked
    return f"{PATH}/login?{urlencode(query, safe='/', quote_via=quote)}"


__all__ = ["MAX_NEXT", "login_url", "safe_next"]
