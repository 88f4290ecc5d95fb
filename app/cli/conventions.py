"""What every ``keyong`` command shares: ``--home``/``--json``, output, refusals, the instance.

Nothing here imports the instance's stack at module level: every command module imports this one, and
``keyong --help`` must start in a blink (issue 21). The refusals are told apart by the modules that
define them, looked up only once a command raised (:func:`refusals`).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from app.instance import Instance
    from app.instance_read import ReadOnlyInstance
    from app.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")


# No square brackets in help texts: typer renders them as rich markup, and "[default: …]" vanished.
HOME_HELP = "Instance home (default: $KEYONG_HOME, else ./.keyong); before or after the command."
HomeOption = Annotated[Path | None, typer.Option("--home", help=HOME_HELP, show_default=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout, nothing else.")]

# Errors that mean "refused or failed for a reason the user can act on": exit 1, message on stderr.
# Each as (module, class name): a class whose module was never imported cannot have been raised, so
# telling a refusal apart never imports a stack the command did not load (issue 21).
REFUSALS: tuple[tuple[str, str], ...] = (
    ("app.instance", "InstanceError"),
    ("app.instance_read", "InstanceError"),  # the same class, raised by a read-only open (app.instance unloaded)
    ("app.keys", "SecretsError"),
    ("operators.errors", "IdentityError"),
    ("ledger.errors", "LedgerError"),
    ("ledger.entry", "EntryError"),
    ("core.errors", "RegistryError"),
    ("dp.plans", "DpSpecError"),
    ("app.transport", "TransportError"),
)
#: The database's "value out of range" (a PostgreSQL INTEGER column given an id past 2^31 - 1).
DATA_ERROR = ("sqlalchemy.exc", "DataError")
#: The database could not do it now: SQLite locked by another process past the busy timeout, PostgreSQL down
#: or read-only, a file that is no database (``app.instance_read.database_unusable`` tells which).
DATABASE_ERROR = ("sqlalchemy.exc", "DatabaseError")
#: The database refused a row: a unique key taken by a concurrent create (``core.duplicate_key``), or a fault.
INTEGRITY_ERROR = ("sqlalchemy.exc", "IntegrityError")


def loaded_classes(names: tuple[tuple[str, str], ...]) -> tuple[type[BaseException], ...]:
    """The classes of ``names`` whose modules are loaded (the others cannot be what was raised)."""
    found: list[type[BaseException]] = []
    for module_name, class_name in names:
        module = sys.modules.get(module_name)
        if module is not None:
            found.append(getattr(module, class_name))
    return tuple(found)


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
        except Exception as exc:
            if isinstance(exc, loaded_classes(REFUSALS)):
                Output(False).fail(str(exc))
            if isinstance(exc, loaded_classes((DATA_ERROR,))):
                orig = getattr(exc, "orig", None)
                Output(False).fail(f"a value is out of range for the database: {str(orig).splitlines()[0][:200]}")
            if _database_unusable(exc):  # red team 21c F7, 22: was a traceback
                Output(False).fail(_database_failure(exc))
            if isinstance(exc, loaded_classes((INTEGRITY_ERROR,))):
                _fail_on_duplicate(exc, fn.__name__, kwargs)
            _fail_on_input(exc)
            raise

    return wrapper


def _database_failure(exc: Exception) -> str:
    """What the database did, worded by ``app.instance_read.unreachable`` (read-only, damaged, locked, down),
    and that the step was undone; "retry" only where waiting can help (ledger23: all were "could not do it")."""
    from app.instance_read import database_trouble, unreachable

    again = "; retry" if database_trouble(exc) in ("unreachable", "locked", "failing") else ""
    return f"{unreachable(None, exc)[:300]}: the step that failed was rolled back{again}"


def _database_unusable(exc: Exception) -> bool:
    """``app.instance_read.database_unusable`` (down, locked, read-only, not a database), once a command
    raised a database error (its module loaded: no import for any other failure)."""
    if not isinstance(exc, loaded_classes((DATABASE_ERROR,))):
        return False
    from app.instance_read import database_unusable

    return database_unusable(exc)


def _fail_on_duplicate(exc: Exception, command: str, arguments: dict[str, object]) -> None:
    """Exit 1 saying what already exists, when another process created the same operator, principal or dataset
    between this command's "does it exist?" check and its insert (PostgreSQL; red team 21c F9's race, a 409 over
    the API): it was an ``IntegrityError`` traceback. ``core.duplicate_key`` is the API's rule too; the key is
    named, never its values nor the SQL. Any other integrity failure is a fault: it stays a traceback."""
    from core import duplicate_key

    key = duplicate_key(exc)
    if key is None:
        return
    import click

    context = click.get_current_context(silent=True)
    doing = " ".join(context.command_path.split()[1:]) if context is not None else command.replace("_", " ")
    name = arguments.get("name")
    what = f"{name!r}" if isinstance(name, str) else "it"
    Output(False).fail(
        f"{doing}: {what} already exists: another process created it at the same moment ({key} is taken); "
        "this command changed nothing"
    )


def _fail_on_input(exc: Exception) -> None:
    """Exit 1 with a message for what a file or path the command was given caused (red team 21c F5, F6): a
    path that names a directory, lies under a file, or cannot be read or written (``--to``, ``--file``,
    ``--policy``…: each was a traceback), and a JSON file nested too deeply for Python's parser."""
    if isinstance(exc, OSError):  # the command failed: said in one line, with the path when the OS names one
        where = f"cannot use {exc.filename}: " if exc.filename is not None else ""
        Output(False).fail(f"{where}{exc.strerror or exc}")
    if isinstance(exc, RecursionError):
        Output(False).fail("the input nests too deeply to be read: give a flat document")


#: ``keyong --home DIR COMMAND``: the home given before the command (set by the root callback each run).
_root_home: list[Path | None] = [None]


def set_root_home(home: Path | None) -> None:
    _root_home[0] = home


def home_given(home: Path | None) -> Path | None:
    """The ``--home`` of this run; it may come before or after the command, but not twice differently."""
    before = _root_home[0]
    if home is not None and before is not None and home.expanduser().absolute() != before.expanduser().absolute():
        raise typer.BadParameter(f"--home given twice: {before} before the command and {home} after it")
    return home if home is not None else before


def settings_for(home: Path | None) -> Settings:
    """The settings of this run (``--home`` as :func:`home_given` takes it)."""
    from app.settings import Settings

    return Settings().with_home(home_given(home))


@contextmanager
def open_instance(home: Path | None, *, sweep: bool = True) -> Iterator[Instance]:
    """The home opened with its services (``Instance.open``). ``sweep=False`` for a command that only reads:
    the sweep of what killed writes left (issue 17) is the business of the next command that writes, the
    worker and ``keyong serve``, and costs a reader a tenth of a second and more (issue 21)."""
    from app.instance import Instance

    instance = Instance.open(settings_for(home), sweep=sweep)
    try:
        yield instance
    finally:
        instance.close()


@contextmanager
def read_instance(home: Path | None) -> Iterator[ReadOnlyInstance]:
    """The home opened for a command that only reads (``app.instance_read``): no migration unless the schema
    needs one, no sweep, no registry, nothing written (issue 21)."""
    from app.instance_read import ReadOnlyInstance

    instance = ReadOnlyInstance.open(home_given(home))
    try:
        yield instance
    finally:
        instance.close()


@contextmanager
def reading(out: Output, what: str, *also: type[Exception]) -> Iterator[None]:
    """A database error while reading (a table without the columns read, a damaged file) as exit 1 with
    its reason, never a traceback (FINDINGS21a F4). SQLAlchemy's errors only when it was loaded; ``also``:
    the errors a reader raises for a stored value it cannot show (``ledger show``'s undecodable entry)."""
    import sqlite3

    errors: tuple[type[BaseException], ...] = (sqlite3.Error, *also)
    if "sqlalchemy.exc" in sys.modules:
        errors += (sys.modules["sqlalchemy.exc"].SQLAlchemyError,)
    try:
        yield
    except errors as exc:
        orig = getattr(exc, "orig", None) or exc
        lines = str(orig).strip().splitlines()
        out.fail(f"cannot read {what} from the database: {lines[0] if lines else type(exc).__name__}")
