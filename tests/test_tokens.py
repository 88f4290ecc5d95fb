"""Every way a JWT must be refused (issue 2): alg none, wrong key, expiry, audience, issuer,
unknown role, missing claims, tampering, algorithm confusion."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from operators import Role, TokenError, TokenService

KEY = b"k" * 64


def service(key: bytes = KEY, **overrides: object) -> TokenService:
    options: dict[str, object] = {"issuer": "keyong", "audience": "keyong-api", "ttl": timedelta(minutes=15)}
    options.update(overrides)
    return TokenService(key, **options)  # type: ignore[arg-type]


def claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": "demo-agency",
        "role": "agency",
        "iss": "keyong",
        "aud": "keyong-api",
        "iat": now,
        "exp": now + 600,
        "jti": "abc123",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_round_trip() -> None:
    issued = service().issue("demo-agency", Role.AGENCY)
    verified = service().verify(issued.token)
    assert verified.sub == "demo-agency"
    assert verified.role is Role.AGENCY
    assert verified.jti == issued.claims.jti
    assert verified.expires_at - verified.issued_at == timedelta(minutes=15)
    header = json.loads(base64.urlsafe_b64decode(issued.token.split(".")[0] + "=="))
    assert header["alg"] == "HS256"


def test_each_token_gets_a_fresh_jti() -> None:
    tokens = service()
    assert tokens.issue("a-b-c", Role.OPERATOR).claims.jti != tokens.issue("a-b-c", Role.OPERATOR).claims.jti


def test_rejects_alg_none() -> None:
    unsigned = f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{b64(json.dumps(claims()).encode())}."
    with pytest.raises(TokenError, match="algorithm not allowed"):
        service().verify(unsigned)


def test_rejects_alg_none_with_forged_signature_segment() -> None:
    forged = f"{b64(json.dumps({'alg': 'none'}).encode())}.{b64(json.dumps(claims()).encode())}.{b64(b'x' * 32)}"
    with pytest.raises(TokenError):
        service().verify(forged)


def test_rejects_wrong_key() -> None:
    token = jwt.encode(claims(), b"w" * 64, algorithm="HS256")
    with pytest.raises(TokenError, match="signature"):
        service().verify(token)


def test_rejects_other_hmac_algorithm_even_with_right_key() -> None:
    token = jwt.encode(claims(), KEY, algorithm="HS512")
    with pytest.raises(TokenError, match="algorithm not allowed"):
        service().verify(token)


def test_rejects_asymmetric_token() -> None:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    token = jwt.encode(claims(), pem, algorithm="EdDSA")
    with pytest.raises(TokenError, match="algorithm not allowed"):
        service().verify(token)


def test_rejects_expired() -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    token = service().issue("demo-agency", Role.AGENCY, now=past).token
    with pytest.raises(TokenError, match="expired"):
        service().verify(token)


def test_rejects_wrong_audience() -> None:
    token = service(audience="someone-else").issue("demo-agency", Role.AGENCY).token
    with pytest.raises(TokenError, match="audience"):
        service().verify(token)


def test_rejects_wrong_issuer() -> None:
    token = service(issuer="evil").issue("demo-agency", Role.AGENCY).token
    with pytest.raises(TokenError, match="issuer"):
        service().verify(token)


@pytest.mark.parametrize("role", ["admin", "root", "Agency", "", 3, None])
def test_rejects_unknown_role(role: object) -> None:
    payload = claims()
    payload["role"] = role
    token = jwt.encode(payload, KEY, algorithm="HS256")
    with pytest.raises(TokenError, match="role"):
        service().verify(token)


@pytest.mark.parametrize("missing", ["sub", "role", "iss", "aud", "exp", "iat", "jti"])
def test_rejects_missing_claim(missing: str) -> None:
    payload = claims()
    del payload[missing]
    token = jwt.encode(payload, KEY, algorithm="HS256")
    with pytest.raises(TokenError):
        service().verify(token)


def test_rejects_tampered_payload() -> None:
    header, _, signature = service().issue("demo-operator", Role.OPERATOR).token.split(".")
    elevated = b64(json.dumps(claims(sub="demo-operator", role="regulator")).encode())
    with pytest.raises(TokenError, match="signature"):
        service().verify(f"{header}.{elevated}.{signature}")


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "ky_0000000000000000_" + "a" * 43, "Bearer x.y.z"])
def test_rejects_garbage(garbage: str) -> None:
    with pytest.raises(TokenError):
        service().verify(garbage)


def test_refuses_short_signing_key() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        service(key=b"short")
