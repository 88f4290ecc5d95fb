"""The demo's dp-train model beats its holdout's majority share, and the demo's report says so (issue 16).

The demo's model once predicted the majority class and nothing else: its features (the contribution base in
bands, the enrolment date) carried no signal the label could be told from, and the report printed its
certificate as if it had learnt something. The social-insurance table now carries the insured's birth date
(the L4 copy keeps its year), and the model reads it; the report states the accuracy against the majority
share with a verdict, or says plainly that the model does not beat it and why.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.demo.model import summarize, verdict
from app.demo.scenario import DEMO_DP_TRAIN, DEMO_DP_TRAIN_FEATURES, PUBLIC_FACTS
from dp import sign

KEY = Ed25519PrivateKey.generate()
RECORD: dict[str, Any] = {
    "features": [
        {"column": "出生日期", "type": "numeric", "bounds": [1920, 2010]},
        {"column": "月缴费基数", "type": "numeric", "bounds": [3000, 40000]},
    ],
    "train_rows": 11345,
    "holdout_rows": 2836,
}


def _certificate(accuracy: float | None, majority: float | None, **extra: Any) -> dict[str, Any]:
    return sign(
        {"kind": "dp-train-certificate", "model": "logistic", "epsilon": 1.0, "holdout_accuracy": accuracy,
         "holdout_majority_share": majority, **extra},
        KEY,
    )  # fmt: skip


def test_a_model_above_the_majority_share_is_said_to_beat_it_by_its_points() -> None:
    summary = summarize(_certificate(0.8357, 0.7451, beats_majority=True), RECORD)
    assert summary["beats_majority"] is True
    assert summary["margin_points"] == 9.06  # 100 × (0.8357 − 0.7451)
    assert summary["features"] == ["出生日期", "月缴费基数"] and summary["train_rows"] == 11345
    assert summary["verdict"] == "beats the majority share by 9.1 points (holdout accuracy 0.8357 vs 0.7451)"


@pytest.mark.parametrize(("accuracy", "points"), [(0.7451, "0"), (0.7012, "-4.4")])
def test_a_model_at_or_below_the_majority_share_is_said_not_to_beat_it_and_why(accuracy: float, points: str) -> None:
    summary = summarize(_certificate(accuracy, 0.7451, beats_majority=False), {**RECORD, "train_rows": 284})
    assert summary["beats_majority"] is False
    text = summary["verdict"]
    assert text.startswith(f"does not beat the majority share: holdout accuracy {accuracy:.4f} vs 0.7451 ({points} ")
    assert "always answering the most common label" in text
    assert "ε 1.0 on 284 training rows" in text and "出生日期, 月缴费基数" in text


def test_an_older_certificate_without_the_field_is_compared_the_same_way() -> None:
    assert summarize(_certificate(0.80, 0.75), RECORD)["beats_majority"] is True
    assert summarize(_certificate(0.75, 0.75), RECORD)["beats_majority"] is False


def test_no_holdout_is_no_verdict() -> None:
    summary = summarize(_certificate(None, None), RECORD)
    assert summary["beats_majority"] is None and summary["margin_points"] is None
    assert verdict(summary).startswith("not measured")


def test_the_demo_declares_the_public_facts_its_model_needs() -> None:
    """Every feature and the label of the demo's model have public facts (bounds or a domain) the custodian
    declares: a plan is never made from the data's own range (issue 8), so a missing fact would refuse the job."""
    spec = json.loads(DEMO_DP_TRAIN)
    declared = {column: (bounds, domain) for dataset, column, bounds, domain in PUBLIC_FACTS
                if dataset == "social_insurance"}  # fmt: skip
    assert spec["features"] == DEMO_DP_TRAIN_FEATURES == ["出生日期", "月缴费基数"]
    assert all(declared[feature][0] is not None for feature in spec["features"])
    assert declared[spec["label"]][1] == ["正常参保", "暂停参保", "终止参保"]
    assert declared["出生日期"][0] == [1920, 2010]  # the insured are 16 or more on AS_OF (2026-06-30)


@pytest.mark.slow
def test_the_demo_model_beats_the_majority_share_on_the_demo_copy(tmp_path: Path) -> None:
    """The whole demo at its default size and seed (the copy desensitized at L4 as the demo does it): the
    dp-train model at ε 1.0 beats the majority share of the same holdout by a clear margin, and the report
    carries both numbers from the platform's certificate. 12 runs of this plan on this copy gave 8 to 10
    points, and a parallel CI run once 4.98 (the noise is DP noise: never seeded); a model stuck at the
    majority class (what the demo trained before issue 16) scores 0, so 3 points still tell the two apart."""
    home = tmp_path / "demo-home"
    result = subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", "demo", "--home", str(home), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    copy = next(d for d in report["desensitized"] if d["dataset"] == "social_insurance")
    assert copy["actions"]["出生日期"] == "date_year" and copy["actions"]["月缴费基数"] == "band"
    job = next(j for j in report["jobs"] if j["kind"] == "dp-train")
    assert (job["state"], job["verdict"]) == ("done", "pass")
    model = job["model"]
    assert model["features"] == ["出生日期", "月缴费基数"] and model["epsilon"] == 1.0
    # The job reads the licence copy (issue 23: residents and social_insurance granted jointly), which drops
    # the persons the joined view would single out, a few percent of the base copy's rows.
    assert 0.9 * copy["rows"] <= model["train_rows"] + model["holdout_rows"] <= copy["rows"]
    accuracy, majority = model["holdout_accuracy"], model["holdout_majority_share"]
    assert 0.70 < majority < 0.80  # 正常参保 is about three quarters of the enrolment
    assert model["beats_majority"] is True
    assert accuracy >= majority + 0.03, model["verdict"]
    assert model["verdict"].startswith("beats the majority share by ")
    # The same numbers in the released product's certificate (the report read the signed one).
    product = next(p for p in report["products"] if p["kind"] == "dp-train")
    assert "model.certificate.json" in [f["name"] for f in product["files"]]
