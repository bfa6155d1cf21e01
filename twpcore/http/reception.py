"""HTTP endpoints: boss / secretary, interception, phone queues and voicemail (issue 19; guide 9.1.4, 9.1.7, 9.1.8, 9.2.2).

Handlers read the request, call ``twpcore.reception`` (rules in the store's thread pool,
call control through the telephony service) and answer.  A driver without
``directed_pickup`` answers 501, a link that is down 503, a user without the right 403
naming the parameter or authorization to ask for.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from twpcore.http.core import KERNEL, ApiError, Route, api_error, bad_request, path_int, principal, read_json, store_of
from twpcore.http.telephony import CALL_ID, _call_id, _dialable, _str
from twpcore.reception import queues as q
from twpcore.reception import rules
from twpcore.reception.switches import features
from twpcore.telephony import call_control_access as access
from twpcore.telephony import granted_objects as granted
from twpcore.telephony.service import Device, TelephonyError

TAG = "reception"
WAITING = ("queued", "alerting")
NUMBER = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"\S"}  # what _str accepts: non-blank, at most 64


def _kernel(request: web.Request) -> Any:
    return request.app[KERNEL]


async def _body(request: web.Request) -> dict[str, Any]:
    return await read_json(request) if request.can_read_body else {}


async def _own_device(request: web.Request, number: Any) -> Device:
    """The caller's device that receives a picked-up call: ``number`` if given, else its first device."""
    who = principal(request)
    if number is not None and not isinstance(number, str):
        raise bad_request("device: expected your device number as a string", "device")
    mine = await store_of(request).run(access.own_devices, who.id)
    try:
        return _kernel(request).telephony.device_for(who, number, None, mine)
    except TelephonyError as exc:
        raise api_error(exc) from None


async def _pickup(request: web.Request, ringing: Device, call_id: str, mine: Device, queue_id: int | None = None) -> web.Response:
    try:
        picked = await _kernel(request).reception.pickup(ringing, call_id, mine, queue_id, principal(request).id)
    except TelephonyError as exc:
        raise api_error(exc) from None
    return web.json_response({"call_id": picked, "device": mine.number, "from_device": ringing.number, "picked_call_id": call_id})


# -- switches ---------------------------------------------------------------------------------
async def my_features(request: web.Request) -> web.Response:
    who = principal(request)
    items = await store_of(request).read(features, _kernel(request).parameters, who.id)
    return web.json_response({"items": items})


# -- boss / secretary ---------------------------------------------------------------------------
async def my_bosses(request: web.Request) -> web.Response:
    who = principal(request)
    kernel = _kernel(request)
    tel = kernel.telephony
    found = await store_of(request).read(rules.bosses, kernel.parameters, who.id)
    items = []
    for boss in found["items"]:
        devices = []
        for device_id, domain_id, number in boss["devices"]:
            dev = tel.devices.get((domain_id, number))
            link = tel.links.get(dev.link) if dev is not None and dev.link else None
            model = tel.models.get(domain_id)
            entry: dict[str, Any] = {"device": number, "domain_id": domain_id, **granted.device_presence(tel, domain_id, number)}
            if boss["calls"]:
                at_ringing = bool(link and "details_at_ringing" in link.driver.capabilities)
                calls = []
                for call in (model.calls_of(number) if model is not None else []):
                    details = at_ringing or call.state in ("connected", "held") or call.answered_at is not None
                    contact = None
                    if details and call.remote:
                        directories = await store_of(request).read(rules.name_directories, kernel.parameters, who.id, device_id)
                        contact = await store_of(request).read(kernel.reception.lookup, directories, domain_id, call.remote)
                    calls.append({"call_id": call.call_id, "state": call.state, "direction": call.direction, "details": details,
                                  "caller": call.remote if details else None, "caller_name": contact["name"] if contact else None,
                                  "contact": contact, "started_at": call.started_at, "answered_at": call.answered_at})
                entry["calls"] = calls
                entry["details_at_ringing"] = at_ringing
            if boss["forwarding"]:
                entry["forwarding"] = dict(model.forwarding.get(number, {})) if model is not None else {}
            devices.append(entry)
        items.append({**{k: boss[k] for k in ("user_id", "login", "first_name", "last_name", "calls", "forwarding")}, "devices": devices})
    return web.json_response({"calls_group": found["calls_group"], "forwarding_group": found["forwarding_group"], "items": items})


# -- interception ----------------------------------------------------------------------------
async def intercept(request: web.Request) -> web.Response:
    who = principal(request)
    kernel = _kernel(request)
    body = await _body(request)
    call_id = _call_id(request)
    number = _str(body, "device")
    mine = await _own_device(request, body.get("to_device"))
    domain_id = body.get("domain_id", mine.domain_id)
    if not isinstance(domain_id, int) or isinstance(domain_id, bool):
        raise bad_request("domain_id: expected the ringing device's domain id as an integer", "domain_id")
    denied = await store_of(request).read(rules.interception_denied, kernel.parameters, who.id, domain_id, number)
    if denied:
        raise ApiError(403, "forbidden", denied, "device")
    ringing = kernel.telephony.devices.get((domain_id, number))
    if ringing is None:
        raise ApiError(409, "not_supervised", f"device {number} is not supervised: no PBX link serves its domain", "device")
    model = kernel.telephony.models.get(domain_id)
    call = model.call(number, call_id) if model is not None else None
    if call is None or call.state not in WAITING:
        raise ApiError(409, "no_call", f"no call {call_id} rings at device {number} (it was answered, or ended); refresh the calls")
    return await _pickup(request, ringing, call_id, mine)


# -- phone queues ------------------------------------------------------------------------------
async def take_queued(request: web.Request) -> web.Response:
    who = principal(request)
    tel = _kernel(request).telephony
    body = await _body(request)
    queue = await store_of(request).run(granted.phone_queue, who, path_int(request))
    wanted = body.get("call_id")
    if wanted is not None and (not isinstance(wanted, str) or not CALL_ID.match(wanted)):
        raise bad_request(f"call_id: {wanted!r} is not a call id", "call_id")
    calls = granted.queue_calls(tel, queue.domain_id, queue.number)
    if not calls["supervised"]:
        raise ApiError(409, "not_supervised", f"phone queue {queue.name}: {calls['reason']}")
    waiting = [c for c in calls["items"] if c["state"] in WAITING]
    chosen = waiting[0] if wanted is None and waiting else next((c for c in waiting if c["call_id"] == wanted), None)
    if chosen is None:
        raise ApiError(409, "no_call", f"phone queue {queue.name}: " + (f"call {wanted} no longer waits" if wanted else "no call waits"))
    mine = await _own_device(request, body.get("device"))
    return await _pickup(request, tel.devices[(queue.domain_id, queue.number)], chosen["call_id"], mine, queue.id)


def _when(request: web.Request, name: str, default: dt.datetime) -> dt.datetime:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise bad_request(f"{name}: expected an ISO 8601 date and time such as 2026-12-07T08:00:00+00:00, got {raw[:40]!r}", name) from None
    if value.tzinfo is None:
        raise bad_request(f"{name}: give a time zone (2026-12-07T08:00:00+00:00 or …Z), got {raw[:40]!r}", name)
    return value


async def queue_statistics(request: web.Request) -> web.Response:
    who = principal(request)
    queue = await store_of(request).run(granted.phone_queue, who, path_int(request))
    now = dt.datetime.now(dt.UTC)
    until = _when(request, "to", now + dt.timedelta(seconds=1))
    since = _when(request, "from", until.replace(hour=0, minute=0, second=0, microsecond=0))
    if since >= until:
        raise bad_request("to must be after from", "to")
    figures = await store_of(request).read(q.queue_statistics, queue.id, since, until)
    return web.json_response({"id": queue.id, "name": queue.name, **figures})


# -- voicemail ----------------------------------------------------------------------------------
async def my_voicemail(request: web.Request) -> web.Response:
    who = principal(request)
    return web.json_response(await store_of(request).read(q.voicemail_of, _kernel(request).parameters, who.id))


async def call_voicemail(request: web.Request) -> web.Response:
    who = principal(request)
    body = await _body(request)
    mine = await _own_device(request, body.get("device"))
    box = await store_of(request).read(q.voicemail_of, _kernel(request).parameters, who.id)
    if not box["number"]:
        raise ApiError(409, "no_voicemail_number", "no voicemail number is set for you: an administrator sets parameter vmNumber "
                       "(Caller application, guide 9.1.4) as the default, or for your domain, group or user")
    dialed = await _dialable(request, mine, box["number"])
    try:
        call_id = await _kernel(request).telephony.run(mine, "make_call", "make_call", dialed)
    except TelephonyError as exc:
        raise api_error(exc) from None
    return web.json_response({"call_id": call_id, "device": mine.number, "dialed": dialed}, status=201)


async def voicemail_heard(request: web.Request) -> web.Response:
    await store_of(request).run(q.reset_voicemail, principal(request).id)
    return web.Response(status=204)


def reception_routes() -> list[Route]:
    device_body = {"type": "object", "properties": {"device": {"type": "string"}}}
    return [
        Route("GET", "/api/v1/me/features", my_features, "user",
              "The Caller's Authorize* switches for you (guide 9.1.8), each marked as enforced by the server or by the client", TAG),
        Route("GET", "/api/v1/me/bosses", my_bosses, "user",
              "Your bosses' devices, their calls and active forwarding (AuthorizeSupervisionInformation, AuthorizeShareRulesGroup, guide 9.1.7)",
              TAG),
        Route("POST", "/api/v1/calls/{call_id}/pickup", intercept, "user",
              "Intercept a call ringing at a device you watch (directed pickup; AuthorizeInterception, guide 9.1.8)", TAG,
              body={"type": "object", "required": ["device"],
                    "properties": {"device": {**NUMBER, "description": "the ringing device"},
                                   "domain_id": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1,
                                                 "description": "the ringing device's domain (default: yours)"},
                                   "to_device": {**NUMBER, "description": "your device that takes the call (default: your first)"}}},
              errors=(409, 501, 503)),
        Route("POST", "/api/v1/phone-queues/{id}/take", take_queued, "user",
              "Take a call waiting in a phone queue granted to you: the longest waiting unless call_id is given (guide 9.2.2)", TAG,
              body={"type": "object", "properties": {"call_id": {"type": "string"}, "device": {"type": "string"}}}, errors=(409, 501, 503)),
        Route("GET", "/api/v1/phone-queues/{id}/statistics", queue_statistics, "any",
              "Statistics of a phone queue over a period: calls offered, taken, distributed, answered, abandoned, waiting times", TAG,
              query=(("from", "string", "start, ISO 8601 with a time zone (default: midnight UTC of to)", {"format": "date-time"}),
                     ("to", "string", "end, ISO 8601 with a time zone (default: now)", {"format": "date-time"})),
              rules=("to must be after from",)),
        Route("GET", "/api/v1/me/voicemail", my_voicemail, "user", "Your voicemail number (vmNumber, guide 9.1.4) and new messages", TAG),
        Route("POST", "/api/v1/me/voicemail/call", call_voicemail, "user", "Call your voicemail from your device (guide 9.1.4)", TAG,
              body=device_body, status=201, errors=(409, 501, 503)),
        Route("POST", "/api/v1/me/voicemail/heard", voicemail_heard, "user", "Your new-message counters go back to zero", TAG, status=204),
    ]
