"""The hot statements executed on the driver's cursor (engine/fastsql.py) store and read exactly what
`Connection.execute` stores and reads, are seen by the engine's statement listeners, and fail as it fails:
the same SQLAlchemy exception for a constraint, a lock, a deadlock or a lost connection (on SQLite and,
with DATABASE_URL, PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, create_engine, event, insert, select, text
from sqlalchemy.exc import IntegrityError, NoResultFound, OperationalError

from engine import fastsql
from engine.errors import Conflict
from engine.fastsql import FastStatement
from engine.models import Dossier, Event, Procedure, ProcedureVersion, Task, TaskRole
from engine.repository import DOSSIERS, EVENTS, TASKS, DossierRepository
from tests.conftest import PG_URL

NOW = datetime(2026, 12, 7, 9, 30, 15, 123456, tzinfo=UTC)

FAST_TASK = FastStatement(TASKS.insert())
FAST_EVENT = FastStatement(EVENTS.insert())
FAST_DOSSIER = FastStatement(DOSSIERS.insert().returning(DOSSIERS.c.id))
FAST_UPDATE_TASK = FastStatement(TASKS.update().where(TASKS.c.id == bindparam("_id")))
SELECT_TASK = select(TASKS).where(TASKS.c.id == bindparam("_id"))
FAST_SELECT_TASK = FastStatement(SELECT_TASK)


def _version(db) -> int:
    with db.uow() as s:
        procedure_id = s.execute(
            insert(Procedure).values(code="1.001", name="Thủ tục").returning(Procedure.id)
        ).scalar()
        return s.execute(
            insert(ProcedureVersion)
            .values(procedure_id=procedure_id, version=1, content_hash="x", process_id="p", bpmn_xml="", spec_json="{}")
            .returning(ProcedureVersion.id)
        ).scalar_one()


def _dossier(code: str, version_id: int) -> dict:
    return {
        "code": code,
        "procedure_version_id": version_id,
        "procedure_code": "1.001",
        "agency": "000.00.00.H01",
        "status": "Mới tiếp nhận",
        "status_code": 1,
        "channel": 2,
        "applicant_name": "Nguyễn Thị Ánh",
        "data": {"a": [1, 2.5, None, "đ"], "b": {"c": True}},
        "received_at": NOW,
        "due_at": NOW + timedelta(days=3),
        "paused_hours": 1.25,
        "finished": True,
        "finished_at": None,
        "updated_at": NOW,
        "version": 1,
    }


def _task(task_id: str, dossier_id: int, **extra) -> dict:
    return {
        "id": task_id,
        "dossier_id": dossier_id,
        "dossier_code": "X",
        "procedure_code": "1.001",
        "agency": "000.00.00.H01",
        "spec_name": "Task_1",
        "title": "Thẩm định hồ sơ",
        "roles": ["receiver", "chuyên viên"],
        "due_at": NOW,
        **extra,
    }


def _stored(db, table: str, key: str, value) -> tuple:
    """The row exactly as the driver returns it (no SQLAlchemy type processing)."""
    with db.read() as s:
        return tuple(s.connection().exec_driver_sql(f"SELECT * FROM {table} WHERE {key} = {value!r}").one())


@pytest.fixture
def version_id(db, monkeypatch):
    def fallback(*_a):
        raise AssertionError("a statement went through Connection.execute instead of the cursor")

    monkeypatch.setattr(FastStatement, "_fallback", fallback)  # what these tests compare is the fast path
    return _version(db)


def test_rows_written_either_way_are_stored_and_read_back_identically(db, version_id):
    with db.uow() as s:
        conn = s.connection()
        (fast_id,) = FAST_DOSSIER.first(conn, _dossier("FAST", version_id))
        core_id = conn.execute(
            insert(Dossier.__table__).returning(DOSSIERS.c.id), _dossier("CORE", version_id)
        ).scalar()
        # a default evaluated in Python (created_at, state) and a JSON value left out (None: stored as JSON null)
        FAST_TASK.run(conn, _task("t-fast", fast_id))
        conn.execute(TASKS.insert(), _task("t-core", core_id))
        event_row = {
            "dossier_id": fast_id,
            "at": NOW,
            "actor": "a",
            "action": "x",
            "from_status": None,
            "details": None,
        }
        FAST_EVENT.run(conn, [dict(event_row, to_status="1"), dict(event_row, to_status="2")])  # executemany
        conn.execute(EVENTS.insert(), [dict(event_row, dossier_id=core_id, to_status=s) for s in ("1", "2")])
    fast, core = _stored(db, "dossiers", "code", "FAST"), _stored(db, "dossiers", "code", "CORE")
    assert fast[2:] == core[2:]  # id and code apart, byte for byte the same values
    fast_task, core_task = _stored(db, "tasks", "id", "t-fast"), _stored(db, "tasks", "id", "t-core")
    skip = {c.name for c in TASKS.columns}.intersection({"id", "dossier_id", "created_at"})
    names = [c.name for c in TASKS.columns]
    assert {n: v for n, v in zip(names, fast_task, strict=True) if n not in skip} == {
        n: v for n, v in zip(names, core_task, strict=True) if n not in skip
    }
    with db.read() as s:
        events = s.execute(select(Event).order_by(Event.id)).scalars().all()
        assert [(e.to_status, e.details, e.at) for e in events if e.dossier_id == fast_id] == [
            (e.to_status, e.details, e.at) for e in events if e.dossier_id == core_id
        ]
        raw_details = s.connection().exec_driver_sql("SELECT details FROM events").scalars().all()
        assert len(set(map(str, raw_details))) == 1  # JSON null both ways, never SQL NULL on one side only
    # read back: the fast path's rows equal SQLAlchemy's own, types included
    with db.uow() as s:
        conn = s.connection()
        for tid in ("t-fast", "t-core"):
            ours = FAST_SELECT_TASK.first(conn, {"_id": tid})
            theirs = tuple(conn.execute(SELECT_TASK, {"_id": tid}).one())
            assert ours == theirs
            assert [type(v) for v in ours] == [type(v) for v in theirs]
            assert ours[[c.key for c in TASKS.columns].index("due_at")] == NOW  # aware UTC
        repo = DossierRepository(s)
        a, b = repo.get_for_update(code="FAST"), repo.get_for_update(code="CORE")
        assert a.data == b.data == _dossier("X", 0)["data"] and a.finished is True and a.finished_at is None
        assert a.received_at == NOW and a.due_at == NOW + timedelta(days=3) and a.paused_hours == 1.25
        row = s.execute(select(Dossier).where(Dossier.code == "FAST")).scalar_one()
        assert (row.received_at, row.data, row.finished) == (a.received_at, a.data, a.finished)


def test_every_statement_is_seen_by_the_engines_listeners(db, version_id):
    seen: list[tuple[str, str, bool]] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        seen.append(("before", statement, executemany))

    def after(conn, cursor, statement, parameters, context, executemany):
        seen.append(("after", statement, executemany))

    event.listen(db.write_engine, "before_cursor_execute", before)
    event.listen(db.write_engine, "after_cursor_execute", after)
    try:
        with db.uow() as s:
            conn = s.connection()
            seen.clear()  # BEGIN apart
            (dossier_id,) = FAST_DOSSIER.first(conn, _dossier("A", version_id))
            FAST_TASK.run(conn, [_task("t1", dossier_id), _task("t2", dossier_id)])
            assert FAST_UPDATE_TASK.run(conn, {"_id": "t1", "state": "completed"}) == 1
    finally:
        event.remove(db.write_engine, "before_cursor_execute", before)
        event.remove(db.write_engine, "after_cursor_execute", after)
    assert [(k, st.split()[0], many) for k, st, many in seen] == [
        ("before", "INSERT", False),
        ("after", "INSERT", False),
        ("before", "INSERT", True),
        ("after", "INSERT", True),
        ("before", "UPDATE", False),
        ("after", "UPDATE", False),
    ]


def test_every_statement_is_seen_with_its_parameters_before_it_runs(db, version_id):
    """The engine's `before_execute` listeners (the worker's wake-ups: a commit that wrote a timer or outbox rows,
    engine/worker.py) see each statement with its parameters, one mapping or a list of them, as
    `Connection.execute` shows them."""
    seen: list = []

    def before(conn, clause, multiparams, params, execution_options):
        seen.append((clause, [dict(p) for p in multiparams], dict(params)))

    event.listen(db.write_engine, "before_execute", before)
    try:
        with db.uow() as s:
            conn = s.connection()
            seen.clear()
            (dossier_id,) = FAST_DOSSIER.first(conn, _dossier("B", version_id))
            FAST_TASK.run(conn, [_task("t3", dossier_id), _task("t4", dossier_id)])
            assert FAST_UPDATE_TASK.run(conn, {"_id": "t3", "state": "completed"}) == 1
    finally:
        event.remove(db.write_engine, "before_execute", before)
    assert [c for c, _, _ in seen] == [FAST_DOSSIER.statement, FAST_TASK.statement, FAST_UPDATE_TASK.statement]
    assert seen[0][1] == [] and seen[0][2]["code"] == "B"
    assert [p["id"] for p in seen[1][1]] == ["t3", "t4"] and seen[1][2] == {}
    assert seen[2] == (FAST_UPDATE_TASK.statement, [], {"_id": "t3", "state": "completed"})


def test_the_rowcount_says_whether_the_versioned_update_matched(db, version_id):
    with db.uow() as s:
        DossierRepository(s).add(_dossier("V", version_id))
    with db.uow() as s:
        stale = DossierRepository(s).get_for_update(code="V")
    with db.uow() as s:
        repo = DossierRepository(s)
        repo.save_fields(repo.get_for_update(code="V"), NOW, status="Khác")
    with pytest.raises(Conflict), db.uow() as s:  # `stale` holds the version before that change
        DossierRepository(s).save_fields(stale, NOW, status="Cũ")
    with db.read() as s:
        assert s.execute(select(Dossier.status, Dossier.version)).one() == ("Khác", 2)


def test_a_constraint_fails_with_the_same_exception_as_connection_execute(db, version_id):
    with db.uow() as s:
        (dossier_id,) = FAST_DOSSIER.first(s.connection(), _dossier("A", version_id))
        FAST_TASK.run(s.connection(), _task("dup", dossier_id))
    caught = []
    for attempt in (
        lambda c: FAST_TASK.run(c, _task("dup", dossier_id)),
        lambda c: c.execute(TASKS.insert(), _task("dup", dossier_id)),
    ):
        with pytest.raises(IntegrityError) as exc, db.uow() as s:
            attempt(s.connection())
        caught.append(exc.value)
    ours, theirs = caught
    assert type(ours.orig) is type(theirs.orig) and ours.statement == theirs.statement
    # and the transaction was rolled back whole: nothing of it stays
    with db.read() as s:
        assert s.execute(select(Task.id)).scalars().all() == ["dup"]


def test_a_missing_row_and_a_missing_parameter_fail_as_before(db):
    with db.uow() as s:
        repo = DossierRepository(s)
        with pytest.raises(NoResultFound):
            repo.state(12345)
        with pytest.raises(Exception) as ours:
            FAST_UPDATE_TASK.run(s.connection(), {"state": "x"})  # no "_id"
        with pytest.raises(Exception) as theirs:
            s.connection().execute(FAST_UPDATE_TASK.statement, {"state": "x"})
        assert type(ours.value) is type(theirs.value)


@pytest.mark.skipif(PG_URL is not None, reason="SQLite's writer lock")
def test_sqlite_a_locked_database_is_the_same_operational_error(db, version_id):
    holder = create_engine(db.url, connect_args={"isolation_level": None})
    with holder.connect() as other:
        other.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            errors = []
            for attempt in (
                lambda c: FAST_EVENT.run(c, {"action": "x", "details": None}),
                lambda c: c.execute(EVENTS.insert(), {"action": "x", "details": None}),
            ):
                with db.read() as s:  # plain BEGIN: the write statement meets the lock
                    conn = s.connection()
                    conn.exec_driver_sql("PRAGMA busy_timeout=50")
                    with pytest.raises(OperationalError) as exc:
                        attempt(conn)
                    errors.append(exc.value)
        finally:
            other.exec_driver_sql("ROLLBACK")
    holder.dispose()
    assert [str(e.orig) for e in errors] == ["database is locked"] * 2
    assert not any(e.connection_invalidated for e in errors)


@pytest.mark.skipif(PG_URL is None, reason="NOTICE: PostgreSQL's deadlock detection needs DATABASE_URL")
def test_postgresql_a_deadlock_is_a_conflict_through_the_unit_of_work(db, version_id):
    with db.uow() as s:
        (dossier_id,) = FAST_DOSSIER.first(s.connection(), _dossier("A", version_id))
        FAST_TASK.run(s.connection(), [_task("a", dossier_id), _task("b", dossier_id)])
    barrier = threading.Barrier(2)
    results: list = []

    def run(first, second):
        try:
            with db.uow() as s:
                conn = s.connection()
                FAST_UPDATE_TASK.run(conn, {"_id": first, "state": "x"})
                barrier.wait(10)
                FAST_UPDATE_TASK.run(conn, {"_id": second, "state": "x"})
            results.append("ok")
        except Conflict as exc:
            results.append(exc)

    threads = [threading.Thread(target=run, args=ab) for ab in (("a", "b"), ("b", "a"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(map(str, results)).count("ok") == 1 and len(results) == 2, results
    conflict = next(r for r in results if r != "ok")
    assert "deadlock" in str(conflict.__cause__)


@pytest.mark.skipif(PG_URL is None, reason="NOTICE: a lost PostgreSQL connection needs DATABASE_URL")
def test_postgresql_a_lost_connection_is_invalidated_as_before(db, version_id):
    killer = create_engine(PG_URL)
    for attempt in (
        lambda c: FAST_UPDATE_TASK.run(c, {"_id": "none", "state": "x"}),
        lambda c: c.execute(FAST_UPDATE_TASK.statement, {"_id": "none", "state": "x"}),
    ):
        with pytest.raises(OperationalError) as exc, db.uow() as s:
            conn = s.connection()
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with killer.begin() as k:
                k.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            attempt(conn)
        assert exc.value.connection_invalidated  # api/errors.py: 503
    killer.dispose()
    with db.read() as s:  # the pool recovered
        assert s.execute(select(TaskRole.task_id)).all() == []


def test_what_cannot_be_planned_goes_through_connection_execute(db):
    """An expanding IN (its text depends on the values) and a default that reads the execution context."""
    from sqlalchemy import Column, Integer, MetaData, String, Table

    by_ids = FastStatement(select(TASKS.c.id).where(TASKS.c.id.in_(bindparam("ids", expanding=True))))
    ctx_table = Table(
        "fast_ctx",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("v", String(20), default=lambda ctx: f"from {ctx.current_parameters['id']}"),
    )
    ctx_table.create(db.write_engine)
    with db.uow() as s:
        conn = s.connection()
        assert by_ids.rows(conn, {"ids": ["none"]}) == []
        insert_ctx = FastStatement(ctx_table.insert())
        insert_ctx.run(conn, {"id": 7})
        assert conn.execute(select(ctx_table.c.v)).scalar() == "from 7"
        plans = conn.dialect.__dict__[fastsql._PLANS]
        assert plans[(by_ids, frozenset({"ids"}), False)] is plans[(insert_ctx, frozenset({"id"}), False)]
        assert plans[(by_ids, frozenset({"ids"}), False)] is fastsql._UNSUPPORTED
    ctx_table.drop(db.write_engine)
