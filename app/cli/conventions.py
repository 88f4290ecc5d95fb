"""What every ``keyong`` command shares: ``--home``/``--json``, output, refusals, the instance."""

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import DataError

from app.instance import Instance, InstanceError
from app.keys import SecretsError
from app.settings import Settings
from app.transport import TransportError
from core import RegistryError
from dp import DpSpecError
from ledger import EntryError, LedgerError
from operators import IdentityError

P = ParamSpec("P")
R = TypeVar("R")


# No square brackets in help texts: typer renders them as rich markup, and "[default: …]" vanished.
HOME_HELP = "Instance home (default: $KEYONG_HOME, else ./.keyong); before or after the command."
HomeOption = Annotated[Path | None, typer.Option("--home", help=HOME_HELP, show_default=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout, nothing else.")]

# Errors that mean "refused or failed for a reason the user can act on": exit 1, message on stderr.
REFUSALS: tuple[type[Exception], ...] = (
    InstanceError,
    SecretsError,
    IdentityError,
    LedgerError,
    EntryError,
    RegistryError,
    DpSpecError,
    TransportError,
)


class Output:
    """Where a command writes: JSON or rich text on stdout, messages on stderr."""

    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode
        self.stdout = Console(highlight=False)
        # soft_wrap: messages stay on one line, so scripts and logs can grep them.
        self.stderr = Console(stderr=True, highlight=False, soft_wrap=True)

    def result(self, data: dict[str, Any], render: Callable[[Console], None]) -> None:
        if self.json_mode:
            sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
            sys.stdout.flush()
        else:
            render(self.stdout)

    def note(self, message: str) -> None:
        self.stderr.print(message)

    def fail(self, message: str) -> NoReturn:
        self.stderr.print(f"[bold red]error:[/] {escape(message)}", markup=True)
        raise typer.Exit(1)


#: Numbers a command takes (ids, positions, counts) fit a signed 64-bit column; a larger one names nothing.
_INT_BOUND = 2**63 - 1


def _out_of_range(values: Iterator[tuple[str, object]]) -> tuple[str, int] | None:
    """The first integer argument no database column holds, with its name, or ``None``."""
    for name, value in values:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _INT_BOUND:
            return name, value
    return None


def refusing(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn the packages' refusal exceptions into exit code 1 with a one-line reason.

    A number beyond any database column (``keyong job show 99999999999999999999``) is refused before
    the command runs, and one a PostgreSQL INTEGER column cannot hold (an id past 2^31 - 1) when the
    database says so: both were tracebacks (issue 17); the transaction they were in has rolled back.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        huge = _out_of_range(iter([*(("argument", a) for a in args), *kwargs.items()]))
        if huge is not None:
            name, value = huge
            what = name.replace("_", " ")  # the option as a person reads it: "publicity days", "release"
            Output(False).fail(f"{what} {value} is out of range: numbers a command takes are at most {_INT_BOUND}")
        try:
            return fn(*args, **kwargs)
        except REFUSALS as exc:
            Output(False).fail(str(exc))
        except DataError as exc:
            Output(False).fail(f"a value is out of range for the database: {str(exc.orig).splitlines()[0][:200]}")

    return wrapper


#: ``keyong --home DIR COMMAND``: the home given before the command (set by the root callback each run).
_root_home: list[Path | None] = [None]


def set_root_home(home: Path | None) -> None:
    _root_home[0] = home


def settings_for(home: Path | None) -> Settings:
    """The settings of this run; ``--home`` may come before or after the command, but not twice differently."""
    before = _root_home[0]
    if home is not None and before is not None and home.expanduser().absolute() != before.expanduser().absolute():
        raise typer.BadParameter(f"--home given twice: {before} before the command and {home} after it")
    return Settings().with_home(home if home is not None else before)


@contextmanager
def open_instance(home: Path | None) -> Iterator[Instance]:
    instance = Instance.open(settings_for(home))
    try:
        yield instance
    finally:
        instance.close()
