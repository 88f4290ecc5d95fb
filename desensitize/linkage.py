"""Linked copies (issue 23): per-licence pseudonyms, and risk measured on the view a licence can join.

Why: k-anonymity per table protects nothing once two tables sharing a person key are joined — the
joined row carries both tables' quasi-identifiers (issue 23 measured 99.6 % of the demo's joined rows
unique). So linkage is granted, not given:

* **Per-licence keys.** A copy served under a licence carries pseudonyms keyed for that licence and
  its *link group* (one dataset alone, or the datasets the licence grants for joint analysis):
  ``HMAC(group key, base pseudonym)`` where the group key is derived from the instance pepper, the
  licence and the group. Two licences' keys never join; within a licence, two datasets not granted
  jointly never join either (GB/T 37964-2019 假名化; 个人信息保护法 第七十三条(四) 去标识化: what
  cannot be combined without extra information).
* **Risk on the joined view.** Datasets granted jointly are anonymized together: k-anonymity and
  the risk measures hold on their joined view, not table by table (:func:`link_tables`).

How: ``desensitize.joint_view`` builds the joined view (null keys join nothing, a person counts
once, presence in a table is an attribute, fan-out bounded) and measures it; ``desensitize.joint``
searches the ladders and suppresses persons to a fixpoint; this module checks the group, propagates
the levels into each table, verifies the returned frames and writes the report.

Pure (tables in, tables out); the registry makes and stores licence copies (``registry.linkage``).
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from desensitize.joint import JointSearch, JointTarget
from desensitize.joint_view import MAX_JOINED_ROWS, PRESENT, blank_keys, joined_index, measure_joined, person_ids
from desensitize.ladders import Ladder, build_ladder
from desensitize.policy import RiskThreshold
from desensitize.risk import measure_risk, required_k
from desensitize.transforms.arrow import str_series, text_arrow
from desensitize.transforms.pseudonyms import keyed_hex
from desensitize.utility import column_loss

__all__ = ["MAX_JOINED_ROWS", "JointResult", "LinkedTable", "group_name", "licence_key", "link_tables", "rekey"]

_KEY_CONTEXT = b"keyong/licence-pseudonym/v1"


def group_name(datasets: Sequence[str]) -> str:
    """The canonical name of a link group: its datasets sorted, joined by ``+``."""
    names = sorted(set(datasets))
    if not names or any(not n or "+" in n for n in names):
        raise ValueError(f"a link group names one or more datasets without '+': {list(datasets)}")
    return "+".join(names)


def licence_key(pepper: bytes, licence_id: int, datasets: Sequence[str]) -> bytes:
    """The pseudonym key of one licence and one link group, derived from the instance pepper (never stored)."""
    if not pepper:
        raise ValueError("the pepper must not be empty")
    message = b"\x1f".join([_KEY_CONTEXT, str(int(licence_id)).encode(), group_name(datasets).encode()])
    return hmac.new(pepper, message, hashlib.sha256).digest()


def rekey(values: pd.Series, key: bytes) -> pd.Series:
    """The per-licence pseudonym of each base pseudonym (HMAC under ``key``, 128 bits hex); nulls stay null."""
    return str_series(keyed_hex(text_arrow(values), key), values.index)


@dataclass(slots=True)
class LinkedTable:
    """One copy of a link group, its pseudonyms already re-keyed for the licence.

    ``person_key``: the column the group joins on (a re-keyed person identifier), None when the table
    holds none (it then joins nothing). ``quasi_identifiers``: column -> ladder type (as the base
    copy's report names it). ``k`` and ``risk``: the table's own policy.
    """

    name: str
    frame: pd.DataFrame
    person_key: str | None
    quasi_identifiers: dict[str, str | None]
    sensitive: str | None = None
    k: int = 5
    max_suppression: float = 0.05
    risk: RiskThreshold | None = None


@dataclass(slots=True)
class JointResult:
    """The group's copies after joint anonymization, and the joint report.

    ``report`` keys: ``datasets``, ``person_keys`` ({name: column}), ``rows_joined``,
    ``quasi_identifiers`` (joined-view columns ``"<dataset>.<column>"``), ``k_target``,
    ``k_achieved``, ``threshold``, ``before`` and ``after`` (``desensitize.risk`` figures of the joined
    view), ``met``, ``reason``, ``steps``, ``persons_suppressed``, ``rows_suppressed`` ({name: n}),
    ``utility``.
    """

    frames: dict[str, pd.DataFrame]
    report: dict[str, Any] = field(default_factory=dict)


def link_tables(tables: Sequence[LinkedTable], *, max_joined_rows: int = MAX_JOINED_ROWS) -> JointResult:
    """Anonymize a link group together: k (distinct persons) and the risk thresholds hold on the joined view.

    The outer join on the person keys (``desensitize.joint_view``: null keys join nothing, a person
    counts once, presence in a table is an attribute) is generalized along each column's ladder and
    persons are suppressed to a fixpoint (``desensitize.joint``); the returned frames carry the
    generalized values (as the ladders write them: numbers stay numbers) without the suppressed
    persons' rows. The result is then verified on the returned frames alone: the joined view's k
    (persons) and risk, and each table alone against its own k and risk; ``report["met"]`` is False,
    with the reason, when any of it fails (the registry then refuses the linked copies).

    Raises ``ValueError`` for a group of fewer than two tables, duplicate names, a table that is
    empty, has no person key or only null keys (it is not linkable), unknown columns or bad
    parameters, and a join larger than ``max_joined_rows``.
    """
    _check(tables, max_joined_rows)
    frames = [t.frame.reset_index(drop=True) for t in tables]
    target, threshold = _target(tables, frames)
    persons, n_persons = person_ids([f[t.person_key] for t, f in zip(tables, frames, strict=True)])
    index = joined_index(persons, n_persons, max_joined_rows)
    ladders = [
        [build_ladder(f[c], typ, c) for c, typ in t.quasi_identifiers.items()]
        for t, f in zip(tables, frames, strict=True)
    ]
    search = JointSearch(index, [t.name for t in tables], ladders, persons)
    plan = search.generalize(target)
    alive, rounds, converged = search.suppress(plan.levels, target)
    out: dict[str, pd.DataFrame] = {}
    generalized: dict[str, pd.DataFrame] = {}
    kept: dict[str, np.ndarray] = {}
    at = 0
    for table, frame, own, ids in zip(tables, frames, ladders, persons, strict=True):
        levels = plan.levels[at : at + len(own)]
        at += len(own)
        kept[table.name] = alive[ids]
        out[table.name], generalized[table.name] = _propagate(frame, own, levels, kept[table.name])
    report = _report(tables, frames, out, threshold, max_joined_rows)
    report.update(
        {
            "persons": n_persons,
            "persons_suppressed": int(n_persons - alive.sum()),
            "rows_suppressed": {t.name: int((~kept[t.name]).sum()) for t in tables},
            "rows_without_person_key": {
                t.name: int(_without_key(f[t.person_key])) for t, f in zip(tables, frames, strict=True)
            },
            "generalization": _generalization(tables, ladders, plan.levels),
            "steps": [*plan.steps, *rounds],
            "stopped": plan.stopped,
            "initial_violating_persons": plan.initial_violating_persons,
            "l_diversity": {
                t.name: search.l_diversity(i, plan.levels, alive, f[t.sensitive])
                for i, (t, f) in enumerate(zip(tables, frames, strict=True))
                if t.sensitive is not None
            },
            "utility": _utility(tables, frames, out, generalized, kept, ladders, plan.levels, target),
        }
    )
    if not converged:
        report["met"] = False
        report["reason"] = "; ".join(filter(None, [report["reason"], "person suppression did not reach a fixpoint"]))
    return JointResult(out, report)


def _without_key(keys: pd.Series) -> int:
    """Rows whose person key is null or blank (each joins nothing)."""
    return int(blank_keys(keys).sum())


def _check(tables: Sequence[LinkedTable], max_joined_rows: int) -> None:
    """Refuse what cannot be linked safely, naming the table and the reason."""
    if len(tables) < 2:
        raise ValueError("a link group joins two or more tables")
    group_name([t.name for t in tables])
    if len({t.name for t in tables}) != len(tables):
        raise ValueError(f"a link group names each dataset once: {[t.name for t in tables]}")
    if max_joined_rows < 1:
        raise ValueError("max_joined_rows must be at least 1")
    names = [f"{t.name}.{c}" for t in tables for c in [*t.quasi_identifiers, PRESENT]]
    if len(set(names)) != len(names):
        clashes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"joined-view column names clash (dataset and column names with dots): {clashes}")
    for t in tables:
        if t.person_key is None or t.person_key not in t.frame.columns:
            raise ValueError(f"{t.name}: no person key column ({t.person_key!r}): the table is not linkable")
        if t.frame.columns.has_duplicates:
            raise ValueError(f"{t.name}: duplicate column names")
        if len(t.frame) == 0:
            raise ValueError(f"{t.name}: the table is empty: nothing to link")
        if _without_key(t.frame[t.person_key]) == len(t.frame):
            raise ValueError(f"{t.name}: every person key is null: the table joins nothing and is not linkable")
        missing = [c for c in [*t.quasi_identifiers, *([t.sensitive] if t.sensitive else [])] if c not in t.frame]
        if missing:
            raise ValueError(f"{t.name}: columns not in the table: {missing}")
        if t.person_key in t.quasi_identifiers or t.person_key == t.sensitive:
            raise ValueError(f"{t.name}: the person key {t.person_key!r} cannot be a quasi-identifier or sensitive")
        if t.k < 1 or not 0.0 <= t.max_suppression <= 1.0:
            raise ValueError(f"{t.name}: k must be at least 1 and max_suppression within [0, 1]")


def _target(tables: Sequence[LinkedTable], frames: Sequence[pd.DataFrame]) -> tuple[JointTarget, dict[str, Any]]:
    """The strictest of the tables' k and thresholds (the joined view holds the most sensitive of them)."""
    risks = [t.risk for t in tables if t.risk is not None]
    highest = min((r.highest for r in risks if r.highest is not None), default=None)
    average = min((r.average for r in risks if r.average is not None), default=None)
    at_risk = min((r.at_risk for r in risks), default=0.2)
    k = max(t.k for t in tables)
    k_needed = required_k(k, highest)
    target = JointTarget(
        k=k_needed,
        average=average,
        budgets=[math.floor(t.max_suppression * len(f)) for t, f in zip(tables, frames, strict=True)],
        table_k=[required_k(t.k, t.risk.highest if t.risk else None) for t in tables],
        table_average=[t.risk.average if t.risk else None for t in tables],
    )
    threshold = {"k": k, "k_required": k_needed, "highest": highest, "average": average, "record_threshold": at_risk}
    return target, threshold


def _propagate(
    frame: pd.DataFrame, ladders: Sequence[Ladder], levels: Sequence[int], kept: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table at the group's levels without the suppressed persons' rows, and its generalized
    quasi-identifier columns for every input row (what the utility measures compare)."""
    out = frame.copy()
    for ladder, level in zip(ladders, levels, strict=True):
        if level:
            out[ladder.column] = ladder.values(level, frame[ladder.column])
    generalized = out[[lad.column for lad in ladders]]
    return out.loc[kept].reset_index(drop=True), generalized


def _verify_tables(tables: Sequence[LinkedTable], out: Mapping[str, pd.DataFrame]) -> tuple[dict[str, Any], list[str]]:
    """Each table alone against its own k and risk (rows, as its base copy is measured)."""
    figures: dict[str, Any] = {}
    failures: list[str] = []
    for t in tables:
        frame = out[t.name]
        risk = measure_risk(frame, list(t.quasi_identifiers), threshold=t.risk.at_risk if t.risk else 0.2)
        k_needed = required_k(t.k, t.risk.highest if t.risk else None)
        average = t.risk.average if t.risk else None
        figures[t.name] = {"k_required": k_needed, "average_target": average, "risk": risk}
        if not len(frame):
            failures.append(f"{t.name}: every row suppressed")
        elif t.quasi_identifiers and (risk["k"] is None or risk["k"] < k_needed):
            failures.append(f"{t.name} alone: k {risk['k']} below {k_needed}")
        elif t.quasi_identifiers and average is not None and risk["prosecutor"]["average"] > average + 1e-12:
            failures.append(f"{t.name} alone: average risk {risk['prosecutor']['average']:.4f} above {average}")
    return figures, failures


def _report(
    tables: Sequence[LinkedTable],
    frames: Sequence[pd.DataFrame],
    out: Mapping[str, pd.DataFrame],
    threshold: dict[str, Any],
    max_joined_rows: int,
) -> dict[str, Any]:
    """Before/after figures of the joined view (measured on the frames, not the search) and the verdict."""
    at_risk = float(threshold["record_threshold"])
    before, rows_joined, _ = measure_joined(
        [(t.name, f, str(t.person_key), list(t.quasi_identifiers)) for t, f in zip(tables, frames, strict=True)],
        threshold=at_risk,
        bound=max_joined_rows,
    )
    after, rows_after, _ = measure_joined(
        [(t.name, out[t.name], str(t.person_key), list(t.quasi_identifiers)) for t in tables],
        threshold=at_risk,
        bound=max_joined_rows,
    )
    per_table, failures = _verify_tables(tables, out)
    if after["k"] is None or not after["records"]:
        failures.insert(0, "every person suppressed: nothing left to link")
    else:
        if after["k"] < threshold["k_required"]:
            failures.insert(0, f"joined view: k {after['k']} persons below {threshold['k_required']}")
        average = threshold["average"]
        if average is not None and after["prosecutor"]["average"] > average + 1e-12:
            failures.append(f"joined view: average risk {after['prosecutor']['average']:.4f} above {average}")
    return {
        "datasets": [t.name for t in tables],
        "group": group_name([t.name for t in tables]),
        "person_keys": {t.name: t.person_key for t in tables},
        "rows_joined": rows_joined,
        "rows_joined_after": rows_after,
        "max_joined_rows": max_joined_rows,
        "quasi_identifiers": [f"{t.name}.{c}" for t in tables for c in t.quasi_identifiers],
        "presence_columns": [f"{t.name}.{PRESENT}" for t in tables],
        "k_target": threshold["k"],
        "k_required": threshold["k_required"],
        "k_achieved": after["k"],
        "threshold": threshold,
        "before": before,
        "after": after,
        "tables": per_table,
        "met": not failures,
        "reason": "; ".join(failures) or None,
    }


def _generalization(
    tables: Sequence[LinkedTable], ladders: Sequence[Sequence[Ladder]], levels: Sequence[int]
) -> list[dict[str, Any]]:
    """Per joined-view column, the level reached (as the base copy's k-anonymity report names it)."""
    entries: list[dict[str, Any]] = []
    at = 0
    for table, own in zip(tables, ladders, strict=True):
        for ladder, level in zip(own, levels[at : at + len(own)], strict=True):
            entries.append(
                {
                    "column": f"{table.name}.{ladder.column}",
                    "dataset": table.name,
                    "source_column": ladder.column,
                    "ladder_type": ladder.pii_type,
                    "level": level,
                    "generalization": ladder.names[level],
                    "ladder": ladder.names,
                    "representation": ladder.representation(level),
                }
            )
        at += len(own)
    return entries


def _utility(
    tables: Sequence[LinkedTable],
    frames: Sequence[pd.DataFrame],
    out: Mapping[str, pd.DataFrame],
    generalized: Mapping[str, pd.DataFrame],
    kept: Mapping[str, np.ndarray],
    ladders: Sequence[Sequence[Ladder]],
    levels: Sequence[int],
    target: JointTarget,
) -> dict[str, Any]:
    """What reaching the joint target cost: per column distinct values before/after, height and
    non-uniform entropy (``desensitize.utility.column_loss``), per table the rows suppressed."""
    columns: list[dict[str, Any]] = []
    at = 0
    for table, frame, own in zip(tables, frames, ladders, strict=True):
        for ladder, level in zip(own, levels[at : at + len(own)], strict=True):
            c = ladder.column
            columns.append(
                {
                    "column": f"{table.name}.{c}",
                    "distinct_before": int(frame[c].nunique()),
                    "distinct_after": int(out[table.name][c].nunique()),
                    "generalization_height": level,
                    "max_height": ladder.top,
                    "non_uniform_entropy": column_loss(frame[c], generalized[table.name][c], kept[table.name]),
                }
            )
        at += len(own)
    per_table = {}
    for t, frame, budget in zip(tables, frames, target.budgets, strict=True):
        suppressed = int((~kept[t.name]).sum())
        per_table[t.name] = {
            "rows_in": len(frame),
            "rows_out": len(out[t.name]),
            "suppressed_share": round(suppressed / len(frame), 6) if len(frame) else 0.0,
            "suppression_budget_rows": budget,
            "within_budget": suppressed <= budget,
        }
    return {"columns": columns, "tables": per_table}
