"""The agency's side of a release: sealed votes, the decision, and the product's registration.

Independence (双鸭山 第五十二条, issue 7): a configurable number of reviewers, each a named agency
principal and never the requesting organisation itself, vote approve / changes_requested / reject
per file; a reviewer's overall vote is its worst file decision. The ledger holds a salted commitment
to each vote when cast and the votes themselves once the round is decided. Approval registers the
product with its lineage (registry ``Products.register``) in the same transaction as the decision,
and copies the approved files into the product store ``products/<name>/`` after checking their
SHA-256 against the job's record.

Crash safety (issue 17): the store is staged and renamed into place under a
:class:`registry.Scratch` that notes it, before the deciding vote's transaction commits; the scratch is
released after the commit, and the store removed if the transaction rolls back. Killed in between,
the vote, the decision, the product row and their ledger entries are all absent, and the store no
row names is swept at the next start (or reclaimed by the next approval): the reviewer votes again.
"""

from __future__ import annotations

import builtins
import secrets
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core import (
    Actor,
    Change,
    JoinedRecorder,
    NotFoundError,
    PermissionDeniedError,
    Recorder,
    StorageError,
    check_key,
    crash_point,
    text_sha256,
)
from registry import (
    PRODUCT_STORE,
    AtRest,
    DataKeys,
    ProductRegistration,
    Products,
    RegistryConfig,
    Scratch,
    Usability,
    VaultError,
    egress_requirement,
    licence_standing,
    product_name_taken,
    products_scope,
    reclaim,
    require_not_frozen,
)
from sandbox.models import JobRow
from sandbox.product_store import store_objects
from sandbox.release_comments import add_comment, require_comment_to_return
from sandbox.release_models import Decision, ReleaseError, ReleaseRow, ReleaseState, ReleaseVoteRow
from sandbox.release_views import (
    ReleaseView,
    json_sha256,
    outcome_of,
    pending_signoffs,
    release_view,
    signoff_json,
    signoffs_of,
    visible_release,
)
from sandbox.stored_files import config_storage, stored_at_rest

_SEVERITY = {Decision.APPROVE: 0, Decision.CHANGES_REQUESTED: 1, Decision.REJECT: 2}
_OUTCOME = {
    Decision.APPROVE: ReleaseState.APPROVED,
    Decision.CHANGES_REQUESTED: ReleaseState.RETURNED,
    Decision.REJECT: ReleaseState.REJECTED,
}


def _file_decisions(
    row: ReleaseRow, overall_default: Decision, per_file: dict[str, Decision]
) -> tuple[dict[str, Decision], Decision]:
    """Each file's decision and the vote's worst one.

    No default vote (issue 18): a vote that names files names every file of the round, or it is refused;
    a vote naming none is the API/CLI shorthand, ``overall_default`` for every file.
    """
    names = [str(o["name"]) for o in row.outputs or []]
    unknown = [name for name in per_file if name not in names]
    if unknown:
        raise ReleaseError(f"release {row.id} has no file {', '.join(map(repr, unknown))}")
    missing = [name for name in names if name not in per_file]
    if per_file and missing:
        raise ReleaseError(
            f"a vote that names files decides every file of round {row.round}: no decision for "
            f"{', '.join(map(repr, missing))} (no default vote)"
        )
    decisions = {name: per_file.get(name, overall_default) for name in names}
    return decisions, max(decisions.values(), key=lambda d: _SEVERITY[d])


def require_shown(row: ReleaseRow, round_shown: int | None, files_sha256: Mapping[str, str] | None) -> None:
    """Refuse a vote on a round, or on files, other than those the reviewer was shown (red team 18, F5).

    The reviewer sees what would leave in full before voting (双鸭山 第五十二条, pre-release review): a vote
    form rendered for round N, posted after the operator resubmitted round N+1, must not count for files
    the reviewer never read. Both checks are optional for the API/CLI (older callers); the console sends both.
    """
    if round_shown is not None and round_shown != row.round:
        raise ReleaseError(
            f"this vote was made for round {round_shown} but release {row.id} is now in round {row.round}: "
            "nothing was recorded; reload the release and read the new round first"
        )
    if files_sha256 is None:
        return
    recorded = {str(o["name"]): str(o.get("sha256", "")) for o in row.outputs or []}
    shown = {str(k): str(v).lower() for k, v in files_sha256.items()}
    if shown != recorded:
        changed = sorted(n for n in {*recorded, *shown} if recorded.get(n) != shown.get(n))
        raise ReleaseError(
            f"the files of release {row.id} round {row.round} differ from those this vote was made for "
            f"({', '.join(map(repr, changed))}): nothing was recorded; reload the release and read them first"
        )


def _registration(
    row: ReleaseRow, job: JobRow, votes: list[ReleaseVoteRow], artifacts: list[dict[str, Any]], by: Actor
) -> ProductRegistration:
    """What the approved release registers: lineage from the job, reviews and dissent from the votes."""
    return ProductRegistration(
        operator=row.operator,
        licence_id=row.licence_id,
        job=str(job.id),
        scenario=job.scenario,
        datasets=[
            {"name": name, "version": (granted or {}).get("version")} for name, granted in (job.datasets or {}).items()
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


class ReleaseReview:
    """Votes and decisions on releases; one ledgered transaction per vote."""

    def __init__(
        self, recorder: Recorder, config: RegistryConfig, *, is_reviewer: Callable[[str], bool] | None = None
    ) -> None:
        self.recorder = recorder
        self.config = config
        self.is_reviewer = is_reviewer

    @property
    def home(self) -> Path:
        return Path(self.config.home)

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
        """One reviewer's sealed vote: ``files`` decides each file (all of them), or, when it names none,
        ``decision`` is every file's (the API/CLI shorthand).

        ``round_shown`` and ``files_sha256`` (file name -> SHA-256), when given, are the round and the files
        the reviewer was shown: the vote is refused, nothing recorded, if the release has moved on since
        (:func:`require_shown`).

        ``comment``, when given, is posted on the whole release in the same transaction (the thread of
        ``sandbox.release_comments``): a return ("changes requested") is refused unless the reviewer
        commented in this round, here or before.

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
            require_not_frozen(session, "a review decision")  # egress: no release is decided while frozen
            row = visible_release(session, release_id, by, lock=True)
            if by.name == row.operator:
                raise PermissionDeniedError(
                    f"{by.name!r} requested this release: its own organisation never reviews it (independent review)"
                )
            if not ReleaseState(row.state).open:
                raise ReleaseError(f"release {release_id} is {row.state}: it is not awaiting review")
            require_shown(row, round_shown, files_sha256)
            if outcome_of([v.decision for v in self._round_votes(change, row)], row.required_reviews) is not None:
                raise ReleaseError(
                    f"the reviewers of round {row.round} have decided release {release_id}: it awaits its custodians' "
                    f"sign-off for {', '.join(pending_signoffs(session, row))} (SATRE 3.1.06)"
                )
            decisions, overall = _file_decisions(row, overall_default, per_file)
            if overall == Decision.APPROVE:
                standing = licence_standing(session, row.licence_id, self.config.now().date())
                if standing is not None and standing.usability == Usability.OPERATOR_SUSPENDED:
                    raise ReleaseError(
                        f"operator {row.operator!r} is suspended: release {release_id} is not approved until the "
                        "agency restores it (双鸭山 第三十一条); request changes or reject it meanwhile"
                    )
            if overall != Decision.APPROVE and not reason:
                raise ReleaseError("changes requested or a rejection need a reason the operator can act on")
            if comment.strip():
                add_comment(change, row, by, comment, None, self.config.now())
            if overall == Decision.CHANGES_REQUESTED:
                require_comment_to_return(session, row, by)  # the operator reads what to change (issue 18)
            self._cast(change, row, by, decisions, overall, reason)
            self.settle(change, row, by)
            return release_view(session, row, by)

    def _round_votes(self, change: Change, row: ReleaseRow) -> builtins.list[ReleaseVoteRow]:
        return list(
            change.session.scalars(
                select(ReleaseVoteRow)
                .where(ReleaseVoteRow.release_id == row.id, ReleaseVoteRow.round == row.round)
                .order_by(ReleaseVoteRow.id)
            )
        )

    def settle(self, change: Change, row: ReleaseRow, by: Actor) -> None:
        """Decide the round once it can be: the reviewers returned or rejected it, or they approved it and
        every required custodian signed off (SATRE 3.1.06); else it stays open, awaiting the rest."""
        votes = self._round_votes(change, row)
        outcome = outcome_of([v.decision for v in votes], row.required_reviews)
        if outcome == Decision.APPROVE:
            self.recheck_delegations(change, row)
        if outcome is None or (outcome == Decision.APPROVE and pending_signoffs(change.session, row)):
            return
        self._decide(change, row, votes, outcome, by)

    def recheck_delegations(self, change: Change, row: ReleaseRow) -> None:
        """A delegation that spared a dataset when the release was requested must still be live when the
        release is decided: egress is by the asset owner or its delegate *then* (SATRE 3.1.06). A dataset whose
        delegation was withdrawn or expired since needs its custodian's sign-off again (ledgered)."""
        spared = dict(row.delegated or {})
        if not spared:
            return
        ended, _ = egress_requirement(change.session, spared.keys(), self.config.now())
        if not ended:
            return
        row.delegated = {name: spared[name] for name in spared if name not in ended}
        row.signoff_required = sorted({*(str(d) for d in row.signoff_required or []), *ended})
        change.log(
            "release.signoff_required",
            f"release:{row.id}",
            {"release": row.id, "round": row.round, "datasets": ended, "why": "delegation ended before the decision"},
        )

    def refuse(self, change: Change, row: ReleaseRow, by: Actor, reason: str) -> None:
        """A custodian refused: the release is rejected at once, whatever the reviewers' sealed votes."""
        self._decide(change, row, self._round_votes(change, row), Decision.REJECT, by, refusal=reason)

    def _cast(
        self,
        change: Change,
        row: ReleaseRow,
        by: Actor,
        decisions: dict[str, Decision],
        overall: Decision,
        reason: str,
    ) -> None:
        """Record one sealed vote (once per reviewer and round) and ledger a salted commitment to it."""
        session = change.session
        already = session.scalar(
            select(ReleaseVoteRow.id).where(
                ReleaseVoteRow.release_id == row.id,
                ReleaseVoteRow.round == row.round,
                ReleaseVoteRow.reviewer == by.name,
            )
        )
        if already is not None:
            raise ReleaseError(f"{by.name!r} has already voted in round {row.round} of release {row.id}")
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
            {"release": row.id, "round": row.round, "reviewer": by.name, "vote_sha256": json_sha256(commitment)},
        )
        if row.state == ReleaseState.SUBMITTED:
            row.state = ReleaseState.UNDER_REVIEW.value
        row.updated_at = now

    def _decide(
        self,
        change: Change,
        row: ReleaseRow,
        votes: builtins.list[ReleaseVoteRow],
        outcome: Decision,
        by: Actor,
        *,
        refusal: str | None = None,
    ) -> None:
        row.state = _OUTCOME[outcome].value
        row.decided_at = self.config.now()
        reasons = [f"{v.reviewer}: {v.reason}" for v in votes if v.reason]
        row.reason = refusal or "; ".join(reasons) or None
        revealed = [{"reviewer": v.reviewer, "decision": v.decision, "files": v.files, "salt": v.salt} for v in votes]
        signoffs = [
            {k: v for k, v in signoff_json(s).items() if k != "reason"}
            for s in signoffs_of(change.session, row)
            if s.round == row.round
        ]
        payload: dict[str, Any] = {
            "release": row.id,
            "round": row.round,
            "outcome": row.state,
            "votes": revealed,
            "signoffs": signoffs,
        }
        if refusal is not None:
            payload["refused_by"] = by.name  # a custodian's refusal decided it (SATRE 3.1.06)
        change.log("release.decided", f"release:{row.id}", payload)
        if outcome == Decision.APPROVE:
            self._register(change, row, votes, by)

    def _register(self, change: Change, row: ReleaseRow, votes: builtins.list[ReleaseVoteRow], by: Actor) -> None:
        """Copy the approved files into the store, then register the product in this transaction."""
        session = change.session
        job = session.get(JobRow, row.job_id)
        if job is None:
            raise NotFoundError(f"no job {row.job_id}")
        if job.licence_id is None:
            raise ReleaseError(f"job {job.id} has no licence: its outputs have no products key")
        relative = f"{PRODUCT_STORE}/{row.product}"
        storage = config_storage(self.config)
        if storage.local_path(relative) != self.home / relative:  # an object store (issue 19): no rename
            artifacts, undo_objects = store_objects(
                change, stored_at_rest(self.recorder, self.config), storage, row.product, list(row.outputs or []),
                job_id=job.id, licence_id=job.licence_id, name_taken=product_name_taken(session, row.product),
            )  # fmt: skip
            try:
                crash_point("release.store-written")
                products = Products(JoinedRecorder(change, self.recorder), self.config)
                view = products.register(row.product, _registration(row, job, votes, artifacts, by),
                                         on_signoff=by.role == "custodian")  # fmt: skip
                row.product_id = view.id
                session.flush()
            except BaseException:
                undo_objects()
                raise
            change.on_rollback(undo_objects)
            return
        store = self.home / PRODUCT_STORE / row.product
        if (store.exists() or store.is_symlink()) and (
            product_name_taken(session, row.product) or not reclaim(self.home, relative)
        ):
            raise ReleaseError(f"the product store already holds {row.product!r}; nothing was registered")
        scratch = Scratch(self.home, purpose="release")
        try:
            scratch.note_paths(relative, f"{PRODUCT_STORE}/.{row.product}.staging-")
            artifacts = self._stage(change, row, job, store)
            crash_point("release.store-written")
            products = Products(JoinedRecorder(change, self.recorder), self.config)
            registration = _registration(row, job, votes, artifacts, by)
            view = products.register(row.product, registration, on_signoff=by.role == "custodian")
            row.product_id = view.id
            session.flush()
        except BaseException:
            shutil.rmtree(store, ignore_errors=True)
            scratch.close()
            raise

        def undo() -> None:
            shutil.rmtree(store, ignore_errors=True)
            scratch.close()

        change.on_commit(scratch.close)
        change.on_rollback(undo)

    def _stage(self, change: Change, row: ReleaseRow, job: JobRow, store: Path) -> builtins.list[dict[str, Any]]:
        """Re-seal the judged outputs (checked against their SHA-256) under the licence's products key
        into a staging directory, renamed to ``store`` (issue 22: products encrypted at rest)."""
        at_rest = AtRest(DataKeys(self.recorder, self.config), self.home)
        if job.licence_id is None:
            raise ReleaseError(f"job {job.id} has no licence: its outputs have no products key")
        staging = store.with_name(f".{row.product}.staging-{secrets.token_hex(4)}")
        staging.mkdir(parents=True)
        try:
            artifacts: builtins.list[dict[str, Any]] = []
            for output in row.outputs or []:
                source = _output_file(at_rest, self.home, str(output["path"]))
                if not source.is_file() or _plain_sha256(at_rest, source) != output["sha256"]:
                    raise ReleaseError(
                        f"output {output['name']!r} of job {job.id} is missing or changed since the guard judged it"
                    )
                target = staging / Path(str(output["name"])).name
                digest, size = at_rest.reseal(source, target, products_scope(job.licence_id), by=change.actor,
                                              change=change)  # fmt: skip
                if digest != output["sha256"]:
                    raise ReleaseError(f"output {output['name']!r} of job {job.id} changed while it was staged")
                artifacts.append(
                    {
                        "name": output["name"],
                        "bytes": size,
                        "sha256": output["sha256"],
                        "path": str((store / target.name).relative_to(self.home)),
                    }
                )
            staging.rename(store)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return artifacts


def _output_file(at_rest: AtRest, home: Path, path: str) -> Path:
    """The home file of a judged output's row path: a storage key, or a legacy absolute path inside the home's
    ``work/`` or ``products/`` (red team 19, B1: a forged row never names ``secrets/`` or a file elsewhere)."""
    try:
        return at_rest.legacy_artifact(path) if Path(path).is_absolute() else home / check_key(path)
    except StorageError as exc:
        raise ReleaseError(f"an output path of this release is refused: {exc}") from None


def _plain_sha256(at_rest: AtRest, path: Path) -> str | None:
    """The SHA-256 of a stored output's plaintext; ``None`` when it does not open (altered, key destroyed)."""
    try:
        return at_rest.sha256(path)[0]
    except VaultError:
        return None


__all__ = ["PRODUCT_STORE", "ReleaseReview"]
