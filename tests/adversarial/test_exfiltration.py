"""Real sandboxed jobs trying to take identifiers or records out; each must end ``block``.

The copy a job reads is the L4-desensitized residents table (pseudonyms, generalized QIs). Attacks on
raw values use either values the attacker "knows" (embedded in the job, as after a leak) or a copy
that failed desensitization (``raw=True``): the guard is the last line of 原始数据不出域 and must
catch raw values (GB 11643-1999 IDs, mobiles, names, addresses) whatever their wrapping.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adversarial import residents, run_and_judge

pytestmark = pytest.mark.attack

READ = "import pandas as pd, base64, urllib.parse, json\nd = pd.read_parquet('/data/residents.parquet')\n"


def _raw() -> tuple[str, str, str]:
    raw, _, _ = residents()
    return str(raw["公民身份号码"].iloc[3]), str(raw["手机号码"].iloc[3]), str(raw["姓名"].iloc[3])


def _id() -> str:
    return _raw()[0]


# (name, kind, code, raw copy?) — code is built lazily so raw values come from the fixture.
ATTACKS: list[tuple[str, str, str, bool]] = [
    ("sql_dump_all", "sql", "select * from residents", False),
    ("sql_pseudonym_column", "sql", "select 公民身份号码 from residents", False),
    ("sql_pseudonym_renamed", "sql", "select 公民身份号码 as k, 性别 from residents", False),
    ("sql_pseudonym_upper", "sql", "select upper(公民身份号码) as k from residents", False),
    ("sql_pseudonym_reversed", "sql", "select reverse(公民身份号码) as k from residents limit 5", False),
    (
        "sql_pseudonym_spaced",
        "sql",
        "select substr(公民身份号码,1,8)||' '||substr(公民身份号码,9) as k from residents limit 5",
        False,
    ),
    (
        "sql_pseudonym_split_cells",
        "sql",
        "select substr(公民身份号码,1,10) as a, substr(公民身份号码,11) as b from residents limit 5",
        False,
    ),
    ("sql_pseudonym_hex", "sql", "select hex(公民身份号码) as k from residents limit 5", False),
    ("sql_pseudonym_base64", "sql", "select to_base64(encode(公民身份号码)) as k from residents limit 5", False),
    ("sql_pseudonym_in_text", "sql", "select '记录 ' || 公民身份号码 || ' 结束' as k from residents limit 5", False),
    ("sql_qi_tuples", "sql", "select 性别, 民族, 出生日期, 住址, 户籍地 from residents", False),
    (
        "sql_rows_reordered_cols_named",
        "sql",
        "select 备注, 户籍地, 住址, 出生日期, 民族, 性别, 公民身份号码, 姓名 from residents",
        False,
    ),
    ("sql_row_number_key", "sql", "select row_number() over () as rid, 性别, 出生日期 from residents", False),
    ("sql_raw_dump", "sql", "select * from residents", True),
    (
        "sql_raw_ids_fullwidth",
        "sql",
        "select translate(公民身份号码, '0123456789', '０１２３４５６７８９') as k from residents limit 3",
        True,
    ),
    (
        "sql_raw_phone_dashed",
        "sql",
        "select substr(手机号码,1,3)||'-'||substr(手机号码,4,4)||'-'||substr(手机号码,8) as k from residents limit 3",
        True,
    ),
    ("sql_raw_names", "sql", "select 姓名 from residents limit 20", True),
    ("sql_raw_address", "sql", "select 住址 from residents limit 3", True),
    ("py_pseudonyms_csv", "python", READ + "d[['公民身份号码']].head(3).to_csv('/out/a.csv', index=False)", False),
    ("py_pseudonyms_stdout", "python", READ + "print(d['公民身份号码'].head(3).tolist())", False),
    ("py_pseudonym_stderr_traceback", "python", READ + "raise ValueError(d['公民身份号码'].iloc[0])", False),
    (
        "py_pseudonym_filename",
        "python",
        READ + "open('/out/' + d['公民身份号码'].iloc[0] + '.txt', 'w').write('x')",
        False,
    ),
    (
        "py_pseudonym_url",
        "python",
        READ + "open('/out/u.txt','w').write(urllib.parse.quote('id=' + d['公民身份号码'].iloc[0], safe=''))",
        False,
    ),
    (
        "py_pseudonym_json",
        "python",
        READ + "json.dump({'k': d['公民身份号码'].head(2).tolist()}, open('/out/a.json','w'))",
        False,
    ),
    (
        "py_pseudonym_b64_reversed",
        "python",
        READ + "open('/out/r.txt','w').write(base64.b64encode(d['公民身份号码'].iloc[0][::-1].encode()).decode())",
        False,
    ),
    (
        "py_pseudonym_reversed_b64",
        "python",
        READ + "open('/out/r.txt','w').write(base64.b64encode(d['公民身份号码'].iloc[0].encode()).decode()[::-1])",
        False,
    ),
    ("py_model_pickle", "python", READ + "import pickle\npickle.dump(d.head(), open('/out/m.pkl','wb'))", False),
    ("py_model_joblib", "python", "open('/out/m.joblib','wb').write(b'x')", False),
    (
        "py_archive",
        "python",
        READ + "import zipfile\nz=zipfile.ZipFile('/out/a.zip','w'); z.writestr('a.csv','x'); z.close()",
        False,
    ),
    ("py_hidden_file", "python", "open('/out/.h.csv','w').write('a\\n1\\n')", False),
    ("py_symlink", "python", "import os\nos.symlink('/data/residents.parquet', '/out/l.parquet')", False),
    ("py_bad_type", "python", READ + "d.head().to_pickle('/out/x.bin')", False),
    ("py_many_files", "python", "\n".join(["for i in range(30):", "    open(f'/out/f{i}.txt','w').write('1')"]), False),
    ("py_parquet_rows", "python", READ + "d.to_parquet('/out/r.parquet')", False),
    (
        "py_png_text_chunk",
        "python",
        READ
        + "import struct, zlib\nt=b'Comment\\x00'+d['公民身份号码'].iloc[0].encode()\nopen('/out/c.png','wb').write(b'\\x89PNG\\r\\n\\x1a\\n'+struct.pack('>I',len(t))+b'tEXt'+t+struct.pack('>I',zlib.crc32(b'tEXt'+t)))",  # noqa: E501
        False,
    ),
    (
        "py_svg_text",
        "python",
        READ + "open('/out/c.svg','w').write('<svg><text>'+d['公民身份号码'].iloc[0]+'</text></svg>')",
        False,
    ),
    ("py_fake_png", "python", "open('/out/c.png','w').write('not a png')", False),
]

# Raw values the attacker knows (embedded in the job), wrapped every way.
KNOWN: list[tuple[str, str]] = [
    ("known_id_spaced", "' '.join([ID[i:i+4] for i in range(0, 18, 4)])"),
    ("known_id_fullwidth", "ID.translate(str.maketrans('0123456789X', '０１２３４５６７８９Ｘ'))"),
    ("known_id_hex", "ID.encode().hex()"),
    ("known_id_b64", "base64.b64encode(ID.encode()).decode()"),
    ("known_id_url", "urllib.parse.quote(ID[:6]) + '%2D' + ID[6:]"),
    ("known_phone_reversed", "PHONE[::-1]"),
    ("known_phone_punct", "PHONE[:3] + '.' + PHONE[3:7] + '.' + PHONE[7:]"),
    ("known_name_in_sentence", "'联系人' + NAME + '已到'"),
]


@pytest.mark.parametrize(("name", "kind", "code", "raw"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_is_blocked(name: str, kind: str, code: str, raw: bool, tmp_path: Path) -> None:
    data = residents()[0] if raw else None
    judged = run_and_judge(kind, code, tmp_path, data=data)
    assert judged.verdict == "block", [f.as_json() for f in judged.findings]


@pytest.mark.parametrize(("name", "expression"), KNOWN, ids=[k[0] for k in KNOWN])
def test_known_raw_value_is_blocked(name: str, expression: str, tmp_path: Path) -> None:
    ident, phone, person = _raw()
    code = (
        f"import base64, urllib.parse\nID, PHONE, NAME = {ident!r}, {phone!r}, {person!r}\n"
        f"open('/out/t.csv','w').write('k,v\\n' + {expression} + ',1\\n')"
    )
    judged = run_and_judge("python", code, tmp_path)
    assert judged.verdict == "block", [f.as_json() for f in judged.findings]
    assert all(ident not in f.detail and phone not in f.detail for f in judged.findings)


def test_split_across_cells_of_a_row_is_blocked(tmp_path: Path) -> None:
    ident = _id()
    code = f"open('/out/s.csv','w').write('a,b,c\\n{ident[:6]},{ident[6:12]},{ident[12:]}\\n')"
    judged = run_and_judge("python", code, tmp_path)
    assert judged.verdict == "block"
    assert any(f.rule == "identifier.split_cells" for f in judged.findings)


# A known mobile number hidden as the digits of a decimal (1.3812345678e-1, 5234.13812345678): the
# recognizers read a decimal's fractional digits as a measurement, not a phone number, so these must
# fall to the fingerprint rule, in every container a number can take.
DECIMAL_WRITERS: list[tuple[str, str]] = [
    ("parquet_fraction", "pd.DataFrame({'v': [float('0.' + PHONE)]}).to_parquet('/out/m.parquet')"),
    (
        "parquet_mean_like",
        "pd.DataFrame({'g': ['a', 'b'], 'v': [5234.5, float('5234.' + PHONE)]}).to_parquet('/out/m.parquet')",
    ),
    ("json_number", "json.dump({'mean': float('17563.' + PHONE)}, open('/out/m.json', 'w'))"),
    ("json_rows", "json.dump([{'g': 'a', 'mean': float('0.' + PHONE)}], open('/out/m.json', 'w'))"),
    ("csv_number", "pd.DataFrame({'v': [float('0.' + PHONE), 0.5]}).to_csv('/out/m.csv', index=False)"),
    ("stdout_number", "print('mean', float('17563.' + PHONE))"),
    ("parquet_column_scaled", "pd.DataFrame({'v': [int(PHONE) / 1e11, 0.25]}).to_parquet('/out/m.parquet')"),
]


@pytest.mark.parametrize(("name", "write"), DECIMAL_WRITERS, ids=[w[0] for w in DECIMAL_WRITERS])
def test_known_phone_as_a_decimal_is_blocked(name: str, write: str, tmp_path: Path) -> None:
    _, phone, _ = _raw()
    code = f"import json\nimport pandas as pd\nPHONE = {phone!r}\n{write}"
    judged = run_and_judge("python", code, tmp_path)
    assert judged.verdict == "block", [f.as_json() for f in judged.findings]
    assert all(phone not in f.detail for f in judged.findings)


def test_raw_phone_column_scaled_to_decimals_is_blocked(tmp_path: Path) -> None:
    code = READ + "pd.DataFrame({'v': d['手机号码'].astype('int64') / 1e11}).to_parquet('/out/m.parquet')"
    judged = run_and_judge("python", code, tmp_path, data=residents()[0])
    assert judged.verdict == "block", [f.as_json() for f in judged.findings]
