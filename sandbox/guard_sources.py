"""The copies a job mounted as the export guard reads them, and the joined views of their link groups.

Why a worker keeps them: the guard ties each output table to a copy it can re-aggregate (issue 15), so
it reads the very licence copies the job read (decrypted in a private directory, never the raw data:
原始数据不出域, 双鸭山 第三十五条), indexed once per file version (a copy never changes).

Why joined views (issue 23): datasets a licence grants jointly share one per-licence person key, so a
job may join them and publish aggregates of the join. When two or more datasets of a job share a link
group (their job spec carries ``link_group`` and ``person_key``, set at admission from the registry's
``licence_copies.link_group`` and ``registry.linkage_rules.person_key``), the guard also gets their
copies joined on the person key (``sandbox.guard.joined``), named ``a+b``: a joined aggregate is then
accounted for and the SDC rules run on the joined counts. Datasets not granted jointly have no person
key in their spec and are never joined; a join beyond the bound gives no joined source (review).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import LocalStorage
from sandbox.copy_cache import CopyStager
from sandbox.ports import AtRestPort

if TYPE_CHECKING:  # pandas and pyarrow load with the first judgement, not with the worker's module
    from sandbox.guard.source import SourceCopy

log = logging.getLogger("keyong.worker")

#: Granted copies (and joined views) a worker keeps indexed for the guard.
SOURCE_CACHE = 8
#: A copy's version: its key and recorded SHA-256 (issue 19), or (path, mtime in ns, size) of a local file
#: when no digest is recorded (a bare worker).
FileKey = tuple[str, int | str, int]


@dataclass(frozen=True, slots=True)
class Mounted:
    """One dataset of a job as its spec names it: the copy's path (relative to the home) and, when granted
    jointly, its link group and the column it joins on."""

    name: str
    path: str
    link_group: str | None = None
    person_key: str | None = None
    spec: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # the job's own spec of it

    @classmethod
    def of(cls, name: str, spec: Mapping[str, Any]) -> Mounted:
        group, key = spec.get("link_group"), spec.get("person_key")
        return cls(
            name,
            str(spec["path"]),
            str(group) if isinstance(group, str) and "+" in group else None,
            str(key) if isinstance(key, str) and key else None,
            dict(spec),
        )


def link_groups(mounted: list[Mounted]) -> dict[str, list[Mounted]]:
    """The job's datasets by link group, only groups of two or more datasets that each name a person key."""
    groups: dict[str, list[Mounted]] = {}
    for m in mounted:
        if m.link_group is not None and m.person_key is not None and m.name in m.link_group.split("+"):
            groups.setdefault(m.link_group, []).append(m)
    return {g: sorted(ms, key=lambda m: m.name) for g, ms in sorted(groups.items()) if len(ms) >= 2}


class GuardSources:
    """The guard's sources of one job: each mounted copy, then the joined view of each link group."""

    def __init__(
        self, home: Path, at_rest: AtRestPort | None, *, bound: int | None = None, stager: CopyStager | None = None
    ) -> None:
        self.home = home
        self.at_rest = at_rest
        #: Where the copies come from, checked against their recorded SHA-256 (the worker's own stager: the
        #: same storage, cache and database record as the run's; issue 19).
        self.stager = stager or CopyStager(LocalStorage(home), at_rest, None, None)
        #: Joined rows beyond which no joined source is made (fail closed: review); None: the guard's
        #: default (``sandbox.guard.joined.MAX_JOINED_ROWS``).
        self.bound = bound
        self._cache: dict[tuple[Any, ...], SourceCopy | None] = {}

    def of(self, datasets: Mapping[str, Mapping[str, Any]]) -> dict[str, SourceCopy]:
        """Name -> source: the job's copies (by dataset), then its joined views (by ``a+b``)."""
        mounted = [Mounted.of(name, spec) for name, spec in datasets.items()]
        found: dict[str, SourceCopy] = {}
        for m in mounted:
            source = self._cached(("copy", self._file(m)), partial(self._load, m))
            assert source is not None
            found[m.name] = source
        for group, members in link_groups(mounted).items():
            key = ("joined", self.bound, *((m.person_key, self._file(m)) for m in members))
            joined = self._cached(key, partial(self._join, members))
            if joined is not None:
                found[joined.name] = joined
            else:
                log.warning("no joined view of %s for the guard (beyond %s rows, or unkeyed)", group, self.bound)
        return found

    def _file(self, m: Mounted) -> FileKey:
        digest = self.stager.digest(m.name, m.spec)
        if digest is not None:
            return (m.path, digest, 0)
        local = self.stager.storage.local_path(m.path)
        if local is None:
            return (m.path, "", 0)  # no record and no local file: never cached across versions by mistake
        info = local.stat()
        return (str(local), info.st_mtime_ns, info.st_size)

    def _cached(self, key: tuple[Any, ...], make: Callable[[], SourceCopy | None]) -> SourceCopy | None:
        if key not in self._cache:
            if len(self._cache) >= SOURCE_CACHE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = make()
        return self._cache[key]

    def _load(self, m: Mounted) -> SourceCopy:
        from sandbox.guard import SourceCopy

        with ExitStack() as opened:
            return SourceCopy.load(m.name, self.stager.open(opened, {m.name: m.spec})[m.name])

    def _join(self, members: list[Mounted]) -> SourceCopy | None:
        import pyarrow.parquet as pq

        from sandbox.guard.joined import LinkedCopy, joined_source

        with ExitStack() as opened:
            plain = self.stager.open(opened, {m.name: m.spec for m in members})
            copies = [
                LinkedCopy(m.name, pq.read_table(plain[m.name]).to_pandas(ignore_metadata=True), str(m.person_key))
                for m in members
            ]
        missing = [c.name for c in copies if c.person_key not in c.frame.columns]
        if missing:  # a spec naming a column the copy lacks: no join (the tables stay for a person)
            log.warning("no joined view for the guard: %s lacks its person key", ", ".join(missing))
            return None
        return joined_source(copies, self.bound) if self.bound is not None else joined_source(copies)


__all__ = ["SOURCE_CACHE", "GuardSources", "Mounted", "link_groups"]
