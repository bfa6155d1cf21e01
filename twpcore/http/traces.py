"""PDU traces of PBX links (guide 10.6): start, look at and stop them from the admin API.

``POST /api/v1/links/{name}/trace`` with ``{"device": "201"}`` (or ``"*"`` for every
PDU) starts a trace file under the link's ``trace_dir`` (``var/traces`` by default);
``GET`` tells whether one runs; ``DELETE`` stops it.  Only drivers that write traces
(the CSTA XML drivers: ``trace_start``/``trace_stop``) support it; others answer 501.
Administrators see the links of the companies they manage; starting and stopping a
trace is written to the audit log, since traces hold call data.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from twpcore.http.core import KERNEL, ApiError, Route, bad_request, principal, read_json, store_of
from twpcore.http.resources import audit

DEVICE = re.compile(r"^(\*|[0-9A-Za-z*#+]{1,64})$")


def _link(request: web.Request) -> Any:
    name = request.match_info["name"]
    who = principal(request)
    link = request.app[KERNEL].telephony.links.get(name)
    if link is None or (link.company_id is None and not who.super_user) or (link.company_id is not None and not who.manages(link.company_id)):
        raise ApiError(404, "not_found", f"PBX link {name} not found; GET /api/v1/links lists the links you manage")
    if not callable(getattr(link.driver, "trace_start", None)):
        raise ApiError(501, "not_supported", f"the {link.driver.type_name} driver of link {name} does not write PDU traces")
    return link


def _state(link: Any) -> dict[str, Any]:
    trace = link.driver.trace
    return {"link": link.name, "running": trace is not None, **(trace.as_json() if trace is not None else {})}


async def trace_state(request: web.Request) -> web.Response:
    return web.json_response(_state(_link(request)))


async def start_trace(request: web.Request) -> web.Response:
    link = _link(request)
    body = await read_json(request) if request.body_exists else {}
    device = body.get("device", "*")
    if not isinstance(device, str) or not DEVICE.match(device.strip()):
        raise bad_request(f'device: expected a device number or "*" for every PDU, got {device!r}', "device")
    try:
        link.driver.trace_start(device.strip())
    except OSError as exc:
        raise ApiError(
            500, "trace_failed", f"cannot write the trace file of link {link.name}: {exc}; check trace_dir in pbx.links.{link.name}"
        ) from None
    await store_of(request).run(audit, principal(request), "trace.start", "pbx_link", link.name, link.company_id,
                                        request.remote or "", {"device": device.strip()})
    return web.json_response(_state(link), status=201)


async def stop_trace(request: web.Request) -> web.Response:
    link = _link(request)
    trace = link.driver.trace
    path = link.driver.trace_stop()
    if path is None:
        raise ApiError(409, "no_trace", f"no PDU trace runs on link {link.name}; start one with POST /api/v1/links/{link.name}/trace")
    await store_of(request).run(audit, principal(request), "trace.stop", "pbx_link", link.name, link.company_id,
                                        request.remote or "", {"file": str(path)})
    return web.json_response({"link": link.name, "running": False, **trace.as_json()})


def trace_routes() -> list[Route]:
    body = {"type": "object", "additionalProperties": False, "properties": {
        "device": {"type": "string", "description": 'device number to trace, or "*" for every PDU of the link'}}}
    path = "/api/v1/links/{name}/trace"
    return [
        Route("GET", path, trace_state, "admin", "Whether a PDU trace runs on the link, and its file (guide 10.6)", "telephony"),
        Route(
            "POST", path, start_trace, "admin", "Start a PDU trace of one device or * on the link (guide 10.6)", "telephony", body=body, status=201
        ),
        Route("DELETE", path, stop_trace, "admin", "Stop the PDU trace of the link", "telephony"),
    ]
