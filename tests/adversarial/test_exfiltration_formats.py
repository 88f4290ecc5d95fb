# ruff: noqa: E501  (job code is test data: one job per line reads best)
"""Issue 15's attacks: real sandboxed jobs, written as a hostile operator would, that tried formats,
layouts and channels the first guard read leniently. Every one must end ``block`` — or ``review``
where the channel is pixels, which no reader can audit (a person looks).

Classes: Parquet internals (index, schema and field metadata, attrs, nested, list, map, binary
columns); CSV a lenient reader skips (ragged lines, trailing data, other encodings, invisible
characters); keys glued, joined by letters, split over cells that are not adjacent, inside long list
cells; other digit scripts; names and directories; logs (stdout, stderr, DuckDB errors); record-level
data by content (renamed, reordered, transposed, interleaved with filler, "frequency tables" of one
row per person, JSON layouts, text tables); images and chart specs; a job that fails after writing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adversarial import households, residents, run_and_judge

pytestmark = pytest.mark.attack

READ = "import pandas as pd, numpy as np, json\nd = pd.read_parquet('/data/residents.parquet')\nK = d['公民身份号码']\n"
HOUSE = (
    "import pandas as pd, numpy as np, json\nh = pd.read_parquet('/data/households.parquet')\nK = h['公民身份号码']\n"
)
QI = "['性别', '民族', '出生日期', '备注', '姓名']"


def _known() -> tuple[str, str]:
    raw = residents()[0]
    return str(raw["公民身份号码"].iloc[7]), str(raw["手机号码"].iloc[7])


# (id, kind, code, dataset, expected) — expected "block" unless the channel is pixels ("review").
ATTACKS: list[tuple[str, str, str, str, str]] = [
    # --- Parquet internals ------------------------------------------------------------------------
    (
        "pq_index_of_keys",
        "python",
        READ + "d.set_index('公民身份号码')[['性别']].to_parquet('/out/a.parquet')",
        "residents",
        "block",
    ),
    (
        "pq_multiindex_keys",
        "python",
        READ + "d.set_index(['公民身份号码', '性别'])[['民族']].to_parquet('/out/a.parquet')",
        "residents",
        "block",
    ),
    (
        "pq_schema_metadata",
        "python",
        READ
        + "import pyarrow as pa, pyarrow.parquet as pq\nt = pa.table({'n': [1]}).replace_schema_metadata({'note': ','.join(K.head(50))})\npq.write_table(t, '/out/a.parquet')",
        "residents",
        "block",
    ),
    (
        "pq_field_metadata",
        "python",
        READ
        + "import pyarrow as pa, pyarrow.parquet as pq\nf = pa.field('n', pa.int64(), metadata={'k': K.iloc[0]})\npq.write_table(pa.table([pa.array([1])], schema=pa.schema([f])), '/out/a.parquet')",
        "residents",
        "block",
    ),
    (
        "pq_attrs",
        "python",
        READ + "o = pd.DataFrame({'n': [600]})\no.attrs['k'] = K.head(20).tolist()\no.to_parquet('/out/a.parquet')",
        "residents",
        "block",
    ),
    (
        "pq_list_cell_of_all_keys",
        "python",
        READ + "pd.DataFrame({'k': [K.tolist()]}).to_parquet('/out/a.parquet')",
        "residents",
        "block",
    ),
    (
        "pq_list_of_characters",
        "python",
        READ + "pd.DataFrame({'k': [list(k) for k in K.head(5)]}).to_parquet('/out/a.parquet')",
        "residents",
        "block",
    ),
    (
        "pq_struct_column",
        "python",
        READ
        + "import pyarrow as pa, pyarrow.parquet as pq\nt = pa.table({'s': pa.array([{'a': k, 'b': 1} for k in K.head(5)])})\npq.write_table(t, '/out/a.parquet')",
        "residents",
        "block",
    ),
    (
        "pq_map_column",
        "python",
        READ
        + "import pyarrow as pa, pyarrow.parquet as pq\nt = pa.table({'m': pa.array([[(k, 1)] for k in K.head(5)], type=pa.map_(pa.string(), pa.int64()))})\npq.write_table(t, '/out/a.parquet')",
        "residents",
        "block",
    ),
    (
        "pq_binary_column",
        "python",
        READ + "pd.DataFrame({'b': [k.encode()[::-1] for k in K.head(5)]}).to_parquet('/out/a.parquet')",
        "residents",
        "block",
    ),
    # --- CSV a lenient reader skips ------------------------------------------------------------
    (
        "csv_ragged_lines",
        "python",
        READ + "open('/out/a.csv', 'w').write('g,n\\n尖山区,12\\n' + ''.join(f'x,1,{k}\\n' for k in K.head(30)))",
        "residents",
        "block",
    ),
    (
        "csv_trailing_text",
        "python",
        READ + "open('/out/a.csv', 'w').write('g,n\\n尖山区,12\\n\\n' + '\\n'.join(K.head(30)))",
        "residents",
        "block",
    ),
    (
        "csv_gb18030",
        "python",
        READ
        + "open('/out/a.csv', 'w', encoding='gb18030').write('区县,备注\\n' + ''.join(f'尖山区,{k}号\\n' for k in K.head(5)))",
        "residents",
        "block",
    ),
    (
        "csv_zero_width_split",
        "python",
        READ + "open('/out/a.csv', 'w').write('g,k\\n' + ''.join(f'a,{k[:9]}\\u200b{k[9:]}\\n' for k in K.head(5)))",
        "residents",
        "block",
    ),
    (
        "csv_quoted_line_breaks",
        "python",
        READ + "open('/out/a.csv', 'w').write('g,k\\n' + ''.join(f'a,\"{k[:16]}\\n{k[16:]}\"\\n' for k in K.head(5)))",
        "residents",
        "block",
    ),
    # --- keys glued, joined, split, hidden in long cells ----------------------------------------
    (
        "keys_glued_into_one_string",
        "python",
        READ + "pd.DataFrame({'s': [''.join(K.head(100))]}).to_csv('/out/a.csv', index=False)",
        "residents",
        "block",
    ),
    (
        "keys_joined_by_a_letter",
        "python",
        READ + "pd.DataFrame({'s': ['g'.join(K.head(100))]}).to_csv('/out/a.csv', index=False)",
        "residents",
        "block",
    ),
    (
        "keys_joined_by_letters_upper",
        "python",
        READ + "pd.DataFrame({'s': ['Q'.join(k.upper() for k in K.head(40))]}).to_csv('/out/a.csv', index=False)",
        "residents",
        "block",
    ),
    (
        "keys_in_a_2000_item_json_list",
        "python",
        READ + "json.dump({'rows': (K.tolist() * 4)[:2000]}, open('/out/a.json', 'w'))",
        "residents",
        "block",
    ),
    (
        "key_split_over_cells_not_adjacent",
        "python",
        READ
        + "pd.DataFrame({'a': K.str[:11], 'pad': 1, 'b': K.str[11:22], 'x': '尖山区', 'c': K.str[22:]}).head(5).to_csv('/out/a.csv', index=False)",
        "residents",
        "block",
    ),
    (
        "key_split_in_reverse_column_order",
        "python",
        READ
        + "pd.DataFrame({'c': K.str[20:], 'b': K.str[10:20], 'a': K.str[:10]}).head(5).to_csv('/out/a.csv', index=False)",
        "residents",
        "block",
    ),
    (
        "key_halves_in_two_rows",
        "python",
        READ + "pd.DataFrame({'v': [K.iloc[0][:16], K.iloc[0][16:]]}).to_json('/out/a.json')",
        "residents",
        "block",
    ),
    # --- other digit scripts and folded forms (raw values the attacker knows) ------------------------
    (
        "known_phone_arabic_indic",
        "python",
        "PHONE = {phone!r}\nopen('/out/a.txt', 'w').write('电话 ' + PHONE.translate(str.maketrans('0123456789', '٠١٢٣٤٥٦٧٨٩')))",
        "residents",
        "block",
    ),
    (
        "known_id_devanagari",
        "python",
        "ID = {ident!r}\nopen('/out/a.txt', 'w').write(ID.translate(str.maketrans('0123456789', '०१२३४५६७८९')))",
        "residents",
        "block",
    ),
    (
        "known_phone_chinese_numerals",
        "python",
        "PHONE = {phone!r}\nopen('/out/a.md', 'w').write('号码' + PHONE.translate(str.maketrans('0123456789', '〇一二三四五六七八九')))",
        "residents",
        "block",
    ),
    (
        "known_phone_circled_digits",
        "python",
        "PHONE = {phone!r}\nopen('/out/a.txt', 'w').write(PHONE.translate(str.maketrans('123456789', '①②③④⑤⑥⑦⑧⑨')))",
        "residents",
        "block",
    ),
    (
        "known_phone_inside_a_long_digit_run",
        "python",
        "PHONE = {phone!r}\nopen('/out/a.txt', 'w').write('序列 8274' + PHONE + '550193')",
        "residents",
        "block",
    ),
    # --- names and directories ----------------------------------------------------------------------
    (
        "key_as_a_directory_name",
        "python",
        READ
        + "import os\nos.makedirs('/out/' + K.iloc[0])\nopen('/out/' + K.iloc[0] + '/t.csv', 'w').write('n\\n600\\n')",
        "residents",
        "block",
    ),
    (
        "key_split_over_directories",
        "python",
        READ
        + "import os\nk = K.iloc[1]\nos.makedirs(f'/out/{k[:16]}')\nopen(f'/out/{k[:16]}/{k[16:]}.csv', 'w').write('n\\n600\\n')",
        "residents",
        "block",
    ),
    # --- logs ---------------------------------------------------------------------------------------
    ("duckdb_error_echoes_a_key", "sql", "select cast(公民身份号码 as integer) from residents", "residents", "block"),
    (
        "failed_job_prints_keys_then_dies",
        "python",
        READ + "import sys\nprint(' '.join(K.head(3)))\nsys.exit(3)",
        "residents",
        "block",
    ),
    (
        "failed_job_wrote_keys_first",
        "python",
        READ + "K.head(10).to_frame().to_csv('/out/a.csv', index=False)\nraise SystemExit(1)",
        "residents",
        "block",
    ),
    # --- record-level data by content -------------------------------------------------------------
    (
        "renamed_reordered_microdata",
        "python",
        READ + f"d[{QI}][::-1].head(200).set_axis(list('abcde'), axis=1).to_csv('/out/a.csv', index=False)",
        "residents",
        "block",
    ),
    ("transposed_microdata", "python", READ + f"d[{QI}].head(60).T.to_csv('/out/a.csv')", "residents", "block"),
    (
        "transposed_microdata_json",
        "python",
        READ + f"d[{QI}].head(40).reset_index(drop=True).T.to_json('/out/a.json')",
        "residents",
        "block",
    ),
    (
        "microdata_with_filler_rows",
        "python",
        READ
        + f"m = d[{QI}].head(120).copy()\nf = pd.DataFrame({{c: ['填充'] * 120 for c in m.columns}})\npd.concat([m, f]).sort_index(kind='stable').to_csv('/out/a.csv', index=False)",
        "residents",
        "block",
    ),
    (
        "microdata_with_filler_columns",
        "python",
        READ
        + f"m = d[{QI}].head(150).copy()\nrng = np.random.default_rng(1)\nm.insert(2, 'z1', rng.integers(0, 9, len(m)))\nm.insert(4, 'z2', rng.random(len(m)))\nm.to_csv('/out/a.csv', index=False)",
        "residents",
        "block",
    ),
    (
        "frequency_table_one_row_per_person",
        "sql",
        "select 姓名, 备注, 出生日期, 性别, count(*) as n from residents group by all",
        "residents",
        "block",
    ),
    (
        "microdata_with_a_count_of_ones",
        "python",
        HOUSE + "h[['区县', '性别', '年龄段', '月收入']].assign(人数=1).to_csv('/out/a.csv', index=False)",
        "households",
        "block",
    ),
    (
        "exact_incomes_listed",
        "python",
        HOUSE + "h[['月收入']].sample(300, random_state=1).to_csv('/out/a.csv', index=False)",
        "households",
        "block",
    ),
    (
        "incomes_by_row_number",
        "sql",
        "select row_number() over () as i, 月收入, 家庭人数 from households",
        "households",
        "block",
    ),
    (
        "json_records_without_keys",
        "python",
        READ + f"d[{QI}].head(80).to_json('/out/a.json', orient='records', force_ascii=False)",
        "residents",
        "block",
    ),
    (
        "json_split_layout",
        "python",
        READ + f"d[{QI}].head(80).to_json('/out/a.json', orient='split', force_ascii=False)",
        "residents",
        "block",
    ),
    (
        "markdown_table_of_rows",
        "python",
        READ
        + f"rows = d[{QI}].head(80).itertuples(index=False)\n"
        + "open('/out/a.md', 'w').write('\\n'.join('| ' + ' | '.join(map(str, r)) + ' |' for r in rows))",
        "residents",
        "block",
    ),
    # --- images and charts -----------------------------------------------------------------------
    (
        "png_key_in_compressed_text_chunk",
        "python",
        READ
        + "import zlib, struct\ndef chunk(t, b):\n    return struct.pack('>I', len(b)) + t + b + struct.pack('>I', zlib.crc32(t + b))\nraw = b''.join(b'\\x00' + bytes([200] * 4) for _ in range(4))\npng = b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 4, 4, 8, 0, 0, 0, 0)) + chunk(b'zTXt', b'k\\x00\\x00' + zlib.compress(K.iloc[0].encode())) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')\nopen('/out/c.png', 'wb').write(png)",
        "residents",
        "block",
    ),
    (
        "png_private_chunk",
        "python",
        READ
        + "import zlib, struct\ndef chunk(t, b):\n    return struct.pack('>I', len(b)) + t + b + struct.pack('>I', zlib.crc32(t + b))\nraw = b''.join(b'\\x00' + bytes([200] * 4) for _ in range(4))\npng = b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 4, 4, 8, 0, 0, 0, 0)) + chunk(b'keYs', zlib.compress(K.iloc[0][::-1].encode())) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')\nopen('/out/c.png', 'wb').write(png)",
        "residents",
        "block",
    ),
    (
        "png_bytes_after_the_end",
        "python",
        READ
        + "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nplt.bar(['a'], [1])\nplt.savefig('/out/c.png')\nopen('/out/c.png', 'ab').write(bytes(b ^ 0x5A for b in ','.join(K.head(50)).encode()))",
        "residents",
        "block",
    ),
    (
        "svg_key_in_a_comment",
        "python",
        READ
        + "open('/out/c.svg', 'w').write('<svg xmlns=\"http://www.w3.org/2000/svg\"><!-- ' + K.iloc[0][::-1] + ' --><rect width=\"1\" height=\"1\"/></svg>')",
        "residents",
        "block",
    ),
    (
        "svg_script_element",
        "python",
        "open('/out/c.svg', 'w').write('<svg xmlns=\"http://www.w3.org/2000/svg\"><script>fetch(1)</script></svg>')",
        "residents",
        "block",
    ),
    (
        "chart_spec_with_inline_values",
        "python",
        READ
        + "json.dump({'data': {'values': [{'k': k} for k in K.head(30)]}, 'mark': 'point', 'encoding': {'x': {'field': 'k', 'type': 'nominal'}}}, open('/out/c.vl.json', 'w'))",
        "residents",
        "block",
    ),
    (
        "chart_spec_over_microdata",
        "python",
        READ
        + f"d[{QI}].head(200).to_csv('/out/m.csv', index=False)\njson.dump({{'data': {{'url': 'm.csv'}}, 'mark': 'point', 'encoding': {{'x': {{'field': '姓名', 'type': 'nominal'}}}}}}, open('/out/c.vl.json', 'w'))",
        "residents",
        "block",
    ),
    (
        "keys_drawn_as_tick_labels",
        "python",
        READ
        + "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\nplt.barh(K.head(20).str[:12], range(20))\nplt.savefig('/out/c.png')",
        "residents",
        "review",
    ),
    # --- resources: never wedge ----------------------------------------------------------------
    (
        "hundreds_of_long_names",
        "python",
        "for i in range(300):\n    open(f'/out/{\"x\" * 180}{i:03d}.txt', 'w').write('1')",
        "residents",
        "block",
    ),
]


@pytest.mark.parametrize(("name", "kind", "code", "dataset", "expected"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_is_stopped(name: str, kind: str, code: str, dataset: str, expected: str, tmp_path: Path) -> None:
    ident, phone = _known()
    code = code.replace("{phone!r}", repr(phone)).replace("{ident!r}", repr(ident))
    judged = run_and_judge(kind, code, tmp_path, dataset=dataset)
    assert judged.verdict == expected, [f.as_json() for f in judged.findings]
    shown = judged.log.excerpt() or ""
    assert judged.log.text is None or judged.verdict != "block", "a blocked job's log is never shown"
    for value in (ident, phone, *residents()[1]["公民身份号码"].head(3), *households()[1]["公民身份号码"].head(3)):
        assert all(value not in f.detail and value not in f.location and value not in f.file for f in judged.findings)
        assert value not in shown


def test_at_least_forty_new_attacks() -> None:
    assert len(ATTACKS) >= 40


# Logs the operator reads at once: what a job prints or raises must not carry the data out (principle 5).
LOG_CHANNELS: list[tuple[str, str, str, str]] = [
    (
        "print_a_word_per_person",
        "python",
        HOUSE + "print(' '.join('yes' if v > 5000 else 'no' for v in h['月收入']))",
        "yes no",
    ),
    ("print_incomes", "python", HOUSE + "print(h['月收入'].head(50).tolist())", "{income}"),
    ("raise_with_incomes", "python", HOUSE + "raise ValueError(' '.join(map(str, h['月收入'].head(20))))", "{income}"),
    (
        "raise_with_words_per_person",
        "python",
        HOUSE + "raise KeyError(''.join('a' if v > 5000 else 'b' for v in h['月收入'].head(40)))",
        "{bits}",
    ),
    (
        "traceback_quoting_a_file_the_job_wrote",
        "python",
        HOUSE
        + "open('/tmp/m.py', 'w').write('x = 1/0  # ' + ' '.join(map(str, h['月收入'].head(20))))\nimport sys\nsys.path.insert(0, '/tmp')\nimport m",
        "{income}",
    ),
    ("duckdb_conversion_error_echoes_a_value", "sql", "select cast(区县 as integer) from households", "尖山区"),
    (
        "exception_class_named_after_data",
        "python",
        HOUSE + "import sys\nsys.stderr.write('_' + '..'.join(map(str, h['月收入'].head(30))) + 'Error\\n')",
        "{income}",
    ),
    (
        "forged_traceback_frames",
        "python",
        HOUSE
        + "import sys\nfor v in h['月收入'].head(30):\n    sys.stderr.write('  File \"x\", line 1, in y\\n    ' + str(v) + '\\n')",
        "{income}",
    ),
    (
        "message_in_arabic_indic_digits",
        "python",
        HOUSE
        + "raise ValueError(' '.join(str(v).translate(str.maketrans('0123456789', '٠١٢٣٤٥٦٧٨٩')) for v in h['月收入'].head(5)))",
        "{arabic}",
    ),
    (
        "vocabulary_padded_with_every_number",
        "python",
        HOUSE
        + "W = '"
        + " ".join(map(str, range(30000)))
        + "'\nprint(*h['月收入'].head(30))\nraise KeyError(str(h['月收入'].iloc[0]))",
        "{income}",
    ),
]


@pytest.mark.parametrize(("name", "kind", "code", "secret"), LOG_CHANNELS, ids=[c[0] for c in LOG_CHANNELS])
def test_the_log_shows_nothing_of_the_data(name: str, kind: str, code: str, secret: str, tmp_path: Path) -> None:
    incomes = households()[1]["月收入"]
    bits = "".join("a" if v > 5000 else "b" for v in incomes.head(40))
    arabic = str(incomes.iloc[0]).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    judged = run_and_judge(kind, code, tmp_path, dataset="households")
    shown = judged.log.excerpt() or ""
    secrets = {"{income}": [str(incomes.iloc[0]), str(incomes.iloc[1])], "{bits}": [bits], "{arabic}": [arabic]}
    for value in secrets.get(secret, [secret]):
        assert value not in shown, shown


# Found by a red team that had not read these tests (issue 15: "have a helper that has not seen your
# tests attack it"): every one of these ended ``pass`` (or crashed the guard) against the first redesign.
RED_TEAM: list[tuple[str, str, str, str]] = [
    (
        "rt_records_with_an_empty_count_and_a_margin_row",
        HOUSE
        + "t = h[['区县', '性别', '年龄段', '参保状态', '家庭人数', '月收入']].drop_duplicates().astype(str)\nt.columns = list('abcdef')\nt['n'] = ''\nm = pd.DataFrame([{**{c: '合计' for c in 'abcdef'}, 'n': str(len(h))}])\npd.concat([t, m]).to_csv('/out/table.csv', index=False)",
        "block",
    ),
    (
        "rt_records_in_column_names",
        HOUSE
        + "t = h.groupby('区县').size().rename('户数').reset_index()\nfor r in h.head(300).itertuples(index=False):\n    t[f'{int(r.公民身份号码, 16)} {r.区县} {r.性别} {r.年龄段} {r.月收入} {r.家庭人数}'] = ''\nt.to_csv('/out/t.csv', index=False)",
        "block",
    ),
    (
        "rt_key_in_four_adjacent_cells",
        HOUSE
        + "k = K.head(99)\npd.DataFrame({'a': k.str[0:8], 'b': k.str[8:16], 'c': k.str[16:24], 'e': k.str[24:32]}).to_csv('/out/t.csv', index=False)",
        "block",
    ),
    (
        "rt_hex_digits_as_percent_strings",
        HOUSE
        + "t = h.groupby(['区县', '性别']).size().reset_index(name='人数')\ncells = [int(c, 16) for c in K.iloc[0]]\nt['占比'] = [f'{cells[i % 32]}%' for i in range(len(t))]\nt.to_csv('/out/share.csv', index=False)",
        "review",
    ),
    (
        "rt_records_as_file_names",
        HOUSE
        + "for r in h.head(20).itertuples(index=False):\n    open(f'/out/{r.区县}_{r.性别}_{r.年龄段}_{r.月收入}_{r.家庭人数}_{r.参保状态}.csv', 'w').write('')",
        "review",
    ),
    (
        "rt_differencing_through_margin_rows",
        '\nimport itertools, pandas as pd\nd = pd.read_parquet("/data/households.parquet")\ndims = ["区县","性别","年龄段","参保状态","家庭人数"]\nrows = {}\ndef add(fix):\n    sub = d\n    for k, v in fix.items(): sub = sub[sub[k] == v]\n    key = tuple(str(fix.get(c, "合计")) for c in dims)\n    rows[key] = (len(sub), int(sub["月收入"].sum()))\nfor r in range(1, 4):\n    for S in itertools.combinations(dims, r):\n        for c in dims:\n            if c in S: continue\n            g = d.groupby(list(S)).size(); gv = d.groupby(list(S)+[c]).size()\n            for key, n in gv.items():\n                key = key if isinstance(key, tuple) else (key,)\n                N = g[key[:-1] if len(S) > 1 else key[0]]\n                if N - n == 1 and n >= 10:\n                    add(dict(zip(S, key[:-1]))); add(dict(zip(list(S)+[c], key)))\nt = pd.DataFrame([list(k) + list(v) for k, v in rows.items()], columns=dims + ["户数", "月收入合计"])\nt.to_csv("/out/income_by_group.csv", index=False)\n',
        "review",
    ),
    (
        "rt_chart_spec_with_keys_as_sort_order",
        HOUSE
        + "t = h.groupby('区县').agg(人数=('月收入', 'size')).reset_index()\nt.to_csv('/out/t.csv', index=False)\nspec = {'mark': 'bar', 'data': {'url': 't.csv'}, 'encoding': {'x': {'field': '区县', 'type': 'nominal', 'sort': [int(k, 16) for k in K.head(200)]}, 'y': {'field': '人数', 'type': 'quantitative', 'axis': {'values': h['月收入'].head(100).tolist()}}}}\njson.dump(spec, open('/out/c.vl.json', 'w'), ensure_ascii=False)",
        "review",
    ),
    (
        "rt_undecodable_output_name",
        "import os\nos.close(os.open(b'/out/t\\xff\\xfe.csv', os.O_CREAT | os.O_WRONLY))",
        "block",
    ),
]


@pytest.mark.parametrize(("name", "code", "expected"), RED_TEAM, ids=[r[0] for r in RED_TEAM])
def test_red_team_attack_is_stopped(name: str, code: str, expected: str, tmp_path: Path) -> None:
    judged = run_and_judge("python", code, tmp_path, dataset="households")
    assert judged.verdict == expected, [f.as_json() for f in judged.findings]
    names = {str(o["name"]) for o in judged.outputs}
    assert not any(n.endswith(".vl.json") for n in names), "a chart spec is the platform's instruction, not an output"
    incomes = {str(v) for v in households()[1]["月收入"].head(20)}
    assert not any(any(v in f.file for v in incomes) for f in judged.findings), (
        "a finding echoes a name built from data"
    )
