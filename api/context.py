"""What every request handler reaches for: the settings, the database, the dossier service, the limiters and
the acting user. One `Services` per application, in `app.extensions["motcua"]`.

Colleagues' blueprints use it the same way:

    from api.context import services, actor
    with services().db.read() as s: ...
    services().dossiers.claim(actor(), task_id)
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, g

from engine.auth import Actor
from engine.config import Settings
from engine.db import Database
from engine.dossiers import DossierService

from .ratelimit import SlidingWindowLimiter


@dataclass
class Services:
    settings: Settings
    db: Database
    dossiers: DossierService
    login_limiter: SlidingWindowLimiter
    lookup_limiter: SlidingWindowLimiter


def services() -> Services:
    return current_app.extensions["motcua"]


def actor() -> Actor:
    """The authenticated user of this request (set by `api.auth.authenticate`)."""
    return g.actor
