"""cache generations (docs/operations.md, "Scaling")

Revision ID: 3c7d9e1b5a62
Revises: 3f7d2b9c5e14
Create Date: 2026-12-07 11:55:00

A counter per kind of per-process cache (the working calendar, users), bumped with every change, so every
API process and worker drops its copy within a second instead of at its expiry.
"""
from alembic import op
import sqlalchemy as sa

revision = '3c7d9e1b5a62'
down_revision = '3f7d2b9c5e14'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        'cache_generations',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    op.bulk_insert(table, [{'name': 'calendar', 'generation': 0}, {'name': 'users', 'generation': 0}])


def downgrade() -> None:
    op.drop_table('cache_generations')
