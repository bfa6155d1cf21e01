"""Store access of the directory service: directory rows, contact replacement, index loading, rights.

Every function takes a connection inside a transaction (``Store.run``).  The heart of a
sync is ``diff_contacts``, which compares a directory's (or one owner's) new contacts with
the stored ones by source id, and ``insert_contacts`` / ``update_contacts`` /
``delete_contacts`` (contacts with their numbers and search words, ``contact_words``),
which the service calls batch by batch to write the difference, so
contact ids stay stable across syncs (contact lists and other data keep pointing at them,
guide 8.4.2).  The store holds one contact per (directory, owner, source id) (a unique
index): ``insert_contacts`` turns the rows another process's sync stored meanwhile into
updates instead of failing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from twpcore import rights
from twpcore.directory.fields import MappedContact, search_tokens, sort_key
from twpcore.store import schema as t

CHUNK = 500


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def directory_select() -> sa.Select:
    d = t.directories
    return sa.select(d, t.domains.c.company_id, t.domains.c.name.label("domain_name")).join(t.domains, t.domains.c.id == d.c.domain_id)


def load_directory(conn: sa.Connection, directory_id: int) -> dict[str, Any] | None:
    row = conn.execute(directory_select().where(t.directories.c.id == directory_id)).one_or_none()
    return None if row is None else dict(row._mapping)


def all_directories(conn: sa.Connection) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(directory_select().order_by(t.directories.c.id))]


# -- contacts ------------------------------------------------------------------------

def contact_values(directory_id: int, owner_id: int | None, c: MappedContact) -> dict[str, Any]:
    data = c.data
    return {
        "directory_id": directory_id, "owner_id": owner_id, "source_id": c.source_id,
        "last_name": data.get("last_name", ""), "first_name": data.get("first_name", ""), "company": data.get("company", ""),
        "email_key": c.email_key[:1000], "vip": c.vip[:1000], "sort_key": sort_key(data), "search_text": " ".join(search_tokens(data)),
        "data": {"fields": data, "numbers": [{"type": n.type, "number": n.number, "redlisted": n.redlisted} for n in c.numbers]},
        "digest": c.digest,
    }


def number_rows(contact_id: int, directory_id: int, c: MappedContact, keys: dict[str, tuple[str, ...]]) -> list[dict[str, Any]]:
    rows = []
    for position, n in enumerate(c.numbers):
        for rank, key in enumerate(keys.get(n.number, ()) or ("",)):
            rows.append({"contact_id": contact_id, "directory_id": directory_id, "type": n.type, "position": position,
                         "number": n.number, "key": key, "key_rank": rank, "redlisted": n.redlisted})
    return rows


def word_rows(contact_id: int, directory_id: int, search_text: str) -> list[dict[str, Any]]:
    """The ``contact_words`` rows of a contact: its distinct search words."""
    return [{"directory_id": directory_id, "word": w, "contact_id": contact_id} for w in sorted({w[:100] for w in search_text.split()})]


def bulk_insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows through the driver's ``executemany`` directly.

    SQLAlchemy's per-row parameter processing costs more than SQLite's own insert for
    the millions of small rows a large sync writes (numbers and search words); these
    tables hold only integers, strings and booleans, which every driver takes as they are.
    """
    if not rows:
        return
    columns = list(rows[0])
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    for chunk in _chunks(rows, 10000):
        conn.exec_driver_sql(sql, [tuple(r[k] for k in columns) for r in chunk])


def write_words(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    bulk_insert(conn, t.contact_words, rows)


def existing_digests(conn: sa.Connection, directory_id: int, owners: Iterable[int | None]) -> dict[tuple[int | None, str], tuple[int, str]]:
    c = t.contacts
    out = {}
    for owner in owners:
        cond = c.c.owner_id.is_(None) if owner is None else c.c.owner_id == owner
        for r in conn.execute(sa.select(c.c.id, c.c.source_id, c.c.digest).where(c.c.directory_id == directory_id, cond)):
            out[(owner, r.source_id)] = (r.id, r.digest)
    return out


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


@attrs.define(eq=False)
class ChangeSet:
    """What a sync changes in the stored contacts of (directory, owner): computed once, written in batches."""

    owner_id: int | None
    creates: list[MappedContact] = attrs.field(factory=list)
    updates: list[tuple[int, MappedContact]] = attrs.field(factory=list)
    """(contact id, new contact): contact ids stay stable across syncs."""
    gone: list[int] = attrs.field(factory=list)
    """Ids of stored contacts the source no longer has."""
    unchanged: int = 0
    keys: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    contacts: list[MappedContact] = attrs.field(factory=list)
    """Every contact of the sync (for ``write_changes``, which diffs again inside its transaction)."""


def diff_contacts(stored: dict[tuple[int | None, str], tuple[int, str]], owner_id: int | None, contacts: list[MappedContact],
                  keys: dict[str, tuple[str, ...]]) -> ChangeSet:
    """The difference between the stored contacts of one owner (``existing_digests``) and a sync's contacts, by source id."""
    by_source = {sid: v for (owner, sid), v in stored.items() if owner == owner_id}
    change = ChangeSet(owner_id, keys=keys, contacts=contacts)
    seen = set()
    for contact in contacts:
        seen.add(contact.source_id)
        old = by_source.get(contact.source_id)
        if old is None:
            change.creates.append(contact)
        elif old[1] != contact.digest:
            change.updates.append((old[0], contact))
        else:
            change.unchanged += 1
    change.gone = [cid for sid, (cid, _) in by_source.items() if sid not in seen]
    return change


@attrs.define(eq=False)
class Inserted:
    """What ``insert_contacts`` did: the contacts it created, and those another writer had created meanwhile."""

    ids: list[int] = attrs.field(factory=list)
    """Ids of the contacts this call inserted."""
    taken: list[tuple[int, MappedContact]] = attrs.field(factory=list)
    """Contacts another writer (a sync of the same directory in another process) had inserted with other
    values: rewritten with ours, in place, like an update."""
    same: list[tuple[int, MappedContact]] = attrs.field(factory=list)
    """Contacts another writer had inserted with the very values given: left as they are."""


CONFLICT_ATTEMPTS = 3


def _insert_new(conn: sa.Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert contact rows, skipping those whose (directory, owner, source id) the store already holds; source id → new id."""
    c = t.contacts
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    # The conflict target names the unique index uq_contacts_directory_owner_source (schema.CONTACT_SOURCE_KEY);
    # any other failure (a foreign key...) still raises.
    stmt = dialect_insert(c).on_conflict_do_nothing(index_elements=[c.c.directory_id, sa.text("coalesce(owner_id, 0)"), c.c.source_id])
    return {r.source_id: r.id for r in conn.execute(stmt.returning(c.c.id, c.c.source_id), rows)}


def insert_contacts(conn: sa.Connection, directory_id: int, owner_id: int | None, contacts: Sequence[MappedContact],
                    keys: dict[str, tuple[str, ...]], stamp: dt.datetime, pending: int | None = None) -> Inserted:
    """Insert new contacts and their numbers, safe against another writer inserting the same contacts.

    A sync decides which contacts are new from a read made before it writes; a sync of the
    same directory in another process (``twp directory sync`` and the server) may have
    inserted some of them since.  The unique index on (directory, owner, source id) refuses
    those rows (``ON CONFLICT DO NOTHING``, SQLite and PostgreSQL): they are read back and
    rewritten with this sync's values when they differ (``Inserted.taken``) or left alone
    (``Inserted.same``), so the store keeps one contact per source record and the caller's
    report says what this sync did.  A row that vanished between the refusal and the read
    (deleted by the other writer) is inserted again.  ``pending``: the sync id the new rows
    are marked with until ``publish`` (readers do not see them before).
    """
    c = t.contacts
    out = Inserted()
    numbers: list[dict[str, Any]] = []
    words: list[dict[str, Any]] = []
    todo = list(contacts)
    for _ in range(CONFLICT_ATTEMPTS):
        if not todo:
            break
        refused: list[MappedContact] = []
        for chunk in _chunks(todo, 2000):
            values = [{**contact_values(directory_id, owner_id, m), "updated_at": stamp, "pending": pending} for m in chunk]
            got = _insert_new(conn, values)
            for m, v in zip(chunk, values, strict=True):
                cid = got.get(m.source_id)
                if cid is None:
                    refused.append(m)
                else:
                    out.ids.append(cid)
                    numbers += number_rows(cid, directory_id, m, keys)
                    words += word_rows(cid, directory_id, v["search_text"])
        todo = []
        if refused:
            cond = c.c.owner_id.is_(None) if owner_id is None else c.c.owner_id == owner_id
            stored: dict[str, tuple[int, str]] = {}
            for chunk in _chunks(refused):
                for r in conn.execute(sa.select(c.c.id, c.c.source_id, c.c.digest)
                                      .where(c.c.directory_id == directory_id, cond, c.c.source_id.in_([m.source_id for m in chunk]))):
                    stored[r.source_id] = (r.id, r.digest)
            for m in refused:
                old = stored.get(m.source_id)
                if old is None:
                    todo.append(m)
                elif old[1] == m.digest:
                    out.same.append((old[0], m))
                else:
                    out.taken.append((old[0], m))
    if todo:
        raise RuntimeError(f"directory {directory_id}: {len(todo)} contacts (source id {todo[0].source_id!r}...) were refused "
                           f"as already stored but could not be read back after {CONFLICT_ATTEMPTS} attempts: another process "
                           "keeps writing this directory; run the sync again once it is done")
    bulk_insert(conn, t.contact_numbers, numbers)
    write_words(conn, words)
    update_contacts(conn, directory_id, owner_id, out.taken, keys, stamp)
    return out


def apply_inserted(change: ChangeSet, results: Iterable[Inserted]) -> ChangeSet:
    """``change`` as it was written: creates another writer had made become updates (other values) or unchanged (same values)."""
    taken = [item for r in results for item in r.taken]
    same = [item for r in results for item in r.same]
    if not taken and not same:
        return change
    moved = {m.source_id for _, m in taken} | {m.source_id for _, m in same}
    return attrs.evolve(change, creates=[m for m in change.creates if m.source_id not in moved], updates=[*change.updates, *taken],
                        unchanged=change.unchanged + len(same))


def update_contacts(conn: sa.Connection, directory_id: int, owner_id: int | None, updates: Sequence[tuple[int, MappedContact]],
                    keys: dict[str, tuple[str, ...]], stamp: dt.datetime) -> None:
    """Rewrite changed contacts in place (same ids) with their numbers."""
    if not updates:
        return
    c, cn, w = t.contacts, t.contact_numbers, t.contact_words
    for chunk in _chunks([cid for cid, _ in updates]):
        conn.execute(sa.delete(cn).where(cn.c.contact_id.in_(chunk)))
        conn.execute(sa.delete(w).where(w.c.contact_id.in_(chunk)))
    stmt = (
        sa.update(c)
        .where(c.c.id == sa.bindparam("_id"))
        .values(
            {
                k: sa.bindparam(k)
                for k in (
                    "source_id",
                    "last_name",
                    "first_name",
                    "company",
                    "email_key",
                    "vip",
                    "sort_key",
                    "search_text",
                    "data",
                    "digest",
                    "updated_at",
                )
            }
        )
    )
    values = [
        {
            "_id": cid,
            **{k: v for k, v in contact_values(directory_id, owner_id, m).items() if k not in ("directory_id", "owner_id")},
            "updated_at": stamp,
        }
        for cid, m in updates
    ]
    conn.execute(stmt, values)
    numbers: list[dict[str, Any]] = []
    words: list[dict[str, Any]] = []
    for (cid, m), v in zip(updates, values, strict=True):
        numbers += number_rows(cid, directory_id, m, keys)
        words += word_rows(cid, directory_id, v["search_text"])
    bulk_insert(conn, cn, numbers)
    write_words(conn, words)


def write_changes(conn: sa.Connection, directory_id: int, changes: Sequence[ChangeSet], stamp: dt.datetime) -> list[ChangeSet]:
    """A (small) sync's changes in one transaction, diffed again against the stored contacts inside it; return what was written.

    Diffing inside the write transaction keeps the written changes close to the store's
    state; on PostgreSQL two such transactions may still both see a contact as new, and the
    unique index with ``insert_contacts``'s conflict handling keeps it single.
    """
    done = []
    for change in changes:
        stored = existing_digests(conn, directory_id, [change.owner_id])
        fresh = diff_contacts(stored, change.owner_id, change.contacts, change.keys)
        inserted = insert_contacts(conn, directory_id, fresh.owner_id, fresh.creates, fresh.keys, stamp)
        update_contacts(conn, directory_id, fresh.owner_id, fresh.updates, fresh.keys, stamp)
        delete_contacts(conn, fresh.gone)
        done.append(apply_inserted(fresh, [inserted]))
    return done


def delete_contacts(conn: sa.Connection, ids: Sequence[int]) -> None:
    """Delete contacts (and their numbers) by id."""
    for chunk in _chunks(list(ids)):
        conn.execute(sa.delete(t.contact_numbers).where(t.contact_numbers.c.contact_id.in_(chunk)))
        conn.execute(sa.delete(t.contact_words).where(t.contact_words.c.contact_id.in_(chunk)))
        conn.execute(sa.delete(t.contacts).where(t.contacts.c.id.in_(chunk)))


def publish(conn: sa.Connection, directory_id: int, sync_id: int) -> int:
    """Make the new contacts a sync wrote visible to readers, all at once; return how many."""
    c = t.contacts
    return conn.execute(sa.update(c).where(c.c.pending == sync_id, c.c.directory_id == directory_id).values(pending=None)).rowcount


def discard_pending(conn: sa.Connection, directory_id: int | None = None, sync_id: int | None = None, owner_id: Any = ...) -> int:
    """Delete unpublished contacts: those of one sync (and owner), or (start-up) those of every sync no longer running."""
    c, s = t.contacts, t.directory_syncs
    sel = sa.select(c.c.id).where(c.c.pending.is_not(None))
    if owner_id is not ...:
        sel = sel.where(sa.func.coalesce(c.c.owner_id, sa.literal_column("0")) == (owner_id or 0))
    if sync_id is not None:
        sel = sel.where(c.c.pending == sync_id)
    else:
        running = sa.select(s.c.id).where(s.c.status == "running")
        sel = sel.where(c.c.pending.not_in(running))
    if directory_id is not None:
        sel = sel.where(c.c.directory_id == directory_id)
    ids = conn.execute(sel).scalars().all()
    delete_contacts(conn, ids)
    return len(ids)


def delete_owner_contacts(conn: sa.Connection, directory_id: int, owner_id: int | None) -> int:
    c = t.contacts
    cond = c.c.owner_id.is_(None) if owner_id is None else c.c.owner_id == owner_id
    ids = conn.execute(sa.select(c.c.id).where(c.c.directory_id == directory_id, cond)).scalars().all()
    delete_contacts(conn, ids)
    return len(ids)


def contact_rows(conn: sa.Connection, ids: Sequence[int]) -> dict[int, Any]:
    """Published contacts by id (a contact a running sync has not published yet is left out)."""
    out = {}
    for chunk in _chunks(list(ids)):
        for r in conn.execute(sa.select(t.contacts).where(t.contacts.c.id.in_(chunk), t.contacts.c.pending.is_(None))):
            out[r.id] = r
    return out


# -- rights ----------------------------------------------------------------------------

def user_row(conn: sa.Connection, user_id: int) -> Any:
    return conn.execute(
        sa.select(t.users.c.id, t.users.c.domain_id, t.users.c.enabled, t.users.c.login, t.users.c.email, t.users.c.first_name,
                  t.users.c.last_name, t.domains.c.company_id)
        .join(t.domains, t.domains.c.id == t.users.c.domain_id).where(t.users.c.id == user_id)).one_or_none()


def user_directories(conn: sa.Connection, user_id: int) -> tuple[list[int], set[int]]:
    """Directories the user may search (guide 7.4.2: a grant to the user or one of its groups; never a draft,
    never another company's); and which of them are private (the user sees only its own contacts there)."""
    user = user_row(conn, user_id)
    if user is None or not user.enabled:
        return [], set()
    ids = [int(ref.split(":", 1)[1]) for ref in rights.visible_objects(conn, user_id, "directory")]
    if not ids:
        return [], set()
    d = t.directories
    rows = conn.execute(sa.select(d.c.id, d.c.type).join(t.domains, t.domains.c.id == d.c.domain_id)
                        .where(d.c.id.in_(ids), d.c.type != "draft", t.domains.c.company_id == user.company_id)).all()
    return [r.id for r in rows], {r.id for r in rows if r.type == "private"}


def domain_directories(conn: sa.Connection, domain_id: int) -> list[int]:
    """The public directories a domain as a whole reaches: its own, and those granted to any of its users or groups."""
    d, a = t.directories, t.authorizations
    own = conn.execute(sa.select(d.c.id).where(d.c.domain_id == domain_id, d.c.type == "public")).scalars().all()
    company = conn.execute(sa.select(t.domains.c.company_id).where(t.domains.c.id == domain_id)).scalar_one_or_none()
    refs = conn.execute(sa.select(a.c.object_ref).distinct().where(a.c.object_type == "directory", a.c.subject_domain_id == domain_id,
                                                                   a.c.company_id == company)).scalars().all()
    granted = [int(r.split(":", 1)[1]) for r in refs]
    shared = conn.execute(sa.select(d.c.id).where(d.c.id.in_(granted or [-1]), d.c.type == "public")).scalars().all() if granted else []
    return sorted(set(own) | set(shared))


def all_visibility(conn: sa.Connection) -> tuple[dict[int, tuple[tuple[int, ...], frozenset[int]]], dict[int, tuple[int, ...]]]:
    """Every user's directories and every domain's, computed in a few queries (for call enrichment)."""
    a, gm = t.authorizations, t.group_members
    dirs = {r.id: r for r in conn.execute(sa.select(t.directories.c.id, t.directories.c.type, t.directories.c.domain_id, t.domains.c.company_id)
                                          .join(t.domains, t.domains.c.id == t.directories.c.domain_id))}
    users = {r.id: r for r in conn.execute(sa.select(t.users.c.id, t.users.c.enabled, t.users.c.domain_id, t.domains.c.company_id)
                                           .join(t.domains, t.domains.c.id == t.users.c.domain_id))}
    members: dict[int, list[int]] = {}
    for r in conn.execute(sa.select(gm.c.group_id, gm.c.user_id)):
        members.setdefault(r.group_id, []).append(r.user_id)
    per_user: dict[int, set[int]] = {}
    per_domain: dict[int, set[int]] = {}
    for grant in conn.execute(
        sa.select(a.c.subject_type, a.c.subject_id, a.c.subject_domain_id, a.c.object_ref).where(a.c.object_type == "directory")
    ):
        try:
            did = int(grant.object_ref.split(":", 1)[1])
        except (IndexError, ValueError):
            continue
        if did not in dirs:
            continue
        reached = [grant.subject_id] if grant.subject_type == "user" else members.get(grant.subject_id, []) if grant.subject_type == "group" else []
        for uid in reached:
            per_user.setdefault(uid, set()).add(did)
        if dirs[did].type == "public":
            per_domain.setdefault(grant.subject_domain_id, set()).add(did)
    for did, d in dirs.items():
        if d.type == "public":
            per_domain.setdefault(d.domain_id, set()).add(did)
    out_users = {}
    for uid, u in users.items():
        ok = [d for d in per_user.get(uid, ()) if u.enabled and dirs[d].type != "draft" and dirs[d].company_id == u.company_id]
        out_users[uid] = (tuple(ok), frozenset(d for d in ok if dirs[d].type == "private"))
    return out_users, {k: tuple(sorted(v)) for k, v in per_domain.items()}


def granted_users(conn: sa.Connection, directory_id: int) -> list[dict[str, Any]]:
    """Enabled users reached by grants on a directory (the owners a private directory syncs)."""
    a, gm, u = t.authorizations, t.group_members, t.users
    ref = f"directory:{directory_id}"
    direct = sa.select(a.c.subject_id.label("uid")).where(a.c.object_type == "directory", a.c.object_ref == ref, a.c.subject_type == "user")
    via = (sa.select(gm.c.user_id.label("uid")).join(a, sa.and_(a.c.subject_type == "group", a.c.subject_id == gm.c.group_id))
           .where(a.c.object_type == "directory", a.c.object_ref == ref))
    ids = sa.union(direct, via).subquery()
    rows = conn.execute(sa.select(u.c.id, u.c.login, u.c.email, u.c.first_name, u.c.last_name, u.c.domain_id, u.c.culture)
                        .join(ids, ids.c.uid == u.c.id).where(u.c.enabled.is_(True)).order_by(u.c.id))
    return [dict(r._mapping) for r in rows]
