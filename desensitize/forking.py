"""Half of a large job on the second core, in a forked child that shares the parent's memory.

Why not ``concurrent.futures``: a process pool pickles the function's arguments to send them, and
here the arguments are the table itself (a million rows of text); a forked child already has them,
copy-on-write, so only the *result* crosses, through an anonymous file in memory. Threads would not
carry the main work: the free-text scanner is Python ``re`` (it holds the GIL); they serve only the
GIL-free tails (``on_threads``).

Used only where a stage is large enough (``worth_forking``) and the machine has a second usable
core; otherwise the work runs inline, so results never depend on whether a fork happened. A child
that fails sends its exception; the caller raises it, of the type and with the message it would have
had inline (its text in a ``RuntimeError`` only when it cannot be pickled).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import pickle
import signal
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Generic, TypeVar

__all__ = ["Forked", "WorkerLostError", "on_threads", "usable_cores", "worth_forking"]

T = TypeVar("T")

#: How much lower a ``background`` child's scheduling priority is (``nice``): work done ahead for a later
#: stage yields the cores to the stage the caller is running, and uses what that leaves.
BACKGROUND_NICENESS = 10

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


def on_threads(tasks: Mapping[str, Callable[[], Any]], threads: int) -> dict[str, Any]:
    """Each task's result, the tasks run on ``threads`` threads (1: one after the other, here).

    For work that releases the GIL (numpy's sorts and arithmetic, pyarrow's kernels, the C hashes): where
    a stage's last part runs once every forked helper has ended, or in a helper once the caller waits for
    it, the second core is otherwise idle. The tasks must only read what they share."""
    if threads < 2 or len(tasks) < 2:
        return {name: task() for name, task in tasks.items()}
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="keyong-part") as pool:
        futures = {name: pool.submit(task) for name, task in tasks.items()}
        return {name: future.result() for name, future in futures.items()}


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


def _result_file() -> int:
    """An anonymous file in memory the child writes its result to: it never blocks on a reader (a pipe's
    64 KiB made a child wait for its parent and the parent read 100 MB at ~0.5 GB/s, a quarter second
    on the path of every large copy); a memfd is never on disk (the fallback is an unlinked file)."""
    try:
        return os.memfd_create("keyong-forked", os.MFD_CLOEXEC)
    except (AttributeError, OSError):  # not Linux: an unlinked temporary file
        # Dup'd while the file object lives: ``os.dup(TemporaryFile().fileno())`` closed the file before the
        # dup (EBADF, or another thread's file that took its number) (review 24).
        with tempfile.TemporaryFile() as handle:
            return os.dup(handle.fileno())


def _write_all(fd: int, payload: bytes) -> None:
    view, offset = memoryview(payload), 0
    while offset < len(view):
        offset += os.pwrite(fd, view[offset:], offset)


def _load(fd: int) -> tuple[bool, Any] | None:
    """What the child stored, unpickled straight from the mapped file; None when it stored nothing (a file
    written in part, by a child that died while writing, never gets here: its exit status is checked first)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    with mmap.mmap(fd, size, prot=mmap.PROT_READ) as stored:
        loaded: tuple[bool, Any] = pickle.loads(stored)
    return loaded


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
    exception in the parent kills the child instead of leaving it to run on.

    ``background``: the work is for a later stage (``BACKGROUND_NICENESS``)."""

    def __init__(self, fn: Callable[[], T], task: str = "a forked job", *, background: bool = False) -> None:
        self._task = task
        self._file = _result_file()
        try:
            pid = os.fork()
        except BaseException:  # EAGAIN (a pids cgroup, RLIMIT_NPROC), ENOMEM: no child, no file left open
            os.close(self._file)
            raise
        if pid == 0:  # the child: compute, store, and leave without running the parent's exit handlers
            status = 0
            try:
                if background:  # a hint: where setpriority is refused the work still runs
                    with contextlib.suppress(OSError):
                        os.nice(BACKGROUND_NICENESS)
                try:
                    payload = pickle.dumps((True, fn()), protocol=pickle.HIGHEST_PROTOCOL)
                except BaseException as exc:  # report anything; the parent raises it, of its own type
                    payload = _failure(exc)
                _write_all(self._file, payload)
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        self._pid = pid
        self._done = False

    def result(self) -> T:
        if self._done:  # its child is reaped and its file closed: a second wait could reap another's pid
            raise RuntimeError(f"the result of {self._task} was taken or cancelled already")
        _, status = os.waitpid(self._pid, 0)
        self._done = True
        try:
            stored = _load(self._file) if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else None
        finally:
            os.close(self._file)
        if stored is None:
            raise WorkerLostError(self._task, _ended(status))
        ok, value = stored
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
            os.close(self._file)

    def __enter__(self) -> Forked[T]:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if not self._done:
            self.cancel()
