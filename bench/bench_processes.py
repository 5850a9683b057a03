"""Several API processes: C clients (each in a process of its own, on its own keep-alive connection) drive
4-task dossiers through `motcua serve --no-worker --workers 1` and `motcua serve --no-worker --workers 2`
(gunicorn), both started by this script on free ports of 127.0.0.1 over the same database (PostgreSQL:
`--url`), and compares their completion rates. Rounds alternate between the two servers, so each ratio is
taken under the same machine load.

    psql -h 127.0.0.1 -U postgres -c 'create database bench_processes'
    .venv/bin/python bench/bench_processes.py --url postgresql+psycopg://postgres@127.0.0.1:5432/bench_processes \\
        [--clients 16] [--dossiers 15] [--rounds 3] [--workers 1,2] [--threads 8] [--client-threads]

Each round: every client drives `--dossiers` dossiers (POST /dossiers, then POST /tasks/{id}/complete for each
of the 4 tasks). Prints, per server: completions per second (all clients together), median and p99 of one
completion, the ratio of the rates to the first server's, and where the CPU went per request (/proc): the API
processes, PostgreSQL's backends serving them, and the clients. From those three it prints the ceiling of the
ratio that this machine's CPUs allow: k processes can complete at most k / API requests per CPU-second, and
all of them together at most CPUs / (API + PostgreSQL + clients) — on 2 CPUs a second process cannot double
the rate unless the API's share of the CPU per request is far above the database's and the clients'.

The clients run in processes (`--client-threads`: threads of this script, as before): 16 threads in one
interpreter take turns on its lock, which adds their waits to the latencies measured.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_api import BPMN, PASSWORD, USER, Client, drive, free_port, p99, tree_cpu  # noqa: E402

MOTCUA = str(Path(sys.executable).with_name("motcua"))


def prepare(url: str, var: Path) -> dict:
    """Migrations, bench/four_steps.bpmn and the bench user in the database at `url` (kept if there)."""
    import secrets

    from sqlalchemy import select

    from engine.auth import add_user
    from engine.db import Database
    from engine.models import User
    from engine.procedures import deploy_bytes

    env = {
        **os.environ,
        "DATABASE_URL": url,
        "MOTCUA_VAR": str(var),
        "MOTCUA_SECRET_KEY": secrets.token_hex(32),
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "MOTCUA_ACCESS_LOG": "0",
    }
    subprocess.run([MOTCUA, "db", "upgrade"], env=env, cwd=str(ROOT), check=True, capture_output=True)
    db = Database(url)
    deploy_bytes(db, BPMN.read_bytes(), BPMN.name)
    with db.uow() as s:
        if s.scalar(select(User.id).where(User.username == USER)) is None:
            add_user(s, USER, PASSWORD, ["receiver", "specialist"], "000.31.14.H56", "Bench")
    db.dispose()
    return env


def start(env: dict, workers: int, threads: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server = subprocess.Popen(
        [MOTCUA, "serve", "--no-worker", "--workers", str(workers), "--threads", str(threads), "--port", str(port)],
        env=env,
        cwd=str(ROOT),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                if workers == 1 or len(_children(server.pid)) >= workers:
                    time.sleep(1.0)  # the other processes finish importing
                    return server, port
        except OSError:
            pass
        time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"motcua serve --workers {workers} did not start")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


class Backends:
    """CPU seconds used so far by PostgreSQL's backends connected to the benchmark's database (/proc: the
    server runs on this machine), this script's own connection excepted."""

    def __init__(self, url: str):
        import psycopg

        self.conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)

    def cpu(self) -> float:
        pids = [
            r[0]
            for r in self.conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
        return sum(tree_cpu(p) for p in pids)

    def close(self) -> None:
        self.conn.close()


def _client(port: int, headers: dict, dossiers: int, barrier, out) -> None:
    """One client: waits for the others, drives its dossiers, sends back (latencies, its CPU seconds)."""
    try:
        c = Client(port)
        c.headers = dict(headers)
        barrier.wait()
        t = os.times()
        lat = drive(c, dossiers)[1]
        t2 = os.times()
        out.put((lat, t2.user + t2.system - t.user - t.system, None))
    except BaseException as exc:  # reported by the parent
        out.put(([], 0.0, repr(exc)))


def round_on(
    port: int, clients: int, dossiers: int, pid: int, backends: Backends | None = None, threads: bool = False
) -> tuple[float, list[float], dict[str, float]]:
    """All clients at once; returns (completions per second, completion latencies, CPU seconds per request of
    the API processes, of PostgreSQL's backends and of the clients)."""
    first = Client(port)
    first.login()  # one sign-in (argon2 is slow by design); every client sends its token
    requests = clients * dossiers * 5
    if threads:
        out: queue.Queue = queue.Queue()
        barrier: threading.Barrier = threading.Barrier(clients + 1)
        workers: list = [
            threading.Thread(target=_client, args=(port, first.headers, dossiers, barrier, out)) for _ in range(clients)
        ]
    else:
        ctx = multiprocessing.get_context("fork")
        out = ctx.Queue()
        barrier = ctx.Barrier(clients + 1)
        workers = [
            ctx.Process(target=_client, args=(port, first.headers, dossiers, barrier, out)) for _ in range(clients)
        ]
    for w in workers:
        w.start()
    c0, b0 = tree_cpu(pid), backends.cpu() if backends else 0.0
    barrier.wait()
    t0 = time.perf_counter()
    results = [out.get() for _ in workers]
    elapsed = time.perf_counter() - t0
    cpu = tree_cpu(pid) - c0
    db_cpu = backends.cpu() - b0 if backends else 0.0
    for w in workers:
        w.join()
    errors = [e for _, _, e in results if e]
    if errors:
        raise RuntimeError(errors[0])
    flat = [x for lat, _, _ in results for x in lat]
    client_cpu = sum(c for _, c, _ in results)
    return (
        len(flat) / elapsed,
        flat,
        {"api": cpu / requests, "db": db_cpu / requests, "clients": client_cpu / requests},
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="a database of its own (PostgreSQL)")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--dossiers", type=int, default=15, help="per client and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", default="1,2", help="API processes of each server, compared with the first")
    ap.add_argument("--threads", type=int, default=8, help="threads per API process (motcua serve --threads)")
    ap.add_argument("--client-threads", action="store_true", help="clients in threads of this script")
    args = ap.parse_args()
    import tempfile

    var = Path(tempfile.mkdtemp(prefix="motcua-bench-processes-"))
    env = prepare(args.url, var)
    kinds = [int(x) for x in args.workers.split(",")]
    servers = {k: start({**env, "MOTCUA_VAR": str(var / f"w{k}")}, k, args.threads) for k in kinds}
    backends = Backends(args.url)
    rates: dict[int, list[float]] = {k: [] for k in kinds}
    lats: dict[int, list[float]] = {k: [] for k in kinds}
    cpus: dict[int, dict[str, list[float]]] = {k: {"api": [], "db": [], "clients": []} for k in kinds}
    ratios: dict[int, list[float]] = {k: [] for k in kinds}
    loads: list[float] = []
    try:
        for server, port in servers.values():  # warm-up: each process's caches and connections
            round_on(port, args.clients, 2, server.pid, threads=args.client_threads)
        for r in range(args.rounds):
            order = kinds if r % 2 == 0 else kinds[::-1]
            got = {}
            for k in order:
                server, port = servers[k]
                rate, lat, cpu = round_on(port, args.clients, args.dossiers, server.pid, backends, args.client_threads)
                got[k] = rate
                rates[k].append(rate), lats[k].extend(lat)
                for part, v in cpu.items():
                    cpus[k][part].append(v)
                loads.append(os.getloadavg()[0])
            for k in kinds:
                ratios[k].append(got[k] / got[kinds[0]])
    finally:
        backends.close()
        for server, _ in servers.values():
            server.terminate()
        for server, _ in servers.values():
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
    med = statistics.median
    ncpu = os.cpu_count() or 1
    print(
        f"{args.clients} clients ({'threads' if args.client_threads else 'processes'}, one keep-alive connection "
        f"each), {args.dossiers} dossiers per client and round, {args.rounds} rounds alternating; {args.threads} "
        f"threads per API process; database {args.url.split('@')[-1]}; {ncpu} CPUs"
    )
    ceilings = {}
    for k in kinds:
        api, db, cl = (med(cpus[k][part]) for part in ("api", "db", "clients"))
        ceilings[k] = min(k / api, ncpu / (api + db + cl))
        print(
            f"motcua serve --workers {k}: {med(rates[k]):7.0f} completions/s (rounds: "
            f"{', '.join(f'{x:.0f}' for x in rates[k])}); completion median {med(lats[k]) * 1000:.1f} ms, "
            f"p99 {p99(lats[k]) * 1000:.1f} ms; ratio to --workers {kinds[0]}: {med(ratios[k]):.2f}x "
            f"(min {min(ratios[k]):.2f}, max {max(ratios[k]):.2f})\n"
            f"    CPU per request: API {api * 1000:.2f} ms, PostgreSQL {db * 1000:.2f} ms, clients {cl * 1000:.2f} ms; "
            f"CPU-bound ceiling {ceilings[k]:.0f} completions/s"
        )
    print(
        "ceiling of the ratios on these CPUs (were the machine otherwise idle): "
        + ", ".join(f"--workers {k} {ceilings[k] / ceilings[kinds[0]]:.2f}x" for k in kinds)
    )
    print(f"load average during the rounds: {min(loads):.1f}-{max(loads):.1f}")


if __name__ == "__main__":
    main()
