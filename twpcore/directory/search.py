"""Directory search served from the store: one page of contacts, ranked by directory priority then name.

Every function runs in a worker thread on one read transaction (``DirectoryService.read``).

A text query is a list of folded words; a contact matches when, for every query word, one
of its search words starts with it.  Per view (``index.View``) the contacts come in rank
order (sort key, id), lazily, so a page stops reading as soon as it is full:

- a *rare* query word (at most ``SPARSE`` postings in the directory, counted with a capped
  index-only scan of ``contact_words``) gives its candidates directly; they are checked
  against the other words and sorted;
- a *common* word (more postings) is cheaper the other way round: walk the directory's
  contacts in rank order on ``ix_contacts_rank``, ``WALK`` at a time, and keep those
  matching every word; a common word matches often, so a page is full after a few reads.

Views of one priority are merged by sort key; contacts of merge directories sharing an
e-mail with a better-ranked visible contact of another merge directory are folded into it
(guide 8.2.2).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from twpcore.directory.index import View
from twpcore.store import schema as t

SPARSE = 2000
"""Above this many postings for the rarest query word, a directory is walked in rank order instead."""
WALK = 400
"""Contacts read per query when walking a directory in rank order."""

Item = tuple[str, int, str]
"""(sort key, contact id, e-mail key) of a matching contact."""
Stream = Callable[[sa.Connection, View], Iterable[Item]]


def _upper(term: str) -> str:
    return term[:-1] + chr(ord(term[-1]) + 1)


def _matches(text: str, terms: Sequence[str]) -> bool:
    tokens = text.split()
    return all(any(tok.startswith(term) for tok in tokens) for term in terms)


def _sql(conn: sa.Connection, text: str) -> str:
    """Driver SQL written with ``?`` marks, in the driver's parameter style (search runs several queries per
    directory: building them through SQLAlchemy's expression layer would cost more than running them)."""
    return text if conn.dialect.paramstyle == "qmark" else text.replace("%", "%%").replace("?", "%s")


def _owner(view: View) -> tuple[str, tuple[int, ...]]:
    return ("c.owner_id IS NULL", ()) if view.owner_id is None else ("c.owner_id = ?", (view.owner_id,))


def _postings(conn: sa.Connection, directory_id: int, term: str, cap: int) -> int:
    sql = _sql(conn, "SELECT count(*) FROM (SELECT 1 FROM contact_words WHERE directory_id = ? AND word >= ? AND word < ? LIMIT ?) AS p")
    return int(conn.exec_driver_sql(sql, (directory_id, term, _upper(term), cap)).scalar_one())


def text_stream(terms: Sequence[str]) -> Stream:
    """Contacts of a view matching every term, in rank order."""

    def stream(conn: sa.Connection, view: View) -> Iterator[Item]:
        if not terms:
            return
        counted = []
        for term in terms:
            n = _postings(conn, view.directory_id, term, SPARSE + 1)
            if n == 0:
                return
            counted.append((n, term))
        counted.sort()
        n, rare = counted[0]
        if n <= SPARSE:
            owner, args = _owner(view)
            sql = _sql(conn, "SELECT c.id, c.sort_key, c.email_key, c.search_text FROM contact_words w JOIN contacts c ON c.id = w.contact_id "
                             f"WHERE w.directory_id = ? AND w.word >= ? AND w.word < ? AND {owner} AND c.pending IS NULL")
            rows = conn.exec_driver_sql(sql, (view.directory_id, rare, _upper(rare), *args))
            found = {r[0]: (r[1], r[0], r[2]) for r in rows if _matches(r[3], terms)}
            yield from sorted(found.values())
            return
        yield from _walk(conn, view, lambda text: _matches(text, terms))

    return stream


def _walk(conn: sa.Connection, view: View, keep: Callable[[str], bool]) -> Iterator[Item]:
    """A view's contacts in rank order on ``ix_contacts_rank``, ``WALK`` per query (keyset paging), those ``keep`` accepts."""
    owner, args = _owner(view)
    head = f"SELECT c.id, c.sort_key, c.email_key, c.search_text, c.pending FROM contacts c WHERE c.directory_id = ? AND {owner}"
    first = _sql(conn, f"{head} ORDER BY c.sort_key, c.id LIMIT {WALK}")
    after = _sql(conn, f"{head} AND (c.sort_key, c.id) > (?, ?) ORDER BY c.sort_key, c.id LIMIT {WALK}")
    rows = conn.exec_driver_sql(first, (view.directory_id, *args)).all()
    while True:
        for r in rows:
            if r[4] is None and keep(r[3]):
                yield (r[1], r[0], r[2])
        if len(rows) < WALK:
            return
        sk, cid = rows[-1][1], rows[-1][0]
        rows = conn.exec_driver_sql(after, (view.directory_id, *args, sk, cid)).all()


def number_stream(keys: Sequence[str]) -> Stream:
    """Contacts of a view with a shown (not red-listed) number under one of ``keys``, in rank order."""

    def stream(conn: sa.Connection, view: View) -> Iterator[Item]:
        wanted = [k for k in keys if k]
        if not wanted:
            return
        owner, args = _owner(view)
        # "+cn.directory_id": look numbers up by key (a few rows), not by directory (all its numbers).
        sql = _sql(conn, "SELECT c.id, c.sort_key, c.email_key FROM contact_numbers cn JOIN contacts c ON c.id = cn.contact_id "
                         f"WHERE cn.key IN ({', '.join('?' * len(wanted))}) AND +cn.directory_id = ? AND NOT cn.redlisted "
                         f"AND {owner} AND c.pending IS NULL")
        found = {r[0]: (r[1], r[0], r[2]) for r in conn.exec_driver_sql(sql, (*wanted, view.directory_id, *args))}
        yield from sorted(found.values())

    return stream


Hit = tuple[View, int, str]
"""(view, contact id, e-mail key) of a search hit."""


class _Emails:
    """Which merge views hold a visible contact with a given e-mail (read once per e-mail and page)."""

    def __init__(self, conn: sa.Connection, merged: list[View]):
        self.conn, self.merged = conn, merged
        self.directories = sorted({v.directory_id for v in merged})
        self._seen: dict[str, dict[tuple[int, int | None], tuple[str, int]]] = {}

    def holders(self, email: str) -> dict[tuple[int, int | None], tuple[str, int]]:
        """View key → (sort key, id) of its first contact with this e-mail."""
        found = self._seen.get(email)
        if found is None:
            c = t.contacts
            found = {}
            for r in self.conn.execute(sa.select(c.c.id, c.c.directory_id, c.c.owner_id, c.c.sort_key)
                                       .where(c.c.email_key == email, c.c.directory_id.in_(self.directories), c.c.pending.is_(None))):
                key = (r.directory_id, r.owner_id)
                if key not in found or (r.sort_key, r.id) < found[key]:
                    found[key] = (r.sort_key, r.id)
            self._seen[email] = found
        return found

    def folded(self, view: View, email: str) -> bool:
        """Whether a better-ranked merge view holds this e-mail (the contact is shown there)."""
        if not email:
            return False
        holders = None
        for other in self.merged:
            if other == view:
                return False
            if holders is None:
                holders = self.holders(email)
            if other.key in holders:
                return True
        return False

    def members(self, views: list[View], email: str) -> list[tuple[View, int]]:
        """The first contact with this e-mail of each visible merge view, best view first."""
        holders = self.holders(email)
        return [(v, holders[v.key][1]) for v in views if v.merge and v.key in holders]


def page(conn: sa.Connection, views: list[View], stream: Stream, offset: int, limit: int) -> tuple[list[Hit], bool]:
    """One page of hits (and whether more exist), ranked by priority then name."""
    merged = [v for v in views if v.merge]
    emails = _Emails(conn, merged)
    out: list[Hit] = []
    wanted = offset + limit + 1
    skipped = 0
    i = 0
    while i < len(views) and len(out) + skipped < wanted:
        j = i
        while j < len(views) and views[j].priority == views[i].priority:
            j += 1
        group = views[i:j]
        i = j
        if len(group) == 1:
            merged_stream: Iterable[tuple[Any, ...]] = ((item, 0, group[0]) for item in stream(conn, group[0]))
        else:
            merged_stream = heapq.merge(*(((item, n, v) for item in stream(conn, v)) for n, v in enumerate(group)),
                                        key=lambda x: (x[0][0], x[1], x[0][1]))
        for item, _, view in merged_stream:
            if merged and view.merge and emails.folded(view, item[2]):
                continue
            if skipped < offset:
                skipped += 1
                continue
            out.append((view, item[1], item[2]))
            if len(out) + skipped >= wanted:
                break
    more = len(out) > limit
    return out[:limit], more


def groups(conn: sa.Connection, hits: list[Hit], views: list[View]) -> dict[int, list[tuple[View, int]]]:
    """Per hit, the contacts its card shows: itself, then the same e-mail in other visible merge directories."""
    emails = _Emails(conn, [v for v in views if v.merge])
    out: dict[int, list[tuple[View, int]]] = {}
    for view, cid, email in hits:
        group = [(view, cid)]
        if view.merge and email:
            group += [(v, other) for v, other in emails.members(views, email) if v != view]
        out[cid] = group
    return out
