"""Observability through HTTP: the request id (header, problem documents, logs), /metrics in Prometheus format
with the database's figures agreeing with the monitor, JSON logs, and a database that does not answer (503)."""

from __future__ import annotations

import io
import json
import logging
import socket
from datetime import timedelta

import time_machine
from prometheus_client.parser import text_string_to_metric_families

from api import create_app
from engine import logs
from engine.db import Database
from engine.models import utcnow
from engine.worker import Keepalive, Worker

from .helpers import assert_problem, new_dossier


def scrape(client, headers=None) -> dict:
    client.app.config["MOTCUA_METRICS_CACHE_SECONDS"] = 0  # read the database on every scrape
    r = client.raw.get("/metrics", headers=headers or {})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.content_type.startswith("text/plain; version=")
    out = {}
    for fam in text_string_to_metric_families(r.get_data(as_text=True)):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_request_id_is_made_echoed_and_kept(client):
    r = client.get("/healthz")
    rid = r.headers["X-Request-Id"]
    assert len(rid) == 16 and int(rid, 16) >= 0
    r = client.get("/healthz", headers={"X-Request-Id": "proxy-abc.123"})
    assert r.headers["X-Request-Id"] == "proxy-abc.123"
    r = client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert r.headers["X-Request-Id"] != "bad id with spaces"


def test_problem_documents_carry_the_request_id(client):
    r = client.get("/api/v1/dossiers/NO-SUCH", "tiepnhan", headers={"X-Request-Id": "req-404"})
    body = assert_problem(r, 404)
    assert body["request_id"] == "req-404" == r.headers["X-Request-Id"]
    r = client.get("/api/v1/dossiers")  # refused before any route code runs: still carries it
    assert assert_problem(r, 401)["request_id"] == r.headers["X-Request-Id"]


def test_access_log_is_json_with_request_id_user_and_dossier(client):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    access = logging.getLogger("motcua.access")
    access.addHandler(handler)
    old = access.level
    access.setLevel(logging.INFO)
    try:
        d = new_dossier(client)
        task = d["tasks"][0]["id"]
        client.post(
            f"/api/v1/tasks/{task}/complete",
            "canbo",
            json={"data": {"decision": "accept"}},
            headers={"X-Request-Id": "r-done"},
        )
        client.get(f"/api/v1/dossiers/{d['code']}", "tiepnhan", headers={"X-Request-Id": "r-read"})
    finally:
        access.removeHandler(handler)
        access.setLevel(old)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    created = next(x for x in lines if x["endpoint"] == "/api/v1/dossiers" and x["status"] == 201)
    assert created["user"] == "tiepnhan" and created["dossier"] == d["code"] and created["request_id"]
    done = next(x for x in lines if x["request_id"] == "r-done")
    assert done["endpoint"] == "/api/v1/tasks/<task_id>/complete" and done["dossier"] == d["code"]
    assert done["user"] == "canbo" and done["level"] == "INFO" and done["ms"] >= 0
    read = next(x for x in lines if x["request_id"] == "r-read")
    assert read["dossier"] == d["code"] and read["msg"].startswith("GET /api/v1/dossiers/")
    assert logs.context() == {}  # nothing leaks into the next request of this thread


def test_access_line_written_directly_is_the_logging_line(client):
    """Under `motcua serve` (JSON handlers on the root logger only) the access line skips `logging`'s record;
    it must be the very object `logging` would have written (a no-op filter sends it through `logging`)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root, access = logging.getLogger(), logging.getLogger("motcua.access")
    saved = root.handlers[:], root.level, access.handlers[:], access.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    access.handlers[:] = []
    access.setLevel(logging.NOTSET)
    try:
        d = new_dossier(client)
        path = f"/api/v1/dossiers/{d['code']}"
        assert logs.direct_handlers(access) == [handler]
        client.get(path, "tiepnhan", headers={"X-Request-Id": "r-direct"})
        handler.addFilter(logging.Filter())
        assert logs.direct_handlers(access) is None
        client.get(path, "tiepnhan", headers={"X-Request-Id": "r-logging"})
    finally:
        root.handlers[:], level, access.handlers[:], access_level = saved
        root.setLevel(level)
        access.setLevel(access_level)
    lines = {x["request_id"]: x for x in map(json.loads, stream.getvalue().splitlines()) if "request_id" in x}
    direct, logged = lines["r-direct"], lines["r-logging"]
    assert list(direct) == list(logged)  # same keys in the same order
    for x in (direct, logged):
        assert x.pop("request_id") and x.pop("ms") >= 0 and x.pop("ts").endswith("+00:00")
    assert (
        direct
        == logged
        == {
            "level": "INFO",
            "logger": "motcua.access",
            "msg": f"GET {path} 200",
            "dossier": d["code"],
            "user": "tiepnhan",
            "endpoint": "/api/v1/dossiers/<code>",
            "status": 200,
        }
    )


def test_metrics_latency_per_endpoint_and_database_figures(client, app):
    before = scrape(client)
    dossiers = [new_dossier(client) for _ in range(3)]
    after = scrape(client)
    key = {"endpoint": "/api/v1/dossiers", "method": "POST"}
    assert (
        value(after, "motcua_http_request_duration_seconds_count", **key)
        - value(before, "motcua_http_request_duration_seconds_count", **key)
        == 3
    )
    assert (
        value(after, "motcua_http_requests_total", status="201", **key)
        - value(before, "motcua_http_requests_total", status="201", **key)
        == 3
    )
    assert value(after, "motcua_database_up") == 1
    status = str(dossiers[0]["status_code"])
    assert value(after, "motcua_dossiers_open", status_code=status) == 3
    assert value(after, "motcua_dossiers_overdue") == 0
    pending = {labels: v for (name, labels), v in after.items() if name == "motcua_outbox_pending"}
    assert sum(pending.values()) > 0  # receipts to the applicant wait in the outbox

    # Past every due time: the metrics count what the monitor counts (one definition of overdue).
    with time_machine.travel(utcnow() + timedelta(days=400), tick=False):
        later = scrape(client)
        monitor = client.get("/api/v1/monitor/overdue", "supervisor").get_json()
    assert value(later, "motcua_dossiers_overdue") == 3 == monitor["total_dossiers"]
    assert value(later, "motcua_steps_overdue") == monitor["total_tasks"]
    assert value(later, "motcua_timer_lag_seconds") > 300 * 86400  # nothing swept for a year


def test_worker_heartbeat_shows_in_metrics(client, app, settings):
    svc = app.extensions["motcua"]
    keep = Keepalive(Worker(settings, db=svc.db, service=svc.dossiers))
    keep.beat()
    samples = scrape(client)
    worker = f"{socket.gethostname()}:{keep.pid}"
    assert 0 <= value(samples, "motcua_worker_heartbeat_age_seconds", worker=worker) < 60
    assert ("motcua_worker_sweeps", (("worker", worker),)) in samples


def test_metrics_token(client, app):
    app.extensions["motcua"].settings.metrics_token = "t" * 32
    assert_problem(client.raw.get("/metrics"), 401)
    assert_problem(client.raw.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401)
    assert scrape(client, {"Authorization": "Bearer " + "t" * 32})


def test_database_away_is_503_in_vietnamese_and_fast(settings):
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    away = Database(f"postgresql+psycopg://postgres@127.0.0.1:{port}/none?connect_timeout=2")
    app = create_app(settings, database=away)
    c = app.test_client()
    r = c.post("/api/v1/auth/token", json={"username": "a", "password": "b"}, headers={"X-Request-Id": "db-away"})
    body = assert_problem(r, 503, "database_unavailable")
    assert body["message_vi"].startswith("Cơ sở dữ liệu tạm thời không sẵn sàng")
    assert r.headers["Retry-After"] and body["request_id"] == "db-away"
    samples = {}
    for fam in text_string_to_metric_families(c.get("/metrics").get_data(as_text=True)):
        for s in fam.samples:
            samples[s.name] = s.value
    assert samples["motcua_database_up"] == 0  # /metrics itself still answers
    away.dispose()
