"""Data keys of files at rest: one per dataset, one per licence, wrapped under the instance's master key.

Why (issue 22, SATRE 2.8.01 "encryption at rest"; 黑龙江省政务数据管理暂行办法 第三十八条 加密;
双鸭山市公共数据管理暂行办法 第六十二条 销毁): desensitized copies, the guard's fingerprints, job
outputs and products are sealed in the vault's framed format (:mod:`registry.vault`, version 2)
under a *data key* named in each file's header. A data key covers one scope:

* ``dataset:NAME`` — the dataset's desensitized copies and fingerprints;
* ``licence:ID`` — the outputs of the licence's jobs (destroyed with the licence's work directory
  when it ends, :mod:`registry.workdirs`);
* ``products:ID`` — the products released under the licence (destroyed when the licence is revoked,
  or explicitly; a product outlives a licence that merely expires).

Data keys are stored in ``data_keys`` wrapped with AES key wrap (RFC 3394) under the master key
(``secrets/data_master.key``, never in the database). Destroying a key clears its wrapped form:
every file it sealed is unreadable from then on, wherever copies of those files lie
(crypto-shredding; the ledger records the key id and its scope, never key material). Rotating the
master re-wraps the live keys (no file is re-encrypted) and the old master is destroyed after.
"""

from __future__ import annotations

import builtins
import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core import Actor, Change, Recorder, RegistryError
from registry.config import RegistryConfig
from registry.models import DataKeyRow
from registry.vault import KEY_ID_BYTES, VaultError

__all__ = ["DataKeyInfo", "DataKeys", "destroy_scope", "master_id"]

KEY_BYTES = 32


def master_id(master: bytes) -> str:
    """A short public name of a master key (a hash, never the key): which master wraps which data key."""
    return hashlib.sha256(b"keyong data master v1\x00" + master).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class DataKeyInfo:
    """A data key as it may be shown: id, scope, dates; never key material."""

    id: str
    scope: str
    master_id: str
    created_at: datetime
    destroyed_at: datetime | None
    destroyed_reason: str | None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "scope": self.scope,
            "master_id": self.master_id,
            "created_at": self.created_at.isoformat(),
            "destroyed_at": self.destroyed_at.isoformat() if self.destroyed_at else None,
            "destroyed_reason": self.destroyed_reason,
        }


def _info(row: DataKeyRow) -> DataKeyInfo:
    return DataKeyInfo(row.id, row.scope, row.master_id, row.created_at, row.destroyed_at, row.destroyed_reason)


def destroy_scope(change: Change, scope: str, *, now: datetime, reason: str, covers: str) -> list[str]:
    """Destroy the live key of ``scope`` inside ``change`` (crypto-shredding what it sealed), ledgered
    as ``datakey.destroyed`` with the key id, its scope and what it covered; never key material."""
    rows = change.session.scalars(select(DataKeyRow).where(DataKeyRow.live_scope == scope)).all()
    for row in rows:
        row.wrapped = None
        row.live_scope = None
        row.destroyed_at = now
        row.destroyed_by = change.actor.name
        row.destroyed_reason = reason
        change.log(
            "datakey.destroyed",
            f"datakey:{row.id}",
            {"scope": scope, "covers": covers, "reason": reason, "master_id": row.master_id},
        )
    change.session.flush()
    return [row.id for row in rows]


class DataKeys:
    """Creates, finds, destroys and re-wraps the data keys (the one owner of the ``data_keys`` table)."""

    def __init__(self, recorder: Recorder, config: RegistryConfig) -> None:
        self.recorder = recorder
        self.config = config

    @property
    def master(self) -> bytes:
        master = self.config.data_master
        if master is None or len(master) != KEY_BYTES:
            raise RegistryError("this instance has no data master key: files at rest cannot be sealed or opened")
        return master

    # --- writing ------------------------------------------------------------------------------

    def for_writing(self, scope: str, *, by: Actor) -> tuple[bytes, bytes]:
        """The live key of ``scope`` (key id, key), made and ledgered if it has none yet."""
        with self.recorder.read() as session:
            row = session.scalars(select(DataKeyRow).where(DataKeyRow.live_scope == scope)).first()
            if row is not None and row.wrapped is not None:
                return bytes.fromhex(row.id), self._unwrap(row)
        try:
            with self.recorder.change(by) as change:
                return self.live_in(change, scope)
        except IntegrityError:  # another process made the scope's key at the same moment: use that one
            with self.recorder.read() as session:
                row = session.scalars(select(DataKeyRow).where(DataKeyRow.live_scope == scope)).one()
                return bytes.fromhex(row.id), self._unwrap(row)

    def live_in(self, change: Change, scope: str) -> tuple[bytes, bytes]:
        """The live key of ``scope`` inside ``change``, made (and logged) there if it has none."""
        row = change.session.scalars(select(DataKeyRow).where(DataKeyRow.live_scope == scope)).first()
        if row is not None and row.wrapped is not None:
            return bytes.fromhex(row.id), self._unwrap(row)
        key_id, key = secrets.token_bytes(KEY_ID_BYTES), secrets.token_bytes(KEY_BYTES)
        master = self.master
        change.session.add(
            DataKeyRow(
                id=key_id.hex(),
                scope=scope,
                live_scope=scope,
                wrapped=aes_key_wrap(master, key).hex(),
                master_id=master_id(master),
                created_by=change.actor.name,
                created_at=self.config.now(),
            )
        )
        change.session.flush()
        change.log("datakey.created", f"datakey:{key_id.hex()}", {"scope": scope, "master_id": master_id(master)})
        return key_id, key

    # --- reading ------------------------------------------------------------------------------

    def resolve(self, key_id: bytes | None) -> bytes:
        """The key a sealed file names (a :data:`registry.vault.KeySource`); :class:`VaultError` if none.

        A destroyed key says so: the file was crypto-shredded, not tampered with.
        """
        if key_id is None:
            raise VaultError("the file is sealed under the raw vault's key, not under a data key")
        with self.recorder.read() as session:
            row = session.get(DataKeyRow, key_id.hex())
            if row is None:
                raise VaultError(f"data key {key_id.hex()} is unknown to this instance (a foreign or altered file)")
            if row.wrapped is None:
                when = row.destroyed_at.isoformat() if row.destroyed_at else "?"
                raise VaultError(
                    f"data key {row.id} of {row.scope} was destroyed at {when} ({row.destroyed_reason}): "
                    "the file was crypto-shredded and can no longer be read"
                )
            return self._unwrap(row)

    def _unwrap(self, row: DataKeyRow, master: bytes | None = None) -> bytes:
        master = master or self.master
        if row.wrapped is None:
            raise VaultError(f"data key {row.id} of {row.scope} was destroyed")
        if row.master_id != master_id(master):
            raise VaultError(f"data key {row.id} is wrapped under master {row.master_id}, not this instance's")
        try:
            return aes_key_unwrap(master, bytes.fromhex(row.wrapped))
        except (InvalidUnwrap, ValueError):
            raise VaultError(f"data key {row.id} does not unwrap under the master key (altered row)") from None

    def list(self, scope: str | None = None) -> list[DataKeyInfo]:
        with self.recorder.read() as session:
            query = select(DataKeyRow).order_by(DataKeyRow.created_at, DataKeyRow.id)
            if scope is not None:
                query = query.where(DataKeyRow.scope == scope)
            return [_info(row) for row in session.scalars(query)]

    def live_master_ids(self) -> set[str]:
        """The master ids the live keys are wrapped under (one, unless a rotation was interrupted)."""
        with self.recorder.read() as session:
            return set(session.scalars(select(DataKeyRow.master_id).where(DataKeyRow.wrapped.is_not(None))))

    # --- destroying ---------------------------------------------------------------------------

    def destroy_in(self, change: Change, scope: str, *, reason: str, covers: str) -> builtins.list[str]:
        """Destroy the live key of ``scope`` inside ``change``; the ids destroyed (none if it had no key)."""
        return destroy_scope(change, scope, now=self.config.now(), reason=reason, covers=covers)

    def destroy(self, scope: str, *, reason: str, covers: str, by: Actor) -> builtins.list[str]:
        with self.recorder.change(by) as change:
            return self.destroy_in(change, scope, reason=reason, covers=covers)

    # --- rotating the master ------------------------------------------------------------------

    @contextmanager
    def rewrapping(self, new_master: bytes, *, by: Actor) -> Iterator[dict[str, object]]:
        """Re-wrap every live key under ``new_master`` in one ledgered transaction.

        The caller installs ``new_master`` (and destroys the old one) inside the ``with`` block, so a
        failure there rolls the re-wrap back and the old master still opens every key.
        """
        if len(new_master) != KEY_BYTES:
            raise RegistryError("a master key is 32 bytes")
        old = self.master
        if new_master == old:
            raise RegistryError("the new master key is the current one")
        with self.recorder.change(by) as change:
            rows = change.session.scalars(select(DataKeyRow).where(DataKeyRow.wrapped.is_not(None))).all()
            for row in rows:
                row.wrapped = aes_key_wrap(new_master, self._unwrap(row, old)).hex()
                row.master_id = master_id(new_master)
            summary: dict[str, object] = {
                "which": "vault",
                "old_master_id": master_id(old),
                "new_master_id": master_id(new_master),
                "rewrapped": len(rows),
            }
            change.log("keys.rotated", "keys:data-master", summary)
            change.session.flush()
            yield summary
