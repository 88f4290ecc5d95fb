"""The ledger published to the instance's storage, and a published ledger opened from a storage URL.

Why (issue 19, DESIGN.md Scale-out): a regulator verifies the log with read access to the bucket's
``ledger/`` prefix and the public key, without an account on the database. The checkpoint signer
publishes each checkpoint as it is signed (the server's checkpoint loop, ``keyong ledger checkpoint``)
and ``keyong ledger publish`` catches up; the bytes are a pure function of the ledger rows, so a
second publisher (another API node, an operator re-running the command) only finds them there.
The layout and its verification are the ledger's own (:mod:`ledger.published`); this module only
composes the instance's database and storage with it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import core
from app.instance import Instance
from core import Storage
from ledger import EXPORTS_PREFIX, LedgerPublisher, PublishResult

__all__ = [
    "PublicationLoop",
    "export_to_storage",
    "publish",
    "publisher",
    "storage_for_url",
]


def publisher(instance: Instance) -> LedgerPublisher:
    return LedgerPublisher(instance.engine, instance.storage)


def publish(instance: Instance, *, recheck: bool = False) -> PublishResult:
    """Publish every checkpoint, its entries and cosignatures not yet in the storage (idempotent)."""
    return publisher(instance).publish(recheck=recheck)


class PublicationLoop:
    """Publishes when a checkpoint or a cosignature was added since the last successful publication.

    One database query per tick when nothing changed, so the server's checkpoint loop can call it
    every few seconds; a failure (storage down, :class:`ledger.PublishConflictError`) is raised each
    tick until it is fixed, never remembered as done. Except one: an API node without the ``signer``
    storage role is refused on ``ledger/`` (red team 19, B3: only the designated signer writes there);
    it logs that once and leaves publication to the signer.
    """

    def __init__(self, instance: Instance) -> None:
        self._publisher = publisher(instance)
        self._seen: tuple[int, int] | None = None
        self._told = False

    def tick(self) -> PublishResult | None:
        state = self._publisher.state()
        if state == self._seen:
            return None
        try:
            result = self._publisher.publish()
        except core.StorageAccessDeniedError:
            if not self._told:
                self._told = True
                logging.getLogger("keyong.ledger").warning(
                    "this node's storage credentials may not write ledger/: publication is left to the signer "
                    "node (docs/operations.md 12.3); give the signer the signer role's credentials"
                )
            self._seen = state
            return None
        self._seen = state
        return result


def storage_for_url(url: str, *, endpoint: str | None = None) -> Storage:
    """A storage to *read* a published ledger from, with no instance (:func:`core.storage_for_url`).

    S3 credentials come from the environment (``KEYONG_STORAGE_ACCESS_KEY_ID`` /
    ``KEYONG_STORAGE_SECRET_ACCESS_KEY``, else ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``), never
    from the command line, where other users of the machine could read them.
    """
    env = os.environ
    return core.storage_for_url(
        url,
        endpoint_url=endpoint or env.get("KEYONG_STORAGE_ENDPOINT_URL"),
        key_id=env.get("KEYONG_STORAGE_ACCESS_KEY_ID") or env.get("AWS_ACCESS_KEY_ID"),
        secret=env.get("KEYONG_STORAGE_SECRET_ACCESS_KEY") or env.get("AWS_SECRET_ACCESS_KEY"),
        region=env.get("KEYONG_STORAGE_REGION") or env.get("AWS_REGION"),
    )


def export_to_storage(instance: Instance) -> dict[str, Any]:
    """``keyong ledger export --to-storage``: the export file as a new object under ``ledger/exports/``.

    Written to a private temporary file first, then put create-only under a key naming the time
    and the tree size, so two exports never collide and none is ever replaced.
    """
    storage = instance.storage
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    with tempfile.TemporaryDirectory(prefix="keyong-export-") as scratch:
        path = Path(scratch) / "export.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            count, checkpoints = instance.ledger.export(handle)
        key = f"{EXPORTS_PREFIX}/{stamp}-{count}.jsonl"
        stored = storage.put(key, path)
    return {
        "key": key,
        "storage": storage.url,
        "sha256": stored.sha256,
        "bytes": stored.size,
        "entries": count,
        "checkpoints": checkpoints,
        "public_key": instance.ledger.public_key_hex,
    }
