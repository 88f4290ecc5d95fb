"""Products (数据产品和服务): registration with lineage, attribution that travels, who sees what,
and the usage records of each licensed dataset — on SQLite and PostgreSQL.

Resources, operators and licences are made directly through the ORM (``seed_world``) so that these
tests depend only on the tables, not on the catalog's or the licences' services.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from app import Instance
from app.cli import cli
from core import Actor, NotFoundError, PermissionDeniedError, RegistryError
from registry import Registry
from registry.models import (
    DestructionRow,
    ItemRow,
    LicenceDatasetRow,
    LicenceRow,
    OperatorRow,
    ProductRow,
    ResourceRow,
    UsageRow,
    VersionRow,
)
from registry.products import ATTRIBUTION_KEY, attribution_metadata, read_attribution, sidecar_path, stamp_artifact
from registry.usage import record_usage
from tests.conftest import FakeClock
from tests.test_registry_licences import make_registry

AGENCY = Actor("demo-agency", "agency")
CUSTODIAN = Actor("demo-custodian", "custodian")
OTHER_CUSTODIAN = Actor("custodian-two", "custodian")
REGULATOR = Actor("demo-regulator", "regulator")
OPERATOR = Actor("demo-operator", "operator")
OPERATOR_TWO = Actor("operator-two", "operator")

POPULATION_PROVIDER = ("双鸭山市公安局", "11230500MB1234567A")
TRAFFIC_PROVIDER = ("双鸭山市交通运输局", "11230500MB7654321B")
POPULATION_ACQUIRED = datetime(2026, 10, 3, 8, 30, tzinfo=UTC)
TRAFFIC_ACQUIRED = datetime(2026, 11, 12, 14, 0, tzinfo=UTC)
CODE = "c0de" * 16
SHA = "ab" * 32


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- world made through the ORM ------------------------------------------------------------------


@dataclass
class World:
    resources: dict[str, int]
    operators: dict[str, int]
    licences: dict[str, int]


def make_resource(
    instance: Instance, name: str, provider: tuple[str, str], acquired: datetime, *, by: str = "demo-custodian"
) -> int:
    """A published L3 catalog entry with a raw v1 and a desensitized v2 (both created ``acquired``)."""
    registry = instance.registry
    with registry.recorder.change(Actor.host()) as change:
        resource = ResourceRow(
            name=name,
            title=f"{name} 数据",
            data_format="parquet",
            industry="公共管理",
            provider_name=provider[0],
            provider_code=provider[1],
            sharing_type="有条件共享",
            opening_type="有条件开放",
            operation_status="可授权运营",
            level="L3",
            personal_info=True,
            created_by=by,
            created_at=acquired,
            updated_at=acquired,
        )
        resource.items = [ItemRow(position=0, name="district", format="string", level="L1")]
        change.session.add(resource)
        change.session.flush()
        for number, kind in ((1, "raw"), (2, "desensitized")):
            change.session.add(
                VersionRow(
                    resource_id=resource.id,
                    version=number,
                    kind=kind,
                    rows=100,
                    columns=[{"name": "district", "type": "string"}],
                    content_sha256=f"{number:02d}" * 32,
                    path=f"data/{name}/v{number}.parquet",
                    created_by=by,
                    created_at=acquired,
                )
            )
        return resource.id


def make_operator(instance: Instance, name: str, uscc: str) -> int:
    with instance.registry.recorder.change(Actor.host()) as change:
        row = OperatorRow(name=name, uscc=uscc, qualification="qualified", created_at=datetime(2026, 9, 1, tzinfo=UTC))
        change.session.add(row)
        change.session.flush()
        return row.id


def make_licence(
    instance: Instance,
    operator_id: int,
    resource_ids: list[int],
    *,
    scenarios: list[str],
    state: str = "active",
    fee_class: str = "经营性",
    price_cents: int | None = 120_000,
    valid_until: date = date(2027, 12, 31),
) -> int:
    with instance.registry.recorder.change(Actor.host()) as change:
        licence = LicenceRow(
            operator_id=operator_id,
            mode="依场景授权",
            scenarios=scenarios,
            valid_from=date(2026, 11, 1),
            valid_until=valid_until,
            fee_class=fee_class,
            price_cents=price_cents,
            state=state,
            created_by="demo-agency",
            created_at=datetime(2026, 11, 1, tzinfo=UTC),
            updated_at=datetime(2026, 11, 1, tzinfo=UTC),
        )
        licence.datasets = [LicenceDatasetRow(resource_id=rid, epsilon_budget=3.0) for rid in resource_ids]
        change.session.add(licence)
        change.session.flush()
        return licence.id


def seed_world(instance: Instance) -> World:
    """Two datasets from two providers; demo-operator licensed for both (经营性, ¥1200), operator-two
    licensed for population only (公益); a suspended and a publicity licence for demo-operator."""
    population = make_resource(instance, "population", POPULATION_PROVIDER, POPULATION_ACQUIRED)
    traffic = make_resource(instance, "traffic", TRAFFIC_PROVIDER, TRAFFIC_ACQUIRED)
    weather = make_resource(instance, "weather", TRAFFIC_PROVIDER, TRAFFIC_ACQUIRED)
    one = make_operator(instance, "demo-operator", "91230500MA0000001C")
    two = make_operator(instance, "operator-two", "91230500MA0000002D")
    return World(
        resources={"population": population, "traffic": traffic, "weather": weather},
        operators={"demo-operator": one, "operator-two": two},
        licences={
            "main": make_licence(instance, one, [population, traffic], scenarios=["交通出行", "城市治理"]),
            "two": make_licence(
                instance, two, [population], scenarios=["城市治理"], fee_class="公益", price_cents=None
            ),
            "suspended": make_licence(instance, one, [population], scenarios=["交通出行"], state="suspended"),
            "publicity": make_licence(instance, one, [population], scenarios=["交通出行"], state="publicity"),
        },
    )


def registration(world: World, **overrides: Any) -> dict[str, Any]:
    """The keyword arguments of a valid registration for demo-operator under its main licence."""
    arguments: dict[str, Any] = {
        "operator": "demo-operator",
        "licence_id": world.licences["main"],
        "job": "17",
        "scenario": "交通出行",
        "datasets": [{"name": "population", "version": 2}, {"name": "traffic", "version": 2}],
        "code_sha256": CODE,
        "guard": {"verdict": "pass", "findings": []},
        "reviews": [
            {"reviewer": "reviewer-a", "decision": "approve", "reason": "aggregates only"},
            {"reviewer": "reviewer-b", "decision": "approve", "reason": "cells >= 10"},
        ],
        "artifacts": [{"name": "result.parquet", "bytes": 2048, "sha256": SHA, "path": "jobs/17/out/result.parquet"}],
        "by": AGENCY,
    }
    arguments.update(overrides)
    return arguments


def new_entries(instance: Instance, after: int) -> list[tuple[str, str]]:
    return [(e.action, e.subject) for e in instance.ledger.entries(after=after, limit=1000)]


def count(instance: Instance, table: type[Any]) -> int:
    with instance.registry.recorder.read() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


@pytest.fixture
def world(initialised: tuple[Instance, dict[str, str]]) -> World:
    return seed_world(initialised[0])


@pytest.fixture
def instance(initialised: tuple[Instance, dict[str, str]], world: World) -> Instance:
    return initialised[0]


@pytest.fixture
def registry(instance: Instance, clock: FakeClock) -> Registry:
    """A registry on the fake clock over the seeded world (the ``instance`` fixture seeds it)."""
    return make_registry(instance, clock)


# --- registration (双鸭山 第五十条, 第五十二条) ------------------------------------------------------


def test_a_released_product_is_registered_with_its_lineage_and_fee(
    instance: Instance, registry: Registry, world: World, clock: FakeClock
) -> None:
    """双鸭山 第五十条: the product is registered with operator, job, datasets and versions, code hash,
    guard report, reviewers and decisions, and the licence's fee class and price (第四十四条)."""
    before = instance.ledger.size()
    product = registry.products.register("traffic-heatmap", **registration(world))

    assert product.operator == "demo-operator"
    assert product.licence_id == world.licences["main"]
    assert product.job == "17" and product.scenario == "交通出行"
    assert [(d["name"], d["version"], d["kind"]) for d in product.datasets] == [
        ("population", 2, "desensitized"),
        ("traffic", 2, "desensitized"),
    ]
    assert product.code_sha256 == CODE
    assert product.guard == {"verdict": "pass", "findings": []}
    assert [(r["reviewer"], r["decision"]) for r in product.reviews] == [
        ("reviewer-a", "approve"),
        ("reviewer-b", "approve"),
    ]
    assert (product.fee_class, product.price_cents) == ("经营性", 120_000)
    assert product.state == "available"
    assert product.registered_at == clock.now
    assert product.registered_by == "demo-agency"

    # Exactly one ledger entry, carrying ids and hashes of the lineage, not its content.
    assert new_entries(instance, before) == [("product.registered", "product:traffic-heatmap")]
    entry = instance.ledger.entries(after=before)[0]
    assert (entry.actor, entry.role) == ("demo-agency", "agency")
    payload = entry.payload
    assert payload["licence_id"] == world.licences["main"]
    assert payload["code_sha256"] == CODE
    assert payload["datasets"] == [
        {"name": "population", "version": 2, "content_sha256": "02" * 32},
        {"name": "traffic", "version": 2, "content_sha256": "02" * 32},
    ]
    assert payload["guard_verdict"] == "pass"
    assert payload["artifacts"] == [{"name": "result.parquet", "bytes": 2048, "sha256": SHA}]
    assert len(payload["attribution_sha256"]) == 64
    assert "attribution" not in payload and "aggregates only" not in json.dumps(payload, ensure_ascii=False)


def test_registration_writes_one_product_released_usage_record_per_dataset(
    instance: Instance, registry: Registry, world: World, clock: FakeClock
) -> None:
    """黑龙江 第二十八条: each licensed dataset's usage records show what was released from it."""
    registry.products.register("traffic-heatmap", **registration(world))
    with registry.recorder.read() as session:
        rows = session.scalars(select(UsageRow).order_by(UsageRow.resource_id)).all()
        seen = [(r.resource_id, r.event, r.licence_id, r.operator_id, r.scenario, r.subject, r.at) for r in rows]
    expected = [
        (world.resources[name], "product.released", world.licences["main"], world.operators["demo-operator"])
        for name in ("population", "traffic")
    ]
    assert [s[:4] for s in seen] == expected
    assert {s[4:] for s in seen} == {("交通出行", "product:traffic-heatmap", clock.now)}


def test_a_public_welfare_licence_gives_a_free_product(instance: Instance, registry: Registry, world: World) -> None:
    """双鸭山 第四十四条: 公益 products are free (no price), whatever the registration says."""
    product = registry.products.register(
        "district-counts",
        **registration(
            world,
            operator="operator-two",
            licence_id=world.licences["two"],
            scenario="城市治理",
            datasets=[{"name": "population", "version": 2}],
        ),
    )
    assert (product.fee_class, product.price_cents) == ("公益", None)


def test_attribution_names_the_provider_and_the_acquisition_date(registry: Registry, world: World) -> None:
    """双鸭山 第四十一条: products state the data's source (提供方名称, 代码) and acquisition date."""
    product = registry.products.register("traffic-heatmap", **registration(world))
    attribution = product.attribution
    assert attribution["data_source"] == [
        f"{POPULATION_PROVIDER[0]}（{POPULATION_PROVIDER[1]}）",
        f"{TRAFFIC_PROVIDER[0]}（{TRAFFIC_PROVIDER[1]}）",
    ]
    assert [
        (s["dataset"], s["provider_name"], s["provider_code"], s["acquisition_date"]) for s in attribution["sources"]
    ] == [
        ("population", *POPULATION_PROVIDER, "2026-10-03"),
        ("traffic", *TRAFFIC_PROVIDER, "2026-11-12"),
    ]
    assert attribution["acquisition_date"] == "2026-11-12"  # the latest: data as acquired up to that day
    assert "数据来源" in attribution["statement"] and "2026-10-03" in attribution["statement"]
    assert "第四十一条" in attribution["rule"]
    metadata = attribution_metadata(product)
    assert metadata["product"] == "traffic-heatmap" and metadata["operator"] == "demo-operator"
    assert metadata["data_source"] == attribution["data_source"]


def test_a_stamped_parquet_carries_the_attribution_in_its_schema_metadata(
    registry: Registry, world: World, tmp_path: Path
) -> None:
    """第四十一条: the attribution travels inside the delivered Parquet (key ``keyong.attribution``);
    the data and the file's existing metadata are kept."""
    product = registry.products.register("traffic-heatmap", **registration(world))
    table = pa.table({"district": ["尖山区", "岭东区"], "trips": [120, 87]}).replace_schema_metadata({"origin": "job"})
    path = tmp_path / "result.parquet"
    pq.write_table(table, path)

    stamp_artifact(path, attribution_metadata(product))

    metadata = pq.read_schema(path).metadata
    carried = json.loads(metadata[ATTRIBUTION_KEY].decode("utf-8"))
    assert carried["data_source"] == product.attribution["data_source"]
    assert carried["acquisition_date"] == "2026-11-12"
    assert carried["product"] == "traffic-heatmap"
    assert metadata[b"origin"] == b"job"
    assert pq.read_table(path).select(["district", "trips"]).to_pylist() == table.to_pylist()
    assert read_attribution(path) == carried
    assert not sidecar_path(path).exists()


def test_a_stamped_csv_gets_an_attribution_sidecar(tmp_path: Path) -> None:
    """Formats without a metadata slot carry the attribution beside them: ``<file>.attribution.json``."""
    path = tmp_path / "result.csv"
    path.write_text("district,trips\n尖山区,120\n", encoding="utf-8")
    stamp_artifact(
        path, {"data_source": ["双鸭山市交通运输局（11230500MB7654321B）"], "acquisition_date": "2026-11-12"}
    )
    assert path.read_text(encoding="utf-8") == "district,trips\n尖山区,120\n"
    sidecar = tmp_path / "result.csv.attribution.json"
    assert json.loads(sidecar.read_text(encoding="utf-8"))["acquisition_date"] == "2026-11-12"
    assert read_attribution(path) == {
        "data_source": ["双鸭山市交通运输局（11230500MB7654321B）"],
        "acquisition_date": "2026-11-12",
    }


REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("a product of a suspended licence cannot be registered", {"licence_id": "suspended"}, "is suspended"),
    ("a product of a licence still in publicity cannot be registered", {"licence_id": "publicity"}, "is publicity"),
    ("a product under another operator's licence is refused", {"licence_id": "two"}, "belongs to operator"),
    (
        "a dataset outside the licence is refused",
        {"datasets": [{"name": "weather", "version": 2}]},
        "'weather' is not in licence",
    ),
    ("a scenario the licence does not grant is refused", {"scenario": "金融风控"}, "not licensed"),
    ("an output the guard blocked is never registered", {"guard": {"verdict": "block", "findings": []}}, "blocked"),
    (
        "a product without an approving review is refused (第五十二条)",
        {"reviews": []},
        "no reviewer approved",
    ),
    (
        "a product a reviewer rejected is refused",
        {
            "reviews": [
                {"reviewer": "reviewer-a", "decision": "approve", "reason": "ok"},
                {"reviewer": "reviewer-b", "decision": "reject", "reason": "small cells"},
            ]
        },
        "rejected",
    ),
    (
        "the operator cannot review its own product",
        {"reviews": [{"reviewer": "demo-operator", "decision": "approve", "reason": "mine"}]},
        "independent",
    ),
    (
        "a dataset version that does not exist is refused",
        {"datasets": [{"name": "traffic", "version": 9}]},
        "no version",
    ),
    ("a code hash must be a SHA-256", {"code_sha256": "abc"}, "code_sha256"),
]


@pytest.mark.parametrize(("scenario", "overrides", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_registration_refusals_change_nothing(
    instance: Instance, registry: Registry, world: World, scenario: str, overrides: dict[str, Any], message: str
) -> None:
    if "licence_id" in overrides:
        overrides = {**overrides, "licence_id": world.licences[overrides["licence_id"]]}
    before = instance.ledger.size()
    with pytest.raises(RegistryError, match=message):
        registry.products.register("refused-product", **registration(world, **overrides))
    assert instance.ledger.size() == before
    assert count(instance, ProductRow) == 0
    assert count(instance, UsageRow) == 0


def test_a_product_of_an_expired_licence_cannot_be_registered(
    registry: Registry, world: World, clock: FakeClock
) -> None:
    """A licence past its end date registers nothing, even before the expiry sweep marks it expired."""
    clock.advance(days=400)  # 2028-01: past 2027-12-31
    with pytest.raises(RegistryError, match="expired on 2027-12-31"):
        registry.products.register("late-product", **registration(world))


def test_a_suspended_operator_registers_no_product(instance: Instance, registry: Registry, world: World) -> None:
    with registry.recorder.change(Actor.host()) as change:
        change.session.get(OperatorRow, world.operators["demo-operator"]).qualification = "suspended"  # type: ignore[union-attr]
    with pytest.raises(RegistryError, match="is suspended"):
        registry.products.register("suspended-operator-product", **registration(world))


@pytest.mark.parametrize("actor", [OPERATOR, CUSTODIAN, REGULATOR], ids=lambda a: a.role)
def test_only_the_agency_registers_products(registry: Registry, world: World, actor: Actor) -> None:
    with pytest.raises(PermissionDeniedError):
        registry.products.register("self-registered", **registration(world, by=actor))


def test_a_product_name_is_registered_once(registry: Registry, world: World) -> None:
    registry.products.register("traffic-heatmap", **registration(world))
    with pytest.raises(RegistryError, match="already registered"):
        registry.products.register("traffic-heatmap", **registration(world, job="18"))


# --- who sees what --------------------------------------------------------------------------------


def _two_products(registry: Registry, world: World) -> None:
    registry.products.register("traffic-heatmap", **registration(world))
    registry.products.register(
        "district-counts",
        **registration(
            world,
            operator="operator-two",
            licence_id=world.licences["two"],
            scenario="城市治理",
            datasets=[{"name": "population", "version": 2}],
        ),
    )


def test_an_operator_sees_only_its_own_products(registry: Registry, world: World) -> None:
    """DESIGN.md: an operator never sees another operator's products; asking for one is "not found",
    exactly as for a product that does not exist (its existence is not revealed)."""
    _two_products(registry, world)
    assert [p.name for p in registry.products.list(viewer=OPERATOR)] == ["traffic-heatmap"]
    assert [p.name for p in registry.products.list(viewer=OPERATOR_TWO)] == ["district-counts"]
    assert registry.products.get("traffic-heatmap", viewer=OPERATOR).name == "traffic-heatmap"
    with pytest.raises(NotFoundError) as hidden:
        registry.products.get("district-counts", viewer=OPERATOR)
    with pytest.raises(NotFoundError) as missing:
        registry.products.get("no-such-product", viewer=OPERATOR)
    assert str(hidden.value).replace("district-counts", "X") == str(missing.value).replace("no-such-product", "X")


@pytest.mark.parametrize("viewer", [CUSTODIAN, AGENCY, REGULATOR, Actor.host()], ids=lambda a: a.role)
def test_custodian_agency_and_regulator_see_every_product(registry: Registry, world: World, viewer: Actor) -> None:
    _two_products(registry, world)
    assert [p.name for p in registry.products.list(viewer=viewer)] == ["traffic-heatmap", "district-counts"]
    assert registry.products.get("district-counts", viewer=viewer).operator == "operator-two"


def test_a_product_is_delivered_only_to_its_operator_while_available(
    instance: Instance, registry: Registry, world: World
) -> None:
    _two_products(registry, world)
    assert registry.products.deliverable("traffic-heatmap", viewer=OPERATOR).name == "traffic-heatmap"
    with pytest.raises(NotFoundError):
        registry.products.deliverable("traffic-heatmap", viewer=OPERATOR_TWO)
    with pytest.raises(PermissionDeniedError, match="delivered only to its operator"):
        registry.products.deliverable("traffic-heatmap", viewer=REGULATOR)

    before = instance.ledger.size()
    registry.products.suspend("traffic-heatmap", reason="security review", by=AGENCY)
    assert new_entries(instance, before) == [("product.suspended", "product:traffic-heatmap")]
    with pytest.raises(RegistryError, match="suspended"):
        registry.products.deliverable("traffic-heatmap", viewer=OPERATOR)

    before = instance.ledger.size()
    registry.products.restore("traffic-heatmap", reason="review done", by=AGENCY)
    assert new_entries(instance, before) == [("product.restored", "product:traffic-heatmap")]
    assert registry.products.deliverable("traffic-heatmap", viewer=OPERATOR).state == "available"

    before = instance.ledger.size()
    registry.products.withdraw("traffic-heatmap", reason="licence scope changed", by=AGENCY)
    assert new_entries(instance, before) == [("product.withdrawn", "product:traffic-heatmap")]
    with pytest.raises(RegistryError, match="withdrawn"):
        registry.products.deliverable("traffic-heatmap", viewer=OPERATOR)
    with pytest.raises(RegistryError, match="only a suspended product can be restored"):
        registry.products.restore("traffic-heatmap", reason="undo", by=AGENCY)
    with pytest.raises(PermissionDeniedError):
        registry.products.suspend("district-counts", reason="mine", by=OPERATOR_TWO)


# --- usage records (黑龙江 第二十八条) ---------------------------------------------------------------


def _usage_history(instance: Instance, registry: Registry, world: World, clock: FakeClock) -> None:
    """A job admitted under the main licence, a product released, then the copies destroyed."""
    with registry.recorder.change(Actor.host()) as change:
        row = record_usage(
            change.session,
            resource_id=world.resources["population"],
            event="job.admitted",
            licence_id=world.licences["main"],
            operator_id=world.operators["demo-operator"],
            scenario="交通出行",
            subject="job:17",
        )
        row.at = clock.now
    clock.advance(days=1)
    registry.products.register("traffic-heatmap", **registration(world))
    clock.advance(days=1)
    with registry.recorder.change(Actor.host()) as change:
        row = record_usage(
            change.session,
            resource_id=world.resources["population"],
            event="copy.destroyed",
            licence_id=world.licences["main"],
            operator_id=world.operators["demo-operator"],
            subject="destruction:1",
        )
        row.at = clock.now


@pytest.mark.parametrize("viewer", [CUSTODIAN, REGULATOR, Actor.host()], ids=lambda a: a.role)
def test_the_providing_custodian_and_regulators_read_a_datasets_usage_records(
    instance: Instance, registry: Registry, world: World, clock: FakeClock, viewer: Actor
) -> None:
    """黑龙江 第二十八条: usage of licensed data is recorded; the provider and regulators supervise it."""
    _usage_history(instance, registry, world, clock)
    records = registry.usage.for_dataset("population", viewer=viewer)
    assert [(r["event"], r["subject"], r["operator"]) for r in records] == [
        ("job.admitted", "job:17", "demo-operator"),
        ("product.released", "product:traffic-heatmap", "demo-operator"),
        ("copy.destroyed", "destruction:1", "demo-operator"),
    ]
    summary = registry.usage.summary("population", viewer=viewer)
    assert summary["dataset"] == "population" and summary["records"] == 3
    by_licence = {entry["licence_id"]: entry for entry in summary["licences"]}
    main = by_licence[world.licences["main"]]
    assert main["operator"] == "demo-operator"
    assert main["scenarios_used"] == ["交通出行"]
    assert main["jobs_admitted"] == ["job:17"]
    assert main["products_released"] == ["traffic-heatmap"]
    assert main["destroyed"] is True
    # Licences that hold the dataset but never used it are listed too, unused.
    two = by_licence[world.licences["two"]]
    assert (two["operator"], two["jobs_admitted"], two["products_released"], two["destroyed"]) == (
        "operator-two",
        [],
        [],
        False,
    )


def test_a_recorded_destruction_marks_the_licence_destroyed(
    instance: Instance, registry: Registry, world: World
) -> None:
    with registry.recorder.change(Actor.host()) as change:
        change.session.add(
            DestructionRow(
                licence_id=world.licences["two"],
                files=3,
                bytes=4096,
                manifest_sha256=SHA,
                by="demo-agency",
                at=datetime(2026, 12, 2, tzinfo=UTC),
            )
        )
    summary = registry.usage.summary("population", viewer=REGULATOR)
    two = next(e for e in summary["licences"] if e["licence_id"] == world.licences["two"])
    assert two["destroyed"] is True


@pytest.mark.parametrize("viewer", [OTHER_CUSTODIAN, OPERATOR, AGENCY], ids=["other-custodian", "operator", "agency"])
def test_others_may_not_read_usage_records(
    instance: Instance, registry: Registry, world: World, clock: FakeClock, viewer: Actor
) -> None:
    _usage_history(instance, registry, world, clock)
    with pytest.raises(PermissionDeniedError):
        registry.usage.for_dataset("population", viewer=viewer)
    with pytest.raises(PermissionDeniedError):
        registry.usage.summary("population", viewer=viewer)


def test_usage_of_an_unknown_dataset_is_not_found(registry: Registry, world: World) -> None:
    with pytest.raises(NotFoundError):
        registry.usage.for_dataset("no-such-dataset", viewer=REGULATOR)


# --- CLI -------------------------------------------------------------------------------------------


def test_cli_product_show_list_and_usage_as_json(instance: Instance, registry: Registry, world: World) -> None:
    """The local administrator sees every product and every dataset's usage."""
    _two_products(registry, world)
    runner = CliRunner()
    home = str(instance.home)

    shown = runner.invoke(cli, ["product", "show", "district-counts", "--home", home, "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["operator"] == "operator-two" and data["fee_class"] == "公益"
    assert data["attribution"]["data_source"] == [f"{POPULATION_PROVIDER[0]}（{POPULATION_PROVIDER[1]}）"]

    listed = runner.invoke(cli, ["product", "list", "--home", home, "--json"])
    assert listed.exit_code == 0, listed.output
    assert [p["name"] for p in json.loads(listed.stdout)["products"]] == ["traffic-heatmap", "district-counts"]

    usage = runner.invoke(cli, ["usage", "show", "population", "--home", home, "--json"])
    assert usage.exit_code == 0, usage.output
    assert [r["subject"] for r in json.loads(usage.stdout)["records"]] == [
        "product:traffic-heatmap",
        "product:district-counts",
    ]

    # Human output renders too: the attribution statement, the table of products, usage per licence.
    human = [
        runner.invoke(cli, [*args, "--home", home])
        for args in (["product", "show", "traffic-heatmap"], ["product", "list"], ["usage", "show", "population"])
    ]
    assert [r.exit_code for r in human] == [0, 0, 0], [r.output for r in human]
    assert "数据来源" in human[0].stdout and "公益" in human[1].stdout and "双鸭山市公安局" in human[2].stdout

    missing = runner.invoke(cli, ["product", "show", "no-such-product", "--home", home])
    assert missing.exit_code == 1
    assert "no product named 'no-such-product'" in missing.stderr


def test_cli_product_fetch_copies_stamped_artifacts(instance: Instance, registry: Registry, world: World) -> None:
    """A fetched Parquet carries the attribution (第四十一条); a suspended product is not fetched (第四十条)."""
    out_dir = instance.home / "jobs" / "17" / "out"
    out_dir.mkdir(parents=True)
    pq.write_table(pa.table({"district": ["尖山区"], "trips": [120]}), out_dir / "result.parquet")
    (out_dir / "result.csv").write_text("district,trips\n尖山区,120\n", encoding="utf-8")
    artifacts = [
        # the real digests: a fetch hands out only what matches the product's record (red team 19, B1)
        {
            "name": "result.parquet",
            "bytes": 1,
            "sha256": _sha(out_dir / "result.parquet"),
            "path": "jobs/17/out/result.parquet",
        },
        {"name": "result.csv", "bytes": 1, "sha256": _sha(out_dir / "result.csv"), "path": "jobs/17/out/result.csv"},
    ]
    registry.products.register("traffic-heatmap", **registration(world, artifacts=artifacts))
    runner = CliRunner()
    target = instance.home.parent / "delivered"
    fetch = ["product", "fetch", "traffic-heatmap", "--to", str(target), "--operator", "demo-operator"]
    fetched = runner.invoke(cli, [*fetch[:5], "--home", str(instance.home), "--json"])  # the contract's form
    assert fetched.exit_code == 0, fetched.output
    carried = read_attribution(target / "result.parquet")
    assert carried is not None and carried["acquisition_date"] == "2026-11-12"
    assert read_attribution(target / "result.csv") == carried
    assert read_attribution(out_dir / "result.parquet") is None  # the job's own output is untouched

    registry.products.suspend("traffic-heatmap", reason="objection pending", by=AGENCY)
    refused = runner.invoke(cli, [*fetch, "--home", str(instance.home)])
    # DESIGN.md's form without --operator acts for the product's own operator, and is refused the same way.
    assert runner.invoke(cli, [*fetch[:5], "--home", str(instance.home)]).exit_code == 1
    assert refused.exit_code == 1 and "suspended" in refused.stderr


def test_charts_carry_their_attribution_inside(tmp_path: Path) -> None:
    """双鸭山 第四十一条: an SVG chart keeps source and date in a <metadata> element, a PNG in an iTXt chunk;
    both stay valid images, and a CSV still gets a sidecar."""
    import zlib

    from registry.products import read_attribution, stamp_artifact

    attribution = {"product": "图-1", "statement": "数据来源：双鸭山市统计局；获取日期：2026-11-29"}
    svg = tmp_path / "c.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10"><rect width="5"/></svg>', encoding="utf-8")

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    png = tmp_path / "c.png"
    ihdr = (1).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    png.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b"")
    )
    csv = tmp_path / "t.csv"
    csv.write_text("a,b\n1,2\n", encoding="utf-8")
    for path in (svg, png, csv):
        stamp_artifact(path, attribution)
        assert read_attribution(path) == attribution
    assert svg.read_text(encoding="utf-8").startswith("<svg") and svg.read_text(encoding="utf-8").endswith("</svg>")
    assert png.read_bytes().endswith(chunk(b"IEND", b"")) and b"iTXt" in png.read_bytes()
    assert not (tmp_path / "c.svg.attribution.json").exists() and (tmp_path / "t.csv.attribution.json").exists()
