"""Latency a person feels (issue 21): one function per measurement, each printed as one JSON object.

* ``cli_start``: wall seconds from starting ``keyong ARGS`` to its exit, median and p95 of ``--runs``
  runs per command (a fresh interpreter each, as a user's shell starts it), against the 0.3 s target,
  beside the same commands of the **baseline** code (``--baseline``: by default ``main`` before issue
  21's CLI work, see :func:`baseline_ref`) checked out in a temporary ``git worktree`` under /tmp and
  run with the same interpreter in the same run. The two are run in turn, command by command, so a
  busy machine weighs on both alike; the CPU seconds of each run are printed too (less disturbed by
  other load than wall time). ``job show 1`` runs against a home made by ``keyong init`` of the same
  code; an initialised home holds no job, so it exits 1 after the same open and query a found job
  takes (its exit code is printed). ``job list`` runs against the same home (read-only, like ``job show``).
  ``product list`` and ``ledger show`` (read commands the issue does not name; they read through the same
  read-only open) are measured beside them against no target (``target_s`` null).
  Bytecode is written (``PYTHONDONTWRITEBYTECODE`` dropped), so the warm-up run compiles and the measured
  runs start as an installed Keyong does.

* ``throughput`` (:mod:`latency_throughput`): jobs a minute with two ``keyong worker`` processes, ``--jobs``
  small python and sql jobs submitted at once, beside the baseline of :func:`throughput_baseline_ref`.

Run: ``.venv/bin/python bench/latency.py [--runs 11] [--baseline REF] [--command "job --help" ...]``;
``--part throughput [--jobs 200 --rounds 3]`` for the throughput part alone.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchinfo import ROOT, emit, machine

TARGET_CLI_START_S = 0.3
HOME_MARK = "{home}"
PARTS = ("cli_start", "throughput")
#: The commands issue 21 names and ``job list`` (read-only like ``job show``, ``app.instance_read``), then
#: every group's help (added by :func:`default_commands`).
NAMED_COMMANDS = ("--help", "job show 1 --home {home} --json", "job list --home {home} --json", "ledger verify --help")
#: Read commands measured against no target: they open the home as a writer does (``app.instance``).
UNTARGETED_COMMANDS = ("product list --home {home} --json", "ledger show --home {home} --json")


def default_commands() -> list[str]:
    """Issue 21's three commands, ``GROUP --help`` for every group of the root, then the untargeted reads."""
    from app.cli.root import ENTRIES

    helps = (f"{entry.name} --help" for entry in ENTRIES if entry.group)
    return [*NAMED_COMMANDS, *helps, *UNTARGETED_COMMANDS]


def baseline_ref(repo: Path) -> str:
    """``main`` as it was before the lazy root (``app/cli/lazy.py``) came in, or ``main`` when it has not."""
    added = _git(repo, "log", "--first-parent", "--format=%H", "--diff-filter=A", "-1", "main", "--", "app/cli/lazy.py")
    return f"{added}^1" if added else "main"


def throughput_baseline_ref(repo: Path) -> str:
    """``main`` before issue 21's throughput work (``sandbox/wakeup.py`` came in with it), else ``main``."""
    marker = "sandbox/wakeup.py"
    added = _git(repo, "log", "--first-parent", "--format=%H", "--diff-filter=A", "-1", "main", "--", marker)
    return f"{added}^1" if added else "main"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


@contextmanager
def checkout(repo: Path, ref: str) -> Iterator[Path]:
    """The code of ``ref`` in a temporary worktree under /tmp, removed afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="keyong-baseline-"))
    tree = parent / "tree"
    _git(repo, "worktree", "add", "--detach", str(tree), ref)
    try:
        yield tree
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=repo, capture_output=True)
        subprocess.run(["rm", "-rf", str(parent)], check=False)


@dataclass(frozen=True)
class Code:
    """One version of Keyong to start: its tree (on PYTHONPATH) and a home its own ``init`` made."""

    label: str
    tree: Path
    home: Path

    def argv(self, command: str) -> list[str]:
        return [sys.executable, "-m", "app.cli", *shlex.split(command.replace(HOME_MARK, str(self.home)))]

    def env(self) -> dict[str, str]:
        """The caller's environment without Keyong's settings, and with bytecode written: an installed Keyong
        has its ``.pyc`` files, so a set ``PYTHONDONTWRITEBYTECODE`` would time compiling, not starting."""
        drop = ("KEYONG_", "PYTHONDONTWRITEBYTECODE")
        env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
        return {**env, "PYTHONPATH": str(self.tree), "COLUMNS": "120"}

    def start(self, command: str, cwd: Path) -> tuple[float, float, int]:
        """Wall and CPU seconds of one run of ``keyong COMMAND``, and its exit code."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        done = subprocess.run(self.argv(command), cwd=cwd, env=self.env(), capture_output=True, timeout=300)
        wall = time.perf_counter() - began
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return wall, cpu, done.returncode

    def init(self, cwd: Path) -> None:
        done = subprocess.run(
            self.argv(f"init --home {self.home} --json"), cwd=cwd, env=self.env(), capture_output=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"keyong init of {self.label} failed: {done.stderr.decode()[-500:]}")


def _p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _summary(runs: list[tuple[float, float, int]]) -> dict[str, Any]:
    walls = [wall for wall, _, _ in runs]
    return {
        "median_s": round(statistics.median(walls), 3),
        "p95_s": round(_p95(walls), 3),
        "cpu_median_s": round(statistics.median(cpu for _, cpu, _ in runs), 3),
        "exit": sorted({code for _, _, code in runs}),
    }


def cli_start(codes: Sequence[Code], commands: Sequence[str], runs: int, cwd: Path) -> Iterator[dict[str, Any]]:
    """Per command, the start of each code (the first is the one measured, the rest its baselines)."""
    for command in commands:
        samples: dict[str, list[tuple[float, float, int]]] = {code.label: [] for code in codes}
        for code in codes:
            code.start(command, cwd)  # a first run warms the page cache and writes the bytecode
        for _ in range(runs):
            for code in codes:
                samples[code.label].append(code.start(command, cwd))
        first, *rest = codes
        target = None if command in UNTARGETED_COMMANDS else TARGET_CLI_START_S
        record: dict[str, Any] = {
            "bench": "cli_start",
            "command": "keyong " + command.replace(f" --home {HOME_MARK}", " --home HOME"),
            "runs": runs,
            "target_s": target,
            **_summary(samples[first.label]),
        }
        record["meets_target"] = None if target is None else record["median_s"] <= target
        for code in rest:
            record[code.label] = _summary(samples[code.label])
        record["load_average"] = [round(x, 2) for x in os.getloadavg()]
        yield record


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=11, help="Runs per command and code (after one warm-up).")
    parser.add_argument("--baseline", default=None, help="Git ref of the baseline (default: see baseline_ref).")
    parser.add_argument("--no-baseline", action="store_true", help="Measure this code only.")
    parser.add_argument("--command", action="append", help="keyong arguments ({home}: the home); repeatable.")
    parser.add_argument("--part", action="append", choices=PARTS, help="Parts to run (default: all); repeatable.")
    parser.add_argument("--jobs", type=int, default=200, help="throughput: jobs submitted at once per round.")
    parser.add_argument("--rounds", type=int, default=3, help="throughput: rounds per code.")
    parser.add_argument("--poll", type=float, default=2.0, help="throughput: the workers' --poll (their default).")
    parser.add_argument("--mix", choices=("both", "python", "sql"), default="both", help="throughput: job kinds.")
    args = parser.parse_args(argv)
    parts = args.part or list(PARTS)
    if "cli_start" in parts:
        _cli_part(args)
    if "throughput" in parts:
        _throughput_part(args)


def _cli_part(args: argparse.Namespace) -> None:
    repo = Path(ROOT)
    commands = args.command or default_commands()
    versions = {
        "typer": _version("typer"),
        "sqlalchemy": _version("sqlalchemy"),
        "commit": _git(repo, "rev-parse", "HEAD"),
    }
    with tempfile.TemporaryDirectory(prefix="keyong-latency-") as scratch:
        cwd = Path(scratch)
        codes = [Code("current", repo, cwd / "home-current")]
        with _baseline(repo, args, cwd) as baseline:
            if baseline is not None:
                codes.append(baseline)
                versions["baseline"] = args.baseline or baseline_ref(repo)
            for code in codes:
                code.init(cwd)
            for record in cli_start(codes, commands, args.runs, cwd):
                emit({**record, "machine": machine(**versions)})


def _throughput_part(args: argparse.Namespace) -> None:
    """Jobs a minute with two workers (:mod:`latency_throughput`), beside the baseline in the same run."""
    from latency_throughput import Tree, throughput

    repo = Path(ROOT)
    versions = {"commit": _git(repo, "rev-parse", "HEAD"), "sqlalchemy": _version("sqlalchemy")}
    with tempfile.TemporaryDirectory(prefix="keyong-throughput-") as scratch:
        place = Path(scratch)
        codes = [Tree("current", repo, place / "template-current")]
        with ExitStack() as stack:
            if not args.no_baseline:
                ref = args.baseline or throughput_baseline_ref(repo)
                codes.append(Tree("baseline", stack.enter_context(checkout(repo, ref)), place / "template-baseline"))
                versions["baseline"] = ref
            options = {"jobs": args.jobs, "workers": 2, "rounds": args.rounds, "poll": args.poll, "mix": args.mix}
            for record in throughput(codes, place, **options):
                emit({**record, "database": "sqlite", "machine": machine(**versions)})


@contextmanager
def _baseline(repo: Path, args: argparse.Namespace, cwd: Path) -> Iterator[Code | None]:
    if args.no_baseline:
        yield None
        return
    with checkout(repo, args.baseline or baseline_ref(repo)) as tree:
        yield Code("baseline", tree, cwd / "home-baseline")


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def job_latency_part(argv: Sequence[str]) -> None:
    """The ``job_latency`` part (issue 21 "Job latency", pre-started sandboxes): ``bench/job_latency.py``."""
    from job_latency import main as job_latency_main

    job_latency_main(argv)


if __name__ == "__main__":
    if sys.argv[1:2] == ["job_latency"]:
        job_latency_part(sys.argv[2:])
    else:
        main()
