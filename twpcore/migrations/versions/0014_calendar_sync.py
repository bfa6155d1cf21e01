"""calendar connectors' sync state (issue 18): calendar_sync_states

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_sync_states",
        sa.Column("directory_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("mailbox", sa.String(length=320), nullable=False),
        sa.Column("state", sa.Text(), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.ForeignKeyConstraint(["directory_id"], ["directories.id"], name="fk_calendar_sync_states_directory_id_directories",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_calendar_sync_states_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("directory_id", "user_id", name="pk_calendar_sync_states"),
    )
    op.create_index("ix_calendar_sync_states_user_id", "calendar_sync_states", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_calendar_sync_states_user_id", table_name="calendar_sync_states")
    op.drop_table("calendar_sync_states")
