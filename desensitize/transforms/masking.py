"""Suppression (抑制) by masking (屏蔽): characters of a value, or a whole given name, hidden.

GB/T 37964-2019 附录A: the kept part (a surname, the first and last digits) stays readable, the
rest is replaced by a mask character; codes are masked in their canonical form.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from desensitize.transforms.arrow import nfkc, per_distinct, str_series, text_arrow
from desensitize.transforms.pseudonyms import COMPACT_FAMILIES, normalise_identifiers

__all__ = ["COMPOUND_SURNAMES", "mask", "mask_name"]


def mask(
    values: pd.Series, *, keep_start: int = 0, keep_end: int = 0, char: str = "*", family: str | None = None
) -> pd.Series:
    """Characters between the first ``keep_start`` and last ``keep_end`` replaced by ``char``.

    Codes are masked in canonical form (so "+86 138-0279-0360" and "13802790360" mask alike).
    A value no longer than ``keep_start + keep_end`` is masked whole: showing all of it would
    not be masking.
    """
    if family is not None and family in COMPACT_FAMILIES:
        array = normalise_identifiers(values, family)
    else:
        array = pc.utf8_trim_whitespace(nfkc(text_arrow(values)))
    length = pc.utf8_length(array)
    kept = keep_start + keep_end
    hidden = pc.max_element_wise(pc.subtract(length, kept), 0)
    start = pc.utf8_slice_codeunits(array, 0, keep_start)
    end = pc.utf8_slice_codeunits(array, -keep_end) if keep_end else pa.scalar("", pa.large_string())
    stars = pc.binary_repeat(pa.scalar(char, pa.large_string()), hidden)
    partial = pc.binary_join_element_wise(start, stars, end, pa.scalar("", pa.large_string()))
    whole = pc.binary_repeat(pa.scalar(char, pa.large_string()), length)
    return str_series(pc.if_else(pc.less_equal(length, kept), whole, partial), values.index)


#: Two-character surnames (复姓) kept whole by ``mask_name``.
COMPOUND_SURNAMES: tuple[str, ...] = (
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐", "长孙", "宇文", "夏侯",
    "轩辕", "端木", "独孤", "南宫", "西门", "万俟", "司徒", "司空", "澹台", "公冶", "太叔", "申屠", "呼延",
    "钟离", "宗政", "濮阳", "淳于", "单于", "闻人", "赫连", "百里", "东郭", "左丘", "第五", "拓跋",
)  # fmt: skip


def mask_name(values: pd.Series, *, stars: int | None = 2, char: str = "*") -> pd.Series:
    """The surname kept, the given name masked: 张三 -> 张**, 欧阳娜娜 -> 欧阳**.

    With ``stars`` a fixed number of mask characters also hides the given name's length (one
    or two characters, itself a hint); with None there is one per hidden character. Computed once
    per distinct name.
    """
    text = str_series(text_arrow(values), values.index)  # normalised per distinct value, in ``masked``
    compound = pa.array(COMPOUND_SURNAMES, type=pa.large_string())
    star = pa.scalar(char, pa.large_string())

    def masked(raw: pa.Array) -> pa.Array:
        names = pc.replace_substring_regex(nfkc(raw), r"\s+", "")
        first_two = pc.utf8_slice_codeunits(names, 0, 2)
        is_compound = pc.is_in(first_two, value_set=compound)
        surname = pc.if_else(is_compound, first_two, pc.utf8_slice_codeunits(names, 0, 1))
        if stars is None:
            hidden = pc.max_element_wise(pc.subtract(pc.utf8_length(names), pc.utf8_length(surname)), 1)
        else:
            hidden = pa.scalar(stars, pa.int64())
        joined = pc.binary_join_element_wise(surname, pc.binary_repeat(star, hidden), pa.scalar("", pa.large_string()))
        return pc.if_else(pc.equal(names, ""), pa.scalar(None, pa.large_string()), joined)

    return str_series(per_distinct(text, masked), values.index)
