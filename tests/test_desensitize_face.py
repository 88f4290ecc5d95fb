"""The ``desensitize`` face loads on first use (issue 21): a name imports its own module only, and every public
name is still the object its module defines (the typed imports mypy reads name it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.test_cli_start import ROOT, _type_checking_names


def _run(probe: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", probe, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_public_name_is_its_modules_own() -> None:
    probe = """
import importlib, json, sys
import desensitize
names = json.loads(sys.argv[1])
wrong = sorted(set(desensitize.__all__) ^ set(names))
for name in desensitize.__all__:
    module, defined = names.get(name, (None, None))
    if module is None or getattr(importlib.import_module(module), defined) is not getattr(desensitize, name):
        wrong.append(name)
print(json.dumps(wrong))
"""
    done = _run(probe, json.dumps(_type_checking_names("desensitize")))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_a_name_loads_its_own_module_only() -> None:
    """``load_policy`` (the registry's grading) comes without the table stack; a submodule is still found."""
    probe = """
import sys
import desensitize
bare = sorted(m for m in sys.modules if m.startswith("desensitize."))
from desensitize import load_policy
heavy = [name for name in ("pandas", "numpy", "pyarrow", "presidio_analyzer") if name in sys.modules]
from desensitize import recognizers
print(bare, heavy, recognizers.__name__, load_policy.__module__)
"""
    done = _run(probe)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "[]", "desensitize.recognizers", "desensitize.policy"]


def test_an_unknown_name_is_refused() -> None:
    import desensitize

    with pytest.raises(AttributeError):
        desensitize.no_such_name  # noqa: B018
    with pytest.raises(ImportError):
        exec("from desensitize import no_such_name", {})
