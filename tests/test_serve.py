"""`motcua serve` as `make run` starts it, through its command line: the server it picks (gunicorn on Linux,
waitress when asked), the worker it starts beside itself, and Ctrl-C (SIGINT to the terminal's process group)
or SIGTERM (a supervisor's, to the server alone) stopping every one of its processes, and SIGKILL taking them
with it (Linux)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from tests.channels_support import descendants, free_port, stop, wait_for

BIN = Path(sys.executable).parent
LINUX = sys.platform.startswith("linux")


def _env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(MOTCUA_VAR=str(tmp_path / "var"), MOTCUA_SECRET_KEY="s" * 40)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'var' / 'motcua.db'}"
    env["REDIS_URL"] = ""
    return env


def _get(port: int, path: str, headers: dict | None = None) -> http.client.HTTPResponse | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        resp.read()
        return resp
    except OSError:
        return None


@contextmanager
def _serving(tmp_path, env: dict, *options: str) -> Iterator[tuple[subprocess.Popen, int]]:
    """`motcua serve` with `options` on a free port, answering /healthz; stopped (SIGTERM) after the block. Its
    standard output (the banner) goes to serve.out, its standard error (the logs) to serve.log."""
    port = free_port()
    out, log = (tmp_path / "serve.out").open("wb"), (tmp_path / "serve.log").open("wb")
    args = [str(BIN / "motcua"), "serve", "--port", str(port), *options]
    proc = subprocess.Popen(args, env=env, stdout=out, stderr=log, start_new_session=True)
    try:
        assert wait_for(lambda: (r := _get(port, "/healthz")) is not None and r.status == 200, timeout=60), (
            tmp_path / "serve.log"
        ).read_text()
        yield proc, port
    finally:
        stop(proc)
        out.close()
        log.close()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has stopped; its parent (or init) reaps it


@pytest.mark.skipif(not LINUX, reason="reads /proc; the process tree is Linux's")
@pytest.mark.parametrize(
    ("server", "stop"),
    [
        ("auto", "ctrl-c"),
        ("auto", "sigterm"),
        ("auto", "sigkill"),
        ("waitress", "ctrl-c"),
        ("waitress", "sigterm"),
        ("waitress", "sigkill"),
    ],
)
def test_serve_answers_with_its_worker_and_stops_everything(tmp_path, server, stop):
    env = _env(tmp_path)
    subprocess.run([str(BIN / "motcua"), "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)
    port = free_port()
    args = [str(BIN / "motcua"), "serve", "--port", str(port)] + (["--server", server] if server != "auto" else [])
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert wait_for(lambda: (r := _get(port, "/healthz")) is not None and r.status == 200, timeout=60), (
            tmp_path / "serve.log"
        ).read_text()
        r = _get(port, "/healthz", {"X-Request-Id": "serve-check-1"})
        assert r.getheader("Server") == ("gunicorn" if server == "auto" else "motcua")  # waitress: its ident
        assert r.getheader("X-Request-Id") == "serve-check-1"
        assert wait_for(
            lambda: any(b"cli\x00worker" in _cmdline(p) for p in descendants(proc.pid) if _alive(p)),
            timeout=30,
        ), "the worker was not started beside the server"
        family = descendants(proc.pid)
        t0 = time.monotonic()
        if stop == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends to its foreground process group
        else:  # a supervisor's stop; SIGKILL: the processes it started go with it, none keeps answering
            proc.send_signal(signal.SIGTERM if stop == "sigterm" else signal.SIGKILL)
        assert proc.wait(30) == (0 if stop != "sigkill" else -signal.SIGKILL)
        assert wait_for(lambda: not any(_alive(p) for p in family), timeout=15), [
            (p, _cmdline(p)) for p in family if _alive(p)
        ]
        assert time.monotonic() - t0 < 30
        assert _get(port, "/healthz") is None  # nothing listens any more
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


def test_waitress_is_one_process():
    result = CliRunner().invoke(main, ["serve", "--server", "waitress", "--workers", "2", "--no-worker"])
    assert result.exit_code != 0
    assert "waitress runs one process" in result.output


def _malloc_arenas(pid: int) -> int:
    """glibc's thread arenas in process `pid`, read from /proc/PID/maps: each is a 64 MiB-aligned reservation
    (mapped with MAP_NORESERVE, so never merged with another mapping) whose used part is read-write and the rest
    inaccessible (`---p`), up to exactly 64 MiB. The main arena (the brk heap) is not counted."""
    heap = 64 * 2**20
    n, prev = 0, None
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split()
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        anon = len(parts) < 6
        if (
            prev is not None
            and anon
            and parts[1] == "---p"
            and prev[2]
            and prev[3].startswith("rw")
            and prev[1] == lo
            and prev[0] % heap == 0
            and hi == prev[0] + heap
        ):
            n += 1
        prev = (lo, hi, anon, parts[1])
    return n


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


@pytest.mark.skipif(
    not LINUX or not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"), reason="glibc's malloc, /proc"
)
@pytest.mark.parametrize("server", ["auto", "waitress"])
def test_serve_and_its_worker_keep_at_most_two_malloc_arenas(tmp_path, server):
    """glibc gives every thread that allocates an arena of its own (up to 8 per CPU) and keeps what is freed in
    each: the API process's and the worker's RSS grew with the traffic that way (docs/performance.md, "Memory of
    an API process"). `motcua serve` limits both to MALLOC_ARENA_MAX = 2 (engine/memory.py)."""
    env = _env(tmp_path)
    env.pop("MALLOC_ARENA_MAX", None)
    env.pop("GLIBC_TUNABLES", None)
    subprocess.run([str(BIN / "motcua"), "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)
    with _serving(tmp_path, env, "--server", server) as (proc, port):
        own = _cmdline(proc.pid)
        api = [p for p in descendants(proc.pid) if _cmdline(p) == own] or [proc.pid]  # gunicorn's, or serve itself
        worker = wait_for(
            lambda: [p for p in descendants(proc.pid) if b"cli\x00worker" in _cmdline(p) and _alive(p)], timeout=30
        )
        assert worker, "the worker was not started beside the server"
        threads = [threading.Thread(target=_get, args=(port, "/api/v1/procedures")) for _ in range(16)]
        for t in threads:  # requests side by side: the server's threads all allocate
            t.start()
        for t in threads:
            t.join()
        assert wait_for(lambda: _threads(worker[0]) >= 6, timeout=30)  # huey's 4 threads and its scheduler
        time.sleep(2)  # the worker's threads have run (each allocates as it first waits)
        # gunicorn's pool starts a thread only when no idle one is there, so how many of its 8 the 16 requests
        # started depends on their timing (7 seen); 4 threads that allocated are already 3 arenas without the limit
        for pid, least in [*((p, 4) for p in api), (worker[0], 6)]:
            assert _threads(pid) >= least  # without the limit, about one arena per thread
            assert _malloc_arenas(pid) <= 1, (pid, _cmdline(pid), _threads(pid))  # with the main arena: 2
        assert b"MALLOC_ARENA_MAX=2\x00" in Path(f"/proc/{worker[0]}/environ").read_bytes()


def _status_kb(pid: int, field: str) -> int:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def _sign_in(port: int, username: str, password: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request(
        "POST",
        "/api/v1/auth/token",
        body=json.dumps({"username": username, "password": password}),
        headers={"Content-Type": "application/json"},
    )
    resp = conn.getresponse()
    resp.read()
    return resp.status


@pytest.mark.skipif(not LINUX, reason="reads the API process's peak RSS from /proc")
def test_sign_ins_side_by_side_hold_at_most_two_password_checks_in_memory(tmp_path):
    """argon2 holds 64 MiB while it checks a password: eight sign-ins at once added 512 MiB to the API process's
    peak RSS (its 8 server threads). At most `HASHES_AT_ONCE` = 2 checks run at a time (engine/auth.py), the
    others wait their turn: the peak stays within 2 x 64 MiB of the resting RSS (docs/security.md, "Sign-in")."""
    from engine.auth import HASHES_AT_ONCE
    from engine.demo import DEMO_PASSWORD

    env = _env(tmp_path)
    for command in (["db", "upgrade"], ["demo"]):
        subprocess.run([str(BIN / "motcua"), *command], env=env, check=True, capture_output=True, timeout=120)
    with _serving(tmp_path, env, "--server", "waitress", "--no-worker") as (proc, port):
        assert _sign_in(port, "tiepnhan", DEMO_PASSWORD) == 200  # warm: the application's imports and caches
        resting = _status_kb(proc.pid, "VmRSS")
        Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # the peak (VmHWM) starts again from now
        statuses: list[int] = []
        for _ in range(2):
            threads = [
                threading.Thread(target=lambda: statuses.append(_sign_in(port, "tiepnhan", DEMO_PASSWORD)))
                for _ in range(8)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert statuses == [200] * 16
        grew_mib = (_status_kb(proc.pid, "VmHWM") - resting) / 1024
        assert grew_mib < (HASHES_AT_ONCE + 1) * 64, f"the peak RSS grew {grew_mib:.0f} MiB during 8 sign-ins at once"


@pytest.mark.skipif(not LINUX, reason="gunicorn, motcua serve's server on Linux")
def test_every_log_line_of_serve_is_json(tmp_path):
    """gunicorn's own lines (its start, its processes) come in the application's JSON format like the
    application's, the worker's and huey's, so a log collector parses every line of the log stream (standard
    error; docs/operations.md, "Logs"). The banner for a person goes to standard output."""
    env = _env(tmp_path)
    env.pop("MOTCUA_LOG_FORMAT", None)  # the default: JSON
    subprocess.run([str(BIN / "motcua"), "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)
    with _serving(tmp_path, env, "--server", "gunicorn") as (_proc, port):
        assert _get(port, "/healthz").status == 200
    lines = [x for x in (tmp_path / "serve.log").read_text().splitlines() if x.strip()]
    records = [json.loads(x) for x in lines]  # fails on the first line that is not JSON
    assert any(r.get("logger", "").startswith("gunicorn") for r in records), lines
    assert {r["logger"] for r in records} >= {"gunicorn.error", "motcua.access", "motcua.worker"}
    assert "serving on http://127.0.0.1:" in (tmp_path / "serve.out").read_text()
