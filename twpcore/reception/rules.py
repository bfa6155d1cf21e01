"""Who sees whose calls and who may take them: the store queries of boss / secretary and interception (guide 9.1.7, 9.1.8).

- ``AuthorizeSupervisionInformation`` names a group (in the user's company): the user sees
  the calls of its members, the *bosses* (their number and, from directories, their name).
- ``AuthorizeShareRulesGroup`` names a group whose members' active forwarding the user sees.
- Caller names come from the directories granted to an intercom group: the one named by
  ``SupervisionInformationIGroup`` (set on the domain or as the default), else the intercom
  groups the user is granted that hold the boss's device.
- ``AuthorizeInterception`` lets a user pick up a call ringing on a device it watches: a
  device of an intercom group granted to it (guide 7.4.4) or a device of one of its bosses.

Each function runs in the store's thread pool.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from twpcore import rights
from twpcore.parameters import ParameterRegistry
from twpcore.store import schema as t

PARAMETERS = ("AuthorizeSupervisionInformation", "AuthorizeShareRulesGroup", "SupervisionInformationIGroup", "AuthorizeInterception")


def company_of_user(conn: sa.Connection, user_id: int) -> tuple[int, int] | None:
    """(domain id, company id) of a user."""
    row = conn.execute(sa.select(t.users.c.domain_id, t.domains.c.company_id).join(t.domains, t.domains.c.id == t.users.c.domain_id)
                       .where(t.users.c.id == user_id)).first()
    return (row.domain_id, row.company_id) if row else None


def members_of_named_group(conn: sa.Connection, company_id: int, name: str) -> list[int]:
    """The enabled users of the groups called ``name`` in the company (a group is per domain; the name may exist in several)."""
    if not name.strip():
        return []
    g, m = t.groups, t.group_members
    return list(conn.execute(
        sa.select(m.c.user_id).distinct().join(g, g.c.id == m.c.group_id).join(t.domains, t.domains.c.id == g.c.domain_id)
        .join(t.users, t.users.c.id == m.c.user_id)
        .where(t.domains.c.company_id == company_id, g.c.name == name.strip(), t.users.c.enabled.is_(True))).scalars())


def bosses(conn: sa.Connection, parameters: ParameterRegistry, user_id: int) -> dict[str, Any]:
    """The user's bosses: those whose calls it sees and those whose forwarding it sees, with their devices."""
    where = company_of_user(conn, user_id)
    values = parameters.resolve(conn, user_id, PARAMETERS)
    if where is None:
        return {"calls_group": "", "forwarding_group": "", "items": []}
    calls_group = values["AuthorizeSupervisionInformation"].value.strip()
    rules_group = values["AuthorizeShareRulesGroup"].value.strip()
    see_calls = set(members_of_named_group(conn, where[1], calls_group)) - {user_id}
    see_rules = set(members_of_named_group(conn, where[1], rules_group)) - {user_id}
    ids = sorted(see_calls | see_rules)
    u, d = t.users, t.devices
    people = {r.id: r for r in conn.execute(sa.select(u.c.id, u.c.login, u.c.first_name, u.c.last_name, u.c.domain_id)
                                             .where(u.c.id.in_(ids or [-1])))}
    devices: dict[int, list[tuple[int, int, str]]] = {}
    for r in conn.execute(sa.select(d.c.id, d.c.user_id, d.c.domain_id, d.c.number).where(d.c.user_id.in_(ids or [-1])).order_by(d.c.id)):
        devices.setdefault(r.user_id, []).append((r.id, r.domain_id, r.number))
    items = []
    for ident in ids:
        person = people[ident]
        items.append({"user_id": ident, "login": person.login, "first_name": person.first_name, "last_name": person.last_name,
                      "calls": ident in see_calls, "forwarding": ident in see_rules, "devices": devices.get(ident, [])})
    return {"calls_group": calls_group, "forwarding_group": rules_group, "items": items}


def name_directories(conn: sa.Connection, parameters: ParameterRegistry, user_id: int, device_id: int) -> list[int]:
    """The directories whose contacts name the callers of a boss's device for this user (guide 9.1.7, steps 2 and 6)."""
    where = company_of_user(conn, user_id)
    if where is None:
        return []
    named = parameters.resolve_one(conn, user_id, "SupervisionInformationIGroup").value.strip()
    ig, igd = t.intercom_groups, t.intercom_group_devices
    if named:
        groups = list(conn.execute(sa.select(ig.c.id).join(t.domains, t.domains.c.id == ig.c.domain_id)
                                   .where(ig.c.name == named, t.domains.c.company_id == where[1])).scalars())
    else:
        granted = set(rights.granted_ids(conn, user_id, "intercom_group"))
        holding = set(conn.execute(sa.select(igd.c.intercom_group_id).where(igd.c.device_id == device_id)).scalars())
        groups = sorted(granted & holding)
    if not groups:
        return []
    a = t.authorizations
    refs = conn.execute(sa.select(a.c.object_ref).where(a.c.object_type == "directory", a.c.subject_type == "intercom_group",
                                                       a.c.subject_id.in_(groups))).scalars()
    return sorted({int(ref.partition(":")[2]) for ref in refs if ref.startswith("directory:")})


def interception_denied(conn: sa.Connection, parameters: ParameterRegistry, user_id: int, domain_id: int, number: str) -> str | None:
    """Why this user may not intercept a call ringing at the device (None: it may)."""
    if not parameters.resolve_one(conn, user_id, "AuthorizeInterception").as_bool():
        return "intercepting calls is not allowed for you (parameter AuthorizeInterception, guide 9.1.8); ask an administrator"
    device = conn.execute(sa.select(t.devices.c.id, t.devices.c.user_id).where(t.devices.c.domain_id == domain_id,
                                                                               t.devices.c.number == number)).first()
    where = company_of_user(conn, user_id)
    if device is None or where is None:
        return f"device {number} is not one you watch"
    granted = rights.granted_ids(conn, user_id, "intercom_group")
    igd = t.intercom_group_devices
    if granted and conn.execute(sa.select(igd.c.device_id).where(igd.c.device_id == device.id, igd.c.intercom_group_id.in_(granted))
                                .limit(1)).first():
        return None
    boss_group = parameters.resolve_one(conn, user_id, "AuthorizeSupervisionInformation").value
    if device.user_id is not None and device.user_id in members_of_named_group(conn, where[1], boss_group):
        return None
    return (f"device {number} is not one you watch: it is in none of your intercom groups (guide 7.4.4) and not a device of your "
            "bosses (AuthorizeSupervisionInformation, guide 9.1.7)")


def supervisors(conn: sa.Connection, parameters: ParameterRegistry) -> dict[int, set[int]]:
    """Boss user id → the users who see its calls (``AuthorizeSupervisionInformation``), for live events.

    The parameter is resolved for every enabled user of a company that names at least one
    group; a server has a few thousand users, and this runs only after admin changes.
    """
    pv = t.parameter_values
    if conn.execute(sa.select(pv.c.id).where(pv.c.name == "AuthorizeSupervisionInformation", pv.c.value != "").limit(1)).first() is None:
        return {}
    out: dict[int, set[int]] = {}
    users = conn.execute(sa.select(t.users.c.id, t.domains.c.company_id).join(t.domains, t.domains.c.id == t.users.c.domain_id)
                         .where(t.users.c.enabled.is_(True))).all()
    for user_id, company_id in users:
        name = parameters.resolve_one(conn, user_id, "AuthorizeSupervisionInformation").value
        for boss in members_of_named_group(conn, company_id, name):
            if boss != user_id:
                out.setdefault(boss, set()).add(user_id)
    return out
