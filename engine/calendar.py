"""The working calendar and legal deadlines (thời hạn giải quyết), without Flask.

The convention (docs/deadlines.md, "The counting convention", with a worked example):

* Office hours are 07:00-11:30 and 13:30-17:00, UTC+7, on working days (configurable per agency via
  `periods`). One working day is 8 working hours.
* The clock starts at the receipt time if that is within office hours; otherwise at the start of the
  next office period; if the procedure has a cut-off (e.g. 15:00) and the dossier came after it, at the
  start of the next working day. Office periods are half-open: 11:30 and 17:00 are already outside.
* ``N working days`` = N x 8 working hours of office time from the clock start; ``N working hours``
  likewise. A count that ends exactly on the end of a period ends there (11:30, 17:00), not at the
  start of the next one.
* ``N days`` (calendar days) = the end of office hours (17:00) of the Nth calendar day after receipt,
  moved forward to the next working day if that day is not one. Non-working days in between are not
  skipped. The receipt day is the day counted from, except that a dossier received after the
  procedure's cut-off or after the end of office hours counts from the next working day (so that
  "0 days" with cut-off 15:00 is birth registration: the same day, or the next working day after 15:00).

Which days are working days, in order of precedence (later wins):

1. Monday to Friday are working days, Saturday and Sunday are not.
2. The public holidays and compensatory days of the reviewed file engine/data/holidays_vn.csv for
   2024-2030 (generated once from the Python package `holidays`, country "VN", and checked against the
   government's announcements: engine/holiday_seed.py); the package itself for other years.
3. `GOVERNMENT_SWAPS`, below: the government's swaps from the same file (a weekday off and the make-up
   working Saturday; `holidays` has no notion of a working Saturday). Pass ``swaps=...`` to
   `WorkCalendar` to replace this table.
4. The administrators' overrides (table `calendar_days`, see `calendar_from_session`): extra holidays
   and make-up working days, effective for every deadline computed after they are saved.

Everything is computed on integers (microseconds of office time) over a precomputed span of years:
per-day working flags, the running count of working days and the list of working days, so that whole
days are skipped in O(1) and `due_at` costs a few microseconds.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import cache, lru_cache
from itertools import accumulate
from types import MappingProxyType

from . import holiday_seed
from .errors import InvalidInput

__all__ = [
    "VN_TZ",
    "HOURS_PER_WORKING_DAY",
    "DEFAULT_PERIODS",
    "GOVERNMENT_SWAPS",
    "Deadline",
    "parse_deadline",
    "parse_cutoff",
    "WorkCalendar",
    "calendar_from_session",
    "cached_calendar",
    "national_overrides",
    "set_override",
    "delete_override",
]

VN_TZ = timezone(timedelta(hours=7))
HOURS_PER_WORKING_DAY = 8
DEFAULT_PERIODS = ((time(7, 0), time(11, 30)), (time(13, 30), time(17, 0)))
MAX_DAYS = 3650  # anything longer is a typo, not a legal deadline

UNITS = ("working_days", "working_hours", "days")

_US = 1_000_000
_HOUR_US = 3600 * _US
_MINUTE_US = 60 * _US

# Swaps announced by the government (a weekday off, paid back by a Saturday worked): read from the reviewed
# file engine/data/holidays_vn.csv (rows of kind swap_off / makeup, each with its source), for the years it
# covers (engine/holiday_seed.py). Administrators' overrides win over this table.
GOVERNMENT_SWAPS: dict[date, tuple[bool, str]] = holiday_seed.file_swaps()


# --------------------------------------------------------------------------------------------------
# Deadlines


def _fmt_amount(amount: float) -> str:
    return str(int(amount)) if float(amount).is_integer() else repr(float(amount))


def _max_amount(unit: str) -> float:
    return MAX_DAYS * HOURS_PER_WORKING_DAY if unit == "working_hours" else MAX_DAYS


def _invalid_deadline(text, why_vi: str, why_en: str) -> InvalidInput:
    return InvalidInput(
        f'Thời hạn không hợp lệ: "{text}" ({why_vi}). Ví dụ: "15 ngày làm việc", "8 giờ làm việc", "30 ngày".',
        f'Invalid deadline: "{text}" ({why_en}). Examples: "15 working days", "8 working hours", "30 days".',
        details={"field": "deadline", "value": str(text)},
    )


def _check_deadline(amount, unit: str, text) -> None:
    if unit not in UNITS:
        raise _invalid_deadline(text, "đơn vị không hợp lệ", f"unit must be one of {', '.join(UNITS)}")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise _invalid_deadline(text, "số lượng phải là một số", "the amount must be a number")
    if amount != amount or amount < 0:  # NaN or negative
        raise _invalid_deadline(text, "không được âm", "must not be negative")
    if amount > _max_amount(unit):
        raise _invalid_deadline(text, f"quá {MAX_DAYS} ngày", f"longer than {MAX_DAYS} days")
    if unit == "days" and not float(amount).is_integer():
        raise _invalid_deadline(text, "số ngày lịch phải là số nguyên", "calendar days must be whole days")


@dataclass(frozen=True)
class Deadline:
    """A legal deadline: `amount` of `unit` ("working_days", "working_hours" or "days")."""

    amount: float
    unit: str

    def __post_init__(self):
        _check_deadline(self.amount, self.unit, f"{self.amount} {self.unit}")

    @property
    def hours(self) -> float | None:
        """Working hours (1 working day = 8 h); None for calendar days."""
        if self.unit == "working_days":
            return float(self.amount) * HOURS_PER_WORKING_DAY
        if self.unit == "working_hours":
            return float(self.amount)
        return None

    @property
    def text_vi(self) -> str:
        unit = {"working_days": "ngày làm việc", "working_hours": "giờ làm việc", "days": "ngày"}[self.unit]
        return f"{_fmt_amount(self.amount).replace('.', ',')} {unit}"

    def __str__(self) -> str:
        """English text that `parse_deadline` reads back, e.g. "15 working days"."""
        unit = {"working_days": "working day", "working_hours": "working hour", "days": "day"}[self.unit]
        plural = "" if self.amount == 1 else "s"
        return f"{_fmt_amount(self.amount)} {unit}{plural}"


_UNIT_WORDS = {
    "working day": "working_days",
    "working days": "working_days",
    "business day": "working_days",
    "business days": "working_days",
    "ngay lam viec": "working_days",
    "working hour": "working_hours",
    "working hours": "working_hours",
    "business hour": "working_hours",
    "business hours": "working_hours",
    "gio lam viec": "working_hours",
    "day": "days",
    "days": "days",
    "calendar day": "days",
    "calendar days": "days",
    "ngay": "days",
    "ngay lich": "days",
}
_DEADLINE_RE = re.compile(r"^([+-]?)\s*(\d{1,9}(?:[.,]\d{1,6})?)\s*([a-z ]+)$")


def _fold(text: str) -> str:
    """Lower case, no Vietnamese diacritics, single spaces: "15 Ngày Làm Việc" -> "15 ngay lam viec"."""
    s = unicodedata.normalize("NFD", text.strip().lower()).replace("đ", "d")
    s = "".join(ch for ch in s if unicodedata.category(ch) != "Mn")
    return " ".join(s.split())


@lru_cache(maxsize=1024)
def _parse_deadline_cached(text: str) -> Deadline:
    m = _DEADLINE_RE.match(_fold(text))
    if not m:
        raise _invalid_deadline(text, "không đọc được", "cannot read it")
    sign, number, words = m.groups()
    unit = _UNIT_WORDS.get(words.strip())
    if unit is None:
        raise _invalid_deadline(text, "đơn vị không rõ", "unknown unit")
    amount = float(number.replace(",", "."))
    if sign == "-" and amount:
        raise _invalid_deadline(text, "không được âm", "must not be negative")
    if amount.is_integer():
        amount = int(amount)
    _check_deadline(amount, unit, text)
    return Deadline(amount, unit)


def parse_deadline(text: str | Deadline) -> Deadline:
    """Read "15 working days", "8 working hours", "30 days", "15 ngày làm việc", "8 giờ làm việc",
    "30 ngày", "0,5 ngày làm việc" (accents optional). Raises `InvalidInput` naming the text on
    garbage, a negative amount, fractional calendar days or more than 3650 days."""
    if isinstance(text, Deadline):
        return text
    if not isinstance(text, str) or not text.strip():
        raise _invalid_deadline(text, "trống hoặc không phải văn bản", "empty or not text")
    return _parse_deadline_cached(text)


_CUTOFF_RE = re.compile(r"^(\d{1,2})(?::(\d{2})(?::(\d{2}))?|\s*(?:h|g|gio)\s*(\d{2})?)$")


@lru_cache(maxsize=256)
def _parse_cutoff_cached(text: str) -> time:
    m = _CUTOFF_RE.match(_fold(text))
    if m:
        hh, mm, ss = int(m.group(1)), int(m.group(2) or m.group(4) or 0), int(m.group(3) or 0)
        if hh < 24 and mm < 60 and ss < 60:
            return time(hh, mm, ss)
    raise InvalidInput(
        f'Giờ chốt nhận hồ sơ không hợp lệ: "{text}" (ví dụ: "15:00").',
        f'Invalid cut-off time: "{text}" (example: "15:00").',
        details={"field": "cutoff", "value": text},
    )


def parse_cutoff(text: str | time | None) -> time | None:
    """Read a procedure's cut-off: "15:00", "15:00:00", "15h", "15h30"; None or "" for none."""
    if text is None or isinstance(text, time):
        return text
    if not isinstance(text, str):
        raise InvalidInput(
            "Giờ chốt nhận hồ sơ phải là văn bản dạng HH:MM.",
            "The cut-off must be text like HH:MM.",
            details={"field": "cutoff", "value": repr(text)},
        )
    if not text.strip():
        return None
    return _parse_cutoff_cached(text)


# --------------------------------------------------------------------------------------------------
# Seed: weekends and holidays.VN, cached per year for the whole process


@cache
def _vn_holidays(year: int) -> dict[date, str]:
    """The public holidays and compensatory days of one year, names in Vietnamese: from the reviewed file
    engine/data/holidays_vn.csv for the years it covers (2024-2030), so that upgrading the `holidays`
    package never moves a due date silently; from the package (country VN) for other years."""
    if holiday_seed.covers(year):
        return dict(sorted(holiday_seed.file_days_off(year).items()))
    return holiday_seed.package_days(year)


@cache
def _seed_flags(year: int) -> bytes:
    """One byte per day of `year`: 1 for a working day by weekends and holidays.VN alone."""
    first = date(year, 1, 1).toordinal()
    n = date(year + 1, 1, 1).toordinal() - first
    flags = bytearray(1 if (first + i) % 7 not in (0, 6) else 0 for i in range(n))  # ordinal%7: 0=Sun, 6=Sat
    for d in _vn_holidays(year):
        flags[d.toordinal() - first] = 0
    return bytes(flags)


def _time_us(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * _US + t.microsecond


class _Span:
    """Precomputed working days over whole years [lo, hi]; indexes are ordinal - base."""

    __slots__ = ("lo", "hi", "base", "end", "work", "rank", "wds")

    def __init__(self, lo: int, hi: int, flags: bytes):
        self.lo, self.hi = lo, hi
        self.base = date(lo, 1, 1).toordinal()
        self.end = date(hi + 1, 1, 1).toordinal()  # exclusive
        self.work = flags
        # rank[i] = number of working days with index < i
        self.rank = list(accumulate(flags, initial=0))
        self.wds = [i for i, f in enumerate(flags) if f]


# --------------------------------------------------------------------------------------------------
# The calendar


class WorkCalendar:
    """Working days and office hours; computes clock starts, due times and office time between instants.

    `overrides` are the administrators' days ({date: (working, name)}); `swaps` the built-in table of
    government swaps (default `GOVERNMENT_SWAPS`); `periods` the office periods of a working day;
    `tz` the local time zone. Instances are immutable from outside and safe to share between threads.
    """

    def __init__(
        self,
        overrides: Mapping[date, tuple[bool, str]] | None = None,
        periods: Iterable[tuple[time, time]] = DEFAULT_PERIODS,
        tz=VN_TZ,
        swaps: Mapping[date, tuple[bool, str]] | None = None,
    ):
        self.tz = tz
        self.overrides: Mapping[date, tuple[bool, str]] = MappingProxyType(
            {d: (bool(w), n) for d, (w, n) in (overrides or {}).items()}
        )
        self.swaps: Mapping[date, tuple[bool, str]] = MappingProxyType(
            {d: (bool(w), n) for d, (w, n) in (GOVERNMENT_SWAPS if swaps is None else swaps).items()}
        )
        self.periods = tuple((s, e) for s, e in periods)
        us = [(_time_us(s), _time_us(e)) for s, e in self.periods]
        if not us:
            raise ValueError("at least one office period is needed")
        prev_end = -1
        for s, e in us:
            if not s < e or s < prev_end:
                raise ValueError(f"office periods must be increasing and not overlap: {self.periods}")
            prev_end = e
        self._p = us
        self._day_start = us[0][0]
        self._day_end = us[-1][1]
        self._cap = sum(e - s for s, e in us)  # office microseconds in a working day
        # _after[i] = office time in the periods after period i
        self._after = [sum(e - s for s, e in us[i + 1 :]) for i in range(len(us))]
        # per-year corrections (swaps then overrides), applied on the seed flags
        self._fix: dict[int, dict[date, bool]] = {}
        for table in (self.swaps, self.overrides):
            for d, (w, _n) in table.items():
                self._fix.setdefault(d.year, {})[d] = w
        self._span: _Span | None = None
        self._lock = threading.Lock()

    # -- days -------------------------------------------------------------------------------------

    def _year_flags(self, year: int) -> bytes:
        fix = self._fix.get(year)
        if not fix:
            return _seed_flags(year)
        flags = bytearray(_seed_flags(year))
        first = date(year, 1, 1).toordinal()
        for d, w in fix.items():
            flags[d.toordinal() - first] = 1 if w else 0
        return bytes(flags)

    def _covering(self, lo_ord: int, hi_ord: int) -> _Span:
        """The span covering both ordinals (extended, by whole years, when needed)."""
        sp = self._span
        if sp is not None and sp.base <= lo_ord and hi_ord < sp.end:
            return sp
        with self._lock:
            sp = self._span
            if sp is not None and sp.base <= lo_ord and hi_ord < sp.end:
                return sp
            lo = date.fromordinal(lo_ord).year
            hi = date.fromordinal(hi_ord).year
            if sp is None:
                lo, hi = lo - 1, hi + 1
            else:
                lo, hi = min(lo, sp.lo), max(hi, sp.hi)
                if hi > sp.hi:
                    hi = max(hi, sp.hi + 2)  # grow ahead: deadlines run forward
            flags = b"".join(self._year_flags(y) for y in range(lo, hi + 1))
            sp = _Span(lo, hi, flags)
            self._span = sp
            return sp

    def _is_working_ord(self, o: int) -> bool:
        sp = self._covering(o, o)
        return bool(sp.work[o - sp.base])

    def _nth_working_after(self, o: int, n: int) -> int:
        """Ordinal of the n-th working day strictly after ordinal o (n >= 1)."""
        sp = self._covering(o, o)
        while True:
            j = sp.rank[o - sp.base + 1] + n - 1
            if j < len(sp.wds):
                return sp.base + sp.wds[j]
            # not enough working days ahead: extend by the years needed (about 250 working days a year)
            sp = self._covering(o, sp.end + 366 * (1 + (j - len(sp.wds)) // 200))

    def is_working_day(self, d: date) -> bool:
        if isinstance(d, datetime):
            d = d.astimezone(self.tz).date() if d.tzinfo else d.date()
        return self._is_working_ord(d.toordinal())

    def day_name(self, d: date) -> str | None:
        """The name of the holiday, swap or override on `d`, if any (plain weekends have none)."""
        if isinstance(d, datetime):
            d = d.astimezone(self.tz).date() if d.tzinfo else d.date()
        if d in self.overrides:
            return self.overrides[d][1]
        if d in self.swaps:
            return self.swaps[d][1]
        return _vn_holidays(d.year).get(d)

    def non_working_days(self, year: int) -> list[dict]:
        """The special days of `year`, sorted: holidays (including those on a weekend), swapped days
        off and make-up working days, each as {"date", "working", "name", "source"} where source is
        "holidays" (the seeded holidays: engine/data/holidays_vn.csv), "swap" (GOVERNMENT_SWAPS, same
        file) or "override" (an administrator). Plain weekends are not listed. The last source wins."""
        days: dict[date, dict] = {}
        for d, name in _vn_holidays(year).items():
            days[d] = {"date": d, "working": False, "name": name, "source": "holidays"}
        for source, table in (("swap", self.swaps), ("override", self.overrides)):
            for d, (w, name) in table.items():
                if d.year == year:
                    days[d] = {"date": d, "working": w, "name": name, "source": source}
        return [days[d] for d in sorted(days)]

    # -- instants ---------------------------------------------------------------------------------

    def _local(self, dt: datetime) -> tuple[int, int, datetime]:
        if not isinstance(dt, datetime):
            raise TypeError(f"a datetime is needed, got {dt!r}")
        if dt.tzinfo is None or dt.utcoffset() is None:
            raise ValueError(f"naive datetime {dt!r}: give an aware datetime (e.g. tzinfo=VN_TZ)")
        loc = dt.astimezone(self.tz)
        us = ((loc.hour * 60 + loc.minute) * 60 + loc.second) * _US + loc.microsecond
        return loc.toordinal(), us, loc

    def _instant(self, o: int, us: int) -> datetime:
        d = date.fromordinal(o)
        h, r = divmod(us, _HOUR_US)
        m, r = divmod(r, _MINUTE_US)
        s, micro = divmod(r, _US)
        return datetime(d.year, d.month, d.day, h, m, s, micro, tzinfo=self.tz)

    def _normalize(self, o: int, us: int) -> tuple[int, int, int]:
        """The first office instant at or after (o, us): (ordinal, microsecond of day, period index)."""
        if self._is_working_ord(o):
            for i, (s, e) in enumerate(self._p):
                if us < e:
                    return o, (s if us < s else us), i
        return self._nth_working_after(o, 1), self._day_start, 0

    def _start(self, o: int, us: int, loc: datetime, cutoff: time | None) -> tuple[int, int, int]:
        if cutoff is not None and loc.time() > cutoff:
            return self._nth_working_after(o, 1), self._day_start, 0
        return self._normalize(o, us)

    def _advance(self, o: int, us: int, i: int, rem: int) -> tuple[int, int]:
        """From office instant (o, us) in period i, `rem` microseconds of office time forward."""
        p = self._p
        left_today = p[i][1] - us + self._after[i]
        if rem > left_today:
            k, rem = divmod(rem - left_today, self._cap)
            if rem == 0:  # ends exactly at the end of a working day: that day's 17:00
                k, rem = k - 1, self._cap
            o = self._nth_working_after(o, k + 1)
            i, us = 0, p[0][0]
        while True:
            avail = p[i][1] - us
            if rem <= avail:  # "<=": a count ending on 11:30 or 17:00 ends there
                return o, us + rem
            rem -= avail
            i += 1
            us = p[i][0]

    def clock_start(self, received: datetime, cutoff: time | str | None = None) -> datetime:
        """When the deadline clock starts for a dossier received at `received` (see module doc)."""
        o, us, loc = self._local(received)
        o, us, _ = self._start(o, us, loc, parse_cutoff(cutoff))
        return self._instant(o, us)

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The instant `hours` of office time after `start` (first moved into office time)."""
        rem = round(hours * _HOUR_US)
        if rem < 0:
            raise ValueError(f"negative working hours: {hours}")
        o, us, _loc = self._local(start)
        o, us, i = self._normalize(o, us)
        return self._instant(*self._advance(o, us, i, rem))

    def due_at(self, start: datetime, deadline: Deadline | str, cutoff: time | str | None = None) -> datetime:
        """The due time of a dossier received at `start` under `deadline`, per the convention."""
        dl = parse_deadline(deadline)
        cut = parse_cutoff(cutoff)
        o, us, loc = self._local(start)
        if dl.unit == "days":
            if us >= self._day_end or (cut is not None and loc.time() > cut):
                o = self._nth_working_after(o, 1)  # counts from the next working day
            target = o + int(dl.amount)
            if not self._is_working_ord(target):
                target = self._nth_working_after(target, 1)
            return self._instant(target, self._day_end)
        o, us, i = self._start(o, us, loc, cut)
        hours = dl.hours
        assert hours is not None  # working time: a number of working hours
        return self._instant(*self._advance(o, us, i, round(hours * _HOUR_US)))

    def _office_done(self, sp: _Span, o: int, us: int) -> int:
        """Office microseconds from the span's start up to the instant (o, us)."""
        idx = o - sp.base
        done = sp.rank[idx] * self._cap
        if sp.work[idx]:
            for s, e in self._p:
                if us <= s:
                    break
                done += (us if us < e else e) - s
        return done

    def working_hours_between(self, a: datetime, b: datetime) -> float:
        """Office hours from `a` to `b`; negative if `b` is before `a`."""
        oa, ua, _ = self._local(a)
        ob, ub, _ = self._local(b)
        sp = self._covering(min(oa, ob), max(oa, ob))
        return (self._office_done(sp, ob, ub) - self._office_done(sp, oa, ua)) / _HOUR_US


# --------------------------------------------------------------------------------------------------
# Administrators' overrides (table calendar_days)

_cache_lock = threading.Lock()
_calendars: dict[tuple, WorkCalendar] = {}


def cached_calendar(overrides: Iterable[tuple[date, bool, str]], periods=DEFAULT_PERIODS) -> WorkCalendar:
    """The calendar of these overrides and office periods, computed once per process and shared by every
    agency whose calendar is the same (most agencies follow the national calendar)."""
    key = (tuple(sorted((d, bool(w), n) for d, w, n in overrides)), tuple(periods))
    cal = _calendars.get(key)
    if cal is None:
        cal = WorkCalendar({d: (w, n) for d, w, n in key[0]}, periods=key[1])
        with _cache_lock:
            if len(_calendars) >= 64:
                _calendars.clear()
            _calendars[key] = cal
    return cal


def national_overrides(session) -> list[tuple[date, bool, str]]:
    """The administrators' overrides of the national calendar (table calendar_days), one small query."""
    from sqlalchemy import select

    from .models import CalendarDay

    rows = session.execute(select(CalendarDay.day, CalendarDay.working, CalendarDay.name)).all()
    return [(r[0], bool(r[1]), r[2]) for r in rows]


def calendar_from_session(session) -> WorkCalendar:
    """The national calendar with the administrators' current overrides: one query of the small calendar_days
    table on every call (so a new override counts at once); the computed calendar is reused while the
    overrides are unchanged. An agency's own calendar: `engine.agencies.calendar_for`."""
    return cached_calendar(national_overrides(session))


def _as_day(day) -> date:
    if isinstance(day, datetime) or not isinstance(day, (date, str)):
        raise InvalidInput("Ngày không hợp lệ.", f"Invalid day: {day!r} (a date is needed).", details={"field": "day"})
    if isinstance(day, str):
        try:
            return date.fromisoformat(day.strip())
        except ValueError:
            raise InvalidInput(
                f'Ngày không hợp lệ: "{day}" (dạng YYYY-MM-DD).',
                f'Invalid day: "{day}" (format YYYY-MM-DD).',
                details={"field": "day", "value": day},
            ) from None
    return day


def set_override(session, day: date, working: bool, name: str, actor: str | None):
    """Add or change an administrator's override of one day (an extra holiday: working=False; a
    make-up working day: working=True). Flushed in the caller's transaction; returns the row."""
    from .models import CalendarDay, utcnow

    day = _as_day(day)
    if not isinstance(working, bool):
        raise InvalidInput(
            "Trường 'working' phải là true/false.", "'working' must be true or false.", details={"field": "working"}
        )
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput(
            "Tên ngày phải có từ 1 đến 200 ký tự.",
            "The day's name must have 1 to 200 characters.",
            details={"field": "name"},
        )
    row = session.get(CalendarDay, day)
    if row is None:
        row = CalendarDay(day=day, working=working, name=name, updated_by=actor, updated_at=utcnow())
        session.add(row)
    else:
        row.working, row.name, row.updated_by, row.updated_at = working, name, actor, utcnow()
    session.flush()
    return row


def delete_override(session, day: date) -> bool:
    """Remove an administrator's override; the seeded calendar applies again. False if there was none."""
    from .models import CalendarDay

    row = session.get(CalendarDay, _as_day(day))
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True
