"""The directory index, served from the store: what a user sees, reverse lookup, contact counts.

There is no in-memory copy of the contacts (and no snapshot of one): search and reverse
lookup are queries on indexed tables, so memory does not grow with the number of contacts
and a restart answers at once.  The tables (``twpcore.store.schema``, migration 0009):

- ``contact_numbers``: one row per (number, canonical key), indexed by ``key``: a reverse
  lookup is one index probe for the few keys of the dialled number;
- ``contact_words``: one row per (directory, search word, contact), clustered on
  (directory, word): a query word is a prefix range of it (``search.py``);
- ``contacts`` indexed on (directory, owner, sort key, id): rank order within a directory.

A *view* (:class:`View`) is one directory as a reader sees it (a private directory: one
owner's contacts); views are ranked by priority, then folded name, then id.  Contacts a
running sync is still writing (``contacts.pending``) are invisible.  The hot reverse path
(call enrichment) is fronted by :class:`ReverseCache`, a small LRU emptied whenever a
directory's contacts change.  ``docs/architecture.md`` ("Directory index") gives the
measurements behind this choice.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import sqlalchemy as sa

from twpcore.directory.fields import NUMBER_FIELDS, fold
from twpcore.store import schema as t

TYPE_CODES = {name: i for i, name in enumerate(NUMBER_FIELDS)}


@attrs.frozen
class View:
    """One directory as a reader sees it: every contact, or in a private directory one owner's."""

    directory_id: int
    owner_id: int | None
    name: str
    priority: int
    merge: bool
    domain_id: int
    company_id: int
    type: str

    @property
    def key(self) -> tuple[int, int | None]:
        return (self.directory_id, self.owner_id)

    @property
    def rank(self) -> tuple[int, str, int, int]:
        return (self.priority, fold(self.name), self.directory_id, self.owner_id or 0)


def view_of(row: dict[str, Any], owner_id: int | None = None) -> View:
    return View(row["id"], owner_id, row["name"], row["priority"], bool(row["merge"]), row["domain_id"], row["company_id"], row["type"])


def owner_cond(column: Any, owner_id: int | None) -> Any:
    return column.is_(None) if owner_id is None else column == owner_id


@attrs.frozen
class ReverseHit:
    """The best contact of a reverse lookup."""

    view: View
    contact_id: int
    number_type: str
    redlisted: bool
    last_name: str
    first_name: str
    company: str
    vip: str
    email_key: str


def reverse(conn: sa.Connection, views: Sequence[View], keys: Sequence[str], redlisted: bool = False) -> ReverseHit | None:
    """The highest-ranked visible contact with a number under one of ``keys`` (the first key that matches, per view).

    Within a view the contact first by name wins; red-listed numbers count only with
    ``redlisted`` (call enrichment, guide 8.2.4).
    """
    keys = [k for k in dict.fromkeys(keys) if k]
    if not views or not keys:
        return None
    directories = sorted({v.directory_id for v in views})
    by_view: dict[tuple[int, int | None], list[Any]] = {}
    for r in conn.exec_driver_sql(_reverse_sql(conn, len(keys), len(directories), redlisted), (*keys, *directories)):
        by_view.setdefault((r.directory_id, r.owner_id), []).append(r)
    if not by_view:
        return None
    order = {k: i for i, k in enumerate(keys)}
    for view in views:
        hits = by_view.get(view.key)
        if not hits:
            continue
        first = min(order[h.key] for h in hits)
        best = min((h for h in hits if order[h.key] == first),
                   key=lambda h: (h.sort_key, h.contact_id, TYPE_CODES.get(h.type, len(NUMBER_FIELDS)), h.redlisted))
        return ReverseHit(view, best.contact_id, best.type, bool(best.redlisted), best.last_name, best.first_name, best.company, best.vip,
                          best.email_key)
    return None


_REVERSE_SQL: dict[tuple[str, int, int, bool], str] = {}


def _reverse_sql(conn: sa.Connection, keys: int, directories: int, redlisted: bool) -> str:
    """The reverse-lookup query as driver SQL, cached per shape: this is the call path, and building the
    statement through SQLAlchemy's expression layer costs several times the query itself."""
    shape = (conn.dialect.paramstyle, keys, directories, redlisted)
    sql = _REVERSE_SQL.get(shape)
    if sql is None:
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        sql = ("SELECT cn.contact_id, cn.directory_id, cn.type, cn.redlisted, cn.key, c.owner_id, c.sort_key, c.last_name, "
               "c.first_name, c.company, c.vip, c.email_key FROM contact_numbers cn JOIN contacts c ON c.id = cn.contact_id "
               f"WHERE cn.key IN ({', '.join([mark] * keys)}) AND +cn.directory_id IN ({', '.join([mark] * directories)}) "
               "AND c.pending IS NULL" + ("" if redlisted else " AND NOT cn.redlisted"))
        if len(_REVERSE_SQL) < 1000:
            _REVERSE_SQL[shape] = sql
    return sql


def contact_counts(conn: sa.Connection, directory_id: int | None = None) -> dict[int, int]:
    """Published contacts per directory (every directory, or one)."""
    c = t.contacts
    sel = sa.select(c.c.directory_id, sa.func.count()).where(c.c.pending.is_(None)).group_by(c.c.directory_id)
    if directory_id is not None:
        sel = sel.where(c.c.directory_id == directory_id)
    out = {r[0]: r[1] for r in conn.execute(sel)}
    if directory_id is not None:
        out.setdefault(directory_id, 0)
    return out


class DirectoryIndex:
    """What the service keeps in memory of the index: contact counts per directory (the contacts stay in the store)."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def set_counts(self, counts: dict[int, int], whole: bool = False) -> None:
        self.counts = dict(counts) if whole else {**self.counts, **counts}

    def drop(self, directory_id: int) -> None:
        self.counts.pop(directory_id, None)

    @property
    def contacts(self) -> int:
        return sum(self.counts.values())

    def visible(self, rows: dict[int, dict[str, Any]], directories: Iterable[int], owner_id: int | None,
                private: set[int] | frozenset[int]) -> list[View]:
        """Views of these directories holding contacts (a private directory: ``owner_id``'s), by rank."""
        views = []
        for d in directories:
            row = rows.get(d)
            if row is not None and self.counts.get(d):
                views.append(view_of(row, owner_id if d in private else None))
        views.sort(key=lambda v: v.rank)
        return views


class ReverseCache:
    """A bounded LRU of reverse-lookup answers; emptied (``clear``) whenever contacts or rights change."""

    def __init__(self, size: int = 4096):
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Any) -> tuple[bool, Any]:
        try:
            value = self._items[key]
        except KeyError:
            self.misses += 1
            return False, None
        self._items.move_to_end(key)
        self.hits += 1
        return True, value

    def put(self, key: Any, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
