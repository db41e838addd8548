"""qf brackets, unit prices, day capacity

Revision ID: 77efcc4b1ded
Revises: 6d0cef93d885
Create Date: 2026-11-26 21:35:34.095510
"""
import sqlalchemy as sa
from alembic import op

revision = '77efcc4b1ded'
down_revision = '6d0cef93d885'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('qfbracket',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('qf_min', sa.Integer(), nullable=False),
    sa.Column('qf_max', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('dayslot', schema=None) as batch_op:
        batch_op.add_column(sa.Column('capacity', sa.Integer(), nullable=True))

    with op.batch_alter_table('price', schema=None) as batch_op:
        batch_op.alter_column('period_id',
               existing_type=sa.INTEGER(),
               nullable=True)


def downgrade() -> None:
    # Before this revision every price belonged to a period: unit prices (no period) cannot go back.
    op.execute("DELETE FROM price WHERE period_id IS NULL")
    with op.batch_alter_table('price', schema=None) as batch_op:
        batch_op.alter_column('period_id',
               existing_type=sa.INTEGER(),
               nullable=False)

    with op.batch_alter_table('dayslot', schema=None) as batch_op:
        batch_op.drop_column('capacity')

    op.drop_table('qfbracket')
