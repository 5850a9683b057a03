"""What every request handler reaches for: the settings, the database, the dossier service, the limiters and
the acting user. One `Services` per application, in `app.extensions["motcua"]`.

Colleagues' blueprints use it the same way:

    from api.context import services, actor
    with read_session() as s: ...          # reads: the request's flask-sqlalchemy session
    services().dossiers.claim(actor(), task_id)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import current_app, g
from flask_sqlalchemy import SQLAlchemy

from engine.auth import Actor
from engine.config import Settings
from engine.db import Database
from engine.dossiers import DossierService
from engine.models import Base
from engine.ratelimit import Limit

from .ratelimit import Backoff


@dataclass
class Services:
    settings: Settings
    db: Database
    dossiers: DossierService
    login_limiter: Backoff
    lookup_limiter: Limit


def services() -> Services:
    return current_app.extensions["motcua"]


def actor() -> Actor:
    """The authenticated user of this request (set by `api.auth.authenticate`)."""
    return g.actor


class _EngineBoundSQLAlchemy(SQLAlchemy):
    """flask-sqlalchemy over engine/'s own metadata and engine: no second pool, no second set of models.

    engine/ defines the tables (`engine.models.Base`) and builds the engines (`engine.db.Database`, with its
    SQLite pragmas); flask-sqlalchemy adds what Flask is good at: one session per request, removed when
    the request ends.
    """

    def _make_engine(self, bind_key, options, app):
        return app.extensions["motcua"].db.engine


fsa = _EngineBoundSQLAlchemy(metadata=Base.metadata, session_options={"expire_on_commit": False})


def init_db(app) -> None:
    app.config.setdefault("SQLALCHEMY_DATABASE_URI", services_of(app).settings.database_url)
    fsa.init_app(app)


def services_of(app) -> Services:
    return app.extensions["motcua"]


@contextmanager
def read_session() -> Iterator:
    """The request's read-only session (flask-sqlalchemy); its transaction ends when the block does.

    Writes never go through it: they run in `engine.db.Database.uow()` inside the engine's services.
    """
    session = fsa.session
    finished = False
    try:
        yield session
        finished = True
    finally:
        services().db.end_read(session(), finished)  # the request's Session behind the scoped proxy
