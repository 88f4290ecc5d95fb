"""The worker's seams, typed: what it asks of a runner and of the registry.

Why protocols: the worker is built by ``app`` (which holds the registry) and by tests (which fake
runs and hooks); neither should have to hand it a bag of callbacks. :class:`RegistryPort` names the
questions the worker puts to the registry — the guard's fingerprints of a granted copy (and of the
licence's own copy of it, issue 23), "this
job's export was blocked" (usage monitoring: repeated blocks are a security anomaly), and what was
already released from a dataset (the guard's differencing rule) — and :class:`RegistryHooks`
answers them over a ``registry.Registry``, each answer replaceable (or switched off) for tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from core import Actor, Change, JoinedRecorder, check_key
from sandbox.print_cache import PrintCache, base_identity, licence_identity
from sandbox.queue import JobView

if TYPE_CHECKING:
    from desensitize import FingerprintSet
    from registry import Registry

GUARD_ACTOR_NAME = "keyong:guard"
log = logging.getLogger("keyong.worker")


class RunResultLike(Protocol):
    """What a runner returns (``sandbox.runner.RunResult``); a protocol so tests can fake runs.
    Read-only members, so a result with narrower types (``status``: "ok" | "failed" | "killed") fits."""

    @property
    def status(self) -> str: ...
    @property
    def exit_code(self) -> int | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def wall_seconds(self) -> float: ...
    @property
    def cpu_seconds(self) -> float: ...
    @property
    def max_rss_bytes(self) -> int: ...
    @property
    def stdout(self) -> str: ...
    @property
    def stderr(self) -> str: ...
    @property
    def outputs(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def removed(self) -> Sequence[Mapping[str, Any]]: ...


#: ``runner(kind, code, *, datasets={name: host path}, out_dir=..., limits=...) -> RunResult``
Runner = Callable[..., RunResultLike]
#: ``workdir(operator, licence_id) -> Path``: where everything of one licence lies.
Workdir = Callable[[str, int], Path]
#: ``fingerprints(dataset, version) -> FingerprintSet``: the guard's prints of a granted copy.
Fingerprints = Callable[[str, int | None], "FingerprintSet"]
#: ``blocked(job) -> None``: told when the guard blocked a job's outputs (usage monitoring).
Blocked = Callable[[JobView], None]
#: ``released(dataset) -> [(product, [artifact paths])]``: what was already released from a dataset
#: (by any operator), for the guard's differencing rule.
Released = Callable[[str], Sequence[tuple[str, Sequence[Path]]]]


class RegistryPort(Protocol):
    """What a worker asks of the registry while it judges a job."""

    def fingerprints(self, dataset: str, version: int | None) -> FingerprintSet | None:
        """The guard's prints of a granted copy; ``None`` when this port keeps none (the exact-value
        checks then do not run, and no finding says so). Raising means they should have been there."""
        ...

    def licence_fingerprints(self, licence_copy: int) -> FingerprintSet | None:
        """The guard's prints of a licence copy (issue 23): its per-licence pseudonyms and rows; ``None`` when
        this port keeps none or the copy holds no pseudonym. Raising means they should have been there."""
        ...

    def blocked(self, job: JobView) -> None:
        """The guard blocked ``job``'s outputs (recorded for usage monitoring)."""
        ...

    def blocked_within(self, change: Change, job: JobView) -> bool:
        """Record the block inside ``change``, the transaction that ends the job (issue 17: a crash never
        keeps the one without the other); ``False`` when this port cannot, and :meth:`blocked` is then
        called after the commit."""
        ...

    def released(self, dataset: str) -> Sequence[tuple[str, Sequence[Path]]]:
        """Products already released from ``dataset`` by any operator, with their artifacts' paths."""
        ...


def guard_prints(registry: RegistryPort, job: JobView) -> tuple[dict[str, FingerprintSet], list[str]]:
    """The prints the guard probes for ``job``, and the datasets whose prints were not available.

    Per dataset: the base copy's (raw identifiers, base pseudonyms, raw rows) and, for a licence copy
    (issue 23), the licence copy's (per-licence pseudonyms and the mounted rows) under the dataset's own
    name, which the record rules pair with the mounted copy; the base copy's go under ``"NAME (base copy)"``.
    """
    prints: dict[str, FingerprintSet] = {}
    missing: list[str] = []
    for name, spec in job.datasets.items():
        version = spec.get("version") if isinstance(spec, dict) else None
        copy = spec.get("licence_copy") if isinstance(spec, dict) else None
        try:
            base = registry.fingerprints(name, version)
            own = registry.licence_fingerprints(int(copy)) if copy is not None else None
        except Exception as exc:
            log.warning("job %s: no fingerprints for %s: %s", job.id, name, exc)
            missing.append(name)
            continue
        if own is not None:
            prints[name] = own
            if base is not None:
                prints[f"{name} (base copy)"] = base
        elif base is not None:
            prints[name] = base
    return prints, missing


class AtRestPort(Protocol):
    """How a worker opens sealed copies and outputs and seals what a run left (``registry.AtRest``).

    Issue 22 (SATRE 2.8.01): copies, outputs and products are encrypted at rest; plaintext exists only
    in a private directory for the time a run or a judgement needs it.
    """

    def private_dir(self, prefix: str = ...) -> AbstractContextManager[Path]: ...
    def decrypt_to(self, path: Path, target: Path, *, mode: int = ...) -> Path: ...
    def chunks(self, path: Path) -> Iterator[bytes]: ...
    def seal_tree(self, directory: Path, scope: str, *, by: Actor) -> int: ...


class Ask(Enum):
    """The default of a :class:`RegistryHooks` answer: ask the registry."""

    REGISTRY = "registry"


ASK_REGISTRY: Literal[Ask.REGISTRY] = Ask.REGISTRY


class RegistryHooks:
    """A :class:`RegistryPort` over a ``registry.Registry``.

    Each answer may be replaced by a function, or switched off with ``None`` (no fingerprints, no
    report of blocks, nothing released); tests use that to fake one answer and keep the others.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        fingerprints: Fingerprints | Literal[Ask.REGISTRY] | None = ASK_REGISTRY,
        blocked: Blocked | Literal[Ask.REGISTRY] | None = ASK_REGISTRY,
        released: Released | Literal[Ask.REGISTRY] | None = ASK_REGISTRY,
    ) -> None:
        self.registry = registry
        self._fingerprints = self._registry_fingerprints if fingerprints is ASK_REGISTRY else fingerprints
        # A replaced or switched-off fingerprints answer (tests) covers the licence copies' prints too.
        self._licence_prints = fingerprints is ASK_REGISTRY
        self._blocked = self._registry_blocked if blocked is ASK_REGISTRY else blocked
        self._blocked_by_registry = blocked is ASK_REGISTRY
        self._released = self._registry_released if released is ASK_REGISTRY else released
        # The sets loaded for earlier jobs, re-used while the rows record the same files (issue 21).
        self.prints = PrintCache()

    def fingerprints(self, dataset: str, version: int | None) -> FingerprintSet | None:
        return None if self._fingerprints is None else self._fingerprints(dataset, version)

    def licence_fingerprints(self, licence_copy: int) -> FingerprintSet | None:
        if not self._licence_prints:
            return None
        engine = self.registry.recorder.engine
        return self.prints.get(
            lambda: licence_identity(engine, licence_copy),
            lambda: self.registry.licence_copies.fingerprints(licence_copy),
        )

    def blocked(self, job: JobView) -> None:
        if self._blocked is not None:
            self._blocked(job)

    def blocked_within(self, change: Change, job: JobView) -> bool:
        if self._blocked is None:
            return True  # switched off: nothing to record, then or later
        if not self._blocked_by_registry:
            return False  # a replaced answer (tests) is told after the commit
        monitoring = type(self.registry.monitoring)(
            JoinedRecorder(change, self.registry.recorder), self.registry.config
        )
        monitoring.record_blocked_export(
            job.operator, subject=f"job:{job.id}", licence_id=job.licence_id, by=Actor(GUARD_ACTOR_NAME, "agency")
        )
        return True

    def released(self, dataset: str) -> Sequence[tuple[str, Sequence[Path]]]:
        return [] if self._released is None else self._released(dataset)

    def copy_sha256(self, dataset: str, spec: Mapping[str, Any]) -> str | None:
        """The plaintext SHA-256 the database recorded for the copy a job spec names (issue 19: a worker
        checks a staged copy against it before the sandbox sees it). The row must name the spec's own path
        (a spec pointing elsewhere than its row is refused: ``None``)."""
        from sqlalchemy import text

        path, copy, version = spec.get("path"), spec.get("licence_copy"), spec.get("version")
        with self.registry.recorder.engine.connect() as connection:
            if copy is not None:
                row = connection.execute(
                    text("SELECT content_sha256, path FROM licence_copies WHERE id = :id"), {"id": int(copy)}
                ).first()
            else:
                row = connection.execute(
                    text(
                        "SELECT v.content_sha256, v.path FROM dataset_versions v JOIN resources r "
                        "ON r.id = v.resource_id WHERE r.name = :name AND v.version = :version AND v.deleted_at IS NULL"
                    ),
                    {"name": dataset, "version": int(version) if version is not None else -1},
                ).first()
        if row is None or str(row[1]) != str(path):
            return None
        return str(row[0])

    # --- the registry's answers -----------------------------------------------------------------

    def _registry_fingerprints(self, dataset: str, version: int | None) -> FingerprintSet:
        if version is None:  # "the newest": no recorded identity to key a kept set on
            return self.registry.copies.fingerprints(dataset, version)
        engine = self.registry.recorder.engine
        return self.prints.get(
            lambda: base_identity(engine, dataset, version),
            lambda: self.registry.copies.fingerprints(dataset, version),
        )

    def _registry_blocked(self, job: JobView) -> None:
        self.registry.monitoring.record_blocked_export(
            job.operator, subject=f"job:{job.id}", licence_id=job.licence_id, by=Actor(GUARD_ACTOR_NAME, "agency")
        )

    def _artifact(self, value: str) -> Path:
        """A product artifact's row path as the worker may open it: a storage key, or a legacy absolute path
        inside the home's ``work/``/``products/`` (red team 19, B1: a forged row never mounts a host file)."""
        from registry import legacy_artifact_path

        if Path(value).is_absolute():
            return legacy_artifact_path(Path(self.registry.config.home), value)
        return Path(check_key(value))

    def _registry_released(self, dataset: str) -> list[tuple[str, list[Path]]]:
        out: list[tuple[str, list[Path]]] = []
        for product in self.registry.products.list(viewer=Actor(GUARD_ACTOR_NAME, "agency")):
            if any(d.get("name") == dataset for d in product.datasets):  # relative: storage keys (issue 19)
                out.append((product.name, [self._artifact(str(a["path"])) for a in product.artifacts]))
        return out


__all__ = [
    "ASK_REGISTRY",
    "GUARD_ACTOR_NAME",
    "Ask",
    "AtRestPort",
    "Blocked",
    "Fingerprints",
    "RegistryHooks",
    "RegistryPort",
    "Released",
    "RunResultLike",
    "Runner",
    "Workdir",
    "guard_prints",
]
