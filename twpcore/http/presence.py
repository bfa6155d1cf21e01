"""HTTP endpoints: presence, profiles and forward rules (issue 18; user guide 3 and 5.1, admin guide 9.1.8 and 9.6).

- ``/me/presence``: your TWP state and message; ``/me/presence/activity``: a client reports inactivity.
- ``/users/{id}/presence``: what you see of a colleague (TWP, telephony and calendar presence, each under its right).
- ``/me/profiles``: your profiles, one active; ``/me/forward-rules``: your simple and advanced rules;
  ``/me/forward-rules/explain``: which rule would fire for a call, and why; ``/me/forward-decisions``: what fired for real calls.
- ``/users/{id}/forward-rules``: rules an administrator imposes on a user (guide 9.6.2).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from twpcore.http.core import KERNEL, ApiError, Route, path_int, principal, query_int, read_json, store_of
from twpcore.rules import store as rules_db
from twpcore.rules.model import FORWARDS, KINDS, PRESENCE_STATES, CallFacts, RuleError
from twpcore.telephony import call_control_access as access


def _error(exc: RuleError) -> ApiError:
    kind = {400: "bad_request", 403: "forbidden", 404: "not_found", 409: "conflict"}.get(exc.status, "bad_request")
    return ApiError(exc.status, kind, str(exc), exc.field)


async def _run(request: web.Request, fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return await store_of(request).run(fn, *args, **kw)
    except RuleError as exc:
        raise _error(exc) from None


# -- presence --------------------------------------------------------------------------------------

async def my_presence(request: web.Request) -> web.Response:
    who = principal(request)
    view = await _run(request, request.app[KERNEL].presence.view, who, who.id, dt.datetime.now(dt.UTC))
    return web.json_response(view)


async def set_presence(request: web.Request) -> web.Response:
    who, body = principal(request), await read_json(request)
    try:
        state = await request.app[KERNEL].presence.set_state(who.id, str(body["state"]), body.get("message") or "")
    except RuleError as exc:
        raise _error(exc) from None
    return web.json_response(state.as_json())


async def activity(request: web.Request) -> web.Response:
    who, body = principal(request), await read_json(request)
    state = await request.app[KERNEL].presence.report_activity(who.id, bool(body["idle"]))
    return web.json_response(state.as_json())


async def user_presence(request: web.Request) -> web.Response:
    who, ident = principal(request), path_int(request)
    return web.json_response(await _run(request, request.app[KERNEL].presence.view, who, ident, dt.datetime.now(dt.UTC)))


# -- profiles --------------------------------------------------------------------------------------

async def profiles(request: web.Request) -> web.Response:
    return web.json_response({"items": await _run(request, rules_db.list_profiles, principal(request).id)})


async def create_profile(request: web.Request) -> web.Response:
    kernel, who, body = request.app[KERNEL], principal(request), await read_json(request)
    return web.json_response(await _run(request, rules_db.create_profile, kernel.parameters, who.id, body), status=201)


async def update_profile(request: web.Request) -> web.Response:
    kernel, who, body = request.app[KERNEL], principal(request), await read_json(request)
    return web.json_response(await _run(request, rules_db.update_profile, kernel.parameters, who.id, path_int(request), body))


async def delete_profile(request: web.Request) -> web.Response:
    await _run(request, rules_db.delete_profile, principal(request).id, path_int(request))
    return web.Response(status=204)


async def activate_profile(request: web.Request) -> web.Response:
    who = principal(request)
    profile = await _run(request, rules_db.activate_profile, who.id, path_int(request))
    return web.json_response({**profile, "pbx": await _apply(request, who.id)})


async def _apply(request: web.Request, user_id: int) -> dict[str, Any]:
    """Apply the simple rules in effect in the PBX; a link that is down is no error (they are applied when it is back)."""
    kernel = request.app[KERNEL]
    try:
        return await kernel.rules.apply_simple(user_id)
    except Exception as exc:  # noqa: BLE001 - a TelephonyError (link down, driver without forwarding) is reported, the rule stays
        return {"applied": False, "reason": getattr(exc, "detail", None) or str(exc)}


# -- rules -----------------------------------------------------------------------------------------

async def rules(request: web.Request) -> web.Response:
    profile_id = query_int(request, "profile_id", None, lo=1, hi=2**62)
    return web.json_response({"items": await _run(request, rules_db.list_rules, principal(request).id, profile_id)})


async def create_rule(request: web.Request) -> web.Response:
    kernel, who, body = request.app[KERNEL], principal(request), await read_json(request)
    rule = await _run(request, rules_db.create_rule, kernel.parameters, who.id, body)
    kernel.rules.forget(who.id)
    return web.json_response({**rule, "pbx": await _apply(request, who.id) if rule["kind"] == "simple" else None}, status=201)


async def update_rule(request: web.Request) -> web.Response:
    kernel, who, body = request.app[KERNEL], principal(request), await read_json(request)
    rule = await _run(request, rules_db.update_rule, kernel.parameters, who.id, path_int(request), body)
    kernel.rules.forget(who.id)
    return web.json_response({**rule, "pbx": await _apply(request, who.id) if rule["kind"] == "simple" else None})


async def delete_rule(request: web.Request) -> web.Response:
    kernel, who = request.app[KERNEL], principal(request)
    await _run(request, rules_db.delete_rule, kernel.parameters, who.id, path_int(request))
    kernel.rules.forget(who.id)
    await _apply(request, who.id)
    return web.Response(status=204)


async def explain(request: web.Request) -> web.Response:
    kernel, who, body = request.app[KERNEL], principal(request), await read_json(request)
    at = dt.datetime.now(dt.UTC)
    if body.get("presence") is not None and body["presence"] not in PRESENCE_STATES:
        raise ApiError(400, "bad_request", f"presence: expected one of {', '.join(PRESENCE_STATES)}, got {str(body['presence'])[:20]!r}",
                       "presence")
    if len(str(body.get("caller") or "")) > 64:
        raise ApiError(400, "bad_request", "caller: a phone number of at most 64 characters", "caller")
    if body.get("at") is not None:
        try:
            at = dt.datetime.fromisoformat(str(body["at"]))
        except ValueError:
            raise ApiError(400, "bad_request", f"at: {body['at'][:40]!r} is not an ISO 8601 time; write 2013-06-03T09:00:00+02:00", "at") from None
        if at.tzinfo is None:
            raise ApiError(400, "bad_request", f"at: {body['at'][:40]!r} has no time zone; add Z or an offset such as +02:00", "at")
    devices = await store_of(request).run(access.own_devices, who.id)
    domain_id = devices[0][0] if devices else (who.domain_id or 0)
    caller = str(body.get("caller") or "")
    internal = body.get("internal")
    if internal is None:
        internal = (domain_id, caller) in kernel.telephony.devices  # a device of the domain calls: internal, as on a real call
    facts = CallFacts(at=at, presence=body.get("presence") or kernel.presence.state_of(who.id).state, caller=caller, internal=bool(internal),
                      busy=bool(body.get("busy", False)), contact_id=body.get("contact_id"),
                      in_calendar_event=bool(body.get("in_calendar_event", False)))
    return web.json_response(await kernel.rules.explain(who.id, domain_id, facts))


async def decisions(request: web.Request) -> web.Response:
    who = principal(request)
    limit = query_int(request, "limit", 50, lo=1, hi=500)
    call_id = request.query.get("call_id")
    if call_id is not None and len(call_id) > 128:
        raise ApiError(400, "bad_request", "call_id: at most 128 characters (a call id as the call events give it)", "call_id")
    return web.json_response({"items": await _run(request, rules_db.decisions, who.id, call_id, limit)})


# -- rules imposed by an administrator ---------------------------------------------------------------

async def _managed_user(request: web.Request) -> int:
    ident = path_int(request)
    await _run(request, rules_db.managed_user, principal(request), ident)
    return ident


async def imposed_rules(request: web.Request) -> web.Response:
    ident = await _managed_user(request)
    return web.json_response({"items": await _run(request, rules_db.list_rules, ident, None)})


async def impose_rule(request: web.Request) -> web.Response:
    kernel, ident, body = request.app[KERNEL], await _managed_user(request), await read_json(request)
    rule = await _run(request, rules_db.create_rule, kernel.parameters, ident, body, imposed=True)
    kernel.rules.forget(ident)
    return web.json_response({**rule, "pbx": await _apply(request, ident) if rule["kind"] == "simple" else None}, status=201)


async def delete_imposed(request: web.Request) -> web.Response:
    rule_id = path_int(request, "member")  # both ids checked before anything is looked up
    kernel, ident = request.app[KERNEL], await _managed_user(request)
    await _run(request, rules_db.delete_rule, kernel.parameters, ident, rule_id, admin=True)
    kernel.rules.forget(ident)
    await _apply(request, ident)
    return web.Response(status=204)


# -- routes ----------------------------------------------------------------------------------------

FILTER = {"type": "object", "additionalProperties": False, "properties": {
    "numbers": {"type": "array", "items": {"type": "string"}, "maxItems": 500},
    "contacts": {"type": "array", "items": {"type": "integer", "minimum": 1}, "maxItems": 500},
    "lists": {"type": "array", "items": {"type": "integer", "minimum": 1}, "maxItems": 500}}}
CONDITIONS = {"type": "object", "additionalProperties": False, "description": "advanced rules only; every condition must hold",
              "properties": {
                  "presence": {"type": "array", "items": {"type": "string", "enum": [*PRESENCE_STATES, "calendar"]}},
                  "date_from": {"type": "string", "format": "date-time"}, "date_to": {"type": "string", "format": "date-time"},
                  "days": {"type": "array", "items": {"type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}},
                  "hours": {"type": "object", "properties": {"from": {"type": "string"}, "to": {"type": "string"}}},
                  "timezone": {"type": "string"}, "origin": {"type": "string", "enum": ["all", "internal", "external"]},
                  "include": FILTER, "exclude": FILTER}}
RULE_PROPS = {
    "name": {"type": "string", "minLength": 1, "maxLength": 100}, "kind": {"type": "string", "enum": list(KINDS)},
    "forward": {"type": "string", "enum": list(FORWARDS)}, "target": {"type": "string", "maxLength": 64},
    "active": {"type": "boolean"}, "position": {"type": "integer", "minimum": 0, "maximum": 10000}, "conditions": CONDITIONS,
}
PROFILE_PROPS = {
    "name": {"type": "string", "minLength": 1, "maxLength": 100}, "device": {"type": "string", "maxLength": 64},
    "device_kind": {"type": "string", "enum": list(rules_db.DEVICE_KINDS)},
    "schedule": {"type": ["object", "null"], "properties": {"days": {"type": "array", "items": {"type": "string"}},
                                                           "from": {"type": "string"}, "to": {"type": "string"},
                                                           "timezone": {"type": "string"}}},
    "presence": {"type": ["string", "null"], "enum": [*PRESENCE_STATES, None]},
}
RULE_CHECKS = ("a rule's conditions are checked as a whole: times with a zone and date_from before date_to, hours HH:MM, an IANA "
               "timezone, lists that are yours or public; the target is a phone number unless forward is dnd; a name is not blank")
SWITCH_RULE = "a change is refused (403) when a switch of admin guide 9.1.8 or 9.6.2 forbids it; the answer names the parameter"


def presence_routes() -> list[Route]:
    rule_body = {"type": "object", "additionalProperties": False, "required": ["name"],
                 "properties": {**RULE_PROPS, "profile_id": {"type": "integer", "minimum": 1}}}
    patch_rule = {"type": "object", "additionalProperties": False, "properties": RULE_PROPS}
    return [
        Route("GET", "/api/v1/me/presence", my_presence, "user", "Your presence: TWP state, telephony and calendar (user guide 3)", "presence"),
        Route("PUT", "/api/v1/me/presence", set_presence, "user", "Set your TWP state and custom message (user guide 3.1, 3.2.1)", "presence",
              body={"type": "object", "additionalProperties": False, "required": ["state"], "properties": {
                  "state": {"type": "string", "enum": list(PRESENCE_STATES)}, "message": {"type": "string", "maxLength": 200}}},
              rules=("a message needs AuthorizedCustomMessagePresences (403 otherwise)",)),
        Route("POST", "/api/v1/me/presence/activity", activity, "user",
              "A client reports inactivity (absent) or activity again (the state before comes back; user guide 3.2.2)", "presence",
              body={"type": "object", "additionalProperties": False, "required": ["idle"], "properties": {"idle": {"type": "boolean"}}}),
        Route("GET", "/api/v1/users/{id}/presence", user_presence, "any",
              "What you see of a colleague's presence: TWP state, and telephony and calendar presence as your rights allow", "presence"),
        Route("GET", "/api/v1/me/profiles", profiles, "user", "Your profiles, one active (user guide 5.1.1)", "presence"),
        Route("POST", "/api/v1/me/profiles", create_profile, "user", "Create a profile (user guide 5.1.2)", "presence", status=201,
              body={"type": "object", "additionalProperties": False, "required": ["name"], "properties": PROFILE_PROPS},
              errors=(409,), rules=(SWITCH_RULE,)),
        Route("PATCH", "/api/v1/me/profiles/{id}", update_profile, "user", "Change a profile", "presence",
              body={"type": "object", "additionalProperties": False, "properties": PROFILE_PROPS}, errors=(409,), rules=(SWITCH_RULE,)),
        Route("DELETE", "/api/v1/me/profiles/{id}", delete_profile, "user", "Delete a profile that is not the active one", "presence",
              status=204, errors=(409,)),
        Route("POST", "/api/v1/me/profiles/{id}/activate", activate_profile, "user",
              "Make a profile the active one; its simple rules are applied in the PBX (user guide 5.1.1)", "presence"),
        Route("GET", "/api/v1/me/forward-rules", rules, "user", "Your forward rules and those imposed on you (user guide 5.1.3-5.1.5)",
              "presence", query=(("profile_id", "integer", "only the rules of this profile (and imposed ones)", {"minimum": 1}),)),
        Route("POST", "/api/v1/me/forward-rules", create_rule, "user", "Create a simple or advanced forward rule (admin guide 9.6)", "presence",
              status=201, body=rule_body, errors=(409,), rules=(SWITCH_RULE, *RULE_CHECKS, "CIRCULARLEVEL: a target that loops back answers 409")),
        Route("PATCH", "/api/v1/me/forward-rules/{id}", update_rule, "user", "Change or (de)activate one of your forward rules", "presence",
              body=patch_rule, errors=(409,), rules=(SWITCH_RULE, *RULE_CHECKS, "CIRCULARLEVEL: a target that loops back answers 409")),
        Route("DELETE", "/api/v1/me/forward-rules/{id}", delete_rule, "user", "Delete one of your forward rules", "presence", status=204),
        Route("POST", "/api/v1/me/forward-rules/explain", explain, "user",
              "Which of your advanced rules would fire for a call, and why each condition holds or not", "presence",
              body={"type": "object", "additionalProperties": False, "properties": {
                  "caller": {"type": "string", "maxLength": 64}, "at": {"type": "string", "format": "date-time"},
                  "presence": {"type": "string", "enum": list(PRESENCE_STATES)}, "internal": {"type": "boolean"},
                  "busy": {"type": "boolean"}, "contact_id": {"type": "integer", "minimum": 1},
                  "in_calendar_event": {"type": "boolean"}}}),
        Route("GET", "/api/v1/me/forward-decisions", decisions, "user", "What your advanced rules decided for incoming calls, and why",
              "presence", query=(("call_id", "string", "only this call", {"maxLength": 128}),
                                 ("limit", "integer", "at most this many (default 50)", {"minimum": 1, "maximum": 500}))),
        Route("GET", "/api/v1/users/{id}/forward-rules", imposed_rules, "admin", "A user's forward rules, imposed ones included", "presence"),
        Route("POST", "/api/v1/users/{id}/forward-rules", impose_rule, "admin", "Impose a forward rule on a user (admin guide 9.6.2)",
              "presence", status=201, body={"type": "object", "additionalProperties": False, "required": ["name"], "properties": RULE_PROPS},
              errors=(409,), rules=(*RULE_CHECKS, "CIRCULARLEVEL: a target that loops back answers 409")),
        Route("DELETE", "/api/v1/users/{id}/forward-rules/{member}", delete_imposed, "admin", "Delete a user's forward rule", "presence",
              status=204),
    ]
