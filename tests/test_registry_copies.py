"""``keyong dataset desensitize``: the copy a sandbox mounts, made from the vault, recorded, all or nothing.

Rules exercised: 原始数据不出域 / 数据可用不可见 (双鸭山 第三十五条, 黑龙江 第三十八条) — no raw
identifier reaches the copy, the only file a sandbox will ever mount; personal information enters
authorized operation only desensitized (双鸭山 第四十三条) — a licence of an L4 dataset becomes
possible once a desensitized version exists; every step ledgered (双鸭山 第二十条). Runs on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from app import Instance
from app.cli import cli as cli_app
from core import Actor, PermissionDeniedError, RegistryError
from desensitize.identifiers import uscc_check_char
from registry import Registry, RegistryConfig, read_policy_file
from samples import synthetic
from tests.consent_support import consent_to_access
from tests.people_support import stand

CUSTODIAN = Actor("demo-custodian", "custodian")
AGENCY = Actor("demo-agency", "agency")
PROVIDER = "双鸭山市公安局"
PROVIDER_CODE = "11230500MB1234567" + uscc_check_char("11230500MB1234567")
CONTRACT_KEYS = {"dataset", "version", "rows", "columns", "k_anonymity", "copy"}


@dataclass
class Env:
    instance: Instance
    registry: Registry
    raw: dict[str, pd.DataFrame]
    tmp: Path
    tokens: dict[str, str]

    def ingest(self, name: str) -> None:
        path = self.tmp / f"{name}.csv"
        synthetic.write_csv(self.raw[name], path)
        self.registry.ingestor.ingest(path, name=name, provider=PROVIDER, provider_code=PROVIDER_CODE, by=CUSTODIAN)

    def table(self, copy: Path) -> pa.Table:
        """A sealed copy read as a job would: decrypted by the registry (issue 22), never parsed from disk."""
        return pq.read_table(pa.BufferReader(self.registry.at_rest.read(copy)))

    def files(self, sub: str) -> list[Path]:
        root = self.instance.home / sub
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture(scope="module")
def raw_tables() -> dict[str, pd.DataFrame]:
    return synthetic.generate_all(1500, seed=0)


@pytest.fixture
def env(initialised: tuple[Instance, dict[str, str]], raw_tables: dict[str, pd.DataFrame], tmp_path: Path) -> Env:
    instance, tokens = initialised
    return Env(instance, instance.registry, raw_tables, tmp_path, tokens)


def _cells(frame: pd.DataFrame) -> list[str]:
    return [str(v) for col in frame.columns for v in frame[col].dropna().tolist()]


def test_residents_copy_holds_no_raw_identifier_in_any_cell(env: Env) -> None:
    """The issue's "no raw identifier survives": every cell of the copy scanned for every raw value."""
    env.ingest("residents")
    result = env.registry.copies.make("residents", by=CUSTODIAN)
    assert result.version == 2 and result.parent == 1
    copy = env.table(result.copy).to_pandas()
    raw = env.raw["residents"]
    assert result.rows == len(copy) > 0.9 * len(raw)

    cells = _cells(copy)
    blob = "\n".join(cells)
    ids = set(raw["公民身份号码"])
    phones = set(raw["手机号码"])
    names = set(raw["姓名"])
    addresses = set(raw["住址"])
    for cell in cells:
        assert cell not in ids and cell not in phones and cell not in names and cell not in addresses, cell
    # Not inside longer cells either (free-text 备注, generalized addresses): whole-string search.
    leaked_ids = [v for v in ids if v in blob]
    leaked_phones = [v for v in phones if v in blob]
    leaked_addresses = [v for v in addresses if v in blob]
    assert leaked_ids == [] and leaked_phones == [] and leaked_addresses == []
    # Names are short (two or three characters): look for them as whole tokens of the free text.
    notes = "\n".join(copy["备注"].dropna()) if "备注" in copy else ""
    leaked_names = [n for n in names if re.search(rf"(?<![\u4e00-\u9fff]){re.escape(n)}(?![\u4e00-\u9fff])", notes)]
    assert leaked_names == []
    # Nothing 18 digits long with a valid check character, nor a mobile number, in any cell.
    # Letter-aware edges: a hex pseudonym may hold a digit run that merely looks like a number.
    assert not re.search(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])", blob)
    assert not re.search(r"(?<![0-9A-Za-z])\d{17}[\dX](?![0-9A-Za-z])", blob)


def test_copy_is_a_recorded_version_and_the_raw_stays_in_the_vault(env: Env) -> None:
    env.ingest("residents")
    vault_before = env.files("vault")
    before = env.instance.ledger.size()
    result = env.registry.copies.make("residents", by=CUSTODIAN)
    entry = env.registry.catalog.get("residents")
    version = entry.versions[-1]
    assert (version.kind, version.version, version.parent) == ("desensitized", 2, 1)
    assert env.instance.home / version.path == result.copy
    assert result.copy.is_relative_to(env.instance.home / "copies")
    assert not result.fingerprints.is_relative_to(env.instance.home / "copies")  # never beside what is mounted
    assert env.files("vault") == vault_before
    report = version.report or {}
    assert report["k_anonymity"]["k_achieved"] >= report["k_anonymity"]["k_target"] >= 2
    assert {c["name"] for c in report["columns"]} >= {"公民身份号码", "手机号码", "住址"}
    actions = [(e.action, e.subject) for e in env.instance.ledger.entries(after=before)]
    key = env.registry.data_keys.list("dataset:residents")[0]  # the dataset's first copy made its data key
    assert actions == [
        ("datakey.created", f"datakey:{key.id}"),
        ("dataset.version_added", "dataset:residents"),
        ("dataset.desensitized", "dataset:residents"),
    ]
    # The copy's re-identification risk against its level's threshold is stored and ledgered (issue 16).
    (desensitized,) = env.instance.ledger.entries(after=before, action="dataset.desensitized")
    assert desensitized.payload["risk_met"] is report["risk"]["met"] is True
    assert report["risk"]["after"]["k"] == report["k_anonymity"]["k_achieved"]
    logged = json.dumps([e.payload for e in env.instance.ledger.entries(after=before)], ensure_ascii=False)
    assert not any(v in logged for v in env.raw["residents"]["公民身份号码"].head(200))
    # The copy's file name is its content hash: a new version never overwrites a mounted one.
    assert result.copy.name.split(".")[0] == version.content_sha256[:16]


def test_fingerprints_find_raw_and_pseudonymized_values(env: Env) -> None:
    env.ingest("residents")
    result = env.registry.copies.make("residents", by=CUSTODIAN)
    prints = env.registry.copies.fingerprints("residents")
    raw_ids = env.raw["residents"]["公民身份号码"].head(50)
    assert prints.contains_values(raw_ids).all()
    spaced = raw_ids.str.slice(0, 6) + " " + raw_ids.str.slice(6)
    assert prints.contains_values(spaced).all()
    copy = env.table(result.copy).to_pandas()
    assert prints.contains_values(copy["公民身份号码"].dropna().head(50)).all()
    assert not prints.contains_values(pd.Series(["110101190001011234", "not a value at all"])).any()


def test_joins_on_the_pseudonymized_id_survive_across_datasets(env: Env) -> None:
    """Pseudonyms are keyed by the instance pepper alone: licensed joins across datasets still work."""
    env.ingest("residents")
    env.ingest("social_insurance")
    people = env.table(env.registry.copies.make("residents", by=CUSTODIAN).copy).to_pandas()
    insured = env.table(env.registry.copies.make("social_insurance", by=CUSTODIAN).copy).to_pandas()
    joined = insured.merge(people, left_on="身份证号", right_on="公民身份号码")
    assert len(joined) > 0.8 * len(insured)


def test_an_l4_dataset_is_licensable_once_desensitized(env: Env) -> None:
    env.ingest("residents")
    assert env.registry.catalog.get("residents").licensing_refusal is not None
    env.registry.copies.make("residents", by=CUSTODIAN)
    assert env.registry.catalog.get("residents").licensing_refusal is None
    operator = "op-copies"
    env.registry.licences.add_operator(operator, "91230500MA1D2E3F4" + uscc_check_char("91230500MA1D2E3F4"), by=AGENCY)
    stand(env.registry, operator)
    consent_to_access(env.registry, "residents")
    scenario = (env.registry.catalog.get("residents").operation_scenarios or ["人口统计"])[0]
    env.registry.licences.grant(
        operator,
        datasets=["residents"],
        scenarios=[scenario],
        valid_until=date.today() + timedelta(days=30),
        publicity_days=0,
        by=AGENCY,
        reason="copies test",
    )
    grant = env.registry.licences.check_scope(operator, ["residents"], scenario)
    granted = grant.datasets[0]
    newest = env.registry.copies.newest("residents")
    # Issue 23: the licence's own copy of that version (pseudonyms keyed for the licence), never the base copy.
    assert granted.version == newest.version and granted.path != newest.path
    assert granted.path.startswith("licence-copies/") and (env.instance.home / granted.path).is_file()
    assert env.registry.copies.path(newest).is_file()


def test_custom_policy_replaces_the_shipped_one_and_a_bad_one_writes_nothing(env: Env) -> None:
    env.ingest("residents")
    policies = env.instance.home / "policies"
    policies.mkdir()
    (policies / "L4.json").write_text("{not json", encoding="utf-8")
    before = env.instance.ledger.size()
    with pytest.raises(RegistryError, match="policy for L4"):
        env.registry.copies.make("residents", by=CUSTODIAN)
    assert env.files("copies") == [] and env.files("fingerprints") == []
    assert env.instance.ledger.size() == before
    assert [v.kind for v in env.registry.catalog.get("residents").versions] == ["raw"]

    shipped = json.loads((Path(__file__).parents[1] / "desensitize" / "policies" / "L4.json").read_text("utf-8"))
    shipped["rules"]["cn_phone"] = {"action": "drop"}
    shipped["rules"]["person_name"] = {"action": "drop"}
    (policies / "L4.json").write_text(json.dumps(shipped, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(RegistryError, match="not approved"):  # SATRE 1.2.01: four eyes first (test_policy_approvals)
        env.registry.copies.make("residents", by=CUSTODIAN)
    own = read_policy_file("L4", policies / "L4.json")
    proposal = env.registry.policies.propose("L4", own, by=CUSTODIAN, reason="姓名与手机号码整列删除")
    env.registry.policies.decide(proposal.id, True, by=AGENCY, reason="同意")
    result = env.registry.copies.make("residents", by=CUSTODIAN)
    columns = env.table(result.copy).schema.names
    assert "手机号码" not in columns and "姓名" not in columns
    assert {c["name"]: c["action"] for c in result.columns}["姓名"] == "drop"


def test_a_failure_while_recording_leaves_no_file_behind(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.ingest("residents")
    from registry.catalog import Catalog

    def boom(*args: object, **kwargs: object) -> None:
        raise RegistryError("simulated failure while recording")

    monkeypatch.setattr(Catalog, "add_version", boom)
    with pytest.raises(RegistryError, match="simulated"):
        env.registry.copies.make("residents", by=CUSTODIAN)
    assert env.files("copies") == [] and env.files("fingerprints") == []


def test_only_the_custodian_desensitizes_and_unknown_inputs_are_refused(env: Env) -> None:
    env.ingest("residents")
    with pytest.raises(PermissionDeniedError):
        env.registry.copies.make("residents", by=Actor("op", "operator"))
    with pytest.raises(RegistryError, match="no column"):
        env.registry.copies.make("residents", by=CUSTODIAN, sensitive_column="血型")
    with pytest.raises(RegistryError):
        env.registry.copies.make("nowhere", by=CUSTODIAN)
    config = RegistryConfig(home=env.instance.home, vault_key=env.instance.keys.vault_key)  # no pepper
    with pytest.raises(RegistryError, match="pepper"):
        Registry(env.instance.engine, env.instance.ledger, config).copies.make("residents", by=CUSTODIAN)


def test_cli_prints_the_contract(env: Env) -> None:
    env.ingest("market_entities")
    result = CliRunner().invoke(
        cli_app, ["dataset", "desensitize", "market_entities", "--home", str(env.instance.home), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= CONTRACT_KEYS
    assert data["dataset"] == "market_entities" and data["version"] == 2
    assert all({"name", "type", "action"} <= set(c) for c in data["columns"])
    assert Path(data["copy"]).is_file()
    refused = CliRunner().invoke(cli_app, ["dataset", "desensitize", "nowhere", "--home", str(env.instance.home)])
    assert refused.exit_code == 1


def test_the_custodian_desensitizes_over_http_and_operators_see_no_report(env: Env) -> None:
    from fastapi.testclient import TestClient

    from app import create_app
    from tests.conftest import bearer_headers

    env.ingest("market_entities")
    client = TestClient(create_app(instance=env.instance))
    headers = bearer_headers(client, env.tokens)
    refused = client.post("/datasets/market_entities/desensitize", json={}, headers=headers["operator"])
    assert refused.status_code == 403
    made = client.post("/datasets/market_entities/desensitize", json={}, headers=headers["custodian"])
    assert made.status_code == 201, made.text
    data = made.json()
    assert set(data) >= CONTRACT_KEYS and data["version"] == 2
    assert data["copy"].startswith("copies/market_entities/")  # relative to the home: no host paths over HTTP
    shown = client.get("/datasets/market_entities/desensitization", headers=headers["regulator"])
    assert shown.status_code == 200 and shown.json()["version"] == 2 and shown.json()["report"]["k_anonymity"]
    assert client.get("/datasets/market_entities/desensitization", headers=headers["operator"]).status_code == 403
    assert client.post("/datasets/nowhere/desensitize", json={}, headers=headers["custodian"]).status_code == 404


def test_a_sandboxed_job_reads_the_copy_and_nothing_else(env: Env) -> None:
    """End to end: the copy made here is what a licensed operator's job reads inside the sandbox."""
    from tests.conftest import require_sandbox

    require_sandbox()
    env.ingest("market_entities")
    result = env.registry.copies.make("market_entities", by=CUSTODIAN)
    assert result.copy.stat().st_mode & 0o777 == 0o600  # sealed at rest; the job gets a decrypted 0644 twin
    operator = "op-sandbox"
    env.registry.licences.add_operator(operator, "91230500MA1D2E3F4" + uscc_check_char("91230500MA1D2E3F4"), by=AGENCY)
    stand(env.registry, operator)
    consent_to_access(env.registry, "market_entities")
    scenario = (env.registry.catalog.get("market_entities").operation_scenarios or ["市场监管分析"])[0]
    env.registry.licences.grant(
        operator,
        datasets=["market_entities"],
        scenarios=[scenario],
        valid_until=date.today() + timedelta(days=30),
        publicity_days=0,
        by=AGENCY,
        reason="copies test",
    )
    code = (
        "import os, pandas as pd\n"
        "df = pd.read_parquet('/data/market_entities.parquet')\n"
        "print(len(df), sorted(os.listdir('/data')))\n"
    )
    job = env.instance.jobs.submit(operator, ["market_entities"], "python", code, scenario)
    (view,) = env.instance.worker(worker_id="copies-test").run_pending()
    assert view.id == job and view.state == "done", view.reason
    (log,) = env.instance.registry.licences.workdir(operator, view.licence_id or 0).rglob("stdout.txt")
    read = env.registry.at_rest.read(log).decode("utf-8")  # sealed under the licence's key once judged
    assert read.strip() == f"{result.rows} ['market_entities.parquet']"


def test_a_copy_above_its_risk_threshold_is_refused_and_nothing_is_recorded(env: Env) -> None:
    """Fail closed (GB/T 37964-2019 第6章, verification against the target before use): 14 residents
    (L4) cannot reach average prosecutor risk 0.05 by any generalization or suppression the search
    tries, so the copy is refused — no version, no file, no ledger entry — and the dataset stays
    unlicensable, so no operator's job can mount a copy above its level's threshold (red team 16)."""
    path = env.tmp / "few.csv"
    synthetic.write_csv(synthetic.generate_all(200, seed=14)["residents"].iloc[:14], path)
    env.registry.ingestor.ingest(path, name="few", provider=PROVIDER, provider_code=PROVIDER_CODE, by=CUSTODIAN)
    before = env.instance.ledger.size()
    with pytest.raises(RegistryError, match="re-identification risk threshold") as refused:
        env.registry.copies.make("few", by=CUSTODIAN)
    assert "average prosecutor risk" in str(refused.value)
    assert env.files("copies") == [] and env.files("fingerprints") == []
    assert env.instance.ledger.size() == before
    entry = env.registry.catalog.get("few")
    assert [v.kind for v in entry.versions] == ["raw"] and entry.licensing_refusal is not None
