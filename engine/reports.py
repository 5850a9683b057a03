"""The periodic report (báo cáo tình hình giải quyết hồ sơ TTHC) of domain.md, "What supervisors count".

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
    (``supplement_count >= 2``; domain.md: the second request makes it count as late);
    *early* if the result was ready on a calendar day (UTC+7) before the due day;
    *on_time* otherwise (on the due day, not after ``due_at``; also a procedure without a deadline).

in_process {within, overdue}
    Open at the end of the period: ``received_at < P1`` and (``closed_at`` is null or
    ``closed_at >= P1``). *overdue* if ``supplement_count >= 2``, or ``extended_at < P1``, or
    ``due_at < P1`` unless the clock was standing still at P1 with time left (the dossier is paused now,
    since ``paused_at``, and ``due_at >= paused_at``); *within* otherwise.

Supplement time is not counted against the agency
    When the applicant brings the documents back, the dossier runtime moves ``due_at`` forward by the
    time the clock stood still (``paused_hours``); every comparison above is with that moved ``due_at``,
    so a dossier that waited for the applicant is judged on the agency's own time. A dossier paused at the
    period's end (``paused_at`` set) is judged by the time it had left when it was paused.

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

avg_processing_hours
    Mean, over the dossiers completed in the period, of the working hours (office hours of the working
    calendar, `WorkCalendar.working_hours_between`) from ``received_at`` to ``processed_at``, less
    ``paused_hours`` (the working hours the clock stood still for supplements), never below 0; two
    decimals, null when nothing was completed. Computed in Python over the completed rows only.

Queries: one GROUP BY aggregate of CASE WHEN sums over the dossiers that can matter (received before
P1 and either received in the period, still open, or finished on or after P0; indexed columns only),
plus one query of the completed rows for the working hours. Portable across SQLite and PostgreSQL: the
only dialect-specific piece is the calendar day in UTC+7 (`local_date`).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import Date, and_, case, false, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from .calendar import VN_TZ, WorkCalendar
from .errors import InvalidInput
from .models import Dossier, Procedure
from .statuses import Status

__all__ = ["MAX_PERIOD_DAYS", "Period", "parse_period", "summary", "to_csv", "to_xlsx", "COLUMNS"]

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


# --------------------------------------------------------------------------------------------------
# The period


@dataclass(frozen=True)
class Period:
    first: date
    last: date

    @property
    def start(self) -> datetime:
        """P0: the first day's 00:00 UTC+7, as UTC."""
        return datetime.combine(self.first, time(0), VN_TZ).astimezone(timezone.utc)

    @property
    def end(self) -> datetime:
        """P1 (excluded): the day after the last day, 00:00 UTC+7, as UTC."""
        return datetime.combine(self.last + timedelta(days=1), time(0), VN_TZ).astimezone(timezone.utc)


def _as_date(value, field: str) -> date:
    if isinstance(value, datetime):
        raise InvalidInput(f"'{field}' phải là một ngày (YYYY-MM-DD)", f"'{field}' must be a date (YYYY-MM-DD)",
                           details={"field": field})
    if isinstance(value, date):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidInput(f"Thiếu '{field}' (YYYY-MM-DD)", f"'{field}' is required (YYYY-MM-DD)",
                           details={"field": field})
    try:
        text = str(value).strip()
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"'{field}' không phải ngày hợp lệ (YYYY-MM-DD): {value!r}",
                           f"'{field}' is not a valid date (YYYY-MM-DD): {value!r}",
                           details={"field": field, "value": str(value)}) from None


def parse_period(from_date, to_date) -> Period:
    """Check a report period: two dates (or ISO strings), from <= to, at most 366 days.

    Raises `InvalidInput` whose ``details["field"]`` names the offending field (``from`` or ``to``)."""
    first = _as_date(from_date, "from")
    last = _as_date(to_date, "to")
    if first > last:
        raise InvalidInput("'from' phải không sau 'to'", "'from' must not be after 'to'",
                           details={"field": "from"})
    days = (last - first).days + 1
    if days > MAX_PERIOD_DAYS:
        raise InvalidInput(f"Kỳ báo cáo dài tối đa {MAX_PERIOD_DAYS} ngày (đang là {days})",
                           f"a report period is at most {MAX_PERIOD_DAYS} days long (got {days})",
                           details={"field": "to"})
    return Period(first, last)


# --------------------------------------------------------------------------------------------------
# The figures

_FLAT = ("received_total", "received_online", "received_in_person", "received_postal", "carried_over",
         "completed_total", "completed_early", "completed_late", "in_process_total", "in_process_overdue",
         "supplement_requested", "refused", "stopped", "withdrawn", "returned")


def _aggregate_query(p0: datetime, p1: datetime, agency, procedure_code):
    D = Dossier
    closed = func.coalesce(D.processed_at, D.finished_at)

    def n(*whens):
        return func.sum(case(*whens, else_=0))

    received = and_(D.received_at >= p0, D.received_at < p1)
    carried = and_(D.received_at < p0, or_(closed.is_(None), closed >= p0))
    done = and_(D.processed_at >= p0, D.processed_at < p1)
    late = or_(D.processed_at > D.due_at, D.extended_at.is_not(None), D.supplement_count >= 2)
    early = local_date(D.processed_at) < local_date(D.due_at)
    in_process = or_(closed.is_(None), closed >= p1)  # received_at < P1 is in the WHERE clause
    overdue = or_(
        D.supplement_count >= 2,
        D.extended_at < p1,
        and_(D.due_at < p1, or_(D.paused_at.is_(None), D.due_at < D.paused_at)),
    )
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
    # The rows that can matter: received before P1 and (received in the period, or still open, or
    # finished on or after P0; finished_at is never before processed_at or returned_at). Each branch
    # of the OR has its index: ix_dossiers_received, ix_dossiers_open_due, ix_dossiers_finished_at.
    stmt = select(D.agency, D.procedure_code, *cols).where(
        D.received_at < p1,
        or_(D.received_at >= p0, D.finished == false(), D.finished_at >= p0),
    )
    if agency:
        stmt = stmt.where(D.agency == agency)
    if procedure_code:
        stmt = stmt.where(D.procedure_code == procedure_code)
    return stmt.group_by(D.agency, D.procedure_code)


def _hours_query(p0: datetime, p1: datetime, agency, procedure_code):
    D = Dossier
    stmt = select(D.agency, D.procedure_code, D.received_at, D.processed_at, D.paused_hours).where(
        D.processed_at >= p0, D.processed_at < p1)
    if agency:
        stmt = stmt.where(D.agency == agency)
    if procedure_code:
        stmt = stmt.where(D.procedure_code == procedure_code)
    return stmt


def _shape(agency: str | None, procedure_code: str | None, f: dict, hours_sum: float, hours_n: int) -> dict:
    early, late = f["completed_early"], f["completed_late"]
    on_time = f["completed_total"] - early - late
    within = f["in_process_total"] - f["in_process_overdue"]
    denominator = f["completed_total"] + f["in_process_total"]
    row = {} if agency is None and procedure_code is None else {"agency": agency, "procedure_code": procedure_code}
    row.update({
        "received": {"total": f["received_total"], "online": f["received_online"],
                     "in_person": f["received_in_person"], "postal": f["received_postal"]},
        "carried_over": f["carried_over"],
        "completed": {"total": f["completed_total"], "early": early, "on_time": on_time, "late": late},
        "in_process": {"total": f["in_process_total"], "within": within, "overdue": f["in_process_overdue"]},
        "supplement_requested": f["supplement_requested"],
        "refused": f["refused"], "stopped": f["stopped"], "withdrawn": f["withdrawn"], "returned": f["returned"],
        "on_time_rate": round(100.0 * (early + on_time + within) / denominator, 2) if denominator else None,
        "avg_processing_hours": round(hours_sum / hours_n, 2) if hours_n else None,
    })
    return row


def summary(session, from_date, to_date, agency: str | None = None, procedure_code: str | None = None,
            calendar: WorkCalendar | None = None) -> dict:
    """The period report: ``{from, to, period_start, period_end, rows: [...], totals: {...}}``.

    ``rows`` holds one entry per (agency, procedure_code) with any figure, sorted by agency then
    procedure; each with ``procedure_name`` when the procedure is in the library. Dates may be `date`
    objects or ISO strings; see `parse_period` for the checks. The figures are defined in the module
    docstring. `calendar` (default: the built-in working calendar without overrides) measures the
    processing time in working hours."""
    period = parse_period(from_date, to_date)
    p0, p1 = period.start, period.end
    agency = (agency or "").strip() or None
    procedure_code = (procedure_code or "").strip() or None
    calendar = calendar or _default_calendar()

    flat: dict[tuple, dict] = {}
    for row in session.execute(_aggregate_query(p0, p1, agency, procedure_code)):
        values = dict(zip(_FLAT, (int(v or 0) for v in row[2:])))
        if any(values.values()):
            flat[(row[0], row[1])] = values

    hours: dict[tuple, list] = {}
    wh = calendar.working_hours_between
    for ag, proc, received_at, processed_at, paused in session.execute(_hours_query(p0, p1, agency, procedure_code)):
        acc = hours.setdefault((ag, proc), [0.0, 0])
        acc[0] += max(0.0, wh(received_at, processed_at) - (paused or 0.0))
        acc[1] += 1

    names = {}
    codes = sorted({k[1] for k in flat})
    for i in range(0, len(codes), 500):
        names.update(session.execute(select(Procedure.code, Procedure.name)
                                     .where(Procedure.code.in_(codes[i:i + 500]))).all())

    rows = []
    totals = dict.fromkeys(_FLAT, 0)
    total_hours, total_n = 0.0, 0
    for key in sorted(flat):
        f = flat[key]
        h_sum, h_n = hours.get(key, (0.0, 0))
        row = _shape(key[0], key[1], f, h_sum, h_n)
        row["procedure_name"] = names.get(key[1])
        rows.append(row)
        for k in _FLAT:
            totals[k] += f[k]
        total_hours += h_sum
        total_n += h_n
    return {
        "from": period.first.isoformat(), "to": period.last.isoformat(),
        "period_start": p0.astimezone(VN_TZ).isoformat(), "period_end": p1.astimezone(VN_TZ).isoformat(),
        "agency": agency, "procedure_code": procedure_code,
        "rows": rows,
        "totals": _shape(None, None, totals, total_hours, total_n),
    }


_CAL: WorkCalendar | None = None


def _default_calendar() -> WorkCalendar:
    global _CAL
    if _CAL is None:
        _CAL = WorkCalendar()
    return _CAL


# --------------------------------------------------------------------------------------------------
# Files: CSV and XLSX with Vietnamese headers

# (group heading, column heading, how to read the value from a row)
COLUMNS: list[tuple[str, str, callable]] = [
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


def _vn_date(iso_day: str) -> str:
    return date.fromisoformat(iso_day).strftime("%d/%m/%Y")


def to_csv(report: dict) -> bytes:
    """The report as CSV, UTF-8 with a byte-order mark (so that Excel shows Vietnamese correctly):
    one header row, one line per row, a last line "Tổng cộng"; empty cells for null figures."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for line in _lines(report):
        w.writerow(["" if v is None else v for v in line])
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
    ws.cell(row=2, column=1, value=" - ".join(scope)).font = Font(italic=True)
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
            cell = ws.cell(row=r, column=c, value=v)
            cell.border = border
            if i == len(lines) - 1:
                cell.font = Font(bold=True)
    widths = [16, 14, 40] + [12] * (ncol - 3)
    for c, wdt in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(c)].width = wdt
    ws.freeze_panes = ws.cell(row=h2 + 1, column=4)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
