"""invoice PDFs stored: made once, served while what they show is the same

Revision ID: 5e1f0c2a9b7d
Revises: b7e1c9a04d21
Create Date: 2026-12-02 16:30:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '5e1f0c2a9b7d'
down_revision = 'b7e1c9a04d21'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'invoicepdf',
        sa.Column('invoice_id', sa.Integer(), nullable=False),
        sa.Column('source_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.Column('made_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['invoice_id'], ['invoice.id']),
        sa.PrimaryKeyConstraint('invoice_id'),
    )


def downgrade() -> None:
    op.drop_table('invoicepdf')
