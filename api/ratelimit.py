"""Sign-in and lookup limits, counted in the database (table `throttles`) so that every server process and
every worker shares them (docs/security.md, "Sign-in").

- `Backoff` (failed sign-ins): each failure adds one to a counter per key; past `free` failures every further
  one makes the key wait `base · 2^(n − free − 1)` seconds, at most `cap`; `forget` seconds without a failure
  start the key over. There is no hard lock: the longest wait is `cap`.
- the public lookup is limited by `engine.ratelimit` (a fixed window, table `rate_counters`), like online
  submission: 30 lookups per minute per address (`LOOKUP_PER_ADDRESS`).

Keys are strings such as `pair:<username>|<address>`; the client address is the one ProxyFix derived from
`MOTCUA_TRUSTED_PROXIES` (api/hygiene.py). Each check or count is one short transaction on the primary key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from engine.models import Throttle, utcnow
from engine.ratelimit import Limit, RateLimited

TooManyRequests = RateLimited  # one 429 for every limit (Retry-After)
LOOKUP_PER_ADDRESS = Limit("lookup", 30, 60)


def _seconds(until: datetime | None, now: datetime) -> int | None:
    if until is None or until <= now:
        return None
    return max(1, math.ceil((until - now).total_seconds()))


def _key(key: str) -> str:
    return key[:200]


@dataclass
class Rule:
    free: int  # failures allowed before any wait
    base: float  # seconds of the first wait
    cap: float  # the longest wait
    forget: float = 900.0  # seconds without a failure after which the key starts over

    def wait(self, failures: int) -> float:
        over = failures - self.free
        if over <= 0:
            return 0.0
        return min(self.cap, self.base * 2 ** min(over - 1, 40))


class Backoff:
    """Growing delays after failures, per key, shared through the database."""

    def __init__(self, db, rules: dict[str, Rule], clock=utcnow):
        self.db, self.rules, self.clock = db, rules, clock

    def retry_after(self, keys: dict[str, str]) -> int | None:
        """Seconds until the next attempt is allowed for all of `keys` ({rule name: key}), or None."""
        now = self.clock()
        with self.db.read() as s:
            until = s.scalars(
                select(Throttle.blocked_until).where(Throttle.key.in_([_key(k) for k in keys.values()]))
            ).all()
        waits = [w for w in (_seconds(u, now) for u in until) if w]
        return max(waits) if waits else None

    def failed(self, keys: dict[str, str]) -> None:
        now = self.clock()
        for _ in range(3):  # a concurrent first failure of the same key: count again
            try:
                with self.db.uow() as s:
                    for rule_name, key in keys.items():
                        rule = self.rules[rule_name]
                        row = s.get(Throttle, _key(key), with_for_update=True)
                        if row is None:
                            row = Throttle(key=_key(key), count=0, window_start=now)
                            s.add(row)
                        elif (now - row.window_start).total_seconds() > rule.forget:
                            row.count = 0
                        row.count += 1
                        row.window_start = now  # the last failure
                        wait = rule.wait(row.count)
                        row.blocked_until = now + timedelta(seconds=wait) if wait else None
                return
            except IntegrityError:
                continue

    def succeeded(self, *keys: str) -> None:
        with self.db.uow() as s:
            s.execute(delete(Throttle).where(Throttle.key.in_([_key(k) for k in keys])))

    def reset(self) -> None:
        with self.db.uow() as s:
            s.execute(delete(Throttle).where(Throttle.key.like("login:%")))


#: Failed sign-ins: one address guessing one account slows down fast; one address trying many accounts
#: (credential stuffing) a little later; an account attacked from many addresses only a little (at most
#: 30 s), so that nobody can lock its owner out.
LOGIN_RULES = {
    "pair": Rule(free=5, base=2, cap=900),
    "address": Rule(free=20, base=2, cap=3600),
    "account": Rule(free=50, base=1, cap=30),
}


def login_keys(username: str, address: str) -> dict[str, str]:
    user = (username or "").strip().lower()
    return {
        "pair": f"login:pair:{user}|{address}",
        "address": f"login:addr:{address}",
        "account": f"login:user:{user}",
    }
