"""Telephony endpoints: link and device states (guide 10.4, 10.5) and call control.

Users act on their own devices (the first one unless ``device`` is given).  Integrators
with an admin token act on any device of a company they manage by giving ``device`` and
``domain_id``.  A driver without the capability answers 501 naming the driver and the
operation; a link that is down answers 503.
"""

from __future__ import annotations

import re
from typing import Any

import attrs
from aiohttp import web

from twpcore.http.core import KERNEL, MAX_ID, Route, api_error, bad_request, parse_id, principal, read_json, store_of
from twpcore.rules import access as forward_rules
from twpcore.telephony import call_control_access as access
from twpcore.telephony.events import FORWARD_TYPES
from twpcore.telephony.service import Device, TelephonyError

DIGITS = re.compile(r"^[0-9*#ABCD]{1,32}$")
CALL_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")


def _tel(request: web.Request) -> Any:
    return request.app[KERNEL].telephony


async def _device(request: web.Request, body: dict[str, Any]) -> Device:
    who = principal(request)
    number = body.get("device", request.query.get("device"))
    domain_id = body.get("domain_id", request.query.get("domain_id"))
    if number is not None and not isinstance(number, str):
        raise bad_request("device: expected the device number as a string", "device")
    if isinstance(domain_id, str):
        domain_id = parse_id(domain_id, "domain_id", "parameter")
    mine: list[tuple[int, str]] = []
    if not who.is_admin:
        mine = await store_of(request).run(access.own_devices, who.id)
    try:
        return _tel(request).device_for(who, number, domain_id, mine)
    except TelephonyError as exc:
        raise api_error(exc) from None


async def _run(request: web.Request, dev: Device, operation: str, method: str, *args: Any) -> Any:
    try:
        return await _tel(request).run(dev, operation, method, *args)
    except TelephonyError as exc:
        raise api_error(exc) from None


def _str(body: dict[str, Any], name: str, pattern: re.Pattern[str] | None = None, max_len: int = 64) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise bad_request(f"{name}: a non-empty string of at most {max_len} characters is required", name)
    if pattern and not pattern.match(value):
        raise bad_request(f"{name}: {value!r} is not valid", name)
    return value


def _call_id(request: web.Request) -> str:
    value = request.match_info["call_id"]
    if not CALL_ID.match(value):
        raise bad_request(f"call id {value!r} is not valid", "call_id")
    return value


async def _dialable(request: web.Request, dev: Device, number: str) -> str:
    kernel = request.app[KERNEL]
    plan = await store_of(request).run(kernel.dialing_plans.get, dev.domain_id)
    result = plan.to_dialable(number)
    if not result.output:
        raise bad_request(f"number {number!r} cannot be dialed: {'; '.join(result.steps)}", "number")
    return result.output


async def links(request: web.Request) -> web.Response:
    return web.json_response({"items": _tel(request).links_json(principal(request))})


async def device_states(request: web.Request) -> web.Response:
    lo, hi = request.query.get("from"), request.query.get("to")
    for name, value in (("from", lo), ("to", hi)):
        if value is not None and not DIGITS.match(value):
            raise bad_request(f"{name}: expected a device number, got {value!r}", name)
    return web.json_response({"items": _tel(request).devices_json(principal(request), lo, hi)})


async def list_calls(request: web.Request) -> web.Response:
    dev = await _device(request, {})
    calls = _tel(request).model(dev.domain_id)
    return web.json_response({"device": dev.number, "presence": calls.presence.get(dev.number, "idle"),
                              "forwarding": calls.forwarding.get(dev.number, {}), "do_not_disturb": calls.dnd.get(dev.number, False),
                              "items": [c.as_json() for c in calls.calls_of(dev.number)]})


async def make_call(request: web.Request) -> web.Response:
    body = await read_json(request)
    dev = await _device(request, body)
    number = _str(body, "number")
    dialed = await _dialable(request, dev, number)
    call_id = await _run(request, dev, "make_call", "make_call", dialed)
    return web.json_response({"call_id": call_id, "device": dev.number, "dialed": dialed}, status=201)


def _simple(operation: str, method: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        body = await read_json(request) if request.can_read_body else {}
        dev = await _device(request, body)
        await _run(request, dev, operation, method, _call_id(request))
        return web.Response(status=204)

    handler.__name__ = method
    return handler


def _with_number(operation: str, method: str, returns_call: bool = False) -> Any:
    async def handler(request: web.Request) -> web.Response:
        body = await read_json(request)
        dev = await _device(request, body)
        dialed = await _dialable(request, dev, _str(body, "number"))
        result = await _run(request, dev, operation, method, _call_id(request), dialed)
        if returns_call:
            return web.json_response({"call_id": result, "dialed": dialed}, status=201)
        return web.Response(status=204)

    handler.__name__ = method
    return handler


def _with_other_call(operation: str, method: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        body = await read_json(request)
        dev = await _device(request, body)
        other = _str(body, "other_call_id", CALL_ID, 128)
        # The path names the held call, the body the active one (ECMA-269 order).
        await _run(request, dev, operation, method, _call_id(request), other)
        return web.Response(status=204)

    handler.__name__ = method
    return handler


async def dtmf(request: web.Request) -> web.Response:
    body = await read_json(request)
    dev = await _device(request, body)
    await _run(request, dev, "dtmf", "dtmf", _call_id(request), _str(body, "digits", DIGITS, 32))
    return web.Response(status=204)


async def forwarding(request: web.Request) -> web.Response:
    body = await read_json(request)
    dev = await _device(request, body)
    ftype = body.get("type", "immediate")
    if ftype not in FORWARD_TYPES:
        raise bad_request(f"type: expected one of {', '.join(FORWARD_TYPES)}, got {ftype!r}", "type")
    number = body.get("number")
    who = principal(request)
    if not who.is_admin:  # the Authorize* switches of admin guide 9.1.8 and CreateOnlyRUL (9.6.2)
        await forward_rules.check_pbx_forwarding(store_of(request), request.app[KERNEL].parameters, who.id, ftype, number is not None)
    target = None if number is None else await _dialable(request, dev, _str(body, "number"))
    await _run(request, dev, "forwarding", "set_forwarding", ftype, target)
    return web.json_response({"device": dev.number, "type": ftype, "number": target})


async def dnd(request: web.Request) -> web.Response:
    body = await read_json(request)
    dev = await _device(request, body)
    on = body.get("on")
    if not isinstance(on, bool):
        raise bad_request("on: true or false is required", "on")
    await _run(request, dev, "do_not_disturb", "set_do_not_disturb", on)
    return web.json_response({"device": dev.number, "on": on})


DEVICE_PARAMS = (("device", "string", "device number (default: the caller's first device)"),
                 ("domain_id", "integer", "the device's domain (administrators)", {"minimum": 1, "maximum": MAX_ID}))
PBX_ERRORS = (409, 501, 503)
"""What call control may answer: no device or not supervised (409), the driver lacks the operation (501), the PBX link is down (503)."""


def telephony_routes() -> list[Route]:
    number_body = {
        "type": "object",
        "required": ["number"],
        "properties": {"number": {"type": "string"}, "device": {"type": "string"}, "domain_id": {"type": "integer"}},
    }
    other_body = {
        "type": "object",
        "required": ["other_call_id"],
        "properties": {"other_call_id": {"type": "string"}, "device": {"type": "string"}, "domain_id": {"type": "integer"}},
    }
    empty = {"type": "object", "properties": {"device": {"type": "string"}, "domain_id": {"type": "integer"}}}
    base = "/api/v1/calls/{call_id}"
    routes = [
        Route(
            "GET", "/api/v1/links", links, "admin", "PBX link states: host, connected, current, site, domain, port, count (guide 10.4)", "telephony"
        ),
        Route(
            "GET",
            "/api/v1/devices/states",
            device_states,
            "admin",
            "Device supervision states between two numbers (guide 10.5)",
            "telephony",
            query=(
                ("from", "string", "first device number", {"pattern": DIGITS.pattern}),
                ("to", "string", "last device number", {"pattern": DIGITS.pattern}),
            ),
        ),
        Route(
            "GET",
            "/api/v1/calls",
            list_calls,
            "any",
            "Calls in progress at a device, its presence, forwarding and do-not-disturb",
            "calls",
            query=DEVICE_PARAMS,
            errors=(409,),
        ),
        Route("POST", "/api/v1/calls", make_call, "any", "Make a call (the domain's dialing plan is applied)", "calls", body=number_body, status=201),
        Route("POST", base + "/answer", _simple("answer", "answer"), "any", "Answer a ringing call", "calls", body=empty),
        Route("POST", base + "/hangup", _simple("hang_up", "hang_up"), "any", "Hang up a call", "calls", body=empty),
        Route("POST", base + "/hold", _simple("hold", "hold"), "any", "Put a call on hold", "calls", body=empty),
        Route("POST", base + "/retrieve", _simple("retrieve", "retrieve"), "any", "Take a held call back", "calls", body=empty),
        Route(
            "POST",
            base + "/consult",
            _with_number("consultation_call", "consultation_call", True),
            "any",
            "Hold the call and call another number",
            "calls",
            body=number_body,
            status=201,
        ),
        Route(
            "POST",
            base + "/alternate",
            _with_other_call("alternate", "alternate"),
            "any",
            "Swap between the held call (path) and the active call",
            "calls",
            body=other_body,
        ),
        Route(
            "POST",
            base + "/reconnect",
            _with_other_call("reconnect", "reconnect"),
            "any",
            "End the active call and take back the held call (path)",
            "calls",
            body=other_body,
        ),
        Route(
            "POST",
            base + "/transfer",
            _with_other_call("transfer", "transfer"),
            "any",
            "Transfer after consultation: join the held call (path) and the active call",
            "calls",
            body=other_body,
        ),
        Route(
            "POST",
            base + "/blind-transfer",
            _with_number("single_step_transfer", "single_step_transfer"),
            "any",
            "Transfer the call to a number without consultation",
            "calls",
            body=number_body,
        ),
        Route(
            "POST",
            base + "/conference",
            _with_other_call("conference", "conference"),
            "any",
            "Join the held call (path) and the active call in a conference",
            "calls",
            body=other_body,
        ),
        Route(
            "POST", base + "/deflect", _with_number("deflect", "deflect"), "any", "Send a ringing call to another number", "calls", body=number_body
        ),
        Route(
            "POST",
            base + "/dtmf",
            dtmf,
            "any",
            "Send DTMF digits on a call",
            "calls",
            body={
                "type": "object",
                "required": ["digits"],
                "properties": {"digits": {"type": "string"}, "device": {"type": "string"}, "domain_id": {"type": "integer"}},
            },
        ),
        Route(
            "PUT",
            "/api/v1/devices/forwarding",
            forwarding,
            "any",
            "Set or cancel forwarding (immediate, busy, no_answer) of a device",
            "calls",
            body={
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": list(FORWARD_TYPES)},
                    "number": {"type": ["string", "null"]},
                    "device": {"type": "string"},
                    "domain_id": {"type": "integer"},
                },
            },
        ),
        Route(
            "PUT",
            "/api/v1/devices/do-not-disturb",
            dnd,
            "any",
            "Switch do-not-disturb of a device on or off",
            "calls",
            body={
                "type": "object",
                "required": ["on"],
                "properties": {"on": {"type": "boolean"}, "device": {"type": "string"}, "domain_id": {"type": "integer"}},
            },
        ),
    ]
    routes = [attrs.evolve(r, rules=(ADMIN_NAMES_DEVICE,)) if r.tag == "calls" else r for r in routes]
    return [attrs.evolve(r, errors=PBX_ERRORS) if r.tag == "calls" and r.method != "GET" else r for r in routes]


ADMIN_NAMES_DEVICE = "an administrator gives device and domain_id (a user may leave them out: their first device)"
