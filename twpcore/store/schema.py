"""The tables of the TWP store (SQLAlchemy Core).

Changing a table means adding an Alembic revision under ``twpcore/migrations/versions``;
``tests/test_store.py`` fails when this module and the migrations disagree.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _now() -> sa.sql.elements.ColumnElement:
    return sa.func.current_timestamp()


def _created() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now())


def _fk(target: str, *, nullable: bool = False, index: bool = True) -> sa.Column:
    name = target.split(".")[0].rstrip("s") + "_id" if not target.startswith("compan") else "company_id"
    return sa.Column(name, sa.Integer, sa.ForeignKey(target, ondelete="CASCADE"), nullable=nullable, index=index)


companies = sa.Table(
    "companies", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("description", sa.String(1000), nullable=False, server_default=""),
    _created(),
)

domains = sa.Table(
    "domains", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("companies.id"),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("numbering_plan_length", sa.Integer, nullable=False, server_default="4"),
    sa.Column("dialing_plan", sa.JSON, nullable=True),
    _created(),
    sa.UniqueConstraint("company_id", "name", name="uq_domains_company_name"),
)

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("domains.id"),
    sa.Column("login", sa.String(200), nullable=False, index=True),
    sa.Column("first_name", sa.String(200), nullable=False, server_default=""),
    sa.Column("last_name", sa.String(200), nullable=False, server_default=""),
    sa.Column("email", sa.String(320), nullable=False, server_default=""),
    sa.Column("mobile", sa.String(64), nullable=False, server_default=""),
    sa.Column("culture", sa.String(16), nullable=False, server_default="en-US"),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("voicemail_password", sa.String(64), nullable=True),
    sa.Column("ip", sa.String(64), nullable=False, server_default=""),
    _created(),
    sa.UniqueConstraint("domain_id", "login", name="uq_users_domain_login"),
)

devices = sa.Table(
    "devices", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("domains.id"),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True),
    sa.Column("number", sa.String(64), nullable=False),
    sa.Column("protocol", sa.String(32), nullable=False, server_default="CSTA"),
    sa.Column("password", sa.String(128), nullable=True),
    sa.Column("ip", sa.String(64), nullable=False, server_default=""),
    sa.Column("media_protocol", sa.String(32), nullable=False, server_default=""),
    sa.Column("video", sa.Boolean, nullable=False, server_default=sa.false()),
    _created(),
    sa.Column("site", sa.String(32), nullable=False, server_default=""),
    sa.UniqueConstraint("domain_id", "number", name="uq_devices_domain_number"),
)

groups = sa.Table(
    "groups", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("domains.id"),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, server_default="100"),
    sa.Column("description", sa.String(1000), nullable=False, server_default=""),
    _created(),
    sa.UniqueConstraint("domain_id", "name", name="uq_groups_domain_name"),
)

group_members = sa.Table(
    "group_members", metadata,
    sa.Column("group_id", sa.Integer, sa.ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True),
)

intercom_groups = sa.Table(
    "intercom_groups", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("domains.id"),
    sa.Column("name", sa.String(200), nullable=False),
    _created(),
    sa.UniqueConstraint("domain_id", "name", name="uq_intercom_groups_domain_name"),
)

intercom_group_devices = sa.Table(
    "intercom_group_devices", metadata,
    sa.Column("intercom_group_id", sa.Integer, sa.ForeignKey("intercom_groups.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True, index=True),
)

phone_queues = sa.Table(
    "phone_queues", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("domains.id"),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("number", sa.String(64), nullable=False, server_default=""),
    _created(),
    sa.UniqueConstraint("domain_id", "name", name="uq_phone_queues_domain_name"),
)

directories = sa.Table(
    "directories", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("domains.id"),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("connector", sa.String(64), nullable=False),
    sa.Column("type", sa.String(16), nullable=False, server_default="public"),
    sa.Column("priority", sa.Integer, nullable=False, server_default="100"),
    sa.Column("options", sa.JSON, nullable=True),
    _created(),
    sa.UniqueConstraint("domain_id", "name", name="uq_directories_domain_name"),
)

application_quotas = sa.Table(
    "application_quotas", metadata,
    sa.Column("company_id", sa.Integer, sa.ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("application", sa.String(64), primary_key=True),
    sa.Column("seats", sa.Integer, nullable=False),
)

authorizations = sa.Table(
    "authorizations", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("companies.id"),
    sa.Column("object_type", sa.String(32), nullable=False),
    sa.Column("object_ref", sa.String(200), nullable=False),
    sa.Column("object_domain_id", sa.Integer, sa.ForeignKey("domains.id", ondelete="CASCADE"), nullable=True, index=True),
    sa.Column("subject_type", sa.String(32), nullable=False),
    sa.Column("subject_id", sa.Integer, nullable=False),
    sa.Column("subject_domain_id", sa.Integer, sa.ForeignKey("domains.id", ondelete="CASCADE"), nullable=False, index=True),
    _created(),
    sa.UniqueConstraint("object_type", "object_ref", "subject_type", "subject_id", name="uq_authorizations_grant"),
)

parameter_values = sa.Table(
    "parameter_values", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("scope_id", sa.Integer, nullable=False, server_default="0"),
    sa.Column("company_id", sa.Integer, sa.ForeignKey("companies.id", ondelete="CASCADE"), nullable=True, index=True),
    sa.Column("value", sa.Text, nullable=False),
    _created(),
    sa.UniqueConstraint("name", "scope", "scope_id", name="uq_parameter_values_scope"),
)

admins = sa.Table(
    "admins", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("login", sa.String(200), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("super_user", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    _created(),
)

admin_companies = sa.Table(
    "admin_companies", metadata,
    sa.Column("admin_id", sa.Integer, sa.ForeignKey("admins.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("company_id", sa.Integer, sa.ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True),
)

tokens = sa.Table(
    "tokens", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("principal_type", sa.String(8), nullable=False),
    sa.Column("principal_id", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("source", sa.String(64), nullable=False, server_default=""),
    sa.Column("method", sa.String(32), nullable=False, server_default=""),
    sa.Index("ix_tokens_principal", "principal_type", "principal_id"),
)

audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(220), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("object_type", sa.String(64), nullable=False, server_default=""),
    sa.Column("object_id", sa.String(64), nullable=False, server_default=""),
    sa.Column("company_id", sa.Integer, nullable=True, index=True),
    sa.Column("source", sa.String(64), nullable=False, server_default=""),
    sa.Column("detail", sa.JSON, nullable=True),
)

# Tables in dependency order: backup writes them in this order, restore loads them in it.
TABLES = [t for t in metadata.sorted_tables]
