"""The ``keyong`` console script as a user runs it: JSON contract, exit codes, stdout purity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

KEYONG = [sys.executable, "-m", "app.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("KEYONG_DATABASE_URL", None) if env is None or "KEYONG_DATABASE_URL" not in env else None
    return subprocess.run([*KEYONG, *args], capture_output=True, text=True, env=full_env, timeout=120)


def test_init_json_contract_and_refusal(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = run("init", "--home", str(home), "--json")
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)  # stdout is exactly one JSON document
    assert set(data) == {"home", "database", "tokens"}
    assert data["home"] == str(home)
    assert data["database"].startswith("sqlite:///")
    assert set(data["tokens"]) == {"custodian", "agency", "operator", "regulator"}
    assert all(token.startswith("ky_") for token in data["tokens"].values())

    second = run("init", "--home", str(home), "--json")
    assert second.returncode == 1
    assert second.stdout == ""
    assert "already exists" in second.stderr


def test_home_from_environment(tmp_path: Path) -> None:
    home = tmp_path / "from-env"
    result = run("init", "--json", env={"KEYONG_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["home"] == str(home)
    assert (home / "keyong.json").exists()


def test_human_output_shows_the_keys(tmp_path: Path) -> None:
    result = run("init", "--home", str(tmp_path / "h"))
    assert result.returncode == 0
    assert "custodian" in result.stdout and "ky_" in result.stdout


@pytest.mark.parametrize(
    "args", [["no-such-command"], ["init", "--bogus"], ["serve", "--port", "notaport"], ["demo", "--residents", "5"]]
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert run(*args).returncode == 2


def test_serve_without_a_home_is_refused_clearly(tmp_path: Path) -> None:
    result = run("serve", "--home", str(tmp_path / "absent"), "--port", "1")
    assert result.returncode == 1
    assert "keyong init" in result.stderr


def test_every_command_accepts_home_and_json() -> None:
    from typing import Any

    from typer.main import get_command

    from app.cli import cli

    def leaves(command: Any, path: str) -> list[tuple[str, Any]]:
        if hasattr(command, "commands"):  # a group: typer vendors its own click, so no isinstance
            return [leaf for name, sub in command.commands.items() for leaf in leaves(sub, f"{path} {name}")]
        return [(path, command)]

    found = leaves(get_command(cli), "keyong")
    assert len(found) >= 11
    for path, command in found:
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert {"--home", "--json"} <= options, path


def test_demo_generates_the_tables(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    result = run("demo", "--home", str(home), "--json", "--residents", "500")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["initialized"] is True
    # init: instance + 4 principals; 4 per ingest (published, suggested, version_added, ingested);
    # 2 per desensitization (version_added, desensitized); operator.added; licence granted + activated;
    # 3 public facts declared (catalog.bounds_set); 3 jobs × (scope.admitted, queued, started, finished);
    # 2 DP jobs × (scope.admitted, queued, budget.charged, started, finished); the out-of-scope one:
    # scope.refused, finding.raised, job.refused
    assert report["ledger"]["ok"] is True
    assert report["ledger"]["entries"] == 5 + 3 * 4 + 3 * 2 + 3 + 1 + 2 + 3 * 4 + 2 * 5 + 3
    jobs = report["jobs"]
    assert [(j["kind"], j["state"]) for j in jobs] == [
        ("sql", "done"), ("python", "done"), ("dp-query", "done"), ("dp-train", "done"), ("python", "done"),
        ("sql", "refused"),
    ]  # fmt: skip
    assert all(j["verdict"] in ("pass", "review") for j in jobs[:4])
    assert "model.certificate.json" in jobs[3]["outputs"]  # the platform certified the DP model
    assert jobs[4]["verdict"] == "block"  # the attempt to export resident records
    assert "超范围调用" in jobs[5]["reason"]
    ingested = {i["dataset"]: i for i in report["ingested"]}
    assert ingested["market_entities"]["encoding"] == "gb18030" and ingested["residents"]["rows"] == 500
    assert ingested["residents"]["level"] == "L4"  # 公民身份号码 is sensitive personal information
    assert "公民身份号码" in ingested["residents"]["personal_columns"]
    assert report["operator"] == "demo-operator"
    copies = {d["dataset"]: d for d in report["desensitized"]}
    assert set(copies) == {"residents", "social_insurance", "market_entities"}
    assert copies["residents"]["version"] == 2 and copies["residents"]["k_anonymity"] >= 5
    assert copies["residents"]["actions"]["公民身份号码"] == "pseudonymize"
    tables = {t["name"]: t for t in report["tables"]}
    assert set(tables) == {"residents", "social_insurance", "market_entities"}
    assert tables["residents"]["rows"] == 500
    assert "公民身份号码" in tables["residents"]["columns"]
    assert tables["market_entities"]["encoding"] == "gb18030"
    raw = Path(tables["market_entities"]["path"]).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert "统一社会信用代码" in raw.decode("gb18030")
    again = run("demo", "--home", str(home), "--json", "--residents", "500")
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert second["initialized"] is False
    # Every ingest makes a new raw version (v3, after v1 raw and v2 desensitized), and a new copy from it (v4).
    assert {i["version"] for i in second["ingested"]} == {3}
    assert {d["version"] for d in second["desensitized"]} == {4}
    shown = run("dataset", "show", "market_entities", "--home", str(home), "--json")
    assert shown.returncode == 0, shown.stderr
    catalog = json.loads(shown.stdout)["catalog"]
    assert catalog["提供方名称"] == "双鸭山市市场监督管理局" and catalog["数据格式"] == "CSV"
