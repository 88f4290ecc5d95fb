"""Whether a job's licence copies are all made already: the cheap answer before every admission.

Why (issue 21, throughput): :meth:`registry.linkage.LicenceCopies.ensure_for` runs before every job's
admission and used to walk the operator's licences through the ORM (a licence, its datasets, each
resource, its versions, its items, the licence's copies: one lazy query each), although the copies are
almost always made already. :func:`copies_current` answers that in two queries: the newest desensitized
version of every dataset of the operator's active licences, and the base versions the licences' copies
were made from. It is conservative: it says ``True`` only when every link group touching the job's
datasets has a copy of each member's newest base version, exactly the condition under which
``LicenceCopies._missing`` finds nothing for the job; any doubt (two versions sharing the newest number)
says ``False`` and the full path decides. A wrong ``True`` could not weaken a check anyway: the scope
check refuses a job whose licence copy is missing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.models import LicenceCopyRow, LicenceDatasetRow, LicenceRow, OperatorRow, ResourceRow, VersionRow
from registry.vocabulary import LicenceState, VersionKind

__all__ = ["copies_current"]


def copies_current(session: Session, operator: str, names: Collection[str]) -> bool:
    """``True`` when no active licence of ``operator`` covering ``names`` lacks a copy a job over them needs."""
    rows = session.execute(
        select(LicenceDatasetRow.licence_id, ResourceRow.name, LicenceDatasetRow.link_group, ResourceRow.id)
        .join(LicenceRow, LicenceDatasetRow.licence_id == LicenceRow.id)
        .join(OperatorRow, LicenceRow.operator_id == OperatorRow.id)
        .join(ResourceRow, LicenceDatasetRow.resource_id == ResourceRow.id)
        .where(OperatorRow.name == operator, LicenceRow.state == str(LicenceState.ACTIVE))
    ).all()
    if not rows:
        return True  # no active licence: nothing to make (the scope check refuses with its own reason)
    datasets: dict[int, list[tuple[str, str, int]]] = defaultdict(list)  # licence -> (name, group, resource)
    for licence_id, name, link_group, resource_id in rows:
        datasets[licence_id].append((name, link_group or name, resource_id))
    wanted = {lid: members for lid, members in datasets.items() if set(names) <= {m[0] for m in members}}
    if not wanted:
        return True
    newest = _newest_bases(session, {m[2] for members in wanted.values() for m in members})
    have: dict[int, set[int]] = defaultdict(set)
    for licence_id, base_id in session.execute(
        select(LicenceCopyRow.licence_id, LicenceCopyRow.base_version_id).where(LicenceCopyRow.licence_id.in_(wanted))
    ):
        have[licence_id].add(base_id)
    for licence_id, members in wanted.items():
        groups: dict[str, list[int]] = defaultdict(list)  # group -> resources of its members
        touching: set[str] = set()
        for name, group, resource_id in members:
            groups[group].append(resource_id)
            if name in names:
                touching.add(group)
        for group in touching:
            for resource_id in groups[group]:
                bases = newest.get(resource_id)
                if bases is None:  # no desensitized version: nothing to derive from (the full path skips it too)
                    continue
                if not bases <= have[licence_id]:
                    return False
    return True


def _newest_bases(session: Session, resource_ids: set[int]) -> dict[int, set[int]]:
    """Resource -> the ids of its live desensitized versions with the highest version number (one, unless a
    tie: then each of them must have its copy before the answer is ``True``)."""
    best: dict[int, tuple[int, set[int]]] = {}
    for resource_id, version_id, version in session.execute(
        select(VersionRow.resource_id, VersionRow.id, VersionRow.version).where(
            VersionRow.resource_id.in_(resource_ids),
            VersionRow.kind == str(VersionKind.DESENSITIZED),
            VersionRow.deleted_at.is_(None),
        )
    ):
        top = best.get(resource_id)
        if top is None or version > top[0]:
            best[resource_id] = (version, {version_id})
        elif version == top[0]:
            top[1].add(version_id)
    return {resource_id: ids for resource_id, (_, ids) in best.items()}
