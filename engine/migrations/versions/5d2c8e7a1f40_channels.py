"""citizen channels: delivery state of the outbox, message template overrides, inbound texts, officers' contacts

Revision ID: 5d2c8e7a1f40
Revises: 7b3e5f1a9c20
Create Date: 2026-11-27 09:00:00

notifications gains the delivery state (tries, next_try_at, last_error, dead_at), the e-mail subject, a
structured payload and the national portal's per-dossier sequence; pending rows are found by
ix_notifications_due (channel, next_try_at), replacing ix_notifications_pending. Unsent rows get
next_try_at = created_at so that they are sent by the new delivery task. See docs/channels.md.
"""
from alembic import op
import sqlalchemy as sa

import engine.models


revision = '5d2c8e7a1f40'
down_revision = '7b3e5f1a9c20'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'message_templates',
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('updated_at', engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.String(length=80), nullable=True),
        sa.PrimaryKeyConstraint('name'),
    )
    op.create_table(
        'inbound_messages',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('sender', sa.String(length=200), nullable=False),
        sa.Column('text', sa.String(length=500), nullable=False),
        sa.Column('received_at', engine.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('outcome', sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.create_index('ix_inbound_sender_at', ['channel', 'sender', 'received_at'], unique=False)

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('payload', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('sequence', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('tries', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('next_try_at', engine.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('dead_at', engine.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_index('ix_notifications_pending')
        batch_op.drop_index(batch_op.f('ix_notifications_dossier_id'))
        batch_op.create_index('ix_notifications_due', ['channel', 'next_try_at'], unique=False)
        batch_op.create_index('ix_notifications_dossier_seq', ['dossier_id', 'channel', 'sequence'], unique=False)
        batch_op.create_index('ix_notifications_dead', ['dead_at'], unique=False)
    op.execute("UPDATE notifications SET next_try_at = created_at WHERE sent_at IS NULL")

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('phone', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('phone')
        batch_op.drop_column('email')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_dead')
        batch_op.drop_index('ix_notifications_dossier_seq')
        batch_op.drop_index('ix_notifications_due')
        batch_op.create_index(batch_op.f('ix_notifications_dossier_id'), ['dossier_id'], unique=False)
        batch_op.create_index('ix_notifications_pending', ['sent_at', 'id'], unique=False)
        for col in ('dead_at', 'last_error', 'next_try_at', 'tries', 'sequence', 'payload', 'subject'):
            batch_op.drop_column(col)
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_sender_at')
    op.drop_table('inbound_messages')
    op.drop_table('message_templates')
