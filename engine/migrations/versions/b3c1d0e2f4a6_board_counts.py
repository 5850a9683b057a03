"""the supervisors' board counters (engine/boardcounts.py; docs/performance.md, "Board counts")

Revision ID: b3c1d0e2f4a6
Revises: b8f3a1d6c4e2
Create Date: 2026-12-07 15:10:00

Three tables: board_count_deltas (+1 / -1 rows appended by triggers on dossiers and tasks),
board_count_totals (their sums per kind, agency, procedure and hour of the due time, the past folded),
board_count_cutoff (the hour before which it is folded); the triggers; the counts filled from the existing
rows (the tables dossiers and tasks are locked against writers meanwhile on PostgreSQL).
"""
from alembic import op
import sqlalchemy as sa

from engine import boardcounts

revision = 'b3c1d0e2f4a6'
down_revision = 'b8f3a1d6c4e2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'board_count_deltas',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('kind', sa.String(length=1), nullable=False),
        sa.Column('agency', sa.String(length=64), nullable=False),
        sa.Column('procedure_code', sa.String(length=64), nullable=False),
        sa.Column('bucket', sa.Integer(), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_board_count_deltas_bucket', 'board_count_deltas', ['bucket'], unique=False)
    op.create_table(
        'board_count_totals',
        sa.Column('kind', sa.String(length=1), nullable=False),
        sa.Column('agency', sa.String(length=64), nullable=False),
        sa.Column('procedure_code', sa.String(length=64), nullable=False),
        sa.Column('bucket', sa.Integer(), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('kind', 'agency', 'procedure_code', 'bucket'),
    )
    op.create_index('ix_board_count_totals_bucket', 'board_count_totals', ['bucket'], unique=False)
    op.create_table(
        'board_count_cutoff',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('bucket', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    boardcounts.rebuild(op.get_bind())  # counts the existing rows, then creates the triggers


def downgrade() -> None:
    boardcounts.uninstall(op.get_bind())
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION IF EXISTS board_count_dossiers()')
        op.execute('DROP FUNCTION IF EXISTS board_count_tasks()')
    op.drop_table('board_count_cutoff')
    op.drop_index('ix_board_count_totals_bucket', table_name='board_count_totals')
    op.drop_table('board_count_totals')
    op.drop_index('ix_board_count_deltas_bucket', table_name='board_count_deltas')
    op.drop_table('board_count_deltas')
