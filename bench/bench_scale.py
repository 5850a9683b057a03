"""Province scale over HTTP on a generated database (docs/performance.md): the overdue board, the periodic
reports, the plans of their queries, and an API process's memory.

    .venv/bin/python bench/generate.py --url URL -n 3000000 --reset     # a database or schema of its own
    .venv/bin/python bench/bench_scale.py --url URL [--runs 100] [--creates 2000]

What is measured, against one `motcua serve --no-worker` process started here on the database:
1. Plans: every statement the board (`engine.monitor.overdue`) and an empty timer sweep (`fire_due`) run is
   captured and EXPLAINed; a sequential scan of dossiers or tasks is reported as MISSED (indexes, never scans).
   The board's counts are also timed in this process from the rows (as before the counters) and from the
   counters (engine/boardcounts.py), interleaved and checked equal: the ratio of the same run.
2. `GET /healthz` p50 (the baseline of this run: the HTTP round trip itself), then
   `GET /api/v1/monitor/overdue` (page of overdue dossiers and steps + counts by agency and procedure, as a
   supervisor) `--runs` times: p50 / p95 and the ratio to the baseline. Target: p95 < 100 ms.
3. `GET /api/v1/reports/summary` for the last full month (target < 1 s) and for the 12 months before it
   (target < 2 s), 3 runs each, JSON.
4. The server's RSS (VmRSS) after start, after the board and reports, and after `--creates` dossiers created
   through `POST /api/v1/dossiers` (each then read once); target < 300 MB.
The users `bench-supervisor` and `bench-receiver` and the procedure bench/four_steps.bpmn are added to the
database if missing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, func, select, text  # noqa: E402

from engine import boardcounts  # noqa: E402
from engine.auth import Actor, add_user  # noqa: E402
from engine.calendar import WorkCalendar  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.dossiers import DossierService  # noqa: E402
from engine.models import BoardCountTotal, Dossier, Procedure, User  # noqa: E402
from engine.monitor import overdue, overdue_counts  # noqa: E402
from engine.procedures import deploy_bytes  # noqa: E402
from engine.scheduler import fire_due  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
AGENCY = "000.00.00.H56"
SUPERVISOR = Actor("bench", frozenset({"supervisor"}), AGENCY)


def p95(xs):
    xs = sorted(xs)
    return xs[max(0, int(round(0.95 * len(xs))) - 1)]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory in MB: now (VmRSS), or the highest it has been (VmHWM, the kernel's peak)."""
    m = re.search(rf"{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) / 1024 if m else float("nan")


def cpu_ms(pid: int) -> float:
    """User + system CPU time of a process so far (its share of the machine does not change it)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Http:
    def __init__(self, port: int):
        self.port, self.token = port, None

    def call(self, method: str, path: str, body=None) -> tuple[int, dict | str]:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        c.request(method, path, json.dumps(body) if body is not None else None, headers)
        r = c.getresponse()
        raw = r.read()
        c.close()
        try:
            return r.status, json.loads(raw or b"null")
        except ValueError:
            return r.status, raw.decode(errors="replace")

    def timed(self, path: str, runs: int) -> list[float]:
        out = []
        for _ in range(runs):
            t0 = time.perf_counter()
            status, body = self.call("GET", path)
            out.append((time.perf_counter() - t0) * 1000)
            assert status == 200, (path, status, str(body)[:300])
        return out


def statements_of(db: Database, fn) -> list[tuple[str, object]]:
    """The SQL statements `fn()` runs, with their parameters."""
    seen: list[tuple[str, object]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", grab)
    try:
        fn()
    finally:
        event.remove(db.engine, "before_cursor_execute", grab)
    return seen


def explain(db: Database, name: str, statements) -> bool:
    """EXPLAIN ANALYZE each statement (in a transaction rolled back): the indexes it uses and the server's
    execution time; False if any reads dossiers or tasks by a sequential scan."""
    ok = True
    with db.engine.connect() as conn:
        for i, (sql, params) in enumerate(statements, 1):
            plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN ANALYZE " + sql, params))
            scans = re.findall(r"Seq Scan on (\w+)", plan)
            big = [t for t in scans if t in ("dossiers", "tasks", "task_roles", "notifications")]
            nodes = sorted(set(re.findall(r"(Index Only Scan|Index Scan) using (\w+)", plan)))
            nodes += sorted(set(re.findall(r"(Bitmap Index Scan) on (\w+)", plan)))
            used = ", ".join(f"{k} {ix}" for k, ix in nodes) or "no index: " + ", ".join(sorted(set(scans)))
            ms = re.search(r"Execution Time: ([\d.]+) ms", plan)
            print(
                f"  {name} #{i}: {'MISSED: seq scan on ' + ', '.join(big) if big else 'OK'}"
                f" server {float(ms.group(1)) if ms else float('nan'):.1f} ms ({used})"
            )
            ok &= not big
        conn.rollback()
    return ok


def board_counts_old_vs_new(db: Database, runs: int) -> None:
    """The board's counts in this process, interleaved: from the rows (`scan=True`, as before the counters)
    and from the counters (engine/boardcounts.py, folded first as the worker does); the same numbers."""
    boardcounts.fold(db)
    old, new = [], []
    for _ in range(runs):
        for scan, into in ((True, old), (False, new)):
            with db.read() as s:
                t0 = time.perf_counter()
                got = overdue_counts(s, SUPERVISOR, scan=scan)
                into.append((time.perf_counter() - t0) * 1000)
                got.pop("now")
                if scan:
                    expected = got
                else:
                    assert got == expected, "the counters and the rows disagree"
    with db.read() as s:
        cells = s.scalar(select(func.count()).select_from(BoardCountTotal))
    print(
        f"  board counts from the rows (before)    p50 {statistics.median(old):7.1f} ms  p95 {p95(old):7.1f} ms\n"
        f"  board counts from the counters (now)   p50 {statistics.median(new):7.1f} ms  p95 {p95(new):7.1f} ms"
        f"  = {statistics.median(new) / statistics.median(old):.2f}x before ({cells:,} counter rows); equal"
    )


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default=os.environ.get("DATABASE_URL"))
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--creates", type=int, default=2000)
    ap.add_argument("--reports", choices=("all", "month", "none"), default="all", help="which reports to time")
    ap.add_argument("--timers", type=int, default=1_000_000, help="waiting timers to have (set on dossiers if fewer)")
    args = ap.parse_args(argv)
    if not (args.url or "").startswith("postgresql"):
        sys.exit("a PostgreSQL URL (--url or DATABASE_URL) of a database made by bench/generate.py")
    db = Database(args.url)
    with db.read() as s:
        n = s.scalar(select(func.count()).select_from(Dossier))
        newest = s.scalar(select(func.max(Dossier.received_at)))
        waiting = s.scalar(select(func.count()).select_from(Dossier).where(Dossier.next_timer_at.is_not(None)))
    if not n:
        sys.exit("no dossiers: run bench/generate.py first")
    load = os.getloadavg()[0]
    print(
        f"{db.engine.url.render_as_string(hide_password=True)}: {n:,} dossiers ({waiting:,} with a timer); "
        f"{os.cpu_count()} CPUs, load average {load:.1f}"
    )
    with db.uow() as s:
        for username, roles in (("bench-supervisor", ["supervisor"]), ("bench-receiver", ["receiver"])):
            if s.scalar(select(User.id).where(User.username == username)) is None:
                add_user(s, username, "bench-password-1", roles, AGENCY, username)
    with db.read() as s:
        deployed = s.scalar(select(Procedure.id).where(Procedure.code == "9.000001"))
    if deployed is None:
        deploy_bytes(db, (ROOT / "bench" / "four_steps.bpmn").read_bytes(), "four_steps.bpmn")

    ok = True
    print("Plans (EXPLAIN of every statement run)")
    cal = WorkCalendar()
    with db.read() as s:
        board = statements_of(db, lambda: overdue(s, SUPERVISOR, lambda _a: cal, per_page=20))
    ok &= explain(db, "overdue board", board)
    board_counts_old_vs_new(db, args.runs)
    tmp = Path(tempfile.mkdtemp(prefix="motcua-bench-scale-"))
    service = DossierService(db, Settings(var_dir=tmp / "var", database_url=args.url))
    if waiting < args.timers:
        # Waiting timers (1 hour to 30 days ahead) on dossiers that have none; nothing is due.
        with db.uow() as s:
            s.execute(
                text(
                    "UPDATE dossiers SET next_timer_at = now() + interval '1 hour' + random() * interval '30 days'"
                    " WHERE id IN (SELECT id FROM dossiers WHERE next_timer_at IS NULL LIMIT :n)"
                ),
                {"n": args.timers - waiting},
            )
        with db.engine.connect() as conn:
            conn.execute(text("ANALYZE dossiers"))
            conn.commit()
        with db.read() as s:
            waiting = s.scalar(select(func.count()).select_from(Dossier).where(Dossier.next_timer_at.is_not(None)))
    sweep = statements_of(db, lambda: fire_due(db, service))
    ok &= explain(db, "timer sweep", sweep)
    t, cpu = [], []
    for _ in range(50):
        t0, c0 = time.perf_counter(), time.process_time()
        r = fire_due(db, service)
        t.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        assert r.candidates == 0, "something is due: the sweep measured here is the empty one"
    verdict = "OK" if statistics.median(t) < 20 else "MISSED"
    print(
        f"  timer sweep, {waiting:,} waiting timers, nothing due: p50 {statistics.median(t):.1f} ms p95 {p95(t):.1f} ms"
        f" max {max(t):.1f} ms (CPU here p50 {statistics.median(cpu):.1f} ms)  target p50 < 20 ms: {verdict}"
    )
    ok &= verdict == "OK"

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOTCUA_", "PROMETHEUS_"))}
    env.update(
        DATABASE_URL=args.url,
        REDIS_URL="",
        MOTCUA_VAR=str(tmp / "var"),
        MOTCUA_SECRET_KEY="s" * 48,
        MOTCUA_ACCESS_LOG="0",
        MOTCUA_LOG_FORMAT="json",
    )
    log = open(tmp / "serve.log", "wb")  # noqa: SIM115 (kept by the process)
    server = subprocess.Popen(
        [str(BIN / "motcua"), "serve", "--no-worker", "--port", str(port), "--threads", "4"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        h = Http(port)
        for _ in range(600):
            try:
                if h.call("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        rss = {"started": rss_mb(server.pid)}
        status, body = h.call(
            "POST", "/api/v1/auth/token", {"username": "bench-supervisor", "password": "bench-password-1"}
        )
        assert status == 200, body
        h.token = body["access_token"]

        print("HTTP (one API process)")
        base = h.timed("/healthz", 50)
        print(f"  GET /healthz (baseline)                  p50 {statistics.median(base):7.1f} ms")
        h.timed("/api/v1/monitor/overdue?per_page=20", 3)  # warm
        c0 = cpu_ms(server.pid)
        b = h.timed("/api/v1/monitor/overdue?per_page=20", args.runs)
        server_cpu = (cpu_ms(server.pid) - c0) / args.runs
        verdict = "OK" if p95(b) < 100 else "MISSED"
        print(
            f"  GET /monitor/overdue (page + counts)     p50 {statistics.median(b):7.1f} ms  p95 {p95(b):7.1f} ms"
            f"  max {max(b):7.1f} ms  = {statistics.median(b) / statistics.median(base):.1f}x baseline;"
            f" server CPU {server_cpu:.1f} ms per request  target p95 < 100 ms: {verdict}"
        )
        ok &= verdict == "OK"
        end = newest.date().replace(day=1) - timedelta(days=1)
        month = (end.replace(day=1), end)
        year = date(end.year - (end.month < 12), end.month % 12 + 1, 1), end
        periods = [("month", month, 1000), ("12 months", year, 2000)][: {"none": 0, "month": 1, "all": 2}[args.reports]]
        for label, (d0, d1), target in periods:
            c0 = cpu_ms(server.pid)
            t = h.timed(f"/api/v1/reports/summary?from={d0}&to={d1}", 3)
            server_cpu = (cpu_ms(server.pid) - c0) / 3
            verdict = "OK" if max(t) < target else "MISSED"
            print(
                f"  GET /reports/summary, {label:<10} {d0}..{d1}  min {min(t) / 1000:6.2f} s  max {max(t) / 1000:6.2f} s"
                f"  (server CPU {server_cpu / 1000:.2f} s)  target < {target / 1000:.0f} s: {verdict}"
            )
            ok &= verdict == "OK"
        rss["after board and reports"] = rss_mb(server.pid)

        status, body = h.call(
            "POST", "/api/v1/auth/token", {"username": "bench-receiver", "password": "bench-password-1"}
        )
        h.token = body["access_token"]
        t0 = time.perf_counter()
        for i in range(args.creates):
            status, d = h.call(
                "POST",
                "/api/v1/dossiers",
                {"procedure_code": "9.000001", "applicant": {"name": f"Bench {i}"}, "channel": 1},
            )
            assert status == 201, (status, str(d)[:300])
            h.call("GET", f"/api/v1/dossiers/{d['code']}")
        took = time.perf_counter() - t0
        rss[f"after {args.creates:,} dossiers created and read"] = rss_mb(server.pid)
        print(f"  {args.creates:,} dossiers created and read in {took:.1f} s ({args.creates / took:.0f}/s)")
        print("Memory of the API process (VmRSS)")
        for k, v in rss.items():
            print(f"  {k:<45} {v:7.1f} MB")
        ok &= max(rss.values()) < 300
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        db.dispose()
    print(f"load average now {os.getloadavg()[0]:.1f}; {'all targets met' if ok else 'some targets MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
