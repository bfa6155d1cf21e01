"""Dialing plan endpoints: read, replace and test a domain's plan (guide 5)."""

from __future__ import annotations

from aiohttp import web

from twpcore.admin import dialing_plans as plans
from twpcore.dialplan import DialingPlanSettings
from twpcore.events import Event
from twpcore.http.core import KERNEL, Route, bad_request, path_int, principal, read_json, store_of


async def get_plan(request: web.Request) -> web.Response:
    who, ident = principal(request), path_int(request)
    kernel = request.app[KERNEL]
    return web.json_response(await store_of(request).run(plans.read_plan, kernel.dialing_plans, who, ident))


async def put_plan(request: web.Request) -> web.Response:
    """Replace the plan; ``{"settings": …, "rules": […]}``, or ``null`` body fields for the default plan."""
    who, ident = principal(request), path_int(request)
    kernel = request.app[KERNEL]
    data = await read_json(request)
    answer = await store_of(request).run(plans.replace_plan, kernel.dialing_plans, who, ident, data, request.remote or "")
    # Forgotten again once committed: a read between the save and the commit may have cached the old plan.
    kernel.dialing_plans.forget(ident)
    # The domain changed: caches of its plan follow (the directory index here, every node of a cluster: docs/cluster.md).
    kernel.events.publish(Event("admin.domain.updated", {"id": ident, "resource": "domains", "dialing_plan": True}, None, ident))
    return web.json_response(answer)


async def test_plan(request: web.Request) -> web.Response:
    """Guide 5's test facility: transform a number and show which rule fired."""
    who, ident = principal(request), path_int(request)
    kernel = request.app[KERNEL]
    data = await read_json(request)
    number, direction = data.get("number"), data.get("direction", "dial")
    if not isinstance(number, str) or len(number) > 256:
        raise bad_request("number: a string of at most 256 characters is required", "number")
    if direction not in ("dial", "received"):
        raise bad_request(f'direction: expected "dial" or "received", got {direction!r}', "direction")
    return web.json_response(await store_of(request).run(plans.try_number, kernel.dialing_plans, who, ident, number, direction))


PLAN_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "settings": {
            "type": "object",
            "additionalProperties": False,
            "properties": {name: {} for name in DialingPlanSettings.FIELDS},
            "description": "international_prefix, local_country_prefix, region, external_prefix, add, remove, "
            "internal_length, internal_reverse_length",
        },
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["priority", "pattern", "value"],
                "additionalProperties": False,
                "properties": {
                    "priority": {"type": "integer"},
                    "pattern": {"type": "string"},
                    "value": {"type": "string"},
                    "syntax": {"type": "string", "enum": ["guide", "pbx"]},
                },
            },
        },
        "default": {"type": "boolean", "const": True, "description": "true alone: go back to the default plan"},
    },
}


def dialplan_routes() -> list[Route]:
    return [
        Route("GET", "/api/v1/domains/{id}/dialing-plan", get_plan, "admin", "A domain's dialing plan (guide 5)", "dialing plan"),
        Route(
            "PUT",
            "/api/v1/domains/{id}/dialing-plan",
            put_plan,
            "admin",
            "Replace a domain's dialing plan; invalid rules are refused",
            "dialing plan",
            body=PLAN_BODY,
            errors=(422,),
            rules=('{"default": true} comes alone (it restores the default plan)',
                   "settings and rules are checked as guide 5 says: an invalid setting or rule answers 422 naming it"),
        ),
        Route(
            "POST",
            "/api/v1/domains/{id}/dialing-plan/test",
            test_plan,
            "admin",
            "Test a number against the plan: result and the rule that fired",
            "dialing plan",
            body={
                "type": "object",
                "required": ["number"],
                "properties": {"number": {"type": "string", "maxLength": 256}, "direction": {"type": "string", "enum": ["dial", "received"]}},
            },
        ),
    ]
