"""Licence copies (issue 23): linkage is granted, not given.

What a job reads is the licence's own copy of a dataset, its pseudonyms keyed for the licence and its link
group (个人信息保护法 第七十三条(四) 去标识化; GB/T 37964-2019 假名化, 附录B on the joined view):

* the same datasets under two licences yield person keys that do not join;
* within one licence, datasets not granted jointly do not join; granted jointly, they do, and the joined
  view meets k;
* a job never mounts the base copy; the export guard blocks a per-licence pseudonym exported;
* a joint group whose joined view misses k is refused and nothing is recorded; a crash mid-copy leaves
  nothing. Runs on SQLite (the registry's code is the same on PostgreSQL; the migration is tested on both
  in ``test_linkage_registry``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from app import Instance
from core import Actor, RegistryError
from desensitize import JointResult
from registry.models import LicenceCopyRow
from tests.job_worker_proc import FakeResult
from tests.linkage_support import APART, JOINT, SCENARIO, Linked, linked
from tests.test_guard import _write


@pytest.fixture
def database_url() -> None:
    """SQLite only: these tests are about keys and files, not about the database."""
    return None


@pytest.fixture
def env(initialised: tuple[Instance, dict[str, str]], tmp_path: Path) -> Linked:
    return linked(initialised[0], tmp_path)


def _keys(frame: pd.DataFrame, column: str) -> set[str]:
    return set(frame[column].dropna())


def test_the_same_datasets_under_two_licences_yield_keys_that_do_not_join(env: Linked) -> None:
    _, joint_people = env.mounted(JOINT, "people")
    _, apart_people = env.mounted(APART, "people")
    _, base_people = env.base("people")
    assert len(joint_people) == len(apart_people) == len(base_people) > 500
    # The same rows, other keys, and another order (red team 23, F4: row i of one is not row i of the other).
    assert sorted(joint_people["性别"].tolist()) == sorted(apart_people["性别"].tolist())
    assert joint_people["性别"].tolist() != apart_people["性别"].tolist()
    keys = [_keys(f, "公民身份号码") for f in (joint_people, apart_people, base_people)]
    assert all(len(k) > 500 for k in keys)
    assert keys[0].isdisjoint(keys[1]) and keys[0].isdisjoint(keys[2]) and keys[1].isdisjoint(keys[2])
    _, apart_enrol = env.mounted(APART, "enrol")
    # An operator holding the other licence's output cannot join it to its own copies either.
    assert keys[0].isdisjoint(_keys(apart_enrol, "身份证号"))


def test_within_a_licence_only_datasets_granted_jointly_join(env: Linked) -> None:
    _, base_people = env.base("people")
    _, base_enrol = env.base("enrol")
    shared = _keys(base_people, "公民身份号码") & _keys(base_enrol, "身份证号")
    assert len(shared) > 100  # the base copies share one pseudonym per person: what issue 23 found
    _, apart_people = env.mounted(APART, "people")
    _, apart_enrol = env.mounted(APART, "enrol")
    assert _keys(apart_people, "公民身份号码").isdisjoint(_keys(apart_enrol, "身份证号"))
    _, joint_people = env.mounted(JOINT, "people")
    _, joint_enrol = env.mounted(JOINT, "enrol")
    joined = joint_people.merge(joint_enrol, left_on="公民身份号码", right_on="身份证号")
    assert len(joined) == len(shared)  # the same persons join, no more, no fewer
    linkage = env.registry.licences.get(env.licences[JOINT], viewer=Actor.host()).linkage
    assert linkage == [
        {
            "datasets": ["enrol", "people"],
            "joint": True,
            "key": "per licence, shared by the group",
            "risk": linkage[0]["risk"],
            "shared_columns": [],  # no kept key (red team 23, F5)
            "shared_note": None,
        }
    ]
    risk = linkage[0]["risk"]
    assert risk["met"] is True and risk["k_achieved"] >= 5 and risk["after"]["k"] >= 5
    # The joined view meets k on the copies a job reads, measured here again, not taken from the report.
    sizes = joint_people.groupby("性别").size()
    assert int(sizes.min()) >= 5


def test_a_job_never_mounts_the_base_copy(env: Linked) -> None:
    jobs = env.instance.jobs
    job = jobs.submit(JOINT, ["people", "enrol"], "sql", "SELECT 1", SCENARIO)
    view = jobs.show(job)
    with env.registry.recorder.read() as session:
        copies = {row.id: row for row in session.query(LicenceCopyRow).filter_by(licence_id=env.licences[JOINT])}
    for name in ("people", "enrol"):
        spec = view.datasets[name]
        base_path, _ = env.base(name)
        assert spec["path"] != base_path and spec["path"].startswith(f"licence-copies/{env.licences[JOINT]}/")
        row = copies[spec["licence_copy"]]
        assert (row.path, row.base_version, row.link_group) == (spec["path"], spec["version"], "enrol+people")


def test_a_copy_deleted_under_the_licence_is_made_again_before_the_next_job(env: Linked) -> None:
    """Lazily, outside the scope check's transaction: a missing copy is made, never replaced by the base copy."""
    licence = env.licences[APART]
    with env.registry.recorder.change(Actor.host()) as change:
        env.registry.licence_copies.drop_licence(change, licence)
    path, frame = env.mounted(APART, "people")
    assert path.startswith(f"licence-copies/{licence}/") and len(frame) > 500


def _leak_runner(value: str) -> Any:
    def runner(kind: str, code: str, *, datasets: Any, out_dir: Path, limits: Any = None) -> FakeResult:
        return FakeResult(out_dir=out_dir, outputs=_write(out_dir, {"keys.csv": f"key,n\n{value},40\n"}))

    return runner


def test_the_guard_blocks_a_per_licence_pseudonym_exported(env: Linked) -> None:
    _, frame = env.mounted(APART, "people")
    value = str(frame["公民身份号码"].iloc[3])
    _, base = env.base("people")
    assert value not in set(base["公民身份号码"])  # not a base pseudonym: only the licence copy's prints hold it
    job = env.instance.jobs.submit(APART, ["people"], "python", "print(1)", SCENARIO)
    (view,) = env.instance.worker(runner=_leak_runner(value), worker_id="link").run_pending()
    assert view.id == job and view.verdict == "block"
    rules = {(f["rule"], f["severity"]) for f in view.findings}
    assert ("identifier.fingerprint", "hard") in rules, view.findings
    assert value not in str(view.as_json())


def test_a_joint_group_missing_k_is_refused_and_nothing_is_recorded(
    env: Linked, monkeypatch: pytest.MonkeyPatch
) -> None:
    import desensitize

    def unmet(tables: Any) -> JointResult:
        return JointResult({t.name: t.frame for t in tables}, {"met": False, "reason": "k = 1 on the joined view"})

    # registry.linkage imports link_tables from the face when it links (issue 21: no pandas at start).
    monkeypatch.setattr(desensitize, "link_tables", unmet)
    licence = env.licences[JOINT]
    with env.registry.recorder.change(Actor.host()) as change:
        env.registry.licence_copies.drop_licence(change, licence)
    before = env.instance.ledger.size()
    with pytest.raises(RegistryError, match=r"cannot be analysed jointly.*k = 1 on the joined view"):
        env.registry.licence_copies.ensure(licence)
    assert env.instance.ledger.size() == before
    with env.registry.recorder.read() as session:
        assert session.query(LicenceCopyRow).filter_by(licence_id=licence).count() == 0
    assert [p for p in (env.instance.home / "licence-copies" / str(licence)).rglob("*") if p.is_file()] == []
    from operators import JobRefusedError

    with pytest.raises(JobRefusedError, match=r"no copy for licence .*k = 1 on the joined view"):
        env.instance.jobs.submit(JOINT, ["people"], "sql", "SELECT 1", SCENARIO)


def test_a_crash_mid_copy_leaves_nothing(env: Linked, monkeypatch: pytest.MonkeyPatch) -> None:
    import registry.linkage

    licence = env.licences[APART]
    with env.registry.recorder.change(Actor.host()) as change:
        env.registry.licence_copies.drop_licence(change, licence)

    def crash(*points: str) -> None:
        if "licence-copy.files-written" in points:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(registry.linkage, "crash_point", crash)
    before = env.instance.ledger.size()
    with pytest.raises(KeyboardInterrupt):
        env.registry.licence_copies.ensure(licence)
    assert env.instance.ledger.size() == before
    assert [p for p in (env.instance.home / "licence-copies" / str(licence)).rglob("*") if p.is_file()] == []
    # What a kill -9 would leave (files no row names) is swept at the next start.
    stray = env.instance.home / "licence-copies" / str(licence) / "people-v2.dead.parquet.kyv"
    stray.write_bytes(b"left by a killed process")
    swept = env.registry.sweep()
    assert f"licence-copies/{licence}/people-v2.dead.parquet.kyv" in swept.removed and not stray.exists()
    monkeypatch.undo()
    assert sorted(env.registry.licence_copies.ensure(licence)) == ["enrol", "people"]


@pytest.mark.parametrize("point", ["licence-copy.files-written", "before-commit:licence.copy_made"])
def test_a_process_killed_mid_copy_leaves_nothing_once_swept(env: Linked, point: str) -> None:
    """kill -9 after the files are written, or just before the rows commit: the next start's sweep removes the
    files no row names (issue 17's rule for every multi-step write), and the copy is made again."""
    from tests.test_crash_safety import kill_at

    licence = env.licences[APART]
    with env.registry.recorder.change(Actor.host()) as change:
        env.registry.licence_copies.drop_licence(change, licence)
    directory = env.instance.home / "licence-copies" / str(licence)
    for left in directory.iterdir():  # the dropped copies' files go after their commit; wait for none
        assert not left.exists()
    before = env.instance.ledger.size()
    kill_at(env.instance.home, point, "licence-copies", str(licence))
    assert any(p.is_file() for p in directory.rglob("*"))  # the dead process left sealed files behind
    env.registry.sweep()
    assert [p for p in directory.rglob("*") if p.is_file()] == []
    assert env.instance.ledger.size() == before
    with env.registry.recorder.read() as session:
        assert session.query(LicenceCopyRow).filter_by(licence_id=licence).count() == 0
    assert sorted(env.registry.licence_copies.ensure(licence)) == ["enrol", "people"]


def test_a_newer_base_copy_supersedes_the_licence_copies(env: Linked) -> None:
    from tests.linkage_support import CUSTODIAN

    old_path, _ = env.mounted(APART, "people")
    mark = env.instance.ledger.size()
    env.registry.copies.make("people", by=CUSTODIAN)  # a newer base version: its licence copies follow
    new_path, _ = env.mounted(APART, "people")
    assert new_path != old_path and not (env.instance.home / old_path).exists()
    actions = [e.action for e in env.instance.ledger.entries(after=mark, limit=1000)]
    assert "licence.copy_made" in actions and "licence.copy_deleted" in actions


def test_purging_a_base_version_destroys_the_licence_copies_derived_from_it(env: Linked) -> None:
    """Retention (SATRE 3.1.09) destroys a version's data: the licences' copies of it are that data too."""
    from registry.models import VersionRow
    from tests.linkage_support import CUSTODIAN

    old_path, _ = env.mounted(APART, "people")
    env.registry.copies.recorded.clear()  # the licence copies do not follow this time: still derived from v2
    env.registry.copies.make("people", by=CUSTODIAN)
    assert (env.instance.home / old_path).is_file()
    result = env.registry.retention.purge("people", version=2, reason="retention test", by=CUSTODIAN)
    assert result.as_json()["versions"]
    assert not (env.instance.home / old_path).exists()
    with env.registry.recorder.read() as session:
        v2 = session.query(VersionRow).filter_by(version=2).filter(VersionRow.path.contains("people")).one()
        assert session.query(LicenceCopyRow).filter_by(base_version_id=v2.id).count() == 0
    path, _ = env.mounted(APART, "people")  # the next job gets a copy of the newest version, made lazily
    assert path != old_path and "-v3." in path


def test_copies_are_made_when_the_licence_becomes_active(env: Linked) -> None:
    """Activation makes them (after its commit), before any job asks: each ledgered with its base version."""
    with env.registry.recorder.read() as session:
        rows = session.query(LicenceCopyRow).order_by(LicenceCopyRow.id).all()
        made = sorted((r.licence_id, r.resource.name, r.link_group, r.shares_base) for r in rows)
    joint, apart = env.licences[JOINT], env.licences[APART]
    assert made == [
        (joint, "enrol", "enrol+people", False),
        (joint, "people", "enrol+people", False),
        (apart, "enrol", "enrol", False),
        (apart, "people", "people", False),
    ]
    entries = [e for e in env.instance.ledger.entries(after=0, limit=100_000) if e.action == "licence.copy_made"]
    assert sorted((e.subject, e.payload["dataset"], e.payload["base_version"]) for e in entries) == sorted(
        (f"licence:{lid}", name, 2) for lid, name, _, _ in made
    )
    assert all(e.payload["joint"] is not None for e in entries if e.subject == f"licence:{joint}")
