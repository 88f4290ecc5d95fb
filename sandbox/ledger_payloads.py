"""What the ledger keeps of a job: bounded texts and JSON, and digests of outputs and findings.

**Bounded ledger payloads** (issue 15, "Never wedge"). The ledger refuses a payload over 64 KiB, and a
job decides how many outputs it writes and how long their names are, so a payload that copied the
manifest could make the end of a job unrecordable and leave it ``running``. The row keeps the full
record (manifest, findings, reason) for the 3 years 双鸭山 第二十条 asks; the ledger holds counts and the
SHA-256 of the canonical JSON of each (:func:`canonical_sha256`), so anyone can recompute the hashes
from the row and prove it was not rewritten.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ledger import EntryError, canonical_json
from sandbox.models import JobRow

#: A free text an operator can make long (reasons, refusals that echo its input) is cut to this many
#: characters in a ledger payload; the row keeps it whole.
MAX_LEDGER_TEXT = 1000
#: A scenario as the ledger keeps it (the column holds 200; a refused submission may declare more).
MAX_LEDGER_SCENARIO = 256
#: A JSON value an operator shapes (a refused job's dataset list, resources) is ledgered as is up to
#: this many bytes of canonical JSON, and as its digest beyond.
MAX_LEDGER_JSON = 4096
#: A finished job's findings are counted per rule; at most this many rules are named, the most
#: frequent first, each name cut to MAX_RULE_CHARS (rule names are short fixed identifiers).
MAX_RULE_COUNTS = 64
MAX_RULE_CHARS = 64
#: The keys of one output in the ledgered manifest and in every remote view: never its path.
MANIFEST_KEYS = ("name", "bytes", "sha256")

_LENIENT_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_sha256(value: Any) -> str:
    """SHA-256 (hex) of ``value``'s canonical JSON: the ledger's own (``ledger.canonical_json``).

    Sorted keys, ``separators=(",", ":")``, ``ensure_ascii=False``, UTF-8 — what a regulator writes
    in a few lines of any language to check a ledgered digest against the row it stands for. A value
    canonical JSON refuses (a NaN) is hashed as Python's ``json`` writes it instead of failing the
    record: ending a job must never raise over its content (issue 15, "Never wedge").
    """
    try:
        data = canonical_json(value)
    except EntryError:
        data = _LENIENT_JSON.encode(value).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def bounded_text(text: str | None, limit: int = MAX_LEDGER_TEXT) -> str | None:
    """``text`` for a ledger payload: whole up to ``limit`` characters, else cut with a marker.

    The marker names how much was cut and the SHA-256 of the whole UTF-8 text, which the row keeps
    (第二十条), so the ledger still proves what the row says.
    """
    if text is None or len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return f"{text[:limit]}… [{len(text) - limit} more characters; sha256 {digest}]"


def bounded_json(value: Any, limit: int = MAX_LEDGER_JSON) -> Any:
    """``value`` for a ledger payload when its canonical JSON fits ``limit`` bytes, else its digest.

    The digest is ``{"sha256", "bytes"}`` of the canonical JSON (:func:`canonical_sha256`), so a
    regulator recomputes it from the row.
    """
    try:
        size = len(canonical_json(value))
    except EntryError:
        size = limit + 1
    if size <= limit:
        return value
    return {"sha256": canonical_sha256(value), "bytes": len(_LENIENT_JSON.encode(value).encode("utf-8"))}


def manifest_of(outputs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The outputs manifest as it is hashed and shown remotely: name, size and hash, never the path."""
    return [{key: o[key] for key in MANIFEST_KEYS if key in o} for o in outputs]


def manifest_digest(outputs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the ledger holds of a job's outputs, whatever their number and names (issue 15).

    ``count``, total ``bytes`` and the ``sha256`` of the canonical JSON of :func:`manifest_of` the
    outputs in their recorded order; the row's ``outputs`` keep the manifest itself.
    """
    total = 0
    for o in outputs:
        try:
            total += int(o.get("bytes") or 0)
        except (TypeError, ValueError):
            continue
    return {"count": len(outputs), "bytes": total, "sha256": canonical_sha256(manifest_of(outputs))}


def _top_counts(values: Iterable[Any], *, cap: int, chars: int) -> tuple[dict[str, int], int]:
    """Counts per value, the most frequent ``cap`` of them (names cut to ``chars``), and how many were left out."""
    counts: Counter[str] = Counter(str(v)[:chars] for v in values)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return dict(ranked[:cap]), max(0, len(ranked) - cap)


def findings_digest(findings: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the ledger holds of the export guard's findings: counts per rule and severity, and a hash.

    ``sha256`` is over the canonical JSON of the findings exactly as the row keeps them, so the
    verdict's grounds stay provable (第二十条) without the ledger growing with the job's output.
    ``rules_omitted`` says how many distinct rules beyond :data:`MAX_RULE_COUNTS` were not named.
    """
    rules, omitted = _top_counts((f.get("rule") for f in findings), cap=MAX_RULE_COUNTS, chars=MAX_RULE_CHARS)
    severities, _ = _top_counts((f.get("severity") for f in findings), cap=8, chars=16)
    digest: dict[str, Any] = {
        "count": len(findings),
        "rules": rules,
        "severities": severities,
        "sha256": canonical_sha256([dict(f) for f in findings]),
    }
    if omitted:
        digest["rules_omitted"] = omitted
    return digest


def fit_scenario(scenario: str) -> str:
    """A declared scenario as the row's column holds it (``VARCHAR(200)``; PostgreSQL refuses more).

    A queued job's scenario is one its licence grants, so it fits; a refused submission may declare
    any text, and refusing to record the refusal would lose it. Beyond the column the row keeps the
    start and the SHA-256 of the whole (:func:`bounded_text`).
    """
    width = getattr(JobRow.__table__.c.scenario.type, "length", None) or 200
    if len(scenario) <= width:
        return scenario
    cut = bounded_text(scenario, max(0, width - 110)) or ""
    return cut[:width]


__all__ = [
    "MANIFEST_KEYS",
    "MAX_LEDGER_JSON",
    "MAX_LEDGER_SCENARIO",
    "MAX_LEDGER_TEXT",
    "MAX_RULE_CHARS",
    "MAX_RULE_COUNTS",
    "bounded_json",
    "bounded_text",
    "canonical_sha256",
    "findings_digest",
    "fit_scenario",
    "manifest_digest",
    "manifest_of",
]
