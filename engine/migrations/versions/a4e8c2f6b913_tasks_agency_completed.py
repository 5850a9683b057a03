"""tasks by performing agency and completion time: ix_tasks_agency_completed (the report's steps performed)

Revision ID: a4e8c2f6b913
Revises: b3c1d0e2f4a6
Create Date: 2026-12-07 15:20:00
"""
from alembic import op


revision = 'a4e8c2f6b913'
down_revision = 'b3c1d0e2f4a6'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_tasks_agency_completed', 'tasks', ['agency', 'completed_at', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_tasks_agency_completed', table_name='tasks')
