"""Building the aiohttp application: routes, middleware, OpenAPI document, lifecycle."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import weakref
from collections.abc import Collection
from typing import Any

from aiohttp import WSCloseCode, web

import twpcore
from twpcore.app import Kernel
from twpcore.http.call_logs import call_log_routes
from twpcore.http.callback import callback_routes, install_limiters
from twpcore.http.cluster import cluster_routes
from twpcore.http.console import add_console_routes
from twpcore.http.core import KERNEL, MAX_ID, MAX_INT, OPENAPI, WEBSOCKETS, Route, error_middleware, guard, query_schema
from twpcore.http.dialplan import dialplan_routes
from twpcore.http.directories import directory_routes
from twpcore.http.negotiate import negotiate_routes
from twpcore.http.presence import presence_routes
from twpcore.http.price_lists import price_list_routes
from twpcore.http.reception import reception_routes
from twpcore.http.resources import RESOURCES, make_handlers
from twpcore.http.rights_objects import rights_objects_routes
from twpcore.http.routes import kernel_routes
from twpcore.http.sessions import session_routes
from twpcore.http.sms import sms_routes
from twpcore.http.teamwork import teamwork_routes
from twpcore.http.telephony import CALL_ID, telephony_routes
from twpcore.http.traces import trace_routes
from twpcore.http.user_imports import user_import_routes

log = logging.getLogger(__name__)


@functools.cache
def kernel_route_keys() -> frozenset[tuple[str, str]]:
    """The (method, path) pairs this layer serves itself: no plugin route may take one (``Kernel.build(reserved_routes=...)``)."""
    return frozenset((r.method, r.path) for r in all_routes()) | {("GET", "/api/v1/openapi.json")}


def all_routes() -> list[Route]:
    # Fixed paths first: /api/v1/devices/states must win over /api/v1/devices/{id}.
    routes: list[Route] = telephony_routes()
    # Dedicated handlers (directories) replace the generic CRUD of the same paths.
    routes += directory_routes()
    dedicated = {(r.method, r.path) for r in routes}
    for res in RESOURCES.values():
        routes += [r for r in make_handlers(res) if (r.method, r.path) not in dedicated]
    routes += kernel_routes()
    routes += negotiate_routes()
    routes += session_routes()
    routes += dialplan_routes()
    routes += callback_routes()
    routes += sms_routes()
    routes += trace_routes()
    routes += user_import_routes()
    routes += call_log_routes()
    routes += rights_objects_routes()
    routes += presence_routes()
    routes += teamwork_routes()
    routes += reception_routes()
    routes += cluster_routes()
    routes += price_list_routes()
    return routes


ERRORS = {409: "conflict with the current state (an existing object, a limit, no device...)", 422: "valid JSON the server cannot act on",
          426: "upgrade required: this is a WebSocket (see the Upgrade header)", 429: "too many attempts; see Retry-After",
          501: "the PBX driver does not support this operation",
          503: "not available now (a PBX link down, the server not ready); retry later"}


JSON_VALUE_REF = "#/components/schemas/JsonValue"
JSON_VALUE = {
    "description": "any JSON value; numbers (integers and floats alike) within -2^63..2^63-1, as every body is checked (check_value)",
    "anyOf": [
        {"type": ["string", "boolean", "null"]},
        {"type": "number", "minimum": -MAX_INT - 1, "maximum": MAX_INT},
        {"type": "array", "items": {"$ref": JSON_VALUE_REF}},
        {"type": "object", "additionalProperties": {"$ref": JSON_VALUE_REF}},
    ],
}
"""What a free-form part of a body (an object of options, an array of records) may hold: the document says what check_value refuses."""
_COMPOSED = ("$ref", "anyOf", "oneOf", "allOf", "not", "enum", "const")


def _value_schema(schema: Any, top: bool) -> Any:
    """``schema`` with the bounds the server enforces where it declares none, and its free-form parts spelled out.

    A top-level field (and its items) is checked by ``check_body``: an integer fits the store's
    32-bit INTEGER.  Deeper, every number is checked by ``check_value`` (signed 64 bits), and an
    object's undeclared keys or an array's undeclared items hold any ``JsonValue``.
    """
    if not isinstance(schema, dict):
        return schema
    if "type" not in schema and not any(k in schema for k in _COMPOSED):
        return {**schema, "$ref": JSON_VALUE_REF}
    types: list[Any] = schema["type"] if isinstance(schema.get("type"), list) else [schema.get("type")]
    out = dict(schema)
    if "integer" in types:
        out = {"minimum": -MAX_ID - 1, "maximum": MAX_ID, **out} if top else {"minimum": -MAX_INT - 1, "maximum": MAX_INT, **out}
    elif "number" in types:
        out = {"minimum": -MAX_INT - 1, "maximum": MAX_INT, **out}
    if "object" in types:
        if isinstance(out.get("properties"), dict):
            out["properties"] = {k: _value_schema(v, False) for k, v in out["properties"].items()}
        extra = out.get("additionalProperties", True)
        out["additionalProperties"] = {"$ref": JSON_VALUE_REF} if extra is True else _value_schema(extra, False)
    if "array" in types:
        items = out.get("items")
        out["items"] = {"$ref": JSON_VALUE_REF} if items is None else _value_schema(items, top)
    for key in ("anyOf", "oneOf"):
        if isinstance(out.get(key), list):
            out[key] = [_value_schema(branch, top) for branch in out[key]]
    return out


def body_schema(body: dict[str, Any]) -> dict[str, Any]:
    """A route's body schema as the document shows it: the bounds the server checks, its free-form parts spelled out (``_value_schema``)."""
    props = body.get("properties")
    out = dict(body)
    if isinstance(props, dict):
        out["properties"] = {k: _value_schema(v, True) for k, v in props.items()}
    extra = out.get("additionalProperties", True)
    out["additionalProperties"] = {"$ref": JSON_VALUE_REF} if extra is True else _value_schema(extra, False)
    return out


def names_objects(route: Route) -> bool:
    """Whether a request names objects in its query or body (``domain_id``, ``user_ids``, ``device``...), each of which may not exist: a 404."""
    names = [q[0] for q in route.query] + list((route.body or {}).get("properties", {}))
    return any(n.endswith(("_id", "_ids")) or n in ("device", "ids") for n in names)


def openapi(routes: list[Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the routes actually served."""
    paths: dict[str, Any] = {}
    error = {"$ref": "#/components/schemas/Error"}
    for r in routes:
        op: dict[str, Any] = {
            "summary": r.summary or r.path,
            "operationId": f"{r.method.lower()}_{re.sub(r'[^a-zA-Z0-9]+', '_', r.path.removeprefix('/api/v1/')).strip('_')}",
            "tags": [r.tag],
            "responses": {
                str(r.status): {"description": "no content"}
                if r.status == 204
                else {"description": "switching protocols: the WebSocket is open"}
                if r.status == 101
                else {
                    "description": "created" if r.status == 201 else "success",
                    "content": {"application/json": {"schema": r.response or {"type": "object"}}},
                },
                "400": {"description": "bad request", "content": {"application/json": {"schema": error}}},
            },
        }
        if r.access != "public":
            op["security"] = [{"bearer": []}]
            op["responses"]["401"] = {"description": "missing, expired or revoked token", "content": {"application/json": {"schema": error}}}
            op["responses"]["403"] = {"description": "not allowed for this caller", "content": {"application/json": {"schema": error}}}
        else:
            op["security"] = []
        op["x-twp-access"] = r.access
        if r.plugin:
            op["x-twp-plugin"] = r.plugin
        for code in r.errors:
            op["responses"][str(code)] = {"description": ERRORS.get(code, "error"), "content": {"application/json": {"schema": error}}}
        params = [{"name": n, "in": "path", "required": True,
                   "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID} if n in ("id", "member")
                   else {"type": "string", "pattern": CALL_ID.pattern} if n == "call_id" else {"type": "string"}}
                  for n in re.findall(r"{(\w+)}", r.path)]
        params += [
            {"name": q[0], "in": "query", "required": bool(len(q) > 3 and q[3].get("required")), "schema": query_schema(q), "description": q[2]}
            for q in r.query
        ]
        if params:
            op["parameters"] = params
        if r.body is not None:
            op["requestBody"] = {"required": bool(r.body.get("required")), "content": {"application/json": {"schema": body_schema(r.body)}}}
        if r.rules:
            op["x-twp-rules"] = list(r.rules)
            op["responses"]["400"]["description"] = "bad request, or one of these rules broken: " + "; ".join(r.rules)
        if "{" in r.path or names_objects(r):
            op["responses"]["404"] = {
                "description": "not found (or in a company you may not see)",
                "content": {"application/json": {"schema": error}},
            }
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "TWP API",
            "version": twpcore.__version__,
            "description": "Telephony gateway API. Errors are JSON objects {error, detail, field}. "
            "No string (nor object key) may contain NUL (\\u0000), and bodies nest at most 32 levels.",
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "token from POST /api/v1/auth/login or /api/v1/auth/admin-login"}
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "detail"],
                    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}, "field": {"type": ["string", "null"]}},
                },
                "JsonValue": JSON_VALUE,
            },
        },
    }


def routed_path(path: str, paths: Collection[str]) -> str:
    """``path`` as the router matches it: a ``{name}`` segment never takes the fixed name of a sibling path.

    ``/api/v1/devices/{id}`` does not match ``/api/v1/devices/states``, so a method that the fixed
    path lacks answers 405 with ``Allow`` (as the document says) instead of a 400 about the id.
    """
    original = path.split("/")
    segments = list(original)
    for i, segment in enumerate(original):
        if not segment.startswith("{"):
            continue
        fixed = sorted({other[i] for other in (p.split("/") for p in paths) if len(other) == len(original) and not other[i].startswith("{")
                        and other[:i] == original[:i] and other[i + 1:] == original[i + 1:]})
        if fixed:
            segments[i] = f"{{{segment[1:-1]}:(?!(?:{'|'.join(map(re.escape, fixed))})$)[^/]+}}"
    return "/".join(segments)


def create_app(kernel: Kernel, *, manage_kernel: bool = True) -> web.Application:
    """The aiohttp application serving ``/api/v1``; starts and stops the kernel with it."""
    # max_field_size: Kerberos tickets of Active Directory users in many groups make Authorization headers up to 64 KiB.
    app = web.Application(middlewares=[error_middleware], client_max_size=kernel.config.http.max_request_bytes,
                          handler_args={"max_field_size": 65536})
    app[KERNEL] = kernel
    install_limiters(app)
    app[WEBSOCKETS] = weakref.WeakSet()
    routes = all_routes() + list(kernel.routes)
    seen: set[tuple[str, str]] = set()
    paths = {r.path for r in routes}
    for r in routes:
        key = (r.method, r.path)
        if key in seen:
            if r.plugin:
                kernel.plugins.fail(r.plugin, "twp_register_routes", ValueError(f"route {r.method} {r.path} is already taken"))
                continue
            raise RuntimeError(f"duplicate kernel route {key}")
        seen.add(key)
        app.router.add_route(r.method, routed_path(r.path, paths), guard(r))
    served = [r for r in routes if (r.method, r.path) in seen]
    document = openapi(served)
    app[OPENAPI] = document

    body = json.dumps(document)

    async def openapi_json(request: web.Request) -> web.Response:
        resp = web.Response(text=body, content_type="application/json")
        resp.enable_compression()  # ~250 KB of JSON; the API explorer of the console loads it
        return resp

    async def index(request: web.Request) -> web.Response:
        return web.json_response({"name": "TWP", "version": twpcore.__version__, "api": "/api/v1", "openapi": "/api/v1/openapi.json"})

    app.router.add_get("/api/v1/openapi.json", openapi_json)
    add_console_routes(app, index)

    # on_shutdown runs before aiohttp waits for the open requests to end (cleanup_ctx only
    # after that wait): closing the sockets here ends their handlers at once.
    app.on_shutdown.append(close_websockets)
    if manage_kernel:
        async def lifecycle(app: web.Application):
            await kernel.start()
            yield
            await kernel.stop()

        app.cleanup_ctx.append(lifecycle)
    return app


async def close_websockets(app: web.Application) -> None:
    """Close every open WebSocket with 1001 (going away), all at once, so clients know to reconnect elsewhere or later."""
    sockets = [*app[WEBSOCKETS]]
    if not sockets:
        return
    log.info("shutting down: closing %d WebSocket(s) with code 1001 (going away)", len(sockets))
    await asyncio.gather(*(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for ws in sockets), return_exceptions=True)
