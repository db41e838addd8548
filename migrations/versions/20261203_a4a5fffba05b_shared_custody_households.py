"""shared custody: a child's second household, drafts and bookings by household

Revision ID: a4a5fffba05b
Revises: 85185667cc5b
Create Date: 2026-12-03 08:02:33.442485
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = 'a4a5fffba05b'
down_revision = '85185667cc5b'
branch_labels = None
depends_on = None

# SQLite keeps the old unique key of drafts unnamed: the batch names it to drop it.
SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}


def _drop_unique(table: str, columns: list[str]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(table, naming_convention=SQLITE_NAMES) as batch_op:
            batch_op.drop_constraint(f"uq_{table}_{'_'.join(columns)}", type_="unique")
    else:
        op.drop_constraint(f"{table}_{'_'.join(columns)}_key", table, type_="unique")


def upgrade() -> None:
    op.create_table('childhousehold',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.Column('family_id', sa.Integer(), nullable=False),
    sa.Column('pickup_persons', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('calendar_version', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['child.id'], ),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['family_id'], ['family.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('child_id', 'family_id')
    )
    with op.batch_alter_table('childhousehold', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_childhousehold_child_id'), ['child_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_childhousehold_family_id'), ['family_id'], unique=False)

    # Every booking and draft so far is its child's household's (the only one there was).
    with op.batch_alter_table('booking', schema=None) as batch_op:
        batch_op.add_column(sa.Column('family_id', sa.Integer(), nullable=True))
    op.execute("UPDATE booking SET family_id = (SELECT family_id FROM child WHERE child.id = booking.child_id)")
    with op.batch_alter_table('booking', schema=None) as batch_op:
        batch_op.alter_column('family_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_index(batch_op.f('ix_booking_family_id'), ['family_id'], unique=False)
        batch_op.create_foreign_key('fk_booking_family_id_family', 'family', ['family_id'], ['id'])

    _drop_unique('draft', ['child_id', 'period_id'])
    with op.batch_alter_table('draft', schema=None) as batch_op:
        batch_op.add_column(sa.Column('family_id', sa.Integer(), nullable=True))
    op.execute("UPDATE draft SET family_id = (SELECT family_id FROM child WHERE child.id = draft.child_id)")
    with op.batch_alter_table('draft', schema=None) as batch_op:
        batch_op.alter_column('family_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint('uq_draft_child_period_family', ['child_id', 'period_id', 'family_id'])
        batch_op.create_foreign_key('fk_draft_family_id_family', 'family', ['family_id'], ['id'])


def downgrade() -> None:
    # A second household's drafts and links cannot be kept by the schema before: they go.
    op.execute("DELETE FROM draftline WHERE draft_id IN (SELECT draft.id FROM draft JOIN child ON child.id = draft.child_id"
               " WHERE draft.family_id <> child.family_id)")
    op.execute("DELETE FROM draft WHERE family_id <> (SELECT family_id FROM child WHERE child.id = draft.child_id)")
    with op.batch_alter_table('draft', schema=None) as batch_op:
        batch_op.drop_constraint('fk_draft_family_id_family', type_='foreignkey')
        batch_op.drop_constraint('uq_draft_child_period_family', type_='unique')
        batch_op.drop_column('family_id')
        sqlite = op.get_bind().dialect.name == "sqlite"
        batch_op.create_unique_constraint("uq_draft_child_id_period_id" if sqlite else "draft_child_id_period_id_key",
                                          ['child_id', 'period_id'])

    with op.batch_alter_table('booking', schema=None) as batch_op:
        batch_op.drop_constraint('fk_booking_family_id_family', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_booking_family_id'))
        batch_op.drop_column('family_id')

    with op.batch_alter_table('childhousehold', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_childhousehold_family_id'))
        batch_op.drop_index(batch_op.f('ix_childhousehold_child_id'))

    op.drop_table('childhousehold')
