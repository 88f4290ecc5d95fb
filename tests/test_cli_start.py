"""``keyong`` starts in a blink: what a command imports, never how long it takes (issue 21).

Every ``keyong`` command took 3-4 s to start, ``--help`` included, because the root imported every
domain stack. These tests run the CLI in a fresh interpreter and read ``sys.modules`` when it exits:
``--help``, each group's ``--help`` and ``ledger verify --help`` load none of the heavy stacks, ``job show``
does not load Alembic when the schema is at its head, and ``job show`` and ``job list`` of an embedded home
load no heavy stack at all, nor the writer's open (``app.instance_read``). No timing is asserted (the figures
are ``bench/latency.py``'s). The lazy root (``app.cli.lazy``) and the lazy package faces
(``core.LazyFace``) are held to what they replace: the same help, the same names, the same classes.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent

#: Stacks a command loads only when it uses them (issue 21's list).
HEAVY = (
    "pandas",
    "pyarrow",
    "presidio_analyzer",
    "spacy",
    "sklearn",
    "scipy",
    "diffprivlib",
    "torch",
    "opacus",
    "duckdb",
    "fastapi",
    "starlette",
    "sqlalchemy",
    "alembic",
    "cryptography",
    "numpy",
    "pydantic_settings",
)

#: Runs the CLI's ``main`` with the given arguments, then prints the top-level modules it had loaded.
PROBE = """
import json, sys
sys.argv = ["keyong", *json.loads(sys.argv[1])]
try:
    from app.cli import main
    main()
except SystemExit:
    pass
finally:
    sys.stdout.flush()
    sys.__stdout__.write("\\n@@MODULES@@" + json.dumps(sorted(sys.modules)) + "\\n")
"""


def loaded_after(*args: str, whole: bool = False) -> set[str]:
    """The modules loaded by the end of ``keyong ARGS`` in a fresh interpreter: top-level packages only,
    unless ``whole``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    marker = done.stdout.rfind("@@MODULES@@")
    assert marker >= 0, done.stdout + done.stderr
    modules = json.loads(done.stdout[marker + len("@@MODULES@@") :])
    return set(modules) if whole else {name.split(".")[0] for name in modules}


def _groups() -> list[str]:
    from app.cli.root import ENTRIES

    return [entry.name for entry in ENTRIES if entry.group]


@pytest.mark.parametrize(
    "args",
    [["--help"], [], ["ledger", "verify", "--help"], ["job", "show", "--help"], ["init", "--help"]],
    ids=lambda args: " ".join(args) or "(none)",
)
def test_help_loads_no_heavy_stack(args: list[str]) -> None:
    heavy = loaded_after(*args) & set(HEAVY)
    assert not heavy, f"keyong {' '.join(args)} loaded {sorted(heavy)}"


def test_every_group_help_loads_no_heavy_stack() -> None:
    for name in _groups():
        heavy = loaded_after(name, "--help") & set(HEAVY)
        assert not heavy, f"keyong {name} --help loaded {sorted(heavy)}"


def test_root_help_builds_no_group() -> None:
    """``keyong --help`` imports no command module beyond the root's own."""
    commands = {m for m in loaded_after("--help", whole=True) if m.startswith("app.cli.")}
    root = {"app.cli.root", "app.cli.lazy", "app.cli.coercion", "app.cli.conventions", "app.cli.reports"}
    assert commands <= {*root, "app.cli.__main__"}


def test_job_show_at_head_runs_no_alembic(tmp_path: Path) -> None:
    home = tmp_path / "home"
    made = subprocess.run(
        [sys.executable, "-m", "app.cli", "init", "--home", str(home), "--json"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stderr
    loaded = loaded_after("job", "show", "1", "--home", str(home), "--json")
    assert "alembic" not in loaded
    assert {"fastapi", "starlette", "torch", "opacus"}.isdisjoint(loaded)


#: Modules a read-only command must not load: the writer's open, the settings' pydantic, the ORM's models, the
#: full registry, and the sandbox's runner and kinds (bubblewrap, seccomp, DuckDB behind them).
WRITERS_STACK = (
    "app.instance",
    "app.settings",
    "app.database",
    "registry.models",
    "registry.service",
    "sandbox.models",
    "sandbox.queue",
    "sandbox.runner",
    "sandbox.worker",
    "sandbox.kinds",
    "sandbox.guard.judge",
)


@pytest.fixture
def home_with_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[int, dict[str, object]]]:
    """An embedded home holding jobs in every state (``tests.test_read_only_open``), and each one's
    ``keyong job show --json`` document as the queue gives it to the host."""
    from app import Instance, Settings
    from operators.jobs import Jobs, Quotas
    from sandbox.queue import JobQueue
    from tests.conftest import FakeClock
    from tests.job_worker_proc import licensed
    from tests.test_read_only_open import jobs_in_every_state
    from tests.test_registry_licences import make_registry

    for name in ("KEYONG_DATABASE_URL", "KEYONG_DATABASE_SSLMODE", "KEYONG_DATABASE_SSLROOTCERT", "KEYONG_HOME"):
        monkeypatch.delenv(name, raising=False)
    instance, _ = Instance.init(Settings(home=tmp_path / "home"))
    try:
        clock = FakeClock()
        registry = make_registry(instance, clock)
        licensed(registry, instance.home)
        jobs = Jobs(registry, JobQueue(registry.recorder, clock=clock), Quotas(concurrent=100, per_day=100))
        ids = jobs_in_every_state(jobs, clock)
        documents = {job: json.loads(json.dumps(jobs.show(job).as_json())) for job in ids}
    finally:
        instance.close()
    return tmp_path / "home", documents


def test_job_show_and_list_read_without_the_writers_stack(
    home_with_jobs: tuple[Path, dict[int, dict[str, object]]],
) -> None:
    """``keyong job show ID`` of a judged job with outputs and findings, and ``keyong job list``, load none of the
    heavy stacks (SQLAlchemy and pydantic included: the embedded database is read with ``sqlite3``), nor the
    writer's open, the ORM's models or the sandbox's runner; and they print what the queue gives (DESIGN.md)."""
    home, documents = home_with_jobs
    job = next(job for job, document in documents.items() if document["outputs"] and document["findings"])
    for args in (("job", "show", str(job)), ("job", "list")):
        loaded = loaded_after(*args, "--home", str(home), "--json", whole=True)
        heavy = {name.split(".")[0] for name in loaded} & set(HEAVY)
        assert not heavy, f"keyong {' '.join(args)} loaded {sorted(heavy)}"
        assert not loaded & set(WRITERS_STACK), sorted(loaded & set(WRITERS_STACK))
        assert not [name for name in loaded if "bwrap" in name or "bubblewrap" in name or "seccomp" in name]
    shown = _keyong("job", "show", str(job), "--home", str(home), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == documents[job]
    listed = _keyong("job", "list", "--home", str(home), "--json")
    assert json.loads(listed.stdout) == {"jobs": [documents[j] for j in sorted(documents, reverse=True)]}


def test_job_show_of_a_missing_job_exits_1_with_the_same_message(
    home_with_jobs: tuple[Path, dict[int, dict[str, object]]],
) -> None:
    home, _ = home_with_jobs
    missing = _keyong("job", "show", "999", "--home", str(home), "--json")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr.strip() == "error: no job 999"


def _keyong(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYONG_")}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT), "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=120,
    )


#: The data stacks: what reading, transforming and judging tables needs, and a command that only lists
#: registry rows does not (pandas alone was a third of ``keyong operator list``'s CPU).
DATA_STACKS = ("pandas", "pyarrow", "numpy", "duckdb", "presidio_analyzer", "spacy", "sklearn", "scipy", "torch")


@pytest.mark.parametrize(
    "args", [("operator", "list"), ("licence", "list"), ("dataset", "list"), ("release", "list")], ids=" ".join
)
def test_commands_through_the_writers_open_load_no_data_stack(tmp_path: Path, args: tuple[str, ...]) -> None:
    """Commands that open the instance (the registry, its services and the sandbox's ports) load pandas, Arrow,
    numpy and DuckDB only in the functions that read or write tables: the registry's and sandbox's modules
    import them where they are used (issue 21: a command in a blink)."""
    home = tmp_path / "home"
    made = _keyong("init", "--home", str(home), "--json")
    assert made.returncode == 0, made.stderr
    loaded = loaded_after(*args, "--home", str(home), "--json")
    assert "sqlalchemy" in loaded  # it did open the instance
    heavy = loaded & set(DATA_STACKS)
    assert not heavy, f"keyong {' '.join(args)} loaded {sorted(heavy)}"


def test_root_help_lines_are_the_groups_own() -> None:
    """The line ``keyong --help`` shows for a name is the one its built command or group would show."""
    from typer.main import get_command

    from app.cli import cli
    from app.cli.root import ENTRIES

    root = get_command(cli)
    for entry in ENTRIES:
        built = root.commands[entry.name]  # type: ignore[attr-defined]
        shown = (built.short_help or built.help or "").strip().split("\n\n")[0]
        assert " ".join(shown.split()) == entry.help, entry.name


def test_root_help_is_the_same_built_or_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drawn from the help lines alone, or from every group built, ``keyong --help`` reads the same."""
    from typer.core import TyperGroup

    from app.cli import cli
    from app.cli.lazy import LazyGroup

    runner = CliRunner()
    listed = runner.invoke(cli, ["--help"], env={"COLUMNS": "200"})
    monkeypatch.setattr(LazyGroup, "format_help", TyperGroup.format_help)  # every entry built to be drawn
    built = runner.invoke(cli, ["--help"], env={"COLUMNS": "200"})
    assert listed.exit_code == built.exit_code == 0
    assert "Jobs of operators" in listed.output
    assert listed.output == built.output


def test_every_command_is_reachable_through_the_lazy_root() -> None:
    """Walking the root's commands builds every group: each has its commands (the registrations of
    ``egress``, ``consent``, ``quota`` and the root's own on ``dataset`` included)."""
    from typer.main import get_command

    from app.cli import cli

    root = get_command(cli)
    names = {name: sorted(getattr(sub, "commands", {})) for name, sub in root.commands.items()}  # type: ignore[attr-defined]
    assert {"ingest", "desensitize", "purge", "egress", "access"} <= set(names["dataset"])
    assert {"sign-off", "awaiting"} <= set(names["release"])
    assert {"agree", "consent"} <= set(names["licence"])
    assert "report" in names["usage"]
    assert list(names)[:6] == ["init", "demo", "worker", "serve", "freeze", "unfreeze"]


FACES = ("core", "registry", "operators", "ledger")


def _type_checking_names(package: str) -> dict[str, tuple[str, str]]:
    """Each public name of a face as its imports give it (``if TYPE_CHECKING:`` ones included): (module,
    defined name)."""
    tree = ast.parse((ROOT / package / "__init__.py").read_text(encoding="utf-8"))
    names: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        typing_only = isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for sub in node.body if typing_only else [node]:  # type: ignore[attr-defined]
            if isinstance(sub, ast.ImportFrom) and sub.module and sub.module.split(".")[0] == package:
                for alias in sub.names:
                    names[alias.asname or alias.name] = (sub.module, alias.name)
    return names


@pytest.mark.parametrize("package", FACES)
def test_lazy_face_gives_what_its_imports_name(package: str) -> None:
    """In a fresh interpreter, every name of ``__all__`` resolves, to the object its typed import names."""
    probe = f"""
import importlib, json, sys
face = importlib.import_module({package!r})
wrong = []
names = json.loads(sys.argv[1])
for name in face.__all__:
    value = getattr(face, name)
    module, defined = names.get(name, (None, None))
    if module is None or getattr(importlib.import_module(module), defined) is not value:
        wrong.append(name)
print(json.dumps(wrong))
"""
    names = _type_checking_names(package)
    done = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(names)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_light_names_load_alone() -> None:
    """``Actor``, ``Role``, ``LicenceState`` and the errors come without SQLAlchemy; a table name loads
    the whole registry face (its models register together), as importing it did before."""
    probe = """
import sys
from core import Actor, RegistryError
from operators import IdentityError, Role
from registry import EXPIRING_DAYS, SUBJECT_KINDS, EvidenceKind, LicenceState
from ledger import EntryError, LedgerError
light = "sqlalchemy" not in sys.modules
import registry
registry.metadata
print(light, "registry.models" in sys.modules and "registry.people" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.split() == ["True", "True"], done.stderr


def test_an_unknown_name_is_refused() -> None:
    import core
    import registry

    for face in (core, registry):
        with pytest.raises(AttributeError):
            face.no_such_name  # noqa: B018
    with pytest.raises(ImportError):
        exec("from registry import no_such_name", {})


def test_refusals_are_told_apart_by_their_modules() -> None:
    """The CLI's refusals, named by module and class, are the classes the packages raise."""
    from app.cli.conventions import DATA_ERROR, REFUSALS, loaded_classes
    from app.instance import InstanceError
    from app.keys import SecretsError
    from app.transport import TransportError
    from core import RegistryError
    from dp import DpSpecError
    from ledger import EntryError, LedgerError
    from operators import IdentityError

    expected = {InstanceError, SecretsError, IdentityError, LedgerError, EntryError, RegistryError, DpSpecError}
    expected.add(TransportError)
    assert set(loaded_classes(REFUSALS)) == expected
    from sqlalchemy.exc import DataError

    assert loaded_classes((DATA_ERROR,)) == (DataError,)
