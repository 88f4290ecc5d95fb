"""The sql and python job kinds (DESIGN.md "Job kinds"): they work, and SQL cannot leave its tables."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pandas as pd
import pyarrow.parquet as pq
import pytest

from sandbox.kinds import KINDS, run_job
from sandbox.limits import MIB, Limits
from tests.conftest import require_sandbox

LIMITS = Limits(memory_bytes=2048 * MIB, cpu_seconds=60, wall_seconds=60, output_bytes=32 * MIB)


@pytest.fixture(autouse=True)
def _sandbox_required() -> None:
    require_sandbox()


@pytest.fixture
def residents(tmp_path: Path) -> Path:
    path = tmp_path / "copies" / "residents.parquet"
    path.parent.mkdir()
    pd.DataFrame(
        {"区县": ["南山", "福田", "南山", "宝安", "南山"], "年龄段": ["20-29", "30-39", "30-39", "20-29", "20-29"]}
    ).to_parquet(path)
    return path


def test_kinds_and_unknown_is_refused(tmp_path: Path) -> None:
    assert KINDS == ("sql", "python", "dp-query", "dp-train")
    with pytest.raises(ValueError, match="unknown job kind 'shell'"):
        run_job("shell", "id", datasets={}, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything was prepared


def test_sql_job_writes_parquet_and_csv(tmp_path: Path, residents: Path) -> None:
    result = run_job(
        "sql",
        "SELECT 区县, count(*) AS n FROM residents GROUP BY 区县 ORDER BY n DESC, 区县",
        datasets={"residents": residents},
        out_dir=tmp_path / "out",
        limits=LIMITS,
    )
    assert result.status == "ok", result.stderr
    assert [o["name"] for o in result.outputs] == ["result.csv", "result.parquet"]
    table = pq.read_table(result.out_dir / "result.parquet").to_pandas()
    assert table.to_dict("list") == {"区县": ["南山", "宝安", "福田"], "n": [3, 1, 1]}
    assert (result.out_dir / "result.csv").read_text(encoding="utf-8").splitlines()[0] == '"区县","n"'
    assert result.stdout.strip() == ""  # no counts in the log: results are judged in /out/


def test_sql_job_joins_two_granted_datasets(tmp_path: Path, residents: Path) -> None:
    regions = tmp_path / "copies" / "区县.parquet"
    pd.DataFrame({"区县": ["南山", "福田"], "编码": ["440305", "440304"]}).to_parquet(regions)
    result = run_job(
        "sql",
        'SELECT r.编码, count(*) AS n FROM residents JOIN "区县" r USING (区县) GROUP BY 1 ORDER BY 1',
        datasets={"residents": residents, "区县": regions},
        out_dir=tmp_path / "out",
        limits=LIMITS,
    )
    assert result.status == "ok", result.stderr
    assert pq.read_table(result.out_dir / "result.parquet").to_pydict() == {"编码": ["440304", "440305"], "n": [1, 3]}


@pytest.mark.attack
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "file system operations are disabled"),
        ("SELECT * FROM read_parquet('/data/residents.parquet')", "file system operations are disabled"),
        ("SELECT * FROM glob('/*')", "file system operations are disabled"),
        ("INSTALL httpfs", "refused: only a SELECT query may run"),
        ("LOAD httpfs", "refused: only a SELECT query may run"),
        ("ATTACH '/tmp/x.db' AS x", "refused: only a SELECT query may run"),
        ("COPY residents TO '/out/copy.csv'", "refused: only a SELECT query may run"),
        ("SET enable_external_access = true", "refused: only a SELECT query may run"),
        ("SELECT 1; SELECT * FROM read_csv('/etc/passwd')", "refused: a sql job is exactly one query"),
    ],
)
def test_sql_job_cannot_reach_files_or_extensions(tmp_path: Path, residents: Path, query: str, expected: str) -> None:
    result = run_job("sql", query, datasets={"residents": residents}, out_dir=tmp_path / "out", limits=LIMITS)
    assert result.status == "failed"
    assert result.reason in ("exit status 1", "exit status 2")
    assert expected in result.stderr
    assert result.outputs == []


@pytest.mark.attack
def test_duckdb_lockdown_holds_even_without_the_statement_filter(tmp_path: Path, residents: Path) -> None:
    """The SELECT-only filter is a second wall: DuckDB's own configuration lock is the first."""
    result = run_job(
        "python",
        """
import duckdb
con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
con.execute("CREATE TABLE t AS SELECT * FROM read_parquet('/data/residents.parquet')")
con.execute("SET enable_external_access = false")
con.execute("SET lock_configuration = true")
for statement in ("SET enable_external_access = true", "LOAD httpfs", "ATTACH '/tmp/x.db' AS x",
                  "COPY t TO '/out/copy.csv'", "SELECT * FROM read_csv('/etc/passwd')"):
    try:
        con.execute(statement)
        print("ALLOWED", statement)
    except duckdb.Error as exc:
        print("refused", type(exc).__name__)
""",
        datasets={"residents": residents},
        out_dir=tmp_path / "out",
        limits=LIMITS,
    )
    assert result.status == "ok", result.stderr
    assert "ALLOWED" not in result.stdout
    assert len(result.stdout.splitlines()) == 5
    assert result.outputs == []


def test_python_job_reads_data_and_writes_out(tmp_path: Path, residents: Path) -> None:
    result = run_job(
        "python",
        """
import os
import duckdb, numpy, pandas as pd, sklearn, diffprivlib
frame = pd.read_parquet("/data/residents.parquet")
frame.groupby("区县").size().rename("n").to_csv("summary.csv")  # cwd is /out
print(os.getcwd(), len(frame), sorted(os.listdir("/data")))
""",
        datasets={"residents": residents},
        out_dir=tmp_path / "out",
        limits=LIMITS,
    )
    assert result.status == "ok", result.stderr
    assert result.stdout.strip() == "/out 5 ['residents.parquet']"
    assert [o["name"] for o in result.outputs] == ["summary.csv"]
    assert pd.read_csv(result.out_dir / "summary.csv").set_index("区县")["n"].to_dict() == {
        "南山": 3,
        "宝安": 1,
        "福田": 1,
    }


@pytest.mark.slow
def test_python_job_can_import_opacus(tmp_path: Path) -> None:
    result = run_job(
        "python",
        "import opacus, torch\nprint(torch.get_num_threads())\n",
        datasets={},
        out_dir=tmp_path / "out",
        limits=LIMITS,
    )
    assert result.status == "ok", result.stderr
    assert result.stdout.strip() == "1"  # OMP_NUM_THREADS=1: two workers share two cores


def test_python_job_failure_has_exit_status_reason(tmp_path: Path) -> None:
    result = run_job("python", "raise SystemExit(7)\n", datasets={}, out_dir=tmp_path / "out", limits=LIMITS)
    assert (result.status, result.exit_code, result.reason) == ("failed", 7, "exit status 7")


CHART = """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

counts = pd.read_parquet("/data/residents.parquet").groupby("区县").size()
plt.rcParams["font.sans-serif"] = ["Noto Sans CJK SC", "DejaVu Sans"]  # CJK labels where the font exists
fig, ax = plt.subplots(figsize=(4, 3))
ax.bar(list(counts.index), list(counts.values))
ax.set_title("人数 by 区县")
plt.savefig("/out/chart.png")
plt.savefig("/out/chart.svg")
"""


def test_python_job_draws_a_chart_with_matplotlib(tmp_path: Path, residents: Path) -> None:
    """Operators draw charts in the sandbox (issue 15, principle 8); such an image goes to review.

    Under the default limits: ``MPLCONFIGDIR=/tmp`` starts empty, so matplotlib builds its font
    cache in the job's tmpfs, and fontconfig reads the sandbox's own ``/etc/fonts/fonts.conf``
    (without it ``fc-list`` writes an error into every charting job's log).
    """
    result = run_job("python", CHART, datasets={"residents": residents}, out_dir=tmp_path / "out", limits=Limits())
    assert result.status == "ok", result.stderr
    assert "Fontconfig error" not in result.stderr
    assert [o["name"] for o in result.outputs] == ["chart.png", "chart.svg"]
    png = (result.out_dir / "chart.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png[12:16] == b"IHDR"
    svg = ElementTree.fromstring((result.out_dir / "chart.svg").read_bytes())
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
