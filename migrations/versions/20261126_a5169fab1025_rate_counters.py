"""rate counters

Revision ID: a5169fab1025
Revises: 77efcc4b1ded
Create Date: 2026-11-26 21:54:09.876559
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'a5169fab1025'
down_revision = '77efcc4b1ded'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ratecounter',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('window_start', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade() -> None:
    op.drop_table('ratecounter')
