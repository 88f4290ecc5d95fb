"""Names a job declares that the platform does not know: usage errors with a suggestion, never violations.

双鸭山 第三十一条 is about data used otherwise than licensed (超范围调用, 超目的调用): a deliberate act
on something that exists. A dataset that is not in the catalog, or a scenario that no licence and no
catalog entry names, is a typo, not an attempt: :class:`ScopeAdmission` refuses it as a usage error,
records the refusal, and counts nothing against the operator.

What counts as known, and what may be suggested, differ on purpose, so that a suggestion never tells an
operator a name it may not know:

* datasets: every catalog entry (the 资源目录 is read by every role, 双鸭山 第十二条); suggestions are
  drawn from the same catalog;
* scenarios: known when a catalog entry names it as a 授权运营应用场景 (public, 第十二条) or a licence
  past its draft names it (publicised, 公示, 第四十八条); suggestions are drawn only from the catalog's
  scenarios and the operator's own licences, never from another operator's.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.models import LicenceRow, OperatorRow, ResourceRow
from registry.vocabulary import LicenceState

UNKNOWN_DATASET = "unknown_dataset"
UNKNOWN_SCENARIO = "unknown_scenario"
_USAGE = "(a usage error: not counted as a violation; see `keyong dataset list` or GET /catalog)"


def suggest(name: str, candidates: Iterable[str], *, n: int = 3) -> list[str]:
    """The closest of ``candidates`` to ``name`` (difflib), best first; empty when none is close."""
    pool = sorted({c for c in candidates if c})
    return difflib.get_close_matches(name, pool, n=n, cutoff=0.6)


def did_you_mean(suggestions: Sequence[str]) -> str:
    """``"; did you mean A or B?"``, or nothing when there is no suggestion."""
    if not suggestions:
        return ""
    return f"; did you mean {' or '.join(suggestions)}?"


@dataclass(frozen=True, slots=True)
class UnknownNames:
    """Why a job's names are not recognised: the kind, the message, and the names suggested."""

    kind: str
    reason: str
    suggestions: tuple[str, ...]


def _catalog_scenarios(session: Session) -> set[str]:
    found: set[str] = set()
    for scenarios in session.scalars(select(ResourceRow.operation_scenarios)):
        found.update(str(s) for s in scenarios or [])
    return found


def _licence_scenarios(session: Session, operator: OperatorRow | None, *, publicised: bool) -> set[str]:
    query = select(LicenceRow.scenarios)
    if operator is not None:
        query = query.where(LicenceRow.operator_id == operator.id)
    if publicised:
        query = query.where(LicenceRow.state != LicenceState.DRAFT.value)
    found: set[str] = set()
    for scenarios in session.scalars(query):
        found.update(str(s) for s in scenarios or [])
    return found


def unknown_datasets(session: Session, names: Sequence[str]) -> UnknownNames | None:
    """The datasets of this declaration the catalog does not hold, or ``None`` when it holds them all."""
    catalog = set(session.scalars(select(ResourceRow.name).where(ResourceRow.name.in_(list(names)))))
    missing = [n for n in names if n not in catalog]
    if missing:
        every = list(session.scalars(select(ResourceRow.name)))
        offered: list[str] = []
        parts = []
        for name in missing:
            close = suggest(name, every)
            offered.extend(close)
            parts.append(f"{name!r} (did you mean {' or '.join(close)}?)" if close else repr(name))
        if len(missing) == 1:
            close = suggest(missing[0], every)
            said = f"dataset {missing[0]!r} is not in the catalog{did_you_mean(close)}"
        else:
            said = f"datasets {', '.join(parts)} are not in the catalog"
        return UnknownNames(UNKNOWN_DATASET, f"{said} {_USAGE}", tuple(dict.fromkeys(offered)))
    return None


def unknown_scenario(session: Session, operator: OperatorRow, scenario: str) -> UnknownNames | None:
    """Why ``scenario`` is not a scenario the platform knows, or ``None`` when it is one."""
    own = _licence_scenarios(session, operator, publicised=False)
    if scenario in own:
        return None
    public = _catalog_scenarios(session)
    if scenario in public or scenario in _licence_scenarios(session, None, publicised=True):
        return None
    close = suggest(scenario, own | public)
    licensed = sorted(own)
    hint = did_you_mean(close) if close else (f"; your licences allow {', '.join(licensed)}" if licensed else "")
    return UnknownNames(
        UNKNOWN_SCENARIO, f"scenario {scenario!r} is named by no licence or catalog entry{hint} {_USAGE}", tuple(close)
    )


__all__ = [
    "UNKNOWN_DATASET",
    "UNKNOWN_SCENARIO",
    "UnknownNames",
    "did_you_mean",
    "suggest",
    "unknown_datasets",
    "unknown_scenario",
]
