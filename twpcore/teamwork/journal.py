"""The event journal (user guide 4.1): personal notes, custom and general notifications, calls with a contact.

One table, ``journal_notes``, with an ``audience``:

- ``me``: a personal note ("Moi uniquement", 4.1.4) on a contact: a TWP user, a
  directory contact, a number, or one call of the author's call log (a call comment);
- ``user``: a custom notification (4.1.2) sent to one user of the company;
- ``all``: a general notification (4.1.3) sent to every user of the company.

The journal of a contact merges the author's notes on it, the notifications exchanged
with it (when it is a user) and the author's calls with its numbers, newest first.  An
author may delete their own entries; a notification received cannot be deleted (4.1.2).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from twpcore import rights
from twpcore.dialing import DialingPlans
from twpcore.parameters import ParameterRegistry
from twpcore.store import schema as t
from twpcore.teamwork.access import TeamworkError, colleague, require_switch, sees
from twpcore.teamwork.chat import _people, check_text, iso, me_row

AUDIENCES = ("me", "user", "all")
SUBJECTS = ("user_id", "contact_id", "number", "call_log_id")


def _keys(conn: sa.Connection, dialing_plans: DialingPlans, domain_id: int, numbers: list[str]) -> set[str]:
    keys: set[str] = set()
    for number in numbers:
        if number:
            keys.add(number)
            keys.update(dialing_plans.get(conn, domain_id).canonical_keys(number))
    return keys


def _contact(conn: sa.Connection, me: Any, contact_id: int) -> Any:
    """A directory contact the user may read: their own private one, or one of a directory granted to them, in their company."""
    c, d = t.contacts, t.directories
    row = conn.execute(sa.select(c.c.id, c.c.owner_id, c.c.data, c.c.directory_id, t.domains.c.company_id)
                       .join(d, d.c.id == c.c.directory_id).join(t.domains, t.domains.c.id == d.c.domain_id)
                       .where(c.c.id == contact_id, c.c.pending.is_(None))).one_or_none()
    if row is None or row.company_id != me.company_id or (row.owner_id is not None and row.owner_id != me.id):
        raise TeamworkError(404, "not_found", f"contact {contact_id} does not exist in the directories you may search", "contact_id")
    if row.owner_id is None and not rights.user_can(conn, me.id, "directory", f"directory:{row.directory_id}"):
        raise TeamworkError(404, "not_found", f"contact {contact_id} does not exist in the directories you may search", "contact_id")
    return row


def _contact_numbers(row: Any) -> list[str]:
    return [n["number"] for n in (row.data or {}).get("numbers", []) if not n.get("redlisted")]


def _user_numbers(conn: sa.Connection, user_id: int) -> list[str]:
    return list(conn.execute(sa.select(t.devices.c.number).where(t.devices.c.user_id == user_id)).scalars())


def _call_log(conn: sa.Connection, me: Any, ident: int) -> Any:
    c = t.call_logs
    row = conn.execute(sa.select(c).where(c.c.id == ident, c.c.user_id == me.id)).one_or_none()
    if row is None:
        raise TeamworkError(404, "not_found", f"call {ident} is not in your call log", "call_log_id")
    return row


def post(conn: sa.Connection, parameters: ParameterRegistry, dialing_plans: DialingPlans, user_id: int,
         body: dict[str, Any]) -> tuple[dict[str, Any], int, frozenset[int]]:
    """Store a note or notification; returns it, the company id and the users to tell (``notification.received``)."""
    me = me_row(conn, user_id)
    text = check_text(body["text"])
    audience = body.get("audience", "me")
    given = [k for k in SUBJECTS if body.get(k) is not None]
    values: dict[str, Any] = {"company_id": me.company_id, "author_id": me.id, "audience": audience, "text": text,
                              "created_at": dt.datetime.now(dt.UTC)}
    recipients: frozenset[int] = frozenset()
    if audience == "me":
        if len(given) != 1:
            raise TeamworkError(400, "bad_request", "a personal note is about one contact: give exactly one of user_id, contact_id, number, "
                                f"call_log_id (got {', '.join(given) or 'none'})", given[1] if len(given) > 1 else "user_id")
        kind = given[0]
        if kind == "user_id":
            values["user_id"] = colleague(conn, me, int(body["user_id"]), "user_id").id
        elif kind == "contact_id":
            values["contact_id"] = _contact(conn, me, int(body["contact_id"])).id
        elif kind == "number":
            number = str(body["number"]).strip()
            if not number or len(number) > 64:
                raise TeamworkError(400, "bad_request", f'field number: "{number[:70]}" is not a phone number; give 1 to 64 characters', "number")
            values["number"] = number
            values["number_keys"] = "|" + "|".join(sorted(_keys(conn, dialing_plans, me.domain_id, [number])))[:396] + "|"
        else:
            call = _call_log(conn, me, int(body["call_log_id"]))
            values["call_log_id"] = call.id
    elif audience == "user":
        require_switch(parameters, conn, me.id, "AuthorizeNote", "posting notifications")
        if given != ["user_id"]:
            raise TeamworkError(400, "bad_request", "a custom notification goes to one user: give user_id only", "user_id")
        if int(body["user_id"]) == me.id:
            raise TeamworkError(400, "bad_request", "field user_id: that is you; for a note to yourself use audience me", "user_id")
        other = colleague(conn, me, int(body["user_id"]), "user_id")
        if not (sees(conn, me, other) or sees(conn, other, me)):
            raise TeamworkError(403, "forbidden", f"user {other.login} is in a domain no TWP users directory granted to you shows; "
                                "ask an administrator to grant it", "user_id")
        values["user_id"] = other.id
        recipients = frozenset({other.id})
    elif audience == "all":
        require_switch(parameters, conn, me.id, "AuthorizeNote", "posting notifications")
        if given:
            raise TeamworkError(400, "bad_request", f"a general notification goes to every user of your company: remove {given[0]}", given[0])
        u = t.users
        recipients = frozenset(conn.execute(sa.select(u.c.id).join(t.domains, t.domains.c.id == u.c.domain_id)
                                            .where(t.domains.c.company_id == me.company_id, u.c.enabled.is_(True), u.c.id != me.id)).scalars())
    else:
        raise TeamworkError(400, "bad_request", f'field audience: expected one of {", ".join(AUDIENCES)}, got "{audience}"', "audience")
    n = t.journal_notes
    ident = conn.execute(sa.insert(n).values(**values).returning(n.c.id)).scalar_one()
    row = conn.execute(sa.select(n).where(n.c.id == ident)).one()
    return entry(row, _people(conn, {me.id, *([row.user_id] if row.user_id else [])})), me.company_id, recipients


def entry(row: Any, people: dict[int, dict[str, Any]]) -> dict[str, Any]:
    kind = {"me": "note", "user": "notification", "all": "general"}[row.audience]
    out: dict[str, Any] = {"kind": kind, "id": row.id, "at": iso(row.created_at), "audience": row.audience, "text": row.text,
                           "author": people.get(row.author_id, {"id": row.author_id})}
    for key in ("user_id", "contact_id", "number", "call_log_id"):
        if getattr(row, key) is not None:
            out[key] = getattr(row, key)
    if row.user_id is not None:
        out["user"] = people.get(row.user_id, {"id": row.user_id})
    return out


def delete(conn: sa.Connection, user_id: int, ident: int) -> None:
    me = me_row(conn, user_id)
    n = t.journal_notes
    row = conn.execute(sa.select(n).where(n.c.id == ident, n.c.company_id == me.company_id)).one_or_none()
    if row is not None and row.author_id != me.id and (row.user_id == me.id or row.audience == "all"):
        raise TeamworkError(403, "forbidden", f"notification {ident} was sent to you by another user; a notification received cannot be deleted "
                            "(user guide 4.1.2)", None)
    if row is None or row.author_id != me.id:
        raise TeamworkError(404, "not_found", f"journal entry {ident} does not exist among yours", None)
    conn.execute(sa.delete(n).where(n.c.id == ident))


def received(conn: sa.Connection, user_id: int, before: int | None, limit: int) -> dict[str, Any]:
    """Notifications other users sent to the user, custom and general, newest first (user guide 4.1.1)."""
    me = me_row(conn, user_id)
    n = t.journal_notes
    sel = sa.select(n).where(n.c.company_id == me.company_id, n.c.author_id != me.id,
                             sa.or_(sa.and_(n.c.audience == "user", n.c.user_id == me.id), n.c.audience == "all"))
    if before is not None:
        sel = sel.where(n.c.id < before)
    rows = conn.execute(sel.order_by(n.c.id.desc()).limit(limit + 1)).all()
    page = rows[:limit]
    people = _people(conn, {me.id, *(r.author_id for r in page)})
    return {"items": [entry(r, people) for r in page], "next_before": page[-1].id if len(rows) > limit else None}


def sent_general(conn: sa.Connection, user_id: int, limit: int) -> dict[str, Any]:
    """The general journal (4.1.3): general notifications of the company, the user's included, newest first."""
    me = me_row(conn, user_id)
    n = t.journal_notes
    rows = conn.execute(sa.select(n).where(n.c.company_id == me.company_id, n.c.audience == "all").order_by(n.c.id.desc()).limit(limit)).all()
    people = _people(conn, {r.author_id for r in rows})
    return {"items": [entry(r, people) for r in rows]}


def journal(conn: sa.Connection, dialing_plans: DialingPlans, user_id: int, subject: dict[str, Any], calls: bool, limit: int) -> dict[str, Any]:
    """The event journal of one contact (or of one call) for the user: notes, notifications and calls, newest first."""
    me = me_row(conn, user_id)
    n, c = t.journal_notes, t.call_logs
    given = [k for k in SUBJECTS if subject.get(k) is not None]
    if len(given) != 1:
        raise TeamworkError(400, "bad_request", "the journal is that of one contact: give exactly one of user_id, contact_id, number, call_log_id",
                            given[1] if len(given) > 1 else "user_id")
    kind = given[0]
    mine = n.c.author_id == me.id
    about: sa.ColumnElement[bool]
    numbers: list[str] = []
    call_filter: sa.ColumnElement[bool] | None = None
    shown: dict[str, Any] = {}
    if kind == "user_id":
        other = colleague(conn, me, int(subject["user_id"]), "user_id") if int(subject["user_id"]) != me.id else me
        about = sa.or_(sa.and_(mine, n.c.user_id == other.id),
                       sa.and_(n.c.author_id == other.id, n.c.audience == "user", n.c.user_id == me.id))
        numbers = _user_numbers(conn, other.id)
        shown = {"user": _people(conn, {other.id}).get(other.id)}
    elif kind == "contact_id":
        contact = _contact(conn, me, int(subject["contact_id"]))
        numbers = _contact_numbers(contact)
        about = sa.and_(mine, n.c.contact_id == contact.id)
        shown = {"contact_id": contact.id, "numbers": numbers}
    elif kind == "number":
        numbers = [str(subject["number"])]
        keys = _keys(conn, dialing_plans, me.domain_id, numbers)
        about = sa.and_(mine, sa.or_(*(n.c.number_keys.contains(f"|{k}|") for k in sorted(keys))))
        shown = {"number": numbers[0]}
    else:
        call = _call_log(conn, me, int(subject["call_log_id"]))
        about = sa.and_(mine, n.c.call_log_id == call.id)
        call_filter = c.c.id == call.id
        shown = {"call_log_id": call.id}
    if kind in ("user_id", "contact_id") or (kind == "number"):
        keys = _keys(conn, dialing_plans, me.domain_id, numbers)
        if kind != "number":
            about = sa.or_(about, sa.and_(mine, sa.or_(sa.false(), *(n.c.number_keys.contains(f"|{k}|") for k in sorted(keys)))))
        call_filter = sa.or_(c.c.remote_number.in_(sorted(keys) or [""]), c.c.remote_canonical.in_(sorted(keys) or [""])) if keys else None
    notes = conn.execute(sa.select(n).where(n.c.company_id == me.company_id, about).order_by(n.c.id.desc()).limit(limit)).all()
    people = _people(conn, {me.id, *(r.author_id for r in notes), *(r.user_id for r in notes if r.user_id)})
    items = [entry(r, people) for r in notes]
    if calls and call_filter is not None:
        sel = sa.select(c).where(c.c.user_id == me.id, c.c.in_log.is_(True), call_filter).order_by(c.c.started_at.desc()).limit(limit)
        for r in conn.execute(sel):
            items.append({"kind": "call", "id": r.id, "at": iso(r.started_at), "direction": r.direction, "outcome": r.outcome,
                          "number": r.remote_number, "name": r.remote_name, "duration": r.duration, "device": r.device})
    items.sort(key=lambda e: e["at"] or "", reverse=True)
    return {**shown, "items": items[:limit]}
