"""The period report sent to the national reporting system (Decree 09/2019/NĐ-CP reporting regime).

Each configured period type (`MOTCUA_REPORTS_SCHEDULE`: monthly, quarterly, half_year, yearly; default
monthly) is sent once after its data cut-off, as the decree counts it: a month runs from the 15th of the
previous month to the 14th; a quarter from the 15th of the month before it to the 14th of its last month;
the half-year from 15 December of the previous year to 14 June; the year from 15 December of the
previous year to 14 December. On the 15th (UTC+7) after a period closes, the delivery tick writes one
`national_report` row (kind `report:<type>:<label>`, payload = `GET /reports/summary` for that period);
the row is delivered, retried and dead-lettered like any other message, and stays as the record of the
sending. Only when `MOTCUA_REPORTS_URL` is set.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import cast

from sqlalchemy import Table, select

from ..calendar import VN_TZ
from ..models import Notification, utcnow
from .config import NATIONAL_REPORT

N = cast(Table, Notification.__table__)


def _minus_month(d: date) -> date:
    return date(d.year - 1, 12, d.day) if d.month == 1 else date(d.year, d.month - 1, d.day)


def last_closed(period: str, today: date) -> tuple[str, date, date]:
    """The latest period of this type whose cut-off (the 14th) is before `today`: (label, first, last day)."""
    if period == "monthly":
        end = date(today.year, today.month, 14) if today.day >= 15 else _minus_month(date(today.year, today.month, 14))
        return f"{end.year}-{end.month:02d}", _minus_month(end) + timedelta(days=1), end
    if period == "quarterly":
        end = date(today.year, today.month, 14) if today.day >= 15 else _minus_month(date(today.year, today.month, 14))
        while end.month % 3:
            end = _minus_month(end)
        first = _minus_month(_minus_month(_minus_month(end))) + timedelta(days=1)
        return f"{end.year}-Q{end.month // 3}", first, end
    if period == "half_year":  # the decree's six-month report: 15 December to 14 June
        year = today.year if today > date(today.year, 6, 14) else today.year - 1
        return f"{year}-6T", date(year - 1, 12, 15), date(year, 6, 14)
    if period == "yearly":
        end = date(today.year, 12, 14)
        if today <= end:
            end = date(today.year - 1, 12, 14)
        return f"{end.year}", date(end.year - 1, 12, 15), end
    raise ValueError(f"unknown report period {period!r}")


def enqueue_due_reports(db, settings, now: datetime | None = None) -> list[str]:
    """Write the report row of each scheduled period that has closed and was not sent yet; their kinds."""
    ch = settings.channels
    if not ch.reports_url:
        return []
    from ..reports import summary

    now = now or utcnow()
    today = now.astimezone(VN_TZ).date()
    made = []
    for period in ch.reports_schedule:
        label, first, last = last_closed(period, today)
        kind = f"report:{period}:{label}"
        with db.uow() as s:
            if s.scalar(select(N.c.id).where(N.c.channel == NATIONAL_REPORT, N.c.kind == kind).limit(1)):
                continue
            report = summary(s, first, last)
            report = {"period": period, "label": label, **report}
            s.execute(
                N.insert(),
                [
                    {
                        "dossier_id": None,
                        "kind": kind,
                        "channel": NATIONAL_REPORT,
                        "recipient": kind,
                        "body": f"Báo cáo {period} {label}: {first.isoformat()} – {last.isoformat()}",
                        "payload": _jsonable(report),
                        "tries": 0,
                        "created_at": now,
                        "next_try_at": now,
                    }
                ],
            )
            made.append(kind)
    return made


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value
