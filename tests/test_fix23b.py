"""fix23b: what the red team 23b's findings left to close beyond its own tests.

F4: a process that remembers a longer head uses it as evidence, in its verifications too, not only in its
next append (a head file removed while a DBA cuts the tail, and no append since).
"""

from __future__ import annotations

from pathlib import Path

from tests.adversarial.test_redteam23b import _cut_tail, _writer


def test_a_removed_head_file_still_lets_this_process_see_a_cut(tmp_path: Path) -> None:
    """The head file is removed and the tail cut; before any append, this process's verification compares
    the database with the head it committed (red team 23b F4): the cut is a problem, not a warning."""
    ledger, engine, head = _writer(tmp_path)
    try:
        head.unlink()
        _cut_tail(engine, 2)
        report = ledger.verify(reference=True)
        assert not report.ok, report.warnings
        assert "truncated" in {p.kind for p in report.problems}, report.problems
        assert any("removed" in w for w in report.warnings), report.warnings
    finally:
        engine.dispose()
