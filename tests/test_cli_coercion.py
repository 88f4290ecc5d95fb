"""The CLI's deferred coercion (``app.cli.coercion``) gives what typer's own gives, and spares pydantic (issue 21).

A command of a group whose parameters defer their coercion must parse every value as the same command under
plain typer: the same values, the same exit codes, the same messages (a bad number, a number out of range,
a path that must exist). The values it takes itself (an absent option, a decimal integer, a string, a path
spelt as ``Path`` spells it) are held to typer's; the others go to typer's adapter, and are held too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from app.cli.lazy import LazyGroup
from tests.test_cli_start import ROOT, loaded_after


class Deferring(LazyGroup):
    """A group as the root is: its built commands defer their coercion; no lazy entries."""


def probe(
    count: Annotated[int, typer.Argument(min=1, help="A counted thing.")],
    name: Annotated[str | None, typer.Option(help="A name.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 50,
    after: Annotated[int, typer.Option(min=0)] = 0,
    big: int = 7,
    clamped: Annotated[int, typer.Option(min=0, max=10, clamp=True)] = 3,
    where: Annotated[Path | None, typer.Option()] = None,
    existing: Annotated[Path | None, typer.Option(exists=True, dir_okay=False)] = None,
    label: Annotated[str, typer.Option()] = "x",
    flag: Annotated[bool, typer.Option("--flag")] = False,
    ratio: float = 0.5,
    tags: Annotated[list[str] | None, typer.Option("--tag")] = None,
) -> None:
    values = (count, name, limit, after, big, clamped, where, existing, label, flag, ratio, tags)
    print(repr(values))
    print(" ".join(type(value).__name__ for value in values))


def other() -> None:
    """A second command, so that each app stays a group."""


def _apps() -> tuple[typer.Typer, typer.Typer]:
    plain = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    deferred = typer.Typer(add_completion=False, pretty_exceptions_enable=False, cls=Deferring)
    for app in (plain, deferred):
        app.command("probe")(probe)
        app.command("other")(other)
    return plain, deferred


def _cases(tmp_path: Path) -> list[list[str]]:
    a_file = tmp_path / "a.txt"
    a_file.write_text("x", encoding="utf-8")
    base = ["probe", "3"]
    return [
        base,
        ["probe", "0"],
        ["probe", "007"],
        ["probe", "+3"],
        ["probe", " 3"],
        ["probe", "1_000"],
        ["probe", "3.0"],
        ["probe", "abc"],
        ["probe", "٣"],
        ["probe", "99999999999999999999999"],
        ["probe", "-1"],
        [*base, "--limit", "100"],
        [*base, "--limit", "101"],
        [*base, "--limit", "0"],
        [*base, "--limit", "1e2"],
        [*base, "--after", "0"],
        [*base, "--big", "123456789012345678"],
        [*base, "--big", "1234567890123456789"],
        [*base, "--clamped", "50"],
        [*base, "--clamped", "5"],
        [*base, "--name", ""],
        [*base, "--name", "张三"],
        [*base, "--label", " spaced "],
        [*base, "--where", "relative/dir"],
        [*base, "--where", "relative/dir/"],
        [*base, "--where", "./x"],
        [*base, "--where", ""],
        [*base, "--where", str(tmp_path)],
        [*base, "--where", "~/x"],
        [*base, "--existing", str(a_file)],
        [*base, "--existing", str(tmp_path)],
        [*base, "--existing", str(tmp_path / "missing")],
        [*base, "--existing", str(a_file) + "/"],
        [*base, "--existing", str(tmp_path) + "/"],
        [*base, "--existing", str(tmp_path / "missing") + "/"],
        [*base, "--existing", "./missing"],
        [*base, "--flag", "--ratio", "0.25", "--tag", "a", "--tag", "b"],
        [*base, "--ratio", "x"],
        ["probe"],
        ["probe", "--help"],
        ["other"],
    ]


def test_deferred_coercion_parses_as_typer_does(tmp_path: Path) -> None:
    plain, deferred = _apps()
    runner = CliRunner()
    for args in _cases(tmp_path):
        expected = runner.invoke(plain, args, env={"COLUMNS": "120"})
        got = runner.invoke(deferred, args, env={"COLUMNS": "120"})
        assert (got.exit_code, got.output) == (expected.exit_code, expected.output), args
        if args == ["probe", "3"]:
            types = "int NoneType int int int int NoneType NoneType str bool float NoneType"
            assert expected.exit_code == 0 and types in got.output


def test_a_parameter_keeps_typers_coercion_once_built(capsys: pytest.CaptureFixture[str]) -> None:
    """A value the deferred coercion does not take builds typer's, which the parameter keeps from then on."""
    from typer._click.exceptions import BadParameter
    from typer.main import get_command

    from app.cli.coercion import DeferredCoercion

    _, deferred = _apps()
    group = get_command(deferred)
    limit = next(p for p in group.commands["probe"].params if p.name == "limit")  # type: ignore[attr-defined]
    assert isinstance(limit._runtime_param, DeferredCoercion)
    group.main(["probe", "3", "--limit", "42"], standalone_mode=False)
    assert isinstance(limit._runtime_param, DeferredCoercion)  # a plain number: typer's coercion not built
    with pytest.raises(BadParameter, match="less than or equal to 100"):
        group.main(["probe", "3", "--limit", "500"], standalone_mode=False)
    assert not isinstance(limit._runtime_param, DeferredCoercion)


def test_help_loads_no_pydantic() -> None:
    """A command's help processes the absent options of every command on its way: no pydantic for them, nor any
    heavy stack, for ``keyong --help``, ``keyong ledger verify --help`` and the first command of every group."""
    from typer.main import get_command

    from app.cli import cli
    from tests.test_cli_start import HEAVY

    root = get_command(cli)
    helps = [["--help"], ["ledger", "verify", "--help"]]
    for name, built in root.commands.items():  # type: ignore[attr-defined]
        helps.append([name, *list(getattr(built, "commands", {}))[:1], "--help"])
    for args in helps:
        loaded = loaded_after(*args) & {*HEAVY, "pydantic", "pydantic_core"}
        assert not loaded, f"keyong {' '.join(args)} loaded {sorted(loaded)}"


def test_job_show_with_a_home_loads_no_pydantic(tmp_path: Path) -> None:
    """``keyong job show 1 --home HOME --json`` (the figure of issue 21): the number and the home are
    coerced without pydantic; the home holds no job 1, so it exits 1 after the same reads."""
    import sys

    home = tmp_path / "home"
    made = subprocess.run(
        [sys.executable, "-m", "app.cli", "init", "--home", str(home), "--json"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stderr
    loaded = loaded_after("job", "show", "1", "--home", str(home), "--json")
    assert "pydantic" not in loaded and "pydantic_core" not in loaded
