"""The desensitization actions of a policy, vectorized over a whole column.

Why vectorized: a desensitized copy is made of every catalogued table, some with millions of rows,
on a two-core host. Per-cell Python on pandas 3's Arrow strings costs about 6x a vectorized pass
(PITFALLS.md), so every action here works on whole columns with pyarrow.compute, numpy or DuckDB,
and anything expensive per value (a keyed hash, a regular expression with captures) runs once per
*distinct* value and is mapped back through the codes of ``pd.factorize``.

The techniques are those of GB/T 37964-2019 附录A (suppression 抑制 incl. masking 屏蔽,
pseudonymization 假名化, generalization 泛化, randomization 随机化); ``desensitize.policy.TECHNIQUES``
maps each action to its technique. Nulls stay null under every action: "unknown" must not turn
into a value, and a value must not turn into "unknown" unless the action suppresses it.

One module per technique: ``masking``, ``pseudonyms`` (keyed pseudonyms, 去标识化 in the sense of
个人信息保护法 第七十三条), ``generalization`` (with ``dates`` and ``banding``, whose generalized
dates and numbers stay dates and numbers), ``randomization``; the Arrow plumbing they share is
``arrow``, and ``actions`` applies one rule of a policy to one column.
"""

from desensitize.transforms.actions import (
    TextRedactor,
    Transformed,
    apply_rule,
    describe,
    redact_text,
    transform_column,
)
from desensitize.transforms.arrow import arrow_strings, as_text, mostly_distinct, nfkc, on_rows
from desensitize.transforms.banding import LABEL_SUFFIX, band, band_column, band_labels
from desensitize.transforms.dates import date_band, date_month, date_year
from desensitize.transforms.errors import TransformError
from desensitize.transforms.generalization import ADDRESS_LEVELS, address_parts, generalize_address, round_values
from desensitize.transforms.masking import COMPOUND_SURNAMES, mask, mask_name
from desensitize.transforms.pseudonyms import (
    DUCKDB_MIN_VALUES,
    PSEUDONYM_HEX_CHARS,
    keyed_hex,
    normalise_identifiers,
    pseudonymize,
)
from desensitize.transforms.pseudonyms import _keyed_hex_python as _keyed_hex_python  # tests compare it with DuckDB
from desensitize.transforms.randomization import randomize

__all__ = [
    "ADDRESS_LEVELS",
    "COMPOUND_SURNAMES",
    "DUCKDB_MIN_VALUES",
    "LABEL_SUFFIX",
    "PSEUDONYM_HEX_CHARS",
    "TextRedactor",
    "TransformError",
    "Transformed",
    "address_parts",
    "apply_rule",
    "arrow_strings",
    "as_text",
    "band",
    "band_column",
    "band_labels",
    "date_band",
    "date_month",
    "date_year",
    "describe",
    "generalize_address",
    "keyed_hex",
    "mask",
    "mask_name",
    "mostly_distinct",
    "nfkc",
    "normalise_identifiers",
    "on_rows",
    "pseudonymize",
    "randomize",
    "redact_text",
    "round_values",
    "transform_column",
]
