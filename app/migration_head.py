"""This code's schema head, read from the migration files without Alembic or SQLAlchemy (issue 21).

Every command checks the database's schema revision before it reads or writes. Importing Alembic costs
a second and SQLAlchemy a fifth of one on a small machine, so the head is read from the migration files'
``revision``/``down_revision`` lines here, by both the full open (``app.database.cheap_status``) and the
read-only open of the commands that only read (``app.instance_read``). Anything this scan cannot read with
certainty (a merge, a file written otherwise) gives ``None``, and the callers ask Alembic.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["MIGRATIONS", "scanned_head"]

MIGRATIONS = Path(__file__).with_name("migrations")

_REVISION_LINE = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(.+)$", re.MULTILINE)
_QUOTED = re.compile(r"[\"']([^\"']+)[\"']")


def scanned_head() -> str | None:
    """This code's head revision read from the migration files' ``revision``/``down_revision`` lines, or
    ``None`` when they do not name exactly one head (a merge, a file written otherwise: ask Alembic)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        found = {key: value for key, value in _REVISION_LINE.findall(path.read_text(encoding="utf-8"))}
        own = _QUOTED.findall(found.get("revision", ""))
        if len(own) != 1 or "down_revision" not in found:
            return None
        revisions.add(own[0])
        parents.update(_QUOTED.findall(found["down_revision"]))
    heads = revisions - parents
    return next(iter(heads)) if len(heads) == 1 and parents <= revisions else None
