"""Rate limits shared by every process of an installation, kept in the database (table `rate_counters`).

Anonymous online submissions and sign-in codes are limited per client IP and per phone number. Those
limits must hold however many server processes run, so the counters are rows, not process memory (compare
api/ratelimit.py, the in-process limiter of staff logins). One counter is a fixed window: the first hit
opens a window of `window` seconds; each hit adds one; once `limit` hits are counted, further hits are
refused until the window ends (`RateLimited`, HTTP 429 with Retry-After). A refused hit is not counted:
its transaction rolls back.

One hit is one atomic statement (INSERT … ON CONFLICT DO UPDATE … RETURNING, SQLite 3.35+ and PostgreSQL),
in the caller's transaction (`hit`) or one of its own (`check`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import cast

from sqlalchemy import Table, bindparam, case, delete
from sqlalchemy.dialects import postgresql, sqlite

from .errors import MotcuaError
from .models import RateCounter, utcnow

COUNTERS = cast(Table, RateCounter.__table__)


class RateLimited(MotcuaError):
    """Too many requests for one key: HTTP 429, `retry_after` seconds (the Retry-After header)."""

    status = 429
    code = "too_many_requests"

    def __init__(self, retry_after: int, message_vi: str | None = None, message_en: str | None = None):
        super().__init__(
            message_vi or f"Quá nhiều yêu cầu; vui lòng thử lại sau {retry_after} giây",
            message_en or f"too many requests; retry in {retry_after} s",
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limit:
    """At most `limit` hits per `window` seconds for each key starting with `name`."""

    name: str
    limit: int
    window: int


@cache
def _hit_stmt(dialect: str):
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(COUNTERS)
    stale = COUNTERS.c.window_start <= bindparam("stale_before")
    return (
        ins.values(key=bindparam("key"), window_start=bindparam("now"), count=1)
        .on_conflict_do_update(
            index_elements=["key"],
            set_={
                # a stale window restarts at 1
                "count": case((stale, 1), else_=COUNTERS.c.count + 1),
                "window_start": case((stale, ins.excluded.window_start), else_=COUNTERS.c.window_start),
            },
        )
        .returning(COUNTERS.c.count, COUNTERS.c.window_start)
    )


def hit(session, limit: Limit, key: str, now: datetime | None = None, *, vi: str | None = None, en: str | None = None):
    """Count one hit of `limit` for `key`; RateLimited when the window is full."""
    now = now or utcnow()
    full_key = f"{limit.name}:{key}"[:200]
    params = {
        "key": full_key,
        "now": now,
        "stale_before": now - timedelta(seconds=limit.window),
    }
    conn = session.connection()
    count, start = conn.execute(_hit_stmt(conn.dialect.name), params).one()
    if start.tzinfo is None:  # SQLite: RETURNING gives the stored (UTC) text back without its type
        start = start.replace(tzinfo=now.tzinfo)
    if count > limit.limit:  # the caller's transaction rolls back: a refused hit is not counted
        wait = max(1, math.ceil((start + timedelta(seconds=limit.window) - now).total_seconds()))
        raise RateLimited(wait, vi, en)
    if random.random() < 0.01:  # now and then, forget windows that ended long ago
        session.execute(delete(RateCounter).where(RateCounter.window_start < now - timedelta(days=1)))
    return count


def check(db, *hits: tuple[Limit, str], vi: str | None = None, en: str | None = None) -> None:
    """Count several hits in one transaction of their own: all are counted, or (one refused) none is."""
    with db.uow() as s:
        for limit, key in hits:
            hit(s, limit, key, vi=vi, en=en)
