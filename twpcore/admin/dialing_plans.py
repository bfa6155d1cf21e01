"""Domains' dialing plans as admins manage them (guide 5): read, replace, test, audited.

The rules of ``twpcore.http.dialplan`` (which reads the request and answers).  Each
function is one transaction in the store's thread pool and receives the plans' cache
(``twpcore.dialing.DialingPlans``) it reads and writes through.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from twpcore.admin.resources import audit, require_managed
from twpcore.auth import Principal
from twpcore.dialing import DialingPlans, test_number
from twpcore.dialplan import InvalidRule
from twpcore.routing import ApiError
from twpcore.store import schema as t


def read_plan(conn: sa.Connection, plans: DialingPlans, who: Principal, ident: int) -> dict[str, Any]:
    """The plan of a managed domain; ``default`` when it has none of its own, ``broken`` when its stored plan fails to load."""
    require_managed(conn, who, "domains", ident, "id")
    stored = conn.execute(sa.select(t.domains.c.dialing_plan).where(t.domains.c.id == ident)).scalar_one_or_none()
    plan = plans.get(conn, ident)
    return {"domain_id": ident, "default": stored is None, "broken": plans.broken.get(ident), **plan.to_dict()}


def replace_plan(conn: sa.Connection, plans: DialingPlans, who: Principal, ident: int, data: Any, source: str) -> dict[str, Any]:
    """Replace the plan (``{"default": true}``: back to the default one); an invalid rule or setting answers 422."""
    use_default = data == {"default": True}
    company = require_managed(conn, who, "domains", ident, "id")
    try:
        plan = plans.save(conn, ident, None if use_default else data)
    except InvalidRule as exc:
        raise ApiError(422, "invalid_rule", str(exc), "rules") from None
    except (ValueError, TypeError) as exc:
        raise ApiError(422, "invalid_dialing_plan", str(exc), str(exc).split(":", 1)[0] or None) from None
    audit(conn, who, "set_dialing_plan", "domain", ident, company, source, {"rules": len(plan.rules)})
    return {"domain_id": ident, "default": use_default, **plan.to_dict()}


def try_number(conn: sa.Connection, plans: DialingPlans, who: Principal, ident: int, number: str, direction: str) -> dict[str, Any]:
    """Guide 5's test facility: transform a number with the domain's plan and show which rule fired."""
    require_managed(conn, who, "domains", ident, "id")
    return test_number(plans.get(conn, ident), number, direction)
