"""Price lists endpoints (issue 16): import a Wildix price-list CSV for a company or one of its domains, read, delete.

An administrator sees and changes the lists of the companies they manage only; any other
list answers 404.  The checks and the SQL are in ``twpcore.admin.price_lists``, the pricing in ``twpcore.telephony.pricing``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from twpcore.admin import price_lists as admin
from twpcore.http.core import MAX_ID, Route, path_int, principal, query_int, read_json, store_of

TAG = "price lists"
BASE = "/api/v1/price-lists"

IMPORT_BODY: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["company_id", "name", "csv"],
    "properties": {
        "company_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID, "x-twp-ref": "companies",
                       "description": "the company the list belongs to"},
        "domain_id": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_ID, "x-twp-ref": "domains",
                      "description": "the domain it prices; null: every domain of the company without a list of its own"},
        "name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": r"^[^\x00-\x1f]*$",
                 "description": "the list's name, shown with each cost; importing the same name again replaces the list"},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code of the prices (default EUR)"},
        "time_zone": {"type": "string", "maxLength": 64, "pattern": r"^[^\x00-\x1f]*$",
                      "description": "IANA time zone of start_time/stop_time and the week days (default UTC)"},
        "csv": {"type": "string", "maxLength": 20_000_000,
                "description": "the Wildix price-list CSV: dialprefix, destination, rate, min_duration, billing block, connect_charge, "
                               "start_day, stop_day, start_time, stop_time"},
    },
}


async def import_list(request: web.Request) -> web.Response:
    who, data = principal(request), await read_json(request)
    summary, replaced = await store_of(request).run(admin.import_list, who, data)
    return web.json_response({**summary, "replaced": replaced}, status=201)


async def list_lists(request: web.Request) -> web.Response:
    who = principal(request)
    company_id = query_int(request, "company_id", None)
    return web.json_response(await store_of(request).run(admin.summaries, who, company_id))


async def get_list(request: web.Request) -> web.Response:
    return web.json_response(await store_of(request).run(admin.managed, principal(request), path_int(request)))


async def delete_list(request: web.Request) -> web.Response:
    await store_of(request).run(admin.delete, principal(request), path_int(request))
    return web.Response(status=204)


def price_list_routes() -> list[Route]:
    return [
        Route("GET", BASE, list_lists, "admin", "Price lists of the companies you manage (without their rates)", TAG,
              query=(("company_id", "integer", "only this company"),)),
        Route("POST", BASE, import_list, "admin", "Import a Wildix price-list CSV for a company or one of its domains (same name: replaced)",
              TAG, body=IMPORT_BODY, status=201, errors=(409, 422),
              rules=("domain_id names a domain of company_id (else 422)", "the CSV's bad lines answer 422 naming each line, field and fix",
                     "one list per domain, and one for the whole company (else 409)")),
        Route("GET", BASE + "/{id}", get_list, "admin", "One price list with its rates", TAG),
        Route("DELETE", BASE + "/{id}", delete_list, "admin", "Delete a price list (costs already written stay)", TAG, status=204),
    ]
