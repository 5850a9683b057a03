"""step deadline watch: tasks.remind_at, tasks.overdue_flagged_at

Revision ID: 3f7d2b9c5e14
Revises: 0c6161f11663
Create Date: 2026-12-07 12:00:00
"""
from alembic import op
import sqlalchemy as sa
import engine.models


revision = '3f7d2b9c5e14'
down_revision = '0c6161f11663'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('remind_at', engine.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('overdue_flagged_at', engine.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('overdue_flagged_at')
        batch_op.drop_column('remind_at')
