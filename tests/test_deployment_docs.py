"""``docs/deployment.md`` and the units in ``docs/deploy/`` stay true to the code (SATRE 2.2.01, 2.2.03).

Every ``keyong …`` command line of the page's code blocks and every ``ExecStart=`` (and commented
alternative) of the units is parsed by the real typer command line, down to its subcommand: a renamed
command, a removed option or a value of the wrong type fails here. Every repository path the page
names in backticks exists. The parser itself is shown to refuse what it should.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main

from app.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "deployment.md"
UNITS = sorted((ROOT / "docs" / "deploy").glob("*.service"))
TIMERS = sorted((ROOT / "docs" / "deploy").glob("*.timer"))
REPO_TOPS = ("app/", "core/", "docs/", "ledger/", "operators/", "registry/", "sandbox/", "security/", "tests/")
REPO_FILES = ("Makefile", "README.md", "requirements.lock", "pyproject.toml")


def parse(args: list[str]) -> Any:
    """Parse ``args`` as ``keyong`` would, without running anything; the leaf command's context."""
    command: Any = typer.main.get_command(cli)
    name, parent, rest = "keyong", None, list(args)
    while hasattr(command, "resolve_command"):  # a group: parse its options, then descend
        context = command.make_context(name, rest, parent=parent)
        pending = [*getattr(context, "_protected_args", []), *context.args]
        assert pending, f"keyong {' '.join(args)}: a group without a subcommand"
        name, command, rest = command.resolve_command(context, pending)
        parent = context
    return command.make_context(name, rest, parent=parent)


def keyong_args(tokens: list[str]) -> list[str] | None:
    """The arguments after the ``keyong`` program of a shell line (after sudo, env assignments, ``exec``),
    or None when the line runs another program."""
    rest = list(tokens)
    while rest:
        if rest[0] == "sudo":
            rest = rest[1:]
            while rest and rest[0].startswith("-"):  # sudo's options; -u takes the user
                rest = rest[2:] if rest[0] == "-u" else rest[1:]
        elif rest[0] in ("exec", "env") or re.match(r"^[A-Z_][A-Z0-9_]*=", rest[0]):
            rest = rest[1:]
        else:
            break
    if rest and (rest[0] == "keyong" or rest[0].endswith("/keyong")):
        return rest[1:]
    return None


def doc_commands() -> list[str]:
    """Lines of the page's fenced code blocks that run ``keyong``, backslash continuations joined."""
    lines: list[str] = []
    inside = False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = not inside
            continue
        if inside:
            code = line.split("   # ", 1)[0].rstrip()
            if lines and lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1] + " " + code.strip()
            else:
                lines.append(code)
    return [line for line in lines if keyong_args(shlex.split(line, comments=True)) is not None]


def unit_commands() -> list[tuple[str, str]]:
    """(unit, command) for every ``ExecStart=`` of the units, commented alternatives included."""
    found = []
    for unit in UNITS:
        for line in unit.read_text(encoding="utf-8").splitlines():
            match = re.match(r"^#?\s*ExecStart=(.*)$", line.strip())
            if match:
                command = match.group(1).replace("%%", "%")
                tokens = shlex.split(command)
                if tokens[0] in ("/bin/sh", "/usr/bin/sh") and tokens[1] == "-c":
                    command = tokens[2]
                found.append((unit.name, command))
    return found


def test_the_page_and_the_units_exist_and_are_found() -> None:
    """A floor, so an empty extraction cannot pass the tests below."""
    assert DOC.is_file()
    assert {u.name for u in UNITS} >= {"keyong.service", "keyong-backup.service", "keyong-ledger-verify.service"}
    assert len(doc_commands()) >= 20
    assert len(unit_commands()) >= 5
    joined = " ".join(doc_commands())
    for step in ("freeze", "backup create", "db status", "db upgrade", "ledger verify", "unfreeze", "backup restore"):
        assert step in joined, step


@pytest.mark.parametrize("line", doc_commands())
def test_every_keyong_line_of_the_page_parses(line: str) -> None:
    args = keyong_args(shlex.split(line, comments=True))
    assert args is not None
    parse(args)


@pytest.mark.parametrize(("unit", "command"), unit_commands())
def test_every_execstart_parses(unit: str, command: str) -> None:
    tokens = shlex.split(command)
    if tokens and tokens[0] == "exec":
        tokens = tokens[1:]
    assert tokens[0] == "/opt/keyong/.venv/bin/keyong", (unit, tokens[0])  # the venv `make install` creates
    args = keyong_args(tokens)
    assert args is not None
    context = parse(args)
    assert context.params.get("home") == Path("/var/lib/keyong/home"), unit  # every unit names its home


@pytest.mark.parametrize("timer", [t.name for t in TIMERS])
def test_every_timer_starts_a_unit_that_exists(timer: str) -> None:
    text = (ROOT / "docs" / "deploy" / timer).read_text(encoding="utf-8")
    assert "OnCalendar=" in text and "[Install]" in text
    assert (ROOT / "docs" / "deploy" / timer.replace(".timer", ".service")).is_file()


def test_every_repository_path_the_page_names_exists() -> None:
    cited = set()
    for text in re.findall(r"`([^`\s]+)`", DOC.read_text(encoding="utf-8")):
        path = text.split("::", 1)[0].rstrip(".,;:")
        if path.startswith(REPO_TOPS) or path in REPO_FILES:
            cited.add(path)
    assert len(cited) >= 10, cited
    missing = sorted(p for p in cited if not (ROOT / p).exists())
    assert not missing, missing


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--no-such-option"],
        ["serve", "--workers", "many"],
        ["db", "downgrade"],
        ["backup", "create"],  # OUT is required
        ["nothing-here"],
    ],
)
def test_the_parser_refuses_what_the_cli_refuses(args: list[str]) -> None:
    with pytest.raises(Exception) as caught:
        parse(args)
    assert type(caught.value).__name__ in {"NoSuchOption", "BadParameter", "UsageError", "MissingParameter"}
