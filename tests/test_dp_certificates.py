"""Platform signatures and model certificates at the export guard (issue 8; 原始数据不出域: no data restored
through reversible models). Attacks: altered weights, an altered or forged certificate, a certificate of
another job or signed by another key, a model with no certificate; and the seal refusing a run whose
record disagrees with the plan the budget paid for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dp import CertificateError, SealError, seal_query, seal_train, sign, signed_by_platform, verify
from sandbox.guard import judge

KEY = Ed25519PrivateKey.generate()
STATUSES = ["正常参保", "暂停参保", "终止参保"]
JOB = 7
PLAN: dict[str, Any] = {
    "kind": "dp-train",
    "dataset": "insurance",
    "version": 1,
    "person_key": "身份证号",
    "model": "logistic",
    "epsilon": 1.0,
    "delta": 1e-5,
    "noise_multiplier": 1.2,
    "sample_rate": 0.02,
    "steps": 250,
    "accountant": "rdp",
    "max_grad_norm": 1.0,
}
RECORD = {
    "kind": "dp-train",
    "epsilon": 0.97,
    "delta": 1e-5,
    "noise_multiplier": 1.2,
    "sample_rate": 0.02,
    "steps": 250,
    "accountant": "rdp",
    "mia_auc": 0.51,
    "holdout_accuracy": 0.76,
    "holdout_majority_share": 0.74,
}


def entry(out: Path, name: str) -> dict[str, Any]:
    import hashlib

    data = (out / name).read_bytes()
    return {"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def trained(tmp_path: Path, record: dict[str, Any] | None = None) -> tuple[Path, list[dict[str, Any]]]:
    """An out dir as the dp-train program leaves it, sealed by the worker."""
    out = tmp_path / "out"
    out.mkdir(parents=True)
    (out / "model.pt").write_bytes(b"\x80\x02weights" * 100)
    (out / "training.json").write_text(json.dumps(record or RECORD), encoding="utf-8")
    outputs = [entry(out, "model.pt"), entry(out, "training.json")]
    return out, seal_train(PLAN, JOB, out, outputs, KEY)


def rules(out: Path, outputs: list[dict[str, Any]], **kw: Any) -> tuple[str, set[tuple[str, str]]]:
    options: dict[str, Any] = {"certificate_key": KEY.public_key(), "job": JOB, **kw}
    judged = judge(out, outputs, **options)
    return judged.verdict, {(f.rule, f.severity) for f in judged.findings}


def test_signatures_verify_and_detect_any_change() -> None:
    signed = sign({"a": 1, "b": "值"}, KEY)
    assert verify(signed, KEY.public_key())["a"] == 1
    with pytest.raises(CertificateError, match="altered"):
        verify({**signed, "a": 2}, KEY.public_key())
    with pytest.raises(CertificateError, match="another key"):
        verify(signed, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(CertificateError, match="no platform signature"):
        verify({"a": 1}, KEY.public_key())


def test_a_certified_model_passes(tmp_path: Path) -> None:
    out, outputs = trained(tmp_path)
    certificate = json.loads((out / "model.certificate.json").read_text(encoding="utf-8"))
    assert certificate["weights_sha256"] == entry(out, "model.pt")["sha256"]
    assert certificate["epsilon"] == 1.0 and certificate["epsilon_accountant"] == 0.97
    assert certificate["holdout_accuracy"] == 0.76 and certificate["holdout_majority_share"] == 0.74
    assert certificate["beats_majority"] is True
    assert {"job", "version", "delta", "noise_multiplier", "sample_rate", "steps", "accountant"} <= set(certificate)
    verdict, found = rules(out, outputs)
    assert verdict == "pass", found


@pytest.mark.parametrize(
    ("accuracy", "majority", "beats"),
    [(0.7451, 0.7451, False), (0.70, 0.74, False), (0.7452, 0.7451, True), (None, 0.74, None), (0.76, None, None)],
)
def test_the_certificate_says_whether_the_model_beats_the_majority_share(
    tmp_path: Path, accuracy: float | None, majority: float | None, beats: bool | None
) -> None:
    """Issue 16: a model at its holdout's majority share (one that always answers the most common label) has
    learnt nothing, and its certificate says so; without a holdout it says nothing (None), not False."""
    out, _ = trained(tmp_path, {**RECORD, "holdout_accuracy": accuracy, "holdout_majority_share": majority})
    certificate = json.loads((out / "model.certificate.json").read_text(encoding="utf-8"))
    assert certificate["holdout_accuracy"] == accuracy and certificate["holdout_majority_share"] == majority
    assert certificate["beats_majority"] is beats
    assert verify(certificate, KEY.public_key())["beats_majority"] is beats  # covered by the signature


def test_a_model_that_remembers_its_training_rows_goes_to_review(tmp_path: Path) -> None:
    out, outputs = trained(tmp_path, {**RECORD, "mia_auc": 0.71})
    verdict, found = rules(out, outputs)
    assert verdict == "review" and ("model.membership_inference", "soft") in found


@pytest.mark.attack
def test_altered_weights_are_blocked(tmp_path: Path) -> None:
    out, outputs = trained(tmp_path)
    (out / "model.pt").write_bytes(b"\x80\x02weights" * 99 + b"\x80\x02WEIGHTS")
    outputs = [entry(out, "model.pt") if o["name"] == "model.pt" else o for o in outputs]
    verdict, found = rules(out, outputs)
    assert verdict == "block" and ("model.uncertified", "hard") in found


@pytest.mark.attack
@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: {**c, "epsilon": 0.1},  # claim a smaller spend
        lambda c: {**c, "weights_sha256": "0" * 64},
        lambda c: {**c, "signature": {**c["signature"], "value": c["signature"]["value"][::-1]}},
        lambda c: {k: v for k, v in c.items() if k != "signature"},
        lambda c: sign({k: v for k, v in c.items() if k != "signature"}, Ed25519PrivateKey.generate()),  # own key
    ],
    ids=["epsilon", "hash", "signature", "unsigned", "other-key"],
)
def test_an_altered_or_forged_certificate_is_blocked(tmp_path: Path, tamper: Any) -> None:
    out, outputs = trained(tmp_path)
    path = out / "model.certificate.json"
    path.write_text(json.dumps(tamper(json.loads(path.read_text(encoding="utf-8")))), encoding="utf-8")
    verdict, found = rules(out, outputs)
    assert verdict == "block" and ("model.uncertified", "hard") in found


@pytest.mark.attack
def test_a_certificate_of_another_job_is_blocked(tmp_path: Path) -> None:
    out, outputs = trained(tmp_path)
    verdict, found = rules(out, outputs, job=JOB + 1)
    assert verdict == "block" and ("model.uncertified", "hard") in found


@pytest.mark.attack
def test_a_model_without_certificate_or_without_a_key_is_blocked(tmp_path: Path) -> None:
    out, outputs = trained(tmp_path)
    bare = [o for o in outputs if o["name"] != "model.certificate.json"]
    assert rules(out, bare)[0] == "block"
    assert judge(out, outputs).verdict == "block"  # a guard without the instance key trusts no certificate


def test_the_seal_refuses_a_run_that_disagrees_with_the_paid_plan(tmp_path: Path) -> None:
    for name, record in {
        "sigma": {**RECORD, "noise_multiplier": 0.5},
        "steps": {**RECORD, "steps": 2500},
        "overspent": {**RECORD, "epsilon": 1.5},
    }.items():
        with pytest.raises(SealError):
            trained(tmp_path / name, record)
        assert not (tmp_path / name / "out" / "model.certificate.json").exists()


def query_out(tmp_path: Path, counts: list[int]) -> tuple[Path, list[dict[str, Any]]]:
    out = tmp_path / "out"
    out.mkdir()
    plan = {"kind": "dp-query", "dataset": "insurance", "version": 1, "person_key": "身份证号",
            "max_rows_per_person": 1, "aggregate": "count", "column": None, "bounds": None, "epsilon": 0.5}  # fmt: skip
    result = {
        "kind": "dp-query", "dataset": "insurance", "aggregate": "count", "column": None, "bounds": None,
        "epsilon": 0.5, "delta": 0.0, "max_rows_per_person": 1, "mechanism": "geometric", "group_by": ["参保状态"],
        "bins": None,
        "rows": [{"group": {"参保状态": s}, "value": c} for s, c in zip(STATUSES, counts, strict=True)],
    }  # fmt: skip
    (out / "result.json").write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    return out, seal_query(plan, JOB, out, [entry(out, "result.json")], KEY)


def test_a_signed_dp_answer_is_recognised_only_for_its_own_job_and_key(tmp_path: Path) -> None:
    """Noise, not a minimum cell count, protects a DP count, so the guard skips SDC on a signed answer;
    the seal names the job, so an answer copied into another job's outputs is judged like any table."""
    out, outputs = query_out(tmp_path, [1210, 3, 0])
    assert rules(out, outputs)[0] == "pass"
    assert signed_by_platform(out / "result.json", KEY.public_key(), JOB)
    assert not signed_by_platform(out / "result.json", KEY.public_key(), JOB + 1)
    assert not signed_by_platform(out / "result.json", Ed25519PrivateKey.generate().public_key(), JOB)


def test_the_seal_refuses_an_answer_that_is_not_the_programs_shape(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "result.json").write_text(json.dumps({"kind": "dp-query", "raw": [1, 2, 3]}), encoding="utf-8")
    with pytest.raises(SealError):
        seal_query({"aggregate": "count", "epsilon": 0.5}, JOB, out, [], KEY)
