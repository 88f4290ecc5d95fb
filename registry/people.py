"""People's standing (issue 22; SATRE 3.2.02, 1.5.01, 1.5.02, 1.6.04): may this person reach data now?

A person stands when the platform holds, for them, an identity check (who checked which evidence, when), an
acceptance of the terms of use in their current version, and a training record that has not expired. Job
submission asks it of the person who submits, and a licence becomes active (granted with no 公示, after 公示, or
restored) only when its operator's people stand: whoever acts for an operating company must be known, bound by the
terms and trained before the company's licence opens data to them (双鸭山市公共数据管理暂行办法 第四十八条:
授权运营单位 … 具备 … 数据安全管理能力; 黑龙江省政务数据管理暂行办法 第三十八条: 用户身份认证、权限管理).

**Why here, in the registry.** Who a person is (their principal, role, organisation and keys) is the identity
service's, in ``operators``. Whether a person may reach data now is of one kind with "is this operator qualified"
and "is this licence usable", which the registry owns, and the registry decides licence activation and cannot
import ``operators`` (docs/architecture.md). So the records and the rule live here, keyed by the principal's name
as the registry already keys operators; ``operators.people`` is the one writer that checks who records what for
whom (the principal must exist; an operator never records its own identity check or training) and copies the
person's role and organisation into each record. No port or callback is needed, and nothing can forget to wire
one: a licence with no recorded people fails closed.

**Who an operator's people are.** An operator logs in as the principal bearing its name
(``operators/organisations.py``), and a person acting for it has it as organisation. So the people of operator X
are those whose latest record names X as organisation (the login named X among them); activation needs at least one
of them standing and none whose standing has lapsed. Someone acting for X without any record is refused at their
first job anyway.

Every record is ledgered with the change that adds it (never an identity number: its keyed digest at most). The
latest record of a kind counts; older ones stay as history.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core import Change, UsageError, text_sha256
from registry.people_models import PersonRecordRow, TermsVersionRow
from registry.vocabulary import EXPIRING_DAYS, EvidenceKind

#: A training is valid for at most this long after its completion (SATRE 1.6.03: training is repeated).
MAX_TRAINING_DAYS = 3 * 366
#: An identity check may be given an expiry at most this far ahead (a 居民身份证 of an adult is valid 10-20 years).
MAX_IDENTITY_DAYS = 10 * 366
#: Nothing is recorded as done before this date (a typo's year, not a person's history).
EARLIEST_RECORD = date(2000, 1, 1)
TEXT_MAX = 128
TERMS_TEXT_MAX = 200_000
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
#: A run of digits long enough to be an identity, passport or bank number: never kept as an evidence reference.
_NUMBER_RUN = re.compile(r"\d[\d\s-]{13,}[\dXx]")


class RecordKind(StrEnum):
    IDENTITY_CHECK = "identity_check"
    TERMS = "terms"
    TRAINING = "training"


class PersonRecordError(UsageError):
    """A record that cannot be what it says (bad dates, an identity number as a reference): a 4xx, never kept."""


@dataclass(frozen=True, slots=True)
class Person:
    """Whom a record is about, as the identity service knows them when the record is made."""

    name: str
    role: str
    org: str | None


@dataclass(frozen=True, slots=True)
class Standing:
    """A person's standing on ``today``: the records that count, and why they do not stand (if they do not)."""

    person: str
    today: date
    identity_check: dict[str, Any] | None
    terms: dict[str, Any] | None
    current_terms: str | None
    training: dict[str, Any] | None
    refusals: tuple[tuple[str, str], ...] = field(default=())  # (what lapsed, why) in the order checked

    @property
    def ok(self) -> bool:
        return not self.refusals

    @property
    def reason(self) -> str:
        return "; ".join(why for _, why in self.refusals)

    @property
    def refusal(self) -> str | None:
        """The first thing that lapsed (``identity_check``, ``terms`` or ``training``), ``None`` when standing."""
        return self.refusals[0][0] if self.refusals else None

    def as_json(self) -> dict[str, Any]:
        return {
            "person": self.person,
            "today": self.today.isoformat(),
            "ok": self.ok,
            "refusals": [{"what": what, "reason": why} for what, why in self.refusals],
            "identity_check": self.identity_check,
            "terms": self.terms,
            "current_terms": self.current_terms,
            "training": self.training,
        }


def _record_json(row: PersonRecordRow) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id,
        "person": row.person,
        "role": row.role,
        "org": row.org,
        "kind": row.kind,
        "on": row.on.isoformat(),
        "expires_on": row.expires_on.isoformat() if row.expires_on else None,
        "recorded_by": row.recorded_by,
        "recorded_at": row.recorded_at.isoformat(),
    }
    if row.kind == RecordKind.IDENTITY_CHECK:
        out.update(
            evidence_kind=row.evidence_kind,
            evidence_ref=row.evidence_ref,
            evidence_masked=row.evidence_masked,
            checked_by=row.checked_by,
        )
    elif row.kind == RecordKind.TERMS:
        out["terms_version"] = row.terms_version
    else:
        out["course"] = row.course
    return out


# --- the rule -----------------------------------------------------------------------------------------


def current_terms(session: Session) -> TermsVersionRow | None:
    """The terms of use in force: the latest published version (none until the agency publishes one)."""
    return session.scalar(select(TermsVersionRow).order_by(TermsVersionRow.id.desc()).limit(1))


def _latest(session: Session, person: str, kind: RecordKind) -> PersonRecordRow | None:
    query = select(PersonRecordRow).where(PersonRecordRow.person == person, PersonRecordRow.kind == str(kind))
    return session.scalar(query.order_by(PersonRecordRow.id.desc()).limit(1))


def _training(session: Session, person: str, today: date) -> PersonRecordRow | None:
    """The training that counts: among the latest record of each course, the one valid longest (or the latest)."""
    rows = session.scalars(
        select(PersonRecordRow)
        .where(PersonRecordRow.person == person, PersonRecordRow.kind == str(RecordKind.TRAINING))
        .order_by(PersonRecordRow.id)
    ).all()
    latest = {row.course: row for row in rows}  # a course recorded again replaces its earlier record
    if not latest:
        return None
    valid = [r for r in latest.values() if r.on <= today and r.expires_on is not None and r.expires_on >= today]
    if valid:
        return max(valid, key=lambda r: (r.expires_on or today, r.id))
    return max(latest.values(), key=lambda r: r.id)


def person_standing(session: Session, person: str, today: date) -> Standing:
    """Whether ``person`` stands on ``today`` (see the module), read in the caller's transaction."""
    refusals: list[tuple[str, str]] = []
    check = _latest(session, person, RecordKind.IDENTITY_CHECK)
    if check is None:
        refusals.append(
            ("identity_check", f"no identity check is recorded for {person!r} (SATRE 3.2.02): the agency records one")
        )
    elif check.expires_on is not None and check.expires_on < today:
        refusals.append(("identity_check", f"the identity check of {person!r} expired on {check.expires_on}"))
    terms_row = current_terms(session)
    accepted = _latest(session, person, RecordKind.TERMS)
    if terms_row is None:
        refusals.append(("terms", "no terms of use are published yet: the agency publishes them first"))
    elif accepted is None or accepted.terms_version != terms_row.version:
        had = f"accepted {accepted.terms_version!r}" if accepted else "accepted none"
        refusals.append(
            ("terms", f"{person!r} has not accepted the current terms of use (version {terms_row.version!r}; {had})")
        )
    training = _training(session, person, today)
    if training is None:
        refusals.append(("training", f"no training is recorded for {person!r} (SATRE 1.6.04)"))
    elif training.expires_on is None or training.expires_on < today:
        refusals.append(
            ("training", f"the training {training.course!r} of {person!r} expired on {training.expires_on}")
        )
    return Standing(
        person=person,
        today=today,
        identity_check=_record_json(check) if check else None,
        terms=_record_json(accepted) if accepted else None,
        current_terms=terms_row.version if terms_row else None,
        training=_record_json(training) if training else None,
        refusals=tuple(refusals),
    )


def people_of(session: Session, operator: str) -> list[str]:
    """The people acting for ``operator``: its login (the principal of its name) and those whose latest record
    names it as organisation."""
    rows = session.execute(
        select(PersonRecordRow.person, PersonRecordRow.org)
        .where(or_(PersonRecordRow.org == operator, PersonRecordRow.person == operator))
        .order_by(PersonRecordRow.id)
    ).all()
    latest_org: dict[str, str | None] = {}
    for person, org in rows:
        latest_org[person] = org
    return sorted(p for p, org in latest_org.items() if org == operator or p == operator)


def operator_people_refusal(session: Session, operator: str, today: date) -> str | None:
    """Why ``operator``'s licence may not become active for want of standing people, or ``None`` when it may."""
    people = people_of(session, operator)
    if not people:
        return (
            f"no person acting for operator {operator!r} has an identity check, terms acceptance or training "
            "recorded (SATRE 3.2.02, 1.6.04): record them for its login first (`keyong people …`)"
        )
    lapsed = [s for s in (person_standing(session, p, today) for p in people) if not s.ok]
    if lapsed:
        return "; ".join(s.reason for s in lapsed)
    return None


# --- writing (by ``operators.people``, which checks who may record for whom) ----------------------------


def _text(value: str | None, what: str, *, required: bool = True, limit: int = TEXT_MAX) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise PersonRecordError(f"{what} is required")
        return None
    if len(text) > limit or not text.isprintable():
        raise PersonRecordError(f"{what} must be at most {limit} printable characters")
    return text


def _past_date(value: date, what: str, today: date) -> date:
    if not isinstance(value, date):
        raise PersonRecordError(f"{what} must be a date (YYYY-MM-DD)")
    if value > today:
        raise PersonRecordError(f"{what} {value} lies in the future: record what was done, when it was done")
    if value < EARLIEST_RECORD:
        raise PersonRecordError(f"{what} {value} is before {EARLIEST_RECORD}")
    return value


def _expiry(value: date | None, start: date, today: date, max_days: int, what: str) -> date | None:
    if value is None:
        return None
    if value <= start:
        raise PersonRecordError(f"{what} {value} must come after {start}")
    if value > start + timedelta(days=max_days):
        raise PersonRecordError(f"{what} {value} is more than {max_days // 366} years after {start}")
    return value


def _evidence_ref(ref: str | None) -> str:
    text = _text(ref, "the evidence reference (where the evidence is filed)")
    assert text is not None
    if _NUMBER_RUN.search(text):
        raise PersonRecordError(
            "the evidence reference looks like an identity or account number: give where the evidence is filed "
            "(a file number), never the number itself (个人信息保护法 第五十一条)"
        )
    return text


def _number_digest(number: str | None, pepper: bytes | None) -> tuple[str | None, str | None]:
    """The keyed digest and masked form of an identity number, when one was given (never the number)."""
    if number is None or not number.strip():
        return None, None
    from desensitize import is_valid_resident_id

    cleaned = re.sub(r"[\s-]", "", number).upper()
    if not is_valid_resident_id(cleaned):
        raise PersonRecordError("the identity number is not a valid 居民身份证号码 (GB 11643: its check digit)")
    if not pepper:
        raise PersonRecordError("this instance has no pepper to key the identity number's digest: give no number")
    digest = hmac.new(pepper, cleaned.encode("ascii"), hashlib.sha256).hexdigest()
    return digest, "*" * (len(cleaned) - 4) + cleaned[-4:]


def _add(change: Change, person: Person, kind: RecordKind, on: date, **columns: Any) -> dict[str, Any]:
    row = PersonRecordRow(
        person=person.name, role=person.role, org=person.org, kind=str(kind), on=on,
        recorded_by=change.actor.name, **columns,
    )  # fmt: skip
    change.session.add(row)
    change.session.flush()
    view = _record_json(row)
    # The ledger gets the record, but free text about a person only as its hash, and nothing of a number.
    payload = {k: v for k, v in view.items() if k not in ("id", "evidence_ref", "evidence_masked")}
    if row.evidence_ref:
        payload["evidence_ref_sha256"] = text_sha256(row.evidence_ref)
        payload["evidence_number_given"] = row.evidence_digest is not None
    change.log(f"person.{kind}_recorded", f"principal:{person.name}", payload)
    return view


def record_identity_check(
    change: Change,
    person: Person,
    *,
    evidence_kind: EvidenceKind | str,
    evidence_ref: str,
    checked_on: date,
    today: date,
    checked_by: str | None = None,
    expires_on: date | None = None,
    id_number: str | None = None,
    pepper: bytes | None = None,
) -> dict[str, Any]:
    """Record that ``person``'s identity was checked (SATRE 3.2.02); the number, if given, only as a keyed digest."""
    try:
        kind = EvidenceKind(evidence_kind)
    except ValueError:
        raise PersonRecordError(f"unknown evidence kind {evidence_kind!r}; one of {', '.join(EvidenceKind)}") from None
    checked_on = _past_date(checked_on, "checked on", today)
    digest, masked = _number_digest(id_number, pepper)
    return _add(
        change, person, RecordKind.IDENTITY_CHECK, checked_on,
        expires_on=_expiry(expires_on, checked_on, today, MAX_IDENTITY_DAYS, "the identity check's expiry"),
        evidence_kind=str(kind), evidence_ref=_evidence_ref(evidence_ref),
        evidence_digest=digest, evidence_masked=masked,
        checked_by=_text(checked_by, "checked by", required=False) or change.actor.name,
    )  # fmt: skip


def record_terms(change: Change, person: Person, *, version: str, today: date) -> dict[str, Any]:
    """Record that ``person`` accepted the terms of use of ``version``, which must be the current one (SATRE 1.5.02)."""
    current = current_terms(change.session)
    if current is None:
        raise PersonRecordError("no terms of use are published yet: the agency publishes them first")
    if version != current.version:
        raise PersonRecordError(
            f"terms of use {version!r} are not the current ones: accept version {current.version!r}"
        )
    return _add(change, person, RecordKind.TERMS, today, terms_version=current.version)


def record_training(
    change: Change, person: Person, *, course: str, completed_on: date, expires_on: date, today: date
) -> dict[str, Any]:
    """Record a completed training and its expiry (SATRE 1.6.04); an expiry is required: training is repeated."""
    course_name = _text(course, "the course")
    completed_on = _past_date(completed_on, "completed on", today)
    if expires_on is None:
        raise PersonRecordError("a training needs its expiry (--expires-on): training is repeated (SATRE 1.6.03)")
    expiry = _expiry(expires_on, completed_on, today, MAX_TRAINING_DAYS, "the training's expiry")
    return _add(change, person, RecordKind.TRAINING, completed_on, course=course_name, expires_on=expiry)


def publish_terms(change: Change, *, version: str, title: str, text: str) -> dict[str, Any]:
    """Publish a new version of the terms of use; from now on only its acceptance counts."""
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        raise PersonRecordError("a terms version is 1-32 of A-Z, a-z, 0-9, '.', '_', '-' (e.g. 2026-12)")
    clean_title = _text(title, "the terms' title", limit=200)
    body = (text or "").strip()
    if not body or len(body) > TERMS_TEXT_MAX:
        raise PersonRecordError(f"the terms' text must be 1-{TERMS_TEXT_MAX:,} characters")
    if any(not (ch.isprintable() or ch in "\n\r\t") for ch in body):  # no NUL, no lone surrogate
        raise PersonRecordError("the terms' text must be printable text (lines, tabs, no control characters)")
    session = change.session
    if session.scalar(select(TermsVersionRow.id).where(TermsVersionRow.version == version)) is not None:
        raise PersonRecordError(f"terms version {version!r} was already published: publish a new version")
    row = TermsVersionRow(
        version=version, title=clean_title, text_sha256=text_sha256(body), text=body, published_by=change.actor.name
    )
    session.add(row)
    session.flush()
    view = terms_json(row)
    change.log("terms.published", f"terms:{version}", {k: v for k, v in view.items() if k != "text"})
    return view


def terms_json(row: TermsVersionRow, *, with_text: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "version": row.version,
        "title": row.title,
        "text_sha256": row.text_sha256,
        "published_by": row.published_by,
        "published_at": row.published_at.isoformat(),
    }
    if with_text:
        out["text"] = row.text
    return out


def expiring(session: Session, today: date, within_days: int = EXPIRING_DAYS) -> list[dict[str, Any]]:
    """Identity checks and trainings that count and expire within ``within_days``, or expired as long ago and were
    not renewed (negative ``days_left``): the agency's reminders (SATRE 1.6.03)."""
    if not 0 <= within_days <= 366:
        raise PersonRecordError("within days must be 0-366")
    horizon = today + timedelta(days=within_days)
    rows = session.scalars(
        select(PersonRecordRow)
        .where(
            PersonRecordRow.expires_on.is_not(None),
            PersonRecordRow.expires_on <= horizon,
            PersonRecordRow.expires_on >= today - timedelta(days=within_days),
        )
        .order_by(PersonRecordRow.expires_on, PersonRecordRow.id)
    ).all()
    out = []
    for row in rows:
        counts = (
            _training(session, row.person, today)
            if row.kind == RecordKind.TRAINING
            else _latest(session, row.person, RecordKind(row.kind))
        )
        if counts is None or counts.id != row.id:
            continue  # renewed or replaced since
        view = _record_json(row)
        assert row.expires_on is not None
        view["days_left"] = (row.expires_on - today).days
        out.append(view)
    return out


def records_of(session: Session, person: str) -> list[dict[str, Any]]:
    """Every record about ``person``, oldest first (the history the latest ones replaced included)."""
    query = select(PersonRecordRow).where(PersonRecordRow.person == person).order_by(PersonRecordRow.id)
    return [_record_json(r) for r in session.scalars(query)]


__all__ = [
    "EXPIRING_DAYS",
    "EvidenceKind",
    "Person",
    "PersonRecordError",
    "RecordKind",
    "Standing",
    "current_terms",
    "expiring",
    "operator_people_refusal",
    "people_of",
    "person_standing",
    "publish_terms",
    "record_identity_check",
    "record_terms",
    "record_training",
    "records_of",
    "terms_json",
]
