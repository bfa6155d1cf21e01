"""Intercom groups and phone queues users reach through their authorizations (guide 7.4.4, 7.4.5).

The rules of ``twpcore.http.rights_objects`` (which reads the request and answers): a
granted user (or an administrator of the company) sees the telephony presence of an
intercom group's devices, and the calls waiting at a phone queue's number.  Another
company's object is absent (404); one of the user's company that is not granted answers
403 naming the authorization to ask for.  The queries run in the store's thread pool; the
presence and calls come from the telephony service, passed in.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from twpcore import rights
from twpcore.auth import Principal
from twpcore.routing import ApiError
from twpcore.store import schema as t
from twpcore.telephony.service import TelephonyService


def _visible(conn: sa.Connection, who: Principal, table: sa.Table, what: str, ident: int, *cols: sa.Column[Any]) -> sa.Row[Any]:
    row = rights.visible_row(conn, who, table, ident, *cols)
    if row is None:
        raise ApiError(404, "not_found", f"{what} {ident} not found")
    return row


def _denied(what: str, guide: str, ask: str) -> ApiError:
    return ApiError(403, "not_granted", rights.not_granted_text(what, guide, ask))


def device_presence(tel: TelephonyService, domain_id: int, number: str) -> dict[str, Any]:
    """What the telephony service knows of a device: presence, do-not-disturb, whether it is supervised."""
    dev = tel.devices.get((domain_id, number))
    link = tel.links.get(dev.link) if dev is not None and dev.link else None
    supervised = bool(link and link.connected and number in link.monitored)
    model = tel.models.get(domain_id)
    return {"presence": model.presence.get(number, "idle") if model and supervised else "unknown",
            "do_not_disturb": bool(model and model.dnd.get(number, False)), "supervised": supervised,
            "reason": None if supervised else ((dev.reason if dev else None) or (link.last_error if link else None)
                                               or "no PBX link supervises this device's domain")}


def queue_calls(tel: TelephonyService, domain_id: int, number: str | None) -> dict[str, Any]:
    """Calls at the queue's number, longest waiting first (user guide 4.2), from the call model."""
    if not number:
        return {"supervised": False, "reason": "the phone queue has no number; give it the number of its device (guide 9.2.2)", "items": []}
    state = device_presence(tel, domain_id, number)
    if (domain_id, number) not in tel.devices:
        state["reason"] = f"no supervised device {number} in the queue's domain; create a device with the queue's number (guide 9.2.2)"
    model = tel.models.get(domain_id)
    calls = model.calls_of(number) if model is not None and state["supervised"] else []
    moment = time.time()
    items = [{"call_id": c.call_id, "state": c.state, "caller": c.remote, "started_at": c.started_at,
              "waiting": round(max(0.0, moment - c.started_at), 1)} for c in calls]
    return {"supervised": state["supervised"], "reason": state["reason"], "items": items}


def my_intercom_groups(conn: sa.Connection, who: Principal) -> list[dict[str, Any]]:
    """The intercom groups granted to the user, with their device counts."""
    ids = rights.granted_ids(conn, who.id, "intercom_group")
    ig, igd = t.intercom_groups, t.intercom_group_devices
    count = sa.select(sa.func.count()).where(igd.c.intercom_group_id == ig.c.id).scalar_subquery()
    rows = conn.execute(sa.select(ig.c.id, ig.c.name, ig.c.domain_id, t.domains.c.name.label("domain"), count.label("devices"))
                        .join(t.domains, t.domains.c.id == ig.c.domain_id)
                        .where(ig.c.id.in_(ids or [-1]), t.domains.c.company_id.in_(sorted(who.companies) or [-1]))
                        .order_by(ig.c.name, ig.c.id)).all()
    return [dict(r._mapping) for r in rows]


def intercom_group_devices(conn: sa.Connection, who: Principal, ident: int) -> tuple[Any, list[Any]]:
    """The intercom group and its devices (with their users' names), once ``who`` may see them."""
    group = _visible(conn, who, t.intercom_groups, "intercom group", ident, t.intercom_groups.c.name)
    if not who.is_admin and not rights.user_can(conn, who.id, "intercom_group", f"intercom_group:{ident}"):
        raise _denied(f"intercom group {group.name}", "7.4.4", "an intercom group authorization for you or one of your groups")
    d, u = t.devices, t.users
    devices = conn.execute(sa.select(d.c.id, d.c.number, d.c.domain_id, d.c.user_id, u.c.first_name, u.c.last_name)
                           .join(t.intercom_group_devices, t.intercom_group_devices.c.device_id == d.c.id)
                           .outerjoin(u, u.c.id == d.c.user_id)
                           .where(t.intercom_group_devices.c.intercom_group_id == ident).order_by(d.c.number, d.c.id)).all()
    return group, list(devices)


def intercom_presence(group: Any, devices: list[Any], tel: TelephonyService) -> dict[str, Any]:
    """The answer of an intercom group's presence: each device with what the telephony service knows of it."""
    items = [{"device": r.number, "domain_id": r.domain_id, "user_id": r.user_id, "first_name": r.first_name, "last_name": r.last_name,
              **device_presence(tel, r.domain_id, r.number)} for r in devices]
    return {"id": group.id, "name": group.name, "domain_id": group.domain_id, "items": items}


def my_phone_queues(conn: sa.Connection, who: Principal) -> list[Any]:
    """The phone queues granted to the user."""
    ids = rights.granted_ids(conn, who.id, "phone_queue")
    q = t.phone_queues
    return list(conn.execute(sa.select(q.c.id, q.c.name, q.c.number, q.c.domain_id).join(t.domains, t.domains.c.id == q.c.domain_id)
                             .where(q.c.id.in_(ids or [-1]), t.domains.c.company_id.in_(sorted(who.companies) or [-1]))
                             .order_by(q.c.name, q.c.id)).all())


def queue_summaries(rows: list[Any], tel: TelephonyService) -> list[dict[str, Any]]:
    """Each granted queue with whether it is supervised and how many calls wait."""
    items = []
    for r in rows:
        calls = queue_calls(tel, r.domain_id, r.number)
        items.append({"id": r.id, "name": r.name, "number": r.number, "domain_id": r.domain_id, "supervised": calls["supervised"],
                      "waiting": len(calls["items"])})
    return items


def phone_queue(conn: sa.Connection, who: Principal, ident: int) -> Any:
    """The phone queue, once ``who`` may see its calls."""
    queue = _visible(conn, who, t.phone_queues, "phone queue", ident, t.phone_queues.c.name, t.phone_queues.c.number)
    if not who.is_admin and not rights.user_can(conn, who.id, "phone_queue", f"phone_queue:{ident}"):
        raise _denied(f"phone queue {queue.name}", "7.4.5", "a phone queue authorization for you or one of your groups")
    return queue
