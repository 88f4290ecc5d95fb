"""Rotation of the instance's own keys (issue 22, SATRE 2.4.05): the JWT secret and the ledger's
signing key. A token of the old key lives out its TTL and no longer; a retired key mints nothing;
a forged key id is refused; the ledger verifies across a rotation with any one trusted key, refuses
a checkpoint signed by an unknown key and still names tampering."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import create_engine
from typer.testing import CliRunner

from app import Instance, Settings
from app.cli import cli
from app.keys import LEDGER_NEXT, SECRETS_DIR, load_jwt_ring
from app.rotation import rotate_jwt, rotate_ledger
from ledger import Ledger, Record, metadata, public_key_hex
from ledger.verify import check_inclusion_proof, verify_export
from ledger.verify import main as verify_main
from operators import AuthenticationError, JwtKeyring, Role, SigningKey, TokenError, TokenService, jwt_key_id
from tests.ledger_support import tamper
from tests.totp_support import code_for

OLD, NEW = b"o" * 64, b"n" * 64
TTL = timedelta(minutes=15)


def service(ring: JwtKeyring) -> TokenService:
    return TokenService(lambda: ring, issuer="keyong", audience="keyong-api", ttl=TTL)


def forged(secret: bytes, kid: str | None, *, iat: datetime) -> str:
    claims = {
        "sub": "demo-agency",
        "role": "agency",
        "iss": "keyong",
        "aud": "keyong-api",
        "iat": int(iat.timestamp()),
        "exp": int((iat + TTL).timestamp()),
        "jti": "j" * 32,
    }
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": kid} if kid else None)


# --- JWT ----------------------------------------------------------------------------------------


def test_a_token_of_the_previous_key_works_until_the_grace_ends() -> None:
    issued = service(JwtKeyring(SigningKey(OLD))).issue("demo-agency", Role.AGENCY)
    assert jwt.get_unverified_header(issued.token)["kid"] == jwt_key_id(OLD)
    just_rotated = JwtKeyring(SigningKey(NEW), SigningKey(OLD, datetime.now(UTC)))
    assert service(just_rotated).verify(issued.token).sub == "demo-agency"
    assert jwt.get_unverified_header(service(just_rotated).issue("x-y", Role.AGENCY).token)["kid"] == jwt_key_id(NEW)
    grace_over = JwtKeyring(SigningKey(NEW), SigningKey(OLD, datetime.now(UTC) - TTL - timedelta(minutes=1)))
    with pytest.raises(TokenError, match="retired key"):
        service(grace_over).verify(issued.token)
    # two rotations later the key is not even known
    with pytest.raises(TokenError, match="unknown signing key"):
        service(JwtKeyring(SigningKey(b"t" * 64), SigningKey(NEW, datetime.now(UTC)))).verify(issued.token)


def test_a_retired_key_mints_nothing_even_within_the_grace() -> None:
    retired_at = datetime.now(UTC) - timedelta(minutes=5)
    ring = JwtKeyring(SigningKey(NEW), SigningKey(OLD, retired_at))
    stolen = forged(OLD, jwt_key_id(OLD), iat=datetime.now(UTC))  # made with the old key after it retired
    with pytest.raises(TokenError, match="retired key"):
        service(ring).verify(stolen)
    before = forged(OLD, jwt_key_id(OLD), iat=retired_at - timedelta(minutes=1))
    assert service(ring).verify(before).role is Role.AGENCY


def test_a_forged_kid_is_refused() -> None:
    ring = JwtKeyring(SigningKey(NEW), SigningKey(OLD, datetime.now(UTC)))
    now = datetime.now(UTC)
    with pytest.raises(TokenError, match="unknown signing key"):
        service(ring).verify(forged(NEW, "0" * 16, iat=now))
    with pytest.raises(TokenError, match="unknown signing key"):
        service(ring).verify(forged(b"a" * 64, jwt_key_id(b"a" * 64), iat=now))
    # naming the previous key while signed with another: the signature is checked with the named key
    with pytest.raises(TokenError, match="signature"):
        service(ring).verify(forged(NEW, jwt_key_id(OLD), iat=now))
    # no kid: only the current key is tried
    with pytest.raises(TokenError, match="signature"):
        service(ring).verify(forged(OLD, None, iat=now - timedelta(minutes=1)))


@pytest.fixture
def home(tmp_path: Path) -> Iterator[tuple[Instance, dict[str, str]]]:
    instance, result = Instance.init(Settings(home=tmp_path / "home"))
    try:
        yield instance, result.tokens
    finally:
        instance.close()


def test_jwt_rotation_of_an_instance_is_ledgered_and_keeps_live_tokens(home: tuple[Instance, dict[str, str]]) -> None:
    instance, keys = home
    two_minutes_ago = datetime.now(UTC) - timedelta(minutes=2)
    api_key_id = keys["operator"].split("_")[1]
    before = instance.identity.tokens.issue(
        "demo-operator", Role.OPERATOR, key_id=api_key_id, now=two_minutes_ago
    ).token
    old_secret = load_jwt_ring(instance.home).current
    rotated = rotate_jwt(instance, now=datetime.now(UTC) - timedelta(minutes=1))  # retired a minute ago
    ring = load_jwt_ring(instance.home)
    assert ring.previous == old_secret and ring.current != old_secret
    assert (instance.home / SECRETS_DIR / "jwt_previous.key").stat().st_mode & 0o077 == 0
    # the same running service sees the new key without a restart, and still accepts the old token
    assert instance.identity.authenticate_token(before).name == "demo-operator"
    after = instance.identity.exchange(keys["operator"], code_for(keys["operator"])).token
    assert jwt.get_unverified_header(after)["kid"] == rotated["kid"] != rotated["previous_kid"]
    assert instance.identity.authenticate_token(after).name == "demo-operator"
    forged_after = jwt.encode(
        {**jwt.decode(after, options={"verify_signature": False})}, old_secret, headers={"kid": rotated["previous_kid"]}
    )
    with pytest.raises(AuthenticationError, match="retired key"):
        instance.identity.authenticate_token(forged_after)
    entry = instance.ledger.entries(action="keys.jwt_rotated")[-1]
    assert entry.payload["kid"] == rotated["kid"]
    assert old_secret.hex() not in json.dumps(entry.payload) and ring.current.hex() not in json.dumps(entry.payload)
    assert instance.ledger.verify().ok


# --- ledger -------------------------------------------------------------------------------------


def fill(ledger: Ledger, n: int, start: int = 0) -> None:
    ledger.append_many(Record("op", "operator", "job.submitted", f"job:{i}", {"i": i}) for i in range(start, start + n))


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    metadata.create_all(engine)
    yield Ledger(engine, Ed25519PrivateKey.generate(), origin="keyong.test/rotation", checkpoint_every=4)
    engine.dispose()


def both(ledger: Ledger, keys: list[object]) -> list[tuple[int | None, str]]:
    from ledger import LedgerVerifier

    verifier = LedgerVerifier(ledger._engine, keys)  # type: ignore[arg-type]
    fast, reference = verifier.verify(), verifier.verify(reference=True)
    assert fast.as_json() == reference.as_json()
    return [(p.seq, p.kind) for p in reference.problems]


def test_verify_passes_across_a_rotation_with_any_one_key(ledger: Ledger, tmp_path: Path) -> None:
    fill(ledger, 10)
    old_public = ledger.public_key
    rotation, activation = ledger.rotate_key(Ed25519PrivateKey.generate(), actor="host:root", role="host")
    fill(ledger, 10, 10)
    ledger.checkpoint()
    new_public = ledger.public_key
    assert rotation.payload["previous_public_key"] == public_key_hex(old_public)
    assert rotation.payload["public_key"] == public_key_hex(new_public)
    assert "private" not in json.dumps(rotation.payload).lower()
    schedule = ledger.key_schedule()
    assert [p.public_key for p in schedule.periods] == [public_key_hex(old_public), public_key_hex(new_public)]
    assert schedule.periods[0].until_size == rotation.seq and activation.seq == rotation.seq + 1
    for keys in ([old_public], [new_public], [old_public, new_public]):
        assert both(ledger, keys) == []
    assert ledger.verify().ok
    # a verifier that trusts neither key is not fooled by the chain of rotations
    assert (None, "checkpoint_key") in both(ledger, [Ed25519PrivateKey.generate().public_key()])
    # the standalone verifier, over an export, with either key
    export = tmp_path / "export.jsonl"
    with export.open("w", encoding="utf-8") as out:
        ledger.export(out)
    assert verify_export(export, old_public).ok and verify_export(export, new_public).ok
    assert verify_main([str(export), "--public-key", public_key_hex(new_public)]) == 0
    proof = ledger.prove(3).as_json()  # against the latest checkpoint: the new key's
    assert check_inclusion_proof(proof, [old_public, new_public]) and not check_inclusion_proof(proof, old_public)


def test_a_checkpoint_signed_by_an_unknown_key_fails(ledger: Ledger, tmp_path: Path) -> None:
    fill(ledger, 6)
    ledger.rotate_key(Ed25519PrivateKey.generate(), actor="host:root", role="host")
    fill(ledger, 3, 6)
    trusted = ledger.public_key
    # an impostor (or the retired key, stolen) signs the next checkpoint
    impostor = Ledger(ledger._engine, Ed25519PrivateKey.generate(), origin=ledger.origin)
    impostor._in_office = lambda connection: True  # type: ignore[method-assign]  # the attacker skips the check
    impostor.checkpoint()
    assert (None, "checkpoint_key") in both(ledger, [trusted])
    export = tmp_path / "export.jsonl"
    with export.open("w", encoding="utf-8") as out:
        ledger.export(out)
    assert not verify_export(export, trusted).ok


def test_a_retired_key_signs_nothing_more(ledger: Ledger) -> None:
    fill(ledger, 5)
    stale = Ledger(ledger._engine, ledger._key, origin=ledger.origin, checkpoint_every=4)  # another process
    ledger.rotate_key(Ed25519PrivateKey.generate(), actor="host:root", role="host")
    fill(stale, 9, 5)  # its appends stand, its due checkpoints are not signed
    from ledger import LedgerError

    with pytest.raises(LedgerError, match="retired"):
        stale.checkpoint()
    ledger.checkpoint()
    assert both(ledger, [ledger.public_key]) == []
    reloaded = Ledger(ledger._engine, stale._key, origin=ledger.origin, reload_key=lambda: ledger._key)
    fill(reloaded, 1, 14)
    assert reloaded.checkpoint().public_key == ledger.public_key_hex


def test_tampering_is_still_detected_across_a_rotation(ledger: Ledger) -> None:
    fill(ledger, 8)
    rotation, _ = ledger.rotate_key(Ed25519PrivateKey.generate(), actor="host:root", role="host")
    fill(ledger, 8, 8)
    ledger.checkpoint()
    keys = [ledger.public_key]
    assert both(ledger, keys) == []
    # swap the rotation's new key for the attacker's: the entry's hash no longer matches, and the
    # checkpoints after it no longer follow
    attacker = public_key_hex(Ed25519PrivateKey.generate().public_key())
    payload = json.dumps({**rotation.payload, "public_key": attacker}, sort_keys=True, separators=(",", ":"))
    tamper(ledger._engine, f"UPDATE ledger_entries SET payload = '{payload}' WHERE seq = {rotation.seq}")
    found = both(ledger, keys)
    assert (rotation.seq, "hash") in found and (None, "checkpoint_key") in found
    tamper(ledger._engine, "UPDATE ledger_entries SET subject = 'job:x' WHERE seq = 3")
    assert (3, "hash") in both(ledger, keys)


def test_keys_rotate_over_the_cli(home: tuple[Instance, dict[str, str]], tmp_path: Path) -> None:
    instance, _ = home
    runner = CliRunner()
    home_dir = str(instance.home)
    old_public = instance.ledger.public_key_hex
    assert runner.invoke(cli, ["keys", "rotate", "--home", home_dir]).exit_code == 2
    result = runner.invoke(cli, ["keys", "rotate", "--jwt", "--ledger", "--home", home_dir, "--json"])
    assert result.exit_code == 0, result.output
    rotated = {item["key"]: item for item in json.loads(result.stdout)["rotated"]}
    assert rotated["ledger"]["previous_public_key"] == old_public
    assert not (instance.home / SECRETS_DIR / LEDGER_NEXT).exists()
    shown = json.loads(runner.invoke(cli, ["ledger", "public-key", "--home", home_dir, "--json"]).stdout)
    assert shown["public_key"] == rotated["ledger"]["public_key"]
    assert [k["public_key"] for k in shown["keys"]] == [old_public, shown["public_key"]]
    verified = runner.invoke(cli, ["ledger", "verify", "--home", home_dir, "--json"])
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"]
    reopened = Instance.open(Settings(home=instance.home))
    try:
        assert reopened.ledger.public_key_hex == shown["public_key"]
        assert reopened.ledger.verify().ok
    finally:
        reopened.close()


def test_a_rotation_interrupted_before_the_rename_is_finished_at_the_next_start(
    home: tuple[Instance, dict[str, str]],
) -> None:
    instance, _ = home
    import app.rotation as rotation

    real = rotation.finish_ledger_rotation
    rotation.finish_ledger_rotation = lambda home, office: False  # type: ignore[assignment]  # "killed" here
    try:
        done = rotate_ledger(instance)
    finally:
        rotation.finish_ledger_rotation = real  # type: ignore[assignment]
    assert (instance.home / SECRETS_DIR / LEDGER_NEXT).exists()
    reopened = Instance.open(Settings(home=instance.home))
    try:
        assert not (instance.home / SECRETS_DIR / LEDGER_NEXT).exists()
        assert reopened.ledger.public_key_hex == done["public_key"]
        reopened.ledger.append(actor="host:x", role="host", action="test.after", subject="t:1")
        reopened.ledger.checkpoint()
        assert reopened.ledger.verify().ok
    finally:
        reopened.close()
    # a next key the ledger never recorded is deleted, not used
    stray = instance.home / SECRETS_DIR / LEDGER_NEXT
    pem = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    fd = os.open(stray, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, pem)
    os.close(fd)
    again = Instance.open(Settings(home=instance.home))
    try:
        assert not stray.exists() and again.ledger.public_key_hex == done["public_key"]
    finally:
        again.close()
