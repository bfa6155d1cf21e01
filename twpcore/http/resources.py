"""Admin CRUD routes for every stored object, derived from its ``Resource`` description.

The descriptions, their rules and their SQL live in ``twpcore.admin.resources``; each
handler here reads the request, runs one operation of that module in the store's thread
pool and answers (then refreshes warnings and publishes the admin event).  Tenancy: a
super user sees everything; an admin limited to companies sees only rows of those
companies, and any other row answers 404 as if it did not exist.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from twpcore import rights
from twpcore.admin import resources as admin

# The other handler modules take the descriptions and helpers from here (re-exported).
from twpcore.admin.resources import (  # noqa: F401
    RESOURCES,
    Field,
    Resource,
    _quota_check,
    audit,
    fetch_managed,
    iso_utc,
    require_managed,
    row_out,
)
from twpcore.app import Kernel
from twpcore.auth import tokens_revoked_event
from twpcore.http.core import KERNEL, Route, bad_request, path_int, principal, query_int, read_json, store_of


def deps_of(kernel: Kernel) -> admin.AdminDeps:
    """What the admin services need of the kernel, handed over explicitly."""
    return admin.AdminDeps(kernel.config, kernel.parameters)


def publish_admin(request: web.Request, res: Resource, action: str, obj: dict[str, object]) -> None:
    request.app[KERNEL].events.publish(admin.admin_event(res, action, obj))


async def _changed(request: web.Request, res: Resource, action: str, obj: dict[str, object]) -> None:
    if res.refreshes_warnings:
        await request.app[KERNEL].refresh_warnings()
    publish_admin(request, res, action, obj)


def _list_query(request: web.Request, res: Resource) -> admin.ListQuery:
    limit = query_int(request, "limit", 50, lo=1, hi=1000)
    offset = query_int(request, "offset", 0)
    equals: list[tuple[str, object]] = []
    for f in res.fields:
        if f.filter and f.name in request.query:
            raw = request.query[f.name]
            if f.type == "integer":
                equals.append((f.name, query_int(request, f.name, lo=-(10**9))))
            elif f.type == "boolean":
                if raw not in ("true", "false"):
                    raise bad_request(f"query parameter {f.name}: expected true or false, got {raw!r}", f.name)
                equals.append((f.name, raw == "true"))
            else:
                equals.append((f.name, raw))
    by_company = "company_id" in request.query and res.tenancy != "super"
    company_id = query_int(request, "company_id") if by_company else None
    return admin.ListQuery(limit, offset, tuple(equals), by_company, company_id, request.query.get("q", "").strip())


PASSWORD_RULES = "a password follows the server's password rules (auth.password_min_length...), else 422"
CHOICES = {
    "authorizations": {"subject_type": list(rights.SUBJECT_TYPES), "object_type": list(rights.OBJECT_TYPES)},
}
"""Fields of a resource's input that take one of a fixed set of values, shown as ``enum`` in the document (the resource's checks refuse others)."""
RULES: dict[str, tuple[str, ...]] = {
    "authorizations": ('object_ref fits object_type (an application name, or "<kind>:<id>" of a kind that object_type takes, such as '
                       '"directory:3"), and a right that cannot be shared across domains stays in the subject\'s domain: else 422',),
    "devices": ("a device names its owner (user_id) or its domain (domain_id); with both, the user is in that domain: else 400",),
    "parameter_values": ("name is a parameter the server knows (GET /api/v1/parameters) and value fits its type: else 422",
                         "scope_id names the domain, group or user of scope, and is required unless scope is default: else 400"),
}
"""Rules across fields or against the server's state that no JSON schema states (``Route.rules``)."""
ONE_OF_REQUIRED = {"devices": ("user_id", "domain_id")}
"""Resources whose creation needs at least one of these fields (``anyOf`` in the document)."""


def input_schema(res: Resource, create: bool) -> dict[str, Any]:
    """The body schema of a creation or change of ``res``: its fields' schemas, their choices, and on creation the fields it needs one of."""
    schema = res.input_schema(create)
    props = schema["properties"]
    for name, choices in CHOICES.get(res.name, {}).items():
        if name in props:
            props[name] = {**props[name], "enum": choices}
    if create and res.name in ONE_OF_REQUIRED:
        schema["anyOf"] = [{"required": [name]} for name in ONE_OF_REQUIRED[res.name]]
    return schema


def make_handlers(res: Resource) -> list[Route]:
    tag = res.name

    async def list_items(request: web.Request) -> web.Response:
        who, query, kernel = principal(request), _list_query(request, res), request.app[KERNEL]
        return web.json_response(await store_of(request).read(admin.list_rows, res, who, deps_of(kernel), query))

    async def get_item(request: web.Request) -> web.Response:
        who, ident, kernel = principal(request), path_int(request), request.app[KERNEL]
        return web.json_response(await store_of(request).read(admin.read, res, who, deps_of(kernel), ident))

    async def create_item(request: web.Request) -> web.Response:
        who, data, kernel = principal(request), await read_json(request), request.app[KERNEL]
        obj = await store_of(request).run(admin.create, res, who, deps_of(kernel), data, request.remote or "")
        await _changed(request, res, "created", obj)
        return web.json_response(obj, status=201)

    async def update_item(request: web.Request) -> web.Response:
        who, ident, data, kernel = principal(request), path_int(request), await read_json(request), request.app[KERNEL]
        obj, revoked = await store_of(request).run(admin.update, res, who, deps_of(kernel), ident, data, request.remote or "")
        if res.refreshes_warnings:
            await kernel.refresh_warnings()
        if revoked and res.principal:
            kernel.events.publish(tokens_revoked_event(res.principal, ident, obj.get("company_id")))
        publish_admin(request, res, "updated", obj)
        return web.json_response(obj)

    async def delete_item(request: web.Request) -> web.Response:
        who, ident, kernel = principal(request), path_int(request), request.app[KERNEL]
        obj = await store_of(request).run(admin.delete, res, who, deps_of(kernel), ident, request.remote or "")
        await _changed(request, res, "deleted", obj)
        return web.Response(status=204)

    base = f"/api/v1/{res.name.replace('_', '-')}"
    bounds = {"minimum": -(10**9), "maximum": 10**9}
    filters = tuple((f.name, f.type, f"only {res.name} whose {f.name} equals this", bounds if f.type == "integer" else {})
                    for f in res.fields if f.filter and f.name != "company_id")
    paging = (("limit", "integer", "page size, 1-1000 (default 50)", {"minimum": 1, "maximum": 1000}),
              ("offset", "integer", "items to skip", {"minimum": 0, "maximum": 10**9}),
              ("q", "string", "case-insensitive search"), ("company_id", "integer", "only this company", {"minimum": 0, "maximum": 10**9}))
    routes = [
        Route("GET", base, list_items, "admin", f"List {res.name}", tag, query=paging + filters),
        Route("GET", base + "/{id}", get_item, "admin", f"Read one {res.singular}", tag),
        Route("DELETE", base + "/{id}", delete_item, "admin", f"Delete a {res.singular}", tag, status=204, errors=(409,)),
    ]
    # check_input holds the password rules of the server's config (auth.password_*), which no fixed schema states.
    rules = ((PASSWORD_RULES,) if res.check_input else ()) + RULES.get(res.name, ())
    if res.creatable:
        routes.append(Route("POST", base, create_item, "admin", f"Create a {res.singular}", tag, body=input_schema(res, True), status=201,
                            errors=(409, 422), rules=rules))
    if res.updatable:
        routes.append(Route("PATCH", base + "/{id}", update_item, "admin", f"Change a {res.singular}", tag, body=input_schema(res, False),
                            errors=(409, 422), rules=rules))
    return routes
