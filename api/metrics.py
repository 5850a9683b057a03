"""GET /metrics (outside /api/v1): Prometheus text format (docs/operations.md, "Metrics").

Two kinds of figures:

* per process, kept by prometheus_client: the request latency histogram per endpoint and method
  (`motcua_http_request_duration_seconds`, the endpoint being the route's template, never the raw path) and
  the request counter per endpoint, method and status (`motcua_http_requests_total`). With several API
  processes (`motcua serve --workers N`) `PROMETHEUS_MULTIPROC_DIR` is set before any import and each
  process writes its samples there; whichever process answers /metrics adds them all up.
* from the database, read when scraped (engine/ops.py, at most every `CACHE_SECONDS` per process;
  app config `MOTCUA_METRICS_CACHE_SECONDS`): open
  dossiers by status, overdue dossiers and steps, timer lag, outbox backlog per channel, dead letters and
  the workers' heartbeats. Every process answers the same. If the database does not answer, these are left
  out and `motcua_database_up` is 0: the endpoint itself still answers.

`MOTCUA_METRICS_TOKEN`, when set, is required as `Authorization: Bearer <token>`; the reverse proxy of
compose.yaml does not publish /metrics at all.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time

from flask import Blueprint, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import text

from engine import ops
from engine.errors import MotcuaError

log = logging.getLogger("motcua.metrics")
bp = Blueprint("metrics", __name__)

CACHE_SECONDS = 10.0
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUEST_SECONDS = Histogram(
    "motcua_http_request_duration_seconds",
    "Time to answer one HTTP request, per endpoint (route template) and method",
    ["endpoint", "method"],
    buckets=BUCKETS,
)
REQUESTS = Counter(
    "motcua_http_requests", "HTTP requests answered, per endpoint, method and status", ["endpoint", "method", "status"]
)


class Unauthorized(MotcuaError):
    status = 401
    code = "unauthenticated"


class DatabaseCollector:
    """The database's figures (engine/ops.py) as Prometheus gauges, cached `CACHE_SECONDS` per process."""

    def __init__(self, db, cache_seconds=lambda: CACHE_SECONDS):
        self.db, self.cache_seconds = db, cache_seconds
        self._lock = threading.Lock()
        self._at = 0.0
        self._figures: dict | None = None

    def _read(self) -> dict | None:
        with self._lock:
            if self._figures is not None and time.monotonic() - self._at < self.cache_seconds():
                return self._figures
            try:
                with self.db.read() as s:
                    if not self.db.is_sqlite:
                        s.execute(text("SET LOCAL statement_timeout = 5000"))
                    self._figures = ops.figures(s)
            except Exception:  # the database is away: say so, answer the rest
                log.warning("metrics: the database did not answer", exc_info=True)
                self._figures = None
            self._at = time.monotonic()
            return self._figures

    def collect(self):
        f = self._read()
        up = GaugeMetricFamily("motcua_database_up", "1 when the database answered the last metrics read")
        up.add_metric([], 1.0 if f is not None else 0.0)
        yield up
        if f is None:
            return
        g = GaugeMetricFamily("motcua_dossiers_open", "Open dossiers by national status code", labels=["status_code"])
        for code, n in sorted(f["open_by_status"].items()):
            g.add_metric([str(code)], n)
        yield g
        yield GaugeMetricFamily(
            "motcua_dossiers_overdue", "Overdue dossiers (docs/deadlines.md, Overdue)", value=f["overdue_dossiers"]
        )
        yield GaugeMetricFamily("motcua_steps_overdue", "Overdue steps (ready tasks)", value=f["overdue_steps"])
        yield GaugeMetricFamily(
            "motcua_timer_lag_seconds", "Now minus the oldest due timer (0: nothing due)", value=f["timer_lag_seconds"]
        )
        pending = GaugeMetricFamily("motcua_outbox_pending", "Messages waiting to be sent", labels=["channel"])
        oldest = GaugeMetricFamily(
            "motcua_outbox_oldest_pending_seconds", "Age of the oldest waiting message", labels=["channel"]
        )
        for ch, n in sorted(f["outbox_pending"].items()):
            pending.add_metric([ch], n)
            oldest.add_metric([ch], f["outbox_oldest_age_seconds"][ch])
        yield pending
        yield oldest
        dead = GaugeMetricFamily("motcua_outbox_dead", "Dead letters (gave up)", labels=["channel"])
        for ch, n in sorted(f["outbox_dead"].items()):
            dead.add_metric([ch], n)
        yield dead
        age = GaugeMetricFamily(
            "motcua_worker_heartbeat_age_seconds",
            "Seconds since each background worker's last heartbeat",
            labels=["worker"],
        )
        sweeps = GaugeMetricFamily(
            "motcua_worker_sweeps", "Database sweeps run by each worker since it started", labels=["worker"]
        )
        for wid, w in sorted(f["workers"].items()):
            age.add_metric([wid], w["beat_age"])
            sweeps.add_metric([wid], w["sweeps"])
        yield age
        yield sweeps


def _process_registry():
    """The per-process samples: this process's (single process) or every process's (multi-process mode)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    return registry


@bp.route("/metrics", methods=["GET"])
def metrics():
    from .context import services

    svc = services()
    token = svc.settings.metrics_token
    if token:
        given = request.headers.get("Authorization", "").partition(" ")[2].strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthorized("Cần mã truy cập số liệu vận hành", "the metrics token is required")
    from flask import current_app

    db_registry = current_app.extensions["motcua_metrics"]
    body = generate_latest(_process_registry()) + generate_latest(db_registry)
    return Response(body, mimetype=CONTENT_TYPE_LATEST.split(";")[0], content_type=CONTENT_TYPE_LATEST)


def init_app(app) -> None:
    from .context import services_of

    registry = CollectorRegistry(auto_describe=False)
    cache = lambda: app.config.get("MOTCUA_METRICS_CACHE_SECONDS", CACHE_SECONDS)  # noqa: E731
    registry.register(DatabaseCollector(services_of(app).db, cache))
    app.extensions["motcua_metrics"] = registry
