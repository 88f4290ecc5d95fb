"""``POST /datasets/{name}/desensitize`` and ``GET /datasets/{name}/desensitization``.

The custodian makes the desensitized copy over HTTP as ``keyong dataset desensitize`` does (a custom
policy file stays a host-side option: it is the custodian's configuration, kept in the instance
home). ``not_quasi_identifiers`` (column -> reason) are the custodian's rulings against default
quasi-identifiers (``desensitize.quasi``), as ``--not-quasi COL --reason TEXT``. The report — per column type,
confidence and technique, k achieved, rows suppressed — is what
the custodian signs off and what agencies and regulators inspect; operators never see it (it names
the raw columns' types and the fingerprint location) and get 403.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from app.api.limits import Name, Text
from app.api.schemas import DesensitizedOut, VersionOut
from core import actor_of
from registry import Registry


def build_router(registry: Registry, require: Callable[..., Callable[..., Any]]) -> APIRouter:
    """Routes; ``require(*roles)`` gives a dependency returning the acting principal (name, role)."""
    router = APIRouter(tags=["datasets"])
    custodian = require("custodian")
    readers = require("custodian", "agency", "regulator")
    home = registry.config.home

    @router.post("/datasets/{name}/desensitize", status_code=201, response_model=DesensitizedOut)
    def desensitize(
        name: Name,
        principal: Annotated[Any, Depends(custodian)],
        sensitive: Annotated[
            Name | None,
            Body(embed=True, description="column whose l-diversity the report gives", examples=["诊断"]),
        ] = None,
        keep_columns: Annotated[
            dict[Name, Text] | None,
            Body(
                embed=True,
                description="near-unique columns kept as they are instead of pseudonymized: column -> reason "
                "(required, ledgered)",
                examples=[{"企业代码": "the register of enterprises is public and the analysis joins on it"}],
            ),
        ] = None,
        not_quasi_identifiers: Annotated[
            dict[Name, Text] | None,
            Body(
                embed=True,
                description="columns of a personal table ruled not quasi-identifiers although the defaults make "
                "them one (dates, employers, places, high-cardinality columns; issue 23): column -> reason "
                "(required, ledgered)",
                examples=[{"参保日期": "the enrolment date is published for every insured person by law"}],
            ),
        ] = None,
    ) -> dict[str, Any]:
        """Desensitize the newest raw version of ``name`` into a new desensitized version."""
        result = registry.copies.make(
            name,
            by=actor_of(principal),
            sensitive_column=sensitive,
            keep_columns=keep_columns,
            not_quasi=not_quasi_identifiers,
        )
        data = result.as_json()
        data["copy"] = str(result.copy.relative_to(home))
        data["fingerprints"] = str(result.fingerprints.relative_to(home))
        return data

    @router.get("/datasets/{name}/desensitization", response_model=VersionOut)
    def desensitization(name: Name, principal: Annotated[Any, Depends(readers)]) -> dict[str, Any]:
        """The newest desensitized version of ``name`` with its report."""
        return registry.copies.newest(name).as_json()

    return router
