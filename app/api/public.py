"""The public register over HTTP, without authentication (SATRE 1.7.02*: publish the TRE's operations,
the data available and the projects that used it).

``GET /api/public`` answers the whole register; ``/api/public/{catalog,licences,products,usage,operations}``
its parts. The HTML page ``/public`` (``app.console.public_page``) renders the same document. What is in
it is decided in ``registry.public`` (published entries, licences in 公示 or active, available products,
counts; never a person, a path or the data). These routes take no query parameters: any is refused
with 400 (fail closed: a filter nobody wrote cannot widen what is shown). They read only, so a frozen
platform (an incident, ``keyong freeze``) still serves them: the public may see that it is frozen.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status

from app.api.schemas import RefusalOut
from app.api.schemas.public import (
    PublicDatasetOut,
    PublicLicenceOut,
    PublicOperationsOut,
    PublicProductOut,
    PublicRegisterOut,
    PublicUsageOut,
)
from ledger import Ledger
from registry import Registry

PREFIX = "/api/public"
WHAT = (
    "Keyong (可用) 是公共数据资源授权运营平台:原始数据不出域,数据可用不可见。数据主管部门登记并分级公共数据,"
    "实施机构经公示授权运营机构,运营机构只能在隔离沙箱中对脱敏副本运行分析作业,输出经出域审查和实施机构审核后"
    "登记为数据产品;每一步都记入哈希链账本,监管部门独立核验。 "
    "Keyong is an authorized-operations platform for public data: raw data never leaves; operating companies "
    "licensed after public notice (公示) run analyses in an isolated sandbox over desensitized copies only; "
    "outputs leave only after an export check and the agency's review, as registered products; every step is "
    "recorded in a hash-chained ledger that regulators verify independently."
)
OBJECTIONS = {
    "rule": "双鸭山市公共数据管理暂行办法 第四十八条 (公示); 第四十条 (异议)",
    "how": (
        "公示期内,对列出的授权可提出异议:持平台账户者调用 POST /objections(target_kind 为 licence,target 为授权编号),"
        "其他人请向实施机构书面提出,注明授权编号和理由;公示期内有未解决的异议,授权不会生效。 "
        "During a licence's publicity period anyone may object: account holders call POST /objections with "
        "target_kind licence and the licence number; others write to the implementing agency with the licence "
        "number and their reasons. A licence with an open objection does not become active."
    ),
    "route": "POST /objections",
    "body_example": {"target_kind": "licence", "target": "<licence number>", "reason": "…"},
}


def no_query(request: Request) -> None:
    """Refuse any query parameter: the public register has no filters, and an unknown one is an error."""
    if request.query_params:
        names = ", ".join(sorted({k[:40] for k in request.query_params}))[:200]
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=f"this page takes no query parameters (got: {names})")


def operations(registry: Registry, ledger: Ledger, version: str) -> dict[str, Any]:
    """What the service is, how to object, whether it is frozen, and the latest signed checkpoint."""
    checkpoint = ledger.latest_checkpoint()
    return {
        "service": "Keyong (可用)",
        "version": version,
        "what": WHAT,
        "frozen": registry.freeze.state().frozen,
        "objections": OBJECTIONS,
        "checkpoint": None
        if checkpoint is None
        else {
            "tree_size": checkpoint.tree_size,
            "root": checkpoint.root,
            "time": checkpoint.time,
            "public_key": checkpoint.public_key,
            "signature": checkpoint.signature,
        },
        "as_of": datetime.now(UTC).isoformat(),
    }


def register_document(registry: Registry, ledger: Ledger, version: str) -> dict[str, Any]:
    """The whole public register: operations, catalog, licences, products and usage counts."""
    public = registry.public
    return {
        "operations": operations(registry, ledger, version),
        "catalog": public.catalog(),
        "licences": public.licences(),
        "products": public.products(),
        "usage": public.usage(),
    }


def build_router(registry: Registry, ledger: Ledger, version: str) -> APIRouter:
    """``/api/public``: read-only, no authentication, no query parameters."""
    router = APIRouter(
        prefix=PREFIX,
        tags=["public"],
        dependencies=[Depends(no_query)],
        responses={400: {"model": RefusalOut, "description": "A query parameter was given: these routes take none."}},
    )
    public = registry.public

    @router.get("", response_model=PublicRegisterOut)
    def whole_register() -> dict[str, Any]:
        """The public register (SATRE 1.7.02*): the service's operations, the published catalog, licences in
        公示 and active, available products and per-dataset usage counts. No authentication; no person named."""
        return register_document(registry, ledger, version)

    @router.get("/catalog", response_model=list[PublicDatasetOut])
    def catalog() -> list[dict[str, Any]]:
        """Published catalog entries (资源目录): names, descriptions, level, providing organisation."""
        return public.catalog()

    @router.get("/licences", response_model=list[PublicLicenceOut])
    def licences() -> list[dict[str, Any]]:
        """Licences in 公示 (双鸭山 第四十八条: objections may be filed) and active ones within their period."""
        return public.licences()

    @router.get("/products", response_model=list[PublicProductOut])
    def products() -> list[dict[str, Any]]:
        """Available released products: operator, datasets used, release date; never their content."""
        return public.products()

    @router.get("/usage", response_model=list[PublicUsageOut])
    def usage() -> list[dict[str, Any]]:
        """Per published dataset: licences granted and active, jobs admitted, products available (counts)."""
        return public.usage()

    @router.get("/operations", response_model=PublicOperationsOut)
    def service_operations() -> dict[str, Any]:
        """What the service is, how to object to a licence in 公示, whether it is frozen, the latest checkpoint."""
        return operations(registry, ledger, version)

    return router


__all__ = ["OBJECTIONS", "PREFIX", "WHAT", "build_router", "no_query", "operations", "register_document"]
