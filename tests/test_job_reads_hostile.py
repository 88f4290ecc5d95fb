"""``keyong job show/list`` over rows an editor of the database made (FINDINGS21a F4, F5).

The platform never writes such rows; someone editing ``keyong.db`` can. The read must not crash, one bad row
must not hide the others, a bad field is shown empty and named in ``malformed``, and ``--json`` stays strict
JSON (no ``NaN``), as DESIGN.md's command-line contract asks (exit 1 with a clear message, or a result).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app import Instance, Settings
from app.instance_read import DATABASE_SETTINGS, ReadOnlyInstance
from sandbox import read_job, read_jobs

REPO = Path(__file__).resolve().parents[1]

JOB: dict[str, Any] = {
    "operator": "acme",
    "kind": "sql",
    "datasets": '{"d": {"version": 1}}',
    "scenario": "s",
    "code": "select 1",
    "code_sha256": "0" * 64,
    "spec_sha256": "0" * 64,
    "state": "done",
    "verdict": "pass",
    "attempts": 1,
    "max_attempts": 3,
    "exit_code": 0,
    "resources": '{"cpu": 1}',
    "outputs": '[{"name": "a.csv", "bytes": 3, "sha256": "00", "path": "x"}]',
    "created_at": "2026-12-07 09:59:59.000000",
    "cancel_requested": 0,
    "findings": "[]",
    "title": "t",
    "purpose": "p",
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("hostile") / "h"
    instance, _ = Instance.init(Settings().with_home(home))
    instance.close()
    return home


@pytest.fixture
def home(pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in DATABASE_SETTINGS:
        monkeypatch.delenv(name.upper(), raising=False)
    target = tmp_path / "h"
    shutil.copytree(pristine, target)
    return target


def add_job(home: Path, job_id: int, **changes: Any) -> None:
    row = {**JOB, "id": job_id, **changes}
    raw = sqlite3.connect(home / "keyong.db")
    raw.execute(f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    raw.commit()
    raw.close()


def set_raw(home: Path, job_id: int, column: str, sql_value: str) -> None:
    raw = sqlite3.connect(home / "keyong.db")
    raw.execute(f"UPDATE jobs SET {column} = {sql_value} WHERE id = {job_id}")
    raw.commit()
    raw.close()


HOSTILE: dict[str, tuple[str, str]] = {
    # name: (column, SQL value), and the column the view must name
    "nan_in_findings": ("findings", """'[{"rule": "x", "detail": NaN}]'"""),
    "huge_float_in_resources": ("resources", """'{"cpu": 1e999}'"""),
    "lone_surrogate_in_outputs": ("outputs", """'[{"name": "\\ud800"}]'"""),
    "outputs_an_object": ("outputs", """'{"a": 1}'"""),
    "outputs_a_list_of_lists": ("outputs", """'[["name", "x"]]'"""),
    "deep_findings": ("findings", "'" + "[" * 50_000 + "]" * 50_000 + "'"),
    "infinite_exit_code": ("exit_code", "9e999"),
    "text_attempts": ("attempts", "'many'"),
    "created_at_garbage": ("created_at", "'garbage'"),
    "created_at_integer": ("created_at", "12345"),
    "title_a_blob": ("title", "X'00FF'"),
    "reason_not_utf8": ("reason", "CAST(X'61FF' AS TEXT)"),
    "operator_not_utf8": ("operator", "CAST(X'61FF' AS TEXT)"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_bad_field_is_named_and_hides_no_other_job(name: str, home: Path) -> None:
    column, value = HOSTILE[name]
    for job_id in (1, 2, 3):
        add_job(home, job_id)
    set_raw(home, 2, column, value)
    ro = ReadOnlyInstance.open(home)
    try:
        views = read_jobs(ro.rows)
        shown = read_job(ro.rows, 2).as_json()
    finally:
        ro.close()
    assert [v.id for v in views] == [3, 2, 1]
    documents = [v.as_json() for v in views]
    assert documents[1]["malformed"] == [column] and shown["malformed"] == [column]
    assert "malformed" not in documents[0] and "malformed" not in documents[2]
    assert documents[0]["outputs"][0]["name"] == "a.csv"  # the others are read as ever
    # strict JSON, encodable as UTF-8 (what --json prints)
    json.dumps({"jobs": documents}, allow_nan=False, ensure_ascii=False).encode("utf-8")


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("KEYONG_DATABASE")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def strict(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_job_list_shows_every_job_and_names_the_bad_one(home: Path) -> None:
    add_job(home, 1)
    add_job(home, 2, findings='[{"rule": "x", "detail": NaN}]', title=b"\x00")
    done = cli(home, "job", "list", "--json")
    assert done.returncode == 0, done.stderr
    jobs = strict(done.stdout)["jobs"]
    assert [j["job"] for j in jobs] == [2, 1] and jobs[0]["malformed"] == ["findings", "title"]
    assert "job 2: stored findings, title could not be read" in done.stderr and "Traceback" not in done.stderr
    table = cli(home, "job", "list")  # the table too
    assert table.returncode == 0 and "Traceback" not in table.stderr


def test_a_table_without_the_columns_read_is_a_clear_refusal(home: Path) -> None:
    add_job(home, 1)
    raw = sqlite3.connect(home / "keyong.db")
    raw.execute("ALTER TABLE jobs DROP COLUMN purpose")
    raw.commit()
    raw.close()
    done = cli(home, "job", "show", "1")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "cannot read job 1 from the database: no such column: purpose" in done.stderr


@pytest.mark.parametrize("command", [("job", "show", "1"), ("job", "list")])
def test_a_home_whose_files_are_not_what_they_should_be_is_refused(home: Path, command: tuple[str, ...]) -> None:
    (home / "keyong.db").write_bytes(b"garbage" * 100)
    done = cli(home, *command)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "file is not a database" in done.stderr
    (home / "keyong.json").unlink()
    (home / "keyong.json").mkdir()
    done = cli(home, *command)
    assert done.returncode == 1 and "keyong.json cannot be read" in done.stderr and "Traceback" not in done.stderr
