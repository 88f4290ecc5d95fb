"""The search that anonymizes a link group on its joined view: one ladder level per column, then persons.

Why its own search rather than ``k_anonymize`` per table: what an operator licensed for a group
holds is the join, so k-anonymity and the risk thresholds must hold on the union of the tables'
quasi-identifiers (the risk of the union, not of the parts; GB/T 37964-2019 附录B K-匿名模型 applied
to the data as it can be combined, 个人信息保护法 第七十三条(四): 去标识化 is judged on what can be
combined). The joined view's columns are ``"<dataset>.<column>"``: the same attribute in two tables
(出生日期 in residents and in social insurance) is two columns, each generalized along its own ladder,
and a class is defined by both, so the intersection of their generalizations is what counts.

Search (greedy, as ``desensitize.kanonymity``, on integer codes of the joined rows): while the
persons in classes of fewer than k distinct persons cost more rows in some table than its
suppression budget, take the one ladder step (over every column of every table) that leaves the
fewest such persons; once within budget, keep generalizing while the average prosecutor risk after
suppression (classes / records, records deduplicated per person) is above the threshold. Stop when
no step helps (the persons left differ in an attribute never generalized, such as gender).

Suppression is of persons (all their rows in every table of the group: a person half-suppressed is
still linkable through the other half) and runs to a fixpoint, because removing a person can shrink
another class below k: joint k, joint average risk (smallest classes first,
``desensitize.risk.classes_to_drop``), then each table alone (its own k and average risk, counted
in rows as its base copy is), round after round until a round removes nobody.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from desensitize.joint_view import JoinedIndex
from desensitize.ladders import Ladder
from desensitize.risk import classes_to_drop

__all__ = ["MAX_ROUNDS", "JointSearch", "JointTarget"]

#: Suppression rounds before giving up (each removes at least one person; the copy is then refused).
MAX_ROUNDS = 500


@dataclass(slots=True)
class JointTarget:
    """What the group must meet: k (distinct persons) and average risk on the joined view, budgets and
    each table's own k and average risk (in rows)."""

    k: int
    average: float | None
    budgets: list[int]
    table_k: list[int]
    table_average: list[float | None]


@dataclass(slots=True)
class _Evaluation:
    bad: np.ndarray  # per person: in a class below k
    n_bad: int
    average: float  # classes / records of the classes kept (at least k persons)


@dataclass(slots=True)
class Generalization:
    """Where the search stopped: a level per column, its steps, why it stopped, persons violating at first."""

    levels: list[int]
    steps: list[dict[str, Any]] = field(default_factory=list)
    stopped: str = ""
    initial_violating_persons: int = 0


def _dense(parts: Sequence[tuple[np.ndarray, int]], n: int) -> np.ndarray:
    """A dense class id per row over the code columns (re-densified at each column: no overflow)."""
    key = np.zeros(n, dtype=np.int64)
    for codes, card in parts:
        key = np.asarray(pd.factorize(key * card + codes)[0], dtype=np.int64)
    return key


def _persons_per_class(ids: np.ndarray, person: np.ndarray, n_persons: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct persons in each class, and the class of each distinct (person, class) record."""
    if not len(ids):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    pairs = np.sort(ids * n_persons + person)  # sorting beats numpy's hash-based unique on these keys
    pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))]
    classes = pairs // n_persons
    return np.bincount(classes, minlength=int(ids.max()) + 1), classes


class JointSearch:
    """The joined view's quasi-identifier codes and the search over their ladders.

    ``ladders``: per table, the ladders of its quasi-identifier columns (built on the table's rows);
    ``table_persons``: per table, the person id of each row; ``names``: the tables' dataset names.
    """

    def __init__(
        self,
        index: JoinedIndex,
        names: Sequence[str],
        ladders: Sequence[Sequence[Ladder]],
        table_persons: Sequence[np.ndarray],
    ):
        self.index = index
        self.names = list(names)
        self.ladders = [list(own) for own in ladders]
        self.columns = [(t, ladder) for t, own in enumerate(self.ladders) for ladder in own]
        self.table_persons = list(table_persons)
        presence = [((rows >= 0).astype(np.int64), 2) for rows in index.rows]
        self._presence = _dense(presence, len(index.person))
        self._presence_card = int(self._presence.max()) + 1 if len(self._presence) else 1

    @property
    def tops(self) -> list[int]:
        return [ladder.top for _, ladder in self.columns]

    def _codes(self, column: int, level: int) -> tuple[np.ndarray, int]:
        """Codes of one column over the joined rows; a person absent from the table has a code of its own."""
        table, ladder = self.columns[column]
        rows = self.index.rows[table]
        codes = ladder.codes[level][np.maximum(rows, 0)] if len(ladder.codes[level]) else np.zeros(len(rows), np.int64)
        return np.where(rows >= 0, codes, ladder.cards[level]), ladder.cards[level] + 1

    def class_ids(self, levels: Sequence[int], where: np.ndarray | None = None) -> np.ndarray:
        """Dense class ids of the joined rows (``where``: only those) at ``levels``, presence included."""
        parts = [self._codes(c, lv) for c, lv in enumerate(levels)] + [(self._presence, self._presence_card)]
        if where is not None:
            parts = [(codes[where], card) for codes, card in parts]
        return _dense(parts, len(self.index.person) if where is None else int(where.sum()))

    def _evaluate(self, levels: Sequence[int], k: int) -> _Evaluation:
        ids = self.class_ids(levels)
        per_class, _ = _persons_per_class(ids, self.index.person, self.index.n_persons)
        bad = np.zeros(self.index.n_persons, dtype=bool)
        bad[self.index.person[per_class[ids] < k]] = True
        kept = per_class >= k
        records = int(per_class[kept].sum())
        return _Evaluation(bad, int(bad.sum()), float(kept.sum()) / records if records else 0.0)

    def _within_budget(self, bad: np.ndarray, target: JointTarget) -> bool:
        return all(int(bad[p].sum()) <= b for p, b in zip(self.table_persons, target.budgets, strict=True))

    def generalize(self, target: JointTarget) -> Generalization:
        """Climb the ladders one level at a time (see the module docstring)."""
        levels = [0] * len(self.columns)
        current = self._evaluate(levels, target.k)
        result = Generalization(levels, [], "within the suppression budget", current.n_bad)

        def average_too_high(e: _Evaluation) -> bool:
            return target.average is not None and e.average > target.average + 1e-12

        while not self._within_budget(current.bad, target) or average_too_high(current):
            for_k = not self._within_budget(current.bad, target)
            best: tuple[tuple[float, float], int, _Evaluation] | None = None
            for c, (_, ladder) in enumerate(self.columns):
                if levels[c] >= ladder.top:
                    continue
                trial_levels = list(levels)
                trial_levels[c] += 1
                trial = self._evaluate(trial_levels, target.k)
                objective = (trial.n_bad, trial.average) if for_k else (trial.average, trial.n_bad)
                if best is None or objective < best[0]:
                    best = (objective, c, trial)
            if best is None:
                result.stopped = "every attribute fully generalized"
                break
            if (for_k and best[2].n_bad >= current.n_bad) or (not for_k and best[2].average >= current.average):
                top = self._evaluate(self.tops, target.k)
                if for_k and top.n_bad >= current.n_bad:
                    result.stopped = "no generalization helps the remaining persons"
                    break
                if not for_k and top.average >= current.average:
                    result.stopped = "no generalization lowers the average risk"
                    break
            _, chosen, current = best
            levels[chosen] += 1
            table, ladder = self.columns[chosen]
            result.steps.append(
                {
                    "column": f"{self.names[table]}.{ladder.column}",
                    "to": ladder.names[levels[chosen]],
                    "violating_persons_after": current.n_bad,
                    "average_risk_after": round(current.average, 6),
                    "for": "k" if for_k else "average risk",
                }
            )
        self._relax(result, current, target)
        return result

    def _relax(self, result: Generalization, current: _Evaluation, target: JointTarget) -> None:
        """Undo steps the target does not need: lower a column a level while the result stays as good.

        Why: a greedy step that helps no class alone (an employer and a date each near-unique, only
        their pair generalized helps) may blur other columns on the way; once the target is
        reached, each column is lowered again if that keeps the target (else: keeps the persons
        violating and the average risk from rising), the lowering that leaves fewest violating first.
        """

        def ok(e: _Evaluation) -> bool:
            average_ok = target.average is None or e.average <= target.average + 1e-12
            return self._within_budget(e.bad, target) and average_ok

        met = ok(current)
        while True:
            best: tuple[tuple[int, float], int, _Evaluation] | None = None
            for c, level in enumerate(result.levels):
                if level == 0:
                    continue
                trial_levels = list(result.levels)
                trial_levels[c] -= 1
                trial = self._evaluate(trial_levels, target.k)
                good = ok(trial) if met else trial.n_bad <= current.n_bad and trial.average <= current.average + 1e-12
                if good and (best is None or (trial.n_bad, trial.average) < best[0]):
                    best = ((trial.n_bad, trial.average), c, trial)
            if best is None:
                return
            _, chosen, current = best
            result.levels[chosen] -= 1
            table, ladder = self.columns[chosen]
            result.steps.append(
                {
                    "column": f"{self.names[table]}.{ladder.column}",
                    "to": ladder.names[result.levels[chosen]],
                    "violating_persons_after": current.n_bad,
                    "average_risk_after": round(current.average, 6),
                    "for": "utility (a step not needed, undone)",
                }
            )

    def suppress(self, levels: Sequence[int], target: JointTarget) -> tuple[np.ndarray, list[dict[str, Any]], bool]:
        """Suppress persons to a fixpoint; returns which persons stay, the rounds, and whether it converged."""
        alive = np.ones(self.index.n_persons, dtype=bool)
        rounds: list[dict[str, Any]] = []
        for _ in range(MAX_ROUNDS):
            removed, why = self._round(levels, alive, target)
            if not removed:
                return alive, rounds, True
            rounds.append({"suppressed_persons": removed, "for": why})
        return alive, rounds, False

    def _drop(self, alive: np.ndarray, persons: np.ndarray) -> int:
        persons = np.unique(persons)
        before = int(alive.sum())
        alive[persons] = False
        return before - int(alive.sum())

    def _round(self, levels: Sequence[int], alive: np.ndarray, target: JointTarget) -> tuple[int, str]:
        """One suppression round: the first rule that removes someone, in the order of the module docstring."""
        where = alive[self.index.person]
        person = self.index.person[where]
        if len(person):
            ids = self.class_ids(levels, where)
            per_class, record_classes = _persons_per_class(ids, person, self.index.n_persons)
            removed = self._drop(alive, person[per_class[ids] < target.k])
            if removed:
                return removed, "joint k"
            if target.average is not None:
                dropped = classes_to_drop(record_classes, target.average)
                removed = self._drop(alive, person[dropped[ids]])
                if removed:
                    return removed, "joint average risk"
        for t, name in enumerate(self.names):
            removed = self._table_round(t, levels, alive, target)
            if removed:
                return removed, f"{name} alone"
        return 0, ""

    def table_codes(self, table: int, levels: Sequence[int]) -> list[tuple[np.ndarray, int]]:
        """Codes of one table's quasi-identifier columns over its own rows, at ``levels`` (all columns')."""
        return [
            (ladder.codes[lv], ladder.cards[lv])
            for (t, ladder), lv in zip(self.columns, levels, strict=True)
            if t == table
        ]

    def _table_round(self, table: int, levels: Sequence[int], alive: np.ndarray, target: JointTarget) -> int:
        persons = self.table_persons[table]
        where = alive[persons]
        if not where.any() or not self.ladders[table]:
            return 0  # without quasi-identifiers a table alone has no classes (desensitize.risk: k n/a)
        ids = _dense([(codes[where], card) for codes, card in self.table_codes(table, levels)], int(where.sum()))
        sizes = np.bincount(ids)
        removed = self._drop(alive, persons[where][sizes[ids] < target.table_k[table]])
        average = target.table_average[table]
        if not removed and average is not None:
            removed = self._drop(alive, persons[where][classes_to_drop(ids, average)[ids]])
        return removed

    def l_diversity(self, table: int, levels: Sequence[int], alive: np.ndarray, values: pd.Series) -> dict[str, Any]:
        """Distinct non-null values of ``table``'s sensitive column per joined class where the table is present."""
        rows = self.index.rows[table]
        where = alive[self.index.person] & (rows >= 0)
        codes, uniques = pd.factorize(values)
        name = str(values.name)
        if not where.any():
            return {"column": name, "l": None, "classes": 0, "classes_below_2": 0}
        ids = self.class_ids(levels, where)
        sensitive = np.asarray(codes, dtype=np.int64)[rows[where]]
        present = sensitive >= 0
        width = len(uniques) + 1
        pairs = np.unique(ids[present] * width + sensitive[present])
        per_class = np.bincount(pairs // width, minlength=int(ids.max()) + 1)
        return {
            "column": name,
            "l": int(per_class.min()),
            "classes": len(per_class),
            "classes_below_2": int((per_class < 2).sum()),
        }
