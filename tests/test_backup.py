"""Backup and restore as docs/operations.md tells it: SQLite's online backup API while the database is in use,
and pg_dump / pg_restore into a fresh PostgreSQL database; in both, the dossiers continue on the copy."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from engine.db import Database
from engine.dossiers import DossierService
from engine.migrate import upgrade
from engine.procedures import deploy_bytes
from tests.conftest import PG_SCHEMA, PG_URL, ROOT, reset_database
from tests.helpers import staff

FOUR_STEPS = (ROOT / "bench" / "four_steps.bpmn").read_bytes()
OFFICER = staff({"receiver", "specialist"})


def _half_done(db: Database, settings) -> tuple[str, str]:
    """A dossier with its first step completed: (code, the next task's id)."""
    deploy_bytes(db, FOUR_STEPS, "four_steps.bpmn")
    svc = DossierService(db, settings)
    d = svc.start_dossier(OFFICER, "9.000001", {"name": "Lê Văn Sao Lưu"})
    d = svc.complete_task(OFFICER, d["tasks"][0]["id"], {"decision": "accept"})
    return d["code"], d["tasks"][0]["id"]


def _finish(db: Database, settings, task_id: str) -> dict:
    svc = DossierService(db, settings)
    d = None
    while task_id:
        d = svc.complete_task(OFFICER, task_id, {"decision": "accept"})
        task_id = d["tasks"][0]["id"] if d["tasks"] else None
    return d


def test_sqlite_online_backup_then_the_dossier_continues_on_the_copy(tmp_path, settings):
    if PG_URL:
        pytest.skip("the SQLite backup is tested in the SQLite pass")
    upgrade(settings.database_url)
    db = Database(settings.database_url)
    code, task_id = _half_done(db, settings)
    live = sqlite3.connect(tmp_path / "motcua.db")  # the database stays in use during the copy
    copy = sqlite3.connect(tmp_path / "backup.db")
    live.backup(copy)
    copy.close()
    _finish(db, settings, task_id)  # the original goes on; the copy keeps the moment of the backup
    live.close()
    restored = Database(f"sqlite:///{tmp_path / 'backup.db'}")
    d = _finish(restored, settings, task_id)
    assert d["code"] == code and d["finished"] and d["status"] == "returned"
    restored.dispose()
    db.dispose()


@pytest.mark.skipif(
    not (PG_URL and shutil.which("pg_dump") and shutil.which("pg_restore")),
    reason="NOTICE: pg_dump/pg_restore into a fresh database needs PostgreSQL (DATABASE_URL) and its client tools",
)
def test_pg_dump_restore_into_a_fresh_database_then_the_dossier_continues(settings):
    reset_database(PG_URL)
    upgrade(PG_URL)
    db = Database(PG_URL)
    code, task_id = _half_done(db, settings)
    url = make_url(PG_URL)
    fresh = f"motcua_restore_{uuid.uuid4().hex[:8]}"
    conn = ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres"]
    admin = create_engine(url.set(query={}).render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    dump = subprocess.run(
        ["pg_dump", *conn, "-Fc", "-n", PG_SCHEMA, url.database], capture_output=True, check=True, timeout=120
    ).stdout
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{fresh}"'))
    try:
        subprocess.run(
            ["pg_restore", *conn, "--no-owner", "-d", fresh], input=dump, capture_output=True, check=True, timeout=120
        )
        restored_url = url.set(database=fresh).render_as_string(hide_password=False)
        upgrade(restored_url)  # a no-op at the same version
        restored = Database(restored_url)
        d = _finish(restored, settings, task_id)
        assert d["code"] == code and d["finished"] and d["status"] == "returned"
        restored.dispose()
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)'))
        admin.dispose()
        db.dispose()
