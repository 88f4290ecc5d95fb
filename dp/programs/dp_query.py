"""dp-query: one differentially private aggregate over a desensitized copy, run inside the sandbox.

Run as ``python -I -B /job/dp_query.py [PLAN [OUT_DIR]]`` (defaults ``/job/plan.json``, ``/out``).
The host has already validated the operator's spec against the catalog, charged the privacy
budget and resolved everything privacy-relevant into the plan: bounds, group value lists, bins,
categories, the person key and ``max_rows_per_person``. This program never reads a bound or a
group list from the data (that would itself leak), and it only sees stdlib + third-party
packages (no Keyong code is mounted inside the sandbox).

Why diffprivlib's *mechanisms* and not ``diffprivlib.tools``: in 0.6.6 a mechanism built with
``random_state=None`` draws from ``secrets.SystemRandom``, whereas the tools default to numpy's
global Mersenne Twister, whose state an adversary could reconstruct. Why Snapping for sums: the
Laplace mechanism on floating point leaks through the low bits (Mironov 2012); Snapping does not.

Why contribution bounding: the protected unit is a person, not a row. A person with many rows
would otherwise shift an answer by many times the declared sensitivity; keeping at most ``k``
random rows per person makes every sensitivity below "per person" (add/remove one person).

``dp_train.py`` imports :func:`numeric_values` and :func:`bound_contributions` from this file
(the host mounts both programs and their column reader ``dp_columns.py`` under ``/job/`` for either kind).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    # Before pyarrow loads: its default mimalloc pool reserves a 1 GiB arena of address space,
    # half of the sandbox's RLIMIT_AS, and with torch loaded too dp-train's libraries no longer
    # fit. The system allocator reserves nothing. (Only when run as the program: importing this
    # module on the host must not change the host's environment.)
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

import numpy as np
import pandas as pd

if __package__:
    from .dp_columns import group_strings, numeric_values
else:  # run as a script: `python -I` puts neither the cwd nor the script's directory on sys.path
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from dp_columns import group_strings, numeric_values  # type: ignore[no-redef]  # mounted next to this file

__all__ = [
    "AGGREGATES",
    "PlanError",
    "Refused",
    "bound_contributions",
    "group_index",
    "group_strings",
    "main",
    "numeric_values",
    "run_query",
    "secure_generator",
]

AGGREGATES = ("count", "sum", "mean", "variance", "quantile", "histogram")
DEFAULT_PLAN = "/job/plan.json"
DEFAULT_OUT = "/out"

MECHANISMS = {
    "count": "geometric",
    "sum": "snapping",
    "mean": "snapping (sum) + geometric (count)",
    "variance": "snapping (sum, sum of squares) + geometric (count)",
    "quantile": "exponential (interval quantile) + uniform draw",
    "histogram": "geometric",
}


class PlanError(Exception):
    """The plan or the table cannot be used (exit 1). Messages never quote data values."""


class Refused(Exception):  # noqa: N818 - the exit-2 outcome's name, as the contract words it
    """The plan asks for something a DP release must not do, e.g. no bounds (exit 2)."""


# --------------------------------------------------------------------------- randomness


def secure_generator() -> np.random.Generator:
    """A numpy Generator seeded from the OS CSPRNG: which rows a person keeps must not be predictable."""
    return np.random.default_rng(secrets.randbits(128))


# --------------------------------------------------------------------------- contribution bounding


def bound_contributions(
    frame: pd.DataFrame, person_key: str, max_rows: int, rng: np.random.Generator | None = None
) -> pd.DataFrame:
    """At most ``max_rows`` uniformly random rows per person; rows without a person key are dropped.

    A random permutation followed by a per-person running count keeps the first ``max_rows`` of
    each person's rows in random order, i.e. a uniform subset, without a Python loop over persons.
    """
    if person_key not in frame.columns:
        raise PlanError(f"the person key column {person_key!r} is not in the table")
    if int(max_rows) < 1:
        raise Refused("max_rows_per_person must be at least 1")
    rng = rng if rng is not None else secure_generator()
    present = frame[frame[person_key].notna()]
    shuffled = present.iloc[rng.permutation(len(present))]
    rank = shuffled.groupby(person_key, sort=False, dropna=True).cumcount().to_numpy()
    return shuffled[rank < int(max_rows)]


# --------------------------------------------------------------------------- groups


def group_index(frame: pd.DataFrame, group_by: Sequence[dict[str, Any]]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Each row's cell in the cartesian product of the plan's group lists (-1: value not listed) and the cells.

    The cells come from the plan only (never from the data), in ``itertools.product`` order, so
    every group appears in the result whether or not a row falls in it.
    """
    index = np.zeros(len(frame), dtype=np.int64)
    for spec in group_by:
        column, values = spec["column"], list(spec["values"])
        if column not in frame.columns:
            raise PlanError(f"the group column {column!r} is not in the table")
        if not values:
            raise Refused(f"the group column {column!r} has no declared values")
        lookup = {str(v): i for i, v in enumerate(values)}
        codes = group_strings(frame[column]).map(lookup).to_numpy(dtype=np.float64, na_value=np.nan)
        codes = np.where(np.isnan(codes), -1, codes).astype(np.int64)
        index = np.where((index < 0) | (codes < 0), -1, index * len(values) + codes)
    cells = [
        {spec["column"]: value for spec, value in zip(group_by, combo, strict=True)}
        for combo in itertools.product(*(list(spec["values"]) for spec in group_by))
    ]
    return index, cells


# --------------------------------------------------------------------------- mechanisms


def _geometric(true_count: int, epsilon: float, sensitivity: int) -> int:
    from diffprivlib.mechanisms import Geometric

    # random_state=None: secrets.SystemRandom in diffprivlib 0.6.6.
    return int(Geometric(epsilon=epsilon, sensitivity=int(sensitivity), random_state=None).randomise(int(true_count)))


def _snapping(true_sum: float, epsilon: float, sensitivity: float, lower: float, upper: float) -> float:
    from diffprivlib.mechanisms import Snapping

    mechanism = Snapping(
        epsilon=epsilon, sensitivity=float(sensitivity), lower=float(lower), upper=float(upper), random_state=None
    )
    return float(mechanism.randomise(float(min(max(true_sum, lower), upper))))


def dp_quantile(values: np.ndarray, quantile: float, epsilon: float, lo: float, hi: float) -> float:
    """The exponential-mechanism quantile (Smith 2011), as ``diffprivlib.tools.quantile`` but on a secure RNG.

    Candidates are the n+1 intervals between the sorted clipped values and the bounds; utility
    −|i − q·n| (sensitivity 1 per row), each weighted by the interval's length; then a uniform
    draw inside the chosen interval.
    """
    from diffprivlib.mechanisms import Exponential

    points = np.sort(np.concatenate([np.clip(values, lo, hi), [lo, hi]]))
    n = len(values)
    lengths = np.diff(points)
    # Intervals of length zero (ties: banded copies have many) have probability zero, so leaving
    # them out gives the same output distribution. Keeping them would let the best-utility
    # candidate be a zero-length one: every positive-length weight could then underflow
    # exp(ε·(u − max u)/2) and diffprivlib's normalisation would divide 0 by 0.
    candidates = np.flatnonzero(lengths > 0)
    utility = (-np.abs(candidates.astype(np.float64) - quantile * n)).tolist()
    measure = lengths[candidates].tolist()
    picked = int(Exponential(epsilon=epsilon, sensitivity=1, utility=utility, measure=measure).randomise())
    chosen = int(candidates[picked])
    left, right = float(points[chosen]), float(points[chosen + 1])
    return left + secrets.SystemRandom().random() * (right - left)


def _bounds(plan: dict[str, Any]) -> tuple[float, float]:
    bounds = plan.get("bounds")
    if not isinstance(bounds, list | tuple) or len(bounds) != 2:
        raise Refused("the plan has no bounds for the column (bounds are never read from the data)")
    lo, hi = float(bounds[0]), float(bounds[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise Refused("the plan's bounds must be finite with lower < upper")
    return lo, hi


def _histogram_cells(plan: dict[str, Any], frame: pd.DataFrame) -> tuple[np.ndarray, list[Any]]:
    """Each row's bin (-1: outside) and the bins as reported: numeric edges or the catalog's categories."""
    column = plan["column"]
    if plan.get("bins") is not None:
        lo, hi = _bounds(plan)
        edges = np.asarray(plan["bins"], dtype=np.float64)
        if len(edges) < 2 or not np.all(np.diff(edges) > 0):
            raise PlanError("histogram bins must be at least two increasing edges")
        values = np.clip(numeric_values(frame[column]), lo, hi)
        position = np.searchsorted(edges, values, side="right") - 1
        position = np.where(values == edges[-1], len(edges) - 2, position)  # the last bin is closed
        inside = ~np.isnan(values) & (position >= 0) & (position < len(edges) - 1)
        return np.where(inside, position, -1), list(plan["bins"])
    categories = plan.get("categories")
    if not categories:
        raise Refused("a histogram needs numeric bins or the catalog's categories (never read from the data)")
    lookup = {str(c): i for i, c in enumerate(categories)}
    codes = group_strings(frame[column]).map(lookup).to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isnan(codes), -1, codes).astype(np.int64), list(categories)


def run_query(plan: dict[str, Any], frame: pd.DataFrame, rng: np.random.Generator | None = None) -> dict[str, Any]:
    """The result record (``/out/result.json``) of the plan's aggregate over ``frame``."""
    aggregate = plan.get("aggregate")
    if aggregate not in AGGREGATES:
        raise PlanError(f"unknown aggregate {aggregate!r}")
    epsilon = float(plan.get("epsilon", 0))
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise Refused("epsilon must be a positive finite number")
    person_key = plan.get("person_key")
    if not person_key:
        raise Refused("the plan names no person key (the protected unit is a person)")
    k = int(plan.get("max_rows_per_person", 1))
    group_by = list(plan.get("group_by") or [])
    column = plan.get("column")
    if aggregate != "count" and not column:
        raise PlanError(f"{aggregate} needs a column")
    if column and column not in frame.columns:
        raise PlanError(f"the column {column!r} is not in the table")

    bounded = bound_contributions(frame, person_key, k, rng)
    groups, cells = group_index(bounded, group_by)
    bins_out: list[Any] | None = None
    bounds_out: list[float] | None = None
    if aggregate == "count":
        counts = np.bincount(groups[groups >= 0], minlength=len(cells))
        values: list[Any] = [_geometric(c, epsilon, k) for c in counts]
    elif aggregate == "histogram":
        values, bins_out = _histogram(plan, bounded, groups, len(cells), epsilon, k)
        if plan.get("bins") is not None:
            bounds_out = list(plan["bounds"])
    else:
        values = _numeric_aggregate(plan, aggregate, bounded[column], groups, len(cells), epsilon, k)
        bounds_out = list(plan["bounds"])

    return {
        "kind": "dp-query",
        "dataset": plan.get("dataset"),
        "aggregate": aggregate,
        "column": column,
        "bounds": bounds_out,
        "epsilon": epsilon,
        "delta": 0.0,
        "max_rows_per_person": k,
        "mechanism": MECHANISMS[aggregate],
        "group_by": [spec["column"] for spec in group_by],
        "bins": bins_out,
        "rows": [{"group": cell, "value": value} for cell, value in zip(cells, values, strict=True)],
    }


def _histogram(
    plan: dict[str, Any], frame: pd.DataFrame, groups: np.ndarray, n_groups: int, epsilon: float, k: int
) -> tuple[list[list[int]], list[Any]]:
    """Noisy counts per group and bin, and the bins as reported."""
    position, bins_out = _histogram_cells(plan, frame)
    n_bins = len(bins_out) - 1 if plan.get("bins") is not None else len(bins_out)
    keep = (groups >= 0) & (position >= 0)
    cell = groups[keep] * n_bins + position[keep]
    counts = np.bincount(cell, minlength=n_groups * n_bins).reshape(n_groups, n_bins)
    # One person changes at most k cells by 1 each, over all groups and bins: L1 sensitivity k.
    return [[_geometric(c, epsilon, k) for c in row] for row in counts], bins_out


def _numeric_aggregate(
    plan: dict[str, Any], aggregate: str, series: pd.Series, groups: np.ndarray, n_groups: int, epsilon: float, k: int
) -> list[float]:
    """A sum, mean, variance or quantile per group over the column clipped to the plan's bounds."""
    lo, hi = _bounds(plan)
    raw = numeric_values(series)
    keep = (groups >= 0) & ~np.isnan(raw)
    x = np.clip(raw[keep], lo, hi)
    g = groups[keep]
    if aggregate == "quantile":
        q = float(plan.get("quantile", 0.5))
        if not 0.0 <= q <= 1.0:
            raise PlanError("quantile must be within [0, 1]")
        order = np.argsort(g, kind="stable")
        starts = np.searchsorted(g[order], np.arange(n_groups + 1))
        # A person's k rows may fall in k groups: ε/k per group keeps the total at ε.
        return [dp_quantile(x[order[starts[i] : starts[i + 1]]], q, epsilon / k, lo, hi) for i in range(n_groups)]
    rows_bound = plan.get("rows_bound")
    if not (isinstance(rows_bound, int | float) and rows_bound > 0):
        raise PlanError("the plan has no rows_bound (the copy's public row count)")
    if aggregate == "variance":
        return _variance(x, g, n_groups, epsilon, k, (lo, hi), float(rows_bound))
    sums = np.bincount(g, weights=x, minlength=n_groups)
    sensitivity = k * max(abs(lo), abs(hi))
    lower, upper = min(0.0, rows_bound * lo), max(0.0, rows_bound * hi)
    if aggregate == "sum":
        return [_snapping(s, epsilon, sensitivity, lower, upper) for s in sums]
    counts = np.bincount(g, minlength=n_groups)
    values = []
    for s, c in zip(sums, counts, strict=True):  # mean: half of ε on the sum, half on the count
        noisy_sum = _snapping(s, epsilon / 2, sensitivity, lower, upper)
        noisy_count = _geometric(c, epsilon / 2, k)
        values.append(min(max(noisy_sum / max(noisy_count, 1), lo), hi))
    return values


def _variance(
    x: np.ndarray, g: np.ndarray, n_groups: int, epsilon: float, k: int, bounds: tuple[float, float], rows_bound: float
) -> list[float]:
    """Noisy count, sum and sum of squares (ε/3 each) of the values centred in their bounds."""
    lo, hi = bounds
    half = (hi - lo) / 2.0
    y = x - (lo + hi) / 2.0  # |y| <= half
    counts = np.bincount(g, minlength=n_groups)
    sums = np.bincount(g, weights=y, minlength=n_groups)
    squares = np.bincount(g, weights=y * y, minlength=n_groups)
    third = epsilon / 3
    values = []
    for c, s1, s2 in zip(counts, sums, squares, strict=True):
        n = max(_geometric(c, third, k), 1)
        noisy_s1 = _snapping(s1, third, k * half, -rows_bound * half, rows_bound * half)
        noisy_s2 = _snapping(s2, third, k * half * half, 0.0, rows_bound * half * half)
        mean_y = noisy_s1 / n
        values.append(min(max(noisy_s2 / n - mean_y * mean_y, 0.0), half * half))
    return values


# --------------------------------------------------------------------------- program


def load_plan(path: str | os.PathLike[str], kind: str) -> dict[str, Any]:
    """The resolved plan the host wrote; refuses a plan of the other kind."""
    try:
        plan = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PlanError(f"cannot read the plan ({type(exc).__name__})") from None
    if not isinstance(plan, dict):
        raise PlanError("the plan is not a JSON object")
    if plan.get("kind") != kind:
        raise Refused(f"this program runs {kind} plans only")
    return plan


def read_table(plan: dict[str, Any], columns: Sequence[str]) -> pd.DataFrame:
    """Only the columns the plan names, from the Parquet copy at ``plan["table"]``."""
    wanted = list(dict.fromkeys(c for c in columns if c))
    try:
        import pyarrow.parquet as pq

        available = set(pq.read_schema(plan["table"]).names)
    except Exception as exc:
        raise PlanError(f"cannot read the table ({type(exc).__name__})") from None
    missing = [c for c in wanted if c not in available]
    if missing:
        raise PlanError(f"columns not in the table: {', '.join(missing)}")
    return pd.read_parquet(plan["table"], columns=wanted)


def write_json(path: Path, record: dict[str, Any]) -> None:
    path.write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def run_program(argv: Sequence[str] | None, kind: str, body: Any) -> int:
    """Shared ``main``: plan and output paths from argv, errors as exit codes without data values."""
    args = list(sys.argv[1:] if argv is None else argv)
    plan_path = args[0] if args else DEFAULT_PLAN
    out_dir = Path(args[1] if len(args) > 1 else DEFAULT_OUT)
    try:
        plan = load_plan(plan_path, kind)
        message = body(plan, out_dir)
    except Refused as exc:
        print(f"{kind} refused: {exc}", file=sys.stderr)
        return 2
    except PlanError as exc:
        print(f"{kind} failed: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # library messages may quote data values: report the type only
        print(f"{kind} failed: internal error ({type(exc).__name__})", file=sys.stderr)
        return 1
    print(message)
    return 0


def _query_body(plan: dict[str, Any], out_dir: Path) -> str:
    columns = [plan.get("person_key"), plan.get("column"), *(g["column"] for g in plan.get("group_by") or [])]
    frame = read_table(plan, [c for c in columns if c])
    result = run_query(plan, frame)
    write_json(out_dir / "result.json", result)
    # No counts in the log: the guard shows a log to the operator only when it holds no number the
    # plan does not (the answer itself is in result.json, signed).
    return f"dp-query {result['aggregate']} answered; see result.json"


def main(argv: Sequence[str] | None = None) -> int:
    """``dp_query.py [PLAN [OUT_DIR]]``: writes OUT_DIR/result.json and one summary line (no data values)."""
    return run_program(argv, "dp-query", _query_body)


if __name__ == "__main__":
    sys.exit(main())
