"""A labelled test set for the recognizers: true entity spans in sentences and in table cells.

Why generated: detection quality has to be measured on data whose answers are known, and real
government notes cannot leave their domain (原始数据不出域). The set is built from the synthetic
tables (``samples.synthetic``: valid IDs, USCCs, names, addresses of 双鸭山) and from generators
here for what those tables lack (bank cards with a Luhn digit, landlines, passports, travel
permits, plates, e-mail and IP addresses). It is deterministic: everything is drawn from one
``numpy.random.Generator`` seeded by ``seed``.

It is deliberately noisy where real notes are: digits in full-width form, numbers split by spaces
or hyphens, +86 prefixes, lower-case check characters, numbers glued into sentences, names
without any context word. And it carries hard negatives that must NOT be flagged: resident IDs and
USCCs with a wrong check character, IDs whose check character is right but whose birth date is
impossible or in the future, bank card numbers failing Luhn, 18-digit order numbers, timestamps,
amounts, dates, postal codes, and words that start with a surname character (全体同志, 于本月).

Two kinds of items:

* ``sentences``: free-text notes, each with 0-3 entities (0 for the hard-negative-only notes);
* ``cells``: a table with one column per entity type (Chinese headers, as a custodian's export
  would have them), mostly true values in noisy formats plus that type's hard negatives and nulls.

``evaluate`` scores predicted spans against the true ones per entity type, span by span, either
``exact`` (same start, end and type) or ``overlap`` (same type and intersection over union >= 0.5,
one-to-one): exact is the bar for identifiers, overlap is fair for names and addresses, whose
boundaries in running Chinese text are a matter of judgement (住在新兴大街12号 vs 新兴大街12号).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from desensitize import ENTITY_TYPES
from samples import synthetic
from samples.labelled_notes import entity_value, sentence
from samples.labelled_values import PINYIN, ValueDraw

__all__ = [
    "CELL_COLUMNS",
    "EntitySpan",
    "LabelledSet",
    "Score",
    "evaluate",
    "generate",
]

#: Column header of the cell table for each entity type, and the column type it holds.
CELL_COLUMNS: dict[str, tuple[str, str]] = {
    "CN_RESIDENT_ID": ("公民身份号码", "cn_resident_id"),
    "CN_USCC": ("统一社会信用代码", "uscc"),
    "CN_MOBILE": ("手机号码", "cn_phone"),
    "CN_LANDLINE": ("固定电话", "cn_landline"),
    "CN_BANK_CARD": ("银行卡号", "bank_card"),
    "CN_PASSPORT": ("护照号码", "passport"),
    "CN_TRAVEL_PERMIT": ("通行证号码", "travel_permit"),
    "CN_LICENSE_PLATE": ("车牌号码", "license_plate"),
    "EMAIL_ADDRESS": ("电子邮箱", "email"),
    "IP_ADDRESS": ("IP地址", "ip_address"),
    "PERSON": ("姓名", "person_name"),
    "CN_ADDRESS": ("住址", "address"),
}


@dataclass(frozen=True, slots=True)
class EntitySpan:
    """A true entity: ``row`` of the sentence (or cell) series, character offsets, type."""

    row: int
    start: int
    end: int
    entity_type: str


class _SpanLike(Protocol):
    row: int
    start: int
    end: int
    entity_type: str


@dataclass(frozen=True)
class LabelledSet:
    """The generated set. ``cells`` columns are named by ``CELL_COLUMNS`` headers; ``cell_truth``
    has the same shape and says which cells are true values of their column's type."""

    sentences: pd.Series
    sentence_entities: tuple[EntitySpan, ...]
    negative_rows: np.ndarray  # rows of ``sentences`` that hold hard negatives only
    cells: pd.DataFrame
    cell_truth: pd.DataFrame
    names: tuple[str, ...]  # the "dataset's own name column": names known to the custodian
    seed: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def cell_entities(self, entity_type: str) -> tuple[EntitySpan, ...]:
        """True spans of one cell column: the whole (stripped) value of every true cell."""
        header = CELL_COLUMNS[entity_type][0]
        values = self.cells[header]
        truth = self.cell_truth[header].to_numpy(dtype=bool)
        out = []
        for row in np.flatnonzero(truth):
            text = values.iloc[row]
            lead = len(text) - len(text.lstrip())
            out.append(EntitySpan(int(row), lead, len(text.rstrip()), entity_type))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Score:
    """Span-level quality of one entity type."""

    entity_type: str
    precision: float
    recall: float
    support: int  # true spans
    predicted: int
    true_positives: int

    def as_json(self) -> dict[str, object]:
        return {
            "entity_type": self.entity_type,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "support": self.support,
            "predicted": self.predicted,
            "true_positives": self.true_positives,
        }


# ---------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------


def _iou(a: _SpanLike, b: _SpanLike) -> float:
    inter = min(a.end, b.end) - max(a.start, b.start)
    if inter <= 0:
        return 0.0
    return inter / (max(a.end, b.end) - min(a.start, b.start))


def evaluate(truth: Iterable[_SpanLike], predicted: Iterable[_SpanLike], *, mode: str = "exact") -> dict[str, Score]:
    """Precision, recall and support per entity type (every type of ``ENTITY_TYPES`` is reported).

    ``mode="exact"``: a prediction is right when a true span has the same row, start, end and type.
    ``mode="overlap"``: right when a true span of the same type in the same row has intersection
    over union >= 0.5 with it; each true span matches at most one prediction. Precision of a type
    with no predictions is 1.0, recall of a type with no support is 1.0.
    """
    if mode not in ("exact", "overlap"):
        raise ValueError("mode must be 'exact' or 'overlap'")
    gold: dict[tuple[int, str], list[_SpanLike]] = {}
    support: dict[str, int] = dict.fromkeys(ENTITY_TYPES, 0)
    for t in truth:
        gold.setdefault((t.row, t.entity_type), []).append(t)
        support[t.entity_type] = support.get(t.entity_type, 0) + 1
    predicted_n: dict[str, int] = dict.fromkeys(support, 0)
    hits: dict[str, int] = dict.fromkeys(support, 0)
    used: set[int] = set()
    for p in predicted:
        predicted_n[p.entity_type] = predicted_n.get(p.entity_type, 0) + 1
        candidates = gold.get((p.row, p.entity_type), [])
        best, best_iou = None, 0.0
        for t in candidates:
            if id(t) in used:
                continue
            if mode == "exact":
                if t.start == p.start and t.end == p.end:
                    best = t
                    break
            else:
                iou = _iou(p, t)
                if iou >= 0.5 and iou > best_iou:
                    best, best_iou = t, iou
        if best is not None:
            used.add(id(best))
            hits[p.entity_type] = hits.get(p.entity_type, 0) + 1
    return {
        entity: Score(
            entity,
            hits[entity] / predicted_n[entity] if predicted_n[entity] else 1.0,
            hits[entity] / support[entity] if support[entity] else 1.0,
            support[entity],
            predicted_n[entity],
            hits[entity],
        )
        for entity in support
    }


# ---------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------


def _bad_cell(draw: ValueDraw, entity: str) -> str:
    """A hard negative for a cell column of ``entity``: looks like the type, is not one."""
    makers: dict[str, Callable[[], str]] = {
        "CN_RESIDENT_ID": lambda: draw.bad_check_id() if draw.p(0.6) else draw.impossible_birth_id(),
        "CN_USCC": draw.bad_check_uscc,
        "CN_MOBILE": lambda: "1" + draw.pick(("0", "1", "2")) + draw.digits(9),  # no 10x-12x mobile networks
        "CN_LANDLINE": lambda: "00" + draw.digits(1 + int(draw.p(0.5))) + "-" + draw.digits(7),  # no area code 00…
        "CN_BANK_CARD": draw.bad_luhn_card,
        "CN_PASSPORT": lambda: draw.pick(("A", "B", "K", "X")) + draw.digits(8),
        "CN_TRAVEL_PERMIT": lambda: draw.pick(("C", "T")) + draw.digits(6),
        "CN_LICENSE_PLATE": lambda: "黑J" + draw.pick(tuple("ABCDEFGH")) * 3 + draw.digits(2),
        "EMAIL_ADDRESS": lambda: draw.pick(PINYIN) + draw.pick(("@", "@@", "#")) + draw.pick(("qq", "163.", "com")),
        "IP_ADDRESS": lambda: ".".join(str(draw.rng.integers(256, 999) if i == 2 else draw.rng.integers(1, 255))
                                       for i in range(4)),
        "PERSON": lambda: draw.pick(("不详", "未知", "无", "本人", "同上", "待补充")),
        "CN_ADDRESS": lambda: draw.pick(("不详", "同上", "无固定住所", "待补充", "外地")),
    }  # fmt: skip
    return makers[entity]()


def _cells(draw: ValueDraw, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    columns: dict[str, list[str | None]] = {}
    truth: dict[str, list[bool]] = {}
    for entity, (header, _) in CELL_COLUMNS.items():
        values: list[str | None] = []
        flags: list[bool] = []
        for _ in range(n):
            r = draw.rng.random()
            if r < 0.04:
                values.append(None)
                flags.append(False)
            elif r < 0.20:
                values.append(_bad_cell(draw, entity))
                flags.append(False)
            else:
                value = entity_value(draw, entity)
                if draw.p(0.05):
                    value = " " + value + " "  # stray spaces around a cell: still a value
                values.append(value)
                flags.append(True)
        columns[header] = values
        truth[header] = flags
    return pd.DataFrame(columns, dtype="str"), pd.DataFrame(truth)


# ---------------------------------------------------------------------------
# the set
# ---------------------------------------------------------------------------


def generate(n_sentences: int = 4000, n_cells: int = 600, seed: int = 0) -> LabelledSet:
    """The labelled set: ``n_sentences`` notes (about a quarter hard-negative only, the rest with
    1-3 entities of types drawn uniformly) and a table of ``n_cells`` rows per entity type.

    The names of the residents table are the ``names`` a custodian knows; about one name in five in
    the notes is someone else's (a clerk, a relative) and can be found only from its context.
    """
    if n_sentences < 0 or n_cells < 0:
        raise ValueError("sizes must be non-negative")
    rng = np.random.default_rng(seed)
    tables = synthetic.generate_all(max(200, min(20_000, n_sentences // 2 + n_cells)), seed=seed)
    fresh = synthetic.residents(2000, seed=seed + 7919)
    draw = ValueDraw(rng, tables, fresh)

    texts: list[str] = []
    entities: list[EntitySpan] = []
    negative_rows: list[int] = []
    for row in range(n_sentences):
        if draw.p(0.25):
            text, spans = sentence(draw, [], int(draw.rng.integers(1, 4)))
            negative_rows.append(row)
        else:
            k = int(draw.rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25]))
            types = [ENTITY_TYPES[int(i)] for i in draw.rng.integers(0, len(ENTITY_TYPES), k)]
            text, spans = sentence(draw, types, int(draw.p(0.35)))
        texts.append(text)
        entities.extend(EntitySpan(row, s, e, t) for s, e, t in spans)

    cells, truth = _cells(draw, n_cells)
    return LabelledSet(
        sentences=pd.Series(texts, dtype="str", name="备注"),
        sentence_entities=tuple(entities),
        negative_rows=np.array(negative_rows, dtype=np.int64),
        cells=cells,
        cell_truth=truth,
        names=tuple(tables["residents"]["姓名"].tolist()),
        seed=seed,
        counts={"sentence_entities": len(entities), "cell_positives": int(truth.to_numpy().sum())},
    )
