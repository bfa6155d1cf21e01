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

# ---------------------------------------------------------------------------------------
# SMS outbox (twpcore/sms.py, guide 9.1.9) -- revision 0003.  Every message a user sends
# is a row here before any provider sees it; the dispatcher claims a row (status
# "sending", claimed_by, claimed_until) in its own transaction before handing it over,
# so a restart or a second node never sends it twice.

sms_outbox = sa.Table(
    "sms_outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("company_id", sa.Integer, sa.ForeignKey("companies.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("domain_id", sa.Integer, sa.ForeignKey("domains.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    sa.Column("recipient", sa.String(32), nullable=False),
    sa.Column("recipient_user_id", sa.Integer, nullable=True),
    sa.Column("sender", sa.String(32), nullable=False, server_default=""),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("encoding", sa.String(8), nullable=False),
    sa.Column("parts", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="queued"),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("claimed_by", sa.String(64), nullable=True),
    sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("provider", sa.String(64), nullable=True),
    sa.Column("idempotency_key", sa.String(100), nullable=True),
    _created(),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("user_id", "idempotency_key", name="uq_sms_outbox_user_key"),
    sa.Index("ix_sms_outbox_status_due", "status", "next_attempt_at"),
    sa.Index("ix_sms_outbox_user_created", "user_id", "created_at"),
)

sms_outbox_parts = sa.Table(
    "sms_outbox_parts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("message_id", sa.Integer, sa.ForeignKey("sms_outbox.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("part", sa.Integer, nullable=False),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("provider_message_id", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="sent"),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Index("ix_sms_outbox_parts_provider_id", "provider", "provider_message_id"),
)
# --------------------------------------------------------------------- end of SMS outbox

# ------------------------------------------------------------------------ directories (issue 5)
# The directory service's tables (twpcore/directory).  ``directories`` itself is defined
# above; the columns the service adds to it are appended here.
for _column in (
    sa.Column("fields", sa.JSON, nullable=True),
    sa.Column("labels", sa.JSON, nullable=True),
    sa.Column("merge", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("sync_daily", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("sync_time", sa.String(5), nullable=True),
    sa.Column("sync_every", sa.Integer, nullable=True),
    sa.Column("config_managed", sa.Boolean, nullable=False, server_default=sa.false()),
):
    directories.append_column(_column)

contacts = sa.Table(
    "contacts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("directory_id", sa.Integer, sa.ForeignKey("directories.id", ondelete="CASCADE"), nullable=False),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True),
    sa.Column("source_id", sa.String(512), nullable=False),
    sa.Column("last_name", sa.String(1000), nullable=False, server_default=""),
    sa.Column("first_name", sa.String(1000), nullable=False, server_default=""),
    sa.Column("company", sa.String(1000), nullable=False, server_default=""),
    sa.Column("email_key", sa.String(1000), nullable=False, server_default=""),
    sa.Column("vip", sa.String(1000), nullable=False, server_default=""),
    sa.Column("sort_key", sa.String(100), nullable=False, server_default=""),
    sa.Column("search_text", sa.Text, nullable=False, server_default=""),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("digest", sa.String(40), nullable=False, server_default=""),
    _created(),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("pending", sa.Integer, nullable=True),
    # Rank order within a directory (and owner): search walks it for common words (migration 0009).
    sa.Index("ix_contacts_rank", "directory_id", "owner_id", "sort_key", "id"),
    sa.Index("ix_contacts_email_key", "email_key"),
    sa.Index("ix_contacts_pending", "pending"),
)
"""``pending``: the id of the sync still writing this new contact; NULL once the sync published it.
Readers (search, reverse lookup, cards) only see contacts whose ``pending`` is NULL."""
# One contact per (directory, owner, source id), also when two processes sync a directory at
# once (migration 0008).  owner_id is NULL in public directories and NULLs are distinct in a
# plain unique index, hence coalesce (user ids start at 1).  ``db.insert_contacts`` names the
# same expressions as its ON CONFLICT target.
CONTACT_SOURCE_KEY = (contacts.c.directory_id, sa.func.coalesce(contacts.c.owner_id, 0), contacts.c.source_id)
sa.Index("uq_contacts_directory_owner_source", *CONTACT_SOURCE_KEY, unique=True)

contact_numbers = sa.Table(
    "contact_numbers", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("directory_id", sa.Integer, sa.ForeignKey("directories.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("number", sa.String(64), nullable=False),
    sa.Column("key", sa.String(80), nullable=False, server_default=""),
    sa.Column("key_rank", sa.Integer, nullable=False, server_default="0"),
    sa.Column("redlisted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_contact_numbers_key", "key"),
)

# The search words of each contact (``contacts.search_text`` split): a query word is a prefix
# range of ``word`` in one directory.  Binary ("C") collation on PostgreSQL so that the range
# ['mar', 'mas') holds exactly the words starting with "mar", as on SQLite (migration 0009).
WORD = sa.String(100).with_variant(sa.String(100, collation="C"), "postgresql")
contact_words = sa.Table(
    "contact_words", metadata,
    sa.Column("directory_id", sa.Integer, nullable=False),
    sa.Column("word", WORD, nullable=False),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.PrimaryKeyConstraint("directory_id", "word", "contact_id", name="pk_contact_words"),
    sqlite_with_rowid=False,
)

directory_syncs = sa.Table(
    "directory_syncs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("directory_id", sa.Integer, sa.ForeignKey("directories.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="running"),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("duration", sa.Float, nullable=True),
    sa.Column("records", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
    sa.Column("deleted", sa.Integer, nullable=False, server_default="0"),
    sa.Column("unchanged", sa.Integer, nullable=False, server_default="0"),
    sa.Column("ignored", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("problems", sa.JSON, nullable=True),
)

contact_lists = sa.Table(
    "contact_lists", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("public", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("visible", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),
    _created(),
    sa.UniqueConstraint("user_id", "name", name="uq_contact_lists_user_name"),
)

contact_list_items = sa.Table(
    "contact_list_items", metadata,
    sa.Column("list_id", sa.Integer, sa.ForeignKey("contact_lists.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("contact_id", sa.Integer, sa.ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True, index=True),
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),
)
# ------------------------------------------------------------------ end of directories (issue 5)

# ------------------------------------------------------------------ calendars (issue 6, helper "rights endpoints")
calendar_events = sa.Table(
    "calendar_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("subject", sa.String(500), nullable=False, server_default=""),
    sa.Column("location", sa.String(500), nullable=False, server_default=""),
    sa.Column("show_as", sa.String(16), nullable=False, server_default="busy"),
    sa.Column("private", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("source", sa.String(64), nullable=False, server_default="twp"),
    sa.Column("source_id", sa.String(512), nullable=True),
    _created(),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_calendar_events_user_starts", "user_id", "starts_at"),
    sa.UniqueConstraint("user_id", "source", "source_id", name="uq_calendar_events_user_source"),
)
# ------------------------------------------------------------------ end of calendars

# ---------------------------------------------------------------------------------------
# Sessions (helper "sessions", issue 6) -- revision 0005: login lock-out counters
# (twpcore/lockout.py), one-time password-reset codes (twpcore/passwords.py), and the
# start of the session a refreshed token belongs to (twpcore/auth.py).
login_failures = sa.Table(
    "login_failures", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("first_failure_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("scope", "subject", name="uq_login_failures_scope_subject"),
)

password_resets = sa.Table(
    "password_resets", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("users.id"),
    sa.Column("code_hash", sa.String(255), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_by", sa.String(220), nullable=False, server_default=""),
)

# The login a token descends from by refreshes; null for tokens from before revision 0005
# (their created_at stands in).
tokens.append_column(sa.Column("session_started_at", sa.DateTime(timezone=True), nullable=True))
# ------------------------------------------------------------------ end of sessions (issue 6)

# ------------------------------------------------------------------ call logs (issue 6, helper "call logs")
call_logs = sa.Table(
    "call_logs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("company_id", sa.Integer, sa.ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    sa.Column("domain_id", sa.Integer, sa.ForeignKey("domains.id", ondelete="CASCADE"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("device", sa.String(64), nullable=False),
    sa.Column("call_id", sa.String(128), nullable=False),
    sa.Column("direction", sa.String(16), nullable=False),
    sa.Column("internal", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("remote_number", sa.String(64), nullable=False, server_default=""),
    sa.Column("remote_canonical", sa.String(80), nullable=False, server_default=""),
    sa.Column("remote_name", sa.String(500), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("duration", sa.Float, nullable=False, server_default="0"),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("outcome_to", sa.String(64), nullable=True),
    sa.Column("cause", sa.String(64), nullable=True),
    sa.Column("in_log", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("in_stats", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Index("ix_call_logs_user_started", "user_id", "started_at"),
    sa.Index("ix_call_logs_domain_ended", "domain_id", "ended_at"),
)

recordings = sa.Table(
    "recordings", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("company_id", sa.Integer, sa.ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    sa.Column("domain_id", sa.Integer, sa.ForeignKey("domains.id", ondelete="CASCADE"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("call_log_id", sa.Integer, sa.ForeignKey("call_logs.id", ondelete="SET NULL"), nullable=True),
    sa.Column("device", sa.String(64), nullable=False),
    sa.Column("call_id", sa.String(128), nullable=False, server_default=""),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("duration", sa.Float, nullable=False, server_default="0"),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("location", sa.String(1000), nullable=False),
    sa.Column("content_type", sa.String(100), nullable=False, server_default=""),
    sa.Column("size", sa.BigInteger, nullable=True),
    _created(),
    sa.Index("ix_recordings_user_started", "user_id", "started_at"),
)
# ------------------------------------------------------------------ end of call logs

# ------------------------------------------------------------------ users import (helper "users import", guide 7.2)
# Import definitions, the users each one created (only those are ever disabled or deleted
# by it), and one report per run.
user_imports = sa.Table(
    "user_imports", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _fk("domains.id"),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.String(1000), nullable=False, server_default=""),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("host", sa.String(255), nullable=False, server_default=""),
    sa.Column("port", sa.Integer, nullable=True),
    sa.Column("security", sa.String(16), nullable=False, server_default="none"),
    sa.Column("tls_verify", sa.String(8), nullable=False, server_default="full"),
    sa.Column("ca_file", sa.String(1000), nullable=False, server_default=""),
    sa.Column("bind_dn", sa.String(1000), nullable=False, server_default=""),
    sa.Column("password", sa.String(1024), nullable=True),
    sa.Column("base_dn", sa.String(1000), nullable=False, server_default=""),
    sa.Column("filter", sa.String(4000), nullable=False, server_default=""),
    sa.Column("page_size", sa.Integer, nullable=True),
    sa.Column("link", sa.String(200), nullable=False, server_default=""),
    sa.Column("fields", sa.JSON, nullable=True),
    sa.Column("number_form", sa.String(16), nullable=False, server_default="extension"),
    sa.Column("sync_type", sa.String(32), nullable=False, server_default="insert_update"),
    sa.Column("group_ids", sa.JSON, nullable=True),
    sa.Column("schedule", sa.String(16), nullable=False, server_default="manual"),
    sa.Column("every", sa.Integer, nullable=True),
    sa.Column("at", sa.String(5), nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    _created(),
    sa.UniqueConstraint("domain_id", "name", name="uq_user_imports_domain_name"),
)

user_import_links = sa.Table(
    "user_import_links", metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("import_id", sa.Integer, sa.ForeignKey("user_imports.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("external_id", sa.String(1000), nullable=False, server_default=""),
    sa.Column("number", sa.String(64), nullable=False, server_default=""),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    _created(),
)

user_import_runs = sa.Table(
    "user_import_runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("import_id", sa.Integer, sa.ForeignKey("user_imports.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("status", sa.String(16), nullable=False, server_default="running"),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("records", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
    sa.Column("unchanged", sa.Integer, nullable=False, server_default="0"),
    sa.Column("disabled", sa.Integer, nullable=False, server_default="0"),
    sa.Column("deleted", sa.Integer, nullable=False, server_default="0"),
    sa.Column("ignored", sa.Integer, nullable=False, server_default="0"),
    sa.Column("entries", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)
# ------------------------------------------------------------------ end of users import

# ------------------------------------------------------------------ presence and rules (issue 18, migration 0010)
presence_states = sa.Table(
    "presence_states", metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False, server_default="online"),
    sa.Column("message", sa.String(200), nullable=False, server_default=""),
    sa.Column("source", sa.String(16), nullable=False, server_default="user"),
    sa.Column("previous_state", sa.String(16), nullable=True),
    sa.Column("previous_message", sa.String(200), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
"""A user's TWP presence (user guide 3.1, 3.2); ``previous_*`` is what inactivity replaced, restored on activity."""

profiles = sa.Table(
    "profiles", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("device", sa.String(64), nullable=False, server_default=""),
    sa.Column("device_kind", sa.String(16), nullable=False, server_default="office"),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("schedule", sa.JSON, nullable=True),
    sa.Column("presence", sa.String(16), nullable=True),
    _created(),
    sa.UniqueConstraint("user_id", "name", name="uq_profiles_user_name"),
)
"""Profiles (user guide 5.1.1, 5.1.2): one active per user; ``schedule`` switches to it by date and time, setting ``presence``."""

forward_rules = sa.Table(
    "forward_rules", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("profile_id", sa.Integer, sa.ForeignKey("profiles.id", ondelete="CASCADE"), nullable=True, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("forward", sa.String(16), nullable=False),
    sa.Column("target", sa.String(64), nullable=False, server_default=""),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("imposed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),
    sa.Column("conditions", sa.JSON, nullable=True),
    _created(),
)
"""Forward rules (admin guide 9.6, user guide 5.1.3-5.1.5): ``simple`` ones are applied in the PBX, ``advanced`` ones by TWP
on each incoming call; ``imposed`` ones are set by an administrator (no profile: they apply whatever the active profile)."""

forward_decisions = sa.Table(
    "forward_decisions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("device", sa.String(64), nullable=False),
    sa.Column("call_id", sa.String(128), nullable=False),
    sa.Column("caller", sa.String(64), nullable=False, server_default=""),
    sa.Column("rule_id", sa.Integer, nullable=True),
    sa.Column("rule_name", sa.String(100), nullable=False, server_default=""),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("target", sa.String(64), nullable=True),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_forward_decisions_user_at", "user_id", "at"),
)
"""What the advanced rules decided for each incoming call, and why (``GET /api/v1/me/forward-decisions``)."""
# ------------------------------------------------------------------ end of presence and rules

# ------------------------------------------------------------------ teamwork (issue 19, migration 0011)
# Chat between users (user guide 2.6), the notes and notifications of the event journal
# (user guide 4.1) and the Alerter's XML templates (guide 9.2.1); twpcore/teamwork, twpcore/alerter.
chat_messages = sa.Table(
    "chat_messages", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("company_id", sa.Integer, sa.ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    sa.Column("sender_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("recipient_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    _created(),
    sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_chat_messages_recipient_read", "recipient_id", "read_at"),
    sa.Index("ix_chat_messages_pair", "sender_id", "recipient_id", "id"),
    sa.Index("ix_chat_messages_company_created", "company_id", "created_at"),
)

journal_notes = sa.Table(
    "journal_notes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("company_id", sa.Integer, sa.ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    sa.Column("author_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("audience", sa.String(8), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    sa.Column("contact_id", sa.Integer, nullable=True),
    sa.Column("number", sa.String(64), nullable=True),
    sa.Column("number_keys", sa.String(400), nullable=False, server_default=""),
    sa.Column("call_log_id", sa.Integer, sa.ForeignKey("call_logs.id", ondelete="SET NULL"), nullable=True),
    sa.Column("text", sa.Text, nullable=False),
    _created(),
    sa.Index("ix_journal_notes_author_created", "author_id", "created_at"),
    sa.Index("ix_journal_notes_user_created", "user_id", "created_at"),
    sa.Index("ix_journal_notes_company_audience", "company_id", "audience", "created_at"),
)

alerter_templates = sa.Table(
    "alerter_templates", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("company_id", sa.Integer, sa.ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("xml", sa.Text, nullable=False),
    _created(),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("company_id", "name", name="uq_alerter_templates_company_name"),
)
# ------------------------------------------------------------------ end of teamwork

# ------------------------------------------------------------------ reception (issue 19, migration 0012)
voicemail_boxes = sa.Table(
    "voicemail_boxes", metadata,
    sa.Column("device_id", sa.Integer, sa.ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("new_messages", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_caller", sa.String(64), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

phone_queue_calls = sa.Table(
    "phone_queue_calls", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("queue_id", sa.Integer, sa.ForeignKey("phone_queues.id", ondelete="CASCADE"), nullable=False),
    sa.Column("call_id", sa.String(128), nullable=False),
    sa.Column("caller", sa.String(64), nullable=True),
    sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.Column("taken_by", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    sa.Index("ix_phone_queue_calls_queue_arrived", "queue_id", "arrived_at"),
)
# ------------------------------------------------------------------ end of reception

# ------------------------------------------------------------------ call cost (issue 16, migration 0013)
price_lists = sa.Table(
    "price_lists", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("company_id", sa.Integer, sa.ForeignKey("companies.id", ondelete="CASCADE"), nullable=False),
    sa.Column("domain_id", sa.Integer, sa.ForeignKey("domains.id", ondelete="CASCADE"), nullable=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("time_zone", sa.String(64), nullable=False, server_default="UTC"),
    _created(),
    sa.UniqueConstraint("company_id", "name", name="uq_price_lists_company_name"),
)

price_list_rates = sa.Table(
    "price_list_rates", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("price_list_id", sa.Integer, sa.ForeignKey("price_lists.id", ondelete="CASCADE"), nullable=False),
    sa.Column("line", sa.Integer, nullable=False),
    sa.Column("dialprefix", sa.String(32), nullable=False),
    sa.Column("destination", sa.String(200), nullable=False, server_default=""),
    sa.Column("rate", sa.Numeric(18, 6, asdecimal=False), nullable=False),
    sa.Column("min_duration", sa.Integer, nullable=False, server_default="0"),
    sa.Column("billing_block", sa.Integer, nullable=False),
    sa.Column("connect_charge", sa.Numeric(18, 6, asdecimal=False), nullable=False, server_default="0"),
    sa.Column("start_day", sa.Integer, nullable=False, server_default="1"),
    sa.Column("stop_day", sa.Integer, nullable=False, server_default="7"),
    sa.Column("start_time", sa.Integer, nullable=False, server_default="0"),
    sa.Column("stop_time", sa.Integer, nullable=False, server_default="86400"),
    sa.Index("ix_price_list_rates_list", "price_list_id"),
)

# What a call-log entry cost, computed from the price list of its domain when the entry is written.
# Money columns read back as floats (asdecimal=False): backups write rows as JSON, which has no Decimal.
call_logs.append_column(sa.Column("cost", sa.Numeric(18, 6, asdecimal=False), nullable=True))
call_logs.append_column(sa.Column("currency", sa.String(3), nullable=True))
call_logs.append_column(sa.Column("price_list", sa.String(100), nullable=True))
call_logs.append_column(sa.Column("destination", sa.String(200), nullable=True))
# ------------------------------------------------------------------ end of call cost

# ------------------------------------------------------------------ calendar sync (issue 18, migration 0014)
calendar_sync_states = sa.Table(
    "calendar_sync_states", metadata,
    sa.Column("directory_id", sa.Integer, sa.ForeignKey("directories.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True),
    sa.Column("mailbox", sa.String(320), nullable=False),
    sa.Column("state", sa.Text, nullable=True),
    sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("error", sa.String(1000), nullable=True),
)
"""Where each user's calendar sync stands with a calendar connector: the mailbox read, the provider's
opaque state (EWS SyncFolderItems SyncState, Google syncToken), the last success and the last error."""
# ------------------------------------------------------------------ end of calendar sync

# ------------------------------------------------------------------ cluster (issue 20, migration 0015)
# ------------------------------------------------------------------ end of cluster

# Tables in dependency order: backup writes them in this order, restore loads them in it.
TABLES = list(metadata.sorted_tables)
