"""Who may write to whom: the company wall, the users directory's visibility and the Authorize* switches."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from twpcore.parameters import ParameterRegistry
from twpcore.store import schema as t


class TeamworkError(Exception):
    """A refused chat, note or notification request; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, error: str, detail: str, field: str | None = None):
        super().__init__(detail)
        self.status, self.error, self.detail, self.field = status, error, detail, field


def user_row(conn: sa.Connection, user_id: int) -> Any:
    """The user with its company, or None."""
    u = t.users
    return conn.execute(sa.select(u.c.id, u.c.login, u.c.first_name, u.c.last_name, u.c.email, u.c.mobile, u.c.enabled, u.c.domain_id,
                                  t.domains.c.company_id, t.domains.c.name.label("domain_name"))
                        .join(t.domains, t.domains.c.id == u.c.domain_id).where(u.c.id == user_id)).one_or_none()


def display(row: Any) -> str:
    return f"{row.first_name} {row.last_name}".strip() or row.login


def colleague(conn: sa.Connection, me: Any, other_id: int, field: str) -> Any:
    """The user ``other_id`` of ``me``'s company, enabled; a 404 for a user of another company (companies share nothing)."""
    other = user_row(conn, other_id)
    if other is None or other.company_id != me.company_id:
        raise TeamworkError(404, "not_found", f"user {other_id} does not exist in your company; pick a user from the users directory", field)
    if not other.enabled:
        raise TeamworkError(409, "user_disabled", f"user {other.login} is disabled and cannot receive messages", field)
    return other


def sees(conn: sa.Connection, viewer: Any, other: Any) -> bool:
    """May ``viewer`` find ``other`` in a directory?  Same domain, or a TWP users directory of ``other``'s domain granted to ``viewer``."""
    if viewer.domain_id == other.domain_id:
        return True
    d, a = t.directories, t.authorizations
    refs = [f"directory:{i}" for i in conn.execute(sa.select(d.c.id).where(d.c.domain_id == other.domain_id, d.c.connector == "twp_users")).scalars()]
    if not refs:
        return False
    groups = list(conn.execute(sa.select(t.group_members.c.group_id).where(t.group_members.c.user_id == viewer.id)).scalars())
    subject = sa.or_(sa.and_(a.c.subject_type == "user", a.c.subject_id == viewer.id),
                     sa.and_(a.c.subject_type == "group", a.c.subject_id.in_(groups or [-1])))
    return conn.execute(sa.select(a.c.id).where(a.c.object_type == "directory", a.c.object_ref.in_(refs), subject).limit(1)).first() is not None


def switch_on(parameters: ParameterRegistry, conn: sa.Connection, user_id: int, name: str) -> bool:
    """The user's ``Authorize*`` switch (guide 9.1.8); an unknown parameter counts as on."""
    if name not in parameters.definitions:
        return True
    return parameters.resolve_one(conn, user_id, name).as_bool()


def require_switch(parameters: ParameterRegistry, conn: sa.Connection, user_id: int, name: str, what: str) -> None:
    if not switch_on(parameters, conn, user_id, name):
        raise TeamworkError(403, "forbidden", f"{what} is switched off for you ({name} = No, guide 9.1.8); ask an administrator to set it to Yes",
                            None)
