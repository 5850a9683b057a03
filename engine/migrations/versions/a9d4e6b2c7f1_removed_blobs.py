"""removed_blobs: the files of removed documents, deleted later once no attachment refers to their bytes;
ix_attachments_sha256 answers whether a file is still someone's

Revision ID: a9d4e6b2c7f1
Revises: c2d7e9a4b6f1
Create Date: 2026-12-07 16:05:00
"""
from alembic import op
import sqlalchemy as sa

from engine.models import UTCDateTime


revision = 'a9d4e6b2c7f1'
down_revision = 'c2d7e9a4b6f1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'removed_blobs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('removed_at', UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_removed_blobs_removed_at', 'removed_blobs', ['removed_at'], unique=False)
    op.create_index('ix_attachments_sha256', 'attachments', ['sha256'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_attachments_sha256', table_name='attachments')
    op.drop_index('ix_removed_blobs_removed_at', table_name='removed_blobs')
    op.drop_table('removed_blobs')
