"""Half of a large job on the second core, in a forked child that shares the parent's memory.

Why not ``concurrent.futures``: a process pool pickles the function's arguments to send them, and
here the arguments are the table itself (a million rows of text); a forked child already has them,
copy-on-write, so only the *result* crosses a pipe. Threads would not help either: the free-text
scanner is Python ``re`` (it holds the GIL) and the fingerprints are pandas hashing.

Used only where a stage is large enough (``worth_forking``) and the machine has a second usable
core; otherwise the work runs inline, so results never depend on whether a fork happened. A child
that fails sends its exception; the caller raises it, of the type and with the message it would have
had inline (its text in a ``RuntimeError`` only when it cannot be pickled).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

__all__ = ["Forked", "WorkerLostError", "usable_cores", "worth_forking"]

T = TypeVar("T")

#: Below this many rows a fork (~10 ms plus the result's pickling) costs more than it saves.
MIN_ROWS = 100_000


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worth_forking(rows: int, workers: int | None = None) -> bool:
    """Whether to split a stage over ``rows`` rows in two: ``workers`` forces it (1: never)."""
    if not hasattr(os, "fork"):
        return False
    if workers is not None:
        return workers >= 2
    return rows >= MIN_ROWS and usable_cores() >= 2


class WorkerLostError(RuntimeError):
    """The forked child ended without a result: killed by a signal (the kernel's OOM killer sends SIGKILL) or out
    of memory. About the machine, not the table (red team 23a F9: it was blamed on the column's values, and a
    child's ``MemoryError`` passed raw): one error for one cause, naming the task that ran in the child."""

    def __init__(self, task: str, cause: str) -> None:
        super().__init__(f"the worker process for {task} {cause}")
        self.task = task
        self.cause = cause

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.task, self.cause))


def _ended(status: int) -> str:
    """How a child without a result ended, from its ``waitpid`` status."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        likely = " (likely by the kernel, out of memory)" if number == signal.SIGKILL else ""
        return f"was killed by signal {name}{likely}"
    return f"exited with status {os.WEXITSTATUS(status) if os.WIFEXITED(status) else status} without a result"


def _failure(exc: BaseException) -> bytes:
    """The child's exception pickled whole, so the parent raises the same type with the same message; its
    text only when it does not pickle (then the parent raises a RuntimeError quoting it)."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, MemoryError):
        return pickle.dumps((False, "ran out of memory"))
    if isinstance(exc, Exception):
        with contextlib.suppress(Exception):
            payload = pickle.dumps((False, exc), protocol=pickle.HIGHEST_PROTOCOL)
            pickle.loads(payload)  # some exceptions pickle but cannot be rebuilt (required keyword arguments)
            return payload
    return pickle.dumps((False, text))


class Forked(Generic[T]):
    """``fn()`` running in a forked child; ``result()`` waits for it. Use as a context manager so an
    exception in the parent kills the child instead of leaving it blocked on its pipe."""

    def __init__(self, fn: Callable[[], T], task: str = "a forked job") -> None:
        self._task = task
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: compute, send, and leave without running the parent's exit handlers
            status = 0
            try:
                os.close(read)
                try:
                    payload = pickle.dumps((True, fn()), protocol=pickle.HIGHEST_PROTOCOL)
                except BaseException as exc:  # report anything; the parent raises it, of its own type
                    payload = _failure(exc)
                with os.fdopen(write, "wb") as out:
                    out.write(payload)
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        os.close(write)
        self._pid = pid
        self._read = read
        self._done = False

    def result(self) -> T:
        with os.fdopen(self._read, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(self._pid, 0)
        self._done = True
        if not data:
            raise WorkerLostError(self._task, _ended(status))
        ok, value = pickle.loads(data)
        if not ok:
            if isinstance(value, Exception):
                raise value  # the child's own error (a DesensitizeError stays one: desensitize.errors)
            if value == "ran out of memory":
                raise WorkerLostError(self._task, value)
            raise RuntimeError(f"the forked worker failed: {value}")
        result: T = value
        return result

    def cancel(self) -> None:
        if self._done:
            return
        self._done = True
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
        with contextlib.suppress(OSError):
            os.close(self._read)

    def __enter__(self) -> Forked[T]:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if not self._done:
            self.cancel()
