"""Supervisors' overdue monitoring (giám sát hồ sơ quá hạn), over millions of dossiers.

What is overdue, at the instant `now` (default: the current time), is `engine.domain`'s rule, the same for
every view, list and report:

* an **overdue dossier** is open (``finished`` is false), has no result yet (``processed_at`` is null:
  a dossier whose result waits at the counter is not late), is not paused (``paused_at`` is null: while
  the applicant supplements documents the deadline clock stands still) and ``due_at < now``;
* an **overdue step** is a ready task (``state = 'ready'``) with ``due_at < now`` whose dossier is not
  paused (nobody can work on a step while the applicant supplements documents).

Both lists are sorted by lateness, the oldest due time first (ties by id), and paged
(``per_page`` at most 100). How late each row is, is given twice: in wall-clock hours and in working
hours of the working calendar (office hours only, see `engine.calendar`), computed for the rows of the
page only. Who holds it: for a step, its claimant (``claimed_by``) or else its candidate roles; for a
dossier, the same for each of its ready steps.

Counts, by agency and by procedure: overdue dossiers and steps, and those due within the next 24 hours
(``now <= due_at < now + 24 h``, wall-clock), with the same open / not paused rules.

The counts come from counters the database keeps (`engine.boardcounts`: a bounded number of rows whatever
the backlog), exactly what counting the rows gives (`overdue_counts(..., scan=True)`).

Everything else is read from indexes of `dossiers` and `tasks`, the workflow state is never loaded:
``ix_dossiers_running_due`` (partial: open, unpaused, no result; ordered by ``(due_at, id)``, holding
agency and procedure) for the overdue dossiers and their counts, ``ix_dossiers_agency_open_due`` when one
agency is asked for, ``ix_tasks_ready_due`` (partial: ready steps) for the steps, ``ix_dossiers_paused``
(partial) for the few paused dossiers whose steps are left out (see docs/reports.md, "Indexes").

Who may look: supervisors (and admins) see every agency; other staff (any account with a role) see only
their own agency (`Actor.sees_agency`); an account that is not staff gets `PermissionDenied`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, func, select

from . import boardcounts
from .auth import Actor, agency_scope, in_scope
from .calendar import WorkCalendar
from .domain import dossier_overdue_sql, step_overdue_sql
from .errors import PermissionDenied
from .models import Dossier, Task
from .paging import DEFAULT_PER_PAGE, MAX_PER_PAGE, paging
from .reports import unindexed
from .statuses import Status
from .views import iso

__all__ = ["MAX_PER_PAGE", "DUE_SOON_HOURS", "overdue", "overdue_page", "overdue_counts", "due_soon_page", "scope"]

DUE_SOON_HOURS = 24
# one calendar for every row, or each agency's (engine/agencies.py): `lambda agency: WorkCalendar`
Calendars = WorkCalendar | Callable[[str], WorkCalendar]


# The order of the dossier pages: by (due_at, id). The three leading columns are constant among the rows
# `dossier_overdue_sql` selects; naming them lets PostgreSQL read the page in the order of the partial index
# ix_dossiers_running_due (which leads with them) and stop after one page, instead of walking
# ix_dossiers_open_due past every unfinished dossier with a result or paused (linear in that backlog).
_RUNNING_ORDER = (Dossier.finished, Dossier.processed_at, Dossier.paused_at, Dossier.due_at, Dossier.id)


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("naive datetime given as now")
    return now


def scope(actor: Actor, agency: str | None) -> str | None:
    """The agency the actor may monitor: None means every agency (supervisors without a filter).

    Any staff account may look (`PermissionDenied` for an account that is not staff); the agency is limited
    as every list limits it (`engine.auth.agency_scope`).
    """
    if actor is None:
        raise PermissionDenied("Chỉ cán bộ mới được xem hồ sơ quá hạn", "only staff may monitor overdue dossiers")
    return agency_scope(actor, agency)


def _lateness(calendar: Calendars, due: datetime, now: datetime, agency: str) -> dict:
    """How late, in wall-clock hours and in working hours of the agency that does the work (a dossier's
    receiving agency, a step's performing agency) when `calendar` gives each agency's calendar."""
    cal = calendar if isinstance(calendar, WorkCalendar) else calendar(agency)
    return {
        "hours_late": round((now - due).total_seconds() / 3600, 2),
        "working_hours_late": round(cal.working_hours_between(due, now), 2),
    }


def _open_steps_of(session, dossier_ids: list[int]) -> dict[int, list]:
    """The ready steps of these dossiers with who holds them (`_holder`), by dossier id: one indexed read."""
    holders: dict[int, list] = {}
    if dossier_ids:
        tq = (
            select(Task.id, Task.dossier_id, Task.title, Task.claimed_by, Task.assignee, Task.roles, Task.due_at)
            .where(Task.dossier_id.in_(dossier_ids), unindexed(Task.state) == "ready")
            .order_by(Task.created_at, Task.id)
        )
        for t in session.execute(tq):
            holders.setdefault(t.dossier_id, []).append(_holder(t))
    return holders


def _holder(t) -> dict:
    return {
        "task_id": t.id,
        "title": t.title,
        "claimed_by": t.claimed_by,
        "assignee": t.assignee,
        "roles": list(t.roles or []),
        "due_at": iso(t.due_at),
    }


def overdue_page(
    session,
    actor: Actor,
    calendar: Calendars,
    agency: str | None = None,
    procedure_code: str | None = None,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
    now: datetime | None = None,
    tasks_page: int | None = None,
) -> dict:
    """One page of overdue dossiers (`page`) and one page of overdue steps (`tasks_page`, default `page`),
    the most overdue first.

    Returns ``{"now", "page", "tasks_page", "per_page", "dossiers": [...], "tasks": [...]}`` (no totals: see
    `overdue_counts`, or `overdue` which gives both)."""
    agency = scope(actor, agency)
    page, per_page = paging(page, per_page)
    tasks_page, _ = paging(tasks_page if tasks_page is not None else page, per_page)
    now = _now(now)
    offset = (page - 1) * per_page
    D = Dossier

    q = select(
        D.id,
        D.code,
        D.agency,
        D.procedure_code,
        D.status,
        D.status_code,
        D.channel,
        D.received_at,
        D.due_at,
        D.original_due_at,
        D.extended_at,
        D.supplement_count,
    ).where(dossier_overdue_sql(now))
    q = in_scope(q, D, agency, procedure_code).order_by(*_RUNNING_ORDER).limit(per_page).offset(offset)
    drows = session.execute(q).all()

    holders = _open_steps_of(session, [r.id for r in drows])

    dossiers = []
    for r in drows:
        st = Status(r.status)
        dossiers.append(
            {
                "code": r.code,
                "agency": r.agency,
                "procedure_code": r.procedure_code,
                "status": st.value,
                "status_code": r.status_code,
                "status_label": st.label_vi,
                "channel": r.channel,
                "received_at": iso(r.received_at),
                "due_at": iso(r.due_at),
                "original_due_at": iso(r.original_due_at),
                "extended": r.extended_at is not None,
                "supplement_count": r.supplement_count,
                **_lateness(calendar, r.due_at, now, r.agency),
                "held_by": holders.get(r.id, []),
            }
        )

    tq = select(
        Task.id,
        Task.title,
        Task.spec_name,
        Task.dossier_code,
        Task.agency,
        Task.procedure_code,
        Task.claimed_by,
        Task.claimed_at,
        Task.assignee,
        Task.roles,
        Task.created_at,
        Task.due_at,
        Task.overdue_flagged_at,
    ).where(step_overdue_sql(now))
    tq = in_scope(tq, Task, agency, procedure_code).order_by(Task.due_at, Task.id)
    tq = tq.limit(per_page).offset((tasks_page - 1) * per_page)
    tasks = []
    for t in session.execute(tq):
        tasks.append(
            {
                "id": t.id,
                "title": t.title,
                "spec_name": t.spec_name,
                "dossier_code": t.dossier_code,
                "agency": t.agency,
                "procedure_code": t.procedure_code,
                "claimed_by": t.claimed_by,
                "claimed_at": iso(t.claimed_at),
                "assignee": t.assignee,
                "roles": list(t.roles or []),
                "created_at": iso(t.created_at),
                "due_at": iso(t.due_at),
                "late_flagged_at": iso(t.overdue_flagged_at),
                **_lateness(calendar, t.due_at, now, t.agency),
            }
        )
    return {
        "now": iso(now),
        "page": page,
        "tasks_page": tasks_page,
        "per_page": per_page,
        "dossiers": dossiers,
        "tasks": tasks,
    }


def due_soon_page(
    session,
    actor: Actor,
    agency: str | None = None,
    procedure_code: str | None = None,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
    now: datetime | None = None,
) -> dict:
    """One page of the dossiers due within the next `DUE_SOON_HOURS` (not overdue yet, open, not paused:
    the rows `overdue_counts` counts as ``due_soon_dossiers``), soonest first, with its total.

    Returns ``{"now", "due_soon_hours", "page", "per_page", "total", "items": [...]}``; each item as the
    dossier list shows it plus its ready steps and who holds them."""
    agency = scope(actor, agency)
    page, per_page = paging(page, per_page)
    now = _now(now)
    soon = now + timedelta(hours=DUE_SOON_HOURS)
    D = Dossier
    cond = in_scope(select(D.id).where(dossier_overdue_sql(soon), D.due_at >= now), D, agency, procedure_code)
    total = session.scalar(select(func.count()).select_from(cond.subquery()))
    q = select(D.id, D.code, D.agency, D.procedure_code, D.status, D.applicant_name, D.received_at, D.due_at).where(
        dossier_overdue_sql(soon), D.due_at >= now
    )
    q = in_scope(q, D, agency, procedure_code).order_by(*_RUNNING_ORDER).limit(per_page).offset((page - 1) * per_page)
    rows = session.execute(q).all()
    holders = _open_steps_of(session, [r.id for r in rows])
    items = []
    for r in rows:
        st = Status(r.status)
        items.append(
            {
                "code": r.code,
                "agency": r.agency,
                "procedure_code": r.procedure_code,
                "status": st.value,
                "status_label": st.label_vi,
                "applicant_name": r.applicant_name,
                "received_at": iso(r.received_at),
                "due_at": iso(r.due_at),
                "hours_left": round((r.due_at - now).total_seconds() / 3600, 1),
                "held_by": holders.get(r.id, []),
            }
        )
    return {
        "now": iso(now),
        "due_soon_hours": DUE_SOON_HOURS,
        "page": page,
        "per_page": per_page,
        "total": int(total or 0),
        "items": items,
    }


_COUNT_KEYS = ("overdue_dossiers", "due_soon_dossiers", "overdue_tasks", "due_soon_tasks")


def overdue_counts(
    session,
    actor: Actor,
    agency: str | None = None,
    procedure_code: str | None = None,
    now: datetime | None = None,
    scan: bool = False,
) -> dict:
    """Overdue and due-within-24-hours counts of dossiers and steps, by agency and by procedure.

    Read from the board counters (`engine.boardcounts`: a bounded number of rows whatever the backlog);
    with `scan` (or for an instant before the counters' cutoff), by two GROUP BY queries (dossiers, tasks)
    over the index range ``due_at < now + 24 h`` — the same numbers, read from every row. Returns
    ``{"now", "due_soon_hours", "by_agency": [...], "by_procedure": [...], "totals": {...}}``, each
    entry with the four counts of `_COUNT_KEYS`; lists sorted by overdue dossiers, most first."""
    agency = scope(actor, agency)
    now = _now(now)
    soon = now + timedelta(hours=DUE_SOON_HOURS)
    rows = None if scan else boardcounts.board_rows(session, now, soon, agency, procedure_code)
    if rows is None:
        rows = _scan_rows(session, agency, procedure_code, now, soon)

    by_agency: dict[str, dict] = {}
    by_proc: dict[str, dict] = {}
    totals = dict.fromkeys(_COUNT_KEYS, 0)

    def entry(into: dict, name: str, key: str) -> dict:
        e = into.get(key)
        if e is None:
            e = into[key] = {name: key, **dict.fromkeys(_COUNT_KEYS, 0)}
        return e

    def add(rows, k_late, k_soon):
        for ag, proc, n_late, n_soon in rows:
            for bucket in (entry(by_agency, "agency", ag), entry(by_proc, "procedure_code", proc), totals):
                bucket[k_late] += int(n_late or 0)
                bucket[k_soon] += int(n_soon or 0)

    add(rows["d"], "overdue_dossiers", "due_soon_dossiers")
    add(rows["t"], "overdue_tasks", "due_soon_tasks")

    def order(key):
        return lambda e: (-e["overdue_dossiers"], -e["overdue_tasks"], -e["due_soon_dossiers"], e[key])

    return {
        "now": iso(now),
        "due_soon_hours": DUE_SOON_HOURS,
        "by_agency": sorted(by_agency.values(), key=order("agency")),
        "by_procedure": sorted(by_proc.values(), key=order("procedure_code")),
        "totals": totals,
    }


def _scan_rows(session, agency, procedure_code, now: datetime, soon: datetime) -> dict:
    """The board's counts read from the rows: ``{"d": [(agency, procedure, overdue, due_soon)], "t": [...]}``."""
    D = Dossier

    def late(col):
        return func.sum(case((col < now, 1), else_=0))

    def due_soon(col):
        return func.sum(case((col >= now, 1), else_=0))

    # "Overdue at `soon`" selects the rows due before now + 24 h under the same open / not paused rules.
    dq = select(D.agency, D.procedure_code, late(D.due_at), due_soon(D.due_at)).where(dossier_overdue_sql(soon))
    dq = in_scope(dq, D, agency, procedure_code).group_by(D.agency, D.procedure_code)
    tq = select(Task.agency, Task.procedure_code, late(Task.due_at), due_soon(Task.due_at)).where(
        step_overdue_sql(soon)
    )
    tq = in_scope(tq, Task, agency, procedure_code).group_by(Task.agency, Task.procedure_code)
    return {"d": session.execute(dq).all(), "t": session.execute(tq).all()}


def overdue(
    session,
    actor: Actor,
    calendar: Calendars,
    agency: str | None = None,
    procedure_code: str | None = None,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
    now: datetime | None = None,
    tasks_page: int | None = None,
) -> dict:
    """The monitor: one page of overdue dossiers and steps with how late they are and who holds them,
    plus the counts by agency and procedure; ``total_dossiers`` / ``total_tasks`` (for paging) are the
    overdue totals of the counts."""
    now = _now(now)
    result = overdue_page(session, actor, calendar, agency, procedure_code, page, per_page, now, tasks_page)
    counts = overdue_counts(session, actor, agency, procedure_code, now)
    result["total_dossiers"] = counts["totals"]["overdue_dossiers"]
    result["total_tasks"] = counts["totals"]["overdue_tasks"]
    result["counts"] = counts
    return result
