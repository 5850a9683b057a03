"""one agency's period report: ix_report_days_agency (docs/reports.md, "Aggregates")

Revision ID: c2d7e9a4b6f1
Revises: f2a7c4e9d1b3
Create Date: 2026-12-07 16:00:00

A report for one agency reads that agency's rows of report_days only, instead of the whole table.
"""
from alembic import op


revision = 'c2d7e9a4b6f1'
down_revision = 'f2a7c4e9d1b3'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_report_days_agency', 'report_days', ['agency', 'day'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_report_days_agency', table_name='report_days')
