"""Shared fixtures. The suite runs on SQLite by default and on PostgreSQL when DATABASE_URL is set."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

from engine.config import Settings
from engine.db import Database
from engine.models import Base

ROOT = Path(__file__).resolve().parent.parent
BPMN_DIR = ROOT / "bpmn"
SHARED = ROOT.parent / "shared"
EXTERNAL_BPMN = SHARED / "external-bpmn"
PG_URL = os.environ.get("DATABASE_URL") if (os.environ.get("DATABASE_URL") or "").startswith("postgresql") else None


@pytest.fixture
def settings(tmp_path) -> Settings:
    url = PG_URL or f"sqlite:///{tmp_path / 'motcua.db'}"
    return Settings(var_dir=tmp_path / "var", database_url=url, redis_url=os.environ.get("REDIS_URL"),
                    secret_key="test-secret")


@pytest.fixture
def db(settings) -> Database:
    database = Database.from_settings(settings)
    if PG_URL:
        Base.metadata.drop_all(database.write_engine)
        with database.write_engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    database.create_all()
    yield database
    database.dispose()
