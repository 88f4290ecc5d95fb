"""What ``keyong demo`` did, step by step: the JSON of ``keyong demo --json`` and what the CLI renders."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: One JSON object of the report: what a step returned, as ``keyong demo --json`` prints it.
JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class DemoTable:
    name: str
    rows: int
    columns: list[str]
    path: Path
    encoding: str
    bytes: int


@dataclass
class DemoReport:
    home: Path
    data_dir: Path
    tokens: dict[str, str] | None
    totp: dict[str, str] | None = None  # role -> TOTP secret (base32) of the demo principal: its second factor
    tables: list[DemoTable] = field(default_factory=list)
    ingested: list[JsonObject] = field(default_factory=list)
    desensitized: list[JsonObject] = field(default_factory=list)
    licence: JsonObject = field(default_factory=dict)
    jobs: list[JsonObject] = field(default_factory=list)
    operator: str | None = None
    people: list[JsonObject] = field(default_factory=list)  # the demo principals' standing (issue 22)
    rerun: JsonObject = field(default_factory=dict)  # an automatic suspension the demo lifted, if any
    reviewers: list[str] = field(default_factory=list)
    reviewer_keys: dict[str, str] = field(default_factory=dict)  # API keys of reviewers made by this run
    egress: dict[str, str] = field(default_factory=dict)  # dataset -> signoff | delegated (SATRE 3.1.06)
    reviewer_totp: dict[str, str] = field(default_factory=dict)  # and their TOTP secrets (second factors)
    reviewer_confirmed_by: dict[str, str] = field(default_factory=dict)  # the second person who confirmed each
    releases: list[JsonObject] = field(default_factory=list)
    products: list[JsonObject] = field(default_factory=list)
    objection: JsonObject = field(default_factory=dict)
    ledger: JsonObject = field(default_factory=dict)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step, for the under-a-minute budget

    def as_json(self) -> dict[str, object]:
        return {
            "home": str(self.home),
            "initialized": self.tokens is not None,
            "tokens": self.tokens,
            "totp": self.totp,
            "data_dir": str(self.data_dir),
            "tables": [
                {
                    "name": t.name,
                    "rows": t.rows,
                    "columns": t.columns,
                    "path": str(t.path),
                    "encoding": t.encoding,
                    "bytes": t.bytes,
                }
                for t in self.tables
            ],
            "ingested": self.ingested,
            "desensitized": self.desensitized,
            "licence": self.licence,
            "jobs": self.jobs,
            "operator": self.operator,
            "people": self.people,
            "rerun": self.rerun,
            "reviewers": self.reviewers,
            "reviewer_keys": self.reviewer_keys,
            "egress": self.egress,
            "reviewer_totp": self.reviewer_totp,
            "reviewer_confirmed_by": self.reviewer_confirmed_by,
            "releases": self.releases,
            "products": self.products,
            "objection": self.objection,
            "ledger": self.ledger,
            "seconds": round(self.seconds, 3),
            "timings": {step: round(seconds, 3) for step, seconds in self.timings.items()},
        }
