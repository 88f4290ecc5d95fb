"""The custodian's console pages over a TestClient (issue 9): only the custodian opens them, the bounds
form needs its CSRF token, declared bounds are shown, and the catalog's refusals come back as the flash
message with nothing changed."""

from __future__ import annotations

import html
from typing import Any

import pytest

from app import Instance
from app.console.custodian_pages import parse_bounds, parse_domain, report_view
from core import RegistryError
from tests.console_support import console_client as _login
from tests.console_support import csrf_of as _csrf
from tests.console_support import flash as _flash
from tests.test_registry_licences import add_dataset


@pytest.fixture
def console(initialised: tuple[Instance, dict[str, str]]) -> tuple[Instance, dict[str, str]]:
    instance, tokens = initialised
    add_dataset(instance.registry, "traffic", level="L2")
    return instance, tokens


def _bounds(instance: Instance) -> tuple[Any, Any]:
    item = instance.registry.catalog.get("traffic").items[0]
    return item.public_bounds, item.public_domain


def test_only_the_custodian_opens_custodian_pages(console: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = console
    custodian = _login(instance, tokens["custodian"])
    catalog = custodian.get("/console/custodian")
    assert catalog.status_code == 200 and 'data-dataset="traffic"' in catalog.text and 'data-level="L2"' in catalog.text
    page = custodian.get("/console/custodian/datasets/traffic")
    assert page.status_code == 200 and "trips" in page.text and "数据资源名称" in page.text
    assert custodian.get("/console/custodian/datasets/nope").status_code == 404
    for role in ("operator", "agency", "regulator"):
        other = _login(instance, tokens[role])
        assert other.get("/console/custodian").status_code == 403, role
        assert other.get("/console/custodian/datasets/traffic").status_code == 403, role
        posted = other.post("/console/custodian/datasets/traffic/bounds", data={"column": "trips", "bounds": "0,9"})
        assert posted.status_code == 403, role
    operator = _login(instance, tokens["operator"])
    assert (
        custodian.get("/console/operator").status_code == 403 and operator.get("/console/operator").status_code == 200
    )
    assert _bounds(instance) == (None, None)


def test_bounds_need_the_csrf_token_and_are_shown_once_declared(console: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = console
    custodian = _login(instance, tokens["custodian"])
    for csrf in (None, "f" * 64):
        data = {"column": "trips", "bounds": "0, 100"} | ({"csrf": csrf} if csrf else {})
        response = custodian.post("/console/custodian/datasets/traffic/bounds", data=data)
        assert response.status_code == 403
    assert _bounds(instance) == (None, None)

    csrf = _csrf(custodian, "/console/custodian/datasets/traffic")
    made = custodian.post(
        "/console/custodian/datasets/traffic/bounds",
        data={"csrf": csrf, "column": "trips", "bounds": "0, 100", "domain": ""},
        follow_redirects=False,
    )
    assert made.status_code == 303 and "declared" in _flash(made)
    assert _bounds(instance) == ([0, 100], None)
    assert "[0, 100]" in custodian.get(made.headers["location"]).text
    assert instance.ledger.entries(action="catalog.bounds_set")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"column": "trips", "bounds": "100, 0"}, "lo < hi"),
        ({"column": "trips", "bounds": "low, high"}, "bounds must be two numbers"),
        ({"column": "trips", "bounds": "1, 2, 3"}, "two finite numbers"),
        ({"column": "nope", "bounds": "0, 1"}, "no column 'nope'"),
        ({"column": "trips", "domain": "1, 1"}, "distinct"),
    ],
)
def test_a_refused_declaration_is_the_flash_and_changes_nothing(
    console: tuple[Instance, dict[str, str]], fields: dict[str, str], reason: str
) -> None:
    instance, tokens = console
    custodian = _login(instance, tokens["custodian"])
    entries = len(instance.ledger.entries())
    csrf = _csrf(custodian, "/console/custodian/datasets/traffic")
    response = custodian.post(
        "/console/custodian/datasets/traffic/bounds", data={"csrf": csrf, **fields}, follow_redirects=False
    )
    assert response.status_code == 303 and "refused" in _flash(response) and reason in _flash(response)
    assert reason in html.unescape(custodian.get(response.headers["location"]).text)
    assert _bounds(instance) == (None, None) and len(instance.ledger.entries()) == entries


def test_form_parsing_and_the_report_view() -> None:
    assert parse_bounds("1990，2030") == [1990, 2030] and parse_bounds(" ") is None
    assert parse_bounds("0.5 ~ 2") == [0.5, 2]
    with pytest.raises(RegistryError):
        parse_bounds("inf, 1")
    assert parse_domain("正常参保, 暂停参保\n终止参保") == ["正常参保", "暂停参保", "终止参保"]
    assert parse_domain("1,2") == [1, 2] and parse_domain("") is None
    report = {"columns": [{"name": "x", "action": "keep"}], "k_anonymity": {"k_achieved": 7}, "rows_suppressed": 3}
    shaped = report_view(report)
    assert shaped is not None and shaped["k"]["k_achieved"] == 7 and shaped["rows_suppressed"] == 3
    assert report_view(None) is None
