"""Objections (异议, 双鸭山 第四十条): against a product delivery stops at once; the decider withdraws,
restores, or restores after correction, and the objector reads why — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app import Instance
from app.cli import cli
from core import Actor, NotFoundError, PermissionDeniedError, RegistryError
from registry import ObjectionOutcome, Registry, RegistryConfig
from registry.models import ObjectionRow, ProductRow
from tests.conftest import FakeClock
from tests.test_registry_products import (
    AGENCY,
    CUSTODIAN,
    OPERATOR,
    OPERATOR_TWO,
    OTHER_CUSTODIAN,
    REGULATOR,
    World,
    new_entries,
    registration,
    seed_world,
)

PRODUCT = "traffic-heatmap"
OTHER_PRODUCT = "district-counts"


@pytest.fixture
def setup(initialised: tuple[Instance, dict[str, str]], clock: FakeClock) -> tuple[Instance, Registry, World]:
    instance = initialised[0]
    world = seed_world(instance)
    registry = Registry(
        instance.engine,
        instance.ledger,
        RegistryConfig(home=instance.home, clock=clock, vault_key=instance.keys.vault_key),
    )
    registry.products.register(PRODUCT, **registration(world))
    registry.products.register(
        OTHER_PRODUCT,
        **registration(
            world,
            operator="operator-two",
            licence_id=world.licences["two"],
            scenario="城市治理",
            datasets=[{"name": "population", "version": 2}],
        ),
    )
    return instance, registry, world


def product_state(registry: Registry, name: str = PRODUCT) -> str:
    return registry.products.get(name, viewer=AGENCY).state


def payloads(instance: Instance, after: int) -> list[dict[str, Any]]:
    return [e.payload for e in instance.ledger.entries(after=after)]


# --- products ----------------------------------------------------------------------------------------


def test_an_objection_against_a_product_stops_its_delivery_at_once(
    setup: tuple[Instance, Registry, World], clock: FakeClock
) -> None:
    """第四十条: 收到异议 … 应当立即中止: the product is suspended in the filing's own transaction."""
    instance, registry, _ = setup
    before = instance.ledger.size()
    objection = registry.objections.file("product", PRODUCT, "热力图可识别单个出行者", by=REGULATOR)

    assert (objection.target_kind, objection.target, objection.state) == ("product", PRODUCT, "open")
    assert (objection.filed_by, objection.filed_role, objection.filed_at) == ("demo-regulator", "regulator", clock.now)
    assert product_state(registry) == "suspended"
    with pytest.raises(RegistryError, match="objection against it is open"):
        registry.products.deliverable(PRODUCT, viewer=OPERATOR)
    assert new_entries(instance, before) == [
        ("objection.filed", f"objection:{objection.id}"),
        ("product.suspended", f"product:{PRODUCT}"),
    ]
    filed, suspended = payloads(instance, before)
    assert filed["target_kind"] == "product" and len(filed["reason_sha256"]) == 64
    assert suspended["objection"] == objection.id and (suspended["from"], suspended["to"]) == ("available", "suspended")


def test_an_objection_quoting_personal_data_is_filed_and_the_ledger_keeps_only_its_hash(
    setup: tuple[Instance, Registry, World],
) -> None:
    """The ledger never holds personal data (it refuses phone numbers): the reason stays in the
    objection, readable by its deciders; the ledger carries its SHA-256."""
    instance, registry, _ = setup
    before = instance.ledger.size()
    reason = "产品中出现了我的手机号 13800138000"
    objection = registry.objections.file("product", PRODUCT, reason, by=CUSTODIAN)
    assert registry.objections.get(objection.id, viewer=AGENCY).reason == reason
    assert "13800138000" not in json.dumps(payloads(instance, before), ensure_ascii=False)


def test_restoring_returns_the_product_to_available(setup: tuple[Instance, Registry, World]) -> None:
    instance, registry, _ = setup
    objection = registry.objections.file("product", PRODUCT, "来源标注错误", by=CUSTODIAN)
    before = instance.ledger.size()
    resolved = registry.objections.resolve(objection.id, ObjectionOutcome.CORRECT, "来源已更正", by=AGENCY)
    assert (resolved.state, resolved.outcome, resolved.resolved_by) == (
        "resolved",
        "restore_after_correction",
        "demo-agency",
    )
    assert product_state(registry) == "available"
    assert registry.products.deliverable(PRODUCT, viewer=OPERATOR).name == PRODUCT
    assert new_entries(instance, before) == [
        ("objection.resolved", f"objection:{objection.id}"),
        ("product.restored", f"product:{PRODUCT}"),
    ]
    resolved_payload = payloads(instance, before)[0]
    assert (
        resolved_payload["outcome"] == "restore_after_correction" and len(resolved_payload["resolution_sha256"]) == 64
    )


def test_a_product_stays_suspended_while_another_objection_on_it_is_open(
    setup: tuple[Instance, Registry, World],
) -> None:
    instance, registry, _ = setup
    first = registry.objections.file("product", PRODUCT, "统计口径错误", by=CUSTODIAN)
    before = instance.ledger.size()
    second = registry.objections.file("product", PRODUCT, "含有商业秘密", by=REGULATOR)
    # Already suspended: the second filing changes no product state, so only its own entry.
    assert new_entries(instance, before) == [("objection.filed", f"objection:{second.id}")]

    before = instance.ledger.size()
    registry.objections.resolve(first.id, ObjectionOutcome.RESTORE, "口径无误", by=AGENCY)
    assert product_state(registry) == "suspended"
    assert new_entries(instance, before) == [("objection.resolved", f"objection:{first.id}")]
    with pytest.raises(RegistryError, match=f"open objections \\({second.id}\\)"):
        registry.products.restore(PRODUCT, reason="agency override", by=AGENCY)

    registry.objections.resolve(second.id, ObjectionOutcome.RESTORE, "不涉及商业秘密", by=AGENCY)
    assert product_state(registry) == "available"


def test_a_withdrawn_product_is_withdrawn_for_good(setup: tuple[Instance, Registry, World]) -> None:
    """第四十条: 撤回数据. A later restoration of another objection does not bring it back."""
    instance, registry, _ = setup
    first = registry.objections.file("product", PRODUCT, "侵犯个人隐私", by=CUSTODIAN)
    second = registry.objections.file("product", PRODUCT, "数据错误", by=REGULATOR)
    before = instance.ledger.size()
    registry.objections.resolve(first.id, ObjectionOutcome.WITHDRAW, "核实属实，撤回", by=AGENCY)
    assert new_entries(instance, before) == [
        ("objection.resolved", f"objection:{first.id}"),
        ("product.withdrawn", f"product:{PRODUCT}"),
    ]
    before = instance.ledger.size()
    registry.objections.resolve(second.id, ObjectionOutcome.RESTORE, "数据无误", by=AGENCY)
    assert new_entries(instance, before) == [("objection.resolved", f"objection:{second.id}")]
    assert product_state(registry) == "withdrawn"
    with pytest.raises(RegistryError, match="withdrawn"):
        registry.products.deliverable(PRODUCT, viewer=OPERATOR)
    with pytest.raises(RegistryError, match="already withdrawn"):
        registry.objections.file("product", PRODUCT, "again", by=CUSTODIAN)


def test_the_objector_reads_the_resolution(setup: tuple[Instance, Registry, World]) -> None:
    """第四十条: 向有关自然人、法人或者非法人组织反馈处理结果. An operator reads its own objections with
    their resolutions, and nobody else's."""
    _, registry, _ = setup
    objection = registry.objections.file("product", PRODUCT, "我方产品的来源标注不全", by=OPERATOR)
    other = registry.objections.file("resource", "population", "人口数据区县编码有误", by=OPERATOR_TWO)
    registry.objections.resolve(objection.id, ObjectionOutcome.CORRECT, "已补全来源标注", by=AGENCY)

    mine = registry.objections.list(viewer=OPERATOR)
    assert [(o.id, o.outcome, o.resolution) for o in mine] == [
        (objection.id, "restore_after_correction", "已补全来源标注")
    ]
    assert registry.objections.get(objection.id, viewer=OPERATOR).resolved_by == "demo-agency"
    with pytest.raises(NotFoundError):
        registry.objections.get(other.id, viewer=OPERATOR)
    assert [o.id for o in registry.objections.list(viewer=OPERATOR_TWO)] == [other.id]
    for viewer in (AGENCY, CUSTODIAN, REGULATOR, Actor.host()):
        assert [o.id for o in registry.objections.list(viewer=viewer)] == [objection.id, other.id]


def test_an_operator_cannot_object_to_a_product_it_cannot_see(setup: tuple[Instance, Registry, World]) -> None:
    """Another operator's product is "not found", as if it did not exist; nothing is suspended."""
    instance, registry, _ = setup
    before = instance.ledger.size()
    with pytest.raises(NotFoundError, match=f"no product named '{OTHER_PRODUCT}'"):
        registry.objections.file("product", OTHER_PRODUCT, "竞争对手的产品", by=OPERATOR)
    assert instance.ledger.size() == before
    assert product_state(registry, OTHER_PRODUCT) == "available"


@pytest.mark.parametrize("decider", [REGULATOR, CUSTODIAN, OPERATOR], ids=lambda a: a.role)
def test_only_the_agency_resolves_product_objections(setup: tuple[Instance, Registry, World], decider: Actor) -> None:
    """Regulators change nothing; custodians decide only objections to their own catalog entries."""
    instance, registry, _ = setup
    objection = registry.objections.file("product", PRODUCT, "数据错误", by=REGULATOR)
    before = instance.ledger.size()
    with pytest.raises(PermissionDeniedError):
        registry.objections.resolve(objection.id, ObjectionOutcome.RESTORE, "ok", by=decider)
    assert instance.ledger.size() == before
    assert product_state(registry) == "suspended"


def test_an_objection_is_resolved_once(setup: tuple[Instance, Registry, World]) -> None:
    _, registry, _ = setup
    objection = registry.objections.file("product", PRODUCT, "数据错误", by=REGULATOR)
    registry.objections.resolve(objection.id, "restore", "无误", by=AGENCY)
    with pytest.raises(RegistryError, match="already resolved"):
        registry.objections.resolve(objection.id, "withdraw", "改判", by=AGENCY)
    with pytest.raises(NotFoundError):
        registry.objections.resolve(9999, "restore", "无误", by=AGENCY)


@pytest.mark.parametrize(
    ("kind", "target", "reason", "error", "message"),
    [
        ("catalog", "population", "错误", RegistryError, "an objection targets one of"),
        ("product", PRODUCT, "   ", RegistryError, "needs a reason"),
        ("product", "no-such-product", "错误", NotFoundError, "no product"),
        ("resource", "no-such-dataset", "错误", NotFoundError, "no catalog entry"),
        ("licence", "not-a-number", "错误", NotFoundError, "by its number"),
    ],
)
def test_malformed_objections_are_refused(
    setup: tuple[Instance, Registry, World], kind: str, target: str, reason: str, error: type[Exception], message: str
) -> None:
    instance, registry, _ = setup
    before = instance.ledger.size()
    with pytest.raises(error, match=message):
        registry.objections.file(kind, target, reason, by=CUSTODIAN)
    assert instance.ledger.size() == before


def test_a_resolution_needs_a_known_outcome_and_a_reason(setup: tuple[Instance, Registry, World]) -> None:
    _, registry, _ = setup
    objection = registry.objections.file("product", PRODUCT, "数据错误", by=REGULATOR)
    with pytest.raises(RegistryError, match="outcome must be one of"):
        registry.objections.resolve(objection.id, "ignore", "because", by=AGENCY)
    with pytest.raises(RegistryError, match="needs a reason"):
        registry.objections.resolve(objection.id, "restore", "", by=AGENCY)


# --- catalog entries and licences --------------------------------------------------------------------


def test_an_objection_against_a_catalog_entry_is_recorded_open_for_the_scope_check(
    setup: tuple[Instance, Registry, World],
) -> None:
    """第四十条 for a catalog entry: the open row (target_kind "resource", target_id = the entry's id)
    is what stops the scope check serving it to jobs."""
    instance, registry, world = setup
    before = instance.ledger.size()
    objection = registry.objections.file("resource", "population", "区县编码有误", by=OPERATOR)
    assert new_entries(instance, before) == [("objection.filed", f"objection:{objection.id}")]
    with registry.recorder.read() as session:
        row = session.scalars(select(ObjectionRow).where(ObjectionRow.id == objection.id)).one()
        assert (row.target_kind, row.target_id, row.state) == ("resource", world.resources["population"], "open")
        # Products made from it are not touched by an objection to the entry itself.
        assert {p.state for p in session.scalars(select(ProductRow))} == {"available"}
    assert registry.objections.open_against("resource", world.resources["population"]) == [objection.id]


def test_the_providing_custodian_resolves_objections_to_its_catalog_entries(
    setup: tuple[Instance, Registry, World],
) -> None:
    """第四十条: the 数据提供部门 verifies and decides; another custodian may not."""
    instance, registry, world = setup
    objection = registry.objections.file("resource", "population", "区县编码有误", by=OPERATOR)
    with pytest.raises(PermissionDeniedError, match="custodian that provided it"):
        registry.objections.resolve(objection.id, ObjectionOutcome.CORRECT, "已更正", by=OTHER_CUSTODIAN)
    before = instance.ledger.size()
    resolved = registry.objections.resolve(objection.id, ObjectionOutcome.CORRECT, "编码已更正", by=CUSTODIAN)
    assert (resolved.outcome, resolved.resolved_by) == ("restore_after_correction", "demo-custodian")
    assert new_entries(instance, before) == [("objection.resolved", f"objection:{objection.id}")]
    assert registry.objections.open_against("resource", world.resources["population"]) == []


def test_an_objection_against_a_licence_in_publicity_is_recorded(setup: tuple[Instance, Registry, World]) -> None:
    """双鸭山 第四十八条 publicity (公示) is when objections to a licence are taken; the open row blocks
    its activation. Only the agency decides it."""
    instance, registry, world = setup
    licence_id = world.licences["publicity"]
    before = instance.ledger.size()
    objection = registry.objections.file("licence", str(licence_id), "该运营机构不具备安全条件", by=OPERATOR_TWO)
    assert (objection.target_kind, objection.target_id, objection.target) == ("licence", licence_id, str(licence_id))
    assert new_entries(instance, before) == [("objection.filed", f"objection:{objection.id}")]
    assert registry.objections.open_against("licence", licence_id) == [objection.id]
    with pytest.raises(PermissionDeniedError):
        registry.objections.resolve(objection.id, ObjectionOutcome.RESTORE, "具备条件", by=CUSTODIAN)
    registry.objections.resolve(objection.id, ObjectionOutcome.RESTORE, "具备条件", by=AGENCY)
    assert registry.objections.open_against("licence", licence_id) == []


def test_a_licence_in_force_takes_no_publicity_objection(setup: tuple[Instance, Registry, World]) -> None:
    instance, registry, world = setup
    before = instance.ledger.size()
    with pytest.raises(RegistryError, match="during its publicity"):
        registry.objections.file("licence", str(world.licences["main"]), "不应授权", by=AGENCY)
    # Another operator is not told that the licence exists or its state (issue 17 red team).
    with pytest.raises(NotFoundError, match="in publicity"):
        registry.objections.file("licence", str(world.licences["main"]), "不应授权", by=OPERATOR_TWO)
    assert instance.ledger.size() == before


# --- CLI ---------------------------------------------------------------------------------------------


def test_cli_objection_file_resolve_and_list(setup: tuple[Instance, Registry, World]) -> None:
    instance, registry, _ = setup
    runner = CliRunner()
    home = ["--home", str(instance.home)]
    regulator = ["--by", "demo-regulator", "--role", "regulator"]
    filed = runner.invoke(
        cli, ["objection", "file", "--product", PRODUCT, "--reason", "数据错误", *regulator, *home, "--json"]
    )
    assert filed.exit_code == 0, filed.output
    objection = json.loads(filed.stdout)
    assert (objection["filed_by"], objection["state"]) == ("demo-regulator", "open")
    assert product_state(registry) == "suspended"

    resolve = ["objection", "resolve", str(objection["id"]), *home]
    resolved = runner.invoke(cli, [*resolve, "--outcome", "restore", "--reason", "核实无误", "--json"])
    assert resolved.exit_code == 0, resolved.output
    assert json.loads(resolved.stdout)["outcome"] == "restore"
    assert product_state(registry) == "available"

    listed = runner.invoke(cli, ["objection", "list", *home, "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(o["id"], o["resolution"]) for o in json.loads(listed.stdout)["objections"]] == [
        (objection["id"], "核实无误")
    ]

    human = runner.invoke(cli, ["objection", "list", *home])
    assert human.exit_code == 0 and "restore by" in human.stdout and "核实无误" in human.stdout

    again = runner.invoke(cli, [*resolve, "--outcome", "withdraw", "--reason", "x"])
    assert again.exit_code == 1 and "already resolved" in again.stderr


def test_cli_objection_file_needs_exactly_one_target(setup: tuple[Instance, Registry, World]) -> None:
    instance, _, _ = setup
    runner = CliRunner()
    home = ["--home", str(instance.home)]
    both = runner.invoke(
        cli, ["objection", "file", "--product", PRODUCT, "--dataset", "population", "--reason", "x", *home]
    )
    assert both.exit_code == 1 and "exactly one" in both.stderr
    lone = runner.invoke(cli, ["objection", "file", "--dataset", "population", "--reason", "x", "--by", "a-b", *home])
    assert lone.exit_code == 1 and "--by and --role go together" in lone.stderr
    bad_outcome = runner.invoke(cli, ["objection", "resolve", "1", "--outcome", "ignore", "--reason", "x", *home])
    assert bad_outcome.exit_code == 2
