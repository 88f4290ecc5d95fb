"""Column building blocks of the generated tables: seeded draws, Arrow text columns, digit matrices.

Why: every table is built column by column with numpy/pandas operations, with no Python loop over
rows (the only loops run over a handful of columns or over de-duplication rounds that touch ever
fewer rows), so a million residents take seconds. Output depends only on ``seed``: each table
draws from ``numpy.random.Generator(PCG64(...))`` seeded by ``seed`` and a fixed per-table stream
number (``table_rng``), so the tables are independent of each other.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "Text",
    "age_on",
    "ascii_column",
    "ascii_rows",
    "code_digits",
    "concat",
    "frame",
    "int_digits",
    "join_text",
    "table_rng",
    "take",
    "unique_redraw",
    "weighted",
    "ymd",
]


def table_rng(seed: int, stream: int) -> np.random.Generator:
    """The generator of one table.

    Residents use ``PCG64(seed)`` itself; the other tables mix in a stream number so that
    their draws are independent of the residents' while still depending only on ``seed``.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    bitgen = np.random.PCG64(int(seed)) if stream == 0 else np.random.PCG64([int(seed), stream])
    return np.random.Generator(bitgen)


def weighted(rng: np.random.Generator, n: int, weights: Sequence[float] | np.ndarray) -> np.ndarray:
    """Indexes drawn with the given (unnormalised) weights."""
    p = np.asarray(weights, dtype=np.float64)
    cdf = np.cumsum(p / p.sum())
    cdf[-1] = 1.0
    return np.asarray(np.searchsorted(cdf, rng.random(n), side="right"))


def concat(*parts: np.ndarray | str) -> np.ndarray:
    """Element-wise string concatenation of arrays and scalars (numpy string ufunc)."""
    out: np.ndarray | str = parts[0]
    for p in parts[1:]:
        out = np.strings.add(out, p)
    return np.asarray(out)


def ascii_rows(codes: np.ndarray) -> np.ndarray:
    """(n, k) matrix of ASCII codes -> (n,) numpy array of k-character strings, no loop."""
    m = np.ascontiguousarray(codes, dtype=np.uint8)
    return m.view(f"S{m.shape[1]}").ravel().astype(f"<U{m.shape[1]}")


# Text columns are assembled in Arrow, the storage of pandas' ``str`` dtype: taking from a
# small vocabulary and joining pieces element-wise run in C++, and the result becomes a
# pandas column without conversion.  Building the same columns as fixed-width numpy
# unicode arrays and converting them cost about 60 % of the time of a resident table.
Text: TypeAlias = pa.Array | pa.ChunkedArray


def take(vocabulary: Sequence[str], idx: np.ndarray) -> pa.Array:
    """``vocabulary[idx]`` as an Arrow string array."""
    return pa.array(list(vocabulary), type=pa.large_string()).take(pa.array(np.asarray(idx, dtype=np.int64)))


def join_text(*parts: Text | str) -> Text:
    """Element-wise concatenation of Arrow string arrays and Python string constants."""
    args = [pa.scalar(p, type=pa.large_string()) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*args, pa.scalar("", type=pa.large_string()))


def ascii_column(codes: np.ndarray) -> pa.Array:
    """(n, k) matrix of ASCII codes -> Arrow strings of k characters, zero-copy.

    A fixed-width row-major byte matrix already is the data buffer of an Arrow string
    array; only the offsets 0, k, 2k, ... are added.
    """
    m = np.ascontiguousarray(codes, dtype=np.uint8)
    n, k = m.shape
    offsets = np.arange(0, (n + 1) * k, k, dtype=np.int64)
    return pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(m)])


def frame(columns: dict[str, np.ndarray | Text | pd.Series]) -> pd.DataFrame:
    """DataFrame with pandas' default ``str`` dtype for every text column."""
    data: dict[str, pd.Series] = {}
    for name, values in columns.items():
        if isinstance(values, pd.Series):
            data[name] = values.reset_index(drop=True)
        elif isinstance(values, (pa.Array, pa.ChunkedArray)):
            data[name] = pd.Series(values, dtype="str")
        elif values.dtype.kind == "U":
            data[name] = pd.Series(pa.array(values, type=pa.large_string()), dtype="str")
        elif values.dtype.kind == "O":
            data[name] = pd.Series(values, dtype="str")
        else:
            data[name] = pd.Series(values)
    return pd.DataFrame(data)


def code_digits(codes: Sequence[str]) -> np.ndarray:
    """6-digit division codes -> (len, 6) uint8 digit matrix."""
    return np.array([[int(c) for c in code] for code in codes], dtype=np.uint8)


def int_digits(values: np.ndarray, width: int) -> np.ndarray:
    """Non-negative integers -> (n, width) digit matrix, most significant first."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values.astype(np.int64)[:, None] // powers[None, :]) % 10).astype(np.uint8)


def ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """datetime64[D] array -> (year, month, day) int64 arrays."""
    months = days.astype("datetime64[M]")
    year = days.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
    return year, month, day


def unique_redraw(keys: np.ndarray, redraw: Callable[[np.ndarray], np.ndarray], max_rounds: int = 100) -> np.ndarray:
    """Make ``keys`` unique by redrawing duplicates (all but the first occurrence).

    ``redraw(positions)`` returns new keys for those positions and may update the caller's
    own columns as a side effect.  Each round touches only the duplicates, so the loop is
    over rounds (a few), not rows.
    """
    keys = keys.copy()
    for _ in range(max_rounds):
        dup = pd.Series(keys).duplicated(keep="first").to_numpy()
        if not dup.any():
            return keys
        positions = np.flatnonzero(dup)
        keys[positions] = redraw(positions)
    raise ValueError("could not draw unique values: the requested size exhausts the value space")


def age_on(birth: np.ndarray, as_of: _dt.date) -> np.ndarray:
    """Completed years of age on ``as_of`` for a datetime64 array."""
    y, m, d = ymd(np.asarray(birth).astype("datetime64[D]"))
    before_birthday = (m > as_of.month) | ((m == as_of.month) & (d > as_of.day))
    return np.asarray(as_of.year - y - before_birthday.astype(np.int64))
