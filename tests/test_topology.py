"""The province's topology as processes on 127.0.0.1 (compose.yaml without Docker) and its fault drill.

PostgreSQL (a private cluster started here with initdb/pg_ctl on a free port, since the drill restarts it;
the suite's shared server, in this run's own schema, where initdb is missing — then without the restart),
a Redis server started here on a free port (never the machine's shared one: the drill stops it), two API
processes (`motcua serve --no-worker`), two workers (`motcua worker`). The clients play the reverse proxy:
round robin over the API processes, the next one on a refused connection or a 503, retrying with the same
Idempotency-Key.

The drill (docs/operations.md, "Fault drill"): 4 clients drive dossiers (4-step ones and ones whose 2-second
timer escalates them); one API process and one worker are killed with SIGKILL mid-run and started again;
then no acknowledged write is lost, no timer fired twice, every dossier finishes, every retried write took
effect once with its first key. Then Redis is stopped for 30 s under load and PostgreSQL is restarted in the
middle of it: requests answer (2xx, or a fast 503 in Vietnamese; never a 500, never a hang), retries with an
Idempotency-Key take effect once, timers still fire through the database sweep, and everything recovers by
itself when both are back.

Skipped, with a notice, without PostgreSQL (DATABASE_URL) or a redis-server binary.
"""

from __future__ import annotations

import contextlib
import glob
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from engine.auth import add_user
from engine.db import Database
from engine.migrate import upgrade
from engine.models import Dossier, Event, Task
from engine.procedures import deploy_bytes
from tests.channels_support import free_port, wait_for
from tests.conftest import PG_URL, ROOT, reset_database
from tests.test_worker import QUICK_TIMER

BIN = Path(sys.executable).parent
AGENCY = "000.31.14.H56"
USER, PASSWORD = "drill", "drill-password-1"
FOUR_STEPS = (ROOT / "bench" / "four_steps.bpmn").read_bytes()
REDIS_SERVER = shutil.which("redis-server")
PG_BIN = max(glob.glob("/usr/lib/postgresql/*/bin"), default=None, key=lambda p: int(p.split("/")[-2]))
if not (PG_BIN and os.path.exists(f"{PG_BIN}/initdb")) and shutil.which("initdb"):
    PG_BIN = str(Path(shutil.which("initdb")).parent)

pytestmark = pytest.mark.skipif(
    not (PG_URL and REDIS_SERVER),
    reason="NOTICE: the multi-process topology and its fault drill need PostgreSQL (DATABASE_URL=postgresql+psycopg://…)"
    " and a redis-server binary; `make test` runs them in its PostgreSQL + Redis pass",
)


class PrivatePostgreSQL:
    """A throw-away PostgreSQL cluster (initdb + pg_ctl) on a free port, so the drill can restart it without
    disturbing anyone else's database. As root, the server runs as the `postgres` user (it refuses root)."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="motcua-drill-pg-")
        self.data = os.path.join(self.dir, "data")
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        if not os.path.exists(self.data):
            self._ctl(f"{PG_BIN}/initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
            " -c full_page_writes=off -c max_connections=200"
        )
        self._ctl(f"{PG_BIN}/pg_ctl", "-D", self.data, "-o", opts, "-l", f"{self.dir}/server.log", "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl(f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def _private_postgres() -> PrivatePostgreSQL | None:
    """A private cluster where initdb can run here, else None (the drill then runs on the suite's PostgreSQL
    without the restart, and says so)."""
    if not PG_BIN or (os.geteuid() == 0 and not shutil.which("runuser")):
        return None
    pg = None
    try:
        pg = PrivatePostgreSQL()
        pg.start()
        return pg
    except (OSError, subprocess.SubprocessError, LookupError):
        if pg is not None:
            pg.remove()
        return None


class Topology:
    """The processes of compose.yaml on 127.0.0.1; logs in tmp_path/logs/."""

    def __init__(self, tmp_path: Path, database_url: str):
        self.tmp = tmp_path
        (tmp_path / "logs").mkdir()
        self.redis_port = free_port()
        self.api_ports = [free_port(), free_port()]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
        self.env.update(
            DATABASE_URL=database_url,
            REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            MOTCUA_VAR=str(tmp_path / "var"),
            MOTCUA_SECRET_KEY="d" * 48,
            MOTCUA_SWEEP_SECONDS="2",
            MOTCUA_LOG_FORMAT="json",
            MOTCUA_ACCESS_LOG="0",
        )
        self.procs: dict[str, subprocess.Popen] = {}

    def _start(self, name: str, cmd: list[str]) -> None:
        log = open(self.tmp / "logs" / f"{name}.log", "ab")  # noqa: SIM115 (kept by the process)
        self.procs[name] = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def start_redis(self) -> None:
        self._start(
            "redis",
            [REDIS_SERVER, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        )
        assert wait_for(lambda: _tcp_open(self.redis_port), timeout=10), "redis-server did not start"

    def start_api(self, i: int) -> None:
        port = self.api_ports[i]
        self._start(
            f"api-{i + 1}", [str(BIN / "motcua"), "serve", "--no-worker", "--port", str(port), "--threads", "4"]
        )

    def start_worker(self, i: int) -> None:
        self._start(f"worker-{i + 1}", [str(BIN / "motcua"), "worker", "--threads", "2"])

    def wait_api(self, i: int) -> None:
        assert wait_for(lambda: _healthy(self.api_ports[i]), timeout=60), f"api-{i + 1} did not answer"

    def kill(self, name: str, sig=signal.SIGKILL) -> None:
        p = self.procs[name]
        p.send_signal(sig)
        p.wait(20)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def _tcp_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _healthy(port: int) -> bool:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/healthz")
        return c.getresponse().status == 200
    except OSError:
        return False


def _once(port: int, method: str, path: str, body, headers: dict | None = None) -> tuple[int, dict, dict]:
    """One request, no retry: the answer itself."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=json.dumps(body), headers=headers or {"Content-Type": "application/json"})
    r = c.getresponse()
    out = r.status, json.loads(r.read() or b"null"), dict(r.getheaders())
    c.close()
    return out


class Client:
    """One officer's client, behaving like the reverse proxy in front of it: round robin, failover on a refused
    connection or a 503, the same Idempotency-Key on every retry of a write."""

    def __init__(self, ports: list[int], deadline: float = 40.0):
        self.ports, self.deadline, self.turn = ports, deadline, 0
        self.token = None
        self.statuses: Counter = Counter()
        self.slowest = 0.0
        self.problems_503: list[dict] = []
        self.pending_409 = 0  # answers "still being processed" (a key whose request was cut by a kill)
        self.answer_lost = 0  # answers "took effect, answer lost" (killed between its commit and its answer)

    def request(
        self, method: str, path: str, body=None, key: str | None = None, pending_for: float = 15.0
    ) -> tuple[int, dict, dict]:
        """The answer; a 409 'still being processed' is retried for `pending_for` seconds (longer than the key's
        lease, api/idempotency.py: a retry after it takes over the key of a request whose process was killed)."""
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if key:
            headers["Idempotency-Key"] = key
        end = time.monotonic() + self.deadline
        pending_since = None
        while True:
            port = self.ports[self.turn % len(self.ports)]
            self.turn += 1
            t0 = time.monotonic()
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
                r = c.getresponse()
                data = json.loads(r.read() or b"null")
                status, rh = r.status, dict(r.getheaders())
                c.close()
            except (OSError, http.client.HTTPException):
                status, data, rh = 0, None, {}  # refused or cut: try the next process
            self.slowest = max(self.slowest, time.monotonic() - t0)
            self.statuses[status] += 1
            if status == 503:
                self.problems_503.append(data)
            pending = status == 409 and "đang được xử lý" in (data or {}).get("message_vi", "")
            if pending:
                self.pending_409 += 1
                pending_since = pending_since or time.monotonic()
                if time.monotonic() - pending_since > pending_for:
                    return status, data, rh
            if not (status in (0, 502, 503) or pending):
                return status, data, rh
            assert time.monotonic() < end, f"{method} {path}: no answer within {self.deadline} s"
            time.sleep(0.2)

    def login(self) -> None:
        status, body, _ = self.request("POST", "/api/v1/auth/token", {"username": USER, "password": PASSWORD})
        assert status == 200, body
        self.token = body["access_token"]


def _new(client: Client, procedure: str, tag: str) -> dict:
    """Create a dossier, retrying with one Idempotency-Key until it answers: the key takes effect once."""
    name = f"new-{tag}"
    body = {"procedure_code": procedure, "applicant": {"name": name}, "channel": 1}
    status, d, _ = client.request("POST", "/api/v1/dossiers", body, key=f"new-{tag}")
    if status == 201:
        return d
    # Only when the process was killed between the commit and the answer (milliseconds): the 409 says it took
    # effect; the client finds its dossier as that answer asks.
    assert status == 409 and "đã có hiệu lực" in d["message_vi"], (status, d)
    client.answer_lost += 1
    status, page, _ = client.request("GET", f"/api/v1/dossiers?q={name}")
    found = [x for x in page["items"] if x["applicant_name"] == name]
    assert status == 200 and len(found) == 1, (status, page)
    return client.request("GET", f"/api/v1/dossiers/{found[0]['code']}")[1]


def _complete(client: Client, task_id: str, data: dict) -> dict:
    status, d, _ = client.request("POST", f"/api/v1/tasks/{task_id}/complete", {"data": data}, key=f"done-{task_id}")
    if status == 200:
        return d
    assert status == 409 and "đã có hiệu lực" in d["message_vi"], (status, d)  # as in _new
    client.answer_lost += 1
    status, t, _ = client.request("GET", f"/api/v1/tasks/{task_id}")
    assert status == 200 and t["task"]["state"] == "completed", (status, t)
    return client.request("GET", f"/api/v1/dossiers/{t['dossier']['code']}")[1]


def drive_four_steps(client: Client, tag: str, acked: dict) -> None:
    d = _new(client, "9.000001", tag)
    acked["dossiers"].append(d["code"])
    while d["tasks"]:
        tid = d["tasks"][0]["id"]
        d = _complete(client, tid, {"decision": "accept"})
        acked["tasks"].append(tid)


def drive_timer(client: Client, tag: str, acked: dict, timeout: float = 40.0) -> None:
    """A dossier whose 2-second boundary timer moves it to the leader; the leader then finishes it."""
    d = _new(client, "9.000003", tag)
    acked["dossiers"].append(d["code"])
    acked["timer_dossiers"].append(d["code"])
    end = time.monotonic() + timeout
    while True:
        status, d, _ = client.request("GET", f"/api/v1/dossiers/{d['code']}")
        assert status == 200, d
        escalate = [t for t in d["tasks"] if t["spec_name"] == "escalate"]
        if escalate:
            break
        assert time.monotonic() < end, f"the timer of {d['code']} did not fire within {timeout} s"
        time.sleep(0.3)
    d = _complete(client, escalate[0]["id"], {})
    acked["tasks"].append(escalate[0]["id"])


@pytest.fixture
def topology(tmp_path):
    pg = _private_postgres()
    url = pg.url if pg else PG_URL
    topo = Topology(tmp_path, url)
    topo.pg = pg
    db = None
    try:
        reset_database(url)
        upgrade(url)
        db = topo.db = Database(url)
        deploy_bytes(db, FOUR_STEPS, "four_steps.bpmn")
        deploy_bytes(db, QUICK_TIMER, "quick.bpmn")
        with db.uow() as s:
            add_user(s, USER, PASSWORD, ["receiver", "specialist", "leader"], AGENCY, "Diễn tập")
        topo.start_redis()
        for i in (0, 1):
            topo.start_api(i)
            topo.start_worker(i)
        for i in (0, 1):
            topo.wait_api(i)
        yield topo
    finally:
        topo.stop()
        if db is not None:
            db.dispose()
        if pg is not None:
            pg.remove()


def _actions(db, action: str) -> Counter:
    with db.read() as s:
        rows = s.execute(
            select(Dossier.code, func.count())
            .join(Event, Event.dossier_id == Dossier.id)
            .where(Event.action == action)
            .group_by(Dossier.code)
        ).all()
    return Counter({c: n for c, n in rows})


def _run_clients(topo, n_clients: int, work, acked: dict) -> list[BaseException]:
    errors: list[BaseException] = []

    def one(i):
        client = Client(topo.api_ports)
        try:
            client.login()
            work(client, i)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            acked["clients"].append(client)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n_clients)]
    for t in threads:
        t.start()
    return threads, errors


def _check_written(db, acked: dict, prefix: str, n: int) -> None:
    """Every acknowledged dossier and completion is there, each created once, finished, each timer fired once."""
    with db.read() as s:
        rows = dict(s.execute(select(Dossier.code, Dossier.finished).where(Dossier.code.in_(acked["dossiers"]))).all())
        done = set(s.scalars(select(Task.id).where(Task.id.in_(acked["tasks"]), Task.state == "completed")))
        names = Counter(s.scalars(select(Dossier.applicant_name).where(Dossier.applicant_name.like(f"new-{prefix}-%"))))
    assert len(acked["dossiers"]) == n and set(rows) == set(acked["dossiers"])  # no acknowledged dossier lost
    assert done == set(acked["tasks"])  # no acknowledged completion lost
    assert len(names) == n and all(k == 1 for k in names.values()), names  # each retried creation: once
    assert all(rows.values()), [c for c, finished in rows.items() if not finished]  # every dossier finished
    fired = _actions(db, "timer.fired")
    assert {c: fired[c] for c in acked["timer_dossiers"]} == {c: 1 for c in acked["timer_dossiers"]}


def _new_acked() -> dict:
    return {"dossiers": [], "tasks": [], "timer_dossiers": [], "clients": []}


REDIS_AWAY = 30.0  # seconds Redis is stopped under load


def test_fault_drill(topology):
    topo, db = topology, topology.db
    acked = _new_acked()
    run = uuid.uuid4().hex[:6]

    # -- 1. four clients; one API process and one worker killed with SIGKILL mid-run, then started again --
    def work(client, i):
        for j in range(4):
            (drive_timer if j == 1 else drive_four_steps)(client, f"{run}-{i}-{j}", acked)

    threads, errors = _run_clients(topo, 4, work, acked)
    assert wait_for(lambda: len(acked["tasks"]) >= 8, timeout=60), "the clients made no progress"
    topo.kill("api-1")
    topo.kill("worker-1")
    time.sleep(1.5)
    topo.start_api(0)
    topo.start_worker(0)
    for t in threads:
        t.join(120)
    assert not errors, errors
    topo.wait_api(0)
    _check_written(db, acked, run, 16)
    clients = acked["clients"]
    assert not any(c.statuses[500] for c in clients), [c.statuses for c in clients]
    kill_stats = {
        "pending_409": sum(c.pending_409 for c in clients),
        "answer_lost": sum(c.answer_lost for c in clients),
    }

    # -- 2. Redis stopped for 30 s under load, PostgreSQL restarted in the middle of it ----------------------
    topo.kill("redis", signal.SIGTERM)
    t_away = time.monotonic()
    acked2 = _new_acked()

    def work_away(client, i):
        j = 0
        while j < 2 or time.monotonic() - t_away < REDIS_AWAY:
            (drive_timer if j % 3 == 1 else drive_four_steps)(client, f"{run}-away-{i}-{j}", acked2)
            j += 1

    threads, errors = _run_clients(topo, 2, work_away, acked2)
    pg_down = None
    if topo.pg is not None:
        time.sleep(8)
        topo.pg.stop("fast")  # every connection of every process is cut
        t_down = time.monotonic()
        status, problem, headers = _once(
            topo.api_ports[1], "POST", "/api/v1/auth/token", {"username": USER, "password": PASSWORD}
        )
        probe_seconds = time.monotonic() - t_down
        time.sleep(2)
        topo.pg.start()
        pg_down = time.monotonic() - t_down
        assert status == 503 and problem["code"] == "database_unavailable", (status, problem)
        assert problem["message_vi"].startswith("Cơ sở dữ liệu") and headers.get("Retry-After") == "2"
        assert probe_seconds < 5.0, probe_seconds  # fast, never a hang
    for t in threads:
        t.join(180)
    assert not errors, errors
    away_for = time.monotonic() - t_away
    assert away_for >= REDIS_AWAY
    assert topo.procs["redis"].poll() is not None  # still away: the timers above fired without it
    clients = acked2["clients"]
    assert not any(c.statuses[500] for c in clients), [c.statuses for c in clients]
    # Fast answers, never a hang: a hang is the pool's 30 s wait or the client's 10 s timeout; on the shared
    # 2-CPU machine at a load average of 15-20 the slowest answer around the PostgreSQL restart reached 5 s.
    assert max(c.slowest for c in clients) < 8.0
    for p in (p for c in clients for p in c.problems_503):
        assert p["message_vi"] and p["message_vi"] != p["message_en"]  # Vietnamese first
    _check_written(db, acked2, f"{run}-away", len(acked2["dossiers"]))
    # a client's retry of a write with its key takes effect once, Redis away or not
    c = clients[0]
    body = {"procedure_code": "9.000001", "applicant": {"name": f"retry-{run}"}, "channel": 1}
    first = c.request("POST", "/api/v1/dossiers", body, key=f"retry-{run}")
    again = c.request("POST", "/api/v1/dossiers", body, key=f"retry-{run}")
    assert first[0] == again[0] == 201 and first[1]["code"] == again[1]["code"]
    assert again[2].get("Idempotent-Replayed") == "true"

    # -- 3. Redis back: the workers and the API processes recover by themselves -------------------------------
    topo.start_redis()
    acked3 = _new_acked()
    client = Client(topo.api_ports)
    client.login()
    t_back = time.monotonic()
    drive_timer(client, f"{run}-back", acked3)
    timer_back = time.monotonic() - t_back
    drive_four_steps(client, f"{run}-back-2", acked3)
    fired = _actions(db, "timer.fired")
    assert fired[acked3["timer_dossiers"][0]] == 1
    with db.read() as s:
        unfinished = s.scalar(select(func.count()).select_from(Dossier).where(Dossier.finished.is_(False)))
    assert unfinished == 1  # only the retry dossier, left open on purpose
    statuses = sum((c.statuses for c in clients), Counter())
    print(
        f"\nNOTICE: drill: kills {kill_stats}; Redis away {away_for:.1f} s, "
        + (f"PostgreSQL down {pg_down:.1f} s (private cluster)" if pg_down else "no PostgreSQL restart (no initdb)")
        + f"; {len(acked2['dossiers'])} dossiers meanwhile, statuses {dict(statuses)}, slowest"
        f" {max(c.slowest for c in clients):.2f} s; a timer after Redis's return fired within {timer_back:.1f} s"
    )


def test_serve_workers_runs_gunicorn_and_adds_up_metrics(tmp_path):
    """`motcua serve --workers 2`: two API processes behind one port; /metrics adds up both processes."""
    reset_database(PG_URL)
    upgrade(PG_URL)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOTCUA_", "PROMETHEUS_"))}
    env.update(DATABASE_URL=PG_URL, MOTCUA_VAR=str(tmp_path / "var"), MOTCUA_SECRET_KEY="g" * 48, REDIS_URL="")
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    p = subprocess.Popen(
        [str(BIN / "motcua"), "serve", "--no-worker", "--workers", "2", "--threads", "2", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        assert wait_for(lambda: _healthy(port), timeout=60), (tmp_path / "serve.log").read_text()[-2000:]
        # Both processes booted (gunicorn logs each); until then one process may answer every connection.
        booted = wait_for(lambda: (tmp_path / "serve.log").read_text().count("Booting worker") >= 2, timeout=60)
        assert booted, (tmp_path / "serve.log").read_text()[-2000:]
        prom = tmp_path / "var" / "prometheus"
        sent = [0]
        lock = threading.Lock()

        def one_request():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/healthz")
            c.getresponse().read()
            c.close()
            with lock:
                sent[0] += 1

        def answered_by_both():
            # New connections from 8 clients at once: gunicorn's processes accept from one socket, so a busy
            # one leaves the next connection to the other; a single sequential client may meet only one.
            threads = [threading.Thread(target=one_request) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
            return len({f.name.split("_")[-1] for f in prom.glob("*.db")}) >= 2

        wait_for(answered_by_both, timeout=60, every=0)
        while sent[0] < 40:
            one_request()
        pids = {f.name.split("_")[-1] for f in prom.glob("*.db")}
        assert len(pids) >= 2, pids  # both processes answered and wrote their samples
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        total = 0.0
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.name == "motcua_http_request_duration_seconds_count" and s.labels.get("endpoint") == "/healthz":
                    total += s.value
        assert total >= sent[0]  # every process's requests, whichever process answered
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def test_idempotency_key_after_sigkill(tmp_path):
    """A request killed with its process after reserving its key: the retry on another process answers 409
    "still being processed" within the key's lease, then takes the key over and takes effect once."""
    from sqlalchemy import create_engine, text

    from api.idempotency import LEASE

    reset_database(PG_URL)
    upgrade(PG_URL)
    db = Database(PG_URL)
    deploy_bytes(db, FOUR_STEPS, "four_steps.bpmn")
    with db.uow() as s:
        add_user(s, USER, PASSWORD, ["receiver"], AGENCY, "Diễn tập")
    topo = Topology(tmp_path, PG_URL)
    topo.env["REDIS_URL"] = ""
    locker = create_engine(PG_URL).connect()
    try:
        for i in (0, 1):
            topo.start_api(i)
        for i in (0, 1):
            topo.wait_api(i)
        client = Client(topo.api_ports[1:])
        client.login()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {client.token}"}
        body = {"procedure_code": "9.000001", "applicant": {"name": "killed-mid-request"}, "channel": 1}

        # The first request reserves its key, then waits on a lock while its process is killed.
        tx = locker.begin()
        locker.execute(text("LOCK TABLE dossiers IN SHARE ROW EXCLUSIVE MODE"))
        cut = http.client.HTTPConnection("127.0.0.1", topo.api_ports[0], timeout=30)
        cut.request("POST", "/api/v1/dossiers", json.dumps(body), {**headers, "Idempotency-Key": "k-1"})
        reserved = "SELECT count(*) FROM idempotency_records WHERE key = 'k-1' AND status = 0"
        with db.engine.connect() as conn:
            assert wait_for(lambda: conn.execute(text(reserved)).scalar() == 1, timeout=20), "no reservation"
        topo.kill("api-1")
        tx.rollback()
        t_kill = time.monotonic()

        status, d, _ = _once(topo.api_ports[1], "POST", "/api/v1/dossiers", body, {**headers, "Idempotency-Key": "k-1"})
        assert status == 409 and "đang được xử lý" in d["message_vi"], (status, d)  # within the lease
        status, d, _ = client.request("POST", "/api/v1/dossiers", body, key="k-1")
        took = time.monotonic() - t_kill
        assert status == 201, (status, d)
        assert took < LEASE.total_seconds() + 3, took  # promptly: the lease, not minutes
        status, again, h = client.request("POST", "/api/v1/dossiers", body, key="k-1")
        assert status == 201 and again["code"] == d["code"] and h.get("Idempotent-Replayed") == "true"
        with db.read() as s:
            n = s.scalar(
                select(func.count()).select_from(Dossier).where(Dossier.applicant_name == body["applicant"]["name"])
            )
        assert n == 1  # the killed request had no effect; the retry took effect once
        print(
            f"\nNOTICE: a retry after SIGKILL took effect {took:.1f} s after the kill (lease {LEASE.total_seconds():.0f} s)"
        )
    finally:
        locker.close()
        topo.stop()
        db.dispose()
