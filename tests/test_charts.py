"""Charts the platform renders itself from a judged table (issue 15, principle 2).

A spec may only draw from one judged output table and may hold nothing that evaluates, fetches or
draws free-form: every construct refused here is a way to smuggle content past the guard, or to
make the platform reach outside the domain (原始数据不出域).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import vl_convert

from sandbox.guard.charts import MAX_ROWS, MAX_SPEC_BYTES, ChartError, SpecCheck, check_spec, render_svg

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
DISTRICTS = ["宝山区", "尖山区", "岭东区", "四方台区"]


def _bar(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "$schema": SCHEMA,
        "title": "常住人口 by district",
        "description": "Residents per district",
        "data": {"url": "by_district.csv"},
        "mark": {"type": "bar", "color": "#4c78a8"},
        "encoding": {
            "x": {"field": "district", "type": "nominal", "axis": {"title": "区县", "labelAngle": 0}, "sort": "-y"},
            "y": {"field": "residents", "type": "quantitative", "title": "人数", "axis": {"format": ",d"}},
            "color": {"field": "district", "legend": {"title": "Legend title"}},
            "tooltip": [{"field": "district"}, {"field": "residents", "format": ".0f"}],
        },
    }
    spec.update(changes)
    return spec


def _table() -> pa.Table:
    return pa.table({"district": DISTRICTS, "residents": [120, 340, 95, 210], "unused": [1, 2, 3, 4]})


def _check(spec: Any) -> SpecCheck:
    return check_spec(spec if isinstance(spec, str) else json.dumps(spec, ensure_ascii=False))


def _problems(spec: Any) -> str:
    check = _check(spec)
    assert check.problems, f"expected problems for {spec!r}"
    return " | ".join(check.problems)


def test_good_bar_chart_checks_clean_and_renders_its_labels() -> None:
    check = _check(_bar())
    assert check.problems == ()
    assert check.table == "by_district.csv"
    assert check.fields == {"district", "residents"}
    svg = render_svg(json.dumps(_bar(), ensure_ascii=False), _table()).decode("utf-8")
    assert svg.startswith("<svg")
    for label in [*DISTRICTS, "区县", "人数", "常住人口 by district"]:
        assert label in svg
    assert "unused" not in svg  # only the columns the chart uses are inlined


def test_strings_collect_every_free_text() -> None:
    spec = _bar()
    spec["encoding"]["column"] = {"field": "district", "header": {"title": "Header title", "labelColor": "gray"}}
    spec["title"] = {"text": "Main title", "subtitle": ["Sub one", "Sub two"]}
    strings = set(_check(spec).strings)
    expected = {"Main title", "Sub one", "Sub two", "区县", "人数", "Legend title", "Header title", ",d", ".0f"}
    assert expected <= strings
    assert {"Residents per district", "#4c78a8", "gray", SCHEMA} <= strings
    assert "bar" not in strings and "nominal" not in strings  # keywords are not free text


def test_fields_include_sort_and_every_channel() -> None:
    spec = _bar()
    spec["encoding"]["x"]["sort"] = {"field": "rank", "op": "max"}
    spec["encoding"]["order"] = {"field": "seq"}
    spec["encoding"]["detail"] = [{"field": "grp"}]
    assert _check(spec).fields == {"district", "residents", "rank", "seq", "grp"}


def test_layer_sharing_one_table_renders() -> None:
    bars = {
        "mark": "bar",
        "encoding": {"x": {"field": "district"}, "y": {"field": "residents", "type": "quantitative"}},
    }
    mean = {"mark": "rule", "encoding": {"y": {"field": "residents", "aggregate": "mean", "type": "quantitative"}}}
    spec = {"data": {"url": "t.parquet"}, "layer": [bars, mean]}
    assert _check(spec).problems == ()
    repeated = {"layer": [{**bars, "data": {"name": "t.parquet"}}, {**mean, "data": {"url": "t.parquet"}}]}
    assert _check(repeated).problems == () and _check(repeated).table == "t.parquet"
    assert render_svg(json.dumps(spec), _table()).startswith(b"<svg")
    assert render_svg(json.dumps(repeated), _table()) == render_svg(json.dumps(spec), _table())


COMMON_CHARTS: dict[str, dict[str, Any]] = {
    "donut": {
        "mark": {"type": "arc", "innerRadius": 40},
        "encoding": {
            "theta": {"field": "residents", "type": "quantitative", "aggregate": "sum"},
            "color": {"field": "district", "type": "nominal", "scale": {"scheme": "tableau10"}},
        },
    },
    "faceted bars": {
        "mark": "bar",
        "width": {"step": 20},
        "encoding": {
            "x": {"field": "district"},
            "y": {"field": "residents", "type": "quantitative"},
            "column": {"field": "unused", "header": {"title": "组", "labelOrient": "bottom"}},
        },
    },
    "boxplot": {
        "mark": {"type": "boxplot", "extent": "min-max"},
        "encoding": {"y": {"field": "residents", "type": "quantitative"}},
    },
    "heatmap": {
        "mark": "rect",
        "encoding": {
            "x": {"field": "district"},
            "y": {"field": "unused", "type": "ordinal"},
            "color": {"field": "residents", "type": "quantitative", "scale": {"scheme": "blues", "reverse": True}},
        },
    },
    "v6 histogram": {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "mark": "bar",
        "encoding": {"x": {"field": "residents", "bin": {"maxbins": 5}}, "y": {"aggregate": "count"}},
    },
}


@pytest.mark.parametrize("name", sorted(COMMON_CHARTS))
def test_common_chart_kinds_render(name: str) -> None:
    spec = {"data": {"url": "by_district.csv"}, **COMMON_CHARTS[name]}
    assert _check(spec).problems == ()
    assert render_svg(json.dumps(spec, ensure_ascii=False), _table()).startswith(b"<svg")


FORBIDDEN: dict[str, Any] = {
    "inline values": _bar(data={"values": [{"district": "x", "residents": 1}]}),
    "external url": _bar(data={"url": "https://evil.example/t.csv"}),
    "scheme url": _bar(data={"url": "file:t.csv"}),
    "absolute path": _bar(data={"url": "/home/keyong/vault/t.csv"}),
    "dot-dot path": _bar(data={"url": "../other-job/t.csv"}),
    "inner dot-dot": _bar(data={"url": "out/../../t.csv"}),
    "not a table": _bar(data={"url": "notes.txt"}),
    "url and format": _bar(data={"url": "t.csv", "format": {"type": "csv"}}),
    "generator": _bar(data={"sequence": {"start": 0, "stop": 10}}),
    "no data": {k: v for k, v in _bar().items() if k != "data"},
    "calculate": _bar(transform=[{"calculate": "datum.residents * 2", "as": "r2"}]),
    "filter expression": _bar(transform=[{"filter": "datum.residents > 100"}]),
    "lookup": _bar(transform=[{"lookup": "district", "from": {"data": {"url": "x.csv"}, "key": "k"}}]),
    "params": _bar(params=[{"name": "p", "select": "interval"}]),
    "selection v4": _bar(selection={"brush": {"type": "interval"}}),
    "condition with param": _bar(encoding={"color": {"condition": {"param": "p", "value": "red"}, "value": "blue"}}),
    "condition with test": _bar(encoding={"color": {"condition": {"test": "datum.x", "value": "red"}}}),
    "expr value": _bar(mark={"type": "bar", "opacity": {"expr": "random()"}}),
    "signal": _bar(width={"signal": "w"}),
    "label expr": _bar(encoding={"x": {"field": "district", "axis": {"labelExpr": "datum.label"}}}),
    "image mark": _bar(mark="image"),
    "text mark": _bar(mark={"type": "text"}),
    "geoshape mark": _bar(mark="geoshape"),
    "href channel": _bar(encoding={"href": {"field": "district"}}),
    "url channel": _bar(encoding={"url": {"field": "district"}}),
    "text channel": _bar(encoding={"text": {"field": "district"}}),
    "mark href": _bar(mark={"type": "bar", "href": "https://evil.example/"}),
    "svg path shape": _bar(mark={"type": "point", "shape": "M0,0L10,10L0,10Z"}),
    "svg path in range": _bar(encoding={"shape": {"field": "district", "scale": {"range": ["M0,0L1,1"]}}}),
    "svg path shape value": _bar(encoding={"shape": {"value": "M0,0L1,1Z"}}),
    "svg path legend symbol": _bar(encoding={"color": {"field": "district", "legend": {"symbolType": "M0,0L1,1"}}}),
    "paint server fill": _bar(mark={"type": "bar", "fill": "url(https://evil.example/#g)"}),
    "unknown top-level key": _bar(usermeta={"k": "v"}),
    "config": _bar(config={"font": "serif"}),
    "datasets": _bar(datasets={"t": [{"a": 1}]}),
    "concat": {"hconcat": [_bar(), _bar()]},
    "facet operator": {"facet": {"row": {"field": "district"}}, "spec": _bar()},
    "nested layer": {"data": {"url": "t.csv"}, "layer": [{"layer": [{"mark": "bar"}]}]},
    "mark and layer": _bar(layer=[{"mark": "bar"}]),
    "layer with different data": {
        "layer": [{"mark": "bar", "data": {"url": "a.csv"}}, {"mark": "rule", "data": {"url": "b.csv"}}]
    },
    "layer with inline data": {"data": {"url": "a.csv"}, "layer": [{"mark": "bar", "data": {"values": []}}]},
    "layer without data": {"layer": [{"mark": "bar", "data": {"url": "a.csv"}}, {"mark": "rule"}]},
    "unknown schema": _bar(**{"$schema": "https://evil.example/schema.json"}),
    "nested field path": _bar(encoding={"x": {"field": "a.b"}}),
    "custom format type": _bar(encoding={"x": {"field": "district", "formatType": "myFormatter"}}),
    "huge canvas": _bar(width=100000),
    "container width": _bar(width="container"),
    "top-level array": [_bar()],
}


@pytest.mark.parametrize("name", sorted(FORBIDDEN))
def test_forbidden_construct_is_a_problem(name: str) -> None:
    assert _problems(FORBIDDEN[name])
    with pytest.raises(ChartError, match="cannot be rendered"):
        render_svg(json.dumps(FORBIDDEN[name]), _table())


def test_problems_say_why() -> None:
    assert "inline data" in _problems(FORBIDDEN["inline values"])
    assert "transforms are not allowed" in _problems(FORBIDDEN["calculate"])
    assert "evaluates an expression" in _problems(FORBIDDEN["condition with test"])
    assert "evaluates an expression" in _problems(FORBIDDEN["expr value"])
    assert "same table" in _problems(FORBIDDEN["layer with different data"])
    assert "/encoding/href" in _problems(FORBIDDEN["href channel"])


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("NaN", '{"mark": "bar", "width": NaN}'),
        ("Infinity", '{"mark": "bar", "width": Infinity}'),
        ("overflowing number", '{"mark": "bar", "width": 1e999}'),
        ("duplicate key", '{"mark": "bar", "mark": "image"}'),
        ("trailing text", '{"mark": "bar"} {}'),
        ("comment", '{"mark": "bar" /* c */}'),
        ("lone surrogate", '{"mark": "bar", "title": "\\ud800"}'),
        ("BOM", '\ufeff{"mark": "bar"}'),
        ("too deep", '{"title": ' + "[" * 40 + "]" * 40 + "}"),
        ("far too deep", "[" * 200_000 + "]" * 200_000),
        ("oversized", json.dumps(_bar(description="x" * MAX_SPEC_BYTES))),
    ],
)
def test_strict_json(name: str, text: str) -> None:
    check = check_spec(text)
    assert check.problems and check.problems[0].startswith("not strict JSON"), check.problems
    assert check.table is None and check.strings == ()


def test_bytes_must_be_utf8() -> None:
    good = json.dumps(_bar(), ensure_ascii=False).encode("utf-8")
    assert check_spec(good).problems == ()
    assert check_spec(good.decode("utf-8").encode("gb18030")).problems


def test_fields_missing_from_table_raise() -> None:
    table = pa.table({"district": DISTRICTS})
    with pytest.raises(ChartError, match="residents"):
        render_svg(json.dumps(_bar()), table)


def test_too_many_rows_raise() -> None:
    table = pa.table({"district": ["a"] * (MAX_ROWS + 1), "residents": [1] * (MAX_ROWS + 1)})
    with pytest.raises(ChartError, match="rows"):
        render_svg(json.dumps(_bar()), table)


def test_uncharted_column_types_raise() -> None:
    table = pa.table({"district": pa.array([b"\x00\x01"] * 4), "residents": [1, 2, 3, 4]})
    with pytest.raises(ChartError, match="cannot be charted"):
        render_svg(json.dumps(_bar()), table)


def test_temporal_decimal_and_missing_values_render() -> None:
    import decimal

    spec = {
        "data": {"url": "monthly.parquet"},
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {"field": "month", "type": "temporal", "timeUnit": "yearmonth", "axis": {"format": "%Y-%m"}},
            "y": {"field": "rate", "type": "quantitative", "scale": {"zero": False}},
            "size": {"field": "share", "type": "quantitative"},
        },
    }
    table = pa.table(
        {
            "month": [dt.date(2025, m, 1) for m in range(1, 7)],
            "rate": [1.5, None, 2.25, 3.0, float("nan"), float("inf")],
            "share": pa.array([decimal.Decimal(f"0.{m}") for m in range(1, 7)], pa.decimal128(5, 2)),
        }
    )
    svg = render_svg(json.dumps(spec), table).decode("utf-8")
    assert "2025-01" in svg


def test_rendering_is_deterministic_in_and_across_processes() -> None:
    text = json.dumps(_bar(), ensure_ascii=False)
    first = render_svg(text, _table())
    assert all(render_svg(text, _table()) == first for _ in range(3))
    code = (
        "import json, sys, pyarrow as pa; from sandbox.guard.charts import render_svg;"
        f"t = pa.table({{'district': {DISTRICTS!r}, 'residents': [120, 340, 95, 210]}});"
        "sys.stdout.buffer.write(render_svg(sys.stdin.read(), t))"
    )
    root = Path(__file__).resolve().parents[1]
    other = subprocess.run([sys.executable, "-c", code], input=text.encode(), capture_output=True, cwd=root, check=True)
    assert other.stdout == first


def test_schema_url_is_never_fetched_and_vl_convert_refuses_data_urls() -> None:
    """Defence in depth: even a spec that slipped past check_spec could not make vl-convert fetch."""
    leaked = {"data": {"url": "http://127.0.0.1:9/t.csv"}, "mark": "bar"}
    with pytest.raises(ValueError, match="not allowed"):
        vl_convert.vegalite_to_svg(json.dumps(leaked), allowed_base_urls=[])
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace not installed: cannot watch for sockets")
    code = (
        "import json, pyarrow as pa; from sandbox.guard.charts import render_svg;"
        f"render_svg(json.dumps({_bar()!r}), pa.table({{'district': ['a'], 'residents': [1]}}))"
    )
    root = Path(__file__).resolve().parents[1]
    cmd = [strace, "-f", "-qq", "-e", "trace=socket,connect", sys.executable, "-c", code]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=root)
    if run.returncode != 0 and "ptrace" in run.stderr:
        pytest.skip(f"strace cannot trace here: {run.stderr.strip()[:200]}")
    assert run.returncode == 0, run.stderr[-2000:]
    network = [line for line in run.stderr.splitlines() if "AF_INET" in line]
    assert network == [], network


def test_render_time_for_1000_rows() -> None:
    n = 1000
    table = pa.table(
        {
            "x": [i % 97 for i in range(n)],
            "y": [(i * 37) % 101 / 3 for i in range(n)],
            "group": [DISTRICTS[i % 4] for i in range(n)],
        }
    )
    scatter = {
        "data": {"url": "points.csv"},
        "mark": "point",
        "encoding": {
            "x": {"field": "x", "type": "quantitative"},
            "y": {"field": "y", "type": "quantitative"},
            "color": {"field": "group", "type": "nominal"},
        },
    }
    bars = {
        "data": {"url": "points.csv"},
        "mark": "bar",
        "encoding": {"x": {"field": "group"}, "y": {"field": "y", "aggregate": "mean", "type": "quantitative"}},
    }
    for name, spec in (("scatter", scatter), ("aggregated bar", bars)):
        started = time.perf_counter()
        svg = render_svg(json.dumps(spec), table)
        took = time.perf_counter() - started
        print(f"\nrender_svg {name}, {n} rows: {took * 1000:.0f} ms, {len(svg):,} bytes of SVG")
        assert svg.startswith(b"<svg")
