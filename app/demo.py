"""``keyong demo``: the whole flow of DESIGN.md on generated data.

So far (foundation) it initialises an instance when the home has none and generates the three
tables a city would hold — residents, social insurance, market entities — one of them as a
GB18030 CSV, the way many government systems still export. Later issues extend the flow:
ingest, desensitize, license, run jobs, guard, release, verify the ledger.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from app.instance import MARKER, Instance
from app.settings import Settings
from desensitize.synthetic import generate_all, write_csv

DEMO_DIR = "demo-data"
# Which table is written in which encoding: one GB18030 file exercises the encoding detection.
ENCODINGS = {"residents": "utf-8", "social_insurance": "utf-8", "market_entities": "gb18030"}


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
    tables: list[DemoTable] = field(default_factory=list)
    ledger: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0

    def as_json(self) -> dict[str, object]:
        return {
            "home": str(self.home),
            "initialized": self.tokens is not None,
            "tokens": self.tokens,
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
            "ledger": self.ledger,
            "seconds": round(self.seconds, 3),
        }


def run_demo(settings: Settings, *, residents: int, seed: int, console: Console) -> DemoReport:
    started = time.perf_counter()
    tokens: dict[str, str] | None = None
    if (settings.home / MARKER).exists():
        instance = Instance.open(settings)
    else:
        instance, init_result = Instance.init(settings)
        tokens = init_result.tokens
    try:
        data_dir = settings.home / DEMO_DIR
        data_dir.mkdir(exist_ok=True)
        report = DemoReport(home=settings.home, data_dir=data_dir, tokens=tokens)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("generating synthetic tables", total=1 + len(ENCODINGS))
            tables = generate_all(residents, seed=seed)
            progress.advance(task)
            for name, frame in tables.items():
                encoding = ENCODINGS.get(name, "utf-8")
                path = data_dir / f"{name}.csv"
                progress.update(task, description=f"writing {path.name} ({encoding})")
                write_csv(frame, path, encoding=encoding)
                report.tables.append(
                    DemoTable(name, len(frame), [str(c) for c in frame.columns], path, encoding, path.stat().st_size)
                )
                progress.advance(task)
            progress.update(task, description="synthetic tables written")
        verified = instance.ledger.verify()
        report.ledger = {"entries": verified.entries, "ok": verified.ok, "head": verified.head}
    finally:
        instance.close()
    report.seconds = time.perf_counter() - started
    return report
