"""presence, profiles and forward rules (issue 18): presence_states, profiles, forward_rules, forward_decisions

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "presence_states",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="online", nullable=False),
        sa.Column("message", sa.String(length=200), server_default="", nullable=False),
        sa.Column("source", sa.String(length=16), server_default="user", nullable=False),
        sa.Column("previous_state", sa.String(length=16), nullable=True),
        sa.Column("previous_message", sa.String(length=200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_presence_states_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name="pk_presence_states"),
    )
    op.create_table(
        "profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("device", sa.String(length=64), server_default="", nullable=False),
        sa.Column("device_kind", sa.String(length=16), server_default="office", nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=True),
        sa.Column("presence", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_profiles_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_profiles"),
        sa.UniqueConstraint("user_id", "name", name="uq_profiles_user_name"),
    )
    op.create_index("ix_profiles_user_id", "profiles", ["user_id"])
    op.create_table(
        "forward_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("forward", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=64), server_default="", nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("imposed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_forward_rules_user_id_users", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["profile_id"], ["profiles.id"], name="fk_forward_rules_profile_id_profiles", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_forward_rules"),
    )
    op.create_index("ix_forward_rules_user_id", "forward_rules", ["user_id"])
    op.create_index("ix_forward_rules_profile_id", "forward_rules", ["profile_id"])
    op.create_table(
        "forward_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("call_id", sa.String(length=128), nullable=False),
        sa.Column("caller", sa.String(length=64), server_default="", nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("rule_name", sa.String(length=100), server_default="", nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_forward_decisions_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_forward_decisions"),
    )
    op.create_index("ix_forward_decisions_user_at", "forward_decisions", ["user_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_forward_decisions_user_at", table_name="forward_decisions")
    op.drop_table("forward_decisions")
    op.drop_index("ix_forward_rules_profile_id", table_name="forward_rules")
    op.drop_index("ix_forward_rules_user_id", table_name="forward_rules")
    op.drop_table("forward_rules")
    op.drop_index("ix_profiles_user_id", table_name="profiles")
    op.drop_table("profiles")
    op.drop_table("presence_states")
