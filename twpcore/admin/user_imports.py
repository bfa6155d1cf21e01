"""Users import definitions as admins manage them (guide 7.2): list, read, create, change, delete, audited.

The rules of ``twpcore.http.user_imports`` (which reads the request and answers); the runs
themselves are ``twpcore.user_imports.UserImportService``'s.  An admin manages the imports
of the domains of the companies they manage; any other import is absent (404).  The bind
password is write-only: the answers carry ``password_set``.  Each operation runs in the
store's thread pool and receives what it needs: the connection, the caller and, to check
a definition, the configuration (which PBX links serve a domain).
"""

from __future__ import annotations

from typing import Any

import attrs
import sqlalchemy as sa

from twpcore.admin.resources import audit, require_managed
from twpcore.auth import Principal
from twpcore.config import Config
from twpcore.events import Event
from twpcore.routing import ApiError
from twpcore.store import schema as t
from twpcore.user_imports import UserImportError, check_definition, definition_select, load_definition, present


def api_error(exc: UserImportError) -> ApiError:
    return ApiError(exc.status, exc.error, exc.detail, exc.field)


def admin_event(action: str, obj: dict[str, Any]) -> Event:
    """The ``admin.user_import.<action>`` event telling subscribers a definition changed."""
    return Event(f"admin.user_import.{action}", {"id": obj["id"], "resource": "user_imports"}, obj.get("company_id"), obj.get("domain_id"))


def managed(conn: sa.Connection, who: Principal, ident: int) -> dict[str, Any]:
    """The stored definition, or 404 when it does not exist or belongs to a company ``who`` does not manage."""
    row = load_definition(conn, ident)
    if row is None or not who.manages(row["company_id"]):
        raise ApiError(404, "not_found", f"user import {ident} not found")
    return row


@attrs.frozen
class ListQuery:
    limit: int
    offset: int
    domain_id: int | None = None
    company_id: int | None = None


def list_definitions(conn: sa.Connection, who: Principal, query: ListQuery) -> dict[str, Any]:
    """One page of the definitions ``who`` manages, with the total."""
    filters = []
    if query.domain_id is not None:
        filters.append(t.user_imports.c.domain_id == query.domain_id)
    if query.company_id is not None:
        filters.append(t.domains.c.company_id == query.company_id)
    if not who.super_user:
        filters.append(t.domains.c.company_id.in_(sorted(who.companies) or [-1]))
    sel = definition_select().where(*filters)
    total = conn.execute(sa.select(sa.func.count()).select_from(sel.subquery())).scalar_one()
    rows = conn.execute(sel.order_by(t.user_imports.c.id).limit(query.limit).offset(query.offset)).all()
    return {"items": [present(dict(r._mapping)) for r in rows], "total": total, "limit": query.limit, "offset": query.offset}


def read(conn: sa.Connection, who: Principal, ident: int) -> dict[str, Any]:
    return present(managed(conn, who, ident))


def create(conn: sa.Connection, config: Config, who: Principal, data: dict[str, Any], source: str) -> dict[str, Any]:
    """Check, insert and audit a new definition; its answer."""
    domain_id: int = data["domain_id"]  # required, an integer: the route's body schema (checked by read_json)
    require_managed(conn, who, "domains", domain_id, "domain_id")
    try:
        values = check_definition(conn, config, who, data, None)
    except UserImportError as exc:
        raise api_error(exc) from None
    try:
        with conn.begin_nested():
            ident = conn.execute(sa.insert(t.user_imports).values(domain_id=domain_id, **values).returning(t.user_imports.c.id)).scalar_one()
    except sa.exc.IntegrityError:
        raise ApiError(409, "conflict", f"user import {values['name']!r} already exists in domain {domain_id}; import names are unique "
                       "within a domain", "name") from None
    row = load_definition(conn, ident)
    assert row is not None
    audit(conn, who, "create", "user import", ident, row["company_id"], source)
    return present(row)


def update(conn: sa.Connection, config: Config, who: Principal, ident: int, data: dict[str, Any], source: str) -> dict[str, Any]:
    """Check, change and audit a definition; its answer."""
    row = managed(conn, who, ident)
    try:
        values = check_definition(conn, config, who, data, {k: v for k, v in row.items() if k != "password"})
    except UserImportError as exc:
        raise api_error(exc) from None
    try:
        with conn.begin_nested():
            conn.execute(sa.update(t.user_imports).where(t.user_imports.c.id == ident).values(**values))
    except sa.exc.IntegrityError:
        raise ApiError(409, "conflict", f"user import {values['name']!r} already exists in domain {row['domain_id']}; import names are unique "
                       "within a domain", "name") from None
    audit(conn, who, "update", "user import", ident, row["company_id"], source, {"fields": sorted(data)})
    fresh = load_definition(conn, ident)
    assert fresh is not None
    return present(fresh)


def delete(conn: sa.Connection, who: Principal, ident: int, source: str) -> dict[str, Any]:
    """Delete and audit a definition; its last answer.  The users it created stay (as manual users)."""
    row = managed(conn, who, ident)
    conn.execute(sa.delete(t.user_imports).where(t.user_imports.c.id == ident))
    audit(conn, who, "delete", "user import", ident, row["company_id"], source)
    return present(row)


def audit_run(conn: sa.Connection, who: Principal, ident: int, company_id: int, source: str, detail: dict[str, Any]) -> None:
    audit(conn, who, "run", "user import", ident, company_id, source, detail)
