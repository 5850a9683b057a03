"""Per request: a request id, the latency metrics and one access-log line (docs/operations.md, "Logs").

* `X-Request-Id`: taken from the request when it is 1–64 characters of `[A-Za-z0-9._-]` (the reverse proxy
  sets one), else made here; echoed in the response header and in every problem document (`request_id`),
  and carried by every log record of the request (engine/logs.py) with the user and the dossier code.
* the latency histogram and request counter of api/metrics.py, labelled by the route's template (never the
  raw path) and the method (an unknown one is `OTHER`): their label sets do not grow with dossiers or clients.
* one `motcua.access` record per request (method, endpoint, path, status, ms); MOTCUA_ACCESS_LOG=0 turns
  the access log off. Where it goes only to the JSON handlers of `engine.logs.configure` (as under
  `motcua serve`) its line is written to them directly, without a LogRecord (engine.logs.direct_handlers).

It is on every request's path, so it does only constant work: no I/O besides the log line.
"""

from __future__ import annotations

import logging
import os
import re
import time

from flask import g, has_request_context, request

from engine import logs

from .metrics import REQUEST_SECONDS, REQUESTS

access = logging.getLogger("motcua.access")
_VALID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
UNMATCHED = "<unmatched>"
# A client may send any method token; each new one would be a label set kept by the process for ever
# (docs/performance.md, "Memory"): the others are counted together.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"


def request_id() -> str | None:
    """The current request's id (None outside a request)."""
    return getattr(g, "request_id", None) if g else None


def _begin() -> None:
    req = request._get_current_object()  # one context lookup, not one per attribute
    g.t0 = time.perf_counter()
    rid = req.environ.get("HTTP_X_REQUEST_ID")  # request.headers.get("X-Request-Id"), without the Headers view
    if not rid or not _VALID.match(rid):
        rid = os.urandom(8).hex()
    g.request_id = rid
    view_args = req.view_args
    logs.bind(request_id=rid, dossier=view_args.get("code") if view_args else None)


def note_dossier(code: str | None) -> None:
    """Name the dossier this request is about, for its log records (routes whose path has no code)."""
    if code:
        logs.bind(dossier=code)


# The labelled series of each (endpoint, method) and (endpoint, method, status): prometheus_client's
# `labels()` checks and locks on every call; the series it returns stay the same objects.
_latency: dict[tuple[str, str], object] = {}
_counted: dict[tuple[str, str, int], object] = {}


def _series(endpoint: str, method: str, status: int):
    latency = _latency.get((endpoint, method))
    if latency is None:
        latency = _latency[(endpoint, method)] = REQUEST_SECONDS.labels(endpoint, method)
    counter = _counted.get((endpoint, method, status))
    if counter is None:
        counter = _counted[(endpoint, method, status)] = REQUESTS.labels(endpoint, method, str(status))
    return latency, counter


def _end(response):
    g_ = g._get_current_object()
    rid = getattr(g_, "request_id", None)
    if rid is None:
        return response
    req = request._get_current_object()
    response.headers["X-Request-Id"] = rid
    rule = req.url_rule
    endpoint = rule.rule if rule is not None else UNMATCHED
    seconds = time.perf_counter() - g_.t0
    method = req.method if req.method in METHODS else OTHER_METHOD
    status = response.status_code
    latency, counter = _series(endpoint, method, status)
    latency.observe(seconds)
    counter.inc()
    if access.isEnabledFor(logging.INFO):
        extra = {"endpoint": endpoint, "status": status, "ms": round(seconds * 1000, 2)}
        handlers = logs.direct_handlers(access)
        if handlers is not None:  # the JSON log on stderr of `motcua serve`: the same line, written directly
            msg = f"{req.method} {req.path} {status}"
            logs.write_line(handlers, logs.json_line(time.time(), "INFO", access.name, msg, extra))
        else:
            access.info("%s %s %s", req.method, req.path, status, extra=extra)
    return response


def _forget(_exc=None) -> None:
    logs.reset()


def _user() -> dict:
    if has_request_context():
        a = getattr(g, "actor", None)
        if a is not None:
            return {"user": a.username}
    return {}


logs.add_provider(_user)


def init_app(app) -> None:
    app.before_request_funcs.setdefault(None, []).insert(0, _begin)  # first, so refusals carry the id too
    app.after_request(_end)
    app.teardown_request(_forget)
    if os.environ.get("MOTCUA_ACCESS_LOG", "1") == "0":
        access.disabled = True
