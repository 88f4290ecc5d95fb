"""Requests in the console over a TestClient (issue 24): the custodian's queue is ordered by due time and
carries the forms its kinds allow, a refusal without reasons comes back refused, and the regulator and the
agency see the overdue requests across departments."""

from __future__ import annotations

import html
import re

import pytest

from app import Instance
from core import Actor
from tests.console_support import console_client, csrf_in, flash
from tests.test_registry_products import POPULATION_ACQUIRED, POPULATION_PROVIDER, TRAFFIC_PROVIDER, make_resource
from tests.test_requests_surfaces import make_overdue

OPERATOR = Actor("demo-operator", "operator")
AGENCY = Actor("demo-agency", "agency")


@pytest.fixture
def made(initialised: tuple[Instance, dict[str, str]]) -> dict[str, int]:
    """Three requests to the police (the demo custodian published its dataset) and one to transport (another
    custodian's), one of the police's overdue."""
    instance = initialised[0]
    make_resource(instance, "population", POPULATION_PROVIDER, POPULATION_ACQUIRED)
    make_resource(instance, "traffic", TRAFFIC_PROVIDER, POPULATION_ACQUIRED, by="custodian-two")
    requests = instance.registry.requests
    ids = {
        # reqfix24: the catalog obligation runs from the authority: the agency raises it (red team 24, finding 9).
        kind: requests.submit(kind, by=AGENCY if kind == "catalog_update" else OPERATOR, subject="population").row.id
        for kind in ("catalog_update", "correction", "data_application")
    }
    ids["traffic"] = requests.submit("correction", by=OPERATOR, subject="traffic").row.id
    make_overdue(instance, ids["traffic"])
    return ids


def rows(page: str, table: str) -> list[int]:
    body = page.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return [int(n) for n in re.findall(r'<tr data-request="(\d+)"', body)]


def test_the_custodians_queue_by_due_time_with_its_forms(
    initialised: tuple[Instance, dict[str, str]], made: dict[str, int]
) -> None:
    instance, tokens = initialised
    custodian = console_client(instance, tokens["custodian"])
    page = custodian.get("/console/custodian/requests")
    assert page.status_code == 200
    assert rows(page.text, "request-queue") == [made["data_application"], made["correction"], made["catalog_update"]]
    assert "双鸭山市公安局" in page.text and "第二十七条" in page.text
    csrf = csrf_in(page.text)
    # A catalog update is answered, never granted; a correction answered or refused.
    assert f"/custodian/requests/{made['catalog_update']}/grant" not in page.text
    assert f"/custodian/requests/{made['catalog_update']}/answer" in page.text
    refused = custodian.post(
        f"/console/custodian/requests/{made['data_application']}/refuse", data={"csrf": csrf, "reason": " "},
        follow_redirects=False,
    )  # fmt: skip
    assert "具体原因" in flash(refused)
    assert (
        custodian.post(
            f"/console/custodian/requests/{made['data_application']}/refuse",
            data={"reason": "x"},
            follow_redirects=False,
        ).status_code
        == 403
    )  # fmt: skip  (no CSRF token)
    other = custodian.post(
        f"/console/custodian/requests/{made['traffic']}/refuse", data={"csrf": csrf, "reason": "x"},
        follow_redirects=False,
    )  # fmt: skip
    assert "refused" in flash(other) and instance.registry.requests.get(made["traffic"], viewer=OPERATOR).row.state == (
        "submitted"
    )
    done = custodian.post(
        f"/console/custodian/requests/{made['data_application']}/refuse",
        data={"csrf": csrf, "reason": "含个人信息, 不符合共享条件"}, follow_redirects=False,
    )  # fmt: skip
    assert "refused" in flash(done)
    after = custodian.get("/console/custodian/requests").text
    assert rows(after, "request-queue") == [made["correction"], made["catalog_update"]]
    assert rows(after, "request-closed") == [made["data_application"]]
    assert html.escape("含个人信息, 不符合共享条件") in after
    for role in ("operator", "agency", "regulator"):
        assert console_client(instance, tokens[role]).get("/console/custodian/requests").status_code == 403


def test_overseers_see_overdue_requests_across_departments(
    initialised: tuple[Instance, dict[str, str]], made: dict[str, int]
) -> None:
    instance, tokens = initialised
    for role in ("regulator", "agency"):
        page = console_client(instance, tokens[role]).get(f"/console/{role}/requests")
        assert page.status_code == 200, role
        assert rows(page.text, "requests-overdue") == [made["traffic"]]
        assert "双鸭山市交通运输局" in page.text.split('id="requests-overdue"', 1)[1]
        departments = page.text.split('id="request-departments"', 1)[1].split("</table>", 1)[0]
        assert departments.index("双鸭山市交通运输局") < departments.index("双鸭山市公安局")  # overdue first
    for role in ("operator", "custodian"):
        assert console_client(instance, tokens[role]).get("/console/regulator/requests").status_code == 403


def test_an_operator_submits_and_follows_its_requests_and_each_request_shows_its_history(
    initialised: tuple[Instance, dict[str, str]], made: dict[str, int]
) -> None:
    instance, tokens = initialised
    operator = console_client(instance, tokens["operator"])
    page = operator.get("/console/operator/requests")
    assert page.status_code == 200 and set(rows(page.text, "my-requests")) == set(made.values()) - {
        made["catalog_update"]
    }
    csrf = csrf_in(page.text)
    sent = operator.post(
        "/console/operator/requests",
        data={"csrf": csrf, "kind": "open_data_application", "subject": "population", "detail": "交通研究"},
        follow_redirects=False,
    )
    assert "submitted" in flash(sent)
    refused = operator.post(
        "/console/operator/requests", data={"csrf": csrf, "kind": "complaint", "subject": "population"},
        follow_redirects=False,
    )  # fmt: skip
    assert "unknown request kind" in flash(refused)
    newest = max(rows(operator.get("/console/operator/requests").text, "my-requests"))
    shown = operator.get(f"/console/requests/{newest}")
    assert shown.status_code == 200 and "第三十九条" in shown.text and 'data-action="submitted"' in shown.text
    # The custodian of another department does not see it; the regulator does; a missing one is 404.
    assert console_client(instance, tokens["regulator"]).get(f"/console/requests/{newest}").status_code == 200
    assert operator.get("/console/requests/999999").status_code == 404
    custodian = console_client(instance, tokens["custodian"])
    assert custodian.get(f"/console/requests/{made['traffic']}").status_code == 404
    assert custodian.get(f"/console/requests/{newest}").status_code == 200
    assert custodian.get("/console/operator/requests").status_code == 403
