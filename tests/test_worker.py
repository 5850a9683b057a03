"""The huey worker - sweep and wake-up tasks, wake-ups scheduled at commit, a real consumer, and
several workers (threads; on PostgreSQL + Redis also processes) firing each timer once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from engine.calendar import VN_TZ
from engine.config import Settings
from engine.db import Database
from engine.dossiers import DossierService
from engine.models import Dossier, Event, Notification, utcnow
from engine.procedures import deploy_bytes
from engine.worker import Keepalive, Worker, consumer_class, make_consumer, make_huey, run_consumer
from tests.conftest import PG_URL, ROOT
from tests.helpers import staff

AGENCY = "000.31.14.H56"
FOUR_STEPS = (ROOT / "bench" / "four_steps.bpmn").read_bytes()  # 9.000001, 3 working days
receiver = staff({"receiver"}, AGENCY, "tiepnhan")
admin = staff({"admin"}, AGENCY, "admin")
APPLICANT = {"name": "Phạm Văn D", "phone": "0987654321"}
REDIS_URL = os.environ.get("REDIS_URL")

# A specialist's task with a 2-second boundary timer: the wake-up scheduled at commit must fire it.
QUICK_TIMER = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="d" targetNamespace="t">
  <bpmn:process id="quick" name="Hen gio ngan" isExecutable="true">
    <bpmn:extensionElements><camunda:properties>
      <camunda:property name="procedure_code" value="9.000003"/>
      <camunda:property name="deadline" value="10 working days"/>
    </camunda:properties></bpmn:extensionElements>
    <bpmn:laneSet>
      <bpmn:lane id="L1" name="Chuyen vien (specialist)"><bpmn:flowNodeRef>appraise</bpmn:flowNodeRef></bpmn:lane>
      <bpmn:lane id="L2" name="Lanh dao (leader)"><bpmn:flowNodeRef>escalate</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="appraise"/>
    <bpmn:userTask id="appraise" name="Tham dinh"/>
    <bpmn:sequenceFlow id="f2" sourceRef="appraise" targetRef="end"/>
    <bpmn:endEvent id="end"/>
    <bpmn:boundaryEvent id="late" name="Qua 2 giay" cancelActivity="true" attachedToRef="appraise">
      <bpmn:timerEventDefinition><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">PT2S</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f3" sourceRef="late" targetRef="escalate"/>
    <bpmn:userTask id="escalate" name="Lanh dao xu ly"/>
    <bpmn:sequenceFlow id="f4" sourceRef="escalate" targetRef="end2"/>
    <bpmn:endEvent id="end2"/>
  </bpmn:process>
</bpmn:definitions>
"""


def vn(*args) -> datetime:
    return datetime(*args, tzinfo=VN_TZ)


@pytest.fixture
def service(db, settings):
    deploy_bytes(db, FOUR_STEPS, "four_steps.bpmn")
    deploy_bytes(db, QUICK_TIMER, "quick.bpmn")
    return DossierService(db, settings)


@pytest.fixture
def worker(settings, db, service):
    """A Worker on SqliteHuey in the test's var/ (or RedisHuey under a unique name when REDIS_URL is set)."""
    w = Worker(settings, db=db, service=service, name=f"motcua-test-{uuid.uuid4().hex[:8]}")
    yield w
    try:
        w.huey.storage.flush_all()
    except Exception:
        pass


def count(db, model, *where) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def actions_of(db, action) -> dict:
    """{dossier code: number of events with that action}."""
    with db.read() as s:
        rows = s.execute(
            select(Dossier.code, func.count(Event.id))
            .join(Event, Event.dossier_id == Dossier.id)
            .where(Event.action == action)
            .group_by(Dossier.code)
        ).all()
    return dict(rows)


def overdue_dossiers(service, n: int) -> list[str]:
    """n dossiers brought over from a previous system, received 10 working days ago: due and overdue now."""
    past = utcnow() - timedelta(days=20)
    return [service.start_dossier(admin, "9.000001", APPLICANT, received_at=past)["code"] for _ in range(n)]


# ---------------------------------------------------------------------------------------------------
# The tasks, run in process


def test_huey_from_settings(tmp_path):
    s = Settings(var_dir=tmp_path / "var", database_url=f"sqlite:///{tmp_path / 'x.db'}")
    h = make_huey(s)
    assert type(h).__name__ == "SqliteHuey" and h.storage.filename == str(tmp_path / "var" / "huey.db")
    if REDIS_URL:
        s.redis_url = REDIS_URL
        assert type(make_huey(s)).__name__ == "RedisHuey"


def test_sweep_task_fires_due_timers_and_the_delivery_task_drains_the_outbox(worker, service, db, settings):
    with time_machine.travel(vn(2026, 3, 2, 9, 0), tick=False):
        code = service.start_dossier(receiver, "9.000001", APPLICANT)["code"]
    with time_machine.travel(vn(2026, 3, 4, 15, 0), tick=False):
        out = worker.sweep()  # what the periodic task runs
        assert out["reminders"] == 1
        sent = worker.deliver()  # the outbox's own task, each channel in its own thread
    assert sum(r["sent"] for r in sent.values()) == count(db, Notification) >= 2  # receipt SMS + officer reminder
    log = (settings.var_dir / "notifications.log").read_text(encoding="utf-8").splitlines()
    assert any(f"Ho so {code} da duoc tiep nhan" in line for line in log)
    with time_machine.travel(vn(2026, 3, 4, 15, 0, 30), tick=False):
        assert worker.wake() == {
            "dossiers": 0,
            "timers": 0,
            "reminders": 0,
            "overdue": 0,
            "failures": 0,
            "connector_calls": 0,
            "connector_incidents": 0,
        }
        assert worker.deliver() == {}
    assert count(db, Notification, Notification.sent_at.is_(None)) == 0
    # the log file is kept open between messages; rotated away (renamed), the next message starts a new one
    (settings.var_dir / "notifications.log").rename(settings.var_dir / "notifications.log.1")
    with time_machine.travel(vn(2026, 3, 4, 16, 0), tick=False):
        other = service.start_dossier(receiver, "9.000001", APPLICANT)["code"]
        assert worker.deliver()
    rotated = (settings.var_dir / "notifications.log.1").read_text(encoding="utf-8")
    fresh = (settings.var_dir / "notifications.log").read_text(encoding="utf-8")
    assert other in fresh and other not in rotated and code in rotated and code not in fresh


def test_tasks_in_huey_immediate_mode(worker, service, db):
    with time_machine.travel(vn(2026, 3, 2, 9, 0), tick=False):
        service.start_dossier(receiver, "9.000001", APPLICANT)
    worker.huey.immediate = True
    try:
        with time_machine.travel(vn(2026, 3, 5, 10, 0), tick=False):
            worker.wake_task()  # executed synchronously by huey
            worker.sweep_task()
    finally:
        worker.huey.immediate = False
    assert count(db, Event, Event.action == "deadline.overdue") == 1


# ---------------------------------------------------------------------------------------------------
# Wake-ups scheduled when a transaction sets next_timer_at


def scheduled_etas(worker) -> list[datetime]:
    """Wake-ups waiting in huey (a task with an eta sits in the queue until a consumer moves it to the schedule)."""
    tasks = worker.huey.pending() + worker.huey.scheduled()
    return sorted(t.eta.replace(tzinfo=UTC) for t in tasks if t.name.endswith("motcua.wake"))


def test_commit_that_writes_outbox_rows_enqueues_one_delivery(worker, service, db):
    worker.install_wakeups(db)
    service.start_dossier(receiver, "9.000001", APPLICANT)
    service.start_dossier(receiver, "9.000001", APPLICANT)  # within the same second: not enqueued again
    deliveries = [t for t in worker.huey.pending() + worker.huey.scheduled() if t.name.endswith("motcua.deliver")]
    assert len(deliveries) in (1, 2)  # at the next whole second (two if the second turned between the starts)
    assert all(0 < (d.eta.replace(tzinfo=UTC) - utcnow()).total_seconds() <= 2 for d in deliveries)


def test_commit_schedules_a_wakeup_at_next_timer_at(worker, service, db):
    worker.install_wakeups(db)
    with time_machine.travel(vn(2026, 3, 2, 9, 0), tick=False):
        code = service.start_dossier(receiver, "9.000001", APPLICANT)["code"]
        service.start_dossier(receiver, "9.000001", APPLICANT)  # same reminder instant: one wake-up
    assert scheduled_etas(worker) == [vn(2026, 3, 4, 15, 0)]  # the reminder instant
    with time_machine.travel(vn(2026, 3, 4, 15, 0), tick=False):
        worker.sweep()  # fires both reminders; their next timer is the due time
    assert scheduled_etas(worker) == [vn(2026, 3, 4, 15, 0), vn(2026, 3, 5, 9, 0)]
    # A rolled-back transaction schedules nothing.
    with time_machine.travel(vn(2026, 3, 4, 16, 0), tick=False):
        with pytest.raises(RuntimeError):
            with db.uow() as s:
                d = s.scalars(select(Dossier).where(Dossier.code == code)).one()
                d.next_timer_at = vn(2026, 3, 20, 9, 0)
                s.flush()
                raise RuntimeError("rolled back")
    assert len(scheduled_etas(worker)) == 2


def test_wakeup_in_the_past_is_scheduled_a_second_ahead(worker):
    with time_machine.travel(vn(2026, 3, 2, 9, 0, 0, 250_000), tick=False):
        assert worker.schedule_wakeup(vn(2026, 3, 1, 9, 0))
        assert not worker.schedule_wakeup(vn(2026, 3, 2, 9, 0, 1))  # the same second: already scheduled
    assert scheduled_etas(worker) == [vn(2026, 3, 2, 9, 0, 2)]


def test_known_wakeups_stay_within_their_bound(worker):
    """The API process schedules a wake-up per step's timer, days ahead: what it remembers is bounded."""
    worker.wakeups_size = 4
    first = vn(2026, 3, 3, 9, 0)
    with time_machine.travel(vn(2026, 3, 2, 9, 0), tick=False):
        for h in range(10):
            assert worker.schedule_wakeup(first + timedelta(hours=h))
            assert len(worker._scheduled) <= 4
        assert not worker.schedule_wakeup(first)  # the soonest are kept: still known, not queued twice
    assert len(scheduled_etas(worker)) == 10


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


GLIBC = sys.platform.startswith("linux") and (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc_trim; RSS read from /proc")
def test_the_keepalive_gives_the_freed_c_heap_back(worker, monkeypatch):
    """What a thread frees stays in glibc's arena, and the worker's RSS climbed that way (docs/performance.md,
    "Memory of an API process"): its keepalive loop hands it back every MOTCUA_MALLOC_TRIM_SECONDS."""
    monkeypatch.setenv("MOTCUA_MALLOC_TRIM_SECONDS", "0.01")
    keepalive = Keepalive(worker, period=3600)
    kept = []

    def churn():  # 64 MB from malloc (objects beyond pymalloc's 512 bytes), freed but for the last block,
        blocks = [bytearray(16384) for _ in range(4000)]
        kept.append(blocks[-1])  # which stays: the arena cannot shrink from its top by itself
        del blocks

    t = threading.Thread(target=churn)
    t.start()
    t.join()
    time.sleep(0.05)
    before = _rss_mb()
    keepalive.tick()
    after = _rss_mb()
    assert before - after > 40, (before, after)


def test_consumer_sweeps_every_sweep_seconds(settings, monkeypatch):
    settings.sweep_seconds = 30
    cls = consumer_class(settings.sweep_seconds)
    assert cls.scheduler_class.periodic_task_seconds == 30
    seen = {}

    def fake_run(self):
        seen.update(
            workers=self.workers,
            periodic=self.periodic,
            kind=self.worker_type,
            seconds=self.scheduler_class.periodic_task_seconds,
            tasks=sorted(self.huey._registry._registry),
        )

    from huey.consumer import Consumer

    monkeypatch.setattr(Consumer, "run", fake_run)
    run_consumer(settings)  # what `motcua worker` runs
    assert seen["workers"] == 4 and seen["periodic"] and seen["kind"] == "thread" and seen["seconds"] == 30
    for name in ("motcua.wake", "motcua.sweep", "motcua.deliver", "motcua.deliver_tick"):
        assert any(t.endswith(name) for t in seen["tasks"])


# ---------------------------------------------------------------------------------------------------
# A real consumer (threads), real time


class running:
    """Start a huey consumer in this process; stop it and restore the signal handlers on exit."""

    def __init__(self, worker, workers=2):
        self.worker, self.workers = worker, workers

    def __enter__(self):
        self.saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        self.consumer = make_consumer(self.worker, workers=self.workers)
        self.consumer.start()
        return self.consumer

    def __exit__(self, *exc):
        self.consumer.stop(graceful=True)
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def wait_until(cond, timeout=20.0, step=0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def test_consumer_fires_a_bpmn_timer_on_its_wakeup(worker, service, db, settings):
    settings.sweep_seconds = 3600  # only the initial sweep: the timer must come from its own wake-up
    worker.install_wakeups(db)
    with running(worker):
        time.sleep(0.5)  # let the consumer's start-up sweep pass
        started = time.monotonic()
        code = service.start_dossier(receiver, "9.000003", APPLICANT)["code"]
        assert wait_until(lambda: actions_of(db, "timer.fired").get(code) == 1, timeout=15)
        elapsed = time.monotonic() - started
    assert 2.0 <= elapsed < 6.0, elapsed
    with db.read() as s:
        d = s.scalars(select(Dossier).where(Dossier.code == code)).one()
        assert d.next_timer_at is not None  # now the reminder, days ahead
    assert actions_of(db, "timer.fired") == {code: 1}


def test_consumer_with_two_threads_fires_each_timer_once(worker, service, db):
    codes = overdue_dossiers(service, 30)
    for _ in range(20):  # a burst of wake-ups racing each other and the start-up sweep
        worker.wake_task()
    with running(worker, workers=2):
        assert wait_until(lambda: count(db, Dossier, Dossier.next_timer_at.is_not(None)) == 0, timeout=30)
        time.sleep(0.5)
    assert actions_of(db, "deadline.overdue") == {c: 1 for c in codes}
    assert actions_of(db, "deadline.reminder") == {}


# ---------------------------------------------------------------------------------------------------
# PostgreSQL + Redis: two consumers' worth of threads, and two processes


def _fire_in_process(url, var_dir, go, out):  # runs in a child process
    from engine.config import Settings
    from engine.db import Database
    from engine.dossiers import DossierService
    from engine.scheduler import fire_due

    st = Settings(var_dir=var_dir, database_url=url)
    database = Database.from_settings(st)
    svc = DossierService(database, st)
    go.wait(30)
    totals = {"overdue": 0, "timers": 0, "dossiers": 0}
    idle = 0
    end = time.monotonic() + 40
    while idle < 6 and time.monotonic() < end:
        r = fire_due(database, svc, limit=50, chunk=5)
        for k in totals:
            totals[k] += getattr(r, k)
        idle = idle + 1 if r.candidates == 0 else 0
        time.sleep(0.05 if r.candidates else 0.5)
    database.dispose()
    out.put(totals)


needs_pg_redis = pytest.mark.skipif(
    not (PG_URL and REDIS_URL),
    reason="needs PostgreSQL and Redis: set DATABASE_URL=postgresql+psycopg://… and REDIS_URL=redis://… "
    "(`make test` runs the suite again with both when they answer)",
)


@needs_pg_redis
def test_two_processes_on_postgres_fire_each_timer_once(service, db, settings):
    codes = overdue_dossiers(service, 80)
    quick = [service.start_dossier(receiver, "9.000003", APPLICANT)["code"] for _ in range(10)]
    time.sleep(2.2)  # the PT2S timers are due
    ctx = multiprocessing.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_fire_in_process, args=(settings.database_url, settings.var_dir, go, out)) for _ in range(2)
    ]
    for p in procs:
        p.start()
    go.set()
    totals = [out.get(timeout=90) for _ in procs]
    for p in procs:
        p.join(30)
    assert actions_of(db, "deadline.overdue") == {c: 1 for c in codes}
    assert actions_of(db, "timer.fired") == {c: 1 for c in quick}
    assert sum(t["overdue"] for t in totals) == 80 and sum(t["timers"] for t in totals) == 10
    assert all(t["dossiers"] > 0 for t in totals), totals  # SKIP LOCKED: both did a share


@needs_pg_redis
def test_two_consumers_on_redis_and_postgres_fire_each_timer_once(service, db, settings):
    assert type(make_huey(settings)).__name__ == "RedisHuey"
    codes = overdue_dossiers(service, 60)
    name = f"motcua-test-{uuid.uuid4().hex[:8]}"
    w1 = Worker(settings, db=db, service=service, name=name)
    w2 = Worker(settings, db=Database.from_settings(settings), service=None, name=name)
    try:
        for _ in range(10):
            w1.wake_task()
        with running(w1, workers=2), running(w2, workers=2):
            assert wait_until(lambda: count(db, Dossier, Dossier.next_timer_at.is_not(None)) == 0, timeout=30)
            time.sleep(0.5)
        assert actions_of(db, "deadline.overdue") == {c: 1 for c in codes}
    finally:
        w1.huey.storage.flush_all()
        w2.db.dispose()
