"""The registry's answers a read-only command needs, read without its ORM (issue 21).

``keyong job show`` and ``keyong job list`` state why a job's outputs are held: its operator is suspended
(双鸭山 第三十一条) or the platform is frozen (第六十一条). The rules themselves stay where they are
(:func:`registry.suspended_operators`, :func:`registry.frozen_state`); these functions ask the same two
questions of the same tables with plain SQL, so a command that only reads imports neither SQLAlchemy's
ORM nor the registry's models, builds no ``Registry`` and sweeps nothing (a fifth of a second and more
of a command that should start in a blink). ``tests/test_cli_start.py`` holds them to the ORM's answers.

The caller gives a :data:`Rows` function: SQL with ``:name`` parameters in, rows as mappings out, on a
connection that cannot write (``app.instance_read``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from registry.vocabulary import Qualification

__all__ = ["Rows", "is_frozen", "suspended_operator_names"]

#: Runs one query (``:name`` parameters) on a read-only connection and returns its rows as mappings.
Rows = Callable[[str, Mapping[str, Any]], Sequence[Mapping[str, Any]]]

#: ``registry.models.OperatorRow`` and ``registry.security_models.FreezeRow`` (one row, id 1): the tables
#: and columns these queries read, checked against the models by the tests.
OPERATORS_TABLE = "operator_orgs"
FREEZE_TABLE = "platform_freeze"
FREEZE_ROW_ID = 1


def suspended_operator_names(rows: Rows) -> list[str]:
    """Names of the operators whose access is closed now, as :func:`registry.suspended_operators` gives them."""
    found = rows(
        f"SELECT name FROM {OPERATORS_TABLE} WHERE qualification != :qualified ORDER BY name",
        {"qualified": Qualification.QUALIFIED.value},
    )
    return [str(row["name"]) for row in found]


def is_frozen(rows: Rows) -> bool:
    """Whether the platform is frozen, as ``registry.frozen_state(session).frozen`` says (no row: not)."""
    found = rows(f"SELECT frozen FROM {FREEZE_TABLE} WHERE id = :id", {"id": FREEZE_ROW_ID})
    return bool(found[0]["frozen"]) if found else False
