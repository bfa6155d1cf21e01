"""sms_outbox and sms_outbox_parts: the persistent SMS outbox (guide 9.1.9)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sms_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.String(length=32), nullable=False),
        sa.Column("recipient_user_id", sa.Integer(), nullable=True),
        sa.Column("sender", sa.String(length=32), server_default="", nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("encoding", sa.String(length=8), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider", sa.String(length=64), nullable=True),
        sa.Column("idempotency_key", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["company_id"], ["companies.id"], name=op.f("fk_sms_outbox_company_id_companies"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["domain_id"], ["domains.id"], name=op.f("fk_sms_outbox_domain_id_domains"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sms_outbox_user_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_outbox")),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_sms_outbox_user_key"),
    )
    with op.batch_alter_table("sms_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sms_outbox_company_id"), ["company_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sms_outbox_domain_id"), ["domain_id"], unique=False)
        batch_op.create_index("ix_sms_outbox_status_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_sms_outbox_user_created", ["user_id", "created_at"], unique=False)

    op.create_table(
        "sms_outbox_parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("provider_message_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="sent", nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["sms_outbox.id"], name=op.f("fk_sms_outbox_parts_message_id_sms_outbox"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_outbox_parts")),
    )
    with op.batch_alter_table("sms_outbox_parts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sms_outbox_parts_message_id"), ["message_id"], unique=False)
        batch_op.create_index("ix_sms_outbox_parts_provider_id", ["provider", "provider_message_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sms_outbox_parts", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_outbox_parts_provider_id")
        batch_op.drop_index(batch_op.f("ix_sms_outbox_parts_message_id"))
    op.drop_table("sms_outbox_parts")
    with op.batch_alter_table("sms_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_outbox_user_created")
        batch_op.drop_index("ix_sms_outbox_status_due")
        batch_op.drop_index(batch_op.f("ix_sms_outbox_domain_id"))
        batch_op.drop_index(batch_op.f("ix_sms_outbox_company_id"))
    op.drop_table("sms_outbox")
