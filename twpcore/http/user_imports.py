"""Users import endpoints (guide 7.2): import definitions, manual and dry runs, run reports.

An admin manages the imports of the domains of the companies they manage; any other
import answers 404.  The bind password is write-only: the API answers ``password_set``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web

from twpcore.events import Event
from twpcore.http.core import KERNEL, ApiError, Route, bad_request, path_int, principal, query_int, read_json
from twpcore.http.resources import audit, require_managed
from twpcore.store import schema as t
from twpcore.user_imports import (
    NUMBER_FORMS,
    SCHEDULES,
    SECURITY,
    SOURCES,
    SYNC_TYPES,
    TLS_VERIFY,
    USER_FIELDS,
    UserImportError,
    check_definition,
    definition_select,
    load_definition,
    present,
)

TAG = "user imports"
BASE = "/api/v1/user-imports"


def _schema(create: bool) -> dict[str, Any]:
    def s(typ: Any, description: str, **more: Any) -> dict[str, Any]:
        return {"type": typ, "description": description, **more}

    props: dict[str, Any] = {
        "domain_id": s("integer", "the domain whose users the import creates"),
        "name": s("string", "the import's name (guide 7.2.3: description of the import link)", maxLength=200),
        "description": s("string", "free text", maxLength=1000),
        "source": s("string", "ldap, active_directory or pbx (guide 7.2)", enum=list(SOURCES)),
        "host": s("string", "LDAP server or domain controller (name or IP address)", maxLength=255),
        "port": s(["integer", "null"], "TCP port; default 389, or 636 with security ldaps", minimum=1, maximum=65535),
        "security": s("string", "none, starttls or ldaps", enum=list(SECURITY)),
        "tls_verify": s("string", "full: chain and host name; ca: chain only; none: no check (lab only)", enum=list(TLS_VERIFY)),
        "ca_file": s("string", "PEM file on the server of the CA(s) that signed the LDAP server's certificate; empty: the system CAs (super users only)", maxLength=1000),
        "bind_dn": s("string", "DN (or user@domain for AD) the import binds as", maxLength=1000),
        "password": s(["string", "null"], "bind password; write-only (the API answers password_set); null clears it", writeOnly=True, maxLength=1024),
        "base_dn": s("string", "where the search starts (the guide's connection string)", maxLength=1000),
        "filter": s("string", "LDAP filter; default (objectClass=inetOrgPerson), AD: (sAMAccountType=805306368)", maxLength=4000),
        "page_size": s(["integer", "null"], "entries per page of the paged search; default 500, AD 1000", minimum=0, maximum=100000),
        "link": s("string", "PBX source: the name of the domain's [pbx.links.<name>]", maxLength=200),
        "fields": s("object", f"field mapping overrides {{TWP field: source attribute}}; TWP fields: {', '.join(USER_FIELDS)}"),
        "number_form": s("string", "extension: the phone number's last internal-length digits; as_is: the whole number", enum=list(NUMBER_FORMS)),
        "sync_type": s("string", "full, insert_update_disable, insert_update or update (guide 7.2)", enum=list(SYNC_TYPES)),
        "group_ids": s("array", "groups of the domain every imported user joins", items={"type": "integer"}),
        "schedule": s("string", "manual, interval (every) or daily (at)", enum=list(SCHEDULES)),
        "every": s(["integer", "null"], "seconds between two runs (schedule interval)", minimum=1, maximum=604800),
        "at": s(["string", "null"], "time of day HH:MM of the run (schedule daily)"),
        "enabled": s("boolean", "false: scheduled runs stop (manual runs still work)"),
    }
    if not create:
        props["domain_id"] = {**props["domain_id"], "readOnly": True, "description": "set when created; cannot be changed"}
        props["source"] = {**props["source"], "readOnly": True, "description": "set when created; cannot be changed"}
    out: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": props}
    if create:
        out["required"] = ["domain_id", "name", "source"]
    return out


def _api(exc: UserImportError) -> ApiError:
    return ApiError(exc.status, exc.error, exc.detail, exc.field)


def _publish(request: web.Request, action: str, obj: dict[str, Any]) -> None:
    request.app[KERNEL].events.publish(Event(f"admin.user_import.{action}", {"id": obj["id"], "resource": "user_imports"},
                                             obj.get("company_id"), obj.get("domain_id")))


def _managed(conn: sa.Connection, who: Any, ident: int) -> dict[str, Any]:
    row = load_definition(conn, ident)
    if row is None or not who.manages(row["company_id"]):
        raise ApiError(404, "not_found", f"user import {ident} not found")
    return row


async def list_imports(request: web.Request) -> web.Response:
    who = principal(request)
    kernel = request.app[KERNEL]
    limit = query_int(request, "limit", 50, lo=1, hi=1000)
    offset = query_int(request, "offset", 0)
    filters = []
    domain_id = query_int(request, "domain_id", None)
    if domain_id is not None:
        filters.append(t.user_imports.c.domain_id == domain_id)
    company_id = query_int(request, "company_id", None)
    if company_id is not None:
        filters.append(t.domains.c.company_id == company_id)
    if not who.super_user:
        filters.append(t.domains.c.company_id.in_(sorted(who.companies) or [-1]))

    def run(conn: sa.Connection) -> dict[str, Any]:
        sel = definition_select().where(*filters)
        total = conn.execute(sa.select(sa.func.count()).select_from(sel.subquery())).scalar_one()
        rows = conn.execute(sel.order_by(t.user_imports.c.id).limit(limit).offset(offset)).all()
        return {"items": [present(dict(r._mapping)) for r in rows], "total": total, "limit": limit, "offset": offset}

    return web.json_response(await kernel.store.run(run))


async def get_import(request: web.Request) -> web.Response:
    who = principal(request)
    ident = path_int(request)
    row = await request.app[KERNEL].store.run(_managed, who, ident)
    return web.json_response(present(row))


async def create_import(request: web.Request) -> web.Response:
    who = principal(request)
    kernel = request.app[KERNEL]
    data = await read_json(request)
    domain_id = data.get("domain_id")

    def run(conn: sa.Connection) -> dict[str, Any]:
        require_managed(conn, who, "domains", domain_id, "domain_id")
        try:
            values = check_definition(conn, kernel, who, data, None)
        except UserImportError as exc:
            raise _api(exc) from None
        try:
            with conn.begin_nested():
                ident = conn.execute(sa.insert(t.user_imports).values(domain_id=domain_id, **values).returning(t.user_imports.c.id)).scalar_one()
        except sa.exc.IntegrityError:
            raise ApiError(409, "conflict", f"user import {values['name']!r} already exists in domain {domain_id}; import names are unique within a domain", "name") from None
        row = load_definition(conn, ident)
        assert row is not None
        audit(conn, who, "create", "user import", ident, row["company_id"], request.remote or "")
        return present(row)

    obj = await kernel.store.run(run)
    kernel.user_imports.changed()
    _publish(request, "created", obj)
    return web.json_response(obj, status=201)


async def update_import(request: web.Request) -> web.Response:
    who = principal(request)
    kernel = request.app[KERNEL]
    ident = path_int(request)
    data = await read_json(request)

    def run(conn: sa.Connection) -> dict[str, Any]:
        row = _managed(conn, who, ident)
        try:
            values = check_definition(conn, kernel, who, data, {k: v for k, v in row.items() if k != "password"})
        except UserImportError as exc:
            raise _api(exc) from None
        try:
            with conn.begin_nested():
                conn.execute(sa.update(t.user_imports).where(t.user_imports.c.id == ident).values(**values))
        except sa.exc.IntegrityError:
            raise ApiError(409, "conflict", f"user import {values['name']!r} already exists in domain {row['domain_id']}; import names are unique within a domain", "name") from None
        audit(conn, who, "update", "user import", ident, row["company_id"], request.remote or "", {"fields": sorted(data)})
        fresh = load_definition(conn, ident)
        assert fresh is not None
        return present(fresh)

    obj = await kernel.store.run(run)
    kernel.user_imports.changed()
    _publish(request, "updated", obj)
    return web.json_response(obj)


async def delete_import(request: web.Request) -> web.Response:
    who = principal(request)
    kernel = request.app[KERNEL]
    ident = path_int(request)

    def run(conn: sa.Connection) -> dict[str, Any]:
        row = _managed(conn, who, ident)
        # The users it created stay (as manual users): deleting an import deletes no user.
        conn.execute(sa.delete(t.user_imports).where(t.user_imports.c.id == ident))
        audit(conn, who, "delete", "user import", ident, row["company_id"], request.remote or "")
        return present(row)

    if kernel.user_imports.is_running(ident):
        raise ApiError(409, "run_in_progress", f"user import {ident} is running; delete it when the run has finished")
    obj = await kernel.store.run(run)
    kernel.user_imports.changed()
    _publish(request, "deleted", obj)
    return web.Response(status=204)


async def run_import(request: web.Request) -> web.Response:
    who = principal(request)
    kernel = request.app[KERNEL]
    ident = path_int(request)
    raw = request.query.get("dry_run", "false")
    if raw not in ("true", "false"):
        raise bad_request(f"query parameter dry_run: expected true or false, got {raw[:20]!r}", "dry_run")
    row = await kernel.store.run(_managed, who, ident)
    try:
        report = await kernel.user_imports.run(ident, "manual", dry_run=raw == "true")
    except UserImportError as exc:
        raise _api(exc) from None
    await kernel.store.run(lambda conn: audit(conn, who, "run", "user import", ident, row["company_id"], request.remote or "",
                                              {"run": report.id, "status": report.status, "dry_run": report.dry_run}))
    return web.json_response(report.as_json())


async def list_runs(request: web.Request) -> web.Response:
    who = principal(request)
    kernel = request.app[KERNEL]
    ident = path_int(request)
    limit = query_int(request, "limit", 20, lo=1, hi=200)
    offset = query_int(request, "offset", 0)
    await kernel.store.run(_managed, who, ident)
    return web.json_response(await kernel.user_imports.history(ident, limit, offset))


def user_import_routes() -> list[Route]:
    paging = (("limit", "integer", "page size, 1-1000 (default 50)"), ("offset", "integer", "items to skip"))
    return [
        Route("GET", BASE, list_imports, "admin", "List users imports (guide 7.2)", TAG,
              query=paging + (("domain_id", "integer", "only this domain"), ("company_id", "integer", "only this company"))),
        Route("POST", BASE, create_import, "admin", "Create a users import", TAG, body=_schema(True), status=201),
        Route("GET", BASE + "/{id}", get_import, "admin", "Read one users import", TAG),
        Route("PATCH", BASE + "/{id}", update_import, "admin", "Change a users import", TAG, body=_schema(False)),
        Route("DELETE", BASE + "/{id}", delete_import, "admin", "Delete a users import (the users it created stay)", TAG, status=204),
        Route("POST", BASE + "/{id}/run", run_import, "admin", "Run a users import now and answer its report", TAG,
              query=(("dry_run", "boolean", "true: compute and report the changes, write nothing"),)),
        Route("GET", BASE + "/{id}/runs", list_runs, "admin", "Reports of an import's runs, newest first", TAG,
              query=(("limit", "integer", "page size, 1-200 (default 20)"), ("offset", "integer", "items to skip"))),
    ]
