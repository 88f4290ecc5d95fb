"""The registry's answers a read-only command needs, read without its ORM (issue 21).

``keyong job show`` and ``keyong job list`` state why a job's outputs are held: its operator is suspended
(双鸭山 第三十一条) or the platform is frozen (第六十一条). The rules themselves stay where they are
(:func:`registry.suspended_operators`, :func:`registry.frozen_state`); these functions ask the same two
questions of the same tables with plain SQL, so a command that only reads imports neither SQLAlchemy's
ORM nor the registry's models, builds no ``Registry`` and sweeps nothing (a fifth of a second and more
of a command that should start in a blink). ``tests/test_cli_start.py`` holds them to the ORM's answers.

``keyong product list`` and ``keyong product show`` read the registered products the same way
(:func:`read_products`, :func:`read_product`): the host's view (the local CLI is the host
administrator's tool, which sees every product), as the document ``ProductView.as_json`` gives, with its
lineage and attribution (双鸭山 第五十条, 第四十一条). ``tests/test_read_commands.py`` holds the two to the
same bytes. An operator's view, which hides other operators' products, stays the ORM's (API, console).

The caller gives a :data:`Rows` function: SQL with ``:name`` parameters in, rows as mappings out, on a
connection that cannot write (``app.instance_read``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from core import NotFoundError
from ledger import strict_json
from registry.vocabulary import Qualification

__all__ = ["Rows", "is_frozen", "read_product", "read_products", "suspended_operator_names"]

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


#: ``registry.models.ProductRow``: its table and the columns a product's document shows.
PRODUCTS_TABLE = "products"
#: A LEFT JOIN: a product whose operator row is gone (an edited database) must not drop out of the list
#: silently; its missing operator is refused by name (red team 21d).
_PRODUCT_SELECT = (
    "SELECT p.id, p.name, o.name AS operator, p.licence_id, p.job, p.scenario, p.lineage, p.fee_class, "
    "p.price_cents, p.artifacts, p.attribution, p.state, p.registered_by, p.registered_at "
    f"FROM {PRODUCTS_TABLE} p LEFT JOIN {OPERATORS_TABLE} o ON o.id = p.operator_id"
)


def read_products(rows: Rows) -> list[dict[str, Any]]:
    """Every product in registration order, as ``Products.list(viewer=Actor.host())`` documents them."""
    return [_product_document(row) for row in rows(f"{_PRODUCT_SELECT} ORDER BY p.id", {})]


def read_product(rows: Rows, name: str) -> dict[str, Any]:
    """Product ``name`` as ``Products.get(name, viewer=Actor.host())`` documents it, or its ``NotFoundError``."""
    found = rows(f"{_PRODUCT_SELECT} WHERE p.name = :name", {"name": name})
    if not found:
        raise NotFoundError(f"no product named {name!r}")
    return _product_document(found[0])


def _product_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """``registry.product_views.product_view(row).as_json()``, field for field and in its order.

    Every value is checked for the type ``ProductView`` declares (red team 21d): an edited database (a
    lineage that is a list, ``NaN`` in a JSON column, non-UTF-8 text, a number where a name belongs) is a
    ``ValueError`` naming the product and the field, which the command words as a refusal, never a
    traceback nor a document the ORM would not have given (``NaN`` is not JSON).
    """
    where = f"product {row['name']!r}" if isinstance(row["name"], str) else f"product #{row['id']!r}"
    lineage = _typed(_json_column(row, "lineage") or {}, dict, where, "lineage")
    return {
        "id": _typed(row["id"], int, where, "id"),
        "name": _typed(row["name"], str, where, "name"),
        "operator": _typed(row["operator"], str, where, "operator"),
        "licence_id": _typed(row["licence_id"], int, where, "licence_id"),
        "job": _typed(row["job"], str, where, "job"),
        "scenario": _typed(row["scenario"], str, where, "scenario"),
        "datasets": _records(lineage.get("datasets", []), where, "lineage datasets"),
        "code_sha256": str(_typed(lineage.get("code_sha256", ""), str, where, "lineage code_sha256")),
        "guard": dict(_typed(lineage.get("guard", {}), dict, where, "lineage guard")),
        "reviews": _records(lineage.get("reviews", []), where, "lineage reviews"),
        "dissent": _records(lineage.get("dissent", []), where, "lineage dissent"),
        "fee_class": _typed(row["fee_class"], str, where, "fee_class"),
        "price_cents": None if row["price_cents"] is None else _typed(row["price_cents"], int, where, "price_cents"),
        "artifacts": _records(_json_column(row, "artifacts") or [], where, "artifacts"),
        "attribution": dict(_typed(_json_column(row, "attribution") or {}, dict, where, "attribution")),
        "state": _typed(row["state"], str, where, "state"),
        "registered_by": _typed(row["registered_by"], str, where, "registered_by"),
        "registered_at": _json_time(_typed(row["registered_at"], (str, datetime), where, "registered_at")),
    }


def _typed(value: Any, kind: type | tuple[type, ...], where: str, field: str) -> Any:
    """``value`` when it is of ``kind`` (a bool is no number), else the ``ValueError`` that names the field."""
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    if isinstance(value, bytes):
        raise ValueError(f"{where}: the stored {field} is not UTF-8 text")
    raise ValueError(f"{where}: the stored {field} is a {type(value).__name__}, not what a product holds")


def _records(value: Any, where: str, field: str) -> list[dict[str, Any]]:
    """A list of JSON objects (``ProductView``'s ``list[dict]``), checked item by item."""
    return [dict(_typed(item, dict, where, f"{field} item")) for item in _typed(value, list, where, field)]


def _json_column(row: Mapping[str, Any], name: str) -> Any:
    """A JSON column's document: SQLite keeps its text, PostgreSQL hands it over decoded.

    Stored text that is not UTF-8 (the read-only reader gives it as bytes) raises ``ValueError`` naming the
    product and the column: someone edited the database, and nothing is shown in its place. So do ``NaN``
    and infinities (not JSON: the command's output would not parse) and nesting too deep to read.
    """
    value = row[name]
    if isinstance(value, bytes):
        raise ValueError(f"product {row['name']!r}: the stored {name} is not UTF-8 text")
    try:
        document = strict_json(value)
    except RecursionError:
        raise ValueError(f"product {row['name']!r}: the stored {name} is nested too deep to read") from None
    except ValueError as exc:
        raise ValueError(f"product {row['name']!r}: the stored {name} is not a product's JSON: {exc}") from None
    return document


def _json_time(value: datetime | str) -> str:
    """A stored timestamp as pydantic writes an aware UTC ``datetime`` in JSON (``…T…[.ffffff]Z``).

    SQLite keeps naive UTC text (``core.UTCDateTime`` makes it aware on the way out), PostgreSQL an aware
    ``datetime``."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat().removesuffix("+00:00") + "Z"
