"""Independent red team of the service defences (issue 17): each test is an attack that worked before.

Found by attacking a running ``keyong serve`` and the in-process app without reading the other tests
first; each fix lives in the module that owns the rule:

- a second ``Content-Type`` header slipped a NUL past the API's edge (a 500 in PostgreSQL), and a body
  of any size with a non-JSON type was buffered whole, unauthenticated (``app.api.edge``);
- console forms and the ingest upload's text fields stored NULs (500s in PostgreSQL) and controls
  (``app.console.context``, ``app.api.ingest``); console URLs with ids ≥ 2^63 were 500s;
- ε budgets of 1e300 and publicity of 10^20 days passed the CLI and the console (the bound was the
  API's only; now ``registry.licence_terms``); CLI ids ≥ 2^63 were tracebacks (``app.cli.conventions``);
- an XLSX part in UTF-16, or not named ``.xml``, carried a DTD past the check (``registry.source_checks``);
- a DP spec nested 100,000 deep was a 500 (``dp.plans``);
- control and bidi characters in scenario names rewrote the administrator's terminal (``core.text``);
- an objection against another operator's licence told its state (``registry.objections``);
- ``/docs`` and the API's answers could be framed and sniffed (``app.console.security``).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import Instance, Settings, create_app
from app.cli.root import cli
from core import Actor, RegistryError
from dp import DpSpecError
from registry import FileInvalidError, IngestLimits
from registry.source_checks import check_xlsx_archive
from tests.conftest import bearer
from tests.consent_support import consent_to_access
from tests.console_support import console_client, csrf_of, flash
from tests.people_support import stand
from tests.test_registry_licences import add_dataset, uscc

pytestmark = pytest.mark.attack

AGENCY = Actor("demo-agency", "agency")
PROVIDER_CODE = uscc(7)


@pytest.fixture
def database_url() -> None:
    """SQLite by default; the attacks that only PostgreSQL turns into a 500 use :func:`pg_instance` too."""
    return None


@pytest.fixture
def keys(initialised: tuple[Instance, dict[str, str]]) -> dict[str, str]:
    return initialised[1]


@pytest.fixture
def client(instance: Instance) -> TestClient:
    return TestClient(create_app(instance=instance), raise_server_exceptions=False)


@pytest.fixture
def pg_instance(pg_url: str, tmp_path: Path) -> Iterator[tuple[Instance, dict[str, str]]]:
    instance, result = Instance.init(Settings(home=tmp_path / "pg-home", database_url=pg_url))
    try:
        yield instance, result.tokens
    finally:
        instance.close()


def _both(instance: Instance, keys: dict[str, str], pg: tuple[Instance, dict[str, str]]) -> list[Any]:
    return [(instance, keys), pg]


# --- the API's edge ------------------------------------------------------------------------------


def test_a_second_content_type_header_cannot_smuggle_a_nul(
    instance: Instance, keys: dict[str, str], pg_instance: tuple[Instance, dict[str, str]]
) -> None:
    """Before: the edge read the last Content-Type (text/plain: not checked), FastAPI the first (JSON):
    an objection whose reason held a NUL was stored in SQLite and a 500 in PostgreSQL."""
    for inst, api_keys in _both(instance, keys, pg_instance):
        add_dataset(inst.registry, "traffic")
        client = TestClient(create_app(instance=inst), raise_server_exceptions=False)
        agency = bearer(client, api_keys["agency"])["Authorization"]
        body = b'{"target_kind": "resource", "target": "traffic", "reason": "a\\u0000b"}'
        for order in (("application/json", "text/plain"), ("text/plain", "application/json")):
            headers = [("authorization", agency), ("content-type", order[0]), ("content-type", order[1])]
            answer = client.post("/objections", content=body, headers=headers)
            assert answer.status_code == 400, answer.text
            assert answer.json()["detail"][0]["type"] == "content_type"
        assert inst.registry.objections.list(viewer=AGENCY) == []


def test_a_large_body_of_any_content_type_is_refused_before_it_is_buffered(client: TestClient) -> None:
    """Before: ``text/plain`` (or no JSON type) bodies were read whole into memory by any route,
    ``/auth/token`` included (no authentication): 400 MB grew the server to ~950 MB before a 422."""
    big = b" " * (3 * 1024 * 1024)
    for content_type in ("text/plain", "application/octet-stream", "application/x-www-form-urlencoded"):
        declared = client.post("/auth/token", content=big, headers={"content-type": content_type})
        assert declared.status_code == 413, (content_type, declared.text)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the count while it streams refuses it
        for _ in range(3):
            yield b" " * (1024 * 1024 + 1)

    streamed = client.post("/auth/token", content=chunks(), headers={"content-type": "text/plain"})
    assert streamed.status_code == 413
    assert client.post("/console/login", content=big, headers={"origin": "http://testserver"}).status_code == 413


def test_the_ingest_upload_still_streams_past_the_json_bound(client: TestClient, keys: dict[str, str]) -> None:
    """The one route that bounds its own body is let through the edge's cap (it seals what it receives)."""
    custodian = bearer(client, keys["custodian"])
    csv = b"name,age\n" + b"alice,30\n" * 400_000  # 3.6 MB
    answer = client.post("/datasets/bigger/ingest", headers=custodian, files={"file": ("a.csv", csv, "text/csv")})
    assert answer.status_code == 422 and "provider" in answer.json()["detail"]  # read to the end, then refused


# --- console forms and URLs --------------------------------------------------------------------------


def test_a_console_form_with_a_nul_is_a_400_page_and_changes_nothing(
    instance: Instance, keys: dict[str, str], pg_instance: tuple[Instance, dict[str, str]]
) -> None:
    """Before: ``reason=a%00b`` resolving an objection was a 500 in PostgreSQL."""
    for inst, api_keys in _both(instance, keys, pg_instance):
        add_dataset(inst.registry, "traffic")
        objection = inst.registry.objections.file("resource", "traffic", "wrong counts", by=AGENCY)
        browser = console_client(inst, api_keys["agency"])
        csrf = csrf_of(browser, "/console/agency/objections")
        answer = browser.post(
            f"/console/agency/objections/{objection.id}/resolve",
            content=f"csrf={csrf}&outcome=restore&reason=a%00b",
            headers={"content-type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
        )
        assert answer.status_code == 400 and "NUL" in answer.text
        assert answer.headers["x-frame-options"] == "DENY"
        assert inst.registry.objections.get(objection.id, viewer=AGENCY).state == "open"


@pytest.mark.parametrize(
    ("role", "path"),
    [
        ("operator", "/console/operator/jobs/{n}"),
        ("agency", "/console/agency/releases/{n}"),
        ("regulator", "/console/regulator/entries/{n}"),
    ],
)
def test_console_ids_beyond_any_column_are_a_4xx(
    instance: Instance, keys: dict[str, str], role: str, path: str
) -> None:
    """Before: ``/console/operator/jobs/99999999999999999999999`` was a 500 (OverflowError in the driver)."""
    browser = console_client(instance, keys[role])
    for n in (10**22, 2**63, -(2**63) - 1):
        answer = browser.get(path.format(n=n), follow_redirects=False)
        assert 400 <= answer.status_code < 500, (path, n, answer.status_code)


def test_console_post_routes_with_huge_ids_are_a_4xx(instance: Instance, keys: dict[str, str]) -> None:
    browser = console_client(instance, keys["agency"])
    csrf = csrf_of(browser, "/console/agency/people")
    for path in ("/console/agency/findings/{n}/resolve", "/console/agency/objections/{n}/resolve"):
        answer = browser.post(path.format(n=10**20), data={"csrf": csrf, "resolution": "x", "reason": "x"})
        assert answer.status_code == 422, path
    refused = browser.post(
        "/console/agency/budgets/raise",
        data={"csrf": csrf, "licence": "1e300", "epsilon": "5", "dataset": "traffic", "reason": "r"},
        follow_redirects=False,
    )
    assert refused.status_code == 303 and "no licence" in flash(refused)


# --- ingest ---------------------------------------------------------------------------------------


def test_ingest_form_fields_refuse_nul_and_controls(
    instance: Instance, keys: dict[str, str], pg_instance: tuple[Instance, dict[str, str]]
) -> None:
    """Before: a ``title`` or ``industry`` holding a NUL was a 500 in PostgreSQL after the upload."""
    csv = b"name,age\nalice,30\nbob,40\n"
    fields = {"provider": "双鸭山市统计局", "provider_code": PROVIDER_CODE, "level": "L3"}
    for inst, api_keys in _both(instance, keys, pg_instance):
        client = TestClient(create_app(instance=inst), raise_server_exceptions=False)
        custodian = bearer(client, api_keys["custodian"])
        for extra in ({"title": "t\x00"}, {"industry": "x\x1b[31m"}, {"provider": "局\u202e"}):
            answer = client.post(
                "/datasets/smalld/ingest",
                headers=custodian,
                files={"file": ("s.csv", csv, "text/csv")},
                data={**fields, **extra},
            )
            assert answer.status_code == 422, (extra, answer.text)
        assert client.get("/datasets/smalld", headers=custodian).status_code == 404


def _workbook() -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["name", "age"])
    sheet.append(["alice", 30])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _rewritten(original: bytes, change: Any) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            name, data = change(info.filename, source.read(info.filename))
            target.writestr(name, data)
    return out.getvalue()


DTD = '<!DOCTYPE worksheet [<!ENTITY a0 "ha"><!ENTITY a1 "&a0;&a0;&a0;&a0;&a0;&a0;&a0;&a0;">]>'


def test_an_xlsx_dtd_in_utf16_or_in_a_part_not_named_xml_is_refused() -> None:
    """Before: only ``.xml``/``.rels``/``.vml`` parts were scanned, for UTF-8 bytes: a worksheet stored as
    ``sheet1.dat`` or encoded in UTF-16 (expat reads both) carried a DTD into openpyxl's parser."""
    base = _workbook()
    sheet = zipfile.ZipFile(io.BytesIO(base)).read("xl/worksheets/sheet1.xml").decode()
    body = re.sub(r"^<\?xml[^>]*\?>", "", sheet)
    utf16 = ('<?xml version="1.0" encoding="UTF-16"?>' + DTD + body).encode("utf-16-le")
    in_utf16 = _rewritten(base, lambda n, d: (n, utf16) if n == "xl/worksheets/sheet1.xml" else (n, d))

    def renamed(name: str, data: bytes) -> tuple[str, bytes]:
        if name == "xl/worksheets/sheet1.xml":
            return "xl/worksheets/sheet1.dat", (DTD + body).encode()
        return name, data.replace(b"worksheets/sheet1.xml", b"worksheets/sheet1.dat")

    as_dat = _rewritten(base, renamed)
    limits = IngestLimits()
    for workbook in (in_utf16, as_dat):
        with pytest.raises(FileInvalidError, match=r"DTD|not UTF-8 XML"):
            check_xlsx_archive(workbook, "book.xlsx", limits)
    check_xlsx_archive(base, "book.xlsx", limits)  # an ordinary workbook passes


# --- budgets, publicity, names: the registry's bounds, whatever the door -----------------------------


def test_epsilon_and_publicity_bounds_hold_for_every_door(instance: Instance, keys: dict[str, str]) -> None:
    """Before: ``keyong budget raise --epsilon 1e300``, the console's budget form and ``licence grant
    --epsilon 1e300`` set a budget that bounds nothing; ``--publicity-days 10**20`` was a traceback."""
    registry = instance.registry
    add_dataset(registry, "traffic")
    registry.licences.add_operator("acme-ops", uscc(1), by=AGENCY)
    stand(registry, "acme-ops")
    consent_to_access(registry, "traffic")
    until = date.today() + timedelta(days=300)
    terms: dict[str, Any] = {"datasets": ["traffic"], "scenarios": ["交通出行"], "valid_until": until}
    for bad in ({"epsilon": 1e300}, {"epsilon": {"traffic": 5000.0}}, {"publicity_days": 10**6}):
        with pytest.raises(RegistryError, match=r"at most 1000|from 0 to 365"):
            registry.licences.grant("acme-ops", **terms, **bad, by=AGENCY, reason="r")  # type: ignore[arg-type]
    licence = registry.licences.grant("acme-ops", **terms, publicity_days=0, by=AGENCY, reason="r")
    with pytest.raises(RegistryError, match="at most 1000"):
        registry.budgets.raise_budget(licence.id, "traffic", epsilon=1e300, reason="r", by=AGENCY)
    browser = console_client(instance, keys["agency"])
    csrf = csrf_of(browser, "/console/agency/people")
    answer = browser.post(
        "/console/agency/budgets/raise",
        data={"csrf": csrf, "licence": str(licence.id), "epsilon": "1e300", "dataset": "traffic", "reason": "r"},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and "at most 1000" in flash(answer)
    assert registry.budgets.show("acme-ops", viewer=AGENCY)[0].epsilon_budget == 3.0


def test_names_with_controls_or_bidi_overrides_are_refused(
    client: TestClient, instance: Instance, keys: dict[str, str]
) -> None:
    """Before: a scenario ``evil\\x1b]0;PWNED\\x07`` was stored and printed raw by ``keyong licence list``
    (terminal title and colours rewritten); ``\\u202e析分构结口人`` reads as another scenario."""
    add_dataset(instance.registry, "traffic")
    instance.registry.licences.add_operator("acme-ops", uscc(1), by=AGENCY)
    stand(instance, "acme-ops")
    agency = bearer(client, keys["agency"])
    until = (date.today() + timedelta(days=30)).isoformat()
    for scenario in ("evil\x1b]0;PWNED\x07", "\u202e析分构结口人", "a\nb", "x\u200by"):
        body = {"operator": "acme-ops", "datasets": ["traffic"], "scenarios": [scenario]}
        answer = client.post("/licences", headers=agency, json={**body, "valid_until": until, "reason": "r"})
        assert answer.status_code == 422, (scenario, answer.text)
        with pytest.raises(RegistryError, match="visible text"):
            instance.registry.licences.grant(
                "acme-ops", datasets=["traffic"], scenarios=[scenario], valid_until=date.fromisoformat(until),
                by=AGENCY, reason="r",
            )  # fmt: skip
    fine = client.post(
        "/licences",
        headers=agency,
        json={"operator": "acme-ops", "datasets": ["traffic"], "scenarios": ["交通出行"], "valid_until": until,
              "reason": "第一行\n第二行\t(tabs and line breaks are text)"},
    )  # fmt: skip
    assert fine.status_code == 201, fine.text


# --- the CLI and DP specs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["job", "show", "99999999999999999999"],
        ["release", "show", "99999999999999999999"],
        ["licence", "show", "99999999999999999999"],
        ["ledger", "show", "--after", "99999999999999999999"],
        ["objection", "resolve", "99999999999999999999", "--outcome", "restore", "--reason", "x"],
    ],
)
def test_cli_numbers_beyond_any_column_exit_1_without_a_traceback(instance: Instance, args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["--home", str(instance.home), *args])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "out of range" in result.output and "Traceback" not in result.output


def test_a_deeply_nested_or_huge_dp_spec_is_a_4xx(client: TestClient, keys: dict[str, str]) -> None:
    """Before: ``POST /jobs/cost`` (and ``POST /jobs`` with a dp kind) with ``[[[…]]]`` 100,000 deep was a 500."""
    from dp.plans import kind_of_spec, parse_spec

    operator = bearer(client, keys["operator"])
    for spec in ("[" * 100_000 + "]" * 100_000, '{"aggregate": ' + "1" * 5000 + "}"):
        answer = client.post("/jobs/cost", headers=operator, json={"spec": spec})
        assert 400 <= answer.status_code < 500, answer.text
        for call in (lambda s=spec: parse_spec("dp-query", s), lambda s=spec: kind_of_spec(s)):
            with pytest.raises(DpSpecError):
                call()


# --- who learns what ------------------------------------------------------------------------------


def test_an_objection_does_not_tell_another_operators_licence_state(
    client: TestClient, instance: Instance, keys: dict[str, str]
) -> None:
    """Before: ``GET /licences/1`` was a 404 for another operator, but an objection against licence 1
    answered "licence 1 is active: …" (its existence and its state)."""
    add_dataset(instance.registry, "traffic")
    instance.registry.licences.add_operator("acme-ops", uscc(1), by=AGENCY)
    stand(instance, "acme-ops")
    consent_to_access(instance.registry, "traffic")
    licence = instance.registry.licences.grant(
        "acme-ops", datasets=["traffic"], scenarios=["交通出行"], valid_until=date.today() + timedelta(days=30),
        publicity_days=0, by=AGENCY, reason="r",
    )  # fmt: skip
    operator = bearer(client, keys["operator"])
    assert client.get(f"/licences/{licence.id}", headers=operator).status_code == 404
    for target in (str(licence.id), "4242", "99999999999999999999"):
        body = {"target_kind": "licence", "target": target, "reason": "x"}
        answer = client.post("/objections", headers=operator, json=body)
        assert answer.status_code == 404, answer.text
        assert "active" not in answer.text


def test_every_response_refuses_framing_and_sniffing(client: TestClient, keys: dict[str, str]) -> None:
    """Before: ``/docs`` (a page that acts with a pasted token), ``/redoc`` and the API's answers carried
    no frame or sniffing protection; only console pages and static assets did."""
    agency = bearer(client, keys["agency"])
    for path, headers in (("/docs", {}), ("/redoc", {}), ("/healthz", {}), ("/nope", {}), ("/principals", agency)):
        answer = client.get(path, headers=headers)
        assert answer.headers["x-frame-options"] == "DENY", path
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"], path
        assert answer.headers["cache-control"] == "no-store", path
