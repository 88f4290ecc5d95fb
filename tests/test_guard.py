"""Export guard rules one by one (issue 7), the redacted log, and the worker storing the verdict.

Each normalisation of the fingerprint match (fp-norm-1: spaces, punctuation, full-width, case) and
each reversible wrapping (base64, hex, URL, reversal, split cells) is defeated in its own test:
个人信息保护法 第七十三条 — a value that can be restored is not de-identified.
"""

from __future__ import annotations

import base64
import hashlib
import urllib.parse
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from app import Instance
from core import Actor
from sandbox import RegistryHooks
from sandbox.guard import Finding, GuardConfig, SourceCopy, judge, verdict_of
from sandbox.sdc import SdcConfig
from tests.adversarial import residents
from tests.job_worker_proc import OPERATOR, SCENARIO, FakeResult, licensed


def _write(tmp: Path, files: dict[str, str | bytes]) -> list[dict[str, Any]]:
    tmp.mkdir(parents=True, exist_ok=True)
    outputs = []
    for name, body in files.items():
        data = body.encode("utf-8") if isinstance(body, str) else body
        (tmp / name).write_bytes(data)
        outputs.append({"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    return outputs


def _copy() -> SourceCopy:
    return SourceCopy.from_frame("residents", residents()[1])


def _judge(tmp: Path, files: dict[str, str | bytes], **kw: Any) -> tuple[str, set[str], list[Finding]]:
    prints = {"residents": residents()[2]}
    kw.setdefault("sources", {"residents": _copy()})
    judged = judge(tmp, _write(tmp, files), fingerprints=prints, **kw)
    return judged.verdict, {f.rule for f in judged.findings}, judged.findings


def _raw_id() -> str:
    return str(residents()[0]["公民身份号码"].iloc[5])


def _pseudonym() -> str:
    return str(residents()[1]["公民身份号码"].iloc[5])


def test_verdict_of() -> None:
    soft = Finding("sdc.x", "soft", "f", "l", "d")
    hard = Finding("identifier.x", "hard", "f", "l", "d")
    assert verdict_of([]) == "pass" and verdict_of([soft]) == "review" and verdict_of([soft, hard]) == "block"


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda v: v, id="plain"),
        pytest.param(lambda v: " ".join(v[i : i + 3] for i in range(0, len(v), 3)), id="spaces"),
        pytest.param(lambda v: "-".join(v[i : i + 4] for i in range(0, len(v), 4)), id="punctuation"),
        pytest.param(lambda v: v.translate(str.maketrans("0123456789Xx", "０１２３４５６７８９Ｘｘ")), id="fullwidth"),
        pytest.param(lambda v: v.lower() if v[-1] == "X" else v.upper(), id="case"),
        pytest.param(lambda v: base64.b64encode(v.encode()).decode(), id="base64"),
        pytest.param(lambda v: base64.urlsafe_b64encode(v.encode()).decode().rstrip("="), id="base64url"),
        pytest.param(lambda v: v.encode().hex(), id="hex"),
        pytest.param(lambda v: urllib.parse.quote(v, safe=""), id="url"),
        pytest.param(lambda v: "".join(f"%{b:02X}" for b in v.encode()), id="url-all"),
        pytest.param(lambda v: v[::-1], id="reversed"),
        pytest.param(lambda v: base64.b64encode(v[::-1].encode()).decode(), id="reversed-base64"),
        pytest.param(lambda v: "编号：" + v + "。", id="inside-text"),
    ],
)
@pytest.mark.parametrize("source", ["raw", "pseudonym"])
def test_fingerprinted_values_are_found_however_wrapped(wrap: Any, source: str, tmp_path: Path) -> None:
    value = _raw_id() if source == "raw" else _pseudonym()
    verdict, rules, findings = _judge(tmp_path, {"t.csv": f"k,n\n{wrap(value)},40\n"})
    assert verdict == "block"
    assert "identifier.fingerprint" in rules or "identifier.recognized" in rules
    assert all(value not in f.detail and wrap(value) not in f.detail for f in findings)


def test_value_split_across_adjacent_cells(tmp_path: Path) -> None:
    value = _pseudonym()
    verdict, rules, _ = _judge(tmp_path, {"t.csv": f"a,b,c\n{value[:10]},{value[10:20]},{value[20:]}\n"})
    assert verdict == "block" and "identifier.split_cells" in rules


def test_split_phone_with_its_country_code_in_a_cell_of_a_large_parquet_table(tmp_path: Path) -> None:
    """The split-cells probe glues cells of distinct rows only (codes, not strings) and re-applies the
    country-code rule to the glued value: "+86 1" | "38 0279" | "0360" in row 4,000 of 5,000 is found
    (no pair of those cells holds the number without the code)."""
    phone = str(residents()[0]["手机号码"].iloc[5])
    n = 5000
    frame = pd.DataFrame({"cc": ["+1"] * n, "a": ["区"] * n, "b": [str(i % 7) for i in range(n)], "k": [1] * n})
    frame.loc[4000, ["cc", "a", "b"]] = [f"+86 {phone[:1]}", f"{phone[1:3]} {phone[3:7]}", phone[7:]]
    tmp_path.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    data = (tmp_path / "t.parquet").read_bytes()
    outputs = [{"name": "t.parquet", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}]
    judged = judge(tmp_path, outputs, fingerprints={"residents": residents()[2]})
    assert "identifier.split_cells" in {f.rule for f in judged.findings}
    assert judged.verdict == "block"


def test_recognized_identifier_not_in_the_dataset(tmp_path: Path) -> None:
    # a valid GB 11643-1999 number that is not a resident of the fixture
    verdict, rules, findings = _judge(tmp_path, {"t.txt": "号码 11010519491231002X"})
    assert verdict == "block" and "identifier.recognized" in rules
    assert any("CN_RESIDENT_ID" in f.detail for f in findings)


def test_stdout_stderr_and_file_names_are_judged(tmp_path: Path) -> None:
    prints = {"residents": residents()[2]}
    value = _pseudonym()
    assert judge(tmp_path, [], stdout=f"x {value}\n", fingerprints=prints).verdict == "block"
    assert judge(tmp_path, [], stderr=f"ValueError: {value[::-1]}", fingerprints=prints).verdict == "block"
    outputs = _write(tmp_path / "n", {f"{value}.csv": "a\n1\n"})
    assert judge(tmp_path / "n", outputs, fingerprints=prints).verdict == "block"
    assert judge(tmp_path, [], stdout="rows 600\n", fingerprints=prints).verdict == "pass"


def test_manifest_rules(tmp_path: Path) -> None:
    assert _judge(tmp_path / "a", {"m.pkl": b"x"})[1] == {"model.uncertified"}
    assert _judge(tmp_path / "b", {"a.zip": b"PK"})[1] == {"manifest.type"}  # archives: no reader, refused
    assert _judge(tmp_path / "c", {"a.exe": b"MZ"})[1] == {"manifest.type"}
    assert "manifest.hidden" in _judge(tmp_path / "d", {".h.csv": "a\n1\n"})[1]
    many = {f"f{i}.csv": "a\n10\n" for i in range(5)}
    assert "manifest.file_count" in _judge(tmp_path / "e", many, config=GuardConfig(max_files=3))[1]
    assert "manifest.size" in _judge(tmp_path / "f", {"a.csv": "a\n10\n"}, config=GuardConfig(max_file_bytes=2))[1]
    removed = [{"name": "l.parquet", "why": "symbolic link"}]
    assert judge(tmp_path, [], removed=removed).verdict == "block"
    assert _judge(tmp_path / "g", {"c.png": b"not a png"})[0] == "block"


def test_record_level_rules(tmp_path: Path) -> None:
    _, desensitized, _ = residents()
    # Rows with a note: since issue 23 the L4 copy is k-anonymous over every attribute that splits its classes,
    # so only the (redacted, nearly unique) notes still make a row's combination one few others share.
    rows = desensitized[desensitized["备注"].notna()].drop(columns=["公民身份号码"]).head(50)
    _, rules, _ = _judge(tmp_path / "a", {"r.csv": rows.to_csv(index=False)})
    assert "record.matching_rows" in rules  # by name (the fingerprints' row kinds)
    assert "record.rare_combinations" in rules  # and by content: 50 rows, each a combination few others share
    keys = pd.DataFrame({"rid": range(300), "band": ["a", "b", "c"] * 100})
    _, rules, _ = _judge(tmp_path / "b", {"k.csv": keys.to_csv(index=False)})
    assert "record.key_like_column" in rules
    means = pd.DataFrame({"g": range(300), "mean": [i / 7 for i in range(300)]})
    rules_means = _judge(tmp_path / "c", {"m.csv": means.to_csv(index=False)})[1]
    assert "record.key_like_column" in rules_means  # g is an integer key; the float mean is not flagged
    assert not any(f.location == "column mean" for f in _judge(tmp_path / "d", {"m.csv": means.to_csv(index=False)})[2])


def test_aggregates_pass_only_when_derived_from_the_copy(tmp_path: Path) -> None:
    copy = residents()[1]
    counts = copy.groupby(["性别", "出生日期"]).size().rename("人数").reset_index()
    assert _judge(tmp_path / "a", {"t.csv": counts.to_csv(index=False)})[0] == "pass"
    wrong = counts.assign(人数=counts["人数"] + 3)  # not the copy's counts: a person checks it
    assert _judge(tmp_path / "b", {"t.csv": wrong.to_csv(index=False)})[:2] == ("review", {"table.unaccounted"})
    assert _judge(tmp_path / "c", {"t.csv": counts.to_csv(index=False)}, sources={})[1] == {"table.unaccounted"}
    assert _judge(tmp_path / "d", {"r.md": "# 报告\n共 600 条\n"})[1] == {"sdc.free_text"}


def test_small_cells_of_a_derived_table_go_to_review(tmp_path: Path) -> None:
    copy = residents()[1]
    # A k-anonymous copy (k = 10 at L4) has no cell under 10 over its quasi-identifiers (since issue 23 the
    # surname too is one, masked whole): an agency whose minimum cell count is above the copy's k sees them.
    small = copy.groupby(["性别", "民族", "出生日期"]).size().rename("人数").reset_index()
    minimum = int(small["人数"].min()) + 1
    assert minimum > 10
    strict = GuardConfig(sdc=SdcConfig(min_cell_count=minimum))
    verdict, rules, _ = _judge(tmp_path, {"t.csv": small.to_csv(index=False)}, config=strict)
    assert verdict == "review" and "sdc.min_cell_count" in rules


def test_the_operator_reads_only_the_accounted_part_of_a_log(tmp_path: Path) -> None:
    import sys

    prints = {"residents": residents()[2]}
    sources = {"residents": _copy()}
    value = _pseudonym()
    leaked = judge(tmp_path, [], stdout="ok line\n", stderr=f"Traceback\nValueError: {value}\n", fingerprints=prints)
    assert leaked.verdict == "block" and leaked.log.text is None and value not in (leaked.log.excerpt() or "")
    # stdout is free text: never shown, whatever words it uses (a print can spell a record in any words)
    printed = judge(tmp_path, [], stdout="rows 582\nyes no no yes\n", sources=sources, code="print('yes', 'no')")
    assert printed.verdict == "pass" and "582" not in (printed.log.text or "") and "yes" not in (printed.log.text or "")
    assert "stdout withheld" in (printed.log.text or "")
    # an error message that echoes a value of the copy, or a number, is withheld; its type is shown
    echoed = judge(tmp_path, [], stderr="SQL error: Conversion Error: could not convert 汉族\n", sources=sources)
    assert echoed.log.error == "Conversion Error" and "汉族" not in (echoed.log.text or "")
    numbered = judge(tmp_path, [], stderr="ValueError: bad value 17563\n", sources=sources, code="x")
    assert "17563" not in (numbered.log.text or "") and numbered.log.error == "ValueError"
    # of a traceback: where the job's script raised (its own line, from the code) and a known exception type
    code = "import pandas as pd\nd = pd.DataFrame()\nd['nope']\n"
    frames = (
        f'  File "/job/script.py", line 3, in <module>\n    d["forged 汉族"]\n  File "{sys.prefix}/lib/x.py", line 9\n'
    )
    trace = f"Traceback (most recent call last):\n{frames}    do(x)\nKeyError: 'nope'\n"
    text = judge(tmp_path, [], stderr=trace, sources=sources, code=code).log.text or ""
    assert "line 3 of the job's code:\n    d['nope']" in text and "KeyError: 'nope'" in text
    assert sys.prefix not in text and "汉族" not in text and "forged" not in text
    own = judge(tmp_path, [], stderr="X13800138000Error: x\n", sources=sources, code="x").log
    assert own.error is None and "13800138000" not in (own.text or "")  # a job's own exception class: no name


def test_worker_stores_verdict_findings_and_log_and_reports_blocks(initialised: tuple[Instance, Any]) -> None:
    instance = initialised[0]
    licensed(instance.registry, instance.home)
    value = _pseudonym()
    blocked: list[int] = []
    hooks = RegistryHooks(instance.registry)

    def runner(kind: str, code: str, *, datasets: Any, out_dir: Path, limits: Any = None) -> FakeResult:
        files = {"t.csv": f"k,n\n{value},40\n"} if code == "leak" else {"t.csv": "区县,n\n尖山区,5\n岭东区,5\n"}
        return FakeResult(
            stdout=f"printing {value}\n" if code == "leak" else "done\n",
            out_dir=out_dir,
            outputs=_write(out_dir, files),
        )

    def on_block(view: Any) -> None:
        blocked.append(view.id)
        hooks.blocked(view)

    leak = instance.jobs.submit(OPERATOR, ["traffic"], "python", "leak", SCENARIO)
    fine = instance.jobs.submit(OPERATOR, ["traffic"], "python", "fine", SCENARIO)
    worker = instance.worker(
        runner=runner, worker_id="g1", fingerprints=lambda name, version: residents()[2], blocked=on_block
    )
    views = {v.id: v for v in worker.run_pending()}
    assert views[leak].verdict == "block" and views[fine].verdict == "review"  # the copy's own counts, but small
    assert {f["rule"] for f in views[fine].findings} == {"sdc.min_cell_count"}
    shown = views[leak].as_json()
    assert {f["rule"] for f in shown["findings"]} >= {"identifier.fingerprint"}
    assert value not in str(shown["findings"]) and value not in (shown["log"] or "")
    assert views[fine].log_excerpt is not None and "done" not in views[fine].log_excerpt  # stdout: not shown
    assert blocked == [leak]
    violations = instance.registry.monitoring.list_violations(viewer=Actor("demo-agency", "agency"))
    assert [v.subject for v in violations if "job:" in str(v.subject)] == [f"job:{leak}"]
    again = instance.jobs.queue.get(leak) if hasattr(instance.jobs.queue, "get") else None
    if again is not None:
        assert again.verdict == "block" and again.findings == shown["findings"]


# --- differencing across releases (issue 7) ---------------------------------------------------------


def test_totals_are_small_tables_cells_and_column_sums() -> None:
    from sandbox.guard import aggregate_totals

    small = pd.DataFrame({"区县": ["尖山区", "岭东区"], "人数": ["1200", "34"], "rate": ["0.5", "0.25"]})
    assert aggregate_totals(small).tolist() == [34, 1200, 1234]
    large = pd.DataFrame({"n": list(range(100))})
    assert aggregate_totals(large).tolist() == [sum(range(100))]  # a large table's cells are not totals


def test_two_totals_a_handful_apart_are_a_soft_finding_naming_the_earlier_product(tmp_path: Path) -> None:
    """双鸭山 / ACRO differencing: 1,234 released earlier, 1,231 now, isolate a group of three."""
    import numpy as np

    from sandbox.guard import differencing_findings, judge

    earlier = [("人口总量-2026", np.array([1234, 56], dtype=np.int64))]
    (found,) = differencing_findings(np.array([1231], dtype=np.int64), "t.csv", earlier, 10)
    assert found.rule == "sdc.differencing" and found.severity == "soft" and "人口总量-2026" in found.detail
    assert "1231" not in found.detail and "1234" not in found.detail  # no values echoed
    # equal (the same total), far apart, below the threshold itself: nothing; 8 apart isolates 8 people.
    for totals, flagged in (([1234], False), ([1300], False), ([5], False), ([1226], True)):
        hits = differencing_findings(np.array(totals, dtype=np.int64), "t.csv", earlier, 10)
        assert bool(hits) is flagged, totals

    out = tmp_path / "out"
    out.mkdir()
    (out / "total.csv").write_text("区县,人数\n尖山区,1231\n", encoding="utf-8")
    outputs = [{"name": "total.csv", "bytes": (out / "total.csv").stat().st_size, "sha256": "0" * 64}]
    judged = judge(out, outputs, earlier=earlier)
    assert judged.verdict == "review"
    assert any(f.rule == "sdc.differencing" for f in judged.findings)
    assert not any(f.rule == "sdc.differencing" for f in judge(out, outputs).findings)  # nothing released before


def test_the_released_hook_lists_products_of_a_dataset_by_any_operator(tmp_path: Path) -> None:
    from types import SimpleNamespace

    products = [
        SimpleNamespace(name="p1", datasets=[{"name": "residents"}], artifacts=[{"path": "products/p1/a.csv"}]),
        SimpleNamespace(name="p2", datasets=[{"name": "traffic"}], artifacts=[{"path": "products/p2/b.csv"}]),
    ]
    registry = SimpleNamespace(
        config=SimpleNamespace(home=tmp_path), products=SimpleNamespace(list=lambda viewer: products)
    )
    released = RegistryHooks(registry).released
    assert released("residents") == [("p1", [Path("products/p1/a.csv")])]  # storage keys (issue 19), not home paths
    assert released("nothing") == []


def test_the_worker_differences_against_released_totals_read_once(
    initialised: tuple[Any, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each job's outputs are differenced against what was released; a product's totals are read once per
    artifact version, not once per job."""
    import hashlib

    import sandbox.guard as guard_module
    from tests.job_worker_proc import OPERATOR, SCENARIO, FakeResult, licensed

    instance = initialised[0]
    licensed(instance.registry, instance.home)
    released_file = tmp_path / "released.csv"
    released_file.write_text("区县,人数\n全市,1234\n", encoding="utf-8")
    reads: list[int] = []
    real = guard_module.totals_of_files
    monkeypatch.setattr(guard_module, "totals_of_files", lambda paths: reads.append(1) or real(paths))

    def runner(kind: str, code: str, *, out_dir: Path, **_: Any) -> FakeResult:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "total.csv").write_text("区县,人数\n全市,1231\n", encoding="utf-8")
        data = (out_dir / "total.csv").read_bytes()
        return FakeResult(
            outputs=[{"name": "total.csv", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}]
        )

    worker = instance.worker(
        runner=runner, fingerprints=None, released=lambda name: [("人口总量-2026", [released_file])]
    )
    for _ in range(2):
        instance.jobs.submit(OPERATOR, ["traffic"], "sql", "SELECT 1", SCENARIO)
        view = worker.run_once()
        assert view is not None and view.verdict == "review"
        assert any(f["rule"] == "sdc.differencing" and "人口总量-2026" in f["detail"] for f in view.findings)
    assert len(reads) == 1


def test_pandas_metadata_never_leaves_a_parquet_output(tmp_path: Path) -> None:
    """Red team: pandas' own description holds free strings (``creator``) a job can fill; the canonical
    Parquet the operator receives carries no metadata at all."""
    import io
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(residents()[1].groupby("性别").size().rename("人数").reset_index())
    described = json.loads(table.schema.metadata[b"pandas"])
    described["creator"] = {"library": "pyarrow", "version": ",".join(residents()[1]["出生日期"].head(50).astype(str))}
    table = table.replace_schema_metadata({b"pandas": json.dumps(described).encode()})
    tmp_path.mkdir(exist_ok=True)
    pq.write_table(table, tmp_path / "t.parquet")
    data = (tmp_path / "t.parquet").read_bytes()
    outputs = [{"name": "t.parquet", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}]
    judged = judge(tmp_path, outputs, sources={"residents": _copy()})
    received = (tmp_path / "t.parquet").read_bytes()
    assert pq.read_schema(io.BytesIO(received)).metadata is None
    assert judged.outputs[0]["sha256"] == hashlib.sha256(received).hexdigest() != outputs[0]["sha256"]


def test_operators_read_each_rule_once_in_fixed_words() -> None:
    """Red team: a job chooses the counts and positions a finding states ("26310 rows exceed 5000")."""
    from sandbox.guard import operator_findings

    findings = [
        {"rule": "sdc.row_cap", "severity": "soft", "file": "a.json", "location": "table 7", "detail": "26310 rows"},
        {"rule": "sdc.row_cap", "severity": "soft", "file": "a.json", "location": "table 9", "detail": "13640 rows"},
        {"rule": "record.rare_combinations", "severity": "hard", "file": "output 2", "location": "rows", "detail": "7"},
    ]
    shown = operator_findings(findings)
    assert [f["rule"] for f in shown] == ["sdc.row_cap", "record.rare_combinations"]
    assert not any(ch.isdigit() for f in shown for ch in f["detail"] + f["location"])
