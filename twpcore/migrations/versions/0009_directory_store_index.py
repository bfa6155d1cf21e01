"""directories: the search and reverse-lookup index lives in the store (no in-memory index, no snapshot)

- ``contact_words``: one row per (directory, search word, contact); a query word is a prefix
  range of ``word`` (binary collation on PostgreSQL so the range matches SQLite's order).
  Filled here from ``contacts.search_text``.
- ``contacts.pending``: the sync still writing a new contact (NULL once published); readers
  skip pending contacts, so a large sync's new contacts appear together when it finishes.
- ``ix_contacts_rank`` (directory, owner, sort key, id) replaces ``ix_contacts_directory_owner``:
  search walks it in rank order for common words.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    op.create_table(
        "contact_words",
        sa.Column("directory_id", sa.Integer(), nullable=False),
        sa.Column("word", sa.String(length=100).with_variant(sa.String(length=100, collation="C"), "postgresql"), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], name="fk_contact_words_contact_id_contacts", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("directory_id", "word", "contact_id", name="pk_contact_words"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_contact_words_contact_id", "contact_words", ["contact_id"])
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("pending", sa.Integer(), nullable=True))
    op.create_index("ix_contacts_pending", "contacts", ["pending"])
    op.create_index("ix_contacts_rank", "contacts", ["directory_id", "owner_id", "sort_key", "id"])
    op.drop_index("ix_contacts_directory_owner", table_name="contacts")
    # Fill the words of the contacts already stored.
    conn = op.get_bind()
    words = sa.table("contact_words", sa.column("directory_id"), sa.column("word"), sa.column("contact_id"))
    last = 0
    while True:
        rows = conn.execute(sa.text("SELECT id, directory_id, search_text FROM contacts WHERE id > :last ORDER BY id LIMIT :n"),
                            {"last": last, "n": BATCH}).all()
        if not rows:
            break
        last = rows[-1].id
        values = [{"directory_id": r.directory_id, "word": w[:100], "contact_id": r.id}
                  for r in rows for w in sorted({w[:100] for w in (r.search_text or "").split()})]
        if values:
            conn.execute(sa.insert(words), values)


def downgrade() -> None:
    op.create_index("ix_contacts_directory_owner", "contacts", ["directory_id", "owner_id"])
    op.drop_index("ix_contacts_rank", table_name="contacts")
    op.drop_index("ix_contacts_pending", table_name="contacts")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("pending")
    op.drop_index("ix_contact_words_contact_id", table_name="contact_words")
    op.drop_table("contact_words")
