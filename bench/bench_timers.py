"""Timer sweep benchmark (docs/deadlines.md): 100,000 dossiers waiting, a sweep with nothing due, then 1,000 due.

    .venv/bin/python bench/bench_timers.py                     # SQLite (a fresh file under a temp dir)
    .venv/bin/python bench/bench_timers.py --pg URL            # and PostgreSQL (its tables are dropped first!)
    DATABASE_URL=postgresql+psycopg://… .venv/bin/python bench/bench_timers.py --pg-from-env
    options: --n 100000 --due 1000 --threads 2

What is measured, on each database:
1. 100,000 dossiers are bulk-inserted (Core executemany), each with a real workflow state (one dossier of
   bench/four_steps.bpmn started through the service, its state copied) and a `next_timer_at` between
   1 hour and 30 days ahead.
2. "Nothing due": `fire_due(now)` 50 times - one probe of the `next_timer_at` index, no write lock.
   Target: under 20 ms (median and max are printed).
3. "1,000 due": `next_timer_at` of 1,000 random dossiers is moved into the past (half of them past
   their due time: overdue flag; half 2 working hours before it: reminder); the sweep (`fire_due` in
   rounds of 500, as the worker's periodic task runs it) fires all of them. Target: all within 10 s.
   With --threads 2 the same is done again by two threads at once (a second batch of 1,000).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text, update  # noqa: E402

from engine.auth import Actor  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.dossiers import DossierService  # noqa: E402
from engine.models import Base, Dossier, Event, WorkflowState, utcnow  # noqa: E402
from engine.procedures import deploy_bytes  # noqa: E402
from engine.scheduler import SweepResult, fire_due  # noqa: E402

HERE = Path(__file__).resolve().parent
BPMN = HERE / "four_steps.bpmn"
RECEIVER = Actor("bench", frozenset({"receiver"}), "000.31.14.H56")
BATCH = 5000


def setup(url: str, var: Path, n: int) -> tuple[Database, DossierService]:
    settings = Settings(var_dir=var, database_url=url)
    db = Database.from_settings(settings)
    if not db.is_sqlite:
        Base.metadata.drop_all(db.write_engine)
        with db.write_engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    db.create_all()
    deploy_bytes(db, BPMN.read_bytes(), BPMN.name)
    svc = DossierService(db, settings)
    template = svc.start_dossier(RECEIVER, "9.000001", {"name": "Mẫu"})
    with db.read() as s:
        d = s.scalars(select(Dossier).where(Dossier.code == template["code"])).one()
        blob = s.scalar(select(WorkflowState.state).where(WorkflowState.dossier_id == d.id))
        base = {c.key: getattr(d, c.key) for c in Dossier.__table__.columns if c.key not in ("id", "code")}
        first_id = d.id + 1
    now = utcnow()
    rng = random.Random(4)
    t0 = time.perf_counter()
    dossiers, states = Dossier.__table__, WorkflowState.__table__
    for start in range(0, n, BATCH):
        rows, srows = [], []
        for i in range(start, min(n, start + BATCH)):
            wait = timedelta(seconds=rng.randrange(3600, 30 * 86400))
            rows.append(
                {
                    **base,
                    "id": first_id + i,
                    "code": f"BENCH-{i:07d}",
                    "next_timer_at": now + wait,
                    "due_at": now + wait + timedelta(hours=4),
                    "received_at": now - timedelta(days=1),
                    "reminded_at": None,
                    "overdue_flagged_at": None,
                }
            )
            srows.append({"dossier_id": first_id + i, "state": blob})
        with db.write_engine.begin() as conn:
            conn.execute(dossiers.insert(), rows)
            conn.execute(states.insert(), srows)
    if not db.is_sqlite:
        with db.write_engine.begin() as conn:
            conn.execute(text("ANALYZE dossiers"))
    print(f"  inserted {n:,} waiting dossiers in {time.perf_counter() - t0:.1f} s")
    return db, svc


def nothing_due(db: Database, svc: DossierService, rounds: int = 50) -> list[float]:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        r = fire_due(db, svc)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.candidates == 0, r
    return times


def make_due(db: Database, count: int, seed: int) -> list[int]:
    now = utcnow()
    with db.read() as s:
        ids = list(
            s.scalars(
                select(Dossier.id).where(
                    Dossier.code.like("BENCH-%"), Dossier.reminded_at.is_(None), Dossier.overdue_flagged_at.is_(None)
                )
            )
        )
    chosen = random.Random(seed).sample(ids, count)
    half = len(chosen) // 2
    with db.write_engine.begin() as conn:
        # overdue: due a minute ago
        conn.execute(
            update(Dossier)
            .where(Dossier.id.in_(chosen[:half]))
            .values(next_timer_at=now - timedelta(minutes=1), due_at=now - timedelta(minutes=1))
        )
        # reminder: the reminder instant passed, the due time is days ahead in wall-clock terms is not needed
        conn.execute(
            update(Dossier)
            .where(Dossier.id.in_(chosen[half:]))
            .values(
                next_timer_at=now - timedelta(minutes=1),
                due_at=now + timedelta(hours=2),
                received_at=now - timedelta(days=10),
            )
        )
    return chosen


def sweep_all(db: Database, svc: DossierService) -> SweepResult:
    total = SweepResult()
    while True:
        r = fire_due(db, svc, limit=500)
        total.add(r)
        if r.candidates < 500:
            return total


def run(label: str, url: str, n: int, due: int, threads: int) -> None:
    print(f"== {label}: {url.split('@')[-1] if '@' in url else url}")
    with tempfile.TemporaryDirectory() as tmp:
        db, svc = setup(url, Path(tmp) / "var", n)
        times = nothing_due(db, svc)
        print(
            f"  sweep, nothing due among {n:,}: median {statistics.median(times):.2f} ms, "
            f"max {max(times):.2f} ms  (target < 20 ms)"
        )
        make_due(db, due, 1)
        t0 = time.perf_counter()
        r = sweep_all(db, svc)
        elapsed = time.perf_counter() - t0
        with db.read() as s:
            events = s.scalar(
                select(func.count())
                .select_from(Event)
                .where(Event.action.in_(("deadline.reminder", "deadline.overdue")))
            )
        print(
            f"  sweep, {due:,} due: {r.dossiers:,} fired ({r.reminders} reminders, {r.overdue} overdue) in "
            f"{elapsed:.2f} s, {elapsed / max(1, r.dossiers) * 1000:.2f} ms each  (target < 10 s); "
            f"events written: {events}"
        )
        assert r.dossiers == due and events == due, (r, events)
        if threads > 1:
            make_due(db, due, 2)
            results: list[SweepResult] = []
            t0 = time.perf_counter()
            ths = [threading.Thread(target=lambda: results.append(sweep_all(db, svc))) for _ in range(threads)]
            for t in ths:
                t.start()
            for t in ths:
                t.join()
            elapsed = time.perf_counter() - t0
            fired = sum(x.dossiers for x in results)
            with db.read() as s:
                events = s.scalar(
                    select(func.count())
                    .select_from(Event)
                    .where(Event.action.in_(("deadline.reminder", "deadline.overdue")))
                )
            print(
                f"  sweep, {due:,} due, {threads} threads: {fired:,} fired in {elapsed:.2f} s "
                f"(split {[x.dossiers for x in results]}); events written in all: {events}"
            )
            assert fired == due and events == 2 * due
        times = nothing_due(db, svc, 20)
        print(f"  sweep afterwards, nothing due: median {statistics.median(times):.2f} ms")
        db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--due", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pg", default=None, help="PostgreSQL URL (its tables are dropped and recreated)")
    ap.add_argument("--pg-from-env", action="store_true", help="use DATABASE_URL as the PostgreSQL URL")
    ap.add_argument("--no-sqlite", action="store_true")
    args = ap.parse_args()
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            run("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.n, args.due, args.threads)
    pg = args.pg or (os.environ.get("DATABASE_URL") if args.pg_from_env else None)
    if pg:
        run("PostgreSQL", pg, args.n, args.due, args.threads)
    elif not args.no_sqlite:
        print("(PostgreSQL: pass --pg postgresql+psycopg://… to run it there too)")


if __name__ == "__main__":
    main()
