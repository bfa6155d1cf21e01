"""calendar connectors' sync state (issue 18): reserved; no change yet

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
