"""Private contacts ([TwsPrivate], guide 9.1.1) and pushed contacts (guide 8.8), a part of ``DirectoryService``.

Users edit their own contacts in the private directory they are granted (each contact with
its numbers and search words in one transaction); a pushed directory's contacts are
replaced by each push, through the service's sync path.
"""

from __future__ import annotations

import typing
import uuid
from collections.abc import Sequence
from typing import Any

import attrs
import sqlalchemy as sa

from twpcore.directory import db
from twpcore.directory.errors import DirectoryError
from twpcore.directory.fields import Ignored, MappingError, SkippedRecord, contact_from_fields
from twpcore.directory.report import SyncReport
from twpcore.kinds import SourceRecord
from twpcore.store import schema as t


class PrivateContacts:
    """Private and pushed contacts of the directory service."""

    if typing.TYPE_CHECKING:
        parameters: Any
        rows: dict[int, dict[str, Any]]
        ready: Any
        store: Any
        read: Any
        sync: Any
        mapping: Any
        plan: Any
        keys: Any
        _load: Any
        contact: Any
        card: Any
        connector_type: Any
        visible_for_user: Any

    async def private_directory(self, user_id: int) -> dict[str, Any]:
        _user, ids, _private = await self.visible_for_user(user_id)
        rows = sorted(
            (self.rows[i] for i in ids if i in self.rows and self.rows[i]["connector"] == "private"), key=lambda r: (r["priority"], r["id"])
        )
        if not rows:
            raise DirectoryError(403, "no_private_directory", "you have no private contacts directory: an administrator must give you "
                                 "the right to a directory of connector \"private\" ([TwsPrivate], guide 9.1.1)")
        return rows[0]

    async def save_private(self, user_id: int, values: dict[str, Any], contact_id: int | None = None) -> dict[str, Any]:
        await self.ready.wait()
        row = await self.private_directory(user_id)
        if contact_id is None:
            allowed = await self.store.run(lambda c: self.parameters.resolve_one(c, user_id, "AuthorizeContactFavorite").as_bool())
            if not allowed:
                raise DirectoryError(
                    403, "forbidden", "creating private contacts is not allowed for you (parameter AuthorizeContactFavorite, guide 9.1.8)"
                )
        try:
            mapped = contact_from_fields(values, self.mapping(row).labels)
        except MappingError as exc:
            raise DirectoryError(400, "bad_request", str(exc).removeprefix("fields."), exc.field) from None
        if isinstance(mapped, Ignored):
            raise DirectoryError(422, "invalid_contact", "a contact needs a name (last_name, first_name or company) or a number", "last_name")
        plan = await self.plan(row["domain_id"])
        keys = {n.number: self.keys(row["domain_id"], n.number, plan) for n in mapped.numbers}

        def run(conn: sa.Connection) -> int:
            c = t.contacts
            if contact_id is not None:
                old = conn.execute(sa.select(c.c.id, c.c.source_id).where(c.c.id == contact_id, c.c.owner_id == user_id,
                                                                          c.c.directory_id == row["id"])).one_or_none()
                if old is None:
                    raise DirectoryError(404, "not_found", f"private contact {contact_id} not found")
                m = attrs.evolve(mapped, source_id=old.source_id)
                vals = {k: v for k, v in db.contact_values(row["id"], user_id, m).items() if k not in ("directory_id", "owner_id")}
                conn.execute(sa.update(c).where(c.c.id == contact_id).values(**vals, updated_at=db.now()))
                conn.execute(sa.delete(t.contact_numbers).where(t.contact_numbers.c.contact_id == contact_id))
                conn.execute(sa.delete(t.contact_words).where(t.contact_words.c.contact_id == contact_id))
                cid = contact_id
            else:
                m = attrs.evolve(mapped, source_id="p-" + uuid.uuid4().hex)
                cid = conn.execute(
                    sa.insert(c).values(**db.contact_values(row["id"], user_id, m), updated_at=db.now()).returning(c.c.id)
                ).scalar_one()
            numbers = db.number_rows(cid, row["id"], m, keys)
            if numbers:
                conn.execute(sa.insert(t.contact_numbers), numbers)
            db.write_words(conn, db.word_rows(cid, row["id"], db.contact_values(row["id"], user_id, m)["search_text"]))
            return cid

        cid = await self.store.run(run)
        await self._load(row, user_id)
        return await self.contact(user_id, cid)

    async def delete_private(self, user_id: int, contact_id: int) -> None:
        await self.ready.wait()
        row = await self.private_directory(user_id)

        def run(conn: sa.Connection) -> None:
            c = t.contacts
            n = conn.execute(sa.delete(c).where(c.c.id == contact_id, c.c.owner_id == user_id, c.c.directory_id == row["id"])).rowcount
            if not n:
                raise DirectoryError(404, "not_found", f"private contact {contact_id} not found")

        await self.store.run(run)
        await self._load(row, user_id)

    async def list_private(self, user_id: int, offset: int, limit: int) -> dict[str, Any]:
        row = await self.private_directory(user_id)

        def run(conn: sa.Connection) -> tuple[int, Sequence[Any]]:
            c = t.contacts
            cond = (c.c.directory_id == row["id"], c.c.owner_id == user_id)
            total = conn.execute(sa.select(sa.func.count()).select_from(c).where(*cond)).scalar_one()
            return total, conn.execute(sa.select(c).where(*cond).order_by(c.c.sort_key, c.c.id).limit(limit).offset(offset)).all()

        total, rows = await self.read(run)
        return {"items": [self.card(r) for r in rows], "total": total, "offset": offset, "limit": limit, "directory_id": row["id"]}

    # ------------------------------------------------------------------ pushed contacts (guide 8.8)
    async def push(self, user_id: int, name: str, items: list[Any]) -> SyncReport:
        user, ids, _private = await self.visible_for_user(user_id)
        if user is None:
            raise DirectoryError(404, "not_found", f"user {user_id} not found")
        candidates = [self.rows[i] for i in ids if i in self.rows and self.rows[i]["name"] == name]
        if not candidates:
            raise DirectoryError(404, "not_found", f'directory "{name}" not found among the directories you may use; an administrator must '
                                 "create it (connector push, type private) and give you the right to it (guide 8.8.3)")
        row = sorted(candidates, key=lambda r: (r["domain_id"] != user.domain_id, r["priority"], r["id"]))[0]
        cls = self.connector_type(row["connector"])
        if cls is None or "push" not in cls.capabilities or row["type"] != "private":
            raise DirectoryError(409, "not_pushable", f'directory "{name}" does not take pushed contacts (connector {row["connector"]}, '
                                 f'type {row["type"]}); push into a private directory of connector push')
        records: list[SourceRecord | SkippedRecord] = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                records.append(SkippedRecord(f"#{i}", f"expected an object of fields, got {type(item).__name__}"))
                continue
            rid = item.get("EntryID") or item.get("id") or f"#{i}"
            records.append(SourceRecord(str(rid), item))
        return await self.sync(row["id"], "push", owner_id=user_id, records=records)
