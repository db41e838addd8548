"""unit hours (the calendar feed's events) and the child's calendar link version

Revision ID: 5dab6f3eb2bd
Revises: b46fb04d6c7f
Create Date: 2026-12-03 06:10:26
"""
import sqlalchemy as sa
from alembic import op

revision = '5dab6f3eb2bd'
down_revision = 'b46fb04d6c7f'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('child', schema=None) as batch_op:
        batch_op.add_column(sa.Column('calendar_version', sa.Integer(), nullable=False, server_default='0'))

    with op.batch_alter_table('unit', schema=None) as batch_op:
        batch_op.add_column(sa.Column('starts_at', sa.Time(), nullable=True))
        batch_op.add_column(sa.Column('ends_at', sa.Time(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('unit', schema=None) as batch_op:
        batch_op.drop_column('ends_at')
        batch_op.drop_column('starts_at')

    with op.batch_alter_table('child', schema=None) as batch_op:
        batch_op.drop_column('calendar_version')

