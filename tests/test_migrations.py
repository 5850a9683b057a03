"""`motcua db upgrade` builds exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import os

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect

from cli.main import main as cli
from engine.models import Base


def test_db_upgrade_matches_the_models(empty_database, tmp_path):
    url = empty_database
    r = CliRunner().invoke(
        cli, ["db", "upgrade"], env={**os.environ, "DATABASE_URL": url, "MOTCUA_VAR": str(tmp_path / "var")}
    )
    assert r.exit_code == 0, r.output
    eng = create_engine(url)
    with eng.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
        assert diff == [], f"models and migrations differ: write a migration for {diff}"
        assert "alembic_version" in inspect(conn).get_table_names()
    eng.dispose()
    # running it again is a no-op
    r = CliRunner().invoke(cli, ["db", "upgrade"], env={**os.environ, "DATABASE_URL": url})
    assert r.exit_code == 0, r.output


def test_procedures_level_is_filled_from_each_current_version(empty_database):
    """The migration adding procedures.level copies each procedure's current version's level (JSON text on
    SQLite, JSON on PostgreSQL), so the catalogue's indexed filter finds the procedures deployed before it."""
    import json

    from sqlalchemy import text

    from engine.migrate import upgrade

    url = empty_database
    upgrade(url, "e5b9d3a7c1f8")
    eng = create_engine(url)
    insert_version = text(
        "INSERT INTO procedure_versions (procedure_id, version, content_hash, process_id, bpmn_xml, spec_json, "
        "meta, user_tasks, forms, deployed_at) VALUES (:p, :v, :h, 'p', '', '', :meta, '[]', '{}', :at)"
    )
    with eng.begin() as conn:
        for pid, code, current in ((1, "1.000001", 2), (2, "1.000002", 1)):
            conn.execute(
                text(
                    "INSERT INTO procedures (id, code, scope, name, current_version, created_at) "
                    "VALUES (:i, :c, '', 'x', :cv, :at)"
                ),
                {"i": pid, "c": code, "cv": current, "at": "2026-01-01 00:00:00"},
            )
        levels = {(1, 1): "2", (1, 2): "toan_trinh", (2, 1): None}
        for (pid, version), level in levels.items():
            meta = json.dumps({"level": level} if level else {})
            conn.execute(
                insert_version,
                {"p": pid, "v": version, "h": f"{pid}-{version}", "meta": meta, "at": "2026-01-01 00:00:00"},
            )
    upgrade(url)
    with eng.connect() as conn:
        got = dict(conn.execute(text("SELECT code, level FROM procedures")).all())
    assert got == {"1.000001": "toan_trinh", "1.000002": None}
    eng.dispose()
