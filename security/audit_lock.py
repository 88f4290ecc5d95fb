"""Scan requirements.lock for known vulnerabilities in PyPI's advisory data (SATRE v2 2.7.02; issue 22).

Run by ``make audit`` (hence ``make test`` and CI): ``python security/audit_lock.py requirements.lock``.
Exit 0: no advisory against a locked version, beyond the accepted ones. Exit 1: advisories — upgrade the
package (``make lock LOCK_ARGS="--upgrade-package NAME"``) or, when no fixed version works, accept it in
``security/advisories-ignored.toml`` with a reason and a review date. Exit 2: the scan could not run
(advisory service unreachable, unreadable lock or ignore file, an expired acceptance): a scan that did
not run never passes.

Why not ``pip-audit`` itself: it asks PyPI's per-version JSON (``/pypi/NAME/VERSION/json``), which the
PyPI reachable from this project's machines answers 404 — and pip-audit then reports every package as
"not found on PyPI", skips it and exits 0. That is a silent pass. So this scan asks for the per-version
record first and, where that is not served, uses the project record (``/pypi/NAME/json``), whose
``vulnerabilities`` are those of the latest release: exact for a package locked at its latest version,
and for one locked behind it the advisories that still affect the latest (no upgrade fixes those). An
advisory fixed between a behind-latest pin and the latest release cannot be seen from the project
record: such packages are listed on every run, so the gap is visible, and the routine of
docs/operations.md (``make lock LOCK_ARGS=--upgrade``) closes it by locking the latest releases.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import ssl
import sys
import time
import tomllib
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INDEX = os.environ.get("KEYONG_AUDIT_INDEX", "https://pypi.org/pypi")
IGNORES = Path(__file__).with_name("advisories-ignored.toml")
ATTEMPTS = 3
TIMEOUT = 20.0
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


class ScanError(Exception):
    """The scan could not run to the end; its message says why."""


@dataclass(frozen=True, slots=True)
class Advisory:
    id: str
    package: str
    version: str
    aliases: tuple[str, ...]
    fixed_in: tuple[str, ...]
    summary: str

    def names(self) -> set[str]:
        return {self.id, *self.aliases}


@dataclass
class Report:
    advisories: list[Advisory] = field(default_factory=list)
    exact: list[str] = field(default_factory=list)  # checked against their own version's record
    behind: list[tuple[str, str, str]] = field(default_factory=list)  # (name, locked, latest)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_pins(lock: Path) -> dict[str, str]:
    """``name -> version`` of every ``name==version`` line of a pip-compile lock file."""
    try:
        text = lock.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScanError(f"cannot read the lock file {lock}: {exc}") from None
    pins = {canonical(m.group(1)): m.group(2) for line in text.splitlines() if (m := PIN.match(line.strip()))}
    if not pins:
        raise ScanError(f"{lock} pins no package (name==version lines): nothing would be scanned")
    return pins


def _fetch(url: str, context: ssl.SSLContext) -> dict[str, Any] | None:
    """The JSON at ``url``; None for a 404; :class:`ScanError` after :data:`ATTEMPTS` failed tries."""
    last = ""
    for attempt in range(ATTEMPTS):
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT, context=context) as response:
                data: dict[str, Any] = json.load(response)
                return data
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, json.JSONDecodeError) as exc:
            last = str(getattr(exc, "reason", exc))
        time.sleep(0.5 * 2**attempt)
    raise ScanError(
        f"the advisory service is unreachable or failing ({url}: {last}); the vulnerability scan did NOT run"
    )


def _advisories(name: str, version: str, record: dict[str, Any]) -> list[Advisory]:
    return [
        Advisory(
            id=str(v.get("id")),
            package=name,
            version=version,
            aliases=tuple(str(a) for a in v.get("aliases") or ()),
            fixed_in=tuple(str(f) for f in v.get("fixed_in") or ()),
            summary=" ".join(str(v.get("summary") or v.get("details") or "").split())[:160],
        )
        for v in record.get("vulnerabilities") or ()
        if not v.get("withdrawn")
    ]


def scan_one(name: str, version: str, context: ssl.SSLContext) -> tuple[list[Advisory], str | None]:
    """The advisories of ``name==version`` and, when only the project record was served, its latest version."""
    record = _fetch(f"{INDEX}/{name}/{version}/json", context)
    if record is not None:
        return _advisories(name, version, record), None
    project = _fetch(f"{INDEX}/{name}/json", context)
    if project is None:
        raise ScanError(f"{name} is not on the advisory service's index: it cannot be audited")
    latest = str(project.get("info", {}).get("version", ""))
    public = version.split("+", 1)[0]  # a local build (torch 2.13.0+cpu) is audited as its public release
    return _advisories(name, version, project), None if latest == public else latest


def scan(pins: dict[str, str], *, workers: int = 8) -> Report:
    context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or os.environ.get("PIP_CERT"))
    report = Report()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        items = sorted(pins.items())
        results = pool.map(lambda item: scan_one(item[0], item[1], context), items)
        for (name, version), (found, latest) in zip(items, results, strict=True):
            report.advisories.extend(found)
            if latest is None:
                report.exact.append(name)
            else:
                report.behind.append((name, version, latest))
    return report


@dataclass(frozen=True, slots=True)
class Acceptance:
    id: str
    package: str
    reason: str
    decided: datetime.date
    review_by: datetime.date


def accepted(path: Path, today: datetime.date) -> list[Acceptance]:
    """The accepted advisories; an entry without a reason or dates, or past its review date, stops the scan."""
    try:
        entries = tomllib.loads(path.read_text(encoding="utf-8")).get("ignore", [])
    except FileNotFoundError:
        return []
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ScanError(f"cannot read {path}: {exc}") from None
    result = []
    for entry in entries:
        try:
            item = Acceptance(**{k: entry[k] for k in ("id", "package", "reason", "decided", "review_by")})
        except (KeyError, TypeError) as exc:
            raise ScanError(f"{path}: every [[ignore]] needs id, package, reason, decided, review_by ({exc})") from None
        if not item.reason.strip() or not all(isinstance(d, datetime.date) for d in (item.decided, item.review_by)):
            raise ScanError(f"{path}: {item.id} needs a reason and TOML dates (decided = 2026-12-06)")
        if item.review_by < today:
            raise ScanError(
                f"{path}: the acceptance of {item.id} ({item.package}) expired on {item.review_by}: re-check"
            )
        result.append(item)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("lock", type=Path, nargs="?", default=Path("requirements.lock"))
    parser.add_argument("--ignores", type=Path, default=IGNORES)
    args = parser.parse_args(argv)
    try:
        pins = locked_pins(args.lock)
        acceptances = accepted(args.ignores, datetime.date.today())
        report = scan(pins)
    except ScanError as exc:
        print(f"audit: FAILED: {exc}", file=sys.stderr)
        return 2
    waived = {(canonical(a.package), a.id) for a in acceptances}
    open_ = [a for a in report.advisories if not any((canonical(a.package), n) in waived for n in a.names())]
    for adv in report.advisories:
        state = "ACCEPTED" if adv not in open_ else "VULNERABLE"
        fixed = ", ".join(adv.fixed_in) or "no fixed release"
        print(f"audit: {state} {adv.package}=={adv.version} {adv.id} (fixed in: {fixed}) {adv.summary}")
    for name, version, latest in report.behind:
        print(f"audit: note: {name}=={version} is behind {latest}; only the latest release's advisories are served")
    print(
        f"audit: {len(pins)} locked packages: {len(report.exact)} checked at their locked version, "
        f"{len(report.behind)} against their latest release's advisories; "
        f"{len(open_)} open advisories, {len(report.advisories) - len(open_)} accepted ({INDEX})"
    )
    return 1 if open_ else 0


if __name__ == "__main__":
    sys.exit(main())
