"""Supervisors' overdue monitoring (giám sát hồ sơ quá hạn), over millions of dossiers.

What is overdue, at the instant `now` (default: the current time):

* an **overdue dossier** is open (``finished`` is false), has no result yet (``processed_at`` is null:
  a dossier whose result waits at the counter is not late), is not paused (``paused_at`` is null: while
  the applicant supplements documents the deadline clock stands still) and ``due_at < now``;
* an **overdue step** is a ready task (``state = 'ready'``) with ``due_at < now`` whose dossier is open
  and not paused (nobody can work on a step while the applicant supplements documents).

Both lists are sorted by lateness, the oldest due time first (ties by id), and paged
(``per_page`` at most 100). How late each row is, is given twice: in wall-clock hours and in working
hours of the working calendar (office hours only, see `engine.calendar`), computed for the rows of the
page only. Who holds it: for a step, its claimant (``claimed_by``) or else its candidate roles; for a
dossier, the same for each of its ready steps.

Counts, by agency and by procedure: overdue dossiers and steps, and those due within the next 24 hours
(``now <= due_at < now + 24 h``, wall-clock), with the same open / not paused rules.

Everything is read from indexes of `dossiers` and `tasks`, the workflow state is never loaded:
``ix_dossiers_running_due`` (partial: open, unpaused, no result; ordered by ``(due_at, id)``, holding
agency and procedure) for the overdue dossiers and their counts, ``ix_dossiers_agency_open_due`` when one
agency is asked for, ``ix_tasks_ready_due`` (partial: ready steps) for the steps, ``ix_dossiers_paused``
(partial) for the few paused dossiers whose steps are left out (see docs/reports.md, "Indexes").

Who may look: supervisors (and admins) see every agency; other staff (any account with a role) see only
their own agency (`Actor.sees_agency`); an account without any role gets `PermissionDenied`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, case, false, func, select

from .auth import Actor
from .calendar import VN_TZ, WorkCalendar
from .errors import InvalidInput, PermissionDenied
from .models import Dossier, Task
from .reports import unindexed
from .statuses import Status

__all__ = ["MAX_PER_PAGE", "DUE_SOON_HOURS", "overdue", "overdue_page", "overdue_counts", "scope"]

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
DUE_SOON_HOURS = 24


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(VN_TZ).isoformat() if dt else None


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("naive datetime given as now")
    return now


def scope(actor: Actor, agency: str | None) -> str | None:
    """The agency the actor may monitor: None means every agency (supervisors without a filter).

    Raises `PermissionDenied` for an account without any role, or for staff asking for another agency.
    """
    if actor is None or not actor.roles:
        raise PermissionDenied("Chỉ cán bộ mới được xem hồ sơ quá hạn", "only staff may monitor overdue dossiers")
    agency = (agency or "").strip() or None
    if actor.is_supervisor:
        return agency
    if agency is not None and not actor.sees_agency(agency):
        raise PermissionDenied(
            f"Chỉ được xem hồ sơ của cơ quan mình ({actor.agency})",
            f"you may only monitor your own agency ({actor.agency})",
            details={"field": "agency"},
        )
    return actor.agency


def _paging(page, per_page) -> tuple[int, int]:
    try:
        page = int(page)
        per_page = int(per_page)
    except (TypeError, ValueError):
        raise InvalidInput(
            "Tham số phân trang không hợp lệ", "invalid paging parameters", details={"field": "page"}
        ) from None
    if page < 1:
        raise InvalidInput("Trang phải từ 1 trở lên", "page must be 1 or more", details={"field": "page"})
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise InvalidInput(
            f"Số dòng mỗi trang phải từ 1 đến {MAX_PER_PAGE}",
            f"per_page must be between 1 and {MAX_PER_PAGE}",
            details={"field": "per_page"},
        )
    return page, per_page


def _dossier_open():
    """Open, no result yet, not paused (the deadline runs)."""
    D = Dossier
    return and_(D.finished == false(), D.processed_at.is_(None), D.paused_at.is_(None))


def _task_open():
    """A ready step whose dossier is not paused. (The steps of a finished dossier are never ready: closing
    a dossier cancels them.) The paused dossiers are few: a small partial index lists them."""
    paused = select(Dossier.id).where(Dossier.paused_at.is_not(None))
    return and_(Task.state == "ready", Task.dossier_id.not_in(paused))


def _filters(stmt, model, agency, procedure_code):
    if agency is not None:
        stmt = stmt.where(model.agency == agency)
    if procedure_code:
        stmt = stmt.where(model.procedure_code == procedure_code)
    return stmt


def _lateness(calendar: WorkCalendar, due: datetime, now: datetime) -> dict:
    return {
        "hours_late": round((now - due).total_seconds() / 3600, 2),
        "working_hours_late": round(calendar.working_hours_between(due, now), 2),
    }


def _holder(t) -> dict:
    return {
        "task_id": t.id,
        "title": t.title,
        "claimed_by": t.claimed_by,
        "assignee": t.assignee,
        "roles": list(t.roles or []),
        "due_at": _iso(t.due_at),
    }


def overdue_page(
    session,
    actor: Actor,
    calendar: WorkCalendar,
    agency: str | None = None,
    procedure_code: str | None = None,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
    now: datetime | None = None,
) -> dict:
    """One page of overdue dossiers and one page of overdue steps, the most overdue first.

    Returns ``{"now", "page", "per_page", "dossiers": [...], "tasks": [...]}`` (no totals: see
    `overdue_counts`, or `overdue` which gives both)."""
    agency = scope(actor, agency)
    page, per_page = _paging(page, per_page)
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
    ).where(_dossier_open(), D.due_at < now)
    q = _filters(q, D, agency, procedure_code).order_by(D.due_at, D.id).limit(per_page).offset(offset)
    drows = session.execute(q).all()

    holders: dict[int, list] = {}
    if drows:
        tq = (
            select(Task.id, Task.dossier_id, Task.title, Task.claimed_by, Task.assignee, Task.roles, Task.due_at)
            .where(Task.dossier_id.in_([r.id for r in drows]), unindexed(Task.state) == "ready")
            .order_by(Task.created_at, Task.id)
        )
        for t in session.execute(tq):
            holders.setdefault(t.dossier_id, []).append(_holder(t))

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
                "received_at": _iso(r.received_at),
                "due_at": _iso(r.due_at),
                "original_due_at": _iso(r.original_due_at),
                "extended": r.extended_at is not None,
                "supplement_count": r.supplement_count,
                **_lateness(calendar, r.due_at, now),
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
    ).where(_task_open(), Task.due_at < now)
    tq = _filters(tq, Task, agency, procedure_code).order_by(Task.due_at, Task.id).limit(per_page).offset(offset)
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
                "claimed_at": _iso(t.claimed_at),
                "assignee": t.assignee,
                "roles": list(t.roles or []),
                "created_at": _iso(t.created_at),
                "due_at": _iso(t.due_at),
                **_lateness(calendar, t.due_at, now),
            }
        )
    return {"now": _iso(now), "page": page, "per_page": per_page, "dossiers": dossiers, "tasks": tasks}


_COUNT_KEYS = ("overdue_dossiers", "due_soon_dossiers", "overdue_tasks", "due_soon_tasks")


def overdue_counts(
    session, actor: Actor, agency: str | None = None, procedure_code: str | None = None, now: datetime | None = None
) -> dict:
    """Overdue and due-within-24-hours counts of dossiers and steps, by agency and by procedure.

    Two GROUP BY queries (dossiers, tasks) over the index range ``due_at < now + 24 h``. Returns
    ``{"now", "due_soon_hours", "by_agency": [...], "by_procedure": [...], "totals": {...}}``, each
    entry with the four counts of `_COUNT_KEYS`; lists sorted by overdue dossiers, most first."""
    agency = scope(actor, agency)
    now = _now(now)
    soon = now + timedelta(hours=DUE_SOON_HOURS)
    D = Dossier

    def late(col):
        return func.sum(case((col < now, 1), else_=0))

    def due_soon(col):
        return func.sum(case((col >= now, 1), else_=0))

    dq = select(D.agency, D.procedure_code, late(D.due_at), due_soon(D.due_at)).where(_dossier_open(), D.due_at < soon)
    dq = _filters(dq, D, agency, procedure_code).group_by(D.agency, D.procedure_code)
    tq = select(Task.agency, Task.procedure_code, late(Task.due_at), due_soon(Task.due_at)).where(
        _task_open(), Task.due_at < soon
    )
    tq = _filters(tq, Task, agency, procedure_code).group_by(Task.agency, Task.procedure_code)

    by_agency: dict[str, dict] = {}
    by_proc: dict[str, dict] = {}
    totals = dict.fromkeys(_COUNT_KEYS, 0)

    def add(rows, k_late, k_soon):
        for ag, proc, n_late, n_soon in rows:
            for bucket in (
                by_agency.setdefault(ag, {"agency": ag, **dict.fromkeys(_COUNT_KEYS, 0)}),
                by_proc.setdefault(proc, {"procedure_code": proc, **dict.fromkeys(_COUNT_KEYS, 0)}),
                totals,
            ):
                bucket[k_late] += int(n_late or 0)
                bucket[k_soon] += int(n_soon or 0)

    add(session.execute(dq), "overdue_dossiers", "due_soon_dossiers")
    add(session.execute(tq), "overdue_tasks", "due_soon_tasks")

    def order(key):
        return lambda e: (-e["overdue_dossiers"], -e["overdue_tasks"], -e["due_soon_dossiers"], e[key])

    return {
        "now": _iso(now),
        "due_soon_hours": DUE_SOON_HOURS,
        "by_agency": sorted(by_agency.values(), key=order("agency")),
        "by_procedure": sorted(by_proc.values(), key=order("procedure_code")),
        "totals": totals,
    }


def overdue(
    session,
    actor: Actor,
    calendar: WorkCalendar,
    agency: str | None = None,
    procedure_code: str | None = None,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
    now: datetime | None = None,
) -> dict:
    """The monitor: one page of overdue dossiers and steps with how late they are and who holds them,
    plus the counts by agency and procedure; ``total_dossiers`` / ``total_tasks`` (for paging) are the
    overdue totals of the counts."""
    now = _now(now)
    result = overdue_page(session, actor, calendar, agency, procedure_code, page, per_page, now)
    counts = overdue_counts(session, actor, agency, procedure_code, now)
    result["total_dossiers"] = counts["totals"]["overdue_dossiers"]
    result["total_tasks"] = counts["totals"]["overdue_tasks"]
    result["counts"] = counts
    return result
