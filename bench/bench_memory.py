"""Memory of an API process after many dossiers (issue 16: under 300 MB RSS after 100,000 dossiers).

Starts `motcua serve` as `make run` starts it (`--server waitress`: the application in the `motcua serve`
process itself, whose RSS is read and which --trace snapshots on SIGUSR1 — under gunicorn, make run's
server on Linux, the application runs in a forked process and SIGUSR1 is the arbiter's; its default threads,
the worker it starts beside itself; bench/bench_api.py's `prepare` and `start_make_run`) on SQLite (`make run`'s own database, demo data
and bpmn/ loaded) or, with `--url`, on a PostgreSQL database of its own (its public schema is emptied first),
and drives N dossiers of bench/four_steps.bpmn through the HTTP API from `--clients` threads, each on its own
keep-alive connection: POST /dossiers and POST /tasks/{id}/complete for the 4 steps, both with an
`Idempotency-Key` (records kept 24 h in the database), every 10th dossier read back (GET /dossiers/{code}),
every 100th an unknown path (a 404 whose metrics label must stay the one "unmatched" label) and a fresh login
(a new token for the verified-token and actor caches). The clients sign in as different users (the actor
cache), the access log is on (logs).

What grows with dossiers in the server, and what bounds it: the live-workflow cache (`WorkflowCache`, 2,000
workflows) and `TaskRights` (20,000 steps) in engine/dossiers.py; the actor and verified-token caches
(api/auth.py, 10,000 each); SQLAlchemy's compiled-statement cache (500 per engine); the metrics' label sets
(one per route template, method and status: the number of series /metrics exposes is printed, and must not
grow with dossiers); SQLite's page caches (one 64 MB soft heap limit per process, engine/db.py); the
idempotency records live in the database, not in the process.

Every `--every` dossiers it samples the VmRSS of the API process (the serve process under waitress, the
largest gunicorn worker under gunicorn, `memory`) and, apart, the sum of the others under it (the worker
and any expression sandbox), and prints a table and the final figure against the
goal, with the API process's highest RSS at any moment (the kernel's VmHWM: a sign-in's password check
between two samples counts there). `--trace`: the server runs under tracemalloc (bench only, slower): the 25 places whose allocations grew
most between the first sample (after `--every` dossiers) and the end are printed.

    .venv/bin/python bench/bench_memory.py [-n 100000] [--clients 4] [--every 1000] [--url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import secrets
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_api import AGENCY, PASSWORD, STEP_DATA, USER, Client, prepare, start_make_run  # noqa: E402
from bench_scale import rss_mb  # noqa: E402

from tests.channels_support import descendants, stop  # noqa: E402

GOAL_MB = 300
SERIES = re.compile(r"^motcua_http_request_duration_seconds_count\{", re.M)


def memory(pid: int, field: str = "VmRSS") -> tuple[float, float, int]:
    """(the largest API process's RSS, the sum of the other processes' under `motcua serve`, how many others);
    `field="VmHWM"`: the highest RSS each process has had (the kernel's peak, between two samples too).

    An API process runs `motcua serve`'s own command line: the serve process itself under waitress, the
    gunicorn arbiter and its forked workers under gunicorn (the arbiter holds no request). The others are
    the huey worker and any expression sandbox."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        own = f.read()
    api, others, n = rss_mb(pid, field), 0.0, 0
    for c in descendants(pid):
        try:
            with open(f"/proc/{c}/cmdline", "rb") as f:
                same = f.read() == own
            mb = rss_mb(c, field)
        except OSError:
            continue
        if mb != mb:  # a zombie has no VmRSS
            continue
        if same:
            api = max(api, mb)
        else:
            others, n = others + mb, n + 1
    return api, others, n


class Driver:
    """`clients` threads sharing a count of dossiers to drive; each its own user and keep-alive connection."""

    def __init__(self, port: int, n: int, clients: int):
        self.port, self.n, self.clients = port, n, clients
        self.started = self.done = 0
        self.lock = threading.Lock()
        self.errors: list[str] = []
        self.run_id = secrets.token_hex(4)
        self.stop = False  # set by the main thread: no new dossier (time limit, Ctrl-C)

    def _next(self) -> int | None:
        with self.lock:
            if self.started >= self.n or self.errors or self.stop:
                return None
            self.started += 1
            return self.started

    def _client(self, user: str) -> Client:
        c = Client(self.port)
        status, body = c.post("/api/v1/auth/token", {"username": user, "password": PASSWORD})
        assert status == 200, body
        c.headers["Authorization"] = f"Bearer {body['access_token']}"
        return c

    def _get(self, c: Client, path: str) -> int:
        c.conn.request("GET", path, headers=c.headers)
        resp = c.conn.getresponse()
        resp.read()
        return resp.status

    def _post(self, c: Client, path: str, body: dict, key: str) -> tuple[int, dict]:
        c.headers["Idempotency-Key"] = key
        try:
            return c.post(path, body)
        finally:
            del c.headers["Idempotency-Key"]

    def one(self, c: Client, i: int) -> None:
        key = f"{self.run_id}-{i}"
        status, d = self._post(
            c,
            "/api/v1/dossiers",
            {"procedure_code": "9.000001", "applicant": {"name": f"Nguyễn Văn {i}"}, "channel": 1},
            key,
        )
        assert status == 201, (status, d)
        code = d["code"]
        step = 0
        while d["tasks"]:
            step += 1
            status, d = self._post(
                c, f"/api/v1/tasks/{d['tasks'][0]['id']}/complete", {"data": STEP_DATA}, f"{key}-{step}"
            )
            assert status == 200, (status, d)
        assert d["status"] == "returned", d["status"]
        if i % 10 == 0:
            assert self._get(c, f"/api/v1/dossiers/{code}") == 200
        if i % 100 == 0:
            assert self._get(c, f"/no-such-page/{code}") == 404

    def worker(self, user: str) -> None:
        try:
            c = self._client(user)
            while (i := self._next()) is not None:
                if i % 100 == 0:
                    c.conn.close()
                    c = self._client(user)  # a new token: the verified-token cache sees one more
                self.one(c, i)
                with self.lock:
                    self.done += 1
        except Exception as exc:  # reported by the main thread, which stops the run
            with self.lock:
                self.errors.append(f"{user}: {type(exc).__name__}: {str(exc)[:500]}")

    def start(self, users: list[str]) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.worker, args=(u,), daemon=True) for u in users]
        for t in threads:
            t.start()
        return threads


def series(port: int) -> int:
    """The number of (endpoint, method) latency series the process's /metrics exposes."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    return len(SERIES.findall(text))


def row(r: tuple) -> str:
    done, elapsed, rss, kids, nkids, nseries, load = r
    return f"{done:>9,} {elapsed / 60:>8.1f} {rss:>7.1f} MB {kids:>7.1f} MB ({nkids}) {nseries:>15} {load:>5.1f}"


def bar(done: int, n: int, rss: float, rate: float, width: int = 30) -> str:
    filled = int(width * done / n)
    eta = (n - done) / rate / 60 if rate > 0 else float("nan")
    return (
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{n:,} dossiers  server {rss:6.1f} MB"
        f"  {rate:5.1f} dossiers/s  ETA {eta:4.0f} min "
    )


def add_users(env: dict, names: list[str]) -> None:
    """Clients beyond the first sign in as users of their own (the actor cache holds one entry per user)."""
    from engine.auth import add_user
    from engine.db import Database

    db = Database(env["DATABASE_URL"]) if env.get("DATABASE_URL") else None
    if db is None:
        db = Database(f"sqlite:///{Path(env['MOTCUA_VAR']) / 'motcua.db'}")
    with db.uow() as s:
        for name in names:
            add_user(s, name, PASSWORD, ["receiver", "specialist"], AGENCY, name)
    db.dispose()


def traced_serve() -> None:
    """Child process (--trace): `motcua serve` under tracemalloc; SIGUSR1 writes a snapshot to MOTCUA_BENCH_SNAP."""
    import tracemalloc

    tracemalloc.start(1)
    count = [0]

    def snap(*_):
        count[0] += 1
        tracemalloc.take_snapshot().dump(f"{os.environ['MOTCUA_BENCH_SNAP']}.{count[0]}")

    signal.signal(signal.SIGUSR1, snap)
    from cli.main import main

    main(["serve", *sys.argv[2:]])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=100_000, help="dossiers to drive (default 100,000)")
    ap.add_argument("--clients", type=int, default=4, help="client threads, one connection each (default 4)")
    ap.add_argument("--every", type=int, default=0, help="sample every N dossiers (default n/50)")
    ap.add_argument("--url", help="a PostgreSQL database of its own (its public schema is emptied)")
    ap.add_argument("--trace", action="store_true", help="tracemalloc in the server: what grew, by line")
    ap.add_argument("--minutes", type=float, help="stop starting dossiers after this long (a partial run, said so)")
    args = ap.parse_args()
    every = args.every or max(1, args.n // 50)
    tmp = Path(tempfile.mkdtemp(prefix="motcua-bench-memory-"))
    env = prepare(tmp, url=args.url) if args.url else prepare(tmp, make_run=True)
    env["MOTCUA_TOKEN_TTL"] = str(7 * 86400)  # the run may outlast the default hour
    users = [USER] + [f"{USER}-{k}" for k in range(1, args.clients)]
    add_users(env, users[1:])
    argv = None
    if args.trace:
        env["MOTCUA_BENCH_SNAP"] = str(tmp / "snap")
        argv = [sys.executable, str(Path(__file__).resolve()), "--traced-serve", "--server", "waitress"]
    server, port = start_make_run(env, argv, server_name="waitress")
    db = args.url.rsplit("@", 1)[-1] if args.url else "SQLite (make run's var/motcua.db, demo data and bpmn/)"
    print(
        f"motcua serve ({'tracemalloc, ' if args.trace else ''}make run's server, threads and worker) on {db}; "
        f"{args.n:,} dossiers x (create + 4 completions, Idempotency-Key), {args.clients} keep-alive clients; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start",
        flush=True,
    )
    driver = Driver(port, args.n, args.clients)
    rows = [(0, 0.0, *memory(server.pid), series(port), os.getloadavg()[0])]
    tty = sys.stderr.isatty()
    t0 = time.monotonic()
    threads = driver.start(users)
    next_sample, snaps = every, 0
    header = f"{'dossiers':>9} {'minutes':>8} {'API RSS':>10} {'others RSS':>13} {'latency series':>15} {'load':>5}"
    print(header, flush=True)
    print(row(rows[0]), flush=True)
    try:
        while any(t.is_alive() for t in threads):
            try:
                time.sleep(0.5)
            except KeyboardInterrupt:
                driver.stop = True
            if driver.errors:
                break
            if args.minutes and time.monotonic() - t0 > args.minutes * 60:
                driver.stop = True
            done = driver.done
            elapsed = time.monotonic() - t0
            rss = memory(server.pid)[0]
            if tty:
                print(bar(done, args.n, rss, done / elapsed), end="", file=sys.stderr, flush=True)
            if done >= next_sample:
                rows.append((done, elapsed, *memory(server.pid), series(port), os.getloadavg()[0]))
                print(("\n" if tty else "") + row(rows[-1]), flush=True)
                if args.trace and snaps == 0:  # the first sample: what the warm-up and the start allocated is left out
                    server.send_signal(signal.SIGUSR1)
                    snaps = 1
                while next_sample <= done:
                    next_sample += every
        for t in threads:
            t.join()
        if driver.errors:
            print("\nSTOPPED: " + "\n".join(driver.errors), flush=True)
        done, elapsed = driver.done, time.monotonic() - t0
        if rows[-1][0] != done:
            rows.append((done, elapsed, *memory(server.pid), series(port), os.getloadavg()[0]))
        if args.trace:
            server.send_signal(signal.SIGUSR1)
            snaps += 1
            time.sleep(10)  # the snapshot is written by the server's main thread
        kernel_peak = memory(server.pid, "VmHWM")[0]
    finally:
        stop(server)
    if tty:
        print(file=sys.stderr)
    print(f"{'dossiers':>9} {'minutes':>8} {'serve RSS':>10} {'children RSS':>13} {'latency series':>15} {'load':>5}")
    for done, elapsed, rss, kids, nkids, nseries, load in rows:
        print(f"{done:>9,} {elapsed / 60:>8.1f} {rss:>7.1f} MB {kids:>7.1f} MB ({nkids}) {nseries:>15} {load:>5.1f}")
    final = rows[-1]
    peak = max(r[2] for r in rows)
    ok = final[0] == args.n and peak < GOAL_MB
    partial = "" if final[0] == args.n else f"PARTIAL RUN ({final[0]:,} of {args.n:,} dossiers); "
    verdict = "MISSED" if peak >= GOAL_MB else "met" if ok else "under it so far, not yet measured at the end"
    print(
        f"{partial}after {final[0]:,} dossiers ({final[0] * 5 / final[1]:.0f} writes/s): the API process {final[2]:.1f} MB "
        f"(peak {peak:.1f} MB in the samples, {kernel_peak:.1f} MB at any time (VmHWM); "
        f"{final[2] - rows[1][2] if len(rows) > 1 else 0:+.1f} MB since the first sample) "
        f"against the goal < {GOAL_MB} MB: {verdict}; the other processes {final[3]:.1f} MB; "
        f"load average {os.getloadavg()[0]:.1f} now"
    )
    if args.trace and snaps >= 2:
        import tracemalloc

        first = tracemalloc.Snapshot.load(f"{env['MOTCUA_BENCH_SNAP']}.1")
        last = tracemalloc.Snapshot.load(f"{env['MOTCUA_BENCH_SNAP']}.{snaps}")
        print("What grew in the server between the first and the last sample (tracemalloc, by line):")
        for stat in last.compare_to(first, "lineno")[:25]:
            print(f"  {stat.size_diff / 1024:+10.1f} KiB {stat.count_diff:+8} blocks  {stat.traceback[0]}")
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--traced-serve"]:
        traced_serve()
    else:
        sys.exit(main())
