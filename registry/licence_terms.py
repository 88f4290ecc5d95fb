"""The terms a licence is granted on, checked before anything is written.

A licence (授权运营协议) names its mode (整体授权, 分领域授权 or 依场景授权, 双鸭山 第四十六条), the
datasets or domains in scope, the application scenarios it allows, validity dates, a privacy budget
ε per dataset, and the fee class of the products (公益 free, 经营性 priced, 第四十四条). The terms
travel as one :class:`LicenceTerms` object instead of a dozen keyword arguments.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from core import RegistryError, invisible_character
from registry.models import ResourceRow
from registry.vocabulary import FeeClass, LicenceMode

DEFAULT_EPSILON = 3.0
#: δ per dataset: below 1/n for tables up to 100,000 rows (DP-SGD's δ must stay below 1/n).
DEFAULT_DELTA = 1e-5
#: The largest privacy budget ε a licence may grant or be raised to, for one dataset: beyond it a
#: "budget" no longer bounds anything (ε = 1e300 was accepted from the CLI and the console, which the
#: API refused: the bound is the registry's, so every door applies it).
MAX_EPSILON = 1000.0
#: 公示 (双鸭山 第四十八条) lasts days, not years; a year is already far beyond any practice.
MAX_PUBLICITY_DAYS = 365


def check_epsilon(value: float, what: str) -> float:
    """``value`` if it is a finite ε in (0, :data:`MAX_EPSILON`]; refused otherwise (the message names ``what``)."""
    if not math.isfinite(value) or not 0 < value <= MAX_EPSILON:
        raise RegistryError(f"{what} must be a positive number, at most {MAX_EPSILON:g}, not {value}")
    return value


def check_visible_names(values: list[str], what: str) -> list[str]:
    """Names of scenarios or domains hold visible characters only (:func:`core.invisible_character`):
    a control or bidi character makes one scenario read as another, or rewrites a terminal."""
    for value in values:
        found = invisible_character(value)
        if found is not None:
            position, code, kind = found
            raise RegistryError(
                f"{what} {value.encode('unicode_escape').decode('ascii')!r} holds the {kind} character {code} at "
                f"character {position}: names are visible text"
            )
    return values


# The integer and date knobs of a grant are bounded here, in the domain, so every path that grants a
# licence (the API, the console, the CLI, a script) refuses the same values with the same message,
# and nothing past them reaches date arithmetic (an overflow) or an INTEGER column (issue 17).
#: Prices are in fen (分), an INTEGER (signed 32-bit) column: up to 21,474,836.47 yuan.
MAX_PRICE_CENTS = 2**31 - 1
#: Dates a licence may name: its validity ends within this range, so date arithmetic never overflows.
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2199, 12, 31)


def _bounded_int(value: object, what: str, low: int, high: int) -> int:
    """``value`` as an int within [low, high], or a :class:`RegistryError` naming the bounds."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise RegistryError(f"{what} must be a whole number from {low:,} to {high:,}, not {value!r}")
    if not low <= value <= high:
        raise RegistryError(f"{what} must be from {low:,} to {high:,}, not {value:,}")
    return value


def _bounded_date(value: date, what: str) -> date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise RegistryError(f"{what} must be from {EARLIEST_DATE} to {LATEST_DATE}, not {value}")
    return value


def require_reason(reason: str | None, what: str) -> str:
    """A non-empty reason: every act on operators and licences says why, and the ledger keeps it."""
    reason = (reason or "").strip()
    if not reason:
        raise RegistryError(f"{what} needs a reason (it goes to the ledger)")
    return reason


def clean_list(values: Iterable[str] | None) -> list[str]:
    """Strip, drop empties, keep first occurrences in order."""
    seen: list[str] = []
    for value in values or []:
        value = value.strip()
        if value and value not in seen:
            seen.append(value)
    return seen


@dataclass(frozen=True)
class CheckedTerms:
    """Terms with their vocabulary parsed, lists cleaned and defaults applied."""

    mode: LicenceMode
    names: list[str]
    domains: list[str]
    scenarios: list[str]
    valid_from: date
    valid_until: date
    epsilon: float | dict[str, float]
    fee_class: FeeClass
    price_cents: int | None
    publicity_days: int
    joint: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True)
class LicenceTerms:
    """What a grant asks for, as given (strings or enums, unclean lists); :meth:`checked` validates it."""

    scenarios: list[str]
    valid_until: date
    datasets: list[str] | None = None
    mode: LicenceMode | str = LicenceMode.SCENARIO
    domains: list[str] | None = None
    valid_from: date | None = None
    epsilon: float | dict[str, float] = DEFAULT_EPSILON
    fee_class: FeeClass | str = FeeClass.PUBLIC_WELFARE
    price_cents: int | None = None
    publicity_days: int | None = None
    #: Link groups (issue 23): each two or more of the licence's datasets granted for joint analysis.
    joint: list[list[str]] | None = None

    def checked(self, today: date, default_publicity_days: int) -> CheckedTerms:
        """Refuse terms that break a rule (the message says which); otherwise the normalised terms."""
        try:
            mode = LicenceMode(self.mode)
        except ValueError:
            raise RegistryError(f"unknown licence mode {self.mode!r}; one of {', '.join(LicenceMode)}") from None
        try:
            fee_class = FeeClass(self.fee_class)
        except ValueError:
            raise RegistryError(f"unknown fee class {self.fee_class!r}; one of {', '.join(FeeClass)}") from None
        price_cents = self.price_cents
        if price_cents is not None:
            price_cents = _bounded_int(price_cents, "price_cents (分)", 0, MAX_PRICE_CENTS)
        if fee_class == FeeClass.COMMERCIAL and (price_cents is None or price_cents <= 0):
            raise RegistryError(
                "a 经营性 licence needs a positive price (--price-cents; 双鸭山 第四十四条: 政府指导价)"
            )
        if fee_class == FeeClass.PUBLIC_WELFARE and price_cents is not None:
            raise RegistryError("公益 products are free: a 公益 licence takes no price (双鸭山 第四十四条)")
        names, domains, scenarios = clean_list(self.datasets), clean_list(self.domains), clean_list(self.scenarios)
        check_visible_names(scenarios, "scenario")
        check_visible_names(domains, "domain")
        if not scenarios:
            raise RegistryError("a licence must name the application scenarios (应用场景) it allows")
        valid_from = _bounded_date(self.valid_from or today, "valid_from")
        _bounded_date(self.valid_until, "valid_until")
        if self.valid_until < today:
            raise RegistryError(f"valid_until {self.valid_until} has already passed")
        if self.valid_until < valid_from:
            raise RegistryError(f"valid_until {self.valid_until} is before valid_from {valid_from}")
        days = default_publicity_days if self.publicity_days is None else self.publicity_days
        what = "publicity days (公示, 双鸭山 第四十八条)"
        if isinstance(days, int) and not isinstance(days, bool) and days < 0:
            raise RegistryError(f"{what} cannot be negative (0 activates at once)")
        days = _bounded_int(days, what, 0, MAX_PUBLICITY_DAYS)
        return CheckedTerms(
            mode=mode,
            names=names,
            domains=domains,
            scenarios=scenarios,
            valid_from=valid_from,
            valid_until=self.valid_until,
            epsilon=self.epsilon,
            fee_class=fee_class,
            price_cents=price_cents,
            publicity_days=days,
            joint=check_joint_groups(self.joint),
        )


def check_joint_groups(groups: Iterable[Iterable[str]] | None) -> list[list[str]]:
    """Link groups as given, cleaned: each names two or more datasets, and a dataset is in one group at most.

    Why: linkage is granted, not given (issue 23). A group is the set of datasets whose copies share a
    per-licence person key; a dataset in two groups would join them into one larger group the agency never
    named, so that is refused rather than merged. Whether the datasets are the licence's, and hold a person
    key, is checked once the scope is known (:func:`check_joint_scope`).
    """
    checked: list[list[str]] = []
    seen: dict[str, int] = {}
    for number, group in enumerate(groups or [], start=1):
        if isinstance(group, str):
            raise RegistryError(f"joint group {number} must be a list of dataset names, not the string {group!r}")
        names = [str(n).strip() for n in group]
        if any(not n for n in names):
            raise RegistryError(f"joint group {number} names an empty dataset")
        if any("+" in n for n in names):
            raise RegistryError(f"joint group {number}: dataset names cannot hold '+' ({', '.join(names)})")
        if len(set(names)) != len(names):
            raise RegistryError(f"joint group {number} names a dataset twice ({', '.join(names)})")
        if len(names) < 2:
            raise RegistryError(
                f"joint group {number} ({', '.join(names) or 'empty'}) needs two or more datasets: "
                "a dataset alone is never linked to anything"
            )
        for name in names:
            if name in seen:
                raise RegistryError(
                    f"dataset {name!r} is in joint groups {seen[name]} and {number}: a dataset is granted jointly "
                    "with one group at most"
                )
            seen[name] = number
        checked.append(sorted(names))
    return checked


def check_joint_scope(groups: list[list[str]], resources: list[ResourceRow], person_key_types: Iterable[str]) -> None:
    """Each group's datasets lie in the licence's scope, and each holds a person key column to join on."""
    by_name = {r.name: r for r in resources}
    keys = frozenset(person_key_types)
    for group in groups:
        outside = [n for n in group if n not in by_name]
        if outside:
            raise RegistryError(
                f"joint group {'+'.join(group)} names {', '.join(outside)}, outside the licence's datasets "
                f"({', '.join(sorted(by_name))})"
            )
        for name in group:
            if not any(item.pii_type in keys for item in by_name[name].items):
                raise RegistryError(
                    f"dataset {name!r} has no person key column (a column classified {' or '.join(sorted(keys))}): "
                    "it cannot be analysed jointly with anything"
                )


def check_catalog_scenarios(resources: list[ResourceRow], scenarios: list[str]) -> None:
    """A catalog entry that names its 授权运营应用场景 is licensed for those scenarios only.

    The scenarios a custodian publishes in the catalog (双鸭山 第十二条) bound what the agency may
    license the data for (济源 draft 第三十三条: shared data is not used, even indirectly, for other
    purposes; 双鸭山 第四十六条 依场景授权); an entry naming none leaves the choice to the agency.
    """
    for resource in resources:
        allowed = [str(s) for s in resource.operation_scenarios or []]
        outside = [s for s in scenarios if allowed and s not in allowed]
        if outside:
            raise RegistryError(
                f"dataset {resource.name!r} is catalogued for the scenarios {', '.join(allowed)} only "
                f"(授权运营应用场景); {', '.join(outside)} would go beyond them: change the catalog entry first"
            )


def budgets(epsilon: float | dict[str, float], names: list[str]) -> dict[str, float]:
    """ε per dataset: one value for all, or a mapping (datasets it omits get the default)."""
    if isinstance(epsilon, dict):
        unknown = sorted(set(epsilon) - set(names))
        if unknown:
            raise RegistryError(f"privacy budget given for datasets outside the licence: {', '.join(unknown)}")
        found = {n: float(epsilon.get(n, DEFAULT_EPSILON)) for n in names}
    else:
        found = dict.fromkeys(names, float(epsilon))
    for name, value in found.items():
        check_epsilon(value, f"privacy budget ε for {name!r}")
    return found


__all__ = [
    "DEFAULT_DELTA",
    "DEFAULT_EPSILON",
    "EARLIEST_DATE",
    "LATEST_DATE",
    "MAX_EPSILON",
    "MAX_PRICE_CENTS",
    "MAX_PUBLICITY_DAYS",
    "CheckedTerms",
    "LicenceTerms",
    "budgets",
    "check_catalog_scenarios",
    "check_epsilon",
    "check_joint_groups",
    "check_joint_scope",
    "check_visible_names",
    "clean_list",
    "require_reason",
]
