"""The steps an agency performed for other agencies' dossiers: the `steps_performed` section of the period
report (docs/reports.md, "Steps performed for other agencies").

In an inter-agency procedure (docs/bpmn-conventions.md 9.5) the receiving agency's rows of the report count
its dossiers; the agencies that do a step of them (the commune police registering a residence for a birth
the commune received) count those steps here, each judged by its own due time, which is on the performing
agency's calendar (docs/deadlines.md). One row per (performing agency, procedure), plus totals.

Definitions, for the period [P0, P1) of the report and a step of the agency (a task row: ready, completed or
cancelled; a payment or supplement wait is nobody's step) whose dossier another agency received:

handed_over
    The step reached the agency in the period: ``P0 <= created_at < P1``.
completed {total, on_time, late}
    Done in the period: ``state = 'completed'`` and ``P0 <= completed_at < P1``; *late* when
    ``completed_at > due_at``, *on_time* otherwise (also a step without a due time). A cancelled step
    (another path of the diagram closed it) is not a completed one.
in_process {total, within, overdue}
    Open at P1: ``created_at < P1`` and (``completed_at`` null or ``>= P1``); *overdue* by the steps' rule as
    of P1 (`engine.domain.step_overdue_as_of_sql`: due before P1, its dossier not paused at P1).
on_time_rate
    ``100 × (completed.on_time + in_process.within) / (completed.total + in_process.total)``, two decimals,
    null when nothing was completed or open.

Query: the steps performed for another agency's dossier carry that dossier's receiving agency
(`tasks.for_agency`, set when the step opens: engine/dossiers.py `step_definition`), and the partial index
`ix_tasks_performed (agency, completed_at, created_at) WHERE for_agency IS NOT NULL` holds those steps only.
Two disjoint branches of it (UNION ALL): the steps completed or cancelled on or after P0 and created before
P1, and the steps open now (`completed_at` null); an index range of the agency, or the whole (small) index
for every agency. The dossiers paused at P1, for overdue, are the few of `ix_dossiers_paused`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, case, func, or_, select, union_all

from .domain import step_overdue_as_of_sql
from .models import Procedure, Task

__all__ = ["steps_performed", "COLUMNS"]

_FIGURES = ("handed_over", "completed", "on_time", "late", "in_process", "overdue")


def _candidates(p0: datetime, p1: datetime, agency: str | None, procedure_code: str | None):
    """The steps that can count in [p0, p1): two disjoint branches of `ix_tasks_performed` (module docstring)."""

    def scope(*where):
        q = select(
            Task.agency,
            Task.procedure_code,
            Task.dossier_id,
            Task.state,
            Task.created_at,
            Task.completed_at,
            Task.due_at,
        ).where(Task.for_agency.is_not(None), Task.created_at < p1, *where)
        if agency:
            q = q.where(Task.agency == agency)
        if procedure_code:
            q = q.where(Task.procedure_code == procedure_code)
        return q

    closed = scope(Task.completed_at >= p0)  # done or cancelled on or after P0
    open_now = scope(Task.completed_at.is_(None), Task.state == "ready")
    return union_all(closed, open_now).subquery("t")


def _query(p0: datetime, p1: datetime, agency: str | None, procedure_code: str | None):
    t = _candidates(p0, p1, agency, procedure_code)
    done = and_(t.c.state == "completed", t.c.completed_at >= p0, t.c.completed_at < p1)
    late = and_(done, t.c.due_at.is_not(None), t.c.completed_at > t.c.due_at)
    open_at_end = or_(t.c.completed_at.is_(None), t.c.completed_at >= p1)
    overdue = and_(open_at_end, step_overdue_as_of_sql(p1, t.c))

    def n(cond):
        return func.sum(case((cond, 1), else_=0))

    return select(
        t.c.agency,
        t.c.procedure_code,
        n(t.c.created_at >= p0),
        n(done),
        n(and_(done, ~late)),
        n(late),
        n(open_at_end),
        n(overdue),
    ).group_by(t.c.agency, t.c.procedure_code)


def _shape(agency, procedure_code, f: dict) -> dict:
    denominator = f["completed"] + f["in_process"]
    good = f["on_time"] + f["in_process"] - f["overdue"]
    return {
        "agency": agency,
        "procedure_code": procedure_code,
        "handed_over": f["handed_over"],
        "completed": {"total": f["completed"], "on_time": f["on_time"], "late": f["late"]},
        "in_process": {"total": f["in_process"], "within": f["in_process"] - f["overdue"], "overdue": f["overdue"]},
        "on_time_rate": round(100 * good / denominator, 2) if denominator else None,
    }


def steps_performed(session, p0: datetime, p1: datetime, agency=None, procedure_code=None) -> dict:
    """``{rows: [...], totals: {...}}`` for the period [p0, p1): one row per (performing agency, procedure),
    sorted, each with ``procedure_name``; `agency` keeps one performing agency (module docstring)."""
    rows, totals = [], dict.fromkeys(_FIGURES, 0)
    found = sorted(
        (ag, proc, dict(zip(_FIGURES, (int(v or 0) for v in values), strict=True)))
        for ag, proc, *values in session.execute(_query(p0, p1, agency, procedure_code))
    )
    codes = sorted({proc for _, proc, _ in found})
    names = (
        dict(session.execute(select(Procedure.code, Procedure.name).where(Procedure.code.in_(codes))).all())
        if codes
        else {}
    )
    for ag, proc, f in found:
        if not any(f.values()):
            continue
        row = _shape(ag, proc, f)
        row["procedure_name"] = names.get(proc)
        rows.append(row)
        for k in _FIGURES:
            totals[k] += f[k]
    return {"rows": rows, "totals": _shape(None, None, totals)}


#: The section's columns in the CSV and XLSX files (group heading, column heading, how to read it).
COLUMNS = [
    ("", "Cơ quan thực hiện", lambda r: r.get("agency")),
    ("", "Mã thủ tục", lambda r: r.get("procedure_code")),
    ("", "Tên thủ tục", lambda r: r.get("procedure_name")),
    ("", "Số bước nhận bàn giao", lambda r: r["handed_over"]),
    ("Đã thực hiện", "Tổng số", lambda r: r["completed"]["total"]),
    ("Đã thực hiện", "Đúng hạn", lambda r: r["completed"]["on_time"]),
    ("Đã thực hiện", "Quá hạn", lambda r: r["completed"]["late"]),
    ("Đang thực hiện", "Tổng số", lambda r: r["in_process"]["total"]),
    ("Đang thực hiện", "Trong hạn", lambda r: r["in_process"]["within"]),
    ("Đang thực hiện", "Quá hạn", lambda r: r["in_process"]["overdue"]),
    ("", "Tỷ lệ đúng hạn (%)", lambda r: r["on_time_rate"]),
]
TITLE = "CÁC BƯỚC THỰC HIỆN CHO HỒ SƠ CỦA CƠ QUAN KHÁC (LIÊN THÔNG)"
