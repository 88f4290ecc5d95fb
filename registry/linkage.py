"""Licence copies (issue 23): each licence reads its own copy of a dataset, keyed for that licence.

Why: with one pseudonym per person for the whole instance, every licence saw the same person keys, and
any operator licensed for two datasets could join them, whatever the agency granted; two operators could
join their outputs. Linkage is granted, not given:

* **Per-licence keys.** For each dataset of a licence a *licence copy* is derived from the newest base
  desensitized copy (never from raw data: 原始数据不出域, 双鸭山 第三十五条): its pseudonym columns re-keyed
  with ``desensitize.linkage.licence_key(pepper, licence, group)``, where the group is the dataset alone
  or the joint group the licence grants it in. Two licences' keys never join; within a licence, datasets
  not granted jointly never join either (个人信息保护法 第七十三条(四) 去标识化; GB/T 37964-2019 假名化).
* **Risk on the joined view.** A joint group's copies go through ``desensitize.linkage.link_tables``:
  k-anonymity and the risk threshold must hold on the view the licence can join (GB/T 37964-2019 附录B;
  第6章: verified before use). When they do not, nothing is recorded and the reason says why (fail closed).
* **Guarded.** Each copy is sealed under its dataset's data key like base copies (:mod:`registry.atrest`),
  with a fingerprint set of its per-licence pseudonyms and rows, so the export guard blocks them too.
* **When.** Made when the licence becomes active, when a newer base copy of a granted dataset is recorded,
  and lazily before a job is admitted if missing (outside the scope check's transaction); superseded ones
  are deleted when their successor is recorded, or, while a queued or running job names one, kept until
  none does (:mod:`registry.linkage_holds`); all of a licence's go when it ends (第六十二条).
* **Unlinkable by order** (red team 23, F4): every copy is written in a fresh random row order
  (:mod:`registry.row_order`).
* **Kept keys** (red team 23, F5): the custodian's kept text keys are re-keyed like pseudonyms; kept
  numbers stay verbatim and are listed as ``shared_columns`` (:mod:`registry.linkage_rules`).
* **Crash-safe** like :mod:`registry.copies`: files written under temporary names noted in a
  :class:`registry.scratch.Scratch`, renamed, then recorded; what a crash leaves no row names and the
  start-up sweep removes it (:mod:`registry.leftovers`, tree ``licence-copies/``).

A copy holding no pseudonym (nothing in it is keyed) is the same under every licence: its row then names
the base file (``shares_base``) instead of writing an identical file per licence; such a row is not a new
copy (the base file is ledgered as ``dataset.desensitized``), so it is not ledgered again.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from core import Actor, Change, NotFoundError, Recorder, RegistryError, StorageError, crash_point, require_role
from registry.atrest import AtRest, dataset_scope
from registry.config import RegistryConfig
from registry.eligibility import desensitized_version
from registry.leftovers import LICENCE_COPIES_DIRECTORY
from registry.licence_views import licence_linkage
from registry.linkage_fresh import copies_current
from registry.linkage_holds import CopiesInUse, delete_copies, free_superseded, plain, supersede
from registry.linkage_rules import (
    joint_refusal,
    licence_keyed_columns,
    person_key,
    quasi_identifiers,
    shared_columns,
)
from registry.models import LicenceCopyRow, LicenceRow, OperatorRow
from registry.objects import delete_object, delete_set
from registry.row_order import shuffled
from registry.scratch import Scratch
from registry.vault import VaultError
from registry.vocabulary import LicenceState

if TYPE_CHECKING:
    import pandas as pd

    from desensitize import FingerprintSet, LinkedTable

__all__ = ["LINKAGE_ACTOR", "LicenceCopies", "Member"]

_log = logging.getLogger(__name__)
#: Who makes licence copies: the platform, on the agency's grant (the ledger names it).
LINKAGE_ACTOR = Actor("keyong:linkage", "agency")
#: ``policy(level) -> (k, max_suppression, RiskThreshold | None)`` of a level (``Copies.policy_for``).
PolicyOf = Callable[[str], Any]


@dataclass(slots=True)
class Member:
    """One dataset of a link group, as its newest base copy stands."""

    name: str
    resource_id: int
    level: str
    types: dict[str, str | None]
    base_id: int
    base_version: int
    base_path: str
    base_sha256: str
    base_rows: int
    base_report: dict[str, Any]
    frame: pd.DataFrame | None = None
    made: dict[str, Any] = field(default_factory=dict)


class LicenceCopies:
    """Makes, finds and deletes licence copies (``licence_copies`` rows and their sealed files)."""

    def __init__(self, recorder: Recorder, config: RegistryConfig, at_rest: AtRest, policy: PolicyOf) -> None:
        self.recorder = recorder
        self.config = config
        self.at_rest = at_rest
        self._policy = policy
        #: Which copies queued or running jobs name (``sandbox.holds``, composed in by ``app.instance``).
        self.copies_in_use: CopiesInUse | None = None

    # --- making -------------------------------------------------------------------------------

    def ensure(self, licence_id: int, *, by: Actor = LINKAGE_ACTOR) -> builtins.list[str]:
        """Make the missing copies of licence ``licence_id`` (for its datasets' newest base copies); the
        datasets made. Raises :class:`RegistryError` (nothing recorded for that group) when a group fails."""
        self.try_sweep()
        made: builtins.list[str] = []
        failures: builtins.list[str] = []
        for group, members in self._missing(licence_id):
            try:
                self._make(licence_id, group, members, by=by)
            except RegistryError as exc:
                failures.append(str(exc))
                continue
            made += [m.name for m in members]
        if failures:
            raise RegistryError("; ".join(failures))
        return made

    def ensure_for(self, operator: str, names: builtins.list[str]) -> dict[str, str]:
        """Before a job of ``operator`` over ``names`` is admitted: make the missing copies of its active
        licences covering them. Dataset -> why its copy could not be made (the scope check refuses with it)."""
        self.try_sweep()  # superseded copies no job names any more go first (F8)
        with self.recorder.read() as session:
            if copies_current(session, operator, names):  # the usual case, in two queries (issue 21)
                return {}
            ids = session.scalars(
                select(LicenceRow.id)
                .join(OperatorRow, LicenceRow.operator_id == OperatorRow.id)
                .where(OperatorRow.name == operator, LicenceRow.state == str(LicenceState.ACTIVE))
            ).all()
            wanted = [
                lid for lid in ids if set(names) <= {d.resource.name for d in session.get_one(LicenceRow, lid).datasets}
            ]
        failures: dict[str, str] = {}
        for licence_id in wanted:
            for group, members in self._missing(licence_id):
                if not {m.name for m in members} & set(names):
                    continue
                try:
                    self._make(licence_id, group, members, by=LINKAGE_ACTOR)
                except RegistryError as exc:
                    failures.update({m.name: str(exc) for m in members})
        return failures

    def refresh_dataset(self, name: str) -> None:
        """A newer base copy of ``name`` was recorded: re-make the copies of every living licence granting it.

        A failure is logged, never raised (the base copy stands); the licence's next job retries and, if it
        fails again, is refused with the reason."""
        with self.recorder.read() as session:
            living = [str(LicenceState.ACTIVE), str(LicenceState.SUSPENDED)]
            rows = session.scalars(select(LicenceRow).where(LicenceRow.state.in_(living)).order_by(LicenceRow.id))
            ids = [r.id for r in rows if any(d.resource.name == name for d in r.datasets)]
        for licence_id in ids:
            self.try_ensure(licence_id)

    def try_ensure(self, licence_id: int) -> None:
        """:meth:`ensure`, a failure logged (the lazy path before a job retries it)."""
        try:
            self.ensure(licence_id)
        except Exception:
            _log.exception("licence %s: its copies could not be made now; its next job retries", licence_id)

    def _missing(self, licence_id: int) -> builtins.list[tuple[str, builtins.list[Member]]]:
        """Each link group of the licence with a dataset lacking a copy of its newest base version."""
        with self.recorder.read() as session:
            row = session.get(LicenceRow, licence_id)
            if row is None:
                raise NotFoundError(f"no licence {licence_id}")
            have = {c.base_version_id for c in row.copies}
            groups: dict[str, builtins.list[Member]] = {}
            for ds in row.datasets:
                base = desensitized_version(ds.resource)
                if base is None:  # nothing to derive from: the scope check refuses with its own reason
                    continue
                groups.setdefault(ds.link_group or ds.resource.name, []).append(
                    Member(
                        name=ds.resource.name,
                        resource_id=ds.resource_id,
                        level=ds.resource.level,
                        types={item.name: item.pii_type for item in ds.resource.items},
                        base_id=base.id,
                        base_version=base.version,
                        base_path=base.path,
                        base_sha256=base.content_sha256,
                        base_rows=base.rows,
                        base_report=dict(base.report or {}),
                    )
                )
            return [(g, ms) for g, ms in sorted(groups.items()) if any(m.base_id not in have for m in ms)]

    def _make(self, licence_id: int, group: str, members: builtins.list[Member], *, by: Actor) -> None:
        """Derive, write and record the copies of one link group (all of it: joint copies stand together)."""
        from desensitize import licence_key, rekey

        joint = "+" in group  # a link group's name (desensitize.linkage.group_name); a dataset's name has none
        lacking = sorted(set(group.split("+")) - {m.name for m in members})
        if lacking:  # never a partial group: its key would differ from the group's when the rest arrives
            raise RegistryError(
                f"the datasets {group.replace('+', ', ')} are granted jointly, but {', '.join(lacking)} has no "
                "desensitized version yet: run `keyong dataset desensitize` first"
            )
        if not joint and not licence_keyed_columns(members[0].base_report):
            self._record(licence_id, group, members, by=by)  # nothing keyed: the base file serves every licence
            return
        pepper = self.config.pepper
        if pepper is None:
            raise RegistryError("this instance has no pseudonym pepper: licence copies cannot be keyed")
        key = licence_key(pepper, licence_id, [m.name for m in members])
        for member in members:
            member.frame = self._read(member)
            for column in licence_keyed_columns(member.base_report):  # pseudonyms and kept text keys (F5)
                if column in member.frame.columns:
                    member.frame[column] = rekey(member.frame[column], key)
        joint_report = self._link(group, members) if joint else None
        with Scratch(self.config.home, purpose="licence-copy") as scratch:  # released once committed
            scratch.note_paths(f"{LICENCE_COPIES_DIRECTORY}/{licence_id}/")
            written: builtins.list[str] = []  # keys put (objects before the row: issue 19)
            try:
                for member in members:
                    self._write(licence_id, member, written, by=by)
                crash_point("licence-copy.files-written")
                self._record(licence_id, group, members, by=by, joint_report=joint_report)
            except BaseException:
                for put in reversed(written):
                    if put.endswith(".prints"):
                        delete_set(self.at_rest.storage, put)
                    else:
                        delete_object(self.at_rest.storage, put)
                raise

    def _read(self, member: Member) -> pd.DataFrame:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            data = self.at_rest.read_object(member.base_path)
            if member.base_sha256 and hashlib.sha256(data).hexdigest() != member.base_sha256:
                raise VaultError("its content differs from what the catalog recorded (altered or swapped)")
            return pq.read_table(io.BytesIO(data)).to_pandas()
        except (VaultError, StorageError, OSError, pa.ArrowException) as exc:
            raise RegistryError(
                f"the copy of {member.name!r} v{member.base_version} could not be read: {exc}"
            ) from None

    def _link(self, group: str, members: builtins.list[Member]) -> dict[str, Any]:
        """The group anonymized together; refused unless k and the risk threshold hold on the joined view."""
        from desensitize import LinkedTable, link_tables

        tables: builtins.list[LinkedTable] = []
        ks: builtins.list[int] = []
        highest: builtins.list[float] = []
        average: builtins.list[float] = []
        for member in members:
            key = person_key(member.base_report, member.types)
            if key is None:
                raise RegistryError(f"dataset {member.name!r} has no pseudonymized person key: it cannot be linked")
            policy = self._policy(member.level)
            risk = policy.risk
            ks.append(policy.k)  # the strictest of the group's levels governs the joined view
            highest += [risk.highest] if risk is not None and risk.highest is not None else []
            average += [risk.average] if risk is not None and risk.average is not None else []
            assert member.frame is not None
            tables.append(
                LinkedTable(
                    name=member.name,
                    frame=member.frame,
                    person_key=key,
                    quasi_identifiers=quasi_identifiers(member.base_report),
                    k=policy.k,
                    max_suppression=policy.max_suppression,
                    risk=risk,
                )
            )
        try:
            result = link_tables(tables)
        except (ValueError, KeyError) as exc:
            raise RegistryError(f"the joint copies of {group} could not be made: {exc}") from None
        refusal = joint_refusal(
            result.report, max(ks), min(highest) if highest else None, min(average) if average else None
        )
        if refusal is not None:
            raise RegistryError(
                f"the datasets {', '.join(m.name for m in members)} cannot be analysed jointly under this licence: "
                f"{refusal}; nothing was recorded. Generalize the base copies more (keyong policy propose) or grant "
                "them separately (GB/T 37964-2019 附录B: k-anonymity of the joined view)"
            )
        for member in members:
            member.frame = result.frames[member.name]
        plain_report: dict[str, Any] = plain({**result.report, "met_by_registry": True})
        return plain_report

    def _write(self, licence_id: int, member: Member, written: builtins.list[str], *, by: Actor) -> None:
        """The member's copy and prints put as new objects under new keys; each key put added to ``written``."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from desensitize import FingerprintSet

        assert member.frame is not None
        directory = f"{LICENCE_COPIES_DIRECTORY}/{licence_id}"
        scope = dataset_scope(member.name)
        table = shuffled(pa.Table.from_pandas(member.frame, preserve_index=False))  # a fresh order (F4)
        buffer = io.BytesIO()  # in clear only in memory, sealed as it is put
        pq.write_table(table, buffer, compression="zstd")
        sha256 = hashlib.sha256(buffer.getbuffer()).hexdigest()
        stem = f"{member.name}-v{member.base_version}.{sha256[:12]}.{secrets.token_hex(4)}"
        copy_key, prints_key = f"{directory}/{stem}.parquet.kyv", f"{directory}/{stem}.prints"
        written.append(self.at_rest.put_object(copy_key, buffer.getvalue(), scope, by=by).key)
        del buffer
        pseudonyms = [c for c in licence_keyed_columns(member.base_report) if c in member.frame.columns]
        qi = [c for c in quasi_identifiers(member.base_report) if c in member.frame.columns]
        prints = FingerprintSet.build(  # the per-licence pseudonyms and this copy's rows (no raw side here)
            member.frame, member.frame, {}, pepper=self.config.pepper or b"", pseudonym_columns=pseudonyms,
            quasi_identifier_columns=qi, workers=1,
        )  # fmt: skip
        digests: dict[str, str] = {}
        written.append(prints_key)
        with self.at_rest.private_dir() as plain:
            for made in sorted(prints.save(plain).iterdir()):
                digests[made.name] = self.at_rest.put_object(f"{prints_key}/{made.name}", made, scope, by=by).sha256
        member.made = {
            "path": copy_key,
            "fingerprints": prints_key,
            "fingerprint_files": digests,  # file name -> plaintext SHA-256, checked when staged
            "sha256": sha256,
            "rows": table.num_rows,
            "pseudonyms": pseudonyms,
        }

    def _record(
        self,
        licence_id: int,
        group: str,
        members: builtins.list[Member],
        *,
        by: Actor,
        joint_report: dict[str, Any] | None = None,
    ) -> None:
        """The group's rows and ``licence.copy_made`` entries in one transaction; superseded copies deleted."""
        with self.recorder.change(by) as change:
            for member in members:
                made = member.made
                shares = not made
                report = {
                    "link_group": group,
                    "joint": joint_report is not None,
                    "key": "per licence, shared by the group" if joint_report else "per licence and dataset",
                    "pseudonyms": made.get("pseudonyms", []),
                    "fingerprint_files": made.get("fingerprint_files"),
                    "shares_base": shares,
                    "joint_report": joint_report,
                    "shared_columns": shared_columns(member.base_report),  # verbatim under every licence (F5)
                }
                row = LicenceCopyRow(
                    licence_id=licence_id,
                    resource_id=member.resource_id,
                    base_version_id=member.base_id,
                    base_version=member.base_version,
                    link_group=group,
                    shares_base=shares,
                    path=member.base_path if shares else made["path"],
                    fingerprints=None if shares else made["fingerprints"],
                    content_sha256=member.base_sha256 if shares else made["sha256"],
                    rows=member.base_rows if shares else made["rows"],
                    report=report,
                    created_by=by.name,
                    created_at=self.config.now(),
                )
                self._supersede(change, licence_id, member.resource_id)
                change.session.add(row)
                change.session.flush()
                if shares:  # not a new copy: the base file, already ledgered as dataset.desensitized
                    continue
                change.log(
                    "licence.copy_made",
                    f"licence:{licence_id}",
                    {
                        "copy": row.id,
                        "dataset": member.name,
                        "base_version": member.base_version,
                        "link_group": group,
                        "shares_base": shares,
                        "content_sha256": row.content_sha256,
                        "pseudonyms": report["pseudonyms"],
                        "joint": _joint_summary(joint_report),
                    },
                )

    def _supersede(self, change: Change, licence_id: int, resource_id: int) -> None:
        """The licence's earlier copies of a dataset: deleted with the change, or held while a queued or
        running job names them (:mod:`registry.linkage_holds`, red team 23 F8)."""
        supersede(change, self.at_rest.storage, licence_id, resource_id, self.copies_in_use)

    def sweep(self) -> builtins.list[int]:
        """Delete the superseded copies no queued or running job names any more (ledgered); their ids."""
        with self.recorder.read() as session:
            if not free_superseded(session, self.copies_in_use):
                return []
        with self.recorder.change(LINKAGE_ACTOR) as change:
            ids = free_superseded(change.session, self.copies_in_use)  # again, inside the change
            rows = [change.session.get_one(LicenceCopyRow, i) for i in ids]
            delete_copies(change, self.at_rest.storage, rows, reason="superseded (no queued or running job names it)")
        return ids

    def try_sweep(self) -> None:
        """:meth:`sweep`, a failure logged (a held copy waits for the next sweep)."""
        try:
            self.sweep()
        except Exception:
            _log.exception("superseded licence copies could not be swept now; the next sweep retries")

    def drop_licence(self, change: Change, licence_id: int) -> None:
        """A licence ended: every copy of it is deleted with the change (双鸭山 第六十二条), held or not."""
        rows = change.session.scalars(select(LicenceCopyRow).where(LicenceCopyRow.licence_id == licence_id)).all()
        delete_copies(change, self.at_rest.storage, list(rows), reason="licence ended")

    # --- reading ------------------------------------------------------------------------------

    def dataset_linkage(self, name: str, *, viewer: Actor) -> builtins.list[dict[str, Any]]:
        """``linkage`` of ``dataset show``: per living licence serving ``name``, with what it is linkable.

        An operator sees its own licences only (another operator's grants are not its business, DESIGN.md).
        """
        require_role(viewer, "custodian", "agency", "regulator", "operator")
        with self.recorder.read() as session:
            living = [str(s) for s in LicenceState if not s.ended]
            rows = session.scalars(select(LicenceRow).where(LicenceRow.state.in_(living)).order_by(LicenceRow.id))
            found: builtins.list[dict[str, Any]] = []
            for row in rows:
                if viewer.role == "operator" and not viewer.is_host and row.operator.name != viewer.name:
                    continue
                for entry in licence_linkage(row):
                    if name in entry["datasets"]:
                        found.append(
                            {
                                "licence": row.id,
                                "operator": row.operator.name,
                                "state": row.state,
                                "linkable_with": [d for d in entry["datasets"] if d != name],
                                **entry,
                            }
                        )
            return found

    def fingerprints(self, copy_id: int) -> FingerprintSet | None:
        """The guard's prints of a licence copy's per-licence pseudonyms and rows; None for a shared base file."""
        from desensitize import FingerprintError, FingerprintSet

        if self.config.pepper is None:
            raise RegistryError("this instance has no pseudonym pepper: fingerprints cannot be probed")
        with self.recorder.read() as session:
            row = session.get(LicenceCopyRow, copy_id)
            if row is None:
                raise NotFoundError(f"no licence copy {copy_id}")
            if row.shares_base or row.fingerprints is None:
                return None
            where, digests = row.fingerprints, (row.report or {}).get("fingerprint_files")
        try:
            with self.at_rest.private_dir() as plain:
                self.at_rest.stage_set(where, digests, plain)
                return FingerprintSet.load(plain, pepper=self.config.pepper)
        except (OSError, FingerprintError, VaultError, StorageError) as exc:
            raise RegistryError(f"the fingerprints of licence copy {copy_id} are not usable: {exc}") from None


def _joint_summary(report: dict[str, Any] | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {key: report.get(key) for key in ("datasets", "rows_joined", "k_target", "k_achieved", "met", "steps")}
