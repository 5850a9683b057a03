"""Deadlines by the working calendar, SLA timers, supplement pause, extension, legal actions.

The clock is moved with time_machine (tick=False) and the worker runs in process: `fire_due` is what
both the periodic sweep and the scheduled wake-ups call. All dates are March 2026 (no holiday), UTC+7.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime

import pytest
import time_machine
from sqlalchemy import func, select

from engine import scheduler
from engine.actions import LegalActions
from engine.calendar import VN_TZ
from engine.channels.delivery import drain_outbox
from engine.dossier import WHO_MAY
from engine.dossiers import DossierService
from engine.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from engine.models import Dossier, Event, Notification, Task, TaskRole
from engine.outbox import FileSender, unaccent
from engine.procedures import deploy_bytes
from engine.scheduler import compute_next_timer, fire_due, reminder_at
from tests.conftest import ROOT
from tests.helpers import staff

AGENCY = "000.31.14.H56"
FOUR_STEPS = (ROOT / "bench" / "four_steps.bpmn").read_bytes()  # 9.000001, 3 working days

# An interrupting boundary timer on a user task: appraisal not done within 2 hours → escalate to a leader.
# And a non-interrupting working-time one on the escalation: a reminder branch after 1 working hour.
TIMER_BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="d" targetNamespace="t">
  <bpmn:process id="timer_proc" name="Thu tuc co hen gio" isExecutable="true">
    <bpmn:extensionElements><camunda:properties>
      <camunda:property name="procedure_code" value="9.000002"/>
      <camunda:property name="deadline" value="10 working days"/>
    </camunda:properties></bpmn:extensionElements>
    <bpmn:laneSet>
      <bpmn:lane id="L1" name="Mot cua (receiver)"><bpmn:flowNodeRef>intake</bpmn:flowNodeRef></bpmn:lane>
      <bpmn:lane id="L2" name="Chuyen vien (specialist)"><bpmn:flowNodeRef>appraise</bpmn:flowNodeRef></bpmn:lane>
      <bpmn:lane id="L3" name="Lanh dao (leader)"><bpmn:flowNodeRef>escalate</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="intake"/>
    <bpmn:userTask id="intake" name="Tiep nhan"/>
    <bpmn:sequenceFlow id="f2" sourceRef="intake" targetRef="appraise"/>
    <bpmn:userTask id="appraise" name="Tham dinh"><bpmn:extensionElements><camunda:properties>
      <camunda:property name="deadline" value="1 working day"/></camunda:properties></bpmn:extensionElements></bpmn:userTask>
    <bpmn:sequenceFlow id="f3" sourceRef="appraise" targetRef="end"/>
    <bpmn:endEvent id="end"/>
    <bpmn:boundaryEvent id="late" name="Qua 2 gio" cancelActivity="true" attachedToRef="appraise">
      <bpmn:timerEventDefinition><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">PT2H</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f4" sourceRef="late" targetRef="escalate"/>
    <bpmn:userTask id="escalate" name="Lanh dao xu ly"/>
    <bpmn:sequenceFlow id="f5" sourceRef="escalate" targetRef="end2"/>
    <bpmn:endEvent id="end2"/>
    <bpmn:boundaryEvent id="nudge" name="Nhac sau 1 gio lam viec" cancelActivity="false" attachedToRef="escalate">
      <bpmn:timerEventDefinition><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">working_hours(1)</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f6" sourceRef="nudge" targetRef="end3"/>
    <bpmn:endEvent id="end3"/>
  </bpmn:process>
</bpmn:definitions>
"""

receiver = staff({"receiver"}, AGENCY, "tiepnhan")
specialist = staff({"specialist"}, AGENCY, "chuyenvien")
leader = staff({"leader"}, AGENCY, "lanhdao")
admin = staff({"admin"}, AGENCY, "admin")
other_receiver = staff({"receiver"}, "000.00.00.H99", "khac")
supervisor = staff({"supervisor"}, "000.00.00.H56", "giamsat")
APPLICANT = {"name": "Nguyễn Thị Lan", "id_number": "001203004567", "phone": "0912345678"}


def vn(*args) -> datetime:
    return datetime(*args, tzinfo=VN_TZ)


def at(*args):
    return time_machine.travel(vn(*args), tick=False)


@pytest.fixture
def service(db, settings):
    deploy_bytes(db, FOUR_STEPS, "four_steps.bpmn")
    deploy_bytes(db, TIMER_BPMN, "timer.bpmn")
    return DossierService(db, settings)


@pytest.fixture
def actions(service):
    return LegalActions(service)


def start(service, when=(2026, 3, 2, 9, 0), code="9.000001", applicant=APPLICANT) -> dict:
    with at(*when):
        return service.start_dossier(receiver, code, applicant)


def row(db, code) -> Dossier:
    with db.read() as s:
        d = s.scalars(select(Dossier).where(Dossier.code == code)).one()
        s.expunge_all()
        return d


def events(db, code, action=None) -> list[Event]:
    with db.read() as s:
        d = s.scalars(select(Dossier).where(Dossier.code == code)).one()
        q = select(Event).where(Event.dossier_id == d.id)
        if action:
            q = q.where(Event.action == action)
        out = list(s.scalars(q.order_by(Event.id)))
        s.expunge_all()
        return out


def notifications(db, code, channel=None) -> list[Notification]:
    """The dossier's messages to people (the national portal's status rows only when asked for)."""
    with db.read() as s:
        d = s.scalars(select(Dossier).where(Dossier.code == code)).one()
        q = select(Notification).where(Notification.dossier_id == d.id)
        if channel:
            q = q.where(Notification.channel == channel)
        else:
            q = q.where(Notification.channel != "national_portal")
        out = list(s.scalars(q.order_by(Notification.id)))
        s.expunge_all()
        return out


def tasks(db, code) -> list[Task]:
    with db.read() as s:
        out = list(s.scalars(select(Task).where(Task.dossier_code == code).order_by(Task.created_at, Task.id)))
        s.expunge_all()
        return out


def fire(service, *when) -> scheduler.SweepResult:
    with at(*when):
        return fire_due(service.db, service)


# ---------------------------------------------------------------------------------------------------
# next_timer_at: min(BPMN timers, reminder, due)


def test_next_timer_is_the_reminder_then_the_due_time(service, db):
    # Received Mon 02/03/2026 09:00, 3 working days → due Thu 05/03 09:00.
    # Reminder 4 working hours before: Thu 07:00-09:00 is 2 h, Wed 15:00-17:00 the other 2 → Wed 04/03 15:00.
    d = start(service)
    assert d["due_at"] == vn(2026, 3, 5, 9, 0).isoformat()
    r = row(db, d["code"])
    assert service.settings.reminder_hours_before_due == 4
    assert r.next_timer_at == vn(2026, 3, 4, 15, 0)
    assert reminder_at(r, _cal(service), 4) == vn(2026, 3, 4, 15, 0)


def _cal(service):
    with service.db.read() as s:
        return service.calendar(s)


def test_compute_next_timer_rules(service, db):
    d = row(db, start(service)["code"])
    cal = _cal(service)
    s = service.settings
    assert compute_next_timer(d, None, cal, s) == vn(2026, 3, 4, 15, 0)
    d.reminded_at = vn(2026, 3, 4, 15, 0)
    assert compute_next_timer(d, None, cal, s) == vn(2026, 3, 5, 9, 0)
    d.overdue_flagged_at = vn(2026, 3, 5, 9, 0)
    assert compute_next_timer(d, None, cal, s) is None
    d.reminded_at = d.overdue_flagged_at = None
    d.paused_at = vn(2026, 3, 3, 10, 0)
    assert compute_next_timer(d, None, cal, s) is None  # paused: nothing runs
    d.paused_at, d.processed_at = None, vn(2026, 3, 4, 9, 0)
    assert compute_next_timer(d, None, cal, s) is None  # processed: the result is ready, no deadline watch
    d.processed_at, d.finished = None, True
    assert compute_next_timer(d, None, cal, s) is None


def test_reminder_fires_once_then_overdue_once(service, db):
    code = start(service)["code"]
    assert fire(service, 2026, 3, 4, 14, 59).dossiers == 0  # one minute early: nothing
    r = fire(service, 2026, 3, 4, 15, 0)
    assert (r.dossiers, r.reminders, r.overdue) == (1, 1, 0)
    for when in [(2026, 3, 4, 15, 0), (2026, 3, 4, 16, 0), (2026, 3, 5, 8, 59)]:  # again, and later: nothing
        assert fire(service, *when).reminders == 0
    rem = events(db, code, "deadline.reminder")
    assert len(rem) == 1 and rem[0].details["working_hours_left"] == 4
    officer = notifications(db, code, "officer")
    assert [n.kind for n in officer] == ["deadline.reminder"]
    assert officer[0].recipient == f"role:receiver@{AGENCY}"  # the open task's role (not yet claimed)
    assert row(db, code).reminded_at == vn(2026, 3, 4, 15, 0)
    assert row(db, code).next_timer_at == vn(2026, 3, 5, 9, 0)
    r = fire(service, 2026, 3, 5, 9, 0)
    assert (r.reminders, r.overdue) == (0, 1)
    assert fire(service, 2026, 3, 6, 9, 0).overdue == 0
    assert len(events(db, code, "deadline.overdue")) == 1
    assert row(db, code).next_timer_at is None
    assert row(db, code).overdue_flagged_at == vn(2026, 3, 5, 9, 0)


def test_reminder_goes_to_the_claimant(service, db):
    d = start(service)
    with at(2026, 3, 2, 9, 30):
        service.claim(receiver, d["tasks"][0]["id"])
    fire(service, 2026, 3, 4, 15, 0)
    assert [n.recipient for n in notifications(db, d["code"], "officer")] == ["user:tiepnhan"]


def test_late_sweep_skips_the_reminder_but_flags_overdue(service, db):
    # The worker was down for two days: at Fri 06/03 the dossier is past due; only the overdue flag is
    # raised (a reminder "4 hours left" would be false), and both are recorded as done.
    code = start(service)["code"]
    r = fire(service, 2026, 3, 6, 10, 0)
    assert (r.reminders, r.overdue) == (0, 1)
    d = row(db, code)
    assert d.reminded_at is not None and d.next_timer_at is None


# ---------------------------------------------------------------------------------------------------
# BPMN timers


def test_boundary_timer_on_a_user_task_fires_at_its_time(service, db):
    # Received Mon 02/03/2026 08:00; 10 working days → due Mon 16/03 08:00, reminder Fri 13/03 14:00.
    d = start(service, (2026, 3, 2, 8, 0), code="9.000002")
    with at(2026, 3, 2, 8, 0):
        d = service.complete_task(receiver, d["tasks"][0]["id"], {})
    appraise = d["tasks"][0]
    assert appraise["spec_name"] == "appraise"
    assert row(db, d["code"]).next_timer_at == vn(2026, 3, 2, 10, 0)  # PT2H: wall-clock
    assert fire(service, 2026, 3, 2, 9, 59, 59).dossiers == 0
    r = fire(service, 2026, 3, 2, 10, 0, 1)
    assert (r.dossiers, r.timers) == (1, 1)
    rows = {t.spec_name: t for t in tasks(db, d["code"])}
    assert rows["appraise"].state == "cancelled"  # interrupting: the appraisal is taken away
    assert rows["escalate"].state == "ready" and rows["escalate"].roles == ["leader", "L3"]
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(TaskRole).where(TaskRole.task_id == appraise["id"])) == 0
    fired = events(db, d["code"], "timer.fired")
    assert len(fired) == 1 and fired[0].details["timers"][0]["timer"] == "Qua 2 gio"
    # The escalation's non-interrupting timer: 1 working hour from 10:00:01 → 11:00:01.
    assert row(db, d["code"]).next_timer_at == vn(2026, 3, 2, 11, 0, 1)
    assert fire(service, 2026, 3, 2, 11, 0, 2).timers == 1
    assert fire(service, 2026, 3, 2, 11, 0, 3).timers == 0  # once
    assert [t.spec_name for t in tasks(db, d["code"]) if t.state == "ready"] == ["escalate"]
    assert row(db, d["code"]).next_timer_at == vn(2026, 3, 13, 14, 0)  # now the reminder


def test_timer_seen_a_moment_early_is_fired_by_a_later_call(service, db):
    # SpiffWorkflow fires a timer strictly after its instant; a call at exactly that instant handles the
    # dossier once (no busy loop) and the next call fires it.
    d = start(service, (2026, 3, 2, 8, 0), code="9.000002")
    with at(2026, 3, 2, 8, 0):
        service.complete_task(receiver, d["tasks"][0]["id"], {})
    r = fire(service, 2026, 3, 2, 10, 0, 0)
    assert (r.candidates, r.timers) == (1, 0)
    assert fire(service, 2026, 3, 2, 10, 0, 1).timers == 1


# ---------------------------------------------------------------------------------------------------
# Crashes and concurrency


class Crash(BaseException):
    """A worker killed between firing and commit (not an Exception: nothing may catch it)."""


def test_crash_after_firing_before_commit_neither_loses_nor_doubles(service, db, monkeypatch):
    code = start(service)["code"]
    real = scheduler._fire_one
    crashed = []

    def fire_then_crash(*args, **kw):
        real(*args, **kw)
        if not crashed:
            crashed.append(1)
            raise Crash()

    monkeypatch.setattr(scheduler, "_fire_one", fire_then_crash)
    with pytest.raises(Crash):
        fire(service, 2026, 3, 4, 15, 0)
    # Rolled back: nothing happened, the timer is still due.
    assert events(db, code, "deadline.reminder") == []
    assert notifications(db, code, "officer") == []
    assert row(db, code).next_timer_at == vn(2026, 3, 4, 15, 0)
    # "Restarted": the next sweep fires it, once.
    r = fire(service, 2026, 3, 4, 15, 0, 30)
    assert r.reminders == 1
    assert fire(service, 2026, 3, 4, 15, 1).reminders == 0
    assert len(events(db, code, "deadline.reminder")) == 1
    assert len(notifications(db, code, "officer")) == 1


def test_commit_failure_rolls_back_and_the_next_sweep_fires_once(service, db, monkeypatch):
    code = start(service, (2026, 3, 2, 8, 0), code="9.000002")["code"]
    with at(2026, 3, 2, 8, 0):
        service.complete_task(receiver, tasks(db, code)[0].id, {})
    from sqlalchemy.orm import Session

    real_commit = Session.commit
    state = {"n": 0}

    def failing_commit(self):
        state["n"] += 1
        if state["n"] == 1:
            raise Crash()
        return real_commit(self)

    monkeypatch.setattr(Session, "commit", failing_commit)
    with pytest.raises(Crash):
        fire(service, 2026, 3, 2, 10, 0, 1)
    monkeypatch.setattr(Session, "commit", real_commit)
    assert {t.spec_name: t.state for t in tasks(db, code)} == {"intake": "completed", "appraise": "ready"}
    assert fire(service, 2026, 3, 2, 10, 0, 2).timers == 1
    assert fire(service, 2026, 3, 2, 10, 0, 3).timers == 0
    assert len(events(db, code, "timer.fired")) == 1
    assert sorted(t.spec_name for t in tasks(db, code) if t.state == "ready") == ["escalate"]


def test_broken_dossier_is_retried_then_raises_an_incident(service, db, monkeypatch):
    good = start(service)["code"]
    bad = start(service)["code"]
    real = scheduler._fire_one

    def broken(s, svc, dossier_id, *args):
        if s.get(Dossier, dossier_id).code == bad:
            raise RuntimeError("script error in the diagram")
        return real(s, svc, dossier_id, *args)

    monkeypatch.setattr(scheduler, "_fire_one", broken)
    r = fire(service, 2026, 3, 4, 15, 0)
    assert (r.reminders, r.failures) == (1, 1)  # the good one is not held up
    assert row(db, bad).next_timer_at == vn(2026, 3, 4, 15, 1)  # retry in 1 min
    assert fire(service, 2026, 3, 4, 15, 1).failures == 1
    assert row(db, bad).next_timer_at == vn(2026, 3, 4, 15, 6)  # then 5 min
    r = fire(service, 2026, 3, 4, 15, 6)
    assert (r.failures, r.incidents) == (1, 1)
    assert row(db, bad).next_timer_at is None
    assert [e.action for e in events(db, bad)][-3:] == ["timer.failed", "timer.failed", "timer.incident"]
    assert len(events(db, good, "deadline.reminder")) == 1


def test_two_threads_fire_each_timer_once(service, db):
    codes = [start(service, (2026, 3, 2, 9, i))["code"] for i in range(12)]
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(fire_due(db, service, limit=1000, chunk=3))
        except BaseException as exc:  # pragma: no cover - shown by the assertion
            errors.append(exc)

    with at(2026, 3, 5, 12, 0):  # past the reminder and the due time of all twelve
        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors
    assert sum(r.overdue for r in results) == 12
    for code in codes:
        assert len(events(db, code, "deadline.overdue")) == 1
        assert events(db, code, "deadline.reminder") == []  # past due: only the overdue flag
        assert row(db, code).next_timer_at is None


def test_paused_or_closed_dossier_with_a_stale_timer_is_only_cleared(service, db):
    code = start(service)["code"]
    with db.uow() as s:
        d = s.scalars(select(Dossier).where(Dossier.code == code)).one()
        d.paused_at, d.next_timer_at = vn(2026, 3, 3, 8, 0), vn(2026, 3, 3, 9, 0)
    r = fire(service, 2026, 3, 4, 16, 0)
    assert (r.dossiers, r.reminders, r.overdue) == (1, 0, 0)
    assert row(db, code).next_timer_at is None


# ---------------------------------------------------------------------------------------------------
# Supplement: pause and resume


def test_supplement_pause_and_resume_move_the_due_time_by_the_paused_working_time(service, actions, db):
    # Received Mon 02/03/2026 09:00, 3 working days → due Thu 05/03 09:00.
    # Supplement asked Tue 03/03 10:00 (9 h used: Mon 6 h + Tue 3 h; 15 h left).
    # Documents back Thu 05/03 14:00. Paused: Tue 1.5 + 3.5, Wed 8, Thu 4.5 + 0.5 = 18 working hours.
    # New due = Thu 05/03 09:00 + 18 h = Mon 09/03/2026 11:00 (= Thu 14:00 + the 15 h that were left).
    d = start(service)
    code = d["code"]
    with at(2026, 3, 3, 10, 0):
        v = actions.request_supplement(receiver, code, "Thiếu giấy tờ", ["Bản sao giấy chứng sinh"])
    assert (v["status"], v["status_code"], v["paused"]) == ("supplement_requested", 5, True)
    assert row(db, code).next_timer_at is None  # the clock is stopped
    ev = events(db, code, "supplement.requested")[0]
    assert (ev.from_status, ev.to_status, ev.actor) == ("received", "supplement_requested", "tiepnhan")
    assert ev.details["working_hours_used"] == 9 and ev.details["counts_as_late"] is False
    assert fire(service, 2026, 3, 4, 16, 0).dossiers == 0  # nothing fires while paused
    with at(2026, 3, 4, 9, 0), pytest.raises(Conflict):
        service.complete_task(receiver, tasks(db, code)[0].id, {})  # the workflow is frozen
    with at(2026, 3, 5, 14, 0):
        v = actions.supplement_received(receiver, code)
    assert (v["status"], v["paused"]) == ("received", False)
    assert v["due_at"] == vn(2026, 3, 9, 11, 0).isoformat()
    r = row(db, code)
    assert r.paused_hours == 18 and r.paused_at is None and r.original_due_at == vn(2026, 3, 5, 9, 0)
    ev = events(db, code, "supplement.received")[0]
    assert ev.details["paused_working_hours"] == 18 and ev.to_status == "received"
    # Reminder 4 working hours before Mon 11:00: Mon 07:00-11:00 → counted back to Fri 06/03 17:00.
    assert r.next_timer_at == vn(2026, 3, 6, 17, 0)
    sms = [n.body for n in notifications(db, code, "sms")]
    assert sms[1] == unaccent(f"Hồ sơ {code} cần bổ sung giấy tờ: Bản sao giấy chứng sinh. Lý do: Thiếu giấy tờ")
    assert sms[2].endswith("Ngay hen tra: 11:00 09/03/2026")


def test_supplement_paused_outside_office_hours_leaves_the_due_time(service, actions, db):
    # Due Thu 05/03 17:00 (received Mon 02/03 17:00 → clock starts Tue 07:00, 3 days). Asked Sat 07/03
    # and answered Sun 08/03: zero working hours paused, the due time does not move (not to Fri 07:00).
    d = start(service, (2026, 3, 2, 17, 0))
    assert d["due_at"] == vn(2026, 3, 5, 17, 0).isoformat()
    with at(2026, 3, 5, 17, 30):
        actions.request_supplement(receiver, d["code"], "Thiếu ảnh")
    with at(2026, 3, 6, 6, 30):
        v = actions.supplement_received(receiver, d["code"])
    assert v["due_at"] == vn(2026, 3, 5, 17, 0).isoformat()
    assert row(db, d["code"]).paused_hours == 0


def test_supplement_moves_step_due_times_and_bpmn_timers(service, actions, db):
    # Appraisal ready Mon 02/03 08:00: step due 1 working day → Mon 17:00 (07:00-17:00 less lunch is 8 h
    # from 08:00 → Tue 08:00), boundary timer PT2H → 10:00. Paused 09:00 → 13:30 (2.5 working hours).
    d = start(service, (2026, 3, 2, 8, 0), code="9.000002")
    with at(2026, 3, 2, 8, 0):
        d = service.complete_task(receiver, d["tasks"][0]["id"], {})
    step = next(t for t in tasks(db, d["code"]) if t.spec_name == "appraise")
    assert step.due_at == vn(2026, 3, 3, 8, 0)
    with at(2026, 3, 2, 9, 0):
        actions.request_supplement(receiver, d["code"], "Thiếu bản vẽ")
    assert fire(service, 2026, 3, 2, 11, 0).timers == 0  # frozen
    with at(2026, 3, 2, 13, 30):
        actions.supplement_received(receiver, d["code"])
    assert next(t for t in tasks(db, d["code"]) if t.spec_name == "appraise").due_at == vn(2026, 3, 3, 10, 30)
    assert row(db, d["code"]).next_timer_at == vn(2026, 3, 2, 14, 30)  # 10:00 + 2.5 working hours
    assert fire(service, 2026, 3, 2, 14, 29).timers == 0
    assert fire(service, 2026, 3, 2, 14, 30, 1).timers == 1


def test_second_supplement_is_allowed_but_counts_as_late(service, actions, db):
    code = start(service)["code"]
    with at(2026, 3, 2, 10, 0):
        actions.request_supplement(receiver, code, "Lần 1")
    with at(2026, 3, 2, 10, 0), pytest.raises(Conflict):
        actions.request_supplement(receiver, code, "Đang chờ bổ sung")  # not while waiting
    with at(2026, 3, 2, 14, 0):
        actions.supplement_received(receiver, code)
    with at(2026, 3, 3, 9, 0):
        v = actions.request_supplement(receiver, code, "Lần 2", ["Bản chính"])
    assert v["supplement_count"] == 2
    ev = events(db, code, "supplement.requested")[-1]
    assert ev.details["second_request"] is True and ev.details["counts_as_late"] is True


def test_supplement_from_in_process_returns_to_in_process(service, actions, db):
    d = start(service)
    with at(2026, 3, 2, 9, 30):
        d = service.complete_task(receiver, d["tasks"][0]["id"], {"decision": "accept"})
    assert d["status"] == "in_process"
    with at(2026, 3, 2, 10, 0):
        actions.request_supplement(specialist_receiver(), d["code"], "Thiếu")
    with at(2026, 3, 2, 11, 0):
        v = actions.supplement_received(receiver, d["code"])
    assert v["status"] == "in_process" and len(v["tasks"]) == 1


def specialist_receiver():
    return staff({"receiver", "specialist"}, AGENCY, "nguoi2")


# ---------------------------------------------------------------------------------------------------
# Extension (apology letter, new due time once)


def test_extension_by_working_days_from_the_due_time(service, actions, db):
    # Received Mon 02/03/2026 17:30 → clock starts Tue 07:00, due Thu 05/03 17:00.
    # Apology Thu 15:00 (2 working hours left), 2 working days → Thu 17:00 + 16 h = Mon 09/03/2026 17:00.
    d = start(service, (2026, 3, 2, 17, 30))
    assert d["due_at"] == vn(2026, 3, 5, 17, 0).isoformat()
    with at(2026, 3, 5, 15, 0):
        v = actions.extend(receiver, d["code"], "Chờ ý kiến cơ quan phối hợp", extra_working_days=2)
    assert v["due_at"] == vn(2026, 3, 9, 17, 0).isoformat() and v["extended"] is True
    r = row(db, d["code"])
    assert r.original_due_at == vn(2026, 3, 5, 17, 0) and r.extension_reason == "Chờ ý kiến cơ quan phối hợp"
    ev = events(db, d["code"], "deadline.extended")[0]
    assert ev.details["due_at_before"] == vn(2026, 3, 5, 17, 0).isoformat()
    assert ev.details["was_overdue"] is False
    assert "Ngay hen tra moi: 17:00 09/03/2026" in notifications(db, d["code"], "sms")[-1].body
    with at(2026, 3, 9, 16, 0), pytest.raises(Conflict):  # once
        actions.extend(receiver, d["code"], "Lần nữa", extra_working_days=1)


def test_extension_of_an_overdue_dossier_counts_from_the_apology(service, actions, db):
    # Due Thu 05/03 17:00; apology Mon 09/03 10:00 (overdue), 1 working day →
    # Mon 10:00-11:30 1.5 + 13:30-17:00 3.5, Tue 07:00-10:00 3 → Tue 10/03/2026 10:00.
    d = start(service, (2026, 3, 2, 17, 30))
    fire(service, 2026, 3, 5, 17, 0)  # reminder skipped, overdue flagged
    assert row(db, d["code"]).overdue_flagged_at is not None
    with at(2026, 3, 9, 10, 0):
        v = actions.extend(receiver, d["code"], "Quá tải hồ sơ", extra_working_days=1)
    assert v["due_at"] == vn(2026, 3, 10, 10, 0).isoformat()
    r = row(db, d["code"])
    assert r.overdue_flagged_at is None and r.reminded_at is None  # re-armed for the new date
    assert r.next_timer_at == vn(2026, 3, 9, 16, 0)  # 4 working hours before Tue 10:00: Tue 3 h + Mon 1 h
    assert events(db, d["code"], "deadline.extended")[0].details["was_overdue"] is True


def test_extension_to_a_given_date(service, actions, db):
    d = start(service, (2026, 3, 2, 17, 30))
    with at(2026, 3, 5, 10, 0):
        with pytest.raises(InvalidInput):  # before the current due time
            actions.extend(receiver, d["code"], "Lý do", new_due_at=vn(2026, 3, 5, 16, 0))
        with pytest.raises(InvalidInput):  # naive
            actions.extend(receiver, d["code"], "Lý do", new_due_at=datetime(2026, 3, 12, 17, 0))
        v = actions.extend(receiver, d["code"], "Lý do", new_due_at=vn(2026, 3, 12, 17, 0))
    assert v["due_at"] == vn(2026, 3, 12, 17, 0).isoformat()


def test_extension_rules(service, actions, db):
    d = start(service, (2026, 3, 2, 17, 30))
    with at(2026, 3, 3, 9, 0):
        with pytest.raises(Conflict):  # 22 working hours left: neither overdue nor about to be
            actions.extend(receiver, d["code"], "Sớm quá", extra_working_days=1)
        with pytest.raises(InvalidInput):
            actions.extend(receiver, d["code"], "  ", extra_working_days=1)  # reason required
        with pytest.raises(InvalidInput):
            actions.extend(receiver, d["code"], "Lý do")  # neither date nor days
        with pytest.raises(InvalidInput):
            actions.extend(receiver, d["code"], "Lý do", extra_working_days=0)
    with at(2026, 3, 5, 10, 0):
        actions.request_supplement(receiver, d["code"], "Thiếu")
    with at(2026, 3, 5, 11, 0), pytest.raises(Conflict):  # not while paused
        actions.extend(receiver, d["code"], "Lý do", extra_working_days=1)


# ---------------------------------------------------------------------------------------------------
# Refuse, withdraw, stop


def test_refuse_at_intake_cancels_the_workflow(service, actions, db):
    d = start(service)
    with at(2026, 3, 2, 10, 0):
        v = actions.refuse(receiver, d["code"], "Hồ sơ không thuộc thẩm quyền")
    assert (v["status"], v["status_code"], v["finished"], v["tasks"]) == ("refused", 3, True, [])
    r = row(db, d["code"])
    assert r.returned_at is None and r.processed_at is None and r.next_timer_at is None
    assert [t.state for t in tasks(db, d["code"])] == ["cancelled"]
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(TaskRole)) == 0
    ev = events(db, d["code"], "dossier.refused")[0]
    assert (ev.from_status, ev.to_status, ev.details["reason"]) == (
        "received",
        "refused",
        "Hồ sơ không thuộc thẩm quyền",
    )
    assert notifications(db, d["code"], "sms")[-1].body.startswith(f"Ho so {d['code']} khong duoc tiep nhan")
    # Final: every further action is refused with 409, and nothing fires for it any more.
    for call in (
        lambda: actions.withdraw(receiver, d["code"], "x"),
        lambda: actions.stop(receiver, d["code"], "x"),
        lambda: actions.request_supplement(receiver, d["code"], "x"),
        lambda: actions.extend(receiver, d["code"], "x", extra_working_days=1),
        lambda: actions.refuse(receiver, d["code"], "x"),
    ):
        with at(2026, 3, 2, 10, 5), pytest.raises(Conflict):
            call()
    assert fire(service, 2026, 3, 6, 10, 0).dossiers == 0


def test_refuse_only_before_processing(service, actions, db):
    d = start(service)
    with at(2026, 3, 2, 9, 30):
        d = service.complete_task(receiver, d["tasks"][0]["id"], {"decision": "accept"})
    with at(2026, 3, 2, 10, 0), pytest.raises(Conflict):
        actions.refuse(receiver, d["code"], "Muộn rồi")
    # ... but a supplement asked at intake can still end in a refusal
    d2 = start(service)
    with at(2026, 3, 2, 10, 0):
        actions.request_supplement(receiver, d2["code"], "Thiếu")
    with at(2026, 3, 4, 10, 0):
        v = actions.refuse(receiver, d2["code"], "Không bổ sung")
    assert v["status"] == "refused" and v["paused"] is False
    assert row(db, d2["code"]).paused_hours == 16  # Mon 10:00 → Wed 10:00


def test_withdraw_and_stop(service, actions, db):
    a, b = start(service), start(service)
    with at(2026, 3, 2, 9, 30):
        b = service.complete_task(receiver, b["tasks"][0]["id"], {"decision": "accept"})
    with at(2026, 3, 2, 10, 0):
        v = actions.withdraw(receiver, a["code"], "Người nộp xin rút")
        assert (v["status"], v["status_code"]) == ("withdrawn", 7)
        with pytest.raises(PermissionDenied):
            actions.stop(specialist, b["code"], "Không có quyền")
        v = actions.stop(leader, b["code"], "Tranh chấp đất đai")
        assert (v["status"], v["status_code"]) == ("stopped", 8)
    assert {t.spec_name: t.state for t in tasks(db, b["code"])} == {"intake": "completed", "appraise": "cancelled"}
    assert events(db, b["code"], "dossier.stopped")[0].actor == "lanhdao"


def test_who_may_do_what(service, actions, db):
    d = start(service)
    assert set(WHO_MAY) == {"request_supplement", "supplement_received", "refuse", "withdraw", "stop", "extend"}
    with at(2026, 3, 2, 10, 0):
        with pytest.raises(PermissionDenied):
            actions.request_supplement(specialist, d["code"], "x")
        with pytest.raises(PermissionDenied):
            actions.refuse(leader, d["code"], "x")
        with pytest.raises(NotFound):  # another agency does not even see it
            actions.withdraw(other_receiver, d["code"], "x")
        with pytest.raises(NotFound):
            actions.withdraw(receiver, "KHONG-CO", "x")
        with pytest.raises(PermissionDenied):  # a supervisor sees every agency but acts in none
            actions.stop(staff({"supervisor", "receiver"}, "000.00.00.H01", "gs"), d["code"], "x")
        with pytest.raises(InvalidInput):
            actions.refuse(receiver, d["code"], "")
        v = actions.request_supplement(admin, d["code"], "Quản trị viên")  # admins may do everything
    assert v["status"] == "supplement_requested"


def test_applicant_without_phone_is_told_on_the_portal(service, actions, db):
    d = start(service, applicant={"name": "Trần Văn B", "email": "b@example.vn"})
    with at(2026, 3, 2, 10, 0):
        actions.withdraw(receiver, d["code"], "Rút")
    assert [n.channel for n in notifications(db, d["code"])] == ["email", "email"]  # receipt, withdrawal
    d = start(service, applicant={"name": "Lê C"})
    with at(2026, 3, 2, 10, 0):
        actions.withdraw(receiver, d["code"], "Rút")
    assert [(n.channel, n.recipient) for n in notifications(db, d["code"])] == [("portal", d["code"])] * 2
    assert [n.payload["status_code"] for n in notifications(db, d["code"], "national_portal")] == [2, 7]


# ---------------------------------------------------------------------------------------------------
# Outbox


def test_outbox_is_drained_once_sms_unaccented(service, actions, db, tmp_path):
    d = start(service)
    with at(2026, 3, 2, 10, 0):
        actions.request_supplement(receiver, d["code"], "Thiếu đơn đề nghị")
    sender = FileSender(tmp_path / "out.log")
    assert drain_outbox(db, sender) == 4  # receipt and supplement SMS, two status updates for the national portal
    assert drain_outbox(db, sender) == 0
    lines = (tmp_path / "out.log").read_text(encoding="utf-8").splitlines()
    sms = [json.loads(line) for line in lines if json.loads(line)["channel"] == "sms"]
    assert len(lines) == 4 and len(sms) == 2 and "Thieu don de nghi" in sms[1]["body"]
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Notification).where(Notification.sent_at.is_(None))) == 0


def test_portal_sequence_remembered_by_one_process_follows_what_another_pushed(service, db, settings):
    """A process remembers a dossier's last portal sequence with the row version it committed
    (`DossierService.portal_cursors`), so its next step reads nothing; a step another process made meanwhile
    moved the version, and the sequence is read again: one sequence per status, in order, never twice."""
    other = DossierService(db, settings)  # a second API process: its own caches, the same database
    worker = staff({"receiver", "specialist"}, AGENCY, "canbo")
    d = start(service)
    step = {"decision": "accept"}
    with at(2026, 3, 2, 10, 0):
        d = service.complete_task(worker, d["tasks"][0]["id"], step)  # status changes: remembered, not read
        d = other.complete_task(worker, d["tasks"][0]["id"], step)
        d = other.complete_task(worker, d["tasks"][0]["id"], step)  # processed: pushed by the other process
        d = service.complete_task(worker, d["tasks"][0]["id"], step)  # returned: this one must read again
    assert d["status"] == "returned"
    rows = notifications(db, d["code"], "national_portal")
    assert [n.sequence for n in rows] == list(range(1, len(rows) + 1))
    assert [n.payload["status_code"] for n in rows] == [2, 4, 9, 10]


def test_outbox_failure_leaves_the_message_for_the_next_sweep(service, db):
    start(service)

    class Down:
        def send(self, n):
            raise ConnectionError("gateway down")

    assert drain_outbox(db, Down()) == 0
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Notification).where(Notification.sent_at.is_(None))) == 2
        assert s.scalar(select(func.count()).select_from(Notification).where(Notification.tries == 1)) == 2


def test_unaccent():
    assert unaccent("Hồ sơ đã được tiếp nhận. Đơn ĐỀ NGHỊ") == "Ho so da duoc tiep nhan. Don DE NGHI"
