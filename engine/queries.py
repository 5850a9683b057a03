"""Read-side queries for front-ends: paged, filtered, index-friendly, without Flask.

Every function takes an open session (`Database.read()`) and the acting `Actor`, applies the visibility
rules of `engine.auth` (own agency; supervisors and admins see every agency), and returns the plain dicts
of `engine.views` (times in ISO 8601 at UTC+7). What "overdue" means is `engine.domain`'s rule.

Pagination is by page number (`engine.paging`): `Page(items, page, per_page, total)`; `per_page` is capped
at `MAX_PER_PAGE` (the catalogue of procedures at `MAX_PER_PAGE_CATALOGUE`, a province runs about a thousand
procedures).
Every list has a deterministic order with a unique tie-breaker, so pages neither repeat nor skip rows.

Indexes used (engine/models.py): dossiers by (agency, status_code), (agency, finished, due_at),
(agency, procedure_code, received_at) and the unique code; the inbox by task_roles (role, agency) and
tasks (agency, state, due_at) / (claimed_by, state); the audit trail by events (dossier_id, id).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select

import forms as forms_lib

from . import messages
from .agencies import calendar_for
from .attachments import document_states
from .auth import Actor, agency_scope, visible_dossier, visible_task
from .calendar import WorkCalendar
from .domain import (
    dossier_not_overdue_sql,
    dossier_overdue_sql,
    paused_dossier_ids,
    step_not_overdue_sql,
    step_overdue,
    step_overdue_sql,
)
from .errors import InvalidInput, NotFound, PermissionDenied, ProcedureInvalid
from .models import Agency, Dossier, Event, Procedure, ProcedureVersion, Task, TaskRole, User, utcnow
from .paging import MAX_PER_PAGE, Page, page_of, paging
from .procedures import LEVELS, current_version_id, load_procedure, reference_problems
from .statuses import BY_CODE, Status
from .views import dossier_summary, event_view, iso, task_view

MAX_PER_PAGE_CATALOGUE = 1000
MAX_HISTORY = 2000


def like_escape(text: str) -> str:
    """`text` matched literally by LIKE … ESCAPE '\\' (its %, _ and \\ escaped)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- dossiers ----------------------------------------------------------------------------------------------


@dataclass
class DossierFilters:
    status: list[str] = field(default_factory=list)  # snake_case names (or national codes 1–10)
    overdue: bool | None = None
    due_before: datetime | None = None
    procedure_code: str | None = None
    agency: str | None = None
    q: str | None = None  # code prefix or part of the applicant's name
    sort: str = "-received_at"  # received_at, -received_at, due_at, -due_at

    @classmethod
    def of(cls, value) -> DossierFilters:
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        known = {k: v for k, v in dict(value).items() if k in cls.__dataclass_fields__ and v is not None}
        if isinstance(known.get("status"), str):
            known["status"] = [known["status"]]
        return cls(**known)


#: The orders of the dossier list, by the name the `sort` filter takes (the API offers the same names).
SORTS = {
    "received_at": (Dossier.received_at.asc(), Dossier.id.asc()),
    "-received_at": (Dossier.received_at.desc(), Dossier.id.desc()),
    "due_at": (Dossier.due_at.is_(None), Dossier.due_at.asc(), Dossier.id.asc()),
    "-due_at": (Dossier.due_at.is_(None), Dossier.due_at.desc(), Dossier.id.desc()),
}


def _status_codes(values) -> list[int]:
    codes = []
    for v in values or ():
        v = str(v).strip()
        if v.isdigit() and int(v) in BY_CODE:
            codes.append(int(v))
            continue
        try:
            codes.append(Status(v).code)
        except ValueError:
            raise InvalidInput(
                f"Trạng thái '{v}' không hợp lệ",
                f"unknown status '{v}'",
                {"fields": {"status": ", ".join(s.value for s in Status)}},
            ) from None
    return codes


def list_dossiers(session, actor: Actor, filters=None, page=1, per_page=20) -> Page:
    f = DossierFilters.of(filters)
    page, per_page = paging(page, per_page)
    if f.sort not in SORTS:
        raise InvalidInput(
            f"Cách sắp xếp '{f.sort}' không hợp lệ", f"unknown sort '{f.sort}'", {"fields": {"sort": ", ".join(SORTS)}}
        )
    now = utcnow()
    stmt = select(Dossier)
    agency = agency_scope(actor, f.agency)
    if agency:
        stmt = stmt.where(Dossier.agency == agency)
    codes = _status_codes(f.status)
    if codes:
        stmt = stmt.where(Dossier.status_code.in_(codes))
    if f.overdue is True:
        stmt = stmt.where(dossier_overdue_sql(now))
    elif f.overdue is False:
        stmt = stmt.where(dossier_not_overdue_sql(now))
    if f.due_before is not None:
        if f.due_before.tzinfo is None:
            raise InvalidInput(
                "due_before phải có múi giờ",
                "due_before needs a UTC offset",
                {"fields": {"due_before": "timezone required"}},
            )
        stmt = stmt.where(Dossier.due_at < f.due_before)
    if f.procedure_code:
        stmt = stmt.where(Dossier.procedure_code == f.procedure_code)
    q = (f.q or "").strip()
    if q:
        esc = like_escape(q)
        stmt = stmt.where(
            or_(
                Dossier.code.like(esc.upper() + "%", escape="\\"),
                func.lower(Dossier.applicant_name).like("%" + esc.lower() + "%", escape="\\"),
            )
        )
    return page_of(session, stmt, SORTS[f.sort], page, per_page, lambda r: dossier_summary(r[0], now))


def dossier_history(session, actor: Actor, code: str) -> dict:
    """The audit trail of one dossier, oldest first: who did what, when, from which status to which."""
    d = visible_dossier(session, actor, code)
    events = session.scalars(select(Event).where(Event.dossier_id == d.id).order_by(Event.id).limit(MAX_HISTORY))
    return {"code": d.code, "status": d.status, "events": [event_view(e) for e in events]}


# -- the inbox ---------------------------------------------------------------------------------------------


def list_tasks(
    session,
    actor: Actor,
    mine: bool = False,
    role: str | None = None,
    overdue: bool | None = None,
    page=1,
    per_page=20,
    procedure_code: str | None = None,
    q: str | None = None,
) -> Page:
    """Ready tasks the caller may work on: same agency and one of the caller's roles (via task_roles), or
    assigned to / claimed by the caller. Supervisors and admins see every agency's ready tasks.
    `mine` keeps the tasks the caller holds (claimed) or is assigned; `role` keeps one candidate role;
    `q` keeps the tasks whose dossier code or procedure code starts with it."""
    actor.require_staff()
    page, per_page = paging(page, per_page)
    now = utcnow()
    stmt = select(Task).where(Task.state == "ready")
    if role and not actor.is_supervisor and role not in actor.roles:
        raise PermissionDenied(f"Bạn không có vai trò '{role}'", f"you do not have the role '{role}'")
    if not actor.is_supervisor:
        stmt = stmt.where(Task.agency == actor.agency)  # roles are matched within the caller's agency
    if mine:
        stmt = stmt.where(or_(Task.claimed_by == actor.username, Task.assignee == actor.username))
    elif not actor.is_supervisor:
        by_role = select(TaskRole.task_id).where(
            TaskRole.role.in_(sorted(actor.roles)), TaskRole.agency == actor.agency
        )
        stmt = stmt.where(or_(Task.id.in_(by_role), Task.assignee == actor.username, Task.claimed_by == actor.username))
    if role:
        cond = TaskRole.role == role
        if not actor.is_supervisor:
            cond = and_(cond, TaskRole.agency == actor.agency)
        stmt = stmt.where(Task.id.in_(select(TaskRole.task_id).where(cond)))
    if overdue is True:
        stmt = stmt.where(step_overdue_sql(now))
    elif overdue is False:
        stmt = stmt.where(step_not_overdue_sql(now))
    if procedure_code:
        stmt = stmt.where(Task.procedure_code == procedure_code)
    q = (q or "").strip()
    if q:
        esc = like_escape(q)
        stmt = stmt.where(
            or_(
                Task.dossier_code.like(esc.upper() + "%", escape="\\"), Task.procedure_code.like(esc + "%", escape="\\")
            )
        )
    order = (Task.due_at.is_(None), Task.due_at.asc(), Task.created_at.asc(), Task.id.asc())
    result = page_of(session, stmt, order, page, per_page, lambda r: r[0])
    paused = _paused_among(session, {t.dossier_id for t in result.items})
    result.items = [task_view(t, t.dossier_id in paused, now) for t in result.items]
    return result


def _paused_among(session, dossier_ids) -> set[int]:
    """Which of these dossiers are paused (for the overdue flag of their steps)."""
    if not dossier_ids:
        return set()
    return set(session.scalars(paused_dossier_ids().where(Dossier.id.in_(sorted(dossier_ids)))))


def task_detail(session, actor: Actor, task_id: str, runtimes) -> dict:
    """One task with its form (schema, ui_schema), the current values taken from the dossier's data, the due
    date and a summary of its dossier. `runtimes` is the engine's RuntimeCache (forms are parsed once)."""
    task = visible_task(session, actor, task_id)
    d = session.get(Dossier, task.dossier_id)
    form = values = None
    if task.form_key:
        f = runtimes.form_of(session, d.procedure_version_id, task)  # a called procedure's too
        if f is not None:
            form = {"key": f.key, "title": f.title, "schema": f.schema, "ui_schema": f.ui_schema}
            values = f.prefill(d.data or {})
    return {
        "task": task_view(task, d.paused_at is not None),
        "form": form,
        "values": values if values is not None else {},
        "can_work": task.state == "ready"
        and actor.may_work(task.roles, task.agency, task.assignee)
        and task.claimed_by in (None, actor.username),
        "dossier": dossier_summary(d),
    }


# -- the procedure catalogue -------------------------------------------------------------------------------


def _catalogue_item(p: Procedure, v: ProcedureVersion | None) -> dict:
    meta = (v.meta if v is not None else None) or {}
    return {
        "code": p.code,
        "name": p.name,
        "version": p.current_version,
        "agency": p.agency,
        "deadline": meta.get("deadline"),
        "cutoff": meta.get("cutoff"),
        "level": _str(meta.get("level")),
        "fee": meta.get("fee"),
        "deployed_at": iso(v.deployed_at) if v is not None else None,
    }


def _str(v):
    return None if v is None else str(v)


def list_procedures(
    session,
    actor: Actor,
    q: str | None = None,
    agency: str | None = None,
    page=1,
    per_page=100,
    level: str | None = None,
) -> Page:
    """The catalogue: every deployed procedure with its current version's metadata, by code. `q` is a code
    prefix or part of the name (any case), `agency` the owning agency (`-` for province-wide ones),
    `level` the level of service (`engine.procedures.LEVELS`)."""
    page, per_page = paging(page, per_page, MAX_PER_PAGE_CATALOGUE)
    stmt = select(Procedure, ProcedureVersion).outerjoin(
        ProcedureVersion,
        and_(ProcedureVersion.procedure_id == Procedure.id, ProcedureVersion.version == Procedure.current_version),
    )
    if agency == "-":
        stmt = stmt.where(Procedure.scope == "")
    elif agency:
        stmt = stmt.where(Procedure.agency == agency)
    if level:
        if level not in LEVELS:
            raise InvalidInput(
                f"Mức độ '{level}' không hợp lệ",
                f"unknown level '{level}'",
                {"fields": {"level": ", ".join(sorted(LEVELS))}},
            )
        stmt = stmt.where(Procedure.level == level)  # ix_procedures_level_code
    q = (q or "").strip()
    if q:
        esc = like_escape(q)
        stmt = stmt.where(
            or_(
                Procedure.code.like(esc + "%", escape="\\"),
                func.lower(Procedure.name).like("%" + esc.lower() + "%", escape="\\"),
            )
        )
    order = (Procedure.code.asc(), Procedure.scope.asc())
    return page_of(session, stmt, order, page, per_page, lambda r: _catalogue_item(r[0], r[1]))


def procedure_variant(session, code: str, agency: str | None = None, fallback: str | None = None) -> Procedure:
    """One variant of a procedure (docs/security.md): `agency`'s own, else the province-wide one (as a
    dossier received by that agency would run); without `agency`, `fallback`'s (the caller's agency), else
    the province-wide one, else the first by agency."""
    rows = []
    if isinstance(code, str) and 0 < len(code) <= 64 and (agency is None or len(agency) <= 64):
        rows = session.scalars(select(Procedure).where(Procedure.code == code).order_by(Procedure.scope)).all()
    by_scope = {p.scope: p for p in rows}
    if agency is not None:
        p = by_scope.get(agency) or by_scope.get("")
    else:
        p = by_scope.get(fallback or "") or by_scope.get("") or (rows[0] if rows else None)
    if p is None:
        raise NotFound(f"Không có thủ tục mã '{code}'", f"no procedure with code '{code}'")
    return p


def procedure_details(session, actor: Actor, code: str, agency: str | None = None) -> dict:
    """Details of a procedure variant: its metadata, every version, the current version's user tasks with
    roles, forms and step deadlines."""
    p = procedure_variant(session, code, agency, actor.agency)
    versions = session.scalars(
        select(ProcedureVersion).where(ProcedureVersion.procedure_id == p.id).order_by(ProcedureVersion.version)
    ).all()
    current = next((v for v in versions if v.version == p.current_version), None)
    item = _catalogue_item(p, current)
    meta = (current.meta if current is not None else None) or {}

    def steps(version) -> list:
        status = (version.meta or {}).get("task_status") or {}
        return [
            {
                "id": ut.get("id"),
                "name": ut.get("name"),
                "roles": list(ut.get("roles") or []),
                "assignee": ut.get("assignee"),
                "form_key": ut.get("form_key"),
                "deadline": ut.get("deadline"),
                "status": ut.get("status") or status.get(ut.get("id")),
            }
            for ut in version.user_tasks or []
        ]

    # the procedures it calls (call activities), each once, in the versions a dossier received now would run
    called, todo, seen = [], sorted(set((meta.get("calls") or {}).values())), {p.code}
    while todo:
        callee_code = todo.pop(0)
        if callee_code in seen:
            continue
        seen.add(callee_code)
        try:
            v = session.get(ProcedureVersion, current_version_id(session, callee_code, p.agency))
        except NotFound:
            continue
        name = session.scalar(select(Procedure.name).where(Procedure.id == v.procedure_id))
        called.append({"code": callee_code, "version": v.version, "name": name, "user_tasks": steps(v)})
        todo.extend(sorted(set(((v.meta or {}).get("calls") or {}).values())))
    item["called"] = called
    item.update(
        {
            "process_id": current.process_id if current is not None else None,
            "dialect": meta.get("dialect"),
            "versions": [
                {
                    "version": v.version,
                    "deployed_at": iso(v.deployed_at),
                    "deployed_by": v.deployed_by,
                    "filename": v.filename,
                    "content_hash": v.content_hash,
                    "current": v.version == p.current_version,
                }
                for v in versions
            ],
            "user_tasks": steps(current) if current is not None else [],
            "forms": [
                {"key": k, "title": f.get("title"), "schema": f.get("schema"), "ui_schema": f.get("ui_schema")}
                for k, f in sorted(((current.forms if current is not None else None) or {}).items())
            ],
        }
    )
    return item


def procedure_diagram(session, actor: Actor, code: str, agency: str | None = None) -> tuple[str, str]:
    """(filename, BPMN XML) of the current version of a variant, as deployed."""
    p = procedure_variant(session, code, agency, actor.agency)
    v = session.scalars(
        select(ProcedureVersion).where(
            ProcedureVersion.procedure_id == p.id, ProcedureVersion.version == p.current_version
        )
    ).first()
    if v is None:
        raise NotFound(f"Thủ tục '{code}' chưa có phiên bản nào", f"procedure '{code}' has no version")
    return v.filename or f"{p.code}.bpmn", v.bpmn_xml


# -- public lookup -----------------------------------------------------------------------------------------


def public_lookup(session, code: str, id_number: str | None = None) -> dict:
    """What anyone may see of a dossier by its code: status, dates and steps; with an `id_number` matching the
    applicant's, their contact details and the data fields the forms mark public (`public_data`). One 404
    for every code that is not found."""
    d = session.scalars(select(Dossier).where(Dossier.code == code)).first() if code and len(code) <= 64 else None
    if d is None:
        raise NotFound("Không tìm thấy hồ sơ", "dossier not found")
    name = session.scalar(
        select(Procedure.name)
        .join(ProcedureVersion, ProcedureVersion.procedure_id == Procedure.id)
        .where(ProcedureVersion.id == d.procedure_version_id)
    )
    st = Status(d.status)
    tasks = session.scalars(
        select(Task).where(Task.dossier_id == d.id, Task.state != "cancelled").order_by(Task.created_at, Task.id)
    ).all()
    matched = bool(
        id_number
        and d.applicant_id_number
        and hmac.compare_digest(str(id_number).strip().encode(), d.applicant_id_number.strip().encode())
    )
    out = {
        "code": d.code,
        "status": st.value,
        "status_code": st.code,
        "status_label": st.label_vi,
        "status_label_en": st.label_en,
        "procedure_code": d.procedure_code,
        "procedure_name": name,
        "received_at": iso(d.received_at),
        "due_at": iso(d.due_at),
        "processed_at": iso(d.processed_at),
        "returned_at": iso(d.returned_at),
        "finished": d.finished,
        "steps": [
            {
                "name": t.title,
                "state": t.state,
                "started_at": iso(t.created_at),
                "completed_at": iso(t.completed_at),
                "due_at": iso(t.due_at),
            }
            for t in tasks
        ],
        "identity_verified": matched,
        "applicant": None,
    }
    if matched:
        out["applicant"] = {
            "name": d.applicant_name,
            "id_number": d.applicant_id_number,
            "phone": d.applicant_phone,
            "email": d.applicant_email,
        }
        out["data"] = public_data(session, d)
    return out


# -- the web pages: counts on the diagram, the steps of a dossier, the modeler's check -----------------------


def step_counts(session, actor: Actor, code: str, now: datetime | None = None) -> dict:
    """`{code, version, now, agency, counts: {element_id: {ready, overdue, claimed, waiting}}, total}`.

    Ready tasks of every version (element ids are kept across versions by the modeler), grouped by the
    task's BPMN element id (`tasks.spec_name`); `overdue` by the steps' overdue rule (`engine.domain`).
    `waiting`: dossiers waiting at that message catch event (payment, supplement; engine/messages.py).
    Supervisors and admins count every agency, others their own.
    """
    proc = procedure_variant(session, code, None, actor.agency)
    now = now or utcnow()
    q = (
        select(
            Task.spec_name,
            func.count(),
            func.sum(case((step_overdue_sql(now), 1), else_=0)),
            func.sum(case((Task.claimed_by.is_not(None), 1), else_=0)),
        )
        .where(Task.procedure_code == code, Task.state == "ready")
        .group_by(Task.spec_name)
    )
    # Numbers only, no dossier: analysts (not staff) see their own agency's, as other staff do.
    agency = agency_scope(actor, None) if actor.is_staff else actor.agency
    if agency is not None:
        q = q.where(Task.agency == agency)
    counts = {
        name: {"ready": int(n), "overdue": int(late or 0), "claimed": int(claimed or 0), "waiting": 0}
        for name, n, late, claimed in session.execute(q)
    }
    # dossiers waiting at a message catch event (payment, supplement: engine/messages.py), by event id
    w = (
        select(Task.spec_name, func.count())
        .where(Task.state == messages.WAITING, Task.procedure_code == code)
        .group_by(Task.spec_name)
    )
    if agency is not None:
        w = w.where(Task.agency == agency)
    for name, n in session.execute(w):
        counts.setdefault(name, {"ready": 0, "overdue": 0, "claimed": 0, "waiting": 0})["waiting"] = int(n)
    return {
        "code": proc.code,
        "version": proc.current_version,
        "now": iso(now),
        "agency": agency,
        "counts": counts,
        "total": sum(c["ready"] for c in counts.values()),
    }


def dossier_steps(session, actor: Actor, code: str, runtimes, now: datetime | None = None) -> dict:
    """Every step of a dossier, oldest first, with its due and actual times and who held it (the process
    control slip), the documents checklist with what is attached and the procedure's facts (the receipt).
    `runtimes` is the engine's RuntimeCache."""
    d = visible_dossier(session, actor, code)
    now = now or utcnow()
    version = session.get(ProcedureVersion, d.procedure_version_id)
    proc = session.get(Procedure, version.procedure_id)
    tasks = list(session.scalars(select(Task).where(Task.dossier_id == d.id).order_by(Task.created_at, Task.id)))
    # steps opened together (parallel branches) in the order they were completed, the open ones after them
    tasks.sort(key=lambda t: (t.created_at, t.completed_at is None, t.completed_at or t.created_at, t.id))
    people = {t.completed_by for t in tasks} | {t.claimed_by for t in tasks} | {d.created_by}
    people.discard(None)
    names = (
        dict(session.execute(select(User.username, User.full_name).where(User.username.in_(people))).all())
        if people
        else {}
    )
    paused = d.paused_at is not None
    steps = []
    # Each agency's share of the time: its steps' office hours on its own calendar, each step its own time even
    # when steps of two agencies run side by side (parallel branches), the dossier's elapsed time apart
    # (docs/bpmn-conventions.md, "Inter-agency procedures"). Where a step was handed over from is what its
    # hand-over event says (the agency whose step opened it), not the row before it: two steps opened together
    # were both handed over by the step that opened them.
    handed = {
        e.task_id: (e.details or {}).get("from_agency")
        for e in session.scalars(
            select(Event).where(Event.dossier_id == d.id, Event.action == "step.handed_over").order_by(Event.id)
        )
    }
    calendars: dict[str, WorkCalendar] = {}
    shares: dict[str, dict] = {}
    for t in tasks:
        on_time = None
        if t.due_at is not None and t.completed_at is not None:
            on_time = t.completed_at <= t.due_at
        cal = calendars.get(t.agency)
        if cal is None:
            cal = calendars[t.agency] = calendar_for(session, t.agency)
        hours = round(max(0.0, cal.working_hours_between(t.created_at, t.completed_at or now)), 2)
        wait = t.state in messages.WAIT_STATES  # the applicant's time (payment, supplement): no agency's share
        if not wait:
            share = shares.setdefault(t.agency, {"agency": t.agency, "steps": 0, "working_hours": 0.0})
            share["steps"] += 1
            share["working_hours"] = round(share["working_hours"] + hours, 2)
        steps.append(
            {
                "id": t.id,
                "spec_name": t.spec_name,
                "title": t.title,
                "agency": t.agency,
                "handed_over_from": None if wait else handed.get(t.id),
                "working_hours": hours,
                "roles": list(t.roles or []),
                "state": t.state,
                "created_at": iso(t.created_at),
                "due_at": iso(t.due_at),
                "claimed_by": t.claimed_by,
                "claimed_at": iso(t.claimed_at),
                "completed_at": iso(t.completed_at),
                "completed_by": t.completed_by,
                "completed_by_name": names.get(t.completed_by) if t.completed_by else None,
                "on_time": on_time,
                "overdue": step_overdue(t, now, paused),
            }
        )
    documents = document_states(session, d, runtimes.get(session, d.procedure_version_id))
    meta = version.meta or {}
    # the agencies by name (the slip prints names; a code not registered stays a code), and each one's
    # part of the agencies' working hours in percent
    named = {d.agency} | set(shares)
    agency_names = dict(session.execute(select(Agency.code, Agency.name).where(Agency.code.in_(sorted(named)))).all())
    total_hours = sum(share["working_hours"] for share in shares.values())
    for share in shares.values():
        share["name"] = agency_names.get(share["agency"])
        share["percent"] = round(100 * share["working_hours"] / total_hours, 1) if total_hours else None
    for step in steps:
        step["agency_name"] = agency_names.get(step["agency"])
    receiving = calendars.get(d.agency) or calendar_for(session, d.agency)
    elapsed = receiving.working_hours_between(d.received_at, d.finished_at or now)
    return {
        "code": d.code,
        "agency": d.agency,
        "agency_name": agency_names.get(d.agency),
        # the dossier's fee: what a decision table decided for it (engine/decisions.py), else the procedure's
        "fee": (d.data or {}).get("fee", meta.get("fee")) if (meta.get("decisions")) else meta.get("fee"),
        "procedure": {
            "code": proc.code,
            "name": proc.name,
            "agency": proc.agency,
            "version": version.version,
            "deadline": meta.get("deadline"),
            "cutoff": meta.get("cutoff"),
            "fee": meta.get("fee"),
            "level": meta.get("level"),
        },
        "received_by": {"username": d.created_by, "full_name": names.get(d.created_by)} if d.created_by else None,
        "steps": steps,
        "agencies": list(shares.values()),
        # the dossier's own time from receipt to its end (or now) on the receiving agency's calendar: less than
        # the agencies' hours added up when their steps overlapped
        "elapsed_working_hours": round(max(0.0, elapsed), 2),
        "documents": documents,
    }


def procedure_check(
    session, actor: Actor, content: bytes, filename: str, form_files: dict[str, bytes], max_bytes: int
) -> dict:
    """The deploy checks without deploying (the modeler's "Kiểm tra"), those against the database included
    (the callees deployed, the agencies named registered: `reference_problems`, lenient as validation is):
    `{valid, code, name, process_id, problems: [{element, message_vi, message_en}], warnings}`."""
    actor.require("analyst")
    try:
        loaded = load_procedure(content, filename or "procedure.bpmn", form_files, max_bytes)
    except ProcedureInvalid as exc:
        return {
            "valid": False,
            "code": None,
            "name": None,
            "process_id": None,
            "problems": list(exc.details or [])
            or [{"element": None, "message_vi": exc.message_vi, "message_en": exc.message_en}],
            "warnings": [],
        }
    except InvalidInput as exc:  # a form file refused, or another input problem: name it, no element
        problems = []
        details = exc.details if isinstance(exc.details, dict) else {}
        for p in details.get("problems") or []:
            problems.append({"element": None, "message_vi": p.get("message_vi"), "message_en": p.get("message_en")})
        if not problems:
            problems = [{"element": None, "message_vi": exc.message_vi, "message_en": exc.message_en}]
        return {"valid": False, "code": None, "name": None, "process_id": None, "problems": problems, "warnings": []}
    problems, warnings = reference_problems(session, loaded, lenient=True)
    return {
        "valid": not problems,
        "code": loaded.code,
        "name": loaded.name,
        "process_id": loaded.process_id,
        "problems": problems,
        "warnings": list(loaded.warnings) + warnings,
    }


def public_data(session, d: Dossier) -> dict:
    """What the applicant sees of the dossier's data: only the fields its forms mark `x-public: true`
    (forms.public_fields; docs/bpmn-conventions.md). Staff opinions, proposals and notes never appear."""
    forms = session.scalar(select(ProcedureVersion.forms).where(ProcedureVersion.id == d.procedure_version_id))
    shown = set()
    for f in (forms or {}).values():
        shown |= forms_lib.public_fields((f or {}).get("schema"))
    return {k: v for k, v in (d.data or {}).items() if k in shown}


__all__ = [
    "Page",
    "DossierFilters",
    "MAX_PER_PAGE",
    "MAX_PER_PAGE_CATALOGUE",
    "list_dossiers",
    "dossier_summary",
    "dossier_history",
    "list_tasks",
    "task_detail",
    "list_procedures",
    "procedure_details",
    "procedure_diagram",
    "public_lookup",
    "step_counts",
    "dossier_steps",
    "procedure_check",
]
