"""Workers: claim a queued job, run it in the sandbox over its granted copies, record how it ended.

Why it is built this way:

* **Only sandboxed.** The default runner is ``sandbox.kinds.run_job`` (bubblewrap, issue 6); when
  ``sandbox.runner.check_sandbox`` fails the worker claims nothing, and a job whose run reports
  ``SandboxUnavailable`` goes back to the queue untouched — Keyong never runs a job unsandboxed.
* **Only desensitized copies.** A job reads the versions its scope check granted (the paths stored
  on the job row, relative to the home): 原始数据不出域 (双鸭山 第三十五条).
* **One transaction between two jobs** (issue 21 throughput). A loop that goes on claims its next job in
  the transaction that records the end of the previous one (:meth:`JobQueue.claim_within`; the claim rule
  is :mod:`sandbox.job_claims`'s); a loop that stops gives back what it claimed and did not run.
* **Alive or given up.** While the job runs the worker heartbeats every few seconds; a heartbeat
  that finds the job no longer its own (reaped) or cancelled kills the run. A worker that cannot
  heartbeat for half of ``stale_after`` kills its run itself before the reaper may hand the job to
  another worker, so one job never runs twice at once. A worker that dies takes its run with it
  (bubblewrap ``--die-with-parent``), and the reaper requeues or fails the job.
* **Out of reach until judged.** Outputs and logs are kept under the licence's work directory
  (``registry.Licences.workdir``: ``work/<operator>/licence-<id>/jobs/<job>/<attempt>/``), which
  no sandbox mounts and which is destroyed with the licence (双鸭山 第六十二条). Issue 19: in the storage
  (:mod:`sandbox.copy_cache`: copies staged by digest and checked against the database before a mount;
  a remote worker writes a scratch in its cache and uploads it create-only before the row commits).
* **Killed mid-judgement, never stuck nor delivered unjudged** (issue 17). Outputs, verdict, findings,
  the end state, its ledger entry and a block's usage-monitoring record are one transaction
  (:meth:`JobQueue.finish`; a monitoring failure there fails the job as ``block``); a worker killed
  before it commits leaves the job ``running`` with no outputs on its row, so nothing of that attempt
  is ever delivered, and the reaper requeues (or fails) it once its heartbeat is stale. The next claim
  removes the directories of the job's earlier attempts: an attempt is retried only if it never
  recorded its end, so what they hold was never judged.
* **Judged before anything is shown.** After a run the export guard (``sandbox.guard``) judges
  every output, stdout, stderr and file name against the granted datasets' fingerprints; the job
  row gets the verdict, the findings and a redacted, truncated log excerpt (what an operator may
  read). A ``block`` is reported to usage monitoring (repeated blocks are a security anomaly), a crash
  of the judging too (:meth:`Worker._wedged`: never quieter than a block).
  Without fingerprints (no ``registry`` port, or its ``fingerprints`` failing) the guard still runs its
  recognizer, manifest, record-shape and SDC rules.
  Tables are tied to the copies the job mounted and, for datasets granted jointly, to the joined view of
  their link group (issue 23, :mod:`sandbox.guard_sources`), so SDC runs on a joined table's own counts.
* **Encrypted at rest** (issue 22, SATRE 2.8.01; :mod:`sandbox.atrest_io`). The granted copies are
  decrypted into a private directory for the run and its judgement only; a copy that does not open
  (altered, key destroyed) fails the job with the reason. Once judged, everything the attempt keeps
  is sealed under the licence's data key before the job's end is committed.
* **DP results sealed before judging** (issue 8). After a ``dp-query`` or ``dp-train`` run the
  worker signs the platform program's answer, or issues the model's certificate, with the
  instance key (``signer``; ``dp.results``); the guard then accepts a model only with a
  certificate that verifies. Without a signer nothing is sealed and a model stays blocked.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from core import Change, LocalStorage, Storage, crash_point
from dp import SealError, seal
from sandbox.attempt_files import (
    CopyUnreadableError,
    keep_logs,
    object_version,
    plain_files,
    remove_earlier_attempts,
    seal_attempt,
    upload_attempt,
)
from sandbox.copy_cache import CopyStager, Digests, no_record
from sandbox.guard_sources import GuardSources
from sandbox.heartbeat import watch
from sandbox.kinds import DP_KINDS, JobKind, prestarted
from sandbox.models import JobState
from sandbox.ports import (
    AtRestPort,
    RegistryPort,
    Runner,
    RunResultLike,
    Workdir,
    guard_prints,
)
from sandbox.queue import Claimed, JobQueue, JobView
from sandbox.roster import WorkerRoster
from sandbox.wakeup import Sleep, wakeup_for
from sandbox.worker_runner import default_worker_id, sandbox_unavailable_error, sandboxed_runner

log = logging.getLogger("keyong.worker")

HEARTBEAT_SECONDS = 5.0
STALE_AFTER = timedelta(seconds=60)


class Worker:
    """One worker: ``run_once`` runs at most one job; ``run_forever`` is ``keyong worker``."""

    def __init__(
        self,
        queue: JobQueue,
        home: Path,
        workdir: Workdir,
        *,
        runner: Runner | None = None,
        worker_id: str | None = None,
        limits: Any = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        stale_after: timedelta = STALE_AFTER,
        registry: RegistryPort | None = None,
        guard_config: Any = None,
        signer: Any = None,
        roster: WorkerRoster | None = None,
        at_rest: AtRestPort | None = None,
        storage: Storage | None = None,
        cache: Path | None = None,
        digests: Digests | Literal["registry"] | None = "registry",
    ) -> None:
        self.queue = queue
        self.home = home
        self.workdir = workdir
        self.worker_id = worker_id or default_worker_id()
        self.limits = limits
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_after = stale_after
        self._runner = runner
        self.registry = registry  # fingerprints, blocked exports, released products; None: none of them
        self.guard_config = guard_config
        self.signer = signer  # Ed25519PrivateKey: signs DP answers and model certificates
        self.roster = roster  # where run_forever says it is alive (sandbox.roster); None: nowhere
        self.at_rest = at_rest  # opens sealed copies and outputs, seals what a run left; None: files in clear
        self._released_totals: dict[tuple[tuple[str, int, int], ...], Any] = {}
        # Where copies, outputs and products lie (issue 19): the home on an embedded instance, else the bucket.
        self.storage: Storage = storage if storage is not None else LocalStorage(home)
        self.cache = cache  # KEYONG_WORKER_CACHE: staged copies by digest, and the scratch of remote attempts
        # Every worker checks each copy against its recorded digest before a mount; no record, no mount (issue 19).
        own: Digests | None = getattr(registry, "copy_sha256", None) if isinstance(digests, str) else digests
        self.copies = CopyStager(self.storage, at_rest, cache, own or no_record)
        self.sources = GuardSources(home, at_rest, stager=self.copies)  # what the guard re-derives tables from
        # A loop that goes on after this job claims the next in this job's end transaction (issue 21):
        self._chain: Callable[[], bool] = lambda: False  # whether it goes on (set by the loops)
        self._next: Claimed | None = None  # that claim, committed, not yet run

    @property
    def runner(self) -> Runner:
        """The injected runner, else the sandbox's, checked once (so nothing is claimed without a sandbox)."""
        if self._runner is None:
            self._runner = sandboxed_runner()
        return self._runner

    # --- loops --------------------------------------------------------------------------------

    def run_once(self) -> JobView | None:
        """Claim and run one queued job; ``None`` when the queue was empty."""
        runner = self.runner  # before claiming: no sandbox, no claim
        claimed, self._next = self._next or self.queue.claim(self.worker_id), None
        if claimed is None:
            return None
        try:
            return self._run(claimed, runner)
        except Exception as exc:
            unavailable = sandbox_unavailable_error()
            if unavailable is not None and isinstance(exc, unavailable):
                raise
            return self._wedged(claimed, exc)

    def run_pending(self, *, limit: int | None = None) -> list[JobView]:
        """Reap stale jobs, then run queued jobs until none is left (``keyong job run-pending``)."""
        self.queue.reap(self.stale_after)
        done: list[JobView] = []
        self._chain = lambda: limit is None or len(done) + 1 < limit
        try:
            while limit is None or len(done) < limit:
                view = self.run_once()
                if view is None and self._next is None:
                    break
                if view is not None:
                    done.append(view)
        finally:
            self._unchain()
        return done

    def run_forever(self, stop: threading.Event, *, poll: float = 2.0, wake: bool = True) -> int:
        """Run jobs until ``stop`` is set, reaping stale ones between; the number of jobs run.

        An idle worker waits ``poll`` seconds at most: a job queued meanwhile wakes it (``wake``,
        :mod:`sandbox.wakeup`). The worker's presence is kept in the roster from a thread of its own (a
        long job does not make it look dead), and it is marked stopped when the loop ends."""
        count = 0
        next_reap = 0.0
        self.runner  # noqa: B018  (the sandbox's self-test first: a worker that cannot run jobs is never live)
        from sandbox.guard import warm

        warm(quiet=True)  # the guard's one-off costs paid before a first job waits for them
        self.pool = prestarted(self, until=(presence := threading.Event()))  # sandbox.pool: warm sandboxes till then
        beating = self.roster.keep_alive(self.worker_id, presence) if self.roster is not None else None
        waiting = wakeup_for(self.queue.recorder.engine) if wake else Sleep()
        self._chain = lambda: not stop.is_set()
        try:
            while not stop.is_set():
                if time.monotonic() >= next_reap:
                    self.queue.reap(self.stale_after)
                    next_reap = time.monotonic() + max(poll, self.stale_after.total_seconds() / 4)
                if self._next is None:  # a job claimed with the last one's end needs no look at the queue
                    waiting.before_claim()
                if self.run_once() is not None:
                    count += 1
                elif self._next is None:
                    waiting.wait(poll, stop)
        finally:
            self._unchain()
            waiting.close()
            presence.set()
            if beating is not None:
                beating.join(10)
        return count

    def _unchain(self) -> None:
        """The loop ends: claim no more with an end, and give back a job claimed with the last one and not
        run (untouched, its attempt not counted); if even that fails, the reaper requeues it."""
        self._chain = lambda: False
        claimed, self._next = self._next, None
        if claimed is None:
            return
        try:
            self.queue.release(claimed.job.id, self.worker_id, claimed.attempt, reason="the worker stopped")
        except Exception:
            log.exception("job %s: could not be given back; the reaper will requeue it", claimed.job.id)

    # --- one job ------------------------------------------------------------------------------

    def attempt_key(self, job: JobView) -> str:
        """The attempt's storage key prefix: ``work/<operator>/licence-<id>/jobs/<job>/<attempt>``."""
        if job.licence_id is None:  # queued jobs always carry their licence; this is a broken row
            raise ValueError(f"job {job.id} has no licence")
        licence = self.workdir(job.operator, job.licence_id).relative_to(self.home).as_posix()
        return f"{licence}/jobs/{job.id}/{job.attempts}"

    def attempt_dir(self, job: JobView) -> Path:
        """Its place in a local storage (the embedded home, as always), else a scratch in the worker's cache."""
        local = self.storage.local_path(self.attempt_key(job))
        return local if local is not None else (self.cache or self.home / "cache") / "scratch" / self.attempt_key(job)

    def _run(self, claimed: Claimed, runner: Runner) -> JobView | None:
        job = claimed.job
        where = self.attempt_dir(job)
        if where.exists():  # left by a claim released before its run started (no sandbox): nothing ran there
            shutil.rmtree(where)
        where.mkdir(parents=True, mode=0o700)
        remove_earlier_attempts(where)
        os.chmod(where, 0o700)
        try:
            with ExitStack() as opened:  # the copies in clear live until the judgement is recorded
                try:  # staged, checked against the database's SHA-256, decrypted: before any sandbox starts
                    datasets = self.copies.open(opened, job.datasets)
                except CopyUnreadableError as exc:
                    return self._finish(claimed, JobState.FAILED, reason=str(exc))
                return self._run_opened(claimed, runner, where, datasets)
        finally:
            if self.storage.local_path(self.attempt_key(job)) is None:
                shutil.rmtree(where, ignore_errors=True)  # a remote attempt's scratch: uploaded or never kept

    def _run_opened(self, claimed: Claimed, runner: Runner, where: Path, datasets: dict[str, Path]) -> JobView | None:
        job, out_dir = claimed.job, where / "out"

        def target() -> RunResultLike:
            if job.kind == JobKind.MITIGATION:  # reads the source job's judged outputs, never the data
                return self._mitigate(claimed.code, out_dir)
            return runner(job.kind, claimed.code, datasets=datasets, out_dir=out_dir, limits=self.limits)

        watched = watch(
            target,
            lambda: self.queue.heartbeat(job.id, self.worker_id, claimed.attempt),
            every=self.heartbeat_seconds,
            patience=self.stale_after.total_seconds() / 2,
            job=job.id,
        )
        error = watched.error
        unavailable = sandbox_unavailable_error()
        if error is not None and unavailable is not None and isinstance(error, unavailable):
            self.queue.release(job.id, self.worker_id, claimed.attempt, reason=f"sandbox unavailable: {error}")
            raise error
        if watched.stopped == "lost":
            log.warning("job %s: no longer held by %s; its run was killed", job.id, self.worker_id)
            return None
        if error is not None:
            log.error("job %s: runner error", job.id, exc_info=error)
            return self._finish(claimed, JobState.FAILED, reason=f"runner error: {type(error).__name__}")
        return self._record(claimed, where, watched.result, cancelled=watched.stopped == "cancelled")

    def _record(self, claimed: Claimed, where: Path, result: RunResultLike, *, cancelled: bool) -> JobView | None:
        """Keep the logs, seal DP results, judge everything the run left and record how the job ended."""
        job, out_dir = claimed.job, where / "out"
        keep_logs(where, result)
        resources = {"wall": result.wall_seconds, "cpu": result.cpu_seconds, "max_rss": result.max_rss_bytes}
        produced = [dict(o) for o in result.outputs] if cancelled else self._seal(job, claimed.code, out_dir, result)
        reason: str | None
        if cancelled:
            state, reason = JobState.CANCELLED, "cancelled on request; the run was killed"
        elif result.status == "ok":
            state, reason = JobState.DONE, result.reason
        else:
            state, reason = JobState.FAILED, result.reason or f"run {result.status}"
        crash_point("job.judging")
        judged = self._judge(job, claimed.code, out_dir, result, produced)
        crash_point("job.judged")
        seal_attempt(self.at_rest, where, job.licence_id)  # judge, then encrypt
        prefix = self.attempt_key(job)
        upload_attempt(self.storage, where, prefix)  # create-only, before the row that names them commits
        outputs = [{**o, "path": f"{prefix}/out/{o['name']}"} for o in judged.outputs]
        verdict: str | None = judged.verdict
        if state != JobState.DONE and verdict == "pass":
            verdict = None  # a run that did not finish is never "pass": nothing vouches for what it left
        return self._finish_reported(
            claimed,
            state,
            exit_code=result.exit_code,
            reason=reason,
            resources=resources,
            outputs=outputs,
            verdict=verdict,
            findings=[f.as_json() for f in judged.findings],
            log_excerpt=judged.log.excerpt(),
        )

    def _finish_reported(self, claimed: Claimed, state: JobState, *, joined: bool = True, **end: Any) -> JobView | None:
        """Record the end; a ``block`` is reported to usage monitoring (repeated blocks are a security anomaly,
        双鸭山 第三十一条): inside the end transaction when the port can (``joined``), else after the commit,
        where a monitoring failure is logged and the verdict stands. Every block, however it came about."""
        reported: list[bool] = []

        def report_block(change: Change, ended: JobView) -> None:  # in the job's end transaction
            if joined and ended.verdict == "block" and self.registry is not None:
                reported.append(self.registry.blocked_within(change, ended))

        view = self._finish(claimed, state, then=report_block, **end)
        crash_point("job.recorded")
        if view is not None and view.verdict == "block" and self.registry is not None and reported != [True]:
            try:
                self.registry.blocked(view)
            except Exception:  # the verdict stands; monitoring failing must not lose it
                log.exception("job %s: could not record the blocked export", claimed.job.id)
        return view

    def _wedged(self, claimed: Claimed, error: BaseException) -> JobView | None:
        """A job whose judging or recording raised ends ``failed`` with verdict ``block``, a finding and, like any
        block, its usage-monitoring record; the worker goes on (issue 15: never wedge). If even that cannot be
        recorded (the database is away), the job stays ``running`` for the reaper."""
        log.error("job %s: could not be judged or recorded", claimed.job.id, exc_info=error)
        finding = {
            "rule": "guard.error",
            "severity": "hard",
            "file": "*",
            "location": "worker",
            "detail": f"the run could not be judged or recorded ({type(error).__name__}): nothing leaves",
        }
        for joined in (True, False):  # a block like any other; if its monitoring record fails, the end alone
            try:
                return self._finish_reported(claimed, JobState.FAILED, joined=joined, verdict="block",
                                             reason="internal error while judging", findings=[finding])  # fmt: skip
            except Exception:
                log.exception("job %s: the failure could not be recorded (joined report: %s)", claimed.job.id, joined)
        log.error("job %s: the reaper will take it", claimed.job.id)
        return None

    def _mitigate(self, code: str, out_dir: Path) -> RunResultLike:
        """A ``mitigation`` job (``sandbox.mitigation``): the source job's outputs, suppressed and/or rounded."""
        from sandbox.mitigation import Mitigation, run_mitigation

        mitigation = Mitigation.from_code(code)
        source = self.queue.get(mitigation.source_job)
        with ExitStack() as opened:
            sources = plain_files(opened, self.storage, self.at_rest, [str(o["path"]) for o in source.outputs])
            return run_mitigation(mitigation, sources, out_dir)

    def _seal(self, job: JobView, plan_text: str, out_dir: Path, result: RunResultLike) -> list[dict[str, Any]]:
        """Sign a DP program's answer / certify its model (see the module docstring); the outputs after."""
        outputs = [dict(o) for o in result.outputs]
        if job.kind not in DP_KINDS or result.status != "ok" or self.signer is None:
            return outputs
        try:
            return seal(job.kind, json.loads(plan_text), job.id, out_dir, outputs, self.signer)
        except (SealError, ValueError, KeyError, OSError) as exc:
            log.error("job %s: the DP output could not be sealed: %s", job.id, exc)
            return outputs

    def _totals(self, paths: Sequence[Path]) -> Any:
        """A released product's totals (differencing rule), read once per artifact version, not once per job."""
        from sandbox.guard import totals_of_files

        key = tuple(
            object_version(self.storage, p) for p in paths
        )  # artifacts are written once: a key names one version
        if key not in self._released_totals:
            if len(self._released_totals) > 1024:  # products are few; a bound keeps a long-lived worker small
                self._released_totals.clear()
            with ExitStack() as opened:
                files = plain_files(opened, self.storage, self.at_rest, list(paths))
                self._released_totals[key] = totals_of_files(files)
        return self._released_totals[key]

    def _judge(
        self, job: JobView, code: str, out_dir: Path, result: RunResultLike, outputs: list[dict[str, Any]]
    ) -> Any:
        """The export guard over everything the run produced (outputs, stdout, stderr, file names);
        a :class:`sandbox.guard.Judgement` (it raises only when it cannot judge at all)."""
        from sandbox.guard import Finding, GuardConfig, judge

        config = self.guard_config or GuardConfig()
        prints, missing = guard_prints(self.registry, job) if self.registry is not None else ({}, [])
        earlier: list[tuple[str, Any]] = []
        if self.registry is not None:
            for name in job.datasets:
                try:
                    earlier += [(product, self._totals(paths)) for product, paths in self.registry.released(name)]
                except Exception:
                    log.exception("job %s: released products of %s could not be read", job.id, name)
        judged = judge(
            out_dir,
            outputs,
            stdout=result.stdout or "",
            stderr=result.stderr or "",
            removed=list(getattr(result, "removed", []) or []),
            fingerprints=prints,
            sources=self.sources.of(job.datasets) if job.kind != JobKind.MITIGATION else self._sources_of_source(code),
            config=config,
            earlier=earlier,
            certificate_key=self.signer.public_key() if self.signer is not None else None,
            job=job.id,
            code=self._code_of(job, code),
        )
        for name in missing:
            judged.findings.append(
                Finding("guard.no_fingerprints", "soft", "*", name,
                        "the dataset's fingerprints were not available: exact-value checks did not run")
            )  # fmt: skip
        if missing and judged.verdict == "pass":
            return type(judged)("review", judged.findings, judged.outputs, judged.log)
        return judged

    def _code_of(self, job: JobView, code: str) -> str:
        """The operator's own words: a mitigation job's are those of the job whose tables it mitigates."""
        if job.kind != JobKind.MITIGATION:
            return code
        from sandbox.mitigation import Mitigation

        return self.queue.code(Mitigation.from_code(code).source_job)

    def _sources_of_source(self, code: str) -> dict[str, Any]:
        """A mitigation job's copies: those of the job whose tables it mitigates."""
        from sandbox.mitigation import Mitigation

        return self.sources.of(self.queue.get(Mitigation.from_code(code).source_job).datasets)

    def _finish(
        self,
        claimed: Claimed,
        state: JobState,
        *,
        exit_code: int | None = None,
        reason: str | None = None,
        resources: Mapping[str, Any] | None = None,
        outputs: list[dict[str, Any]] | None = None,
        verdict: str | None = None,
        findings: list[dict[str, Any]] | None = None,
        log_excerpt: str | None = None,
        then: Callable[[Change, JobView], None] = lambda *_: None,
    ) -> JobView | None:
        """Record the end; a loop that goes on claims its next job in the same transaction (kept once committed)."""
        following: list[Claimed] = []

        def and_next(change: Change, ended: JobView) -> None:
            then(change, ended)
            if self._chain():
                following.extend(filter(None, [self.queue.claim_within(change, self.worker_id)]))

        view = self.queue.finish(
            claimed.job.id,
            self.worker_id,
            claimed.attempt,
            state=state,
            exit_code=exit_code,
            reason=reason,
            resources=resources,
            outputs=outputs or [],
            verdict=verdict,
            findings=findings or [],
            log_excerpt=log_excerpt,
            then=and_next,
        )
        if following:  # committed with the end (finish returned); a later failure of this job never drops it
            self._next = following[0]
        if view is None:
            log.warning("job %s was taken from %s before it could record the end", claimed.job.id, self.worker_id)
        return view


__all__ = ["HEARTBEAT_SECONDS", "STALE_AFTER", "Worker", "sandbox_unavailable_error"]
