"""Rotating the instance's own keys (SATRE 2.4.05: a replaced or rebuilt TRE does not carry the old
system's secrets for ever): the JWT HMAC key and the ledger's Ed25519 signing key.

Both rotations are ledgered with key ids and public halves only, never key material:

- JWT: the current key becomes the previous one (accepted for one token lifetime, for tokens it
  issued before it retired: ``operators.JwtKeyring``); running servers pick the new key up at their
  next token (``app.keys.JwtRingFiles``); console sessions, signed with the key loaded at start,
  end when the server restarts.
- Ledger: the new key is written beside the current one, the ledger records the handover
  (``ledger.Ledger.rotate_key``: a rotation entry checkpointed by the old key, an activation entry
  checkpointed by the new one), then the new key is renamed into place, destroying the old private
  key. A crash between the two is completed at the next start (``Instance.open``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.instance import Instance
from app.keys import finish_ledger_rotation, load_keys, new_ledger_key, rotate_jwt_secret
from operators import host_actor, jwt_key_id

__all__ = ["rotate_jwt", "rotate_ledger"]


def rotate_jwt(instance: Instance, *, now: datetime | None = None) -> dict[str, Any]:
    """Make a new JWT signing key; the retired one verifies its own tokens until they have expired."""
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    before, after = rotate_jwt_secret(instance.home, moment)
    grace_until = moment + timedelta(seconds=instance.settings.token_ttl_seconds)
    result: dict[str, Any] = {
        "key": "jwt",
        "previous_kid": jwt_key_id(before.current),
        "kid": jwt_key_id(after.current),
        "retired_at": moment.isoformat(),
        "grace_until": grace_until.isoformat(),
    }
    actor, role = host_actor()
    instance.ledger.append(
        actor=actor, role=role, action="keys.jwt_rotated", subject=f"jwt-key:{result['kid']}", payload=result
    )
    return result


def rotate_ledger(instance: Instance) -> dict[str, Any]:
    """Hand the ledger's signing over to a new Ed25519 key; old checkpoints stay verifiable by the old public key."""
    ledger = instance.ledger
    new_key = new_ledger_key(instance.home)
    previous_hex = ledger.public_key_hex
    actor, role = host_actor()
    rotation, activation = ledger.rotate_key(new_key, actor=actor, role=role)
    finish_ledger_rotation(instance.home, ledger.public_key_hex)
    instance.keys = load_keys(instance.home)
    return {
        "key": "ledger",
        "previous_key_id": rotation.payload["previous_key_id"],
        "previous_public_key": previous_hex,
        "key_id": rotation.payload["key_id"],
        "public_key": ledger.public_key_hex,
        "rotation_seq": rotation.seq,
        "activation_seq": activation.seq,
    }
