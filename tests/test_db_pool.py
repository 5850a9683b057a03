"""PostgreSQL's connection pool (engine/db.py): a connection idle for a while is checked before use and
replaced when the server dropped it; one used a moment ago is not checked (one round trip less per request),
so a cut it did not see fails one request, after which the pool has dropped every older connection."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

import engine.db
from engine.db import Database
from tests.conftest import PG_URL

pytestmark = pytest.mark.skipif(not PG_URL, reason="NOTICE: the connection pool's checks run on PostgreSQL only")


def _backend_pid(db: Database) -> int:
    with db.read() as s:
        return s.execute(text("SELECT pg_backend_pid()")).scalar()


def _terminate(pid: int) -> None:
    eng = create_engine(PG_URL)
    with eng.begin() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    eng.dispose()


@pytest.fixture
def pg():
    database = Database(PG_URL)
    yield database
    database.dispose()


def test_a_connection_idle_long_enough_is_checked_and_replaced_when_the_server_dropped_it(pg, monkeypatch):
    monkeypatch.setattr(engine.db, "PING_AFTER_IDLE_SECONDS", 0.0)
    first = _backend_pid(pg)
    _terminate(first)
    second = _backend_pid(pg)  # no error: the check found the cut and the pool reconnected
    assert second != first
    assert _backend_pid(pg) == second


def test_a_connection_used_a_moment_ago_is_not_checked_and_one_failed_request_renews_the_pool(pg, monkeypatch):
    monkeypatch.setattr(engine.db, "PING_AFTER_IDLE_SECONDS", 60.0)
    first = _backend_pid(pg)
    _terminate(first)
    with pytest.raises(OperationalError) as caught:  # not checked: the request meets the cut (the API: 503)
        _backend_pid(pg)
    assert caught.value.connection_invalidated
    assert _backend_pid(pg) not in (first, None)


def test_reads_keep_the_connections_prepared_statements(db):
    """psycopg prepares a statement on a connection after its 5th execution and forgets all of them at every
    ROLLBACK (with a DEALLOCATE ALL round trip): reads end with COMMIT, so a statement the reads repeat stays
    prepared on the pooled connection (the pool hands back the same one, last in first out)."""
    probe = text("SELECT count(*) FROM users WHERE username = :u")
    pid = _backend_pid(db)
    for _ in range(8):
        with db.read() as s:
            s.execute(probe, {"u": "nobody"}).scalar()
    with db.read() as s:
        assert s.execute(text("SELECT pg_backend_pid()")).scalar() == pid  # the same pooled connection
        prepared = s.execute(
            text("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%FROM users WHERE username%'")
        ).scalar()
    assert prepared == 1


def test_a_read_that_left_pending_changes_rolls_them_back(db):
    """A read never writes: ORM objects added in a read block are discarded, as before."""
    from engine.models import Agency

    with db.read() as s:
        s.add(Agency(code="ZZ.READ.ONLY", level=1, name="Không được ghi"))
    with db.read() as s:
        assert s.execute(text("SELECT count(*) FROM agencies WHERE code = 'ZZ.READ.ONLY'")).scalar() == 0


def test_a_read_that_wrote_rolls_the_write_back(db):
    """A read never writes: a statement other than a SELECT in a read block is rolled back, not committed."""
    with db.read() as s:
        s.execute(
            text(
                "INSERT INTO agencies (code, level, name, updated_at) VALUES ('ZZ.READ.WROTE', 1, 'Không được ghi', now())"
            )
        )
    with db.read() as s:
        assert s.execute(text("SELECT count(*) FROM agencies WHERE code = 'ZZ.READ.WROTE'")).scalar() == 0


def test_a_read_whose_connection_breaks_before_its_end_keeps_what_it_read(db):
    """The server cut the connection after the read's statements (PostgreSQL restarted): the read's COMMIT
    fails, yet what it read stands and nothing is raised (a raw driver error became a 500 in the fault drill);
    the broken connection is dropped and the next read gets a new one."""
    with db.read() as s:
        pid = s.execute(text("SELECT pg_backend_pid()")).scalar()
        _terminate(pid)
    assert _backend_pid(db) not in (pid, None)
