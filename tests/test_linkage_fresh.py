"""The cheap "copies already made?" answer before an admission (issue 21, throughput) agrees with the full
walk (``LicenceCopies._missing``) in every case the linkage tests build: made, one missing, a joint group
missing one member, no licence; and ``ensure_for`` still makes what is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, select

from app import Instance
from registry.linkage_fresh import copies_current
from registry.models import LicenceCopyRow, ResourceRow
from tests.linkage_support import APART, JOINT, Linked, linked

NAME_SETS = (["people"], ["enrol"], ["people", "enrol"])


@pytest.fixture
def env(initialised: tuple[Instance, dict[str, str]], tmp_path: Path) -> Linked:
    env = linked(initialised[0], tmp_path)
    for operator in (JOINT, APART):  # every copy made, as after a first admission
        for names in NAME_SETS:
            assert env.registry.licence_copies.ensure_for(operator, names) == {}
    return env


def _full_walk_finds_nothing(env: Linked, operator: str, names: list[str]) -> bool:
    """The oracle: what ``ensure_for`` would make, by the ORM walk it did before the cheap answer."""
    copies = env.registry.licence_copies
    licence = env.licences[operator]
    return not any(set(names) & {m.name for m in members} for _, members in copies._missing(licence))


def _current(env: Linked, operator: str, names: list[str]) -> bool:
    with env.registry.recorder.read() as session:
        return copies_current(session, operator, names)


def _drop_copy(env: Linked, operator: str, dataset: str) -> None:
    with env.registry.recorder.engine.begin() as connection:
        resource = connection.scalar(select(ResourceRow.id).where(ResourceRow.name == dataset))
        connection.execute(
            delete(LicenceCopyRow).where(
                LicenceCopyRow.licence_id == env.licences[operator], LicenceCopyRow.resource_id == resource
            )
        )


def test_made_copies_are_current_for_every_operator_and_name_set(env: Linked) -> None:
    for operator in (JOINT, APART):
        for names in NAME_SETS:
            assert _full_walk_finds_nothing(env, operator, names)
            assert _current(env, operator, names), (operator, names)
    assert _current(env, "nobody-licensed", ["people"])  # no licence: nothing to make (the scope check refuses)


def test_a_missing_copy_is_seen_alone_or_through_its_joint_group(env: Linked) -> None:
    _drop_copy(env, APART, "people")
    _drop_copy(env, JOINT, "people")
    expected = {
        (APART, "people"): False,
        (APART, "enrol"): True,  # granted apart: enrol's copy stands on its own
        (APART, "people+enrol"): False,
        (JOINT, "people"): False,
        (JOINT, "enrol"): False,  # granted jointly: the group is made whole, so enrol's job waits for it too
        (JOINT, "people+enrol"): False,
    }
    for operator in (JOINT, APART):
        for names in NAME_SETS:
            answer = _current(env, operator, names)
            assert answer == expected[(operator, "+".join(names))], (operator, names)
            assert answer == _full_walk_finds_nothing(env, operator, names), (operator, names)
    assert env.registry.licence_copies.ensure_for(JOINT, ["enrol"]) == {}  # the full path makes the group
    assert env.registry.licence_copies.ensure_for(APART, ["people"]) == {}
    for operator in (JOINT, APART):
        for names in NAME_SETS:
            assert _current(env, operator, names) and _full_walk_finds_nothing(env, operator, names)
