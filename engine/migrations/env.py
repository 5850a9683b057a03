"""Alembic environment: migrations run against the URL the CLI passes in (DATABASE_URL or var/motcua.db)."""

from alembic import context
from sqlalchemy import create_engine

from engine.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url") or ""  # set by engine/migrate.py


def run() -> None:
    engine = create_engine(url)
    with engine.connect() as conn:
        context.configure(
            connection=conn, target_metadata=Base.metadata, render_as_batch=url.startswith("sqlite"), compare_type=True
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
