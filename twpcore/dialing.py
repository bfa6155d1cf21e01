"""Per-domain dialing plans (guide 5): stored with the domain, compiled once, cached.

A domain without a stored plan uses ``DialingPlan.default()`` (France's standard rules
of guide 5.1).  A plan is checked when it is saved, so an invalid rule never reaches a
call: ``save`` raises ``InvalidRule``/``ValueError`` naming the rule and the reason.  A
stored plan that no longer loads (written by another version) is reported in the log
and health, and the domain falls back to the default plan.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import sqlalchemy as sa

from twpcore.dialplan import DialingPlan
from twpcore.store import schema as t

log = logging.getLogger(__name__)


class UnknownDomain(LookupError):
    """No such domain."""


class DialingPlans:
    """The kernel's cache of compiled dialing plans, keyed by domain id."""

    def __init__(self) -> None:
        self._plans: dict[int, DialingPlan] = {}
        self._lock = threading.Lock()
        self.broken: dict[int, str] = {}
        """Domains whose stored plan failed to load, with the reason."""

    def load(self, conn: sa.Connection, domain_id: int) -> DialingPlan:
        row = conn.execute(sa.select(t.domains.c.dialing_plan).where(t.domains.c.id == domain_id)).one_or_none()
        if row is None:
            raise UnknownDomain(domain_id)
        if row.dialing_plan is None:
            return DialingPlan.default()
        try:
            plan = DialingPlan.from_dict(row.dialing_plan)
        except (ValueError, TypeError) as exc:
            self.broken[domain_id] = str(exc)
            log.error("domain %s: stored dialing plan is invalid (%s); using the default plan until it is saved again", domain_id, exc)
            return DialingPlan.default()
        self.broken.pop(domain_id, None)
        return plan

    def get(self, conn: sa.Connection, domain_id: int) -> DialingPlan:
        plan = self._plans.get(domain_id)
        if plan is None:
            plan = self.load(conn, domain_id)
            with self._lock:
                self._plans[domain_id] = plan
        return plan

    def save(self, conn: sa.Connection, domain_id: int, data: Any) -> DialingPlan:
        """Check and store a plan; ``None`` goes back to the default plan."""
        plan = DialingPlan.default() if data is None else DialingPlan.from_dict(data)
        n = conn.execute(
            sa.update(t.domains).where(t.domains.c.id == domain_id).values(dialing_plan=None if data is None else plan.to_dict())
        ).rowcount
        if not n:
            raise UnknownDomain(domain_id)
        self.forget(domain_id)
        return plan

    def forget(self, domain_id: int) -> None:
        with self._lock:
            self._plans.pop(domain_id, None)
        self.broken.pop(domain_id, None)


def test_number(plan: DialingPlan, number: str, direction: str) -> dict[str, Any]:
    """What the test facility of guide 5 shows: result, rule that fired, steps, canonical keys."""
    result = plan.to_dialable(number) if direction == "dial" else plan.from_received(number)
    return {"direction": direction, **result.to_dict(), "canonical_keys": list(plan.canonical_keys(number))}
