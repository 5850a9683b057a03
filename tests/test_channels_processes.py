"""The channels with real processes: `make run`'s command line (`motcua serve`, which starts the worker) with
the contract's variables, and the national portal's order across a worker killed and restarted. The SMTP server
and the HTTP gateways are real servers started here; what is checked is what they received."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from engine.config import Settings
from engine.db import Database
from engine.dossiers import DossierService
from engine.migrate import upgrade
from engine.procedures import deploy_bytes
from tests.channels_support import Gateway, SmtpServer, free_port, wait_for
from tests.conftest import PG_URL, ROOT
from tests.helpers import staff

AGENCY = "000.31.14.H56"
FOUR_STEPS = (ROOT / "bench" / "four_steps.bpmn").read_bytes()
BIN = Path(sys.executable).parent


def _env(tmp_path, **extra) -> dict:
    (tmp_path / "var").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env.update(MOTCUA_VAR=str(tmp_path / "var"), MOTCUA_SECRET_KEY="s" * 40, MOTCUA_SWEEP_SECONDS="2")
    env["DATABASE_URL"] = PG_URL or f"sqlite:///{tmp_path / 'var' / 'motcua.db'}"
    env.update(extra)
    return env


def _call(base, path, body=None, token=None, method=None):
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method or ("POST" if body is not None else "GET"),
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def test_make_run_command_line_sends_email_sms_and_portal_updates(tmp_path):
    smtp, sms, portal = SmtpServer(), Gateway(), Gateway()
    port = free_port()
    env = _env(
        tmp_path,
        MOTCUA_SMTP_URL=smtp.url,
        MOTCUA_MAIL_FROM="motcua@tinh.gov.vn",
        MOTCUA_SMS_URL=sms.url,
        MOTCUA_PORTAL_URL=portal.url,
        MOTCUA_PORT=str(port),
        MOTCUA_SWEEP_SECONDS="300",  # what arrives is sent on the delivery enqueued at commit, not by a periodic tick
    )
    if PG_URL:
        from tests.conftest import reset_database

        reset_database(PG_URL)
    agencies = str(ROOT / "bpmn" / "agencies.csv")
    for cmd in (["db", "upgrade"], ["demo", "--agencies", agencies], ["deploy", str(ROOT / "bpmn")]):  # `make run`
        subprocess.run([str(BIN / "motcua"), *cmd], env=env, check=True, capture_output=True, timeout=300)
    out = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen([str(BIN / "motcua"), "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: _up(base), timeout=60), "motcua serve did not answer"
        token = _call(base, "/api/v1/auth/token", {"username": "tiepnhan", "password": "motcua-demo"})["access_token"]
        body = {
            "procedure_code": "1.001193",
            "applicant": {
                "name": "Trần Thị Bình",
                "id_number": "001099000111",
                "phone": "0912000111",
                "email": "binh@example.vn",
            },
            "channel": 1,
            "data": {},
        }
        code = _call(base, "/api/v1/dossiers", body, token)["code"]
        _call(base, f"/api/v1/dossiers/{code}/withdraw", {"reason": "Công dân xin rút"}, token)
        assert wait_for(
            lambda: len(sms.requests) >= 2 and len(smtp.messages) >= 2 and _portal_seqs(portal, code) == [1, 2]
        )
        assert {r["json"]["to"] for r in sms.requests} == {"0912000111"}
        assert any(r["json"]["text"].startswith(f"Ho so {code} da duoc tiep nhan") for r in sms.requests)
        subjects = {m["message"]["Subject"] for m in smtp.messages}
        assert f"Hồ sơ {code} đã được tiếp nhận" in subjects
        assert [i["status_code"] for i in _portal_items(portal, code)][:2] == [2, 7]
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        for s in (smtp, sms, portal):
            s.close()


def _up(base) -> bool:
    try:
        urllib.request.urlopen(base + "/healthz", timeout=2)
        return True
    except OSError:
        return False


def _portal_items(portal, code=None) -> list[dict]:
    out = []
    for body in portal.bodies(status=200):
        for item in body if isinstance(body, list) else [body] if body else []:
            if code is None or item["code"] == code:
                out.append(item)
    return out


def _portal_seqs(portal, code) -> list[int]:
    seen = []
    for i in _portal_items(portal, code):
        if i["sequence"] not in seen:
            seen.append(i["sequence"])
    return seen


def test_portal_order_holds_across_a_worker_killed_and_restarted(tmp_path):
    """Two workers drain 20 dossiers' status changes to a portal that fails one request in three; one worker
    is killed mid-way and started again. Per dossier, sequences are first accepted in order 1, 2, 3, …"""
    portal = Gateway(status=lambda n: 500 if n % 3 == 0 else 200)
    env = _env(
        tmp_path,
        MOTCUA_PORTAL_URL=portal.url,
        MOTCUA_CHANNEL_BACKOFF="1",
        MOTCUA_CHANNEL_BACKOFF_CAP="2",
        MOTCUA_CHANNEL_MAX_TRIES="50",
        MOTCUA_CHANNEL_TIMEOUT="2",  # a killed worker's claims (lease: timeout x rounds + 10 s) come back soon
        MOTCUA_NATIONAL_PORTAL_CONCURRENCY="2",
    )
    if PG_URL:
        from tests.conftest import reset_database

        reset_database(PG_URL)
    upgrade(env["DATABASE_URL"])
    settings = Settings(
        var_dir=tmp_path / "var", database_url=env["DATABASE_URL"], redis_url=os.environ.get("REDIS_URL")
    )
    db = Database.from_settings(settings)
    deploy_bytes(db, FOUR_STEPS, "four_steps.bpmn")
    service = DossierService(db, settings)
    receiver = staff({"receiver"}, AGENCY, "tiepnhan")
    specialist = staff({"specialist", "receiver"}, AGENCY, "canbo")
    codes = []
    for _ in range(20):
        d = service.start_dossier(receiver, "9.000001", {"name": "A"})
        for _ in range(4):  # received → in process → processed → returned: 4 updates per dossier
            d = service.complete_task(specialist, d["tasks"][0]["id"], {"decision": "accept"})
        codes.append(d["code"])
    db.dispose()

    def start_worker():
        return subprocess.Popen(
            [str(BIN / "motcua"), "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    a, b = start_worker(), start_worker()
    try:
        assert wait_for(lambda: len(portal.requests) >= 5, timeout=60)
        a.kill()  # mid-way: what it had claimed is taken again when its lease ends
        a.wait(10)
        a = start_worker()
        assert wait_for(lambda: all(_portal_seqs(portal, c) == [1, 2, 3, 4] for c in codes), timeout=120), [
            _portal_seqs(portal, c) for c in codes
        ]
    finally:
        for p in (a, b):
            p.kill()
            p.wait(10)
        portal.close()
    for c in codes:
        first_seen = []
        for body in portal.bodies(status=200):  # in the order the portal accepted them
            for item in body if isinstance(body, list) else [body] if body else []:
                if item["code"] == c and item["sequence"] not in first_seen:
                    first_seen.append(item["sequence"])
        assert first_seen == [1, 2, 3, 4]
        statuses = [i["status_code"] for i in _portal_items(portal, c)]
        assert statuses[:1] == [2] and 10 in statuses


@pytest.fixture(autouse=True)
def _no_leftover_env(monkeypatch):
    monkeypatch.delenv("MOTCUA_VAR", raising=False)
