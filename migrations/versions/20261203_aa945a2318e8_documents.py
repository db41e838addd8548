"""documents: the papers the town asks for, which establishment requires them, the files families sent

Revision ID: aa945a2318e8
Revises: 5dab6f3eb2bd
Create Date: 2026-12-03 06:12:45
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'aa945a2318e8'
down_revision = '5dab6f3eb2bd'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('documenttype',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('per_child', sa.Boolean(), nullable=False),
    sa.Column('validity', sqlmodel.sql.sqltypes.AutoString(length=15), nullable=False),
    sa.Column('months', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('requireddocument',
    sa.Column('establishment_id', sa.Integer(), nullable=False),
    sa.Column('document_type_id', sa.Integer(), nullable=False),
    sa.Column('blocking', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['document_type_id'], ['documenttype.id'], ),
    sa.ForeignKeyConstraint(['establishment_id'], ['establishment.id'], ),
    sa.PrimaryKeyConstraint('establishment_id', 'document_type_id')
    )
    op.create_table('document',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('family_id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=True),
    sa.Column('document_type_id', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=True),
    sa.Column('file_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('stored_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=False),
    sa.Column('uploaded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('message', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('reminded_on', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['child_id'], ['child.id'], ),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['document_type_id'], ['documenttype.id'], ),
    sa.ForeignKeyConstraint(['family_id'], ['family.id'], ),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('stored_name')
    )
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_document_child_id'), ['child_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_document_family_id'), ['family_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_document_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_status'))
        batch_op.drop_index(batch_op.f('ix_document_family_id'))
        batch_op.drop_index(batch_op.f('ix_document_child_id'))

    op.drop_table('document')
    op.drop_table('requireddocument')
    op.drop_table('documenttype')
