"""Several API processes: C clients (each on its own keep-alive connection, in threads of this script) drive
4-task dossiers through `motcua serve --no-worker --workers 1` and `motcua serve --no-worker --workers 2`
(gunicorn), both started by this script on free ports of 127.0.0.1 over the same database (PostgreSQL:
`--url`), and compares their completion rates. Rounds alternate between the two servers, so each ratio is
taken under the same machine load.

    psql -h 127.0.0.1 -U postgres -c 'create database bench_processes'
    .venv/bin/python bench/bench_processes.py --url postgresql+psycopg://postgres@127.0.0.1:5432/bench_processes \\
        [--clients 16] [--dossiers 15] [--rounds 3] [--workers 1,2]

Each round: every client drives `--dossiers` dossiers (POST /dossiers, then POST /tasks/{id}/complete for each
of the 4 tasks). Prints, per server: completions per second (all clients together), median and p99 of one
completion, the API processes' CPU per request (/proc), and the ratio of the rates to the first server's.
"""

from __future__ import annotations

import argparse
import http.client
import os
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


def start(env: dict, workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server = subprocess.Popen(
        [MOTCUA, "serve", "--no-worker", "--workers", str(workers), "--port", str(port)],
        env=env,
        cwd=str(ROOT),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    answered: set[int] = set()
    while time.monotonic() < deadline and server.poll() is None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                answered.add(1)
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


def round_on(port: int, clients: int, dossiers: int, pid: int) -> tuple[float, list[float], float]:
    """All clients at once; returns (completions per second, completion latencies, CPU seconds per request)."""
    first = Client(port)
    first.login()  # one sign-in (argon2 is slow by design); every client sends its token
    conns = [first]
    for _ in range(clients - 1):
        c = Client(port)
        c.headers = dict(first.headers)
        conns.append(c)
    lat: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(clients + 1)

    def run(i: int) -> None:
        try:
            barrier.wait()
            lat[i] = drive(conns[i], dossiers)[1]
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    c0 = tree_cpu(pid)
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    cpu = tree_cpu(pid) - c0
    if errors:
        raise errors[0]
    flat = [x for xs in lat for x in xs]
    return len(flat) / elapsed, flat, cpu / (clients * dossiers * 5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="a database of its own (PostgreSQL)")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--dossiers", type=int, default=15, help="per client and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", default="1,2", help="API processes of each server, compared with the first")
    args = ap.parse_args()
    import tempfile

    var = Path(tempfile.mkdtemp(prefix="motcua-bench-processes-"))
    env = prepare(args.url, var)
    kinds = [int(x) for x in args.workers.split(",")]
    servers = {k: start({**env, "MOTCUA_VAR": str(var / f"w{k}")}, k) for k in kinds}
    rates: dict[int, list[float]] = {k: [] for k in kinds}
    lats: dict[int, list[float]] = {k: [] for k in kinds}
    cpus: dict[int, list[float]] = {k: [] for k in kinds}
    ratios: dict[int, list[float]] = {k: [] for k in kinds}
    try:
        for server, port in servers.values():  # warm-up: each process's caches and connections
            round_on(port, args.clients, 2, server.pid)
        for r in range(args.rounds):
            order = kinds if r % 2 == 0 else kinds[::-1]
            got = {}
            for k in order:
                server, port = servers[k]
                rate, lat, cpu = round_on(port, args.clients, args.dossiers, server.pid)
                got[k] = rate
                rates[k].append(rate), lats[k].extend(lat), cpus[k].append(cpu)
            for k in kinds:
                ratios[k].append(got[k] / got[kinds[0]])
    finally:
        for server, _ in servers.values():
            server.terminate()
        for server, _ in servers.values():
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
    med = statistics.median
    print(
        f"{args.clients} clients (threads, one keep-alive connection each), {args.dossiers} dossiers per client and "
        f"round, {args.rounds} rounds alternating; database {args.url.split('@')[-1]}; {os.cpu_count()} CPUs"
    )
    for k in kinds:
        print(
            f"motcua serve --workers {k}: {med(rates[k]):7.0f} completions/s (rounds: "
            f"{', '.join(f'{x:.0f}' for x in rates[k])}); completion median {med(lats[k]) * 1000:.1f} ms, "
            f"p99 {p99(lats[k]) * 1000:.1f} ms; API CPU per request {med(cpus[k]) * 1000:.2f} ms; "
            f"ratio to --workers {kinds[0]}: {med(ratios[k]):.2f}x (min {min(ratios[k]):.2f}, max {max(ratios[k]):.2f})"
        )
    print(f"load average after the run: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
