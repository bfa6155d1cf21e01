"""directories: field mapping and sync settings; contacts, contact_numbers, directory_syncs, contact lists (guide 8)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("directories") as batch:
        batch.add_column(sa.Column("fields", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("labels", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("merge", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("sync_daily", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch.add_column(sa.Column("sync_time", sa.String(length=5), nullable=True))
        batch.add_column(sa.Column("sync_every", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("config_managed", sa.Boolean(), server_default=sa.false(), nullable=False))

    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("directory_id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("source_id", sa.String(length=512), nullable=False),
        sa.Column("last_name", sa.String(length=1000), server_default="", nullable=False),
        sa.Column("first_name", sa.String(length=1000), server_default="", nullable=False),
        sa.Column("company", sa.String(length=1000), server_default="", nullable=False),
        sa.Column("email_key", sa.String(length=1000), server_default="", nullable=False),
        sa.Column("vip", sa.String(length=1000), server_default="", nullable=False),
        sa.Column("sort_key", sa.String(length=100), server_default="", nullable=False),
        sa.Column("search_text", sa.Text(), server_default="", nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("digest", sa.String(length=40), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["directory_id"], ["directories.id"], name=op.f("fk_contacts_directory_id_directories"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_contacts_owner_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
    )
    with op.batch_alter_table("contacts") as batch:
        batch.create_index(batch.f("ix_contacts_owner_id"), ["owner_id"], unique=False)
        batch.create_index("ix_contacts_directory_owner", ["directory_id", "owner_id"], unique=False)
        batch.create_index("ix_contacts_email_key", ["email_key"], unique=False)

    op.create_table(
        "contact_numbers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("directory_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=80), server_default="", nullable=False),
        sa.Column("key_rank", sa.Integer(), server_default="0", nullable=False),
        sa.Column("redlisted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], name=op.f("fk_contact_numbers_contact_id_contacts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["directory_id"], ["directories.id"], name=op.f("fk_contact_numbers_directory_id_directories"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_numbers")),
    )
    with op.batch_alter_table("contact_numbers") as batch:
        batch.create_index(batch.f("ix_contact_numbers_contact_id"), ["contact_id"], unique=False)
        batch.create_index(batch.f("ix_contact_numbers_directory_id"), ["directory_id"], unique=False)
        batch.create_index("ix_contact_numbers_key", ["key"], unique=False)

    op.create_table(
        "directory_syncs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("directory_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="running", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("records", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated", sa.Integer(), server_default="0", nullable=False),
        sa.Column("deleted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unchanged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("ignored", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("problems", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["directory_id"], ["directories.id"], name=op.f("fk_directory_syncs_directory_id_directories"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_directory_syncs_user_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_syncs")),
    )
    with op.batch_alter_table("directory_syncs") as batch:
        batch.create_index(batch.f("ix_directory_syncs_directory_id"), ["directory_id"], unique=False)

    op.create_table(
        "contact_lists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("public", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("visible", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_contact_lists_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_lists")),
        sa.UniqueConstraint("user_id", "name", name="uq_contact_lists_user_name"),
    )
    with op.batch_alter_table("contact_lists") as batch:
        batch.create_index(batch.f("ix_contact_lists_user_id"), ["user_id"], unique=False)

    op.create_table(
        "contact_list_items",
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], name=op.f("fk_contact_list_items_contact_id_contacts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["list_id"], ["contact_lists.id"], name=op.f("fk_contact_list_items_list_id_contact_lists"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("list_id", "contact_id", name=op.f("pk_contact_list_items")),
    )
    with op.batch_alter_table("contact_list_items") as batch:
        batch.create_index(batch.f("ix_contact_list_items_contact_id"), ["contact_id"], unique=False)


def downgrade() -> None:
    op.drop_table("contact_list_items")
    op.drop_table("contact_lists")
    op.drop_table("directory_syncs")
    op.drop_table("contact_numbers")
    op.drop_table("contacts")
    with op.batch_alter_table("directories") as batch:
        for name in ("config_managed", "sync_every", "sync_time", "sync_daily", "merge", "labels", "fields"):
            batch.drop_column(name)
