"""What the operator's job form and catalog pages know of a granted dataset: its columns as the public
catalog states them, a template per job kind, and a synthetic sample (issue 18).

Why from public facts only: the console must not become a window on the data (原始数据不出域, 数据可用
不可见; 双鸭山 第三十五条). Everything here is built from what ``GET /datasets/{name}`` already gives an
operator: each column's name, the desensitized copy's column type, the column's level, and the public
bounds and domains its custodian declared (the same facts the DP planner uses). The sample rows are drawn
from those facts by a seeded generator; no value of the data is read, so a sample row is never a record.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

from dp import DpKind

#: Rows in a synthetic sample.
SAMPLE_ROWS = 10

#: The dp-query spec, field by field, as the form documents it (dp.plans.DpQuerySpec is the one definition).
DP_QUERY_FIELDS: tuple[tuple[str, str], ...] = (
    ("aggregate", "count | sum | mean | variance | quantile | histogram（聚合方式 the aggregate）"),
    ("column", "被聚合的列，count 以外必填 · the column aggregated (all but count)"),
    ("bounds", "[下界, 上界]，缺省用目录的公开界 · [lo, hi]; the catalog's public bounds when left out"),
    ("group_by", "至多 4 个分组列，其取值须有公开值域 · up to 4 grouping columns with a public domain"),
    ("epsilon", "本次查询花费的 ε，从授权的隐私预算中扣除 · the ε this query spends from the licence's budget"),
    ("quantile", "0–1，仅 quantile 用 · for the quantile aggregate only"),
    ("bins", "直方图的分箱边界（严格递增），仅 histogram 用 · strictly increasing edges, histogram only"),
)
#: The dp-train spec's fields (dp.plans.DpTrainSpec).
DP_TRAIN_FIELDS: tuple[tuple[str, str], ...] = (
    ("features", "特征列（须有公开界）· feature columns (with public bounds)"),
    ("label", "标签列（须有公开值域）· the label column (with a public domain)"),
    ("model", "logistic | mlp"),
    ("epochs, batch_size", "训练轮数与批大小 · epochs and batch size"),
    ("epsilon, delta", "DP-SGD 的隐私参数 · the DP-SGD guarantee"),
    ("max_grad_norm", "梯度裁剪范数 · per-example gradient clipping norm"),
)


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a granted dataset as the public catalog states it."""

    name: str
    type: str  # the desensitized copy's column type ('' when no copy states one)
    level: str
    action: str  # how the copy holds it (keep, pseudonymize, date_year, …), '' when unknown
    bounds: tuple[float, float] | None
    domain: tuple[str, ...]


def columns_of(view: Any, facts: dict[str, Any] | None) -> list[Column]:
    """The columns of a catalog entry ``view`` (a ``ResourceView``) with its newest copy's public ``facts``.

    The column list is the desensitized copy's (what a job reads), in its order; a catalog item the
    copy dropped is left out. Without a copy, the catalog's items.
    """
    items = {item.name: item for item in view.items}
    copies = [v for v in view.versions if v.kind == "desensitized"]
    copy_columns = max(copies, key=lambda v: v.version).columns if copies else []
    actions = {c.get("name"): c.get("action") or "" for c in (facts or {}).get("columns") or []}
    names = [str(c.get("name")) for c in copy_columns] or list(items)
    types = {str(c.get("name")): str(c.get("type") or "") for c in copy_columns}
    shown: list[Column] = []
    for name in names:
        item = items.get(name)
        bounds = item.public_bounds if item is not None else None
        shown.append(
            Column(
                name=name,
                type=types.get(name, item.format if item is not None else ""),
                level=item.level.value if item is not None else "",
                action=str(actions.get(name) or ""),
                bounds=(float(bounds[0]), float(bounds[1])) if bounds and len(bounds) == 2 else None,
                domain=tuple(str(v) for v in (item.public_domain or [])) if item is not None else (),
            )
        )
    return shown


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _pick(columns: list[Column]) -> tuple[Column | None, Column | None]:
    """A grouping column (a public domain, else a kept column) and a numeric one (public bounds)."""
    grouped = next((c for c in columns if c.domain), None)
    if grouped is None:
        grouped = next((c for c in columns if c.action == "keep"), None)
    bounded = [c for c in columns if c.bounds is not None]
    # A measure (a float column) before a year or a date held as a number.
    numeric = next((c for c in bounded if any(t in c.type for t in ("double", "float", "decimal"))), None)
    return grouped, numeric or next(iter(bounded), None)


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def template(kind: str, dataset: str, columns: list[Column]) -> str:
    """The starting code of a ``kind`` job over ``dataset``, written with its real column names.

    Each template is an aggregate the export guard can judge (counts with a minimum cell size, a DP spec);
    the operator edits it. The server checks everything again on submission.
    """
    grouped, numeric = _pick(columns)
    group = grouped.name if grouped else (columns[0].name if columns else "列名")
    if kind == "sql":
        return (
            f"-- {dataset}：按 {group} 分组计数，小于 10 的单元不输出 · counts per group, cells under 10 left out\n"
            f"SELECT {_quoted(group)}, count(*) AS n\nFROM {_quoted(dataset)}\n"
            f"GROUP BY {_quoted(group)}\nHAVING count(*) >= 10\nORDER BY n DESC"
        )
    if kind == "python":
        return (
            "# 只读 /data，结果写入 /out；输出经出口审查\n"
            "# read /data, write results to /out; the export guard judges them\n"
            "import pandas as pd\n\n"
            f'df = pd.read_parquet("/data/{dataset}.parquet")\n'
            f'table = df.groupby({group!r}).size().rename("n").reset_index()\n'
            'table = table[table["n"] >= 10]  # 最小单元 · minimum cell count\n'
            'table.to_csv("/out/counts.csv", index=False)\n'
            "print(table.to_string(index=False))\n"
        )
    if kind == DpKind.QUERY.value:
        spec: dict[str, Any] = {"aggregate": "count", "epsilon": 0.5}
        if numeric is not None:
            bounds = [_number(b) for b in numeric.bounds or ()]
            spec = {"aggregate": "mean", "column": numeric.name, "bounds": bounds, "epsilon": 0.5}
        if grouped is not None and grouped.domain:
            spec["group_by"] = [grouped.name]
        return json.dumps(spec, ensure_ascii=False, indent=1)
    if kind == DpKind.TRAIN.value:
        features = [c.name for c in columns if c.bounds is not None and (grouped is None or c.name != grouped.name)]
        train = {
            "features": features[:4] or ["特征列 feature"],
            "label": grouped.name if grouped and grouped.domain else "标签列 label",
            "model": "logistic",
            "epochs": 5,
            "batch_size": 256,
            "epsilon": 1.0,
            "delta": 1e-5,
            "max_grad_norm": 1.0,
        }
        return json.dumps(train, ensure_ascii=False, indent=1)
    return ""


def _seed(dataset: str) -> int:
    return int.from_bytes(hashlib.sha256(f"keyong-synthetic:{dataset}".encode()).digest()[:8], "big")


def _value(column: Column, rng: random.Random, row: int) -> str:
    """One synthetic cell from the column's public facts: a domain value, a number within the bounds, or a
    placeholder that says what kind of value stands there."""
    if column.domain:
        return rng.choice(column.domain)
    if column.bounds is not None:
        lo, hi = column.bounds
        if float(lo).is_integer() and float(hi).is_integer():
            return str(rng.randint(int(lo), int(hi)))
        return f"{rng.uniform(lo, hi):.2f}"
    if column.action == "pseudonymize":
        return "syn_" + "".join(rng.choice("0123456789abcdef") for _ in range(12))
    if "int" in column.type or "float" in column.type or "double" in column.type:
        return str(rng.randint(0, 99))
    return f"〈{column.name}{row + 1}〉"


def synthetic_sample(dataset: str, columns: list[Column], rows: int = SAMPLE_ROWS) -> list[list[str]]:
    """``rows`` rows drawn from the columns' public facts with a generator seeded by the dataset's name
    (the same sample on every visit); never a value read from the data."""
    rng = random.Random(_seed(dataset))
    return [[_value(c, rng, i) for c in columns] for i in range(rows)]


__all__ = [
    "DP_QUERY_FIELDS",
    "DP_TRAIN_FIELDS",
    "SAMPLE_ROWS",
    "Column",
    "columns_of",
    "spec_from_plan",
    "synthetic_sample",
    "template",
]


def spec_from_plan(kind: str, code: str) -> str:
    """The operator's spec back from a DP job's stored plan (the platform replaces the spec by its plan,
    ``operators.jobs``), so a clone resubmits what the operator asked; other code as it is."""
    if kind not in (DpKind.QUERY.value, DpKind.TRAIN.value):
        return code
    try:
        plan = json.loads(code)
    except ValueError:
        return code
    if not isinstance(plan, dict) or plan.get("kind") != kind:
        return code
    if kind == DpKind.QUERY.value:
        keys: tuple[str, ...] = ("aggregate", "column", "bounds", "epsilon", "quantile", "bins")
        spec = {k: plan[k] for k in keys if plan.get(k) is not None}
        groups = [g.get("column") for g in plan.get("group_by") or [] if isinstance(g, dict)]
        if groups:
            spec["group_by"] = groups
    else:
        keys = ("model", "epochs", "batch_size", "epsilon", "delta", "max_grad_norm", "learning_rate", "hidden")
        spec = {k: plan[k] for k in keys if plan.get(k) is not None}
        spec["features"] = [f.get("column") for f in plan.get("features") or [] if isinstance(f, dict)]
        label = plan.get("label")
        spec["label"] = label.get("column") if isinstance(label, dict) else label
    return json.dumps(spec, ensure_ascii=False, indent=1)
