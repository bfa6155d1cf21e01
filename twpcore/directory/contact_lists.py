"""Users' contact lists (user guide 1.4.2-1.4.4): own lists, other users' public lists, ordered contacts.

The rules of the lists part of ``twpcore.http.directories`` (which reads the request and
answers).  A user sees their own lists and the public lists of their company's users;
only the owner changes a list (any other answers 404).  Making a list public needs the
``AuthorizePublicList`` parameter (guide 9.1.8).  Each function runs in the store's
thread pool and receives what it needs.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from twpcore.parameters import ParameterRegistry
from twpcore.routing import ApiError
from twpcore.store import schema as t


def list_json(r: Any, user_id: int, count: int) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "public": r.public, "visible": r.visible, "position": r.position,
            "owner_id": r.user_id, "mine": r.user_id == user_id, "contacts": count}


def may_publish(conn: sa.Connection, parameters: ParameterRegistry, user_id: int) -> bool:
    """Whether the user may make a list public (parameter AuthorizePublicList, guide 9.1.8)."""
    return parameters.resolve_one(conn, user_id, "AuthorizePublicList").as_bool()


def _company_of(conn: sa.Connection, user_id: int) -> int:
    return int(conn.execute(sa.select(t.domains.c.company_id).join(t.users, t.users.c.domain_id == t.domains.c.id)
                            .where(t.users.c.id == user_id)).scalar_one())


def visible_lists(conn: sa.Connection, user_id: int) -> list[dict[str, Any]]:
    """The user's lists, then the public lists of their company's other users."""
    cl, items = t.contact_lists, t.contact_list_items
    company = _company_of(conn, user_id)
    counts = sa.select(items.c.list_id, sa.func.count().label("n")).group_by(items.c.list_id).subquery()
    rows = conn.execute(
        sa.select(cl, sa.func.coalesce(counts.c.n, 0).label("n")).outerjoin(counts, counts.c.list_id == cl.c.id)
        .join(t.users, t.users.c.id == cl.c.user_id).join(t.domains, t.domains.c.id == t.users.c.domain_id)
        .where(sa.or_(cl.c.user_id == user_id, sa.and_(cl.c.public.is_(True), t.domains.c.company_id == company)))
        .order_by(cl.c.user_id != user_id, cl.c.position, cl.c.id)).all()
    return [list_json(r, user_id, r.n) for r in rows]


def create(conn: sa.Connection, user_id: int, name: str, public: bool, visible: bool) -> dict[str, Any]:
    """A new list of the user, placed last."""
    cl = t.contact_lists
    position = (conn.execute(sa.select(sa.func.max(cl.c.position)).where(cl.c.user_id == user_id)).scalar_one() or 0) + 1
    try:
        with conn.begin_nested():
            ident = conn.execute(sa.insert(cl).values(user_id=user_id, name=name, public=public, visible=visible, position=position)
                                 .returning(cl.c.id)).scalar_one()
    except sa.exc.IntegrityError:
        raise ApiError(409, "conflict", f"you already have a list named {name!r}", "name") from None
    return list_json(conn.execute(sa.select(cl).where(cl.c.id == ident)).one(), user_id, 0)


def own_list(conn: sa.Connection, user_id: int, ident: int) -> Any:
    """One of the user's lists; 404 for any other."""
    row = conn.execute(sa.select(t.contact_lists).where(t.contact_lists.c.id == ident, t.contact_lists.c.user_id == user_id)).one_or_none()
    if row is None:
        raise ApiError(404, "not_found", f"list {ident} not found")
    return row


def update(conn: sa.Connection, user_id: int, ident: int, name: str | None, data: dict[str, Any]) -> dict[str, Any]:
    """Rename (``name``), publish, hide or move (``data``) one of the user's lists."""
    cl = t.contact_lists
    own_list(conn, user_id, ident)
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = name
    for key in ("public", "visible"):
        if key in data:
            values[key] = bool(data[key])
    if "position" in data:
        values["position"] = data["position"]
    if values:
        try:
            with conn.begin_nested():
                conn.execute(sa.update(cl).where(cl.c.id == ident).values(**values))
        except sa.exc.IntegrityError:
            raise ApiError(409, "conflict", f"you already have a list named {name!r}", "name") from None
    n = conn.execute(sa.select(sa.func.count()).select_from(t.contact_list_items).where(t.contact_list_items.c.list_id == ident)).scalar_one()
    return list_json(conn.execute(sa.select(cl).where(cl.c.id == ident)).one(), user_id, n)


def delete(conn: sa.Connection, user_id: int, ident: int) -> None:
    own_list(conn, user_id, ident)
    conn.execute(sa.delete(t.contact_lists).where(t.contact_lists.c.id == ident))


def visible_list(conn: sa.Connection, user_id: int, ident: int) -> tuple[Any, list[int]]:
    """A list the user may see (their own, or a public one of their company) and its contact ids in order; 404 for any other."""
    cl, items = t.contact_lists, t.contact_list_items
    row = conn.execute(sa.select(cl, t.domains.c.company_id).join(t.users, t.users.c.id == cl.c.user_id)
                       .join(t.domains, t.domains.c.id == t.users.c.domain_id).where(cl.c.id == ident)).one_or_none()
    mine = _company_of(conn, user_id)
    if row is None or (row.user_id != user_id and not (row.public and row.company_id == mine)):
        raise ApiError(404, "not_found", f"list {ident} not found")
    ids = conn.execute(sa.select(items.c.contact_id).where(items.c.list_id == ident).order_by(items.c.position)).scalars().all()
    return row, list(ids)


def set_contacts(conn: sa.Connection, ident: int, ids: list[int]) -> None:
    """Replace the list's contacts, in order (a repeated id counts once, at its first place)."""
    items = t.contact_list_items
    conn.execute(sa.delete(items).where(items.c.list_id == ident))
    seen: set[int] = set()
    rows = []
    for position, cid in enumerate(ids):
        if cid not in seen:
            seen.add(cid)
            rows.append({"list_id": ident, "contact_id": cid, "position": position})
    if rows:
        conn.execute(sa.insert(items), rows)


def order(conn: sa.Connection, user_id: int, ids: list[int]) -> None:
    """Put the user's lists in the order of ``ids``; 404 naming the first id that is not one of theirs."""
    cl = t.contact_lists
    mine = set(conn.execute(sa.select(cl.c.id).where(cl.c.user_id == user_id)).scalars())
    unknown = [i for i in ids if i not in mine]
    if unknown:
        raise ApiError(404, "not_found", f"list {unknown[0]} not found", "ids")
    for position, ident in enumerate(ids, 1):
        conn.execute(sa.update(cl).where(cl.c.id == ident).values(position=position))
