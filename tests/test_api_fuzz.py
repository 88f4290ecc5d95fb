"""Bad requests get a 4xx, never a 500 (issue 17): targeted cases, then every OpenAPI route fuzzed.

The targeted cases are the ones the issue reported (NaN, Infinity and lone surrogates in JSON, unknown
``state=`` filters, ids at and past 2^63, negative ids, 64 KiB reasons, huge ``publicity_days``, a
product named ``../../x``); the fuzz walk (``slow``) generates bodies, parameters and ids for every
operation from the OpenAPI schema with schemathesis, as every role the operation admits and as one
it does not, and asserts that no answer is a 5xx and that every answer matches the response schema the
operation documents for its status (issue 17: typed responses; schemathesis' response_schema_conformance).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import Instance, Settings, create_app
from app.api.limits import MAX_ID, MAX_JSON_BYTES
from tests.conftest import bearer, bearer_headers
from tests.people_support import stand
from tests.test_registry_licences import add_dataset, uscc


@pytest.fixture
def api(initialised: tuple[Instance, dict[str, str]]) -> tuple[TestClient, dict[str, dict[str, str]]]:
    instance, keys = initialised
    client = TestClient(create_app(instance=instance), raise_server_exceptions=False)
    return client, bearer_headers(client, keys)


def _post_raw(client: TestClient, path: str, body: str, headers: dict[str, str] | None = None) -> Any:
    return client.post(
        path,
        content=body.encode("utf-8", "surrogatepass"),
        headers={
            "content-type": "application/json",
            **(headers or {}),
        },
    )


@pytest.mark.parametrize(
    "body",
    [
        '{"api_key": NaN}',
        '{"api_key": Infinity}',
        '{"api_key": -Infinity}',
        '{"api_key": "\\ud800"}',
        '{"api_key": "ky_\\udfff_x"}',
        '{"\\ud800": "x"}',
        '{"api_key": "a\\u0000b"}',
        "[" * 100_000 + "]" * 100_000,
    ],
)
def test_unserialisable_json_is_422_on_auth_token(api: tuple[TestClient, dict[str, dict[str, str]]], body: str) -> None:
    client, _ = api
    response = _post_raw(client, "/auth/token", body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "path, role, body",
    [
        (
            "/licences",
            "agency",
            '{"operator": "x", "scenarios": ["a"], "valid_until": "2030-01-01", "reason": "r", "epsilon": NaN}',
        ),
        (
            "/licences",
            "agency",
            '{"operator": "x", "scenarios": ["a"], "valid_until": "2030-01-01", '
            '"reason": "r", "epsilon": {"d": Infinity}}',
        ),
        ("/operators/demo-operator/suspend", "agency", '{"reason": "\\udc80"}'),
        ("/jobs", "operator", '{"datasets": ["d"], "kind": "sql", "code": "select 1", "scenario": "\\ud83d"}'),
        ("/objections", "custodian", '{"target_kind": "product", "target": "p", "reason": NaN}'),
    ],
)
def test_unserialisable_json_is_422_on_every_route(
    api: tuple[TestClient, dict[str, dict[str, str]]], path: str, role: str, body: str
) -> None:
    client, headers = api
    response = _post_raw(client, path, body, headers[role])
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b'{"api_key": "\xff\xfe"}', "application/json"),
        (b"\xff", "application/json"),
        (b'{"api_key": "\\ud800"}', ""),
        (b'{"api_key": "\\ud800"}', "application/vnd.keyong+json"),
        (b'{"api_key": "\\ud800"}', "application/json; charset=utf-8"),
        (b'{"api_key": "x"}', "text/plain"),
    ],
)
def test_bodies_that_are_not_json_text_are_4xx(
    api: tuple[TestClient, dict[str, dict[str, str]]], body: bytes, content_type: str
) -> None:
    client, _ = api
    response = client.post("/auth/token", content=body, headers={"content-type": content_type} if content_type else {})
    assert 400 <= response.status_code < 500, response.text


def test_validation_errors_never_echo_what_cannot_be_serialised(
    api: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    """FastAPI's own 422 echoes the input: a NaN or a surrogate that reached it made the 422 a 500."""
    from app.api.edge import safe

    assert safe(float("nan")) == "nan"
    assert safe("\ud800x") == "\\ud800x"
    assert safe(2**70) == str(2**70)
    assert len(safe("x" * 100_000)) < 300
    client, headers = api
    # A 64 KiB reason is refused by its bound, and the answer does not carry it back whole.
    response = client.post("/operators/demo-operator/suspend", json={"reason": "x" * 65536}, headers=headers["agency"])
    assert response.status_code == 422
    assert len(response.content) < 2000


def test_oversized_json_body_is_413(api: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    client, headers = api
    body = '{"reason": "' + "x" * (MAX_JSON_BYTES + 10) + '"}'
    response = _post_raw(client, "/operators/demo-operator/suspend", body, headers["agency"])
    assert response.status_code == 413


@pytest.mark.parametrize(
    "role, path",
    [
        ("agency", "/jobs?state=bogus"),
        ("agency", "/releases?state=bogus"),
        ("agency", "/findings?state=bogus"),
        ("agency", "/findings?kind=bogus"),
        ("agency", "/licences?state=bogus"),
        ("agency", "/catalog-requests?state=bogus"),
        ("agency", f"/jobs/{2**63}"),
        ("agency", f"/jobs/{2**31}"),
        ("agency", f"/licences/{2**31}"),
        ("custodian", f"/objections/{2**31}"),
        ("agency", f"/jobs/{MAX_ID + 2**64}"),
        ("agency", "/jobs/-1"),
        ("agency", "/jobs/0"),
        ("agency", f"/licences/{2**63}"),
        ("agency", "/licences/-5"),
        ("agency", f"/releases/{2**63}"),
        ("custodian", f"/objections/{2**63}"),
        ("regulator", f"/ledger/entries/{2**63}"),
        ("regulator", "/ledger/entries/-1"),
        ("regulator", f"/ledger/entries?after={2**63}"),
        ("regulator", f"/ledger/proof/{2**63}"),
        ("regulator", f"/ledger/consistency?old=0&new={2**64}"),
        ("agency", "/datasets/a%00b"),
        ("agency", "/jobs?state=%ED%A0%80"),
        ("regulator", "/ledger/entries?subject=a%00b"),
        ("agency", "/datasets/" + "x" * 300),
    ],
)
def test_bad_filters_and_ids_are_4xx(api: tuple[TestClient, dict[str, dict[str, str]]], role: str, path: str) -> None:
    client, headers = api
    response = client.get(path, headers=headers[role])
    assert 400 <= response.status_code < 500, (path, response.status_code, response.text)


@pytest.mark.parametrize(
    "path, role, body",
    [
        (
            "/licences",
            "agency",
            {
                "operator": "demo-operator",
                "scenarios": ["s"],
                "valid_until": "2030-01-01",
                "reason": "r",
                "publicity_days": 10**30,
            },
        ),
        (
            "/licences",
            "agency",
            {
                "operator": "demo-operator",
                "scenarios": ["s"],
                "valid_until": "2030-01-01",
                "reason": "r",
                "publicity_days": 10**8,
            },
        ),
        (
            "/licences",
            "agency",
            {
                "operator": "demo-operator",
                "scenarios": ["s"],
                "valid_until": "2030-01-01",
                "reason": "r",
                "publicity_days": -1,
            },
        ),
        (
            "/licences",
            "agency",
            {"operator": "demo-operator", "scenarios": ["s"], "valid_until": "9999-12-31", "reason": "r"},
        ),
        (
            "/licences",
            "agency",
            {
                "operator": "demo-operator",
                "scenarios": ["s"],
                "valid_until": "2030-01-01",
                "reason": "r",
                "price_cents": 2**64,
            },
        ),
        ("/releases", "operator", {"job": 1, "product": "../../x"}),
        ("/releases", "operator", {"job": 1, "product": "a/b"}),
        ("/releases", "operator", {"job": 1, "product": ".hidden"}),
        ("/releases", "operator", {"job": 2**63, "product": "ok"}),
        ("/releases", "operator", {"job": 2**31, "product": "ok"}),
        (
            "/licences",
            "agency",
            {
                "operator": "demo-operator",
                "scenarios": ["s"],
                "valid_until": "2030-01-01",
                "reason": "r",
                "price_cents": 2**31,
            },
        ),
        ("/releases", "operator", {"job": -1, "product": "ok"}),
        ("/releases", "operator", {"job": 1, "product": "ok", "fee_class": "free"}),
        ("/releases/1/votes", "agency", {"decision": "maybe"}),
        ("/releases/1/votes", "agency", {"decision": "approve", "reason": "x" * 65536}),
        ("/releases/1/withdraw", "operator", {"reason": "x" * 65536}),
        ("/operators/demo-operator/suspend", "agency", {"reason": "x" * 65536}),
        ("/catalog-requests/1/decision", "agency", {"approve": True, "reason": "x" * 65536}),
        ("/jobs", "operator", {"datasets": ["d"], "kind": "cobol", "code": "x", "scenario": "s"}),
        ("/budgets/demo-operator/raise", "agency", {"licence": 2**63, "dataset": "d", "reason": "r"}),
        ("/budgets/demo-operator/raise", "agency", {"licence": 1, "dataset": "d", "reason": "r", "epsilon": 1e308}),
        ("/scope-check", "operator", {"datasets": ["d"], "scenario": "s", "subject": "x" * 65536}),
    ],
)
def test_bad_bodies_are_4xx(
    api: tuple[TestClient, dict[str, dict[str, str]]], path: str, role: str, body: dict[str, Any]
) -> None:
    client, headers = api
    response = client.post(path, json=body, headers=headers[role])
    assert 400 <= response.status_code < 500, (path, response.status_code, response.text)


def test_product_names_follow_one_rule_everywhere() -> None:
    """The registry's rule (asked by the registry, the release request and the API) refuses a path."""
    import re

    from core import RegistryError
    from registry import PRODUCT_NAME_PATTERN, check_product_name

    for bad in ("../../x", "a/b", ".x", "", " ", "x" * 129, "a\nb", "..", "a\\b"):
        with pytest.raises(RegistryError):
            check_product_name(bad)
        assert not re.fullmatch(PRODUCT_NAME_PATTERN, bad)
    for good in ("ok", "人口统计-2026", "a.b_c-1", "x" * 128):
        assert check_product_name(f" {good} ") == good
        assert re.fullmatch(PRODUCT_NAME_PATTERN, good)


# ---- the fuzz walk -------------------------------------------------------------------------------

#: The walk's budget: examples per (operation, role, mode), and a wall-clock cap per database that grows
#: with the API. The cap bounds the test, it measures nothing: it is set so a loaded 2-core machine still
#: walks every operation once (each answer is also validated against its schema, which costs time of its
#: own; about 0.9 s per operation seen on a loaded machine).
EXAMPLES = 10
WALK_SECONDS_PER_OPERATION = 1.5


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzz_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, dict[str, dict[str, str]]]]:
    """An initialised instance on each database with its app, and a bearer header per role."""
    home = Path(tmp_path_factory.mktemp("fuzz")) / "home"
    url = None if request.param == "sqlite" else str(request.getfixturevalue("pg_database"))
    instance, result = Instance.init(Settings(home=home, database_url=url))
    try:
        app = create_app(instance=instance)
        client = TestClient(app, raise_server_exceptions=False)
        headers = {role: bearer(client, key) for role, key in result.tokens.items()}
        # Something to find: an operator with a licence over a dataset, so ids 1 and names exist.
        add_dataset(instance.registry, "traffic")
        stand(instance, "demo-operator")  # its login stands: identity checked, terms accepted, trained (issue 22)
        agency = headers["agency"]
        assert client.post("/operators", json={"name": "demo-operator", "uscc": uscc(1)}, headers=agency).is_success
        grant = {
            "operator": "demo-operator",
            "datasets": ["traffic"],
            "scenarios": ["交通出行"],
            "valid_until": "2099-12-31",
            "publicity_days": 0,
            "reason": "授权运营协议",
        }
        assert client.post("/licences", json=grant, headers=agency).is_success
        yield app, headers
    finally:
        instance.close()


def _walk(operation: Any, who: str, auth: dict[str, str], mode: Any, examples: int) -> str | None:
    """Call ``operation`` with ``examples`` generated cases as ``who``; the first 5xx, described, or None."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import response_schema_conformance

    seen: list[str] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: Any) -> None:
        try:
            response = case.call(headers=auth)
        except Exception as exc:  # the ASGI transport re-raises what the app did not answer: a 500
            seen.append(f"{operation.label} as {who} ({mode.value}): raised {exc!r:.300} for {case.body!r:.300}")
            raise AssertionError(seen[-1]) from exc
        if response.status_code >= 500:
            seen.append(
                f"{operation.label} as {who} ({mode.value}): {response.status_code} for "
                f"path={case.path_parameters} query={case.query} body={case.body!r:.300} -> {response.text[:200]}"
            )
            raise AssertionError(seen[-1])
        try:  # the answer is what the schema documents for its status (issue 17: typed responses)
            case.validate_response(response, checks=[response_schema_conformance])
        except Exception as exc:
            seen.append(
                f"{operation.label} as {who} ({mode.value}): {response.status_code} does not match its schema for "
                f"path={case.path_parameters} query={case.query} body={case.body!r:.300}: {exc!s:.600}"
            )
            raise AssertionError(seen[-1]) from None

    try:
        call()
    except AssertionError:
        return seen[-1] if seen else f"{operation.label} as {who}: assertion"
    except Unsatisfiable:  # nothing to make invalid (an operation without parameters or body)
        pass
    return None


def _rounds(operations: list[Any], headers: dict[str, dict[str, str]]) -> Iterator[tuple[Any, str, dict[str, str]]]:
    """(operation, caller, header) in rounds: every operation's first allowed role, then the others, then
    one role (or nobody) it does not admit; so a walk cut short by its budget has still seen every route."""
    plans = []
    for operation in operations:
        allowed = [r for r in operation.definition.raw.get("x-roles") or [] if r in headers]
        outsider = next((r for r in headers if r not in allowed), None)
        callers = [(r, headers[r]) for r in allowed] + [
            (outsider or "anonymous", headers[outsider] if outsider else {})
        ]
        plans.append((operation, callers))
    for depth in range(1 + max(len(callers) for _, callers in plans)):
        for operation, callers in plans:
            if depth < len(callers):
                yield operation, *callers[depth]


@pytest.mark.slow
def test_fuzz_every_route_answers_without_5xx(fuzz_world: tuple[Any, dict[str, dict[str, str]]]) -> None:
    import schemathesis
    from schemathesis import GenerationMode

    app, headers = fuzz_world
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    walked = 0
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40, "the schema lost its operations"
    for operation, who, auth in _rounds(operations, headers):
        if time.monotonic() - started > WALK_SECONDS_PER_OPERATION * len(operations):
            break
        admitted = who in (operation.definition.raw.get("x-roles") or [])
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failure = _walk(operation, who, auth, mode, EXAMPLES if admitted else 2)
            if failure:
                failures.append(failure)
        walked += 1
    elapsed = time.monotonic() - started
    print(f"fuzz walk: {len(operations)} operations, {walked} (operation, role) walks in {elapsed:.1f}s")
    assert not failures, "5xx answers:\n" + "\n".join(failures)
    assert walked >= len(operations), f"the walk ran out of time after {walked} walks"
