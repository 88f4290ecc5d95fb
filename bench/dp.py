"""DP job cost (issue 8): dp-query latency end to end through the sandbox, DP-SGD epochs against plain SGD.

Why: a DP answer costs an operator the sandbox's start-up, the DP program's imports and the
mechanisms themselves, and a DP-SGD model costs per-example gradients; issue 8 asks what each
costs on this 2-core machine next to the same work done without DP, and what a model trained at
ε = 1 loses in accuracy against the same model trained without DP. The data is the generator's
social-insurance table in desensitized-copy form (a pseudonym per person, 月缴费基数 in
1,000-yuan bands, dates as text), ``--rows`` rows, one per person, with the catalog's public
facts (bounds, domain) that plans are made from. Prints one JSON object per line, each with the
machine it ran on:

* ``dp_query`` (one line per aggregate: count; mean of 月缴费基数 by 参保状态; median of
  月缴费基数): median and p95 wall seconds of plan (``dp.plans``) → ``run_job("dp-query")``
  in bubblewrap → ``result.json``, over ``--repeat`` runs. Baselines, timed in the same
  interleaved loop: the same aggregate computed *non-privately* with pandas in-process (read the
  Parquet copy's columns, aggregate), and that very pandas code run as a sandboxed ``python`` job
  (``run_job("python")``), so that sandbox start-up is separated from the DP cost; and, to split
  the DP cost further, the DP program's own ``read_table`` + ``run_query`` in-process.
* ``dp_train`` (one line per model, logistic and mlp): one epoch of DP-SGD (ε = 1,
  δ = ``--delta``, batch 256, the plan's σ and Poisson rate) against one epoch of the same model
  with plain SGD (same batch size, same learning rate), all through ``dp_train.train`` in-process
  with the sandbox's thread count; seconds of the training loop per epoch (median of
  ``--train-repeat``, wall and CPU), the DP / non-DP ratio beside issue 21's target 2.0 and beside
  the old mode's ratio (opacus' hooks, issue 8's loop) measured in the same interleaved runs, the
  whole ``train`` call (contribution bounding, person split, encoding, evaluation), and the
  holdout accuracy of the models next to the majority-class share.
* ``dp_train_sandbox``: one full dp-train job (logistic) through ``run_job`` — what an operator
  waits for — with the accuracy and ε the program recorded.

Run: ``.venv/bin/python bench/dp.py`` (200k rows, about two minutes); ``--quick`` for 20k rows
and fewer repetitions; ``--parts train`` for the dp_train lines alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from benchinfo import emit, machine

from dp import ColumnFacts, DatasetFacts, parse_spec, plan
from dp.programs import dp_query, dp_train
from samples import generate_all
from sandbox.kinds import run_job
from sandbox.runner import JOB_ENV, RunResult, check_sandbox

DATASET = "insurance"
STATUSES = ["正常参保", "暂停参保", "终止参保"]
#: Insurance rows per generated resident is about 0.7 (80 % of the working-age): generate enough.
ROWS_PER_RESIDENT = 0.6

#: The three queries: the DP spec an operator submits, and the same aggregate in plain pandas
#: (``d``: the copy's columns; ``x``: 月缴费基数 read as the band's midpoint, as the DP program reads it).
QUERIES: dict[str, tuple[dict[str, Any], str]] = {
    "count": ({"aggregate": "count", "epsilon": 1.0}, "answer = len(d)"),
    "mean_by_status": (
        {"aggregate": "mean", "column": "月缴费基数", "group_by": ["参保状态"], "epsilon": 1.0},
        "answer = d.assign(x=x).groupby('参保状态')['x'].mean().to_dict()",
    ),
    "median": (
        {"aggregate": "quantile", "column": "月缴费基数", "quantile": 0.5, "epsilon": 1.0},
        "answer = float(np.median(x))",
    ),
}

# The non-private baseline, the same text in-process (exec) and as a sandboxed python job.
PANDAS_JOB = """\
import json
import numpy as np
import pandas as pd
d = pd.read_parquet({table!r}, columns={columns!r})
if '月缴费基数' in d.columns:
    codes, bands = pd.factorize(d['月缴费基数'])
    mids = np.array([sum(float(p) for p in b.split('-')) / 2 for b in bands])
    x = mids[codes]
{aggregate}
with open({out!r}, 'w', encoding='utf-8') as f:
    json.dump(answer, f, ensure_ascii=False)
"""


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _summary(values: list[float]) -> dict[str, float]:
    return {"median_s": round(statistics.median(values), 4), "p95_s": round(_p95(values), 4)}


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


# --------------------------------------------------------------------------- data


def insurance_copy(rows: int, seed: int) -> pd.DataFrame:
    """``rows`` generated social-insurance rows as the desensitizer leaves them (as tests/dp_support.copy_form):
    a 32-hex pseudonym per person, the contribution base in 1,000-yuan bands, dates as text."""
    si = generate_all(math.ceil(rows / ROWS_PER_RESIDENT), seed)["social_insurance"]
    if len(si) < rows:
        raise SystemExit(f"the generator gave {len(si):,} insurance rows, fewer than --rows {rows:,}")
    si = si.iloc[:rows]
    base = si["月缴费基数"].to_numpy() // 1000 * 1000
    return pd.DataFrame(
        {
            "身份证号": [hashlib.sha256(f"pepper:{v}".encode()).hexdigest()[:32] for v in si["身份证号"]],
            "月缴费基数": [f"{b}-{b + 999}" for b in base],
            "参保状态": si["参保状态"].astype(str).to_numpy(),
            "参保日期": si["参保日期"].dt.strftime("%Y-%m-%d").to_numpy(),
        }
    )


def insurance_facts(frame: pd.DataFrame) -> DatasetFacts:
    """The catalog's public facts of the copy (as the custodian declares them; never read off the data)."""
    return DatasetFacts(
        name=DATASET,
        version=1,
        rows=len(frame),
        columns={
            "身份证号": ColumnFacts(name="身份证号", pii_type="cn_resident_id", personal_info=True),
            "月缴费基数": ColumnFacts(name="月缴费基数", pii_type="income", personal_info=True, bounds=[3000, 40000]),
            "参保状态": ColumnFacts(name="参保状态", domain=list(STATUSES)),
            "参保日期": ColumnFacts(name="参保日期", bounds=[1995, 2027]),
        },
    )


def _checked(result: RunResult, what: str) -> RunResult:
    if result.status != "ok":
        raise RuntimeError(f"{what} failed: {result.reason}: {result.stderr[-500:]}")
    return result


# --------------------------------------------------------------------------- dp-query


def bench_query(
    name: str, facts: DatasetFacts, copy: Path, repeat: int, scratch: Path, host: dict[str, Any]
) -> dict[str, Any]:
    """One aggregate, DP through the sandbox against pandas in-process and pandas through the sandbox."""
    spec, aggregate = QUERIES[name]
    columns = [c for c in [spec.get("column"), *spec.get("group_by", [])] if c]
    columns = columns or ["身份证号"]
    box_code = PANDAS_JOB.format(
        table=f"/data/{DATASET}.parquet", columns=columns, aggregate=aggregate, out="/out/result.json"
    )
    host_code = PANDAS_JOB.format(
        table=str(copy), columns=columns, aggregate=aggregate, out=str(scratch / f"{name}-host.json")
    )
    datasets = {DATASET: copy}

    def dp_sandboxed(n: int) -> dict[str, Any]:
        resolved = plan("dp-query", parse_spec("dp-query", json.dumps(spec)), facts)
        out = scratch / f"{name}-dp-{n}"
        _checked(run_job("dp-query", json.dumps(resolved), datasets=datasets, out_dir=out), f"dp-query {name}")
        return json.loads((out / "result.json").read_text(encoding="utf-8"))

    def pandas_sandboxed(n: int) -> Any:
        out = scratch / f"{name}-py-{n}"
        _checked(run_job("python", box_code, datasets=datasets, out_dir=out), f"pandas job {name}")
        return json.loads((out / "result.json").read_text(encoding="utf-8"))

    def pandas_host() -> Any:
        exec(compile(host_code, "<pandas baseline>", "exec"), {})  # the bench's own fixed code
        return json.loads((scratch / f"{name}-host.json").read_text(encoding="utf-8"))

    resolved_host = {**plan("dp-query", parse_spec("dp-query", json.dumps(spec)), facts), "table": str(copy)}
    needed = [
        resolved_host["person_key"],
        resolved_host.get("column"),
        *(g["column"] for g in resolved_host["group_by"]),
    ]

    def dp_host() -> dict[str, Any]:
        return dp_query.run_query(resolved_host, dp_query.read_table(resolved_host, [c for c in needed if c]))

    dp_sandboxed(-1)  # warm: page cache, imports' .pyc files, the sandbox's self-test
    pandas_sandboxed(-1)
    pandas_host()
    dp_host()  # imports diffprivlib into this process once, as a long-running host would have
    times: dict[str, list[float]] = {
        "dp_sandbox": [],
        "pandas_sandbox": [],
        "pandas_in_process": [],
        "dp_in_process": [],
    }
    dp_answer: dict[str, Any] = {}
    exact: Any = None
    for n in range(repeat):  # interleaved, so a busy moment of the machine hits every path alike
        seconds, dp_answer = _timed(lambda n=n: dp_sandboxed(n))
        times["dp_sandbox"].append(seconds)
        seconds, boxed = _timed(lambda n=n: pandas_sandboxed(n))
        times["pandas_sandbox"].append(seconds)
        seconds, exact = _timed(pandas_host)
        times["pandas_in_process"].append(seconds)
        seconds, _ = _timed(dp_host)
        times["dp_in_process"].append(seconds)
        if boxed != exact:
            raise RuntimeError(f"{name}: the sandboxed pandas answer differs from the in-process one")
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {
        "bench": "dp_query",
        "query": name,
        "spec": spec,
        "rows": facts.rows,
        "epsilon": spec["epsilon"],
        "mechanism": dp_answer.get("mechanism"),
        "runs": repeat,
        **{f"{path}_{k}": v for path, values in times.items() for k, v in _summary(values).items()},
        "dp_sandbox_over_pandas_in_process": round(medians["dp_sandbox"] / medians["pandas_in_process"], 1),
        "sandbox_overhead_median_s": round(medians["pandas_sandbox"] - medians["pandas_in_process"], 4),
        "dp_cost_in_sandbox_median_s": round(medians["dp_sandbox"] - medians["pandas_sandbox"], 4),
        "dp_cost_in_process_median_s": round(medians["dp_in_process"] - medians["pandas_in_process"], 4),
        "dp_answer": [
            row["value"] if not row["group"] else {**row["group"], "value": row["value"]} for row in dp_answer["rows"]
        ],
        "exact_answer": exact,
        "machine": host,
    }


# --------------------------------------------------------------------------- dp-train


def _train_spec(model: str, delta: float) -> dict[str, Any]:
    return {
        "features": ["月缴费基数", "参保日期"],
        "label": "参保状态",
        "model": model,
        "epochs": 1,
        "batch_size": 256,
        "epsilon": 1.0,
        "delta": delta,
        "max_grad_norm": 1.0,
    }


_LOOPS = {"private": "_train_private", "opacus": "_train_private_opacus", "plain": "_train_plain"}


@contextmanager
def _timing_loops() -> Iterator[dict[str, list[tuple[float, float]]]]:
    """Wraps dp_train's training loops so each run's loop alone is timed, wall and CPU seconds (train()
    also bounds, splits, encodes and evaluates, which DP does not change); the originals are back afterwards."""
    loops: dict[str, list[tuple[float, float]]] = {key: [] for key in _LOOPS}
    originals = {attribute: getattr(dp_train, attribute) for attribute in _LOOPS.values()}
    for key, attribute in _LOOPS.items():

        def timed(*args: Any, _original: Callable[..., None] = originals[attribute], _key: str = key) -> None:
            wall, cpu = time.perf_counter(), time.process_time()
            _original(*args)
            loops[_key].append((time.perf_counter() - wall, time.process_time() - cpu))

        setattr(dp_train, attribute, timed)
    try:
        yield loops
    finally:
        for attribute, original in originals.items():
            setattr(dp_train, attribute, original)


#: The three ways an epoch is trained: DP-SGD by dp_sgd_step (issue 21), DP-SGD through opacus' hooks
#: (issue 8's loop, the old mode, in the same run), plain SGD.
_MODES = {"private": {"private": True}, "opacus": {"private": True, "opacus_hooks": True}, "plain": {"private": False}}


def bench_train(
    model: str, frame: pd.DataFrame, facts: DatasetFacts, delta: float, repeat: int, host: dict[str, Any]
) -> dict[str, Any]:
    """One epoch of DP-SGD (new and old mode) against one epoch of plain SGD on the same model, data and schedule."""
    import torch

    resolved = plan("dp-train", parse_spec("dp-train", json.dumps(_train_spec(model, delta))), facts)
    with _timing_loops() as loops:
        small = frame.iloc[:5000]  # warm: opacus' and torch's first-call set-up is no part of an epoch
        warm = plan("dp-train", parse_spec("dp-train", json.dumps(_train_spec(model, delta))), insurance_facts(small))
        for options in _MODES.values():
            dp_train.train(warm, small, **options)
        for timings in loops.values():
            timings.clear()
        calls: dict[str, list[float]] = {key: [] for key in _MODES}
        records: dict[str, list[dict[str, Any]]] = {key: [] for key in _MODES}
        for _ in range(repeat):  # interleaved, so that a busy moment of the machine hits every mode
            for key, options in _MODES.items():
                seconds, (_, record) = _timed(lambda options=options: dp_train.train(resolved, frame, **options))
                calls[key].append(seconds)
                records[key].append(record)
    wall = {key: statistics.median(w for w, _ in timings) for key, timings in loops.items()}
    cpu = {key: statistics.median(c for _, c in timings) for key, timings in loops.items()}
    last = records["private"][-1]
    return {
        "bench": "dp_train",
        "model": model,
        "architecture": last["architecture"],
        "rows": facts.rows,
        "train_rows": last["train_rows"],
        "holdout_rows": last["holdout_rows"],
        "epochs": resolved["epochs"],
        "batch_size": resolved["batch_size"],
        "epsilon_target": resolved["epsilon"],
        "epsilon_spent": round(last["epsilon"], 4),
        "epsilon_spent_old_mode": round(records["opacus"][-1]["epsilon"], 4),
        "delta": resolved["delta"],
        "noise_multiplier": round(resolved["noise_multiplier"], 4),
        "sample_rate": round(resolved["sample_rate"], 6),
        "steps": resolved["steps"],
        "runs": repeat,
        "dp_epoch_median_s": round(wall["private"], 3),
        "plain_epoch_median_s": round(wall["plain"], 3),
        "dp_over_plain": round(wall["private"] / wall["plain"], 2),
        "target_dp_over_plain": 2.0,
        "old_dp_epoch_median_s": round(wall["opacus"], 3),
        "old_dp_over_plain": round(wall["opacus"] / wall["plain"], 2),
        "old_mode": "opacus GradSampleModule + DPOptimizer (hooks), torch.rand(n) < q sampling, same run",
        # CPU seconds of the same loops: on a shared machine the wall clock also counts others' turns.
        "dp_epoch_cpu_s": round(cpu["private"], 3),
        "plain_epoch_cpu_s": round(cpu["plain"], 3),
        "old_dp_epoch_cpu_s": round(cpu["opacus"], 3),
        "dp_over_plain_cpu": round(cpu["private"] / cpu["plain"], 2),
        "old_dp_over_plain_cpu": round(cpu["opacus"] / cpu["plain"], 2),
        "dp_train_call_median_s": round(statistics.median(calls["private"]), 3),
        "plain_train_call_median_s": round(statistics.median(calls["plain"]), 3),
        "dp_holdout_accuracy": [round(r["holdout_accuracy"], 4) for r in records["private"]],
        "old_dp_holdout_accuracy": [round(r["holdout_accuracy"], 4) for r in records["opacus"]],
        "plain_holdout_accuracy": [round(r["holdout_accuracy"], 4) for r in records["plain"]],
        "majority_class_share": round(float(frame["参保状态"].value_counts(normalize=True).max()), 4),
        "dp_holdout_majority_share": [r["holdout_majority_share"] for r in records["private"]],
        "dp_mia_auc": [round(r["mia_auc"], 4) for r in records["private"]],
        "plain_mia_auc": [round(r["mia_auc"], 4) for r in records["plain"]],
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "machine": host,
    }


def bench_train_sandbox(
    model: str, facts: DatasetFacts, copy: Path, delta: float, scratch: Path, host: dict[str, Any]
) -> dict[str, Any]:
    """One whole dp-train job through the sandbox: plan, bwrap, imports, training, model.pt and training.json."""
    out = scratch / f"train-{model}"

    def job() -> RunResult:
        resolved = plan("dp-train", parse_spec("dp-train", json.dumps(_train_spec(model, delta))), facts)
        return _checked(run_job("dp-train", json.dumps(resolved), datasets={DATASET: copy}, out_dir=out), "dp-train")

    seconds, result = _timed(job)
    record = json.loads((out / "training.json").read_text(encoding="utf-8"))
    return {
        "bench": "dp_train_sandbox",
        "model": model,
        "rows": facts.rows,
        "epochs": 1,
        "epsilon_spent": round(record["epsilon"], 4),
        "delta": record["delta"],
        "steps": record["steps"],
        "wall_s": round(seconds, 3),
        "sandbox_wall_s": round(result.wall_seconds, 3),
        "sandbox_cpu_s": round(result.cpu_seconds, 3),
        "max_rss_mib": round(result.max_rss_bytes / (1 << 20), 1),
        "holdout_accuracy": round(record["holdout_accuracy"], 4),
        "mia_auc": round(record["mia_auc"], 4),
        "outputs": sorted(o["name"] for o in result.outputs),
        "machine": host,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="insurance rows (default 200,000; --quick 20,000)")
    parser.add_argument("--repeat", type=int, default=None, help="runs of each query path (default 10; --quick 3)")
    parser.add_argument("--train-repeat", type=int, default=None, help="trainings per model (default 3; --quick 1)")
    parser.add_argument("--quick", action="store_true", help="20k rows and fewer repetitions (under a minute)")
    parser.add_argument("--delta", type=float, default=1e-6, help="δ of the dp-train jobs (must be below 1/rows)")
    parser.add_argument("--threads", type=int, default=int(JOB_ENV["OMP_NUM_THREADS"]),
                        help="torch threads in-process (default: what a sandboxed job gets)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", default="query,train,sandbox", help="which measurements (default all three)")
    args = parser.parse_args(argv)
    rows = args.rows or (20_000 if args.quick else 200_000)
    repeat = args.repeat or (3 if args.quick else 10)
    train_repeat = args.train_repeat or (1 if args.quick else 3)

    import torch

    torch.set_num_threads(args.threads)
    description = check_sandbox()
    host = machine(
        bubblewrap=description.split(" at ")[0], pandas=pd.__version__, numpy=np.__version__,
        torch=torch.__version__, opacus=version("opacus"), diffprivlib=version("diffprivlib"),
    )  # fmt: skip
    frame = insurance_copy(rows, args.seed)
    facts = insurance_facts(frame)
    scratch = Path(tempfile.mkdtemp(prefix="keyong-bench-dp-"))
    try:
        copy = scratch / f"{DATASET}.parquet"
        frame.to_parquet(copy, index=False)
        parts = set(args.parts.split(","))
        for name in QUERIES if "query" in parts else ():
            emit(bench_query(name, facts, copy, repeat, scratch, host))
        for model in ("logistic", "mlp") if "train" in parts else ():
            emit(bench_train(model, frame, facts, args.delta, train_repeat, host))
        if "sandbox" in parts:
            emit(bench_train_sandbox("logistic", facts, copy, args.delta, scratch, host))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
