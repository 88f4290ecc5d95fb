"""Randomization (随机化): noise added to numbers and dates, other values permuted among rows.

GB/T 37964-2019 附录A. The noise is seeded from the pepper and the column, so the same copy made
twice has the same noise (fresh noise on every remake would let someone holding several copies
average it away).
"""

from __future__ import annotations

import hmac

import numpy as np
import pandas as pd

__all__ = ["randomize"]


def _rng(pepper: bytes, column: str) -> np.random.Generator:
    """A generator seeded from the pepper and the column: the same copy made twice has the same noise.

    Fresh noise on every remake would let someone holding several copies average it away.
    """
    seed = hmac.new(pepper, f"keyong-randomize\x1f{column}".encode(), "sha256").digest()
    return np.random.default_rng(int.from_bytes(seed[:16], "big"))


def randomize(values: pd.Series, *, pepper: bytes, column: str, scale: float = 0.1, days: int = 15) -> pd.Series:
    """Noise addition (numbers: Laplace of scale ``scale`` x the column's std; dates: ±``days``) or,
    for anything else, a permutation of the column's values among its non-null rows (置换)."""
    rng = _rng(pepper, column)
    n = len(values)
    dtype = values.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        shift = pd.to_timedelta(rng.integers(-days, days + 1, n), unit="D")
        return (values + shift.to_numpy()).astype(dtype)
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        v = values.to_numpy(dtype=np.float64, na_value=np.nan)
        spread = float(np.nanstd(v)) if np.isfinite(v).any() else 0.0
        noisy = v + rng.laplace(0.0, scale * spread if spread > 0 else scale, n)
        if values.dtype.kind == "f":
            return pd.Series(noisy, index=values.index, dtype=dtype)
        out = pd.Series(np.round(noisy), index=values.index).astype("Int64")
        return out.astype(dtype) if values.dtype.kind in "iu" else out
    present = np.flatnonzero(values.notna().to_numpy(dtype=bool))
    shuffled = values.copy()
    shuffled.iloc[present] = values.iloc[rng.permutation(present)].to_numpy()
    return shuffled
