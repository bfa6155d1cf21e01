"""Accounts as admins manage them beyond plain CRUD: memberships, admin companies, quotas, tokens, lock-outs, the audit log.

The rules and the SQL of the endpoints in ``twpcore.http.routes`` and ``twpcore.http.sessions``;
each function is one transaction, run in the store's thread pool, and receives what it
needs: the connection, the caller (``Principal``), the ``[auth]`` section or the parameter
registry.  Tenancy as in ``twpcore.admin.resources``: an object of a company the caller
does not manage answers 404.
"""

from __future__ import annotations

from typing import Any

import attrs
import sqlalchemy as sa

from twpcore import lockout, passwords, rights
from twpcore.admin.resources import RESOURCES, Resource, _quota_check, audit, fetch_managed, iso_utc, require_managed, row_out
from twpcore.auth import Principal, revoke_all
from twpcore.config import AuthConfig
from twpcore.parameters import ParameterRegistry, Resolved
from twpcore.routing import ApiError, not_found
from twpcore.sessions import reset_mail
from twpcore.store import schema as t

# -- memberships -------------------------------------------------------------------------


@attrs.frozen
class Membership:
    """A many-to-many relation admins edit under ``base``, such as a group's members."""

    base: str
    """The route of the member list, ``/api/v1/<parents>/{id}/<children>``."""
    parent: str
    """The parent resource (``RESOURCES`` key)."""
    child: str
    """The member resource (``RESOURCES`` key)."""
    table: sa.Table
    parent_col: str
    child_col: str
    same_domain: bool
    """Members must be in the parent's domain (422 otherwise)."""
    quota: bool
    """Adding a member may use an application seat: the company's quotas are checked."""

    @property
    def parent_res(self) -> Resource:
        return RESOURCES[self.parent]

    @property
    def child_res(self) -> Resource:
        return RESOURCES[self.child]


MEMBERSHIPS = (
    Membership("/api/v1/groups/{id}/members", "groups", "users", t.group_members, "group_id", "user_id", True, True),
    Membership("/api/v1/intercom-groups/{id}/devices", "intercom_groups", "devices", t.intercom_group_devices, "intercom_group_id", "device_id",
               True, False),
)


def list_members(conn: sa.Connection, m: Membership, who: Principal, ident: int) -> dict[str, Any]:
    pres, cres, table = m.parent_res, m.child_res, m.table
    fetch_managed(conn, pres, who, ident)
    rows = conn.execute(
        cres.base_select().join(table, table.c[m.child_col] == cres.table.c.id).where(table.c[m.parent_col] == ident).order_by(cres.table.c.id)
    ).all()
    return {"items": [row_out(cres, r) for r in rows], "total": len(rows)}


def add_member(conn: sa.Connection, m: Membership, who: Principal, ident: int, member: int, source: str) -> Any:
    """Add ``member`` (once: adding it again changes nothing); the parent row, for the admin event."""
    pres, cres, table = m.parent_res, m.child_res, m.table
    p = fetch_managed(conn, pres, who, ident)
    c = fetch_managed(conn, cres, who, member)
    if m.same_domain and p.domain_id != c.domain_id:
        raise ApiError(
            422,
            "other_domain",
            f"{cres.singular} {member} is in domain {c.domain_id}, {pres.singular} {ident} in domain {p.domain_id}; "
            "members must be in the same domain",
            m.child_col,
        )
    exists = conn.execute(sa.select(table).where(table.c[m.parent_col] == ident, table.c[m.child_col] == member)).first()
    if exists is None:
        conn.execute(sa.insert(table).values({m.parent_col: ident, m.child_col: member}))
    if m.quota:
        _quota_check(conn, p._company_id)
    audit(conn, who, "add_member", pres.singular, ident, p._company_id, source, {m.child_col: member})
    return p


def remove_member(conn: sa.Connection, m: Membership, who: Principal, ident: int, member: int, source: str) -> Any:
    """Remove ``member`` (404 when it is not one); the parent row, for the admin event."""
    pres, cres, table = m.parent_res, m.child_res, m.table
    p = fetch_managed(conn, pres, who, ident)
    n = conn.execute(sa.delete(table).where(table.c[m.parent_col] == ident, table.c[m.child_col] == member)).rowcount
    if not n:
        raise not_found(f"{cres.singular} member", member)
    audit(conn, who, "remove_member", pres.singular, ident, p._company_id, source, {m.child_col: member})
    return p


# -- administrators' companies, quotas, tokens, audit log ---------------------------------

def set_admin_companies(conn: sa.Connection, who: Principal, ident: int, companies: list[int], source: str) -> dict[str, Any]:
    fetch_managed(conn, RESOURCES["admins"], who, ident)
    for c in companies:
        require_managed(conn, who, "companies", c, "companies")
    conn.execute(sa.delete(t.admin_companies).where(t.admin_companies.c.admin_id == ident))
    for c in sorted(set(companies)):
        conn.execute(sa.insert(t.admin_companies).values(admin_id=ident, company_id=c))
    audit(conn, who, "set_companies", "admin", ident, None, source, {"companies": sorted(set(companies))})
    return {"id": ident, "companies": sorted(set(companies))}


def admin_companies(conn: sa.Connection, who: Principal, ident: int) -> dict[str, Any]:
    fetch_managed(conn, RESOURCES["admins"], who, ident)
    return {
        "id": ident,
        "companies": sorted(conn.execute(sa.select(t.admin_companies.c.company_id).where(t.admin_companies.c.admin_id == ident)).scalars()),
    }


def quotas(conn: sa.Connection, who: Principal, ident: int) -> dict[str, Any]:
    require_managed(conn, who, "companies", ident, "id")
    return {"items": rights.usage(conn, ident)}


def set_quota(conn: sa.Connection, who: Principal, ident: int, app: str, seats: int | None, source: str) -> dict[str, Any]:
    """Set (``seats`` None: remove) a company's seat quota for one application; 409 when more seats are granted already."""
    require_managed(conn, who, "companies", ident, "id")
    q = t.application_quotas
    conn.execute(sa.delete(q).where(q.c.company_id == ident, q.c.application == app))
    if seats is not None:
        conn.execute(sa.insert(q).values(company_id=ident, application=app, seats=seats))
        used = rights.seats_used(conn, ident, app)
        if used > seats:
            raise ApiError(
                409,
                "quota_exceeded",
                f"application {app}: {used} seats are already granted, more than the quota of {seats}; revoke grants first",
                "seats",
            )
    audit(conn, who, "set_quota", "company", ident, ident, source, {"application": app, "seats": seats})
    return {"application": app, "seats": seats, "used": rights.seats_used(conn, ident, app)}


def revoke_user_tokens(conn: sa.Connection, who: Principal, ident: int, source: str) -> dict[str, Any]:
    """Revoke every token of a user: the count, and the user's company (for the event)."""
    company = require_managed(conn, who, "users", ident, "id")
    n = revoke_all(conn, "user", ident)
    audit(conn, who, "revoke_tokens", "user", ident, company, source, {"revoked": n})
    return {"revoked": n, "company_id": company}


def audit_page(conn: sa.Connection, who: Principal, limit: int, offset: int) -> dict[str, Any]:
    """A page of the audit log, newest first; a limited admin reads its companies' entries only."""
    a = t.audit_log
    sel = sa.select(a)
    if not who.super_user:
        sel = sel.where(a.c.company_id.in_(sorted(who.companies) or [-1]))
    total = conn.execute(sa.select(sa.func.count()).select_from(sel.subquery())).scalar_one()
    rows = conn.execute(sel.order_by(a.c.id.desc()).limit(limit).offset(offset)).all()
    return {"items": [{**dict(r._mapping), "at": iso_utc(r.at)} for r in rows], "total": total, "limit": limit, "offset": offset}


def user_parameters(conn: sa.Connection, parameters: ParameterRegistry, who: Principal, ident: int) -> dict[str, Resolved]:
    """A managed user's resolved parameters."""
    require_managed(conn, who, "users", ident, "id")
    return parameters.resolve(conn, ident)


# -- lock-outs and password resets --------------------------------------------------------

def user_lockout(conn: sa.Connection, auth_cfg: AuthConfig, who: Principal, ident: int) -> dict[str, Any]:
    row = fetch_managed(conn, RESOURCES["users"], who, ident)
    return {"user_id": ident, **lockout.state(conn, auth_cfg, "login", lockout.login_key(row.login))}


def unlock_account(conn: sa.Connection, auth_cfg: AuthConfig, who: Principal, resource: str, scope: str, ident: int,
                   source: str) -> dict[str, Any]:
    """Lift the lock-out of a managed user's or admin's login."""
    res = RESOURCES[resource]
    row = fetch_managed(conn, res, who, ident)
    key = lockout.login_key(row.login)
    was = lockout.state(conn, auth_cfg, scope, key)
    lockout.reset(conn, scope, key)
    audit(conn, who, "unlock", res.singular, ident, row._company_id, source, {"was_locked": was["locked"], "failures": was["failures"]})
    return {f"{res.singular}_id": ident, "was_locked": was["locked"], **lockout.state(conn, auth_cfg, scope, key)}


def unlock_subject(conn: sa.Connection, auth_cfg: AuthConfig, who: Principal, scope: str, subject: str, source: str) -> dict[str, Any]:
    """Lift the lock of a source address or of a login name that matches no account."""
    was = lockout.state(conn, auth_cfg, scope, subject)
    lockout.reset(conn, scope, subject)
    audit(conn, who, "unlock", scope, subject[:64], None, source, {"was_locked": was["locked"], "failures": was["failures"]})
    return {"was_locked": was["locked"], **lockout.state(conn, auth_cfg, scope, subject)}


def create_reset_code(conn: sa.Connection, auth_cfg: AuthConfig, parameters: ParameterRegistry, mail_timeout: float, who: Principal,
                      ident: int, send: bool, source: str) -> dict[str, Any]:
    """A one-time reset code for a managed user; ``mail`` is (settings, message) to send when ``send`` and SMTP is set."""
    row = fetch_managed(conn, RESOURCES["users"], who, ident)
    code, expires = passwords.create_reset(conn, ident, auth_cfg.reset_code_lifetime, f"{who.type}:{who.login}")
    audit(conn, who, "password_reset_code", "user", ident, row._company_id, source, {"expires_at": expires.isoformat()})
    mail = reset_mail(conn, parameters, mail_timeout, row, code, expires) if send else None
    return {"user_id": ident, "code": code, "expires_at": expires.isoformat(), "mail": mail}
