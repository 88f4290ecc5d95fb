"""Work of the fingerprints and the risk measure done ahead, on the other core, while this process transforms
and anonymizes a large table.

Why: ``desensitize.pipeline``'s stages run one after the other in one process; after the free text is
redacted only this process works (k-anonymity, risk, utility, fingerprints) while the second core idles.
What those later stages need and k-anonymity cannot change is computed here as soon as its inputs exist,
in forked children (``desensitize.forking``): the raw free text's hashes and the copy's prints
(``desensitize.pseudonym_pieces``) and the raw quasi-identifiers' codes. A small table (no fork) computes
the same things in place, so results never depend on whether a fork happened.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from desensitize.fingerprints import IDENTIFIER_TYPES, RawPrints, fingerprint_key
from desensitize.forking import Forked, worth_forking
from desensitize.policy import Policy
from desensitize.pseudonym_pieces import CopyPrints, copy_hashes, copy_prints, pseudonym_pieces
from desensitize.quasi import Found
from desensitize.risk import Codes, column_codes

__all__ = ["copy_prints_ahead", "deferred", "early_prints", "raw_codes_ahead", "unchanged"]


def deferred(df: pd.DataFrame, types: Mapping[str, str | None], policy: Policy) -> list[str]:
    """The raw free-text columns, when a large table forks: hashed for the fingerprints with the copy's columns
    (``copy_prints_ahead``) rather than at the start, where both cores are busy transforming and redacting."""
    if not worth_forking(len(df)):
        return []
    free_text = [c for c in df.columns if policy.rule_for(types.get(c)).action == "redact_text"]
    return [c for c in free_text if types.get(c) not in IDENTIFIER_TYPES]  # identifiers: their text is kept


def early_prints(
    early: Forked[RawPrints] | None, copied: CopyPrints, generalized: pd.DataFrame | None
) -> dict[str, Any]:
    """``FingerprintSet.build``'s ``raw_hashes`` (the early raw side with the columns it deferred) and ``early``."""
    raw = early.result() if early is not None else None
    if raw is not None:
        raw.hashes.update(copied.raw)
    return {"raw_hashes": raw, "early": unchanged(copied, generalized)}


def copy_prints_ahead(
    found: Found,
    pseudonym_columns: list[str],
    pepper: bytes,
    jobs: contextlib.ExitStack,
    raw: pd.DataFrame,
    raw_columns: list[str],
) -> Callable[[], CopyPrints]:
    """The copy's fingerprint work that k-anonymity cannot change (``desensitize.pseudonym_pieces``: the
    pseudonyms' fragment pieces, the row hashes of the columns that are not quasi-identifiers), done for
    every row as soon as the copy's columns exist: on a large table on the other core while this process
    runs k-anonymity, risk and utility; the fingerprints then pick the kept rows'."""
    frame, key = found.frame, fingerprint_key(pepper)
    pseudonyms = list(pseudonym_columns)
    columns = [c for c in frame.columns if c not in found.quasi_identifiers]
    if not worth_forking(len(frame)):
        done = copy_prints(frame, pseudonyms, columns, key, raw, raw_columns)
        return lambda: done
    # Two children, not one: the pieces (~1.4 CPU-s per million pseudonyms) and the hashes (the raw free
    # text's ~0.7) each about as long as k-anonymity, risk and utility together, which this process runs
    # meanwhile; one child doing both was the last to finish, and the fingerprints waited for it.
    pieces = (
        jobs.enter_context(
            Forked(lambda: pseudonym_pieces(frame, pseudonyms, key), "the pseudonyms' pieces", background=True)
        ).result
        if pseudonyms
        else (lambda: None)
    )
    hashes = jobs.enter_context(
        Forked(
            lambda: copy_hashes(frame, pseudonyms, columns, key, raw, raw_columns),
            "the copy's fingerprints",
            background=True,
        )
    ).result
    return lambda: CopyPrints(pieces(), *hashes())


def raw_codes_ahead(df: pd.DataFrame, found: Found, jobs: contextlib.ExitStack) -> Callable[[], Codes]:
    """``column_codes`` of the raw quasi-identifier columns (risk and utility measure on them): on a large
    table on the other core while this process runs k-anonymity (a column added by a split is coded later)."""
    columns = [c for c in df.columns if c in found.quasi_identifiers]
    if not columns or not worth_forking(len(df)):
        return lambda: {}
    forked = jobs.enter_context(Forked(lambda: _codes_or_none(df, columns), "the raw table's codes"))
    return lambda: forked.result() or {}  # failed: coded in place, where the column's own error is raised


def _codes_or_none(df: pd.DataFrame, columns: list[str]) -> Codes | None:
    """The columns' codes, or None when one cannot be coded: the parent then codes them itself and fails with
    that column's own exception, as without a fork (a forked failure would reach it as a RuntimeError)."""
    try:
        return {c: column_codes(df[c]) for c in columns}
    except Exception:
        return None


def unchanged(early: CopyPrints, generalized: pd.DataFrame | None) -> CopyPrints:
    """``early`` without the columns k-anonymity generalized after all (a split makes a column a
    quasi-identifier, ``desensitize.splits``): only columns the copy holds as they were hashed."""
    if generalized is None:
        return CopyPrints(early.pieces, {})
    return CopyPrints(early.pieces, {c: v for c, v in early.hashes.items() if c not in generalized.columns})
