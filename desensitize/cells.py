"""The cells a table may hold when it is desensitized or profiled, checked once, column by column.

Why at the entry: a cell of bytes, a list or a dict, or a string holding a lone surrogate (text
decoded with ``surrogateescape`` or read as CESU-8) is no value any rule of a policy is written for.
Left in, it fails deep in a stage as a library's ``TypeError`` ("unhashable type") or
``UnicodeEncodeError``, or — worse — goes through as its ``repr`` ("b'1101…'"), so the copy's
pseudonym and the guard's fingerprint are of a text that is not the identifier. Refused here with
the column and the record, saying what to fix, before anything is computed (the guide: bad input
gets a clear error and loses nothing).

Why at the exit too: a column kept as it is (``keep``) may mix text with dates or numbers (a frame
built by hand; a file never does, ingest reads columns of one type), which no Parquet column can
hold: the copy would fail to be written after the whole run. Refused naming the column.

Cost: only ``object`` columns (and a categorical's categories) are looked at; pandas 3 reads text as
Arrow strings, which hold neither bytes nor surrogates nor lists, so a table read from a file costs
one dtype test per column. An ``object`` column costs one ``infer_dtype`` pass (C), text columns one
conversion to Arrow (C, which refuses surrogates); a per-cell Python pass runs only on a column
``infer_dtype`` calls mixed, to find the record to name.
"""

from __future__ import annotations

import datetime as _dt
import decimal
from collections.abc import Hashable, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa

from desensitize.errors import DesensitizeError

__all__ = ["check_cells", "check_column", "check_copy", "check_report"]

#: ``infer_dtype`` kinds whose cells every stage reads (numbers, dates and times of one kind, or nothing).
_PLAIN_KINDS = frozenset(
    {
        "empty", "integer", "floating", "mixed-integer-float", "decimal", "boolean", "complex",
        "datetime64", "datetime", "date", "timedelta64", "timedelta", "time", "period",
    }
)  # fmt: skip

#: Scalar cell types a mixed column may hold (nulls included); anything else is refused (fail closed).
_SCALARS = (str, int, float, bool, decimal.Decimal, _dt.date, _dt.time, _dt.timedelta, np.generic, pd.Period)

#: What each refused kind of cell is, and what makes the column acceptable.
_FIXES = {
    "bytes": (
        "bytes, not text",
        "decode the column (UTF-8 or GB18030) into text before desensitizing it",
    ),
    "surrogate": (
        "a lone surrogate character (U+D800-U+DFFF), which is not Unicode text: it was decoded wrongly "
        "(CESU-8, or Python's surrogateescape)",
        "decode the source again as UTF-8 or GB18030, strictly",
    ),
    "container": (
        "a nested value",
        "flatten it into columns of text, numbers or dates (one column per field), or encode it as text",
    ),
}


def _refuse(column: str, position: int, why: str, count: int) -> DesensitizeError:
    what, fix = _FIXES[why]
    more = f" ({count:,} cells in all)" if count > 1 else ""
    return DesensitizeError(
        f"column {column!r}, record {position + 1:,}: the cell holds {what}{more}; {fix}",
        stage="entry",
        column=column,
        record=position + 1,
    )


def _has_surrogate(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _kind_of_cell(value: object) -> str | None:
    """Why one cell is refused, or None."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes"
    if _has_surrogate(value):
        return "surrogate"
    if not isinstance(value, _SCALARS) or not isinstance(value, Hashable):
        return "container"
    return None


def _first_refused(column: str, values: pd.Series) -> DesensitizeError | None:
    """The per-cell pass (only over a column already known to hold something odd): the first refused cell."""
    kinds = values.map(_kind_of_cell, na_action=None) if len(values) else pd.Series([], dtype=object)
    refused = kinds.notna().to_numpy(dtype=bool)
    if not refused.any():
        return None
    position = int(np.flatnonzero(refused)[0])
    return _refuse(column, position, str(kinds.iloc[position]), int(refused.sum()))


def _text_is_unicode(values: pd.Series) -> bool:
    """Whether every string converts to UTF-8 (Arrow's conversion, in C, refuses lone surrogates)."""
    try:
        pa.array(values, type=pa.string(), from_pandas=True)
    except (UnicodeError, pa.ArrowException):
        return False
    return True


def _refuse_unused_category(column: str, categories: pd.Series, odd: np.ndarray) -> DesensitizeError:
    """A category no record uses holds a refused value (red team 23a F4: the search for its record raised an
    ``IndexError``). Refused all the same (fail closed: stages may read the categories), naming the category."""
    entry = int(np.flatnonzero(odd)[0])
    what, fix = _FIXES[str(_kind_of_cell(categories.iloc[entry]))]
    return DesensitizeError(
        f"column {column!r}: category {entry + 1:,} of the categorical, which no record uses, holds {what}; drop "
        f"the unused categories (remove_unused_categories) or {fix}",
        stage="entry",
        column=column,
    )


def _arrow_kind(kind: pa.DataType) -> str | None:
    """Why an Arrow-backed column is refused (a key of ``_FIXES``), or None for text, numbers, truth values, dates
    and times. Red team 23a F6: an Arrow ``binary`` column skipped the check and its bytes were kept in the copy;
    any other type no stage is written for (nested, union, extension …) is refused too (fail closed)."""
    if pa.types.is_dictionary(kind):
        return _arrow_kind(kind.value_type)
    if (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_string_view(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_temporal(kind)
    ):
        return None
    if (
        pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
        or pa.types.is_binary_view(kind)
    ):
        return "bytes"
    return "container"


def check_column(column: str, values: pd.Series) -> None:
    """Raise :class:`DesensitizeError` for a column holding bytes, nested values or lone surrogates."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = pd.Series(dtype.categories, dtype=object)
        if _first_refused(column, categories) is not None:
            codes = values.cat.codes.to_numpy()
            odd = categories.map(_kind_of_cell).notna().to_numpy(dtype=bool)
            hits = odd[codes] & (codes >= 0)
            if not hits.any():
                raise _refuse_unused_category(column, categories, odd)
            position = int(np.flatnonzero(hits)[0])
            kind = _kind_of_cell(categories.iloc[codes[position]])
            raise _refuse(column, position, str(kind), int(hits.sum()))
        return
    if isinstance(dtype, pd.ArrowDtype):
        why = _arrow_kind(dtype.pyarrow_dtype)
        if why is not None:
            present = np.flatnonzero(values.notna().to_numpy(dtype=bool))
            raise _refuse(column, int(present[0]) if present.size else 0, why, max(int(present.size), 1))
        return
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "python":
        if not _text_is_unicode(values):
            raise _first_refused(column, values.astype(object)) or _refuse(column, 0, "surrogate", 1)
        return
    if not pd.api.types.is_object_dtype(dtype):
        return  # numbers, dates, Arrow strings: no cell of them is refused here
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind in _PLAIN_KINDS:
        return
    if kind == "string":
        if not _text_is_unicode(values):
            raise _first_refused(column, values) or _refuse(column, 0, "surrogate", 1)
        return
    refused = _first_refused(column, values)  # bytes, mixed, or a kind not foreseen: cell by cell
    if refused is not None:
        raise refused


def check_cells(df: pd.DataFrame) -> None:
    """Every column of ``df`` by :func:`check_column` (the first refused one raises)."""
    for position, column in enumerate(df.columns):
        check_column(str(column), df.iloc[:, position])


def _family(value: object) -> str:
    """What a person would call a cell's kind of value (the families a Parquet column cannot mix)."""
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool | np.bool_):
        return "a truth value"
    if isinstance(value, int | float | decimal.Decimal | np.number):
        return "a number"
    if isinstance(value, _dt.date | _dt.time | np.datetime64):
        return "a date or time"
    if isinstance(value, _dt.timedelta | np.timedelta64):
        return "a duration"
    return f"a {type(value).__name__}"


def _first_of_another_kind(values: pd.Series) -> tuple[int, str, str] | None:
    """(record from 1, its kind, the first value's kind) of the first cell whose kind differs from the first
    value's (:func:`_family`); None when every value is of one kind."""
    present = np.flatnonzero(values.notna().to_numpy(dtype=bool))
    if present.size == 0:
        return None
    families = values.iloc[present].map(_family).to_numpy(dtype=object)
    differs = np.flatnonzero(families != families[0])
    if differs.size == 0:
        return None
    return int(present[differs[0]]) + 1, str(families[differs[0]]), str(families[0])


def _needs_conversion_check(dtype: object) -> bool:
    """Whether a column of this dtype may fail to become a Parquet column: ``object`` columns, and every extension
    dtype Arrow does not hold natively (categorical, sparse, interval …; red team 23a F5: only ``object`` was looked
    at, and a categorical mixing numbers and text, or a sparse column, failed in the registry's write)."""
    if isinstance(dtype, pd.ArrowDtype):
        return False
    if isinstance(dtype, pd.StringDtype) and dtype.storage != "python":
        return False
    return pd.api.types.is_object_dtype(dtype) or isinstance(dtype, pd.api.extensions.ExtensionDtype)


def check_copy(frame: pd.DataFrame) -> None:
    """The copy's columns convert to Parquet (one type each); else a :class:`DesensitizeError`."""
    for position, column in enumerate(frame.columns):
        values = frame.iloc[:, position]
        if not _needs_conversion_check(values.dtype):
            continue
        try:
            pa.array(values, from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            raise _uncopyable(str(column), values, exc) from exc


def _uncopyable(column: str, values: pd.Series, exc: Exception) -> DesensitizeError:
    if isinstance(values.dtype, pd.SparseDtype):
        mixed = None
        where = "it is a sparse column, which a Parquet file does not hold; make it dense (sparse.to_dense())"
    else:
        mixed = _first_of_another_kind(values.astype(object))
        where = (
            f"record {mixed[0]:,} holds {mixed[1]} where the column's first value is {mixed[2]}"
            if mixed is not None
            else f"its values cannot be stored ({type(exc).__name__})"
        )
    return DesensitizeError(
        f"column {column!r}: the copy cannot hold this column as the policy leaves it: {where}; a "
        "column must hold one kind of value: convert it to text (or to dates or numbers) and desensitize again",
        stage="copy",
        column=column,
        record=mixed[0] if mixed is not None else None,
    )


def _first_not_finite(value: object, path: str) -> str | None:
    """The path of the first infinite or NaN number in a report, or None."""
    if isinstance(value, float | np.floating):
        return None if np.isfinite(value) else path
    if isinstance(value, dict):
        items: Iterable[tuple[str, object]] = ((f"{path}.{k}", v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for where, inner in items:
        found = _first_not_finite(inner, where)
        if found is not None:
            return found
    return None


def check_report(report: dict[str, object]) -> None:
    """Fail closed: a report holding inf or NaN is refused. JSON has no such numbers and PostgreSQL's json refuses
    them: the registry's commit of the version failed (red team 23a F7: a 500). The utility report writes None for
    an error it cannot measure; this catches what no stage foresaw."""
    where = _first_not_finite(report, "report")
    if where is not None:
        raise DesensitizeError(
            f"the desensitization report holds a number that is not finite at {where}; nothing was written: check "
            "the numeric columns for values near the limits of floating point, then desensitize again",
            stage="report",
        )
