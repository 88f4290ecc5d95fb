"""The demo's dp-train model against the majority share: what the demo's report says of it (issue 16).

Why: a classifier's accuracy means nothing beside the share of its holdout's most common label; a model
that always answers that label scores exactly the share and has learnt nothing. The demo's model once did
(its features were bands and dates that carried no signal), and its report printed a certificate that
looked fine. So the report reads the platform's certificate of the model, checks the platform's signature
(the numbers are the platform's, not an operator's claim), and states plainly whether the model beats the
majority share and by how many points, or that it does not and why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from app.demo.report import JsonObject
from app.instance import Instance
from dp import MODEL, TRAINING, beats_majority, certificate_name, verify

__all__ = ["model_summary", "summarize", "verdict"]


def verdict(summary: Mapping[str, Any]) -> str:
    """One sentence: "beats the majority share by X points" or "does not beat it: ..." with the reason."""
    accuracy, majority = summary.get("holdout_accuracy"), summary.get("holdout_majority_share")
    if accuracy is None or majority is None:
        return "not measured: the run had no holdout to compare the model with the majority share"
    points = round(100 * (float(accuracy) - float(majority)), 1)
    if summary.get("beats_majority"):
        return f"beats the majority share by {points:g} points (holdout accuracy {accuracy:.4f} vs {majority:.4f})"
    features = ", ".join(str(f) for f in summary.get("features") or []) or "its features"
    return (
        f"does not beat the majority share: holdout accuracy {accuracy:.4f} vs {majority:.4f} ({points:g} points), "
        "no better than always answering "
        f"the most common label; at ε {summary.get('epsilon')} on {summary.get('train_rows')} training rows the "
        f"DP noise drowns what {features} say of the label (a larger table, or a larger ε, would be needed)"
    )


def summarize(certificate: Mapping[str, Any], record: Mapping[str, Any]) -> JsonObject:
    """The report's view of a certified model: both numbers, the comparison and its verdict.

    ``certificate`` is the signed model certificate (dp.results.seal_train), ``record`` the program's signed
    training record (its features and row counts). ``beats_majority`` is the certificate's own field when it
    has one, else computed the same way (certificates issued before the field existed)."""
    accuracy, majority = certificate.get("holdout_accuracy"), certificate.get("holdout_majority_share")
    beats = certificate.get("beats_majority")
    if beats is None:
        beats = beats_majority(accuracy, majority)
    summary: JsonObject = {
        "model": certificate.get("model"),
        "features": [str(f.get("column")) for f in record.get("features") or [] if isinstance(f, Mapping)],
        "epsilon": certificate.get("epsilon"),
        "train_rows": record.get("train_rows"),
        "holdout_rows": record.get("holdout_rows"),
        "holdout_accuracy": accuracy,
        "holdout_majority_share": majority,
        "beats_majority": beats,
        "margin_points": None if accuracy is None or majority is None else round(100 * (accuracy - majority), 2),
    }
    summary["verdict"] = verdict(summary)
    return summary


def model_summary(instance: Instance, outputs: Sequence[Mapping[str, Any]]) -> JsonObject | None:
    """The summary of a dp-train job's certified model, from its outputs (None: no certificate was issued).

    The host reads the sealed objects through the storage (encrypted at rest; issue 19: perhaps in a bucket) and
    verifies the platform's signature on both before taking a number from them."""
    by_name = {str(o.get("name")): o for o in outputs}
    certificate_entry, record_entry = by_name.get(certificate_name(MODEL)), by_name.get(TRAINING)
    if certificate_entry is None or record_entry is None or not certificate_entry.get("path"):
        return None
    public_key = instance.keys.ledger_public_key

    def read(entry: Mapping[str, Any]) -> dict[str, Any]:
        raw = b"".join(instance.registry.at_rest.object_chunks(str(entry["path"])))  # the storage's object (issue 19)
        return verify(json.loads(raw.decode("utf-8")), public_key)

    return summarize(read(certificate_entry), read(record_entry))
