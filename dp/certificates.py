"""Platform signatures on DP results and model certificates (issue 8).

Why: a dp-query answer or a dp-train model is releasable only because the *platform* ran the
mechanism and kept the accounts; an operator's own Python job could write a file that looks the
same. The worker signs what the platform's own programs produced with the instance's Ed25519 key
(the key that signs ledger checkpoints, so a regulator already holds the public half), and the
export guard accepts a model file only with a certificate that verifies under that key, names the
job, and carries the model file's SHA-256 (双鸭山 第五十四条: no raw export, no restoring data through
reversible models). Signing covers the canonical JSON of the whole document except the ``signature`` member.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE = "signature"
ALGORITHM = "ed25519"


class CertificateError(ValueError):
    """A signed document is malformed, signed by another key, or altered after signing."""


def canonical(document: dict[str, Any]) -> bytes:
    """The bytes a signature covers: sorted keys, no whitespace, UTF-8, the signature left out."""
    body = {k: v for k, v in document.items() if k != SIGNATURE}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short name of the key (SHA-256 of its raw bytes, 16 hex), so a reader knows which key to use."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(document: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """``document`` with a ``signature`` member ``{"alg", "key_id", "value"}`` (base64) added."""
    value = key.sign(canonical(document))
    signed = {k: v for k, v in document.items() if k != SIGNATURE}
    signed[SIGNATURE] = {
        "alg": ALGORITHM,
        "key_id": key_id(key.public_key()),
        "value": base64.b64encode(value).decode("ascii"),
    }
    return signed


def verify(document: Any, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """The document if its signature verifies under ``public_key``; else :class:`CertificateError`."""
    if not isinstance(document, dict):
        raise CertificateError("not a JSON object")
    signature = document.get(SIGNATURE)
    if not isinstance(signature, dict) or signature.get("alg") != ALGORITHM:
        raise CertificateError("no platform signature")
    if signature.get("key_id") != key_id(public_key):
        raise CertificateError("signed by another key than this instance's")
    try:
        raw = base64.b64decode(str(signature.get("value", "")), validate=True)
        public_key.verify(raw, canonical(document))
    except (InvalidSignature, ValueError, TypeError):
        raise CertificateError("the signature does not verify: the document was altered or forged") from None
    return document


__all__ = ["ALGORITHM", "SIGNATURE", "CertificateError", "canonical", "key_id", "sign", "verify"]
