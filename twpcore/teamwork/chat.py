"""Instant messages between two users of one company (user guide 2.6); the SQL, run in the store's thread pool.

A message is kept until the recipient's client reads it (``read_at``) and then until the
retention (``Chat-NumberDaysOfStorage``) removes it, so a user who was offline finds it
at the next connection (``GET /api/v1/chat/unread``).  Two users may chat when one of them
can find the other: same domain, or a TWP users directory of the other's domain granted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from twpcore.parameters import ParameterRegistry
from twpcore.store import schema as t
from twpcore.teamwork.access import TeamworkError, colleague, display, require_switch, sees, user_row

MAX_TEXT = 4000
"""Characters of one message."""


def iso(value: dt.datetime | None) -> str | None:
    """A stored time as ISO 8601 in UTC (SQLite hands times back without their zone)."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).isoformat()


def check_text(text: str, field: str = "text") -> str:
    if not text.strip():
        raise TeamworkError(400, "bad_request", f"field {field}: the message is empty; write some text", field)
    if len(text) > MAX_TEXT:
        raise TeamworkError(400, "bad_request", f"field {field}: {len(text)} characters; a message holds at most {MAX_TEXT}, split it", field)
    return text


def me_row(conn: sa.Connection, user_id: int) -> Any:
    me = user_row(conn, user_id)
    if me is None or not me.enabled:
        raise TeamworkError(403, "forbidden", "your user account is disabled or deleted; log in again", None)
    return me


def _people(conn: sa.Connection, ids: set[int]) -> dict[int, dict[str, Any]]:
    u = t.users
    rows = conn.execute(sa.select(u.c.id, u.c.login, u.c.first_name, u.c.last_name).where(u.c.id.in_(sorted(ids) or [-1])))
    return {r.id: {"id": r.id, "login": r.login, "name": display(r)} for r in rows}


def as_json(row: Any, people: dict[int, dict[str, Any]]) -> dict[str, Any]:
    return {"id": row.id, "from": people.get(row.sender_id, {"id": row.sender_id}), "to": people.get(row.recipient_id, {"id": row.recipient_id}),
            "text": row.text, "sent_at": iso(row.created_at), "read_at": iso(row.read_at)}


def send(conn: sa.Connection, parameters: ParameterRegistry, user_id: int, to: int, text: str) -> tuple[dict[str, Any], int]:
    """Store a message; returns it and the company id (for the event)."""
    me = me_row(conn, user_id)
    require_switch(parameters, conn, me.id, "AuthorizeChat", "the instant messaging")
    check_text(text)
    if to == me.id:
        raise TeamworkError(400, "bad_request", "field to: that is you; name another user of your company", "to")
    other = colleague(conn, me, to, "to")
    if not (sees(conn, me, other) or sees(conn, other, me)):
        raise TeamworkError(403, "forbidden", f"user {other.login} is in domain {other.domain_name}, which no TWP users directory granted to you "
                            "shows; ask an administrator to grant you that domain's users directory", "to")
    now = dt.datetime.now(dt.UTC)
    m = t.chat_messages
    ident = conn.execute(sa.insert(m).values(company_id=me.company_id, sender_id=me.id, recipient_id=other.id, text=text, created_at=now)
                         .returning(m.c.id)).scalar_one()
    row = conn.execute(sa.select(m).where(m.c.id == ident)).one()
    return as_json(row, _people(conn, {me.id, other.id})), me.company_id


def _pair(me: int, other: int) -> sa.ColumnElement[bool]:
    m = t.chat_messages
    return sa.or_(sa.and_(m.c.sender_id == me, m.c.recipient_id == other), sa.and_(m.c.sender_id == other, m.c.recipient_id == me))


def history(conn: sa.Connection, user_id: int, other_id: int, before: int | None, limit: int) -> dict[str, Any]:
    """One conversation, newest first, ``limit`` at a time; ``next_before`` fetches the page after."""
    me = me_row(conn, user_id)
    other = user_row(conn, other_id)
    if other is None or other.company_id != me.company_id:
        raise TeamworkError(404, "not_found", f"user {other_id} does not exist in your company", "with")
    m = t.chat_messages
    sel = sa.select(m).where(_pair(me.id, other.id), m.c.company_id == me.company_id)
    if before is not None:
        sel = sel.where(m.c.id < before)
    rows = conn.execute(sel.order_by(m.c.id.desc()).limit(limit + 1)).all()
    people = _people(conn, {me.id, other.id})
    page = rows[:limit]
    return {"with": people.get(other.id), "items": [as_json(r, people) for r in page],
            "next_before": page[-1].id if len(rows) > limit else None}


def unread(conn: sa.Connection, user_id: int, limit: int) -> dict[str, Any]:
    """Messages received and not yet read, oldest first: what an offline user finds at the next connection."""
    me = me_row(conn, user_id)
    m = t.chat_messages
    where = (m.c.recipient_id == me.id, m.c.read_at.is_(None), m.c.company_id == me.company_id)
    total = conn.execute(sa.select(sa.func.count()).select_from(m).where(*where)).scalar_one()
    rows = conn.execute(sa.select(m).where(*where).order_by(m.c.id).limit(limit)).all()
    people = _people(conn, {me.id, *(r.sender_id for r in rows)})
    return {"count": total, "items": [as_json(r, people) for r in rows]}


def conversations(conn: sa.Connection, user_id: int) -> dict[str, Any]:
    """Each correspondent with the last message and the count of unread ones, most recent first."""
    me = me_row(conn, user_id)
    m = t.chat_messages
    peer = sa.case((m.c.sender_id == me.id, m.c.recipient_id), else_=m.c.sender_id).label("peer")
    mine = sa.or_(m.c.sender_id == me.id, m.c.recipient_id == me.id)
    last = conn.execute(sa.select(peer, sa.func.max(m.c.id).label("last_id")).where(mine, m.c.company_id == me.company_id).group_by(peer)).all()
    unread_by = {r[0]: r[1] for r in conn.execute(sa.select(m.c.sender_id, sa.func.count()).where(
        m.c.recipient_id == me.id, m.c.read_at.is_(None), m.c.company_id == me.company_id).group_by(m.c.sender_id))}
    rows = {r.id: r for r in conn.execute(sa.select(m).where(m.c.id.in_([r.last_id for r in last] or [-1])))}
    people = _people(conn, {me.id, *(r.peer for r in last)})
    items = [{"user": people.get(r.peer, {"id": r.peer}), "last": as_json(rows[r.last_id], people), "unread": unread_by.get(r.peer, 0)}
             for r in sorted(last, key=lambda r: -r.last_id)]
    return {"items": items}


def mark_read(conn: sa.Connection, user_id: int, other_id: int, up_to: int | None) -> dict[str, Any]:
    """Mark the messages of ``other_id`` to the user as read (up to the message ``up_to``); the read receipt for the sender."""
    me = me_row(conn, user_id)
    other = user_row(conn, other_id)
    if other is None or other.company_id != me.company_id:
        raise TeamworkError(404, "not_found", f"user {other_id} does not exist in your company", "with")
    m = t.chat_messages
    where = [m.c.sender_id == other.id, m.c.recipient_id == me.id, m.c.read_at.is_(None)]
    if up_to is not None:
        where.append(m.c.id <= up_to)
    ids = list(conn.execute(sa.select(m.c.id).where(*where)).scalars())
    now = dt.datetime.now(dt.UTC)
    if ids:
        conn.execute(sa.update(m).where(m.c.id.in_(ids)).values(read_at=now))
    return {"by": me.id, "with": other.id, "read": len(ids), "up_to": max(ids) if ids else None, "read_at": iso(now) if ids else None,
            "company_id": me.company_id}
