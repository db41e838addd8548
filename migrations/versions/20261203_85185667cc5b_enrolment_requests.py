"""enrolment requests (« Inscrire mon enfant ») and the establishments' online enrolment settings

Revision ID: 85185667cc5b
Revises: aa945a2318e8
Create Date: 2026-12-03 06:33:11
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '85185667cc5b'
down_revision = 'aa945a2318e8'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('enrolmentrequest',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.Column('family_id', sa.Integer(), nullable=False),
    sa.Column('establishment_id', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('rules_accepted', sa.Boolean(), nullable=False),
    sa.Column('photos_ok', sa.Boolean(), nullable=False),
    sa.Column('leave_alone', sa.Boolean(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('requested_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('message', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['child.id'], ),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['establishment_id'], ['establishment.id'], ),
    sa.ForeignKeyConstraint(['family_id'], ['family.id'], ),
    sa.ForeignKeyConstraint(['requested_by_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('enrolmentrequest', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enrolmentrequest_child_id'), ['child_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_enrolmentrequest_establishment_id'), ['establishment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_enrolmentrequest_family_id'), ['family_id'], unique=False)
        batch_op.create_index('ix_enrolmentrequest_live', ['child_id', 'establishment_id'], unique=True, sqlite_where=sa.text("status IN ('pending', 'waitlist')"), postgresql_where=sa.text("status IN ('pending', 'waitlist')"))
        batch_op.create_index(batch_op.f('ix_enrolmentrequest_status'), ['status'], unique=False)

    with op.batch_alter_table('establishment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('enrolment_open', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('enrolment_until', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('enrolment_cap', sa.Integer(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('establishment', schema=None) as batch_op:
        batch_op.drop_column('enrolment_cap')
        batch_op.drop_column('enrolment_until')
        batch_op.drop_column('enrolment_open')

    with op.batch_alter_table('enrolmentrequest', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enrolmentrequest_status'))
        batch_op.drop_index('ix_enrolmentrequest_live', sqlite_where=sa.text("status IN ('pending', 'waitlist')"), postgresql_where=sa.text("status IN ('pending', 'waitlist')"))
        batch_op.drop_index(batch_op.f('ix_enrolmentrequest_family_id'))
        batch_op.drop_index(batch_op.f('ix_enrolmentrequest_establishment_id'))
        batch_op.drop_index(batch_op.f('ix_enrolmentrequest_child_id'))

    op.drop_table('enrolmentrequest')
