"""One Keyong instance: its home, secrets, database and the services wired over them.

``init`` builds a new home in a temporary sibling directory and renames it into place only
when everything (secrets, migrations, principals) succeeded, so a failed init leaves nothing
half-made behind and a second init never touches an existing home.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from app.database import (
    SchemaStatus,
    SchemaTooNewError,
    make_engine,
    migrate,
    redact,
    refuse_unknown_schema,
    refuse_unversioned_tables,
    schema_status,
    sqlite_url,
)
from app.instance_read import FORMAT as FORMAT  # re-exported: the read-only open defines them, without this stack
from app.instance_read import MARKER as MARKER
from app.instance_read import InstanceError as InstanceError
from app.instance_read import read_marker, with_tls
from app.instance_read import resolve_database_url as resolve_database_url
from app.instance_read import unreachable as unreachable
from app.keys import (
    LEDGER_NEXT,
    SECRETS_DIR,
    InstanceKeys,
    JwtRingFiles,
    create_keys,
    finish_ledger_rotation,
    load_keys,
)
from app.ledger_whole import remembered_head_file
from app.settings import Settings
from core import Storage
from ledger import Ledger
from operators import IdentityService, JwtKeyring, Role, SigningKey, TokenService, host_actor
from registry import Registry, RegistryConfig
from sandbox import ASK_REGISTRY, Ask

if TYPE_CHECKING:
    from operators import Jobs, People
    from sandbox import Blocked, Fingerprints, Released, Releases, Runner, Worker, WorkerRoster

DEMO_PRINCIPALS: dict[Role, str] = {
    Role.CUSTODIAN: "demo-custodian",
    Role.AGENCY: "demo-agency",
    Role.OPERATOR: "demo-operator",
    Role.REGULATOR: "demo-regulator",
}


def inspect_schema(settings: Settings) -> tuple[str, SchemaStatus]:
    """The home's database (password hidden) and where its schema stands, without migrating anything."""
    marker = read_marker(settings.home)
    url = resolve_database_url(settings, marker)
    engine = make_engine(url)
    try:
        return redact(url), schema_status(engine)
    except OperationalError as exc:
        raise InstanceError(unreachable(url, exc)) from None
    finally:
        engine.dispose()


def _direct_identifiers_in(payload: Any) -> list[str]:
    """``desensitize.direct_identifiers_in``, imported at the first append it screens: its recognizers load
    pandas (~0.6 s), which a command that only opens the home and reads (``ledger verify``) never needs
    (issue 21)."""
    from desensitize import direct_identifiers_in

    return direct_identifiers_in(payload)


def refuse_emptied(home: Path, status: SchemaStatus, where: str) -> None:
    """Raise :class:`InstanceError` when the database of an initialised home holds no schema at all.

    ``keyong init`` migrates the schema before it writes the home's marker, so a home with a marker over an
    empty database lost it: a SQLite file truncated or replaced by an empty one, a PostgreSQL schema a DBA
    dropped and recreated. The open migrated a fresh schema over it and carried on as a new instance (no
    principals, a ledger starting again at 1 that verified ok): fail closed instead (red team 22)."""
    if status.current is None:
        raise InstanceError(
            f"the database {where} holds no Keyong schema, but the home {home} was initialised on it: it was "
            "emptied or replaced. Restore the backup taken before (`keyong backup restore`); no schema was made over it"
        )


def _ledger(
    settings: Settings,
    keys: InstanceKeys,
    engine: Engine,
    instance_id: str,
    *,
    reload: bool = False,
    home: Path | None = None,
) -> Ledger:
    def reload_key() -> Ed25519PrivateKey:  # another process rotated the key (app.rotation)
        return load_keys(settings.home).ledger_key

    return Ledger(
        engine,
        keys.ledger_key,
        origin=settings.ledger_origin or f"keyong.local/{instance_id}",
        checkpoint_every=settings.ledger_checkpoint_every,
        checkpoint_max_age=timedelta(seconds=settings.ledger_checkpoint_seconds),
        payload_screen=_direct_identifiers_in,
        reload_key=reload_key if reload else None,
        head_file=remembered_head_file(home or settings.home),  # init writes in its staging home
    )


def jwt_keyring(files: JwtRingFiles) -> Callable[[], JwtKeyring]:
    """The home's JWT keys as the token service reads them: re-read after a rotation by any process."""

    def keyring() -> JwtKeyring:
        ring = files()
        previous = SigningKey(ring.previous, ring.retired_at) if ring.previous is not None else None
        return JwtKeyring(SigningKey(ring.current), previous)

    return keyring


def _token_service(settings: Settings, keys: InstanceKeys | Callable[[], JwtKeyring]) -> TokenService:
    return TokenService(
        keys.jwt_key if isinstance(keys, InstanceKeys) else keys,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl=timedelta(seconds=settings.token_ttl_seconds),
    )


@dataclass(frozen=True, slots=True)
class InitResult:
    home: Path
    database: str
    tokens: dict[str, str]  # role -> API key of that role's demo principal
    totp: dict[str, str]  # role -> that principal's TOTP secret (base32), its second factor

    def as_json(self) -> dict[str, object]:
        return {"home": str(self.home), "database": self.database, "tokens": self.tokens, "totp": self.totp}


@dataclass
class Instance:
    """An opened home: settings, keys, the database engine, and the services over them."""

    settings: Settings
    keys: InstanceKeys
    engine: Engine
    instance_id: str
    _identity: IdentityService | None = field(default=None, repr=False)
    _ledger: Ledger | None = field(default=None, repr=False)
    _registry: Registry | None = field(default=None, repr=False)
    _jobs: Jobs | None = field(default=None, repr=False)
    _releases: Releases | None = field(default=None, repr=False)
    _storage: Storage | None = field(default=None, repr=False)

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def database(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def storage(self) -> Storage:
        """Where this instance's artifacts lie (``KEYONG_STORAGE_URL``; unset: the home), built once."""
        if self._storage is None:
            self._storage = self.settings.open_storage()
        return self._storage

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = _ledger(self.settings, self.keys, self.engine, self.instance_id, reload=True)
        return self._ledger

    @property
    def identity(self) -> IdentityService:
        if self._identity is None:
            keyring = jwt_keyring(JwtRingFiles(self.home))
            self._identity = IdentityService(
                self.engine, _token_service(self.settings, keyring), self.ledger, self.keys.totp_key
            )
        return self._identity

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            config = RegistryConfig(
                home=self.home,
                publicity_days=self.settings.publicity_days,
                violation_limit=self.settings.violation_limit,
                violation_window_hours=self.settings.violation_window_hours,
                vault_key=self.keys.vault_key,
                pepper=self.keys.pseudonym_pepper,
                data_master=self.keys.data_master,
                ingest_limits=self.settings.ingest_limits(),
                retention_days=self.settings.dataset_retention_days,
                request_profile=self.settings.request_profile,
                storage=getattr(self, "storage", None),  # issue 19: None is the home (registry.RegistryConfig)
            )
            self._registry = Registry(self.engine, self.ledger, config, custodians=self.active_custodians)
            from sandbox import jobs_using, licence_copies_in_use, releases_using

            engine = self.engine
            self._registry.retention.jobs_using = lambda dataset: jobs_using(engine, dataset)
            self._registry.retention.releases_using = lambda dataset: releases_using(engine, dataset)
            self._registry.licence_copies.copies_in_use = lambda: licence_copies_in_use(engine)
            if self.keys.data_master_next is not None:  # a vault key rotation a crash interrupted
                from app.key_rotation import live_master_ids, settle_rotation

                self.use_data_master(settle_rotation(self.home, self.keys, live_master_ids(self)).data_master)
                return self.registry
        return self._registry

    def use_data_master(self, master: bytes) -> None:
        """Open files at rest with ``master`` from now on (after a rotation installed it)."""
        self.keys = replace(self.keys, data_master=master, data_master_next=None)
        self._registry = self._jobs = self._releases = None  # rebuilt over the new master when next asked

    @property
    def people(self) -> People:
        """Identity checks, terms of use and training per person (issue 22), over the registry's records."""
        from operators import People

        return People(self.registry)

    @property
    def jobs(self) -> Jobs:
        """Submission (scope, quotas) and the queue; quotas from the settings."""
        if self._jobs is None:
            from operators import Jobs, Quotas
            from sandbox import JobQueue

            quotas = Quotas(
                concurrent=self.settings.job_concurrent_limit,
                per_day=self.settings.job_daily_limit,
                cpu_seconds_per_day=self.settings.job_cpu_seconds_daily,
            )
            queue = JobQueue(self.registry.recorder, clock=self.registry.config.now)
            self._jobs = Jobs(self.registry, queue, quotas)
        return self._jobs

    @property
    def releases(self) -> Releases:
        """The release workflow; reviewers are the active agency principals of this instance."""
        if self._releases is None:
            from sandbox import Releases

            identity = self.identity

            def is_reviewer(name: str) -> bool:
                return any(
                    p["name"] == name and p["role"] == Role.AGENCY and p["active"] for p in identity.list_principals()
                )

            self._releases = Releases(
                self.registry.recorder,
                self.registry.config,
                required_reviews=self.settings.release_reviewers,
                is_reviewer=is_reviewer,
                custodians=self.active_custodians,
            )
        return self._releases

    def active_custodians(self) -> dict[str, str | None]:
        """Every active custodian principal -> its organisation: whose datasets a custodian speaks for
        (``registry.egress``), asked of the identity service at each act, so a suspension counts at once."""
        return {
            str(p["name"]): (str(p["org"]) if p["org"] else None)
            for p in self.identity.list_principals()
            if p["role"] == Role.CUSTODIAN and p["active"]
        }

    @property
    def roster(self) -> WorkerRoster:
        """The live workers of this instance, by their heartbeats (``keyong serve``, ``/healthz``, the console)."""
        from sandbox import WorkerRoster

        return WorkerRoster(self.engine)

    def worker(
        self,
        *,
        runner: Runner | None = None,
        worker_id: str | None = None,
        fingerprints: Fingerprints | Literal[Ask.REGISTRY] | None = ASK_REGISTRY,
        blocked: Blocked | Literal[Ask.REGISTRY] | None = ASK_REGISTRY,
        released: Released | Literal[Ask.REGISTRY] | None = ASK_REGISTRY,
        **options: Any,
    ) -> Worker:
        """A worker over this instance's queue; the sandboxed runner unless ``runner`` is given. Its export
        guard probes the datasets' fingerprints and reports blocked exports to usage monitoring (each of
        the registry's answers replaceable, or switched off with ``None``)."""
        from app.worker_instance import worker_cache
        from sandbox import RegistryHooks, Worker

        hooks = RegistryHooks(self.registry, fingerprints=fingerprints, blocked=blocked, released=released)
        options.setdefault("signer", self.keys.ledger_key)
        options.setdefault("roster", self.roster)
        options.setdefault("at_rest", self.registry.at_rest)
        options.setdefault("storage", getattr(self, "storage", None))  # issue 19: Instance.storage (storage19)
        options.setdefault("cache", worker_cache(self.home))  # staged copies when the storage is a bucket
        return Worker(
            self.jobs.queue,
            self.home,
            self.registry.licences.workdir,
            registry=hooks,
            runner=runner,
            worker_id=worker_id,
            **options,
        )

    @classmethod
    def open(cls, settings: Settings, *, upgrade: bool = True, sweep: bool = True) -> Instance:
        """Open an existing home; migrates the schema forward unless ``upgrade`` is false.

        ``sweep``: remove what writes killed between their steps left behind (issue 17) first. Every writer
        opens this way, the worker and ``keyong serve`` included; a command that only reads passes ``False``
        (``app.cli.conventions.open_instance``) or does not come here at all (``app.instance_read``)."""
        marker = read_marker(settings.home)
        keys = load_keys(settings.home)
        url = resolve_database_url(settings, marker)
        engine = make_engine(url)
        try:
            status = schema_status(engine)
            refuse_unknown_schema(status, redact(url))  # older code never runs on a newer schema (SATRE 2.2.03)
            refuse_unversioned_tables(engine, status, redact(url))  # nor migrates over tables of unknown revision
            refuse_emptied(settings.home, status, redact(url))
            if upgrade:
                migrate(engine)
            elif not status.up_to_date:
                raise InstanceError(
                    "database schema is not at the current revision: run `keyong db upgrade` (or any keyong command)"
                )
        except OperationalError as exc:
            engine.dispose()
            raise InstanceError(unreachable(url, exc)) from None
        except (SchemaTooNewError, InstanceError) as exc:
            engine.dispose()
            raise InstanceError(str(exc)) from None
        instance = cls(settings, keys, engine, str(marker["instance_id"]))
        if upgrade and status.current is not None and status.pending:
            instance._record_migration(status.current, status.pending)
        instance._finish_ledger_rotation()
        if sweep:
            instance.registry.sweep()  # what writes killed between their steps left behind (issue 17)
        return instance

    def _record_migration(self, before: str, applied: tuple[str, ...]) -> None:
        """An upgrade of the schema is a change to the deployed service: the ledger says when and what
        (SATRE 2.2.03), so a regulator sees every upgrade beside the acts before and after it."""
        actor, role = host_actor()
        self.ledger.append(
            actor=actor,
            role=role,
            action="schema.migrated",
            subject=f"instance:{self.instance_id}",
            payload={"from": before, "to": applied[-1], "applied": list(applied)},
        )

    def _finish_ledger_rotation(self) -> None:
        """A next ledger key left by a crashed ``keyong keys rotate --ledger`` is put in place when the
        ledger recorded the handover, and deleted when it did not (``app.keys.finish_ledger_rotation``)."""
        if not (self.home / SECRETS_DIR / LEDGER_NEXT).exists():
            return
        schedule = self.ledger.key_schedule()
        office = schedule.current if len(schedule.periods) > 1 else None
        if finish_ledger_rotation(self.home, office):
            self.keys = load_keys(self.home)
            self._ledger = None

    @classmethod
    def init(cls, settings: Settings) -> tuple[Instance, InitResult]:
        """Create a new home with its secrets, schema and one demo principal per role."""
        home = settings.home
        if (home / MARKER).exists():
            raise InstanceError(f"a Keyong instance already exists at {home}; nothing was changed")
        if home.exists() and (not home.is_dir() or any(home.iterdir())):
            raise InstanceError(f"{home} exists and is not an empty directory; nothing was changed")
        home.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{home.name}.init-", dir=home.parent))
        try:
            os.chmod(staging, 0o700)
            keys = create_keys(staging)
            url = with_tls(settings, settings.database_url or sqlite_url(staging))
            if not settings.database_url:
                # The embedded database holds key digests and, later, the catalog: owner-only.
                os.close(os.open(staging / "keyong.db", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            engine = make_engine(url)
            instance_id = uuid.uuid4().hex
            try:
                try:
                    migrate(engine)
                except OperationalError as exc:
                    raise InstanceError(unreachable(url, exc)) from None
                ledger = _ledger(settings, keys, engine, instance_id, home=staging)
                identity = IdentityService(engine, _token_service(settings, keys), ledger, keys.totp_key)
                if identity.count_principals() or ledger.size():
                    raise InstanceError(
                        f"database {redact(url)} already holds an instance's principals; nothing was changed"
                    )
                actor, actor_role = host_actor()
                ledger.append(
                    actor=actor,
                    role=actor_role,
                    action="instance.initialised",
                    subject=f"instance:{instance_id}",
                    payload={"ledger_public_key": ledger.public_key_hex, "database": engine.dialect.name},
                )
                made = {  # each with its second factor, shown once beside its key (SATRE 3.2.04)
                    role.value: identity.create_principal(name, role, enrol_totp=True, bootstrap=True)
                    for role, name in DEMO_PRINCIPALS.items()
                }
                tokens = {role: new.api_key for role, new in made.items()}
                totp = {role: str(new.totp_secret) for role, new in made.items()}
                ledger.checkpoint()
            finally:
                engine.dispose()
            marker: dict[str, object] = {
                "format": FORMAT,
                "instance_id": instance_id,
                "created": datetime.now(UTC).isoformat(),
            }
            if settings.database_url:
                marker["database_url"] = settings.database_url
            marker_fd = os.open(staging / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(marker_fd, "w", encoding="utf-8") as fh:
                json.dump(marker, fh, indent=2)
            if home.exists():
                home.rmdir()  # empty, checked above; rename cannot replace a directory portably
            os.rename(staging, home)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        instance = cls.open(settings)
        return instance, InitResult(home=home, database=instance.database, tokens=tokens, totp=totp)

    def close(self) -> None:
        self.engine.dispose()
