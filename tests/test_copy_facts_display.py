"""Issue 16, "Shown in ...": a copy's re-identification risk, utility and column representation travel
from the report to ``keyong dataset desensitize --json``, ``keyong dataset show``, the API's catalog, the
custodian's console page and the operator's catalog page — and a copy made before issue 16 renders as
"not measured", never as an error or a made-up number.

Operators get the public facts only (what copy they will get): representation, risk after, the utility
summary; never the workload's raw answers (a relative error beside the copy's answer restores the raw
aggregate) nor the custodian's reason for keeping a near-unique column (个人信息保护法 第七十三条:
anonymized data cannot be restored; 双鸭山 第三十五条: 原始数据不出域).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import Instance, create_app
from app.api.schemas import CopyFactsOut, DatasetOut, DesensitizedOut
from app.cli import cli as cli_app
from app.copy_facts import (
    NOT_MEASURED,
    describe_near_unique,
    describe_representation,
    public_facts,
    report_sections,
    risk_rows,
)
from desensitize import desensitize_table
from desensitize.identifiers import uscc_check_char
from registry.copies import CopyResult
from tests.conftest import bearer_headers
from tests.console_support import console_client
from tests.copy_facts_support import KEPT_REASON, RAW_ANSWER, REPORT, add_copy, no_qi_report, report
from tests.test_registry_licences import add_dataset

USCC = "11230500MB1234567" + uscc_check_char("11230500MB1234567")
MIDPOINT = "numeric midpoint, width 1000, bottom-coded below 1000, top-coded at 20000"


# -- the one reading of the report -----------------------------------------------------------------


def test_representations_are_described_as_the_contract_states_them() -> None:
    assert describe_representation(REPORT["columns"][0]["representation"]) == MIDPOINT
    assert describe_representation({"kind": "year"}) == "date to year (integer)"
    assert describe_representation({"kind": "month"}) == "date to month (first day of the month)"
    assert describe_representation({"kind": "band_start_year", "width": 5}) == "year band start, width 5 years"
    lower = {"kind": "band_lower", "unit": "元", "width": 500.0, "top_coded_at": 9000.5, "label_column": "月收入_标签"}
    assert describe_representation(lower) == (
        "numeric band_lower, width 500 元, top-coded at 9000.5, label in column 月收入_标签"
    )
    assert describe_representation(None) is None and describe_representation({}) is None
    assert describe_near_unique(REPORT["columns"][2]["near_unique"]) == "near-unique (93.00% ≥ 50.00%): pseudonymized"
    kept = describe_near_unique(REPORT["columns"][3]["near_unique"])
    assert kept is not None and kept.endswith(f"kept — {KEPT_REASON}")


def test_risk_table_before_and_after_and_k_na_without_quasi_identifiers() -> None:
    rows = {label: (before, after) for label, before, after in risk_rows(REPORT["risk"])}
    assert rows["prosecutor highest 检察官风险最高"] == ("1", "0.2")
    assert rows["prosecutor average 检察官风险平均"] == ("0.875", "0.0625")
    assert rows["prosecutor: records above threshold 超阈值记录"] == ("81.25%", "0.00%")
    assert rows["sample uniques 样本唯一"] == ("812", "0") and rows["k"] == ("1", "5") and rows["l"] == ("2", "2")
    none = {label: (before, after) for label, before, after in risk_rows(no_qi_report()["risk"])}
    assert none["k"] == ("n/a, no quasi-identifiers",) * 2 and none["l"] == ("n/a, no quasi-identifiers",) * 2
    assert risk_rows(None) == []


def test_public_facts_hold_no_raw_aggregate_and_absent_keys_read_as_not_measured() -> None:
    facts = public_facts(2, REPORT)
    CopyFactsOut.model_validate(facts)
    assert facts["measured"] is True and facts["note"] is None
    assert facts["risk_after"] == {
        "k": 5, "l": 2, "note": None, "prosecutor_highest": 0.2, "prosecutor_average": 0.0625,
        "records_above_threshold": 0.0, "marketer": 0.0625, "threshold": {"prosecutor_highest": 0.2}, "met": True,
    }  # fmt: skip
    assert facts["utility_summary"] == REPORT["utility"]["summary"]
    by_name = {c["name"]: c for c in facts["columns"]}
    assert by_name["月收入"]["described"] == MIDPOINT and by_name["区县"]["representation"] is None
    assert by_name["统一社会信用代码"]["near_unique"] == "pseudonymize" and by_name["订单号"]["near_unique"] == "kept"
    text = json.dumps(facts, ensure_ascii=False)
    assert str(RAW_ANSWER) not in text and KEPT_REASON not in text and "workload" not in text
    later = report(columns=[{"name": "x", "action": "band", "representation": {"kind": "midpoint", "width": 5.0,
                                                                             "edges_seen": [17.0, 93.0]}}])  # fmt: skip
    hidden = public_facts(2, later)["columns"][0]
    assert hidden["representation"] == {"kind": "midpoint", "width": 5.0} and "93" not in json.dumps(hidden)
    assert hidden["described"] == "numeric midpoint, width 5"
    old = public_facts(1, {"columns": [{"name": "x", "action": "keep"}], "k_anonymity": {"k_achieved": 3}})
    CopyFactsOut.model_validate(old)
    assert old["measured"] is False and old["note"] == NOT_MEASURED and old["risk_after"] is None
    assert old["utility_summary"] is None and old["columns"][0]["representation"] is None
    assert public_facts(1, None)["columns"] == [] and report_sections(None)["measured"] is False


def test_copy_result_json_carries_risk_utility_and_representation(tmp_path: Path) -> None:
    columns = [{"name": c["name"], "type": c["type"], "action": c["action"]} for c in REPORT["columns"]]
    result = CopyResult("residents", 2, 1, 990, columns, REPORT["k_anonymity"], tmp_path / "c", tmp_path / "f", REPORT)
    data = result.as_json()
    assert {"dataset", "version", "rows", "columns", "k_anonymity", "copy", "risk", "utility", "report"} <= set(data)
    assert data["risk"] == REPORT["risk"] and data["utility"] == REPORT["utility"]
    by_name = {c["name"]: c for c in data["columns"]}
    assert by_name["月收入"]["representation"]["top_coded_at"] == 20000.0
    assert by_name["订单号"]["near_unique"]["action"] == "kept" and set(by_name["区县"]) == {"name", "type", "action"}
    DesensitizedOut.model_validate(data | {"copy": "c", "fingerprints": "f"})
    old = CopyResult("r", 2, 1, 9, columns, {}, tmp_path / "c", tmp_path / "f", {"columns": []}).as_json()
    assert old["risk"] is None and old["utility"] is None and old["columns"] == columns


# -- CLI ------------------------------------------------------------------------------------------


def _cli(instance: Instance, *args: str) -> Any:
    result = CliRunner().invoke(cli_app, [*args, "--home", str(instance.home)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result


def test_dataset_show_gives_risk_utility_and_copy_facts(instance: Instance) -> None:
    add_copy(instance.registry, "residents", report())
    add_copy(instance.registry, "older", report(risk=None, utility=None))
    data = json.loads(_cli(instance, "dataset", "show", "residents", "--json").stdout)
    assert data["risk"] == REPORT["risk"] and data["utility"] == REPORT["utility"]
    assert data["copy_facts"] == public_facts(2, REPORT) and "catalog" in data  # the contract's keys stay
    older = json.loads(_cli(instance, "dataset", "show", "older", "--json").stdout)
    assert older["risk"] is None and older["utility"] is None and older["copy_facts"]["measured"] is False

    text = " ".join(_cli(instance, "dataset", "show", "residents").stdout.split())
    for shown in ("Re-identification risk", "0.0625", "81.25%", "Information loss", "median 0.004", "max 0.0625"):
        assert shown in text, shown
    assert "top-coded at 20000" in text and "pseudonymized" in text and KEPT_REASON.split()[0] in text
    old_text = " ".join(_cli(instance, "dataset", "show", "older").stdout.split())
    assert "not measured (copy made before issue 16)" in old_text


def test_dataset_desensitize_prints_the_measures(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real command over a made copy whose report the pipeline extended as the contract says."""
    import desensitize

    made = {"called": 0}
    real = desensitize_table

    def with_measures(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        made["called"] += 1
        result.report["risk"] = no_qi_report()["risk"]
        result.report["utility"] = REPORT["utility"]
        result.report["k_anonymity"] = {
            **result.report["k_anonymity"],
            "k_achieved": None,
            "note": "n/a, no quasi-identifiers",
        }
        return result

    # registry.copies imports the pipeline from the face when it runs (issue 21: no pandas at start).
    monkeypatch.setattr(desensitize, "desensitize_table", with_measures)
    path = instance.home / "trips.csv"
    path.write_text(
        "区县,趟次\n" + "".join(f"{d},{n}\n" for d in ("宝山区", "尖山区") for n in range(12)), encoding="utf-8"
    )
    _cli(instance, "dataset", "ingest", str(path), "--name", "trips", "--provider", "双鸭山市交通运输局",
         "--provider-code", USCC, "--level", "L2")  # fmt: skip
    data = json.loads(_cli(instance, "dataset", "desensitize", "trips", "--json").stdout)
    assert made["called"] == 1 and data["risk"]["after"]["note"] == "n/a, no quasi-identifiers"
    assert data["utility"]["summary"]["queries"] == 12 and data["k_anonymity"]["k_achieved"] is None
    text = " ".join(_cli(instance, "dataset", "desensitize", "trips").stdout.split())
    assert "k-anonymity n/a, no quasi-identifiers" in text and "Re-identification risk (v3)" in text


# -- API ------------------------------------------------------------------------------------------


def test_the_api_catalog_gives_every_role_the_copy_facts_and_operators_nothing_raw(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    instance, tokens = initialised
    add_copy(instance.registry, "residents", report())
    add_copy(instance.registry, "older", None)
    client = TestClient(create_app(instance=instance))
    headers = bearer_headers(client, tokens)
    for role in ("operator", "custodian", "regulator"):
        shown = client.get("/datasets/residents", headers=headers[role])
        assert shown.status_code == 200, shown.text
        DatasetOut.model_validate(shown.json())
        assert shown.json()["copy_facts"] == public_facts(2, REPORT), role
    operator_text = client.get("/datasets", headers=headers["operator"]).text
    assert str(RAW_ANSWER) not in operator_text and KEPT_REASON not in operator_text
    assert str(RAW_ANSWER) in client.get("/datasets", headers=headers["custodian"]).text  # the full report
    listed = {d["name"]: d for d in client.get("/datasets", headers=headers["operator"]).json()}
    assert listed["older"]["copy_facts"]["note"] == NOT_MEASURED
    assert listed["residents"]["copy_facts"]["risk_after"]["k"] == 5
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "copy_facts" in schema["DatasetOut"]["properties"] and "risk_after" in schema["CopyFactsOut"]["properties"]
    assert schema["CopyFactsOut"]["examples"][0]["columns"][0]["described"].startswith("numeric midpoint")


# -- console --------------------------------------------------------------------------------------


def test_the_custodians_page_shows_risk_utility_representation_and_near_unique(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    instance, tokens = initialised
    add_copy(instance.registry, "residents", report())
    add_copy(instance.registry, "plain", no_qi_report())
    add_copy(instance.registry, "older", report(risk=None, utility=None))
    custodian = console_client(instance, tokens["custodian"])
    page = html.unescape(custodian.get("/console/custodian/datasets/residents").text)
    assert 'id="risk-table"' in page and 'data-met="yes"' in page and "prosecutor_highest 0.2" in page
    expected = ["81.25%", "0.0625", "812", MIDPOINT, "date to year (integer)", "mean(月收入) by 区县", "7391.25"]
    expected += ["0.004", 'data-near-unique="kept"', KEPT_REASON, 'data-near-unique="pseudonymize"']
    for shown in expected:
        assert shown in page, shown
    # The copy's answer beside the raw one (a template once read ``q.copy``, the dict's own method).
    assert "7400" in page.replace(",", "") and "built-in method" not in page
    plain = html.unescape(custodian.get("/console/custodian/datasets/plain").text)
    assert "k: n/a, no quasi-identifiers" in plain and "n/a, no quasi-identifiers</td>" in plain
    older = custodian.get("/console/custodian/datasets/older")
    assert older.status_code == 200
    assert 'id="risk-not-measured"' in older.text and 'id="utility-not-measured"' in older.text


def test_the_operators_catalog_page_shows_what_copy_it_will_get(initialised: tuple[Instance, dict[str, str]]) -> None:
    instance, tokens = initialised
    add_copy(instance.registry, "residents", report())
    add_copy(instance.registry, "older", None)
    add_dataset_without_copy(instance)
    operator = console_client(instance, tokens["operator"])
    response = operator.get("/console/operator/catalog")
    assert response.status_code == 200
    page = html.unescape(response.text)
    assert 'data-dataset="residents"' in page and MIDPOINT in page and "date to year (integer)" in page
    assert '<td class="k">5</td>' in page and '<td class="prosecutor-highest">0.2</td>' in page
    assert "median relative error 0.004" in page and "已假名化 pseudonymized" in page and "保留 kept" in page
    assert NOT_MEASURED in page and "no desensitized copy yet" in page
    assert "7391.25" not in page and str(RAW_ANSWER) not in page and KEPT_REASON not in page
    assert "copies/residents" not in page  # no storage path
    assert 'href="/console/operator/catalog"' in page
    for role in ("custodian", "agency", "regulator"):
        assert console_client(instance, tokens[role]).get("/console/operator/catalog").status_code == 403, role


def add_dataset_without_copy(instance: Instance) -> None:
    add_dataset(instance.registry, "rawonly", desensitized=False)


def test_the_custodians_page_names_the_quasi_identifiers_of_a_real_copy(
    initialised: tuple[Instance, dict[str, str]],
) -> None:
    """A real copy's report holds each quasi-identifier with its whole ladder: the page names the column
    and the rung it stopped on, not the Python dict (seen in a screenshot of the demo)."""
    from samples import synthetic

    instance, tokens = initialised
    path = instance.home / "people.csv"
    synthetic.write_csv(synthetic.generate_all(2000, seed=3)["residents"], path)
    _cli(instance, "dataset", "ingest", str(path), "--name", "people", "--provider", "双鸭山市公安局",
         "--provider-code", USCC)  # fmt: skip
    _cli(instance, "dataset", "desensitize", "people")
    page = html.unescape(console_client(instance, tokens["custodian"]).get("/console/custodian/datasets/people").text)
    assert "{'column'" not in page
    assert "出生日期 (" in page and "性别 (value)" in page and "出生日期 → 5-year band (" in page
