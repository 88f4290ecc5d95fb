"""A registered product as its readers see it, and the block embedded in what is delivered.

Views carry no rows: the API and the console serialise them as they are. ``artifacts[].path`` is
relative to the instance home; an operator never sees another operator's products.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from registry.models import ProductRow


class ProductView(BaseModel):
    """A registered product as its readers see it; ``artifacts[].path`` is relative to the home."""

    id: int
    name: str
    operator: str
    licence_id: int
    job: str
    scenario: str
    datasets: list[dict[str, Any]]  # [{"name", "version", "kind", "content_sha256", "created_at"}]
    code_sha256: str
    guard: dict[str, Any]  # {"verdict", "findings"}
    reviews: list[dict[str, Any]]  # [{"reviewer", "decision", "reason"}]
    #: Reviewers outvoted by a further reviewer (reject / changes requested): kept so the lineage shows them.
    dissent: list[dict[str, Any]] = []
    fee_class: str
    price_cents: int | None
    artifacts: list[dict[str, Any]]  # [{"name", "bytes", "sha256", "path"}]
    attribution: dict[str, Any]
    state: str
    registered_by: str
    registered_at: datetime

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def product_view(row: ProductRow) -> ProductView:
    lineage = row.lineage or {}
    return ProductView(
        id=row.id,
        name=row.name,
        operator=row.operator.name,
        licence_id=row.licence_id,
        job=row.job,
        scenario=row.scenario,
        datasets=list(lineage.get("datasets", [])),
        code_sha256=str(lineage.get("code_sha256", "")),
        guard=dict(lineage.get("guard", {})),
        reviews=list(lineage.get("reviews", [])),
        dissent=list(lineage.get("dissent", [])),
        fee_class=row.fee_class,
        price_cents=row.price_cents,
        artifacts=list(row.artifacts or []),
        attribution=dict(row.attribution or {}),
        state=row.state,
        registered_by=row.registered_by,
        registered_at=row.registered_at,
    )


def attribution_metadata(product: ProductView) -> dict[str, Any]:
    """The block embedded in each delivered artifact: the attribution plus which product it is."""
    return {
        "product": product.name,
        "operator": product.operator,
        "licence_id": product.licence_id,
        "registered_at": product.registered_at.isoformat(),
        **product.attribution,
    }


__all__ = ["ProductView", "attribution_metadata", "product_view"]
