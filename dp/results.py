"""Sealing what the platform's DP programs produced, and checking seals at the export guard (issue 8).

After a ``dp-query`` or ``dp-train`` run and before the guard, the worker (outside the sandbox)
reads what the platform's program wrote, checks it has exactly the expected shape, and signs it
with the instance key (``dp.certificates``):

* ``dp-query``: ``result.json`` is rewritten as the signed answer: the noisy values, the
  mechanism, ε, the bounds and the cap on rows per person, naming the job and dataset version.
* ``dp-train``: ``model.certificate.json`` is added beside ``model.pt``: ``{job, dataset version,
  ε spent, δ, noise multiplier, sample rate, steps, accountant, weights sha256}`` plus the
  membership-inference AUC. σ, q and the steps come from the *plan the platform computed* when it
  charged the budget; the program's own record must agree, or no certificate is issued and the
  model stays blocked.

The guard then lets a model file out only with a certificate that verifies under the instance
key, names this job and this file, and carries this file's SHA-256; anything else — a model an
operator's Python job wrote, an altered weight, a forged or re-used certificate — is a hard finding
(双鸭山 第五十四条: no raw data out, nor restored through reversible models or algorithms).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeGuard

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core import file_sha256
from dp.certificates import CertificateError, sign, verify
from dp.kinds import DpKind

RESULT = "result.json"
MODEL = "model.pt"
TRAINING = "training.json"
MAX_JSON_BYTES = 8 * 1024 * 1024
CERTIFICATE_SUFFIX = ".certificate.json"
QUERY_KEYS = {
    "kind",
    "dataset",
    "aggregate",
    "column",
    "bounds",
    "epsilon",
    "delta",
    "max_rows_per_person",
    "mechanism",
    "group_by",
    "bins",
    "rows",
}


#: The kinds of document the platform signs for a job: DP answers, model certificates, training records.
CERTIFICATE_KIND = "dp-train-certificate"
RECORD_KIND = "dp-train-record"
SIGNED_KINDS = (DpKind.QUERY.value, CERTIFICATE_KIND, RECORD_KIND)


class SealError(ValueError):
    """The program's output is not what the platform's program writes: nothing is signed."""


def certificate_name(model_file: str) -> str:
    """``model.pt`` -> ``model.certificate.json``."""
    return str(Path(model_file).with_suffix("")) + CERTIFICATE_SUFFIX


def _read_json(path: Path) -> Any:
    if not path.is_file() or path.is_symlink():
        raise SealError(f"{path.name} is missing")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise SealError(f"{path.name} is too large")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeError, json.JSONDecodeError):
        raise SealError(f"{path.name} is not JSON") from None


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _entry(out_dir: Path, name: str) -> dict[str, Any]:
    path = out_dir / name
    return {"name": name, "bytes": path.stat().st_size, "sha256": file_sha256(path)[0]}


def _replace(outputs: Sequence[Mapping[str, Any]], entry: dict[str, Any]) -> list[dict[str, Any]]:
    kept = [dict(o) for o in outputs if str(o.get("name")) != entry["name"]]
    return [*kept, entry]


def seal_query(
    plan: Mapping[str, Any], job: int, out_dir: Path, outputs: Sequence[Mapping[str, Any]], key: Ed25519PrivateKey
) -> list[dict[str, Any]]:
    """Sign ``result.json`` of a dp-query run; the outputs list with its new size and hash."""
    result = _read_json(out_dir / RESULT)
    if not isinstance(result, dict) or set(result) - QUERY_KEYS or result.get("kind") != DpKind.QUERY:
        raise SealError("result.json does not have the dp-query shape")
    for name in ("aggregate", "column", "bounds", "max_rows_per_person"):
        if result.get(name) != plan.get(name):
            raise SealError(f"result.json's {name} differs from the plan")
    if not math.isclose(float(result.get("epsilon", -1)), float(plan["epsilon"])):
        raise SealError("result.json's ε differs from the plan")
    rows = result.get("rows")
    if not isinstance(rows, list) or not rows:
        raise SealError("result.json has no rows")
    for row in rows:
        value = row.get("value") if isinstance(row, dict) else None
        values = value if isinstance(value, list) else [value]
        if not isinstance(row, dict) or not isinstance(row.get("group"), dict) or not all(map(_number, values)):
            raise SealError("result.json has a malformed row")
    sealed = dict(result)
    sealed.update(
        {
            "kind": DpKind.QUERY.value,
            "job": job,
            "dataset": plan["dataset"],
            "version": plan.get("version"),
            "delta": 0.0,
            "protected_unit": f"person ({plan['person_key']}), at most {plan['max_rows_per_person']} rows each",
            "issued_at": _now(),
        }
    )
    signed = sign(sealed, key)
    (out_dir / RESULT).write_text(json.dumps(signed, ensure_ascii=False, indent=1), encoding="utf-8")
    return _replace(outputs, _entry(out_dir, RESULT))


def beats_majority(accuracy: float | None, majority_share: float | None) -> bool | None:
    """Whether the model's holdout accuracy is above always answering the holdout's most common label.

    Why: a classifier at or below that share has learnt nothing a reader could use (issue 16: the demo's
    model once predicted the majority class only), and a certificate should say so rather than leave the
    comparison to the reader. None when the run had no holdout to measure either number on.
    """
    if accuracy is None or majority_share is None:
        return None
    return accuracy > majority_share


def seal_train(
    plan: Mapping[str, Any], job: int, out_dir: Path, outputs: Sequence[Mapping[str, Any]], key: Ed25519PrivateKey
) -> list[dict[str, Any]]:
    """Issue ``model.certificate.json`` for a dp-train run; the outputs list with it added."""
    record = _read_json(out_dir / TRAINING)
    model = out_dir / MODEL
    if not isinstance(record, dict) or not model.is_file() or model.is_symlink():
        raise SealError("the dp-train run did not leave model.pt and training.json")
    for name in ("noise_multiplier", "sample_rate"):
        if not _number(record.get(name)) or not math.isclose(float(record[name]), float(plan[name]), rel_tol=1e-9):
            raise SealError(f"the run's {name} differs from the plan the budget paid for")
    if record.get("steps") != plan["steps"] or record.get("accountant") != plan["accountant"]:
        raise SealError("the run's steps or accountant differ from the plan the budget paid for")
    spent = record.get("epsilon")
    if not _number(spent) or float(spent) > float(plan["epsilon"]) * (1 + 1e-6):
        raise SealError("the accountant's ε exceeds the charged ε")
    auc = record.get("mia_auc")
    accuracy = float(record["holdout_accuracy"]) if _number(record.get("holdout_accuracy")) else None
    majority = float(record["holdout_majority_share"]) if _number(record.get("holdout_majority_share")) else None
    certificate = {
        "kind": CERTIFICATE_KIND,
        "job": job,
        "dataset": plan["dataset"],
        "version": plan.get("version"),
        "epsilon": float(plan["epsilon"]),
        "epsilon_accountant": float(spent),
        "delta": float(plan["delta"]),
        "noise_multiplier": float(plan["noise_multiplier"]),
        "sample_rate": float(plan["sample_rate"]),
        "steps": int(plan["steps"]),
        "accountant": plan["accountant"],
        "max_grad_norm": float(plan["max_grad_norm"]),
        "protected_unit": f"person ({plan['person_key']}), one row each",
        "model": plan["model"],
        "weights_file": MODEL,
        "weights_sha256": file_sha256(model)[0],
        "mia_auc": float(auc) if _number(auc) else None,
        "holdout_accuracy": accuracy,
        "holdout_majority_share": majority,
        "beats_majority": beats_majority(accuracy, majority),
        "issued_at": _now(),
    }
    name = certificate_name(MODEL)
    (out_dir / name).write_text(json.dumps(sign(certificate, key), ensure_ascii=False, indent=1), encoding="utf-8")
    # The platform program's own record (ε spent, accuracy, AUC) is signed too: it is the platform's
    # statement about the run, not a table the operator wrote, and the guard accepts it as such.
    signed_record = sign({**record, "kind": RECORD_KIND, "job": job}, key)
    (out_dir / TRAINING).write_text(json.dumps(signed_record, ensure_ascii=False, indent=1), encoding="utf-8")
    return _replace(_replace(outputs, _entry(out_dir, TRAINING)), _entry(out_dir, name))


def seal(
    kind: str,
    plan: Mapping[str, Any],
    job: int,
    out_dir: Path,
    outputs: Sequence[Mapping[str, Any]],
    key: Ed25519PrivateKey,
) -> list[dict[str, Any]]:
    if kind == DpKind.QUERY:
        return seal_query(plan, job, out_dir, outputs, key)
    if kind == DpKind.TRAIN:
        return seal_train(plan, job, out_dir, outputs, key)
    raise SealError(f"{kind} results are not sealed")


def check_model(
    name: str, out_dir: Path, outputs: Sequence[Mapping[str, Any]], public_key: Ed25519PublicKey | None, job: int | None
) -> tuple[str | None, dict[str, Any] | None]:
    """``(problem, certificate)``: problem is None when ``name`` carries a valid platform certificate."""
    if public_key is None or job is None:
        return "model file without a platform DP certificate (only dp-train jobs issue one)", None
    cert_name = certificate_name(name)
    if cert_name not in {str(o.get("name")) for o in outputs}:
        return "model file without a platform DP certificate (only dp-train jobs issue one)", None
    try:
        certificate = verify(_read_json(out_dir / cert_name), public_key)
    except (SealError, CertificateError) as exc:
        return f"the model's certificate is not valid: {exc}", None
    if certificate.get("kind") != CERTIFICATE_KIND or certificate.get("job") != job:
        return "the model's certificate was issued for another job", None
    if (
        certificate.get("weights_file") != Path(name).name
        or certificate.get("weights_sha256") != file_sha256(out_dir / name)[0]
    ):
        return "the model file's SHA-256 does not match its certificate: the weights were altered", None
    return None, certificate


def signed_by_platform(path: Path, key: Ed25519PublicKey | None, job: int | None) -> bool:
    """A DP answer or model certificate the platform signed for this very job (not one copied from another)."""
    if key is None or job is None:
        return False
    try:
        document = verify(_read_json(path), key)
    except (SealError, CertificateError):
        return False
    return document.get("job") == job and document.get("kind") in SIGNED_KINDS


__all__ = [
    "CERTIFICATE_SUFFIX",
    "MODEL",
    "RESULT",
    "TRAINING",
    "SealError",
    "beats_majority",
    "certificate_name",
    "check_model",
    "seal",
    "seal_query",
    "seal_train",
    "signed_by_platform",
]
