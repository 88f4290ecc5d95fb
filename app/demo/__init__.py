"""``keyong demo``: the whole flow of DESIGN.md on generated data (issue 9).

``scenario`` holds the data (providers, public facts, the operator's jobs, justifications, the
objection), ``home`` decides where it may run (a fresh home; ``--reset``), ``steps`` plays it
against an instance, ``model`` says whether the dp-train model beats its holdout's majority share,
``proof`` ends it with the regulator's standalone verification, and ``report`` is what it did (the
``--json`` document). The terminal rendering lives with the CLI (``app.cli.reports``).
"""

from app.demo.home import KeptDemo
from app.demo.report import DemoReport, DemoTable
from app.demo.steps import run_demo

__all__ = ["DemoReport", "DemoTable", "KeptDemo", "run_demo"]
