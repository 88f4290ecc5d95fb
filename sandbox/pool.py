"""A worker's pool of pre-started sandboxes (issue 21 "Job latency"; the sandboxes: :mod:`sandbox.prestart`).

Why a pool per worker: a job's latency is what an analyst feels between a question and its answer;
a sandbox of the job's kind already started, with its libraries imported, takes the claimed job at
once. The pool keeps ``per_kind`` (default 1) ready per likely kind — :data:`DEFAULT_KINDS` from the
start, and any kind a job asked for since — and refills in the background after each take. A warm
sandbox idle longer than the TTL, or whose launcher died, is discarded and replaced; when none is
ready the job runs in a fresh sandbox (same isolation, same result). ``KEYONG_SANDBOX_PRESTART=0``
switches pre-starting off (:func:`sandbox.prestart.prestart_enabled`).
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sandbox.limits import Limits
from sandbox.prestart import (
    PRELOADS,
    READY_WAIT_SECONDS,
    LauncherGone,
    WarmSandbox,
    prestart_enabled,
    stderr_tail,
    warm_argv,
)
from sandbox.runner import RunResult

log = logging.getLogger("keyong.prestart")

#: The kinds a worker's pool keeps warm from its start; a kind a job asks for is added once seen.
DEFAULT_KINDS: tuple[str, ...] = ("sql", "dp-query", "python")
#: A warm sandbox idle longer than this is discarded and replaced (libraries updated on disk, a stale cache).
TTL_SECONDS = 600.0


class SandboxPool:
    """A worker's warm sandboxes: ``per_kind`` ready per likely kind, refilled in the background.

    One maintenance thread launches every warm sandbox, so the thread bwrap's ``--die-with-parent``
    watches lives as long as the pool (the kernel's parent-death signal follows the thread that forked).
    """

    def __init__(
        self,
        limits: Limits,
        kinds: Iterable[str] = DEFAULT_KINDS,
        *,
        per_kind: int = 1,
        ttl: float = TTL_SECONDS,
        preloads: Mapping[str, str] = PRELOADS,
        until: threading.Event | None = None,
    ) -> None:
        self.limits = limits
        self.preloads = dict(preloads)
        self.wanted = [kind for kind in kinds if kind in self.preloads]
        self.per_kind = per_kind
        self.ttl = ttl
        self.stats = {"warm": 0, "fresh": 0, "gone": 0, "expired": 0, "launched": 0}
        self._warm: dict[str, list[WarmSandbox]] = {}
        self._taking: dict[str, int] = {}  # taken, waiting for their imports: not refilled before they are ready
        self._lock = threading.Condition()
        self._stop = False
        self._until = until  # the pool closes itself once it is set (the worker loop's end)
        self.closed = threading.Event()
        self._thread = threading.Thread(target=self._maintain, name="keyong-prestart", daemon=True)

    def start(self) -> SandboxPool:
        atexit.register(self.close)  # no staging directory or cgroup left behind by a process that exits
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop refilling and discard every warm sandbox."""
        with self._lock:
            self._stop = True
            self._lock.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        with self._lock:
            boxes = [warm for kind in self._warm.values() for warm in kind]
            self._warm.clear()
        for warm in boxes:
            warm.discard()
        atexit.unregister(self.close)
        self.closed.set()

    def wait_warm(self, kind: str, timeout: float) -> bool:
        """Whether a sandbox of ``kind`` is ready within ``timeout`` (benchmarks and tests; a worker never waits)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                if any(warm.ready.is_set() and warm.alive() for warm in self._warm.get(kind, [])):
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or self._stop:
                    return False
                self._lock.wait(timeout=min(left, 0.05))

    def take(self, kind: str, limits: Limits) -> WarmSandbox | None:
        """A warm sandbox of ``kind`` made for ``limits`` (waiting for one still importing), or None."""
        if kind not in self.preloads or limits != self.limits:
            return None
        with self._lock:
            if kind not in self.wanted:
                self.wanted.append(kind)  # likely again: keep one warm from now on
            candidates = self._warm.pop(kind, [])
            self._taking[kind] = self._taking.get(kind, 0) + len(candidates)
        chosen: WarmSandbox | None = None
        try:
            for warm in candidates:
                if chosen is None and warm.wait_ready(READY_WAIT_SECONDS):
                    chosen = warm
                elif chosen is None:
                    self.stats["gone"] += 1
                    log.warning("pre-started %s sandbox gone before use: %s", kind, stderr_tail(warm))
                    warm.discard()
                else:
                    with self._lock:
                        self._warm.setdefault(kind, []).append(warm)
        finally:  # only now the maintenance thread refills: earlier, it would slow the imports waited for
            with self._lock:
                self._taking[kind] -= len(candidates)
                self._lock.notify_all()
        return chosen

    def run(
        self,
        kind: str,
        argv_inside: list[str],
        *,
        data: Mapping[str, Path],
        out_dir: Path,
        limits: Limits,
        files: Mapping[str, bytes],
        stop: threading.Event | None = None,
    ) -> RunResult | None:
        """Run the job in a warm sandbox of ``kind``; None when there is none (the caller runs it fresh).
        ``stop``: the job's stop signal (default: the thread's :data:`sandbox.supervision.STOP`)."""
        if warm_argv(argv_inside) is None or self.closed.is_set():
            return None
        warm = self.take(kind, limits)
        if warm is None:
            self.stats["fresh"] += 1
            return None
        try:
            result = warm.go(argv_inside, data=data, out_dir=out_dir, files=files, stop=stop)
        except LauncherGone as exc:
            self.stats["gone"] += 1
            self.stats["fresh"] += 1
            log.warning("%s; the job runs in a fresh sandbox", exc)
            return None
        self.stats["warm"] += 1
        return result

    def _maintain(self) -> None:
        while True:
            if self._until is not None and self._until.is_set():
                self.close()
                return
            with self._lock:
                if self._stop:
                    return
                stale = self._drop_stale()
                kind = next((k for k in self.wanted if self._held(k) < self.per_kind), None)
            for warm in stale:
                warm.discard()
            if kind is None:
                with self._lock:
                    if not self._stop:
                        self._lock.wait(timeout=0.2)
                continue
            try:
                warm = WarmSandbox(kind, self.preloads[kind], self.limits)
            except Exception:
                log.exception("could not pre-start a %s sandbox; jobs of that kind run fresh", kind)
                with self._lock:
                    self.wanted.remove(kind)
                continue
            with self._lock:
                self.stats["launched"] += 1
                self._warm.setdefault(kind, []).append(warm)

    def _held(self, kind: str) -> int:
        """Warm sandboxes of ``kind`` in the pool or being taken (under the lock)."""
        return len(self._warm.get(kind, [])) + self._taking.get(kind, 0)

    def _drop_stale(self) -> list[WarmSandbox]:
        """Take the expired and the dead out of the pool (under the lock); the caller discards them."""
        now = time.monotonic()
        stale: list[WarmSandbox] = []
        for boxes in self._warm.values():
            for warm in list(boxes):
                expired = now - warm.born > self.ttl
                if expired or not warm.alive():
                    boxes.remove(warm)
                    self.stats["expired" if expired else "gone"] += 1
                    stale.append(warm)
        return stale


def start_pool(
    limits: Limits | None, kinds: Iterable[str] = DEFAULT_KINDS, *, until: threading.Event | None = None
) -> SandboxPool | None:
    """A started pool for a worker whose jobs run under ``limits`` (closed once ``until`` is set); None when
    pre-starting is switched off."""
    if not prestart_enabled():
        return None
    return SandboxPool(limits or Limits(), kinds, until=until).start()


def prestarted(worker: Any, *, until: threading.Event) -> SandboxPool | None:
    """Start the pool of a worker loop (``Worker.run_forever``) whose runner is the sandbox's ``run_job``,
    and make its runner ``run_job`` with that pool; the pool closes itself once ``until`` (set when the
    loop ends) is. None, and the runner unchanged, when pre-starting is off or the runner is another."""
    from sandbox.kinds import run_job

    runner = worker.runner
    if isinstance(runner, functools.partial) and runner.func is run_job:  # an earlier loop's
        runner = worker._runner = run_job
    if runner is not run_job:
        return None
    pool = start_pool(worker.limits, until=until)
    if pool is not None:
        worker._runner = functools.partial(run_job, pool=pool)
    return pool


__all__ = ["DEFAULT_KINDS", "TTL_SECONDS", "SandboxPool", "prestarted", "start_pool"]
