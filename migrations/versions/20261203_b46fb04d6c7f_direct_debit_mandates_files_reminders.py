"""direct debit: SEPA mandates, debit files and their lines (rejects), invoice reminders and disputes

Revision ID: b46fb04d6c7f
Revises: 5e1f0c2a9b7d
Create Date: 2026-12-03 05:47:59
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'b46fb04d6c7f'
down_revision = '5e1f0c2a9b7d'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('debitbatch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('collection_on', sa.Date(), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=35), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('total_cents', sa.Integer(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id')
    )
    with op.batch_alter_table('debitbatch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_debitbatch_collection_on'), ['collection_on'], unique=False)

    op.create_table('invoicereminder',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('sent_on', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoice.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('invoice_id', 'step')
    )
    with op.batch_alter_table('invoicereminder', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoicereminder_invoice_id'), ['invoice_id'], unique=False)

    op.create_table('mandate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('family_id', sa.Integer(), nullable=False),
    sa.Column('rum', sqlmodel.sql.sqltypes.AutoString(length=35), nullable=False),
    sa.Column('holder', sqlmodel.sql.sqltypes.AutoString(length=70), nullable=False),
    sa.Column('iban', sqlmodel.sql.sqltypes.AutoString(length=34), nullable=False),
    sa.Column('bic', sqlmodel.sql.sqltypes.AutoString(length=11), nullable=False),
    sa.Column('bank_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('signed_on', sa.Date(), nullable=False),
    sa.Column('signed_by_id', sa.Integer(), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('first_debit', sa.Boolean(), nullable=False),
    sa.Column('amended_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('previous_iban', sqlmodel.sql.sqltypes.AutoString(length=34), nullable=False),
    sa.Column('revoked_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['family_id'], ['family.id'], ),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['signed_by_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('rum')
    )
    with op.batch_alter_table('mandate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mandate_family_id'), ['family_id'], unique=False)
        batch_op.create_index('ix_mandate_family_live', ['family_id'], unique=True, sqlite_where=sa.text("status != 'revoked'"), postgresql_where=sa.text("status != 'revoked'"))

    op.create_table('debitline',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=False),
    sa.Column('mandate_id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.Integer(), nullable=False),
    sa.Column('end_to_end_id', sqlmodel.sql.sqltypes.AutoString(length=35), nullable=False),
    sa.Column('sequence', sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('rejected_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('reject_code', sqlmodel.sql.sqltypes.AutoString(length=4), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['debitbatch.id'], ),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoice.id'], ),
    sa.ForeignKeyConstraint(['mandate_id'], ['mandate.id'], ),
    sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('end_to_end_id'),
    sa.UniqueConstraint('payment_id')
    )
    with op.batch_alter_table('debitline', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_debitline_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_debitline_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_debitline_mandate_id'), ['mandate_id'], unique=False)

    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('debit_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('debit_state', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('disputed', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index(batch_op.f('ix_invoice_debit_on'), ['debit_on'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoice_debit_on'))
        batch_op.drop_column('disputed')
        batch_op.drop_column('debit_state')
        batch_op.drop_column('debit_on')

    with op.batch_alter_table('debitline', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_debitline_mandate_id'))
        batch_op.drop_index(batch_op.f('ix_debitline_invoice_id'))
        batch_op.drop_index(batch_op.f('ix_debitline_batch_id'))

    op.drop_table('debitline')
    with op.batch_alter_table('mandate', schema=None) as batch_op:
        batch_op.drop_index('ix_mandate_family_live', sqlite_where=sa.text("status != 'revoked'"), postgresql_where=sa.text("status != 'revoked'"))
        batch_op.drop_index(batch_op.f('ix_mandate_family_id'))

    op.drop_table('mandate')
    with op.batch_alter_table('invoicereminder', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoicereminder_invoice_id'))

    op.drop_table('invoicereminder')
    with op.batch_alter_table('debitbatch', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_debitbatch_collection_on'))

    op.drop_table('debitbatch')
