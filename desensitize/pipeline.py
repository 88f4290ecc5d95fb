"""One table in, its desensitized copy, report and guard fingerprints out.

Why one function: the copy a sandbox mounts (双鸭山市公共数据管理暂行办法 第三十五条 原始数据不出域、
数据可用不可见), the report the custodian signs off and the fingerprints the export guard probes must
describe the same run — the same policy, the same rows, the same pseudonyms. Making them in one
pass over the table guarantees that, and keeps the cost to one read of the raw data.

Stages (each reported to ``progress(stage, done, total)`` for the CLI's bar):

1. ``transform``: each column gets its type's rule from the policy of the dataset's level
   (GB/T 37964-2019 techniques, see ``desensitize.policy.TECHNIQUES``); near-unique columns of a
   personal table are then keys (``desensitize.keys``: pseudonymized unless the custodian keeps one
   with a reason); free-text columns are redacted last, with the dataset's own person names and the
   keys' raw values as extra knowledge.
2. ``k-anonymity``: quasi-identifier columns — the policy's types and, in a personal table, dates,
   employers, places and high-cardinality columns by default unless the custodian rules one out
   (``desensitize.quasi``, issue 23; dates first coarsened to the policy's precision) — generalized
   and rows suppressed until every combination has at least the policy's k rows (GB/T 37964-2019
   附录B); l-diversity of the sensitive column reported.
3. ``risk`` and ``utility``: re-identification risk over the quasi-identifiers before (raw values)
   and after (the copy), against the policy's threshold (a policy without quasi-identifiers, L1/L2:
   measured over the personal quasi-identifier types present, reported only) (``desensitize.risk``; ARX and sdcMicro's
   measures), and the copy's information loss and workload errors (``desensitize.utility``);
   timed in the report but not a progress stage of its own (a few percent of the transform).
4. ``fingerprints``: keyed hashes of raw identifiers, pseudonyms, quasi-identifier tuples and
   whole rows, kept outside the sandbox for the export guard.

The input frame is never modified. Imports nothing of Keyong outside ``desensitize``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from desensitize.ahead import copy_prints_ahead, deferred, early_prints, raw_codes_ahead
from desensitize.cells import check_cells, check_copy, check_report
from desensitize.copy_risk import REPORT_ONLY_NOTE, copy_risk
from desensitize.errors import DesensitizeError, StageTracker, out_of_resources, unforeseen
from desensitize.fingerprints import IDENTIFIER_TYPES, FingerprintSet, RawPrints, raw_prints
from desensitize.forking import Forked, WorkerLostError, worth_forking
from desensitize.kanonymity import KAnonymityResult, k_anonymize, kept_frame
from desensitize.keys import KeyColumn, check_keep, find_keys, key_literals
from desensitize.ladders import Ladder
from desensitize.policy import Policy
from desensitize.quasi import (
    Found,
    QuasiIdentifier,
    RulingError,
    check_not_quasi,
    find_quasi_identifiers,
    generalized_not_keyed,
    risk_columns,
)
from desensitize.risk import column_codes
from desensitize.splits import MAX_ROUNDS, SPLITS, candidates, ladder_type, smallest_split, splitting
from desensitize.transforms import TextRedactor, TransformError, as_text, describe, transform_column
from desensitize.utility import measure_utility

__all__ = ["REPORT_ONLY_NOTE", "DesensitizedTable", "Progress", "dataset_names", "desensitize_table"]

Progress = Callable[[str, int, int], None]


@dataclass(slots=True)
class DesensitizedTable:
    """The desensitized copy (what a sandbox mounts), its report, and the guard's fingerprints (kept outside)."""

    frame: pd.DataFrame
    report: dict[str, Any]
    fingerprints: FingerprintSet
    #: Per input row, whether it is in ``frame`` (False: suppressed for k-anonymity), in input order.
    kept_rows: np.ndarray

    def columns_json(self) -> list[dict[str, Any]]:
        """Every input column with its type and action (dropped ones included), for the CLI's JSON contract."""
        return [{"name": c["name"], "type": c["type"], "action": c["action"]} for c in self.report["columns"]]


def dataset_names(df: pd.DataFrame, column_types: Mapping[str, str | None]) -> list[str]:
    """Distinct person names of the dataset's name columns (two characters or more), for the text redactor."""
    parts: list[pd.Series] = []
    for column, pii_type in column_types.items():
        if pii_type == "person_name" and column in df.columns:
            values = as_text(df[column]).str.strip().dropna()
            parts.append(values[(values.str.len() >= 2).to_numpy(dtype=bool)])
    if not parts:
        return []
    distinct = pd.concat(parts, ignore_index=True).unique()
    if isinstance(distinct, pd.arrays.ArrowStringArray):
        # Arrow's order of UTF-8 bytes is Python's order of code points, at a third of sorted()'s cost.
        array = pa.array(distinct)
        return cast(list[str], pc.take(array, pc.array_sort_indices(array)).to_pylist())
    return sorted(str(v) for v in distinct)


def _json_ready(value: Any) -> Any:
    """numpy scalars inside the report as plain Python numbers."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _label_text(label: object, position: int | None) -> str:
    """A column label as text; a label whose ``str()`` raises is refused (red team 23a F8: it escaped raw)."""
    try:
        return str(label)
    except Exception as exc:
        where = f"column {position:,}" if position is not None else "a column named in the column types"
        raise DesensitizeError(
            f"the label of {where} cannot be turned into text ({type(exc).__name__}); name every column with text "
            "(数据项名称) and desensitize again",
            stage="entry",
        ) from exc


def desensitize_table(
    df: pd.DataFrame,
    column_types: Mapping[str, str | None],
    policy: Policy,
    *,
    pepper: bytes,
    confidences: Mapping[str, float] | None = None,
    sensitive_column: str | None = None,
    text_redactor: TextRedactor | None = None,
    progress: Progress | None = None,
    keep_columns: Mapping[str, str] | None = None,
    not_quasi: Mapping[str, str] | None = None,
) -> DesensitizedTable:
    """Apply ``policy`` to ``df`` whose columns have the given types (absent or None: unrecognised).

    ``sensitive_column`` names the column whose l-diversity is reported (default: the first column
    whose type the policy lists as sensitive). ``text_redactor`` replaces the default free-text
    redactor (``desensitize.textscan.redact``). ``keep_columns`` (column -> reason) are near-unique
    columns the custodian keeps as they are (``desensitize.keys``); ``not_quasi`` (column -> reason)
    columns the custodian rules not quasi-identifiers (``desensitize.quasi``). Raises ``KeyError`` for
    types, a sensitive column, a kept or a ruled column naming columns the frame lacks, ``ValueError``
    for a kept or ruled column without a reason (or a ruling against a type the policy lists as a
    quasi-identifier), ``TransformError`` when an action cannot apply, and ``DesensitizeError`` (which
    ``TransformError`` is) for duplicate column names, cells no rule is written for (bytes, nested values,
    lone surrogates: ``desensitize.cells``), a kept column the copy cannot hold, or any other failure of a
    stage, naming it, with the original exception as ``__cause__`` (``desensitize.errors``).
    """
    if not pepper:
        raise ValueError("desensitization needs the instance pepper")
    if not all(isinstance(c, str) for c in df.columns):
        # Parquet and the report name columns by strings; pandas 3's copy-on-write makes this a view.
        df = df.set_axis([_label_text(c, n) for n, c in enumerate(df.columns, start=1)], axis=1)
        column_types = {_label_text(c, None): t for c, t in column_types.items()}
    if df.columns.has_duplicates:
        duplicated = sorted(set(df.columns[df.columns.duplicated()]))
        raise DesensitizeError(f"the table has duplicate column names: {duplicated}; give every column its own name")
    unknown = [c for c in column_types if c not in df.columns]
    if unknown:
        raise KeyError(f"column types given for columns the table lacks: {unknown}")
    if sensitive_column is not None and sensitive_column not in df.columns:
        raise KeyError(f"sensitive column {sensitive_column!r} is not in the table")
    keep = check_keep(keep_columns, df.columns)
    rulings = check_not_quasi(not_quasi, df.columns)
    check_cells(df)  # bytes, nested values, lone surrogates: refused by column and record (desensitize.cells)
    note = StageTracker(progress or (lambda stage, done, total: None))
    confidences = confidences or {}
    types: dict[str, str | None] = {c: column_types.get(c) for c in df.columns}
    started = time.perf_counter()
    # The raw side of the fingerprints needs only the raw table: on a large one it is hashed on the
    # other core while this process transforms (desensitize.forking).
    identifiers = [c for c in df.columns if types.get(c) in IDENTIFIER_TYPES]  # their text is kept for lengths
    with contextlib.ExitStack() as jobs:  # a forked job still running when this fails is killed
        try:
            later = deferred(df, types, policy)  # hashed later, on the other core too
            early = (
                jobs.enter_context(
                    Forked(lambda: raw_prints(df, pepper, identifiers, later), "the raw fingerprints", background=True)
                )
                if worth_forking(len(df))
                else None
            )
            result = _desensitize(
                df, types, policy, pepper, confidences, sensitive_column, text_redactor, note, early, started, keep,
                rulings, jobs,
            )  # fmt: skip
        except (DesensitizeError, RulingError):
            raise
        except (MemoryError, WorkerLostError) as exc:  # the machine, not the values: one answer (desensitize.errors)
            raise out_of_resources(exc, note.where(), stage=note.stage) from exc
        except Exception as exc:  # fail closed: an unforeseen value is a refusal naming the stage (desensitize.errors)
            raise unforeseen(exc, note.where(), stage=note.stage) from exc
    check_copy(result.frame)  # a kept column mixing text and other values cannot be written
    check_report(result.report)  # no inf or NaN: the report is stored as JSON
    return result


def _desensitize(
    df: pd.DataFrame,
    types: dict[str, str | None],
    policy: Policy,
    pepper: bytes,
    confidences: Mapping[str, float],
    sensitive_column: str | None,
    text_redactor: TextRedactor | None,
    note: Progress,
    early: Forked[RawPrints] | None,
    started: float,
    keep: Mapping[str, str],
    rulings: Mapping[str, str],
    jobs: contextlib.ExitStack,
) -> DesensitizedTable:
    """The stages (transform, k-anonymity, risk and utility, fingerprints), timed, and the report."""
    frame, columns_report, pseudonym_columns = _transform(
        df, types, policy, pepper, confidences, text_redactor, note, keep, rulings
    )
    found = _quasi_identifiers(frame, types, policy, columns_report, pseudonym_columns, rulings)
    early_copy = copy_prints_ahead(found, pseudonym_columns, pepper, jobs, df, deferred(df, types, policy))
    early_codes = raw_codes_ahead(df, found, jobs)
    transformed = time.perf_counter()
    anonymized, qi = _anonymize_splits(found, types, policy, sensitive_column, note, columns_report, pseudonym_columns)
    (k_report := anonymized.report)["dates_coarsened"] = found.coarsened
    frame = anonymized.frame
    anonymized_at = time.perf_counter()
    measured = list(qi) or risk_columns(frame, types)
    raw_codes = early_codes()  # factorized once, for risk and utility
    raw_codes = {c: raw_codes[c] if c in raw_codes else column_codes(df[c]) for c in measured}
    risk = copy_risk(df, anonymized, measured, policy, raw_codes, personal=bool(qi))
    risk_at = time.perf_counter()
    utility = measure_utility(
        df,
        frame,
        kept=anonymized.kept,
        generalized=anonymized.generalized if anonymized.generalized is not None else frame[[]],
        types=types,
        quasi_identifiers=k_report["quasi_identifiers"],
        raw_codes=raw_codes,
    )
    measured_at = time.perf_counter()
    fingerprints = FingerprintSet.build(
        df, frame, types, pepper=pepper, pseudonym_columns=pseudonym_columns, quasi_identifier_columns=list(qi),
        progress=note, **early_prints(early, early_copy(), anonymized.generalized), kept=anonymized.kept,
    )  # fmt: skip
    finished = time.perf_counter()

    total = finished - started
    report = {
        "policy": {
            "level": policy.level,
            "sha256": policy.sha256(),
            "k": policy.k,
            "max_suppression": policy.max_suppression,
        },
        "columns": columns_report,
        "k_anonymity": k_report,
        "quasi_identifier_rulings": found.rulings,
        "risk": risk,
        "utility": utility,
        "rows_in": len(df),
        "rows_out": len(frame),
        "rows_suppressed": len(df) - len(frame),
        "seconds": {
            "transform": round(transformed - started, 4),
            "k_anonymity": round(anonymized_at - transformed, 4),
            "risk": round(risk_at - anonymized_at, 4),
            "utility": round(measured_at - risk_at, 4),
            "fingerprints": round(finished - measured_at, 4),
            "total": round(total, 4),
        },
        "rows_per_second": round(len(df) / total) if total > 0 else None,
        "fingerprint_counts": fingerprints.counts(),
    }
    return DesensitizedTable(frame, _json_ready(report), fingerprints, anonymized.kept)


def _transform(
    df: pd.DataFrame,
    types: dict[str, str | None],
    policy: Policy,
    pepper: bytes,
    confidences: Mapping[str, float],
    text_redactor: TextRedactor | None,
    note: Progress,
    keep: Mapping[str, str],
    rulings: Mapping[str, str],
) -> tuple[pd.DataFrame, list[dict[str, Any]], list[str]]:
    """Each column after its type's rule: (the frame, the columns' report, the pseudonym columns).

    Order matters: every structured column first, then the near-unique ones among them are found on
    those values and made keys (``desensitize.keys``; default quasi-identifiers with a ladder of their
    own, dates, employers and places, are left to k-anonymity: ``desensitize.quasi``), and only then
    is free text redacted, with the keys' raw values among what it removes.
    """
    rules = {column: policy.rule_for(pii_type) for column, pii_type in types.items()}
    texts = [column for column, rule in rules.items() if rule.action == "redact_text"]
    out: dict[str, pd.Series | None] = {}
    reports: dict[str, dict[str, Any]] = {}
    note("transform", 0, len(types))
    extras: dict[str, dict[str, pd.Series]] = {}  # a band's label column, placed after its column

    def run(column: str, literals: tuple[str, ...] = (), names: list[str] | None = None) -> None:
        pii_type, rule = types[column], rules[column]
        try:
            result = transform_column(
                df[column], rule, pii_type=pii_type, pepper=pepper, column=column, text_redactor=text_redactor,
                names=names or [], keys=literals,
            )  # fmt: skip
        except (DesensitizeError, MemoryError, WorkerLostError):
            raise
        except Exception as exc:  # the column is known here: name it (desensitize.errors)
            raise unforeseen(exc, "the 'transform' stage", stage="transform", column=column) from exc
        out[column] = result.values
        for extra in result.extra:
            if extra in df.columns or any(extra in e for e in extras.values()):
                raise TransformError(f"column {column!r}: its label column {extra!r} would replace a column")
        extras[column] = result.extra
        confidence = confidences.get(column)
        reports[column] = {
            "name": column,
            "type": pii_type,
            "confidence": None if confidence is None else float(confidence),
            **describe(rule),
            **({"representation": result.representation} if result.representation is not None else {}),
        }
        note("transform", len(reports), len(types))

    for column in types:
        if column not in texts:
            run(column)
    pseudonym_columns = [c for c in types if c not in texts and rules[c].action == "pseudonymize"]
    actions = {c: r.action for c, r in rules.items()}
    exempt = generalized_not_keyed(out, types, actions, policy, rulings)  # quasi-identifiers, never keys
    keys = find_keys(df, out, types, actions, policy, pepper=pepper, keep=keep, exempt=exempt)
    for key in keys:
        _apply_key(key, out, reports, extras, pseudonym_columns)
    if texts:
        names, literals = dataset_names(df, types), key_literals(df, keys)
        for column in texts:
            run(column, literals, names)
    frame: dict[str, pd.Series] = {}
    for column in types:
        if (values := out[column]) is not None:
            frame[column] = values
        frame.update(extras.get(column, {}))
    return pd.DataFrame(frame, index=df.index), [reports[c] for c in types], pseudonym_columns


def _quasi_identifiers(
    frame: pd.DataFrame,
    types: dict[str, str | None],
    policy: Policy,
    columns_report: list[dict[str, Any]],
    pseudonym_columns: list[str],
    rulings: Mapping[str, str],
) -> Found:
    """The quasi-identifiers of the transformed copy (``desensitize.quasi``): keys are never among them."""
    return find_quasi_identifiers(
        frame,
        types,
        {c["name"]: c["action"] for c in columns_report},
        policy,
        settled=[*pseudonym_columns, *(c["name"] for c in columns_report if _is_key(c))],
        not_quasi=rulings,
    )


def _is_key(column: Mapping[str, Any]) -> bool:
    """Whether a column's near-unique decision made it a key (pseudonymized, dropped or kept with a reason);
    a near-unique column generalized instead stays a candidate quasi-identifier."""
    near_unique = column.get("near_unique") or {}
    return near_unique.get("action") in ("pseudonymize", "drop", "kept")


def _apply_key(
    key: KeyColumn,
    out: dict[str, pd.Series | None],
    reports: dict[str, dict[str, Any]],
    extras: dict[str, dict[str, pd.Series]],
    pseudonym_columns: list[str],
) -> None:
    """A near-unique column's decision written into the copy and its report (a kept one stays as it is)."""
    reports[key.column]["near_unique"] = key.near_unique
    if key.near_unique["action"] in ("kept", "quasi_identifier"):  # as it is / generalized by k-anonymity
        return
    out[key.column] = key.values
    extras.pop(key.column, None)  # a label of values that are now keys would say too much
    reports[key.column].update(key.rule or {})
    reports[key.column].pop("representation", None)
    if key.representation is not None:
        reports[key.column]["representation"] = key.representation
    if key.pseudonyms:
        pseudonym_columns.append(key.column)


def _anonymize_splits(
    found: Found,
    types: dict[str, str | None],
    policy: Policy,
    sensitive_column: str | None,
    note: Progress,
    columns_report: list[dict[str, Any]],
    pseudonym_columns: list[str],
) -> tuple[KAnonymityResult, dict[str, str | None]]:
    """k-anonymity (``_anonymize``), then every kept attribute that splits its classes below k made a
    quasi-identifier and the search run again, until none does (``desensitize.splits``; red team 23)."""
    actions = {c["name"]: c["action"] for c in columns_report}
    settled = [*pseudonym_columns, *(c["name"] for c in columns_report if _is_key(c))]
    ruled = {r["column"] for r in found.rulings}
    pending = candidates(
        found.frame, types, actions, policy, settled=settled, not_quasi=ruled, quasi_identifiers=found.quasi_identifiers
    )
    added: list[dict[str, Any]] = []
    rounds = 0
    ladders: dict[tuple[str, str | None], Ladder] = {}  # the same frame each round: built once
    while True:
        anonymized, qi = _anonymize(
            found.frame, types, policy, sensitive_column, note, found.quasi_identifiers, ladders, pending
        )
        k = anonymized.report["k_required"]
        split = splitting(anonymized.frame, anonymized.class_ids, pending, k, last=rounds + 1 >= MAX_ROUNDS)
        if not split:
            break
        rounds += 1
        for column, why in split.items():
            ladder = ladder_type(found.frame[column], actions.get(column, "keep"))
            found.quasi_identifiers[column] = QuasiIdentifier(column, types.get(column), ladder, SPLITS)
            added.append({"round": rounds, "column": column, **why})
        pending = [c for c in pending if c not in split]
    anonymized.report["splits"] = {"rounds": rounds, "added": added, "measured": len(pending) + len(added)}
    if anonymized.generalized is not None:  # the rounds measured a few columns: the copy holds them all
        anonymized.frame = kept_frame(found.frame, anonymized.generalized, anonymized.kept)
    for ruling in found.rulings:  # what a ruling keeps out, stated: it would have split the classes
        column = ruling["column"]
        if ruling["was"] is None and column in anonymized.frame.columns and column in types:
            smallest = smallest_split(anonymized.frame, anonymized.class_ids, column)
            ruling["was"] = SPLITS if smallest is not None and smallest < k else None
    return anonymized, qi


def _anonymize(
    frame: pd.DataFrame,
    types: dict[str, str | None],
    policy: Policy,
    sensitive_column: str | None,
    note: Progress,
    found: Mapping[str, QuasiIdentifier],
    ladders: dict[tuple[str, str | None], Ladder],
    measured: Sequence[str],
) -> tuple[KAnonymityResult, dict[str, str | None]]:
    """k-anonymity over the quasi-identifiers (``found``: the policy's and the default ones), l-diversity
    of the sensitive column; and the quasi-identifiers (column -> type). The result's frame holds the
    quasi-identifiers, the sensitive column and the ``measured`` ones; ``ladders``: built so far."""
    note("k-anonymity", 0, 1)
    qi = {c: found[c].pii_type for c in frame.columns if c in found}
    sensitive = sensitive_column
    if sensitive is None:
        for wanted in policy.sensitive:
            sensitive = next((c for c in frame.columns if types.get(c) == wanted and c not in qi), None)
            if sensitive is not None:
                break
    elif sensitive not in frame.columns or sensitive in qi:
        sensitive = None  # dropped by the policy, or generalized as a quasi-identifier: nothing to report
    threshold = policy.risk
    anonymized = k_anonymize(
        frame,
        {c: found[c].ladder_type for c in qi},
        k=policy.k,
        max_suppression=policy.max_suppression,
        sensitive_column=sensitive,
        max_highest_risk=threshold.highest if threshold is not None and qi else None,
        max_average_risk=threshold.average if threshold is not None and qi else None,
        ladder_cache=ladders,
        columns=measured,
    )
    for entry in anonymized.report["quasi_identifiers"]:  # the PII type, and why and how it is generalized
        entry.update(type=qi[entry["column"]], **found[entry["column"]].as_report())
    if sensitive_column is not None and sensitive is None:
        anonymized.report["l_diversity"] = {
            "column": sensitive_column,
            "l": None,
            "note": "column dropped or generalized",
        }
    note("k-anonymity", 1, 1)
    return anonymized, qi
