"""The custodian's side of a release (SATRE 3.1.06 egress only by the asset owners or their delegates,
1.5.04; issue 22): each dataset a release's outputs derive from is signed off by its custodian, unless
the custodian recorded a standing delegation to the agency (``registry.egress``).

Which datasets: the lineage of the job, its granted datasets (``jobs.datasets``). When a release is
requested (and again when a returned one is resubmitted, a new round with a new job) the datasets
without a live delegation are snapshotted on the release (``signoff_required``) beside the delegations
that spared the others (``delegated``); a delegation withdrawn or expired before the release is decided
spares it no longer: the decision and every sign-off ask again
(:meth:`sandbox.release_review.ReleaseReview.recheck_delegations`).

Who: a custodian of that dataset (:func:`registry.require_custodian_of`), through its own
authenticated session: the host administrator never signs off, nor in anyone's name, and the CLI
needs the custodian's own key (``app/cli/credentials.py``). One sign-off per dataset and round.

The decision: the product is registered only when the agency's reviewers approved (their sealed
round, ``sandbox.release_review``) *and* every required custodian signed off, whichever comes last;
a custodian's refusal rejects the release at once, with its reason.

Not sealed: a reviewer's vote is sealed so the next reviewer is not anchored by it inside a majority.
A sign-off is no vote in a majority but each custodian's own veto over its own dataset, and a refusal
decides at once: a recorded sign-off on an undecided release can only be an approval, so sealing it
would hide nothing. Sign-offs are therefore shown to every reader of the release and ledgered in
clear (``release.signed_off``: dataset, custodian, organisation, decision, the reason's SHA-256).
The reviewers' votes stay sealed from the custodian as from everyone else.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import Actor, PermissionDeniedError, Recorder, require_role, text_sha256
from registry import Custodians, RegistryConfig, custodian_datasets, require_custodian_of, require_not_frozen
from sandbox.release_models import ReleaseError, ReleaseRow, ReleaseSignoffRow, ReleaseState, SignOff
from sandbox.release_review import ReleaseReview
from sandbox.release_views import ReleaseView, pending_signoffs, release_view, visible_release

#: The longest reason a custodian gives.
MAX_SIGNOFF_REASON_CHARS = 4000


class ReleaseSignoffs:
    """Custodians' sign-offs and refusals; one ledgered transaction per act."""

    def __init__(
        self, recorder: Recorder, config: RegistryConfig, review: ReleaseReview, custodians: Custodians | None
    ) -> None:
        self.recorder = recorder
        self.config = config
        self.review = review
        self.custodians = custodians

    def sign_off(
        self,
        release_id: int,
        decision: SignOff | str,
        *,
        by: Actor,
        datasets: Sequence[str] | None = None,
        reason: str = "",
    ) -> ReleaseView:
        """``by``'s sign-off (or refusal) for ``datasets`` (default: every pending one it is custodian of)."""
        if by.is_host or by.role != "custodian":
            raise PermissionDeniedError(
                "a release is signed off by a custodian of its data through its own session (SATRE 3.1.06); "
                "the host administrator never signs off, nor in a custodian's name"
            )
        try:
            chosen = SignOff(decision)
        except ValueError:
            raise ReleaseError(f"a sign-off is one of {', '.join(SignOff)}") from None
        reason = (reason or "").strip()
        if chosen == SignOff.REFUSE and not reason:
            raise ReleaseError("a refusal needs a reason the operator and the agency can read")
        if len(reason) > MAX_SIGNOFF_REASON_CHARS:
            raise ReleaseError(f"the reason is at most {MAX_SIGNOFF_REASON_CHARS} characters")
        with self.recorder.change(by) as change:
            session = change.session
            require_not_frozen(session, "a custodian's sign-off")  # egress: nothing is decided while frozen
            row = visible_release(session, release_id, by, lock=True)
            if not ReleaseState(row.state).open:
                raise ReleaseError(f"release {release_id} is {row.state}: it is not awaiting sign-off")
            self.review.recheck_delegations(change, row)  # a withdrawn delegation gives the custodian its say back
            names = self._chosen(session, row, by, datasets)
            now = self.config.now()
            for name in names:
                _, org = require_custodian_of(session, name, by, self.custodians, "a release sign-off")
                session.add(
                    ReleaseSignoffRow(
                        release_id=row.id,
                        round=row.round,
                        dataset=name,
                        custodian=by.name,
                        org=org,
                        decision=chosen.value,
                        reason=reason,
                        signed_at=now,
                    )
                )
                change.log(
                    "release.signed_off",
                    f"release:{row.id}",
                    {
                        "release": row.id,
                        "round": row.round,
                        "dataset": name,
                        "custodian": by.name,
                        "org": org,
                        "decision": chosen.value,
                        "reason_sha256": text_sha256(reason),
                    },
                )
            session.flush()
            if row.state == ReleaseState.SUBMITTED:
                row.state = ReleaseState.UNDER_REVIEW.value
            row.updated_at = now
            if chosen == SignOff.REFUSE:
                self.review.refuse(change, row, by, f"custodian {by.name} ({', '.join(names)}): {reason}")
            else:
                self.review.settle(change, row, by)
            return release_view(session, row, by)

    def _chosen(
        self, session: Session, row: ReleaseRow, by: Actor, datasets: Sequence[str] | None
    ) -> builtins.list[str]:
        """The datasets this act signs for: named ones (each checked), else every pending one of ``by``'s."""
        required = [str(d) for d in row.signoff_required or []]
        pending = pending_signoffs(session, row)
        if datasets:
            wanted = sorted({str(d) for d in datasets})
            for name in wanted:
                if name not in required:
                    raise ReleaseError(f"release {row.id} needs no sign-off for dataset {name!r}")
                if name not in pending:
                    raise ReleaseError(f"dataset {name!r} is already signed off in round {row.round}")
                require_custodian_of(session, name, by, self.custodians, "a release sign-off")
            return wanted
        mine = custodian_datasets(session, required, by, self.custodians)
        if not mine:
            raise PermissionDeniedError(
                f"{by.name!r} is the custodian of none of the datasets release {row.id} needs sign-off for "
                f"({', '.join(required) or 'none'})"
            )
        left = [name for name in mine if name in pending]
        if not left:
            raise ReleaseError(f"{by.name!r} has already signed off every dataset of its in round {row.round}")
        return left

    def awaiting(self, *, viewer: Actor) -> builtins.list[ReleaseView]:
        """Open releases still waiting for ``viewer``'s sign-off on a dataset it is custodian of, oldest first."""
        require_role(viewer, "custodian")
        query = (
            select(ReleaseRow)
            .where(ReleaseRow.state.in_([ReleaseState.SUBMITTED.value, ReleaseState.UNDER_REVIEW.value]))
            .order_by(ReleaseRow.id)
        )
        with self.recorder.read() as session:
            shown: builtins.list[ReleaseView] = []
            for row in session.scalars(query):
                pending = pending_signoffs(session, row)
                if pending and (viewer.is_host or custodian_datasets(session, pending, viewer, self.custodians)):
                    shown.append(release_view(session, row, viewer))
            return shown


__all__ = ["MAX_SIGNOFF_REASON_CHARS", "ReleaseSignoffs"]
