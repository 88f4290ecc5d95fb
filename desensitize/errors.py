"""The one error a desensitization refuses with, and the turning of anything unforeseen into it.

Why: the guide asks that bad input get a clear error and lose nothing. A table can hold values no
stage foresaw (a cell of bytes, a list, a lone surrogate, a date no calendar has); a library deep
in a stage then raises its own ``TypeError`` or ``UnicodeEncodeError``, which the registry cannot
tell from a bug and the API answers with a 500. The pipeline's face (``desensitize_table``) turns
every such exception into a :class:`DesensitizeError` that names the stage and, where known, the
column, keeping the original as ``__cause__``: a future odd value is still a clear refusal (fail
closed), and the registry answers it as a refused request (4xx, exit 1), writing nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DesensitizeError", "StageTracker", "out_of_resources", "unforeseen"]

#: How much of an unforeseen exception's own text a refusal quotes (it may hold a cell's value).
_QUOTED_CHARS = 200


class DesensitizeError(ValueError):
    """A table the desensitization refuses: the message says which stage and column, and what to fix.

    A ``ValueError`` so that callers catching the pipeline's older refusals (``TransformError`` is one)
    keep working. ``stage``, ``column`` and ``record`` (counting from 1) are ``None`` where unknown.
    """

    def __init__(
        self, message: str, *, stage: str | None = None, column: str | None = None, record: int | None = None
    ) -> None:
        super().__init__(message)
        self.stage = stage
        self.column = column
        self.record = record

    def __reduce__(self) -> tuple[Any, ...]:
        # A forked child sends its exception pickled (``desensitize.forking``): keep the attributes.
        return (_rebuild, (type(self), str(self), self.stage, self.column, self.record))


def _rebuild(
    kind: type[DesensitizeError], message: str, stage: str | None, column: str | None, record: int | None
) -> DesensitizeError:
    error = kind.__new__(kind)
    DesensitizeError.__init__(error, message, stage=stage, column=column, record=record)
    return error


class StageTracker:
    """A progress callback that remembers the last stage reported, so a failure can name it."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.stage = "start"
        self.finished = False

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.stage, self.finished = stage, done >= total
        self._inner(stage, done, total)

    def where(self) -> str:
        """The stage running, or the gap after the last one reported (risk and utility report none)."""
        if self.stage == "start":
            return "its first stage"
        return f"the stage after {self.stage!r}" if self.finished else f"the {self.stage!r} stage"


def unforeseen(
    exc: BaseException, where: str, *, stage: str | None = None, column: str | None = None
) -> DesensitizeError:
    """``exc`` (raised by a stage, not a refusal already) as a :class:`DesensitizeError` naming ``where`` and
    the column; the caller raises it ``from exc``. Refusals (``DesensitizeError``, ``RulingError``) and what
    is not about the table (``MemoryError``, interrupts) are the caller's to let through."""
    text = str(exc)
    if len(text) > _QUOTED_CHARS:
        text = text[:_QUOTED_CHARS] + "…"
    on = f", column {column!r}" if column is not None else ""
    return DesensitizeError(
        f"the desensitization failed in {where}{on} on a value it does not handle ({type(exc).__name__}: {text}); "
        "nothing was written: check that column's values (text, numbers or dates, one kind per column) and "
        "its grading, then desensitize again",
        stage=stage,
        column=column,
    )


def out_of_resources(exc: BaseException, where: str, *, stage: str | None = None) -> DesensitizeError:
    """A ``MemoryError``, or a forked worker killed by a signal or out of memory (``desensitize.forking``), as one
    refusal that names the machine, not the values (red team 23a F9: a SIGKILLed child was blamed on "a value it
    does not handle", a child's MemoryError passed raw). No edit of the data fixes it; more memory does."""
    task = getattr(exc, "task", None)
    if task is not None:  # the forked job's own task, not the stage the parent had reached meanwhile
        stage, what = task, str(exc)
    else:
        what = f"the process ran out of memory in {where} (MemoryError)"
    return DesensitizeError(
        f"the desensitization stopped: {what}; nothing was written. This is a limit of the machine, "
        "not a fault in the data: give the process more memory (or run fewer jobs at once), then desensitize again",
        stage=stage,
    )
