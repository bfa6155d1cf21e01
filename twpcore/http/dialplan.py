"""Dialing plan endpoints: read, replace and test a domain's plan (guide 5)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web

from twpcore.dialing import test_number
from twpcore.dialplan import InvalidRule
from twpcore.http.core import KERNEL, ApiError, Route, bad_request, path_int, principal, read_json, store_of
from twpcore.http.resources import audit, require_managed
from twpcore.store import schema as t


async def get_plan(request: web.Request) -> web.Response:
    who, ident = principal(request), path_int(request)
    kernel = request.app[KERNEL]

    def run(conn: sa.Connection) -> dict[str, Any]:
        require_managed(conn, who, "domains", ident, "id")
        stored = conn.execute(sa.select(t.domains.c.dialing_plan).where(t.domains.c.id == ident)).scalar_one_or_none()
        plan = kernel.dialing_plans.get(conn, ident)
        return {"domain_id": ident, "default": stored is None, "broken": kernel.dialing_plans.broken.get(ident), **plan.to_dict()}

    return web.json_response(await store_of(request).run(run))


async def put_plan(request: web.Request) -> web.Response:
    """Replace the plan; ``{"settings": …, "rules": […]}``, or ``null`` body fields for the default plan."""
    who, ident = principal(request), path_int(request)
    kernel = request.app[KERNEL]
    data = await read_json(request)
    use_default = data == {"default": True}

    def run(conn: sa.Connection) -> dict[str, Any]:
        company = require_managed(conn, who, "domains", ident, "id")
        try:
            plan = kernel.dialing_plans.save(conn, ident, None if use_default else data)
        except InvalidRule as exc:
            raise ApiError(422, "invalid_rule", str(exc), "rules") from None
        except (ValueError, TypeError) as exc:
            raise ApiError(422, "invalid_dialing_plan", str(exc), str(exc).split(":", 1)[0] or None) from None
        audit(conn, who, "set_dialing_plan", "domain", ident, company, request.remote or "", {"rules": len(plan.rules)})
        return {"domain_id": ident, "default": use_default, **plan.to_dict()}

    return web.json_response(await store_of(request).run(run))


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

    def run(conn: sa.Connection) -> dict[str, Any]:
        require_managed(conn, who, "domains", ident, "id")
        return test_number(kernel.dialing_plans.get(conn, ident), number, direction)

    return web.json_response(await store_of(request).run(run))


PLAN_BODY = {
    "type": "object",
    "properties": {
        "settings": {
            "type": "object",
            "description": "international_prefix, local_country_prefix, region, external_prefix, add, remove, "
            "internal_length, internal_reverse_length",
        },
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["priority", "pattern", "value"],
                "properties": {
                    "priority": {"type": "integer"},
                    "pattern": {"type": "string"},
                    "value": {"type": "string"},
                    "syntax": {"type": "string", "enum": ["guide", "pbx"]},
                },
            },
        },
        "default": {"type": "boolean", "description": "true alone: go back to the default plan"},
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
                "properties": {"number": {"type": "string"}, "direction": {"type": "string", "enum": ["dial", "received"]}},
            },
        ),
    ]
