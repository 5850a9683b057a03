"""The supervisors' board counts kept as counters, so the board does not read the whole overdue backlog.

The board (`engine.monitor.overdue_counts`) counts, per agency and procedure, the overdue dossiers and steps
and those due within the next 24 hours. Counting them from the rows reads every overdue row: linear in the
backlog. Here the same numbers come from counters (docs/performance.md, "Board counts"):

* **What is counted** is `engine.domain`'s rule without its instant: an open dossier (not finished, no
  result, not paused) with a due time, and a ready step with a due time whose dossier is not paused. Each
  is counted once in its (kind, agency, procedure, hour of its due time) cell, the hour (`bucket`) being
  the hours since the Unix epoch (UTC).
* **Who keeps them**: database triggers on `dossiers` and `tasks` (created with the tables,
  `install`), so every write — the use cases, the timer sweep, a migration, an operator's SQL — keeps them
  in the same transaction, exactly. A trigger only appends +1 / -1 rows to `board_count_deltas` (never an
  update, so two writers never wait for each other on a counter); a dossier paused or resumed moves its ready
  steps out of or back into the counts.
* **Folding** (`compact`, run by the worker's sweep): the deltas are summed into `board_count_totals`, one
  row per cell, and every hour before the cutoff (the previous hour) is folded into one row per (kind,
  agency, procedure): the far past costs one row per offering whatever the backlog.
* **Reading** (`board_rows`) at instant `now`: what was due before `now` is the sum of the cells of the hours
  before now's hour plus the rows due in now's hour before `now`, counted from the partial indexes (at
  most one hour of due times); "before now + 24 h" the same; due soon is the difference. A dossier that
  became overdue without any write is thus counted: the counters never depend on the clock.
  Instants before the cutoff (only a caller passing a past `now`) are not answered here (`None`): the
  board then counts the rows.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import case, event, func, insert, literal, select, text, union_all, update
from sqlalchemy.engine import Connection

from .auth import in_scope
from .domain import dossier_overdue_sql, step_overdue_sql
from .models import Base, BoardCountCutoff, BoardCountDelta, BoardCountTotal, Dossier, Task

BUCKET_SECONDS = 3600

__all__ = ["BUCKET_SECONDS", "bucket_of", "install", "uninstall", "rebuild", "compact", "fold", "board_rows"]


def bucket_of(t: datetime) -> int:
    """The hour `t` falls in: hours since the Unix epoch (the triggers' `floor(epoch / 3600)`)."""
    return int(t.timestamp() // BUCKET_SECONDS)


def bucket_start(b: int) -> datetime:
    return datetime.fromtimestamp(b * BUCKET_SECONDS, UTC)


# ---------------------------------------------------------------------------------------------------
# The triggers, one definition per dialect. A dossier counts when open, without a result, not paused and
# with a due time; a step when ready, with a due time, and its dossier not paused (engine/domain.py).

_PG_BUCKET = "floor(extract(epoch from {0}) / 3600)::integer"
_INS = "INSERT INTO board_count_deltas (kind, agency, procedure_code, bucket, n) "


def _pg_move(kind: str) -> str:
    """A trigger's counting of one row of `kind` ('d' dossier, 't' step): -1 in its old cell and +1 in its new
    one when it counted before (`o`) or counts now (`nw`), nothing when it stays in the same cell."""
    return f"""  IF NOT (o AND nw AND OLD.agency = NEW.agency AND OLD.procedure_code = NEW.procedure_code
          AND {_PG_BUCKET.format("OLD.due_at")} = {_PG_BUCKET.format("NEW.due_at")}) THEN
    IF o THEN
      {_INS} VALUES ('{kind}', OLD.agency, OLD.procedure_code, {_PG_BUCKET.format("OLD.due_at")}, -1);
    END IF;
    IF nw THEN
      {_INS} VALUES ('{kind}', NEW.agency, NEW.procedure_code, {_PG_BUCKET.format("NEW.due_at")}, 1);
    END IF;
  END IF;"""


_PG_FUNCTIONS = [
    f"""
CREATE OR REPLACE FUNCTION board_count_dossiers() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  o boolean := false;
  nw boolean := false;
BEGIN
  IF TG_OP <> 'INSERT' THEN
    o := coalesce(OLD.finished = false AND OLD.processed_at IS NULL AND OLD.paused_at IS NULL
                  AND OLD.due_at IS NOT NULL, false);
  END IF;
  IF TG_OP <> 'DELETE' THEN
    nw := coalesce(NEW.finished = false AND NEW.processed_at IS NULL AND NEW.paused_at IS NULL
                   AND NEW.due_at IS NOT NULL, false);
  END IF;
{_pg_move("d")}
  -- its ready steps leave the counts while it is paused, and come back when it resumes (or is removed)
  IF (TG_OP = 'UPDATE' AND (OLD.paused_at IS NULL) <> (NEW.paused_at IS NULL))
     OR (TG_OP = 'DELETE' AND OLD.paused_at IS NOT NULL) THEN
    {_INS}
    SELECT 't', agency, procedure_code, {_PG_BUCKET.format("due_at")},
           CASE WHEN TG_OP = 'UPDATE' AND NEW.paused_at IS NOT NULL THEN -1 ELSE 1 END * count(*)
    FROM tasks WHERE dossier_id = OLD.id AND state = 'ready' AND due_at IS NOT NULL
    GROUP BY agency, procedure_code, {_PG_BUCKET.format("due_at")};
  END IF;
  RETURN NULL;
END $$""",
    f"""
CREATE OR REPLACE FUNCTION board_count_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  o boolean := false;
  nw boolean := false;
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.state = NEW.state AND OLD.due_at IS NOT DISTINCT FROM NEW.due_at
     AND OLD.agency = NEW.agency AND OLD.procedure_code = NEW.procedure_code
     AND OLD.dossier_id = NEW.dossier_id THEN
    RETURN NULL;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    o := OLD.state = 'ready' AND OLD.due_at IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM dossiers WHERE id = OLD.dossier_id AND paused_at IS NOT NULL);
  END IF;
  IF TG_OP <> 'DELETE' THEN
    nw := NEW.state = 'ready' AND NEW.due_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM dossiers WHERE id = NEW.dossier_id AND paused_at IS NOT NULL);
  END IF;
{_pg_move("t")}
  RETURN NULL;
END $$""",
]
_PG_TRIGGERS = [
    "CREATE TRIGGER board_count_dossiers AFTER INSERT OR DELETE OR UPDATE OF finished, processed_at, paused_at, "
    "due_at, agency, procedure_code ON dossiers FOR EACH ROW EXECUTE FUNCTION board_count_dossiers()",
    "CREATE TRIGGER board_count_tasks AFTER INSERT OR DELETE OR UPDATE OF state, due_at, agency, procedure_code, "
    "dossier_id ON tasks FOR EACH ROW EXECUTE FUNCTION board_count_tasks()",
]
_PG_DROP = [
    "DROP TRIGGER IF EXISTS board_count_dossiers ON dossiers",
    "DROP TRIGGER IF EXISTS board_count_tasks ON tasks",
]


def _sq_bucket(col: str) -> str:
    return f"(CAST(strftime('%s', {col}) AS INTEGER) / 3600)"


def _sq_dossier_counts(r: str) -> str:
    return f"({r}.finished = 0 AND {r}.processed_at IS NULL AND {r}.paused_at IS NULL AND {r}.due_at IS NOT NULL)"


def _sq_step_counts(r: str) -> str:
    return (
        f"({r}.state = 'ready' AND {r}.due_at IS NOT NULL AND NOT EXISTS "
        f"(SELECT 1 FROM dossiers WHERE id = {r}.dossier_id AND paused_at IS NOT NULL))"
    )


def _sq_same_cell() -> str:
    return (
        "(OLD.agency = NEW.agency AND OLD.procedure_code = NEW.procedure_code AND "
        f"{_sq_bucket('OLD.due_at')} = {_sq_bucket('NEW.due_at')})"
    )


def _sq_steps_of(dossier: str, sign: str, when: str) -> str:
    return (
        f"{_INS} SELECT 't', agency, procedure_code, {_sq_bucket('due_at')}, {sign} * count(*) FROM tasks "
        f"WHERE {when} AND dossier_id = {dossier}.id AND state = 'ready' AND due_at IS NOT NULL "
        f"GROUP BY agency, procedure_code, {_sq_bucket('due_at')};"
    )


def _sq_triggers() -> list[str]:
    d_old, d_new, t_old, t_new = (
        _sq_dossier_counts("OLD"),
        _sq_dossier_counts("NEW"),
        _sq_step_counts("OLD"),
        _sq_step_counts("NEW"),
    )

    def cell(kind: str, r: str, n: int) -> str:
        return f"SELECT '{kind}', {r}.agency, {r}.procedure_code, {_sq_bucket(r + '.due_at')}, {n}"

    same = _sq_same_cell()
    return [
        f"CREATE TRIGGER board_count_dossiers_insert AFTER INSERT ON dossiers WHEN {d_new} "
        f"BEGIN {_INS} {cell('d', 'NEW', 1)}; END",
        "CREATE TRIGGER board_count_dossiers_update AFTER UPDATE OF finished, processed_at, paused_at, due_at, "
        "agency, procedure_code ON dossiers BEGIN "
        f"{_INS} {cell('d', 'OLD', -1)} WHERE {d_old} AND NOT ({d_new} AND {same}); "
        f"{_INS} {cell('d', 'NEW', 1)} WHERE {d_new} AND NOT ({d_old} AND {same}); "
        + _sq_steps_of(
            "NEW",
            "(CASE WHEN NEW.paused_at IS NULL THEN 1 ELSE -1 END)",
            "(OLD.paused_at IS NULL) <> (NEW.paused_at IS NULL)",
        )
        + " END",
        f"CREATE TRIGGER board_count_dossiers_delete AFTER DELETE ON dossiers BEGIN "
        f"{_INS} {cell('d', 'OLD', -1)} WHERE {d_old}; "
        + _sq_steps_of("OLD", "1", "OLD.paused_at IS NOT NULL")
        + " END",
        f"CREATE TRIGGER board_count_tasks_insert AFTER INSERT ON tasks WHEN {t_new} "
        f"BEGIN {_INS} {cell('t', 'NEW', 1)}; END",
        "CREATE TRIGGER board_count_tasks_update AFTER UPDATE OF state, due_at, agency, procedure_code, dossier_id "
        "ON tasks BEGIN "
        f"{_INS} {cell('t', 'OLD', -1)} WHERE {t_old} AND NOT ({t_new} AND {same}); "
        f"{_INS} {cell('t', 'NEW', 1)} WHERE {t_new} AND NOT ({t_old} AND {same}); END",
        f"CREATE TRIGGER board_count_tasks_delete AFTER DELETE ON tasks WHEN {t_old} "
        f"BEGIN {_INS} {cell('t', 'OLD', -1)}; END",
    ]


_SQ_NAMES = [f"board_count_{t}_{op}" for t in ("dossiers", "tasks") for op in ("insert", "update", "delete")]


def install(conn: Connection) -> None:
    """Create the triggers (again): the counters follow every write from now on."""
    uninstall(conn)
    if conn.dialect.name == "postgresql":
        for stmt in _PG_FUNCTIONS + _PG_TRIGGERS:
            conn.exec_driver_sql(stmt)
    else:
        for stmt in _sq_triggers():
            conn.exec_driver_sql(stmt)


def uninstall(conn: Connection) -> None:
    """Drop the triggers (a bulk load then `rebuild`s the counters)."""
    if conn.dialect.name == "postgresql":
        for stmt in _PG_DROP:
            conn.exec_driver_sql(stmt)
    else:
        for name in _SQ_NAMES:
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")


def _on_create(target, connection, **kw) -> None:
    """The counters' tables just created (`create_all`): over an empty database, empty counters with nothing
    folded yet (cutoff 0) and the triggers; over existing dossiers, counted from them (`rebuild`)."""
    tables = kw.get("tables")
    if tables is not None and BoardCountCutoff.__table__ not in tables:
        return
    if connection.execute(select(Dossier.id).limit(1)).first() is not None:
        rebuild(connection)
        return
    install(connection)
    connection.execute(insert(BoardCountCutoff).values(id=1, bucket=0))


if not event.contains(Base.metadata, "after_create", _on_create):
    event.listen(Base.metadata, "after_create", _on_create)


# ---------------------------------------------------------------------------------------------------
# Rebuilding and folding


def _bucket_sql(conn: Connection, col: str) -> str:
    return _PG_BUCKET.format(col) if conn.dialect.name == "postgresql" else _sq_bucket(col)


def rebuild(conn: Connection, now: datetime | None = None) -> None:
    """Count everything again from the rows, folded before the previous hour, and (re)create the triggers.
    For a bulk load and the migration that creates the tables; writers wait meanwhile (PostgreSQL: the two
    tables are locked in SHARE mode until the transaction ends)."""
    now = now or datetime.now(UTC)
    pg = conn.dialect.name == "postgresql"
    if pg:
        conn.exec_driver_sql("LOCK TABLE dossiers, tasks IN SHARE MODE")
    cut = bucket_of(now) - 1
    false = "false" if pg else "0"
    folded = "CASE WHEN {b} < :cut THEN :cut - 1 ELSE {b} END"
    bd, bt = _bucket_sql(conn, "due_at"), _bucket_sql(conn, "due_at")
    for stmt in ("DELETE FROM board_count_deltas", "DELETE FROM board_count_totals", "DELETE FROM board_count_cutoff"):
        conn.execute(text(stmt))
    conn.execute(
        text(
            "INSERT INTO board_count_totals (kind, agency, procedure_code, bucket, n) "
            "SELECT 'd', agency, procedure_code, b, count(*) FROM ("
            f"SELECT agency, procedure_code, {folded.format(b=bd)} AS b FROM dossiers "
            f"WHERE finished = {false} AND processed_at IS NULL AND paused_at IS NULL AND due_at IS NOT NULL"
            ") x GROUP BY agency, procedure_code, b"
        ),
        {"cut": cut},
    )
    conn.execute(
        text(
            "INSERT INTO board_count_totals (kind, agency, procedure_code, bucket, n) "
            "SELECT 't', agency, procedure_code, b, count(*) FROM ("
            f"SELECT agency, procedure_code, {folded.format(b=bt)} AS b FROM tasks "
            "WHERE state = 'ready' AND due_at IS NOT NULL "
            "AND dossier_id NOT IN (SELECT id FROM dossiers WHERE paused_at IS NOT NULL)"
            ") x GROUP BY agency, procedure_code, b"
        ),
        {"cut": cut},
    )
    conn.execute(insert(BoardCountCutoff).values(id=1, bucket=cut))
    install(conn)


_UPSERT = " ON CONFLICT (kind, agency, procedure_code, bucket) DO UPDATE SET n = board_count_totals.n + excluded.n"


def compact(conn: Connection, now: datetime | None = None) -> dict:
    """Sum the deltas into the totals and fold the hours before the previous one; one transaction, the
    caller's. Concurrent writers go on appending deltas meanwhile (a delta not yet committed is folded the
    next time); two compactions queue on the cutoff row. Returns how many deltas were folded."""
    now = now or datetime.now(UTC)
    pg = conn.dialect.name == "postgresql"
    q = select(BoardCountCutoff.bucket).where(BoardCountCutoff.id == 1)
    old = conn.execute(q.with_for_update() if pg else q).scalar()
    if old is None:
        return {"deltas": 0, "cutoff": None}
    cut = max(old, bucket_of(now) - 1)
    if pg:
        # one statement: exactly the deltas this DELETE removed are added (RETURNING), none lost or twice
        r = conn.execute(
            text(
                "WITH gone AS (DELETE FROM board_count_deltas RETURNING kind, agency, procedure_code, bucket, n) "
                "INSERT INTO board_count_totals (kind, agency, procedure_code, bucket, n) "
                "SELECT kind, agency, procedure_code, greatest(bucket, :cut - 1), sum(n) FROM gone "
                "GROUP BY kind, agency, procedure_code, greatest(bucket, :cut - 1)" + _UPSERT
            ),
            {"cut": cut},
        )
        moved = r.rowcount
    else:  # SQLite: this transaction is the only writer (BEGIN IMMEDIATE)
        top = conn.execute(select(func.max(BoardCountDelta.id))).scalar() or 0
        conn.execute(
            text(
                "INSERT INTO board_count_totals (kind, agency, procedure_code, bucket, n) "
                "SELECT kind, agency, procedure_code, max(bucket, :cut - 1), sum(n) FROM board_count_deltas "
                "WHERE id <= :top GROUP BY kind, agency, procedure_code, max(bucket, :cut - 1)" + _UPSERT
            ),
            {"cut": cut, "top": top},
        )
        moved = conn.execute(text("DELETE FROM board_count_deltas WHERE id <= :top"), {"top": top}).rowcount
    if cut > old:
        conn.execute(
            text(
                "INSERT INTO board_count_totals (kind, agency, procedure_code, bucket, n) "
                "SELECT kind, agency, procedure_code, :cut - 1, sum(n) FROM board_count_totals "
                "WHERE bucket < :cut - 1 GROUP BY kind, agency, procedure_code" + _UPSERT
            ),
            {"cut": cut},
        )
        conn.execute(text("DELETE FROM board_count_totals WHERE bucket < :cut - 1"), {"cut": cut})
        conn.execute(update(BoardCountCutoff).where(BoardCountCutoff.id == 1).values(bucket=cut))
    conn.execute(text("DELETE FROM board_count_totals WHERE bucket <= :cut - 1 AND n = 0"), {"cut": cut})
    return {"deltas": moved, "cutoff": cut}


def fold(db, now: datetime | None = None) -> dict:
    """`compact` in a transaction of its own (the worker's sweep)."""
    with db.uow() as session:
        return compact(session.connection(), now)


# ---------------------------------------------------------------------------------------------------
# Reading


def board_rows(session, now: datetime, soon: datetime, agency: str | None, procedure_code: str | None):
    """The board's counts at `now` from the counters: ``{"d": [(agency, procedure, overdue, due_soon)], "t":
    [...]}`` with only the non-zero (agency, procedure) pairs, exactly as counting the rows would give; None
    when `now` is before the cutoff (or the counters were never built). `agency` and `procedure_code` limit
    it to the board's scope as the monitor's lists are (`engine.auth.in_scope`)."""
    b_now, b_soon = bucket_of(now), bucket_of(soon)
    # One statement (one round trip): the cutoff, the counters of the hours before soon's hour, and the rows
    # due in now's hour before now and in soon's hour before soon (one hour each, from the partial indexes
    # the row counts use); each row gives (kind, agency, procedure, due before now, due before soon).
    parts = [select(literal("c"), literal(""), literal(""), BoardCountCutoff.bucket, literal(0))]
    for model in (BoardCountTotal, BoardCountDelta):
        c = select(
            model.kind, model.agency, model.procedure_code, case((model.bucket < b_now, model.n), else_=0), model.n
        ).where(model.bucket < b_soon)
        parts.append(in_scope(c, model, agency, procedure_code))
    for i, (t, b) in enumerate(((now, b_now), (soon, b_soon))):
        start = bucket_start(b)
        n, zero = func.count(), literal(0)
        d = select(literal("d"), Dossier.agency, Dossier.procedure_code, *((n, zero) if i == 0 else (zero, n)))
        d = d.where(dossier_overdue_sql(t), Dossier.due_at >= start)
        parts.append(in_scope(d, Dossier, agency, procedure_code).group_by(Dossier.agency, Dossier.procedure_code))
        k = select(literal("t"), Task.agency, Task.procedure_code, *((n, zero) if i == 0 else (zero, n)))
        k = k.where(step_overdue_sql(t), Task.due_at >= start)
        parts.append(in_scope(k, Task, agency, procedure_code).group_by(Task.agency, Task.procedure_code))
    u = union_all(*parts).subquery()
    kind, ag_, proc_, by_now, by_soon = u.c
    q = select(kind, ag_, proc_, func.sum(by_now), func.sum(by_soon)).group_by(kind, ag_, proc_)
    before: dict[tuple, tuple[int, int]] = {}  # (kind, agency, procedure) -> (due before now, before soon)
    cut = None
    for row in session.execute(q):
        if row[0] == "c":
            cut = row[3]
        else:
            before[row[:3]] = (int(row[3] or 0), int(row[4] or 0))
    if cut is None or b_now < cut:
        return None

    out: dict[str, list] = {"d": [], "t": []}
    for (kind, ag, proc), (n_now, n_soon) in before.items():
        if n_now or n_soon - n_now:
            out[kind].append((ag, proc, n_now, n_soon - n_now))
    return out
