"""A small in-process rate limiter (sliding window), so that no extra dependency is needed.

Used by POST /auth/token (failed attempts per username + client IP) and GET /public/dossiers/{code}
(lookups per client IP, against enumeration). Counters live in the memory of one server process: with
`motcua serve` (waitress, one process, many threads) that is the whole server; behind several processes each
one counts on its own, so the effective limit is multiplied by their number. Memory is bounded: at most
`max_keys` keys are tracked, the stalest dropped first.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque

from engine.errors import MotcuaError


class TooManyRequests(MotcuaError):
    status = 429
    code = "too_many_requests"

    def __init__(self, retry_after: int, message_vi: str | None = None, message_en: str | None = None):
        super().__init__(
            message_vi or f"Quá nhiều yêu cầu; vui lòng thử lại sau {retry_after} giây",
            message_en or f"too many requests; retry in {retry_after} s",
        )
        self.retry_after = retry_after


class SlidingWindowLimiter:
    """At most `limit` events per `window` seconds for each key."""

    def __init__(self, limit: int, window: float, max_keys: int = 100_000, clock=time.monotonic):
        self.limit, self.window, self.max_keys, self.clock = limit, window, max_keys, clock
        self._events: OrderedDict[str, deque] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key, now) -> deque | None:
        q = self._events.get(key)
        if q is None:
            return None
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._events[key]
            return None
        return q

    def retry_after(self, key) -> int | None:
        """Seconds until one more event is allowed, or None if it is allowed now."""
        with self._lock:
            now = self.clock()
            q = self._recent(key, now)
            if q is None or len(q) < self.limit:
                return None
            return max(1, math.ceil(q[0] + self.window - now))

    def hit(self, key) -> int | None:
        """Record one event; returns the seconds to wait if this event is over the limit (not recorded then)."""
        with self._lock:
            now = self.clock()
            q = self._recent(key, now)
            if q is not None and len(q) >= self.limit:
                return max(1, math.ceil(q[0] + self.window - now))
            if q is None:
                q = self._events[key] = deque()
            q.append(now)
            self._events.move_to_end(key)
            while len(self._events) > self.max_keys:
                self._events.popitem(last=False)
            return None

    def reset(self, key=None) -> None:
        with self._lock:
            if key is None:
                self._events.clear()
            else:
                self._events.pop(key, None)
