"""Who is calling: ``Principal``, an administrator or a user, as tokens and the event bus know it.

Its own small module, below everything that names it: the event bus filters events by
principal (``twpcore.events.visible_to``), the rights and the store-level checks take one,
and ``twpcore.auth`` builds one from a token (and re-exports it).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs


@attrs.frozen
class Principal:
    """Who is calling: an admin (super user or limited to companies) or a user."""

    type: str
    """``admin`` or ``user``."""
    id: int
    login: str
    token_id: int | None = None
    super_user: bool = False
    companies: frozenset[int] = frozenset()
    """Companies a limited admin manages; a user's own company."""
    domain_id: int | None = None
    """A user's domain."""
    expires_at: dt.datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.type == "admin"

    def manages(self, company_id: int | None) -> bool:
        """May this admin manage the company?  ``None`` means server-wide objects (super users only)."""
        if not self.is_admin:
            return False
        if self.super_user:
            return True
        return company_id is not None and company_id in self.companies

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.type, "id": self.id, "login": self.login, "super_user": self.super_user,
            "companies": sorted(self.companies), "domain_id": self.domain_id,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }
