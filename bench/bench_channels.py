"""Outbox benchmark: drain N waiting messages (default 100,000: a quarter each SMS, Zalo, e-mail and national
portal) to local gateways, and the API's task-completion latency while it drains, as a ratio to idle.

Three processes besides this one, as in production: the API (waitress, bench_api's server), the local
gateways (one threaded HTTP server for SMS, Zalo and the portal; aiosmtpd for e-mail; tests/channels_support),
and the drainer (engine.channels.delivery.Delivery with the senders chosen by the environment, each channel
in its own thread, as `motcua.deliver` runs). The portal's messages are 10 status updates of each of N/40
dossiers, so its per-dossier order rule is in force. This process drives 4-task dossiers over HTTP, first
idle, then for as long as the drainer runs, and prints the median and p99 completion latencies and their
ratio (goal ≤ 1.2×), and each channel's messages per second.

    .venv/bin/python bench/bench_channels.py [N=100000] [CONCURRENCY=8]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_api import Client, drive, p99, prepare  # noqa: E402


def gateways() -> None:
    """Child process: the local gateways; prints {http, smtp} ports, then serves until killed."""
    from tests.channels_support import Gateway, SmtpServer

    os.nice(10)  # stands in for remote gateways: it must not compete with the API for this machine's CPU
    http, smtp = Gateway(), SmtpServer()
    print(json.dumps({"http": http.url.rsplit("/", 1)[0], "smtp": smtp.url}), flush=True)
    while True:
        time.sleep(3600)


def drain() -> None:
    """Child process: drain every channel (each in its own thread); prints each channel's figures."""
    from engine.channels.delivery import Delivery
    from engine.channels.senders import build_senders
    from engine.config import Settings
    from engine.db import Database

    os.nice(int(os.environ.get("BENCH_WORKER_NICE", "10")))  # the worker below the API, as docs/channels.md advises
    settings = Settings.from_env()
    db = Database.from_settings(settings)
    delivery = Delivery(db, settings.channels, build_senders(settings.channels, settings.var_dir))
    t0 = time.perf_counter()
    results = delivery.drain(budget_seconds=3600, channels=["sms", "zalo", "email", "national_portal"])
    total = time.perf_counter() - t0
    print(
        json.dumps(
            {c: {"sent": r.sent, "failed": r.failed, "seconds": r.seconds} for c, r in results.items()}
            | {"total": total}
        ),
        flush=True,
    )


def fill(url: str, n: int) -> None:
    """N waiting messages: N/4 each of SMS, Zalo and e-mail; N/4 portal updates, 10 per dossier."""
    from sqlalchemy import insert

    from engine.channels.config import EMAIL, NATIONAL_PORTAL, SMS, ZALO
    from engine.db import Database
    from engine.models import Dossier, Notification

    db = Database(url)
    now = datetime.now(UTC)
    quarter = n // 4
    dossiers = max(1, quarter // 10)
    base = {"kind": "status", "tries": 0, "created_at": now, "next_try_at": now, "sent_at": None, "dead_at": None}
    with db.uow() as s:
        rows = [
            dict(
                code=f"BENCH-{i:06d}",
                procedure_code="9.000001",
                procedure_version_id=1,
                agency="000.31.14.H56",
                status="received",
                status_code=2,
                channel=1,
                applicant_name="A",
                data={},
                received_at=now,
                due_at=now,
                original_due_at=now,
                deadline_hours=24.0,
                paused_hours=0.0,
                supplement_count=0,
                finished=False,
                created_by="bench",
                updated_at=now,
                version=1,
            )
            for i in range(dossiers)
        ]
        s.execute(insert(Dossier), rows)
    with db.read() as s:
        from sqlalchemy import select

        ids = [i for (i,) in s.execute(select(Dossier.id).where(Dossier.code.like("BENCH-%")).order_by(Dossier.id))]
    zalo = {"template_id": "motcua_status", "template_data": {"ma_ho_so": "X"}}
    batch = []
    for i in range(quarter):
        batch.append({**base, "dossier_id": None, "channel": SMS, "recipient": "0912345678", "body": f"Ho so {i}"})
        batch.append(
            {**base, "dossier_id": None, "channel": ZALO, "recipient": "0912345678", "body": "x", "payload": zalo}
        )
        batch.append(
            {
                **base,
                "dossier_id": None,
                "channel": EMAIL,
                "recipient": "a@example.vn",
                "body": "Hồ sơ",
                "subject": "Hồ sơ",
                "payload": {"html": "<p>Hồ sơ</p>"},
            }
        )
    for k, did in enumerate(ids):
        for seq in range(1, 11):
            batch.append(
                {
                    **base,
                    "dossier_id": did,
                    "channel": NATIONAL_PORTAL,
                    "recipient": f"BENCH-{k:06d}",
                    "sequence": seq,
                    "body": "status",
                    "payload": {
                        "code": f"BENCH-{k:06d}",
                        "status_code": min(seq, 10),
                        "status": "x",
                        "procedure_code": "9.000001",
                        "agency": "000.31.14.H56",
                        "at": now.isoformat(),
                    },
                }
            )
    cols = {c.key for c in Notification.__table__.columns} - {"id"}
    for r in batch:
        for c in cols:
            r.setdefault(c, None)
    with db.uow() as s:
        for i in range(0, len(batch), 5000):
            s.execute(insert(Notification), batch[i : i + 5000])
    db.dispose()
    return len(batch)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    concurrency = sys.argv[2] if len(sys.argv) > 2 else "8"
    tmp = Path(tempfile.mkdtemp(prefix="motcua-bench-channels-"))
    env = prepare(tmp)
    me = str(Path(__file__).resolve())
    gw = subprocess.Popen([sys.executable, me, "--gateways"], cwd=str(ROOT), stdout=subprocess.PIPE, text=True)
    server = subprocess.Popen(
        [sys.executable, str(HERE / "bench_api.py"), "--serve"],
        env=env,
        cwd=str(ROOT),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ports = json.loads(gw.stdout.readline())
        port = int(server.stdout.readline())
        made = fill(env["DATABASE_URL"], n)
        client = Client(port)
        client.login()
        drive(client, 20)  # warm-up
        _, idle = drive(client, 100)
        denv = {
            **env,
            "MOTCUA_SMS_URL": ports["http"] + "/sms",
            "MOTCUA_ZALO_URL": ports["http"] + "/zalo",
            "MOTCUA_ZALO_TOKEN": "t",
            "MOTCUA_PORTAL_URL": ports["http"] + "/portal",
            "MOTCUA_SMTP_URL": ports["smtp"],
            "MOTCUA_CHANNEL_CONCURRENCY": concurrency,
        }
        drainer = subprocess.Popen(
            [sys.executable, me, "--drain"], env=denv, cwd=str(ROOT), stdout=subprocess.PIPE, text=True
        )
        busy = []
        while drainer.poll() is None:
            _, lat = drive(client, 10)
            busy.extend(lat)
        figures = json.loads(drainer.stdout.readline())
    finally:
        for p in (server, gw):
            p.terminate()
            p.wait(10)
    med = statistics.median
    print(
        f"outbox: {made} waiting messages; drained by one process, each channel in its own thread, "
        f"{concurrency} sending threads per channel; SQLite (file, WAL) in {tmp}; gateways on 127.0.0.1"
    )
    for c in ("sms", "zalo", "email", "national_portal"):
        f = figures[c]
        print(
            f"  {c:16s} {f['sent']:7d} sent, {f['failed']} failed, in {f['seconds']:7.1f} s = "
            f"{f['sent'] / f['seconds']:7.0f} messages/s"
        )
    print(f"  all channels: {made} in {figures['total']:.1f} s = {made / figures['total']:.0f} messages/s")
    print(
        f"task completion over HTTP: idle median {med(idle) * 1000:.2f} ms p99 {p99(idle) * 1000:.2f} ms; "
        f"while draining median {med(busy) * 1000:.2f} ms p99 {p99(busy) * 1000:.2f} ms ({len(busy)} completions)"
    )
    print(
        f"ratio while draining / idle: median {med(busy) / med(idle):.2f}x, p99 {p99(busy) / p99(idle):.2f}x "
        f"(goal ≤ 1.2x)"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--gateways"]:
        gateways()
    elif sys.argv[1:2] == ["--drain"]:
        drain()
    else:
        main()
