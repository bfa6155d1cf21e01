"""Directory endpoints: admin CRUD, connection test, sync and history; search, reverse lookup, contact cards;
users' private contacts, contact lists and pushed contacts (guide 8, 9.1.1 and the user guide's contacts).

Admins manage directories of the companies they manage (others answer 404).  Users
search the directories granted to them or to one of their groups (guide 7.4.2); a
private directory shows each user only their own contacts.  Red-listed numbers (guide
8.2.4) never leave the server.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web

from twpcore.directory import db
from twpcore.directory.service import TEST_STATES, DirectoryError
from twpcore.events import Event
from twpcore.http.core import KERNEL, ApiError, Route, bad_request, path_int, principal, query_int, read_json
from twpcore.http.resources import audit, require_managed
from twpcore.kinds import Kind
from twpcore.rights import purge_dangling
from twpcore.schema import field_docs
from twpcore.server_side import ServerFacts, ServerSideRefused, check_options
from twpcore.store import schema as t

TAG = "directories"


def _svc(request: web.Request) -> Any:
    return request.app[KERNEL].directories


def _api(exc: DirectoryError) -> ApiError:
    return ApiError(exc.status, exc.error, exc.detail, exc.field)


async def _call(coro: Any) -> Any:
    try:
        return await coro
    except DirectoryError as exc:
        raise _api(exc) from None


def _publish(request: web.Request, action: str, obj: dict[str, Any]) -> None:
    request.app[KERNEL].events.publish(Event(f"admin.directory.{action}", {"id": obj["id"], "resource": "directories"},
                                             obj.get("company_id"), obj.get("domain_id")))


def _server_side(request: web.Request, connector: Any, options: Any, previous: dict[str, Any] | None = None) -> None:
    """Refuse the server-side options the caller may not set (admin guide 15), before the connector reads any."""
    cls = _svc(request).connector_type(connector) if isinstance(connector, str) else None
    if previous is not None and isinstance(options, dict):
        options = {k: (previous[k] if v == "***" and k in previous else v) for k, v in options.items()}
    try:
        check_options(getattr(cls, "Config", None), options, super_user=principal(request).super_user,
                      facts=ServerFacts.of(request.app[KERNEL]), previous=previous)
    except ServerSideRefused as exc:
        raise ApiError(exc.status, "forbidden", str(exc), exc.path) from None


async def _managed(request: web.Request, ident: int) -> dict[str, Any]:
    who = principal(request)
    row = await _svc(request).read(db.load_directory, ident)
    if row is None or not who.manages(row["company_id"]):
        raise ApiError(404, "not_found", f"directory {ident} not found")
    return row


# -- admin ---------------------------------------------------------------------------

async def list_directories(request: web.Request) -> web.Response:
    who = principal(request)
    svc = _svc(request)
    limit = query_int(request, "limit", 50, lo=1, hi=1000)
    offset = query_int(request, "offset", 0)
    d = t.directories
    filters = []
    for name in ("domain_id", "company_id"):
        value = query_int(request, name, None, lo=0)
        if value is not None:
            filters.append((d.c.domain_id if name == "domain_id" else t.domains.c.company_id) == value)
    for name in ("connector", "type"):
        if name in request.query:
            filters.append(d.c[name] == request.query[name])
    q = request.query.get("q", "").strip().lower()
    if q:
        filters.append(sa.func.lower(d.c.name).contains(q, autoescape=True))
    if not who.super_user:
        filters.append(t.domains.c.company_id.in_(sorted(who.companies) or [-1]))

    def run(conn: sa.Connection) -> tuple[int, list[dict[str, Any]]]:
        sel = db.directory_select().where(*filters)
        total = conn.execute(sa.select(sa.func.count()).select_from(sel.subquery())).scalar_one()
        return total, [dict(r._mapping) for r in conn.execute(sel.order_by(d.c.id).limit(limit).offset(offset))]

    total, rows = await svc.read(run)
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

    def run(conn: sa.Connection) -> int:
        company = require_managed(conn, who, "domains", domain_id, "domain_id")
        _server_side(request, data.get("connector"), data.get("options"))
        try:
            values = svc.check(conn, data, None, domain_id=domain_id)
        except DirectoryError as exc:
            raise _api(exc) from None
        try:
            with conn.begin_nested():
                ident = conn.execute(sa.insert(t.directories).values(domain_id=domain_id, **{k: v for k, v in values.items() if k != "domain_id"})
                                     .returning(t.directories.c.id)).scalar_one()
        except sa.exc.IntegrityError:
            raise ApiError(409, "conflict", f"directory {values['name']!r} already exists in domain {domain_id}; directory names are unique within a domain", "name") from None
        audit(conn, who, "create", "directory", ident, company, request.remote or "")
        return ident

    ident = await svc.store.run(run)
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
        raise ApiError(409, "config_managed", f"directory {row['name']} is declared in {request.app[KERNEL].config.source}; change its [directories] table there")
    if "options" in data:
        _server_side(request, row["connector"], data["options"], row.get("options") or {})

    def run(conn: sa.Connection) -> None:
        try:
            values = svc.check(conn, data, row)
        except DirectoryError as exc:
            raise _api(exc) from None
        try:
            with conn.begin_nested():
                conn.execute(sa.update(t.directories).where(t.directories.c.id == ident).values(**values))
        except sa.exc.IntegrityError:
            raise ApiError(409, "conflict", f"directory {values['name']!r} already exists in this domain", "name") from None
        audit(conn, who, "update", "directory", ident, row["company_id"], request.remote or "", {"fields": sorted(data)})

    await svc.store.run(run)
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
        raise ApiError(409, "config_managed", f"directory {row['name']} is declared in {request.app[KERNEL].config.source}; remove its [directories] table there")
    if svc.is_running(ident):
        raise ApiError(409, "sync_running", f"directory {row['name']} is synchronizing; delete it when the sync has finished")

    def run(conn: sa.Connection) -> None:
        # Contacts first, in chunks (a directory may hold many), then the directory and its grants.
        db.delete_owner_contacts(conn, ident, None)
        for owner in conn.execute(sa.select(t.contacts.c.owner_id).distinct().where(t.contacts.c.directory_id == ident)).scalars().all():
            db.delete_owner_contacts(conn, ident, owner)
        conn.execute(sa.delete(t.directories).where(t.directories.c.id == ident))
        purge_dangling(conn)
        audit(conn, who, "delete", "directory", ident, row["company_id"], request.remote or "")

    await svc.store.run(run)
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
    await _svc(request).store.run(lambda c: audit(c, who, "sync", "directory", row["id"], row["company_id"], request.remote or "",
                                                    {"status": report.status, "sync_id": report.id}))
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
    await _svc(request).store.run(lambda c: require_managed(c, who, "users", uid, "user_id"))
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
        await svc.store.run(lambda c: require_managed(c, who, "domains", domain_id, "domain_id"))
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
    user, ids, private = await svc.visible_for_user(who.id)
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

def _list_json(r: Any, user_id: int, count: int) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "public": r.public, "visible": r.visible, "position": r.position,
            "owner_id": r.user_id, "mine": r.user_id == user_id, "contacts": count}


async def _may_publish(request: web.Request, user_id: int) -> None:
    kernel = request.app[KERNEL]
    allowed = await kernel.store.run(lambda c: kernel.parameters.resolve_one(c, user_id, "AuthorizePublicList").as_bool())
    if not allowed:
        raise ApiError(403, "forbidden", "making a list public is not allowed for you (parameter AuthorizePublicList, guide 9.1.8)", "public")


def _list_name(data: dict[str, Any]) -> str | None:
    name = data.get("name")
    if name is None:
        return None
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise bad_request("list: name must be a non-empty string of at most 200 characters", "name")
    return name.strip()


async def lists(request: web.Request) -> web.Response:
    who = principal(request)

    def run(conn: sa.Connection) -> list[dict[str, Any]]:
        cl, items = t.contact_lists, t.contact_list_items
        company = conn.execute(sa.select(t.domains.c.company_id).join(t.users, t.users.c.domain_id == t.domains.c.id)
                               .where(t.users.c.id == who.id)).scalar_one()
        counts = sa.select(items.c.list_id, sa.func.count().label("n")).group_by(items.c.list_id).subquery()
        rows = conn.execute(
            sa.select(cl, sa.func.coalesce(counts.c.n, 0).label("n")).outerjoin(counts, counts.c.list_id == cl.c.id)
            .join(t.users, t.users.c.id == cl.c.user_id).join(t.domains, t.domains.c.id == t.users.c.domain_id)
            .where(sa.or_(cl.c.user_id == who.id, sa.and_(cl.c.public.is_(True), t.domains.c.company_id == company)))
            .order_by(cl.c.user_id != who.id, cl.c.position, cl.c.id)).all()
        return [_list_json(r, who.id, r.n) for r in rows]

    return web.json_response({"items": await _svc(request).read(run)})


async def create_list(request: web.Request) -> web.Response:
    who = principal(request)
    data = await read_json(request)
    name = _list_name(data)
    if name is None:
        raise bad_request("list: field name is required", "name")
    if data.get("public"):
        await _may_publish(request, who.id)

    def run(conn: sa.Connection) -> dict[str, Any]:
        cl = t.contact_lists
        position = (conn.execute(sa.select(sa.func.max(cl.c.position)).where(cl.c.user_id == who.id)).scalar_one() or 0) + 1
        try:
            with conn.begin_nested():
                ident = conn.execute(sa.insert(cl).values(user_id=who.id, name=name, public=bool(data.get("public", False)),
                                                          visible=bool(data.get("visible", True)), position=position).returning(cl.c.id)).scalar_one()
        except sa.exc.IntegrityError:
            raise ApiError(409, "conflict", f"you already have a list named {name!r}", "name") from None
        return _list_json(conn.execute(sa.select(cl).where(cl.c.id == ident)).one(), who.id, 0)

    return web.json_response(await _svc(request).store.run(run), status=201)


def _own_list(conn: sa.Connection, user_id: int, ident: int) -> Any:
    row = conn.execute(sa.select(t.contact_lists).where(t.contact_lists.c.id == ident, t.contact_lists.c.user_id == user_id)).one_or_none()
    if row is None:
        raise ApiError(404, "not_found", f"list {ident} not found")
    return row


async def update_list(request: web.Request) -> web.Response:
    who = principal(request)
    ident = path_int(request)
    data = await read_json(request)
    name = _list_name(data)
    if data.get("public"):
        await _may_publish(request, who.id)

    def run(conn: sa.Connection) -> dict[str, Any]:
        cl = t.contact_lists
        _own_list(conn, who.id, ident)
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = name
        for key in ("public", "visible"):
            if key in data:
                values[key] = bool(data[key])
        if "position" in data:
            values["position"] = data["position"]
        if values:
            try:
                with conn.begin_nested():
                    conn.execute(sa.update(cl).where(cl.c.id == ident).values(**values))
            except sa.exc.IntegrityError:
                raise ApiError(409, "conflict", f"you already have a list named {name!r}", "name") from None
        n = conn.execute(sa.select(sa.func.count()).select_from(t.contact_list_items).where(t.contact_list_items.c.list_id == ident)).scalar_one()
        return _list_json(conn.execute(sa.select(cl).where(cl.c.id == ident)).one(), who.id, n)

    return web.json_response(await _svc(request).store.run(run))


async def delete_list(request: web.Request) -> web.Response:
    who = principal(request)
    ident = path_int(request)

    def run(conn: sa.Connection) -> None:
        _own_list(conn, who.id, ident)
        conn.execute(sa.delete(t.contact_lists).where(t.contact_lists.c.id == ident))

    await _svc(request).store.run(run)
    return web.Response(status=204)


async def get_list(request: web.Request) -> web.Response:
    """A list with the contacts the caller may see (another user's public list never shows that user's private contacts)."""
    who = principal(request)
    ident = path_int(request)
    svc = _svc(request)

    def run(conn: sa.Connection) -> tuple[Any, list[int]]:
        cl, items = t.contact_lists, t.contact_list_items
        row = conn.execute(sa.select(cl, t.domains.c.company_id).join(t.users, t.users.c.id == cl.c.user_id)
                           .join(t.domains, t.domains.c.id == t.users.c.domain_id).where(cl.c.id == ident)).one_or_none()
        mine = conn.execute(sa.select(t.domains.c.company_id).join(t.users, t.users.c.domain_id == t.domains.c.id).where(t.users.c.id == who.id)).scalar_one()
        if row is None or (row.user_id != who.id and not (row.public and row.company_id == mine)):
            raise ApiError(404, "not_found", f"list {ident} not found")
        ids = conn.execute(sa.select(items.c.contact_id).where(items.c.list_id == ident).order_by(items.c.position)).scalars().all()
        return row, ids

    row, ids = await svc.read(run)
    cards = []
    for cid in ids:
        try:
            cards.append(await svc.contact(who.id, cid))
        except DirectoryError:
            continue
    n = len(ids)
    return web.json_response({**_list_json(row, who.id, n), "items": cards})


async def set_list_contacts(request: web.Request) -> web.Response:
    who = principal(request)
    ident = path_int(request)
    data = await read_json(request)
    ids = data.get("contact_ids")
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids) or len(ids) > 1000:
        raise bad_request("contact_ids: an ordered array of at most 1000 contact ids is required", "contact_ids")
    svc = _svc(request)
    await svc.store.run(lambda c: _own_list(c, who.id, ident))
    for cid in ids:
        try:
            await svc.contact(who.id, cid)
        except DirectoryError:
            raise ApiError(404, "not_found", f"contact {cid} not found", "contact_ids") from None

    def run(conn: sa.Connection) -> None:
        items = t.contact_list_items
        conn.execute(sa.delete(items).where(items.c.list_id == ident))
        seen: set[int] = set()
        rows = []
        for position, cid in enumerate(ids):
            if cid not in seen:
                seen.add(cid)
                rows.append({"list_id": ident, "contact_id": cid, "position": position})
        if rows:
            conn.execute(sa.insert(items), rows)

    await svc.store.run(run)
    return await get_list(request)


async def order_lists(request: web.Request) -> web.Response:
    who = principal(request)
    data = await read_json(request)
    ids = data.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise bad_request("ids: the ids of your lists in the order you want them is required", "ids")

    def run(conn: sa.Connection) -> None:
        cl = t.contact_lists
        mine = set(conn.execute(sa.select(cl.c.id).where(cl.c.user_id == who.id)).scalars())
        unknown = [i for i in ids if i not in mine]
        if unknown:
            raise ApiError(404, "not_found", f"list {unknown[0]} not found", "ids")
        for position, ident in enumerate(ids, 1):
            conn.execute(sa.update(cl).where(cl.c.id == ident).values(position=position))

    await _svc(request).store.run(run)
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
    **{f: {"type": ["string", "array"], "description": "a number, or several"} for f in ("phone", "mobile", "home", "fax", "other", "assistant")},
    **{f"private{i}": {"type": "string", "maxLength": 1000} for i in range(10)}}}
DIRECTORY_PROPS: dict[str, Any] = {
    "domain_id": {"type": "integer", "description": "the domain the directory belongs to (create only)", "x-twp-ref": "domains"},
    "name": {"type": "string", "maxLength": 200},
    "connector": {"type": "string", "description": "connector type: twp_users, private, push, sql, files, ldap... (create only)"},
    "type": {"type": "string", "enum": ["public", "private", "draft"], "description": "guide 8.1; drafts never sync"},
    "priority": {"type": "integer", "minimum": 0, "maximum": 1000000, "description": "lower comes first in search and reverse lookup"},
    "options": {"type": "object", "description": "the connector's settings (GET /api/v1/directory-connectors); secrets are shown as *** and kept when sent back as ***"},
    "fields": {"type": "object", "description": 'TWP field -> "source|options" (guide 8.1), e.g. {"last_name": "sn|m", "phone": "telephoneNumber|p::9{0}::^[0-9]{4}$"}'},
    "labels": {"type": "object", "description": 'names of private0-private9; "[VIP]" marks the VIP field (guide 8.2.3)'},
    "merge": {"type": "boolean", "description": "merge contacts by e-mail with other merge directories (guide 8.2.2)"},
    "sync_daily": {"type": "boolean", "description": "synchronize every day at sync_time (guide 8.2.1)"},
    "sync_time": {"type": ["string", "null"], "description": "HH:MM; null: the timeSynchronizationDirectories parameter"},
    "sync_every": {"type": ["integer", "string", "null"], "description": 'high-frequency sync: seconds, or "15m", "2h"; null: off'},
}
PAGING = (("limit", "integer", "page size"), ("offset", "integer", "items to skip"))
TEST_ANSWER = {"type": "object", "additionalProperties": False, "required": ["ok", "state", "message", "duration"], "properties": {
    "ok": {"type": "boolean", "description": "true when the source was reached (state ready)"},
    "state": {"type": "string", "enum": list(TEST_STATES),
              "description": "what a sync would make of the directory now: ready, retrying (source not ready or no answer), auth_failed, error"},
    "message": {"type": "string", "description": "what the connector found, or why it failed; never a secret or a value read from the environment"},
    "duration": {"type": "number", "description": "seconds the test took"}}}
"""The answer of ``POST /directories/{id}/test``, success or failure (docs/directories.md, "Testing a directory")."""


def directory_routes() -> list[Route]:
    create_body = {"type": "object", "additionalProperties": False, "required": ["domain_id", "name", "connector"], "properties": DIRECTORY_PROPS}
    update_body = {"type": "object", "additionalProperties": False, "properties": {k: v for k, v in DIRECTORY_PROPS.items() if k != "domain_id"}}
    list_body = {"type": "object", "additionalProperties": False, "properties": {
        "name": {"type": "string", "maxLength": 200}, "public": {"type": "boolean"}, "visible": {"type": "boolean"}, "position": {"type": "integer"}}}
    return [
        # Fixed paths before /api/v1/directories/{id}.
        Route("GET", "/api/v1/directories/search", search, "any", "Search the directories you may see (name, company, e-mail, number)", TAG,
              query=(("q", "string", "text or number"), *PAGING, ("user_id", "integer", "administrators: search as this user"))),
        Route("GET", "/api/v1/directories/reverse", reverse, "any", "Identify a number: the highest-priority contact having it", TAG,
              query=(("number", "string", "the number, in any written form"), ("domain_id", "integer", "administrators: the domain to look up for"))),
        Route("GET", "/api/v1/directories/contacts/{id}", contact_card, "user", "A contact card", TAG),
        Route("GET", "/api/v1/directory-connectors", connector_types, "admin", "Installed directory connector types and their options", TAG),
        Route("GET", "/api/v1/directories", list_directories, "admin", "List directories", TAG,
              query=(*PAGING, ("q", "string", "name contains"), ("domain_id", "integer", "only this domain"), ("company_id", "integer", "only this company"),
                     ("connector", "string", "only this connector"), ("type", "string", "public, private or draft"))),
        Route("POST", "/api/v1/directories", create_directory, "admin", "Create a directory", TAG, body=create_body, status=201),
        Route("GET", "/api/v1/directories/{id}", get_directory, "admin", "Read a directory", TAG),
        Route("PATCH", "/api/v1/directories/{id}", update_directory, "admin", "Change a directory", TAG, body=update_body),
        Route("DELETE", "/api/v1/directories/{id}", delete_directory, "admin", "Delete a directory and its contacts", TAG, status=204),
        Route("POST", "/api/v1/directories/{id}/test", test_directory, "admin",
              "Test the connection to the directory's source: ok, state (ready, retrying, auth_failed, error), message, duration", TAG,
              response=TEST_ANSWER),
        Route("POST", "/api/v1/directories/{id}/sync", sync_directory, "admin", "Synchronize now; answers the sync report", TAG),
        Route("GET", "/api/v1/directories/{id}/syncs", directory_syncs, "admin", "Sync history, newest first", TAG, query=PAGING),
        Route("GET", "/api/v1/me/directories", my_directories, "user", "The directories you may search", TAG),
        Route("POST", "/api/v1/me/directories/{name}/push", push, "user", "Upload your contacts to a pushed private directory (replaces the previous push)", TAG,
              body={"type": "object", "required": ["contacts"], "properties": {"contacts": {"type": "array", "items": {"type": "object"}}}}),
        Route("GET", "/api/v1/me/contacts", list_private, "user", "Your private contacts ([TwsPrivate])", TAG, query=PAGING),
        Route("POST", "/api/v1/me/contacts", create_private, "user", "Create a private contact", TAG, body=CONTACT_BODY, status=201),
        Route("GET", "/api/v1/me/contacts/{id}", get_private, "user", "One of your private contacts", TAG),
        Route("PATCH", "/api/v1/me/contacts/{id}", update_private, "user", "Replace a private contact's fields", TAG, body=CONTACT_BODY),
        Route("DELETE", "/api/v1/me/contacts/{id}", delete_private, "user", "Delete a private contact", TAG, status=204),
        Route("PUT", "/api/v1/me/lists/order", order_lists, "user", "Order your contact lists", TAG,
              body={"type": "object", "required": ["ids"], "properties": {"ids": {"type": "array", "items": {"type": "integer"}}}}),
        Route("GET", "/api/v1/me/lists", lists, "user", "Your contact lists, then other users' public lists", TAG),
        Route("POST", "/api/v1/me/lists", create_list, "user", "Create a contact list", TAG, body={**list_body, "required": ["name"]}, status=201),
        Route("GET", "/api/v1/me/lists/{id}", get_list, "user", "A contact list with its contacts", TAG),
        Route("PATCH", "/api/v1/me/lists/{id}", update_list, "user", "Rename, publish, hide or move a list", TAG, body=list_body),
        Route("DELETE", "/api/v1/me/lists/{id}", delete_list, "user", "Delete a list", TAG, status=204),
        Route("PUT", "/api/v1/me/lists/{id}/contacts", set_list_contacts, "user", "Set a list's contacts, in order", TAG,
              body={"type": "object", "required": ["contact_ids"], "properties": {"contact_ids": {"type": "array", "items": {"type": "integer"}}}}),
    ]
