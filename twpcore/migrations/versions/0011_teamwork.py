"""chat, notes, notifications and Alerter templates (issue 19): reserved; no change yet

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
