"""outbox: message id, the link a mail carries

Revision ID: 62f7f14537c2
Revises: c03d3c7e4161
Create Date: 2026-12-02 00:04:51.924257
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '62f7f14537c2'
down_revision = 'c03d3c7e4161'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outboxmail', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('outboxmail', schema=None) as batch_op:
        batch_op.drop_column('token_hash')
        batch_op.drop_column('message_id')

