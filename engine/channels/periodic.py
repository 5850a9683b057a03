"""The period report sent to the national reporting system (Decree 09/2019/NĐ-CP reporting regime).

Each configured period type (`MOTCUA_REPORTS_SCHEDULE`: monthly, quarterly, half_year, yearly; default
monthly) is sent once after its data cut-off, as the decree's article on the cut-off of periodic reports
counts it (docs/channels.md, "The national reporting system"): every period ends on the 14th of its last
month and starts on the 15th of the month before its first month:

* monthly: 15th of the previous month – 14th of the month (label `2026-10`);
* quarterly: 15 December/March/June/September – 14 March/June/September/December (`2026-Q3`);
* half-year: first half 15 December of the previous year – 14 June, second half 15 June – 14 December
  (`2026-H1`, `2026-H2`);
* yearly: 15 December of the previous year – 14 December (`2026`).

From the 15th (UTC+7) after a cut-off, the delivery tick writes one `national_report` row for each scheduled
period that has closed (kind `report:<type>:<label>`, payload = `GET /reports/summary` for that period); the
row is delivered, retried and dead-lettered like any other message, and stays as the record of the sending.
Only when `MOTCUA_REPORTS_URL` is set.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import cast

from sqlalchemy import Table, select

from ..calendar import VN_TZ
from ..models import Notification, utcnow
from .config import NATIONAL_REPORT

N = cast(Table, Notification.__table__)


#: the months whose 14th closes a period of each type
CUTOFF_MONTHS = {"monthly": tuple(range(1, 13)), "quarterly": (3, 6, 9, 12), "half_year": (6, 12), "yearly": (12,)}
CUTOFF_DAY = 14


def _cutoffs_before(period: str, today: date):
    """The cut-off days of `period` strictly before `today`, latest first."""
    months = CUTOFF_MONTHS[period]
    year = today.year
    while True:
        for month in reversed(months):
            d = date(year, month, CUTOFF_DAY)
            if d < today:
                yield d
        year -= 1


def _label(period: str, end: date) -> str:
    if period == "monthly":
        return f"{end.year}-{end.month:02d}"
    if period == "quarterly":
        return f"{end.year}-Q{end.month // 3}"
    if period == "half_year":
        return f"{end.year}-H{end.month // 6}"
    return f"{end.year}"


def last_closed(period: str, today: date) -> tuple[str, date, date]:
    """The latest period of this type whose cut-off (the 14th) is before `today`: (label, first, last day).

    The period runs from the day after the previous cut-off of the same type to its own cut-off."""
    if period not in CUTOFF_MONTHS:
        raise ValueError(f"unknown report period {period!r}")
    ends = _cutoffs_before(period, today)
    end, previous = next(ends), next(ends)
    return _label(period, end), previous + timedelta(days=1), end


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
