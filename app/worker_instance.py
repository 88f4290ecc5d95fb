"""Worker mode: what ``keyong worker`` opens on a host that shares only PostgreSQL and the bucket (issue 19).

Why a separate opening (DESIGN.md, Scale-out): a worker on another host needs the database URL, the
storage URL with the *worker's own* storage credentials (no access to ``vault/`` nor ``secrets/``:
``keyong storage policy``), and the key material that opens desensitized copies and seals outputs. It
must not hold the raw vault's key: :class:`WorkerInstance` never reads ``secrets/vault.key`` (nor the JWT,
TOTP or ledger signing keys), never migrates the schema, never sweeps a home, and signs no checkpoint.

Key material (the choice, and its risk, in CONTRACT_sandbox19.md and docs/operations.md):

* ``data_master.key`` (``KEYONG_WORKER_DATA_MASTER_FILE``, default ``<home>/secrets/data_master.key``):
  the AES key-wrap key of the data keys (``registry.datakeys``). The worker unwraps the dataset keys of
  the copies it mounts and the licence keys it seals outputs under, from the wrapped keys in the
  database. Risk: a worker host that is compromised together with its database credentials can open
  every desensitized copy, output and product (never raw data: the vault key is not on it). That is
  the data a worker exists to process; rotate the master (``keyong keys rotate --vault``) after a
  worker host is lost.
* ``pseudonym_pepper.key`` (``KEYONG_WORKER_PEPPER_FILE``): the guard's fingerprints are keyed by it;
  without it the exact-value checks cannot run and a job is sent to review, never passed.

The ledger: entries a worker appends (job claimed, finished, blocked exports) are hash-chained and
Merkle-logged like any other, so they verify; the worker's ledger signs no checkpoint
(:class:`AppendOnlyLedger`): the server, the single signer, checkpoints them (at its next due
checkpoint, ``ledger_checkpoint_seconds``). DP answers and model certificates are signed with the
instance key, which a remote worker does not hold: it runs them unsigned, so the guard blocks a model and
an unsigned answer goes to review (run DP jobs on the server's own workers).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from app.database import make_engine, redact, schema_status
from app.instance import MARKER, InstanceError, resolve_database_url, unreachable
from app.keys import DATA_MASTER_KEY, PEPPER, SECRETS_DIR
from app.ledger_whole import remembered_head_file
from app.settings import Settings
from core import Storage
from desensitize import direct_identifiers_in
from ledger import Ledger, LedgerError
from registry import Registry, RegistryConfig

if TYPE_CHECKING:
    from sandbox import JobQueue, Worker

__all__ = ["AppendOnlyLedger", "WorkerInstance", "WorkerSettings", "read_hex_secret", "worker_cache"]


class WorkerSettings(BaseSettings):
    """The worker's own settings (``KEYONG_WORKER_*``); the database and storage are :class:`app.settings.Settings`."""

    model_config = SettingsConfigDict(env_prefix="KEYONG_", extra="ignore")

    worker_mode: bool = Field(
        default=False,
        description="`keyong worker` opens in worker mode (no vault key, no migration, no checkpoint "
        "signing), as on a host that shares only the database and the bucket. Also chosen when the home "
        "holds no instance marker.",
    )
    worker_cache: Path | None = Field(
        default=None,
        description="The worker's local cache of staged copies (by digest) and attempt scratch; not shared "
        "between hosts. Default: <home>/cache.",
    )
    worker_data_master_file: Path | None = Field(
        default=None,
        description="The data master key file (hex, mode 0600) the worker unwraps data keys with. Default: "
        "<home>/secrets/data_master.key.",
    )
    worker_pepper_file: Path | None = Field(
        default=None,
        description="The pseudonym pepper file (hex, 0600) the guard's fingerprints are keyed by. Default: "
        "<home>/secrets/pseudonym_pepper.key; absent: the guard's exact-value checks do not run (review).",
    )


def worker_cache(home: Path) -> Path:
    """The worker's local cache: ``KEYONG_WORKER_CACHE``, else ``<home>/cache`` (made on first use)."""
    return WorkerSettings().worker_cache or home / "cache"


def read_hex_secret(path: Path, length: int = 32) -> bytes:
    """A hex secret of ``length`` bytes from ``path``; refused when missing, malformed or readable by others."""
    try:
        info = path.stat()
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InstanceError(f"worker key file {path} cannot be read: {exc}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InstanceError(
            f"worker key file {path} is readable by others (mode {oct(info.st_mode & 0o777)}): chmod 600"
        )
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise InstanceError(f"worker key file {path} is not hex") from None
    if len(value) != length:
        raise InstanceError(f"worker key file {path} holds {len(value)} bytes, not {length}")
    return value


class AppendOnlyLedger(Ledger):
    """A ledger that appends (hash chain and Merkle nodes, as every process does) but signs nothing.

    The worker holds no ledger key: its placeholder key is never in office, so a checkpoint falling due
    at one of its appends is left for the server, the single signer (``Ledger.append`` skips due
    checkpoints when the key is not in office, as for a retired key)."""

    def _in_office(self, connection: Connection) -> bool:
        return False

    def checkpoint(self) -> Any:
        raise LedgerError("a worker signs no checkpoint: the server is the single checkpoint signer")


@dataclass
class WorkerInstance:
    """The parts of an instance a worker needs: the database, the storage, a registry without the vault key."""

    settings: Settings
    engine: Engine
    registry: Registry
    storage: Storage
    cache: Path
    _queue: JobQueue | None = field(default=None, repr=False)

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def ledger(self) -> Ledger:
        return self.registry.recorder.ledger

    @classmethod
    def open(
        cls, settings: Settings, *, storage: Storage | None = None, worker: WorkerSettings | None = None
    ) -> WorkerInstance:
        """Open in worker mode; refused when the database is unreachable or its schema is not current."""
        own = worker or WorkerSettings()
        if not settings.database_url and not (settings.home / MARKER).exists():
            raise InstanceError("a worker needs KEYONG_DATABASE_URL (its home holds no instance)")
        url = resolve_database_url(settings)
        engine = make_engine(url)
        try:
            status = schema_status(engine)
        except OperationalError as exc:
            engine.dispose()
            raise InstanceError(unreachable(url, exc)) from None
        if not status.up_to_date:  # a worker never migrates: the server does (`keyong db upgrade`)
            engine.dispose()
            raise InstanceError(f"the database {redact(url)} is not at the current schema: upgrade it from the server")
        secrets_dir = settings.home / SECRETS_DIR
        master = read_hex_secret(own.worker_data_master_file or secrets_dir / DATA_MASTER_KEY)
        pepper_file = own.worker_pepper_file or secrets_dir / PEPPER
        pepper = read_hex_secret(pepper_file) if pepper_file.exists() else None
        try:  # the settings' one way to the storage: the worker's own credentials file or keys (issue 19)
            chosen = storage if storage is not None else settings.open_storage()
        except BaseException:
            engine.dispose()
            raise
        ledger = AppendOnlyLedger(
            engine,
            Ed25519PrivateKey.generate(),  # a placeholder never in office: signs nothing
            origin=settings.ledger_origin or "keyong.worker",
            checkpoint_every=settings.ledger_checkpoint_every,
            payload_screen=direct_identifiers_in,
            head_file=remembered_head_file(settings.home),  # its home remembers what it committed (issue 19)
        )
        config = RegistryConfig(  # no vault key; fingerprints and copies from the storage
            home=settings.home, pepper=pepper, data_master=master, vault_key=None, storage=chosen
        )
        registry = Registry(engine, ledger, config, custodians=dict)
        cache = own.worker_cache or worker_cache(settings.home)
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(cache, 0o700)
        return cls(settings, engine, registry, chosen, cache)

    @property
    def queue(self) -> JobQueue:
        if self._queue is None:
            from sandbox import JobQueue

            self._queue = JobQueue(self.registry.recorder, clock=self.registry.config.now)
        return self._queue

    def worker(self, **options: Any) -> Worker:
        """A worker over the shared queue: copies staged into the cache and checked (always, even from a
        local storage), outputs uploaded to the storage; no DP signer (module docstring)."""
        from sandbox import RegistryHooks, Worker, WorkerRoster

        hooks_options = {k: options.pop(k) for k in ("fingerprints", "blocked", "released") if k in options}
        hooks = RegistryHooks(self.registry, **hooks_options)
        options.setdefault("signer", None)
        options.setdefault("roster", WorkerRoster(self.engine))
        options.setdefault("at_rest", self.registry.at_rest)
        return Worker(
            self.queue,
            self.home,
            self.registry.licences.workdir,
            registry=hooks,
            storage=self.storage,
            cache=self.cache,
            **options,
        )

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> WorkerInstance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
