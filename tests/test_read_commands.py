"""``keyong product list|show``, ``keyong ledger show`` and ``ledger verify`` read without the writer's stack
(issue 21).

What the read-only reads must keep: the very bytes the registry's and the ledger's own reads print
(DESIGN.md: the JSON keys are the public contract), on SQLite and PostgreSQL, for products available and
suspended, with dissent, priced or free (双鸭山 第四十四条), with their lineage and attribution (第五十条,
第四十一条); the ledger's filters and paging as ``Ledger.entries`` applies them; the verifier's report as
``Ledger.verify`` gives it, damaged ledger included, and the writer's open where a half-done ledger key
rotation needs it (it decides which key is current). What they drop: pandas,
pyarrow, SQLAlchemy, pydantic and the registry's models at the start of a command (checked in a fresh
interpreter, as ``tests/test_cli_start.py`` does; no time is asserted, the figures are ``bench/latency.py``'s).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from app import Instance, Settings
from app.instance_read import DATABASE_SETTINGS, ReadOnlyInstance
from core import Actor, NotFoundError
from ledger import Entry, Ledger
from ledger.entry_reads import ENTRIES_TABLE, read_entries
from ledger.storage import entries as entries_table
from registry import Registry, RegistryConfig
from registry.models import ProductRow
from registry.readonly import PRODUCTS_TABLE, read_product, read_products
from tests.conftest import FakeClock
from tests.test_cli_start import HEAVY, WRITERS_STACK, loaded_after
from tests.test_registry_products import AGENCY, World, registration, seed_world

ROOT = Path(__file__).resolve().parent.parent


def printed(data: dict[str, Any]) -> str:
    """What ``--json`` prints for ``data`` (``app.cli.conventions.Output.result``)."""
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def products_of_every_kind(registry: Registry, world: World, clock: FakeClock) -> list[str]:
    """Priced and free, available and suspended, with dissent, registered on a whole second and not, and one
    whose stored lineage lacks the keys a view falls back on (an older row)."""
    registry.products.register("traffic-heatmap", **registration(world))  # 09:00:00 exactly: no fraction
    clock.advance(seconds=1.000005)
    registry.products.register(
        "district-counts",
        **registration(
            world,
            operator="operator-two",
            licence_id=world.licences["two"],
            scenario="城市治理",
            datasets=[{"name": "population", "version": 2}],
            dissent=[{"reviewer": "reviewer-c", "decision": "reject", "reason": "单元格过小"}],
        ),
    )
    clock.advance(seconds=2.5)
    registry.products.register("bare-lineage", **registration(world, job="18", artifacts=[]))
    with registry.recorder.change(Actor.host()) as change:
        row = change.session.query(ProductRow).filter_by(name="bare-lineage").one()
        row.lineage = {"datasets": row.lineage["datasets"]}
        row.attribution = {}
    registry.products.suspend("district-counts", reason="异议待处理", by=AGENCY)
    return ["traffic-heatmap", "district-counts", "bare-lineage"]


@pytest.fixture
def registry(instance: Instance, clock: FakeClock) -> Registry:
    return Registry(
        instance.engine,
        instance.ledger,
        RegistryConfig(home=instance.home, clock=clock, vault_key=instance.keys.vault_key),
    )


@pytest.fixture
def environment(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment a command of this instance runs in: its database setting, when it has one."""
    for name in DATABASE_SETTINGS:
        monkeypatch.delenv(name.upper(), raising=False)
    if instance.settings.database_url:
        monkeypatch.setenv("KEYONG_DATABASE_URL", instance.settings.database_url)


@pytest.mark.usefixtures("environment")
def test_product_reads_print_the_registrys_documents(instance: Instance, registry: Registry, clock: FakeClock) -> None:
    names = products_of_every_kind(registry, seed_world(instance), clock)
    host = Actor.host()
    listed = [p.as_json() for p in registry.products.list(viewer=host)]
    assert {p["state"] for p in listed} == {"available", "suspended"} and listed[1]["dissent"]
    assert listed[0]["registered_at"].endswith(":00Z") and listed[1]["registered_at"].endswith(".000005Z")
    with closing(ReadOnlyInstance.open(instance.home)) as reader:
        assert reader.way == ("engine" if instance.settings.database_url else "embedded")
        assert printed({"products": read_products(reader.rows)}) == printed({"products": listed})
        for name in names:
            assert printed(read_product(reader.rows, name)) == printed(
                registry.products.get(name, viewer=host).as_json()
            )
        with pytest.raises(NotFoundError) as missing:
            read_product(reader.rows, "no-such-product")
    with pytest.raises(NotFoundError) as expected:
        registry.products.get("no-such-product", viewer=host)
    assert str(missing.value) == str(expected.value)


@pytest.mark.usefixtures("environment")
def _expected_page(everything: list[Entry], query: dict[str, Any]) -> list[Entry]:
    """The page the filters describe, worked out in Python over every entry (the oracle of the SQL)."""
    kept = [
        e
        for e in everything
        if e.seq > query.get("after", 0)
        and all(not query.get(name) or getattr(e, name) == query[name] for name in ("action", "subject", "actor"))
        and (not query.get("since") or e.time >= query["since"])
    ]
    return kept[: max(1, min(query.get("limit", 100), 10_000))]


def test_entry_reads_page_and_filter_as_the_ledger_does(
    instance: Instance, registry: Registry, clock: FakeClock
) -> None:
    """Both ways of listing (``Ledger.entries`` on its engine, ``read_entries`` on the read-only open) give
    the page the filters describe, entries decoded alike (payloads as documents, seq as numbers)."""
    products_of_every_kind(registry, seed_world(instance), clock)
    ledger: Ledger = instance.ledger
    everything = ledger.entries(limit=10_000)
    assert [e.seq for e in everything] == list(range(1, len(everything) + 1)) and len(everything) > 5
    middle = everything[len(everything) // 2].time
    queries: list[dict[str, Any]] = [
        {},
        {"limit": 3, "after": 2},
        {"action": "product.registered"},
        {"subject": "product:district-counts"},
        {"actor": AGENCY.name, "limit": 1},
        {"since": middle},
        {"action": "product.registered", "since": middle, "after": 1},
        {"action": "no.such"},
        {"limit": 0},
        {"limit": 20_000},
    ]
    with closing(ReadOnlyInstance.open(instance.home)) as reader:
        for query in queries:
            expected = _expected_page(everything, query)
            assert ledger.entries(**query) == expected, query
            read = read_entries(reader.rows, **query)
            assert read == expected, query
            assert printed({"entries": [e.as_json() for e in read]}) == printed(
                {"entries": [e.as_json() for e in expected]}
            )
        assert len(read_entries(reader.rows, action="product.registered")) == 3


def test_the_plain_sql_names_the_tables_and_columns_of_the_models() -> None:
    assert ProductRow.__tablename__ == PRODUCTS_TABLE
    assert {"operator_id", "lineage", "attribution", "artifacts", "registered_at"} <= set(ProductRow.__table__.c.keys())
    assert entries_table.name == ENTRIES_TABLE


# --- the commands, in a fresh interpreter --------------------------------------------------------


@pytest.fixture
def embedded_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, str]]:
    """An embedded home with products of every kind, and what the writer's reads print for each command."""
    for name in ("KEYONG_DATABASE_URL", "KEYONG_DATABASE_SSLMODE", "KEYONG_DATABASE_SSLROOTCERT", "KEYONG_HOME"):
        monkeypatch.delenv(name, raising=False)
    instance, _ = Instance.init(Settings(home=tmp_path / "home"))
    try:
        clock = FakeClock()
        registry = Registry(
            instance.engine,
            instance.ledger,
            RegistryConfig(home=instance.home, clock=clock, vault_key=instance.keys.vault_key),
        )
        names = products_of_every_kind(registry, seed_world(instance), clock)
        host = Actor.host()
        found = instance.ledger.entries(limit=50)
        expected = {
            "product list": printed({"products": [p.as_json() for p in registry.products.list(viewer=host)]}),
            f"product show {names[1]}": printed(registry.products.get(names[1], viewer=host).as_json()),
            "ledger show": printed(
                {"entries": [e.as_json() for e in found], "next_after": found[-1].seq if len(found) == 50 else None}
            ),
        }
    finally:
        instance.close()
    return tmp_path / "home", expected


def _keyong(*args: str, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYONG_")}
    if database_url:
        env["KEYONG_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT), "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_product_and_ledger_reads_load_no_heavy_stack_and_print_the_same_bytes(
    embedded_home: tuple[Path, dict[str, str]],
) -> None:
    """Neither pandas nor pyarrow (nor SQLAlchemy, pydantic, the ORM's models, the writer's open) is loaded by
    ``product list``, ``product show`` and ``ledger show`` of an embedded home; each prints what the writer's
    reads print."""
    home, expected = embedded_home
    for command, document in expected.items():
        args = command.split()
        loaded = loaded_after(*args, "--home", str(home), "--json", whole=True)
        heavy = {name.split(".")[0] for name in loaded} & {*HEAVY, "pydantic"}
        assert not heavy, f"keyong {command} loaded {sorted(heavy)}"
        assert not loaded & set(WRITERS_STACK), sorted(loaded & set(WRITERS_STACK))
        shown = _keyong(*args, "--home", str(home), "--json")
        assert (shown.returncode, shown.stderr) == (0, ""), command
        assert shown.stdout == document, command
    missing = _keyong("product", "show", "no-such-product", "--home", str(home), "--json")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr.strip() == "error: no product named 'no-such-product'"


def test_an_entry_stored_as_bytes_is_refused_with_its_seq_not_printed(
    embedded_home: tuple[Path, dict[str, str]],
) -> None:
    """An edited database (an actor that is not UTF-8 text, written past the append-only triggers) is exit 1
    naming the entry, never a traceback, never a half-printed page."""
    home, _ = embedded_home
    with closing(sqlite3.connect(home / "keyong.db")) as connection:
        _drop_triggers(connection)
        connection.execute("UPDATE ledger_entries SET actor = CAST(X'FF' AS TEXT) WHERE seq = 2")
        connection.commit()
    shown = _keyong("ledger", "show", "--home", str(home), "--json")
    assert (shown.returncode, shown.stdout) == (1, "")
    assert "ledger entry 2: the stored actor is not text" in shown.stderr and "Traceback" not in shown.stderr


# --- ledger verify ---------------------------------------------------------------------------------


def _verified(home: Path) -> str:
    """What ``Ledger.verify`` of the writer's open reports, as ``--json`` prints it."""
    instance = Instance.open(Settings(home=home), sweep=False)
    try:
        return printed(instance.ledger.verify().as_json())
    finally:
        instance.close()


def _drop_triggers(connection: sqlite3.Connection) -> None:
    for (trigger,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        connection.execute(f'DROP TRIGGER "{trigger}"')


def test_ledger_verify_reports_as_the_ledger_without_pandas_or_the_registry(
    embedded_home: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, _ = embedded_home
    monkeypatch.delenv("KEYONG_HOME", raising=False)
    loaded = loaded_after("ledger", "verify", "--home", str(home), "--json", whole=True)
    assert not {name.split(".")[0] for name in loaded} & {"pandas", "pyarrow", "pydantic_settings", "alembic"}
    assert not loaded & {"app.instance", "app.settings", "registry.models", "registry.service"}
    sound = _keyong("ledger", "verify", "--home", str(home), "--json")
    assert (sound.returncode, sound.stdout) == (0, _verified(home))
    assert json.loads(sound.stdout)["ok"] is True

    with closing(sqlite3.connect(home / "keyong.db")) as connection:  # an edit past the append-only triggers
        _drop_triggers(connection)
        connection.execute("UPDATE ledger_entries SET actor = 'someone-else' WHERE seq = 3")
        connection.commit()
    damaged = _keyong("ledger", "verify", "--home", str(home), "--json")
    assert (damaged.returncode, damaged.stdout) == (1, _verified(home))
    assert [p["seq"] for p in json.loads(damaged.stdout)["problems"]][:1] == [3]


def test_ledger_verify_over_the_settings_database_reports_as_the_ledger(instance: Instance) -> None:
    """On SQLite and PostgreSQL (``KEYONG_DATABASE_URL``): the read-only open's URL, the ledger's report."""
    url = instance.settings.database_url
    expected = printed(instance.ledger.verify().as_json())
    shown = _keyong("ledger", "verify", "--home", str(instance.home), "--json", database_url=url)
    assert (shown.returncode, shown.stdout) == (0, expected), shown.stderr


def test_a_half_done_ledger_key_rotation_is_left_to_the_writers_open(
    embedded_home: tuple[Path, dict[str, str]],
) -> None:
    """A next key the ledger never recorded (a rotation that crashed before its entry) is abandoned by the
    writer's open (``app.keys.finish_ledger_rotation``) before it verifies, as ``ledger verify`` always did."""
    from app.keys import LEDGER_KEY, LEDGER_NEXT, SECRETS_DIR

    home, _ = embedded_home
    secrets = home / SECRETS_DIR
    (secrets / LEDGER_NEXT).write_bytes((secrets / LEDGER_KEY).read_bytes())
    loaded = loaded_after("ledger", "verify", "--home", str(home), "--json", whole=True)
    assert "app.instance" in loaded
    assert not (secrets / LEDGER_NEXT).exists()
    shown = _keyong("ledger", "verify", "--home", str(home), "--json")
    assert (shown.returncode, shown.stdout) == (0, _verified(home))
