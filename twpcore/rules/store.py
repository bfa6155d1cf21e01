"""Profiles and forward rules in the store, with the switches that guard them (admin guide 9.1.8, 9.6.2).

Blocking functions, run through ``Store.run``.  A user changes their own profiles and rules
within what the parameters allow; an administrator imposes rules on a user (``imposed``),
which the user reads but cannot change.  Every refusal names the parameter to change.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from twpcore import rights
from twpcore.parameters import ParameterRegistry
from twpcore.rules.model import FORWARDS, KINDS, NUMBER, PRESENCE_STATES, RuleError, check_conditions
from twpcore.store import schema as t

DEVICE_KINDS = ("office", "mobile", "home")
MAX_PROFILES = 20
MAX_RULES = 200
TYPE_SWITCH = {"immediate": "AuthorizedForwardTypeImmediate", "busy": "AuthorizedForwardTypeBusy", "no_answer": "AuthorizedForwardTypeNoAnswer"}
ORIGIN_SWITCH = {"all": "AuthorizedForwardOriginAll", "internal": "AuthorizedForwardOriginInternal",
                 "external": "AuthorizedForwardOriginExternal"}
PRESENCE_SWITCH = {"online": "AuthorizedForwardPresenceOnline", "busy": "AuthorizedForwardPresenceBusy",
                   "absent": "AuthorizedForwardPresenceAsbsent", "offline": "AuthorizedForwardPresenceOffline",
                   "calendar": "AuthorizedForwardPresenceCalendar"}
"""``Asbsent`` is the parameter's name as the guide spells it (9.1.8)."""
DEFAULT_PROFILE = "Office"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def refuse(parameter: str, what: str) -> RuleError:
    return RuleError(f"{what}: parameter {parameter} is No for you (admin guide 9.1.8, 9.6.2); ask an administrator to set it to Yes",
                     parameter, status=403)


def switches(parameters: ParameterRegistry, conn: sa.Connection, user_id: int, names: list[str]) -> dict[str, bool]:
    return {n: r.as_bool() for n, r in parameters.resolve(conn, user_id, names).items()}


# -- profiles -------------------------------------------------------------------------------------

def profile_json(r: Any) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "device": r.device, "device_kind": r.device_kind, "active": r.active,
            "schedule": r.schedule, "presence": r.presence}


def user_devices(conn: sa.Connection, user_id: int) -> list[str]:
    return list(conn.execute(sa.select(t.devices.c.number).where(t.devices.c.user_id == user_id).order_by(t.devices.c.id)).scalars())


def ensure_profile(conn: sa.Connection, user_id: int) -> Any:
    """The user's active profile; a first one (``Office``, on their first device) is made when they have none."""
    p = t.profiles.c
    row = conn.execute(sa.select(t.profiles).where(p.user_id == user_id, p.active.is_(True))).first()
    if row is not None:
        return row
    row = conn.execute(sa.select(t.profiles).where(p.user_id == user_id).order_by(p.id).limit(1)).first()
    if row is not None:
        conn.execute(sa.update(t.profiles).where(p.id == row.id).values(active=True))
        return conn.execute(sa.select(t.profiles).where(p.id == row.id)).one()
    devices = user_devices(conn, user_id)
    ident = conn.execute(sa.insert(t.profiles).values(user_id=user_id, name=DEFAULT_PROFILE, device=devices[0] if devices else "",
                                                      device_kind="office", active=True).returning(p.id)).scalar_one()
    return conn.execute(sa.select(t.profiles).where(p.id == ident)).one()


def list_profiles(conn: sa.Connection, user_id: int) -> list[dict[str, Any]]:
    ensure_profile(conn, user_id)
    rows = conn.execute(sa.select(t.profiles).where(t.profiles.c.user_id == user_id).order_by(t.profiles.c.id)).all()
    return [profile_json(r) for r in rows]


def check_schedule(value: Any) -> dict[str, Any] | None:
    """A profile's switching rule: ``{"days": [...], "from": "08:00", "to": "18:00", "timezone": "Europe/Paris"}`` (days optional)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not {"from", "to"} <= set(value) or set(value) - {"days", "from", "to", "timezone"}:
        raise RuleError('schedule: expected {"days": ["mon", ...], "from": "08:00", "to": "18:00", "timezone": "Europe/Paris"}', "schedule")
    checked = check_conditions({"days": value.get("days"), "hours": {"from": value["from"], "to": value["to"]},
                                "timezone": value.get("timezone")})
    return {"days": checked.get("days", []), "from": value["from"], "to": value["to"], "timezone": checked.get("timezone", "UTC")}


def profile_values(conn: sa.Connection, parameters: ParameterRegistry, user_id: int, data: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "name" in data:
        name = data["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise RuleError("name: a non-empty name of at most 100 characters is required", "name")
        values["name"] = name.strip()
    if "device" in data:
        device = data["device"]
        if not isinstance(device, str) or not NUMBER.match(device.replace(" ", "")):
            raise RuleError(f"device: expected a phone number such as 0612345678, got {str(device)[:40]!r}", "device")
        device = device.replace(" ", "")
        may_add = switches(parameters, conn, user_id, ["AuthorizedCurrentDevice"])["AuthorizedCurrentDevice"]
        if device not in user_devices(conn, user_id) and not may_add:
            raise refuse("AuthorizedCurrentDevice", f"device {device} is not one of your devices and you may not add a current device")
        values["device"] = device
    if "device_kind" in data:
        if data["device_kind"] not in DEVICE_KINDS:
            raise RuleError(f"device_kind: expected one of {', '.join(DEVICE_KINDS)}, got {str(data['device_kind'])[:20]!r}", "device_kind")
        values["device_kind"] = data["device_kind"]
    if "schedule" in data:
        values["schedule"] = check_schedule(data["schedule"])
    if "presence" in data:
        if data["presence"] is not None and data["presence"] not in PRESENCE_STATES:
            raise RuleError(f"presence: expected one of {', '.join(PRESENCE_STATES)} or null", "presence")
        values["presence"] = data["presence"]
    return values


def create_profile(conn: sa.Connection, parameters: ParameterRegistry, user_id: int, data: dict[str, Any]) -> dict[str, Any]:
    if not switches(parameters, conn, user_id, ["AuthorizedCreateProfil"])["AuthorizedCreateProfil"]:
        raise refuse("AuthorizedCreateProfil", "creating a profile")
    ensure_profile(conn, user_id)
    count = conn.execute(sa.select(sa.func.count()).select_from(t.profiles).where(t.profiles.c.user_id == user_id)).scalar_one()
    if count >= MAX_PROFILES:
        raise RuleError(f"you have {count} profiles, the most one user keeps; delete one first", "name", status=409)
    values = profile_values(conn, parameters, user_id, data)
    if "name" not in values:
        raise RuleError("name is required", "name")
    values.setdefault("device", (user_devices(conn, user_id) or [""])[0])
    _unique_name(conn, user_id, values["name"], None)
    ident = conn.execute(sa.insert(t.profiles).values(user_id=user_id, active=False, **values).returning(t.profiles.c.id)).scalar_one()
    return profile_json(conn.execute(sa.select(t.profiles).where(t.profiles.c.id == ident)).one())


def _unique_name(conn: sa.Connection, user_id: int, name: str, ident: int | None) -> None:
    p = t.profiles.c
    clash = conn.execute(sa.select(p.id).where(p.user_id == user_id, p.name == name, p.id != (ident or 0))).first()
    if clash:
        raise RuleError(f"you already have a profile named {name!r}; choose another name", "name", status=409)


def own_profile(conn: sa.Connection, user_id: int, ident: int) -> Any:
    row = conn.execute(sa.select(t.profiles).where(t.profiles.c.id == ident, t.profiles.c.user_id == user_id)).first()
    if row is None:
        raise RuleError(f"profile {ident} not found among your profiles", "id", status=404)
    return row


def update_profile(conn: sa.Connection, parameters: ParameterRegistry, user_id: int, ident: int, data: dict[str, Any]) -> dict[str, Any]:
    own_profile(conn, user_id, ident)
    values = profile_values(conn, parameters, user_id, data)
    if "name" in values:
        _unique_name(conn, user_id, values["name"], ident)
    if values:
        conn.execute(sa.update(t.profiles).where(t.profiles.c.id == ident).values(**values))
    return profile_json(own_profile(conn, user_id, ident))


def delete_profile(conn: sa.Connection, user_id: int, ident: int) -> None:
    row = own_profile(conn, user_id, ident)
    if row.active:
        raise RuleError(f"profile {row.name!r} is the active one; activate another profile before deleting it", "id", status=409)
    conn.execute(sa.delete(t.profiles).where(t.profiles.c.id == ident))


def activate_profile(conn: sa.Connection, user_id: int, ident: int) -> dict[str, Any]:
    row = own_profile(conn, user_id, ident)
    conn.execute(sa.update(t.profiles).where(t.profiles.c.user_id == user_id, t.profiles.c.id != ident).values(active=False))
    conn.execute(sa.update(t.profiles).where(t.profiles.c.id == ident).values(active=True))
    del row
    return profile_json(own_profile(conn, user_id, ident))


def managed_user(conn: sa.Connection, who: Any, ident: int) -> None:
    """404 unless user ``ident`` is in a company the administrator ``who`` manages."""
    if rights.visible_row(conn, who, t.users, ident) is None:
        raise RuleError(f"user {ident} not found", "id", status=404)


# -- rules ------------------------------------------------------------------------------------------

def rule_json(r: Any) -> dict[str, Any]:
    return {"id": r.id, "profile_id": r.profile_id, "name": r.name, "kind": r.kind, "forward": r.forward, "target": r.target or None,
            "active": r.active, "imposed": r.imposed, "position": r.position, "conditions": r.conditions or {}}


def rules_in_effect(conn: sa.Connection, user_id: int) -> list[dict[str, Any]]:
    """The user's rules that apply now: imposed active rules, then the active rules of the active profile, in order."""
    r, p = t.forward_rules.c, t.profiles.c
    active_profile = sa.select(p.id).where(p.user_id == user_id, p.active.is_(True)).scalar_subquery()
    rows = conn.execute(sa.select(t.forward_rules).where(
        r.user_id == user_id, r.active.is_(True), sa.or_(r.imposed.is_(True), r.profile_id == active_profile))
        .order_by(r.imposed.desc(), r.position, r.id)).all()
    return [dict(x._mapping) for x in rows]


def list_members(conn: sa.Connection, list_ids: set[int]) -> dict[int, list[int]]:
    if not list_ids:
        return {}
    out: dict[int, list[int]] = {}
    for lst, contact in conn.execute(sa.select(t.contact_list_items.c.list_id, t.contact_list_items.c.contact_id)
                                     .where(t.contact_list_items.c.list_id.in_(sorted(list_ids)))):
        out.setdefault(lst, []).append(contact)
    return out


def list_rules(conn: sa.Connection, user_id: int, profile_id: int | None = None) -> list[dict[str, Any]]:
    r = t.forward_rules.c
    sel = sa.select(t.forward_rules).where(r.user_id == user_id)
    if profile_id is not None:
        sel = sel.where(sa.or_(r.profile_id == profile_id, r.imposed.is_(True)))
    return [rule_json(x) for x in conn.execute(sel.order_by(r.imposed.desc(), r.position, r.id))]


def _check_lists(conn: sa.Connection, user_id: int, conditions: dict[str, Any]) -> None:
    for key in ("include", "exclude"):
        for lst in conditions.get(key, {}).get("lists", []):
            row = conn.execute(sa.select(t.contact_lists.c.user_id, t.contact_lists.c.public).where(t.contact_lists.c.id == lst)).first()
            if row is None or not (row.user_id == user_id or row.public):
                raise RuleError(f"conditions.{key}.lists: contact list {lst} is not one of your lists nor a public one", "conditions", 404)


def rule_values(data: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
    """The columns of a rule after ``data`` is applied to ``existing`` (or a new rule), checked on their own."""
    merged = {**(existing or {"kind": "simple", "forward": "immediate", "target": "", "active": False, "position": 0, "conditions": {}}),
              **{k: v for k, v in data.items() if k in ("name", "kind", "forward", "target", "active", "position", "conditions")}}
    name = merged.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise RuleError("name: a non-empty name of at most 100 characters is required", "name")
    if merged["kind"] not in KINDS:
        raise RuleError(f"kind: expected simple or advanced, got {str(merged['kind'])[:20]!r}", "kind")
    if merged["forward"] not in FORWARDS:
        raise RuleError(f"forward: expected one of {', '.join(FORWARDS)}, got {str(merged['forward'])[:20]!r}", "forward")
    if merged["forward"] == "dnd" and merged["kind"] != "simple":
        raise RuleError("forward: dnd switches do-not-disturb in the PBX, so only a simple rule takes it; use kind simple", "forward")
    target = merged.get("target") or ""
    if not isinstance(target, str):
        raise RuleError("target: expected the number to forward to, as a string", "target")
    target = target.replace(" ", "")
    if merged["forward"] != "dnd" and not NUMBER.match(target):
        raise RuleError(f"target: expected the number to forward to, such as 5020, got {target[:40]!r}", "target")
    if not isinstance(merged["active"], bool):
        raise RuleError("active: true or false", "active")
    if not isinstance(merged["position"], int) or isinstance(merged["position"], bool) or not 0 <= merged["position"] <= 10000:
        raise RuleError("position: a whole number 0-10000 (lower first)", "position")
    conditions = check_conditions(merged.get("conditions")) if merged["kind"] == "advanced" else {}
    if merged["kind"] == "simple" and data.get("conditions"):
        raise RuleError("conditions: a simple rule is applied in the PBX and takes no condition; use kind advanced", "conditions")
    return {"name": name.strip(), "kind": merged["kind"], "forward": merged["forward"], "target": target if merged["forward"] != "dnd" else "",
            "active": merged["active"], "position": merged["position"], "conditions": conditions}


def check_user_may(conn: sa.Connection, parameters: ParameterRegistry, user_id: int, values: dict[str, Any] | None, creating: bool) -> None:
    """The switches of guide 9.1.8 and 9.6.2 for a change by the user (``values`` None: a deletion)."""
    names = ["AuthorizeSimpleRules", "CreateOnlyRUL", "IsUserAuthorizedToCreateWithAdminRules", *TYPE_SWITCH.values(),
             *ORIGIN_SWITCH.values(), *PRESENCE_SWITCH.values()]
    sw = switches(parameters, conn, user_id, names)
    if not sw["AuthorizeSimpleRules"]:
        raise refuse("AuthorizeSimpleRules", "changing forward rules")
    if creating and not sw["IsUserAuthorizedToCreateWithAdminRules"]:
        imposed = conn.execute(sa.select(t.forward_rules.c.id).where(t.forward_rules.c.user_id == user_id,
                                                                      t.forward_rules.c.imposed.is_(True)).limit(1)).first()
        if imposed:
            raise refuse("IsUserAuthorizedToCreateWithAdminRules", "creating a rule while an administrator imposes rules on you")
    if values is None:
        return
    if values["kind"] == "simple" and sw["CreateOnlyRUL"]:
        raise RuleError("kind: simple rules are off (parameter CreateOnlyRUL is Yes: nothing is forwarded in the PBX); "
                        "use an advanced rule, or ask an administrator to set CreateOnlyRUL to No", "kind", status=403)
    if values["kind"] == "advanced" and not rights.user_can(conn, user_id, "application", "Rules"):
        raise RuleError("kind: advanced rules need the Rules application (guide 7.4.1, 9.6), which you do not hold; "
                        "ask an administrator to grant it", "kind", status=403)
    if values["forward"] in TYPE_SWITCH and not sw[TYPE_SWITCH[values["forward"]]]:
        raise refuse(TYPE_SWITCH[values["forward"]], f"a {values['forward'].replace('_', ' ')} forward")
    cond = values["conditions"]
    if values["kind"] == "advanced" and not sw[ORIGIN_SWITCH[cond.get("origin", "all")]]:
        raise refuse(ORIGIN_SWITCH[cond.get("origin", "all")], f"a rule on {cond.get('origin', 'all')} calls")
    for state in cond.get("presence", []):
        if not sw[PRESENCE_SWITCH[state]]:
            raise refuse(PRESENCE_SWITCH[state], f"a rule applied when {state}")


def check_circular(conn: sa.Connection, parameters: ParameterRegistry, user_id: int, target: str, rule_id: int | None) -> None:
    """CIRCULARLEVEL at save time: following forwards from ``target`` must not come back to the user within that many hops."""
    level = int(parameters.resolve_one(conn, user_id, "CIRCULARLEVEL").value)
    if level <= 0 or not target:
        return
    domain_id = conn.execute(sa.select(t.users.c.domain_id).where(t.users.c.id == user_id)).scalar_one()
    mine = set(user_devices(conn, user_id))
    path = {target: [target]}
    frontier = {target}
    for hop in range(1, level + 1):
        back = frontier & mine
        if back:
            chain = " → ".join(["you", *path[sorted(back)[0]]])
            raise RuleError(f"target: forwarding to {target} makes a loop back to your device ({chain}) within {hop} forward(s); "
                            f"CIRCULARLEVEL is {level} (guide 9.6.2): choose another number", "target", status=409)
        if hop == level:
            break
        owners = dict(conn.execute(sa.select(t.devices.c.number, t.devices.c.user_id).where(
            t.devices.c.domain_id == domain_id, t.devices.c.number.in_(sorted(frontier)), t.devices.c.user_id.is_not(None))).all())
        nxt: set[str] = set()
        for number, owner in owners.items():
            for rule in rules_in_effect(conn, owner):
                if rule["target"] and rule["id"] != rule_id and rule["target"] not in path:
                    path[rule["target"]] = [*path[number], rule["target"]]
                    nxt.add(rule["target"])
        if not nxt:
            return
        frontier = nxt


def create_rule(conn: sa.Connection, parameters: ParameterRegistry, user_id: int, data: dict[str, Any], *, imposed: bool = False) -> dict[str, Any]:
    values = rule_values(data, None)
    if not imposed:
        check_user_may(conn, parameters, user_id, values, creating=True)
    _check_lists(conn, user_id, values["conditions"])
    count = conn.execute(sa.select(sa.func.count()).select_from(t.forward_rules).where(t.forward_rules.c.user_id == user_id)).scalar_one()
    if count >= MAX_RULES:
        raise RuleError(f"this user has {count} rules, the most one user keeps; delete one first", "name", status=409)
    profile_id = None
    if not imposed:
        profile_id = data.get("profile_id")
        profile_id = own_profile(conn, user_id, profile_id).id if profile_id is not None else ensure_profile(conn, user_id).id
    if values["active"]:
        check_circular(conn, parameters, user_id, values["target"], None)
    ident = conn.execute(sa.insert(t.forward_rules).values(user_id=user_id, profile_id=profile_id, imposed=imposed, **values)
                         .returning(t.forward_rules.c.id)).scalar_one()
    return rule_json(conn.execute(sa.select(t.forward_rules).where(t.forward_rules.c.id == ident)).one())


def own_rule(conn: sa.Connection, user_id: int, ident: int) -> Any:
    row = conn.execute(sa.select(t.forward_rules).where(t.forward_rules.c.id == ident, t.forward_rules.c.user_id == user_id)).first()
    if row is None:
        raise RuleError(f"forward rule {ident} not found among your rules", "id", status=404)
    return row


def update_rule(conn: sa.Connection, parameters: ParameterRegistry, user_id: int, ident: int, data: dict[str, Any], *,
                admin: bool = False) -> dict[str, Any]:
    row = own_rule(conn, user_id, ident)
    if row.imposed and not admin:
        raise RuleError(f"rule {row.name!r} is imposed by an administrator (guide 9.6.2); only an administrator changes it", "id", 403)
    values = rule_values(data, dict(row._mapping))
    if not admin:
        check_user_may(conn, parameters, user_id, values, creating=False)
    _check_lists(conn, user_id, values["conditions"])
    if values["active"]:
        check_circular(conn, parameters, user_id, values["target"], ident)
    conn.execute(sa.update(t.forward_rules).where(t.forward_rules.c.id == ident).values(**values))
    return rule_json(own_rule(conn, user_id, ident))


def delete_rule(conn: sa.Connection, parameters: ParameterRegistry, user_id: int, ident: int, *, admin: bool = False) -> None:
    row = own_rule(conn, user_id, ident)
    if row.imposed and not admin:
        raise RuleError(f"rule {row.name!r} is imposed by an administrator (guide 9.6.2); only an administrator deletes it", "id", 403)
    if not admin:
        check_user_may(conn, parameters, user_id, None, creating=False)
    conn.execute(sa.delete(t.forward_rules).where(t.forward_rules.c.id == ident))


def check_pbx_forwarding(conn: sa.Connection, parameters: ParameterRegistry, user_id: int, forward_type: str, setting: bool) -> None:
    """``PUT /devices/forwarding`` by a user: the same switches as a simple rule (guide 9.1.8, 9.6.2)."""
    sw = switches(parameters, conn, user_id, ["AuthorizeSimpleRules", "CreateOnlyRUL", TYPE_SWITCH[forward_type]])
    if not sw["AuthorizeSimpleRules"]:
        raise refuse("AuthorizeSimpleRules", "changing the forwarding of your device")
    if sw["CreateOnlyRUL"]:
        raise RuleError("forwarding in the PBX is off (parameter CreateOnlyRUL is Yes, guide 9.6.2): use an advanced rule, "
                        "or ask an administrator to set CreateOnlyRUL to No", "CreateOnlyRUL", status=403)
    if setting and not sw[TYPE_SWITCH[forward_type]]:
        raise refuse(TYPE_SWITCH[forward_type], f"a {forward_type.replace('_', ' ')} forward")


def decisions(conn: sa.Connection, user_id: int, call_id: str | None, limit: int) -> list[dict[str, Any]]:
    d = t.forward_decisions.c
    sel = sa.select(t.forward_decisions).where(d.user_id == user_id)
    if call_id:
        sel = sel.where(d.call_id == call_id)
    rows = conn.execute(sel.order_by(d.at.desc(), d.id.desc()).limit(limit)).all()
    return [{"call_id": r.call_id, "device": r.device, "caller": r.caller, "rule_id": r.rule_id, "rule": r.rule_name or None,
             "action": r.action, "target": r.target, "reason": r.reason,
             "at": (r.at if r.at.tzinfo else r.at.replace(tzinfo=dt.UTC)).isoformat()} for r in rows]
