"""Where ``keyong demo`` runs: only on a fresh home, never over earlier work (issue 17).

Why: the demo used to rerun in the same home, revoking the earlier demo licence — which destroys
the operator's copies and outputs under it (双鸭山 第六十二条) — so ``make run`` twice lost what a
newcomer had done in the console. Now:

* A home that is absent or empty gets a new instance and the demo; ``demo.json`` in the home records
  that it is a demo home, when the demo started and, once it finished, its report (without keys).
* A home whose demo finished is **kept**: a rerun changes nothing and says so, exit 0. That is what a
  newcomer expects of ``make run`` (demo, then serve): the second time it opens the same console with
  the same licence, jobs and products, instead of failing or wiping them.
* ``--reset`` is the explicit way to start over. It replaces only a demo home: the old one is moved
  aside, the new demo runs, and the old one is deleted only when the new one succeeded (restored
  otherwise). It is refused while a worker on that home is live (a server is running on it).
* A home holding anything else — an instance made by ``keyong init``, or other files — is refused,
  reset or not: the demo never touches real work.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from app.demo.scenario import DEMO_DIR
from app.instance import MARKER, Instance, InstanceError
from app.ledger_whole import remembered_head_file
from app.settings import Settings
from ledger import forget_head

DEMO_RECORD = "demo.json"
#: Report fields that hold API keys and TOTP secrets: shown once when made, never written to disk.
SECRET_FIELDS = ("tokens", "totp", "reviewer_keys", "reviewer_totp")

HomeState = Literal["fresh", "demo", "unfinished demo", "instance", "other"]


def home_state(home: Path) -> HomeState:
    if not home.exists() or (home.is_dir() and not any(home.iterdir())):
        return "fresh"
    if not (home / MARKER).exists():
        return "other"
    record = read_record(home)
    if record is None:
        # A demo made before demo.json existed still has its generated tables: a demo home all the same.
        return "demo" if (home / DEMO_DIR).is_dir() else "instance"
    return "demo" if record.get("finished") else "unfinished demo"


def read_record(home: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((home / DEMO_RECORD).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable: a demo home whose record is broken, treated as unfinished
    return data if isinstance(data, dict) else {}


def write_record(home: Path, record: dict[str, Any]) -> None:
    """Write ``demo.json`` atomically (a crash leaves the old record or the new one, never half)."""
    fd, tmp = tempfile.mkstemp(prefix=".demo-", suffix=".json", dir=home)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh, ensure_ascii=False, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, home / DEMO_RECORD)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def started_record(*, residents: int, seed: int) -> dict[str, Any]:
    return {"started": datetime.now(UTC).isoformat(), "residents": residents, "seed": seed}


def finished_record(started: dict[str, Any], report: dict[str, object]) -> dict[str, Any]:
    kept = {key: value for key, value in report.items() if key not in SECRET_FIELDS}
    return {**started, "finished": datetime.now(UTC).isoformat(), "report": kept}


@dataclass(frozen=True, slots=True)
class KeptDemo:
    """A rerun on a home whose demo finished: nothing was changed."""

    home: Path
    record: dict[str, Any]

    def as_json(self) -> dict[str, object]:
        report = dict(self.record.get("report") or {})
        report.update({"home": str(self.home), "initialized": False, "tokens": None, "reviewer_keys": {}})
        report.update({"totp": None, "reviewer_totp": {}})
        report.update({"kept": True, "started": self.record.get("started"), "finished": self.record.get("finished")})
        return report


def check_home(settings: Settings, *, reset: bool) -> KeptDemo | None:
    """Whether the demo may run in ``settings.home``: ``KeptDemo`` when it already did (and no reset),
    ``None`` when it may run; raises ``InstanceError`` (exit 1, nothing changed) when it may not."""
    home = settings.home
    state = home_state(home)
    if state in ("instance", "other"):
        what = "a Keyong instance that is not a demo" if state == "instance" else "files that are not a Keyong demo"
        raise InstanceError(
            f"{home} holds {what}; the demo runs only on a fresh home, so nothing was changed (choose another --home)"
        )
    if state == "demo" and not reset:
        record = read_record(home) or {}
        return KeptDemo(home, record)
    if state == "unfinished demo" and not reset:
        raise InstanceError(
            f"an earlier demo in {home} did not finish; nothing was changed: "
            f"`keyong demo --reset --home {home}` starts over"
        )
    if reset and state != "fresh":
        _refuse_while_served(settings)
    return None


def _refuse_while_served(settings: Settings) -> None:
    instance = Instance.open(settings)
    try:
        live = instance.roster.live_count()
    finally:
        instance.close()
    if live:
        raise InstanceError(
            f"{live} worker(s) on {settings.home} are live (a `keyong serve` or `keyong worker` runs on it): "
            "stop them before `--reset`; nothing was changed"
        )


@contextmanager
def replacing(home: Path, *, reset: bool) -> Iterator[None]:
    """With ``reset`` and a demo at ``home``: move it aside for the block, delete it when the block
    succeeds, put it back when it fails (the half-made new home is removed)."""
    if not reset or home_state(home) == "fresh":
        yield
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{home.name}.reset-", dir=home.parent))
    old = aside / home.name
    os.rename(home, old)
    forget_head(remembered_head_file(home))  # the new demo is another ledger at this path (ledger.head.forget_head)
    try:
        yield
    except BaseException:
        if home.exists():
            shutil.rmtree(home, ignore_errors=True)
        os.rename(old, home)
        shutil.rmtree(aside, ignore_errors=True)
        raise
    shutil.rmtree(aside, ignore_errors=True)


__all__ = ["DEMO_RECORD", "KeptDemo", "check_home", "finished_record", "home_state", "replacing", "started_record",
           "write_record"]  # fmt: skip
