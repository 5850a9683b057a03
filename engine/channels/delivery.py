"""Delivery of the outbox: claim → send → record, per channel, with backoff, dead letter and isolation.

1. **Claim**: the channel's due rows (`next_try_at <= now`, by ix_notifications_due) get `tries + 1` and
   `next_try_at = now + lease`, so no other worker takes them while they are being sent. On PostgreSQL one
   short transaction, one statement (`FOR UPDATE SKIP LOCKED`); on SQLite, whose one write lock every request
   needs too, the rows are read from a snapshot and taken by statements of at most `PIECE` rows, each its
   own transaction (`Database.statements`), on condition that they are still due with the `tries` read.
   A worker that dies mid-send leaves them to be taken again when the lease ends: at-least-once.
2. **Send**, outside any transaction (a slow gateway never holds a database lock), on the channel's own
   threads (`policy.concurrency`), each attempt bounded by `policy.timeout`.
3. **Record** (one short transaction; on SQLite, statements of at most `PIECE` rows, each its own): sent → `sent_at`, `next_try_at = NULL`; failed → `next_try_at =
   now + backoff(tries)` (base·2^(tries-1), capped) and `last_error`, or, at `policy.max_tries`,
   `dead_at` (the dead letters administrators list and re-send). The national portal's updates are never
   dead-lettered (`config.RETRIED_FOREVER`): they are tried every `backoff_cap` seconds until accepted, and a
   portal outage shows as the channel's growing backlog and age in /metrics.

Each channel drains in its own thread with its own time budget, so a dead SMS gateway delays only SMS.

The national portal must see each dossier's status changes in order: only the *head* of a dossier's
queue (its lowest unsent `sequence`) can be claimed, together with the unsent ones after it, which are sent
with it as one list in sequence order. A later status therefore never leaves before an earlier one has
been accepted, whatever the retries, leases and number of workers. Portal updates are never dead-lettered,
so a head that keeps failing is retried (every `backoff_cap` seconds at most) and the rest of its dossier
waits behind it; a dead-lettered head of an older version of this rule holds them until it is re-sent. Each update carries its idempotency key `<code>-<sequence>`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, and_, exists, select, update
from sqlalchemy.orm import aliased

from ..models import Event, Notification, utcnow
from .config import ALL, NATIONAL_PORTAL, ChannelSettings
from .senders import Message

log = logging.getLogger("motcua.delivery")

N = cast(Table, Notification.__table__)
#: SQLite: at most this many rows in one of the drainer's writing statements, each its own transaction, so that
#: a request's transaction never waits long for the write lock behind one (docs/channels.md, "Measured")
PIECE = 25
#: SQLite: the drainer copies the WAL into the database itself every so many of its writing statements (a
#: PASSIVE checkpoint: it takes no write lock and blocks no one), so that the WAL seldom reaches SQLite's
#: automatic checkpoint (1000 pages) in the commit of a request, which would then pay for the drainer's pages
CHECKPOINT_EVERY = 32
LEASE_MARGIN = 10.0  # seconds beyond the worst case of a claimed batch before it may be taken again


class WriteTurns:
    """SQLite: the drainer's writing statements in one process, one at a time and at most `share` of the time.

    SQLite has one writer at a time, and a request whose transaction finds the write lock taken sleeps in
    SQLite's busy handler (1, 2, 5, 10 … ms) until it is free: the more of the time the drainer holds it, the
    more requests wait. A token bucket of write time: it fills at `share` seconds per second, up to `BURST`
    seconds (so a small drain never waits); each writing statement takes its length from it (waiting for the
    lock included: a drainer that had to wait for the requests steps back further), and one that finds it empty
    waits until it is full enough again. The channels' threads take turns here, in order, rather than all
    waiting in SQLite's busy handler beside the requests' transactions (docs/channels.md, "Measured")."""

    BURST = 0.05

    def __init__(self, share: float):
        self.share = min(1.0, max(0.001, share))
        self._lock = threading.Lock()
        self._tokens = self.BURST
        self._at = time.monotonic()
        self._started = 0.0
        self.paused = 0.0  # seconds spent waiting for write time (the benchmark reports it)

    def _fill(self, now: float) -> None:
        self._tokens = min(self.BURST, self._tokens + max(0.0, now - self._at) * self.share)
        self._at = max(self._at, now)

    def __enter__(self) -> None:
        self._lock.acquire()
        self._fill(time.monotonic())
        if self._tokens < 0:
            pause = -self._tokens / self.share
            time.sleep(pause)
            self.paused += pause
            self._fill(time.monotonic())
        self._started = time.monotonic()

    def __exit__(self, *exc) -> None:
        now = time.monotonic()
        self._fill(now)
        self._tokens -= now - self._started
        self._lock.release()

    def stand_still(self, seconds: float) -> None:
        """The benchmark paused the drainer for `seconds`: no write time accrues meanwhile."""
        self._at += seconds


@dataclass
class ChannelResult:
    channel: str
    sent: int = 0
    failed: int = 0
    dead: int = 0
    rounds: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"sent": self.sent, "failed": self.failed, "dead": self.dead, "seconds": round(self.seconds, 3)}


def _message(row) -> Message:
    return Message(
        id=row.id,
        channel=row.channel,
        kind=row.kind,
        recipient=row.recipient,
        body=row.body,
        dossier_id=row.dossier_id,
        subject=row.subject,
        payload=row.payload,
        sequence=row.sequence,
        tries=row.tries,
    )


class Delivery:
    """Drains the outbox for one process (API server, worker or CLI)."""

    def __init__(self, db, channels: ChannelSettings, senders: dict, batch_per_worker: int = 25):
        self.db, self.channels, self.senders = db, channels, senders
        self.batch_per_worker = batch_per_worker
        self._busy = {c: threading.Lock() for c in ALL}
        self._again: set[str] = set()  # channels asked for while they were draining: one more round
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._pools_lock = threading.Lock()
        self._lock = not db.is_sqlite
        self._writes = 0  # SQLite: writing statements so far (CHECKPOINT_EVERY)
        self._writing = WriteTurns(channels.sqlite_write_share) if db.is_sqlite else contextlib.nullcontext()

    def _pool(self, channel: str) -> ThreadPoolExecutor:
        with self._pools_lock:
            pool = self._pools.get(channel)
            if pool is None:
                n = max(1, self.channels.policy_for(channel).concurrency)
                pool = self._pools[channel] = ThreadPoolExecutor(n, thread_name_prefix=f"send-{channel}")
            return pool

    def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)

    # -- which channels have work ---------------------------------------------------------------------
    def due_channels(self, now: datetime | None = None) -> list[str]:
        now = now or utcnow()
        out = []
        with self.db.read() as s:
            for c in ALL:  # one index probe each (ix_notifications_due)
                q = select(N.c.id).where(N.c.channel == c, N.c.next_try_at <= now).limit(1)
                if s.scalar(q) is not None:
                    out.append(c)
        return out

    # -- 1. claim --------------------------------------------------------------------------------------
    def _lease(self, channel: str, groups: int) -> float:
        """Seconds a claim is kept: the worst case of sending `groups` (a crashed worker's rows come back after)."""
        policy = self.channels.policy_for(channel)
        return policy.timeout * math.ceil(groups / max(1, policy.concurrency)) + LEASE_MARGIN

    def claim(self, channel: str, now: datetime, limit: int) -> list[list[Message]]:
        """Take up to `limit` due messages of `channel`; groups of one, or a dossier's run for the portal.

        On PostgreSQL one transaction of one statement; on SQLite, whose write lock every request's transaction
        needs too, statements of at most PIECE rows, each its own transaction (`_claim_sqlite`)."""
        if channel == NATIONAL_PORTAL:
            return self._claim_portal(now, limit)
        lease = now + timedelta(seconds=self._lease(channel, limit))
        if not self._lock:  # SQLite: read from a snapshot, then claimed PIECE rows to a statement
            return self._claim_sqlite(channel, now, lease, limit)
        due = (
            select(N.c.id)
            .where(N.c.channel == channel, N.c.next_try_at <= now)
            .order_by(N.c.next_try_at, N.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self._writing, self.db.uow() as s:
            rows = list(
                s.execute(
                    update(N)
                    .where(N.c.id.in_(due.scalar_subquery()))
                    .values(tries=N.c.tries + 1, next_try_at=lease)
                    .returning(*N.c)
                )
            )
        return [[_message(r)] for r in sorted(rows, key=lambda r: r.id)]

    # -- SQLite: short statements, each its own transaction ----------------------------------------------
    def _write(self, stmt) -> int:
        """One writing statement as a transaction of its own (`Database.statements`): the write lock is held
        while SQLite runs it, never across Python code; returns the rows it changed."""
        with self.db.statements() as conn:
            with self._writing:
                n = conn.execute(stmt).rowcount
            conn.commit()
            with self._pools_lock:
                self._writes += 1
                checkpoint = self._writes % CHECKPOINT_EVERY == 0
            if checkpoint:  # copies the WAL into the database without the write lock; see CHECKPOINT_EVERY
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
                conn.commit()
        return n

    def _take(self, candidates: list[tuple[int, int]], now: datetime, lease: datetime) -> set[int]:
        """Claim (id, tries) read from a snapshot, PIECE rows to a statement; returns the ids won.

        A row is taken only if it is still due and still has the `tries` it was read with, so of several workers
        that read it only one takes it (the first moves `tries` on); when a statement changed fewer rows than it
        named, the ones it took are those that now have `tries + 1` and this lease (read back, outside the lock)."""
        won: set[int] = set()
        by_tries: dict[int, list[int]] = {}
        for i, t in candidates:
            by_tries.setdefault(t, []).append(i)
        for t, ids in by_tries.items():
            for k in range(0, len(ids), PIECE):
                piece = ids[k : k + PIECE]
                n = self._write(
                    update(N)
                    .where(N.c.id.in_(piece), N.c.tries == t, N.c.next_try_at <= now, N.c.sent_at.is_(None))
                    .values(tries=t + 1, next_try_at=lease)
                )
                if n == len(piece):
                    won.update(piece)
                elif n:
                    with self.db.read() as s:
                        won.update(
                            s.scalars(
                                select(N.c.id).where(N.c.id.in_(piece), N.c.tries == t + 1, N.c.next_try_at == lease)
                            )
                        )
        return won

    def _claim_sqlite(self, channel: str, now: datetime, lease: datetime, limit: int) -> list[list[Message]]:
        """SQLite: the due rows read from a snapshot, without the write lock, then taken (`_take`). Rows another
        worker took meanwhile are replaced by reading again (a few times), so a drain does not stop early."""
        out: list[Message] = []
        for _ in range(3):
            with self.db.read() as s:
                due = select(N).where(N.c.channel == channel, N.c.next_try_at <= now)
                rows = list(s.execute(due.order_by(N.c.next_try_at, N.c.id).limit(limit - len(out))))
            if not rows:
                break
            won = self._take([(r.id, r.tries) for r in rows], now, lease)
            for r in rows:
                if r.id in won:
                    m = _message(r)
                    m.tries += 1
                    out.append(m)
            if len(won) == len(rows) or len(out) >= limit:
                break
        return [[m] for m in sorted(out, key=lambda m: m.id)]

    def _portal_runs(self, s, now: datetime, limit: int, lock: bool) -> list[list[Message]]:
        """The due heads (a dossier's lowest unsent update) and, after each, its unsent updates in sequence."""
        earlier = aliased(Notification)
        head = (
            select(N)
            .where(
                N.c.channel == NATIONAL_PORTAL,
                N.c.next_try_at <= now,
                ~exists().where(
                    and_(
                        earlier.dossier_id == N.c.dossier_id,
                        earlier.channel == NATIONAL_PORTAL,
                        earlier.sequence < N.c.sequence,
                        earlier.sent_at.is_(None),
                    )
                ),
            )
            .order_by(N.c.next_try_at, N.c.id)
            .limit(limit)
        )
        if lock:
            head = head.with_for_update(skip_locked=True)
        heads = list(s.execute(head))
        if not heads:
            return []
        follow = (
            select(N)
            .where(
                N.c.dossier_id.in_([h.dossier_id for h in heads]),
                N.c.channel == NATIONAL_PORTAL,
                N.c.sent_at.is_(None),
                N.c.dead_at.is_(None),
            )
            .order_by(N.c.dossier_id, N.c.sequence)
        )
        if lock:
            follow = follow.with_for_update(skip_locked=True)
        runs: dict[int, list] = {}
        for r in s.execute(follow):
            runs.setdefault(r.dossier_id, []).append(r)
        groups = []
        for h in heads:
            run, seq = [], None
            for r in runs.get(h.dossier_id, []):
                if r.sequence < h.sequence:
                    continue
                if seq is not None and r.sequence != seq + 1:
                    break  # a gap: the missing one is not committed yet; what follows waits
                run.append(_message(r))
                seq = r.sequence
                if len(run) >= 50:
                    break
            groups.append(run or [_message(h)])
        return groups

    def _claim_portal(self, now: datetime, limit: int) -> list[list[Message]]:
        lease = now + timedelta(seconds=self._lease(NATIONAL_PORTAL, limit))
        claimed = dict(tries=N.c.tries + 1, next_try_at=lease)
        if self._lock:  # PostgreSQL: the runs are read under row locks (SKIP LOCKED), then claimed
            with self._writing, self.db.uow() as s:
                groups = self._portal_runs(s, now, limit, lock=True)
                ids = [m.id for g in groups for m in g]
                if ids:
                    s.execute(update(N).where(N.c.id.in_(ids)).values(**claimed))
        else:
            # SQLite: the runs are read from a snapshot, without the write lock; the claim then takes only the
            # heads still due (another worker may have taken some meanwhile) and the runs behind those. A run's
            # updates are only ever claimed with its head, so winning the head wins the run.
            with self.db.read() as s:
                groups = self._portal_runs(s, now, limit, lock=False)
            if not groups:
                return []
            won = self._take([(g[0].id, g[0].tries) for g in groups], now, lease)
            groups = [g for g in groups if g[0].id in won]
            rest = [m.id for g in groups for m in g[1:]]
            for k in range(0, len(rest), PIECE):
                self._write(update(N).where(N.c.id.in_(rest[k : k + PIECE])).values(**claimed))
        for g in groups:
            for m in g:
                m.tries += 1
        return groups

    # -- 2. send ---------------------------------------------------------------------------------------
    def _send_group(self, sender, group: list[Message]) -> str | None:
        try:
            if len(group) > 1 and getattr(sender, "batch", False):
                sender.send_batch(group)
            else:
                for m in group:
                    sender.send(m)
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
            return f"{type(exc).__name__}: {exc}"[:500]
        return None

    # -- 3. record -------------------------------------------------------------------------------------
    def record(self, channel: str, outcomes: list[tuple[list[Message], str | None]], now: datetime) -> ChannelResult:
        """The outcomes written back: on PostgreSQL in one transaction; on SQLite PIECE rows to a statement, each
        statement its own transaction (`_write`). Rows given the same values (the sent ones; the failed ones of
        one error and one backoff, or dead) are written by one statement."""
        res = ChannelResult(channel)
        writes = self._outcome_writes(channel, outcomes, now, res)
        if not self._lock:
            for values, ids in writes:
                for k in range(0, len(ids), PIECE):
                    self._write(update(N).where(N.c.id.in_(ids[k : k + PIECE]), N.c.sent_at.is_(None)).values(**values))
            return res
        with self._writing, self.db.uow() as s:
            for values, ids in writes:
                s.execute(update(N).where(N.c.id.in_(ids), N.c.sent_at.is_(None)).values(**values))
        return res

    def _outcome_writes(self, channel, outcomes, now: datetime, res: ChannelResult) -> list[tuple[dict, list[int]]]:
        """What each outcome writes, as (values, ids) with the ids sharing those values; counted into `res`:
        sent → `sent_at`; failed → the next try after the backoff, or dead at `policy.max_tries`."""
        policy = self.channels.policy_for(channel)
        ok = [m.id for g, err in outcomes if err is None for m in g]
        res.sent += len(ok)
        writes: list[tuple[dict, list[int]]] = (
            [(dict(sent_at=now, next_try_at=None, last_error=None), ok)] if ok else []
        )
        failed: dict[tuple, list[int]] = {}
        for group, err in outcomes:
            if err is None:
                continue
            res.errors.append(err)
            for m in group:
                dead = self.channels.gives_up(channel, m.tries)
                res.dead, res.failed = res.dead + dead, res.failed + (not dead)
                failed.setdefault((err, dead, None if dead else policy.backoff(m.tries)), []).append(m.id)
        for (err, dead, backoff), ids in failed.items():
            values = (
                dict(dead_at=now, next_try_at=None, last_error=err)
                if dead
                else dict(next_try_at=now + timedelta(seconds=backoff), last_error=err)
            )
            writes.append((values, ids))
        return writes

    # -- a channel, a round at a time --------------------------------------------------------------------
    def drain_channel(self, channel: str, budget_seconds: float = 20.0, limit: int | None = None) -> ChannelResult:
        """Rounds of claim → send → record until nothing is due, `limit` is reached or the budget is spent.

        A second call for the same channel in the same process while one runs returns at once, and the running
        one makes one more round before it stops (so rows committed meanwhile are not left for the next tick)."""
        total = ChannelResult(channel)
        busy = self._busy.setdefault(channel, threading.Lock())
        if not busy.acquire(blocking=False):
            self._again.add(channel)
            return total
        started = time.monotonic()
        try:
            sender = self.senders[channel]
            policy = self.channels.policy_for(channel)
            pool = self._pool(channel)
            batch = max(1, policy.concurrency) * self.batch_per_worker
            while True:
                n = batch if limit is None else min(batch, limit - total.sent - total.failed - total.dead)
                if n <= 0:
                    break
                self._again.discard(channel)
                groups = self.claim(channel, utcnow(), n)
                if not groups:
                    if channel in self._again:
                        continue
                    break
                futures = [pool.submit(self._send_group, sender, g) for g in groups]
                wait(futures)
                outcomes = [(g, f.result()) for g, f in zip(groups, futures, strict=True)]
                r = self.record(channel, outcomes, utcnow())
                total.sent, total.failed, total.dead = total.sent + r.sent, total.failed + r.failed, total.dead + r.dead
                total.errors.extend(r.errors[:3])
                total.rounds += 1
                if r.errors:
                    log.warning("%s: %s failed this round, e.g. %s", channel, len(r.errors), r.errors[0])
                if time.monotonic() - started > budget_seconds:
                    break
                if len(groups) < n and channel not in self._again:
                    break
        finally:
            total.seconds = time.monotonic() - started
            busy.release()
        return total

    def drain(self, budget_seconds: float = 20.0, channels=None) -> dict[str, ChannelResult]:
        """Every channel with due messages, each in its own thread; returns what each did."""
        chans = list(channels) if channels is not None else self.due_channels()
        if not chans:
            return {}
        results: dict[str, ChannelResult] = {}
        threads = []
        for c in chans:
            t = threading.Thread(
                target=lambda c=c: results.__setitem__(c, self.drain_channel(c, budget_seconds)),
                name=f"drain-{c}",
                daemon=True,
            )
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        return results


# -- dead letters and the delivery log -------------------------------------------------------------------
def resend(db, ids: list[int], actor: str, now: datetime | None = None) -> int:
    """Give dead-lettered messages a new round of tries, now; one audit event per dossier concerned."""
    now = now or utcnow()
    with db.uow() as s:
        rows = list(
            s.execute(select(N.c.id, N.c.dossier_id, N.c.channel).where(N.c.id.in_(ids), N.c.dead_at.isnot(None)))
        )
        if not rows:
            return 0
        s.execute(
            update(N)
            .where(N.c.id.in_([r.id for r in rows]))
            .values(dead_at=None, tries=0, next_try_at=now, last_error=None)
        )
        by_dossier: dict[int, list] = {}
        for r in rows:
            if r.dossier_id is not None:
                by_dossier.setdefault(r.dossier_id, []).append({"id": r.id, "channel": r.channel})
        for dossier_id, msgs in by_dossier.items():
            s.add(
                Event(
                    dossier_id=dossier_id, at=now, actor=actor, action="notification.resent", details={"messages": msgs}
                )
            )
        return len(rows)


def drain_outbox(db, sender, limit: int = 500) -> int:
    """Send up to `limit` due messages of every channel through one `sender`; returns how many were sent
    (the single-sender form of `Delivery`: same claims, backoff and dead letters)."""
    delivery = Delivery(db, ChannelSettings(), {c: sender for c in ALL})
    sent = 0
    try:
        for channel in delivery.due_channels():
            if sent >= limit:
                break
            sent += delivery.drain_channel(channel, limit=limit - sent).sent
    finally:
        delivery.close()
    return sent
