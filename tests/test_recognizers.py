"""The Chinese recognizers, through presidio (offline) and through the column scanner.

Each entity type has valid, noisy and invalid cases: a check character that does not match
(GB 11643-1999 MOD 11-2, GB 32100-2015 mod 31, Luhn), a birth date that cannot be, a token glued
to other digits or letters. Every case is run through presidio's ``AnalyzerEngine`` built by
``build_analyzer`` (no spaCy model, no network) and through ``textscan.find_entities``; both must
give the expected spans.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import numpy as np
import pytest

from desensitize import recognizers, textscan
from desensitize.identifiers import id_check_char, luhn_check_digit, uscc_check_char
from desensitize.recognizers import ENTITY_TYPES, normalize_text
from desensitize.textscan import Span, resolve_overlaps
from samples import synthetic

# A valid ID (GB 11643-1999 appendix example), a valid USCC and cards computed here.
ID_X = "11010519491231002X"
ID_BODY = "23050219800101123"
ID = ID_BODY + id_check_char(ID_BODY)
WRONG_CHECK_ID = ID_BODY + ("0" if ID[-1] != "0" else "1")
FEB_30 = "230502" + "19900230" + "123"
FEB_30_ID = FEB_30 + id_check_char(FEB_30)  # right check character, impossible date
FUTURE = "230502" + "20990101" + "123"
FUTURE_ID = FUTURE + id_check_char(FUTURE)
USCC_BODY = "91230502MA1B2C3D4"
USCC = USCC_BODY + uscc_check_char(USCC_BODY)
WRONG_USCC = USCC_BODY + ("0" if USCC[-1] != "0" else "1")
CARD16_BODY = "622588021234567"
CARD16 = CARD16_BODY + luhn_check_digit(CARD16_BODY)
CARD19_BODY = "622202123456789012"
CARD19 = CARD19_BODY + luhn_check_digit(CARD19_BODY)
CARD18_BODY = "62290812345678901"
CARD18 = CARD18_BODY + luhn_check_digit(CARD18_BODY)
WRONG_CARD = CARD19[:-1] + str((int(CARD19[-1]) + 1) % 10)


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def grouped(number: str, size: int = 4, separator: str = " ") -> str:
    return separator.join(number[i : i + size] for i in range(0, len(number), size))


@pytest.fixture(scope="module")
def analyzer() -> object:
    return recognizers.build_analyzer(names=["王小明", "欧阳娜娜"])


def presidio_spans(analyzer: object, text: str) -> list[tuple[str, str]]:
    raw = [Span(0, r.start, r.end, r.entity_type, r.score) for r in analyzer.analyze(text, language="zh")]  # type: ignore[attr-defined]
    return [(s.entity_type, text[s.start : s.end]) for s in resolve_overlaps(raw)]


def scanner_spans(text: str) -> list[tuple[str, str]]:
    return [
        (s.entity_type, text[s.start : s.end]) for s in textscan.find_entities([text], names=["王小明", "欧阳娜娜"])
    ]


# (text, expected (entity, matched text) pairs in text order)
CASES: list[tuple[str, list[tuple[str, str]]]] = [
    # 公民身份号码 (GB 11643-1999)
    (f"身份证号{ID_X}已核实", [("CN_RESIDENT_ID", ID_X)]),
    (f"身份证号{ID_X.lower()}", [("CN_RESIDENT_ID", ID_X.lower())]),
    (f"证件号码 {ID[:6]} {ID[6:14]} {ID[14:]}。", [("CN_RESIDENT_ID", f"{ID[:6]} {ID[6:14]} {ID[14:]}")]),
    (f"号码{ID[:6]}-{ID[6:10]}-{ID[10:14]}-{ID[14:]}",
     [("CN_RESIDENT_ID", f"{ID[:6]}-{ID[6:10]}-{ID[10:14]}-{ID[14:]}")]),
    (f"身份证{fullwidth(ID)}", [("CN_RESIDENT_ID", fullwidth(ID))]),
    ("旧身份证号110105491231002", [("CN_RESIDENT_ID", "110105491231002")]),
    (f"身份证号{WRONG_CHECK_ID}（校验位错）", []),
    (f"身份证号{FEB_30_ID}", []),
    (f"身份证号{FUTURE_ID}", []),
    (f"单号9{ID}", []),  # glued to another digit: a 19-digit number, not an ID
    (f"编号A{ID}", []),  # glued to a letter
    # 统一社会信用代码 (GB 32100-2015)
    (f"统一社会信用代码{USCC}，", [("CN_USCC", USCC)]),
    (f"统一社会信用代码{WRONG_USCC}", []),
    (f"信用代码{USCC.lower()}", []),
    # 手机号码
    ("电话13812345678", [("CN_MOBILE", "13812345678")]),
    ("电话+86 138 1234 5678，", [("CN_MOBILE", "+86 138 1234 5678")]),
    ("手机+86-13812345678", [("CN_MOBILE", "+86-13812345678")]),
    ("手机008613812345678", [("CN_MOBILE", "008613812345678")]),
    ("手机(+86)13812345678", [("CN_MOBILE", "(+86)13812345678")]),
    ("手机138-1234-5678", [("CN_MOBILE", "138-1234-5678")]),
    ("手机１３８１２３４５６７８。", [("CN_MOBILE", "１３８１２３４５６７８")]),
    ("号码12812345678", []),  # no 12x mobile networks
    ("单号913812345678", []),
    ("单号138123456789", []),
    # 固定电话
    ("办公电话0469-4221234", [("CN_LANDLINE", "0469-4221234")]),
    ("座机(0469)4221234", [("CN_LANDLINE", "(0469)4221234")]),
    ("座机（０４６９）４２２１２３４", [("CN_LANDLINE", "（０４６９）４２２１２３４")]),
    ("电话010-62345678转8001", [("CN_LANDLINE", "010-62345678转8001")]),
    ("电话04694221234", [("CN_LANDLINE", "04694221234")]),
    ("发票代码090487438352", []),  # 12 digits solid: an invoice code, not a phone
    ("号码001-4221234", []),
    # 银行卡号 (Luhn)
    (f"卡号{CARD16}", [("CN_BANK_CARD", CARD16)]),
    (f"转入{grouped(CARD19)}。", [("CN_BANK_CARD", grouped(CARD19))]),
    (f"转入{grouped(CARD19, separator='-')}", [("CN_BANK_CARD", grouped(CARD19, separator="-"))]),
    (f"尾号{fullwidth(CARD16)}", [("CN_BANK_CARD", fullwidth(CARD16))]),
    (f"银行卡号{CARD18}", [("CN_BANK_CARD", CARD18)]),  # 18 digits: only after a card word
    (f"流水{CARD18}", []),
    (f"银行卡号{WRONG_CARD}", []),
    (f"卡号{grouped(WRONG_CARD)}", []),
    # 护照
    ("护照E12345678", [("CN_PASSPORT", "E12345678")]),
    ("护照号EA1234567入境", [("CN_PASSPORT", "EA1234567")]),
    ("护照G12345678", [("CN_PASSPORT", "G12345678")]),
    ("型号A12345678", []),
    ("护照E1234567", []),
    ("编号XE12345678", []),
    # 通行证
    ("港澳通行证C12345678", [("CN_TRAVEL_PERMIT", "C12345678")]),
    ("港澳通行证CA1234567", [("CN_TRAVEL_PERMIT", "CA1234567")]),
    ("回乡证H12345678", [("CN_TRAVEL_PERMIT", "H12345678")]),
    ("往来台湾通行证T12345678", [("CN_TRAVEL_PERMIT", "T12345678")]),
    ("台胞证12345678", [("CN_TRAVEL_PERMIT", "12345678")]),
    ("发票号码12345678", []),
    # 车牌 (GA 36-2018)
    ("车牌黑J12345的车辆", [("CN_LICENSE_PLATE", "黑J12345")]),
    ("新能源车黑JD12345", [("CN_LICENSE_PLATE", "黑JD12345")]),
    ("货车黑J12345F", [("CN_LICENSE_PLATE", "黑J12345F")]),
    ("车牌黑J·A1234", [("CN_LICENSE_PLATE", "黑J·A1234")]),
    ("教练车京A1234学", [("CN_LICENSE_PLATE", "京A1234学")]),
    ("编号黑JABC12", []),  # three letters in an ordinary serial
    ("编号黑I12345", []),  # no I in plates
    # e-mail, IP
    ("邮箱zhang.san@163.com。", [("EMAIL_ADDRESS", "zhang.san@163.com")]),
    ("邮箱１２３４５＠ｑｑ．ｃｏｍ", [("EMAIL_ADDRESS", "１２３４５＠ｑｑ．ｃｏｍ")]),
    ("写成zhang@", []),
    ("登录IP：192.168.1.100。", [("IP_ADDRESS", "192.168.1.100")]),
    ("登录IP：fe80::1", [("IP_ADDRESS", "fe80::1")]),
    ("地址2001:db8::8a2e:370:7334。", [("IP_ADDRESS", "2001:db8::8a2e:370:7334")]),
    ("版本256.1.1.1", []),
    ("版本1.2.3", []),
    ("编号1.2.3.4.5", []),
    # 姓名
    ("联系人王建国，电话", [("PERSON", "王建国")]),
    ("法定代表人：司马光明", [("PERSON", "司马光明")]),
    ("张伟先生来电", [("PERSON", "张伟")]),
    ("向李娜女士致谢", [("PERSON", "李娜")]),
    ("全体同志参加", []),
    ("申请人于本月提交", []),
    ("负责人任务繁重", []),
    ("王小明于5月到窗口", [("PERSON", "王小明")]),  # a known name (names=) needs no context
    ("经核实欧阳娜娜已搬离", [("PERSON", "欧阳娜娜")]),
    # 地址
    ("家住黑龙江省双鸭山市尖山区新兴大街12号3栋2单元401室，",
     [("CN_ADDRESS", "黑龙江省双鸭山市尖山区新兴大街12号3栋2单元401室")]),
    ("住尖山区和平路5号", [("CN_ADDRESS", "尖山区和平路5号")]),
    ("位于宝清县七星泡镇永红村3组", [("CN_ADDRESS", "宝清县七星泡镇永红村3组")]),
    ("新兴大街12号发生火灾", [("CN_ADDRESS", "新兴大街12号")]),
    ("尖山区人民政府已答复", []),
    ("户籍地黑龙江省双鸭山市", []),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_recognizer_through_presidio_and_the_scanner(
    analyzer: object, text: str, expected: list[tuple[str, str]]
) -> None:
    assert presidio_spans(analyzer, text) == expected
    assert scanner_spans(text) == expected


def test_several_entities_in_one_sentence(analyzer: object) -> None:
    text = f"联系人王建国，身份证号{ID}，手机+86 138 1234 5678，住黑龙江省双鸭山市尖山区新兴大街12号，邮箱wjg@qq.com。"
    expected = [
        ("PERSON", "王建国"),
        ("CN_RESIDENT_ID", ID),
        ("CN_MOBILE", "+86 138 1234 5678"),
        ("CN_ADDRESS", "黑龙江省双鸭山市尖山区新兴大街12号"),
        ("EMAIL_ADDRESS", "wjg@qq.com"),
    ]
    assert presidio_spans(analyzer, text) == expected == scanner_spans(text)


def test_presidio_engine_runs_offline_without_a_spacy_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """No socket may be opened: building and running the engine must not try to download a model."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    from presidio_analyzer.nlp_engine import NoOpNlpEngine

    engine = recognizers.build_analyzer()
    assert isinstance(engine.nlp_engine, NoOpNlpEngine)
    results = engine.analyze(f"身份证号{ID}", language="zh")
    assert [(r.entity_type, r.score) for r in results] == [("CN_RESIDENT_ID", 1.0)]


def test_registry_has_one_pattern_recognizer_per_entity_in_chinese() -> None:
    from presidio_analyzer import PatternRecognizer

    registry = recognizers.build_registry()
    assert registry.supported_languages == ["zh"]
    found = registry.recognizers
    assert all(isinstance(r, PatternRecognizer) and r.supported_language == "zh" for r in found)
    assert sorted(e for r in found for e in r.supported_entities) == sorted(ENTITY_TYPES)
    with_names = recognizers.build_registry(names=["王小明", "x", None])  # type: ignore[list-item]
    assert len(with_names.recognizers) == len(found) + 1
    assert type(with_names.recognizers[-1]).__name__ == "DatasetNameRecognizer"


def test_presidio_classes_validate_with_the_national_check_characters() -> None:
    resident = recognizers.ChineseResidentIdRecognizer()  # type: ignore[attr-defined]
    assert resident.validate_result(ID) is True
    assert resident.validate_result(WRONG_CHECK_ID) is False
    assert resident.validate_result(FEB_30_ID) is False
    uscc = recognizers.ChineseUsccRecognizer()  # type: ignore[attr-defined]
    assert uscc.validate_result(USCC) is True and uscc.validate_result(WRONG_USCC) is False
    card = recognizers.ChineseBankCardRecognizer()  # type: ignore[attr-defined]
    assert card.validate_result(grouped(CARD19)) is True and card.validate_result(WRONG_CARD) is False
    assert card.validate_result(ID) is False  # an 18-digit valid resident ID is an ID
    assert recognizers.ChineseMobileRecognizer().validate_result("13812345678") is None  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        recognizers.NoSuchRecognizer  # noqa: B018


def test_batch_validators_agree_with_the_scalar_ones() -> None:
    """The scanner validates candidates in bulk; it must accept exactly what presidio's recognizers accept."""
    rng = np.random.default_rng(5)
    people = synthetic.residents(400, seed=5)
    entities = synthetic.market_entities(200, seed=5)
    ids = people["公民身份号码"].tolist()
    id_candidates = (
        ids
        + [i[:-1] + str(rng.integers(0, 10)) for i in ids]
        + [f"{n:018d}" for n in rng.integers(10**17, 10**18, 400)]
    )
    id_candidates += [f"{i[:6]} {i[6:14]} {i[14:]}" for i in ids[:50]] + [i[:6] + i[8:17] for i in ids[:50]]
    expected = [recognizers.validate_resident_id(t) for t in id_candidates]
    assert recognizers.validate_resident_ids(id_candidates).tolist() == expected
    assert 0 < sum(expected) < len(expected)

    usccs = entities["统一社会信用代码"].tolist()
    uscc_candidates = usccs + [u[:-1] + "0" for u in usccs] + ids
    expected = [recognizers.validate_uscc(t) for t in uscc_candidates]
    assert recognizers.validate_usccs(uscc_candidates).tolist() == expected
    assert 0 < sum(expected) < len(expected)

    bodies = [f"62{n:014d}" for n in rng.integers(0, 10**14, 300)]
    cards = [b + luhn_check_digit(b) for b in bodies] + [f"62{n:017d}" for n in rng.integers(0, 10**17, 300)]
    cards += [grouped(c) for c in cards[:50]] + ids
    expected = [recognizers.validate_bank_card(t) for t in cards]
    assert recognizers.validate_bank_cards(cards).tolist() == expected
    assert 0 < sum(expected) < len(expected)


def test_normalisation_preserves_length_and_offsets() -> None:
    text = "电话：１３８ １２３４　５６７８，邮箱ＡＢＣ＠ｑｑ．ｃｏｍ"
    normal = normalize_text(text)
    assert len(normal) == len(text)
    assert normal == "电话:138 1234 5678,邮箱ABC@qq.com"
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).copy()
    recognizers.normalize_codepoints(codes)
    assert codes.tobytes().decode("utf-32-le") == normal


def test_dataset_names_ignore_blanks_and_single_characters() -> None:
    assert recognizers.dataset_names_spec([]) is None
    assert recognizers.dataset_names_spec(["王", "", None, 3, "不详", "同上", "全体"]) is None  # type: ignore[list-item]
    spec = recognizers.dataset_names_spec(["王小明", "王小", " 李娜 ", "王小明"])
    assert spec is not None and spec.entity_type == "PERSON"
    assert scanner_spans_with("王小明和李娜", ["王小明", "王小", " 李娜 "]) == [
        ("PERSON", "王小明"),
        ("PERSON", "李娜"),
    ]


def scanner_spans_with(text: str, names: list[str]) -> list[tuple[str, str]]:
    return [(s.entity_type, text[s.start : s.end]) for s in textscan.find_entities([text], names=names)]


def test_importing_the_scanner_does_not_import_presidio() -> None:
    """presidio (with spaCy and torch) costs ~2 s to import: profiling and scanning must not pay it."""
    code = (
        "import sys; import desensitize.textscan, desensitize.validators, desensitize.profiling; "
        "print('presidio_analyzer' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
