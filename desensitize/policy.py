"""Desensitization policies by level: which technique each kind of column gets, as data.

Why policies are data: the technique a column gets is the custodian's decision (双鸭山市公共数据管理
暂行办法 第十一条 分类分级: 针对不同级别数据采用不同的分级保护措施), not the engineer's. Keyong ships a
default per level (``policies/L1.json`` … ``L4.json``, stricter at higher levels); a custodian may
supply their own file, which replaces the shipped one whole — never merged, so what applies is
exactly what the custodian can read in one file.

Every action is one of the de-identification techniques of GB/T 37964-2019《信息安全技术 个人信息
去标识化指南》 (附录A 常用去标识化技术); the result is 去标识化 in the sense of 个人信息保护法 第七十三条
(四) — "个人信息经过处理，使其在不借助额外信息的情况下无法识别特定自然人的过程" — and NOT 匿名化: keyed
pseudonyms can be recomputed by whoever holds the instance pepper (the 额外信息), which is why the
pepper never enters a sandbox. ``TECHNIQUES`` names, for each action, the technique and its basis;
the desensitization report repeats it per column.

Validation is strict (unknown keys, unknown types, parameters of the wrong action are refused) and
errors name the offending key, because a policy typo that silently keeps a column raw is the worst
failure this module can have.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "ACTIONS",
    "DATE_PRECISIONS",
    "DEFAULT_DATES",
    "LEVELS",
    "PERSONAL_LEVELS",
    "PII_TYPE_NAMES",
    "TECHNIQUES",
    "Action",
    "NearUnique",
    "Policy",
    "PolicyError",
    "RiskThreshold",
    "Rule",
    "load_policy",
    "shipped_policy_path",
]

LEVELS = ("L1", "L2", "L3", "L4")
#: The levels of personal information (个人信息保护法 第四条; L4: sensitive, 第二十八条): their
#: policies treat near-unique columns as keys even when the policy file does not say so.
PERSONAL_LEVELS = ("L3", "L4")
#: Date precisions, finest first: what ``Policy.dates`` may allow.
DATE_PRECISIONS = ("day", "month", "year")
#: The finest date a personal level's copy keeps when its policy does not say (issue 23; L3 a month,
#: L4 sensitive personal information only the year, 个人信息保护法 第二十八条).
DEFAULT_DATES = {"L3": "month", "L4": "year"}

#: The column types of the shared vocabulary (desensitize.profiling.PII_TYPES and the types the
#: recognizers add). A policy may only name these, so that a misspelt type cannot leave a column raw.
PII_TYPE_NAMES: tuple[str, ...] = (
    "cn_resident_id",
    "passport",
    "travel_permit",
    "bank_card",
    "health",
    "religion",
    "biometric",
    "precise_location",
    "person_name",
    "cn_phone",
    "cn_landline",
    "email",
    "ip_address",
    "address",
    "birth_date",
    "age",
    "gender",
    "ethnicity",
    "household_region",
    "license_plate",
    "income",
    "uscc",
    "company_name",
    "free_text",
)

Action = Literal[
    "keep",
    "drop",
    "pseudonymize",
    "mask",
    "mask_name",
    "generalize_address",
    "date_year",
    "date_month",
    "date_band",
    "band",
    "round",
    "randomize",
    "redact_text",
]
ACTIONS: tuple[str, ...] = Action.__args__  # type: ignore[attr-defined]

_PIPL_73 = "个人信息保护法 第七十三条(四) 去标识化"
_GBT = "GB/T 37964-2019 附录A"

#: action -> (technique, basis). Masking replaces part of a value by a fixed character, which
#: GB/T 37964-2019 counts among the suppression techniques (屏蔽); rounding and top/bottom coding
#: are generalization (取整, 顶层与底层编码); noise addition and permutation are randomization.
TECHNIQUES: dict[str, tuple[str, str]] = {
    "keep": ("none (保留)", "custodian's grading: 双鸭山市公共数据管理暂行办法 第十一条"),
    "drop": ("suppression 抑制 (attribute removed)", f"{_GBT} 抑制技术; {_PIPL_73}"),
    "pseudonymize": (
        "pseudonymization 假名化 (keyed HMAC-SHA256, irreversible without the key)",
        f"{_GBT} 假名化技术, 密码技术; {_PIPL_73}",
    ),
    "mask": ("suppression 抑制 by masking 屏蔽", f"{_GBT} 抑制技术; {_PIPL_73}"),
    "mask_name": ("suppression 抑制 by masking 屏蔽 (surname kept)", f"{_GBT} 抑制技术; {_PIPL_73}"),
    "generalize_address": ("generalization 泛化 (address to administrative division)", f"{_GBT} 泛化技术; {_PIPL_73}"),
    "date_year": ("generalization 泛化 (date to year)", f"{_GBT} 泛化技术; {_PIPL_73}"),
    "date_month": ("generalization 泛化 (date to the first day of its month)", f"{_GBT} 泛化技术; {_PIPL_73}"),
    "date_band": ("generalization 泛化 (date to band of years)", f"{_GBT} 泛化技术; {_PIPL_73}"),
    "band": ("generalization 泛化 (bands, top/bottom coding 顶层与底层编码)", f"{_GBT} 泛化技术; {_PIPL_73}"),
    "round": ("generalization 泛化 (rounding 取整)", f"{_GBT} 泛化技术; {_PIPL_73}"),
    "randomize": (
        "randomization 随机化 (noise addition 噪声添加 / permutation 置换)",
        f"{_GBT} 随机化技术; {_PIPL_73}",
    ),
    "redact_text": (
        "suppression 抑制 by masking 屏蔽: each entity in free text replaced by its type",
        f"{_GBT} 抑制技术; {_PIPL_73}",
    ),
}

#: Actions whose meaning is bound to one kind of column; any other action applies to any type
#: (its dtype is checked when it runs).
_ACTION_TYPES: dict[str, frozenset[str]] = {
    "mask_name": frozenset({"person_name"}),
    "generalize_address": frozenset({"address", "household_region"}),
    "date_year": frozenset({"birth_date"}),
    "date_month": frozenset({"birth_date"}),
    "date_band": frozenset({"birth_date"}),
}
#: What an unrecognised column may get: nothing type-specific.
_DEFAULT_ACTIONS = frozenset({"keep", "drop", "pseudonymize", "mask", "randomize"})


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _NoParams(_Params):
    pass


class _MaskParams(_Params):
    keep_start: int = Field(0, ge=0)
    keep_end: int = Field(0, ge=0)
    char: str = Field("*", min_length=1, max_length=1)


class _MaskNameParams(_Params):
    # None: one mask character per hidden character; a number hides the given name's length too.
    stars: int | None = Field(2, ge=1, le=8)
    char: str = Field("*", min_length=1, max_length=1)


class _AddressParams(_Params):
    to: Literal["province", "city", "district"] = "district"


class _DateBandParams(_Params):
    width: int = Field(5, ge=2, le=100)


class _BandParams(_Params):
    width: float | None = Field(None, gt=0)
    edges: list[float] | None = Field(None, min_length=2)
    bottom: float | None = None
    top: float | None = None
    #: Also write the band as text in a column "<name>_区间" (the numbers stay in the column itself).
    label: bool = False

    @model_validator(mode="after")
    def _one_scheme(self) -> _BandParams:
        if (self.width is None) == (self.edges is None):
            raise ValueError("band needs exactly one of 'width' or 'edges'")
        if self.edges is not None and any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("band 'edges' must be strictly increasing")
        if self.bottom is not None and self.top is not None and self.bottom >= self.top:
            raise ValueError("band 'bottom' must be below 'top'")
        return self


class _RoundParams(_Params):
    to: float = Field(1.0, gt=0)


class _RandomizeParams(_Params):
    # Numbers: Laplace noise of scale ``scale`` x the column's standard deviation; dates: a uniform
    # shift of at most ``days``; anything else: a permutation of the column (置换).
    scale: float = Field(0.1, gt=0, le=10)
    days: int = Field(15, ge=1, le=3660)


_PARAMS: dict[str, type[_Params]] = {
    "keep": _NoParams,
    "drop": _NoParams,
    "pseudonymize": _NoParams,
    "mask": _MaskParams,
    "mask_name": _MaskNameParams,
    "generalize_address": _AddressParams,
    "date_year": _NoParams,
    "date_month": _NoParams,
    "date_band": _DateBandParams,
    "band": _BandParams,
    "round": _RoundParams,
    "randomize": _RandomizeParams,
    "redact_text": _NoParams,
}


class RiskThreshold(BaseModel):
    """The re-identification risk a level's copy may keep (desensitize.risk defines the measures).

    Why in the policy: GB/T 37964-2019 第6章 (去标识化过程) has the controller set the acceptable
    re-identification risk and verify the result against it; how much risk is acceptable depends
    on how sensitive the data is, i.e. on its level (双鸭山市公共数据管理暂行办法 第十一条 分级保护).
    ``highest``: the highest prosecutor risk 1/f_c (implies k >= ceil(1/highest));
    ``average``: the average prosecutor risk, classes / records (ARX's average-risk model);
    ``record_threshold``: the record risk above which the report counts a record as at risk
    (ARX's "records at risk"; default: ``highest``). None: that bound is not enforced.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    highest: float | None = Field(None, gt=0.0, le=1.0)
    average: float | None = Field(None, gt=0.0, le=1.0)
    record_threshold: float | None = Field(None, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _consistent(self) -> RiskThreshold:
        if self.highest is not None and self.average is not None and self.average > self.highest:
            raise ValueError("average cannot exceed highest (the average of record risks is at most their maximum)")
        return self

    @property
    def at_risk(self) -> float:
        """The record risk above which a record counts as at risk (0.2, i.e. below 5-anonymity, when unset)."""
        return self.record_threshold or self.highest or 0.2


class NearUnique(BaseModel):
    """When a column of a personal table is a key: more than ``share`` of its non-null rows hold a
    value (after the column's own rule) that fewer than ``group`` rows hold (2: a value of its own).

    Such a value links its row back to a person through a public register (统一社会信用代码, plate or
    order numbers), which makes the column an identifier in the sense of 个人信息保护法 第七十三条(四)
    whatever its type; ``action`` is what it then gets (GB/T 37964-2019 假名化 or 抑制).
    ``desensitize.keys`` applies it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    share: float = Field(0.5, gt=0.0, le=1.0)
    group: int = Field(2, ge=2, le=1000)
    action: Literal["pseudonymize", "drop"] = "pseudonymize"


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and the offending key."""


class Rule(BaseModel):
    """One technique with its parameters; ``params`` are validated against the action and completed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Action
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _check_params(cls, data: Any) -> Any:
        """Validate ``params`` against the action and complete them with defaults.

        Completed, so that the report and the policy digest say exactly what was applied.
        """
        if not isinstance(data, dict) or data.get("action") not in _PARAMS:
            return data  # the field validation reports a missing or unknown action
        params = data.get("params") or {}
        if not isinstance(params, dict):
            raise ValueError(f"params of action {data['action']!r}: expected an object")
        try:
            checked = _PARAMS[data["action"]].model_validate(params)
        except ValidationError as exc:
            raise ValueError(f"params of action {data['action']!r}: {_describe(exc)}") from None
        return {**data, "params": checked.model_dump()}

    @property
    def technique(self) -> str:
        return TECHNIQUES[self.action][0]

    @property
    def basis(self) -> str:
        return TECHNIQUES[self.action][1]


class Policy(BaseModel):
    """The techniques for one level: a rule per column type, a default, and the k-anonymity target."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Literal["L1", "L2", "L3", "L4"]
    description: str = ""
    rules: dict[str, Rule] = Field(default_factory=dict)
    #: What a column the profiler recognised nothing in gets.
    default: Rule = Field(default_factory=lambda: Rule(action="keep"))
    #: k of k-anonymity over the quasi-identifier columns (GB/T 37964-2019 附录B K-匿名模型); 1 disables it.
    k: int = Field(5, ge=1, le=1000)
    #: Largest share of rows that may be suppressed before generalization stops (record suppression).
    max_suppression: float = Field(0.05, ge=0.0, le=1.0)
    quasi_identifiers: list[str] = Field(default_factory=list)
    #: Types whose column's l-diversity the report gives (the first present one).
    sensitive: list[str] = Field(default_factory=list)
    #: Re-identification risk the copy may keep over the quasi-identifiers; None: k alone.
    risk: RiskThreshold | None = None
    #: Near-unique columns are keys (``desensitize.keys``); None: not applied (L1/L2 unless set).
    near_unique: NearUnique | None = None
    #: The finest date precision a copy keeps: in a personal table every date quasi-identifier is
    #: coarsened to it before k-anonymity (issue 23, ``desensitize.quasi``); None: dates are not
    #: quasi-identifiers by default (L1/L2).
    dates: Literal["day", "month", "year"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _personal_keys(cls, data: Any) -> Any:
        """Fail closed: a policy of a personal level (L3/L4) that does not mention ``near_unique``
        gets the default one; a custodian who wants none must say so with ``"share": 1.0``. Likewise
        ``dates``: the level's default precision (``DEFAULT_DATES``)."""
        if isinstance(data, dict) and data.get("level") in PERSONAL_LEVELS:
            if data.get("near_unique") is None:
                data = {**data, "near_unique": {}}
            if data.get("dates") is None:
                data = {**data, "dates": DEFAULT_DATES[data["level"]]}
        return data

    @field_validator("rules")
    @classmethod
    def _known_rule_types(cls, rules: dict[str, Rule]) -> dict[str, Rule]:
        for pii_type, rule in rules.items():
            _require_type(pii_type)
            allowed = _ACTION_TYPES.get(rule.action)
            if allowed is not None and pii_type not in allowed:
                raise ValueError(f"{pii_type}: action {rule.action!r} applies only to {sorted(allowed)}")
        return rules

    @field_validator("quasi_identifiers", "sensitive")
    @classmethod
    def _known_types(cls, types: list[str]) -> list[str]:
        for pii_type in types:
            _require_type(pii_type)
        if len(set(types)) != len(types):
            raise ValueError("types listed twice")
        return types

    @field_validator("default")
    @classmethod
    def _plain_default(cls, rule: Rule) -> Rule:
        if rule.action not in _DEFAULT_ACTIONS:
            raise ValueError(f"default action must be one of {sorted(_DEFAULT_ACTIONS)}, not {rule.action!r}")
        return rule

    @model_validator(mode="after")
    def _qi_not_dropped(self) -> Policy:
        for pii_type in self.quasi_identifiers:
            rule = self.rules.get(pii_type)
            if rule is not None and rule.action in {"drop", "pseudonymize", "randomize"}:
                raise ValueError(
                    f"quasi_identifiers: {pii_type!r} is also given action {rule.action!r}; a quasi-identifier is "
                    "generalized, so list it in one place only"
                )
        return self

    @model_validator(mode="after")
    def _no_labels_on_quasi_identifiers(self) -> Policy:
        """A band's label column is not generalized by k-anonymity with its column: on a
        quasi-identifier it would keep the finer bands the search coarsened (fail closed: refused)."""
        for pii_type in self.quasi_identifiers:
            rule = self.rules.get(pii_type)
            if rule is not None and rule.action == "band" and rule.params.get("label"):
                raise ValueError(f"rules.{pii_type}: a quasi-identifier's band cannot have a label column")
        return self

    def rule_for(self, pii_type: str | None) -> Rule:
        """The rule of a column of ``pii_type`` (the default for unrecognised or unlisted types)."""
        if pii_type is None:
            return self.default
        return self.rules.get(pii_type, self.default)

    def canonical_json(self) -> str:
        data = self.model_dump(mode="json")
        if data.get("risk") is None:
            data.pop("risk", None)  # a policy without a risk threshold keeps the digest it had before the field existed
        if data.get("near_unique") is None:
            data.pop("near_unique", None)  # likewise for near-unique keys
        if data.get("dates") is None:
            data.pop("dates", None)  # likewise for the date precision (L1/L2)
        return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    def sha256(self) -> str:
        """Digest of the policy as applied (defaults filled in), recorded with every copy it makes."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()


def _require_type(pii_type: str) -> None:
    if pii_type not in PII_TYPE_NAMES:
        raise ValueError(f"unknown column type {pii_type!r} (known: {', '.join(PII_TYPE_NAMES)})")


def _describe(exc: ValidationError) -> str:
    """pydantic's errors as 'key.path: message' items, so the bad key is named first."""
    parts = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        parts.append(f"{loc}: {message}" if loc else message)
    return "; ".join(parts)


def shipped_policy_path(level: str) -> Path:
    """The default policy file of ``level`` shipped with Keyong."""
    if level not in LEVELS:
        raise PolicyError(f"unknown level {level!r} (known: {', '.join(LEVELS)})")
    return Path(__file__).with_name("policies") / f"{level}.json"


def _read(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in {".yaml", ".yml"}:
        import yaml  # presidio depends on PyYAML; imported only for YAML policies

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PolicyError(f"policy {path}: not valid YAML: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"policy {path}: not valid JSON: {exc}") from None


def load_policy(level: str, path: Path | None = None) -> Policy:
    """The policy for ``level``: the custodian's file at ``path`` if given, else the shipped default.

    A custodian's file replaces the shipped one entirely and must declare the same level (a policy
    written for L2 data must not silently govern L4 data). Raises ``PolicyError`` (a ValueError)
    naming the file and the bad key; OSError when the file cannot be read.
    """
    source = shipped_policy_path(level) if path is None else Path(path)
    data = _read(source)
    if not isinstance(data, dict):
        raise PolicyError(f"policy {source}: expected an object at the top level, got {type(data).__name__}")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(f"policy {source}: {_describe(exc)}") from None
    if policy.level != level:
        raise PolicyError(f"policy {source}: level: declares {policy.level!r} but is used for {level!r}")
    return policy
