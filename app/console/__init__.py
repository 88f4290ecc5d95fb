"""The web console at ``/console`` (issue 9): server-rendered pages for the four roles.

Composition only, like the rest of ``app``: each page reads through the packages' public APIs
(registry, jobs, releases, ledger) as the logged-in principal, so a page shows exactly what that
role may see over the API — an operator its own jobs with the guard's redacted log, never a path or
unguarded content. Logging in exchanges an API key for the same short-lived JWT the API issues
(ledgered as ``auth.token_issued``); the JWT travels in an HttpOnly, SameSite=Strict cookie scoped
to ``/console``, and every form carries a CSRF token bound to that JWT.
"""

from app.console.routes import STATIC, build_console, install_console_handlers

__all__ = ["STATIC", "build_console", "install_console_handlers"]
