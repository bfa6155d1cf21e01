"""chat, notes, notifications and Alerter templates (issue 19)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chat_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["company_id"], ["companies.id"], name=op.f("fk_chat_messages_company_id_companies"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sender_id"], ["users.id"], name=op.f("fk_chat_messages_sender_id_users"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["recipient_id"], ["users.id"], name=op.f("fk_chat_messages_recipient_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_messages")),
    )
    with op.batch_alter_table("chat_messages", schema=None) as batch_op:
        batch_op.create_index("ix_chat_messages_recipient_read", ["recipient_id", "read_at"], unique=False)
        batch_op.create_index("ix_chat_messages_pair", ["sender_id", "recipient_id", "id"], unique=False)
        batch_op.create_index("ix_chat_messages_company_created", ["company_id", "created_at"], unique=False)
    op.create_table(
        "journal_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("audience", sa.String(length=8), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("number", sa.String(length=64), nullable=True),
        sa.Column("number_keys", sa.String(length=400), server_default="", nullable=False),
        sa.Column("call_log_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["company_id"], ["companies.id"], name=op.f("fk_journal_notes_company_id_companies"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_journal_notes_author_id_users"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_journal_notes_user_id_users"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["call_log_id"], ["call_logs.id"], name=op.f("fk_journal_notes_call_log_id_call_logs"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_notes")),
    )
    with op.batch_alter_table("journal_notes", schema=None) as batch_op:
        batch_op.create_index("ix_journal_notes_author_created", ["author_id", "created_at"], unique=False)
        batch_op.create_index("ix_journal_notes_user_created", ["user_id", "created_at"], unique=False)
        batch_op.create_index("ix_journal_notes_company_audience", ["company_id", "audience", "created_at"], unique=False)
    op.create_table(
        "alerter_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["company_id"], ["companies.id"], name=op.f("fk_alerter_templates_company_id_companies"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerter_templates")),
        sa.UniqueConstraint("company_id", "name", name="uq_alerter_templates_company_name"),
    )


def downgrade() -> None:
    op.drop_table("alerter_templates")
    op.drop_table("journal_notes")
    op.drop_table("chat_messages")
