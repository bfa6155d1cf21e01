"""Wildix price lists and call-log cost (issue 16): reserved; no change yet

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
