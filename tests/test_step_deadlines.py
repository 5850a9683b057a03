"""Step deadlines watched (docs/deadlines.md, "Step deadlines"): a reminder some working hours before a
step's own due time and an event when it becomes late, told to its holder, else the holders of its roles
in the agency that performs it, and shown on the supervisors' board; each once, across workers.

The clock is moved with time_machine; `fire_due` is what the worker's sweep and wake-ups call. The dossier
(bench/four_steps.bpmn) is received Mon 02/03/2026 09:00; its intake is done at 10:00, so its appraisal
(1 working day) is due Tue 03/03 10:00 and, 2 working hours before, reminded at Tue 08:00.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from engine import monitor
from engine.actions import LegalActions
from engine.dossiers import DossierService
from engine.models import Task
from engine.procedures import deploy_bytes
from engine.scheduler import fire_due
from tests.test_deadlines import (
    AGENCY,
    FOUR_STEPS,
    at,
    events,
    fire,
    notifications,
    receiver,
    row,
    specialist,
    start,
    supervisor,
    tasks,
    vn,
)


@pytest.fixture
def service(db, settings):
    deploy_bytes(db, FOUR_STEPS, "four_steps.bpmn")
    return DossierService(db, settings)


@pytest.fixture
def actions(service):
    return LegalActions(service)


def appraising(service, when=(2026, 3, 2, 9, 0)) -> str:
    d = start(service, when)
    with at(2026, 3, 2, 10, 0):
        service.complete_task(receiver, d["tasks"][0]["id"], {"decision": "accept"})
    return d["code"]


def step(db, code) -> Task:
    return next(t for t in tasks(db, code) if t.spec_name == "appraise")


def test_reminder_then_late_event_once_each_to_the_holder(service, db):
    code = appraising(service)
    t = step(db, code)
    assert t.due_at == vn(2026, 3, 3, 10, 0) and t.remind_at == vn(2026, 3, 3, 8, 0)
    assert row(db, code).next_timer_at == vn(2026, 3, 3, 8, 0)  # the step's reminder comes first

    assert fire(service, 2026, 3, 3, 7, 59).dossiers == 0
    r = fire(service, 2026, 3, 3, 8, 0)
    assert (r.step_reminders, r.step_overdue, r.reminders) == (1, 0, 0)
    assert fire(service, 2026, 3, 3, 8, 0).step_reminders == 0  # once
    ev = events(db, code, "step.reminder")
    assert len(ev) == 1 and ev[0].task_id == t.id and ev[0].details["working_hours_left"] == 2
    assert ev[0].details["agency"] == AGENCY and ev[0].details["due_at"] == "2026-03-03T10:00:00+07:00"
    officer = [n for n in notifications(db, code, "officer") if n.kind.startswith("step.")]
    # no holder yet: the holders of its roles in the agency that performs it
    assert [(n.kind, n.recipient) for n in officer] == [("step.reminder", f"role:{r}@{AGENCY}") for r in t.roles]
    assert "specialist" in t.roles
    assert "Thẩm định" in officer[0].body and "10:00 03/03/2026" in officer[0].body
    assert step(db, code).remind_at is None and row(db, code).next_timer_at == vn(2026, 3, 3, 10, 0)

    with at(2026, 3, 3, 9, 0):
        service.claim(specialist, t.id)  # now it has a holder: the late event goes to them alone
    r = fire(service, 2026, 3, 3, 10, 0)
    assert (r.step_reminders, r.step_overdue) == (0, 1)
    assert fire(service, 2026, 3, 3, 16, 0).step_overdue == 0
    late = events(db, code, "step.overdue")
    assert len(late) == 1 and late[0].details["holder"] == "chuyenvien" and late[0].task_id == t.id
    officer = [n for n in notifications(db, code, "officer") if n.kind == "step.overdue"]
    assert [n.recipient for n in officer] == ["user:chuyenvien"]
    assert step(db, code).overdue_flagged_at == vn(2026, 3, 3, 10, 0)
    assert row(db, code).next_timer_at == vn(2026, 3, 4, 15, 0)  # then the dossier's own reminder

    # The supervisors' board lists the late step, when it was flagged, and how late on its agency's calendar.
    with db.read() as s:
        board = monitor.overdue_page(s, supervisor, lambda a: service.calendar(s, a), now=vn(2026, 3, 3, 14, 30))
    row_ = next(x for x in board["tasks"] if x["dossier_code"] == code)
    assert row_["late_flagged_at"] == "2026-03-03T10:00:00+07:00" and row_["claimed_by"] == "chuyenvien"
    assert row_["working_hours_late"] == 2.5  # 10:00-11:30 and 13:30-14:30


def test_a_late_sweep_skips_the_reminder_and_raises_the_late_event(service, db):
    code = appraising(service)
    r = fire(service, 2026, 3, 3, 12, 0)  # the worker was down from 08:00 to 12:00
    assert (r.step_reminders, r.step_overdue) == (0, 1)
    assert events(db, code, "step.reminder") == [] and len(events(db, code, "step.overdue")) == 1
    assert step(db, code).remind_at is None


def test_two_workers_tell_each_step_once(service, db):
    codes = [appraising(service, (2026, 3, 2, 9, i)) for i in range(8)]
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(fire_due(db, service, limit=1000, chunk=3))
        except BaseException as exc:  # pragma: no cover - shown by the assertion
            errors.append(exc)

    with at(2026, 3, 3, 10, 30):
        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors and sum(r.step_overdue for r in results) == 8
    for code in codes:
        assert len(events(db, code, "step.overdue")) == 1
        told = [n.recipient for n in notifications(db, code, "officer") if n.kind == "step.overdue"]
        assert told == [f"role:{r}@{AGENCY}" for r in step(db, code).roles]  # each holder once


def test_the_supplement_pause_moves_the_steps_watch(service, actions, db):
    code = appraising(service)
    with at(2026, 3, 2, 11, 0):
        actions.request_supplement(receiver, code, "Thiếu giấy tờ")
    assert fire(service, 2026, 3, 3, 10, 30).dossiers == 0  # paused: nothing is told
    with at(2026, 3, 3, 11, 0):  # 8 working hours paused: Mon 11:00-17:00 (4 h) and Tue 07:00-11:00 (4 h)
        actions.supplement_received(receiver, code)
    t = step(db, code)
    assert t.due_at == vn(2026, 3, 4, 10, 0) and t.remind_at == vn(2026, 3, 4, 8, 0)
    assert row(db, code).next_timer_at == vn(2026, 3, 4, 8, 0)
    assert fire(service, 2026, 3, 4, 8, 0).step_reminders == 1


def test_no_step_reminder_when_configured_off(service, db):
    service.settings.step_reminder_hours_before_due = 0  # MOTCUA_STEP_REMINDER_HOURS=0
    code = appraising(service)
    assert step(db, code).remind_at is None and row(db, code).next_timer_at == vn(2026, 3, 3, 10, 0)
    with db.read() as s:
        assert s.scalar(select(Task.remind_at).where(Task.dossier_code == code, Task.spec_name == "appraise")) is None
