"""Which role's storage credentials may touch which prefix, as object-store policy (issue 19).

Why: a worker on another host runs operators' code next to the copies it was granted; if its
credentials could read ``vault/`` (the raw, identifying data) or ``secrets/``, one escaped job would
reach everything. So each process holds credentials of its role, and the object store itself
refuses the rest (defence in depth under the sandbox; SATRE 3.2 on least privilege). The roles:

* ``ingest`` — ingest, desensitization, retention purges and the sweeper (host tasks): everything
  but writing ``ledger/``, and the only role that may read or write ``vault/`` and ``secrets/``;
* ``server`` — API nodes: everything but ``vault/`` and ``secrets/``, and only *reads* ``ledger/``;
* ``signer`` — the one API node that signs checkpoints (it stays single, docs/operations.md §12.4):
  the server's reach, and the only role that writes ``ledger/``; it never deletes there;
* ``worker`` — reads granted copies, fingerprints and licence copies; writes job outputs under
  ``work/`` and never deletes; nothing else (no products, no ledger, no vault, no secrets);
* ``regulator`` — reads the published ledger (``ledger/``) and nothing else.

Create-only in the store itself (red team 19, B2/B3). On AWS the policies deny ``s3:PutObject``
unless the request carries ``If-None-Match: *`` (condition key ``s3:if-none-match``) for the worker
and the signer, and grant them no ``s3:DeleteObject``: an object they wrote cannot be replaced or
removed with their keys. SeaweedFS 4.48 can say less (measured): an identity's ``Write`` covers put
*and* delete, and its bucket-policy engine does not evaluate ``s3:if-none-match`` (a ``Null``
condition on it matches every put, so it would refuse creates too). So :func:`seaweedfs_bucket_policy`
denies ``s3:DeleteObject`` to the worker on ``work/`` and to every role on ``ledger/``, and an
*overwrite* by a holder of the worker or signer key is not refused by SeaweedFS: it is caught
where the object is used (every output, artifact and copy is checked against the SHA-256 the
database recorded; a rewritten checkpoint fails its signature, a rollback fails ``--state``).

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
    "seaweedfs_bucket_policy",
    "seaweedfs_identities",
]

#: The top-level key prefixes of an instance's storage (the home's directories of the same names).
PREFIXES = ("vault", "secrets", "copies", "fingerprints", "licence-copies", "work", "products", "ledger")
ROLES = ("server", "signer", "ingest", "worker", "regulator")
#: SeaweedFS names an identity in a bucket policy as ``arn:aws:iam::<account>:user/<name>``; its default
#: account (measured on 4.48).
SEAWEEDFS_ACCOUNT = "000000000000"
#: The roles that may create objects but must never remove them, and where (B2/B3).
CREATE_ONLY = {"worker": ("work",), "signer": ("ledger",)}


@dataclass(frozen=True)
class RoleAccess:
    """Prefixes a role may read (get and list) and write (put, and on SeaweedFS delete)."""

    read: tuple[str, ...]
    write: tuple[str, ...]


_ALL_BUT_RAW = tuple(p for p in PREFIXES if p not in ("vault", "secrets"))
ROLE_ACCESS: Mapping[str, RoleAccess] = {
    "ingest": RoleAccess(read=PREFIXES, write=tuple(p for p in PREFIXES if p != "ledger")),
    "server": RoleAccess(read=_ALL_BUT_RAW, write=tuple(p for p in _ALL_BUT_RAW if p != "ledger")),
    "signer": RoleAccess(read=_ALL_BUT_RAW, write=_ALL_BUT_RAW),
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


def seaweedfs_bucket_policy(bucket: str, prefix: str, *, account: str = SEAWEEDFS_ACCOUNT) -> dict[str, Any]:
    """The bucket policy (``PutBucketPolicy``) that takes delete out of SeaweedFS's ``Write`` where a role must
    never remove objects: the worker on ``work/``, every Keyong role on ``ledger/`` (red team 19, B2/B3)."""

    def principals(roles: tuple[str, ...]) -> dict[str, list[str]]:
        return {"AWS": [f"arn:aws:iam::{account}:user/keyong-{role}" for role in roles]}

    statements = [
        {
            "Sid": "WorkersNeverDelete",
            "Effect": "Deny",
            "Principal": principals(("worker",)),
            "Action": ["s3:DeleteObject"],
            "Resource": [f"arn:aws:s3:::{_path(bucket, prefix, top)}/*" for top in CREATE_ONLY["worker"]],
        },
        {
            "Sid": "PublishedLedgerNeverDeleted",
            "Effect": "Deny",
            "Principal": principals(ROLES),
            "Action": ["s3:DeleteObject"],
            "Resource": [f"arn:aws:s3:::{_path(bucket, prefix, 'ledger')}/*"],
        },
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def _identity(name: str, creds: S3Credentials, actions: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "credentials": [{"accessKey": creds.key_id, "secretKey": creds.secret}],
        "actions": actions,
    }


def aws_policies(bucket: str, prefix: str) -> dict[str, dict[str, Any]]:
    """An AWS IAM policy document per role with the same reach as :func:`seaweedfs_identities`.

    The worker and the signer get ``PutObject`` without ``DeleteObject``, and a deny on any put without
    ``If-None-Match: *`` (``s3:if-none-match``): their keys can create objects, never replace or erase them.
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
            if role in CREATE_ONLY:  # create-only enforced by S3 itself, not only by our client's header
                statements.append(
                    {
                        "Sid": "CreateOnly",
                        "Effect": "Deny",
                        "Action": ["s3:PutObject"],
                        "Resource": objects,
                        # UploadPart carries no If-None-Match: only object-creating requests (PutObject,
                        # CopyObject, CompleteMultipartUpload) are held to it (AWS: s3:ObjectCreationOperation)
                        "Condition": {
                            "Null": {"s3:if-none-match": "true"},
                            "Bool": {"s3:ObjectCreationOperation": "true"},
                        },
                    }
                )
        policies[role] = {"Version": "2012-10-17", "Statement": statements}
    return policies
