"""API benchmark: one client on one keep-alive HTTP connection drives 4-task dossiers through the REST API of a
server this script starts itself on a free port of 127.0.0.1 (SQLite in a temporary directory,
bench/four_steps.bpmn deployed, one user with the roles receiver + specialist), and compares the completion
rate with the raw SpiffWorkflow engine (bench/bench_engine.raw_engine) measured in the same run.

Two servers:
- default: `api.create_app()` under waitress with 4 threads, no worker, an empty database;
- `--make-run`: `make run`'s own configuration: `motcua db upgrade`, `motcua demo`, `motcua deploy bpmn/`
  (the demo agencies, accounts and sample procedures), then `motcua serve` as `make run` starts it (its
  default server and threads, and the worker it starts beside itself); `--server=waitress` (or `gunicorn`)
  passes `--server` to it, to compare the two servers under the same load.

Each round: N dossiers over HTTP (POST /dossiers, then POST /tasks/{id}/complete for each of the 4 tasks, the
next task's id taken from the completion's answer), then the raw engine on N dossiers; rounds alternate so
that each ratio is taken under the same machine load. Prints completions per second, median and p99 latency
of one completion (request sent to answer read, as the client sees it), and the ratios.

    .venv/bin/python bench/bench_api.py [N=200] [ROUNDS=3] [--make-run [--server=NAME]]
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_engine import raw_engine  # noqa: E402

BPMN = HERE / "four_steps.bpmn"
USER, PASSWORD, AGENCY = "bench", "bench-password-1", "000.31.14.H56"
STEP_DATA = {"decision": "accept"}


def serve() -> None:
    """Child process: the API on a free port; prints the port, then serves until killed."""
    import waitress

    from api import create_app

    app = create_app()
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4, ident="motcua-bench")
    print(server.effective_port, flush=True)
    server.run()


def prepare(tmp: Path, url: str | None = None, make_run: bool = False) -> dict:
    """A fresh database (SQLite in `tmp`, or the emptied PostgreSQL database `url`) with the procedure and the
    user; the environment of the server process. `make_run`: first what `make run` does before it serves
    (migrations, demo data, the sample procedures), on its own default database (var/motcua.db)."""
    from engine.auth import add_user
    from engine.config import Settings
    from engine.db import Database
    from engine.procedures import deploy_bytes

    env = {**os.environ, "MOTCUA_VAR": str(tmp / "var"), "MOTCUA_SECRET_KEY": secrets.token_hex(32), "REDIS_URL": ""}
    if make_run:
        env.pop("DATABASE_URL", None)  # make run's default: var/motcua.db
        url = f"sqlite:///{tmp / 'var' / 'motcua.db'}"
        motcua = str(Path(sys.executable).with_name("motcua"))
        for args in (["db", "upgrade"], ["demo"], ["deploy", "bpmn/"]):
            subprocess.run([motcua, *args], env=env, cwd=str(ROOT), check=True, capture_output=True)
        db = Database(url)
    else:
        url = env["DATABASE_URL"] = url or f"sqlite:///{tmp / 'bench.db'}"
        db = Database(url)
        if not db.is_sqlite:
            from sqlalchemy import text

            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.create_all()
    deploy_bytes(db, BPMN.read_bytes(), BPMN.name)
    with db.uow() as s:
        add_user(s, USER, PASSWORD, ["receiver", "specialist"], AGENCY, "Bench")
    db.dispose()
    Settings(var_dir=tmp / "var", database_url=url)  # creates var/
    return env


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid` and its living descendants (Linux /proc):
    unlike wall-clock rates, this does not grow with the machine's load."""
    stats = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parts = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(d.name)] = (int(parts[1]), int(parts[11]) + int(parts[12]))
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += stats.get(p, (0, 0))[1]
        todo.extend(c for c, (ppid, _) in stats.items() if ppid == p)
    return total / tick


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_make_run(
    env: dict, command: list[str] | None = None, server_name: str | None = None
) -> tuple[subprocess.Popen, int]:
    """`motcua serve` as `make run` starts it (its own server, threads and worker), on a free port; `command`
    instead of `motcua serve` (bench/bench_memory.py's traced server takes the same options); `server_name`:
    its `--server`."""
    port = free_port()
    extra = ["--server", server_name] if server_name else []
    server = subprocess.Popen(
        [*(command or [str(Path(sys.executable).with_name("motcua")), "serve"]), "--port", str(port), *extra],
        env={**env, "MOTCUA_ACCESS_LOG": env.get("MOTCUA_ACCESS_LOG", "1")},
        cwd=str(ROOT),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return server, port
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("motcua serve did not answer /healthz within 60 s")


class Client:
    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        self.conn.request("POST", path, body=json.dumps(body), headers=self.headers)
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.getheader("Connection", "").lower() == "close":
            raise RuntimeError("the server closed the keep-alive connection")
        return resp.status, json.loads(data)

    def login(self) -> None:
        status, body = self.post("/api/v1/auth/token", {"username": USER, "password": PASSWORD})
        assert status == 200, body
        self.headers["Authorization"] = f"Bearer {body['access_token']}"


def drive(client: Client, n: int, starts: list[float] | None = None) -> tuple[float, list[float]]:
    """N dossiers through their 4 tasks over HTTP; returns (completions per second, completion latencies)."""
    latencies: list[float] = []
    starts = starts if starts is not None else []
    t0 = time.perf_counter()
    for _ in range(n):
        t1 = time.perf_counter()
        status, d = client.post(
            "/api/v1/dossiers", {"procedure_code": "9.000001", "applicant": {"name": "Nguyễn Văn A"}, "channel": 1}
        )
        starts.append(time.perf_counter() - t1)
        assert status == 201, d
        while d["tasks"]:
            t1 = time.perf_counter()
            status, d = client.post(f"/api/v1/tasks/{d['tasks'][0]['id']}/complete", {"data": STEP_DATA})
            latencies.append(time.perf_counter() - t1)
            assert status == 200, d
        assert d["status"] == "returned", d["status"]
    return len(latencies) / (time.perf_counter() - t0), latencies


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def main() -> None:
    make_run = "--make-run" in sys.argv
    server_name = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--server=")), None)
    argv = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(argv[0]) if argv else 200
    rounds = int(argv[1]) if len(argv) > 1 else 3
    tmp = Path(tempfile.mkdtemp(prefix="motcua-bench-api-"))
    env = prepare(tmp, make_run=make_run)
    if make_run:
        server, port = start_make_run(env, server_name=server_name)
        what = (
            f"motcua serve as make run starts it ({f'--server {server_name}' if server_name else 'its own server'}, "
            "threads and worker; demo data and bpmn/ loaded)"
        )
    else:
        server = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve"],
            env=env,
            cwd=str(ROOT),
            stdout=subprocess.PIPE,
            text=True,
        )
        port = int(server.stdout.readline())
        what = "waitress (4 threads), no worker"
    try:
        client = Client(port)
        client.login()
        drive(client, 20)  # warm-up: caches, connection pool, JIT-free Python paths
        raw_engine(20)
        api_rates, raw_rates, ratios, lat, starts, cpu = [], [], [], [], [], []
        for _ in range(rounds):
            c0 = tree_cpu(server.pid)
            rate, latencies = drive(client, n, starts)
            cpu.append((tree_cpu(server.pid) - c0) / (n * 5))  # 5 requests per dossier
            raw_rate, _size = raw_engine(n)
            api_rates.append(rate), raw_rates.append(raw_rate), ratios.append(rate / raw_rate)
            lat.extend(latencies)
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
    med = statistics.median
    raw_ms = 1000 / med(raw_rates)
    print(
        f"dossiers: {n} per round, {rounds} rounds, 4 user-task completions each; one HTTP/1.1 keep-alive client; "
        f"server: {what} + SQLite (file, WAL) in {tmp}"
    )
    print(
        f"raw SpiffWorkflow (in process, default serializer, no database): {med(raw_rates):8.0f} completions/s "
        f"= {raw_ms:.2f} ms per completion"
    )
    print(
        f"motcua over HTTP (auth, validation, one transaction + audit event, JSON answer with the next tasks): "
        f"{med(api_rates):8.0f} completions/s (median of rounds, dossier creation included)"
    )
    print(
        f"completion latency over HTTP: median {med(lat) * 1000:.2f} ms, p99 {p99(lat) * 1000:.2f} ms "
        f"({len(lat)} completions); dossier creation: median {med(starts) * 1000:.2f} ms, "
        f"p99 {p99(starts) * 1000:.2f} ms"
    )
    print(
        f"ratio API / raw engine: throughput {med(ratios):.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f}); "
        f"median latency {med(lat) * 1000 / raw_ms:.2f}x, p99 latency {p99(lat) * 1000 / raw_ms:.2f}x "
        f"the raw engine's time per completion"
    )
    print(
        f"server CPU (its processes, worker included; /proc) per request: median {med(cpu) * 1000:.2f} ms "
        f"(min {min(cpu) * 1000:.2f}, max {max(cpu) * 1000:.2f}) over the rounds"
    )
    print(f"load average after the run: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve()
    else:
        main()
