"""OpenAPI examples of the response documents whose models live elsewhere (the domain's views, the
routers' small models), added to the schema's components by :func:`add_examples`.

The domain packages' pydantic views (``registry.LicenceView``…) stay free of HTTP documentation; the API
gives them their examples here, in one place. A component that already has examples keeps its own.
"""

from typing import Any

from pydantic import BaseModel

from app.api.schemas.catalog import CatalogRequestOut, DatasetOut


def _example_of(model: Any) -> dict[str, Any]:
    return dict(model.model_config["json_schema_extra"]["examples"][0])


_T = "2026-12-01T09:00:00Z"
_H = "5d41" + "0" * 60
_KEY = "ky_0123456789abcdef_" + "x" * 43

_FINDING = {
    "rule": "sdc.min_cell_count",
    "severity": "soft",
    "file": "result.csv",
    "location": "",
    "detail": "cells below the minimum count",
}
_DATASET = {"name": "traffic", "epsilon_budget": 3.0, "epsilon_spent": 0.5}
BUDGET_EXAMPLE = {
    "licence": 1,
    "operator": "demo-operator",
    "dataset": "traffic",
    "licence_state": "active",
    "epsilon_budget": 3.0,
    "epsilon_spent": 0.5,
    "epsilon_remaining": 2.5,
    "delta_budget": 1e-05,
    "delta_spent": 0.0,
    "delta_remaining": 1e-05,
}
_KEY_ROW = {"key_id": "0123456789abcdef", "created_at": _T, "last_used_at": None, "revoked_at": None, "live": True}
_VERSION = {
    "dataset": "traffic",
    "version": 2,
    "kind": "desensitized",
    "rows": 1000,
    "columns": [],
    "content_sha256": _H,
    "parent": 1,
    "created_by": "demo-custodian",
    "created_at": _T,
}
_LICENCE = {
    "id": 1,
    "operator": "demo-operator",
    "mode": "依场景授权",
    "domains": [],
    "scenarios": ["交通出行"],
    "datasets": [_DATASET],
    "valid_from": "2026-12-01",
    "valid_until": "2027-12-31",
    "fee_class": "公益",
    "price_cents": None,
    "state": "active",
    "publicity_ends_at": None,
    "events": [
        {"from_state": "draft", "to_state": "active", "by": "demo-agency", "reason": "授权运营协议 granted", "at": _T}
    ],
}
_PRODUCT = {
    "name": "traffic-flow-2026",
    "operator": "demo-operator",
    "licence_id": 1,
    "job": "42",
    "scenario": "交通出行",
    "datasets": [{"name": "traffic", "version": 2}],
    "code_sha256": _H,
    "guard": {"verdict": "pass"},
    "reviews": [{"reviewer": "reviewer-1", "decision": "approve"}],
    "fee_class": "公益",
    "price_cents": None,
    "artifacts": [{"name": "result.csv", "bytes": 120, "sha256": _H}],
    "attribution": {"数据来源": "市交通运输局", "获取日期": "2026-11-30"},
    "state": "available",
    "registered_at": _T,
}
_RELEASE = {
    "release": 3,
    "job": 42,
    "operator": "demo-operator",
    "licence": 1,
    "product": "traffic-flow-2026",
    "fee_class": "公益",
    "state": "under_review",
    "round": 1,
    "required_reviews": 2,
    "votes_needed": 1,
    "verdict": "review",
    "findings": [_FINDING],
    "justifications": {"0": "区县级汇总"},
    "outputs": [{"name": "result.csv", "bytes": 120, "sha256": _H}],
    "votes": [],
    "votes_cast": 1,
    "reason": None,
    "product_id": None,
    "signoff_required": ["traffic"],
    "delegated": {"population": 4},
    "signoffs": [],
    "signoffs_pending": ["traffic"],
    "created_at": _T,
    "updated_at": _T,
    "decided_at": None,
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "TokenResponse": {
        "access_token": "eyJhbGciOiJFZERTQSJ9.…",
        "token_type": "bearer",
        "expires_at": _T,
        "role": "operator",
        "sub": "demo-operator",
    },
    "PrincipalOut": {"name": "demo-operator", "role": "operator"},
    "PrincipalListItem": {
        "name": "acme-ops",
        "role": "operator",
        "active": True,
        "created_at": _T,
        "org": "acme-ops",
        "keys": [_KEY_ROW],
        "second_factor": "confirmed",
    },
    "RecoveryIn": {"reason": "核实本人身份后确认 identity verified in person"},
    "RecoveryOut": {
        "name": "reviewer-2",
        "role": "agency",
        "active": True,
        "created_at": _T,
        "org": None,
        "keys": [_KEY_ROW],
        "second_factor": "confirmed",
        "recovery_hold": [],
        "confirmed": ["unconfirmed"],
        "confirmed_by": "demo-agency",
    },
    "TotpEnrolmentOut": {
        "principal": "acme-ops",
        "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
        "uri": "otpauth://totp/Keyong:acme-ops?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&algorithm=SHA1&digits=6"
        "&period=30&issuer=Keyong",
        "confirmed": False,
    },
    "TotpConfirmedOut": {"principal": "acme-ops", "confirmed": True},
    "NewKeyOut": {
        "principal": "acme-ops",
        "role": "operator",
        "key_id": "0123456789abcdef",
        "api_key": _KEY,
        "replaced": None,
    },
    "RevokedKeyOut": {**_KEY_ROW, "revoked_at": _T, "live": False, "principal": "acme-ops"},
    "LogoutOut": {"revoked": True},
    "EntriesPage": {
        "entries": [
            {
                "seq": 7,
                "time": _T,
                "actor": "demo-agency",
                "role": "agency",
                "action": "licence.granted",
                "subject": "licence:1",
                "payload": {},
                "prev_hash": _H,
                "hash": _H,
            }
        ],
        "next_after": None,
    },
    "CheckpointOut": {
        "tree_size": 120,
        "root": _H,
        "time": _T,
        "signature": "ab" * 64,
        "public_key": "cd" * 32,
        "note": "keyong.example/log\n120\n…\n",
        "vkey": "keyong.example/log+…",
    },
    "VersionOut": _VERSION,
    "DatasetChangedOut": {"applied": True, "dataset": _example_of(DatasetOut)},
    "DatasetChangePendingOut": {"applied": False, "request": _example_of(CatalogRequestOut)},
    "OperatorView": {
        "name": "demo-operator",
        "uscc": "91230500MA0000001D",
        "qualification": "qualified",
        "suspended_reason": "",
        "created_at": _T,
    },
    "LicenceView": _LICENCE,
    "FindingView": {
        "id": 5,
        "kind": "out_of_purpose",
        "operator": "demo-operator",
        "licence_id": 1,
        "resource_id": 1,
        "detail": "scenario 金融风控 is not licensed",
        "state": "open",
        "raised_at": _T,
        "resolved_by": None,
        "resolved_at": None,
        "resolution": "",
    },
    "ObjectionView": {
        "id": 2,
        "target_kind": "product",
        "target": "traffic-flow-2026",
        "target_id": 1,
        "filed_by": "demo-custodian",
        "filed_role": "custodian",
        "reason": "含可识别组合",
        "state": "open",
        "outcome": None,
        "resolution": "",
        "resolved_by": None,
        "filed_at": _T,
        "resolved_at": None,
    },
    "ProductOut": _PRODUCT,
    "UsageOut": {"summary": {"jobs": 12, "operators": 1}, "records": [{"job": 42, "operator": "demo-operator"}]},
    "JobQueued": {"job": 42, "state": "queued"},
    "MitigationQueued": {"job": 43, "state": "queued", "source_job": 42},
    "BudgetOut": BUDGET_EXAMPLE,
    "BudgetsOut": {"operator": "demo-operator", "budgets": [BUDGET_EXAMPLE]},
    "ReleaseOut": _RELEASE,
    "EgressOut": {
        "dataset": "traffic",
        "mode": "delegated",
        "organisation": ["双鸭山市交通运输局", "11230500MB1234567X"],
        "delegation": {
            "id": 4,
            "org": "双鸭山市交通运输局",
            "reason": "汇总统计类产品委托实施机构审核",
            "expires_at": "2027-06-30T23:59:59.999999+00:00",
            "granted_by": "traffic-custodian",
            "granted_at": _T,
            "withdrawn_by": None,
            "withdrawn_at": None,
            "withdraw_reason": None,
            "live": True,
        },
        "history": [],
    },
}


def _models_with_examples() -> dict[str, list[Any]]:
    """Every loaded pydantic model that declares examples, by class name (several may share a name)."""
    found: dict[str, list[Any]] = {}
    stack: list[type[BaseModel]] = [BaseModel]
    while stack:
        model = stack.pop()
        stack.extend(model.__subclasses__())
        extra = model.model_config.get("json_schema_extra")
        if isinstance(extra, dict) and extra.get("examples"):
            found.setdefault(model.__name__, []).append(extra["examples"])
    return found


def add_examples(schema: dict[str, Any]) -> None:
    """Examples of the schema's components, in place, as they are written.

    FastAPI writes the schema with ``exclude_none``, which strips every ``null`` from the examples too,
    so an example of a document whose field may be null loses the field and no longer fits its own
    schema. The models' examples are put back as written (where one model alone bears the component's
    name), and components named in :data:`EXAMPLES` that have none get theirs.
    """
    components = schema.get("components", {}).get("schemas", {})
    for name, examples in _models_with_examples().items():
        if name in components and len(examples) == 1:
            components[name]["examples"] = list(examples[0])
    for name, example in EXAMPLES.items():
        component = components.get(name)
        if component is not None and not component.get("examples"):
            component["examples"] = [example]


__all__ = ["EXAMPLES", "add_examples"]
