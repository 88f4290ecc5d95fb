"""The review thread and the queue's assignments (issue 18; 双鸭山 第五十二条: the pre-release review, a
returned product is corrected and reviewed again): reviewers and the requesting operator comment per file or
on the whole release, others are refused; a return needs the reviewer's comment; a comment is ledgered as
its SHA-256; a reviewer takes and gives back a pending release."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app import Instance
from core import Actor, NotFoundError, PermissionDeniedError, text_sha256
from sandbox.release import ReleaseError
from tests.test_release import ACME, R1, R2, done_job, instance  # noqa: F401  (the fixture)

OTHER = Actor("other-operator", "operator")


def _ledgered(instance: Instance, action: str) -> list[str]:  # noqa: F811
    with instance.engine.connect() as connection:
        rows = connection.execute(text("SELECT payload FROM ledger_entries WHERE action = :a"), {"a": action})
        return [str(r[0]) for r in rows]


def test_parties_comment_per_file_and_on_the_release(instance: Instance) -> None:  # noqa: F811
    release = instance.releases.request(done_job(instance, "pass"), product="thread", by=ACME).id
    on_file = instance.releases.comments.post(release, "第 3 行人数过小，请合并", by=R1, file="result.txt")
    assert (on_file.file, on_file.round, on_file.role) == ("result.txt", 1, "agency")
    reply = instance.releases.comments.post(release, "已合并，将重新运行", by=ACME)
    assert reply.file is None and reply.author == ACME.name
    thread = instance.releases.comments.list(release, viewer=R2)
    assert [c.body for c in thread] == ["第 3 行人数过小，请合并", "已合并，将重新运行"]
    assert [c.id for c in instance.releases.comments.list(release, viewer=ACME)] == [c.id for c in thread]
    # Ledgered with the body's hash, never the words.
    payloads = _ledgered(instance, "release.commented")
    assert len(payloads) == 2 and text_sha256("已合并，将重新运行") in payloads[1]
    assert "已合并" not in "".join(payloads)


def test_refusals_of_the_thread(instance: Instance) -> None:  # noqa: F811
    release = instance.releases.request(done_job(instance, "pass"), product="refused", by=ACME).id
    with pytest.raises(NotFoundError):  # another operator never learns the release exists
        instance.releases.comments.post(release, "hello", by=OTHER)
    with pytest.raises(NotFoundError):
        instance.releases.comments.list(release, viewer=OTHER)
    for outsider in (Actor("demo-regulator", "regulator"), Actor("demo-custodian", "custodian"), Actor.host()):
        with pytest.raises(PermissionDeniedError):
            instance.releases.comments.post(release, "hello", by=outsider)
    with pytest.raises(ReleaseError, match="1-4000"):
        instance.releases.comments.post(release, "   ", by=R1)
    with pytest.raises(ReleaseError, match="1-4000"):
        instance.releases.comments.post(release, "x" * 4001, by=R1)
    with pytest.raises(ReleaseError, match="no file"):
        instance.releases.comments.post(release, "which file?", by=R1, file="nope.csv")
    with pytest.raises(NotFoundError):
        instance.releases.comments.post(99999, "hello", by=R1)
    instance.releases.withdraw(release, by=ACME, reason="不再需要")
    with pytest.raises(ReleaseError, match="closed"):
        instance.releases.comments.post(release, "too late", by=R1)


def test_a_return_needs_a_comment_and_the_operator_reads_it(instance: Instance) -> None:  # noqa: F811
    release = instance.releases.request(done_job(instance, "pass"), product="returned", by=ACME).id
    with pytest.raises(ReleaseError, match="need your comment"):
        instance.releases.vote(release, "changes_requested", by=R1, reason="请取整")
    instance.releases.vote(release, "changes_requested", by=R1, reason="请取整", comment="请将人数取整到 5")
    instance.releases.comments.post(release, "同意取整", by=R2, file="result.txt")
    view = instance.releases.vote(release, "changes_requested", by=R2, reason="取整")
    assert view.state == "returned"
    bodies = [c.body for c in instance.releases.comments.list(release, viewer=ACME)]
    assert bodies == ["请将人数取整到 5", "同意取整"]
    instance.releases.comments.post(release, "已取整并重新运行", by=ACME)
    again = instance.releases.resubmit(release, job_id=done_job(instance, "pass", code="2"), by=ACME)
    assert again.round == 2
    # A comment in round 1 does not carry a return in round 2.
    with pytest.raises(ReleaseError, match="need your comment"):
        instance.releases.vote(release, "changes_requested", by=R1, reason="仍需修改")
    assert [c.round for c in instance.releases.comments.list(release, viewer=R1)] == [1, 1, 1]


def test_assignment_of_the_queue(instance: Instance) -> None:  # noqa: F811
    release = instance.releases.request(done_job(instance, "pass"), product="assigned", by=ACME).id
    assert instance.releases.comments.assign(release, by=R1) == R1.name
    assert instance.releases.comments.assign(release, by=R1) == R1.name  # idempotent, ledgered once
    assert instance.releases.comments.assignments(viewer=R2) == {release: R1.name}
    with pytest.raises(ReleaseError, match="unassign first"):
        instance.releases.comments.assign(release, by=R2)
    with pytest.raises(ReleaseError, match="not assigned to you"):
        instance.releases.comments.assign(release, by=R2, take=False)
    with pytest.raises(PermissionDeniedError):
        instance.releases.comments.assign(release, by=ACME)
    with pytest.raises(PermissionDeniedError):
        instance.releases.comments.assignments(viewer=ACME)
    assert instance.releases.comments.assign(release, by=R1, take=False) is None
    assert instance.releases.comments.assignments(viewer=R1) == {}
    assert len(_ledgered(instance, "release.assigned")) == 1 and len(_ledgered(instance, "release.unassigned")) == 1
    instance.releases.withdraw(release, by=ACME)
    with pytest.raises(ReleaseError, match="not in the review queue"):
        instance.releases.comments.assign(release, by=R2)
