"""Row order of every copy written: a fresh random permutation each time (red team 23, F4).

Why: a copy that keeps its source's row order says more than its keys do. Two exports of one population
sorted by ID number (or drawn from one register) list people in the same order, so row *i* of one
dataset's copy is row *i* of another's, and aligning them on any kept column (the surname a masked name
keeps) links datasets a licence did not grant jointly — linkage given, not granted (个人信息保护法
第七十三条(四): de-identified means not identifiable without additional information; the order is that
information). Two licences' copies of one dataset in the same order map one licence's keys onto the
other's by a zip. And the order itself leaks the source's sort key (the ID number: region code and birth
date) within a table.

So the base copy (:mod:`registry.copies`) and every licence copy (:mod:`registry.linkage`) are written in
an order drawn afresh from the operating system's randomness (:mod:`secrets`, 128 bits seeding a PCG64
permutation): nothing about it is shared between copies, licences or versions, and nothing reproduces it.
The rows are the same; only their order changes. Nothing reads a copy by position: fingerprints are hashed
per row and compared as sets (built before the copy is written), joint copies join on keys, the guard and
the differential-privacy programs aggregate.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["random_order", "shuffled"]


def random_order(rows: int) -> np.ndarray:
    """A permutation of ``range(rows)`` seeded from :mod:`secrets` (never reproducible)."""
    import numpy as np

    return np.random.default_rng(secrets.randbits(128)).permutation(rows)


def shuffled(table: pa.Table) -> pa.Table:
    """``table``'s rows in a fresh random order (same rows, same schema)."""
    import pyarrow as pa

    if table.num_rows < 2:
        return table
    return table.take(pa.array(random_order(table.num_rows)))
