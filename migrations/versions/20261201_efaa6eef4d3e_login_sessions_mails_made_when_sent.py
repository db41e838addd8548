"""login sessions, mails made when sent

Revision ID: efaa6eef4d3e
Revises: a5169fab1025
Create Date: 2026-12-01 23:07:43.901321
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'efaa6eef4d3e'
down_revision = 'a5169fab1025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('loginsession',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash')
    )
    with op.batch_alter_table('loginsession', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loginsession_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_loginsession_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('outboxmail', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('outboxmail', schema=None) as batch_op:
        batch_op.drop_column('kind')

    with op.batch_alter_table('loginsession', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loginsession_user_id'))
        batch_op.drop_index(batch_op.f('ix_loginsession_created_at'))

    op.drop_table('loginsession')
