"""The HTTP shell of motcua: a Flask application over engine/ (which never imports Flask).

    from api import create_app
    app = create_app()                  # Settings.from_env()
    app = create_app(settings, database=db)  # tests: share a Database

Blueprints: each module named in `BLUEPRINTS` is imported and registered by `create_app`:
- a `flask_smorest.Blueprint` named `blp` (or several: any module attribute that is one) goes into the
  OpenAPI document (/api/v1/openapi.json) with its marshmallow schemas;
- a plain `flask.Blueprint` named `bp` is registered as is (web pages, files), outside the document;
- an optional `init_app(app)` function is called after registration.
To add yours, add one line to `BLUEPRINTS` (e.g. "api.calendar"). Use `api.context.services()` for the
database, the settings and the dossier service, `api.auth.authenticate` as `blp.before_request` for
bearer-token users (`api.context.actor()`), `api.common.errors(blp, 401, 403, ...)` to document error
responses, and raise `engine.errors.MotcuaError` subclasses: they become application/problem+json.
"""

from __future__ import annotations

import http
import importlib
import logging
from inspect import iscoroutinefunction
from types import FunctionType, MethodType

import flask_smorest
from flask import Flask, current_app, request
from flask_smorest.utils import prepare_response
from SpiffWorkflow.exceptions import SpiffWorkflowException
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SqlaTimeout
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from engine.caches import CacheWatch
from engine.config import Settings
from engine.db import Database
from engine.dossiers import DossierService
from engine.errors import MotcuaError

from . import observability
from .auth import authenticate
from .context import Services, init_db
from .errors import (
    PROBLEM,
    ProblemSchema,
    from_database_error,
    from_http_exception,
    from_motcua,
    from_workflow_error,
    internal_error,
)
from .headers import security_headers
from .hygiene import check_request
from .ratelimit import LOGIN_RULES, LOOKUP_PER_ADDRESS, Backoff

log = logging.getLogger("motcua.api")

# One line per module holding blueprints (see the module docstring).
BLUEPRINTS = [
    "api.health",
    "api.docs",
    "api.auth",
    "api.procedures",
    "api.dossiers",
    "api.tasks",
    "api.public",
    "api.calendar",
    "api.agencies",  # agencies and their calendars (admin; docs/deadlines.md)
    "api.actions",  # legal actions on dossiers (docs/deadlines.md)
    "api.attachments",  # dossier attachments and the documents checklist
    "api.monitor",
    "api.reports",  # overdue monitor and periodic report (supervisors, docs/reports.md)
    "api.channels",  # citizen channels: inbound lookups, delivery logs, dead letters, templates (docs/channels.md)
    "api.citizens",  # citizens online: catalogue, submission, sign-in, my dossiers, payment (docs/online.md)
    "api.web",
    "api.metrics",  # GET /metrics, Prometheus text format (docs/operations.md)
]

API_DESCRIPTION = """\
API của hệ thống một cửa điện tử motcua / the motcua one-stop-shop API.

* Xác thực / authentication: `POST /api/v1/auth/token` → `Authorization: Bearer <access_token>`.
* Lỗi / errors: `application/problem+json` with `message_vi`, `message_en`, per-field `fields` and, for a
  refused procedure, `problems` naming each BPMN element.
* Phân trang / paging: `page` (from 1) and `per_page` (at most 100; the procedure catalogue at most 1000);
  answers are `{items, page, per_page, total}`.
* Idempotency: `POST /dossiers` and `POST /tasks/{id}/complete` accept an `Idempotency-Key` header; a retry
  with the same key (same user) returns the first result; the same key on a different request is a 422.
* Thời gian / times: ISO 8601 with offset, shown at UTC+7.
"""


class MotcuaApi(flask_smorest.Api):
    """flask-smorest with problem+json errors and no catch-all `default` response in the document."""

    ERROR_SCHEMA = ProblemSchema
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_responses(self):
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM)
            self.spec.components.response(status.name, response, lazy=True)

    def handle_http_exception(self, error):
        return from_http_exception(error)


class MotcuaFlask(Flask):
    """Flask asking once per function whether it is a coroutine. `ensure_sync` is called for every hook and
    view of every request (about nine per request, each an `inspect.iscoroutinefunction`); a plain function
    or bound method stays plain, so the answer is kept (functions hash by identity; bounded)."""

    _plain: set

    def ensure_sync(self, func):
        plain = self.__dict__.get("_plain")
        if plain is None:
            plain = self._plain = set()
        try:
            if func in plain:
                return func
        except TypeError:  # an unhashable callable: asked every time, as Flask does
            return super().ensure_sync(func)
        if iscoroutinefunction(func):
            return self.async_to_sync(func)
        if type(func) in (FunctionType, MethodType) and len(plain) < 10_000:
            plain.add(func)
        return func


def _check_unprotected_request() -> None:
    """Input hygiene (api/hygiene.py) for the operations open to anyone. A blueprint behind a bearer token
    runs it in `api.auth.authenticate`, after the caller's role was checked: authorization comes first."""
    bp = request.blueprint
    if bp and authenticate in current_app.before_request_funcs.get(bp, ()):
        return
    check_request()


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> Flask:
    settings = settings or Settings.from_env()
    db = database or Database.from_settings(settings)
    app = MotcuaFlask(__name__)
    app.config.update(
        API_TITLE="motcua",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        API_SPEC_OPTIONS={
            "info": {"description": API_DESCRIPTION},
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
            },
            "security": [{"bearerAuth": []}],
        },
    )
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    if settings.secret_key == "dev-secret-change-me" or len(settings.secret_key.encode()) < 32:
        log.warning("MOTCUA_SECRET_KEY is unset or shorter than 32 bytes: set a long random secret in production")
    app.extensions["motcua"] = Services(
        settings=settings,
        db=db,
        dossiers=DossierService(db, settings),
        login_limiter=Backoff(db, LOGIN_RULES),
        lookup_limiter=LOOKUP_PER_ADDRESS,
    )
    if settings.trusted_proxies:
        # The client address (limits, audit) is the one the trusted proxies saw, never a header the client
        # wrote itself: only the last `trusted_proxies` hops of X-Forwarded-For are believed.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)
    init_db(app)  # flask-sqlalchemy: request-scoped read sessions on the engine's own engine and metadata
    api = MotcuaApi(app)
    app.extensions["motcua_api"] = api

    # Per-process caches (the calendar, users' roles) follow changes made in other processes (engine/caches.py).
    watch = CacheWatch(
        db,
        {
            "calendar": app.extensions["motcua"].dossiers.invalidate_calendar,
            "users": lambda: app.extensions.get("motcua_actors", {}).clear(),
        },
        every=settings.cache_check_seconds,
    )
    app.extensions["motcua_cache_watch"] = watch
    app.before_request(_check_unprotected_request)
    observability.init_app(app)  # request id, latency metrics, access log: before every other hook
    app.before_request(watch.check)
    app.after_request(security_headers)
    app.register_error_handler(MotcuaError, from_motcua)
    app.register_error_handler(HTTPException, from_http_exception)
    app.register_error_handler(SpiffWorkflowException, from_workflow_error)
    app.register_error_handler(DBAPIError, from_database_error)  # database away: 503, not 500
    app.register_error_handler(SqlaTimeout, from_database_error)  # connection pool exhausted: 503
    app.register_error_handler(Exception, internal_error)

    for name in BLUEPRINTS:
        module = importlib.import_module(name)
        for value in list(vars(module).values()):
            if isinstance(value, flask_smorest.Blueprint) and value.import_name == module.__name__:
                api.register_blueprint(value)
        plain = getattr(module, "bp", None)
        if plain is not None and not isinstance(plain, flask_smorest.Blueprint):
            app.register_blueprint(plain)
        if callable(getattr(module, "init_app", None)):
            module.init_app(app)
    return app


__all__ = ["create_app", "BLUEPRINTS", "MotcuaApi", "MotcuaFlask"]
