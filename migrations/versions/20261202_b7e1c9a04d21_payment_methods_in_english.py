"""payment methods in English: the codes stored, the French words only shown

Revision ID: b7e1c9a04d21
Revises: 0642d952e032
Create Date: 2026-12-02 07:05:00
"""
from alembic import op

revision = 'b7e1c9a04d21'
down_revision = '0642d952e032'
branch_labels = None
depends_on = None

RENAMED = {"especes": "cash", "cheque": "cheque", "cesu": "cesu", "virement": "transfer", "prelevement": "direct-debit"}


def upgrade() -> None:
    for old, new in RENAMED.items():
        if old != new:
            op.execute(f"UPDATE payment SET method = '{new}' WHERE method = '{old}'")


def downgrade() -> None:
    for old, new in RENAMED.items():
        if old != new:
            op.execute(f"UPDATE payment SET method = '{old}' WHERE method = '{new}'")
