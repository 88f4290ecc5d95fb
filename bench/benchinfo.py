"""What every benchmark shares: where it ran, the best of several timings, one JSON line out."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# Scripts here run as `python bench/NAME.py`, which puts bench/ first on sys.path, where
# bench/ledger.py (the name issue 3 gives it) would shadow the `ledger` package. Importing this
# module first puts the repository root ahead of it.
ROOT = str(Path(__file__).resolve().parent.parent)
if sys.path[:1] != [ROOT]:
    sys.path.insert(0, ROOT)


def machine(**versions: str) -> dict[str, Any]:
    """Where the numbers were measured; without it they mean nothing. ``versions``: libraries measured."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        **versions,
    }


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record, ensure_ascii=False), flush=True)


def best_of(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    """The fastest of ``repeat`` runs (seconds) and the last result: the least disturbed by a busy machine."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result  # type: ignore[return-value]
