"""Desensitization policies: the shipped defaults per level, custodians' own files, strict validation.

Techniques are those of GB/T 37964-2019 附录A; the result is 去标识化 (个人信息保护法 第七十三条).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from desensitize.policy import (
    ACTIONS,
    LEVELS,
    PII_TYPE_NAMES,
    TECHNIQUES,
    Policy,
    PolicyError,
    Rule,
    load_policy,
    shipped_policy_path,
)
from desensitize.profiling import PII_TYPES

# How much an action hides, for "stricter at higher levels": keep < any transformation < drop.
_STRICTNESS = {action: 1 for action in ACTIONS} | {"keep": 0, "drop": 2}


@pytest.mark.parametrize("level", LEVELS)
def test_shipped_policy_loads_for_its_level(level: str) -> None:
    policy = load_policy(level)
    assert policy.level == level
    assert shipped_policy_path(level).is_file()
    assert len(policy.sha256()) == 64
    assert policy.rule_for(None).action == "keep"  # unrecognised columns are kept by default


def test_every_profiled_type_is_in_the_policy_vocabulary() -> None:
    assert set(PII_TYPES) <= set(PII_TYPE_NAMES)


def test_levels_are_stricter_upwards() -> None:
    policies = [load_policy(level) for level in LEVELS]
    for lower, higher in itertools.pairwise(policies):
        assert higher.k >= lower.k
        assert set(higher.quasi_identifiers) >= set(lower.quasi_identifiers)
        for pii_type in PII_TYPE_NAMES:
            before, after = lower.rule_for(pii_type).action, higher.rule_for(pii_type).action
            assert _STRICTNESS[after] >= _STRICTNESS[before], (lower.level, higher.level, pii_type, before, after)


def test_l1_mostly_keeps() -> None:
    policy = load_policy("L1")
    kept = [t for t in PII_TYPE_NAMES if policy.rule_for(t).action == "keep"]
    assert len(kept) > len(PII_TYPE_NAMES) / 2
    assert policy.rule_for("cn_resident_id").action == "pseudonymize"
    assert policy.k == 1 and policy.quasi_identifiers == []


def test_l4_defaults() -> None:
    policy = load_policy("L4")
    expected = {
        "cn_resident_id": "pseudonymize",
        "passport": "pseudonymize",
        "cn_phone": "drop",
        "bank_card": "drop",
        "address": "generalize_address",
        "birth_date": "date_year",
        "age": "band",
        "income": "band",
        "free_text": "redact_text",
        "health": "keep",
    }
    assert {t: policy.rule_for(t).action for t in expected} == expected
    assert policy.rule_for("person_name").action in {"mask_name", "pseudonymize"}
    assert policy.rules["address"].params == {"to": "district"}
    assert "health" in policy.sensitive
    assert policy.k >= 5
    assert {"birth_date", "gender", "household_region", "ethnicity"} <= set(policy.quasi_identifiers)


def test_every_action_names_its_technique_and_basis() -> None:
    assert set(TECHNIQUES) == set(ACTIONS)
    for action, (technique, basis) in TECHNIQUES.items():
        assert technique
        if action != "keep":
            assert "GB/T 37964-2019" in basis and "第七十三条" in basis, action
    assert "假名化" in TECHNIQUES["pseudonymize"][0]
    assert "泛化" in TECHNIQUES["generalize_address"][0]
    assert "抑制" in TECHNIQUES["drop"][0]
    assert "随机化" in TECHNIQUES["randomize"][0]


def test_params_are_completed_with_defaults() -> None:
    assert Rule(action="mask").params == {"keep_start": 0, "keep_end": 0, "char": "*"}
    assert Rule(action="date_band").params == {"width": 5}
    assert Rule(action="band", params={"width": 10}).params["top"] is None


def _write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_custom_file_replaces_the_shipped_policy(tmp_path: Path) -> None:
    own = _write(
        tmp_path / "L4.json",
        {"level": "L4", "k": 10, "rules": {"cn_resident_id": {"action": "drop"}}, "quasi_identifiers": ["gender"]},
    )
    policy = load_policy("L4", own)
    assert policy.k == 10
    assert policy.rule_for("cn_resident_id").action == "drop"
    # Replaced, not merged: the shipped L4 rule for phones does not apply.
    assert policy.rule_for("cn_phone").action == "keep"
    assert policy.sha256() != load_policy("L4").sha256()


def test_custom_yaml_file(tmp_path: Path) -> None:
    own = tmp_path / "mine.yaml"
    own.write_text(
        "level: L3\nk: 3\nrules:\n  cn_phone:\n    action: mask\n    params: {keep_start: 3, keep_end: 4}\n",
        encoding="utf-8",
    )
    policy = load_policy("L3", own)
    assert policy.rules["cn_phone"].params["keep_end"] == 4


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"level": "L4", "kk": 5}, "kk"),
        ({"level": "L4", "rules": {"cn_phonee": {"action": "drop"}}}, "cn_phonee"),
        ({"level": "L4", "rules": {"cn_phone": {"action": "shred"}}}, "cn_phone"),
        ({"level": "L4", "rules": {"cn_phone": {"action": "mask", "params": {"keep_startt": 3}}}}, "keep_startt"),
        ({"level": "L4", "rules": {"cn_phone": {"action": "drop", "params": {"to": "city"}}}}, "to"),
        ({"level": "L4", "rules": {"cn_phone": {"action": "mask_name"}}}, "mask_name"),
        ({"level": "L4", "rules": {"address": {"action": "generalize_address", "params": {"to": "street"}}}}, "to"),
        ({"level": "L4", "rules": {"income": {"action": "band"}}}, "width"),
        ({"level": "L4", "rules": {"income": {"action": "band", "params": {"edges": [5, 1]}}}}, "edges"),
        ({"level": "L4", "default": {"action": "date_year"}}, "default"),
        ({"level": "L4", "quasi_identifiers": ["birthdate"]}, "birthdate"),
        ({"level": "L4", "quasi_identifiers": ["gender"], "rules": {"gender": {"action": "drop"}}}, "gender"),
        ({"level": "L4", "k": 0}, "k"),
        ({"level": "L4", "max_suppression": 1.5}, "max_suppression"),
        ({"level": "L5"}, "level"),
        ({"level": "L3"}, "L3"),  # a policy written for L3 must not govern L4 data
    ],
)
def test_bad_file_is_refused_naming_the_key(tmp_path: Path, data: dict, named: str) -> None:
    path = _write(tmp_path / "bad.json", data)
    with pytest.raises(PolicyError) as caught:
        load_policy("L4", path)
    message = str(caught.value)
    assert str(path) in message
    assert named in message


def test_unparseable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"level": "L4",', encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid JSON"):
        load_policy("L4", path)
    listed = _write(tmp_path / "list.json", ["L4"])  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="object at the top level"):
        load_policy("L4", listed)


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        load_policy("L4", tmp_path / "absent.json")


def test_unknown_level_is_refused() -> None:
    with pytest.raises(PolicyError, match="L9"):
        load_policy("L9")


def test_policy_is_immutable_and_digest_stable() -> None:
    policy = load_policy("L3")
    assert policy.sha256() == load_policy("L3").sha256()
    assert policy.sha256() == Policy.model_validate(json.loads(policy.canonical_json())).sha256()
    with pytest.raises(ValueError):
        policy.k = 2  # type: ignore[misc]
