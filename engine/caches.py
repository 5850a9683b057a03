"""Per-process caches kept correct across processes (docs/operations.md, "Scaling").

Each API process and worker keeps a few things in memory: the working calendars with the administrators'
overrides and the agencies' hours and days (the dossier service), and users' roles and agency (the API's
actor cache). Every change of those rows bumps a counter in `cache_generations` in the same transaction (a flush hook on every session, so no
writer can forget it: API, CLI, worker). Each process reads the counters (one primary-key scan of two rows)
at most every `MOTCUA_CACHE_CHECK_SECONDS` (1 s) and drops its copy of what moved: a change made in one
process counts in all of them within about a second, instead of at the caches' expiry (30 s and 5 s).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import event, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from .models import Agency, AgencyDay, CacheGeneration, CalendarDay, User

log = logging.getLogger("motcua.caches")

# an agency's office hours and days are part of its calendar (engine/agencies.py)
WATCHED: dict[type, str] = {CalendarDay: "calendar", Agency: "calendar", AgencyDay: "calendar", User: "users"}


@event.listens_for(Session, "before_flush")
def _bump(session: Session, _context, _instances) -> None:
    changed = {WATCHED[type(o)] for o in (*session.new, *session.deleted) if type(o) in WATCHED}
    changed.update(WATCHED[type(o)] for o in session.dirty if type(o) in WATCHED and session.is_modified(o))
    for name in sorted(changed):
        bump(session, name)


def bump(session, name: str) -> None:
    """Tell every process that `name` changed, in the caller's transaction (for changes written with Core
    statements, which the flush hook does not see)."""
    session.execute(
        update(CacheGeneration)
        .where(CacheGeneration.name == name)
        .values(generation=CacheGeneration.generation + 1)
        .execution_options(synchronize_session=False)
    )


class CacheWatch:
    """Calls `on_change[name]()` when another (or this) process changed that kind of data since the last look;
    looks at most every `every` seconds. Thread-safe; a database that does not answer is tried next time."""

    def __init__(self, db, on_change: dict[str, Callable[[], None]], every: float = 1.0):
        self.db, self.on_change, self.every = db, on_change, every
        self.seen: dict[str, int] | None = None
        self.next_look = 0.0
        self.lock = threading.Lock()

    def check(self) -> None:
        now = time.monotonic()
        if now < self.next_look or not self.lock.acquire(blocking=False):
            return
        try:
            self.next_look = now + self.every
            with self.db.read() as s:
                current = dict(s.execute(select(CacheGeneration.name, CacheGeneration.generation)).all())
            if self.seen is not None:
                for name, generation in current.items():
                    if self.seen.get(name) != generation and name in self.on_change:
                        self.on_change[name]()
            self.seen = current
        except SQLAlchemyError as exc:  # the database is away: the request itself will say so
            log.debug("cache generations not read: %s", exc)
        finally:
            self.lock.release()
