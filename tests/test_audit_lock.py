"""The lock's vulnerability scan (SATRE v2 2.7.02; issue 22), against a fake advisory service on loopback.

The scan must find an advisory against a locked version, honour only dated acceptances with a reason,
and fail — never pass — when the service cannot be asked (``security/audit_lock.py``). The real run
against PyPI is ``make audit``, part of ``make test``.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_lock", ROOT / "security" / "audit_lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


audit = _load()

ADVISORY = {"id": "GHSA-aaaa-bbbb-cccc", "aliases": ["CVE-2026-0001"], "fixed_in": ["2.0.1"], "summary": "bad"}
#: path -> (status, body): jinja-like "tpl" serves per-version records, "old" only its project record.
RECORDS: dict[str, tuple[int, dict[str, Any]]] = {
    "/pypi/tpl/2.0.0/json": (200, {"info": {"version": "2.0.0"}, "vulnerabilities": [ADVISORY]}),
    "/pypi/safe/1.0.0/json": (200, {"info": {"version": "1.0.0"}, "vulnerabilities": []}),
    "/pypi/old/json": (200, {"info": {"version": "3.0.0"}, "vulnerabilities": []}),
    "/pypi/torch/json": (200, {"info": {"version": "2.13.0"}, "vulnerabilities": []}),
}


class _Index(BaseHTTPRequestHandler):
    failing = False

    def do_GET(self) -> None:
        status, body = (500, {}) if self.failing else RECORDS.get(self.path, (404, {}))
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def index(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Index]]:
    handler = type("Index", (_Index,), {"failing": False})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(audit, "INDEX", f"http://127.0.0.1:{server.server_address[1]}/pypi")
    monkeypatch.setattr(audit.time, "sleep", lambda _: None)  # no back-off waits in tests
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()


def _lock(tmp_path: Path, *pins: str) -> Path:
    path = tmp_path / "requirements.lock"
    path.write_text("".join(f"{pin} \\\n    --hash=sha256:{'0' * 64}\n" for pin in pins), encoding="utf-8")
    return path


def _ignores(tmp_path: Path, review_by: datetime.date, reason: str = "not reachable from Keyong") -> Path:
    path = tmp_path / "ignored.toml"
    path.write_text(
        f'[[ignore]]\nid = "CVE-2026-0001"\npackage = "tpl"\nreason = "{reason}"\n'
        f"decided = 2026-12-01\nreview_by = {review_by.isoformat()}\n",
        encoding="utf-8",
    )
    return path


def test_an_advisory_against_a_locked_version_fails_the_scan(
    index: type[_Index], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = _lock(tmp_path, "tpl==2.0.0", "safe==1.0.0", "old==1.0.0", "torch==2.13.0+cpu")
    assert audit.main([str(lock), "--ignores", str(tmp_path / "none.toml")]) == 1
    out = capsys.readouterr().out
    assert "VULNERABLE tpl==2.0.0 GHSA-aaaa-bbbb-cccc (fixed in: 2.0.1)" in out
    assert "old==1.0.0 is behind 3.0.0" in out  # the gap of a project-only record is shown
    assert "torch" not in out.split("audit: 4 locked")[0]  # a local build is its public release: at latest
    assert "1 open advisories" in out


def test_a_dated_acceptance_with_a_reason_waives_the_advisory(
    index: type[_Index], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = _lock(tmp_path, "tpl==2.0.0", "safe==1.0.0")
    ignores = _ignores(tmp_path, datetime.date.today() + datetime.timedelta(days=30))
    assert audit.main([str(lock), "--ignores", str(ignores)]) == 0  # accepted through its CVE alias
    assert "ACCEPTED tpl==2.0.0" in capsys.readouterr().out


@pytest.mark.parametrize("review_by, reason", [(datetime.date.today() - datetime.timedelta(days=1), "ok"), (None, " ")])
def test_an_expired_or_unreasoned_acceptance_stops_the_scan(
    index: type[_Index], tmp_path: Path, review_by: datetime.date | None, reason: str
) -> None:
    lock = _lock(tmp_path, "tpl==2.0.0")
    ignores = _ignores(tmp_path, review_by or datetime.date.today(), reason)
    assert audit.main([str(lock), "--ignores", str(ignores)]) == 2


@pytest.mark.attack
def test_an_unreachable_or_failing_service_fails_loudly(
    index: type[_Index], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = _lock(tmp_path, "safe==1.0.0")
    index.failing = True
    assert audit.main([str(lock), "--ignores", str(tmp_path / "none.toml")]) == 2
    assert "did NOT run" in capsys.readouterr().err
    monkeypatch.setattr(audit, "INDEX", "http://127.0.0.1:9/pypi")  # nothing listens on the discard port
    assert audit.main([str(lock), "--ignores", str(tmp_path / "none.toml")]) == 2
    assert "unreachable" in capsys.readouterr().err


def test_a_package_the_service_does_not_know_is_not_skipped(index: type[_Index], tmp_path: Path) -> None:
    """pip-audit's silent pass here: a 404 for the package must stop the scan, not drop the package."""
    assert audit.main([str(_lock(tmp_path, "unknown-pkg==1.0")), "--ignores", str(tmp_path / "none.toml")]) == 2
    empty = tmp_path / "empty.lock"
    empty.write_text("# nothing pinned\n", encoding="utf-8")
    assert audit.main([str(empty)]) == 2
