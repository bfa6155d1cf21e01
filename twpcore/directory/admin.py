"""Directories as admins manage them (guide 8): list, create, change, delete, audited.

The rules of the admin part of ``twpcore.http.directories`` (which reads the request and
answers).  Admins manage the directories of the companies they manage; any other is
absent (404).  Server-side options (local paths, the store's database...) are refused to
limited admins before the connector reads any (admin guide 15).  Each function runs in the
store's thread pool and receives what it needs: the connection, the caller, the directory
service (settings checks, connector types) and the facts of the server.
"""

from __future__ import annotations

from typing import Any

import attrs
import sqlalchemy as sa

from twpcore.admin.resources import audit, require_managed
from twpcore.auth import Principal
from twpcore.directory import db
from twpcore.directory.service import DirectoryError, DirectoryService
from twpcore.events import Event
from twpcore.rights import purge_dangling
from twpcore.routing import ApiError
from twpcore.server_side import ServerFacts, ServerSideRefused, check_options
from twpcore.store import schema as t


def api_error(exc: DirectoryError) -> ApiError:
    return ApiError(exc.status, exc.error, exc.detail, exc.field)


def admin_event(action: str, obj: dict[str, Any]) -> Event:
    """The ``admin.directory.<action>`` event telling subscribers a directory changed."""
    return Event(f"admin.directory.{action}", {"id": obj["id"], "resource": "directories"}, obj.get("company_id"), obj.get("domain_id"))


def check_server_side(svc: DirectoryService, facts: ServerFacts, who: Principal, connector: Any, options: Any,
                      previous: dict[str, Any] | None = None) -> None:
    """Refuse the server-side options ``who`` may not set (admin guide 15), before the connector reads any."""
    cls = svc.connector_type(connector) if isinstance(connector, str) else None
    if previous is not None and isinstance(options, dict):
        options = {k: (previous[k] if v == "***" and k in previous else v) for k, v in options.items()}
    try:
        check_options(getattr(cls, "Config", None), options, super_user=who.super_user, facts=facts, previous=previous)
    except ServerSideRefused as exc:
        raise ApiError(exc.status, "forbidden", str(exc), exc.path) from None


def managed(conn: sa.Connection, who: Principal, ident: int) -> dict[str, Any]:
    """The stored directory, or 404 when it does not exist or belongs to a company ``who`` does not manage."""
    row = db.load_directory(conn, ident)
    if row is None or not who.manages(row["company_id"]):
        raise ApiError(404, "not_found", f"directory {ident} not found")
    return row


@attrs.frozen
class ListQuery:
    limit: int
    offset: int
    domain_id: int | None = None
    company_id: int | None = None
    connector: str | None = None
    type: str | None = None
    q: str = ""
    """Lower-cased text the name contains."""


def list_directories(conn: sa.Connection, who: Principal, query: ListQuery) -> tuple[int, list[dict[str, Any]]]:
    """The total and one page of the directories ``who`` manages (stored rows: ``DirectoryService.present`` shows them)."""
    d = t.directories
    filters = []
    if query.domain_id is not None:
        filters.append(d.c.domain_id == query.domain_id)
    if query.company_id is not None:
        filters.append(t.domains.c.company_id == query.company_id)
    for name, value in (("connector", query.connector), ("type", query.type)):
        if value is not None:
            filters.append(d.c[name] == value)
    if query.q:
        filters.append(sa.func.lower(d.c.name).contains(query.q, autoescape=True))
    if not who.super_user:
        filters.append(t.domains.c.company_id.in_(sorted(who.companies) or [-1]))
    sel = db.directory_select().where(*filters)
    total = conn.execute(sa.select(sa.func.count()).select_from(sel.subquery())).scalar_one()
    return total, [dict(r._mapping) for r in conn.execute(sel.order_by(d.c.id).limit(query.limit).offset(query.offset))]


def create(conn: sa.Connection, svc: DirectoryService, facts: ServerFacts, who: Principal, data: dict[str, Any], domain_id: int, source: str) -> int:
    """Check, insert and audit a new directory of ``domain_id``; its id."""
    company = require_managed(conn, who, "domains", domain_id, "domain_id")
    check_server_side(svc, facts, who, data.get("connector"), data.get("options"))
    try:
        values = svc.check(conn, data, None, domain_id=domain_id)
    except DirectoryError as exc:
        raise api_error(exc) from None
    try:
        with conn.begin_nested():
            ident: int = conn.execute(sa.insert(t.directories).values(domain_id=domain_id, **{k: v for k, v in values.items() if k != "domain_id"})
                                      .returning(t.directories.c.id)).scalar_one()
    except sa.exc.IntegrityError:
        raise ApiError(409, "conflict", f"directory {values['name']!r} already exists in domain {domain_id}; directory names are unique "
                       "within a domain", "name") from None
    audit(conn, who, "create", "directory", ident, company, source)
    return ident


def update(conn: sa.Connection, svc: DirectoryService, who: Principal, row: dict[str, Any], data: dict[str, Any], source: str) -> None:
    """Check, change and audit the directory ``row`` (as ``managed`` read it)."""
    try:
        values = svc.check(conn, data, row)
    except DirectoryError as exc:
        raise api_error(exc) from None
    try:
        with conn.begin_nested():
            conn.execute(sa.update(t.directories).where(t.directories.c.id == row["id"]).values(**values))
    except sa.exc.IntegrityError:
        raise ApiError(409, "conflict", f"directory {values['name']!r} already exists in this domain", "name") from None
    audit(conn, who, "update", "directory", row["id"], row["company_id"], source, {"fields": sorted(data)})


def delete(conn: sa.Connection, who: Principal, row: dict[str, Any], source: str) -> None:
    """Delete the directory ``row``, its contacts and the grants on it, audited."""
    ident = row["id"]
    # Contacts first, in chunks (a directory may hold many), then the directory and its grants.
    db.delete_owner_contacts(conn, ident, None)
    for owner in conn.execute(sa.select(t.contacts.c.owner_id).distinct().where(t.contacts.c.directory_id == ident)).scalars().all():
        db.delete_owner_contacts(conn, ident, owner)
    conn.execute(sa.delete(t.directories).where(t.directories.c.id == ident))
    purge_dangling(conn)
    audit(conn, who, "delete", "directory", ident, row["company_id"], source)
