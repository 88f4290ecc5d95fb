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
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core import (
    Actor,
    NotFoundError,
    ObjectMissingError,
    Recorder,
    RegistryError,
    StorageError,
    crash_point,
    file_sha256,
    require_role,
    text_sha256,
)
from registry import (
    Custodians,
    Products,
    RegistryConfig,
    Scratch,
    VaultError,
    attribution_metadata,
    check_product_name,
    egress_requirement,
    licence_standing,
    product_name_taken,
    require_not_frozen,
    require_qualified,
    stamp_artifact,
)
from sandbox.models import JobRow, JobState
from sandbox.release_comments import ReleaseComments
from sandbox.release_models import Decision, ReleaseError, ReleaseRow, ReleaseState, SignOff
from sandbox.release_review import PRODUCT_STORE, ReleaseReview
from sandbox.release_signoff import ReleaseSignoffs
from sandbox.release_views import (
    READ_ALL,
    ReleaseView,
    json_sha256,
    outcome_of,
    release_view,
    visible_release,
    votes_needed,
)
from sandbox.stored_files import deliver_file, stored_at_rest, write_plain

DEFAULT_REVIEWERS = 2
MAX_JUSTIFICATION_CHARS = 4000


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


class Releases:
    """Requests, sealed reviews, decisions and delivery; each method is one ledgered transaction."""

    def __init__(
        self,
        recorder: Recorder,
        config: RegistryConfig,
        *,
        required_reviews: int = DEFAULT_REVIEWERS,
        is_reviewer: Callable[[str], bool] | None = None,
        custodians: Custodians | None = None,
    ) -> None:
        if required_reviews < 1:
            raise ValueError("at least one reviewer is required")
        self.recorder = recorder
        self.config = config
        self.required_reviews = required_reviews
        self.is_reviewer = is_reviewer
        self.review = ReleaseReview(recorder, config, is_reviewer=is_reviewer)
        self.signoffs = ReleaseSignoffs(recorder, config, self.review, custodians)
        # The review thread and the queue's assignments (issue 18): the console and the API share this one core.
        self.comments = ReleaseComments(recorder, config)

    @property
    def home(self) -> Path:
        return Path(self.config.home)

    def get(self, release_id: int, *, viewer: Actor) -> ReleaseView:
        with self.recorder.read() as session:
            return release_view(session, visible_release(session, release_id, viewer), viewer)

    def list(self, *, viewer: Actor, state: str | None = None) -> builtins.list[ReleaseView]:
        """Oldest first; an operator sees its own, the agency and regulators all (pending: ``state``)."""
        require_role(viewer, "operator", *READ_ALL)
        query = select(ReleaseRow).order_by(ReleaseRow.id)
        if viewer.role == "operator":
            query = query.where(ReleaseRow.operator == viewer.name)
        if state:
            query = query.where(ReleaseRow.state == ReleaseState.named(state).value)
        with self.recorder.read() as session:
            return [release_view(session, row, viewer) for row in session.scalars(query)]

    # --- the operator's side ----------------------------------------------------------------

    def _checked_job(
        self,
        session: Session,
        job_id: int,
        by: Actor,
        files: Sequence[str] | None,
        justifications: Mapping[str, str] | None,
    ) -> tuple[JobRow, builtins.list[dict[str, Any]], builtins.list[dict[str, Any]], dict[str, str]]:
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
        if product_name_taken(session, product):
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
        A suspended operator opens no release request until the agency restores it (第三十一条, 第七十五条).
        """
        require_role(by, "operator")
        product = (product or "").strip()
        if not product:
            raise ReleaseError("a release needs a product name")
        try:  # the registry's one rule, asked now: a name it would refuse must not wait for the deciding vote
            product = check_product_name(product)
        except RegistryError as exc:
            raise ReleaseError(str(exc)) from None
        with self.recorder.change(by) as change:
            session = change.session
            require_not_frozen(session, "a release request")  # egress stops while the platform is frozen
            job, outputs, findings, checked = self._checked_job(session, job_id, by, files, justifications)
            require_qualified(session, job.operator, "a release request")
            licence = licence_standing(session, job.licence_id, self.config.now().date())
            if licence is None:
                raise NotFoundError(f"no licence {job.licence_id}")
            if fee_class is not None and fee_class != licence.fee_class:
                raise ReleaseError(
                    f"fee class {fee_class!r} is not within licence {licence.id}, which grants {licence.fee_class!r} "
                    "(双鸭山 第四十四条)"
                )
            self._name_free(session, product)
            now = self.config.now()
            required, delegated = egress_requirement(session, (job.datasets or {}).keys(), now)
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
                signoff_required=required,
                delegated=delegated,
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
                    "signoff_required": required,
                    "delegated": delegated,
                },
            )
            return release_view(session, row, by)

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
            require_not_frozen(session, "resubmitting a release")
            row = visible_release(session, release_id, by, lock=True)
            if row.state != ReleaseState.RETURNED:
                raise ReleaseError(f"release {release_id} is {row.state}: only a returned release can be resubmitted")
            job, outputs, findings, checked = self._checked_job(session, job_id, by, files, justifications)
            require_qualified(session, job.operator, "resubmitting a release")
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
            # A new round with a new job: its lineage is asked afresh, under the delegations live now.
            row.signoff_required, row.delegated = egress_requirement(
                session, (job.datasets or {}).keys(), self.config.now()
            )
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
                    "signoff_required": row.signoff_required,
                    "delegated": row.delegated,
                },
            )
            return release_view(session, row, by)

    def withdraw(self, release_id: int, *, by: Actor, reason: str = "") -> ReleaseView:
        """The operator takes back a release not yet decided (submitted, under review or returned)."""
        require_role(by, "operator")
        with self.recorder.change(by) as change:
            session = change.session
            row = visible_release(session, release_id, by, lock=True)
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
            return release_view(session, row, by)

    # --- the agency's side ------------------------------------------------------------------

    def vote(
        self,
        release_id: int,
        decision: Decision | str,
        *,
        by: Actor,
        reason: str = "",
        files: Mapping[str, Decision | str] | None = None,
        comment: str = "",
        round_shown: int | None = None,
        files_sha256: Mapping[str, str] | None = None,
    ) -> ReleaseView:
        """One reviewer's sealed vote (see :meth:`sandbox.release_review.ReleaseReview.vote`)."""
        return self.review.vote(
            release_id,
            decision,
            by=by,
            reason=reason,
            files=files,
            comment=comment,
            round_shown=round_shown,
            files_sha256=files_sha256,
        )

    # --- the custodian's side -----------------------------------------------------------------

    def sign_off(
        self,
        release_id: int,
        decision: SignOff | str,
        *,
        by: Actor,
        datasets: Sequence[str] | None = None,
        reason: str = "",
    ) -> ReleaseView:
        """A custodian's sign-off or refusal (see :mod:`sandbox.release_signoff`)."""
        return self.signoffs.sign_off(release_id, decision, by=by, datasets=datasets, reason=reason)

    def awaiting_signoff(self, *, viewer: Actor) -> builtins.list[ReleaseView]:
        """Open releases waiting for ``viewer``'s sign-off, oldest first."""
        return self.signoffs.awaiting(viewer=viewer)

    # --- delivery -----------------------------------------------------------------------------

    def fetch(self, name: str, to: Path, *, by: Actor, only: str | None = None) -> dict[str, Any]:
        """Copy an available product's artifacts (or the one named ``only``) to ``to``, each stamped with
        its attribution.

        ``only`` names one artifact: a name the product does not have is refused (:class:`NotFoundError`,
        a 404) before anything is stamped or ledgered, and the ledger then names only that artifact, so the
        usage record (第二十条) holds what was delivered (red team 18, F6). The console and the API both
        fetch one artifact through it.

        Only the owning operator (or the host administrator acting for it) receives it, only while no
        objection suspends it (双鸭山 第四十条) and only while the operator is not suspended (第三十一条,
        第七十五条); the delivery is ledgered.

        Crash safety (issue 17): the stamped copies are made in a scratch inside the home, the delivery
        is ledgered, and only then do the files appear in ``to`` (each under a temporary name renamed
        into place). A kill before the commit delivers nothing (the scratch is swept at the next
        start); one after it leaves a recorded delivery the operator may not have received, and
        fetching again records again: an egress is never unrecorded (第二十条).
        """
        require_role(by, "operator")
        products = Products(self.recorder, self.config)
        product = products.deliverable(name, viewer=by)
        artifacts = list(product.artifacts)
        if only is not None:
            artifacts = [a for a in artifacts if str(a["name"]) == only]
            if not artifacts:
                raise NotFoundError(f"product {name!r} has no artifact {only!r}: nothing was delivered")
        attribution = attribution_metadata(product)
        to = Path(to)
        to.mkdir(parents=True, exist_ok=True)
        with Scratch(self.home, purpose="fetch") as scratch:
            staged = scratch.path / "out"
            staged.mkdir()
            files = self._stamped(product, artifacts, attribution, staged)
            with self.recorder.change(by) as change:
                # Decided again where it is recorded: a freeze committed since the look above delivers nothing.
                require_not_frozen(change.session, f"delivery of product {name!r}")
                change.log(
                    "product.fetched",
                    f"product:{name}",
                    {
                        "product_id": product.id,
                        "operator": product.operator,
                        "files": [{"name": f["name"], "sha256": f["sha256"]} for f in files],
                        "attribution_sha256": json_sha256(attribution),
                    },
                )
            crash_point("product.fetch-recorded")
            for made in sorted(staged.iterdir()):  # the artifacts and the sidecars their stamps wrote
                deliver_file(made, to / made.name)
            for item in files:
                item["path"] = str(to / Path(item["path"]).name)
        return {"product": name, "files": files, "attribution": attribution}

    def _stamped(
        self, product: Any, artifacts: builtins.list[dict[str, Any]], attribution: dict[str, Any], into: Path
    ) -> builtins.list[dict[str, Any]]:
        """Each of ``artifacts`` copied from the store into ``into`` and stamped with the product's attribution."""
        files: builtins.list[dict[str, Any]] = []
        for artifact in artifacts:
            target = into / Path(artifact["name"]).name
            try:  # decrypted from the storage into the fetch's own scratch, stamped there, then delivered
                write_plain(stored_at_rest(self.recorder, self.config), str(artifact["path"]), target)
            except ObjectMissingError:
                raise ReleaseError(
                    f"artifact {artifact['name']!r} of product {product.name!r} is missing from the store"
                ) from None
            except (VaultError, StorageError) as exc:
                raise ReleaseError(
                    f"artifact {artifact['name']!r} of product {product.name!r} cannot be opened: {exc}"
                ) from None
            recorded = artifact.get("sha256")
            if not recorded or file_sha256(target)[0] != recorded:  # what is handed out is what was released
                target.unlink(missing_ok=True)
                raise ReleaseError(
                    f"artifact {artifact['name']!r} of product {product.name!r} does not match its recorded "
                    "SHA-256: nothing was delivered"
                )
            stamp_artifact(target, attribution)
            files.append({"name": artifact["name"], "path": str(target), "sha256": file_sha256(target)[0]})
        return files


__all__ = [
    "DEFAULT_REVIEWERS",
    "PRODUCT_STORE",
    "Decision",
    "ReleaseError",
    "ReleaseState",
    "ReleaseView",
    "Releases",
    "SignOff",
    "outcome_of",
    "votes_needed",
]
