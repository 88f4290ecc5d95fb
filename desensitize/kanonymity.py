"""k-anonymity over the quasi-identifier columns: generalize along ladders, then suppress rows.

Why: removing names and ID numbers does not stop re-identification — birth date, gender and
district single out most people (Sweeney's 87 % for ZIP, birth date and sex). GB/T 37964-2019
附录B gives the K-匿名模型 as the check that a de-identified table resists linkage: every
combination of quasi-identifier values is shared by at least k rows. This module makes a table
satisfy it with the two techniques the standard pairs with it, generalization (泛化) along a
ladder per attribute and record suppression (抑制), and reports what it achieved, including the
l-diversity of a sensitive column (k rows that all share one diagnosis still disclose it).

Ladders: ``desensitize.ladders`` (what each rung writes, numbers for ages and birth dates).

Search: greedy. While more rows sit in groups smaller than k than the suppression budget allows,
take the one ladder step (over all attributes) after which the fewest rows violate, i.e. the step
that removes the most violating rows; then suppress the rows still in groups smaller than k.
The search also stops when no amount of generalization would help the rows left (they differ in
gender, say), rather than blur every other attribute for nothing; those rows are suppressed even
beyond the budget, and the report says why the search stopped.

The policy's re-identification risk threshold (``desensitize.risk``) joins the search: a highest
prosecutor risk t is k >= ceil(1/t), so k is raised to that; an average risk t (classes / records,
ARX's average-risk model, El Emam & Dankar 2008) keeps the search generalizing, once the rows below
k fit the budget, by the step that lowers the average risk after suppression most. When the
ladders are exhausted (or no step lowers it), the smallest classes are suppressed until the average
meets it (``desensitize.risk.classes_to_drop``); the pipeline's report["risk"]["met"] says whether
the copy meets the threshold.

Each step is evaluated on integer codes only: every attribute is factorized once, each ladder
level is a code mapping computed on the distinct values, and group sizes are a ``bincount`` over a
mixed-radix key — the same as ``groupby(columns).transform("size")`` at a fraction of the cost.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from desensitize.group_keys import dense_ids, mixed_key
from desensitize.ladders import BAND_WIDTHS, Ladder, build_ladder
from desensitize.risk import NO_QI_NOTE, classes_to_drop, required_k
from desensitize.step_trials import StepTrials, coarsens

__all__ = [
    "BAND_WIDTHS",
    "KAnonymityResult",
    "Ladder",
    "build_ladder",
    "group_sizes",
    "k_anonymize",
    "kept_frame",
    "l_diversity",
]


def _sizes(codes: Sequence[np.ndarray], cards: Sequence[int], n: int) -> np.ndarray:
    """Per row, the size of its group over the given code columns (0 columns: one group)."""
    if not codes:
        return np.full(n, n, dtype=np.int64)
    key, span = mixed_key(codes, cards, n)
    if span <= max(4 * n, 1 << 16):
        counts = np.bincount(key, minlength=span)
        return np.asarray(counts[key])
    dense, _ = pd.factorize(key)
    return np.asarray(np.bincount(dense)[dense])


def _group_ids(codes: Sequence[np.ndarray], cards: Sequence[int], n: int) -> np.ndarray:
    """Per row, a dense id of its group, numbered in order of first appearance (0 columns: one group)."""
    if not codes:
        return np.zeros(n, dtype=np.int64)
    return dense_ids(codes, cards, n)


def group_sizes(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Per row, how many rows share its values in ``columns`` (nulls equal to each other)."""
    codes, cards = [], []
    for column in columns:
        c, uniques = pd.factorize(frame[column])
        codes.append(np.where(c < 0, len(uniques), c).astype(np.int64))
        cards.append(len(uniques) + 1)
    return _sizes(codes, cards, len(frame))


def l_diversity(frame: pd.DataFrame, columns: Sequence[str], sensitive: str) -> dict[str, Any]:
    """Distinct non-null ``sensitive`` values per quasi-identifier group: the minimum, and groups with fewer than 2."""
    n = len(frame)
    if n == 0:
        return {"column": sensitive, "l": None, "groups": 0, "groups_below_2": 0}
    codes, cards = [], []
    for column in columns:
        c, uniques = pd.factorize(frame[column])
        codes.append(np.where(c < 0, len(uniques), c).astype(np.int64))
        cards.append(len(uniques) + 1)
    groups = _group_ids(codes, cards, n)
    n_groups = int(groups.max()) + 1
    values, uniques = pd.factorize(frame[sensitive])
    present = values >= 0
    pairs = np.unique(groups[present] * (len(uniques) + 1) + values[present])
    per_group = np.bincount(pairs // (len(uniques) + 1), minlength=n_groups)
    return {
        "column": sensitive,
        "l": int(per_group.min()),
        "groups": n_groups,
        "groups_below_2": int((per_group < 2).sum()),
    }


@dataclass(slots=True)
class KAnonymityResult:
    """The generalized frame without the suppressed rows, which input rows were kept, and the report.

    ``generalized`` holds the quasi-identifier columns at the levels reached for *every* input row
    (suppressed ones too): the raw table mapped to the copy's categories, which the utility
    workload compares the copy against.
    """

    frame: pd.DataFrame
    kept: np.ndarray
    report: dict[str, Any] = field(default_factory=dict)
    generalized: pd.DataFrame | None = None
    #: Per kept row, a dense id of its equivalence class (the risk of the copy is measured on them).
    class_ids: np.ndarray | None = None


def k_anonymize(
    frame: pd.DataFrame,
    quasi_identifiers: Mapping[str, str | None],
    *,
    k: int = 5,
    max_suppression: float = 0.05,
    sensitive_column: str | None = None,
    max_highest_risk: float | None = None,
    max_average_risk: float | None = None,
    ladder_cache: dict[tuple[str, str | None], Ladder] | None = None,
    columns: Sequence[str] | None = None,
) -> KAnonymityResult:
    """Generalize and suppress until every quasi-identifier combination has at least ``k`` rows.

    ``quasi_identifiers`` maps column -> type (which ladder). At most ``max_suppression`` of the
    rows are suppressed while generalization can still help; once every ladder is at its top, the
    rows still in groups below k are suppressed whatever their number (a table of fewer than k
    rows is suppressed whole). ``max_highest_risk`` raises k to ceil(1/t); ``max_average_risk``
    bounds classes / records of the result (see the module docstring). Never modifies ``frame``.

    For a caller that runs the search again on the same frame (``desensitize.splits``' rounds):
    ``ladder_cache`` caches the ladders built, by (column, type), so a round rebuilds none; ``columns``
    limits the result's frame to those columns (and, when l-diversity is measured, the
    quasi-identifiers and the sensitive column), sparing the copy of the table's kept rows in a round
    whose frame is only measured (``kept_frame`` makes the whole one afterwards; each string column
    copied costs tens of milliseconds per million rows).
    """
    _check_arguments(frame, quasi_identifiers, k, max_suppression, sensitive_column)
    if max_average_risk is not None and not 0.0 < max_average_risk <= 1.0:
        raise ValueError("max_average_risk must be within (0, 1]")
    k_needed = required_k(k, max_highest_risk)
    n = len(frame)
    cache = ladder_cache if ladder_cache is not None else {}
    ladders = [cache.get((c, t)) or build_ladder(frame[c], t, c) for c, t in quasi_identifiers.items()]
    cache.update(((lad.column, t), lad) for lad, t in zip(ladders, quasi_identifiers.values(), strict=True))
    budget = math.floor(max_suppression * n)
    search = _generalize(ladders, n, k_needed, budget, max_average_risk if ladders else None)

    kept = search.sizes >= k_needed
    extra, kept_ids = _suppress_for_average(ladders, search.levels, kept, max_average_risk) if ladders else (0, None)
    qi_columns = [lad.column for lad in ladders]
    generalized = frame[qi_columns].copy()
    for ladder, level in zip(ladders, search.levels, strict=True):
        if level:
            generalized[ladder.column] = ladder.values(level, frame[ladder.column])
    measured = [*qi_columns, sensitive_column] if sensitive_column is not None else []  # l-diversity reads them
    wanted = None if columns is None else {*columns, *measured}
    out = kept_frame(frame, generalized, kept, wanted)

    final_codes = [lad.codes[lv][kept] for lad, lv in zip(ladders, search.levels, strict=True)]
    final_cards = [lad.cards[lv] for lad, lv in zip(ladders, search.levels, strict=True)]
    n_kept = int(kept.sum())
    if kept_ids is not None and not extra:  # the same rows the average was measured on: the same classes
        ids = kept_ids
    else:
        ids = _group_ids(final_codes, final_cards, n_kept) if n_kept else np.zeros(0, dtype=np.int64)
    sizes = np.bincount(ids) if n_kept else np.zeros(0, dtype=np.int64)
    report: dict[str, Any] = {
        "k_target": k,
        "k_required": k_needed,
        "k_achieved": int(sizes.min()) if n_kept and ladders else None,
        "note": None if ladders else NO_QI_NOTE,
        **_levels_report(ladders, search.levels),
        "rows_in": n,
        "violating_rows_before": search.initial_violating,
        "suppressed_rows": n - n_kept,
        "suppressed_for_average_risk": extra,
        "max_suppression": max_suppression,
        "suppression_budget_rows": budget,
        "groups": len(sizes),
        "average_risk_target": max_average_risk,
        "average_risk_achieved": (len(sizes) / n_kept) if n_kept and ladders else None,
        "steps": search.steps,
        "stopped": search.stopped,
        "l_diversity": l_diversity(out, qi_columns, sensitive_column) if sensitive_column is not None else None,
    }
    if not ladders and report["l_diversity"] is not None:
        report["l_diversity"] = {**report["l_diversity"], "l": None, "note": NO_QI_NOTE}
    return KAnonymityResult(out, kept, report, generalized, ids if ladders else None)


def _levels_report(ladders: Sequence[Ladder], levels: Sequence[int]) -> dict[str, Any]:
    """Each quasi-identifier's ladder and chosen level, and how its column reads there (``representation``:
    None when as the transform left it, or text)."""
    pairs = list(zip(ladders, levels, strict=True))
    return {
        "quasi_identifiers": [
            {
                "column": lad.column,
                "type": lad.pii_type,
                "level": lv,
                "generalization": lad.names[lv],
                "ladder": lad.names,
            }
            for lad, lv in pairs
        ],
        "representation": {lad.column: lad.representation(lv) for lad, lv in pairs},
    }


def kept_frame(
    frame: pd.DataFrame, generalized: pd.DataFrame, kept: np.ndarray, columns: Collection[str] | None = None
) -> pd.DataFrame:
    """``frame``'s kept rows (index 0..n-1) with its quasi-identifier columns as ``generalized`` holds them;
    ``columns``: only those (in the frame's order), None: every column."""
    out = frame.copy() if columns is None else frame[[c for c in frame.columns if c in columns]].copy()
    for column in generalized.columns:
        if column in out.columns:
            out[column] = generalized[column]
    return out.loc[kept].reset_index(drop=True)


def _suppress_for_average(
    ladders: Sequence[Ladder], levels: Sequence[int], kept: np.ndarray, max_average: float | None
) -> tuple[int, np.ndarray | None]:
    """Suppress (in ``kept``, in place) the smallest classes until classes / records <= ``max_average``
    (``desensitize.risk.classes_to_drop``); returns the rows suppressed and the class ids of the rows
    kept before (None: not measured), which are the copy's when none was suppressed (a million rows'
    numbering spared)."""
    n_kept = int(kept.sum())
    if max_average is None or n_kept == 0:
        return 0, None
    where = np.flatnonzero(kept)
    ids = _group_ids(
        [lad.codes[lv][where] for lad, lv in zip(ladders, levels, strict=True)],
        [lad.cards[lv] for lad, lv in zip(ladders, levels, strict=True)],
        n_kept,
    )
    drop = classes_to_drop(ids, max_average)[ids]
    kept[where[drop]] = False
    return int(drop.sum()), ids


def _check_arguments(
    frame: pd.DataFrame,
    quasi_identifiers: Mapping[str, str | None],
    k: int,
    max_suppression: float,
    sensitive_column: str | None,
) -> None:
    if k < 1:
        raise ValueError("k must be at least 1")
    if not 0.0 <= max_suppression <= 1.0:
        raise ValueError("max_suppression must be within [0, 1]")
    missing = [c for c in quasi_identifiers if c not in frame.columns]
    if missing:
        raise KeyError(f"quasi-identifier columns not in the frame: {missing}")
    if sensitive_column is not None and sensitive_column not in frame.columns:
        raise KeyError(f"sensitive column {sensitive_column!r} not in the frame")


@dataclass(slots=True)
class _Search:
    """Where the greedy generalization stopped: a level per ladder, the group size of every row."""

    levels: list[int]
    sizes: np.ndarray
    steps: list[dict[str, Any]]
    stopped: str
    initial_violating: int


def _average_after(sizes: np.ndarray, k: int) -> float:
    """classes / records of the rows kept (groups of at least ``k``): sum over them of 1 / size, over their number."""
    kept = sizes >= k
    n_kept = int(kept.sum())
    return float((1.0 / sizes[kept]).sum() / n_kept) if n_kept else 0.0


def _generalize(ladders: Sequence[Ladder], n: int, k: int, budget: int, max_average: float | None = None) -> _Search:
    """Raise one ladder a level at a time until at most ``budget`` rows are left in groups below ``k``
    (the step leaving the fewest there) and the average risk after suppression is at most
    ``max_average`` (the step lowering it most), or no generalization helps."""
    levels = [0] * len(ladders)

    def sizes_at(lv: Sequence[int]) -> np.ndarray:
        return _sizes(
            [lad.codes[i] for lad, i in zip(ladders, lv, strict=True)],
            [lad.cards[i] for lad, i in zip(ladders, lv, strict=True)],
            n,
        )

    coarsening: dict[tuple[int, int], bool] = {}

    def functional(index: int, level: int) -> bool:
        if (index, level) not in coarsening:
            coarsening[index, level] = coarsens(ladders[index], level)
        return coarsening[index, level]

    def average_too_high(sz: np.ndarray) -> bool:
        return max_average is not None and _average_after(sz, k) > max_average + 1e-12

    steps: list[dict[str, Any]] = []
    ids: np.ndarray | None = None
    sizes = sizes_at(levels)
    violating = int((sizes < k).sum())
    initial_violating = violating
    stopped = "within the suppression budget"
    while violating > budget or average_too_high(sizes):
        for_k = violating > budget
        best: tuple[tuple[float, float], int, np.ndarray] | None = None  # (objective, ladder index, sizes)
        trials = StepTrials(ladders, levels, n, sizes_at, functional, ids)
        for i, ladder in enumerate(ladders):
            if levels[i] >= ladder.top:
                continue
            trial_sizes = trials.sizes(i)
            after = float((trial_sizes < k).sum())
            average = _average_after(trial_sizes, k) if max_average is not None else 0.0
            objective = (after, average) if for_k else (average, after)
            if best is None or objective < best[0]:
                best = (objective, i, trial_sizes)
        if best is None:
            stopped = "every attribute fully generalized"
            break
        top_sizes = sizes_at([lad.top for lad in ladders]) if (not for_k or best[0][0] >= violating) else sizes
        if for_k and best[0][0] >= violating and int((top_sizes < k).sum()) >= violating:
            # Not even generalizing everything would help the rows left (they differ in an attribute
            # that is never generalized, such as gender): generalizing further only destroys utility.
            stopped = "no generalization helps the remaining rows"
            break
        if not for_k and _average_after(top_sizes, k) >= _average_after(sizes, k):
            stopped = "no generalization lowers the average risk"
            break
        _, chosen, sizes = best
        violating = int((sizes < k).sum())
        ids = trials.ids_after(chosen)  # the next step's classes, already numbered
        levels[chosen] += 1
        step: dict[str, Any] = {
            "column": ladders[chosen].column,
            "to": ladders[chosen].names[levels[chosen]],
            "violating_rows_after": violating,
            "for": "k" if for_k else "average risk",
        }
        if max_average is not None:
            step["average_risk_after"] = round(_average_after(sizes, k), 6)
        steps.append(step)
    return _Search(levels, sizes, steps, stopped, initial_violating)
