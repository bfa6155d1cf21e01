"""The sync writer: a connector's records streamed into the store in bounded memory.

One :class:`OwnerSync` per (directory, owner) of a sync.  Records are read from the connector
``batch_size`` at a time (a list, an iterator, an async iterator or a coroutine giving one of
those: every form a connector's ``records()`` may take).  Each batch is mapped (guide 8.1),
compared by source id with the stored contacts' content hashes (``contacts.digest``, one
indexed query per batch), and only then are canonical keys computed, for the contacts that
are new or changed.  Then:

- new contacts are inserted at once, marked with the sync's id (``contacts.pending``): readers
  do not see them until the sync publishes them all together (``db.publish``);
- changed contacts are kept (up to ``UPDATE_BUFFER`` of them) and rewritten in place once the
  source has been read to the end, so a source failing half-way changes nothing readers see;
- every contact the source gave is marked in a bitmap of contact ids (``seen``, one bit per
  id: 125 KB per million ids); once the source is read, stored contacts not marked are deleted.

What stays in memory is one or two batches, the changes waiting to be written, and the bitmap:
never the whole directory.  A re-sync of an unchanged source writes nothing.

A sync whose records fit in one batch against a directory of at most one batch is written in
one transaction (``db.write_changes``), diffed again inside it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import sqlalchemy as sa

from twpcore.directory import db
from twpcore.directory.fields import Ignored, MappedContact, Mapping, SkippedRecord
from twpcore.directory.index import owner_cond
from twpcore.kinds import SourceRecord
from twpcore.plugins import describe_exception
from twpcore.store import schema as t

log = logging.getLogger(__name__)

UPDATE_BUFFER = 50_000
"""Changed contacts kept until the source is read to the end; beyond, they are written as they come."""


async def batches(records: Any, size: int) -> AsyncIterator[tuple[list[Any], bool]]:
    """The records of a connector in lists of ``size``, each with whether it is the last one (reads one batch ahead)."""
    if asyncio.iscoroutine(records):
        records = await records
    pending: list[Any] | None = None
    buf: list[Any] = []
    if hasattr(records, "__aiter__"):
        async for rec in records:
            buf.append(rec)
            if len(buf) >= size:
                if pending is not None:
                    yield pending, False
                pending, buf = buf, []
    else:
        for rec in records:
            buf.append(rec)
            if len(buf) >= size:
                if pending is not None:
                    yield pending, False
                pending, buf = buf, []
                await asyncio.sleep(0)
    if pending is not None:
        yield pending, not buf
    if buf:
        yield buf, True


class Seen:
    """A set of contact ids as a bitmap (one bit per id up to the largest id seen)."""

    def __init__(self) -> None:
        self.bits = bytearray()

    def add(self, cid: int) -> None:
        byte = cid >> 3
        if byte >= len(self.bits):
            self.bits.extend(bytes(max(byte + 1 - len(self.bits), len(self.bits) // 2, 4096)))
        self.bits[byte] |= 1 << (cid & 7)

    def __contains__(self, cid: int) -> bool:
        byte = cid >> 3
        return byte < len(self.bits) and bool(self.bits[byte] & (1 << (cid & 7)))


@attrs.define(eq=False)
class Prepared:
    """One batch, mapped and compared with the store."""

    creates: list[MappedContact] = attrs.field(factory=list)
    updates: list[tuple[int, MappedContact]] = attrs.field(factory=list)
    unchanged: list[int] = attrs.field(factory=list)
    keys: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    contacts: list[MappedContact] = attrs.field(factory=list)


def owner_key(c: sa.Table) -> Any:
    """``coalesce(owner_id, 0)`` written as the unique index is (a literal 0, not a parameter), so the database uses it."""
    return sa.func.coalesce(c.c.owner_id, sa.literal_column("0"))


def stored_digests(conn: sa.Connection, directory_id: int, owner_id: int | None, source_ids: list[str]) -> dict[str, tuple[int, str]]:
    """(id, digest) of the stored contacts with these source ids, through the unique index (directory, owner, source id)."""
    c = t.contacts
    out: dict[str, tuple[int, str]] = {}
    for i in range(0, len(source_ids), 500):
        chunk = source_ids[i:i + 500]
        sel = sa.select(c.c.id, c.c.source_id, c.c.digest, c.c.pending).where(
            c.c.directory_id == directory_id, owner_key(c) == (owner_id or 0), c.c.source_id.in_(chunk))
        for r in conn.execute(sel):
            out[r.source_id] = (r.id, r.digest)
    return out


def owner_count(conn: sa.Connection, directory_id: int, owner_id: int | None) -> int:
    c = t.contacts
    return int(conn.execute(sa.select(sa.func.count()).select_from(c).where(
        c.c.directory_id == directory_id, owner_cond(c.c.owner_id, owner_id))).scalar_one())


def unseen(conn: sa.Connection, directory_id: int, owner_id: int | None, seen: Seen) -> list[int]:
    """Ids of the owner's published contacts that the sync did not see (to delete), read in id order."""
    c = t.contacts
    out = []
    sel = sa.select(c.c.id).where(c.c.directory_id == directory_id, owner_cond(c.c.owner_id, owner_id), c.c.pending.is_(None))
    for (cid,) in conn.execute(sel.execution_options(yield_per=10_000)):
        if cid not in seen:
            out.append(cid)
    return out


@attrs.define(eq=False)
class OwnerSync:
    """Streams one owner's records (or a public directory's) into the store."""

    svc: Any
    row: dict[str, Any]
    owner_id: int | None
    sync_id: int
    report: Any
    keys_of: Callable[[str], tuple[str, ...]]
    mapping: Mapping | None = None
    seen: Seen = attrs.field(factory=Seen)
    updates: list[tuple[int, MappedContact]] = attrs.field(factory=list)
    update_keys: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    wrote: bool = False
    small: bool = False
    batch_ids: dict[str, str] = attrs.field(factory=dict)

    @property
    def directory_id(self) -> int:
        return int(self.row["id"])

    def _map(self, records: list[Any]) -> list[MappedContact]:
        """Map a batch (in a worker thread): problems go to the report; duplicates of this batch are dropped."""
        report = self.report
        if self.mapping is None:
            sample = next((r.fields for r in records if isinstance(r, SourceRecord)), {})
            self.mapping = self.svc.mapping(self.row, sample.keys())
        mapping = self.mapping
        out = []
        first: dict[str, str] = {}
        for rec in records:
            report.records += 1
            if isinstance(rec, SkippedRecord):
                report.problem(rec.id, rec.reason)
                continue
            if not isinstance(rec, SourceRecord):
                report.problem("?", f"the connector yielded a {type(rec).__name__}, not a SourceRecord; it is ignored")
                continue
            try:
                result = mapping.apply(str(rec.id), rec.fields)
            except Exception as exc:  # noqa: BLE001 - one bad record never fails the sync
                report.problem(rec.id, f"cannot be mapped: {describe_exception(exc)}")
                continue
            if isinstance(result, Ignored):
                report.problem(result.source_id, result.reason)
                continue
            if result.source_id in first:
                report.problem(rec.id, f"duplicate id {result.source_id!r} (already given by record {first[result.source_id]})")
                continue
            first[result.source_id] = str(rec.id)
            out.append(result)
        self.batch_ids = first
        return out

    def _prepare(self, conn: sa.Connection, records: list[Any]) -> Prepared:
        contacts = self._map(records)
        stored = stored_digests(conn, self.directory_id, self.owner_id, [m.source_id for m in contacts])
        out = Prepared(contacts=contacts)
        for m in contacts:
            old = stored.get(m.source_id)
            if old is not None and old[0] in self.seen:
                self.report.problem(self.batch_ids.get(m.source_id, m.source_id),
                                    f"duplicate id {m.source_id!r} (already given by an earlier record)")
                continue
            if old is None:
                out.creates.append(m)
            elif old[1] != m.digest:
                out.updates.append((old[0], m))
                self.seen.add(old[0])
            else:
                out.unchanged.append(old[0])
                self.seen.add(old[0])
        for m in [*out.creates, *(m for _, m in out.updates)]:
            for n in m.numbers:
                if n.number not in out.keys:
                    out.keys[n.number] = self.keys_of(n.number)
        return out

    async def _pause(self) -> None:
        if self.wrote and self.svc.store.dialect == "sqlite" and self.svc.batch_pause:
            await asyncio.sleep(self.svc.batch_pause)
        self.wrote = True

    async def run(self, records: Any) -> None:
        """Read every record and write the new ones (pending); changes and deletions wait for ``finish``."""
        svc, size = self.svc, max(1, self.svc.batch_size)
        async for batch, last in batches(records, size):
            if last and not self.wrote and not self.updates and not self.seen.bits:
                small = await svc.read(lambda conn: owner_count(conn, self.directory_id, self.owner_id) <= size)
                if small:
                    await self._small(batch)
                    return
            prepared = await svc.read(self._prepare, batch)
            self.unchanged += len(prepared.unchanged)
            if prepared.creates:
                await self._pause()
                result = await svc.store.run(db.insert_contacts, self.directory_id, self.owner_id, prepared.creates, prepared.keys,
                                             db.now(), self.sync_id)
                self.created += len(result.ids)
                for cid in result.ids:
                    self.seen.add(cid)
                for cid, _ in result.taken:
                    self.seen.add(cid)
                for cid, _ in result.same:
                    self.seen.add(cid)
                self.updated += len(result.taken)
                self.unchanged += len(result.same)
                if result.taken or result.same:
                    log.info("directory %s: %d new contacts were already stored by another sync (%d rewritten with this sync's values)",
                             self.row["name"], len(result.taken) + len(result.same), len(result.taken))
            if prepared.updates:
                self.updates += prepared.updates
                for m in (m for _, m in prepared.updates):
                    for n in m.numbers:
                        self.update_keys[n.number] = prepared.keys[n.number]
                if len(self.updates) >= UPDATE_BUFFER:
                    await self._write_updates()

    async def _small(self, records: list[Any]) -> None:
        """A sync of at most one batch against at most one batch of stored contacts: one transaction."""
        contacts = await asyncio.get_running_loop().run_in_executor(None, self._map, records)
        keys: dict[str, tuple[str, ...]] = {}
        for m in contacts:
            for n in m.numbers:
                if n.number not in keys:
                    keys[n.number] = self.keys_of(n.number)
        change = db.ChangeSet(self.owner_id, keys=keys, contacts=contacts)
        [done] = await self.svc.store.run(db.write_changes, self.directory_id, [change], db.now())
        self.created += len(done.creates)
        self.updated += len(done.updates)
        self.deleted += len(done.gone)
        self.unchanged += done.unchanged
        self.small = True

    async def _write_updates(self) -> None:
        size = max(1, self.svc.batch_size)
        while self.updates:
            chunk, self.updates = self.updates[:size], self.updates[size:]
            await self._pause()
            await self.svc.store.run(db.update_contacts, self.directory_id, self.owner_id, chunk, self.update_keys, db.now())
            self.updated += len(chunk)
        self.update_keys = {}

    async def finish(self) -> None:
        """The source was read to the end: rewrite changed contacts, delete those the source no longer has."""
        if self.small:
            return
        await self._write_updates()
        gone = await self.svc.read(unseen, self.directory_id, self.owner_id, self.seen)
        size = max(1, self.svc.batch_size)
        for i in range(0, len(gone), size):
            await self._pause()
            await self.svc.store.run(db.delete_contacts, gone[i:i + size])
            self.deleted += len(gone[i:i + size])

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)
