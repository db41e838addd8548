"""payments: provider reference, anomaly, credits

Revision ID: c03d3c7e4161
Revises: efaa6eef4d3e
Create Date: 2026-12-01 23:37:39.610070
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'c03d3c7e4161'
down_revision = 'efaa6eef4d3e'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('credit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('family_id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('settled_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['family_id'], ['family.id'], ),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoice.id'], ),
    sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('payment_id')
    )
    with op.batch_alter_table('credit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_family_id'), ['family_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_status'), ['status'], unique=False)

    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider_reference', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
        batch_op.add_column(sa.Column('anomaly', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False, server_default=''))
        batch_op.create_index(batch_op.f('ix_payment_provider_reference'), ['provider_reference'], unique=False)
    # Online payments made so far: the id eopayment returned was kept as the transaction id.
    op.execute("UPDATE payment SET provider_reference = transaction_id WHERE method = 'online'")


def downgrade() -> None:
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_provider_reference'))
        batch_op.drop_column('anomaly')
        batch_op.drop_column('provider_reference')

    with op.batch_alter_table('credit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_status'))
        batch_op.drop_index(batch_op.f('ix_credit_family_id'))

    op.drop_table('credit')
