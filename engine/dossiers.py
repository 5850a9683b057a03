"""The dossier runtime: start a dossier, complete its user tasks, run the engine to the next wait state.

Every change is one transaction (`Database.uow`) that writes the dossier row (optimistic version column),
its workflow state (without the spec), the ready task rows the inbox reads, and an audit event.
"""

from __future__ import annotations

import json
import re
import threading
import time as _time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, lru_cache
from types import SimpleNamespace
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import LABEL_STYLE_TABLENAME_PLUS_COL, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from forms import MAX_DATA_BYTES, labelled_view

from . import connectors, decisions, messages, payments, statuses
from .agencies import calendar_for, performing_agency
from .attachments import check_required_documents
from .auth import Actor, task_not_found, visible_dossier, visible_task
from .calendar import VN_TZ, WorkCalendar, parse_cutoff, parse_deadline
from .config import Settings
from .db import Database
from .errors import Conflict, InvalidInput, NotFound, PermissionDenied, WorkflowDataError
from .expressions import expression_error_of
from .models import CodeCounter, Dossier, Event, Task, TaskRole, WorkflowState, utcnow
from .procedures import CALLED_VERSIONS, Runtime, RuntimeCache, current_version_id, variant_for
from .script_engine import make_script_engine
from .statuses import FINAL, Channel, Status
from .timers import timer_functions
from .views import dossier_view, event_view, task_view
from .workflow_state import dump_state, load_state


def receiving_variant(session, actor: Actor, procedure_code, agency: str | None) -> tuple[int, str]:
    """(procedure version id, receiving agency) of a new dossier: the receiver's own agency (an admin may
    name another) runs its own variant of the procedure, else the province-wide one. An admin naming no
    agency receives for their own, or — when the code has a single variant — for that variant's agency."""
    if not isinstance(procedure_code, str) or not 0 < len(procedure_code) <= 64:
        raise NotFound(f"Không có thủ tục mã '{procedure_code}'", f"no procedure with code '{procedure_code}'")
    if not actor.is_admin or agency:
        agency = agency if (agency and actor.is_admin) else actor.agency
        return current_version_id(session, procedure_code, agency), agency
    try:
        return current_version_id(session, procedure_code, actor.agency), actor.agency
    except NotFound:
        vid, owner = variant_for(session, procedure_code, None)
        return vid, owner or actor.agency


def agency_code(agency: str) -> str:
    """The agency part of a dossier code: `000.31.14.H56` → `H56.31.14`, `000.00.00.H56` → `H56`."""
    parts = [p for p in agency.split(".") if p and not re.fullmatch(r"0+", p)]
    letters = [p for p in parts if re.search(r"[A-Za-z]", p)]
    rest = [p for p in parts if p not in letters]
    return ".".join(letters + rest) or agency


def _check_json(data, what="data") -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidInput(f"'{what}' phải là một đối tượng JSON", f"'{what}' must be a JSON object")
    try:
        text = json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"'{what}' chứa giá trị không phải JSON: {exc}", f"'{what}' holds a non-JSON value: {exc}"
        ) from None
    if len(text) > MAX_DATA_BYTES:
        raise InvalidInput(
            f"'{what}' quá lớn (tối đa {MAX_DATA_BYTES} byte)", f"'{what}' too large (at most {MAX_DATA_BYTES} bytes)"
        )
    return json.loads(text)


@contextmanager
def _workflow_errors(where: str):
    """SpiffWorkflow stopping inside a step (a condition reading a field the data lacks, a script failing)
    is the data's fault, not the server's: InvalidInput (422). The caller's transaction rolls back."""
    try:
        yield
    except SpiffWorkflowException as exc:
        cause = expression_error_of(exc)
        element = getattr(getattr(exc, "task_spec", None), "name", None) or getattr(exc, "id", None)
        if cause is not None:
            vi, en = cause.message_vi, cause.message_en
        else:
            vi = en = str(exc).strip() or type(exc).__name__
        at_vi = f" (tại '{element}')" if element else ""
        at_en = f" (at '{element}')" if element else ""
        raise WorkflowDataError(
            f"Quy trình không thể tiếp tục sau '{where}' với dữ liệu này{at_vi}: {vi}",
            f"the process cannot continue after '{where}' with this data{at_en}: {en}",
            {"element": element, "problems": [{"element": element, "message_vi": vi, "message_en": en}]},
        ) from exc


class WorkflowCache:
    """Live workflows of recently worked dossiers, keyed by dossier id and row version.

    A step takes its workflow out (so no two threads share one) and puts it back only after its
    transaction committed; a version mismatch (another process moved the dossier) is a miss.
    """

    def __init__(self, size: int = 2000):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def take(self, dossier_id: int, version: int):
        with self._lock:
            item = self._items.pop(dossier_id, None)
        return item[1] if item is not None and item[0] == version else None

    def put(self, dossier_id: int, version: int, workflow) -> None:
        with self._lock:
            self._items[dossier_id] = (version, workflow)
            self._items.move_to_end(dossier_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass
class Loaded:
    """A dossier locked for update with its restored workflow (see DossierService.open_for_update)."""

    dossier: Dossier
    rt: Runtime
    cal: WorkCalendar
    workflow: object
    before: dict


@dataclass
class Applicant:
    name: str
    id_number: str | None = None
    phone: str | None = None
    email: str | None = None


class DossierService:
    """Use cases over dossiers and tasks. One instance per process; thread-safe."""

    def __init__(self, db: Database, settings: Settings | None = None):
        self.db = db
        self.settings = settings or Settings.from_env()
        self.runtimes = RuntimeCache()
        self.workflows = WorkflowCache()
        self._calendars: dict[str, tuple[WorkCalendar, float]] = {}
        self._notifier = None
        self._script_engines: dict[WorkCalendar, object] = {}
        self._lock = threading.Lock()

    # -- calendar ----------------------------------------------------------------------------------
    def calendar(self, session, agency: str | None = None) -> WorkCalendar:
        """The working calendar of `agency` (None: the national one) with the administrators' overrides and
        the agency's own hours and days (engine/agencies.py); re-read at most every 30 s per process."""
        key = agency or ""
        with self._lock:
            hit = self._calendars.get(key)
            if hit is not None and _time.monotonic() - hit[1] < 30:
                return hit[0]
        cal = calendar_for(session, agency)
        with self._lock:
            if len(self._calendars) >= 5000:
                self._calendars.clear()
            self._calendars[key] = (cal, _time.monotonic())
        return cal

    def invalidate_calendar(self) -> None:
        with self._lock:
            self._calendars.clear()

    def script_engine(self, cal: WorkCalendar):
        """The sandboxed script engine bound to this calendar (one per calendar, reused by every step)."""
        engine = self._script_engines.get(cal)
        if engine is None:
            engine = make_script_engine(timer_functions(cal.add_working_hours, utcnow))
            with self._lock:
                if len(self._script_engines) >= 64:
                    self._script_engines.clear()
                self._script_engines[cal] = engine
        return engine

    # -- codes -------------------------------------------------------------------------------------
    def next_code(self, session, agency: str, when: datetime) -> str:
        """`{agency}-{yyMMdd}-{NNNN}`: a daily counter per agency, atomic on SQLite and PostgreSQL."""
        day = when.astimezone(VN_TZ).strftime("%y%m%d")
        n = (
            session.connection()
            .execute(_counter_stmt(session.bind.dialect.name), {"agency": agency, "day": day})
            .scalar_one()
        )
        return f"{agency_code(agency)}-{day}-{n:04d}"

    # -- starting ----------------------------------------------------------------------------------
    def start_dossier(
        self,
        actor: Actor,
        procedure_code: str,
        applicant: Applicant | dict,
        channel=1,
        data: dict | None = None,
        received_at: datetime | None = None,
        agency: str | None = None,
    ) -> dict:
        actor.require("receiver")
        data = _check_json(data)
        if isinstance(applicant, dict):
            applicant = Applicant(**{k: applicant.get(k) for k in ("name", "id_number", "phone", "email")})
        if not applicant.name or not str(applicant.name).strip():
            raise InvalidInput(
                "Thiếu tên người nộp hồ sơ",
                "the applicant's name is required",
                {"fields": {"applicant.name": "Trường bắt buộc / Required"}},
            )
        try:
            channel = Channel.parse(channel)
        except (ValueError, KeyError):
            raise InvalidInput(
                "Kênh nộp không hợp lệ (1 trực tiếp, 2 trực tuyến, 3 bưu chính)",
                "invalid channel (1 in person, 2 online, 3 postal)",
                {"fields": {"channel": "1, 2, 3"}},
            ) from None
        now = utcnow()
        if received_at is not None:
            if not actor.is_admin:
                raise PermissionDenied(
                    "Chỉ quản trị viên được nhập ngày tiếp nhận trong quá khứ",
                    "only an admin may give a past received_at",
                )
            if received_at.tzinfo is None:
                raise InvalidInput(
                    "received_at phải có múi giờ",
                    "received_at needs a UTC offset",
                    {"fields": {"received_at": "timezone required"}},
                )
            if received_at > now + timedelta(minutes=1):
                raise InvalidInput(
                    "Ngày tiếp nhận không được ở tương lai",
                    "received_at cannot be in the future",
                    {"fields": {"received_at": "future"}},
                )
        received = received_at or now
        with self.db.uow() as s:
            version_id, agency = receiving_variant(s, actor, procedure_code, agency)
            rt = self.runtimes.get(s, version_id)
            cal = self.calendar(s, agency)  # the dossier's due time: the receiving agency's calendar
            due = deadline_hours = None
            if rt.meta.get("deadline"):
                d = parse_deadline(rt.meta["deadline"])
                due = cal.due_at(received, d, parse_cutoff(rt.meta.get("cutoff")))
                deadline_hours = d.hours
            code = self.next_code(s, agency, received)
            initial = Status.NEW if channel == Channel.ONLINE else Status.RECEIVED
            subprocess_specs, called = self.runtimes.called_specs(s, rt, agency)  # called versions fixed now
            workflow = BpmnWorkflow(rt.spec, subprocess_specs, script_engine=self.script_engine(cal))
            if called:
                workflow.data[CALLED_VERSIONS] = called
            start_data = dict(data)
            start_data.update({"channel": int(channel)})
            workflow.task_tree.data.update(start_data)
            with _workflow_errors(rt.code):
                self._run(workflow, rt)
            values = dict(
                code=code,
                procedure_version_id=version_id,
                procedure_code=rt.code,
                agency=agency,
                status=initial.value,
                status_code=initial.code,
                channel=int(channel),
                applicant_name=str(applicant.name).strip()[:200],
                applicant_id_number=applicant.id_number,
                applicant_phone=applicant.phone,
                applicant_email=applicant.email,
                data=data,
                received_at=received,
                due_at=due,
                original_due_at=due,
                deadline_hours=deadline_hours,
                paused_at=None,
                paused_hours=0.0,
                supplement_count=0,
                extended_at=None,
                extension_reason=None,
                processed_at=None,
                returned_at=None,
                finished=False,
                finished_at=None,
                next_timer_at=None,
                reminded_at=None,
                overdue_flagged_at=None,
                created_by=actor.username,
                updated_at=now,
                version=1,
            )
            # Known before the row is written (timers, reminder, due), so the insert is the only write of it.
            values["next_timer_at"] = compute_next_timer(Row(id=None, **values), workflow, cal, self.settings)
            dossier_id = s.connection().execute(INSERT_DOSSIER, values).scalar_one()
            dossier = Row(id=dossier_id, **values)
            dossier._motcua_transitions = [initial.value]  # the national portal hears of the first status too
            s.connection().execute(
                INSERT_EVENT,
                dict(
                    dossier_id=dossier_id,
                    actor=actor.username,
                    action="dossier.received",
                    at=now,
                    from_status=None,
                    to_status=initial.value,
                    task_id=None,
                    details={
                        "procedure_code": rt.code,
                        "version": rt.version,
                        "channel": int(channel),
                        "received_at": received.isoformat(),
                        **({"called_versions": called} if called else {}),
                    },
                ),
            )
            open_tasks = self._after_step(s, dossier, workflow, rt, cal, actor, now, {}, completed_task=None)
            s.connection().execute(INSERT_STATE, {"dossier_id": dossier_id, "state": dump_state(rt.dialect, workflow)})
            _write_dossier(s, dossier, now, values)
            self._notify_applicant(s, dossier, "received")
            self.push_status(s, dossier, now)
            view = dossier_view(dossier, open_tasks)
        self.workflows.put(dossier.id, dossier.version, workflow)  # committed: the first step needs no restore
        return view

    # -- tasks -------------------------------------------------------------------------------------
    def claim(self, actor: Actor, task_id: str) -> dict:
        with self.db.uow() as s:
            task = visible_task(s, actor, task_id)
            self._check_workable(actor, task)
            if task.claimed_by and task.claimed_by != actor.username:
                raise Conflict.task_held(task.claimed_by)
            n = s.execute(
                update(Task)
                .where(
                    Task.id == task.id,
                    Task.state == "ready",
                    (Task.claimed_by.is_(None)) | (Task.claimed_by == actor.username),
                )
                .values(claimed_by=actor.username, claimed_at=utcnow())
            ).rowcount
            if n != 1:
                raise Conflict("Công việc vừa được người khác nhận", "the task was just claimed by someone else")
            s.add(
                Event(
                    dossier_id=task.dossier_id,
                    actor=actor.username,
                    action="task.claimed",
                    task_id=task.id,
                    details={"task": task.spec_name},
                )
            )
            s.refresh(task)
            return task_view(task, _paused(s, task.dossier_id))

    def unclaim(self, actor: Actor, task_id: str) -> dict:
        with self.db.uow() as s:
            task = visible_task(s, actor, task_id)
            self._check_workable(actor, task)
            if task.claimed_by and task.claimed_by != actor.username and not actor.is_admin:
                raise Conflict.task_held(task.claimed_by)
            task.claimed_by, task.claimed_at = None, None
            paused = _paused(s, task.dossier_id)
            s.add(
                Event(
                    dossier_id=task.dossier_id,
                    actor=actor.username,
                    action="task.unclaimed",
                    task_id=task.id,
                    details={"task": task.spec_name},
                )
            )
            return task_view(task, paused)

    @staticmethod
    def _check_may_work(actor: Actor, task) -> None:
        if not actor.may_work(task.roles, task.agency, task.assignee):
            raise PermissionDenied(
                "Bạn không có vai trò thực hiện bước này", f"this step needs one of the roles {task.roles}"
            )

    def _check_workable(self, actor: Actor, task: Task) -> None:
        if task.state != "ready":
            raise Conflict(
                "Công việc đã được hoàn thành hoặc không còn hiệu lực",
                "the task is already completed or no longer open",
            )
        self._check_may_work(actor, task)

    def authorize_task(self, actor: Actor, task_id: str) -> None:
        """Whether the actor may act on this step at all, before the request's input is read
        (docs/security.md, "Authorization before validation"): a task they cannot see is a 404, one that
        needs a role they lack a 403. Claim, unclaim and complete check it again under their lock."""
        with self.db.read() as s:
            self._check_may_work(actor, visible_task(s, actor, task_id))

    def complete_task(
        self, actor: Actor, task_id: str, data: dict | None = None, expected_version: int | None = None
    ) -> dict:
        data = _check_json(data)
        if not task_id or len(task_id) > 36:
            raise task_not_found()
        with self.db.uow() as s:
            # One round trip: the task and its dossier, both locked (PostgreSQL) so that a concurrent
            # completion of the same task waits here, then sees it completed.
            row = s.connection().execute(SELECT_TASK_DOSSIER, {"_id": task_id}).first()
            if row is None or not actor.sees_agency(row._mapping["tasks_agency"]):
                raise task_not_found()
            task, dossier = _split_task_dossier(row)  # plain objects, written back with Core below
            _snapshot(dossier)
            self._check_workable(actor, task)
            if task.claimed_by and task.claimed_by != actor.username:
                raise Conflict.task_held(task.claimed_by)
            if expected_version is not None and expected_version != dossier.version:
                raise Conflict(
                    "Hồ sơ đã thay đổi từ khi bạn mở; vui lòng tải lại",
                    "the dossier changed since you opened it; reload",
                )
            if Status(dossier.status) in (Status.SUPPLEMENT_REQUESTED, Status.PAYMENT_REQUIRED) or dossier.finished:
                raise Conflict(
                    f"Hồ sơ đang ở trạng thái '{Status(dossier.status).label_vi}', chưa thể xử lý tiếp",
                    f"the dossier is '{dossier.status}'; it cannot be processed now",
                )
            rt = self.runtimes.get(s, dossier.procedure_version_id)
            form = self.runtimes.form_of(s, rt.version_id, task)
            if form is not None:
                data = form.validate(data)
                check_required_documents(s, dossier, rt, form, data)
            cal = self.calendar(s, dossier.agency)
            workflow = self._restore(s, dossier, rt, cal)
            spiff_task = workflow.get_task_from_id(UUID(task.id))
            if spiff_task is None or spiff_task.state != TaskState.READY:
                raise Conflict("Công việc không còn sẵn sàng", "the task is no longer ready")
            before = _ready_ids(workflow)
            now = utcnow()
            spiff_task.data.update(data)
            with _workflow_errors(task.title):
                spiff_task.run()
                self._run(workflow, rt)
            dossier.data = {**(dossier.data or {}), **data}
            loaded = Loaded(dossier, rt, cal, workflow, before)
            open_tasks = self.finish_step(s, loaded, actor, now, completed_task=task, task_data=data)
            view = dossier_view(dossier, open_tasks)
        # Committed: keep the live workflow for this dossier's next step (valid while the version matches).
        self.workflows.put(dossier.id, dossier.version, workflow)
        return view

    def _restore(self, s, dossier: Dossier, rt: Runtime, cal: WorkCalendar):
        """The dossier's workflow: from the in-process cache when its version matches, else from the database."""
        workflow = self.workflows.take(dossier.id, dossier.version)
        if workflow is not None:
            workflow.script_engine = self.script_engine(cal)
            return workflow
        blob = s.connection().execute(SELECT_STATE, {"_id": dossier.id}).scalar_one()
        return load_state(
            rt.dialect,
            blob,
            rt.spec,
            lambda called: self.runtimes.called_specs(s, rt, dossier.agency, called)[0],
            self.script_engine(cal),
            CALLED_VERSIONS,
        )

    # -- building blocks for other use cases (legal actions, timers) -----------------------------------
    def open_for_update(self, s, *, code: str | None = None, dossier_id: int | None = None) -> Loaded:
        """Lock a dossier (and its state) inside the caller's transaction and restore its workflow."""
        q = select(Dossier)
        q = q.where(Dossier.code == code) if code is not None else q.where(Dossier.id == dossier_id)
        dossier = s.execute(q.with_for_update()).scalar_one_or_none()
        if dossier is None:
            raise NotFound(f"Không tìm thấy hồ sơ '{code or dossier_id}'", f"dossier '{code or dossier_id}' not found")
        s.expunge(dossier)  # detached: finish_step writes it back with Core
        _snapshot(dossier)
        rt = self.runtimes.get(s, dossier.procedure_version_id)
        cal = self.calendar(s, dossier.agency)
        workflow = self._restore(s, dossier, rt, cal)
        return Loaded(dossier, rt, cal, workflow, _ready_ids(workflow))

    def finish_step(
        self,
        s,
        loaded: Loaded,
        actor: Actor,
        now: datetime,
        completed_task: Task | None = None,
        task_data: dict | None = None,
    ) -> list:
        """After the workflow moved: sync task rows, status, timers, audit; store the state. Returns open tasks."""
        open_tasks = self._after_step(
            s,
            loaded.dossier,
            loaded.workflow,
            loaded.rt,
            loaded.cal,
            actor,
            now,
            loaded.before,
            completed_task=completed_task,
            task_data=task_data,
        )
        blob = dump_state(loaded.rt.dialect, loaded.workflow)
        s.connection().execute(UPDATE_STATE, {"_id": loaded.dossier.id, "state": blob})
        _write_dossier(s, loaded.dossier, now)
        return open_tasks

    # -- the engine step ---------------------------------------------------------------------------
    @staticmethod
    def _run(workflow, rt: Runtime) -> None:
        # Waiting timers are refreshed by the scheduler when they are due (engine/scheduler.py), not here.
        workflow.do_engine_steps()
        payments.settle_free(workflow, payments.fee_of(rt.meta, workflow))  # a fee of 0 asks for no payment

    def _after_step(
        self,
        s,
        dossier: Dossier,
        workflow,
        rt: Runtime,
        cal: WorkCalendar,
        actor: Actor,
        now: datetime,
        before: dict,
        completed_task: Task | None,
        task_data: dict | None = None,
    ) -> list:
        """Bring the rows the inbox, the monitor and the reports read in line with the workflow.

        `before` is the set of ready user tasks before the step; only the difference touches the database.
        Returns the dossier's open task rows.
        """
        old_status = dossier.status
        outcome = None
        conn = s.connection()
        after = _ready_ids(workflow)
        gone = [tid for tid in before if tid not in after]
        if gone:
            others = [tid for tid in gone if completed_task is None or tid != completed_task.id]
            if completed_task is not None and completed_task.id in before:
                completed_task.state, completed_task.completed_at = "completed", now
                completed_task.completed_by = actor.username
                conn.execute(
                    UPDATE_TASK,
                    {
                        "_id": completed_task.id,
                        "state": "completed",
                        "completed_at": now,
                        "completed_by": actor.username,
                    },
                )
            if others:
                s.execute(update(Task).where(Task.id.in_(others)).values(state="cancelled", completed_at=now))
            conn.execute(DELETE_ROLES, {"ids": gone})
        kept = [tid for tid in after if tid in before]
        open_tasks = list(s.scalars(select(Task).where(Task.id.in_(kept)))) if kept else []
        new_rows, role_rows = [], []
        for tid, t in after.items():
            if tid in before:
                continue
            ut = rt.user_task(t)
            # the agency whose staff do the step (its inbox gets the task): the receiving agency unless the
            # lane or the task names another, by code or by an expression over the dossier's data
            performer = performing_agency(s, ut.get("agency"), t.data, dossier.agency, t.task_spec.name)
            step_due = remind_at = None
            if ut.get("deadline"):  # a step's due time: the performing agency's calendar
                step_cal = cal if performer == dossier.agency else self.calendar(s, performer)
                step_due = step_cal.due_at(now, _deadline(ut["deadline"]))
                remind_at = step_reminder_at(now, step_due, step_cal, self.settings)
            roles = list(ut.get("roles") or [])
            new_rows.append(
                dict(
                    id=tid,
                    dossier_id=dossier.id,
                    dossier_code=dossier.code,
                    procedure_code=dossier.procedure_code,
                    agency=performer,
                    spec_name=t.task_spec.name,
                    title=ut.get("name") or t.task_spec.bpmn_name or t.task_spec.name,
                    roles=roles,
                    assignee=ut.get("assignee"),
                    form_key=ut.get("form_key"),
                    state="ready",
                    created_at=now,
                    due_at=step_due,
                    remind_at=remind_at,
                    overdue_flagged_at=None,
                    claimed_by=None,
                    claimed_at=None,
                    completed_at=None,
                    completed_by=None,
                )
            )
            role_rows.extend({"task_id": tid, "role": role, "agency": performer} for role in roles)
        handed_from = completed_task.agency if completed_task is not None else dossier.agency
        for r in new_rows:
            if r["agency"] != handed_from:  # a hand-over between agencies: on the timeline (docs/bpmn-conventions.md)
                conn.execute(
                    INSERT_EVENT,
                    dict(
                        dossier_id=dossier.id,
                        actor=actor.username,
                        action="step.handed_over",
                        at=now,
                        from_status=dossier.status,
                        to_status=dossier.status,
                        task_id=r["id"],
                        details={
                            "task": r["spec_name"],
                            "title": r["title"],
                            "from_agency": handed_from,
                            "to_agency": r["agency"],
                        },
                    ),
                )
        if new_rows:
            # Core inserts: these rows are written once here and never need the ORM's bookkeeping.
            conn.execute(INSERT_TASK, new_rows[0] if len(new_rows) == 1 else new_rows)
            open_tasks.extend(Row(**r) for r in new_rows)
        if role_rows:
            conn.execute(INSERT_ROLE, role_rows[0] if len(role_rows) == 1 else role_rows)
        ready = list(after.values())
        decisions.record_fee(dossier, workflow)  # a fee decided by a table (docs/bpmn-conventions.md)
        # Status: an end event's status when finished; else the open task's declared status; else in process.
        new_status = Status(dossier.status)
        if new_status in CLOSED_BY_ACTION:
            pass  # refused, withdrawn or stopped by a legal action (engine/actions.py): the workflow was cancelled
        elif workflow.completed:
            # The end event reached last that declares a status decides the outcome (task-tree order is
            # not completion order, so sort by when each end event completed).
            end_status = rt.meta.get("end_status", {})
            ends = sorted(
                (t for t in workflow.get_tasks(state=TaskState.COMPLETED) if end_status.get(t.task_spec.name)),
                key=lambda t: t.last_state_change,
            )
            declared = end_status[ends[-1].task_spec.name] if ends else None
            new_status = Status(declared) if declared else Status.RETURNED
            new_status, outcome = statuses.portal_end(new_status, Status(old_status))
            if outcome == "refused":  # refused after appraisal: 9 on the way to 10 (docs/bpmn-conventions.md)
                self._set_status(dossier, Status.PROCESSED, now)
        elif payments.waits_for_payment(workflow):
            new_status = Status.PAYMENT_REQUIRED  # the fee is due (engine/payments.py): processing waits
        elif messages.waiting(workflow, messages.SUPPLEMENT):
            new_status = Status.SUPPLEMENT_REQUESTED  # the diagram asks for a supplement (engine/messages.py)
        elif new_status not in (Status.SUPPLEMENT_REQUESTED, Status.PAYMENT_REQUIRED):
            declared = [rt.user_task(t).get("status") for t in ready]
            declared = [d for d in declared if d]
            if declared:
                new_status = Status(declared[0])
            elif completed_task is not None:
                new_status = Status.IN_PROCESS
        accepted = (
            completed_task is not None
            and old_status == Status.NEW.value
            and new_status not in (Status.NEW, Status.REFUSED, Status.WITHDRAWN, Status.STOPPED)
        )
        if accepted:  # an online dossier accepted at intake: 2 (received), then its next step's status
            self._set_status(dossier, Status.RECEIVED, now)
            conn.execute(
                INSERT_EVENT,
                dict(
                    dossier_id=dossier.id,
                    actor=actor.username,
                    action="dossier.accepted",
                    at=now,
                    from_status=old_status,
                    to_status=Status.RECEIVED.value,
                    task_id=completed_task.id,
                    details={"task": completed_task.spec_name, "channel": dossier.channel},
                ),
            )
            self._notify_applicant(s, dossier, "received")
        self._set_status(dossier, new_status, now)
        if new_status == Status.PAYMENT_REQUIRED and old_status != new_status:
            payments.open_order(s, dossier, payments.fee_of(rt.meta, workflow))
        if new_status == Status.SUPPLEMENT_REQUESTED and dossier.paused_at is None:
            dossier.paused_at, dossier.supplement_count = now, (dossier.supplement_count or 0) + 1  # clock paused
        if rt.meta.get("waits") or rt.meta.get("calls"):  # its own waits, or a called procedure's
            messages.sync_waits(s, dossier, workflow, now)
        if rt.meta.get("service_tasks"):  # the dossier waits at a service task: the worker calls its connector
            connectors.sync_calls(s, dossier, workflow, rt.meta["service_tasks"], now)
        if workflow.completed and not dossier.finished:
            dossier.finished, dossier.finished_at = True, now
        dossier.next_timer_at = compute_next_timer(dossier, workflow, cal, self.settings, open_tasks)
        if completed_task is not None:
            conn.execute(
                INSERT_EVENT,
                dict(
                    dossier_id=dossier.id,
                    actor=actor.username,
                    action="task.completed",
                    at=now,
                    from_status=Status.RECEIVED.value if accepted else old_status,
                    to_status=dossier.status,
                    task_id=completed_task.id,
                    details={
                        "task": completed_task.spec_name,
                        "title": completed_task.title,
                        "data": task_data or {},
                        **({"outcome": outcome} if outcome else {}),
                    },
                ),
            )
        if old_status != dossier.status and completed_task is not None:
            self._notify_applicant(s, dossier, "status")
        if old_status != dossier.status:
            self.push_status(s, dossier, now)
        return open_tasks

    @staticmethod
    def _set_status(dossier: Dossier, status: Status, now: datetime) -> None:
        if dossier.status != status.value:  # every transition reaches the national portal (push_status)
            pending = getattr(dossier, "_motcua_transitions", None)
            if pending is None:
                pending = []
                dossier._motcua_transitions = pending
            pending.append(status.value)
        dossier.status, dossier.status_code = status.value, status.code
        if status == Status.PROCESSED and dossier.processed_at is None:
            dossier.processed_at = now
        if status == Status.RETURNED and dossier.returned_at is None:
            dossier.returned_at = now
            if dossier.processed_at is None:
                dossier.processed_at = now
        if status in FINAL:
            dossier.finished, dossier.finished_at = True, dossier.finished_at or now

    @property
    def notifier(self):
        """Writes the outbox rows of a change (engine/channels/notify.py), templates overridable by admins."""
        if self._notifier is None:
            from .channels.notify import Notifier
            from .channels.templates import TemplateStore

            ch = self.settings.channels
            self._notifier = Notifier(ch, TemplateStore(self.db, ch.template_refresh_seconds))
        return self._notifier

    def _notify_applicant(self, s, dossier: Dossier, kind: str, extra: dict | None = None) -> None:
        """The applicant's messages for `kind` ("received", or "status": the event of the new status)."""
        if kind == "status":
            kind = STATUS_EVENTS.get(dossier.status, "status")
        self.notifier.applicant(s.connection(), dossier, kind, extra)

    def push_status(self, s, dossier, now: datetime) -> None:
        """The national portal's rows for the statuses this change went through, in order (docs/channels.md)."""
        pending = getattr(dossier, "_motcua_transitions", None) or [dossier.status]
        dossier._motcua_transitions = []
        self.notifier.status_changed(s.connection(), dossier, pending, now)

    # -- reading -----------------------------------------------------------------------------------
    def _view(self, s, dossier: Dossier) -> dict:
        tasks = s.scalars(
            select(Task).where(Task.dossier_id == dossier.id, Task.state == "ready").order_by(Task.created_at)
        ).all()
        return dossier_view(dossier, tasks)

    def get_dossier(self, actor: Actor, code: str) -> dict:
        with self.db.read() as s:
            d = visible_dossier(s, actor, code)
            view = self._view(s, d)
            # the data as the forms label it (forms.labelled_view; docs/bpmn-conventions.md)
            runtime = self.runtimes.get(s, d.procedure_version_id)
            view["data_view"] = labelled_view(runtime.forms_in_order(), d.data or {})
            view["timeline"] = [
                event_view(e)
                for e in s.scalars(select(Event).where(Event.dossier_id == d.id).order_by(Event.id).limit(200))
            ]
            return view

    def task_form(self, actor: Actor, task_id: str) -> dict | None:
        """The form of a task as a front-end renders it ({key, title, schema, ui_schema}), or None."""
        with self.db.read() as s:
            task = visible_task(s, actor, task_id)
            vid = s.scalar(select(Dossier.procedure_version_id).where(Dossier.id == task.dossier_id))
            form = self.runtimes.form_of(s, vid, task)
            return form.to_dict() if form is not None else None


# The applicant's message for a new status (templates engine/channels/templates/<event>/).
STATUS_EVENTS = {
    Status.REFUSED.value: "refused",
    Status.SUPPLEMENT_REQUESTED.value: "supplement_requested",
    Status.PAYMENT_REQUIRED.value: "payment_required",
    Status.PROCESSED.value: "result_ready",
    Status.RETURNED.value: "returned",
}
DOSSIERS = Dossier.__table__
STATES = WorkflowState.__table__
TASKS = Task.__table__
_WRITABLE = [c.key for c in DOSSIERS.columns if c.key not in ("id", "version", "code", "created_by")]
# Hot-path statements, built once: their compiled form is cached and reused by every step.
UPDATE_DOSSIER = DOSSIERS.update().where(DOSSIERS.c.id == bindparam("_id"), DOSSIERS.c.version == bindparam("_version"))
SELECT_STATE = select(STATES.c.state).where(STATES.c.dossier_id == bindparam("_id"))
UPDATE_STATE = STATES.update().where(STATES.c.dossier_id == bindparam("_id"))
INSERT_STATE = STATES.insert()
UPDATE_TASK = TASKS.update().where(TASKS.c.id == bindparam("_id"))
INSERT_TASK = TASKS.insert()
INSERT_ROLE = TaskRole.__table__.insert()
DELETE_ROLES = TaskRole.__table__.delete().where(TaskRole.__table__.c.task_id.in_(bindparam("ids", expanding=True)))
INSERT_EVENT = Event.__table__.insert()
INSERT_DOSSIER = DOSSIERS.insert().returning(DOSSIERS.c.id)
SELECT_TASK_DOSSIER = (
    select(TASKS, DOSSIERS)
    .join(DOSSIERS, DOSSIERS.c.id == TASKS.c.dossier_id)
    .where(TASKS.c.id == bindparam("_id"))
    .with_for_update()
    .set_label_style(LABEL_STYLE_TABLENAME_PLUS_COL)
)
_TASK_COLS = [(f"tasks_{c.key}", c.key) for c in TASKS.columns]
_DOSSIER_COLS = [(f"dossiers_{c.key}", c.key) for c in DOSSIERS.columns]


def _split_task_dossier(row):
    m = row._mapping
    return (Row(**{k: m[label] for label, k in _TASK_COLS}), Row(**{k: m[label] for label, k in _DOSSIER_COLS}))


# Outcomes decided by a legal action rather than by the diagram; a cancelled workflow keeps them.
CLOSED_BY_ACTION = frozenset({Status.WITHDRAWN, Status.STOPPED}) | {Status.REFUSED}


class Row(SimpleNamespace):
    """A plain copy of a row (dossier or task) on the hot path: attribute access without ORM bookkeeping.

    It has the same attribute names as the mapped class; it is written back with Core statements.
    """


def _snapshot(dossier: Dossier) -> Dossier:
    """Remember a loaded dossier's column values so `_write_dossier` writes only what a step changed."""
    dossier._loaded_values = {k: getattr(dossier, k) for k in _WRITABLE}
    return dossier


def _write_dossier(s, dossier: Dossier, now: datetime, inserted: dict | None = None) -> None:
    """Write a (detached) dossier back in one UPDATE guarded by its version: a concurrent writer → Conflict.

    Only changed columns are written; `data` always is (it is a mutable JSON value). A dossier just
    inserted by this transaction and unchanged since is not written again.
    """
    current = {k: getattr(dossier, k) for k in _WRITABLE}
    if inserted is not None:
        if all(inserted.get(k) == v for k, v in current.items() if k != "updated_at"):
            return
        original = inserted
    else:
        original = getattr(dossier, "_loaded_values", None) or {}
    values = {k: v for k, v in current.items() if k == "data" or k not in original or original[k] != v}
    values["updated_at"] = now
    values.update(_id=dossier.id, _version=dossier.version, version=dossier.version + 1)
    n = s.connection().execute(UPDATE_DOSSIER, values).rowcount
    if n != 1:
        raise Conflict.dossier_changed()
    dossier.version += 1
    dossier._loaded_values = {**original, **{k: v for k, v in values.items() if not k.startswith("_")}}


_deadline = lru_cache(maxsize=4096)(parse_deadline)  # step deadlines are a handful of strings per procedure


@cache
def _counter_stmt(dialect: str):
    """INSERT … ON CONFLICT DO UPDATE … RETURNING: one atomic statement for the daily counter."""
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(CodeCounter.__table__)
    return (
        ins.values(agency=bindparam("agency"), day=bindparam("day"), value=1)
        .on_conflict_do_update(index_elements=["agency", "day"], set_={"value": CodeCounter.__table__.c.value + 1})
        .returning(CodeCounter.__table__.c.value)
    )


def compute_next_timer(dossier, workflow, cal, settings, tasks=()):
    """BPMN timers, reminder and due instants (the dossier's and its open steps'): the rule lives in
    engine/scheduler.py (imported late: it imports this module)."""
    from .scheduler import compute_next_timer as rule

    return rule(dossier, workflow, cal, settings, tasks)


def step_reminder_at(created_at, due, cal, settings):
    """When a step's holder is reminded: the rule lives in engine/scheduler.py (imported late)."""
    from .scheduler import step_reminder_at as rule

    return rule(created_at, due, cal, settings)


def _paused(s, dossier_id: int) -> bool:
    return s.scalar(select(Dossier.paused_at).where(Dossier.id == dossier_id)) is not None


def _ready_ids(workflow) -> dict:
    return {str(t.id): t for t in workflow.get_tasks(state=TaskState.READY, manual=True)}


_ACCENTS = str.maketrans(
    "àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ"
    "ÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬÈÉẺẼẸÊỀẾỂỄỆÌÍỈĨỊÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢÙÚỦŨỤƯỪỨỬỮỰỲÝỶỸỴĐ",
    "aaaaaaaaaaaaaaaaaeeeeeeeeeeeiiiiiooooooooooooooooouuuuuuuuuuuyyyyyd"
    "AAAAAAAAAAAAAAAAAEEEEEEEEEEEIIIIIOOOOOOOOOOOOOOOOOUUUUUUUUUUUYYYYYD",
)


def _unaccent(text: str) -> str:
    """SMS templates are sent without Vietnamese diacritics (docs/channels.md)."""
    return text.translate(_ACCENTS)
