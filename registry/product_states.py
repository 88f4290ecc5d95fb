"""A product's delivery state, changed by the agency or by an objection (双鸭山 第四十条).

An open objection suspends delivery at once (立即中止); :func:`suspend_product`, :func:`restore_product`
and :func:`withdraw_product` act inside the caller's change, so the product's state and the
objection's record are ledgered together.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import Change, NotFoundError, RegistryError, text_sha256
from registry.models import ObjectionRow, ProductRow
from registry.vocabulary import ObjectionState, ProductState

#: The one rule for a product's name, asked by the registry, the release workflow and the API (issue 17):
#: it names the product store's directory (``products/<name>/``), so no separator, no leading dot.
PRODUCT_NAME_PATTERN = r"^[A-Za-z0-9\u4e00-\u9fff][A-Za-z0-9_.\-\u4e00-\u9fff]{0,127}$"
PRODUCT_NAME_RULE = "1-128 letters, digits, CJK characters, '.', '_' or '-', starting with a letter, digit or CJK"
_PRODUCT_NAME = re.compile(PRODUCT_NAME_PATTERN)


def check_product_name(name: str) -> str:
    """``name`` stripped, if it may name a product; refused (:class:`RegistryError`) otherwise."""
    name = (name or "").strip()
    if not _PRODUCT_NAME.fullmatch(name):
        raise RegistryError(f"product name {name!r} must be {PRODUCT_NAME_RULE}")
    return name


def product_row(session: Session, name: str) -> ProductRow:
    row = session.scalar(select(ProductRow).where(ProductRow.name == name))
    if row is None:
        raise NotFoundError(f"no product named {name!r}")
    return row


def open_objections_on(session: Session, product_id: int, *, excluding: int | None = None) -> list[int]:
    """Ids of the objections still open against a product (any one of them keeps delivery stopped)."""
    query = select(ObjectionRow.id).where(
        ObjectionRow.target_kind == "product",
        ObjectionRow.target_id == product_id,
        ObjectionRow.state == ObjectionState.OPEN,
    )
    if excluding is not None:
        query = query.where(ObjectionRow.id != excluding)
    return list(session.scalars(query.order_by(ObjectionRow.id)))


def _transition(
    change: Change, row: ProductRow, to: ProductState, action: str, *, reason: str, objection: int | None
) -> None:
    """Move the product and ledger it; the reason travels as its hash, the objection by id."""
    payload: dict[str, Any] = {
        "product_id": row.id,
        "from": row.state,
        "to": str(to),
        "reason_sha256": text_sha256(reason),
    }
    if objection is not None:
        payload["objection"] = objection
    row.state = to
    change.log(action, f"product:{row.name}", payload)


def suspend_product(change: Change, row: ProductRow, *, reason: str, objection: int | None = None) -> bool:
    """Stop delivery at once (第四十条: 立即中止). Returns whether the state changed (ledgered then)."""
    if row.state != ProductState.AVAILABLE:
        return False
    _transition(change, row, ProductState.SUSPENDED, "product.suspended", reason=reason, objection=objection)
    return True


def restore_product(change: Change, row: ProductRow, *, reason: str, objection: int | None = None) -> bool:
    """Deliver again, unless it was withdrawn or another objection on it is still open."""
    if row.state != ProductState.SUSPENDED:
        return False
    if open_objections_on(change.session, row.id, excluding=objection):
        return False
    _transition(change, row, ProductState.AVAILABLE, "product.restored", reason=reason, objection=objection)
    return True


def withdraw_product(change: Change, row: ProductRow, *, reason: str, objection: int | None = None) -> bool:
    """Withdraw for good (第四十条: 撤回): no later restoration delivers it again."""
    if row.state == ProductState.WITHDRAWN:
        return False
    _transition(change, row, ProductState.WITHDRAWN, "product.withdrawn", reason=reason, objection=objection)
    return True


def product_name_taken(session: Session, name: str) -> bool:
    """Whether a product is already registered under ``name`` (names are unique, and never reused)."""
    return session.scalar(select(ProductRow.id).where(ProductRow.name == name)) is not None


__all__ = [
    "PRODUCT_NAME_PATTERN",
    "PRODUCT_NAME_RULE",
    "check_product_name",
    "open_objections_on",
    "product_name_taken",
    "product_row",
    "restore_product",
    "suspend_product",
    "withdraw_product",
]
