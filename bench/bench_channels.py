"""Outbox benchmark: drain N waiting messages (default 100,000: a quarter each SMS, Zalo, e-mail and national
portal) to local gateways, and the API's task-completion latency while it drains, as a ratio to idle.

Processes besides this one, as in production: the API (waitress, bench_api's server), the local gateways
(a threaded HTTP server for SMS, Zalo and the portal; aiosmtpd for e-mail; each in its own process,
tests/channels_support), and the drainer (engine.channels.delivery.Delivery with the senders chosen by the
environment, each channel in its own thread, as `motcua.deliver` runs). The portal's messages are 10 status
updates of each of N/40 dossiers, so its per-dossier order rule is in force. This process drives 4-task
dossiers over HTTP: busy (8 dossiers while the drainer works) and idle (2 dossiers while it is paused, after
its rounds under way were recorded) alternate, so both are measured under the same machine load. It prints
the median and p99 completion latencies and their ratio (goal ≤ 1.2×), each channel's messages per second
(pauses left out), and how long the drainer held SQLite's write lock.

    .venv/bin/python bench/bench_channels.py [N=100000] [CONCURRENCY=8]

BENCH_WORKER_NICE (default 10) is the drainer's nice level. BENCH_DATABASE_URL (a PostgreSQL database of the
bench's own: it is emptied) and BENCH_REDIS_URL run it on PostgreSQL + Redis instead of SQLite; the drainer's
environment (MOTCUA_OUTBOX_WRITE_SHARE, MOTCUA_CHANNEL_…) is passed on.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_api import Client, drive, p99, prepare  # noqa: E402


def gateways(kind: str) -> None:
    """Child process: a local gateway (`http`: SMS, Zalo and the portal; `smtp`: e-mail), each in its own process
    so that neither waits for the other's interpreter; prints its address, then serves until killed."""
    from tests.channels_support import Gateway, SmtpServer

    os.nice(10)  # stands in for remote gateways: it must not compete with the API for this machine's CPU
    print(Gateway().url.rsplit("/", 1)[0] if kind == "http" else SmtpServer().url, flush=True)
    while True:
        time.sleep(3600)


def serve() -> None:
    """Child process: the API (bench_api's server), timing each of its writing transactions: how long its BEGIN
    IMMEDIATE waited for SQLite's write lock, and how long its COMMIT took (a WAL checkpoint, when the commit
    runs one, is in it); written to the file BENCH_API_WRITES on SIGTERM."""
    import bench_api
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    mine, rows = threading.local(), []

    @event.listens_for(Engine, "before_cursor_execute")
    def _asking(conn, cursor, statement, *_):
        if statement.startswith("BEGIN IMMEDIATE"):
            mine.asked = time.perf_counter()

    @event.listens_for(Engine, "after_cursor_execute")
    def _taken(conn, cursor, statement, *_):
        if statement.startswith("BEGIN IMMEDIATE"):
            mine.taken = time.perf_counter()

    @event.listens_for(Engine, "commit")
    def _committing(conn):
        mine.committing = time.perf_counter()

    @event.listens_for(Pool, "checkin")
    def _done(*_):
        asked, taken, committing = (getattr(mine, k, None) for k in ("asked", "taken", "committing"))
        if asked is not None and taken is not None and committing is not None:
            rows.append((time.time(), taken - asked, time.perf_counter() - committing))
        mine.asked = mine.taken = mine.committing = None

    def stop(*_):
        Path(os.environ["BENCH_API_WRITES"]).write_text(json.dumps(rows))
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    bench_api.serve()


def drain() -> None:
    """Child process: drain every channel (each in its own thread); prints each channel's figures."""
    from engine.channels.delivery import Delivery
    from engine.channels.senders import build_senders
    from engine.config import Settings
    from engine.db import Database

    os.nice(int(os.environ.get("BENCH_WORKER_NICE", "10")))  # the worker below the API, as docs/channels.md advises
    settings = Settings.from_env()
    db = Database.from_settings(settings)
    delivery = Delivery(db, settings.channels, build_senders(settings.channels, settings.var_dir))
    # How long the drainer's writes take. On SQLite each is one statement committing itself (Database.statements):
    # the time is that statement's, from SQLAlchemy beginning it to its commit, its wait for the lock included (an
    # over-estimate of the hold). On PostgreSQL, a transaction from BEGIN to its COMMIT being issued. The
    # drainer's WAL checkpoints (a PRAGMA, no write lock) are timed apart.
    from sqlalchemy import event

    writes: list[float] = []
    checkpoints: list[float] = []
    held = threading.local()

    @event.listens_for(db.write_engine, "begin")
    def _taken(conn):
        held.t, held.pragma = time.perf_counter(), False

    @event.listens_for(db.write_engine, "before_cursor_execute")
    def _statement(conn, cursor, statement, *_):
        held.pragma = statement.startswith("PRAGMA wal_checkpoint")

    def _released(conn):
        t = getattr(held, "t", None)
        if t is not None:
            (checkpoints if held.pragma else writes).append(time.perf_counter() - t)
            held.t = None

    for name in ("commit", "rollback"):
        event.listen(db.write_engine, name, _released)

    # Paused by SIGUSR1, resumed by SIGUSR2 (the parent measures the idle baseline in the pauses): a paused
    # drainer starts no new round; once the rounds under way are recorded, it touches the file BENCH_QUIET.
    go, busy_rounds, count = threading.Event(), [0], threading.Lock()
    go.set()
    quiet = Path(os.environ["BENCH_QUIET"])
    paused: list[list[float]] = []

    def settle() -> None:  # the pause (left out of the figures) starts when the rounds under way are recorded
        with count:
            if not go.is_set() and busy_rounds[0] == 0 and not (paused and paused[-1][1] == 0.0):
                paused.append([time.perf_counter(), 0.0])
                quiet.touch()

    def pause(*_):
        go.clear()
        settle()

    def resume(*_):
        quiet.unlink(missing_ok=True)
        if paused and paused[-1][1] == 0.0:
            paused[-1][1] = time.perf_counter()
            turns = delivery._writing
            if hasattr(turns, "stand_still"):  # SQLite: no write time accrues while paused (it would be spent
                turns.stand_still(paused[-1][1] - paused[-1][0])  # in the busy phase, beyond the bound)
        go.set()

    signal.signal(signal.SIGUSR1, pause)
    signal.signal(signal.SIGUSR2, resume)
    claim, record = delivery.claim, delivery.record

    def claim_round(*a, **kw):
        go.wait()
        with count:
            busy_rounds[0] += 1
        groups = claim(*a, **kw)
        if not groups:
            with count:
                busy_rounds[0] -= 1
            settle()
        return groups

    def record_round(*a, **kw):
        try:
            return record(*a, **kw)
        finally:
            with count:
                busy_rounds[0] -= 1
            settle()

    delivery.claim, delivery.record = claim_round, record_round  # type: ignore[method-assign]
    print("ready", flush=True)  # the signals' handlers are in place
    t0 = time.perf_counter()
    results: dict = {}
    runner = threading.Thread(
        target=lambda: results.update(
            delivery.drain(budget_seconds=7200, channels=["sms", "zalo", "email", "national_portal"])
        )
    )
    runner.start()
    while runner.is_alive():  # the main thread stays free for the signal handlers
        runner.join(0.2)
    total = time.perf_counter() - t0

    def active(seconds: float) -> float:  # a channel's seconds less the pauses while it ran
        end = t0 + seconds
        return seconds - sum(max(0.0, min(b or end, end) - max(a, t0)) for a, b in paused)

    # to a file: the figures (thousands of lock timings) would fill the pipe the parent reads only at the end
    Path(os.environ["BENCH_FIGURES"]).write_text(
        json.dumps(
            {c: {"sent": r.sent, "failed": r.failed, "seconds": active(r.seconds)} for c, r in results.items()}
            | {"total": active(total), "writes": sorted(writes), "checkpoints": sorted(checkpoints)}
            | {"paused": getattr(delivery._writing, "paused", 0.0)}
        )
    )


def fill(url: str, n: int) -> None:
    """N waiting messages: N/4 each of SMS, Zalo and e-mail; N/4 portal updates, 10 per dossier."""
    from sqlalchemy import insert

    from engine.channels.config import EMAIL, NATIONAL_PORTAL, SMS, ZALO
    from engine.db import Database
    from engine.models import Dossier, Notification

    db = Database(url)
    now = datetime.now(UTC)
    quarter = n // 4
    dossiers = max(1, quarter // 10)
    base = {"kind": "status", "tries": 0, "created_at": now, "next_try_at": now, "sent_at": None, "dead_at": None}
    with db.uow() as s:
        rows = [
            dict(
                code=f"BENCH-{i:06d}",
                procedure_code="9.000001",
                procedure_version_id=1,
                agency="000.31.14.H56",
                status="received",
                status_code=2,
                channel=1,
                applicant_name="A",
                data={},
                received_at=now,
                due_at=now,
                original_due_at=now,
                deadline_hours=24.0,
                paused_hours=0.0,
                supplement_count=0,
                finished=False,
                created_by="bench",
                updated_at=now,
                version=1,
            )
            for i in range(dossiers)
        ]
        s.execute(insert(Dossier), rows)
    with db.read() as s:
        from sqlalchemy import select

        ids = [i for (i,) in s.execute(select(Dossier.id).where(Dossier.code.like("BENCH-%")).order_by(Dossier.id))]
    zalo = {"template_id": "motcua_status", "template_data": {"ma_ho_so": "X"}}
    batch = []
    for i in range(quarter):
        batch.append({**base, "dossier_id": None, "channel": SMS, "recipient": "0912345678", "body": f"Ho so {i}"})
        batch.append(
            {**base, "dossier_id": None, "channel": ZALO, "recipient": "0912345678", "body": "x", "payload": zalo}
        )
        batch.append(
            {
                **base,
                "dossier_id": None,
                "channel": EMAIL,
                "recipient": "a@example.vn",
                "body": "Hồ sơ",
                "subject": "Hồ sơ",
                "payload": {"html": "<p>Hồ sơ</p>"},
            }
        )
    for k, did in enumerate(ids):
        for seq in range(1, 11):
            batch.append(
                {
                    **base,
                    "dossier_id": did,
                    "channel": NATIONAL_PORTAL,
                    "recipient": f"BENCH-{k:06d}",
                    "sequence": seq,
                    "body": "status",
                    "payload": {
                        "code": f"BENCH-{k:06d}",
                        "status_code": min(seq, 10),
                        "status": "x",
                        "procedure_code": "9.000001",
                        "agency": "000.31.14.H56",
                        "at": now.isoformat(),
                    },
                }
            )
    cols = {c.key for c in Notification.__table__.columns} - {"id"}
    for r in batch:
        for c in cols:
            r.setdefault(c, None)
    with db.uow() as s:
        for i in range(0, len(batch), 5000):
            s.execute(insert(Notification), batch[i : i + 5000])
    db.dispose()
    return len(batch)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    concurrency = sys.argv[2] if len(sys.argv) > 2 else "8"
    tmp = Path(tempfile.mkdtemp(prefix="motcua-bench-channels-"))
    env = prepare(tmp, os.environ.get("BENCH_DATABASE_URL"))
    env["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "")
    where = "SQLite (file, WAL)" if env["DATABASE_URL"].startswith("sqlite") else "PostgreSQL"
    me = str(Path(__file__).resolve())
    gws = [
        subprocess.Popen([sys.executable, me, "--gateways", kind], cwd=str(ROOT), stdout=subprocess.PIPE, text=True)
        for kind in ("http", "smtp")
    ]
    api_writes = tmp / "api-writes.json"
    server = subprocess.Popen(
        [sys.executable, me, "--serve"],
        env={**env, "BENCH_API_WRITES": str(api_writes)},
        cwd=str(ROOT),
        stdout=subprocess.PIPE,
        text=True,
    )
    quiet = tmp / "drainer-quiet"
    try:
        http, smtp = (g.stdout.readline().strip() for g in gws)
        port = int(server.stdout.readline())
        made = fill(env["DATABASE_URL"], n)
        client = Client(port)
        client.login()
        drive(client, 20)  # warm-up
        idle, busy = drive(client, 50)[1], []  # an idle baseline before, then the pauses of the drainer
        denv = {
            **env,
            "MOTCUA_SMS_URL": http + "/sms",
            "MOTCUA_ZALO_URL": http + "/zalo",
            "MOTCUA_ZALO_TOKEN": "t",
            "MOTCUA_PORTAL_URL": http + "/portal",
            "MOTCUA_SMTP_URL": smtp,
            "MOTCUA_CHANNEL_CONCURRENCY": concurrency,
            "BENCH_QUIET": str(quiet),
            "BENCH_FIGURES": str(tmp / "drainer-figures.json"),
        }
        drainer = subprocess.Popen(
            [sys.executable, me, "--drain"], env=denv, cwd=str(ROOT), stdout=subprocess.PIPE, text=True
        )
        assert drainer.stdout.readline().strip() == "ready"
        # Busy and idle alternate under the same machine load: 8 dossiers while the drainer works, then it is
        # paused and, once its rounds under way are recorded, 2 dossiers with nothing draining.
        phases: list[tuple[float, float, bool]] = []  # (start, end, draining)
        while drainer.poll() is None:
            t = time.time()
            busy.extend(drive(client, 8)[1])
            phases.append((t, time.time(), True))
            drainer.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + 30
            while not quiet.exists() and drainer.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            if drainer.poll() is None and quiet.exists():
                t = time.time()
                idle.extend(drive(client, 2)[1])
                phases.append((t, time.time(), False))
            if drainer.poll() is None:
                drainer.send_signal(signal.SIGUSR2)
        figures = json.loads((tmp / "drainer-figures.json").read_text())
    finally:
        for p in (server, *gws):
            p.terminate()
            p.wait(10)
    api = {True: ([], []), False: ([], [])}  # the API's lock waits and commits, while draining and idle
    for at, waited, commit in json.loads(api_writes.read_text()) if api_writes.exists() else []:
        for a, b, draining in phases:
            if a <= at <= b:
                api[draining][0].append(waited)
                api[draining][1].append(commit)
                break
    med = statistics.median
    print(
        f"outbox: {made} waiting messages; drained by one process, each channel in its own thread, "
        f"{concurrency} sending threads per channel; {where}{' + Redis' if env['REDIS_URL'] else ''}; "
        f"gateways on 127.0.0.1; MOTCUA_OUTBOX_WRITE_SHARE={os.environ.get('MOTCUA_OUTBOX_WRITE_SHARE', 'default')}"
    )
    for c in ("sms", "zalo", "email", "national_portal"):
        f = figures[c]
        print(
            f"  {c:16s} {f['sent']:7d} sent, {f['failed']} failed, in {f['seconds']:7.1f} s = "
            f"{f['sent'] / f['seconds']:7.0f} messages/s"
        )
    print(f"  all channels: {made} in {figures['total']:.1f} s = {made / figures['total']:.0f} messages/s")
    print(
        f"task completion over HTTP: idle median {med(idle) * 1000:.2f} ms p99 {p99(idle) * 1000:.2f} ms "
        f"({len(idle)} completions); while draining median {med(busy) * 1000:.2f} ms p99 {p99(busy) * 1000:.2f} ms "
        f"({len(busy)} completions)"
    )
    w = figures["writes"]
    print(
        f"drainer's {'writing statements (each its own transaction, its lock wait included)' if where.startswith('SQLite') else 'writing transactions (BEGIN … COMMIT)'}"
        f": {len(w)} times ({len(w) / figures['total']:.1f}/s), "
        f"median {med(w) * 1000:.1f} ms, p99 {p99(w) * 1000:.1f} ms, max {w[-1] * 1000:.1f} ms, "
        f"{sum(w) / figures['total'] * 100:.0f}% of the time; it waited {figures['paused']:.1f} s for write time"
    )
    c = figures["checkpoints"]
    if c:
        print(
            f"drainer's WAL checkpoints (PASSIVE, no write lock): {len(c)}, median {med(c) * 1000:.1f} ms, "
            f"p99 {p99(c) * 1000:.1f} ms, max {c[-1] * 1000:.1f} ms"
        )
    for draining, (waits, commits) in api.items():
        if len(waits) > 2:
            print(
                f"API's writing transactions {'while draining' if draining else 'idle'}: {len(waits)}; waited for the "
                f"write lock median {med(waits) * 1000:.2f} ms, p99 {p99(waits) * 1000:.2f} ms, max "
                f"{max(waits) * 1000:.1f} ms, > 1 ms: {sum(w > 0.001 for w in waits) / len(waits) * 100:.1f}%; "
                f"commit median {med(commits) * 1000:.2f} ms, p99 {p99(commits) * 1000:.2f} ms, max "
                f"{max(commits) * 1000:.1f} ms"
            )
    print(
        f"ratio while draining / idle: median {med(busy) / med(idle):.2f}x, p99 {p99(busy) / p99(idle):.2f}x "
        f"(goal ≤ 1.2x)"
    )
    print(f"machine load (uptime): {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--gateways"]:
        gateways(sys.argv[2])
    elif sys.argv[1:2] == ["--serve"]:
        serve()
    elif sys.argv[1:2] == ["--drain"]:
        drain()
    else:
        main()
