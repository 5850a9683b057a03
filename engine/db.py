"""Database access without Flask: engines, sessions and the unit of work.

Every state change runs inside `Database.uow()`: one transaction, committed at the end or rolled back on
error. On SQLite a writing transaction starts with BEGIN IMMEDIATE so two writers queue instead of
failing half-way; readers use plain BEGIN and never block writers (WAL journal).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import InvalidatePoolError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from . import boardcounts as _boardcounts  # noqa: F401 (creates the board counters' triggers with the tables)
from . import caches as _caches  # noqa: F401 (its flush hook bumps cache generations on every session)
from .config import Settings
from .errors import Conflict

SQLITE_HEAP_LIMIT = 64 * 2**20  # bytes: all SQLite memory of one process (page caches first), a soft limit

#: execution option of `Database.statements()`' connections (SQLite): no BEGIN, each statement commits itself
STATEMENT_COMMITS = "motcua_statement_commits"


def _sqlite_engine(url: str, immediate: bool) -> Engine:
    eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(eng, "connect")
    def _pragmas(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # let us emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA cache_size=-32000")  # 32 MB page cache per connection
        # ... but the process's connections together (two pools of up to 15) stay under SQLITE_HEAP_LIMIT:
        # the limit is process-wide, and SQLite reuses cached pages past it (docs/performance.md, "Memory").
        cur.execute(f"PRAGMA soft_heap_limit={SQLITE_HEAP_LIMIT}")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.close()

    @event.listens_for(eng, "begin")
    def _begin(conn):
        if conn.get_execution_options().get(STATEMENT_COMMITS):
            return  # `Database.statements()`: each statement is its own transaction
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return eng


# A pooled PostgreSQL connection idle for longer than this is checked (one round trip) before use; one used
# more recently is not: under load every connection is, and the check was one round trip of the 11-14 of a
# completion. A connection cut within that second (the server restarted) fails its request with a 503, and
# the pool then drops every connection older than the failure (docs/operations.md, "When PostgreSQL is away").
PING_AFTER_IDLE_SECONDS = 1.0

#: key in a PostgreSQL connection's info: its transaction sent something other than a SELECT
_WROTE = "motcua_wrote"


def _pg_engine(url: str) -> Engine:
    """PostgreSQL: a pool of 10 (+20 overflow) per process, reused last-in first-out so that the busy few stay
    warm (and keep their prepared statements: psycopg prepares a statement on a connection after its 5th
    use), the idle rest checked before use."""
    eng = create_engine(url, pool_size=10, max_overflow=20, pool_use_lifo=True)
    dialect = eng.dialect

    @event.listens_for(eng, "begin")
    def _clean(conn):
        conn.info.pop(_WROTE, None)

    @event.listens_for(eng, "before_cursor_execute")
    def _wrote(conn, _cursor, statement, *_):
        # anything but a plain SELECT: a read that wrote is rolled back, never committed (`Database.end_read`)
        if statement[:6] != "SELECT":
            conn.info[_WROTE] = True

    @event.listens_for(eng, "checkin")
    def _idle_from(_dbapi_conn, record):
        record.info["idle_from"] = time.monotonic()

    @event.listens_for(eng, "checkout")
    def _ping_if_idle(dbapi_conn, record, _proxy):
        idle_from = record.info.get("idle_from")  # None: a connection just opened
        if idle_from is None or time.monotonic() - idle_from < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_conn, None):
                raise InvalidatePoolError() from exc  # the pool reconnects, dropping every older connection
            raise

    return eng


class Database:
    """Engines and session factories for one database URL."""

    def __init__(self, url: str):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, immediate=False)
            self.write_engine = _sqlite_engine(url, immediate=True)
        else:
            self.engine = _pg_engine(url)
            self.write_engine = self.engine
        self.Session = sessionmaker(self.engine, expire_on_commit=False)
        self.WriteSession = sessionmaker(self.write_engine, expire_on_commit=False, autoflush=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(settings.database_url)

    @contextmanager
    def uow(self) -> Iterator[Session]:
        """One writing transaction: commit on success, roll back on any error.

        A stale version (someone else changed the row meanwhile) becomes `Conflict`.
        """
        session = self.WriteSession()
        try:
            yield session
            session.commit()
        except StaleDataError as exc:
            session.rollback()
            raise Conflict.dossier_changed() from exc
        except OperationalError as exc:
            session.rollback()
            if "could not serialize" in str(exc) or "deadlock" in str(exc):
                raise Conflict("Xung đột khi ghi; vui lòng thử lại.", "Write conflict; try again.") from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def statements(self) -> Iterator[Connection]:
        """SQLite: a writing connection on which every statement is a transaction of its own (no BEGIN IMMEDIATE
        before it; the connection is in SQLite's autocommit mode). SQLite takes its write lock when the statement
        starts and releases it when the statement ends, inside one call into SQLite: no Python code runs while
        it is held, so neither this process's other threads (the GIL) nor the CPU scheduler of a niced process
        can lengthen it. For writes that stand on their own (the outbox drainer's: docs/channels.md,
        "Measured"); call `commit()` after each statement (SQLAlchemy's bookkeeping; SQLite has committed)."""
        with self.write_engine.connect() as conn:
            conn.execution_options(**{STATEMENT_COMMITS: True})
            yield conn

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A reading transaction, ended by `end_read`."""
        session = self.Session()
        finished = False
        try:
            yield session
            finished = True
        finally:
            self.end_read(session, finished)
            session.close()

    def end_read(self, session: Session, finished: bool) -> None:
        """End a read transaction (`read()`, the API's request session).

        On PostgreSQL, when the block `finished`, left no pending ORM change and sent nothing but SELECTs, the
        driver's connection commits (to the server the same as a rollback: nothing was written) and the
        session then rolls back, which psycopg skips on a connection outside a transaction. psycopg's
        rollback() of an open transaction forgets every statement the connection had prepared and sends
        DEALLOCATE ALL: reads ending that way kept the pooled connections from keeping the hot path's
        prepared statements, and cost a round trip more (docs/performance.md, "Prepared statements on
        PostgreSQL"). The session itself never commits, so no ORM commit hook runs for a read. On an error,
        after a write, with pending changes, and always on SQLite (a rollback does not touch its statement
        cache): ROLLBACK."""
        if finished and not self.is_sqlite and session.in_transaction():
            if not (session.new or session.dirty or session.deleted):
                conn = session.connection()
                driver = conn.connection.dbapi_connection
                if driver is not None and not conn.info.get(_WROTE):
                    try:
                        driver.commit()
                    except self.engine.dialect.loaded_dbapi.Error as exc:
                        # the connection broke after the reads (the server restarted): what they read
                        # stands; the connection is dropped, not given back to the pool
                        conn.invalidate(exc)
        session.rollback()

    def create_all(self) -> None:
        from .models import Base

        Base.metadata.create_all(self.write_engine)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()
