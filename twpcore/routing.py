"""What the kernel, its HTTP layer and plugins share about routes, below both.

A route declaration (``Route``) and the check of a plugin's ``register(method, path,
handler, ...)`` call, the caller of a request (``principal``) and the error answered as
JSON (``ApiError``).  The kernel checks the routes plugins register (``Kernel.build``) and
``twpcore.plugin_api`` hands plugins ``ApiError`` and ``principal_of`` from here; the
HTTP layer (``twpcore.http``) serves the routes.  Neither needs to import the other.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from aiohttp import web

from twpcore.auth import Principal

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ACCESS = ("public", "user", "admin", "any")
PRINCIPAL = web.RequestKey("principal", object)


class ApiError(Exception):
    """An error answered as JSON with ``status``."""

    def __init__(self, status: int, error: str, detail: str, field: str | None = None):
        super().__init__(detail)
        self.status, self.error, self.detail, self.field = status, error, detail, field


def bad_request(detail: str, field: str | None = None) -> ApiError:
    return ApiError(400, "bad_request", detail, field)


def not_found(what: str, ident: Any) -> ApiError:
    return ApiError(404, "not_found", f"{what} {ident} not found", None)


def forbidden(detail: str) -> ApiError:
    return ApiError(403, "forbidden", detail)


@attrs.frozen
class Route:
    """One HTTP route and what the OpenAPI document says of it."""

    method: str
    path: str
    handler: Handler
    access: str = "admin"
    summary: str = ""
    tag: str = "misc"
    body: dict[str, Any] | None = None
    """JSON schema of the request body, when there is one."""
    query: tuple[tuple[Any, ...], ...] = ()
    """Query parameters: (name, JSON type, description), optionally a fourth item of schema bounds (``{"minimum": 1}``)."""
    plugin: str | None = None
    """The plugin that registered it; ``None`` for kernel routes."""
    status: int = 200
    """The status of a successful answer (201 for creations, 204 for empty answers, 101 for a WebSocket handshake)."""
    errors: tuple[int, ...] = ()
    """Error statuses it may answer besides 400, 401, 403 and 404 (409 conflict, 503 unavailable...), for the OpenAPI document."""
    response: dict[str, Any] | None = None
    """JSON schema of the successful answer, for the OpenAPI document (default: any object)."""
    rules: tuple[str, ...] = ()
    """Rules across fields or parameters that no JSON schema expresses ("to must be after from"): a request that
    breaks one answers 400 (422 when it says so), and the OpenAPI document lists them (``x-twp-rules`` and the 400 description)."""


_PATH = re.compile(r"^/api/v1/[A-Za-z0-9_\-/{}.]+$")


def check_plugin_route(plugin: str, call: tuple) -> Route:
    """Validate a ``register(method, path, handler, ...)`` call from ``twp_register_routes``."""
    args, kw = call
    if len(args) != 3:
        raise ValueError(f"register() takes (method, path, handler, *, access=, summary=, body=), got {len(args)} positional arguments")
    method, path, handler = args
    access = kw.pop("access", "user")
    if access not in ACCESS:
        raise ValueError(f"route {path}: access must be one of {ACCESS}, got {access!r}")
    if not isinstance(method, str) or method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        raise ValueError(f"route {path}: unsupported method {method!r}")
    if not isinstance(path, str) or not _PATH.match(path):
        raise ValueError(f"route path must start with /api/v1/, got {path!r}")
    unknown = set(kw) - {"summary", "body", "query", "status", "errors"}
    if unknown:
        raise ValueError(f"route {path}: unknown options {sorted(unknown)}")
    body = kw.get("body")
    if body is not None and (not isinstance(body, dict) or body.get("type") != "object"):
        raise ValueError(f'route {path}: body must be a JSON schema of an object ({{"type": "object", ...}}), got {body!r}'[:300])
    status = kw.get("status", 200)
    if status not in (200, 201, 202, 204):
        raise ValueError(f"route {path}: status must be 200, 201, 202 or 204, got {status!r}")
    errors = tuple(kw.get("errors", ()))
    if not all(isinstance(e, int) and 400 <= e <= 599 for e in errors):
        raise ValueError(f"route {path}: errors must be HTTP error statuses (409, 503...), got {errors!r}")
    return Route(method.upper(), path, handler, access, kw.get("summary", ""), f"plugin:{plugin}", body, tuple(kw.get("query", ())), plugin,
                 status, errors)


def principal(request: web.Request) -> Principal:
    """The authenticated caller of ``request`` (set by the HTTP layer's access guard before the handler runs)."""
    p = request.get(PRINCIPAL)
    if p is None:  # pragma: no cover - the access guard makes this unreachable
        raise ApiError(401, "unauthorized", "not authenticated")
    return p
