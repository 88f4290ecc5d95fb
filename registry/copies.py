"""Desensitized copies: made from the vault's raw version, stored, fingerprinted and recorded.

Why here and not in ``desensitize``: ``desensitize`` is pure (tables in, tables out); making a copy
is a registry event. The raw version is read from the encrypted vault, the custodian's column
classification in the catalog (not the profiler's guess) picks each column's rule, the policy of
the resource's level decides the technique (GB/T 37964-2019), and the result becomes a
``desensitized`` version whose parent is the raw one, ledgered in the same transaction.

Rules implemented:

* 双鸭山 第三十五条 / 黑龙江 第三十八条 (原始数据不出域, 数据可用不可见): a sandbox mounts only the
  Parquet written here; the raw copy never leaves the vault.
* 双鸭山 第四十三条: personal information enters authorized operation only desensitized, so licences
  of L3/L4 data wait for a version made here (``registry.eligibility``).
* The guard's fingerprints of raw and pseudonymized values are kept under ``fingerprints/``, outside
  every directory a sandbox can mount; they are keyed hashes, useless without the instance pepper.
* Encrypted at rest (issue 22, SATRE 2.8.01): the copy and every fingerprint file are sealed under the
  dataset's data key (:mod:`registry.datakeys`, scope ``dataset:NAME``); the Parquet exists in clear
  only in memory here and in a job's private staging directory. Destroying the dataset's key
  crypto-shreds every copy and fingerprint set of it.

Nothing half-written is left behind: the copy and the fingerprints are written under temporary
names and renamed into place; if recording the version fails, both are removed. Their final names are
new for every attempt (content hash plus a random tag), so a copy never replaces a committed version's
files. A ``kill -9`` before the version row commits leaves files no row names, inside the directories
the attempt noted in its :class:`registry.scratch.Scratch`: the next start sweeps them
(:mod:`registry.leftovers`; issue 17). Users see the version with its files, or neither.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import (
    Actor,
    JoinedRecorder,
    NotFoundError,
    Recorder,
    RegistryError,
    StorageError,
    crash_point,
    require_role,
)
from registry.atrest import AtRest, dataset_scope
from registry.catalog import Catalog
from registry.catalog_views import ResourceView, VersionView
from registry.config import RegistryConfig
from registry.datakeys import DataKeys
from registry.ingest import CUSTODIAN
from registry.leftovers import COPIES_DIRECTORY, FINGERPRINTS_DIRECTORY
from registry.linkage_rules import kept_key_decision, kept_key_warnings
from registry.policy_approvals import PolicyApprovals
from registry.row_order import shuffled
from registry.scratch import Scratch
from registry.vault import Vault, VaultError
from registry.vocabulary import VersionKind

if TYPE_CHECKING:
    import pyarrow as pa

    from desensitize import (
        DesensitizedTable,
        FingerprintSet,
        Policy,
    )

__all__ = ["Copies", "CopyResult", "StageProgress"]

#: ``progress(stage, done, total)``: the pipeline's stages, for a progress bar.
StageProgress = Callable[[str, int, int], None]

COPIES_DIR = COPIES_DIRECTORY
FINGERPRINTS_DIR = FINGERPRINTS_DIRECTORY
POLICIES_DIR = "policies"
_log = logging.getLogger(__name__)
#: Longest reason for keeping a near-unique column (the ledger entry holding every reason stays small).
KEEP_REASON_CHARS = 2000


@dataclass(frozen=True, slots=True)
class CopyResult:
    """What ``keyong dataset desensitize`` prints (DESIGN.md, Command-line contract)."""

    dataset: str
    version: int
    parent: int
    rows: int
    columns: list[dict[str, Any]]
    k_anonymity: dict[str, Any]
    copy: Path
    fingerprints: Path
    report: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The contract's keys, plus issue 16's measures: ``risk`` and ``utility`` (``None`` when not measured)
        and, per column, its ``representation`` and ``near_unique`` decision where the report states them."""
        return {
            "dataset": self.dataset,
            "version": self.version,
            "rows": self.rows,
            "columns": _with_report_facts(self.columns, self.report),
            "k_anonymity": self.k_anonymity,
            "copy": str(self.copy),
            "parent": self.parent,
            "fingerprints": str(self.fingerprints),
            "risk": self.report.get("risk"),
            "utility": self.report.get("utility"),
            "report": self.report,
            "warnings": kept_key_warnings(self.report),  # what a kept key means for linkage (red team 23, F5)
        }


def _with_report_facts(columns: list[dict[str, Any]], report: dict[str, Any]) -> list[dict[str, Any]]:
    """``columns`` ({"name", "type", "action"}) with each one's report ``representation`` / ``near_unique`` added."""
    stated = {c.get("name"): c for c in report.get("columns") or [] if isinstance(c, dict)}
    enriched = []
    for column in columns:
        own = stated.get(column["name"], {})
        enriched.append(column | {key: own[key] for key in ("representation", "near_unique") if key in own})
    return enriched


class Copies:
    """Makes and finds the desensitized copies of catalogued datasets."""

    def __init__(
        self, recorder: Recorder, config: RegistryConfig, catalog: Catalog, vault: Callable[[], Vault]
    ) -> None:
        self.recorder = recorder
        self.config = config
        self.catalog = catalog
        self._vault = vault
        self.at_rest = AtRest(DataKeys(recorder, config), config.home, config.artifacts())
        #: Told the dataset's name once a new copy has committed (the licence copies follow it, issue 23);
        #: a listener's failure is logged, the copy stands.
        self.recorded: list[Callable[[str], None]] = []

    # -- policies -----------------------------------------------------------------------------

    def policy_for(self, level: str, path: Path | None = None) -> Policy:
        """The policy of ``level``: a given file, else the custodian's ``policies/LEVEL.json``, else the shipped one.

        A file (given or in the home) governs a copy only when its digest is approved for ``level`` by the
        four-eyes step of :mod:`registry.policy_approvals` (SATRE 1.2.01): else the copy is refused."""
        from desensitize import PolicyError, load_policy

        if path is None:
            own = self.config.home / POLICIES_DIR / f"{level}.json"
            path = own if own.is_file() else None
        try:
            policy = load_policy(level, path)
        except (OSError, PolicyError) as exc:
            raise RegistryError(f"policy for {level} not usable: {exc}") from None
        if path is not None:
            PolicyApprovals(self.recorder, self.config).require_approved(level, policy, str(path))
        return policy

    # -- making a copy ------------------------------------------------------------------------

    def make(
        self,
        name: str,
        *,
        by: Actor,
        policy_path: Path | None = None,
        sensitive_column: str | None = None,
        progress: StageProgress | None = None,
        keep_columns: Mapping[str, str] | None = None,
        not_quasi: Mapping[str, str] | None = None,
    ) -> CopyResult:
        """Desensitize the newest raw version of ``name`` into a new ``desensitized`` version.

        ``keep_columns`` (column -> reason): near-unique columns the custodian keeps as they are instead
        of pseudonymized (``desensitize.keys``); each reason is recorded in the report and the ledger.
        ``not_quasi`` (column -> reason): columns the custodian rules not quasi-identifiers although a
        personal table's defaults make them one (``desensitize.quasi``, issue 23); recorded likewise,
        in ``report["quasi_identifier_rulings"]`` and the ``dataset.desensitized`` entry.
        """
        require_role(by, CUSTODIAN)
        pepper = self.config.pepper
        if pepper is None:
            raise RegistryError("this instance has no pseudonym pepper: desensitization needs its keys")
        entry = self.catalog.get(name)
        raw = _newest(entry, VersionKind.RAW)
        if raw is None:
            raise RegistryError(f"dataset {name!r} has no raw version to desensitize: ingest a file first")
        columns = {item.name: item.pii_type for item in entry.items}
        if sensitive_column is not None and sensitive_column not in columns:
            raise RegistryError(f"dataset {name!r} has no column {sensitive_column!r} (for l-diversity)")
        keep = _checked_keep(name, columns, keep_columns)
        rulings = _checked_rulings(name, columns, not_quasi)
        policy = self.policy_for(entry.level.value, policy_path)
        note = progress or (lambda *_: None)
        result = self._desensitize(entry, raw, policy, pepper, sensitive_column, progress, keep, rulings)
        _refuse_above_threshold(name, entry.level.value, result.report)
        result.report["kept_keys"] = kept_key_decision(result.report, columns, result.frame)  # F5: decided once

        with Scratch(self.config.home, purpose="desensitize") as scratch:  # released once committed
            scratch.note_paths(f"{COPIES_DIR}/{name}/", f"{FINGERPRINTS_DIR}/{name}/")
            version, final_copy, final_prints, report, out_table = self._store(
                name, raw, result, by=by, note=note, keep=keep
            )
        for listener in self.recorded:
            try:
                listener(name)
            except Exception:
                _log.exception("after the copy of %s v%s: a listener failed", name, version.version)
        return CopyResult(
            dataset=name,
            version=version.version,
            parent=raw.version,
            rows=out_table.num_rows,
            columns=result.columns_json(),
            k_anonymity=result.report.get("k_anonymity", {}),
            copy=final_copy,
            fingerprints=final_prints,
            report=report,
        )

    def _store(
        self,
        name: str,
        raw: VersionView,
        result: DesensitizedTable,
        *,
        by: Actor,
        note: StageProgress,
        keep: Mapping[str, str],
    ) -> tuple[VersionView, Path, Path, dict[str, Any], pa.Table]:
        """Put the copy and its fingerprints as new objects, then record the version (or delete them).

        Objects before the row (issue 19): each is put create-only under a key no version uses yet
        (the content's digest and a random tag), the version row naming them commits after; a refused
        commit deletes them here, a crash in between leaves them to the sweepers (``sweep_home`` on the
        home, ``core.storage_sweep`` on a bucket). Each object's plaintext SHA-256 is recorded (the copy's
        in the version, the fingerprints' in the report) for the staging check of a worker elsewhere.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        note("writing the copy and the fingerprints", 0, 1)
        try:
            out_table = shuffled(pa.Table.from_pandas(result.frame, preserve_index=False))  # a fresh order (F4)
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:  # red team 23a F5: was raw
            raise RegistryError(
                f"the copy of {name!r} cannot be written as Parquet ({type(exc).__name__}: {str(exc)[:160]}); "
                "nothing was recorded: each column must hold one kind of value, then desensitize again"
            ) from None
        scope = dataset_scope(name)
        buffer = io.BytesIO()  # the Parquet in clear only in memory: sealed as it is put
        pq.write_table(out_table, buffer, compression="zstd")
        content_sha256 = hashlib.sha256(buffer.getbuffer()).hexdigest()
        stem = f"{content_sha256[:16]}.{secrets.token_hex(4)}"  # never an existing version's name
        copy_key = f"{COPIES_DIR}/{name}/{stem}.parquet.kyv"
        prints_key = f"{FINGERPRINTS_DIR}/{name}/{stem}"
        written: list[str] = []
        try:
            written.append(self.at_rest.put_object(copy_key, buffer.getvalue(), scope, by=by).key)
            del buffer
            prints: dict[str, str] = {}
            # desensitize (pure) saves plain files: into a private temporary directory, sealed from there.
            with self.at_rest.private_dir() as plain:
                for made in sorted(result.fingerprints.save(plain).iterdir()):
                    stored = self.at_rest.put_object(f"{prints_key}/{made.name}", made, scope, by=by)
                    written.append(stored.key)
                    prints[made.name] = stored.sha256
            crash_point("desensitize.files-written")
            note("writing the copy and the fingerprints", 1, 1)
            note("recording the version in the catalog and the ledger", 0, 1)
            report = {
                **result.report,
                "fingerprints": prints_key,
                "fingerprint_counts": result.fingerprints.counts(),
                "fingerprint_files": prints,  # file name -> plaintext SHA-256, checked when staged
            }
            version = self._record(name, raw, out_table, content_sha256, copy_key, report, result, by=by, keep=keep)
            note("recording the version in the catalog and the ledger", 1, 1)
        except BaseException:
            self._delete(written)
            raise
        return version, self.config.home / copy_key, self.config.home / prints_key, report, out_table

    def _delete(self, keys: list[str]) -> None:
        """Objects of a copy whose version did not commit (the home's emptied directories too)."""
        storage = self.at_rest.storage
        for key in reversed(keys):
            storage.delete(key)
            local = storage.local_path(key)
            if local is not None and key.startswith(f"{FINGERPRINTS_DIR}/"):
                with contextlib.suppress(OSError):
                    local.parent.rmdir()  # a fingerprint set's directory, once empty

    def _desensitize(
        self,
        entry: ResourceView,
        raw: VersionView,
        policy: Policy,
        pepper: bytes,
        sensitive_column: str | None,
        progress: StageProgress | None,
        keep: dict[str, str],
        rulings: dict[str, str],
    ) -> DesensitizedTable:
        """The raw version read from the vault, desensitized under ``policy`` by the catalog's classification.

        A ruling against a type the policy lists as a quasi-identifier is refused here, where the
        pipeline first sees the types (``desensitize.quasi``)."""
        from desensitize import DesensitizeError, RulingError, TransformError, desensitize_table

        name = entry.name
        columns = {item.name: item.pii_type for item in entry.items}
        note = progress or (lambda *_: None)
        note("reading the raw copy from the vault", 0, 1)
        try:
            table = self._vault().read_table(raw.path)
        except VaultError as exc:
            raise RegistryError(f"the raw copy of {name!r} v{raw.version} could not be read: {exc}") from None
        note("reading the raw copy from the vault", 1, 1)
        frame = table.to_pandas()
        del table
        try:
            return desensitize_table(
                frame,
                columns,
                policy,
                pepper=pepper,
                confidences={item.name: item.confidence for item in entry.items if item.confidence is not None},
                sensitive_column=sensitive_column,
                progress=progress,
                keep_columns=keep,
                not_quasi=rulings,
            )
        except RulingError as exc:
            raise RegistryError(f"dataset {name!r}: {exc}") from None
        except TransformError as exc:  # the grading does not fit the values (red team 21c F10: a 500, a traceback)
            raise RegistryError(
                f"dataset {name!r}: {exc}; grade that column with the PII type its values hold, then desensitize again"
            ) from None
        except DesensitizeError as exc:  # a value no stage handles: refused, nothing written (desensitize.errors)
            raise RegistryError(f"dataset {name!r}: {exc}") from None

    def _record(
        self,
        name: str,
        raw: VersionView,
        out_table: pa.Table,
        content_sha256: str,
        copy_key: str,
        report: dict[str, Any],
        result: DesensitizedTable,
        *,
        by: Actor,
        keep: Mapping[str, str],
    ) -> VersionView:
        """The ``desensitized`` version (parent: the raw one) and its ledger entry, in one transaction."""
        with self.recorder.change(by) as change:
            catalog = type(self.catalog)(JoinedRecorder(change, self.recorder), self.config)
            version = catalog.add_version(
                name,
                kind=VersionKind.DESENSITIZED,
                rows=out_table.num_rows,
                columns=[{"name": f.name, "type": str(f.type)} for f in out_table.schema],
                content_sha256=content_sha256,
                path=copy_key,
                report=report,
                parent=raw.version,
                by=by,
            )
            change.log(
                "dataset.desensitized",
                f"dataset:{name}",
                {
                    "version": version.version,
                    "parent": raw.version,
                    "rows_in": result.report.get("rows_in"),
                    "rows_out": out_table.num_rows,
                    "k_anonymity": result.report.get("k_anonymity", {}).get("k_achieved"),
                    # Fail closed, marked: a copy above its level's risk threshold is recorded as such (issue 16).
                    "risk_met": (result.report.get("risk") or {}).get("met"),
                    "policy_sha256": result.report.get("policy", {}).get("sha256"),
                    "content_sha256": content_sha256,
                    "columns": [{"name": c["name"], "action": c["action"]} for c in result.columns_json()],
                    # Near-unique columns (desensitize.keys): what each became, and the custodian's
                    # reason for any kept as it is.
                    "near_unique": [
                        {"name": c["name"], **c["near_unique"]} for c in report["columns"] if "near_unique" in c
                    ],
                    "keep_columns": keep,  # as asked, also for a column that proved not near-unique
                    # The custodian's rulings against default quasi-identifiers (issue 23), with what
                    # each column would have been ("was": its basis, null if it was none).
                    "not_quasi_identifiers": report.get("quasi_identifier_rulings", []),
                    "quasi_identifiers": [
                        {"column": q["column"], "basis": q.get("basis"), "generalization": q.get("generalization")}
                        for q in (report.get("k_anonymity") or {}).get("quasi_identifiers", [])
                    ],
                },
            )
        return version

    # -- finding copies -----------------------------------------------------------------------

    def newest(self, name: str) -> VersionView:
        """The newest desensitized version of ``name`` (the one a licence serves)."""
        version = _newest(self.catalog.get(name), VersionKind.DESENSITIZED)
        if version is None:
            raise NotFoundError(f"dataset {name!r} has no desensitized version yet: run `keyong dataset desensitize`")
        return version

    def path(self, version: VersionView) -> Path:
        """Where a version's Parquet lies in the home (only desensitized versions: raw ones are in the vault)."""
        if version.kind != VersionKind.DESENSITIZED:
            raise RegistryError("only desensitized versions have a copy outside the vault")
        return self.config.home / version.path

    def fingerprints(self, name: str, version: int | None = None) -> FingerprintSet:
        """The guard's fingerprint set of a desensitized version (newest by default)."""
        from desensitize import FingerprintError, FingerprintSet

        if self.config.pepper is None:
            raise RegistryError("this instance has no pseudonym pepper: fingerprints cannot be probed")
        entry = self.catalog.get(name)
        candidates = [v for v in entry.versions if v.kind == VersionKind.DESENSITIZED]
        chosen = candidates[-1] if version is None and candidates else None
        if version is not None:
            chosen = next((v for v in candidates if v.version == version), None)
        if chosen is None or not chosen.report or "fingerprints" not in chosen.report:
            raise NotFoundError(f"dataset {name!r} has no fingerprints for version {version or 'newest'}")
        try:
            with self.at_rest.private_dir() as plain:
                self.at_rest.stage_set(chosen.report["fingerprints"], chosen.report.get("fingerprint_files"), plain)
                return FingerprintSet.load(plain, pepper=self.config.pepper)
        except (OSError, FingerprintError, VaultError, StorageError) as exc:
            raise RegistryError(f"the fingerprints of {name!r} v{chosen.version} are not usable: {exc}") from None


def _refuse_above_threshold(name: str, level: str, report: Mapping[str, Any]) -> None:
    """Fail closed: a copy whose risk stays above its level's threshold is never recorded, so no licence
    can open it and no job can mount it (GB/T 37964-2019 第6章: the de-identified result is verified
    against its target before use; 双鸭山市公共数据管理暂行办法 第三十五条 数据可用不可见)."""
    risk = report.get("risk") or {}
    if risk.get("met") is False:
        raise RegistryError(
            f"the copy of {name!r} would stay above the {level} re-identification risk threshold "
            f"({risk.get('reason')}); nothing was recorded. Too few rows for this level, or a policy that "
            "generalizes more (keyong policy propose) is needed"
        )


def _checked_keep(name: str, columns: Mapping[str, object], keep: Mapping[str, str] | None) -> dict[str, str]:
    """The custodian's kept near-unique columns: each a column of the dataset, each with a reason
    (``desensitize.keys.check_keep``, its errors as the registry's), each reason bounded."""
    from desensitize import check_keep, visible_reason

    try:
        checked = check_keep(keep, list(columns))
    except KeyError:
        missing = next(c for c in keep or {} if c not in columns)
        raise RegistryError(f"dataset {name!r} has no column {missing!r} to keep") from None
    except ValueError:
        blank = next(c for c, r in (keep or {}).items() if c in columns and not visible_reason(r))
        raise RegistryError(f"keeping column {blank!r} of {name!r} as it is needs a reason (it is ledgered)") from None
    for column, reason in checked.items():
        if len(reason) > KEEP_REASON_CHARS:
            raise RegistryError(
                f"the reason for keeping column {column!r} is {len(reason)} characters; at most "
                f"{KEEP_REASON_CHARS} (it is ledgered with the copy)"
            )
    return checked


def _checked_rulings(name: str, columns: Mapping[str, object], rulings: Mapping[str, str] | None) -> dict[str, str]:
    """The custodian's rulings against default quasi-identifiers (``desensitize.quasi.check_not_quasi``:
    a column of the dataset, a visible reason, at most ``NOT_QUASI_REASON_CHARS``), as registry errors."""
    from desensitize import check_not_quasi

    try:
        return check_not_quasi(rulings, list(columns))
    except KeyError as exc:
        raise RegistryError(f"dataset {name!r}: {exc.args[0]}") from None
    except ValueError as exc:
        raise RegistryError(f"dataset {name!r}: {exc}") from None


def _newest(entry: ResourceView, kind: VersionKind) -> VersionView | None:
    candidates = [v for v in entry.versions if v.kind == kind]
    return max(candidates, key=lambda v: v.version) if candidates else None
