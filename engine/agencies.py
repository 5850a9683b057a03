"""Agencies (cơ quan) and their working calendars (docs/deadlines.md, "Agencies and their calendars").

The hierarchy is the one agency codes carry: `D.C.B.P`, read from the right,

* `P` the province (`H56`): `000.00.00.H56` is the province itself (level 1);
* `B` a department or a district of it: `000.00.14.H56` (level 2);
* `C` a commune (or unit) of that district or department: `000.31.14.H56` (level 3);
* `D` a unit of that commune: `002.31.14.H56` (level 4).

The parent of a code is the code with its leftmost non-zero number set to zeros (`000.31.14.H56` →
`000.00.14.H56` → `000.00.00.H56`); a code with a non-zero number to the left of a zero one is refused.

An agency's calendar is inherited downwards: the national calendar (the seeded days, the government's swaps,
the administrators' national overrides: engine/calendar.py), then the days of the province, of the district,
of the commune, the nearer one winning for a day; its office hours are its own, else its nearest ancestor's,
else the national default (07:00-11:30, 13:30-17:00). An agency missing from the table (or an ancestor
missing) adds nothing: its calendar is its nearest registered ancestor's.

Every due time is computed on the calendar of the agency that does the work (`calendar_for`): a dossier's on
the receiving agency's, a step's on the performing agency's (engine/dossiers.py).

Who may change agencies: administrators (`put_agency`, `import_agencies`), in one transaction with an audit
event; list and get are for administrators too (the admin API, api/agencies.py; `motcua agencies import`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from datetime import date, time
from typing import Any, Protocol

from sqlalchemy import delete, func, insert, select, update

from . import caches
from .auth import Actor
from .calendar import DEFAULT_PERIODS, HOURS_PER_WORKING_DAY, VN_TZ, WorkCalendar, cached_calendar, national_overrides
from .db import Database
from .errors import InvalidInput, NotFound, WorkflowDataError
from .expressions import ExpressionError, check_expression, safe_evaluate
from .models import Agency, AgencyDay, Event, utcnow
from .paging import page_of, paging

__all__ = [
    "LEVELS",
    "parse_code",
    "ancestors",
    "parse_office_hours",
    "calendar_for",
    "list_agencies",
    "get_agency",
    "put_agency",
    "import_agencies",
    "read_csv",
]

CODE_RE = re.compile(r"^(\d{3})\.(\d{2})\.(\d{2})\.([A-Z]\d{2})$")
LEVELS = {
    1: ("tỉnh", "province"),
    2: ("sở, ngành hoặc huyện", "department or district"),
    3: ("xã hoặc đơn vị trực thuộc", "commune or unit"),
    4: ("đơn vị cấp dưới xã", "unit of a commune"),
}
MAX_DAYS_PER_AGENCY = 1000
WEEKDAYS_VI = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật")


def _field(field: str, vi: str, en: str, **extra) -> InvalidInput:
    return InvalidInput(vi, en, {"fields": {field: f"{vi} / {en}"}, "field": field, **extra})


# --------------------------------------------------------------------------------------------------
# The code and its hierarchy


def parse_code(code: Any) -> tuple[int, str | None]:
    """(level, parent code) of an agency code, or InvalidInput naming the code."""
    m = CODE_RE.match(code) if isinstance(code, str) else None
    if m is None:
        raise _field(
            "code",
            f"Mã cơ quan không hợp lệ: '{code}' (dạng 000.31.14.H56)",
            f"invalid agency code '{code}' (format 000.31.14.H56)",
        )
    d, c, b, p = m.groups()
    numbers = [int(d), int(c), int(b)]  # leftmost first
    level = 1 + sum(1 for n in numbers if n)
    # non-zero numbers must be the rightmost ones: 000.31.00.H56 would be a commune of no district
    if numbers[: 3 - (level - 1)] != [0] * (3 - (level - 1)):
        raise _field(
            "code",
            f"Mã cơ quan '{code}' có cấp trên bằng 0 (dạng 000.31.14.H56)",
            f"agency code '{code}' skips a level (format 000.31.14.H56)",
        )
    if level == 1:
        return 1, None
    parts = [d, c, b]
    first = next(i for i, n in enumerate(numbers) if n)
    parts[first] = "0" * len(parts[first])
    return level, ".".join([*parts, p])


def ancestors(code: str) -> list[str]:
    """The code and its ancestors, nearest first: `000.31.14.H56` → [itself, `000.00.14.H56`, `000.00.00.H56`].
    A code that is not in the hierarchy's format has no ancestors."""
    out = [code]
    try:
        parent = parse_code(code)[1]
        while parent is not None:
            out.append(parent)
            parent = parse_code(parent)[1]
    except InvalidInput:
        pass
    return out


# --------------------------------------------------------------------------------------------------
# The agency that performs a step (docs/bpmn-conventions.md, "Inter-agency procedures")


def performer_problems(text: str) -> list[tuple[str, str]]:
    """What is wrong with a lane's or user task's `agency` (a code, or an expression over the dossier's data
    giving one), read without a database: [(vi, en)]."""
    if CODE_RE.match(text) or re.fullmatch(r"[\d.]+\.[A-Za-z]\d{2}", text):
        try:
            parse_code(text)
        except InvalidInput as exc:
            return [(exc.message_vi, exc.message_en)]
        return []
    return [(m, m) for m in check_expression(text, kind="condition")]


def any_registered(session) -> bool:
    """Whether the agencies table holds any agency (one indexed row read)."""
    return session.scalar(select(Agency.code).limit(1)) is not None


def unknown_agencies(session, codes) -> list[str]:
    """The fixed agency codes among `codes` that the agencies table does not hold."""
    wanted = sorted({c for c in codes if CODE_RE.match(c)})
    known = set(session.scalars(select(Agency.code).where(Agency.code.in_(wanted)))) if wanted else set()
    return [c for c in wanted if c not in known]


def performing_agency(session, spec: str | None, data: dict, default: str, element: str) -> str:
    """The agency whose staff do a step: `default` (the dossier's receiving agency) when the step names none,
    the code it names, or what its expression gives over the dossier's data; the agency must be registered.
    A failing expression or an unknown agency is WorkflowDataError naming the element (the step is not taken)."""
    if not spec:
        return default
    code: Any = spec
    if not CODE_RE.match(spec):
        try:
            code = safe_evaluate(spec, data)
        except ExpressionError as exc:
            raise _performer_error(element, spec, exc.message_vi, exc.message_en) from None
    if not isinstance(code, str) or not CODE_RE.match(code) or session.get(Agency, code) is None:
        raise _performer_error(
            element,
            spec,
            f"cho ra '{code}', không phải mã một cơ quan đã đăng ký",
            f"gives '{code}', which is not the code of a registered agency",
        )
    return code


def _performer_error(element: str, spec: str, vi: str, en: str) -> WorkflowDataError:
    return WorkflowDataError(
        f"Cơ quan thực hiện bước '{element}' ({spec}) {vi}",
        f"the performing agency of step '{element}' ({spec}) {en}",
        {"element": element, "problems": [{"element": element, "message_vi": vi, "message_en": en}]},
    )


# --------------------------------------------------------------------------------------------------
# Office hours

_HOURS_TEXT = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _hm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


def parse_office_hours(value: Any) -> tuple[tuple[time, time], ...] | None:
    """Office periods from `[["07:00", "11:30"], ["13:30", "17:00"]]` or the text `07:00-11:30 13:30-17:00`
    (periods separated by spaces, commas or semicolons); None or "" for "the parent's". Periods must be
    increasing, must not overlap and must add up to 8 hours (one working day is one office day, so that
    "N working days" stays N days of the agency's office); InvalidInput names the field `office_hours`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    bad = _field(
        "office_hours",
        f"Giờ làm việc không hợp lệ: {value!r} (ví dụ 07:00-11:30 13:30-17:00)",
        f"invalid office hours {value!r} (e.g. 07:00-11:30 13:30-17:00)",
    )
    pairs: list[tuple[str, str]] = []
    if isinstance(value, str):
        for chunk in re.split(r"[\s,;]+(?=\d{1,2}:\d{2}\s*-)", value.strip()):
            m = _HOURS_TEXT.match(chunk)
            if m is None:
                raise bad
            pairs.append((f"{m[1]}:{m[2]}", f"{m[3]}:{m[4]}"))
    elif isinstance(value, list) and value:
        for p in value:
            if not (isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(x, str) for x in p)):
                raise bad
            pairs.append((p[0], p[1]))
    else:
        raise bad
    if len(pairs) > 6:
        raise bad
    try:
        periods = tuple((_hm(a), _hm(b)) for a, b in pairs)
        WorkCalendar(periods=periods)  # the calendar's own check: increasing, not overlapping
    except ValueError:
        raise bad from None
    minutes = sum((e.hour * 60 + e.minute) - (s.hour * 60 + s.minute) for s, e in periods)
    if minutes != HOURS_PER_WORKING_DAY * 60:  # one working day is one office day, everywhere
        raise _field(
            "office_hours",
            f"Giờ làm việc phải cộng lại đúng {HOURS_PER_WORKING_DAY} giờ (đang là {minutes / 60:g} giờ)",
            f"office hours must add up to {HOURS_PER_WORKING_DAY} hours (they add up to {minutes / 60:g})",
        )
    return periods


def _hours_json(periods) -> list[list[str]] | None:
    if periods is None:
        return None
    return [[s.strftime("%H:%M"), e.strftime("%H:%M")] for s, e in periods]


# --------------------------------------------------------------------------------------------------
# The calendar of an agency


def _chain(session, code: str) -> tuple[list, dict]:
    """(registered agencies of the chain, nearest first; their days by agency code)."""
    codes = ancestors(code)
    rows = {a.code: a for a in session.scalars(select(Agency).where(Agency.code.in_(codes)))}
    chain = [rows[c] for c in codes if c in rows]
    days: dict[str, list] = {a.code: [] for a in chain}
    if chain:
        for r in session.execute(
            select(AgencyDay.agency, AgencyDay.day, AgencyDay.working, AgencyDay.name).where(
                AgencyDay.agency.in_(list(days))
            )
        ):
            days[r[0]].append((r[1], bool(r[2]), r[3]))
    return chain, days


def _effective(session, code: str | None):
    """(overrides {day: (working, name, source)}, periods, agency the periods come from or None)."""
    merged: dict[date, tuple[bool, str, str]] = {d: (w, n, "override") for d, w, n in national_overrides(session)}
    periods: tuple[tuple[time, time], ...] = DEFAULT_PERIODS
    hours_from = None
    if code:
        chain, days = _chain(session, code)
        for a in reversed(chain):  # the province first, the agency itself last: the nearer one wins
            for d, w, n in days[a.code]:
                merged[d] = (w, n, f"agency:{a.code}")
        own = next((a for a in chain if a.office_hours), None)
        if own is not None:
            periods = parse_office_hours(own.office_hours) or DEFAULT_PERIODS
            hours_from = own.code
    return merged, periods, hours_from


def calendar_for(session, agency: str | None) -> WorkCalendar:
    """The working calendar of `agency` (None: the national one), read now: at most three small indexed
    queries; the computed calendar is shared by every agency with the same days and hours."""
    merged, periods, _ = _effective(session, agency)
    return cached_calendar(((d, w, n) for d, (w, n, _s) in merged.items()), periods)


def calendar_sources(session, agency: str | None) -> dict[date, str]:
    """Where each overridden day of an agency's calendar comes from: "override" (national) or "agency:<code>"."""
    return {d: src for d, (_w, _n, src) in _effective(session, agency)[0].items()}


# --------------------------------------------------------------------------------------------------
# Views


def _level_text(level: int) -> str:
    vi, en = LEVELS.get(level, ("?", "?"))
    return f"{vi} / {en}"


def agency_row_view(a: Agency) -> dict:
    return {
        "code": a.code,
        "name": a.name,
        "level": a.level,
        "level_name": _level_text(a.level),
        "parent": a.parent,
        "office_hours": a.office_hours,
        "updated_by": a.updated_by,
        "updated_at": a.updated_at.astimezone(VN_TZ).isoformat() if a.updated_at else None,
    }


def _agency_view(session, a: Agency) -> dict:
    _merged, periods, hours_from = _effective(session, a.code)
    days = session.execute(
        select(AgencyDay.day, AgencyDay.working, AgencyDay.name)
        .where(AgencyDay.agency == a.code)
        .order_by(AgencyDay.day)
    ).all()
    return {
        **agency_row_view(a),
        "effective_office_hours": _hours_json(periods),
        "office_hours_from": hours_from,
        "days": [
            {"date": d.isoformat(), "weekday": WEEKDAYS_VI[d.weekday()], "working": bool(w), "name": n}
            for d, w, n in days
        ],
    }


# --------------------------------------------------------------------------------------------------
# Use cases


class CalendarCache(Protocol):
    """A holder of cached calendars (the dossier service), told when an agency's calendar changed."""

    def invalidate_calendar(self) -> None: ...


def list_agencies(
    db: Database, actor: Actor, page=1, per_page=None, parent: str | None = None, q: str | None = None
) -> dict:
    """One page of agencies by code (administrators); `parent` lists the children of one agency, `q` searches
    the code or the name (case-insensitive)."""
    actor.require("admin")
    page, per_page = paging(page, per_page)
    stmt = select(Agency)
    if parent:
        stmt = stmt.where(Agency.parent == parent)
    if q:
        like = f"%{q.strip().lower()[:100]}%"
        stmt = stmt.where(func.lower(Agency.code).like(like) | func.lower(Agency.name).like(like))
    with db.read() as s:
        return page_of(s, stmt, [Agency.code], page, per_page, lambda r: agency_row_view(r[0])).to_dict()


def get_agency(db: Database, actor: Actor, code: str) -> dict:
    """One agency with its own days and the office hours it works by (and where they come from)."""
    actor.require("admin")
    with db.read() as s:
        a = s.get(Agency, code) if isinstance(code, str) and len(code) <= 64 else None
        if a is None:
            raise NotFound(f"Không có cơ quan mã '{code}'", f"no agency with code '{code}'")
        return _agency_view(s, a)


def _name(value, field: str = "name", limit: int = 300) -> str:
    name = value.strip() if isinstance(value, str) else ""
    if not name or len(name) > limit:
        raise _field(field, f"Tên phải có từ 1 đến {limit} ký tự", f"the name must have 1 to {limit} characters")
    return name


def _days(value) -> list[tuple[date, bool, str]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_DAYS_PER_AGENCY:
        raise _field(
            "days",
            f"'days' phải là danh sách tối đa {MAX_DAYS_PER_AGENCY} ngày",
            f"'days' must be a list of at most {MAX_DAYS_PER_AGENCY} days",
        )
    out: dict[date, tuple[date, bool, str]] = {}
    for i, item in enumerate(value):
        where = f"days[{i}]"
        if not isinstance(item, dict):
            raise _field(where, "Mỗi ngày là một đối tượng {date, working, name}", "each day is {date, working, name}")
        try:
            day = date.fromisoformat(str(item.get("date", "")).strip())
        except ValueError:
            raise _field(
                f"{where}.date",
                f"Ngày không hợp lệ: '{item.get('date')}' (dạng YYYY-MM-DD)",
                f"invalid date '{item.get('date')}' (format YYYY-MM-DD)",
            ) from None
        if not 2000 <= day.year <= 2100:
            raise _field(f"{where}.date", "Năm phải từ 2000 đến 2100", "the year must be 2000-2100")
        working = item.get("working")
        if not isinstance(working, bool):
            raise _field(f"{where}.working", "Trường 'working' phải là true/false", "'working' must be true or false")
        if day in out:
            raise _field(f"{where}.date", f"Ngày {day} bị lặp", f"the day {day} is given twice")
        out[day] = (day, working, _name(item.get("name"), f"{where}.name", 200))
    return list(out.values())


def _audit(s, actor: Actor, action: str, details: dict) -> None:
    s.add(Event(dossier_id=None, actor=actor.username, action=action, at=utcnow(), details=details))


def put_agency(db: Database, actor: Actor, code: str, body: dict, cache: CalendarCache | None = None) -> dict:
    """Create or replace an agency: `{name, office_hours?, days?}` (absent office hours: the parent's;
    `days` replaces the agency's own days). Administrators only; one transaction with an audit event.
    The calendar counts for every due time computed after it (in this process at once, in others within
    30 s); due times already set are not moved."""
    actor.require("admin")
    if not isinstance(body, dict):
        raise _field("body", "Nội dung phải là một đối tượng JSON", "the body must be a JSON object")
    level, parent = parse_code(code)
    name = _name(body.get("name"))
    periods = parse_office_hours(body.get("office_hours"))
    days = _days(body.get("days"))
    with db.uow() as s:
        a = s.get(Agency, code)
        created = a is None
        if a is None:
            a = Agency(code=code)
            s.add(a)
        a.parent, a.level, a.name = parent, level, name
        a.office_hours = _hours_json(periods)
        a.updated_by, a.updated_at = actor.username, utcnow()
        s.flush()
        s.execute(delete(AgencyDay).where(AgencyDay.agency == code))
        s.add_all(AgencyDay(agency=code, day=d, working=w, name=n) for d, w, n in days)
        s.flush()
        _audit(
            s,
            actor,
            "agency.created" if created else "agency.updated",
            {"code": code, "name": name, "office_hours": a.office_hours, "days": len(days)},
        )
        out = _agency_view(s, a)
    if cache is not None:
        cache.invalidate_calendar()
    return out


# --------------------------------------------------------------------------------------------------
# Import from CSV

CSV_COLUMNS = ("code", "name", "office_hours")


def read_csv(text: str) -> list[dict]:
    """Rows of an agencies CSV (header `code,name[,office_hours]`, UTF-8, comma or semicolon separated), each
    checked; InvalidInput names the line and the problem of the first bad row, and nothing is read."""
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in ("code", "name") if c not in header]
    if missing:
        raise InvalidInput(
            f"Tệp CSV thiếu cột {', '.join(missing)} (cột: code,name,office_hours)",
            f"the CSV lacks the column(s) {', '.join(missing)} (columns: code,name,office_hours)",
            {"line": 1, "columns": header},
        )
    rows: list[dict] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k}
        if not any(row.values()):
            continue
        try:
            level, parent = parse_code(row.get("code"))
            name = _name(row.get("name"))
            periods = parse_office_hours(row.get("office_hours"))
        except InvalidInput as exc:
            raise InvalidInput(
                f"Dòng {i}: {exc.message_vi}", f"line {i}: {exc.message_en}", {"line": i, **(exc.details or {})}
            ) from None
        if row["code"] in seen:
            raise InvalidInput(
                f"Dòng {i}: mã '{row['code']}' đã có ở dòng {seen[row['code']]}",
                f"line {i}: the code '{row['code']}' is already on line {seen[row['code']]}",
                {"line": i, "field": "code"},
            )
        seen[row["code"]] = i
        rows.append({"code": row["code"], "name": name, "level": level, "parent": parent, "periods": periods})
    return rows


def import_agencies(
    db: Database,
    actor: Actor,
    rows: list[dict],
    progress: Callable[[Iterable[dict]], Iterable[dict]] | None = None,
    cache: CalendarCache | None = None,
) -> dict:
    """Create or update the agencies of `rows` (from `read_csv`) in one transaction with one audit event:
    names and office hours (blank: the parent's); their days are left as they are. `progress` wraps the
    iteration (the CLI's progress bar). Administrators only."""
    actor.require("admin")
    created = updated = 0
    now = utcnow()
    with db.uow() as s:
        existing: set[str] = set()
        codes = [r["code"] for r in rows]
        for i in range(0, len(codes), 500):
            existing.update(s.scalars(select(Agency.code).where(Agency.code.in_(codes[i : i + 500]))))
        for r in progress(rows) if progress else rows:
            values = dict(
                parent=r["parent"],
                level=r["level"],
                name=r["name"],
                office_hours=_hours_json(r["periods"]),
                updated_by=actor.username,
                updated_at=now,
            )
            if r["code"] in existing:
                s.execute(update(Agency).where(Agency.code == r["code"]).values(**values))
                updated += 1
            else:
                s.execute(insert(Agency).values(code=r["code"], **values))
                created += 1
        _audit(s, actor, "agencies.imported", {"created": created, "updated": updated})
        caches.bump(s, "calendar")  # written with Core: other processes are told here (engine/caches.py)
    if cache is not None:
        cache.invalidate_calendar()
    return {"created": created, "updated": updated, "total": created + updated}
