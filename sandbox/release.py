"""The release workflow: a done job's guarded outputs become a registered product only after review.

Why these rules (issue 7; 双鸭山市公共数据管理暂行办法):

* 第五十二条 (pre-release compliance review): nothing leaves as a product before the agency's review.
  A job the export guard blocked, or has not judged yet, cannot even be requested (第五十四条).
* Independence: a configurable number of reviewers (default 2), each an agency principal and never
  the requesting organisation itself, vote approve / changes_requested / reject per file. A
  reviewer's overall vote is its worst file decision. Votes are sealed: no one sees another's vote
  until the round is decided, so the second reviewer is not anchored by the first; the ledger holds a
  salted commitment to each vote when cast and the votes themselves once the round is decided.
* Decision: unanimity of the required reviewers decides; a disagreement needs a further reviewer,
  and is then decided by a strict majority of the round's votes (a tie waits for yet another).
* States: submitted → under_review → approved | returned (changes requested: rerun, then resubmit
  as a new round) | rejected | withdrawn (by the operator, while not decided).
* Approval registers the product with its lineage (registry ``Products.register``: datasets and
  versions, code hash, guard verdict and findings, reviews) in the same transaction as the decision,
  and copies the approved files into the product store ``products/<name>/`` after checking their
  SHA-256 against the job's record. Delivery (:meth:`Releases.fetch`) stamps the attribution
  (第四十一条: 数据来源, 获取日期) into each delivered copy, only to the owning operator and only while
  no objection suspends the product (第四十条).
* Every step is a ledger entry in the transaction of the change (第二十条); free texts (reasons,
  justifications) are ledgered as their SHA-256 only.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import secrets
import shutil
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core import (
    Actor,
    Change,
    JoinedRecorder,
    NotFoundError,
    PermissionDeniedError,
    Recorder,
    RegistryError,
    file_sha256,
    require_role,
    text_sha256,
)
from registry.config import RegistryConfig
from registry.models import LicenceRow, ProductRow
from registry.products import Products, attribution_metadata, stamp_artifact
from sandbox.models import JobRow, JobState
from sandbox.release_models import Decision, ReleaseRow, ReleaseState, ReleaseVoteRow

DEFAULT_REVIEWERS = 2
PRODUCT_STORE = "products"
_SEVERITY = {Decision.APPROVE: 0, Decision.CHANGES_REQUESTED: 1, Decision.REJECT: 2}
_OUTCOME = {
    Decision.APPROVE: ReleaseState.APPROVED,
    Decision.CHANGES_REQUESTED: ReleaseState.RETURNED,
    Decision.REJECT: ReleaseState.REJECTED,
}
_READ_ALL = ("agency", "regulator", "custodian")
MAX_JUSTIFICATION_CHARS = 4000


class ReleaseError(RegistryError):
    """A release step was refused; the message says why and what would make it acceptable."""


def _canonical_sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def _findings_of(session: Session, job: JobRow) -> builtins.list[dict[str, Any]]:
    """The export guard's findings of a job (``jobs.findings``, set by the guard, migration 0005).

    Read through the mapped attribute when the model has it, else straight from the column, so this
    module does not depend on the order in which the guard's model change lands.
    """
    if hasattr(JobRow, "findings"):
        return list(getattr(job, "findings", None) or [])
    raw = session.execute(text("SELECT findings FROM jobs WHERE id = :id"), {"id": job.id}).scalar()
    loaded = json.loads(raw) if isinstance(raw, str) else raw
    return list(loaded or [])


@dataclass(frozen=True, slots=True)
class ReleaseView:
    """A release as ``viewer`` may see it: sealed votes of an undecided round are left out."""

    id: int
    job: int
    operator: str
    licence_id: int
    product: str
    fee_class: str
    state: str
    round: int
    required_reviews: int
    votes_needed: int
    verdict: str
    findings: list[dict[str, Any]]
    justifications: dict[str, str]
    outputs: list[dict[str, Any]]
    votes: list[dict[str, Any]]  # decided rounds only (plus the viewer's own sealed vote)
    votes_cast: int  # in the current round
    reason: str | None
    product_id: int | None
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "release": self.id,
            "job": self.job,
            "operator": self.operator,
            "licence": self.licence_id,
            "product": self.product,
            "fee_class": self.fee_class,
            "state": self.state,
            "round": self.round,
            "required_reviews": self.required_reviews,
            "votes_needed": self.votes_needed,
            "verdict": self.verdict,
            "findings": self.findings,
            "justifications": self.justifications,
            "outputs": self.outputs,
            "votes": self.votes,
            "votes_cast": self.votes_cast,
            "reason": self.reason,
            "product_id": self.product_id,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
        }


def _vote_json(vote: ReleaseVoteRow) -> dict[str, Any]:
    return {
        "round": vote.round,
        "reviewer": vote.reviewer,
        "decision": vote.decision,
        "files": dict(vote.files or {}),
        "reason": vote.reason,
        "voted_at": vote.voted_at.isoformat(),
    }


def _round_decided(row: ReleaseRow) -> bool:
    return not ReleaseState(row.state).open and row.state != ReleaseState.WITHDRAWN


def votes_needed(decisions: Sequence[str], required: int) -> int:
    """How many more votes the round needs before it is decided (0: decided)."""
    if len(decisions) < required:
        return required - len(decisions)
    return 0 if outcome_of(decisions, required) is not None else 1


def outcome_of(decisions: Sequence[str], required: int) -> Decision | None:
    """Unanimity of the required reviewers, else (after a further reviewer) a strict majority."""
    if len(decisions) < required or not decisions:
        return None
    counts = Counter(decisions)
    top, top_count = counts.most_common(1)[0]
    if top_count == len(decisions):
        return Decision(top)
    if len(decisions) > required and top_count * 2 > len(decisions):
        return Decision(top)
    return None


class Releases:
    """Requests, sealed reviews, decisions and delivery; each method is one ledgered transaction."""

    def __init__(
        self,
        recorder: Recorder,
        config: RegistryConfig,
        *,
        required_reviews: int = DEFAULT_REVIEWERS,
        is_reviewer: Callable[[str], bool] | None = None,
    ) -> None:
        if required_reviews < 1:
            raise ValueError("at least one reviewer is required")
        self.recorder = recorder
        self.config = config
        self.required_reviews = required_reviews
        self.is_reviewer = is_reviewer

    @property
    def home(self) -> Path:
        return Path(self.config.home)

    # --- views ------------------------------------------------------------------------------

    def _view(self, session: Session, row: ReleaseRow, viewer: Actor) -> ReleaseView:
        votes = list(
            session.scalars(
                select(ReleaseVoteRow).where(ReleaseVoteRow.release_id == row.id).order_by(ReleaseVoteRow.id)
            )
        )
        current = [v for v in votes if v.round == row.round]
        sealed = ReleaseState(row.state).open
        shown = [
            _vote_json(v)
            for v in votes
            if v.round != row.round or not sealed or (v.reviewer == viewer.name and viewer.role == "agency")
        ]
        outputs = [dict(o) for o in row.outputs or []]
        if not viewer.is_host:  # paths in the home are the administrator's, never a remote user's
            outputs = [{k: o[k] for k in ("name", "bytes", "sha256") if k in o} for o in outputs]
        return ReleaseView(
            id=row.id,
            job=row.job_id,
            operator=row.operator,
            licence_id=row.licence_id,
            product=row.product,
            fee_class=row.fee_class,
            state=row.state,
            round=row.round,
            required_reviews=row.required_reviews,
            votes_needed=votes_needed([v.decision for v in current], row.required_reviews) if sealed else 0,
            verdict=row.verdict,
            findings=[dict(f) for f in row.findings or []],
            justifications={str(k): str(v) for k, v in (row.justifications or {}).items()},
            outputs=outputs,
            votes=shown,
            votes_cast=len(current),
            reason=row.reason,
            product_id=row.product_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
            decided_at=row.decided_at,
        )

    @staticmethod
    def _visible(session: Session, release_id: int, viewer: Actor, *, lock: bool = False) -> ReleaseRow:
        query = select(ReleaseRow).where(ReleaseRow.id == release_id)
        if lock and session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        row = session.scalar(query)
        # An operator never learns that another operator's release exists.
        if row is None or (viewer.role == "operator" and row.operator != viewer.name):
            raise NotFoundError(f"no release {release_id}")
        if not viewer.is_host and viewer.role not in (*_READ_ALL, "operator"):
            raise NotFoundError(f"no release {release_id}")
        return row

    def get(self, release_id: int, *, viewer: Actor) -> ReleaseView:
        with self.recorder.read() as session:
            return self._view(session, self._visible(session, release_id, viewer), viewer)

    def list(self, *, viewer: Actor, state: str | None = None) -> builtins.list[ReleaseView]:
        """Oldest first; an operator sees its own, the agency and regulators all (pending: ``state``)."""
        require_role(viewer, "operator", *_READ_ALL)
        query = select(ReleaseRow).order_by(ReleaseRow.id)
        if viewer.role == "operator":
            query = query.where(ReleaseRow.operator == viewer.name)
        if state:
            query = query.where(ReleaseRow.state == ReleaseState(state).value)
        with self.recorder.read() as session:
            return [self._view(session, row, viewer) for row in session.scalars(query)]

    # --- the operator's side ----------------------------------------------------------------

    def _checked_job(
        self,
        session: Session,
        job_id: int,
        by: Actor,
        files: Sequence[str] | None,
        justifications: Mapping[str, str] | None,
    ) -> tuple[JobRow, list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
        job = session.get(JobRow, job_id)
        if job is None or (not by.is_host and job.operator != by.name):
            raise NotFoundError(f"no job {job_id}")
        if job.state != JobState.DONE.value:
            raise ReleaseError(f"job {job_id} is {job.state}: only a finished (done) job's outputs can be released")
        if job.verdict is None:
            raise ReleaseError(
                f"job {job_id} has not been judged by the export guard yet: nothing leaves without a verdict"
            )
        if job.verdict == "block":
            raise ReleaseError(
                f"the export guard blocked job {job_id}: a blocked output is never released (双鸭山 第五十四条); "
                "change the job so its output passes the guard"
            )
        if job.verdict not in ("pass", "review"):
            raise ReleaseError(f"job {job_id} has an unknown verdict {job.verdict!r}")
        if job.licence_id is None:
            raise ReleaseError(f"job {job_id} ran under no licence")
        available = {str(o["name"]): dict(o) for o in job.outputs or []}
        if not available:
            raise ReleaseError(f"job {job_id} produced no output to release")
        wanted = list(files) if files else list(available)
        unknown = [name for name in wanted if name not in available]
        if unknown:
            raise ReleaseError(f"job {job_id} has no output named {', '.join(map(repr, unknown))}")
        if len(set(wanted)) != len(wanted):
            raise ReleaseError("an output is named twice")
        findings = [dict(f) for f in _findings_of(session, job)]
        checked: dict[str, str] = {}
        for key, given in (justifications or {}).items():
            try:
                index = int(key)
            except (TypeError, ValueError):
                raise ReleaseError(f"justification key {key!r} must be the index of a finding") from None
            if not 0 <= index < len(findings):
                raise ReleaseError(f"job {job_id} has no finding {index} to justify ({len(findings)} findings)")
            if findings[index].get("severity") == "hard":
                raise ReleaseError(f"finding {index} is hard: it blocks, and no justification releases it")
            body = str(given or "").strip()
            if not body or len(body) > MAX_JUSTIFICATION_CHARS:
                raise ReleaseError(f"justification {index} must be 1-{MAX_JUSTIFICATION_CHARS} characters")
            checked[str(index)] = body
        return job, [available[name] for name in wanted], findings, checked

    @staticmethod
    def _name_free(session: Session, product: str, *, excluding: int | None = None) -> None:
        if session.scalar(select(ProductRow.id).where(ProductRow.name == product)) is not None:
            raise ReleaseError(f"a product named {product!r} is already registered: choose another name")
        query = select(ReleaseRow.id).where(
            ReleaseRow.product == product,
            ReleaseRow.state.in_(
                [ReleaseState.SUBMITTED.value, ReleaseState.UNDER_REVIEW.value, ReleaseState.RETURNED.value]
            ),
        )
        if excluding is not None:
            query = query.where(ReleaseRow.id != excluding)
        if session.scalar(query) is not None:
            raise ReleaseError(f"another pending release already asks for the product name {product!r}")

    def request(
        self,
        job_id: int,
        *,
        product: str,
        by: Actor,
        fee_class: str | None = None,
        justifications: Mapping[str, str] | None = None,
        files: Sequence[str] | None = None,
    ) -> ReleaseView:
        """Ask for a done, guarded job's outputs (all, or ``files``) to be released as ``product``.

        The fee class must be the licence's own (双鸭山 第四十四条: 公益 free, 经营性 priced as licensed).
        """
        require_role(by, "operator")
        product = (product or "").strip()
        if not product:
            raise ReleaseError("a release needs a product name")
        with self.recorder.change(by) as change:
            session = change.session
            job, outputs, findings, checked = self._checked_job(session, job_id, by, files, justifications)
            licence = session.get(LicenceRow, job.licence_id)
            if licence is None:
                raise NotFoundError(f"no licence {job.licence_id}")
            if fee_class is not None and fee_class != licence.fee_class:
                raise ReleaseError(
                    f"fee class {fee_class!r} is not within licence {licence.id}, which grants {licence.fee_class!r} "
                    "(双鸭山 第四十四条)"
                )
            self._name_free(session, product)
            now = self.config.now()
            row = ReleaseRow(
                job_id=job.id,
                operator=job.operator,
                licence_id=licence.id,
                product=product,
                fee_class=licence.fee_class,
                state=ReleaseState.SUBMITTED.value,
                round=1,
                required_reviews=self.required_reviews,
                verdict=str(job.verdict),
                findings=findings,
                justifications=checked,
                outputs=outputs,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            change.log(
                "release.requested",
                f"release:{row.id}",
                {
                    "release": row.id,
                    "job": job.id,
                    "operator": job.operator,
                    "licence_id": licence.id,
                    "product": product,
                    "fee_class": licence.fee_class,
                    "verdict": row.verdict,
                    "outputs": [{"name": o["name"], "sha256": o["sha256"]} for o in outputs],
                    "justifications_sha256": {k: text_sha256(v) for k, v in checked.items()},
                    "required_reviews": self.required_reviews,
                },
            )
            return self._view(session, row, by)

    def resubmit(
        self,
        release_id: int,
        *,
        job_id: int,
        by: Actor,
        justifications: Mapping[str, str] | None = None,
        files: Sequence[str] | None = None,
    ) -> ReleaseView:
        """A returned release, with the rerun job's outputs, goes back to review as a new round."""
        require_role(by, "operator")
        with self.recorder.change(by) as change:
            session = change.session
            row = self._visible(session, release_id, by, lock=True)
            if row.state != ReleaseState.RETURNED:
                raise ReleaseError(f"release {release_id} is {row.state}: only a returned release can be resubmitted")
            job, outputs, findings, checked = self._checked_job(session, job_id, by, files, justifications)
            if job.licence_id != row.licence_id:
                raise ReleaseError(f"job {job_id} ran under another licence than release {release_id}")
            self._name_free(session, row.product, excluding=row.id)
            row.job_id = job.id
            row.round += 1
            row.state = ReleaseState.SUBMITTED.value
            row.verdict = str(job.verdict)
            row.findings = findings
            row.justifications = checked
            row.outputs = outputs
            row.reason = None
            row.decided_at = None
            row.updated_at = self.config.now()
            change.log(
                "release.resubmitted",
                f"release:{row.id}",
                {
                    "release": row.id,
                    "round": row.round,
                    "job": job.id,
                    "verdict": row.verdict,
                    "outputs": [{"name": o["name"], "sha256": o["sha256"]} for o in outputs],
                    "justifications_sha256": {k: text_sha256(v) for k, v in checked.items()},
                },
            )
            return self._view(session, row, by)

    def withdraw(self, release_id: int, *, by: Actor, reason: str = "") -> ReleaseView:
        """The operator takes back a release not yet decided (submitted, under review or returned)."""
        require_role(by, "operator")
        with self.recorder.change(by) as change:
            session = change.session
            row = self._visible(session, release_id, by, lock=True)
            if row.state not in (ReleaseState.SUBMITTED, ReleaseState.UNDER_REVIEW, ReleaseState.RETURNED):
                raise ReleaseError(f"release {release_id} is {row.state}: it can no longer be withdrawn")
            previous = row.state
            row.state = ReleaseState.WITHDRAWN.value
            row.reason = reason.strip() or None
            row.updated_at = self.config.now()
            change.log(
                "release.withdrawn",
                f"release:{row.id}",
                {"release": row.id, "from": previous, "round": row.round, "reason_sha256": text_sha256(reason)},
            )
            return self._view(session, row, by)

    # --- the agency's side ------------------------------------------------------------------

    def vote(
        self,
        release_id: int,
        decision: Decision | str,
        *,
        by: Actor,
        reason: str = "",
        files: Mapping[str, Decision | str] | None = None,
    ) -> ReleaseView:
        """One reviewer's sealed vote: ``decision`` for every file, overridden per file by ``files``.

        Refused for anyone but a named agency principal, for the requesting organisation itself, and
        for a second vote of the same reviewer in one round. The round is decided in this same
        transaction once enough votes agree (see :func:`outcome_of`).
        """
        if by.is_host or by.role != "agency":
            raise PermissionDeniedError("a review vote is cast by a named agency principal (授权运营实施机构)")
        if self.is_reviewer is not None and not self.is_reviewer(by.name):
            raise PermissionDeniedError(f"{by.name!r} is not an active agency principal: it may not review")
        try:
            overall_default = Decision(decision)
            per_file = {str(k): Decision(v) for k, v in (files or {}).items()}
        except ValueError:
            raise ReleaseError(f"a decision is one of {', '.join(Decision)}") from None
        reason = (reason or "").strip()
        with self.recorder.change(by) as change:
            session = change.session
            row = self._visible(session, release_id, by, lock=True)
            if by.name == row.operator:
                raise PermissionDeniedError(
                    f"{by.name!r} requested this release: its own organisation never reviews it (independent review)"
                )
            if not ReleaseState(row.state).open:
                raise ReleaseError(f"release {release_id} is {row.state}: it is not awaiting review")
            names = [str(o["name"]) for o in row.outputs or []]
            unknown = [name for name in per_file if name not in names]
            if unknown:
                raise ReleaseError(f"release {release_id} has no file {', '.join(map(repr, unknown))}")
            decisions = {name: per_file.get(name, overall_default) for name in names}
            overall = max(decisions.values(), key=lambda d: _SEVERITY[d])
            if overall != Decision.APPROVE and not reason:
                raise ReleaseError("changes requested or a rejection need a reason the operator can act on")
            already = session.scalar(
                select(ReleaseVoteRow.id).where(
                    ReleaseVoteRow.release_id == row.id,
                    ReleaseVoteRow.round == row.round,
                    ReleaseVoteRow.reviewer == by.name,
                )
            )
            if already is not None:
                raise ReleaseError(f"{by.name!r} has already voted in round {row.round} of release {release_id}")
            now = self.config.now()
            salt = secrets.token_hex(16)
            vote = ReleaseVoteRow(
                release_id=row.id,
                round=row.round,
                reviewer=by.name,
                decision=overall.value,
                files={k: v.value for k, v in decisions.items()},
                reason=reason,
                salt=salt,
                voted_at=now,
            )
            session.add(vote)
            session.flush()
            commitment = {
                "salt": salt,
                "decision": vote.decision,
                "files": vote.files,
                "reason_sha256": text_sha256(reason),
            }
            change.log(
                "release.voted",
                f"release:{row.id}",
                {
                    "release": row.id,
                    "round": row.round,
                    "reviewer": by.name,
                    "vote_sha256": _canonical_sha256(commitment),
                },
            )
            if row.state == ReleaseState.SUBMITTED:
                row.state = ReleaseState.UNDER_REVIEW.value
            row.updated_at = now
            votes = list(
                session.scalars(
                    select(ReleaseVoteRow)
                    .where(ReleaseVoteRow.release_id == row.id, ReleaseVoteRow.round == row.round)
                    .order_by(ReleaseVoteRow.id)
                )
            )
            outcome = outcome_of([v.decision for v in votes], row.required_reviews)
            if outcome is not None:
                self._decide(change, row, votes, outcome, by)
            return self._view(session, row, by)

    def _decide(
        self, change: Change, row: ReleaseRow, votes: builtins.list[ReleaseVoteRow], outcome: Decision, by: Actor
    ) -> None:
        row.state = _OUTCOME[outcome].value
        row.decided_at = self.config.now()
        row.reason = "; ".join(f"{v.reviewer}: {v.reason}" for v in votes if v.reason) or None
        revealed = [{"reviewer": v.reviewer, "decision": v.decision, "files": v.files, "salt": v.salt} for v in votes]
        change.log(
            "release.decided",
            f"release:{row.id}",
            {"release": row.id, "round": row.round, "outcome": row.state, "votes": revealed},
        )
        if outcome == Decision.APPROVE:
            self._register(change, row, votes, by)

    def _register(self, change: Change, row: ReleaseRow, votes: builtins.list[ReleaseVoteRow], by: Actor) -> None:
        """Copy the approved files into the store, then register the product in this transaction."""
        session = change.session
        job = session.get(JobRow, row.job_id)
        if job is None:
            raise NotFoundError(f"no job {row.job_id}")
        store = self.home / PRODUCT_STORE / row.product
        if store.exists():
            raise ReleaseError(f"the product store already holds {row.product!r}; nothing was registered")
        staging = store.with_name(f".{row.product}.staging-{secrets.token_hex(4)}")
        staging.mkdir(parents=True)
        try:
            artifacts: builtins.list[dict[str, Any]] = []
            for output in row.outputs or []:
                source = self.home / str(output["path"])
                if not source.is_file() or file_sha256(source)[0] != output["sha256"]:
                    raise ReleaseError(
                        f"output {output['name']!r} of job {job.id} is missing or changed since the guard judged it"
                    )
                target = staging / Path(str(output["name"])).name
                shutil.copyfile(source, target)
                artifacts.append(
                    {
                        "name": output["name"],
                        "bytes": target.stat().st_size,
                        "sha256": output["sha256"],
                        "path": str((store / target.name).relative_to(self.home)),
                    }
                )
            staging.rename(store)
            try:
                products = Products(JoinedRecorder(change, self.recorder), self.config)
                view = products.register(
                    row.product,
                    operator=row.operator,
                    licence_id=row.licence_id,
                    job=str(job.id),
                    scenario=job.scenario,
                    datasets=[
                        {"name": name, "version": (granted or {}).get("version")}
                        for name, granted in (job.datasets or {}).items()
                    ],
                    code_sha256=job.code_sha256,
                    guard={"verdict": row.verdict, "findings": list(row.findings or [])},
                    reviews=[
                        {"reviewer": v.reviewer, "decision": "approve", "reason": v.reason}
                        for v in votes
                        if v.decision == Decision.APPROVE
                    ],
                    artifacts=artifacts,
                    by=by,
                    # Outvoted by a further reviewer: the product's lineage keeps who disagreed and why.
                    dissent=[
                        {"reviewer": v.reviewer, "decision": v.decision, "reason": v.reason}
                        for v in votes
                        if v.decision != Decision.APPROVE
                    ],
                )
                row.product_id = view.id
                session.flush()
            except BaseException:
                shutil.rmtree(store, ignore_errors=True)
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # --- delivery -----------------------------------------------------------------------------

    def fetch(self, name: str, to: Path, *, by: Actor) -> dict[str, Any]:
        """Copy an available product's artifacts to ``to``, each stamped with its attribution.

        Only the owning operator (or the host administrator acting for it) receives it, and only while
        no objection suspends it (双鸭山 第四十条); the delivery is ledgered.
        """
        require_role(by, "operator")
        products = Products(self.recorder, self.config)
        product = products.deliverable(name, viewer=by)
        attribution = attribution_metadata(product)
        to = Path(to)
        to.mkdir(parents=True, exist_ok=True)
        files: builtins.list[dict[str, Any]] = []
        for artifact in product.artifacts:
            source = Path(artifact["path"])
            source = source if source.is_absolute() else self.home / source
            if not source.is_file():
                raise ReleaseError(f"artifact {artifact['name']!r} of product {name!r} is missing from the store")
            target = to / Path(artifact["name"]).name
            shutil.copyfile(source, target)
            stamp_artifact(target, attribution)
            files.append({"name": artifact["name"], "path": str(target), "sha256": file_sha256(target)[0]})
        with self.recorder.change(by) as change:
            change.log(
                "product.fetched",
                f"product:{name}",
                {
                    "product_id": product.id,
                    "operator": product.operator,
                    "files": [{"name": f["name"], "sha256": f["sha256"]} for f in files],
                    "attribution_sha256": _canonical_sha256(attribution),
                },
            )
        return {"product": name, "files": files, "attribution": attribution}


__all__ = [
    "DEFAULT_REVIEWERS",
    "PRODUCT_STORE",
    "Decision",
    "ReleaseError",
    "ReleaseState",
    "ReleaseView",
    "Releases",
    "outcome_of",
    "votes_needed",
]
