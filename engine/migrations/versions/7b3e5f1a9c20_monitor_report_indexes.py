"""indexes of the overdue monitor and the period report (docs/reports.md, "Indexes")

Revision ID: 7b3e5f1a9c20
Revises: c46d4529ac69
Create Date: 2026-11-26 07:00:00

ix_dossiers_finished_at gains received_at (the report's "received before the period, finished after its
start" is answered inside the index); new: ix_dossiers_received, ix_dossiers_processed (covering the
processing-time query), ix_dossiers_running_due (partial: the open, unpaused dossiers without a result,
covering the monitor), ix_dossiers_paused (partial: the few paused dossiers), ix_tasks_ready_due
(partial: ready steps, covering the monitor). See docs/reports.md, "Indexes".
"""
from alembic import op
import sqlalchemy as sa


revision = '7b3e5f1a9c20'
down_revision = 'c46d4529ac69'
branch_labels = None
depends_on = None

RUNNING_SQLITE = "finished = 0 AND processed_at IS NULL AND paused_at IS NULL"
RUNNING_PG = "finished = false AND processed_at IS NULL AND paused_at IS NULL"


def upgrade() -> None:
    op.drop_index('ix_dossiers_finished_at', table_name='dossiers')
    op.create_index('ix_dossiers_finished_at', 'dossiers', ['finished_at', 'received_at'], unique=False)
    op.create_index('ix_dossiers_received', 'dossiers', ['received_at'], unique=False)
    op.create_index('ix_dossiers_processed', 'dossiers',
                    ['processed_at', 'received_at', 'paused_hours', 'agency', 'procedure_code'], unique=False,
                    sqlite_where=sa.text("processed_at IS NOT NULL"),
                    postgresql_where=sa.text("processed_at IS NOT NULL"))
    op.create_index('ix_dossiers_running_due', 'dossiers',
                    ['finished', 'processed_at', 'paused_at', 'due_at', 'id', 'agency', 'procedure_code'],
                    unique=False, sqlite_where=sa.text(RUNNING_SQLITE), postgresql_where=sa.text(RUNNING_PG))
    op.create_index('ix_dossiers_paused', 'dossiers', ['id'], unique=False,
                    sqlite_where=sa.text("paused_at IS NOT NULL"), postgresql_where=sa.text("paused_at IS NOT NULL"))
    op.create_index('ix_tasks_ready_due', 'tasks',
                    ['state', 'due_at', 'id', 'agency', 'procedure_code', 'dossier_id'], unique=False,
                    sqlite_where=sa.text("state = 'ready'"), postgresql_where=sa.text("state = 'ready'"))


def downgrade() -> None:
    op.drop_index('ix_tasks_ready_due', table_name='tasks')
    op.drop_index('ix_dossiers_paused', table_name='dossiers')
    op.drop_index('ix_dossiers_running_due', table_name='dossiers')
    op.drop_index('ix_dossiers_processed', table_name='dossiers')
    op.drop_index('ix_dossiers_received', table_name='dossiers')
    op.drop_index('ix_dossiers_finished_at', table_name='dossiers')
    op.create_index('ix_dossiers_finished_at', 'dossiers', ['finished_at'], unique=False)
