"""Vault key rotation and the at-rest migration of a home (issue 22; SATRE 2.8.01, 3.1.09).

``keyong keys rotate --vault`` replaces the data master key (``secrets/data_master.key``) that wraps
every data key of files at rest. It is cheap: the data keys are re-wrapped under the new master in one
ledgered transaction (``keys.rotated``: old and new master ids, how many keys; never key material),
no file is re-encrypted. The order makes a crash at any step recoverable:

1. the new master is written to ``data_master.key.next`` (0600, must not exist);
2. every live data key is re-wrapped under it and the transaction commits;
3. ``data_master.key.next`` is renamed over ``data_master.key``: the old master is gone.

A process killed between 2 and 3 leaves both files; the next open (:func:`settle_rotation`) finishes
the rename when the database's keys name the new master, and removes the new file when the re-wrap
never committed. The raw vault's own ``vault.key`` (raw copies, sealed directly under it) is not
rotated here: that would re-encrypt every raw copy (docs/operations.md).

``keyong keys encrypt-home`` seals what an earlier Keyong wrote in clear: every desensitized copy
and fingerprint set (their dataset's key), every job attempt's files (the licence's key) and every
product's artifacts (the products key of its licence). It is idempotent (sealed files are skipped)
and ledgered (``keys.home_encrypted``).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from app.keys import DATA_MASTER_KEY, DATA_MASTER_NEXT, SECRETS_DIR, InstanceKeys, write_secret
from core import Actor, RegistryError
from registry import EncryptedHome, master_id, seal_home

if TYPE_CHECKING:
    from app.instance import Instance

__all__ = ["EncryptedHome", "encrypt_home", "rotate_vault_master", "settle_rotation"]


def settle_rotation(home: Path, keys: InstanceKeys, rows_master_ids: set[str]) -> InstanceKeys:
    """Finish or drop a rotation a crash interrupted (see the module docstring); the keys to use."""
    directory = home / SECRETS_DIR
    pending = keys.data_master_next
    if pending is None:
        return keys
    if master_id(pending) in rows_master_ids:  # the re-wrap committed: install the new master
        os.replace(directory / DATA_MASTER_NEXT, directory / DATA_MASTER_KEY)
        return replace(keys, data_master=pending, data_master_next=None)
    (directory / DATA_MASTER_NEXT).unlink(missing_ok=True)  # it never committed: the old master stands
    return replace(keys, data_master_next=None)


def live_master_ids(instance: Instance) -> set[str]:
    return instance.registry.data_keys.live_master_ids()


def rotate_vault_master(instance: Instance, *, by: Actor) -> dict[str, object]:
    """Re-wrap every data key under a new master, then destroy the old one (see the module docstring)."""
    directory = instance.home / SECRETS_DIR
    if (directory / DATA_MASTER_NEXT).exists():
        raise RegistryError(
            f"{directory / DATA_MASTER_NEXT} exists: an earlier rotation is unfinished; reopen the home"
        )
    new_master = secrets.token_bytes(32)
    next_file = write_secret(directory, DATA_MASTER_NEXT, new_master)
    try:
        with instance.registry.data_keys.rewrapping(new_master, by=by) as summary:
            pass
    except BaseException:
        next_file.unlink(missing_ok=True)
        raise
    os.replace(next_file, directory / DATA_MASTER_KEY)  # the old master's only copy is overwritten
    instance.use_data_master(new_master)
    return dict(summary)


def encrypt_home(instance: Instance, *, by: Actor) -> EncryptedHome:
    """Seal every file an earlier Keyong left in clear under its scope's data key; ledgered."""
    return seal_home(instance.registry.recorder, instance.registry.at_rest, by=by)
