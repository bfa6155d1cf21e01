"""users import definitions and their run reports (guide 7.2)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=1000), server_default="", nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=255), server_default="", nullable=False),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("security", sa.String(length=16), server_default="none", nullable=False),
        sa.Column("tls_verify", sa.String(length=8), server_default="full", nullable=False),
        sa.Column("ca_file", sa.String(length=1000), server_default="", nullable=False),
        sa.Column("bind_dn", sa.String(length=1000), server_default="", nullable=False),
        sa.Column("password", sa.String(length=1024), nullable=True),
        sa.Column("base_dn", sa.String(length=1000), server_default="", nullable=False),
        sa.Column("filter", sa.String(length=4000), server_default="", nullable=False),
        sa.Column("page_size", sa.Integer(), nullable=True),
        sa.Column("link", sa.String(length=200), server_default="", nullable=False),
        sa.Column("fields", sa.JSON(), nullable=True),
        sa.Column("number_form", sa.String(length=16), server_default="extension", nullable=False),
        sa.Column("sync_type", sa.String(length=32), server_default="insert_update", nullable=False),
        sa.Column("group_ids", sa.JSON(), nullable=True),
        sa.Column("schedule", sa.String(length=16), server_default="manual", nullable=False),
        sa.Column("every", sa.Integer(), nullable=True),
        sa.Column("at", sa.String(length=5), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["domain_id"], ["domains.id"], name=op.f("fk_user_imports_domain_id_domains"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_imports")),
        sa.UniqueConstraint("domain_id", "name", name="uq_user_imports_domain_name"),
    )
    with op.batch_alter_table("user_imports") as batch:
        batch.create_index(batch.f("ix_user_imports_domain_id"), ["domain_id"], unique=False)

    op.create_table(
        "user_import_links",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=1000), server_default="", nullable=False),
        sa.Column("number", sa.String(length=64), server_default="", nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["import_id"], ["user_imports.id"], name=op.f("fk_user_import_links_import_id_user_imports"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_user_import_links_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_import_links")),
    )
    with op.batch_alter_table("user_import_links") as batch:
        batch.create_index(batch.f("ix_user_import_links_import_id"), ["import_id"], unique=False)

    op.create_table(
        "user_import_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="running", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("records", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unchanged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("disabled", sa.Integer(), server_default="0", nullable=False),
        sa.Column("deleted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("ignored", sa.Integer(), server_default="0", nullable=False),
        sa.Column("entries", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["import_id"], ["user_imports.id"], name=op.f("fk_user_import_runs_import_id_user_imports"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_import_runs")),
    )
    with op.batch_alter_table("user_import_runs") as batch:
        batch.create_index(batch.f("ix_user_import_runs_import_id"), ["import_id"], unique=False)


def downgrade() -> None:
    op.drop_table("user_import_runs")
    op.drop_table("user_import_links")
    op.drop_table("user_imports")
