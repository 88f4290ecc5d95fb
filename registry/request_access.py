"""Who may ask for what, who answers a request, and what a request may name (issue 24; red team 24).

Why a module of its own: these are the rules the red team broke — a custodian answered another
department's queue after publishing a decoy entry naming it, decided its own application, raised the
authority's obligations as an operator, named departments that do not exist, recorded refusals whose
reasons were invisible, and granted applications "leading to" a revoked licence of someone else.

* **Who answers** a request is decided per request, with the one reading :mod:`registry.egress` uses:
  a request about a *dataset* is answered by that dataset's custodians (:func:`registry.egress.is_custodian`);
  a request about a *catalog entry* not yet published is answered by the custodians whose organisation
  on record is the named 提供方 (:func:`registry.egress.names_organisation`: by name, or by 统一社会信用代码
  when every catalog entry naming that 提供方 carries that code — a decoy entry naming another
  department with one's own code makes the code prove nothing, so it counts for nobody). Publishing an
  entry never makes a custodian answer for anything but that entry.
* **Who asks** what: the kinds per submitter role (:data:`KINDS_BY_ROLE`); the catalog obligations
  (``catalog_update``, 黑龙江 第十二条/第十五条) run from the authority, so only the agency raises them.
* **Texts** hold visible characters only (:func:`core.invisible_character`, the API's rule), and a
  required one at least one character that is neither whitespace nor a filler.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import NotFoundError, PermissionDeniedError, RegistryError, invisible_character
from registry.egress import is_custodian, names_organisation
from registry.models import LicenceDatasetRow, LicenceRow, ResourceRow
from registry.request_models import RequestRow
from registry.request_rules import KINDS
from registry.vocabulary import LicenceState

_REQUESTER_KINDS = ("data_application", "open_data_application", "data_demand", "correction")
#: The request kinds each submitter role may raise (the host administrator acts for a named requester's role).
KINDS_BY_ROLE: dict[str, tuple[str, ...]] = {
    "operator": _REQUESTER_KINDS,
    "custodian": _REQUESTER_KINDS,
    "agency": KINDS,
    "host": KINDS,
}
#: Characters that render as nothing although Unicode calls them letters or symbols (Hangul fillers, braille blank).
_BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
#: Licence states a granted application may lead to: not suspended, revoked or expired.
_LIVE_LICENCE = frozenset({LicenceState.DRAFT.value, LicenceState.PUBLICITY.value, LicenceState.ACTIVE.value})


def require_kind(role: str, kind: str) -> None:
    """Refuse a kind the submitter's role does not raise (an unknown kind is the rule table's refusal)."""
    if kind in KINDS and kind not in KINDS_BY_ROLE.get(role, ()):
        allowed = ", ".join(KINDS_BY_ROLE.get(role, ())) or "none"
        raise PermissionDeniedError(f"a {role} does not raise a {kind} request (a {role} raises: {allowed})")


def clean_text(value: str | None, what: str, limit: int, *, required: bool, multiline: bool = True) -> str:
    """``value`` stripped; refused when too long, when it holds an invisible or control character, or
    (``required``) when nothing visible is left. A text with nothing visible is empty."""
    text = (value or "").strip()
    if len(text) > limit:
        raise RegistryError(f"{what} is at most {limit} characters")
    found = invisible_character(text, multiline=multiline)
    if found is not None:
        position, code, kind = found
        raise RegistryError(f"{what} holds an invisible character ({kind} {code} at {position}): visible text only")
    if not any(not c.isspace() and c not in _BLANKS for c in text):
        if required:
            raise RegistryError(f"{what} is required (visible characters)")
        return ""
    return text


def organisation_departments(session: Session, org: str | None) -> frozenset[str]:
    """The 提供方 an organisation on record answers for: its name, and every 提供方 all of whose catalog
    entries carry its 统一社会信用代码 (:func:`registry.egress.names_organisation` on each)."""
    org = (org or "").strip()
    if not org:
        return frozenset()
    codes: dict[str, list[str]] = defaultdict(list)
    for name, code in session.execute(select(ResourceRow.provider_name, ResourceRow.provider_code)):
        codes[name.strip()].append(code or "")
    found = {org, *(name for name, cs in codes.items() if all(names_organisation(org, name, c) for c in cs))}
    return frozenset(found)


def answers(session: Session, name: str, row: RequestRow, active: Mapping[str, str | None]) -> bool:
    """Whether active custodian ``name`` answers request ``row`` (see the module)."""
    if name not in active:
        return False
    if row.subject_kind == "dataset":
        resource = session.scalar(select(ResourceRow).where(ResourceRow.name == row.subject))
        return resource is not None and is_custodian(name, resource, active)
    return row.provider in organisation_departments(session, active.get(name))


def require_known_department(session: Session, provider: str, active: Mapping[str, str | None]) -> None:
    """A named 提供方 is a department the instance knows: one of the catalog's, or a custodian's organisation."""
    if provider in {(o or "").strip() for o in active.values()} - {""}:
        return
    if session.scalar(select(ResourceRow.id).where(ResourceRow.provider_name == provider).limit(1)) is not None:
        return
    raise RegistryError(
        f"no department {provider!r} is known (a 提供方名称 of the catalog or an active custodian's organisation)"
    )


def leads_to(session: Session, row: RequestRow, outcome: str, text: str | None, today: date) -> str | None:
    """What a granted application leads to: ``licence:ID`` — live, the requesting operator's, covering
    the request's dataset — or ``sharing:TEXT``."""
    text = (text or "").strip()
    if not text:
        return None
    if outcome != "granted":
        raise RegistryError("only a granted request leads to a licence or a sharing")
    where, _, what = text.partition(":")
    if where == "sharing" and what.strip() and len(text) <= 200:
        return f"sharing:{clean_text(what, 'a sharing', 200, required=True, multiline=False)}"
    if not (where == "licence" and what.isdigit() and len(what) <= 9):
        raise RegistryError("leads to licence:ID or sharing:DESCRIPTION (what the granted application gives)")
    licence = session.get(LicenceRow, int(what))
    if licence is None:
        raise NotFoundError(f"no licence {what}")
    if licence.state not in _LIVE_LICENCE or licence.valid_until < today:
        raise RegistryError(f"licence {licence.id} is {licence.state} (until {licence.valid_until}): not live")
    if row.requester_role != "operator" or licence.operator.name != row.requester:
        raise RegistryError(f"licence {licence.id} is not the requester {row.requester!r}'s")
    resource = session.scalar(select(ResourceRow).where(ResourceRow.name == row.subject))
    covered = resource is not None and row.subject_kind == "dataset"
    if covered and resource is not None:
        covered = (
            session.scalar(
                select(LicenceDatasetRow.id).where(
                    LicenceDatasetRow.licence_id == licence.id, LicenceDatasetRow.resource_id == resource.id
                )
            )
            is not None
        )
    if not covered:
        raise RegistryError(f"licence {licence.id} does not cover {row.subject_kind} {row.subject!r}")
    return f"licence:{licence.id}"


__all__ = [
    "KINDS_BY_ROLE",
    "answers",
    "clean_text",
    "leads_to",
    "organisation_departments",
    "require_kind",
    "require_known_department",
]
