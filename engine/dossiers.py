"""The dossier use cases: start a dossier, claim and complete its user tasks, run the engine to the next
wait state; and the two halves every other use case (legal actions, timers, payment) is built from.

Each use case reads: load (`DossierService.open_for_update`, or the task and its dossier for a completion)
→ the dossier's own rule (engine/dossier.py) and the workflow's step → save (`finish_step`: the task rows
the inbox reads, the status the dossier decides, `next_timer_at`, the workflow state without the spec, the
dossier row under its optimistic version, all through engine/repository.py) → outbox (the audit event,
`Notifier.notify_applicant` and the national portal's rows, engine/channels/notify.py). Every change is
one transaction (`Database.uow`).
"""

from __future__ import annotations

import json
import re
import threading
import time as _time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, lru_cache
from typing import Any, cast
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult

from forms import MAX_DATA_BYTES, labelled_view

from . import connectors, decisions, messages, payments
from .agencies import calendar_for, performing_agency
from .attachments import check_required_documents
from .auth import Actor, task_not_found, visible_dossier, visible_task
from .calendar import VN_TZ, WorkCalendar, parse_cutoff, parse_deadline
from .config import Settings
from .db import Database
from .dossier import Dossier, StepOutcome
from .errors import Conflict, InvalidInput, NotFound, PermissionDenied, WorkflowDataError
from .expressions import expression_error_of
from .models import CodeCounter, Event, Task, utcnow
from .models import Dossier as DossierRow
from .procedures import CALLED_VERSIONS, Runtime, RuntimeCache, current_version_id, variant_for
from .repository import DossierRepository
from .script_engine import make_script_engine
from .statuses import Channel, Status
from .timers import TIMER_CALENDAR, timer_functions
from .views import dossier_view, event_view, task_view
from .walk import Walk
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
    transaction committed; a version mismatch (another process moved the dossier) is a miss. With the
    workflow may go its ready user tasks as the step's walk found them (`Walk.ready`), which the next step
    takes as its `before` instead of walking the tree again: nothing moves a workflow once its step walked
    it, and a cached workflow is nobody's until taken.
    """

    def __init__(self, size: int = 2000):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def take(self, dossier_id: int, version: int):
        return self.take_with_ready(dossier_id, version)[0]

    def take_with_ready(self, dossier_id: int, version: int) -> tuple[Any, dict | None]:
        """(the workflow, its ready user tasks or None when not known), or (None, None) on a miss."""
        with self._lock:
            item = self._items.pop(dossier_id, None)
        return (item[1], item[2]) if item is not None and item[0] == version else (None, None)

    def put(self, dossier_id: int, version: int, workflow, ready: dict | None = None) -> None:
        with self._lock:
            self._items[dossier_id] = (version, workflow, ready)
            self._items.move_to_end(dossier_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class TaskRights:
    """Who may work on a step, per task id, as this process last saw its row: the performing agency, the
    candidate roles and the assignee (`Actor.may_work`).

    `authorize_task` answers from here before it reads the database: the steps this process opened (a
    completion answers with the next ones) are allowed without a query. Only an allowance is taken from
    here; what refuses is read again from the row, so a step that changed hands since (a migration to
    another version, engine/migration.py) is never refused wrongly. A stale allowance (the step was moved
    away by another process meanwhile) is caught by the check that claim, unclaim and complete make on the
    row under their lock, before the form is validated.
    """

    def __init__(self, size: int = 20_000):
        self.size = size
        self._items: OrderedDict[str, tuple[str, tuple[str, ...], str | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, task_id: str):
        with self._lock:
            return self._items.get(task_id)

    def forget(self, task_id: str) -> None:
        with self._lock:
            self._items.pop(task_id, None)

    def remember(self, tasks) -> None:
        with self._lock:
            for t in tasks:
                self._items[t.id] = (t.agency, tuple(t.roles or ()), t.assignee)
                self._items.move_to_end(t.id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


@dataclass
class Loaded:
    """A dossier locked for update with its restored workflow (see DossierService.open_for_update), and the
    repository that loaded it and saves it (`finish_step`)."""

    dossier: Dossier
    rt: Runtime
    cal: WorkCalendar
    workflow: Any
    before: dict
    repo: DossierRepository
    # the workflow's open tasks as it stands now (engine/walk.py), when the caller has just walked it and
    # nothing moved it since; `_after_step` walks it when None, and leaves here the walk it used
    walk: Walk | None = None


@dataclass
class Applicant:
    name: str | None  # required: start_dossier refuses a missing or blank name
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
        # the national portal's last (sequence, status code) per dossier, keyed by the row version committed
        # with it like the workflows: a change that pushes a status always writes the dossier row (its version
        # moves), so a matching version proves no other process pushed since (`push_status`)
        self.portal_cursors = WorkflowCache()
        self.task_rights = TaskRights()
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
        also: Callable[[Any, Dossier], None] | None = None,
    ) -> dict:
        """Receive a dossier: one transaction, one `dossier.received` event. `also(session, dossier)` writes the
        rest of the same change in that transaction (an online submission's documents), so that a failure
        there leaves no dossier behind."""
        actor.require("receiver")
        data = _check_json(data)
        if isinstance(applicant, dict):
            applicant = Applicant(
                applicant.get("name"), applicant.get("id_number"), applicant.get("phone"), applicant.get("email")
            )
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
            repo = DossierRepository(s, lambda: self.calendar(s))
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
            self._bind_timer_calendars(s, workflow, rt, agency)
            if called:
                workflow.data[CALLED_VERSIONS] = called
            start_data = dict(data)
            start_data.update({"channel": int(channel)})
            workflow.task_tree.data.update(start_data)
            with _workflow_errors(rt.code):
                walk = self.run_engine(workflow, rt)
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
            values["next_timer_at"] = compute_next_timer(Dossier(id=None, **values), workflow, cal, self.settings)
            dossier = repo.add(values)
            dossier.transitions.append(initial.value)  # the national portal hears of the first status too
            dossier.portal_last = (0, None)  # a new dossier: nothing pushed yet, nothing to read
            repo.add_event(
                dossier_id=dossier.id,
                actor=actor.username,
                action="dossier.received",
                at=now,
                from_status=None,
                to_status=initial.value,
                details={
                    "procedure_code": rt.code,
                    "version": rt.version,
                    "channel": int(channel),
                    "received_at": received.isoformat(),
                    **({"called_versions": called} if called else {}),
                },
            )
            loaded = Loaded(dossier, rt, cal, workflow, {}, repo, walk)
            open_tasks = self._after_step(s, loaded, actor, now, completed_task=None)
            repo.add_state(dossier.id, dump_state(rt.dialect, workflow))
            if also is not None:
                also(s, dossier)
            repo.save(dossier, now)
            repo.outbox.extend(self.notifier.applicant_messages(dossier, "received"))
            self.push_status(repo.conn, dossier, now, into=repo.outbox)
            self.notifier.write(repo.conn, repo.take_outbox())  # the change's messages: one INSERT
            view = dossier_view(dossier, open_tasks)
        # committed: the first step needs no restore, nor a walk for the tasks ready before it
        self.workflows.put(dossier.id, dossier.version, workflow, loaded.walk.ready if loaded.walk else None)
        self.portal_cursors.put(dossier.id, dossier.version, dossier.portal_last)
        self.task_rights.remember(open_tasks)
        return view

    # -- tasks -------------------------------------------------------------------------------------
    def claim(self, actor: Actor, task_id: str) -> dict:
        with self.db.uow() as s:
            task = visible_task(s, actor, task_id)
            self._check_workable(actor, task)
            if task.claimed_by and task.claimed_by != actor.username:
                raise Conflict.task_held(task.claimed_by)
            n = cast(
                CursorResult,
                s.execute(
                    update(Task)
                    .where(
                        Task.id == task.id,
                        Task.state == "ready",
                        (Task.claimed_by.is_(None)) | (Task.claimed_by == actor.username),
                    )
                    .values(claimed_by=actor.username, claimed_at=utcnow())
                ),
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

    def _check_workable(self, actor: Actor, task) -> None:
        if task.state != "ready":
            raise Conflict(
                "Công việc đã được hoàn thành hoặc không còn hiệu lực",
                "the task is already completed or no longer open",
            )
        self._check_may_work(actor, task)

    def authorize_task(self, actor: Actor, task_id: str) -> None:
        """Whether the actor may act on this step at all, before the request's input is read
        (docs/security.md, "Authorization before validation"): a task they cannot see is a 404, one that
        needs a role they lack a 403. Claim, unclaim and complete check it again under their lock.
        A step this process opened is allowed without a query (`TaskRights`); any refusal reads the row."""
        actor.require_staff()
        known = self.task_rights.get(task_id) if isinstance(task_id, str) else None
        if known is not None and actor.sees_agency(known[0]) and actor.may_work(known[1], known[0], known[2]):
            return
        with self.db.read() as s:
            task = visible_task(s, actor, task_id)
            self.task_rights.remember([task])
            self._check_may_work(actor, task)

    def complete_task(
        self, actor: Actor, task_id: str, data: dict | None = None, expected_version: int | None = None
    ) -> dict:
        data = _check_json(data)
        if not task_id or len(task_id) > 36:
            raise task_not_found()
        with self.db.uow() as s:
            repo = DossierRepository(s, lambda: self.calendar(s))
            found = repo.task_for_update(task_id)  # both locked: a concurrent completion waits here
            if found is None or not actor.sees_agency(found[0].agency):
                raise task_not_found()
            task, dossier = found
            dossier.portal_last = self.portal_cursors.take(dossier.id, dossier.version)
            self._check_workable(actor, task)
            if task.claimed_by and task.claimed_by != actor.username:
                raise Conflict.task_held(task.claimed_by)
            dossier.check_version(expected_version)
            dossier.check_processable()
            rt = self.runtimes.get(s, dossier.procedure_version_id)
            form = self.runtimes.form_of(s, rt.version_id, task)
            if form is not None:
                data = form.validate(data)
                check_required_documents(s, dossier, rt, form, data)
            cal = self.calendar(s, dossier.agency)
            workflow, before = self._restore(repo, dossier, rt, cal)
            spiff_task = workflow.get_task_from_id(UUID(task.id))
            if spiff_task is None or spiff_task.state != TaskState.READY:
                raise Conflict("Công việc không còn sẵn sàng", "the task is no longer ready")
            now = utcnow()
            spiff_task.data.update(data)
            with _workflow_errors(task.title):
                spiff_task.run()
                walk = self.run_engine(workflow, rt)
            dossier.data = {**(dossier.data or {}), **data}
            loaded = Loaded(dossier, rt, cal, workflow, before, repo, walk)
            open_tasks = self.finish_step(s, loaded, actor, now, completed_task=task, task_data=data)
            view = dossier_view(dossier, open_tasks)
        # Committed: keep the live workflow for this dossier's next step (valid while the version matches).
        # A finished dossier has no next step, and a done step no next request: neither takes a place.
        if not dossier.finished:
            self.workflows.put(dossier.id, dossier.version, workflow, loaded.walk.ready if loaded.walk else None)
            if dossier.portal_last is not None:
                self.portal_cursors.put(dossier.id, dossier.version, dossier.portal_last)
        self.task_rights.forget(task_id)
        self.task_rights.remember(open_tasks)
        return view

    def _restore(self, repo: DossierRepository, dossier: Dossier, rt: Runtime, cal: WorkCalendar) -> tuple[Any, dict]:
        """The dossier's workflow and its ready user tasks: from the in-process cache when its version matches
        (with the ready tasks its last step's walk found), else from the database (and a walk)."""
        workflow, ready = self.workflows.take_with_ready(dossier.id, dossier.version)
        if workflow is not None:
            workflow.script_engine = self.script_engine(cal)
        else:
            workflow = load_state(
                rt.dialect,
                repo.state(dossier.id),
                rt.spec,
                lambda called: self.runtimes.called_specs(repo.session, rt, dossier.agency, called)[0],
                self.script_engine(cal),
                CALLED_VERSIONS,
            )
        self._bind_timer_calendars(repo.session, workflow, rt, dossier.agency)
        return workflow, (ready if ready is not None else ready_user_tasks(workflow))

    def _bind_timer_calendars(self, s, workflow, rt: Runtime, receiving: str) -> None:
        """A timer attached to a step counts `working_days(n)` / `working_hours(n)` on the calendar of the
        agency that performs that step (its lane's or its own `agency`); any other timer on the receiving
        agency's, the workflow's own script engine (docs/deadlines.md, "Agencies and their calendars")."""

        def calendar(task):
            if not isinstance(task.task_spec, BoundaryEvent) or task.parent is None:
                return None
            main = next((c for c in task.parent.children if not isinstance(c.task_spec, BoundaryEvent)), None)
            spec = rt.user_task(main).get("agency") if main is not None else None
            if not spec:
                return None
            performer = performing_agency(s, spec, task.data, receiving, main.task_spec.name)
            return None if performer == receiving else self.calendar(s, performer)

        setattr(workflow, TIMER_CALENDAR, calendar)

    # -- load → domain → save, for the other use cases (legal actions, timers, payments) ---------------
    def open_for_update(self, s, *, code: str | None = None, dossier_id: int | None = None) -> Loaded:
        """Load: lock a dossier inside the caller's transaction and restore its workflow."""
        repo = DossierRepository(s, lambda: self.calendar(s))
        dossier = repo.get_for_update(code=code, dossier_id=dossier_id)
        rt = self.runtimes.get(s, dossier.procedure_version_id)
        cal = self.calendar(s, dossier.agency)
        workflow, ready = self._restore(repo, dossier, rt, cal)
        return Loaded(dossier, rt, cal, workflow, ready, repo)

    def finish_step(
        self,
        s,
        loaded: Loaded,
        actor: Actor,
        now: datetime,
        completed_task=None,
        task_data: dict | None = None,
    ) -> list:
        """Save: after the workflow moved, sync task rows, status, timers, audit; store the state and the
        dossier (version-checked). Returns the open tasks."""
        open_tasks = self._after_step(s, loaded, actor, now, completed_task=completed_task, task_data=task_data)
        loaded.repo.save_state(loaded.dossier.id, dump_state(loaded.rt.dialect, loaded.workflow))
        loaded.repo.save(loaded.dossier, now)
        self.notifier.write(loaded.repo.conn, loaded.repo.take_outbox())  # the step's messages: one INSERT
        return open_tasks

    def push_status(self, conn, dossier: Dossier, now: datetime, into: list | None = None) -> None:
        """Outbox: the national portal's rows for the statuses this change went through, in order
        (docs/channels.md); written on `conn`, or added to `into` for the change's single INSERT.

        The sequence continues from `dossier.portal_last` when known (a new dossier; a step whose version
        matched `portal_cursors`), else from the last row, read. Whatever pushes a status must also write
        the dossier row in the same transaction (every use case saves it), so that the version proves the
        remembered sequence current."""
        rows, dossier.portal_last = self.notifier.portal_rows(
            conn, dossier, dossier.take_transitions(), now, dossier.portal_last
        )
        if into is None:
            self.notifier.write(conn, rows)
        else:
            into.extend(rows)

    # -- the engine step ---------------------------------------------------------------------------
    @staticmethod
    def run_engine(workflow, rt: Runtime) -> Walk:
        """Run the workflow to its next wait state (a fee of 0 asks for no payment). Returns the walk of the
        workflow where it stopped (engine/walk.py), for the step to pass on (`Loaded.walk`)."""
        # Waiting timers are refreshed by the scheduler when they are due (engine/scheduler.py), not here.
        workflow.do_engine_steps()
        walk = Walk(workflow)
        if walk.waiting(payments.PAYMENT_MESSAGE):  # the fee (a walk of the tasks) only where a payment waits
            if payments.settle_free(workflow, payments.fee_of(rt.meta, workflow)):
                walk = Walk(workflow)  # the message moved it on
        return walk

    def _after_step(
        self,
        s,
        loaded: Loaded,
        actor: Actor,
        now: datetime,
        completed_task,
        task_data: dict | None = None,
    ) -> list:
        """Bring the rows the inbox, the monitor and the reports read in line with the workflow, and let the
        dossier decide its status (`Dossier.status_after_step`).

        `loaded.before` is the set of ready user tasks before the step; only the difference touches the
        database. Returns the dossier's open task rows.
        """
        dossier, workflow, rt, cal, repo = loaded.dossier, loaded.workflow, loaded.rt, loaded.cal, loaded.repo
        before = loaded.before
        old_status = dossier.status
        walk = loaded.walk if loaded.walk is not None else Walk(workflow)
        loaded.walk = walk  # for the caller: the workflow goes back to the cache with its ready tasks
        after = walk.ready
        gone = [tid for tid in before if tid not in after]
        if gone:
            others = [tid for tid in gone if completed_task is None or tid != completed_task.id]
            if completed_task is not None and completed_task.id in before:
                completed_task.state, completed_task.completed_at = "completed", now
                completed_task.completed_by = actor.username
                repo.task_completed(completed_task.id, actor.username, now)
            if others:
                repo.tasks_cancelled(others, now)
            repo.roles_dropped(gone)
        kept = [tid for tid in after if tid in before]
        open_tasks = repo.tasks(kept) if kept else []
        new_rows: list[dict] = []
        role_rows: list[dict] = []
        for tid, t in after.items():
            if tid in before:
                continue
            step = self.step_definition(s, rt, t, dossier, cal, now)
            new_rows.append(
                dict(
                    id=tid,
                    dossier_id=dossier.id,
                    dossier_code=dossier.code,
                    procedure_code=dossier.procedure_code,
                    spec_name=t.task_spec.name,
                    **step,
                    state="ready",
                    created_at=now,
                    overdue_flagged_at=None,
                    claimed_by=None,
                    claimed_at=None,
                    completed_at=None,
                    completed_by=None,
                )
            )
            role_rows.extend({"task_id": tid, "role": role, "agency": step["agency"]} for role in step["roles"])
        handed_from = completed_task.agency if completed_task is not None else dossier.agency
        for r in new_rows:
            if r["agency"] != handed_from:  # a hand-over between agencies: on the timeline (docs/bpmn-conventions.md)
                repo.add_event(
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
                )
        if new_rows or role_rows:
            open_tasks.extend(repo.add_tasks(new_rows, role_rows))
        if rt.meta.get("decisions") or rt.meta.get("calls"):  # a fee decided by a table (docs/bpmn-conventions.md)
            decisions.record_fee(dossier, workflow)
        new_status, accepted, outcome = dossier.status_after_step(step_outcome(workflow, rt, walk, completed_task))
        if outcome == "refused":  # refused after appraisal: 9 on the way to 10 (docs/bpmn-conventions.md)
            dossier.set_status(Status.PROCESSED, now)
        if accepted:  # an online dossier accepted at intake: 2 (received), then its next step's status
            dossier.set_status(Status.RECEIVED, now)
            repo.add_event(
                dossier_id=dossier.id,
                actor=actor.username,
                action="dossier.accepted",
                at=now,
                from_status=old_status,
                to_status=Status.RECEIVED.value,
                task_id=completed_task.id,
                details={"task": completed_task.spec_name, "channel": dossier.channel},
            )
            repo.outbox.extend(self.notifier.applicant_messages(dossier, "received"))
        dossier.set_status(new_status, now)
        if new_status == Status.PAYMENT_REQUIRED and old_status != new_status:
            payments.open_order(s, dossier, payments.fee_of(rt.meta, workflow))
        dossier.hold_clock_for_supplement(now)
        if rt.meta.get("waits") or rt.meta.get("calls"):  # its own waits, or a called procedure's
            messages.sync_waits(s, dossier, workflow, now, walk.waiting())
        if rt.meta.get("service_tasks") or rt.meta.get("calls"):  # its own service task, or a called one's:
            connectors.sync_calls(s, dossier, workflow, rt, now, walk.started)  # it waits there; the worker calls
        dossier.finish_if(workflow.completed, now)
        dossier.next_timer_at = compute_next_timer(dossier, workflow, cal, self.settings, open_tasks)
        if completed_task is not None:
            repo.add_event(
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
            )
        if old_status != dossier.status and completed_task is not None:
            repo.outbox.extend(self.notifier.applicant_messages(dossier, "status"))
        if old_status != dossier.status:  # written with the applicant's in one INSERT (`finish_step`)
            self.push_status(repo.conn, dossier, now, into=repo.outbox)
        return open_tasks

    def step_definition(self, s, rt: Runtime, t, dossier: Dossier, cal: WorkCalendar, opened: datetime) -> dict:
        """What the version `rt` says of a ready user task `t`, as its inbox row holds it: the agency that
        performs it (and the receiving one, `for_agency`, when they differ), its title, candidate roles, assignee, form, and its due time and reminder counted from
        `opened` (the instant the step opened). `cal` is the dossier's receiving agency's calendar."""
        ut = rt.user_task(t)
        # the agency whose staff do the step (its inbox gets the task): the receiving agency unless the
        # lane or the task names another, by code or by an expression over the dossier's data
        performer = performing_agency(s, ut.get("agency"), t.data, dossier.agency, t.task_spec.name)
        step_due = remind_at = None
        if ut.get("deadline"):  # a step's due time: the performing agency's calendar
            step_cal = cal if performer == dossier.agency else self.calendar(s, performer)
            step_due = step_cal.due_at(opened, _deadline(ut["deadline"]))
            remind_at = step_reminder_at(opened, step_due, step_cal, self.settings)
        return dict(
            agency=performer,
            for_agency=dossier.agency if performer != dossier.agency else None,  # another agency's dossier
            title=ut.get("name") or t.task_spec.bpmn_name or t.task_spec.name,
            roles=list(ut.get("roles") or []),
            assignee=ut.get("assignee"),
            form_key=ut.get("form_key"),
            due_at=step_due,
            remind_at=remind_at,
        )

    @property
    def notifier(self):
        """Writes the outbox rows of a change (engine/channels/notify.py), templates overridable by admins."""
        if self._notifier is None:
            from .channels.notify import Notifier
            from .channels.templates import TemplateStore

            ch = self.settings.channels
            self._notifier = Notifier(ch, TemplateStore(self.db, ch.template_refresh_seconds))
        return self._notifier

    # -- reading -----------------------------------------------------------------------------------
    def _view(self, s, dossier) -> dict:
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
            vid = s.execute(
                select(DossierRow.procedure_version_id).where(DossierRow.id == task.dossier_id)
            ).scalar_one()
            form = self.runtimes.form_of(s, vid, task)
            return form.to_dict() if form is not None else None


_deadline = lru_cache(maxsize=4096)(parse_deadline)  # step deadlines are a handful of strings per procedure


@cache
def _counter_stmt(dialect: str):
    """INSERT … ON CONFLICT DO UPDATE … RETURNING: one atomic statement for the daily counter."""
    counters = cast(Table, CodeCounter.__table__)
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(counters)
    return (
        ins.values(agency=bindparam("agency"), day=bindparam("day"), value=1)
        .on_conflict_do_update(index_elements=["agency", "day"], set_={"value": counters.c.value + 1})
        .returning(counters.c.value)
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


def step_outcome(workflow, rt: Runtime, walk: Walk, completed_task) -> StepOutcome:
    """What the workflow says after it moved, for `Dossier.status_after_step`: whether it finished and the
    status its last end event declares (task-tree order is not completion order, so end events are sorted
    by when each completed), whether it waits for the fee or for a supplement (engine/messages.py), the
    statuses its open steps declare."""
    if workflow.completed:
        end_status = rt.meta.get("end_status", {})
        ends = sorted(
            (t for t in workflow.get_tasks(state=TaskState.COMPLETED) if end_status.get(t.task_spec.name)),
            key=lambda t: t.last_state_change,
        )
        declared = end_status[ends[-1].task_spec.name] if ends else None
        return StepOutcome(completed=True, end_status=declared, task_completed=completed_task is not None)
    if walk.waiting(payments.PAYMENT_MESSAGE):
        return StepOutcome(waits_for_payment=True, task_completed=completed_task is not None)
    if walk.waiting(messages.SUPPLEMENT):
        return StepOutcome(waits_for_supplement=True, task_completed=completed_task is not None)
    ready = walk.ready
    statuses = tuple(s for s in (rt.user_task(t).get("status") for t in ready.values()) if s)
    if len(ready) > 1 and statuses:  # steps side by side (parallel branches): the one furthest behind decides,
        # an undeclared one counting as in_process (docs/bpmn-conventions.md 4 and 9.5)
        statuses = (
            min(statuses + (Status.IN_PROCESS.value,) * (len(ready) - len(statuses)), key=lambda v: Status(v).code),
        )
    return StepOutcome(declared=statuses, task_completed=completed_task is not None)


def _paused(s, dossier_id: int) -> bool:
    return s.scalar(select(DossierRow.paused_at).where(DossierRow.id == dossier_id)) is not None


def ready_user_tasks(workflow) -> dict:
    """The workflow's ready user tasks by task id (the ids of their inbox rows)."""
    return Walk(workflow).ready
