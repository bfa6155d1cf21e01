"""Users import endpoints (guide 7.2): import definitions, manual and dry runs, run reports.

An admin manages the imports of the domains of the companies they manage; any other
import answers 404.  The bind password is write-only: the API answers ``password_set``.
The checks and the SQL are in ``twpcore.admin.user_imports``; the runs are the users
import service's (``kernel.user_imports``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from twpcore.admin import user_imports as admin
from twpcore.http.core import KERNEL, ApiError, Route, bad_request, path_int, principal, query_int, read_json, store_of
from twpcore.user_imports import ATTRIBUTE, NUMBER_FORMS, SCHEDULES, SECURITY, SOURCES, SYNC_TYPES, TLS_VERIFY, USER_FIELDS, UserImportError

TAG = "user imports"
BASE = "/api/v1/user-imports"
TEXT = r"^[^\x00-\x1f]*$"
"""A text field: no control character."""
NAMED = r"^[^\x00-\x1f]*[^\s\x00-\x1f][^\x00-\x1f]*$"
"""A text field that must not be blank either."""
RULES = ("source ldap or active_directory: host (a name or IP address) and base_dn are needed, and a filter is in parentheses; "
         "source pbx: link is needed and names a PBX link serving the domain (else 422)",
         "schedule interval needs every; schedule daily needs at",
         "ca_file is set by super users only (else 403)")


def _schema(create: bool) -> dict[str, Any]:
    def s(typ: Any, description: str, **more: Any) -> dict[str, Any]:
        return {"type": typ, "description": description, **more}

    props: dict[str, Any] = {
        "domain_id": s("integer", "the domain whose users the import creates"),
        "name": s("string", "the import's name (guide 7.2.3: description of the import link)", maxLength=200, pattern=NAMED),
        "description": s("string", "free text", maxLength=1000, pattern=TEXT),
        "source": s("string", "ldap, active_directory or pbx (guide 7.2)", enum=list(SOURCES)),
        "host": s("string", "LDAP server or domain controller (name or IP address)", maxLength=255, pattern=TEXT),
        "port": s(["integer", "null"], "TCP port; default 389, or 636 with security ldaps", minimum=1, maximum=65535),
        "security": s("string", "none, starttls or ldaps", enum=list(SECURITY)),
        "tls_verify": s("string", "full: chain and host name; ca: chain only; none: no check (lab only)", enum=list(TLS_VERIFY)),
        "ca_file": s("string", "PEM file on the server of the CA(s) that signed the LDAP server's certificate; empty: the system CAs "
                     "(super users only)", maxLength=1000, pattern=TEXT),
        "bind_dn": s("string", "DN (or user@domain for AD) the import binds as", maxLength=1000, pattern=TEXT),
        "password": s(["string", "null"], "bind password; write-only (the API answers password_set); null clears it", writeOnly=True,
                      maxLength=1024, pattern=TEXT),
        "base_dn": s("string", "where the search starts (the guide's connection string)", maxLength=1000, pattern=TEXT),
        "filter": s("string", "LDAP filter; default (objectClass=inetOrgPerson), AD: (sAMAccountType=805306368)", maxLength=4000, pattern=TEXT),
        "page_size": s(["integer", "null"], "entries per page of the paged search; default 500, AD 1000", minimum=0, maximum=100000),
        "link": s("string", "PBX source: the name of the domain's [pbx.links.<name>]", maxLength=200, pattern=TEXT),
        "fields": s("object", f"field mapping overrides {{TWP field: source attribute}}; TWP fields: {', '.join(USER_FIELDS)}; "
                    "null or empty: the default attribute (login and phone always need one)", additionalProperties=False,
                    properties={name: {"type": "string", "pattern": f"^{ATTRIBUTE.pattern}$"} if name in ("login", "phone")
                                else {"type": ["string", "null"], "pattern": f"^({ATTRIBUTE.pattern})?$"} for name in USER_FIELDS}),
        "number_form": s("string", "extension: the phone number's last internal-length digits; as_is: the whole number", enum=list(NUMBER_FORMS)),
        "sync_type": s("string", "full, insert_update_disable, insert_update or update (guide 7.2)", enum=list(SYNC_TYPES)),
        "group_ids": s("array", "groups of the domain every imported user joins", maxItems=100,
                       items={"type": "integer", "minimum": 1}),
        "schedule": s("string", "manual, interval (every) or daily (at)", enum=list(SCHEDULES)),
        "every": s(["integer", "null"], "seconds between two runs (schedule interval)", minimum=1, maximum=604800),
        "at": s(["string", "null"], "time of day HH:MM of the run (schedule daily)", pattern="^([01][0-9]|2[0-3]):[0-5][0-9]$"),
        "enabled": s("boolean", "false: scheduled runs stop (manual runs still work)"),
    }
    if not create:
        props["domain_id"] = {**props["domain_id"], "readOnly": True, "description": "set when created; cannot be changed"}
        props["source"] = {**props["source"], "readOnly": True, "description": "set when created; cannot be changed"}
    out: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": props}
    if create:
        out["required"] = ["domain_id", "name", "source"]
    return out


def _publish(request: web.Request, action: str, obj: dict[str, Any]) -> None:
    request.app[KERNEL].events.publish(admin.admin_event(action, obj))


async def list_imports(request: web.Request) -> web.Response:
    query = admin.ListQuery(query_int(request, "limit", 50, lo=1, hi=1000), query_int(request, "offset", 0),
                            query_int(request, "domain_id", None), query_int(request, "company_id", None))
    return web.json_response(await store_of(request).run(admin.list_definitions, principal(request), query))


async def get_import(request: web.Request) -> web.Response:
    return web.json_response(await store_of(request).run(admin.read, principal(request), path_int(request)))


async def create_import(request: web.Request) -> web.Response:
    who, kernel = principal(request), request.app[KERNEL]
    data = await read_json(request)
    obj = await store_of(request).run(admin.create, kernel.config, who, data, request.remote or "")
    kernel.user_imports.changed()
    _publish(request, "created", obj)
    return web.json_response(obj, status=201)


async def update_import(request: web.Request) -> web.Response:
    who, kernel, ident = principal(request), request.app[KERNEL], path_int(request)
    data = await read_json(request)
    obj = await store_of(request).run(admin.update, kernel.config, who, ident, data, request.remote or "")
    kernel.user_imports.changed()
    _publish(request, "updated", obj)
    return web.json_response(obj)


async def delete_import(request: web.Request) -> web.Response:
    who, kernel, ident = principal(request), request.app[KERNEL], path_int(request)
    if kernel.user_imports.is_running(ident):
        raise ApiError(409, "run_in_progress", f"user import {ident} is running; delete it when the run has finished")
    obj = await store_of(request).run(admin.delete, who, ident, request.remote or "")
    kernel.user_imports.changed()
    _publish(request, "deleted", obj)
    return web.Response(status=204)


async def run_import(request: web.Request) -> web.Response:
    who, kernel, ident = principal(request), request.app[KERNEL], path_int(request)
    raw = request.query.get("dry_run", "false")
    if raw not in ("true", "false"):
        raise bad_request(f"query parameter dry_run: expected true or false, got {raw[:20]!r}", "dry_run")
    row = await store_of(request).run(admin.managed, who, ident)
    try:
        report = await kernel.user_imports.run(ident, "manual", dry_run=raw == "true")
    except UserImportError as exc:
        raise admin.api_error(exc) from None
    await store_of(request).run(admin.audit_run, who, ident, row["company_id"], request.remote or "",
                                {"run": report.id, "status": report.status, "dry_run": report.dry_run})
    return web.json_response(report.as_json())


async def list_runs(request: web.Request) -> web.Response:
    who, kernel, ident = principal(request), request.app[KERNEL], path_int(request)
    limit = query_int(request, "limit", 20, lo=1, hi=200)
    offset = query_int(request, "offset", 0)
    await store_of(request).run(admin.managed, who, ident)
    return web.json_response(await kernel.user_imports.history(ident, limit, offset))


def user_import_routes() -> list[Route]:
    paging = (("limit", "integer", "page size, 1-1000 (default 50)", {"minimum": 1, "maximum": 1000}), ("offset", "integer", "items to skip"))
    return [
        Route("GET", BASE, list_imports, "admin", "List users imports (guide 7.2)", TAG,
              query=paging + (("domain_id", "integer", "only this domain"), ("company_id", "integer", "only this company"))),
        Route("POST", BASE, create_import, "admin", "Create a users import", TAG, body=_schema(True), status=201,
              errors=(422,), rules=RULES),
        Route("GET", BASE + "/{id}", get_import, "admin", "Read one users import", TAG),
        Route("PATCH", BASE + "/{id}", update_import, "admin", "Change a users import", TAG, body=_schema(False),
              errors=(422,), rules=RULES),
        Route("DELETE", BASE + "/{id}", delete_import, "admin", "Delete a users import (the users it created stay)", TAG, status=204),
        Route("POST", BASE + "/{id}/run", run_import, "admin", "Run a users import now and answer its report", TAG,
              query=(("dry_run", "boolean", "true: compute and report the changes, write nothing"),)),
        Route("GET", BASE + "/{id}/runs", list_runs, "admin", "Reports of an import's runs, newest first", TAG,
              query=(("limit", "integer", "page size, 1-200 (default 20)", {"minimum": 1, "maximum": 200}), ("offset", "integer", "items to skip"))),
    ]
