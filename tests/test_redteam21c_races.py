"""Red team 21c: concurrent double-submits that create the same named thing (F9).

Each create checks "does it exist?" then inserts; on PostgreSQL two requests at once both pass the check and the
later insert meets the unique index: ``IntegrityError`` was a 500 for every loser (dataset ingest, operator add,
principal add). The loser's transaction rolled back; it is a conflict with what now exists: 409. Any other
integrity failure stays a 500 (a fault of the server, not of the request).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert
from sqlalchemy.exc import IntegrityError

from app import Instance, create_app
from app.api.registry import install_error_handlers
from tests.conftest import bearer

USCC = "91230500MA0000002G"  # a valid 统一社会信用代码 (GB 32100)


@pytest.fixture
def database_url(pg_url: str) -> str:
    """PostgreSQL: SQLite serialises the writers, so the race never opens there."""
    return pg_url


def burst(app: FastAPI, n: int, call: Any) -> list[int]:
    """``n`` clients calling at once (a barrier releases them together); their status codes."""
    codes = [0] * n
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        client = TestClient(app, raise_server_exceptions=False)
        barrier.wait()
        codes[i] = call(client).status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return codes


@pytest.mark.slow
def test_concurrent_creates_of_one_name_are_one_201_and_409s(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = initialised
    app = create_app(instance=instance)
    agency = bearer(TestClient(app), tokens["agency"])
    custodian = bearer(TestClient(app), tokens["custodian"])
    before = instance.ledger.size()
    operators = burst(app, 4, lambda c: c.post("/operators", headers=agency, json={"name": "race-op", "uscc": USCC}))
    assert sorted(operators) == [201, 409, 409, 409], operators
    people = burst(
        app, 4, lambda c: c.post("/principals", headers=agency, json={"name": "race-op", "role": "operator"})
    )
    assert sorted(people) == [201, 409, 409, 409], people
    table = ("站点编号,年龄\n" + "".join(f"S{i},{i % 50}\n" for i in range(50))).encode()
    fields = {"provider": "市交通运输局", "provider_code": USCC, "level": "L4"}
    ingests = burst(
        app,
        4,
        lambda c: c.post("/datasets/race_new/ingest", headers=custodian, data=fields, files={"file": ("a.csv", table)}),
    )
    assert sorted(ingests) == [200, 409, 409, 409], ingests
    report = instance.ledger.verify()
    assert report.problems == [] and instance.ledger.size() > before
    assert [e.name for e in instance.registry.catalog.list()].count("race_new") == 1


def test_only_a_taken_unique_key_is_a_409(tmp_path: Path) -> None:
    """The handler's rule on real driver errors (SQLite's here): a duplicate is 409, a NOT NULL failure 500."""
    engine = create_engine(f"sqlite:///{tmp_path / 'things.db'}")  # a file: the routes run in other threads
    things = Table("things", MetaData(), Column("id", Integer, primary_key=True), Column("name", String, unique=True,
                   nullable=False))  # fmt: skip
    things.metadata.create_all(engine)

    def attempt(values: dict[str, Any]) -> None:
        with engine.begin() as connection:
            connection.execute(insert(things).values(**values))

    attempt({"name": "a"})
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/duplicate")
    def duplicate() -> None:
        attempt({"name": "a"})

    @app.get("/missing")
    def missing() -> None:
        attempt({"name": None})

    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/duplicate").status_code == 409
    assert client.get("/missing").status_code == 500
    with pytest.raises(IntegrityError):
        attempt({"name": None})
