"""The period report's aggregates: counts per (day in UTC+7, agency, procedure) kept exact in the same
transaction as every change of a dossier, so that a report reads days × (agency, procedure) rows instead of
every dossier (docs/reports.md, "Aggregates"; the figures themselves: engine/reports.py).

The rule in one place
---------------------
A dossier *contributes* to table `report_days` a set of (day, column) → amount, a pure function of its row
(`contribution`) and of three facts kept in other tables: its procedure version has a fee, it was paid
through the gateway, it has an electronic result file. Whenever a dossier row changes, `DossierRepository`
(engine/repository.py) calls `dossier_changed(before, after)`, which adds contribution(after) −
contribution(before) with one upsert (``INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n``, correct
under concurrency on SQLite and PostgreSQL; rows in key order so that two transactions never wait for each
other crosswise). The facts change elsewhere: a payment confirmed (engine/payments.py, `record_paid`) and a
result file added or removed (engine/attachments.py) call `paid_changed` / `result_changed`. `rebuild`
recomputes the whole table from the dossiers with the same function (the migration's backfill, `motcua
reports rebuild`, bench/generate.py).

Flows and stocks
----------------
Flow columns count an event on its day: received (by channel; with a supplement request; with a fee, paid
online) on the day of ``received_at``; completed (early, late, with an electronic result, the working hours
to the result) on the day of ``processed_at``; refused, stopped, withdrawn on the day of ``finished_at``;
returned on the day of ``returned_at``. A period's figure is the sum over its days.

The report also needs states at an instant, the period's start P0 and end P1, both midnights UTC+7. A
dossier is *open* at midnight T when ``received_at < T <= closed_at`` (``closed_at`` = COALESCE(processed_at,
finished_at); none: still open); for midnights that is the days b with ``day(received_at) < b <=
day(closed_at)``. It is *overdue* at T, among the open ones, when ``supplement_count >= 2``, or
``extended_at < T``, or ``due_at < T`` and not paused at T (``paused_at`` null or ``>= T``): again, for
midnights, each condition is a range of days. Each range [a, b] is kept as +1 in the `*_delta` column of day
a and −1 in that of day b + 1; the state at day d's midnight is the sum of the deltas of the days <= d.
Because the contribution is a function of the dossier's current row, a later change (a resumed supplement
moving ``due_at``, a second supplement request) moves the past days' states too, exactly as the report's
definitions read the current row.

Working hours are counted when the result is ready, with the national working calendar of that moment
(`calendar_for(session, None)`), and kept as a sum: a later change of a past day of the calendar does not
rewrite the processing time of dossiers already completed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from operator import itemgetter
from typing import Any, cast
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine, Table, bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .calendar import VN_TZ
from .fastsql import FastStatement
from .models import Attachment, Payment, ProcedureVersion, ReportDay
from .models import Dossier as DossierRow
from .statuses import Status

__all__ = ["COUNTS", "contribution", "dossier_changed", "paid_changed", "result_changed", "rebuild", "INPUTS"]

TABLE = cast(Table, ReportDay.__table__)
KEY = ("day", "agency", "procedure_code")
COUNTS = tuple(c.key for c in TABLE.columns if c.key not in KEY)
# The dossier columns the contribution reads.
INPUTS = (
    "id",
    "agency",
    "procedure_code",
    "procedure_version_id",
    "channel",
    "status_code",
    "received_at",
    "due_at",
    "paused_at",
    "paused_hours",
    "supplement_count",
    "extended_at",
    "processed_at",
    "returned_at",
    "finished_at",
)
_CHANNELS = {2: "received_online", 1: "received_in_person", 3: "received_postal"}
_CLOSINGS = {Status.REFUSED.code: "refused", Status.STOPPED.code: "stopped", Status.WITHDRAWN.code: "withdrawn"}
_NEVER = date.max


def day_of(t: datetime) -> date:
    """The calendar day in UTC+7 of an instant."""
    return t.astimezone(VN_TZ).date()


# --------------------------------------------------------------------------------------------------
# The contribution of one dossier, by group: a group is recomputed only when its inputs changed.


def _get(row, name):
    return row.get(name) if isinstance(row, dict) else getattr(row, name)


def _received(r, facts) -> Iterable[tuple[date, str, float]]:
    day = day_of(r["received_at"])
    yield day, "received", 1
    if r["channel"] in _CHANNELS:
        yield day, _CHANNELS[r["channel"]], 1
    if (r["supplement_count"] or 0) > 0:
        yield day, "received_supplement", 1


def _fee(r, facts) -> Iterable[tuple[date, str, float]]:
    if facts.fee(r["procedure_version_id"]):
        day = day_of(r["received_at"])
        yield day, "fee_due", 1
        if facts.paid(r["id"]):
            yield day, "paid_online", 1


def _completed(r, facts) -> Iterable[tuple[date, str, float]]:
    p = r["processed_at"]
    if p is None:
        return
    day, due = day_of(p), r["due_at"]
    yield day, "completed", 1
    if (due is not None and p > due) or r["extended_at"] is not None or (r["supplement_count"] or 0) >= 2:
        yield day, "completed_late", 1
    elif due is not None and day < day_of(due):
        yield day, "completed_early", 1


def _hours(r, facts) -> Iterable[tuple[date, str, float]]:
    if r["processed_at"] is not None:
        hours = facts.calendar().working_hours_between(r["received_at"], r["processed_at"])
        yield day_of(r["processed_at"]), "working_hours", hours - (r["paused_hours"] or 0.0)


def _e_result(r, facts) -> Iterable[tuple[date, str, float]]:
    if r["processed_at"] is not None and facts.has_result(r["id"]):
        yield day_of(r["processed_at"]), "e_result", 1


def _closed(r, facts) -> Iterable[tuple[date, str, float]]:
    kind = _CLOSINGS.get(r["status_code"])
    if kind and r["finished_at"] is not None:
        yield day_of(r["finished_at"]), kind, 1
    if r["returned_at"] is not None:
        yield day_of(r["returned_at"]), "returned", 1


def _ranges(column: str, ranges: list[tuple[date, date]]) -> Iterable[tuple[date, str, float]]:
    """+1 at each range's first day, −1 the day after its last (none for a range without end)."""
    for a, b in ranges:
        if a <= b:
            yield a, column, 1
            if b != _NEVER:
                yield b + timedelta(days=1), column, -1


def _states(r, facts) -> Iterable[tuple[date, str, float]]:
    """Open, open with a supplement request, open and overdue: ranges of midnights (module docstring)."""
    closed = r["processed_at"] or r["finished_at"]
    first = day_of(r["received_at"]) + timedelta(days=1)
    last = day_of(closed) if closed is not None else _NEVER
    if first > last:
        return
    yield from _ranges("open_delta", [(first, last)])
    if (r["supplement_count"] or 0) > 0:
        yield from _ranges("supplement_delta", [(first, last)])
    if (r["supplement_count"] or 0) >= 2:
        late = [(first, last)]
    else:
        late = []
        if r["extended_at"] is not None:
            late.append((day_of(r["extended_at"]) + timedelta(days=1), _NEVER))
        if r["due_at"] is not None:
            paused = r["paused_at"]
            late.append((day_of(r["due_at"]) + timedelta(days=1), day_of(paused) if paused is not None else _NEVER))
        late = _merge([(max(a, first), min(b, last)) for a, b in late])
    yield from _ranges("overdue_delta", late)


def _merge(ranges: list[tuple[date, date]]) -> list[tuple[date, date]]:
    out: list[tuple[date, date]] = []
    for a, b in sorted(r for r in ranges if r[0] <= r[1]):
        if out and (out[-1][1] == _NEVER or a <= out[-1][1] + timedelta(days=1)):
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


_SCOPE = ("agency", "procedure_code")
# (inputs, contribution): when none of a group's inputs changed, its contribution did not either.
GROUPS: list[tuple[tuple[str, ...], Callable]] = [
    (_SCOPE + ("received_at", "channel", "supplement_count"), _received),
    (_SCOPE + ("received_at", "procedure_version_id"), _fee),
    (_SCOPE + ("processed_at", "due_at", "extended_at", "supplement_count"), _completed),
    (_SCOPE + ("received_at", "processed_at", "paused_hours"), _hours),
    (_SCOPE + ("processed_at",), _e_result),
    (_SCOPE + ("status_code", "finished_at", "returned_at"), _closed),
    (
        _SCOPE
        + ("received_at", "processed_at", "finished_at", "due_at", "paused_at", "extended_at", "supplement_count"),
        _states,
    ),
]


_PAYMENTS, _ATTACHMENTS = cast(Table, Payment.__table__), cast(Table, Attachment.__table__)
_PAID = FastStatement(
    select(_PAYMENTS.c.id).where(_PAYMENTS.c.dossier_id == bindparam("_id"), _PAYMENTS.c.status == "paid").limit(1)
)
_RESULT = FastStatement(
    select(_ATTACHMENTS.c.id)
    .where(_ATTACHMENTS.c.dossier_id == bindparam("_id"), _ATTACHMENTS.c.kind == "result")
    .limit(1)
)


# each group's inputs read from a row as a mapping, for the comparison of before and after
_KEYS = [itemgetter(*inputs) for inputs, _fn in GROUPS]


class Facts:
    """What the contribution reads outside the dossier row, looked up only when a group needs it."""

    def __init__(self, session, paid: bool | None = None, has_result: bool | None = None, calendar=None):
        """`calendar`: a callable giving the national working calendar (default: read from the database)."""
        self.session = session
        self._paid, self._has_result, self._calendar_of = paid, has_result, calendar
        self._calendar = None

    def fee(self, version_id) -> bool:
        return version_has_fee(self.session, version_id)

    def paid(self, dossier_id) -> bool:
        if self._paid is None:
            self._paid = _PAID.first(_connection(self.session), {"_id": dossier_id}) is not None
        return self._paid

    def has_result(self, dossier_id) -> bool:
        if self._has_result is None:
            self._has_result = _RESULT.first(_connection(self.session), {"_id": dossier_id}) is not None
        return self._has_result

    def calendar(self):
        if self._calendar is None:
            if self._calendar_of is not None:
                self._calendar = self._calendar_of()
            else:
                from .agencies import calendar_for

                self._calendar = calendar_for(self.session, None)
        return self._calendar


# database engine -> {procedure version id -> has a fee}: a deployed version never changes, but an id means a
# version only in its own database (another database, or one made anew, numbers its versions from 1 again)
_FEES: WeakKeyDictionary[Engine, dict[Any, bool]] = WeakKeyDictionary()


def version_has_fee(session, version_id) -> bool:
    fees = _FEES.setdefault(_connection(session).engine, {})
    if version_id not in fees:
        meta = session.execute(select(ProcedureVersion.meta).where(ProcedureVersion.id == version_id)).scalar()
        fees[version_id] = _fee_of(meta)
    return fees[version_id]


def _fee_of(meta) -> bool:
    try:
        return int((meta or {}).get("fee") or 0) > 0
    except (TypeError, ValueError):
        return False


def contribution(row, facts: Facts, groups=None) -> dict[tuple, float]:
    """{(day, agency, procedure_code, column): amount} of one dossier row (a mapping of `INPUTS`)."""
    r = {n: _get(row, n) for n in INPUTS}
    out: dict[tuple, float] = defaultdict(float)
    for _inputs, fn in groups or GROUPS:
        for day, column, n in fn(r, facts):
            out[(day, r["agency"], r["procedure_code"], column)] += n
    return out


# --------------------------------------------------------------------------------------------------
# Writing


def dossier_changed(session, before, after, facts: Facts | None = None) -> None:
    """Add contribution(after) − contribution(before) to the table, in the caller's transaction (`before` and
    `after`: mappings of the dossier's columns, `INPUTS` at least; `before` None: a new dossier). Groups whose inputs did not change are skipped (most steps change none)."""
    facts = facts or Facts(session)
    if before is None:
        delta = contribution(after, facts)
    else:
        groups = [g for g, key in zip(GROUPS, _KEYS, strict=True) if key(before) != key(after)]
        if not groups:
            return
        delta = contribution(after, facts, groups)
        for k, v in contribution(before, facts, groups).items():
            delta[k] -= v
    apply(session, delta)


def paid_changed(session, dossier, was_paid: bool) -> None:
    """A payment of `dossier` was confirmed: if it is the first, the dossier counts as paid online."""
    if not was_paid:
        delta = contribution(dossier, Facts(session, paid=True), [GROUPS[1]])
        for k, v in contribution(dossier, Facts(session, paid=False), [GROUPS[1]]).items():
            delta[k] -= v
        apply(session, delta)


def result_changed(session, dossier, had: bool, has: bool) -> None:
    """An electronic result file of `dossier` was added or removed: `had`/`has` any before/after."""
    if had != has:
        delta = contribution(dossier, Facts(session, has_result=has), [GROUPS[4]])
        for k, v in contribution(dossier, Facts(session, has_result=had), [GROUPS[4]]).items():
            delta[k] -= v
        apply(session, delta)


def _connection(session) -> Connection:
    return session if isinstance(session, Connection) else session.connection()


_UPSERTS: dict[str, FastStatement] = {}


def _upsert(dialect: str) -> FastStatement:
    stmt = _UPSERTS.get(dialect)
    if stmt is None:
        ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(TABLE)
        stmt = FastStatement(
            ins.on_conflict_do_update(index_elements=list(KEY), set_={c: TABLE.c[c] + ins.excluded[c] for c in COUNTS})
        )
        _UPSERTS[dialect] = stmt
    return stmt


def _rows(delta: dict[tuple, float]) -> list[dict]:
    rows: dict[tuple, dict] = {}
    for (day, agency, proc, column), n in delta.items():
        if n:
            row = rows.setdefault((day, agency, proc), dict.fromkeys(COUNTS, 0))
            row[column] += n if column == "working_hours" else int(n)
    return [dict(zip(KEY, k, strict=True), **v) for k, v in sorted(rows.items())]


def apply(session, delta: dict[tuple, float]) -> None:
    """Add `delta` {(day, agency, procedure_code, column): amount} to the table, rows in key order."""
    params = _rows(delta)
    if params:
        conn = _connection(session)
        _upsert(conn.dialect.name).run(conn, params)


# --------------------------------------------------------------------------------------------------
# Rebuilding from the dossiers


def rebuild(session, batch: int = 20_000, progress: Callable[[int, int], None] | None = None) -> int:
    """Recompute the whole table from the dossiers (the same `contribution`), in the caller's transaction;
    the number of dossiers read. On PostgreSQL the table is locked first (SHARE ROW EXCLUSIVE): a change
    made meanwhile waits for the rebuild and then adds its own difference, so nothing is lost or counted
    twice. `progress(done, total)` is called after each batch."""
    conn = _connection(session)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE report_days IN SHARE ROW EXCLUSIVE MODE")
    conn.execute(delete(TABLE))
    D = DossierRow
    total = conn.execute(select(func.count()).select_from(D)).scalar_one()
    cols = [getattr(D, n) for n in INPUTS]
    totals: dict[tuple, float] = defaultdict(float)
    facts = Facts(conn)
    last_id, done = None, 0
    while True:
        q = select(*cols).order_by(D.id).limit(batch)
        if last_id is not None:
            q = q.where(D.id > last_id)
        rows = conn.execute(q).mappings().all()
        if not rows:
            break
        lo, hi = rows[0]["id"], rows[-1]["id"]
        paid = set(
            conn.execute(
                select(Payment.dossier_id).where(
                    Payment.dossier_id >= lo, Payment.dossier_id <= hi, Payment.status == "paid"
                )
            ).scalars()
        )
        results = set(
            conn.execute(
                select(Attachment.dossier_id).where(
                    Attachment.dossier_id >= lo, Attachment.dossier_id <= hi, Attachment.kind == "result"
                )
            ).scalars()
        )
        for r in rows:
            facts._paid, facts._has_result = r["id"] in paid, r["id"] in results
            for k, v in contribution(r, facts).items():
                totals[k] += v
        last_id, done = hi, done + len(rows)
        if progress:
            progress(done, total)
    params = _rows(totals)
    for i in range(0, len(params), 10_000):
        conn.execute(TABLE.insert(), params[i : i + 10_000])
    return done
