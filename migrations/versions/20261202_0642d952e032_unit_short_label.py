"""unit short label

Revision ID: 0642d952e032
Revises: 62f7f14537c2
Create Date: 2026-12-02 00:30:01.337126
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0642d952e032'
down_revision = '62f7f14537c2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('unit', schema=None) as batch_op:
        batch_op.add_column(sa.Column('short_label', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('unit', schema=None) as batch_op:
        batch_op.drop_column('short_label')

