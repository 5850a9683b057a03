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
    g.t0 = time.perf_counter()
    rid = request.headers.get("X-Request-Id")
    if not rid or not _VALID.match(rid):
        rid = os.urandom(8).hex()
    g.request_id = rid
    logs.bind(request_id=rid, dossier=(request.view_args or {}).get("code"))


def note_dossier(code: str | None) -> None:
    """Name the dossier this request is about, for its log records (routes whose path has no code)."""
    if code:
        logs.bind(dossier=code)


def _end(response):
    rid = getattr(g, "request_id", None)
    if rid is None:
        return response
    response.headers["X-Request-Id"] = rid
    rule = request.url_rule
    endpoint = rule.rule if rule is not None else UNMATCHED
    seconds = time.perf_counter() - g.t0
    method = request.method if request.method in METHODS else OTHER_METHOD
    REQUEST_SECONDS.labels(endpoint, method).observe(seconds)
    REQUESTS.labels(endpoint, method, str(response.status_code)).inc()
    if access.isEnabledFor(logging.INFO):
        status = response.status_code
        extra = {"endpoint": endpoint, "status": status, "ms": round(seconds * 1000, 2)}
        handlers = logs.direct_handlers(access)
        if handlers is not None:  # the JSON log on stderr of `motcua serve`: the same line, written directly
            msg = f"{request.method} {request.path} {status}"
            logs.write_line(handlers, logs.json_line(time.time(), "INFO", access.name, msg, extra))
        else:
            access.info("%s %s %s", request.method, request.path, status, extra=extra)
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
