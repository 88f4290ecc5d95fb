"""Chinese working days, and the due date of a statutory time limit counted in them (issue 24).

Why: the regulations put clocks on people in 工作日 (黑龙江 第十五条, 第二十二条, 第二十四条, 第二十九条,
第三十四条; 双鸭山 第十三条, 第二十七条, 第二十八条, 第三十二条, 第三十九条; 济源 第十九条, 第四十条,
第四十一条), and a working day in China is not Monday to Friday: the State Council's yearly notice moves
official holidays and makes weekends working days (调休). 2025's National Day ran 1–8 October with 28
September (a Sunday) and 11 October (a Saturday) worked, so 5 working days from 30 September end on 14
October, not 8 October.

Where the days come from, in this order:

1. the instance override file ``HOME/calendar.json`` — a region's own notices (a local holiday, a
   make-up day), and the State Council's notice of a year the package does not know yet;
2. the kept package ``chinesecalendar`` (official holidays and make-up days, 2004–2026 in 1.11.0);
3. for a year neither knows: Monday to Friday, but the answer is **provisional** and says why — a
   deadline in such a year is never guessed silently.

Counting starts on the day after receipt (the day of receipt is not counted, as 自收到…之日起 N 个工作日
is read in administrative practice), and dates are China's dates (UTC+8, no daylight saving since
1991): a request received at 23:30 UTC is received the next day in China.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import chinese_calendar

from core import RegistryError

#: China's time (Asia/Shanghai): UTC+8 all year.
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
#: The override file in an instance home.
OVERRIDE_FILE = "calendar.json"
#: The largest count of working days a deadline may ask for (a year and more is no statutory time limit).
MAX_WORKING_DAYS = 250
#: Years a notice may name: the package's first year to far beyond any plausible deadline.
FIRST_YEAR, LAST_YEAR = 2004, 2100
_NOTICE_KEYS = frozenset({"title", "year", "holidays", "workdays"})
_MAX_NOTICE_DAYS = 120
#: Only calendar dates: ``date.fromisoformat`` alone also reads ISO week dates (2025-W40-4) and 20251002.
_YYYY_MM_DD = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


class CalendarError(RegistryError):
    """A date, a count or an override file that cannot be used: refused with what is wrong."""


@dataclass(frozen=True, slots=True)
class Notice:
    """One notice's days off and make-up working days for one year (from the override file)."""

    title: str
    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]


@dataclass(frozen=True, slots=True)
class Due:
    """A due date and how sure it is: provisional when a counted day's year is known to no source."""

    received: date
    working_days: int
    due: date
    provisional: bool
    provisional_reason: str | None

    @property
    def due_at(self) -> datetime:
        """The last instant of the due day in China, in UTC: after it the request is overdue."""
        return datetime.combine(self.due + timedelta(days=1), time(0, 0), CHINA).astimezone(UTC) - timedelta(
            microseconds=1
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "received": self.received.isoformat(),
            "working_days": self.working_days,
            "due": self.due.isoformat(),
            "provisional": self.provisional,
            "provisional_reason": self.provisional_reason,
        }


def china_date(moment: datetime) -> date:
    """The date in China of an aware instant (a naive one is refused: it names no instant)."""
    if moment.tzinfo is None:
        raise CalendarError("a time without a time zone names no instant: give it with Z or +08:00")
    try:
        return moment.astimezone(CHINA).date()
    except OverflowError:
        raise CalendarError(f"{moment.isoformat()} has no date in China (beyond the calendar's range)") from None


def parse_received(text: str) -> date:
    """``YYYY-MM-DD`` (a date in China) or an ISO time with its zone (converted to China's date)."""
    value = (text or "").strip()
    try:
        if len(value) == 10:
            if not _YYYY_MM_DD.fullmatch(value):
                raise ValueError(value)
            return date.fromisoformat(value)
        if not _YYYY_MM_DD.match(value) or value[10:11] not in ("T", "t", " "):
            raise ValueError(value)
        return china_date(datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00")))
    except (ValueError, OverflowError):
        raise CalendarError(
            f"{text!r} is no date: give YYYY-MM-DD (China's date) or an ISO time with its zone, e.g. "
            "2025-09-30T23:30:00Z"
        ) from None


def _package_knows(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def _dates(values: Any, year: int, where: str) -> frozenset[date]:
    if not isinstance(values, list) or len(values) > _MAX_NOTICE_DAYS:
        raise CalendarError(f"{where} must be a list of at most {_MAX_NOTICE_DAYS} dates YYYY-MM-DD")
    found: set[date] = set()
    for value in values:
        if not isinstance(value, str) or not _YYYY_MM_DD.fullmatch(value):
            raise CalendarError(f"{where}: {value!r} is not a date YYYY-MM-DD")
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise CalendarError(f"{where}: {value!r} is not a date YYYY-MM-DD") from None
        if day.year != year:
            raise CalendarError(f"{where}: {value} is not in the notice's year {year}")
        if day in found:
            raise CalendarError(f"{where}: {value} is listed twice")
        found.add(day)
    return frozenset(found)


def _notice(item: Any, index: int) -> Notice:
    where = f"notice {index + 1}"
    if not isinstance(item, dict):
        raise CalendarError(f"{where} must be an object with title, year, holidays and workdays")
    unknown = sorted(set(item) - _NOTICE_KEYS)
    if unknown:
        raise CalendarError(f"{where}: unknown keys {', '.join(unknown)} (allowed: {', '.join(sorted(_NOTICE_KEYS))})")
    title, year = item.get("title"), item.get("year")
    if not isinstance(title, str) or not title.strip() or len(title) > 300:
        raise CalendarError(f"{where}: title names the notice (文号 or title, at most 300 characters)")
    if not isinstance(year, int) or isinstance(year, bool) or not FIRST_YEAR <= year <= LAST_YEAR:
        raise CalendarError(f"{where}: year must be an integer from {FIRST_YEAR} to {LAST_YEAR}")
    holidays = _dates(item.get("holidays", []), year, f"{where} holidays")
    workdays = _dates(item.get("workdays", []), year, f"{where} workdays")
    both = sorted(holidays & workdays)
    if both:
        raise CalendarError(f"{where}: {both[0].isoformat()} is listed as both a holiday and a working day")
    if not holidays and not workdays:
        raise CalendarError(f"{where}: a notice lists at least one holiday or working day")
    return Notice(title.strip(), year, holidays, workdays)


def parse_override(data: Any) -> tuple[Notice, ...]:
    """Validate the override file's content strictly: ``{"notices": [{title, year, holidays, workdays}]}``."""
    if not isinstance(data, dict) or set(data) != {"notices"} or not isinstance(data["notices"], list):
        raise CalendarError('the calendar override is {"notices": [{"title", "year", "holidays", "workdays"}, …]}')
    notices = tuple(_notice(item, i) for i, item in enumerate(data["notices"]))
    seen: dict[date, str] = {}  # every day of every notice first, then compared: the order of notices is no matter
    for notice in notices:
        for day, what in [
            *((d, "a holiday") for d in notice.holidays),
            *((d, "a working day") for d in notice.workdays),
        ]:
            if day in seen:
                both = "listed twice" if seen[day] == what else "both a holiday and a working day"
                raise CalendarError(f"{day.isoformat()} is {both} across notices (no day is listed twice)")
            seen[day] = what
    return notices


def load_override(home: Path | None) -> tuple[Notice, ...]:
    """The notices of ``HOME/calendar.json`` (none when the file is absent); a broken file is refused."""
    if home is None:
        return ()
    path = home / OVERRIDE_FILE
    if not path.exists():
        return ()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CalendarError(f"calendar override {path} is not readable JSON: {exc}") from None
    try:
        return parse_override(data)
    except CalendarError as exc:
        raise CalendarError(f"calendar override {path}: {exc}") from None


@dataclass(frozen=True)
class WorkCalendar:
    """Working days from the override notices, then the package, then (provisional) Monday to Friday."""

    notices: tuple[Notice, ...] = ()
    _holidays: Mapping[date, str] = field(init=False, repr=False)
    _workdays: Mapping[date, str] = field(init=False, repr=False)
    _years: frozenset[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        holidays = {day: n.title for n in self.notices for day in n.holidays}
        workdays = {day: n.title for n in self.notices for day in n.workdays}
        object.__setattr__(self, "_holidays", holidays)
        object.__setattr__(self, "_workdays", workdays)
        object.__setattr__(self, "_years", frozenset(n.year for n in self.notices))

    @classmethod
    def for_home(cls, home: Path | None) -> WorkCalendar:
        return cls(load_override(home))

    def known(self, year: int) -> bool:
        """Whether the year's official arrangement is known (a notice in the override file, or the package)."""
        return year in self._years or _package_knows(year)

    def is_workday(self, day: date) -> bool:
        """Whether ``day`` is a working day; for an unknown year, Monday to Friday (see :meth:`known`)."""
        if day in self._holidays:
            return False
        if day in self._workdays:
            return True
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            return day.weekday() < 5

    def due(self, received: date, working_days: int) -> Due:
        """The ``working_days``-th working day after ``received`` (the day of receipt is not counted)."""
        if isinstance(working_days, bool) or not isinstance(working_days, int):
            raise CalendarError("working days must be a whole number")
        if not 1 <= working_days <= MAX_WORKING_DAYS:
            raise CalendarError(f"working days must be from 1 to {MAX_WORKING_DAYS}, got {working_days}")
        if not FIRST_YEAR <= received.year <= LAST_YEAR - 2:
            raise CalendarError(f"the date of receipt must lie from {FIRST_YEAR} to {LAST_YEAR - 2}")
        day, counted = received, 0
        while counted < working_days:
            day += timedelta(days=1)
            counted += self.is_workday(day)
        unknown = sorted({y for y in range(received.year, day.year + 1) if not self.known(y)})
        reason = None
        if unknown:
            years = ", ".join(str(y) for y in unknown)
            reason = (
                f"no holiday arrangement is known for {years} (chinesecalendar knows 2004–2026 and the override "
                f"file {OVERRIDE_FILE} lists no notice for it): Monday to Friday were counted; recount once the "
                "State Council's notice is out or is listed in the override file"
            )
        return Due(received, working_days, day, bool(unknown), reason)

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (0 when ``end`` is not after ``start``)."""
        return sum(self.is_workday(start + timedelta(days=i)) for i in range(1, (end - start).days + 1))

    def sources(self) -> Iterable[str]:
        """The notices applied besides the package, for display."""
        return tuple(f"{n.year}: {n.title}" for n in self.notices)


__all__ = [
    "CHINA",
    "MAX_WORKING_DAYS",
    "OVERRIDE_FILE",
    "CalendarError",
    "Due",
    "Notice",
    "WorkCalendar",
    "china_date",
    "load_override",
    "parse_override",
    "parse_received",
]
