"""The periodic report (báo cáo tình hình giải quyết hồ sơ TTHC): its figures are defined in docs/reports.md,
its terms in docs/glossary.md.

One row per (agency, procedure_code), plus totals, for a period of whole days.

Definitions (the figures are exact functions of the dossier columns; see also docs/reports.md)
------------------------------------------------------------------------------------------------
Period
    ``from`` and ``to`` are calendar days in UTC+7 (Vietnam); the period is the half-open interval of
    instants [``from`` 00:00, ``to`` + 1 day 00:00) UTC+7. At most 366 days, ``from`` <= ``to``.
    Below, P0 and P1 are the period's start and end.

Closed
    A dossier is *closed* at ``closed_at = COALESCE(processed_at, finished_at)``: when its result was
    ready (``processed_at``, set on status 9 "processed" and on status 10 "returned") or, for a dossier
    closed without a result (refused 3, withdrawn 7, stopped 8), when it finished. A dossier with
    neither is still open.

received {total, online, in_person, postal}
    ``P0 <= received_at < P1``, split by ``channel`` (2 online, 1 in person, 3 postal). Every dossier
    the system registered counts, including those later refused.

carried_over
    Received before the period and still open at its start: ``received_at < P0`` and (``closed_at``
    is null or ``closed_at >= P0``).

completed {early, on_time, late}
    The result became ready in the period: ``P0 <= processed_at < P1``. Then, in this order:
    *late* if ``processed_at > due_at``, or the dossier had a new appointment date (``extended_at`` set:
    an apology letter was issued because it was late), or it had two or more supplement requests
    (``supplement_count >= 2``; docs/glossary.md: the second request makes it count as late);
    *early* if the result was ready on a calendar day (UTC+7) before the due day;
    *on_time* otherwise (on the due day, not after ``due_at``; also a procedure without a deadline).

in_process {within, overdue}
    Open at the end of the period: ``received_at < P1`` and (``closed_at`` is null or
    ``closed_at >= P1``). *overdue* if ``supplement_count >= 2``, or ``extended_at < P1`` (both count as
    late in the national indicators), or the dossier was overdue at P1 by the one rule of
    `engine.domain` (``due_at < P1``, not closed by P1, not paused at P1: ``paused_at`` null or
    ``>= P1``); *within* otherwise.

Supplement time is not counted against the agency
    When the applicant brings the documents back, the dossier runtime moves ``due_at`` forward by the
    time the clock stood still (``paused_hours``); every comparison above is with that moved ``due_at``,
    so a dossier that waited for the applicant is judged on the agency's own time. A dossier paused at the
    period's end is not overdue: its clock stands still.

supplement_requested
    Among the dossiers handled in the period (received in it or carried over): those with at least one
    supplement request (``supplement_count > 0``). The column holds the count as of now, so a request made
    after the period's end of a dossier handled in it is counted too (the dossier row keeps no date for
    each request; the audit trail does).

refused, stopped, withdrawn
    Closed without a result in the period: ``P0 <= finished_at < P1`` and ``status_code`` 3, 8 or 7.

returned
    The result was handed over in the period: ``P0 <= returned_at < P1`` (whenever it was processed).

on_time_rate (Decision 766/QĐ-TTg: "completed on time + in process within deadline" over "handled")
    ``100 × (completed.early + completed.on_time + in_process.within) / (completed + in_process)``, in
    percent with two decimals, null when the denominator is 0. The denominator is the dossiers handled
    in the period (received + carried_over) *less those closed without a result in the period* (refused,
    stopped, withdrawn): they are neither on time nor late, and counting them would lower an agency's rate
    for refusing an incomplete dossier or for an applicant's withdrawal. With the definitions above,
    ``received + carried_over = completed + in_process + refused + stopped + withdrawn`` exactly (for
    dossiers whose ``finished_at`` is not before their ``processed_at``, which the runtime guarantees).

decision_766 {submitted_online, paid_online, electronic_result}, each {count, of, percent}
    The shares Decision 766/QĐ-TTg scores (full marks at 50%, 80%, 80%):
    *submitted_online*: ``received.online`` of ``received.total``;
    *paid_online*: of the dossiers received in the period whose procedure version has a ``fee`` above 0,
    those with a payment order paid through the gateway (``payments.status = 'paid'``; a fee collected at
    the desk outside the system is not online);
    *electronic_result*: of the dossiers completed in the period, those with at least one electronic result
    file (an attachment of kind ``result``, declared by the result step's form). ``percent`` has two
    decimals, null when ``of`` is 0.

avg_processing_hours
    Mean, over the dossiers completed in the period, of the working hours (office hours of the working
    calendar, as `WorkCalendar.working_hours_between` counts them) from ``received_at`` to ``processed_at``,
    less ``paused_hours`` (the working hours the clock stood still for supplements); two decimals, null
    when nothing was completed. Computed exactly but without a calendar call per dossier: the working hours
    between r and p are F(p) - F(r), F(t) being the office hours before t's day plus those of t's day before
    t; SQL sums the second part and counts the dossiers per (result or receipt) day, and only the few
    hundred distinct days go through the calendar.

Where the figures come from: the aggregates of engine/report_counts.py (table report_days, counts per day,
agency and procedure kept in the same transaction as every change of a dossier): one GROUP BY over the days
up to the period's end, whatever the number of dossiers. Two things are fixed when they happen there: the
processing time is measured when the result is ready, with the national working calendar of that moment;
everything else is an exact function of the current dossier row, as defined above.

`summary(..., from_dossiers=True)` recomputes the same figures from the dossier rows (the check of the
aggregates and the benchmark's baseline): one GROUP BY aggregate of CASE WHEN sums over the dossiers that
can matter, read as three disjoint index-driven branches (UNION ALL): received in the period, received
before it and open now, received before it and finished on or after P0; plus one query of the completed
rows, grouped by day, for the working hours (an index-only scan of ix_dossiers_processed). Portable across
SQLite and PostgreSQL; the dialect-specific pieces are small compiled constructs: the calendar day and the
time of day in UTC+7 (`local_date`, `local_hour`), `greatest`/`least`, and `unindexed`, which keeps
SQLite's planner from driving a branch with the wrong index.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Float,
    Integer,
    and_,
    case,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from . import step_report
from .calendar import VN_TZ, WorkCalendar
from .domain import dossier_overdue_as_of_sql
from .errors import InvalidInput
from .models import Attachment, Dossier, Payment, Procedure, ProcedureVersion, ReportDay
from .statuses import Status

__all__ = ["MAX_PERIOD_DAYS", "Period", "parse_period", "summary", "on_time_by_month", "to_csv", "to_xlsx", "COLUMNS"]

MAX_PERIOD_DAYS = 366
_OFFSET_HOURS = int(VN_TZ.utcoffset(None).total_seconds() // 3600)


# --------------------------------------------------------------------------------------------------
# The calendar day of an instant in UTC+7, in SQL


class local_date(FunctionElement):
    """The calendar day (UTC+7) of a UTC timestamp column, comparable with another `local_date`."""

    type = Date()
    name = "local_date"
    inherit_cache = True


@compiles(local_date)
def _local_date_pg(element, compiler, **kw):  # PostgreSQL (timestamptz) and the default
    arg = compiler.process(element.clauses, **kw)
    return f"CAST(({arg} AT TIME ZONE 'UTC') + INTERVAL '{_OFFSET_HOURS} hours' AS DATE)"


@compiles(local_date, "sqlite")
def _local_date_sqlite(element, compiler, **kw):  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC
    arg = compiler.process(element.clauses, **kw)
    return f"date({arg}, '+{_OFFSET_HOURS} hours')"


class local_hour(FunctionElement):
    """The time of day (UTC+7) of a UTC timestamp column, in hours (a float from 0 to 24)."""

    type = Float()
    name = "local_hour"
    inherit_cache = True


@compiles(local_hour)
def _local_hour_pg(element, compiler, **kw):
    arg = compiler.process(element.clauses, **kw)
    return f"(EXTRACT(EPOCH FROM CAST(({arg} AT TIME ZONE 'UTC') + INTERVAL '{_OFFSET_HOURS} hours' AS TIME)) / 3600.0)"


@compiles(local_hour, "sqlite")
def _local_hour_sqlite(element, compiler, **kw):
    # From the stored text 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC), without date parsing: a few times cheaper
    # than julianday() on a million rows.
    x = compiler.process(element.clauses, **kw)
    return (
        f"((CAST(substr({x}, 12, 2) AS INTEGER) + {_OFFSET_HOURS}) % 24 + CAST(substr({x}, 15, 2) AS INTEGER)"
        f" / 60.0 + CAST(substr({x}, 18) AS REAL) / 3600.0)"
    )


class greatest(FunctionElement):
    """The largest of the arguments (SQLite's multi-argument max(), GREATEST elsewhere)."""

    type = Float()
    name = "greatest"
    inherit_cache = True


class least(FunctionElement):
    """The smallest of the arguments (SQLite's multi-argument min(), LEAST elsewhere)."""

    type = Float()
    name = "least"
    inherit_cache = True


@compiles(greatest)
def _greatest(element, compiler, **kw):
    return f"GREATEST({compiler.process(element.clauses, **kw)})"


@compiles(greatest, "sqlite")
def _greatest_sqlite(element, compiler, **kw):
    return f"max({compiler.process(element.clauses, **kw)})"


@compiles(least)
def _least(element, compiler, **kw):
    return f"LEAST({compiler.process(element.clauses, **kw)})"


@compiles(least, "sqlite")
def _least_sqlite(element, compiler, **kw):
    return f"min({compiler.process(element.clauses, **kw)})"


class unindexed(FunctionElement):
    """The column itself, written so that SQLite will not drive an index with this term (the unary
    ``+`` of the SQLite query-planner documentation); unchanged on other databases. Used where SQLite's
    planner, with or without ANALYZE statistics, would pick a much worse index than the one meant."""

    name = "unindexed"
    inherit_cache = True

    def __init__(self, column):
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _unindexed_default(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element, compiler, **kw):
    return "+" + compiler.process(element.clauses, **kw)


# --------------------------------------------------------------------------------------------------
# The period


@dataclass(frozen=True)
class Period:
    first: date
    last: date

    @property
    def start(self) -> datetime:
        """P0: the first day's 00:00 UTC+7, as UTC."""
        return datetime.combine(self.first, time(0), VN_TZ).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """P1 (excluded): the day after the last day, 00:00 UTC+7, as UTC."""
        return datetime.combine(self.last + timedelta(days=1), time(0), VN_TZ).astimezone(UTC)


def _bad(field: str, vi: str, en: str, value=None) -> InvalidInput:
    details = {"field": field, "fields": {field: f"{vi} / {en}"}}
    if value is not None:
        details["value"] = str(value)
    return InvalidInput(vi, en, details=details)


def _as_date(value, field: str) -> date:
    if isinstance(value, datetime):
        raise _bad(field, f"'{field}' phải là một ngày (YYYY-MM-DD)", f"'{field}' must be a date (YYYY-MM-DD)")
    if isinstance(value, date):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _bad(field, f"Thiếu '{field}' (YYYY-MM-DD)", f"'{field}' is required (YYYY-MM-DD)")
    try:
        text = str(value).strip()
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise _bad(
            field,
            f"'{field}' không phải ngày hợp lệ (YYYY-MM-DD): {str(value)[:40]!r}",
            f"'{field}' is not a valid date (YYYY-MM-DD): {str(value)[:40]!r}",
            value,
        ) from None


def parse_period(from_date, to_date) -> Period:
    """Check a report period: two dates (or ISO strings YYYY-MM-DD), from <= to, at most 366 days.

    Raises `InvalidInput` whose ``details["field"]`` (and ``details["fields"]``, which the API shows as
    per-field messages) names the offending field: ``from`` or ``to``."""
    first = _as_date(from_date, "from")
    last = _as_date(to_date, "to")
    if first > last:
        raise _bad("from", "'from' phải không sau 'to'", "'from' must not be after 'to'")
    days = (last - first).days + 1
    if days > MAX_PERIOD_DAYS:
        raise _bad(
            "to",
            f"Kỳ báo cáo dài tối đa {MAX_PERIOD_DAYS} ngày (đang là {days})",
            f"a report period is at most {MAX_PERIOD_DAYS} days long (got {days})",
        )
    return Period(first, last)


# --------------------------------------------------------------------------------------------------
# The figures

_FLAT = (
    "received_total",
    "received_online",
    "received_in_person",
    "received_postal",
    "carried_over",
    "completed_total",
    "completed_early",
    "completed_late",
    "in_process_total",
    "in_process_overdue",
    "supplement_requested",
    "refused",
    "stopped",
    "withdrawn",
    "returned",
)
_SHARES = ("fee_due", "paid_online", "e_result")
_COLUMNS = (
    "agency",
    "procedure_code",
    "channel",
    "status_code",
    "received_at",
    "due_at",
    "paused_at",
    "supplement_count",
    "extended_at",
    "processed_at",
    "returned_at",
    "finished_at",
)


def _candidates(p0: datetime, p1: datetime, agency, procedure_code, *extra):
    """The dossiers that can count in [P0, P1), as three disjoint index-friendly branches (UNION ALL):
    received in the period (ix_dossiers_received); received before it and open now (ix_dossiers_open_due);
    received before it and finished on or after P0 (ix_dossiers_finished_at on (finished_at, received_at):
    the received_at test is answered inside the index). `finished_at` is never before `processed_at` or
    `returned_at`, so nothing that counts is left out."""
    D = Dossier
    cols = [getattr(D, c) for c in _COLUMNS] + [func.coalesce(D.processed_at, D.finished_at).label("closed_at")]

    def scope(plain: bool):
        # With both filters, ix_dossiers_report (agency, procedure_code, received_at) is the best entry; with
        # one, the period's own index is, and SQLite would otherwise prefer the filter's equality.
        col = (lambda c: c) if plain else unindexed
        terms = list(extra)
        if agency:
            terms.append(col(D.agency) == agency)
        if procedure_code:
            terms.append(col(D.procedure_code) == procedure_code)
        return terms

    both = bool(agency and procedure_code)
    fresh = literal_column("1", Integer).label("fresh")
    old = literal_column("0", Integer).label("fresh")
    return union_all(
        select(*cols, fresh).where(D.received_at >= p0, D.received_at < p1, *scope(both)),
        select(*cols, old).where(D.finished == false(), unindexed(D.received_at) < p0, *scope(True)),
        select(*cols, old).where(
            unindexed(D.finished) == true(), D.finished_at >= p0, unindexed(D.received_at) < p0, *scope(both)
        ),
    ).subquery("d")


def _aggregate_query(p0: datetime, p1: datetime, agency, procedure_code):
    D = _candidates(p0, p1, agency, procedure_code).c
    closed = D.closed_at

    def n(*whens):
        return func.sum(case(*whens, else_=0))

    received = D.fresh == 1  # the first branch: received in the period
    carried = and_(D.fresh == 0, or_(closed.is_(None), closed >= p0))
    done = and_(D.processed_at >= p0, D.processed_at < p1)
    late = or_(D.processed_at > D.due_at, D.extended_at.is_not(None), D.supplement_count >= 2)
    early = local_date(D.processed_at) < local_date(D.due_at)
    in_process = or_(closed.is_(None), closed >= p1)
    overdue = or_(D.supplement_count >= 2, D.extended_at < p1, dossier_overdue_as_of_sql(p1, D))
    finished_in = and_(D.finished_at >= p0, D.finished_at < p1)

    cols = [
        n((received, 1)),
        n((and_(received, D.channel == 2), 1)),
        n((and_(received, D.channel == 1), 1)),
        n((and_(received, D.channel == 3), 1)),
        n((carried, 1)),
        n((done, 1)),
        n((~done, 0), (late, 0), (early, 1)),
        n((and_(done, late), 1)),
        n((in_process, 1)),
        n((~in_process, 0), (overdue, 1)),
        n((and_(or_(received, carried), D.supplement_count > 0), 1)),
        n((and_(finished_in, D.status_code == Status.REFUSED.code), 1)),
        n((and_(finished_in, D.status_code == Status.STOPPED.code), 1)),
        n((and_(finished_in, D.status_code == Status.WITHDRAWN.code), 1)),
        n((and_(D.returned_at >= p0, D.returned_at < p1), 1)),
    ]
    return select(D.agency, D.procedure_code, *cols).group_by(D.agency, D.procedure_code)


def _shares_query(p0: datetime, p1: datetime, agency, procedure_code):
    """The Decision 766 counts that need other tables, per (agency, procedure): received in the period with a
    fee, of those paid online; completed in the period with an electronic result. Two index-driven branches
    (ix_dossiers_received, ix_dossiers_processed), each row looked up by primary key or (dossier_id, …)."""
    D, V, P, A = Dossier, ProcedureVersion, Payment, Attachment

    def scope():
        terms = []
        if agency:
            terms.append(unindexed(D.agency) == agency)
        if procedure_code:
            terms.append(unindexed(D.procedure_code) == procedure_code)
        return terms

    paid = select(P.id).where(P.dossier_id == D.id, P.status == "paid").exists()
    result = select(A.id).where(A.dossier_id == D.id, A.kind == "result").exists()
    fee = V.meta["fee"].as_integer() > 0
    zero: ColumnElement[int] = literal_column("0")
    received = (
        select(
            D.agency,
            D.procedure_code,
            case((fee, 1), else_=0).label("fee_due"),
            case((and_(fee, paid), 1), else_=0).label("paid"),
            zero.label("e_result"),
        )
        .join(V, V.id == D.procedure_version_id)
        .where(D.received_at >= p0, D.received_at < p1, *scope())
    )
    completed = select(D.agency, D.procedure_code, zero, zero, case((result, 1), else_=0)).where(
        D.processed_at >= p0, D.processed_at < p1, *scope()
    )
    u = union_all(received, completed).subquery("s")
    return select(
        u.c.agency, u.c.procedure_code, func.sum(u.c.fee_due), func.sum(u.c.paid), func.sum(u.c.e_result)
    ).group_by(u.c.agency, u.c.procedure_code)


def _share(count: int, of: int) -> dict:
    return {"count": count, "of": of, "percent": round(100.0 * count / of, 2) if of else None}


def _office_hours_of_day(col, calendar: WorkCalendar):
    """Office hours of the local day up to the instant `col` (as if the day were a working day)."""
    h = local_hour(col)
    parts = []
    for start, end in calendar.periods:
        s = start.hour + start.minute / 60 + start.second / 3600
        e = end.hour + end.minute / 60 + end.second / 3600
        parts.append(greatest(literal_column("0.0"), least(h, literal_column(repr(e))) - literal_column(repr(s))))
    return sum(parts[1:], parts[0])


def _hours_query(p0: datetime, p1: datetime, agency, procedure_code, calendar: WorkCalendar):
    """Working hours of the completed dossiers, grouped by day: for each (agency, procedure) the result
    days (sign +1) and the receipt days (sign -1), each with its count, the office hours of that day before
    the instant, and (result days) the paused hours.

    working_hours_between(r, p) = F(p) - F(r), with F(t) = office hours before t's day + office hours of
    t's day before t (0 on a non-working day); so the sum over the dossiers is a sum over days, and only
    the days (a few hundred) go through the calendar. Index-only scans of ix_dossiers_processed, which holds
    every column read."""
    D = Dossier
    scope = [D.processed_at >= p0, D.processed_at < p1]  # the filters below are read inside the index
    if agency:
        scope.append(unindexed(D.agency) == agency)
    if procedure_code:
        scope.append(unindexed(D.procedure_code) == procedure_code)
    branches = []
    for sign, col in ((1, D.processed_at), (-1, D.received_at)):
        day = local_date(col)
        paused = func.sum(D.paused_hours) if sign == 1 else literal_column("0.0")
        branches.append(
            select(
                D.agency,
                D.procedure_code,
                day,
                literal_column(str(sign)),
                func.count(),
                func.sum(_office_hours_of_day(col, calendar)),
                paused,
            )
            .where(*scope)
            .group_by(D.agency, D.procedure_code, day)
        )
    return union_all(*branches)


def _shape(agency: str | None, procedure_code: str | None, f: dict, hours_sum: float, hours_n: int) -> dict:
    early, late = f["completed_early"], f["completed_late"]
    on_time = f["completed_total"] - early - late
    within = f["in_process_total"] - f["in_process_overdue"]
    denominator = f["completed_total"] + f["in_process_total"]
    row: dict[str, Any] = (
        {} if agency is None and procedure_code is None else {"agency": agency, "procedure_code": procedure_code}
    )
    row.update(
        {
            "received": {
                "total": f["received_total"],
                "online": f["received_online"],
                "in_person": f["received_in_person"],
                "postal": f["received_postal"],
            },
            "carried_over": f["carried_over"],
            "completed": {"total": f["completed_total"], "early": early, "on_time": on_time, "late": late},
            "in_process": {"total": f["in_process_total"], "within": within, "overdue": f["in_process_overdue"]},
            "supplement_requested": f["supplement_requested"],
            "refused": f["refused"],
            "stopped": f["stopped"],
            "withdrawn": f["withdrawn"],
            "returned": f["returned"],
            "on_time_rate": round(100.0 * (early + on_time + within) / denominator, 2) if denominator else None,
            "avg_processing_hours": round(hours_sum / hours_n, 2) if hours_n else None,
            "decision_766": {
                "submitted_online": _share(f["received_online"], f["received_total"]),
                "paid_online": _share(f.get("paid_online", 0), f.get("fee_due", 0)),
                "electronic_result": _share(f.get("e_result", 0), f["completed_total"]),
            },
        }
    )
    return row


def _from_aggregates(session, period: Period, agency, procedure_code) -> tuple[dict, dict]:
    """The figures of each (agency, procedure) from table `report_days` (engine/report_counts.py): flows summed
    over the period's days, states (carried over, in process, overdue) summed over the deltas of the days up to
    the period's start or end. Reads days × (agency, procedure) rows, whatever the number of dossiers."""
    R = ReportDay
    first, last, after = period.first, period.last, period.last + timedelta(days=1)
    in_period = and_(R.day >= first, R.day <= last)

    def flow(col):
        return func.sum(case((in_period, col), else_=0))

    def state(col, day):
        return func.sum(case((R.day <= day, col), else_=0))

    figures = {
        "received_total": flow(R.received),
        "received_online": flow(R.received_online),
        "received_in_person": flow(R.received_in_person),
        "received_postal": flow(R.received_postal),
        "carried_over": state(R.open_delta, first),
        "completed_total": flow(R.completed),
        "completed_early": flow(R.completed_early),
        "completed_late": flow(R.completed_late),
        "in_process_total": state(R.open_delta, after),
        "in_process_overdue": state(R.overdue_delta, after),
        "supplement_requested": state(R.supplement_delta, first) + flow(R.received_supplement),
        "refused": flow(R.refused),
        "stopped": flow(R.stopped),
        "withdrawn": flow(R.withdrawn),
        "returned": flow(R.returned),
        "fee_due": flow(R.fee_due),
        "paid_online": flow(R.paid_online),
        "e_result": flow(R.e_result),
    }
    q = select(R.agency, R.procedure_code, flow(R.working_hours), *figures.values()).where(R.day <= after)
    if agency:
        q = q.where(R.agency == agency)
    if procedure_code:
        q = q.where(R.procedure_code == procedure_code)
    flat: dict[tuple, dict] = {}
    hours: dict[tuple, list] = {}
    for row in session.execute(q.group_by(R.agency, R.procedure_code)):
        values = dict(zip(figures, (int(v or 0) for v in row[3:]), strict=True))
        if any(values[k] for k in _FLAT):
            flat[(row[0], row[1])] = values
            hours[(row[0], row[1])] = [float(row[2] or 0.0), values["completed_total"], None]
    return flat, hours


def _from_dossiers(session, period: Period, agency, procedure_code, calendar: WorkCalendar) -> tuple[dict, dict]:
    """The same figures recomputed from the dossier rows (the report's definitions read directly: linear in the
    dossiers of the period). The aggregates' check (tests/test_report_counts.py) and the benchmark's baseline."""
    p0, p1 = period.start, period.end
    flat: dict[tuple, dict] = {}
    for row in session.execute(_aggregate_query(p0, p1, agency, procedure_code)):
        values = dict(zip(_FLAT, (int(v or 0) for v in row[2:])))
        if any(values.values()):
            flat[(row[0], row[1])] = values

    for ag, proc, fee_due, paid, e_result in session.execute(_shares_query(p0, p1, agency, procedure_code)):
        if (ag, proc) in flat:
            flat[(ag, proc)].update(fee_due=int(fee_due or 0), paid_online=int(paid or 0), e_result=int(e_result or 0))

    hours: dict[tuple, list] = {}  # (agency, procedure) -> [working hours, completed, [(day, sign, n, part)]]
    seen: set[date] = set()
    for ag, proc, day, sign, n, part, paused in session.execute(_hours_query(p0, p1, agency, procedure_code, calendar)):
        day = day if isinstance(day, date) else date.fromisoformat(day)
        acc = hours.setdefault((ag, proc), [0.0, 0, []])
        acc[2].append((day, sign, n, part or 0.0))
        if sign == 1:
            acc[0] -= paused or 0.0
            acc[1] += n
        seen.add(day)
    if seen:
        origin = datetime.combine(min(seen), time(0), calendar.tz)
        wh = calendar.working_hours_between
        # office hours from the first day's midnight to each day's, and the day's kind
        days = {d: (wh(origin, datetime.combine(d, time(0), calendar.tz)), calendar.is_working_day(d)) for d in seen}
        for acc in hours.values():
            total = acc[0]
            for day, sign, n, part in acc[2]:
                before, working = days[day]
                total += sign * (n * before + (part if working else 0.0))
            acc[0], acc[2] = total, None
    return flat, hours


def summary(
    session,
    from_date,
    to_date,
    agency: str | None = None,
    procedure_code: str | None = None,
    calendar: WorkCalendar | None = None,
    *,
    from_dossiers: bool = False,
) -> dict:
    """The period report: ``{from, to, period_start, period_end, rows: [...], totals: {...}}``.

    ``rows`` holds one entry per (agency, procedure_code) with any figure, sorted by agency then
    procedure; each with ``procedure_name`` when the procedure is in the library. Dates may be `date`
    objects or ISO strings; see `parse_period` for the checks. The figures are defined in the module
    docstring and read from the aggregates of engine/report_counts.py. `from_dossiers` recomputes them from
    the dossier rows instead (the check of the aggregates; slow: linear in the period's dossiers), measuring
    the processing time with `calendar` (default: the built-in working calendar without overrides); the
    aggregates measured it when each result was ready, with the national calendar of that moment."""
    period = parse_period(from_date, to_date)
    p0, p1 = period.start, period.end
    agency = (agency or "").strip() or None
    procedure_code = (procedure_code or "").strip() or None
    if from_dossiers:
        flat, hours = _from_dossiers(session, period, agency, procedure_code, calendar or _default_calendar())
    else:
        flat, hours = _from_aggregates(session, period, agency, procedure_code)

    names = {}
    codes = sorted({k[1] for k in flat})
    for i in range(0, len(codes), 500):
        names.update(
            session.execute(select(Procedure.code, Procedure.name).where(Procedure.code.in_(codes[i : i + 500]))).all()
        )

    rows = []
    totals = dict.fromkeys(_FLAT + _SHARES, 0)
    total_hours, total_n = 0.0, 0
    for key in sorted(flat):
        f = flat[key]
        h_sum, h_n, _ = hours.get(key, (0.0, 0, None))
        row = _shape(key[0], key[1], f, h_sum, h_n)
        row["procedure_name"] = names.get(key[1])
        rows.append(row)
        for k in _FLAT + _SHARES:
            totals[k] += f.get(k, 0)
        total_hours += h_sum
        total_n += h_n
    return {
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "period_start": p0.astimezone(VN_TZ).isoformat(),
        "period_end": p1.astimezone(VN_TZ).isoformat(),
        "agency": agency,
        "procedure_code": procedure_code,
        "rows": rows,
        "totals": _shape(None, None, totals, total_hours, total_n),
        # each agency's steps for other agencies' dossiers: its own query (engine/step_report.py)
        "steps_performed": step_report.steps_performed(session, p0, p1, agency, procedure_code),
    }


MAX_MONTHS = 24


def on_time_by_month(
    session,
    months: int = 12,
    agency: str | None = None,
    procedure_code: str | None = None,
    today: date | None = None,
) -> dict:
    """The on-time rate of each calendar month (UTC+7) of the last `months` (the current one included, the
    oldest first): ``{months: [{month: "YYYY-MM", from, to, completed, completed_late, in_process,
    in_process_overdue, on_time_rate}]}``. Each month is the period report's aggregate over that month —
    the same definitions (module docstring, "on_time_rate"), so the board's chart and the report agree; the
    current month ends today. One query of the aggregates (engine/report_counts.py) summed by day."""
    if not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
        raise _bad("months", f"'months' phải từ 1 đến {MAX_MONTHS}", f"'months' must be 1 to {MAX_MONTHS}", months)
    agency = (agency or "").strip() or None
    procedure_code = (procedure_code or "").strip() or None
    today = today or datetime.now(UTC).astimezone(VN_TZ).date()
    firsts = []
    y, m = today.year, today.month
    for _ in range(months):
        firsts.append(date(y, m, 1))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    R = ReportDay
    end = today + timedelta(days=1)
    q = select(
        R.day,
        func.sum(R.completed),
        func.sum(R.completed_early),
        func.sum(R.completed_late),
        func.sum(R.open_delta),
        func.sum(R.overdue_delta),
    ).where(R.day <= end)
    if agency:
        q = q.where(R.agency == agency)
    if procedure_code:
        q = q.where(R.procedure_code == procedure_code)
    by_day: list[tuple[date, int, int, int, int, int]] = []
    for d, done, early, late, opened, overdue in session.execute(q.group_by(R.day)):
        day = d if isinstance(d, date) else date.fromisoformat(d)
        by_day.append((day, int(done or 0), int(early or 0), int(late or 0), int(opened or 0), int(overdue or 0)))
    out = []
    for first in reversed(firsts):
        nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
        last = min(nxt - timedelta(days=1), today)
        after = last + timedelta(days=1)
        totals = dict.fromkeys(_FLAT, 0)
        for day, done, early, late, opened, overdue in by_day:
            if first <= day <= last:
                totals["completed_total"] += done
                totals["completed_early"] += early
                totals["completed_late"] += late
            if day <= after:  # the states at the month's end (engine/report_counts.py)
                totals["in_process_total"] += opened
                totals["in_process_overdue"] += overdue
        shaped = _shape(None, None, totals, 0.0, 0)
        out.append(
            {
                "month": first.strftime("%Y-%m"),
                "from": first.isoformat(),
                "to": last.isoformat(),
                "completed": shaped["completed"]["total"],
                "completed_late": shaped["completed"]["late"],
                "in_process": shaped["in_process"]["total"],
                "in_process_overdue": shaped["in_process"]["overdue"],
                "on_time_rate": shaped["on_time_rate"],
            }
        )
    return {"agency": agency, "procedure_code": procedure_code, "months": out}


_CAL: WorkCalendar | None = None


def _default_calendar() -> WorkCalendar:
    global _CAL
    if _CAL is None:
        _CAL = WorkCalendar()
    return _CAL


# --------------------------------------------------------------------------------------------------
# Files: CSV and XLSX with Vietnamese headers

# (group heading, column heading, how to read the value from a row)
COLUMNS: list[tuple[str, str, Callable[[dict], Any]]] = [
    ("", "Cơ quan", lambda r: r.get("agency")),
    ("", "Mã thủ tục", lambda r: r.get("procedure_code")),
    ("", "Tên thủ tục", lambda r: r.get("procedure_name")),
    ("Số hồ sơ tiếp nhận", "Tổng số", lambda r: r["received"]["total"]),
    ("Số hồ sơ tiếp nhận", "Trực tuyến", lambda r: r["received"]["online"]),
    ("Số hồ sơ tiếp nhận", "Trực tiếp", lambda r: r["received"]["in_person"]),
    ("Số hồ sơ tiếp nhận", "Bưu chính", lambda r: r["received"]["postal"]),
    ("Số hồ sơ tiếp nhận", "Từ kỳ trước chuyển sang", lambda r: r["carried_over"]),
    ("Đã giải quyết", "Tổng số", lambda r: r["completed"]["total"]),
    ("Đã giải quyết", "Trước hạn", lambda r: r["completed"]["early"]),
    ("Đã giải quyết", "Đúng hạn", lambda r: r["completed"]["on_time"]),
    ("Đã giải quyết", "Quá hạn", lambda r: r["completed"]["late"]),
    ("Đang giải quyết", "Tổng số", lambda r: r["in_process"]["total"]),
    ("Đang giải quyết", "Trong hạn", lambda r: r["in_process"]["within"]),
    ("Đang giải quyết", "Quá hạn", lambda r: r["in_process"]["overdue"]),
    ("", "Yêu cầu bổ sung", lambda r: r["supplement_requested"]),
    ("", "Từ chối", lambda r: r["refused"]),
    ("", "Dừng xử lý", lambda r: r["stopped"]),
    ("", "Rút hồ sơ", lambda r: r["withdrawn"]),
    ("", "Đã trả kết quả", lambda r: r["returned"]),
    ("", "Tỷ lệ đúng hạn (%)", lambda r: r["on_time_rate"]),
    ("", "Thời gian xử lý trung bình (giờ làm việc)", lambda r: r["avg_processing_hours"]),
    ("Quyết định 766", "Nộp trực tuyến (%)", lambda r: r["decision_766"]["submitted_online"]["percent"]),
    ("Quyết định 766", "Thanh toán trực tuyến", lambda r: r["decision_766"]["paid_online"]["count"]),
    ("Quyết định 766", "Thanh toán trực tuyến (%)", lambda r: r["decision_766"]["paid_online"]["percent"]),
    ("Quyết định 766", "Kết quả điện tử", lambda r: r["decision_766"]["electronic_result"]["count"]),
    ("Quyết định 766", "Kết quả điện tử (%)", lambda r: r["decision_766"]["electronic_result"]["percent"]),
]
TOTAL_LABEL = "Tổng cộng"
TITLE = "BÁO CÁO TÌNH HÌNH GIẢI QUYẾT HỒ SƠ THỦ TỤC HÀNH CHÍNH"


def _header(group: str, name: str) -> str:
    return f"{group} - {name}" if group else name


def _lines(report: dict):
    yield [_header(g, n) for g, n, _ in COLUMNS]
    for r in report["rows"]:
        yield [get(r) for _, _, get in COLUMNS]
    total = dict(report["totals"], agency=TOTAL_LABEL, procedure_code="", procedure_name="")
    yield [get(total) for _, _, get in COLUMNS]


def _step_lines(report: dict) -> list[list]:
    """The lines of the steps performed for other agencies' dossiers (header first), none when there are none."""
    section = report.get("steps_performed") or {}
    if not section.get("rows"):
        return []
    cols = step_report.COLUMNS
    total = dict(section["totals"], agency=TOTAL_LABEL, procedure_code="", procedure_name="")
    return (
        [[_header(g, n) for g, n, _ in cols]]
        + [[get(r) for _, _, get in cols] for r in section["rows"]]
        + [[get(total) for _, _, get in cols]]
    )


def _vn_date(iso_day: str) -> str:
    return date.fromisoformat(iso_day).strftime("%d/%m/%Y")


# A spreadsheet reads a text cell starting with one of these as a formula (or as the start of one).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """One CSV cell: None empty, numbers as they are, text that a spreadsheet would read as a formula
    prefixed with `'` so that it stays text (see docs/security.md, "Exports")."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _xlsx_value(cell, value) -> None:
    """Set a cell: text is always a string cell (data_type 's'), never a formula, whatever it starts with."""
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"


def to_csv(report: dict) -> bytes:
    """The report as CSV, UTF-8 with a byte-order mark (so that Excel shows Vietnamese correctly):
    one header row, one line per row, a last line "Tổng cộng"; empty cells for null figures;
    formula-looking text neutralised by `csv_cell`."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for line in _lines(report):
        w.writerow([csv_cell(v) for v in line])
    steps = _step_lines(report)
    if steps:  # after an empty line, the section's title and its own table
        w.writerow([])
        w.writerow([step_report.TITLE])
        for line in steps:
            w.writerow([csv_cell(v) for v in line])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(report: dict) -> bytes:
    """The report as an XLSX workbook: a title, the period, a two-level header (merged group cells),
    one line per row and a bold "Tổng cộng" line."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, Side
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    ws.title = "Báo cáo"
    ncol = len(COLUMNS)
    ws.cell(row=1, column=1, value=TITLE).font = Font(bold=True, size=13)
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=ncol)
    period = f"Từ ngày {_vn_date(report['from'])} đến ngày {_vn_date(report['to'])}"
    scope = [period]
    if report.get("agency"):
        scope.append(f"Cơ quan: {report['agency']}")
    if report.get("procedure_code"):
        scope.append(f"Thủ tục: {report['procedure_code']}")
    _xlsx_value(ws.cell(row=2, column=1), " - ".join(scope))
    ws.cell(row=2, column=1).font = Font(italic=True)
    ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=ncol)
    for r in (1, 2):
        ws.cell(row=r, column=1).alignment = Alignment(horizontal="center")

    thin = Side(style="thin")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    head = Alignment(horizontal="center", vertical="center", wrap_text=True)
    h1, h2 = 4, 5
    col = 1
    while col <= ncol:
        group = COLUMNS[col - 1][0]
        if not group:
            ws.cell(row=h1, column=col, value=COLUMNS[col - 1][1])
            ws.merge_cells(start_row=h1, start_column=col, end_row=h2, end_column=col)
            col += 1
            continue
        span = 1
        while col + span <= ncol and COLUMNS[col + span - 1][0] == group:
            span += 1
        ws.cell(row=h1, column=col, value=group)
        if span > 1:
            ws.merge_cells(start_row=h1, start_column=col, end_row=h1, end_column=col + span - 1)
        for k in range(span):
            ws.cell(row=h2, column=col + k, value=COLUMNS[col + k - 1][1])
        col += span
    for r in (h1, h2):
        for c in range(1, ncol + 1):
            cell = ws.cell(row=r, column=c)
            cell.font, cell.alignment, cell.border = Font(bold=True), head, border

    lines = list(_lines(report))[1:]
    for i, line in enumerate(lines):
        r = h2 + 1 + i
        for c, v in enumerate(line, start=1):
            cell = ws.cell(row=r, column=c)
            _xlsx_value(cell, v)
            cell.border = border
            if i == len(lines) - 1:
                cell.font = Font(bold=True)
    widths = [16, 14, 40] + [12] * (ncol - 3)
    for c, wdt in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(c)].width = wdt
    ws.freeze_panes = ws.cell(row=h2 + 1, column=4)
    steps = _step_lines(report)
    if steps:  # a second sheet: the steps each agency performed for other agencies' dossiers
        ws2 = wb.create_sheet("Bước liên thông")
        ws2.cell(row=1, column=1, value=step_report.TITLE).font = Font(bold=True, size=13)
        _xlsx_value(ws2.cell(row=2, column=1), " - ".join(scope))
        for i, line in enumerate(steps):
            for c, v in enumerate(line, start=1):
                cell = ws2.cell(row=4 + i, column=c)
                _xlsx_value(cell, v)
                cell.border = border
                if i in (0, len(steps) - 1):
                    cell.font = Font(bold=True)
                if i == 0:
                    cell.alignment = head
        for c, wdt in enumerate([16, 14, 40] + [12] * (len(steps[0]) - 3), start=1):
            ws2.column_dimensions[get_column_letter(c)].width = wdt
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
