"""Odd cells handed to the desensitization as a library: a clear refusal naming the column, never a traceback.

The guide: "Bad input gets a clear error and loses nothing: malformed files, wrong encodings …". Red team
diff22 left open that ``desensitize_table`` raised raw library errors on some tables a caller builds by
hand (bytes cells, lone surrogates, lists and dicts) and that a forked stage's failure came back as a bare
``RuntimeError``. Each case below is refused with a ``DesensitizeError`` that names the column (and the
record where one cell is the cause) and says what to fix; what no check foresaw is still one, naming the
stage, with the original exception kept as its cause (fail closed). 双鸭山市公共数据管理暂行办法 第三十五条:
the copy a sandbox mounts must be a desensitized copy of what the custodian holds — a cell read as its
``repr`` (``b'1101…'``) would be pseudonymized and fingerprinted as a text that is not the identifier.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import pytest

import desensitize.pipeline as pipeline
from desensitize import DesensitizeError, TransformError, profile_columns
from desensitize.forking import Forked
from desensitize.pipeline import desensitize_table
from desensitize.policy import load_policy
from samples import synthetic
from tests.test_pipeline import PEPPER, RESIDENT_TYPES, fake_redactor


@pytest.fixture(scope="module")
def residents() -> pd.DataFrame:
    return synthetic.generate_all(300, seed=23)["residents"]


def with_cells(frame: pd.DataFrame, column: str, cells: dict[int, Any]) -> pd.DataFrame:
    """``frame`` with some cells of ``column`` replaced (the column becomes an ``object`` column, as a frame
    assembled from Python records is)."""
    values = frame[column].astype(object).tolist()
    for position, cell in cells.items():
        values[position] = cell
    return frame.assign(**{column: pd.Series(values, index=frame.index, dtype=object)})


def refused(frame: pd.DataFrame, level: str = "L4", types: Mapping[str, str | None] | None = None) -> DesensitizeError:
    with pytest.raises(DesensitizeError) as caught:
        desensitize_table(
            frame, types or RESIDENT_TYPES, load_policy(level), pepper=PEPPER, text_redactor=fake_redactor
        )
    return caught.value


# --- cells no rule is written for: refused at the entry, by column and record -----------------------


@pytest.mark.parametrize("level", ["L2", "L4"])
@pytest.mark.parametrize(
    ("column", "cells", "record", "says"),
    [
        # A name column read from a GBK export without decoding it: bytes, some not UTF-8 (was UnicodeDecodeError).
        ("姓名", {4: "张三".encode("gbk"), 7: b"\xff\xfe"}, 5, "bytes, not text"),
        # Text decoded with surrogateescape, or CESU-8: lone surrogates (was UnicodeEncodeError).
        ("姓名", {2: "张\udce5三"}, 3, "lone surrogate"),
        ("公民身份号码", {0: "11010519491231002\udc58"}, 1, "lone surrogate"),
        ("备注", {9: "联系人\ud800电话"}, 10, "lone surrogate"),
        # A JSON document's nested fields left in a column (was TypeError: unhashable type).
        ("姓名", {3: ["张三", "李四"]}, 4, "nested value"),
        ("备注", {0: {"备注": "无"}}, 1, "nested value"),
        ("性别", {5: {"男"}}, 6, "nested value"),
    ],
)
def test_bytes_surrogates_and_nested_cells_are_refused_naming_column_and_record(
    residents: pd.DataFrame, level: str, column: str, cells: dict[int, Any], record: int, says: str
) -> None:
    error = refused(with_cells(residents, column, cells), level)
    assert (error.column, error.record, error.stage) == (column, record, "entry")
    assert f"column {column!r}, record {record}" in str(error) and says in str(error)


def test_identifiers_as_utf8_bytes_are_refused_not_pseudonymized_as_their_repr(residents: pd.DataFrame) -> None:
    """Valid UTF-8 bytes went through before: pseudonyms and guard fingerprints of "b'1101…'", not of the ID."""
    ids = residents.assign(公民身份号码=residents["公民身份号码"].map(lambda v: v.encode()))
    error = refused(ids)
    assert error.column == "公民身份号码" and f"({len(ids):,} cells in all)" in str(error)
    assert "decode the column" in str(error)


def test_odd_cells_inside_a_categorical_or_a_python_string_column(residents: pd.DataFrame) -> None:
    categorical = with_cells(residents, "民族", {11: b"\xba\xba"}).astype({"民族": "category"})
    error = refused(categorical)
    assert (error.column, error.record) == ("民族", 12) and "bytes" in str(error)
    python_strings = with_cells(residents, "住址", {6: "黑龙江省\udcff双鸭山市"}).astype({"住址": "string[python]"})
    error = refused(python_strings)
    assert (error.column, error.record) == ("住址", 7) and "surrogate" in str(error)


def test_profiling_refuses_the_same_cells(residents: pd.DataFrame) -> None:
    with pytest.raises(DesensitizeError, match=r"column '姓名', record 2: .*lone surrogate"):
        profile_columns(with_cells(residents, "姓名", {1: "王\udc80五"}))


def test_duplicate_column_labels_are_a_desensitize_error(residents: pd.DataFrame) -> None:
    twice = residents.set_axis(["姓名", "姓名", *residents.columns[2:]], axis=1)
    types = {c: t for c, t in RESIDENT_TYPES.items() if c != "公民身份号码"}
    assert "duplicate column names: ['姓名']" in str(refused(twice, types=types))


# --- a kept column the copy cannot hold: refused before anything is written -------------------------


@pytest.mark.parametrize(
    ("cells", "record", "kinds"),
    [
        # Dates as a clerk typed them beside parsed dates: 1990-13-45, 0000-00-00, 19900230.
        ({0: "1990-13-45", 1: "0000-00-00", 2: "19900230"}, 4, "a date or time where the column's first value is text"),
        # Excel serial numbers beside dates (a column pasted from two workbooks).
        ({0: 32874, 1: 33000.0}, 3, "a date or time where the column's first value is a number"),
    ],
)
def test_a_kept_column_mixing_text_or_numbers_with_dates_is_refused(
    residents: pd.DataFrame, cells: dict[int, Any], record: int, kinds: str
) -> None:
    """L2 keeps a birth date as it is; the copy (Parquet) cannot hold a column of text and dates: the
    registry failed to write it after the whole run (ArrowTypeError). Refused naming the column. The check
    looks at the copy, not the input: the same column under L4 (generalized to years) is desensitized."""
    mixed = with_cells(residents, "出生日期", cells)
    error = refused(mixed, "L2")
    assert (error.column, error.record, error.stage) == ("出生日期", record, "copy")
    assert kinds in str(error) and "convert it to text" in str(error)
    copy = desensitize_table(mixed, RESIDENT_TYPES, load_policy("L4"), pepper=PEPPER, text_redactor=fake_redactor)
    assert len(copy.frame) > 0 and copy.report["columns"][4]["action"] != "keep"


# --- what no check foresaw: still a DesensitizeError naming the stage (fail closed) -----------------


def _failing(kind: type[Exception], text: str) -> Callable[..., Any]:
    def fail(*_: Any, **__: Any) -> Any:
        raise kind(text)

    return fail


def test_an_unforeseen_error_in_a_stage_names_the_stage_and_keeps_the_cause(
    residents: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "measure_utility", _failing(TypeError, "unhashable type: 'list'"))
    error = refused(residents)
    assert isinstance(error.__cause__, TypeError)
    assert "the stage after 'k-anonymity'" in str(error) and "TypeError: unhashable type" in str(error)
    assert "nothing was written" in str(error)


def test_an_unforeseen_error_in_a_column_transform_names_the_column(
    residents: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = getattr(pipeline, "transform_column")  # noqa: B009 (not in the module's __all__)

    def transform(values: pd.Series, rule: Any, **kwargs: Any) -> Any:
        if kwargs["column"] == "手机号码":
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return real(values, rule, **kwargs)

    monkeypatch.setattr(pipeline, "transform_column", transform)
    error = refused(residents)
    assert (error.stage, error.column) == ("transform", "手机号码")
    assert isinstance(error.__cause__, UnicodeEncodeError) and "column '手机号码'" in str(error)


def test_a_transform_error_is_still_itself(residents: pd.DataFrame) -> None:
    """The registry's advice for a grading that does not fit (TransformError) is kept: not re-wrapped."""
    serials = residents.assign(出生日期=range(32874, 32874 + len(residents)))
    with pytest.raises(TransformError, match="numbers that are neither years nor YYYYMMDD dates") as caught:
        desensitize_table(serials, RESIDENT_TYPES, load_policy("L4"), pepper=PEPPER, text_redactor=fake_redactor)
    assert isinstance(caught.value, DesensitizeError) and caught.value.__cause__ is None


# --- forked stages: the child's error type and message come back ------------------------------------


def test_a_forked_childs_error_comes_back_of_its_own_type() -> None:
    def child() -> None:
        raise TransformError("column '手机号码' (cn_phone): action 'mask': no such mask")

    with Forked(child) as job, pytest.raises(TransformError, match="no such mask"):
        job.result()

    def unicode_child() -> None:
        "王\udc80五".encode()

    with Forked(unicode_child) as job, pytest.raises(UnicodeEncodeError, match="surrogates not allowed"):
        job.result()


def test_a_forked_refusal_keeps_its_column_and_record() -> None:
    def child() -> None:
        raise DesensitizeError("column '姓名', record 3: odd", stage="entry", column="姓名", record=3)

    with Forked(child) as job, pytest.raises(DesensitizeError) as caught:
        job.result()
    assert (caught.value.stage, caught.value.column, caught.value.record) == ("entry", "姓名", 3)


def test_a_forked_stage_failing_is_a_desensitize_error(
    residents: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The raw fingerprints hashed in a forked child (forced here on a small table) fail there: the parent
    refuses naming the stage, with the child's own exception as the cause (was RuntimeError)."""
    monkeypatch.setattr(pipeline, "worth_forking", lambda rows, workers=None: True)
    monkeypatch.setattr(pipeline, "raw_prints", _failing(OverflowError, "date value out of range"))
    error = refused(residents)
    assert isinstance(error.__cause__, OverflowError) and "OverflowError: date value out of range" in str(error)
