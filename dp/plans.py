"""From an operator's DP spec to the platform's plan: validation, public facts, cost (issue 8).

DP answers are how 数据可用不可见 (双鸭山 第三十五条) holds for statistics and models: the data is
used, no individual is visible in what leaves.

Why the host does this and not the sandboxed program:

* **The operator never chooses its own accounting.** The cost of a spec (ε, δ) is computed here,
  charged to the licence before the job runs, and the plan the sandbox receives already carries
  the DP-SGD noise multiplier, sample rate and step count that make the charge true.
* **Nothing is read off the data.** Bounds come from the spec or else the catalog's declared
  public bounds; group lists and label classes come from the catalog's declared public domain; a
  spec with neither is refused before anything runs. Reading bounds or categories from the data
  is the classic leak (an empty group disappears, an outlier moves the range).
* **The protected unit is a person.** Each dataset names its person key — the column holding the
  pseudonym of 公民身份号码 (or of 统一社会信用代码 for entities); every plan caps each person's
  rows (``max_rows_per_person``) and the guarantee is stated per person. A dataset without such a
  column gets no DP job.

Pure: facts about the dataset (:class:`DatasetFacts`) are passed in by the caller (``operators``
reads them from the registry), so this module imports nothing of the registry.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dp.kinds import DP_KINDS, DpKind

#: Column types whose pseudonym names a person (or, for entities, a legal person).
PERSON_KEY_TYPES = ("cn_resident_id", "uscc")
MAX_EPSILON_PER_JOB = 10.0
MAX_ROWS_PER_PERSON = 100
MAX_GROUPS = 10_000
MAX_BINS = 1_000
MAX_FEATURES = 64
HOLDOUT = 0.2


class DpSpecError(ValueError):
    """A DP spec is malformed or cannot be answered without reading something off the data."""


class ColumnFacts(BaseModel):
    """What the catalog publicly declares about one column of the granted copy."""

    name: str
    pii_type: str | None = None
    personal_info: bool = False
    bounds: list[float] | None = None
    domain: list[Any] | None = None


class DatasetFacts(BaseModel):
    """The public facts a plan may use: the granted version, its row count, its declared columns."""

    name: str
    version: int | None
    rows: int
    columns: dict[str, ColumnFacts]

    @property
    def person_key(self) -> str | None:
        for kind in PERSON_KEY_TYPES:
            for column in self.columns.values():
                if column.pii_type == kind:
                    return column.name
        return None


def _finite(values: Sequence[float], what: str) -> list[float]:
    out = [float(v) for v in values]
    if not all(math.isfinite(v) for v in out):
        raise ValueError(f"{what} must be finite numbers")
    return out


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    epsilon: float = Field(gt=0, le=MAX_EPSILON_PER_JOB)
    max_rows_per_person: int = Field(default=1, ge=1, le=MAX_ROWS_PER_PERSON)


class DpQuerySpec(_Spec):
    """``{"aggregate", "column", "bounds", "epsilon", "group_by", "quantile", "bins"}`` (issue 8)."""

    aggregate: Literal["count", "sum", "mean", "variance", "quantile", "histogram"]
    column: str | None = None
    bounds: list[float] | None = None
    group_by: list[str] = Field(default_factory=list, max_length=4)
    quantile: float | None = Field(default=None, ge=0.0, le=1.0)
    bins: list[float] | None = Field(default=None, min_length=2, max_length=MAX_BINS + 1)

    @field_validator("bounds")
    @classmethod
    def _bounds(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return None
        if len(value) != 2:
            raise ValueError("bounds are [lo, hi]")
        lo, hi = _finite(value, "bounds")
        if not lo < hi:
            raise ValueError("bounds need lo < hi")
        return [lo, hi]

    @field_validator("bins")
    @classmethod
    def _bins(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return None
        edges = _finite(value, "bins")
        if any(b >= a for a, b in zip(edges[1:], edges[:-1], strict=True)):
            raise ValueError("bin edges must increase strictly")
        return edges

    @model_validator(mode="after")
    def _shape(self) -> DpQuerySpec:
        if self.aggregate != "count" and not self.column:
            raise ValueError(f"a {self.aggregate} needs a column")
        if self.aggregate == "quantile" and self.quantile is None:
            raise ValueError("a quantile needs 'quantile' (a number in [0, 1])")
        if self.aggregate != "quantile" and self.quantile is not None:
            raise ValueError("'quantile' applies to the quantile aggregate only")
        if self.aggregate != "histogram" and self.bins is not None:
            raise ValueError("'bins' applies to the histogram aggregate only")
        if len(set(self.group_by)) != len(self.group_by):
            raise ValueError("group_by names a column twice")
        return self


class DpTrainSpec(_Spec):
    """``{"features", "label", "model", "epochs", "batch_size", "epsilon", "delta", "max_grad_norm"}``."""

    features: list[str] = Field(min_length=1, max_length=MAX_FEATURES)
    label: str
    model: Literal["logistic", "mlp"] = "logistic"
    epochs: int = Field(ge=1, le=100)
    batch_size: int = Field(ge=8, le=65_536)
    delta: float = Field(gt=0, lt=1)
    max_grad_norm: float = Field(gt=0, le=100)
    #: Optional per-feature bounds; else the catalog's public bounds.
    bounds: dict[str, list[float]] = Field(default_factory=dict)
    hidden: int = Field(default=32, ge=1, le=1024)
    learning_rate: float = Field(default=0.5, gt=0, le=10)
    accountant: Literal["rdp", "prv"] = "rdp"
    max_rows_per_person: int = Field(default=1, ge=1, le=1)  # DP-SGD's guarantee is per example: one row each

    @model_validator(mode="after")
    def _shape(self) -> DpTrainSpec:
        if len(set(self.features)) != len(self.features):
            raise ValueError("features name a column twice")
        if self.label in self.features:
            raise ValueError("the label cannot also be a feature")
        for column, pair in self.bounds.items():
            if len(pair) != 2 or not _finite(pair, f"bounds of {column}")[0] < pair[1]:
                raise ValueError(f"bounds of {column!r} are [lo, hi] with lo < hi")
        return self


class Cost(BaseModel):
    """What a spec costs the licence's budget for one dataset, under basic sequential composition."""

    kind: str
    epsilon: float
    delta: float

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _load_spec(text: str, what: str) -> Any:
    """The parsed spec text, or :class:`DpSpecError`: also for what :func:`json.loads` raises besides a
    syntax error (issue 17): nesting deeper than Python's recursion limit (a ``RecursionError``) and an
    integer of more digits than Python converts (a plain ``ValueError``) were 500s of ``POST /jobs/cost``
    and ``POST /jobs``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DpSpecError(f"{what} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise DpSpecError(f"{what} nests too deeply: a spec is a flat JSON object") from None
    except ValueError as exc:
        raise DpSpecError(f"{what} is not usable JSON: {str(exc)[:120]}") from None


def parse_spec(kind: str, text: str) -> DpQuerySpec | DpTrainSpec:
    """The spec of a ``dp-query`` or ``dp-train`` job, or :class:`DpSpecError` saying what is wrong."""
    if kind not in DP_KINDS:
        raise DpSpecError(f"{kind!r} is not a DP job kind ({', '.join(DP_KINDS)})")
    data = _load_spec(text, f"the {kind} spec")
    if not isinstance(data, dict):
        raise DpSpecError(f"the {kind} spec is a JSON object, not {type(data).__name__}")
    model = DpQuerySpec if kind == DpKind.QUERY else DpTrainSpec
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise DpSpecError(f"the {kind} spec is invalid: {problems}") from None


def kind_of_spec(text: str) -> str:
    """``dp-query`` or ``dp-train`` by the spec's keys (for ``keyong job cost FILE`` without --kind)."""
    data = _load_spec(text, "the spec")
    if isinstance(data, dict) and "aggregate" in data:
        return DpKind.QUERY.value
    if isinstance(data, dict) and "features" in data:
        return DpKind.TRAIN.value
    raise DpSpecError("not a DP spec: a dp-query spec has 'aggregate', a dp-train spec has 'features'")


def cost_of(spec: DpQuerySpec | DpTrainSpec) -> Cost:
    """ε and δ charged for ``spec``: the spec's own ε (and δ for DP-SGD); the platform spends nothing else."""
    if isinstance(spec, DpTrainSpec):
        return Cost(kind=DpKind.TRAIN.value, epsilon=spec.epsilon, delta=spec.delta)
    return Cost(kind=DpKind.QUERY.value, epsilon=spec.epsilon, delta=0.0)


def cost_of_plan(resolved: Mapping[str, Any]) -> Cost:
    """The charge a stored plan paid (plans carry the spec's ε, and δ for DP-SGD)."""
    kind = str(resolved["kind"])
    return Cost(kind=kind, epsilon=float(resolved["epsilon"]), delta=float(resolved.get("delta") or 0.0))


def _column(facts: DatasetFacts, name: str, what: str) -> ColumnFacts:
    column = facts.columns.get(name)
    if column is None:
        raise DpSpecError(f"{what} {name!r} is not a column of {facts.name!r}")
    if name == facts.person_key:
        raise DpSpecError(f"{what} {name!r} is the person key of {facts.name!r}: it is only used to cap contributions")
    return column


def _bounds(facts: DatasetFacts, name: str, given: Sequence[float] | None, what: str) -> list[float]:
    """The spec's bounds, else the catalog's public bounds; never the data's range."""
    if given is not None:
        return [float(given[0]), float(given[1])]
    declared = _column(facts, name, what).bounds
    if declared is None:
        raise DpSpecError(
            f"{what} {name!r} has no bounds: give 'bounds' in the spec or ask the custodian to declare public bounds "
            "(keyong dataset bounds); bounds are never read from the data"
        )
    return [float(declared[0]), float(declared[1])]


def _domain(facts: DatasetFacts, name: str, what: str) -> list[Any]:
    column = _column(facts, name, what)
    if not column.domain:
        raise DpSpecError(
            f"{what} {name!r} has no public domain in the catalog: groups and classes come from the catalog, "
            "never from the data (the custodian declares them with keyong dataset bounds --domain)"
        )
    return list(column.domain)


def _person_key(facts: DatasetFacts) -> str:
    key = facts.person_key
    if key is None:
        raise DpSpecError(
            f"dataset {facts.name!r} names no person key (a column of type {' or '.join(PERSON_KEY_TYPES)}): "
            "DP guarantees are per person, so DP jobs cannot run on it"
        )
    return key


def plan_query(spec: DpQuerySpec, facts: DatasetFacts) -> dict[str, Any]:
    """The resolved plan the sandboxed ``dp_query`` program answers (``dp.programs``)."""
    person_key = _person_key(facts)
    groups = [{"column": c, "values": _domain(facts, c, "group_by column")} for c in spec.group_by]
    if math.prod(len(g["values"]) for g in groups) > MAX_GROUPS:
        raise DpSpecError(f"the groups' product exceeds {MAX_GROUPS:,} cells")
    bounds: list[float] | None = None
    categories: list[Any] | None = None
    if spec.column is not None:
        _column(facts, spec.column, "column")
    if spec.aggregate in ("sum", "mean", "variance", "quantile"):
        assert spec.column is not None
        bounds = _bounds(facts, spec.column, spec.bounds, "column")
    elif spec.aggregate == "histogram":
        assert spec.column is not None
        if spec.bins is not None:
            bounds = _bounds(facts, spec.column, spec.bounds, "column")
            if spec.bins[0] < bounds[0] or spec.bins[-1] > bounds[1]:
                raise DpSpecError("histogram bins must lie within the column's bounds")
        else:
            categories = _domain(facts, spec.column, "histogram column")
        cells = len(categories or spec.bins or []) * math.prod(len(g["values"]) for g in groups)
        if cells > MAX_GROUPS:
            raise DpSpecError(f"the histogram has {cells:,} cells (limit {MAX_GROUPS:,})")
    return {
        "kind": DpKind.QUERY.value,
        "dataset": facts.name,
        "version": facts.version,
        "table": f"/data/{facts.name}.parquet",
        "person_key": person_key,
        "max_rows_per_person": spec.max_rows_per_person,
        "rows_bound": max(1, facts.rows),
        "aggregate": spec.aggregate,
        "column": spec.column,
        "bounds": bounds,
        "epsilon": spec.epsilon,
        "group_by": groups,
        "quantile": spec.quantile,
        "bins": spec.bins,
        "categories": categories,
    }


def plan_train(spec: DpTrainSpec, facts: DatasetFacts) -> dict[str, Any]:
    """The resolved DP-SGD plan: features encoded from public facts, σ from the accountant for (ε, δ)."""
    person_key = _person_key(facts)
    train_rows = math.floor(facts.rows * (1 - HOLDOUT))
    if train_rows < 100:
        raise DpSpecError(f"{facts.name!r} has too few rows for DP-SGD ({facts.rows})")
    if spec.delta >= 1.0 / facts.rows:
        raise DpSpecError(f"δ = {spec.delta:g} must be below 1/n = {1.0 / facts.rows:.3g} for {facts.rows:,} rows")
    if spec.batch_size >= train_rows:
        raise DpSpecError(f"batch_size {spec.batch_size} must be below the training rows ({train_rows:,})")
    unknown = sorted(set(spec.bounds) - set(spec.features))
    if unknown:
        raise DpSpecError(f"bounds given for columns that are not features: {', '.join(unknown)}")
    features: list[dict[str, Any]] = []
    for name in spec.features:
        column = _column(facts, name, "feature")
        if name in spec.bounds or (column.bounds is not None and not column.domain):
            features.append(
                {"column": name, "type": "numeric", "bounds": _bounds(facts, name, spec.bounds.get(name), "feature")}
            )
        elif column.domain:
            features.append({"column": name, "type": "categorical", "values": list(column.domain)})
        else:
            raise DpSpecError(
                f"feature {name!r} has neither bounds (spec or catalog) nor a public domain: it cannot be encoded "
                "without reading the data"
            )
    classes = _domain(facts, spec.label, "label")
    if len(classes) < 2:
        raise DpSpecError(f"label {spec.label!r} needs at least two classes in its public domain")
    sample_rate = spec.batch_size / train_rows
    steps = math.ceil(spec.epochs / sample_rate)
    sigma = noise_multiplier(spec.epsilon, spec.delta, sample_rate, steps, spec.accountant)
    return {
        "kind": DpKind.TRAIN.value,
        "dataset": facts.name,
        "version": facts.version,
        "table": f"/data/{facts.name}.parquet",
        "person_key": person_key,
        "max_rows_per_person": spec.max_rows_per_person,
        "features": features,
        "label": {"column": spec.label, "values": classes},
        "model": spec.model,
        "hidden": spec.hidden,
        "epochs": spec.epochs,
        "batch_size": spec.batch_size,
        "learning_rate": spec.learning_rate,
        "epsilon": spec.epsilon,
        "delta": spec.delta,
        "max_grad_norm": spec.max_grad_norm,
        "noise_multiplier": sigma,
        "sample_rate": sample_rate,
        "steps": steps,
        "accountant": spec.accountant,
        "holdout": HOLDOUT,
    }


def noise_multiplier(epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str) -> float:
    """σ such that ``steps`` Poisson-sampled DP-SGD steps at ``sample_rate`` spend at most (ε, δ).

    opacus' binary search returns the upper end of its bracket, so the accountant's ε for the
    returned σ is at most the target: the charge is never below the spend.
    """
    import warnings

    from opacus.accountants.utils import get_noise_multiplier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "optimal order is the largest alpha": the bound is still valid
        try:
            return float(
                get_noise_multiplier(
                    target_epsilon=epsilon,
                    target_delta=delta,
                    sample_rate=sample_rate,
                    steps=steps,
                    accountant=accountant,
                )
            )
        except ValueError as exc:
            raise DpSpecError(f"no noise level reaches ε = {epsilon:g} for this schedule: {exc}") from None


def plan(kind: str, spec: DpQuerySpec | DpTrainSpec, facts: DatasetFacts) -> dict[str, Any]:
    if isinstance(spec, DpQuerySpec):
        return plan_query(spec, facts)
    return plan_train(spec, facts)


def facts_from_catalog(
    name: str, version: int | None, rows: int, copy_columns: Sequence[str], items: Sequence[Mapping[str, Any]]
) -> DatasetFacts:
    """Facts from catalog items (``{"name", "pii_type", "personal_info", "public_bounds", "public_domain"}``)
    restricted to the columns the granted copy actually has (a dropped column cannot be queried)."""
    present = set(copy_columns)
    columns = {
        str(i["name"]): ColumnFacts(
            name=str(i["name"]),
            pii_type=i.get("pii_type"),
            personal_info=bool(i.get("personal_info")),
            bounds=i.get("public_bounds"),
            domain=i.get("public_domain"),
        )
        for i in items
        if str(i["name"]) in present
    }
    return DatasetFacts(name=name, version=version, rows=rows, columns=columns)


__all__ = [
    "DP_KINDS",
    "HOLDOUT",
    "PERSON_KEY_TYPES",
    "ColumnFacts",
    "Cost",
    "DatasetFacts",
    "DpQuerySpec",
    "DpSpecError",
    "DpTrainSpec",
    "cost_of",
    "cost_of_plan",
    "facts_from_catalog",
    "kind_of_spec",
    "noise_multiplier",
    "parse_spec",
    "plan",
    "plan_query",
    "plan_train",
]
