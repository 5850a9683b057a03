"""`motcua serve` as `make run` starts it, through its command line: the server it picks (gunicorn on Linux,
waitress when asked), the worker it starts beside itself, and Ctrl-C (SIGINT to the terminal's process group)
or SIGTERM (a supervisor's, to the server alone) stopping every one of its processes, and SIGKILL taking them
with it (Linux)."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from tests.channels_support import descendants, free_port, wait_for

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
