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
