"""tasks.for_agency: the receiving agency of a step another agency performs; ix_tasks_performed (partial)
replaces ix_tasks_agency_completed, so the report reads those steps only

Revision ID: e5b9d3a7c1f8
Revises: a4e8c2f6b913
Create Date: 2026-12-07 15:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'e5b9d3a7c1f8'
down_revision = 'a4e8c2f6b913'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('for_agency', sa.String(length=64), nullable=True))
    # the steps already performed for another agency's dossier (a wait row is its dossier agency's: never)
    op.execute(
        "UPDATE tasks SET for_agency = (SELECT dossiers.agency FROM dossiers WHERE dossiers.id = tasks.dossier_id) "
        "WHERE state IN ('ready', 'completed', 'cancelled') "
        "AND agency <> (SELECT dossiers.agency FROM dossiers WHERE dossiers.id = tasks.dossier_id)"
    )
    op.drop_index('ix_tasks_agency_completed', table_name='tasks')
    op.create_index(
        'ix_tasks_performed',
        'tasks',
        ['agency', 'completed_at', 'created_at'],
        unique=False,
        sqlite_where=sa.text('for_agency IS NOT NULL'),
        postgresql_where=sa.text('for_agency IS NOT NULL'),
    )


def downgrade() -> None:
    op.drop_index('ix_tasks_performed', table_name='tasks')
    op.create_index('ix_tasks_agency_completed', 'tasks', ['agency', 'completed_at', 'created_at'], unique=False)
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('for_agency')
