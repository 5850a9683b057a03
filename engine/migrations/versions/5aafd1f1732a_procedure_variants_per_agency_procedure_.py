"""procedure variants per agency, procedure roles, token generation, shared throttles

Revision ID: 5aafd1f1732a
Revises: 9e4a6c2d8b31
Create Date: 2026-12-01 21:46:14.108085

- procedures: keyed by (code, scope), scope = the owning agency or '' (province-wide); the code alone is no
  longer unique (two agencies may offer the same national procedure, each its own variant);
- procedure_roles: the roles named by deployed procedures (who counts as staff), filled from every version;
- users.token_generation: revokes a user's tokens when the password changes or the account is disabled;
- throttles: sign-in and lookup counters shared by every process.
See docs/security.md.
"""
from alembic import op
import sqlalchemy as sa
import engine.models


revision = '5aafd1f1732a'
down_revision = '9e4a6c2d8b31'
branch_labels = None
depends_on = None

NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    op.create_table('throttles',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('window_start', engine.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('blocked_until', engine.models.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('procedure_roles',
    sa.Column('role', sa.String(length=100), nullable=False),
    sa.Column('procedure_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['procedure_id'], ['procedures.id'], ),
    sa.PrimaryKeyConstraint('role', 'procedure_id')
    )
    bind = op.get_bind()
    old_unique = 'procedures_code_key' if bind.dialect.name == 'postgresql' else 'uq_procedures_code'
    with op.batch_alter_table('procedures', schema=None, naming_convention=NAMING) as batch_op:
        batch_op.add_column(sa.Column('scope', sa.String(length=64), server_default='', nullable=False))
        batch_op.drop_constraint(old_unique, type_='unique')
        batch_op.create_unique_constraint('uq_procedures_code_scope', ['code', 'scope'])
    op.execute("UPDATE procedures SET scope = agency WHERE agency IS NOT NULL")

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_generation', sa.Integer(), server_default='0', nullable=False))

    versions = sa.table('procedure_versions', sa.column('procedure_id', sa.Integer()), sa.column('user_tasks', sa.JSON()))
    roles = set()
    for procedure_id, user_tasks in bind.execute(sa.select(versions.c.procedure_id, versions.c.user_tasks)):
        for ut in user_tasks or []:
            for role in (ut or {}).get('roles') or []:
                if isinstance(role, str) and role.strip():
                    roles.add((role.strip()[:100], procedure_id))
    if roles:
        table = sa.table('procedure_roles', sa.column('role', sa.String()), sa.column('procedure_id', sa.Integer()))
        op.bulk_insert(table, [{'role': r, 'procedure_id': p} for r, p in sorted(roles)])


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('token_generation')

    with op.batch_alter_table('procedures', schema=None) as batch_op:
        batch_op.drop_constraint('uq_procedures_code_scope', type_='unique')
        batch_op.drop_column('scope')
        batch_op.create_unique_constraint('uq_procedures_code', ['code'])

    op.drop_table('procedure_roles')
    op.drop_table('throttles')
