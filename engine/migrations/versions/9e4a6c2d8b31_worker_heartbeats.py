"""worker heartbeats (docs/operations.md, "Metrics")

Revision ID: 9e4a6c2d8b31
Revises: 595ec83994a5
Create Date: 2026-12-01 22:40:00

One row per background worker process with the time of its last heartbeat; /metrics reports their age.
"""
from alembic import op
import sqlalchemy as sa

import engine.models

revision = '9e4a6c2d8b31'
down_revision = '595ec83994a5'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'worker_heartbeats',
        sa.Column('id', sa.String(length=120), nullable=False),
        sa.Column('host', sa.String(length=100), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('started_at', engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('beat_at', engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('sweeps', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade() -> None:
    op.drop_table('worker_heartbeats')
