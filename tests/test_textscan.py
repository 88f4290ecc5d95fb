"""The column scanner: spans, redaction, nulls, the dataset's own names, and equality with presidio.

``find_entities`` must give the spans presidio's ``AnalyzerEngine`` (``recognizers.build_analyzer``,
same recognizers) gives, once presidio's overlapping results of different types are resolved the
way the scanner resolves them (presidio's analyzer leaves that to its anonymizer).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from desensitize import recognizers
from desensitize.identifiers import id_check_char
from desensitize.textscan import Span, find_entities, redact, resolve_overlaps
from samples import labelled, synthetic

ID_BODY = "23050219800101123"
ID = ID_BODY + id_check_char(ID_BODY)


def test_spans_carry_row_offsets_type_and_score() -> None:
    texts = ["联系人王建国，电话13812345678。", None, f"身份证号{ID}"]
    spans = find_entities(texts)
    assert spans == [
        Span(0, 3, 6, "PERSON", 0.8),
        Span(0, 9, 20, "CN_MOBILE", 0.8),
        Span(2, 4, 22, "CN_RESIDENT_ID", 1.0),  # validated by its check character: score 1.0
    ]
    assert texts[0][9:20] == "13812345678"


def test_rows_are_the_positions_of_the_input_not_its_index() -> None:
    series = pd.Series(["无", "电话13812345678"], index=[10, 20])
    assert [s.row for s in find_entities(series)] == [1]


def test_entities_never_cross_rows() -> None:
    """A number split over two rows is two fragments, not one phone number."""
    assert find_entities(["电话1381234", "5678号"]) == []
    assert find_entities(["黑龙江省双鸭山市", "尖山区新兴大街12号"]) == [Span(1, 0, 10, "CN_ADDRESS", 0.65)]


def test_texts_holding_the_row_separator_are_still_scanned_correctly() -> None:
    texts = ["a\x00电话13812345678", "\x00\x01", "手机13912345678"]
    spans = find_entities(texts)
    assert [(s.row, texts[s.row][s.start : s.end]) for s in spans] == [(0, "13812345678"), (2, "13912345678")]


def test_entities_filter_and_unknown_entity_types() -> None:
    text = [f"联系人王建国，身份证号{ID}"]
    assert [s.entity_type for s in find_entities(text, entities=["CN_RESIDENT_ID"])] == ["CN_RESIDENT_ID"]
    with pytest.raises(ValueError, match="unknown entity types"):
        find_entities(text, entities=["SSN"])


def test_redact_replaces_entities_and_keeps_nulls_index_name_and_dtype() -> None:
    notes = pd.Series(
        ["联系人王建国，电话138 1234 5678", None, "无", f"身份证号{ID}，住尖山区和平路5号"],
        index=["a", "b", "c", "d"],
        name="备注",
        dtype="str",
    )
    out = redact(notes)
    assert out.tolist()[0] == "联系人<PERSON>，电话<CN_MOBILE>"
    assert pd.isna(out["b"])
    assert out["c"] == "无"
    assert out["d"] == "身份证号<CN_RESIDENT_ID>，住<CN_ADDRESS>"
    assert out.index.tolist() == notes.index.tolist() and out.name == "备注" and out.dtype == notes.dtype


@pytest.mark.parametrize("dtype", ["string[pyarrow]", "string[python]", "category"])
def test_redact_other_text_dtypes_and_duplicate_index(dtype: str) -> None:
    notes = pd.Series(["电话13812345678", None, "无"], index=[7, 7, 8], dtype=dtype)
    out = redact(notes)
    assert out.iloc[0] == "电话<CN_MOBILE>" and pd.isna(out.iloc[1]) and out.iloc[2] == "无"
    assert out.index.tolist() == [7, 7, 8]
    assert out.dtype == (object if dtype == "category" else notes.dtype)


def test_redact_object_columns_empty_columns_and_non_strings() -> None:
    mixed = pd.Series(["电话13812345678", None, 13912345678, np.nan], dtype=object)
    out = redact(mixed)
    assert out.tolist()[:3] == ["电话<CN_MOBILE>", None, "<CN_MOBILE>"]
    assert pd.isna(out.iloc[3]) and out.dtype == object
    empty = pd.Series([], dtype="str")
    assert redact(empty).tolist() == [] and find_entities(empty) == []


def test_names_from_the_dataset_are_found_without_context() -> None:
    notes = pd.Series(["经核实王建国已搬离", "经核实欧阳娜娜已搬离"])  # no context word, inside a clause
    assert find_entities(notes) == []
    spans = find_entities(notes, names=pd.Series(["王建国", "欧阳娜娜", None]))
    assert [(s.row, notes[s.row][s.start : s.end]) for s in spans] == [(0, "王建国"), (1, "欧阳娜娜")]
    assert redact(notes, names=["王建国"]).tolist()[0] == "经核实<PERSON>已搬离"


def test_overlaps_resolve_by_score_then_length_then_entity_order() -> None:
    spans = [
        Span(0, 0, 10, "CN_ADDRESS", 0.65),
        Span(0, 5, 8, "PERSON", 0.8),  # higher score wins over the longer address
        Span(1, 0, 18, "CN_USCC", 1.0),
        Span(1, 0, 18, "CN_RESIDENT_ID", 1.0),  # same span and score: the entity listed first
        Span(2, 0, 4, "PERSON", 0.8),
        Span(2, 0, 6, "PERSON", 0.8),  # same type, contained, equal score: the longer stays
        Span(3, 0, 3, "CN_PASSPORT", 0.6),
        Span(3, 5, 9, "CN_PASSPORT", 0.6),
    ]
    assert resolve_overlaps(spans) == [
        Span(0, 5, 8, "PERSON", 0.8),
        Span(1, 0, 18, "CN_RESIDENT_ID", 1.0),
        Span(2, 0, 6, "PERSON", 0.8),
        Span(3, 0, 3, "CN_PASSPORT", 0.6),
        Span(3, 5, 9, "CN_PASSPORT", 0.6),
    ]
    assert resolve_overlaps([]) == []


def test_clerks_remarks_of_the_residents_table_are_redacted() -> None:
    """The 备注 of the synthetic residents (written by another module) keep no identifier and no name."""
    people = synthetic.residents(1500, seed=21)
    notes = people["备注"]
    out = redact(notes, names=people["姓名"])
    present = out.dropna()
    assert len(present) == notes.notna().sum() > 300
    assert not present.str.contains(r"[0-9]{7,}").any()  # phones, IDs, landlines: gone
    assert not present.str.contains(r"[0-9]{3} [0-9]{4} [0-9]{4}").any()
    assert present.str.contains("<PERSON>").mean() > 0.75
    words = pd.Series(people["姓名"].unique())
    leftover = [n for n in words if present.str.contains(n, regex=False).any()]
    assert leftover == []


@pytest.fixture(scope="module")
def analyzer_and_set() -> tuple[object, labelled.LabelledSet]:
    labelled_set = labelled.generate(600, 0, seed=3)
    return recognizers.build_analyzer(names=labelled_set.names), labelled_set


def presidio_resolved(analyzer: object, texts: list[str]) -> list[Span]:
    raw = [
        Span(row, r.start, r.end, r.entity_type, r.score)
        for row, text in enumerate(texts)
        for r in analyzer.analyze(text, language="zh")  # type: ignore[attr-defined]
    ]
    return resolve_overlaps(raw)


def test_scanner_spans_equal_presidio_spans_on_generated_notes(
    analyzer_and_set: tuple[object, labelled.LabelledSet],
) -> None:
    analyzer, labelled_set = analyzer_and_set
    texts = labelled_set.sentences.tolist()
    expected = presidio_resolved(analyzer, texts)
    got = find_entities(texts, names=labelled_set.names)
    assert len(got) > 600
    assert [(s.row, s.start, s.end, s.entity_type) for s in got] == [
        (s.row, s.start, s.end, s.entity_type) for s in expected
    ]
    assert [s.score for s in got] == pytest.approx([s.score for s in expected])


@pytest.mark.slow
def test_scanner_equals_presidio_on_many_notes_and_cells() -> None:
    labelled_set = labelled.generate(6000, 300, seed=17)
    analyzer = recognizers.build_analyzer(names=labelled_set.names)
    texts = labelled_set.sentences.tolist() + labelled_set.cells.stack().dropna().tolist()
    expected = presidio_resolved(analyzer, texts)
    assert find_entities(texts, names=labelled_set.names) == expected


def test_a_full_precision_decimal_is_no_bank_card() -> None:
    """A float's 16 fractional digits start with 3-6 and pass Luhn one time in ten: a model metric such as
    0.5674677435240816 must not block a job; the same digits standing alone are still a card."""
    found = find_entities(pd.Series(['{"mia_auc": 0.5674677435240816}', "卡 5674677435240816 号"]))
    assert [(s.row, s.entity_type) for s in found] == [(1, "CN_BANK_CARD")]


def test_a_decimals_digits_are_no_phone_number() -> None:
    """One float in five printed at full precision has 11 fractional digits, and one in twenty of those
    read as a mobile (17563.18839598282) or a landline (34355.04826667761); a sum of 1.5e10 yuan has an
    11-digit integer part: a DP mean or sum must not block a job. The same digits standing alone or
    ending a sentence are still numbers to find."""
    texts = pd.Series(
        [
            "均值 17563.18839598282",
            "34355.04826667761",
            "合计 18839598282.25",
            "电话 18839598282",
            "04826667761",
            "请拨18839598282.",
        ]
    )
    found = find_entities(texts)
    assert [(s.row, s.entity_type) for s in found] == [(3, "CN_MOBILE"), (4, "CN_LANDLINE"), (5, "CN_MOBILE")]


def test_random_decimals_read_as_no_identifier() -> None:
    """Regression for a flaky guard block: 20,000 random means over the income bounds, none an identifier."""
    rng = np.random.default_rng(11)
    texts = pd.Series([str(v) for v in rng.uniform(3000, 40000, 20_000)])
    assert find_entities(texts) == []


def test_an_18_digit_id_written_as_a_decimal_is_still_found() -> None:
    """No float prints 18 digits on either side of its point: "1.<ID>" is deliberate, so it is found."""
    ident = "11010519491231002X"
    found = find_entities(pd.Series([f"1.{ident}", f"{ident[:-1]}.5"]))
    assert [(s.row, s.entity_type) for s in found] == [(0, "CN_RESIDENT_ID")]
