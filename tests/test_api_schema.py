"""Every operation of the API documents itself (issue 17): a typed response, the roles allowed, examples.

Walks ``app.openapi()``: each operation's success response has a schema that says something (a
component, an array of components, typed text or binary) rather than an untyped object or nothing;
its description names the roles allowed (and ``x-roles`` lists them); an operation taking a body
carries at least one example of it. The schema is what clients generate code from and what the fuzz
walk (tests/test_api_fuzz.py) validates every answer against.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app import Instance, create_app
from operators import Role
from tests.totp_support import token_body

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
ROLE_NAMES = {role.value for role in Role}


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from app import Settings

    home = tmp_path_factory.mktemp("schema-home")
    instance, _ = Instance.init(Settings(home=home / "home", database_url=None))
    try:
        return create_app(instance=instance).openapi()
    finally:
        instance.close()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def is_typed(spec: dict[str, Any], schema: dict[str, Any] | None) -> bool:
    """A schema that says what comes back: not empty, not ``{}``-like, not a bare object."""
    if not schema:
        return False
    schema = resolve(spec, schema)
    for union in ("anyOf", "oneOf", "allOf"):
        if union in schema:
            return all(is_typed(spec, part) for part in schema[union] if part.get("type") != "null")
    kind = schema.get("type")
    if kind == "array":
        return is_typed(spec, schema.get("items"))
    if kind == "object" or kind is None:
        return bool(schema.get("properties"))
    return kind in ("string", "integer", "number", "boolean")


def success_responses(operation: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(code, response) for code, response in operation["responses"].items() if code.startswith("2")]


def test_the_walk_sees_every_route(spec: dict[str, Any]) -> None:
    """A floor on what is walked, so an empty or truncated schema cannot pass the tests below."""
    found = operations(spec)
    assert len(found) >= 60
    assert {("POST", "/auth/token"), ("GET", "/jobs/{job_id}"), ("GET", "/ledger/verify")} <= {
        (m, p) for m, p, _ in found
    }


def test_every_operation_has_a_typed_success_response(spec: dict[str, Any]) -> None:
    untyped = []
    for method, path, operation in operations(spec):
        responses = success_responses(operation)
        if not responses:
            untyped.append(f"{method} {path}: no 2xx response")
        for code, response in responses:
            content = response.get("content") or {}
            if not content or not all(is_typed(spec, media.get("schema")) for media in content.values()):
                untyped.append(f"{method} {path} {code}: {content}")
    assert not untyped, "\n".join(untyped)


def test_every_operation_names_its_roles(spec: dict[str, Any]) -> None:
    missing = []
    for method, path, operation in operations(spec):
        roles = operation.get("x-roles")
        description = operation.get("description", "")
        if roles is None or "**Roles allowed:**" not in description:
            missing.append(f"{method} {path}")
            continue
        assert set(roles) <= ROLE_NAMES, (path, roles)
        named = description.split("**Roles allowed:**", 1)[1]
        if roles:
            assert all(role in named for role in roles), (path, named)
        else:
            assert "anyone" in named, (path, named)
    assert not missing, missing


def test_roles_documented_match_the_guards(spec: dict[str, Any]) -> None:
    """Spot checks against DESIGN.md's roles: what the description says is what the guard admits."""
    by_route = {(m, p): set(op["x-roles"]) for m, p, op in operations(spec)}
    assert by_route[("POST", "/auth/token")] == set()
    assert by_route[("POST", "/jobs")] == {"operator"}
    assert by_route[("POST", "/releases/{release_id}/votes")] == {"agency"}
    assert by_route[("GET", "/ledger/verify")] == {"regulator"}
    assert by_route[("POST", "/datasets/{name}/ingest")] == {"custodian"}


def body_examples(spec: dict[str, Any], body: dict[str, Any]) -> list[Any]:
    found: list[Any] = []
    for media in (body.get("content") or {}).values():
        if "example" in media:
            found.append(media["example"])
        found.extend((media.get("examples") or {}).values())
        schema = media.get("schema") or {}
        resolved = resolve(spec, schema)
        found.extend(resolved.get("examples") or [])
        if "example" in resolved:
            found.append(resolved["example"])
        # An embedded single field (``Body(embed=True)``) carries its example on the property.
        for prop in (resolved.get("properties") or {}).values():
            found.extend(resolve(spec, prop).get("examples") or [])
    return found


def test_every_body_has_an_example(spec: dict[str, Any]) -> None:
    missing = [
        f"{method} {path}"
        for method, path, operation in operations(spec)
        if "requestBody" in operation and not body_examples(spec, operation["requestBody"])
    ]
    assert not missing, missing


def test_response_models_keep_the_contract_keys(initialised: tuple[Instance, dict[str, str]]) -> None:
    """Typed responses pass every key the domain writes, and add none (DESIGN.md's JSON keys)."""
    instance, keys = initialised
    client = TestClient(create_app(instance=instance))
    token = client.post("/auth/token", json=token_body(keys["regulator"], client)).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    verify = client.get("/ledger/verify", headers=headers)
    assert verify.status_code == 200
    assert set(verify.json()) == set(instance.ledger.verify().as_json())
    entry = client.get("/ledger/entries/1", headers=headers).json()
    assert set(entry) == set(instance.ledger.get(1).as_json())
    health = client.get("/healthz").json()
    assert {"status", "database", "instance", "workers"} <= set(health)


def test_every_json_answer_has_an_example(spec: dict[str, Any]) -> None:
    missing = []
    for method, path, operation in operations(spec):
        for code, response in success_responses(operation):
            for media_type, media in (response.get("content") or {}).items():
                if media_type != "application/json" or "example" in media or media.get("examples"):
                    continue
                schema = media.get("schema") or {}
                parts = schema.get("anyOf") or [schema.get("items", schema)]
                if not all(resolve(spec, part).get("examples") for part in parts):
                    missing.append(f"{method} {path} {code}")
    assert not missing, missing


def test_every_example_fits_its_schema(spec: dict[str, Any]) -> None:
    """An example a client copies is one the API accepts (requests) or could answer (responses)."""
    from jsonschema_rs import Draft202012Validator  # schemathesis' own validator

    checked, wrong = 0, []
    for name, component in spec["components"]["schemas"].items():
        validator = Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": spec["components"]})
        for example in component.get("examples") or []:
            checked += 1
            errors = [e.message for e in validator.iter_errors(example)]
            if errors:
                wrong.append(f"{name}: {errors[:3]}")
    assert checked >= 40 and not wrong, wrong
