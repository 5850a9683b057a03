"""procedures.level: the current version's level of service, kept at deploy; ix_procedures_level_code serves
the catalogues' level filter (it read every current version's JSON metadata)

Revision ID: f2a7c4e9d1b3
Revises: e5b9d3a7c1f8
Create Date: 2026-12-07 16:00:00
"""
import json

from alembic import op
import sqlalchemy as sa


revision = 'f2a7c4e9d1b3'
down_revision = 'e5b9d3a7c1f8'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('procedures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('level', sa.String(length=16), nullable=True))
        batch_op.create_index('ix_procedures_level_code', ['level', 'code'], unique=False)
    # the level of each procedure's current version (JSON: text on SQLite, decoded on PostgreSQL)
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT p.id, v.meta FROM procedures p JOIN procedure_versions v "
            "ON v.procedure_id = p.id AND v.version = p.current_version"
        )
    ).all()
    for pid, meta in rows:
        meta = json.loads(meta) if isinstance(meta, str) else meta or {}
        level = meta.get('level') if isinstance(meta, dict) else None
        if level not in (None, ''):
            conn.execute(sa.text("UPDATE procedures SET level = :l WHERE id = :i"), {"l": str(level), "i": pid})


def downgrade() -> None:
    with op.batch_alter_table('procedures', schema=None) as batch_op:
        batch_op.drop_index('ix_procedures_level_code')
        batch_op.drop_column('level')
