"""Operational figures for /metrics, and the background workers' heartbeats (docs/operations.md, "Metrics").

`figures(session, now)` reads, in a handful of indexed queries, what an operator watches:

* open dossiers by status code (`ix_dossiers_open_due` finds the open rows);
* overdue dossiers and overdue steps, by `engine.domain`'s one definition of overdue, read from the board's
  counters (`engine.boardcounts`; from the partial indexes `ix_dossiers_running_due` and `ix_tasks_ready_due`
  for an instant before the counters' folded hours);
* timer lag: now minus the oldest `next_timer_at` that is already due (`ix_dossiers_next_timer`), 0 when
  nothing is due; a lag that keeps growing means no worker is sweeping;
* the outbox backlog per channel (pending rows: `next_try_at IS NOT NULL`, `ix_notifications_due`) with the
  age of the oldest pending message, and the dead letters per channel;
* the workers' heartbeats (table `worker_heartbeats`): seconds since each worker last beat.

The figures are read at scrape time from the database, so every API process reports the same numbers.
`beat(...)` is what a worker process calls every few seconds.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, false, func, select, update
from sqlalchemy.exc import IntegrityError

from . import boardcounts
from .domain import dossier_overdue_sql, step_overdue_sql
from .models import Dossier, Notification, Task, WorkerHeartbeat, utcnow

FORGET_WORKERS_AFTER = timedelta(days=1)


def figures(session, now: datetime | None = None) -> dict:
    now = now or utcnow()
    D, N = Dossier, Notification
    by_status = {
        int(code): int(n)
        for code, n in session.execute(
            select(D.status_code, func.count()).where(D.finished == false()).group_by(D.status_code)
        )
    }
    rows = boardcounts.board_rows(session, now, now + timedelta(hours=24), None, None)
    if rows is not None:  # the board's counters (engine/boardcounts.py): not a read of every overdue row
        overdue_dossiers = sum(r[2] for r in rows["d"])
        overdue_steps = sum(r[2] for r in rows["t"])
    else:
        overdue_dossiers = session.scalar(select(func.count()).select_from(D).where(dossier_overdue_sql(now))) or 0
        overdue_steps = session.scalar(select(func.count()).select_from(Task).where(step_overdue_sql(now))) or 0
    oldest_due = session.scalar(select(func.min(D.next_timer_at)).where(D.next_timer_at <= now))
    pending = {
        ch: (int(n), oldest)
        for ch, n, oldest in session.execute(
            select(N.channel, func.count(), func.min(N.created_at))
            .where(N.next_try_at.is_not(None))
            .group_by(N.channel)
        )
    }
    dead = {
        ch: int(n)
        for ch, n in session.execute(select(N.channel, func.count()).where(N.dead_at.is_not(None)).group_by(N.channel))
    }
    workers = {
        w.id: {"beat_age": max(0.0, (now - w.beat_at).total_seconds()), "sweeps": w.sweeps, "started_at": w.started_at}
        for w in session.scalars(select(WorkerHeartbeat))
    }
    return {
        "open_by_status": by_status,
        "overdue_dossiers": int(overdue_dossiers),
        "overdue_steps": int(overdue_steps),
        "timer_lag_seconds": max(0.0, (now - oldest_due).total_seconds()) if oldest_due else 0.0,
        "outbox_pending": {ch: n for ch, (n, _o) in pending.items()},
        "outbox_oldest_age_seconds": {
            ch: max(0.0, (now - o).total_seconds()) if o else 0.0 for ch, (_n, o) in pending.items()
        },
        "outbox_dead": dead,
        "workers": workers,
    }


def beat(db, worker_id: str, host: str, pid: int, started_at: datetime, sweeps: int = 0) -> None:
    """Record that the worker `worker_id` is alive now (one short transaction); forget workers silent for a day."""
    now = utcnow()
    for _ in range(2):
        try:
            with db.uow() as s:
                done = s.execute(
                    update(WorkerHeartbeat).where(WorkerHeartbeat.id == worker_id).values(beat_at=now, sweeps=sweeps)
                ).rowcount
                if not done:
                    s.add(
                        WorkerHeartbeat(
                            id=worker_id, host=host[:100], pid=pid, started_at=started_at, beat_at=now, sweeps=sweeps
                        )
                    )
                    s.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < now - FORGET_WORKERS_AFTER))
            return
        except IntegrityError:
            continue


__all__ = ["figures", "beat"]
