"""Shared fixtures. The suite runs on SQLite by default and on PostgreSQL when DATABASE_URL is set.

On PostgreSQL each test session works in a schema of its own (search_path set on every connection), so two
runs against the same database (CI and a developer, or two developers) never see each other's tables.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from engine.config import Settings
from engine.db import Database
from engine.models import Base

ROOT = Path(__file__).resolve().parent.parent
BPMN_DIR = ROOT / "bpmn"
SHARED = ROOT.parent / "shared"
EXTERNAL_BPMN = SHARED / "external-bpmn"

_BASE_PG_URL = (
    os.environ.get("DATABASE_URL") if (os.environ.get("DATABASE_URL") or "").startswith("postgresql") else None
)
PG_SCHEMA = f"motcua_test_{os.getpid()}_{uuid.uuid4().hex[:6]}" if _BASE_PG_URL else None
PG_URL = None
if _BASE_PG_URL:
    sep = "&" if "?" in _BASE_PG_URL else "?"
    PG_URL = f"{_BASE_PG_URL}{sep}options={quote(f'-csearch_path={PG_SCHEMA}')}"
    os.environ["DATABASE_URL"] = PG_URL  # subprocesses and create_app() without settings use the same schema


def pytest_sessionstart(session):
    if _BASE_PG_URL:
        eng = create_engine(_BASE_PG_URL)
        with eng.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{PG_SCHEMA}"'))
        eng.dispose()


def pytest_sessionfinish(session, exitstatus):
    if _BASE_PG_URL:
        eng = create_engine(_BASE_PG_URL)
        with eng.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{PG_SCHEMA}" CASCADE'))
        eng.dispose()


def reset_database(url: str) -> None:
    """An empty database: every table dropped (PostgreSQL; a SQLite test file is new anyway)."""
    if not url.startswith("postgresql"):
        return
    eng = create_engine(url)
    Base.metadata.drop_all(eng)
    with eng.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    eng.dispose()


@pytest.fixture
def settings(tmp_path) -> Settings:
    url = PG_URL or f"sqlite:///{tmp_path / 'motcua.db'}"
    return Settings(
        var_dir=tmp_path / "var", database_url=url, redis_url=os.environ.get("REDIS_URL"), secret_key="test-secret"
    )


@pytest.fixture
def empty_database(settings) -> str:
    """The URL of an empty database (no tables, no migrations applied)."""
    reset_database(settings.database_url)
    return settings.database_url


@pytest.fixture
def db(settings) -> Database:
    reset_database(settings.database_url)
    database = Database.from_settings(settings)
    database.create_all()
    yield database
    database.dispose()
