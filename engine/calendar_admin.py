"""Administering the working calendar: list a year's special days, add or remove an override, compute a due
time. A plain engine service, called by the CLI (`motcua calendar list|set|delete`, cli/calendar.py) and the
HTTP API (api/calendar.py); who may change the calendar (administrators) is decided here, in `put_day` and
`remove_day`.

An override (table calendar_days) is an extra holiday (`working=False`) or a make-up working day
(`working=True`, e.g. a Saturday worked in exchange for a bridge day off). It counts for every deadline
computed after it is saved: in the process that saved it at once (`DossierService.invalidate_calendar`),
in other processes (the worker, other API servers) within about a second (engine/caches.py). Due times already set are not moved
(docs/deadlines.md: deadlines already set are not moved silently).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Protocol

from .agencies import calendar_for, calendar_sources
from .auth import Actor
from .calendar import VN_TZ, calendar_from_session, delete_override, parse_cutoff, parse_deadline, set_override
from .db import Database
from .errors import InvalidInput, NotFound

WEEKDAYS_VI = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật")
MIN_YEAR, MAX_YEAR = 2000, 2100


def _field_error(field: str, vi: str, en: str) -> InvalidInput:
    return InvalidInput(vi, en, {"fields": {field: f"{vi} / {en}"}, "field": field})


def parse_day(value, field: str = "date") -> date:
    """`YYYY-MM-DD` → date, or 422 naming the field."""
    if isinstance(value, date) and not isinstance(value, datetime):
        day = value
    else:
        try:
            day = date.fromisoformat(str(value).strip())
        except (TypeError, ValueError):
            raise _field_error(
                field, f"Ngày không hợp lệ: '{value}' (dạng YYYY-MM-DD)", f"invalid date '{value}' (format YYYY-MM-DD)"
            ) from None
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise _field_error(field, f"Năm phải từ {MIN_YEAR} đến {MAX_YEAR}", f"the year must be {MIN_YEAR}-{MAX_YEAR}")
    return day


def parse_year(value, field: str = "year") -> int:
    try:
        year = int(value)
    except (TypeError, ValueError):
        raise _field_error(field, f"Năm không hợp lệ: '{value}'", f"invalid year '{value}'") from None
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise _field_error(field, f"Năm phải từ {MIN_YEAR} đến {MAX_YEAR}", f"the year must be {MIN_YEAR}-{MAX_YEAR}")
    return year


def parse_instant(value, field: str = "start") -> datetime:
    """An ISO 8601 date-time (an offset is recommended; without one it is Vietnam time) or a date (07:00)."""
    text = str(value).strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            dt = datetime.combine(d, time(7, 0), VN_TZ)
        else:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=VN_TZ)
    except (TypeError, ValueError):
        raise _field_error(
            field,
            f"Thời điểm không hợp lệ: '{value}' (ISO 8601, ví dụ 2026-02-13T10:00:00+07:00)",
            f"invalid date-time '{value}' (ISO 8601, e.g. 2026-02-13T10:00:00+07:00)",
        ) from None
    if not MIN_YEAR <= dt.year <= MAX_YEAR:
        raise _field_error(field, f"Năm phải từ {MIN_YEAR} đến {MAX_YEAR}", f"the year must be {MIN_YEAR}-{MAX_YEAR}")
    return dt


def day_view(d: dict) -> dict:
    day = d["date"]
    return {
        "date": day.isoformat(),
        "weekday": WEEKDAYS_VI[day.weekday()],
        "working": bool(d["working"]),
        "name": d["name"],
        "source": d["source"],
    }


def list_days(session, year: int, agency: str | None = None) -> list[dict]:
    """The year's holidays, swapped days off and make-up working days, with names and where each comes from;
    with `agency`, that agency's calendar (its own and its ancestors' days: source `agency:<code>`)."""
    year = parse_year(year)
    if not agency:
        return [day_view(d) for d in calendar_from_session(session).non_working_days(year)]
    sources = calendar_sources(session, agency)
    out = []
    for d in calendar_for(session, agency).non_working_days(year):
        if d["source"] == "override":
            d = {**d, "source": sources.get(d["date"], "override")}
        out.append(day_view(d))
    return out


def set_day(session, day, working, name, actor: str | None) -> dict:
    day = parse_day(day)
    try:
        row = set_override(session, day, working, name, actor)
    except InvalidInput as exc:  # name the field for the API's 422
        field = (exc.details or {}).get("field") if isinstance(exc.details, dict) else None
        raise _field_error(field or "body", exc.message_vi, exc.message_en) from None
    return {
        "date": row.day.isoformat(),
        "weekday": WEEKDAYS_VI[row.day.weekday()],
        "working": row.working,
        "name": row.name,
        "source": "override",
        "updated_by": row.updated_by,
    }


def delete_day(session, day) -> dict:
    day = parse_day(day)
    if not delete_override(session, day):
        raise NotFound(
            f"Ngày {day.isoformat()} không có điều chỉnh của quản trị viên",
            f"no administrator's override on {day.isoformat()}",
        )
    return {"date": day.isoformat(), "deleted": True}


def compute_due(session, start, deadline, cutoff=None, agency: str | None = None) -> dict:
    """The due time of `deadline` counted from `start` by the convention of docs/deadlines.md, on the calendar
    of `agency` (its office hours and days, inherited from its ancestors: engine/agencies.py), else the
    national one."""
    start_dt = parse_instant(start, "start") if start not in (None, "") else datetime.now(UTC)
    if not deadline or not str(deadline).strip():
        raise _field_error(
            "deadline",
            "Thiếu thời hạn (ví dụ '3 working days', '15 ngày làm việc')",
            "deadline is required (e.g. '3 working days')",
        )
    try:
        dl = parse_deadline(str(deadline))
    except InvalidInput as exc:
        raise _field_error("deadline", exc.message_vi, exc.message_en) from None
    try:
        cut = parse_cutoff(cutoff) if cutoff not in (None, "") else None
    except InvalidInput as exc:
        raise _field_error("cutoff", exc.message_vi, exc.message_en) from None
    cal = calendar_for(session, agency or None)
    due = cal.due_at(start_dt, dl, cut)
    return {
        "due_at": due.astimezone(VN_TZ).isoformat(),
        "start": start_dt.astimezone(VN_TZ).isoformat(),
        "clock_start": cal.clock_start(start_dt, cut).astimezone(VN_TZ).isoformat() if dl.unit != "days" else None,
        "deadline": str(dl),
        "deadline_hours": dl.hours,
        "cutoff": cut.strftime("%H:%M") if cut else None,
        "agency": agency,
    }


class CalendarCache(Protocol):
    """A holder of a cached working calendar (the dossier service) to be told when an override changed."""

    def invalidate_calendar(self) -> None: ...


def put_day(db: Database, actor: Actor, day, working, name, cache: CalendarCache | None = None) -> dict:
    """Add or change an override: administrators only, one transaction; `cache` (this process's dossier
    service) forgets its calendar so the next deadline counts the change at once."""
    actor.require("admin")
    with db.uow() as s:
        out = set_day(s, day, working, name, actor.username)
    if cache is not None:
        cache.invalidate_calendar()
    return out


def remove_day(db: Database, actor: Actor, day, cache: CalendarCache | None = None) -> dict:
    """Remove an override (administrators only; 404 when there was none), then as `put_day`."""
    actor.require("admin")
    with db.uow() as s:
        out = delete_day(s, day)
    if cache is not None:
        cache.invalidate_calendar()
    return out
