"""Wildix price lists and call-log cost (issue 16): price lists per company, their rates, the cost of each call-log entry

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "price_lists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("time_zone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["company_id"], ["companies.id"], name=op.f("fk_price_lists_company_id_companies"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["domain_id"], ["domains.id"], name=op.f("fk_price_lists_domain_id_domains"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_lists")),
        sa.UniqueConstraint("company_id", "name", name="uq_price_lists_company_name"),
    )
    op.create_table(
        "price_list_rates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("price_list_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("dialprefix", sa.String(length=32), nullable=False),
        sa.Column("destination", sa.String(length=200), server_default="", nullable=False),
        sa.Column("rate", sa.Numeric(precision=18, scale=6), nullable=False),
        sa.Column("min_duration", sa.Integer(), server_default="0", nullable=False),
        sa.Column("billing_block", sa.Integer(), nullable=False),
        sa.Column("connect_charge", sa.Numeric(precision=18, scale=6), server_default="0", nullable=False),
        sa.Column("start_day", sa.Integer(), server_default="1", nullable=False),
        sa.Column("stop_day", sa.Integer(), server_default="7", nullable=False),
        sa.Column("start_time", sa.Integer(), server_default="0", nullable=False),
        sa.Column("stop_time", sa.Integer(), server_default="86400", nullable=False),
        sa.ForeignKeyConstraint(["price_list_id"], ["price_lists.id"], name=op.f("fk_price_list_rates_price_list_id_price_lists"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_list_rates")),
    )
    with op.batch_alter_table("price_list_rates", schema=None) as batch_op:
        batch_op.create_index("ix_price_list_rates_list", ["price_list_id"], unique=False)
    with op.batch_alter_table("call_logs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cost", sa.Numeric(precision=18, scale=6), nullable=True))
        batch_op.add_column(sa.Column("currency", sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column("price_list", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("destination", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_logs", schema=None) as batch_op:
        batch_op.drop_column("destination")
        batch_op.drop_column("price_list")
        batch_op.drop_column("currency")
        batch_op.drop_column("cost")
    with op.batch_alter_table("price_list_rates", schema=None) as batch_op:
        batch_op.drop_index("ix_price_list_rates_list")
    op.drop_table("price_list_rates")
    op.drop_table("price_lists")
