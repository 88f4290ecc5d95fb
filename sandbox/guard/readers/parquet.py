"""Strict Parquet: every physical column (the pandas index too), every leaf of nested columns, and
the metadata as content; the canonical file is the platform's own re-write of those columns.

Why: ``pd.read_parquet`` turns the pandas index back into an index (not a column) and hides the
schema's and fields' key-value metadata, and a Parquet file has room the logical table never shows
(page statistics, column-chunk metadata, padding between pages). A reader cannot audit those
bytes, so the operator never receives them: the guard reads the table with Arrow and writes the
columns again, without any metadata; what leaves is exactly the table that was judged. Binary
columns are refused (no reader can say what they hold); metadata other than pandas' own description
is refused (statistical tables need none); pandas' description is probed as text (a RangeIndex's
start and stop are numbers an operator chooses) and dropped.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sandbox.guard.content import Content, Table
from sandbox.guard.readers.strict import Encoded, character_findings, dictionary_codes, hard, hidden_cells

FORMAT = "Parquet"
#: Decompressed size and row count beyond which a file is refused before it is read (a bomb).
MAX_ROWS = 20_000_000
MAX_UNCOMPRESSED_BYTES = 2 * 1024**3
ALLOWED_SCHEMA_METADATA = {b"pandas", b"ARROW:schema"}
PANDAS_KEYS = {"index_columns", "column_indexes", "columns", "creator", "pandas_version", "attributes"}


def _leaf_type_problem(kind: pa.DataType) -> str | None:
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return "a binary column: write text or numbers"
    if isinstance(kind, pa.ExtensionType):
        return "an extension-typed column: write plain text or numbers"
    if pa.types.is_dictionary(kind):
        return _leaf_type_problem(kind.value_type)
    if pa.types.is_struct(kind):
        return next((p for f in kind for p in [_leaf_type_problem(f.type)] if p), None)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _leaf_type_problem(kind.value_type)
    if pa.types.is_map(kind):
        return _leaf_type_problem(kind.key_type) or _leaf_type_problem(kind.item_type)
    if pa.types.is_union(kind):
        return "a union-typed column: write plain text or numbers"
    return None


def _nested(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_struct(kind)
        or pa.types.is_list(kind)
        or pa.types.is_large_list(kind)
        or pa.types.is_fixed_size_list(kind)
        or pa.types.is_map(kind)
    )


def _leaves(array: pa.Array) -> list[pa.Array]:
    """Every scalar leaf of a (possibly nested) column, as flat arrays."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_struct(array.type):
        return [leaf for i in range(array.type.num_fields) for leaf in _leaves(array.field(i))]
    if pa.types.is_map(array.type):
        return _leaves(array.keys) + _leaves(array.items)
    if pa.types.is_list(array.type) or pa.types.is_large_list(array.type) or pa.types.is_fixed_size_list(array.type):
        return _leaves(pc.list_flatten(array))
    return [array]


def _string_leaves(array: pa.Array) -> list[pa.Array]:
    return [leaf for leaf in _leaves(array) if pa.types.is_string(leaf.type) or pa.types.is_large_string(leaf.type)]


def _glued(array: pa.Array) -> pa.Array | None:
    """Each cell of a list column joined into one string (a key split over a list's items)."""
    if not (pa.types.is_list(array.type) or pa.types.is_large_list(array.type)):
        return None
    value = array.type.value_type
    if not (pa.types.is_string(value) or pa.types.is_large_string(value) or pa.types.is_integer(value)):
        return None
    strings = pc.cast(array, pa.list_(pa.large_string()))
    return pc.binary_join(strings, "")


def _as_text(array: pa.Array) -> pd.Series:
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        return _factorized_text(array)[0]
    try:
        return pd.Series(pc.cast(array, pa.large_string()).to_pandas(), dtype=object)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pd.Series([None if v is None else str(v) for v in array.to_pylist()], dtype=object)


def _factorized_text(array: pa.Array) -> tuple[pd.Series, Encoded]:
    """A string column as Python strings, with its factorization (codes, -1 for null; distinct
    values in order of first appearance, as ``pd.factorize`` gives them). Arrow's dictionary encoding
    does both at C speed: each distinct string becomes one Python object, shared by its cells."""
    encoded = dictionary_codes(array)
    codes, uniques = encoded.codes, encoded.uniques
    cells = np.empty(len(codes), dtype=object)
    present = codes >= 0
    cells[present] = uniques[codes[present]]
    cells[~present] = None
    return pd.Series(cells, dtype=object), encoded


def _decoded(array: pa.Array) -> pa.Array:
    return array.dictionary_decode() if pa.types.is_dictionary(array.type) else array


def _is_text(array: pa.Array) -> bool:
    kind = array.type.value_type if pa.types.is_dictionary(array.type) else array.type
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _column(array: pa.Array) -> pd.Series:
    """A flat column as pandas: numbers and booleans as such, every other type as its text."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    kind = array.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return array.to_pandas()
    if pa.types.is_decimal(kind):
        return pd.Series(pc.cast(array, pa.float64()).to_pandas(), dtype="float64")
    return _as_text(array)


def _metadata(content: Content, schema: pa.Schema, name: str) -> bool:
    """Check the schema's and fields' metadata; False when the file must be refused."""
    extra = set(schema.metadata or {}) - ALLOWED_SCHEMA_METADATA
    fields_with_metadata = [i for i, f in enumerate(schema) if f.metadata]
    if extra or fields_with_metadata:
        where = "schema" if extra else f"column {fields_with_metadata[0] + 1}"
        content.findings.append(
            hard("parquet.metadata", name, where, "custom key-value metadata: write the table without metadata")
        )
        return False
    raw = (schema.metadata or {}).get(b"pandas")
    if raw is None:
        return True
    try:
        described = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        content.findings.append(hard("parquet.metadata", name, "schema", "pandas metadata that is not JSON"))
        return False
    if not isinstance(described, dict) or set(described) - PANDAS_KEYS or described.get("attributes"):
        content.findings.append(
            hard("parquet.metadata", name, "schema", "pandas metadata beyond its own description (e.g. attrs)")
        )
        return False
    texts: list[str] = []
    stack: list[object] = [described]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            texts.extend(str(k) for k in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif item is not None:
            texts.append(str(item))
    content.add_text("pandas metadata", texts)
    content.findings += character_findings("\n".join(texts), name, "pandas metadata")
    return True


def read(path: Path, name: str) -> Content:
    content = Content(name, FORMAT)
    try:
        handle = pq.ParquetFile(path)
    except (pa.ArrowException, OSError):
        content.findings.append(hard("parquet.malformed", name, "file", "not a readable Parquet file"))
        return content
    meta = handle.metadata
    uncompressed = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if meta.num_rows > MAX_ROWS or uncompressed > MAX_UNCOMPRESSED_BYTES:
        content.findings.append(hard("parquet.size", name, "file", "too many rows or bytes once decompressed"))
        return content
    try:
        table = handle.read(use_pandas_metadata=False)
    except (pa.ArrowException, OSError, ValueError):
        content.findings.append(hard("parquet.malformed", name, "file", "the column data cannot be read"))
        return content
    schema = table.schema
    for i, field in enumerate(schema):
        problem = _leaf_type_problem(field.type)
        if problem:
            content.findings.append(hard("parquet.type", name, f"column {i + 1}", problem))
    if content.findings or not _metadata(content, schema, name):
        return content
    table = table.combine_chunks()
    header = [str(n) for n in schema.names]
    content.findings += character_findings("\n".join(header), name, "header")
    columns: list[pd.Series] = []
    seeds: dict[int, tuple[np.ndarray, pd.Series]] = {}
    nested = False
    for i, field in enumerate(schema):
        array = table.column(i).chunk(0) if table.column(i).num_chunks else pa.array([], field.type)
        if _nested(field.type) or (pa.types.is_dictionary(field.type) and _nested(field.type.value_type)):
            nested = True
            for leaf in _leaves(array):
                content.add_text(f"column {i + 1} (nested)", _as_text(leaf))
            glued = _glued(array)
            if glued is not None:
                content.add_text(f"column {i + 1} (joined)", _as_text(glued))
            columns.append(pd.Series([json.dumps(v, ensure_ascii=False, default=str) for v in array.to_pylist()]))
            strings = _string_leaves(array)
        elif _is_text(array):
            cells, encoded = _factorized_text(_decoded(array))
            columns.append(cells)
            seeds[len(columns) - 1] = (encoded.codes, pd.Series(encoded.uniques, dtype=object))
            strings = [encoded.dictionary]  # a cell's characters are its distinct value's
        else:
            columns.append(_column(array))
            strings = _string_leaves(array)
        if any(hidden_cells(leaf) for leaf in strings):
            content.findings.append(
                hard("format.invisible_characters", name, f"column {i + 1}", "control or invisible characters in cells")
            )
    read_table = Table("table", header, columns, nested=nested)
    for i, (codes, uniques) in seeds.items():
        read_table.seed(i, codes, uniques)
    content.tables.append(read_table)
    content.canonical = _canonical(table, schema)
    return content


def _canonical(table: pa.Table, schema: pa.Schema) -> bytes:
    """The columns alone: no schema or field metadata at all. pandas' description holds free strings
    (its ``creator``, each column's ``metadata``) a job can fill, so it does not travel; a reader gets the
    pandas index as the column it is stored as."""
    out = io.BytesIO()
    plain = pa.schema([field.remove_metadata() for field in schema])
    pq.write_table(table.cast(plain).replace_schema_metadata(None), out)
    return out.getvalue()


__all__ = ["FORMAT", "read"]
