"""Which role's storage credentials may touch which prefix, as object-store policy (issue 19).

Why: a worker on another host runs operators' code next to the copies it was granted; if its
credentials could read ``vault/`` (the raw, identifying data) or ``secrets/``, one escaped job would
reach everything. So each process holds credentials of its role, and the object store itself
refuses the rest (defence in depth under the sandbox; SATRE 3.2 on least privilege). The roles:

* ``ingest`` — ingest, desensitization, retention purges and the sweeper (host tasks): everything,
  and the only role that may read or write ``vault/`` and ``secrets/``;
* ``server`` — API nodes and the checkpoint signer: everything but ``vault/`` and ``secrets/``;
* ``worker`` — reads granted copies, fingerprints and licence copies; writes job outputs under
  ``work/``; nothing else (no products, no ledger, no vault, no secrets);
* ``regulator`` — reads the published ledger (``ledger/``) and nothing else.

Rendered two ways from one table: SeaweedFS's ``-s3.config`` identities (actions
``Read|Write|List:bucket/path*``; 4.48 matches a trailing ``*`` as a prefix, and checks ``List``
against the request's ``prefix`` parameter) and AWS IAM policy documents with the same reach.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.storage_s3 import S3Credentials

__all__ = [
    "PREFIXES",
    "ROLES",
    "ROLE_ACCESS",
    "RoleAccess",
    "aws_policies",
    "new_credentials",
    "seaweedfs_identities",
]

#: The top-level key prefixes of an instance's storage (the home's directories of the same names).
PREFIXES = ("vault", "secrets", "copies", "fingerprints", "licence-copies", "work", "products", "ledger")
ROLES = ("server", "ingest", "worker", "regulator")


@dataclass(frozen=True)
class RoleAccess:
    """Prefixes a role may read (get and list) and write (put, and on SeaweedFS delete)."""

    read: tuple[str, ...]
    write: tuple[str, ...]


_ALL_BUT_RAW = tuple(p for p in PREFIXES if p not in ("vault", "secrets"))
ROLE_ACCESS: Mapping[str, RoleAccess] = {
    "ingest": RoleAccess(read=PREFIXES, write=PREFIXES),
    "server": RoleAccess(read=_ALL_BUT_RAW, write=_ALL_BUT_RAW),
    "worker": RoleAccess(read=("copies", "fingerprints", "licence-copies", "work"), write=("work",)),
    "regulator": RoleAccess(read=("ledger",), write=()),
}


def _path(bucket: str, prefix: str, top: str) -> str:
    return f"{bucket}/{prefix}/{top}" if prefix else f"{bucket}/{top}"


def new_credentials(role: str) -> S3Credentials:
    """A fresh random access key for ``role`` (the id names the role, for the server's logs)."""
    return S3Credentials(f"keyong-{role}-{secrets.token_hex(6)}", secrets.token_urlsafe(30))


def seaweedfs_identities(
    bucket: str, prefix: str, credentials: Mapping[str, S3Credentials], *, admin: S3Credentials | None = None
) -> dict[str, Any]:
    """SeaweedFS ``-s3.config`` JSON: one identity per role in ``credentials``.

    ``admin`` adds an identity with every right on every bucket (tests create buckets with it; an
    operations team keeps it off the hosts that run Keyong).
    """
    identities: list[dict[str, Any]] = []
    if admin is not None:
        identities.append(_identity("admin", admin, ["Admin", "Read", "Write", "List", "Tagging"]))
    for role, creds in credentials.items():
        access = ROLE_ACCESS[role]
        actions = [f"Read:{_path(bucket, prefix, top)}/*" for top in access.read]
        actions += [f"List:{_path(bucket, prefix, top)}/*" for top in access.read]
        actions += [f"Write:{_path(bucket, prefix, top)}/*" for top in access.write]
        identities.append(_identity(f"keyong-{role}", creds, actions))
    return {"identities": identities}


def _identity(name: str, creds: S3Credentials, actions: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "credentials": [{"accessKey": creds.key_id, "secretKey": creds.secret}],
        "actions": actions,
    }


def aws_policies(bucket: str, prefix: str) -> dict[str, dict[str, Any]]:
    """An AWS IAM policy document per role with the same reach as :func:`seaweedfs_identities`.

    Workers get ``PutObject`` without ``DeleteObject`` on ``work/`` (stricter than SeaweedFS, whose
    ``Write`` includes deletes): a job's code cannot erase another job's outputs.
    """
    policies: dict[str, dict[str, Any]] = {}
    for role in ROLES:
        access = ROLE_ACCESS[role]
        statements: list[dict[str, Any]] = []
        if access.read:
            objects = [f"arn:aws:s3:::{_path(bucket, prefix, top)}/*" for top in access.read]
            listed = [f"{_path('', prefix, top).lstrip('/')}/*" for top in access.read]
            statements.append({"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": objects})
            statements.append(
                {
                    "Sid": "List",
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket"],
                    "Resource": [f"arn:aws:s3:::{bucket}"],
                    "Condition": {"StringLike": {"s3:prefix": listed}},
                }
            )
        if access.write:
            actions = ["s3:PutObject", "s3:AbortMultipartUpload"]
            if role in ("ingest", "server"):  # retention purges and the sweeper delete; workers never do
                actions.append("s3:DeleteObject")
            objects = [f"arn:aws:s3:::{_path(bucket, prefix, top)}/*" for top in access.write]
            statements.append({"Sid": "Write", "Effect": "Allow", "Action": actions, "Resource": objects})
        policies[role] = {"Version": "2012-10-17", "Statement": statements}
    return policies
