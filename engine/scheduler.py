"""Timers and deadline watching: what is due, and firing it exactly once.

The database is the source of truth (huey has no acknowledgements, see docs/deadlines.md, "Exactly once, without acknowledgements"): every
dossier row carries `next_timer_at`, the next instant at which something must happen to it, and
`fire_due()` handles every dossier whose `next_timer_at <= now`. huey only wakes workers up: a periodic
sweep (every `settings.sweep_seconds`) and a task scheduled at each new `next_timer_at` both just call
`fire_due()` (see engine/worker.py); nothing is lost if a wake-up is lost, and nothing happens twice if
two arrive at once.

What `next_timer_at` is (`compute_next_timer`, called by DossierService after every step)
    The earliest of, while the dossier is neither finished nor paused for a supplement:
    * every pending BPMN timer of its workflow (boundary, intermediate catch, cycle: `pending_timers`);
    * the reminder instant, `settings.reminder_hours_before_due` working hours before `due_at`, unless
      the reminder was sent (`reminded_at`);
    * `due_at` itself, unless the dossier was flagged overdue (`overdue_flagged_at`).
    The reminder and the due instant stop counting once the dossier is processed (`processed_at`, status
    9: the result is ready; what remains is handing it over).
    A paused dossier has no timer at all: its deadline clock is stopped and its workflow frozen (the
    BPMN timers and step due times are moved on by the paused working time when the documents come
    back, engine/actions.py). A finished one has none either.

What firing does (`fire_due`, one dossier at a time, each in its own savepoint)
    1. Candidates are read through the `next_timer_at` index: ORDER BY next_timer_at LIMIT n. On
       PostgreSQL the rows are taken with FOR UPDATE SKIP LOCKED, so several workers split the work
       instead of queueing on the same rows; on SQLite the writing transaction (BEGIN IMMEDIATE) already
       serialises workers.
    2. The dossier is locked again with its state (`DossierService.open_for_update`) and
       `next_timer_at <= now` is checked again: a timer handled twice - two workers, a wake-up racing
       the sweep, a retry after a crash - has effect once, because everything below happens inside the
       dossier's locked transaction and the first one to commit moves `next_timer_at` on.
    3. SpiffWorkflow's timers are refreshed and the engine run (`refresh_timers` + `do_engine_steps`).
       SpiffWorkflow compares timers with `datetime.now(timezone.utc)`, not with our `now`: `now` must
       be the current time (the default). Tests move the clock with time_machine, which moves both.
    4. The reminder (Event `deadline.reminder` + a Notification to the officers holding the dossier's
       open tasks) is emitted once (`reminded_at`), and the overdue flag (Event `deadline.overdue` +
       officer notification) once (`overdue_flagged_at`): the dossier decides (`Dossier.watch_deadline`,
       engine/dossier.py).
    5. `DossierService.finish_step` syncs task rows, status and `next_timer_at`, and stores the state.
    A dossier whose firing raises is rolled back to its savepoint and retried later (1 min, then 5 min);
    the third consecutive failure raises an incident: Event `timer.incident`, `next_timer_at` cleared,
    so one broken dossier cannot hold up the queue (Camunda's retries-then-incident). A transient
    database conflict is not counted: the dossier is simply left for the next sweep.
    A crash anywhere (process killed, commit failing) rolls the whole chunk back: nothing was fired.
"""

from __future__ import annotations

import logging
import time as _time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, cast

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Table, select
from sqlalchemy.exc import OperationalError

from .auth import SYSTEM
from .calendar import VN_TZ, WorkCalendar
from .channels.notify import vn_time
from .dossier import Dossier
from .errors import Conflict, NotFound
from .models import Dossier as DossierRow
from .models import Event, Notification, Task, utcnow
from .statuses import FINAL, Status
from .timers import due_of_event_value as _due_of
from .timers import pending_timers, timer_calendar

if TYPE_CHECKING:  # pragma: no cover
    from .config import Settings
    from .db import Database
    from .dossiers import DossierService

log = logging.getLogger("motcua.scheduler")

RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=5))  # then an incident
CHUNK = 25  # dossiers per transaction: locks are held for a few tens of milliseconds at most


# ---------------------------------------------------------------------------------------------------
# What is due next


def hours_before(start: datetime | None, due: datetime | None, cal: WorkCalendar, hours: float) -> datetime | None:
    """The instant `hours` working hours before `due`, counted back on `cal` from a deadline that started at
    `start` (None: no reminder). When the whole deadline is shorter than the window, it is `start`."""
    if due is None or not hours or hours <= 0:
        return None
    ref = min(start or due, due)
    total = cal.working_hours_between(ref, due)
    if total <= hours:
        return ref
    return cal.add_working_hours(ref, total - hours)


def reminder_at(dossier: Dossier, cal: WorkCalendar, hours_before_due: float) -> datetime | None:
    """The instant `hours_before_due` working hours before the dossier's due time (None: no reminder).

    Counted back on the office calendar: with the default 4 hours and a due time of Wednesday 10:00,
    the reminder is Tuesday 13:30 + 1 h = 14:30 (Wed 07:00-10:00 is 3 h, Tue 16:00-17:00 the 4th).
    When the whole deadline is shorter than the window, the reminder is due at once.
    """
    return hours_before(dossier.received_at, dossier.due_at, cal, hours_before_due)


def step_reminder_at(created_at: datetime, due: datetime | None, cal: WorkCalendar, settings: Settings):
    """When a step's holder is reminded: `settings.step_reminder_hours_before_due` working hours before the
    step's own due time, on the performing agency's calendar `cal` (None: no due time, or no reminder)."""
    return hours_before(created_at, due, cal, settings.step_reminder_hours_before_due)


def compute_next_timer(dossier: Dossier, workflow, cal: WorkCalendar, settings: Settings, tasks=()) -> datetime | None:
    """The dossier's `next_timer_at`: min(pending BPMN timers, reminder, due, and each open step's reminder
    and due time in `tasks`), None when paused/finished."""
    if dossier.finished or dossier.paused_at is not None:
        return None
    try:
        if Status(dossier.status) in FINAL:
            return None
    except ValueError:
        pass
    candidates = [due for _, due in pending_timers(workflow)] if workflow is not None else []
    if dossier.due_at is not None and dossier.processed_at is None:  # processed: the result is ready in time
        if dossier.reminded_at is None:
            at = reminder_at(dossier, cal, settings.reminder_hours_before_due)
            if at is not None:
                candidates.append(at)
        if dossier.overdue_flagged_at is None:
            candidates.append(dossier.due_at)
    for t in tasks:  # the steps' own deadlines (docs/deadlines.md, "Step deadlines")
        if getattr(t, "state", "ready") != "ready":
            continue
        if t.remind_at is not None:
            candidates.append(t.remind_at)
        if t.due_at is not None and t.overdue_flagged_at is None:
            candidates.append(t.due_at)
    return min(candidates, default=None)


def shift_timers(workflow, cal: WorkCalendar, hours: float) -> int:
    """Move every pending BPMN timer on by `hours` working hours (the supplement pause), each on the calendar
    its working time counts on (`timer_calendar`: a timer attached to another agency's step, that agency's;
    else `cal`). Returns how many.

    SpiffWorkflow keeps a timer's due instant in the timer task's `internal_data['event_value']`: an ISO
    string for timeDate/timeDuration, `{'cycles', 'next', 'duration'}` for a cycle.
    """
    if not hours or hours <= 0:
        return 0
    top = getattr(workflow, "top_workflow", workflow)
    ids = {tid for tid, _ in pending_timers(workflow)}
    moved = 0
    for task in list(top.event_manager.tasks.values()):
        if task.id not in ids:
            continue
        value = task.internal_data.get("event_value")
        due = _due_of(value)
        if due is None:
            continue
        new = (timer_calendar(task) or cal).add_working_hours(due, hours).astimezone(UTC).isoformat()
        if isinstance(value, dict):
            task.internal_data["event_value"] = {**value, "next": new}
        else:
            task.internal_data["event_value"] = new
        moved += 1
    return moved


# ---------------------------------------------------------------------------------------------------
# Firing


@dataclass
class SweepResult:
    """What one `fire_due` call did."""

    candidates: int = 0  # due rows read from the index
    dossiers: int = 0  # dossiers handled (locked, re-checked, moved on)
    timers: int = 0  # BPMN timers that fired
    reminders: int = 0
    overdue: int = 0
    step_reminders: int = 0
    step_overdue: int = 0
    failures: int = 0
    incidents: int = 0
    skipped: int = 0  # candidates another worker had taken or already handled
    seconds: float = 0.0
    codes: list = field(default_factory=list)

    def add(self, other: SweepResult) -> None:
        for name in (
            "candidates",
            "dossiers",
            "timers",
            "reminders",
            "overdue",
            "step_reminders",
            "step_overdue",
            "failures",
            "incidents",
            "skipped",
            "seconds",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.codes.extend(other.codes)


def _due_ids(s, now: datetime, n: int, lock: bool, seen: set) -> list[int]:
    q = select(DossierRow.id).where(DossierRow.next_timer_at <= now)
    if seen:  # handled in this call but still due (e.g. a timer SpiffWorkflow sees a moment later)
        q = q.where(DossierRow.id.not_in(seen))
    q = q.order_by(DossierRow.next_timer_at, DossierRow.id).limit(n)
    if lock:
        q = q.with_for_update(skip_locked=True)
    return list(s.scalars(q))


def anything_due(db: Database, now: datetime | None = None) -> bool:
    """One index probe, without a write lock: is any dossier's next_timer_at <= now?"""
    now = now or utcnow()
    with db.read() as s:
        return (
            s.scalar(
                select(DossierRow.id).where(DossierRow.next_timer_at <= now).order_by(DossierRow.next_timer_at).limit(1)
            )
            is not None
        )


def fire_due(
    db: Database, service: DossierService, now: datetime | None = None, limit: int = 1000, chunk: int = CHUNK
) -> SweepResult:
    """Handle up to `limit` dossiers whose `next_timer_at <= now`, soonest first (see the module doc).

    `now` defaults to the current time and must be the current time when BPMN timers are involved
    (SpiffWorkflow reads the clock itself). Safe to call from any number of threads and processes.
    """
    now = now or utcnow()
    result = SweepResult()
    t0 = _time.perf_counter()
    if not anything_due(db, now):
        result.seconds = _time.perf_counter() - t0
        return result
    lock = not db.is_sqlite
    seen: set[int] = set()
    while len(seen) < limit:
        n = min(chunk, limit - len(seen))
        with db.uow() as s:
            ids = _due_ids(s, now, n, lock, seen)
            rows = _Rows()
            for dossier_id in ids:
                _fire_in_savepoint(s, service, dossier_id, now, result, rows)
            rows.write(s)  # the chunk's events and notifications: two multi-row INSERTs
        seen.update(ids)
        if len(ids) < n:
            break
    result.candidates = len(seen)
    result.seconds = _time.perf_counter() - t0
    return result


class _Rows:
    """Events and notifications of the dossiers fired in a chunk, inserted together before its commit."""

    def __init__(self):
        self.events: list[dict] = []
        self.notifications: list[dict] = []

    def event(self, d: Dossier, action: str, now: datetime, details: dict, from_status=None, to_status=None) -> dict:
        row = {
            "dossier_id": d.id,
            "at": now,
            "actor": SYSTEM.username,
            "action": action,
            "task_id": None,
            "from_status": from_status or d.status,
            "to_status": to_status or d.status,
            "details": details,
        }
        self.events.append(row)
        return row

    def notify_officers(self, d: Dossier, kind: str, body: str, open_tasks, now: datetime) -> None:
        self.notify(d, kind, body, officer_recipients(d, open_tasks), now)

    def notify(self, d: Dossier, kind: str, body: str, recipients: list[str], now: datetime) -> None:
        for rcpt in recipients:
            self.notifications.append(
                {
                    "dossier_id": d.id,
                    "kind": kind,
                    "channel": "officer",
                    "recipient": rcpt[:200],
                    "body": body,
                    "created_at": now,
                    "sent_at": None,
                }
            )

    def extend(self, other: _Rows) -> None:
        self.events.extend(other.events)
        self.notifications.extend(other.notifications)

    def write(self, s) -> None:
        if self.events:
            s.connection().execute(cast(Table, Event.__table__).insert(), self.events)
        if self.notifications:
            s.connection().execute(cast(Table, Notification.__table__).insert(), self.notifications)


def _fire_in_savepoint(s, service, dossier_id: int, now: datetime, result: SweepResult, rows: _Rows) -> None:
    mine, counts = _Rows(), SweepResult()
    try:
        with s.begin_nested():
            _fire_one(s, service, dossier_id, now, counts, mine)
    except (OperationalError, Conflict, NotFound) as exc:  # lock or serialisation conflict: next sweep retries
        log.info("dossier %s left for the next sweep: %s", dossier_id, exc)
        result.skipped += 1
    except Exception as exc:  # a broken workflow: count it, retry later, then raise an incident
        log.exception("firing timers of dossier %s failed", dossier_id)
        _record_failure(s, dossier_id, now, exc, result)
    else:  # only what a dossier that went through did counts
        rows.extend(mine)
        result.add(counts)


def _fire_one(s, service, dossier_id: int, now: datetime, result: SweepResult, rows: _Rows) -> None:
    loaded = service.open_for_update(s, dossier_id=dossier_id)
    d = loaded.dossier
    if d.next_timer_at is None or d.next_timer_at > now:  # handled meanwhile by someone else
        result.skipped += 1
        return
    if d.finished or d.paused_at is not None or Status(d.status) in FINAL:
        loaded.repo.save_fields(d, now, next_timer_at=None)  # nothing may fire on a paused or closed dossier
        result.dossiers += 1
        return
    wf = loaded.workflow
    before = {tid: due for tid, due in pending_timers(wf)}
    old_status = d.status
    wf.refresh_timers()  # SpiffWorkflow compares each timer with its own clock (datetime.now)
    service.run_engine(wf, loaded.rt)  # do_engine_steps()
    after = {tid: due for tid, due in pending_timers(wf)}
    fired = [(tid, due) for tid, due in before.items() if due <= now and after.get(tid) != due]
    ev = None
    if fired:
        names = {}
        for tid, _ in fired:
            t = wf.get_task_from_id(tid)
            names[tid] = (t.task_spec.bpmn_name or t.task_spec.name) if t is not None else str(tid)
        ev = rows.event(
            d,
            "timer.fired",
            now,
            {
                "timers": [
                    {"timer": names[tid], "task_id": str(tid), "due_at": due.astimezone(VN_TZ).isoformat()}
                    for tid, due in fired
                ]
            },
            from_status=old_status,
            to_status=old_status,
        )
        result.timers += len(fired)
    messages = _deadline_watch(service, d, loaded.cal, now, result, rows)
    step_messages = _step_watch(s, service, d, wf, now, result, rows)
    open_tasks = service.finish_step(s, loaded, SYSTEM, now)
    for t, event, body in step_messages:
        recipients = step_recipients(t)
        rows.notify(d, event, body, recipients, now)
        service.notifier.officers(
            s.connection(),
            d,
            STEP_EVENTS[event],
            recipients,
            {"step": t.title, "due_date": vn_time(t.due_at)},
            now,
            inbox=False,
        )
    for kind, body in messages:
        rows.notify_officers(d, kind, body, open_tasks, now)
        event = OFFICER_EVENTS.get(kind)
        if event:  # the same notice by e-mail / Zalo to those officers who gave an address (docs/channels.md)
            step = next((t.title for t in open_tasks or () if getattr(t, "title", None)), None)
            service.notifier.officers(
                s.connection(),
                d,
                event,
                officer_recipients(d, open_tasks),
                {"step": step, "due_date": vn_time(d.due_at)},
                now,
                inbox=False,
            )
    if ev is not None and d.status != old_status:
        ev["to_status"] = d.status
        service.notifier.notify_applicant(loaded.repo.conn, d, "status")
    result.dossiers += 1
    result.codes.append(d.code)


def _deadline_watch(
    service, d: Dossier, cal: WorkCalendar, now: datetime, result: SweepResult, rows: _Rows
) -> list[tuple[str, str]]:
    """Raise the reminder and the overdue flag when due, once each (`Dossier.watch_deadline`); returns the
    officers' messages."""
    remind_at = reminder_at(d, cal, service.settings.reminder_hours_before_due) if d.reminded_at is None else None
    remind, flag = d.watch_deadline(now, remind_at)
    if not (remind or flag):
        return []
    messages = []
    assert d.due_at is not None  # a dossier without a due time is never reminded nor flagged
    due_local = d.due_at.astimezone(VN_TZ).strftime("%H:%M %d/%m/%Y")
    if remind:
        left = round(cal.working_hours_between(now, d.due_at), 2)
        rows.event(
            d,
            "deadline.reminder",
            now,
            {"due_at": d.due_at.astimezone(VN_TZ).isoformat(), "working_hours_left": left},
        )
        messages.append(
            (
                "deadline.reminder",
                f"Hồ sơ {d.code} sắp đến hạn trả kết quả ({due_local}), còn {left:g} giờ làm việc.",
            )
        )
        result.reminders += 1
    if flag:
        rows.event(
            d,
            "deadline.overdue",
            now,
            {"due_at": d.due_at.astimezone(VN_TZ).isoformat(), "extended": d.extended_at is not None},
        )
        messages.append(("deadline.overdue", f"Hồ sơ {d.code} đã quá hạn trả kết quả ({due_local})."))
        result.overdue += 1
    return messages


OFFICER_EVENTS = {"deadline.reminder": "officer_reminder", "deadline.overdue": "officer_overdue"}
# the message templates of a step's reminder and late event (engine/channels/templates/)
STEP_EVENTS = {"step.reminder": "officer_reminder", "step.overdue": "officer_step_overdue"}


def _step_watch(s, service, d: Dossier, wf, now: datetime, result: SweepResult, rows: _Rows) -> list[tuple]:
    """Each open step's reminder and late event when due, once each (`tasks.remind_at` cleared,
    `tasks.overdue_flagged_at` set, inside the dossier's lock); returns (task, event, text) to tell.

    A step the workflow no longer waits on (a boundary timer just cancelled it) is left to `finish_step`."""
    ready = {str(t.id) for t in wf.get_tasks(state=TaskState.READY, manual=True)}
    due = (Task.remind_at <= now) | ((Task.overdue_flagged_at.is_(None)) & (Task.due_at <= now))
    steps = s.scalars(
        select(Task).where(Task.dossier_id == d.id, Task.state == "ready", due).order_by(Task.due_at, Task.id)
    ).all()
    out = []
    for t in steps:
        if t.id not in ready:
            continue
        due_local = t.due_at.astimezone(VN_TZ).strftime("%H:%M %d/%m/%Y") if t.due_at else ""
        details = {"task": t.spec_name, "title": t.title, "agency": t.agency, "due_at": vn_iso(t.due_at)}
        if t.remind_at is not None and t.remind_at <= now:
            t.remind_at = None
            if t.due_at is not None and now < t.due_at:  # past due, the late event below tells them instead
                left = round(service.calendar(s, t.agency).working_hours_between(now, t.due_at), 2)
                rows.event(d, "step.reminder", now, {**details, "working_hours_left": left})["task_id"] = t.id
                text = f"Bước «{t.title}» của hồ sơ {d.code} sắp đến hạn ({due_local}), còn {left:g} giờ làm việc."
                out.append((t, "step.reminder", text))
                result.step_reminders += 1
        if t.due_at is not None and t.overdue_flagged_at is None and t.due_at <= now:
            t.overdue_flagged_at = now
            rows.event(d, "step.overdue", now, {**details, "holder": t.claimed_by or t.assignee})["task_id"] = t.id
            out.append((t, "step.overdue", f"Bước «{t.title}» của hồ sơ {d.code} đã quá hạn ({due_local})."))
            result.step_overdue += 1
    if steps:
        s.flush()
    return out


def step_recipients(t) -> list[str]:
    """Who is told about a step's deadline: its holder (the claimant, else its assignee), else the holders
    of its roles in the agency that performs it. Recipients as in `officer_recipients`."""
    if t.claimed_by:
        return [f"user:{t.claimed_by}"]
    if t.assignee:
        return [f"user:{t.assignee}"]
    return [f"role:{r}@{t.agency}" for r in (t.roles or [])][:20] or [f"role:receiver@{t.agency}"]


def vn_iso(dt: datetime | None) -> str | None:
    return dt.astimezone(VN_TZ).isoformat() if dt else None


def officer_recipients(d: Dossier, open_tasks) -> list[str]:
    """Who is told about a dossier's deadline: the claimants (or assignees) of its open tasks, else the
    tasks' roles in the dossier's agency; the receiving desk when no task is open.

    Recipients are `user:<username>` or `role:<role>@<agency>` (the officers' inbox channel).
    """
    out = []
    for t in open_tasks or ():
        if t.claimed_by:
            out.append(f"user:{t.claimed_by}")
        elif t.assignee:
            out.append(f"user:{t.assignee}")
        else:
            out.extend(f"role:{r}@{d.agency}" for r in (t.roles or []))
    if not out:
        out.append(f"role:receiver@{d.agency}")
    return list(dict.fromkeys(out))[:20]


def _record_failure(s, dossier_id: int, now: datetime, exc: Exception, result: SweepResult) -> None:
    d = s.get(DossierRow, dossier_id)
    if d is None:
        return
    last = s.scalars(select(Event).where(Event.dossier_id == dossier_id).order_by(Event.id.desc()).limit(1)).first()
    attempt = 1
    if last is not None and last.action == "timer.failed":
        attempt = int((last.details or {}).get("attempt", 1)) + 1
    error = f"{type(exc).__name__}: {exc}"[:1000]
    result.failures += 1
    if attempt > len(RETRY_DELAYS):
        d.next_timer_at = None
        s.add(
            Event(
                dossier_id=d.id,
                actor=SYSTEM.username,
                action="timer.incident",
                at=now,
                details={"error": error, "attempts": attempt},
            )
        )
        result.incidents += 1
        return
    d.next_timer_at = now + RETRY_DELAYS[attempt - 1]
    s.add(
        Event(
            dossier_id=d.id,
            actor=SYSTEM.username,
            action="timer.failed",
            at=now,
            details={"error": error, "attempt": attempt, "retry_at": d.next_timer_at.astimezone(VN_TZ).isoformat()},
        )
    )
