"""Reports that follow issue 16's shared report contract (BRIEF_COMMON, "Shared report contract"), and a
dataset whose newest desensitized version carries one, for the display tests of the CLI, API and console.

The numbers are chosen to be recognisable in rendered output: ``RAW_ANSWER`` is a raw aggregate the
workload computed on the raw table; it may appear on the custodian's page and never on an operator's.
"""

from __future__ import annotations

import copy
from typing import Any

from core import Actor
from registry import Registry
from registry.models import VersionRow
from tests.test_registry_licences import add_dataset

RAW_ANSWER = 7391.25
KEPT_REASON = "公开订单登记 public order register"


def _figures(k: int | None, highest: float, average: float, above: float, uniques: int, note: Any = None) -> Any:
    model = {"highest": highest, "average": average, "records_above_threshold": above}
    return {
        "records": 1000, "classes": 1000 // (k or 1), "k": k, "l": None if k is None else 2, "note": note,
        "prosecutor": dict(model), "journalist": dict(model), "marketer": average,
        "sample_uniques": uniques, "sample_uniques_share": uniques / 1000,
    }  # fmt: skip


REPORT: dict[str, Any] = {
    "rows_in": 1000,
    "rows_out": 990,
    "rows_suppressed": 10,
    "policy": {"level": "L3", "k": 5, "max_suppression": 0.05},
    "k_anonymity": {"k_achieved": 5, "k_target": 5, "quasi_identifiers": ["性别", "出生日期", "区县"]},
    "columns": [
        {"name": "月收入", "type": "income", "action": "generalize_numeric",
         "representation": {"kind": "midpoint", "unit": None, "width": 1000.0, "bottom_coded_below": 1000.0,
                            "top_coded_at": 20000.0, "label_column": None}},
        {"name": "出生日期", "type": "birth_date", "action": "generalize_date", "representation": {"kind": "year"}},
        {"name": "统一社会信用代码", "type": None, "action": "pseudonymize",
         "near_unique": {"share": 0.93, "threshold": 0.5, "action": "pseudonymize", "reason": None}},
        {"name": "订单号", "type": None, "action": "keep",
         "near_unique": {"share": 0.8, "threshold": 0.5, "action": "kept", "reason": KEPT_REASON}},
        {"name": "区县", "type": None, "action": "keep"},
    ],
    "risk": {
        "quasi_identifiers": ["性别", "出生日期", "区县"],
        "threshold": {"prosecutor_highest": 0.2},
        "before": _figures(1, 1.0, 0.875, 0.8125, 812),
        "after": _figures(5, 0.2, 0.0625, 0.0, 0),
        "met": True,
        "steps": ["出生日期: month -> year"],
    },
    "utility": {
        "columns": [{"name": "月收入", "generalization_height": 1, "max_height": 4, "suppressed_share": 0.01,
                     "non_uniform_entropy": 0.125}],
        "workload": [{"query": "mean(月收入) by 区县", "raw": RAW_ANSWER, "copy": 7400.0,
                      "relative_error": 0.0011838}],
        "summary": {"queries": 12, "median_relative_error": 0.004, "max_relative_error": 0.0625},
    },
}  # fmt: skip


def report(**changes: Any) -> dict[str, Any]:
    """A deep copy of :data:`REPORT` with top-level keys replaced (``None`` removes a key)."""
    made = copy.deepcopy(REPORT)
    for key, value in changes.items():
        if value is None:
            made.pop(key, None)
        else:
            made[key] = value
    return made


def no_qi_report() -> dict[str, Any]:
    """A table without quasi-identifiers: k and l are n/a, stated as such (issue 16)."""
    note = "n/a, no quasi-identifiers"
    nothing = _figures(None, 0.0, 0.0, 0.0, 0, note)
    risk = {"quasi_identifiers": [], "threshold": {"prosecutor_highest": 0.2}, "met": True, "steps": [],
            "before": nothing, "after": copy.deepcopy(nothing)}  # fmt: skip
    return report(risk=risk, k_anonymity={"k_achieved": None, "k_target": 5, "note": note})


def add_copy(registry: Registry, name: str, stored: dict[str, Any] | None, *, level: str = "L3") -> None:
    """A published entry whose only version is a desensitized one carrying ``stored`` as its report."""
    resource_id = add_dataset(registry, name, level=level, desensitized=False)
    with registry.recorder.change(Actor.host()) as change:
        change.session.add(
            VersionRow(
                resource_id=resource_id, version=2, kind="desensitized", rows=990,
                columns=[{"name": c["name"], "type": "string"} for c in REPORT["columns"]],
                content_sha256="0" * 64, path=f"copies/{name}/v2.parquet", report=stored, created_by="test",
            )
        )  # fmt: skip
