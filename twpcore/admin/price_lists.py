"""Price lists as administrators manage them (issue 16): the checks of ``/api/v1/price-lists`` and their SQL.

An administrator reaches the lists of the companies they manage only; any other list (or
company) answers 404.  Blocking functions, run through ``store.run`` by
``twpcore/http/price_lists.py``; the pricing is ``twpcore.telephony.pricing``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from twpcore.principals import Principal
from twpcore.routing import ApiError
from twpcore.store import schema as t
from twpcore.telephony import pricing


def import_list(conn: sa.Connection, who: Principal, data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Check and store an imported list (a body of ``POST /api/v1/price-lists``); (its summary, whether it replaced one)."""
    company_id, domain_id = data["company_id"], data.get("domain_id")
    if not who.manages(company_id) or conn.execute(sa.select(t.companies.c.id).where(t.companies.c.id == company_id)).scalar() is None:
        raise ApiError(404, "not_found", f"company {company_id} not found", "company_id")
    if domain_id is not None:
        owner = conn.execute(sa.select(t.domains.c.company_id).where(t.domains.c.id == domain_id)).scalar()
        if owner is None or not who.manages(owner):
            raise ApiError(404, "not_found", f"domain {domain_id} not found", "domain_id")
        if owner != company_id:
            raise ApiError(422, "invalid", f"domain_id: domain {domain_id} is not a domain of company {company_id}", "domain_id")
    name, currency, zone = data["name"].strip(), data.get("currency", "EUR"), data.get("time_zone", "UTC")
    try:
        pricing.check_list_fields(name, currency, zone)
        rates = pricing.parse_csv(data["csv"])
    except pricing.PriceListError as exc:
        raise ApiError(422, "invalid_price_list", f"price list {name[:100]!r}: {exc}", "csv") from None
    try:
        return pricing.save_list(conn, company_id=company_id, domain_id=domain_id, name=name, currency=currency, time_zone=zone, rates=rates)
    except LookupError as exc:
        raise ApiError(409, "conflict", str(exc), "domain_id") from None


def managed(conn: sa.Connection, who: Principal, ident: int) -> dict[str, Any]:
    """A list with its rates, or 404 when it does not exist or belongs to a company ``who`` does not manage."""
    found = pricing.read_list(conn, ident)
    if found is None or not who.manages(found["company_id"]):
        raise ApiError(404, "not_found", f"price list {ident} not found")
    return found


def summaries(conn: sa.Connection, who: Principal, company_id: int | None) -> dict[str, Any]:
    """The lists of the companies ``who`` manages (optionally one of them), without their rates."""
    items = pricing.list_summaries(conn, None if who.super_user else who.companies, company_id)
    return {"items": items, "total": len(items)}


def delete(conn: sa.Connection, who: Principal, ident: int) -> None:
    managed(conn, who, ident)
    pricing.delete_list(conn, ident)
