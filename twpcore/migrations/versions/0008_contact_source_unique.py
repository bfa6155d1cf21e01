"""contacts: one row per (directory, owner, source id) — a unique expression index

Two syncs of one directory in different processes (``twp directory sync`` and the server)
could both insert a contact the store did not have yet.  This revision first removes such
duplicates (keeping the lowest id of each (directory, owner, source id), which is the one
contact lists were most likely to point at), then makes the store refuse them.
``owner_id`` is NULL in public directories and NULLs are distinct in a plain unique index,
hence the index on ``coalesce(owner_id, 0)`` (user ids start at 1); SQLite and PostgreSQL
both support unique expression indexes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEX = "uq_contacts_directory_owner_source"


def upgrade() -> None:
    # The ids to remove: every contact with a lower id of the same (directory, owner, source id).
    duplicates = (
        "SELECT c.id FROM contacts c WHERE EXISTS (SELECT 1 FROM contacts k WHERE k.directory_id = c.directory_id "
        "AND coalesce(k.owner_id, 0) = coalesce(c.owner_id, 0) AND k.source_id = c.source_id AND k.id < c.id)"
    )
    # contact_numbers and contact_list_items cascade, but SQLite cascades only with PRAGMA foreign_keys=ON:
    # delete them explicitly so the result does not depend on the connection.
    op.execute(f"DELETE FROM contact_numbers WHERE contact_id IN ({duplicates})")
    op.execute(f"DELETE FROM contact_list_items WHERE contact_id IN ({duplicates})")
    op.execute(f"DELETE FROM contacts WHERE id IN ({duplicates})")
    op.create_index(INDEX, "contacts", ["directory_id", sa.text("coalesce(owner_id, 0)"), "source_id"], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="contacts")
