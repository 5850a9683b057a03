"""What every command reaches for: the settings, the migrated database, and the way a refusal is printed."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from engine.config import Settings
from engine.db import Database
from engine.errors import MotcuaError


def settings() -> Settings:
    return Settings.from_env()


def migrated_db() -> Database:
    """The database, brought up to the current schema first (a no-op when it already is)."""
    from engine.migrate import upgrade

    s = settings()
    upgrade(s.database_url)
    return Database.from_settings(s)


def fail(exc: MotcuaError) -> NoReturn:
    """Print the engine's refusal (Vietnamese first, English second) and exit with status 2."""
    click.echo(f"Lỗi / Error: {exc.message_vi}\n  {exc.message_en}", err=True)
    sys.exit(2)
