"""DP results through the real sandbox and the guard (issues 7 and 8).

Legitimate: dp-query answers and a dp-train model, planned from public facts, run by the platform's
programs in the sandbox, sealed with the instance key, judged — never ``block``.
Attacks: an operator's Python job that writes a model file, with or without a forged certificate, or
dresses records up as a DP answer — each ``block``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dp import ColumnFacts, DatasetFacts, parse_spec, plan, seal
from sandbox.guard import Judgement, judge
from tests.adversarial import residents, run_and_judge
from tests.dp_support import STATUSES, copy_form

pytestmark = pytest.mark.attack

KEY = Ed25519PrivateKey.generate()
JOB = 42


def insurance_facts(frame: pd.DataFrame) -> DatasetFacts:
    return DatasetFacts(
        name="insurance",
        version=1,
        rows=len(frame),
        columns={
            "身份证号": ColumnFacts(name="身份证号", pii_type="cn_resident_id", personal_info=True),
            "月缴费基数": ColumnFacts(name="月缴费基数", pii_type="income", personal_info=True, bounds=[3000, 40000]),
            "参保状态": ColumnFacts(name="参保状态", domain=list(STATUSES)),
            "参保日期": ColumnFacts(name="参保日期", bounds=[1995, 2027]),
        },
    )


def residents_facts() -> DatasetFacts:
    _, copy, _ = residents()
    return DatasetFacts(
        name="residents",
        version=1,
        rows=len(copy),
        columns={
            "公民身份号码": ColumnFacts(name="公民身份号码", pii_type="cn_resident_id", personal_info=True),
            "出生日期": ColumnFacts(name="出生日期", pii_type="birth_date", personal_info=True, bounds=[1900, 2030]),
        },
    )


def run_dp(kind: str, spec: dict, facts: DatasetFacts, frame: pd.DataFrame, tmp: Path) -> Judgement:
    """Plan, run in the sandbox, seal as the worker does, and judge with the instance key."""
    from sandbox.kinds import run_job

    resolved = plan(kind, parse_spec(kind, json.dumps(spec)), facts)
    tmp.mkdir(parents=True, exist_ok=True)
    copy = tmp / f"{facts.name}.parquet"
    frame.to_parquet(copy, index=False)
    out = tmp / "out"
    result = run_job(kind, json.dumps(resolved), datasets={facts.name: copy}, out_dir=out)
    assert result.status == "ok", result.stderr[-2000:]
    outputs = seal(kind, resolved, JOB, out, result.outputs, KEY)
    prints = {"residents": residents()[2]} if facts.name == "residents" else {}
    return judge(
        out,
        outputs,
        stdout=result.stdout,
        stderr=result.stderr,
        fingerprints=prints,
        certificate_key=KEY.public_key(),
        job=JOB,
    )


LEGIT_QUERIES = [
    ("dp_count", {"aggregate": "count", "epsilon": 0.5}),
    ("dp_quantile_birth", {"aggregate": "quantile", "column": "出生日期", "quantile": 0.5, "epsilon": 0.5}),
    (
        "dp_histogram_birth",
        {"aggregate": "histogram", "column": "出生日期", "bins": [1900, 1960, 1990, 2030], "epsilon": 0.5},
    ),
    ("dp_variance_birth", {"aggregate": "variance", "column": "出生日期", "epsilon": 1.0}),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "spec"), LEGIT_QUERIES, ids=[q[0] for q in LEGIT_QUERIES])
def test_dp_answers_over_residents_are_not_blocked(name: str, spec: dict, tmp_path: Path) -> None:
    judged = run_dp("dp-query", spec, residents_facts(), residents()[1], tmp_path)
    assert judged.verdict in ("pass", "review"), [f.as_json() for f in judged.findings]


@pytest.mark.slow
def test_dp_mean_by_status_and_a_certified_dp_model_are_not_blocked(tmp_path: Path) -> None:
    frame = copy_form(3000)
    facts = insurance_facts(frame)
    mean = {"aggregate": "mean", "column": "月缴费基数", "epsilon": 0.5, "group_by": ["参保状态"]}
    judged = run_dp("dp-query", mean, facts, frame, tmp_path / "q")
    assert judged.verdict == "pass", [f.as_json() for f in judged.findings]
    train = {"features": ["月缴费基数", "参保日期"], "label": "参保状态", "model": "logistic", "epochs": 2,
             "batch_size": 128, "epsilon": 1.0, "delta": 1e-5, "max_grad_norm": 1.0}  # fmt: skip
    judged = run_dp("dp-train", train, facts, frame, tmp_path / "t")
    assert judged.verdict in ("pass", "review"), [f.as_json() for f in judged.findings]
    assert not any(f.rule == "model.uncertified" for f in judged.findings)


READ = "import pandas as pd\nd = pd.read_parquet('/data/residents.parquet')\n"
ATTACKS = [
    (
        "model_file_of_records",
        READ + "import pickle\npickle.dump(d.to_dict('list'), open('/out/model.pkl', 'wb'))",
    ),
    (
        "torch_model_without_certificate",
        READ + "import torch\ntorch.save({'w': torch.zeros(3)}, '/out/model.pt')",
    ),
    (
        "torch_model_with_forged_certificate",
        READ
        + "import torch, json, hashlib\ntorch.save({'w': torch.zeros(3)}, '/out/model.pt')\n"
        + "h = hashlib.sha256(open('/out/model.pt', 'rb').read()).hexdigest()\n"
        + "json.dump({'kind': 'dp-train-certificate', 'job': 42, 'weights_file': 'model.pt', 'weights_sha256': h,"
        + " 'epsilon': 0.1, 'signature': {'alg': 'ed25519', 'key_id': '0' * 16, 'value': 'AAAA'}},"
        + " open('/out/model.certificate.json', 'w'))",
    ),
    (
        "records_dressed_as_dp_answer",
        READ
        + "import json\nrows = [{'group': {'id': v}, 'value': 1} for v in d['公民身份号码'].head(300)]\n"
        + "json.dump({'kind': 'dp-query', 'aggregate': 'count', 'epsilon': 0.1, 'rows': rows,"
        + " 'signature': {'alg': 'ed25519', 'key_id': '0' * 16, 'value': 'AAAA'}}, open('/out/result.json', 'w'))",
    ),
]


@pytest.mark.parametrize(("name", "code"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_dp_lookalikes_from_operator_code_are_blocked(name: str, code: str, tmp_path: Path) -> None:
    judged = run_and_judge("python", code, tmp_path)
    assert judged.verdict == "block", [f.as_json() for f in judged.findings]
