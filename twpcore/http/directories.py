"""Directory endpoints: admin CRUD, connection test, sync and history; search, reverse lookup, contact cards;
users' private contacts, contact lists and pushed contacts (guide 8, 9.1.1 and the user guide's contacts).

Admins manage directories of the companies they manage (others answer 404).  Users
search the directories granted to them or to one of their groups (guide 7.4.2); a
private directory shows each user only their own contacts.  Red-listed numbers (guide
8.2.4) never leave the server.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from twpcore.admin.resources import audit, require_managed
from twpcore.directory import admin, contact_lists
from twpcore.directory.service import TEST_STATES, DirectoryError, DirectoryService
from twpcore.http.core import KERNEL, MAX_ID, ApiError, Route, bad_request, path_int, principal, query_int, read_json
from twpcore.kinds import Kind
from twpcore.schema import field_docs
from twpcore.server_side import ServerFacts

TAG = "directories"


def _svc(request: web.Request) -> DirectoryService:
    return request.app[KERNEL].directories


async def _call(coro: Any) -> Any:
    try:
        return await coro
    except DirectoryError as exc:
        raise admin.api_error(exc) from None


def _publish(request: web.Request, action: str, obj: dict[str, Any]) -> None:
    request.app[KERNEL].events.publish(admin.admin_event(action, obj))


async def _managed(request: web.Request, ident: int) -> dict[str, Any]:
    row: dict[str, Any] = await _svc(request).read(admin.managed, principal(request), ident)
    return row


# -- admin ---------------------------------------------------------------------------

async def list_directories(request: web.Request) -> web.Response:
    who = principal(request)
    svc = _svc(request)
    limit = query_int(request, "limit", 50, lo=1, hi=1000)
    offset = query_int(request, "offset", 0)
    domain_id, company_id = query_int(request, "domain_id", None, lo=0), query_int(request, "company_id", None, lo=0)
    query = admin.ListQuery(limit, offset, domain_id, company_id, request.query.get("connector"), request.query.get("type"),
                            request.query.get("q", "").strip().lower())
    total, rows = await svc.read(admin.list_directories, who, query)
    return web.json_response({"items": [svc.present(r) for r in rows], "total": total, "limit": limit, "offset": offset})


async def get_directory(request: web.Request) -> web.Response:
    row = await _managed(request, path_int(request))
    return web.json_response(_svc(request).present(row))


async def create_directory(request: web.Request) -> web.Response:
    who = principal(request)
    svc = _svc(request)
    data = await read_json(request)
    domain_id = data.get("domain_id")
    if not isinstance(domain_id, int) or isinstance(domain_id, bool):
        raise bad_request("directory: field domain_id is required (the domain the directory belongs to)", "domain_id")
    facts = ServerFacts.of(request.app[KERNEL])
    ident = await svc.store.run(admin.create, svc, facts, who, data, domain_id, request.remote or "")
    await svc.changed(ident)
    obj = svc.present(svc.rows[ident])
    _publish(request, "created", obj)
    if obj["connector"] == "twp_users" and obj["type"] != "draft":
        svc._soon(f"users:{ident}", 0.0, lambda: svc.sync(ident, "created"))
    return web.json_response(obj, status=201)


async def update_directory(request: web.Request) -> web.Response:
    who = principal(request)
    svc = _svc(request)
    ident = path_int(request)
    data = await read_json(request)
    row = await _managed(request, ident)
    if row["config_managed"]:
        raise ApiError(409, "config_managed", f"directory {row['name']} is declared in {request.app[KERNEL].config.source}; "
                       "change its [directories] table there")
    if "options" in data:
        admin.check_server_side(svc, ServerFacts.of(request.app[KERNEL]), who, row["connector"], data["options"], row.get("options") or {})
    await svc.store.run(admin.update, svc, who, row, data, request.remote or "")
    await svc.changed(ident)
    obj = svc.present(svc.rows[ident])
    _publish(request, "updated", obj)
    return web.json_response(obj)


async def delete_directory(request: web.Request) -> web.Response:
    who = principal(request)
    svc = _svc(request)
    ident = path_int(request)
    row = await _managed(request, ident)
    if row["config_managed"]:
        raise ApiError(409, "config_managed", f"directory {row['name']} is declared in {request.app[KERNEL].config.source}; "
                       "remove its [directories] table there")
    if svc.is_running(ident):
        raise ApiError(409, "sync_running", f"directory {row['name']} is synchronizing; delete it when the sync has finished")
    await svc.store.run(admin.delete, who, row, request.remote or "")
    await svc.changed(ident)
    _publish(request, "deleted", {"id": ident, "company_id": row["company_id"], "domain_id": row["domain_id"]})
    return web.Response(status=204)


async def test_directory(request: web.Request) -> web.Response:
    row = await _managed(request, path_int(request))
    return web.json_response(await _call(_svc(request).test(row["id"])))


async def sync_directory(request: web.Request) -> web.Response:
    who = principal(request)
    row = await _managed(request, path_int(request))
    report = await _call(_svc(request).sync(row["id"], "api"))
    await _svc(request).store.run(audit, who, "sync", "directory", row["id"], row["company_id"], request.remote or "",
                                  {"status": report.status, "sync_id": report.id})
    return web.json_response(report.as_json())


async def directory_syncs(request: web.Request) -> web.Response:
    row = await _managed(request, path_int(request))
    limit = query_int(request, "limit", 20, lo=1, hi=500)
    offset = query_int(request, "offset", 0)
    return web.json_response(await _svc(request).history(row["id"], limit, offset))


async def connector_types(request: web.Request) -> web.Response:
    kernel = request.app[KERNEL]
    out = []
    for name, rec in sorted(kernel.plugins.types[Kind.DIRECTORY_CONNECTOR].items()):
        cls = rec.cls
        out.append({"name": name, "plugin": rec.plugin, "description": cls.description, "capabilities": sorted(cls.capabilities),
                    "options": field_docs(cls.Config), "default_fields": dict(getattr(cls, "default_fields", None) or {})})
    return web.json_response({"items": out})


# -- search, reverse lookup, cards ------------------------------------------------------

async def _as_user(request: web.Request) -> int:
    """The user a request searches as: the caller, or for an admin the managed user named by ``user_id``."""
    who = principal(request)
    if not who.is_admin:
        return who.id
    uid = query_int(request, "user_id", None, lo=1)
    if uid is None:
        raise bad_request("administrators search as a user: give user_id", "user_id")
    await _svc(request).store.run(require_managed, who, "users", uid, "user_id")
    return uid


async def search(request: web.Request) -> web.Response:
    q = request.query.get("q", "")
    if not q.strip() or len(q) > 200:
        raise bad_request("query parameter q: 1 to 200 characters are required (a name, company, e-mail or number)", "q")
    limit = query_int(request, "limit", 20, lo=1, hi=100)
    offset = query_int(request, "offset", 0, hi=10_000)
    uid = await _as_user(request)
    return web.json_response(await _call(_svc(request).search(uid, q, offset, limit)))


async def reverse(request: web.Request) -> web.Response:
    who = principal(request)
    number = request.query.get("number", "")
    if not number.strip() or len(number) > 64:
        raise bad_request("query parameter number: the number to identify is required (at most 64 characters)", "number")
    svc = _svc(request)
    if who.is_admin:
        domain_id = query_int(request, "domain_id", None, lo=1)
        if domain_id is None:
            raise bad_request("administrators look a number up for a domain: give domain_id", "domain_id")
        await svc.store.run(require_managed, who, "domains", domain_id, "domain_id")
        found = await _call(svc.reverse(number, domain_id=domain_id))
    else:
        found = await _call(svc.reverse(number, user_id=who.id))
    if found is None:
        return web.json_response({"number": number, "found": False, "contact": None})
    return web.json_response({**found, "found": True})


async def contact_card(request: web.Request) -> web.Response:
    who = principal(request)
    return web.json_response(await _call(_svc(request).contact(who.id, path_int(request))))


async def my_directories(request: web.Request) -> web.Response:
    who = principal(request)
    svc = _svc(request)
    _user, ids, _private = await svc.visible_for_user(who.id)
    rows = sorted((svc.rows[i] for i in ids if i in svc.rows), key=lambda r: (r["priority"], r["name"]))
    return web.json_response({"items": [{"id": r["id"], "name": r["name"], "type": r["type"], "connector": r["connector"],
                                         "priority": r["priority"], "labels": r.get("labels") or {}} for r in rows]})


# -- private contacts ----------------------------------------------------------------------

async def list_private(request: web.Request) -> web.Response:
    who = principal(request)
    limit = query_int(request, "limit", 50, lo=1, hi=500)
    offset = query_int(request, "offset", 0)
    return web.json_response(await _call(_svc(request).list_private(who.id, offset, limit)))


async def create_private(request: web.Request) -> web.Response:
    who = principal(request)
    data = await read_json(request)
    return web.json_response(await _call(_svc(request).save_private(who.id, data)), status=201)


async def get_private(request: web.Request) -> web.Response:
    who = principal(request)
    svc = _svc(request)
    row = await _call(svc.private_directory(who.id))
    card = await _call(svc.contact(who.id, path_int(request)))
    if card["directory_id"] != row["id"]:
        raise ApiError(404, "not_found", f"private contact {path_int(request)} not found")
    return web.json_response(card)


async def update_private(request: web.Request) -> web.Response:
    who = principal(request)
    data = await read_json(request)
    return web.json_response(await _call(_svc(request).save_private(who.id, data, path_int(request))))


async def delete_private(request: web.Request) -> web.Response:
    who = principal(request)
    await _call(_svc(request).delete_private(who.id, path_int(request)))
    return web.Response(status=204)


# -- contact lists (user guide 1.4.2-1.4.4) ---------------------------------------------------

async def _may_publish(request: web.Request, user_id: int) -> None:
    kernel = request.app[KERNEL]
    if not await _svc(request).store.run(contact_lists.may_publish, kernel.parameters, user_id):
        raise ApiError(403, "forbidden", "making a list public is not allowed for you (parameter AuthorizePublicList, guide 9.1.8)", "public")


def _list_name(data: dict[str, Any]) -> str | None:
    name = data.get("name")
    if name is None:
        return None
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise bad_request("list: name must be a non-empty string of at most 200 characters", "name")
    return name.strip()


async def lists(request: web.Request) -> web.Response:
    return web.json_response({"items": await _svc(request).read(contact_lists.visible_lists, principal(request).id)})


async def create_list(request: web.Request) -> web.Response:
    who = principal(request)
    data = await read_json(request)
    name = _list_name(data)
    if name is None:
        raise bad_request("list: field name is required", "name")
    if data.get("public"):
        await _may_publish(request, who.id)
    obj = await _svc(request).store.run(contact_lists.create, who.id, name, bool(data.get("public", False)), bool(data.get("visible", True)))
    return web.json_response(obj, status=201)


async def update_list(request: web.Request) -> web.Response:
    who = principal(request)
    ident = path_int(request)
    data = await read_json(request)
    name = _list_name(data)
    if data.get("public"):
        await _may_publish(request, who.id)
    return web.json_response(await _svc(request).store.run(contact_lists.update, who.id, ident, name, data))


async def delete_list(request: web.Request) -> web.Response:
    await _svc(request).store.run(contact_lists.delete, principal(request).id, path_int(request))
    return web.Response(status=204)


async def get_list(request: web.Request) -> web.Response:
    """A list with the contacts the caller may see (another user's public list never shows that user's private contacts)."""
    who = principal(request)
    svc = _svc(request)
    row, ids = await svc.read(contact_lists.visible_list, who.id, path_int(request))
    cards = []
    for cid in ids:
        try:
            cards.append(await svc.contact(who.id, cid))
        except DirectoryError:
            continue
    return web.json_response({**contact_lists.list_json(row, who.id, len(ids)), "items": cards})


async def set_list_contacts(request: web.Request) -> web.Response:
    who = principal(request)
    ident = path_int(request)
    data = await read_json(request)
    ids = data.get("contact_ids")
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids) or len(ids) > 1000:
        raise bad_request("contact_ids: an ordered array of at most 1000 contact ids is required", "contact_ids")
    svc = _svc(request)
    await svc.store.run(contact_lists.own_list, who.id, ident)
    for cid in ids:
        try:
            await svc.contact(who.id, cid)
        except DirectoryError:
            raise ApiError(404, "not_found", f"contact {cid} not found", "contact_ids") from None
    await svc.store.run(contact_lists.set_contacts, ident, ids)
    return await get_list(request)


async def order_lists(request: web.Request) -> web.Response:
    who = principal(request)
    data = await read_json(request)
    ids = data.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise bad_request("ids: the ids of your lists in the order you want them is required", "ids")
    await _svc(request).store.run(contact_lists.order, who.id, ids)
    return await lists(request)


# -- pushed contacts (guide 8.8) ----------------------------------------------------------

async def push(request: web.Request) -> web.Response:
    who = principal(request)
    data = await read_json(request)
    items = data.get("contacts")
    if not isinstance(items, list):
        raise bad_request("contacts: an array of contacts (objects of fields) is required; it replaces your previous push", "contacts")
    report = await _call(_svc(request).push(who.id, request.match_info["name"], items))
    return web.json_response(report.as_json())


CONTACT_BODY = {"type": "object", "additionalProperties": False, "properties": {
    **{f: {"type": "string", "maxLength": 1000} for f in ("last_name", "first_name", "company", "department", "title", "email", "address",
                                                         "city", "zip", "state", "country", "website", "profile_url", "note")},
    **{f: {"type": ["string", "array"], "items": {"type": "string", "maxLength": 1000}, "description": "a number, or several"}
       for f in ("phone", "mobile", "home", "fax", "other", "assistant")},
    **{f"private{i}": {"type": "string", "maxLength": 1000} for i in range(10)}}}
DIRECTORY_PROPS: dict[str, Any] = {
    "domain_id": {"type": "integer", "description": "the domain the directory belongs to (create only)", "x-twp-ref": "domains"},
    "name": {"type": "string", "maxLength": 200},
    "connector": {"type": "string", "description": "connector type: twp_users, private, push, sql, files, ldap... (create only)"},
    "type": {"type": "string", "enum": ["public", "private", "draft"], "description": "guide 8.1; drafts never sync"},
    "priority": {"type": "integer", "minimum": 0, "maximum": 1000000, "description": "lower comes first in search and reverse lookup"},
    "options": {"type": "object", "description":
                "the connector's settings (GET /api/v1/directory-connectors); secrets are shown as *** and kept when sent back as ***"},
    "fields": {"type": "object", "description":
               'TWP field -> "source|options" (guide 8.1), e.g. {"last_name": "sn|m", "phone": "telephoneNumber|p::9{0}::^[0-9]{4}$"}'},
    "labels": {"type": "object", "description": 'names of private0-private9; "[VIP]" marks the VIP field (guide 8.2.3)'},
    "merge": {"type": "boolean", "description": "merge contacts by e-mail with other merge directories (guide 8.2.2)"},
    "sync_daily": {"type": "boolean", "description": "synchronize every day at sync_time (guide 8.2.1)"},
    "sync_time": {"type": ["string", "null"], "description": "HH:MM; null: the timeSynchronizationDirectories parameter"},
    "sync_every": {"type": ["integer", "string", "null"], "description": 'high-frequency sync: seconds, or "15m", "2h"; null: off'},
}
OFFSET = ("offset", "integer", "items to skip")


def paging(most: int, *, offsets: int = 10**9) -> tuple[tuple[Any, ...], ...]:
    """The limit and offset of a list whose handler takes at most ``most`` items a page."""
    return (("limit", "integer", f"page size, 1-{most}", {"minimum": 1, "maximum": most}),
            ("offset", "integer", "items to skip", {"minimum": 0, "maximum": offsets}))
TEST_ANSWER = {"type": "object", "additionalProperties": False, "required": ["ok", "state", "message", "duration"], "properties": {
    "ok": {"type": "boolean", "description": "true when the source was reached (state ready)"},
    "state": {"type": "string", "enum": list(TEST_STATES),
              "description": "what a sync would make of the directory now: ready, retrying (source not ready or no answer), auth_failed, error"},
    "message": {"type": "string", "description": "what the connector found, or why it failed; never a secret or a value read from the environment"},
    "duration": {"type": "number", "description": "seconds the test took"}}}
"""The answer of ``POST /directories/{id}/test``, success or failure (docs/directories.md, "Testing a directory")."""


ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def directory_routes() -> list[Route]:
    create_body = {"type": "object", "additionalProperties": False, "required": ["domain_id", "name", "connector"], "properties": DIRECTORY_PROPS}
    update_body = {"type": "object", "additionalProperties": False, "properties": {k: v for k, v in DIRECTORY_PROPS.items() if k != "domain_id"}}
    list_body = {"type": "object", "additionalProperties": False, "properties": {
        "name": {"type": "string", "pattern": r"\S", "maxLength": 200}, "public": {"type": "boolean"}, "visible": {"type": "boolean"},
        "position": {"type": "integer"}}}
    return [
        # Fixed paths before /api/v1/directories/{id}.
        Route("GET", "/api/v1/directories/search", search, "any", "Search the directories you may see (name, company, e-mail, number)", TAG,
              query=(("q", "string", "text or number, 1-200 characters",
                      {"required": True, "pattern": r"\S", "maxLength": 200}),
                     *paging(100, offsets=10_000),
                     ("user_id", "integer", "administrators: search as this user", {"minimum": 1, "maximum": 10**9})),
              rules=("an administrator gives user_id (a user searches as themself)",)),
        Route("GET", "/api/v1/directories/reverse", reverse, "any", "Identify a number: the highest-priority contact having it", TAG,
              query=(("number", "string", "the number, in any written form (1-64 characters)", {"required": True, "pattern": r"\S", "maxLength": 64}),
                     ("domain_id", "integer", "administrators: the domain to look up for", {"minimum": 1, "maximum": 10**9})),
              rules=("an administrator gives domain_id (a user looks up in their own domain)",)),
        Route("GET", "/api/v1/directories/contacts/{id}", contact_card, "user", "A contact card", TAG),
        Route("GET", "/api/v1/directory-connectors", connector_types, "admin", "Installed directory connector types and their options", TAG),
        Route("GET", "/api/v1/directories", list_directories, "admin", "List directories", TAG,
              query=(*paging(1000), ("q", "string", "name contains"), ("domain_id", "integer", "only this domain"),
                     ("company_id", "integer", "only this company"),
                     ("connector", "string", "only this connector"), ("type", "string", "public, private or draft"))),
        Route("POST", "/api/v1/directories", create_directory, "admin", "Create a directory", TAG, body=create_body, status=201),
        Route("GET", "/api/v1/directories/{id}", get_directory, "admin", "Read a directory", TAG),
        Route("PATCH", "/api/v1/directories/{id}", update_directory, "admin", "Change a directory", TAG, body=update_body),
        Route("DELETE", "/api/v1/directories/{id}", delete_directory, "admin", "Delete a directory and its contacts", TAG, status=204),
        Route("POST", "/api/v1/directories/{id}/test", test_directory, "admin",
              "Test the connection to the directory's source: ok, state (ready, retrying, auth_failed, error), message, duration", TAG,
              response=TEST_ANSWER),
        Route("POST", "/api/v1/directories/{id}/sync", sync_directory, "admin", "Synchronize now; answers the sync report", TAG),
        Route("GET", "/api/v1/directories/{id}/syncs", directory_syncs, "admin", "Sync history, newest first", TAG, query=paging(500)),
        Route("GET", "/api/v1/me/directories", my_directories, "user", "The directories you may search", TAG),
        Route("POST", "/api/v1/me/directories/{name}/push", push, "user",
              "Upload your contacts to a pushed private directory (replaces the previous push)", TAG,
              body={"type": "object", "required": ["contacts"], "properties": {"contacts": {"type": "array", "items": {
                  "description": "a contact: an object of fields; any other item is skipped and reported in the answer's problems "
                                 "(one bad record never refuses the whole push)"}}}}),
        Route("GET", "/api/v1/me/contacts", list_private, "user", "Your private contacts ([TwsPrivate])", TAG, query=paging(500)),
        Route("POST", "/api/v1/me/contacts", create_private, "user", "Create a private contact", TAG, body=CONTACT_BODY, status=201),
        Route("GET", "/api/v1/me/contacts/{id}", get_private, "user", "One of your private contacts", TAG),
        Route("PATCH", "/api/v1/me/contacts/{id}", update_private, "user", "Replace a private contact's fields", TAG, body=CONTACT_BODY),
        Route("DELETE", "/api/v1/me/contacts/{id}", delete_private, "user", "Delete a private contact", TAG, status=204),
        Route("PUT", "/api/v1/me/lists/order", order_lists, "user", "Order your contact lists", TAG,
              body={"type": "object", "required": ["ids"], "additionalProperties": False,
                    "properties": {"ids": {"type": "array", "items": ID, "description": "the ids of your lists in the order you want them"}}}),
        Route("GET", "/api/v1/me/lists", lists, "user", "Your contact lists, then other users' public lists", TAG),
        Route("POST", "/api/v1/me/lists", create_list, "user", "Create a contact list", TAG, body={**list_body, "required": ["name"]}, status=201,
              errors=(409,)),
        Route("GET", "/api/v1/me/lists/{id}", get_list, "user", "A contact list with its contacts", TAG),
        Route("PATCH", "/api/v1/me/lists/{id}", update_list, "user", "Rename, publish, hide or move a list", TAG, body=list_body, errors=(409,)),
        Route("DELETE", "/api/v1/me/lists/{id}", delete_list, "user", "Delete a list", TAG, status=204),
        Route("PUT", "/api/v1/me/lists/{id}/contacts", set_list_contacts, "user", "Set a list's contacts, in order", TAG,
              body={"type": "object", "required": ["contact_ids"], "additionalProperties": False,
                    "properties": {"contact_ids": {"type": "array", "maxItems": 1000, "items": ID}}}),
    ]
