"""The background worker: huey as a wake-up service over the database's timers and outbox.

huey has no acknowledgements: a task running when its worker dies is lost (docs/deadlines.md,
"Exactly once, without acknowledgements"). So no huey task
carries state. The database does: `dossiers.next_timer_at` (indexed) says when each dossier next needs
attention, `notifications.sent_at IS NULL` what is still to send. huey only decides *when* to look:

* `motcua.sweep`, a periodic task every `settings.sweep_seconds` (30 s; huey's own periodic tasks tick
  once a minute, so the consumer's scheduler is given that period): fires everything due
  (`engine.scheduler.fire_due`, in rounds of 500 within a time budget) and drains the outbox.
* `motcua.deliver`, the outbox's own task (engine/channels/delivery.py): enqueued after every commit that
  wrote outbox rows (at most once a second per process) and run periodically too (`motcua.deliver_tick`,
  which also sends the scheduled period reports). Each channel drains in its own thread with its own
  timeout and concurrency, so a slow or dead gateway delays neither the sweep nor another channel.
* `motcua.wake`, scheduled at the exact instant a committed transaction set some dossier's
  `next_timer_at` to (`install_wakeups`): the same work, on time instead of up to 30 s late.
  A lost or duplicated wake-up changes nothing but latency: firing re-checks `next_timer_at <= now`
  under the dossier's row lock, so each timer has effect once.

Storage: SqliteHuey at `var/huey.db` by default; RedisHuey when `settings.redis_url` (REDIS_URL) is set.
`run_consumer(settings)` is `motcua worker`: a huey consumer with 4 worker threads (the sweep, a wake-up
and the deliveries never wait for one another).

How wake-ups are collected: a listener on the SQLAlchemy engine sees every INSERT/UPDATE of the
dossiers table (ORM flushes and Core statements alike) and notes the `next_timer_at` values written on
that connection; when the transaction commits, one `motcua.wake` is scheduled per distinct second (at
least one second ahead, since the listener runs just before the database's COMMIT completes); a
rollback forgets them. Each process remembers what it already scheduled, so a thousand dossiers with the
same due second cost one huey task. Any process that writes dossiers (the API server, the worker, the
CLI) calls `Worker.install_wakeups()` on its `Database`.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time as _time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from huey import RedisHuey, SqliteHuey
from huey.consumer import Consumer, Scheduler
from sqlalchemy import event
from sqlalchemy.sql.dml import Insert, Update

from . import attachments, boardcounts, connectors, memory
from .caches import CacheWatch
from .channels.delivery import Delivery
from .channels.senders import build_senders
from .config import Settings
from .db import Database
from .models import Dossier, Notification, utcnow
from .outbox import Sender
from .scheduler import SweepResult, fire_due

log = logging.getLogger("motcua.worker")

HUEY_NAME = "motcua"
SWEEP_LIMIT = 500  # dossiers per fire_due round
_DOSSIERS = Dossier.__table__
_PENDING = "motcua_wakeups"
_OUTBOX = "motcua_outbox"
_NOTIFICATIONS = Notification.__table__
REDIS_TIMEOUT = 2.0  # seconds: connect or answer (more than huey's 1-second blocking read), else the queue is away
QUEUE_AWAY_SECONDS = 5.0  # after a failed enqueue, skip enqueueing for this long (the sweep covers)


def make_huey(settings: Settings, name: str = HUEY_NAME, immediate: bool = False):
    """RedisHuey when `settings.redis_url`, else SqliteHuey at var/huey.db. Results are not stored."""
    if settings.redis_url:
        # Short socket timeouts: with Redis away, an enqueue after a commit fails in ~a second instead of
        # hanging the request (the database sweep still finds the work, docs/operations.md).
        from redis import ConnectionPool

        pool = ConnectionPool.from_url(
            settings.redis_url,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT / 2,
            health_check_interval=30,
        )
        return RedisHuey(
            name, connection_pool=pool, results=False, utc=True, immediate=immediate, immediate_use_memory=False
        )
    return SqliteHuey(
        name,
        filename=str(Path(settings.var_dir) / "huey.db"),
        results=False,
        utc=True,
        immediate=immediate,
        immediate_use_memory=False,
    )


def _always(_dt) -> bool:
    return True


class Worker:
    """The huey instance with our two tasks, and the state one process needs to run or enqueue them.

    `db`, `service` and `sender` are created on first use, so an API process that only enqueues
    wake-ups builds none of them.
    """

    def __init__(
        self,
        settings: Settings,
        db: Database | None = None,
        service=None,
        sender: Sender | None = None,
        huey=None,
        name: str = HUEY_NAME,
        budget_seconds: float | None = None,
    ):
        self.settings = settings
        self.huey = huey if huey is not None else make_huey(settings, name)
        self._db, self._service, self._sender = db, service, sender
        self.budget_seconds = budget_seconds if budget_seconds is not None else max(5.0, settings.sweep_seconds * 0.8)
        self.wake_task = self.huey.task(name="motcua.wake")(self.wake)
        self.sweep_task = self.huey.periodic_task(_always, name="motcua.sweep")(self.sweep)
        self.deliver_task = self.huey.task(name="motcua.deliver")(self.deliver)
        self.deliver_tick = self.huey.periodic_task(_always, name="motcua.deliver_tick")(self.deliver_periodic)
        self._scheduled: dict[int, float] = {}  # wake-up instants (epoch seconds) already queued
        self.wakeups_size = 10_000  # at most this many remembered (docs/performance.md, "Memory")
        self._lock = threading.Lock()
        self._delivery: Delivery | None = None
        self._deliver_slots: set[int] = set()
        self._queue_away_until = 0.0
        self.sweeps = 0
        self.last_sweep = _time.monotonic()
        self._watch: CacheWatch | None = None

    # -- lazily built collaborators ----------------------------------------------------------------
    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database.from_settings(self.settings)
        return self._db

    @property
    def service(self):
        if self._service is None:
            from .dossiers import DossierService

            self._service = DossierService(self.db, self.settings)
        return self._service

    @property
    def delivery(self) -> Delivery:
        """The outbox's delivery: the configured senders, or `sender` for every channel when one is given."""
        if self._delivery is None:
            if self._sender is not None:
                senders = {c: self._sender for c in build_senders(self.settings.channels, self.settings.var_dir)}
            else:
                senders = build_senders(self.settings.channels, self.settings.var_dir)
            self._delivery = Delivery(self.db, self.settings.channels, senders)
        return self._delivery

    # -- the work ------------------------------------------------------------------------------------
    def fire_all(self, now: datetime | None = None) -> SweepResult:
        """`fire_due` in rounds until nothing is due or the time budget is spent."""
        total = SweepResult()
        deadline = _time.monotonic() + self.budget_seconds
        while True:
            r = fire_due(self.db, self.service, now=now, limit=SWEEP_LIMIT)
            total.add(r)
            if r.candidates < SWEEP_LIMIT or _time.monotonic() > deadline:
                return total

    def sweep(self) -> dict:
        """The periodic task: fire what is due (the messages it writes are sent by `motcua.deliver`)."""
        if self._watch is None:
            self._watch = CacheWatch(self.db, {"calendar": self.service.invalidate_calendar}, 0.0)
        self._watch.check()  # an administrator's calendar change, made in an API process, counts here too
        r = self.fire_all()
        calls = connectors.run_due(self.service)  # service tasks' HTTP calls, outside any step's transaction
        try:  # the board's counters: the deltas summed, the past folded (engine/boardcounts.py)
            boardcounts.fold(self.db)
        except Exception:  # the timers above matter more; the next sweep folds what this one did not
            log.exception("sweep: folding the board counters failed")
        try:  # the files of documents removed before intake (engine/attachments.py)
            attachments.collect_removed(self.db, self.settings)
        except Exception:
            log.exception("sweep: collecting removed documents' files failed")
        self.sweeps += 1
        self.last_sweep = _time.monotonic()
        if r.dossiers or r.failures:
            log.info(
                "sweep: %s dossiers, %s timers, %s reminders, %s overdue, %s failures in %.3f s",
                r.dossiers,
                r.timers,
                r.reminders,
                r.overdue,
                r.failures,
                r.seconds,
            )
        return {
            "dossiers": r.dossiers,
            "timers": r.timers,
            "reminders": r.reminders,
            "overdue": r.overdue,
            "failures": r.failures,
            "connector_calls": calls["done"],
            "connector_incidents": calls["incidents"],
        }

    def deliver(self, budget_seconds: float | None = None) -> dict:
        """`motcua.deliver`: drain every channel with due messages, each in its own thread."""
        budget = budget_seconds if budget_seconds is not None else self.budget_seconds
        results = self.delivery.drain(budget)
        out = {c: r.as_dict() for c, r in results.items()}
        if any(r.sent or r.failed or r.dead for r in results.values()):
            log.info("deliver: %s", out)
        return out

    def deliver_periodic(self) -> dict:
        """`motcua.deliver_tick`: the scheduled period reports, then the same as `motcua.deliver`."""
        from .channels.periodic import enqueue_due_reports

        try:
            enqueue_due_reports(self.db, self.settings)
        except Exception:  # a report that cannot be built is retried at the next tick
            log.exception("period report not queued")
        return self.deliver()

    def enqueue_delivery(self) -> bool:
        """Schedule `motcua.deliver` at the next whole second, once per second per process: a burst of
        commits costs one task, and a commit just after a delivery started is picked up by the next one."""
        slot = math.ceil(_time.time() + 0.001)
        with self._lock:
            if slot in self._deliver_slots or _time.monotonic() < self._queue_away_until:
                return False
            if len(self._deliver_slots) > 1000:
                self._deliver_slots = {k for k in self._deliver_slots if k >= slot}
            self._deliver_slots.add(slot)
        try:
            self.deliver_task.schedule(eta=datetime.fromtimestamp(slot, UTC))
        except Exception:  # the queue is down: the periodic tick still drains the outbox
            with self._lock:
                self._deliver_slots.discard(slot)
            self._queue_away()
            return False
        return True

    def _queue_away(self) -> None:
        """The queue did not answer: say so once, and do not try again for `QUEUE_AWAY_SECONDS`."""
        with self._lock:
            now = _time.monotonic()
            first = now >= self._queue_away_until
            self._queue_away_until = now + QUEUE_AWAY_SECONDS
        if first:
            log.warning("the task queue does not answer; the database sweep covers until it is back")

    def queue_reachable(self) -> bool:
        """Does the task queue answer now? (one cheap round trip)"""
        try:
            self.huey.storage.queue_size()
            return True
        except Exception:
            return False

    def wake(self) -> dict:
        """The scheduled wake-up: the same as a sweep; the database decides what is due."""
        return self.sweep()

    # -- wake-ups ------------------------------------------------------------------------------------
    def schedule_wakeup(self, when: datetime) -> bool:
        """Enqueue `motcua.wake` at `when` (rounded up to the second, at least 1 s ahead). False if known."""
        if when is None:
            return False
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        now = utcnow()
        eta = max(when, now + timedelta(seconds=1))
        key = math.ceil(eta.timestamp())
        with self._lock:
            if key in self._scheduled or _time.monotonic() < self._queue_away_until:
                return False
            if len(self._scheduled) >= self.wakeups_size:
                # Forget the instants passed, then all but the soonest half: timers days ahead never pass
                # soon enough, and the API process schedules one per step. A forgotten instant costs at
                # most a second wake-up at that second, which finds nothing left to do.
                cutoff = now.timestamp()
                kept = sorted(k for k in self._scheduled if k > cutoff)[: self.wakeups_size // 2]
                self._scheduled = {k: self._scheduled[k] for k in kept}
            self._scheduled[key] = now.timestamp()
        try:
            self.wake_task.schedule(eta=datetime.fromtimestamp(key, UTC))
        except Exception:  # the queue is down: the periodic sweep will still find the timer
            with self._lock:
                self._scheduled.pop(key, None)
            self._queue_away()
            return False
        return True

    def install_wakeups(self, db: Database | None = None) -> None:
        """Schedule a wake-up for every `next_timer_at` a committed transaction on `db` writes."""
        install_wakeups(db or self.db, self.schedule_wakeup, self.enqueue_delivery)


def _written_timers(clause, multiparams, params) -> list[datetime]:
    found = []
    rows = []
    if isinstance(multiparams, (list, tuple)):
        for m in multiparams:
            if isinstance(m, dict):
                rows.append(m)
            elif isinstance(m, (list, tuple)):
                rows.extend(x for x in m if isinstance(x, dict))
    if isinstance(params, dict):
        rows.append(params)
    for p in rows:
        v = p.get("next_timer_at")
        if isinstance(v, datetime):
            found.append(v)
    inline = getattr(clause, "_values", None)
    if inline:
        for k, v in inline.items():
            if getattr(k, "key", k) == "next_timer_at":
                v = getattr(v, "value", v)
                if isinstance(v, datetime):
                    found.append(v)
    return found


def install_wakeups(db: Database, schedule, deliver=None) -> None:
    """Call `schedule(instant)` after each commit on `db` that wrote a dossier's `next_timer_at`, and
    `deliver()` after each commit that wrote outbox rows."""
    engine = db.write_engine
    if engine.__dict__.get("_motcua_wakeups"):
        return
    engine.__dict__["_motcua_wakeups"] = True

    @event.listens_for(engine, "before_execute")
    def _collect(conn, clause, multiparams, params, execution_options):
        table = getattr(clause, "table", None)
        if isinstance(clause, (Insert, Update)) and table is _DOSSIERS:
            found = _written_timers(clause, multiparams, params)
            if found:
                conn.info.setdefault(_PENDING, []).extend(found)
        elif deliver is not None and isinstance(clause, Insert) and table is _NOTIFICATIONS:
            conn.info[_OUTBOX] = True

    @event.listens_for(engine, "commit")
    def _commit(conn):
        if conn.info.pop(_OUTBOX, None):
            try:
                deliver()
            except Exception:
                log.exception("delivery not enqueued")
        pending = conn.info.pop(_PENDING, None)
        for when in sorted(set(pending or ())):
            try:
                schedule(when)
            except Exception:
                log.exception("wake-up at %s not scheduled", when)

    @event.listens_for(engine, "rollback")
    def _rollback(conn):
        if conn.invalidated:  # the database cut the connection: its info went with it (a new one comes empty)
            return
        conn.info.pop(_PENDING, None)
        conn.info.pop(_OUTBOX, None)


# ---------------------------------------------------------------------------------------------------
# The consumer (`motcua worker`)


def consumer_class(sweep_seconds: int) -> type[Consumer]:
    """A huey Consumer whose scheduler runs periodic tasks every `sweep_seconds` instead of every 60 s."""
    period = max(1, int(sweep_seconds))

    class _Scheduler(Scheduler):
        periodic_task_seconds = period

    class _Consumer(Consumer):
        scheduler_class = _Scheduler

    return _Consumer


def make_consumer(worker: Worker, workers: int = 4, **kw) -> Consumer:
    cls = consumer_class(worker.settings.sweep_seconds)
    return cls(
        worker.huey,
        workers=workers,
        worker_type="thread",
        periodic=True,
        scheduler_interval=1,
        check_worker_health=True,
        **kw,
    )


class Keepalive(threading.Thread):
    """Beside the consumer: the worker's heartbeat row every `period` seconds (engine/ops.py), and the
    database sweep run directly when the task queue does not answer (Redis away) or no sweep ran here for
    four periods, so that timers fire without the queue (docs/operations.md, "When Redis is away"); and the
    process's freed C heap given back every `MOTCUA_MALLOC_TRIM_SECONDS` (engine/memory.py)."""

    def __init__(self, worker: Worker, period: float | None = None):
        super().__init__(name="motcua-keepalive", daemon=True)
        self.worker = worker
        self.period = period if period is not None else min(10.0, float(worker.settings.sweep_seconds))
        self.stop = threading.Event()
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.id = f"{self.host}:{self.pid}"
        self.started_at = utcnow()
        self.trim = memory.Periodic()  # the freed C heap back to the system (engine/memory.py)

    def beat(self) -> None:
        from .ops import beat

        beat(self.worker.db, self.id, self.host, self.pid, self.started_at, self.worker.sweeps)

    def tick(self) -> None:
        try:
            self.beat()
        except Exception:  # the database is away: the next tick tries again
            log.warning("heartbeat not written", exc_info=True)
        stale = _time.monotonic() - self.worker.last_sweep > 4 * self.worker.settings.sweep_seconds
        if stale or (self.worker.settings.redis_url and not self.worker.queue_reachable()):
            if _time.monotonic() - self.worker.last_sweep >= self.worker.settings.sweep_seconds:
                try:
                    self.worker.sweep()
                    self.worker.deliver_periodic()
                except Exception:
                    log.exception("direct database sweep failed")
        self.trim.maybe()

    def run(self) -> None:
        self.tick()
        while not self.stop.wait(self.period):
            self.tick()


def run_consumer(settings: Settings, workers: int = 4) -> None:
    """`motcua worker`: the huey consumer (4 threads), sweeping every `settings.sweep_seconds`, with its
    heartbeat and the direct database sweep beside it (`Keepalive`)."""
    from . import logs

    var = Path(settings.var_dir)
    var.mkdir(parents=True, exist_ok=True)
    logs.configure(file=str(var / "worker.log"))
    worker = Worker(settings)
    worker.install_wakeups()
    backend = "Redis" if settings.redis_url else f"SQLite {var / 'huey.db'}"
    log.info("motcua worker: huey on %s, %s threads, sweep every %s s", backend, workers, settings.sweep_seconds)
    keepalive = Keepalive(worker)
    keepalive.start()
    try:
        make_consumer(worker, workers=workers).run()
    finally:
        keepalive.stop.set()
