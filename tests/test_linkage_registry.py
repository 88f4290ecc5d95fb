"""Linked copies in the registry's surfaces (issue 23): granting joint analysis, saying what is linkable,
and the schema that holds it.

* ``keyong licence grant --joint A,B`` (and the API's ``"joint"``) grants joint analysis of a group; bad
  groups (one dataset, a duplicate, a dataset outside the licence or in two groups, a dataset without a
  person key) are refused with exit 1 and a clear message, nothing granted.
* ``licence show``/``licence list``, the API licence view, ``dataset show`` (operators: their own licences
  only) and the console's licence pages say what can be linked and the joined view's risk.
* Migration ``0019_linked_copies`` goes up and down on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import inspect
from typer.testing import CliRunner

from app import Instance, Settings
from app.api import create_app
from app.cli import cli
from app.database import alembic_config, make_engine, migrate, sqlite_url
from app.instance import DEMO_PRINCIPALS
from core import Actor
from operators import Role
from tests.console_support import console_client
from tests.linkage_support import APART, JOINT, Linked, linked
from tests.test_api import bearer
from tests.test_registry_licences import add_dataset


def _cli(instance: Instance, *args: str) -> Any:
    return CliRunner().invoke(cli, [*args, "--home", str(instance.home)], env={"COLUMNS": "250"})


@pytest.fixture
def env(initialised: tuple[Instance, dict[str, str]], tmp_path: Path, database_url: str | None) -> Linked:
    if database_url is not None:
        pytest.skip("the surfaces read the same rows on both databases; the migration test covers PostgreSQL")
    return linked(initialised[0], tmp_path)


_no_kept_key = {"shared_columns": [], "shared_note": None}  # red team 23, F5: no kept key joins across licences


def test_licence_show_and_list_say_what_can_be_linked(env: Linked) -> None:
    shown = _cli(env.instance, "licence", "show", str(env.licences[JOINT]), "--json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    (group,) = data["linkage"]
    assert (group["datasets"], group["joint"], group["key"]) == (
        ["enrol", "people"],
        True,
        "per licence, shared by the group",
    )
    assert group["risk"]["met"] is True and group["risk"]["k_achieved"] >= 5
    assert {"before", "after"} <= set(group["risk"])
    assert sorted((d["name"], d["link_group"]) for d in data["datasets"]) == [
        ("enrol", "enrol+people"),
        ("people", "enrol+people"),
    ]
    listed = json.loads(_cli(env.instance, "licence", "list", "--json").stdout)["licences"]
    apart = next(item for item in listed if item["id"] == env.licences[APART])
    assert apart["linkage"] == [
        {"datasets": [name], "joint": False, "key": "per licence and dataset", "risk": None, **_no_kept_key}
        for name in ("people", "enrol")
    ]
    human = _cli(env.instance, "licence", "show", str(env.licences[JOINT]))
    assert "What can be linked" in human.stdout and "enrol + people" in human.stdout


def test_dataset_show_says_per_licence_what_it_links_with(env: Linked) -> None:
    data = json.loads(_cli(env.instance, "dataset", "show", "people", "--json").stdout)
    by_licence = {e["licence"]: e for e in data["linkage"]}
    assert by_licence[env.licences[JOINT]]["linkable_with"] == ["enrol"]
    assert by_licence[env.licences[JOINT]]["operator"] == JOINT
    assert by_licence[env.licences[APART]]["linkable_with"] == []
    assert by_licence[env.licences[APART]]["key"] == "per licence and dataset"


@pytest.mark.parametrize(
    ("joint", "message"),
    [
        (["people"], "needs two or more datasets"),
        (["people,people"], "names a dataset twice"),
        (["people,traffic"], "outside the licence's datasets"),
        (["people,enrol", "enrol,people"], "is in joint groups 1 and 2"),
        (["people,trips"], "has no person key column"),
    ],
)
def test_bad_joint_groups_are_refused_with_exit_1(env: Linked, joint: list[str], message: str) -> None:
    add_dataset(env.registry, "trips")  # licensable, but no person key column
    from tests.consent_support import consent_to_access

    consent_to_access(env.registry, "trips")
    before = env.instance.ledger.size()
    args = ["licence", "grant", JOINT, "--datasets", "people,enrol,trips", "--scenarios", "人口统计"]
    args += ["--until", "2099-12-31", "--publicity-days", "0"]
    for group in joint:
        args += ["--joint", group]
    result = _cli(env.instance, *args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert env.instance.ledger.size() == before  # nothing granted, nothing ledgered


def test_the_api_grants_joint_analysis_and_shows_linkage(
    env: Linked, initialised: tuple[Instance, dict[str, str]]
) -> None:
    instance, tokens = initialised
    operator = DEMO_PRINCIPALS[Role.OPERATOR]
    client = TestClient(create_app(instance=instance))
    agency = bearer(client, tokens["agency"])
    from tests.people_support import stand

    instance.registry.licences.add_operator(
        operator, "91230500MA1D2E3F4" + _check("91230500MA1D2E3F4"), by=Actor.host()
    )
    stand(instance.registry, operator)
    body = {
        "operator": operator,
        "datasets": ["people", "enrol"],
        "scenarios": ["人口统计"],
        "valid_until": "2099-12-31",
        "publicity_days": 0,
        "joint": [["people", "enrol"]],
        "reason": "joint analysis granted",
    }
    bad = client.post("/licences", json=body | {"joint": [["people"]]}, headers=agency)
    assert bad.status_code in (409, 422) and "two or more" in bad.text
    made = client.post("/licences", json=body, headers=agency)
    assert made.status_code == 201, made.text
    assert made.json()["linkage"][0]["joint"] is True
    granted = instance.ledger.entries(after=0, limit=100_000)
    (entry,) = [e for e in granted if e.action == "licence.granted" and e.subject == f"licence:{made.json()['id']}"]
    assert entry.payload["joint"] == [["enrol", "people"]]
    mine = bearer(client, tokens["operator"])
    seen = client.get("/datasets/people", headers=mine).json()["linkage"]
    assert [e["operator"] for e in seen] == [operator]  # its own licence only, not acme's nor beta's
    assert seen[0]["linkable_with"] == ["enrol"]
    everything = client.get("/datasets/people", headers=agency).json()["linkage"]
    assert {e["operator"] for e in everything} == {operator, JOINT, APART}
    page = console_client(instance, tokens["operator"]).get("/console/operator").text
    assert 'id="linkage"' in page and "enrol + people" in page and "per licence, shared by the group" in page
    agency_page = console_client(instance, tokens["agency"]).get("/console/agency/licences").text
    assert agency_page.count("data-linkage=") >= 4  # joint (1) + apart (2) + the demo operator's (1)
    regulator = console_client(instance, tokens["regulator"]).get("/console/regulator/usage?dataset=people").text
    assert 'id="linkage"' in regulator and "per licence and dataset" in regulator


def _check(base: str) -> str:
    from desensitize.identifiers import uscc_check_char

    return uscc_check_char(base)


def test_migration_0019_goes_down_and_up(settings: Settings) -> None:
    settings.home.mkdir(parents=True)
    engine = make_engine(settings.database_url or sqlite_url(settings.home))
    migrate(engine)
    assert "licence_copies" in inspect(engine).get_table_names()
    assert "link_group" in {c["name"] for c in inspect(engine).get_columns("licence_datasets")}
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0018_consent")
    inspector = inspect(engine)
    assert "licence_copies" not in inspector.get_table_names()
    assert "link_group" not in {c["name"] for c in inspector.get_columns("licence_datasets")}
    migrate(engine)
    assert "licence_copies" in inspect(engine).get_table_names()
    engine.dispose()


def test_a_licence_ended_takes_its_copies_with_it(env: Linked) -> None:
    licence = env.licences[APART]
    files = [p for p in (env.instance.home / "licence-copies" / str(licence)).rglob("*") if p.is_file()]
    assert files
    env.registry.licences.transition(licence, "revoked", by=Actor("demo-agency", "agency"), reason="test: ended")
    assert [p for p in files if p.exists()] == []
    assert env.registry.licences.get(licence, viewer=Actor.host()).linkage  # what was granted stays readable
