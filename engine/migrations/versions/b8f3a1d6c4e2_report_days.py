"""the period report's aggregates, filled from the existing dossiers (docs/reports.md, "Aggregates")

Revision ID: b8f3a1d6c4e2
Revises: 7d6ca5c8bd29
Create Date: 2026-12-07 15:20:00

Table report_days: the report's figures per (day in UTC+7, agency, procedure), kept by every later change of a
dossier (engine/report_counts.py). The upgrade backfills it from the dossiers with the same rule
(`report_counts.rebuild`), so an upgraded database reports the same figures; `motcua reports rebuild` does
the same at any time.
"""
from alembic import op
import sqlalchemy as sa

revision = 'b8f3a1d6c4e2'
down_revision = '7d6ca5c8bd29'
branch_labels = None
depends_on = None

COUNTS = (
    'received', 'received_online', 'received_in_person', 'received_postal', 'received_supplement', 'fee_due',
    'paid_online', 'completed', 'completed_early', 'completed_late', 'e_result',
)
MORE = ('refused', 'stopped', 'withdrawn', 'returned', 'open_delta', 'overdue_delta', 'supplement_delta')


def upgrade() -> None:
    op.create_table(
        'report_days',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('agency', sa.String(length=64), nullable=False),
        sa.Column('procedure_code', sa.String(length=64), nullable=False),
        *[sa.Column(c, sa.Integer(), nullable=False) for c in COUNTS],
        sa.Column('working_hours', sa.Float(), nullable=False),
        *[sa.Column(c, sa.Integer(), nullable=False) for c in MORE],
        sa.PrimaryKeyConstraint('day', 'agency', 'procedure_code'),
    )
    from engine import report_counts

    report_counts.rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_table('report_days')
