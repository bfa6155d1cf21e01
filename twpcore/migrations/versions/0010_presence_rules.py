"""presence, profiles and forward rules (issue 18): reserved; no change yet

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
