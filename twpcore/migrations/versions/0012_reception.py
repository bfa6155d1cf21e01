"""voicemail_boxes and phone_queue_calls: voicemail counters and phone queue statistics (issue 19)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "voicemail_boxes",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("new_messages", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_caller", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name=op.f("fk_voicemail_boxes_device_id_devices"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_voicemail_boxes")),
    )
    op.create_table(
        "phone_queue_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=128), nullable=False),
        sa.Column("caller", sa.String(length=64), nullable=True),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("taken_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["queue_id"], ["phone_queues.id"], name=op.f("fk_phone_queue_calls_queue_id_phone_queues"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["taken_by"], ["users.id"], name=op.f("fk_phone_queue_calls_taken_by_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phone_queue_calls")),
    )
    with op.batch_alter_table("phone_queue_calls", schema=None) as batch_op:
        batch_op.create_index("ix_phone_queue_calls_queue_arrived", ["queue_id", "arrived_at"], unique=False)


def downgrade() -> None:
    op.drop_table("phone_queue_calls")
    op.drop_table("voicemail_boxes")
