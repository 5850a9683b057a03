"""Per-process caches stay correct across processes (engine/caches.py, docs/operations.md "Scaling").

Two real API processes (`motcua serve --no-worker`) on one database: an administrator's calendar change
made through one process changes the due times the other computes within about a second (its own cache
would keep the old calendar for 30 s), and a user disabled by the CLI (a third process) is refused by an
API process within about a second (its actor cache holds a user for 5 s).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from engine.auth import add_user
from engine.calendar import VN_TZ, calendar_from_session
from engine.db import Database
from engine.migrate import upgrade
from engine.procedures import deploy_bytes
from tests.channels_support import free_port, wait_for
from tests.conftest import PG_URL, ROOT, reset_database

BIN = Path(sys.executable).parent
AGENCY = "000.31.14.H56"


def _call(port, method, path, body=None, token=None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request(method, path, json.dumps(body) if body is not None else None, headers)
    r = c.getresponse()
    out = r.status, json.loads(r.read() or b"null")
    c.close()
    return out


def _login(port, username, password) -> str:
    status, body = _call(port, "POST", "/api/v1/auth/token", {"username": username, "password": password})
    assert status == 200, body
    return body["access_token"]


def test_calendar_and_users_follow_changes_made_in_another_process(tmp_path):
    url = PG_URL or f"sqlite:///{tmp_path / 'motcua.db'}"
    reset_database(url)
    upgrade(url)
    db = Database(url)
    deploy_bytes(db, (ROOT / "bench" / "four_steps.bpmn").read_bytes(), "four_steps.bpmn")
    with db.uow() as s:
        add_user(s, "quantri", "admin-password-1", ["admin"], AGENCY, "Quản trị")
        add_user(s, "tiepnhan", "receiver-password-1", ["receiver"], AGENCY, "Tiếp nhận")
    with db.read() as s:
        cal = calendar_from_session(s)
    day: date = datetime.now(VN_TZ).date() + timedelta(days=1)
    while not cal.is_working_day(day):
        day += timedelta(days=1)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOTCUA_", "PROMETHEUS_"))}
    env.update(DATABASE_URL=url, MOTCUA_VAR=str(tmp_path / "var"), MOTCUA_SECRET_KEY="c" * 48, REDIS_URL="")
    ports = [free_port(), free_port()]
    procs = []
    try:
        for i, port in enumerate(ports):
            log = open(tmp_path / f"api-{i}.log", "wb")  # noqa: SIM115 (kept by the process)
            procs.append(
                subprocess.Popen(
                    [str(BIN / "motcua"), "serve", "--no-worker", "--port", str(port), "--threads", "2"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        for port in ports:
            assert wait_for(lambda p=port: _call(p, "GET", "/healthz")[0] == 200 if _open(p) else False, 60)
        a, b = ports
        admin = _login(a, "quantri", "admin-password-1")
        receiver = _login(b, "tiepnhan", "receiver-password-1")
        body = {"procedure_code": "9.000001", "applicant": {"name": "Nguyễn Văn An"}, "channel": 1}

        # B computes a due time: its calendar is now cached (for 30 s on its own).
        status, first = _call(b, "POST", "/api/v1/dossiers", body, receiver)
        assert status == 201, first
        # A makes the next working day a holiday: B's due times move one working day later within ~1 s.
        status, put = _call(a, "PUT", f"/api/v1/calendar/days/{day}", {"working": False, "name": "Nghỉ bù"}, admin)
        assert status == 200, put
        changed_at = time.monotonic()
        # During office hours a due time also moves with the instant of receipt (seconds here): the new holiday
        # shows as a whole working day more
        moved = datetime.fromisoformat(first["due_at"]) + timedelta(hours=20)
        while True:
            status, d = _call(b, "POST", "/api/v1/dossiers", body, receiver)
            assert status == 201, d
            if datetime.fromisoformat(d["due_at"]) > moved:
                break
            assert time.monotonic() - changed_at < 5, "the other process still uses the old calendar"
            time.sleep(0.2)
        calendar_seconds = time.monotonic() - changed_at

        # B holds the receiver in its actor cache (5 s); the CLI disables the account: B refuses within ~1 s.
        assert _call(b, "GET", "/api/v1/auth/me", token=receiver)[0] == 200
        subprocess.run([str(BIN / "motcua"), "users", "disable", "tiepnhan"], env=env, check=True, capture_output=True)
        disabled_at = time.monotonic()
        while _call(b, "GET", "/api/v1/auth/me", token=receiver)[0] == 200:
            assert time.monotonic() - disabled_at < 5, "the other process still lets the disabled user in"
            time.sleep(0.1)
        users_seconds = time.monotonic() - disabled_at
        assert calendar_seconds < 2.5 and users_seconds < 2.5, (calendar_seconds, users_seconds)
        print(f"\nNOTICE: caches across processes: calendar {calendar_seconds:.2f} s, users {users_seconds:.2f} s")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        db.dispose()


def _open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
