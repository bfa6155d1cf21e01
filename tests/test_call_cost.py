"""Call cost from price lists in the Wildix CSV format (issue 16; Wildix WMS start guide, "Listes des prix").

The guide's fields: dialprefix (the longest matching prefix wins), destination, rate (price
of a call unit), min_duration (seconds without billing), billing block (the call unit),
connect_charge, start_day / stop_day (1 = Monday, 7 = Sunday), start_time / stop_time
(seconds after midnight, 25200 = 07:00).  Lists are imported through the admin API, per
company (or one of its domains); real calls through the PBX simulator then get their cost
in the call log.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from decimal import Decimal

import pytest

from twp_csta.testing import DIALED_EXTERNAL, renamed_driver, start_lab
from twpcore.telephony.pricing import PriceList, PriceListError, dialed_forms, parse_csv
from twpcore.testing.call_logs import wait_call_log

# The guide's columns, a header line, and rows an operator's list typically holds.
GUIDE_LIST = """dialprefix,destination,rate,min_duration,billing block,connect_charge,start_day,stop_day,start_time,stop_time
0033,France,0.02,0,60,0.10,1,5,25200,72000
0033,France,0.01,0,60,0.05,1,5,72000,25200
0033,France,0.01,0,60,0.05,6,7,0,86400
00336,France mobile,0.12,3,30,0.15,1,7,0,86400
0044,United Kingdom,0.03,0,1,0,1,7,0,86400
"""
PARIS = dt.timezone(dt.timedelta(hours=1))


def priced(price_list: PriceList, number: str, when: str, duration: float) -> tuple[str, Decimal] | None:
    found = price_list.price(dialed_forms(number), dt.datetime.fromisoformat(when).replace(tzinfo=PARIS), duration)
    return None if found is None else (found.rate.destination, found.cost)


def test_a_wildix_price_list_with_the_guides_fields_prices_each_call():
    rates = parse_csv(GUIDE_LIST)
    assert [(r.line, r.dialprefix, r.billing_block, r.start_time, r.stop_time) for r in rates][:2] == [
        (2, "0033", 60, 25200, 72000), (3, "0033", 60, 72000, 25200)]
    prices = PriceList(1, "Operator", "EUR", PARIS, tuple(rates))
    # Tuesday 10:00, 61 s to a French landline: day band, connect charge + 2 units of 60 s.
    assert priced(prices, "0033 1 40 00 00 42", "2026-12-08T10:00:00", 61) == ("France", Decimal("0.14"))
    # Tuesday 23:00 (after stop_time 72000 = 20:00): the night band, which wraps past midnight.
    assert priced(prices, "0033140000042", "2026-12-08T23:00:00", 61) == ("France", Decimal("0.07"))
    assert priced(prices, "0033140000042", "2026-12-09T06:59:59", 60) == ("France", Decimal("0.06"))
    # Saturday (start_day 6 .. stop_day 7): the weekend row.
    assert priced(prices, "0033140000042", "2026-12-12T10:00:00", 120) == ("France", Decimal("0.07"))
    # 00336 is longer than 0033: the mobile row wins; min_duration 3 s are free, then 30 s units.
    assert priced(prices, "0033612345678", "2026-12-08T10:00:00", 3) == ("France mobile", Decimal("0"))
    assert priced(prices, "0033612345678", "2026-12-08T10:00:00", 31) == ("France mobile", Decimal("0.39"))
    # A one-second billing block, no connect charge.
    assert priced(prices, "00442071234567", "2026-12-08T10:00:00", 10.2) == ("United Kingdom", Decimal("0.33"))
    assert priced(prices, "0049301234567", "2026-12-08T10:00:00", 60) is None  # no prefix: not priced


def test_a_prefix_whose_rows_leave_a_gap_in_time_prices_nothing_then():
    prices = PriceList(1, "Day only", "EUR", dt.UTC, tuple(parse_csv("0033,France,0.02,0,60,0,1,5,25200,72000\n0,Anywhere,1,0,60,0,1,7,0,86400\n")))
    assert priced(prices, "0033140000042", "2026-12-08T09:00:00", 60) == ("France", Decimal("0.02"))  # 08:00 UTC
    # Sunday: the longest prefix is 0033 and none of its rows covers Sunday; the shorter prefix 0 does not take over.
    assert priced(prices, "0033140000042", "2026-12-13T09:00:00", 60) is None


def test_semicolons_decimal_commas_and_a_list_without_header_are_read():
    [rate] = parse_csv("\ufeff00336;France mobile;0,12;0;60;0,15;1;7;0;86400\n")
    assert (rate.line, rate.rate, rate.connect_charge) == (1, Decimal("0.12"), Decimal("0.15"))
    [rate] = parse_csv("stop_time,start_time,dialprefix,destination,rate,min_duration,billing_block,connect_charge,start_day,stop_day\n"
                       "86400,0,0044,UK,0.03,,1,,,\n")
    assert (rate.dialprefix, rate.min_duration, rate.connect_charge, rate.start_day, rate.stop_day) == ("0044", 0, Decimal(0), 1, 7)


def test_bad_lines_are_each_reported_with_the_field_and_the_fix():
    text = GUIDE_LIST + "00x,Bad,0.1,0,60,0,1,7,0,86400\n0039,Italy,abc,0,0,0,8,7,0,90000\n0041,Switzerland,0.1\n"
    with pytest.raises(PriceListError) as err:
        parse_csv(text)
    problems = err.value.problems
    assert problems[0].startswith("line 7: dialprefix: expected the digits the called number starts with")
    assert [p.split(":")[1].strip() for p in problems[1:5]] == ["rate", "billing_block", "start_day", "stop_time"]
    assert all(p.startswith("line 8: ") for p in problems[1:5])
    assert "got 'abc'" in problems[1] and "1 = Monday" in problems[3] and "25200 = 07:00" in problems[4]
    assert problems[5].startswith("line 9: expected 10 values separated by ','")
    with pytest.raises(PriceListError, match="columns rate, billing_block are missing"):
        parse_csv("dialprefix,destination,min_duration,connect_charge,start_day,stop_day,start_time,stop_time\n")
    with pytest.raises(PriceListError, match="empty"):
        parse_csv("\n\n")


# -- through the admin API ------------------------------------------------------------------------
async def test_price_lists_are_imported_per_company_and_never_seen_by_another(twp_server, admin):
    acme = await admin.create("companies", name="ACME")
    globex = await admin.create("companies", name="Globex")
    paris = await admin.create("domains", company_id=acme["id"], name="Paris")
    body = await admin.post("/api/v1/price-lists", {"company_id": acme["id"], "name": "Operator", "currency": "EUR", "time_zone": "Europe/Paris",
                                                    "csv": GUIDE_LIST}, status=201)
    assert (body["rates"], body["domain_id"], body["replaced"]) == (5, None, False)
    first_two = "\n".join(GUIDE_LIST.splitlines()[:3])
    again = await admin.post("/api/v1/price-lists", {"company_id": acme["id"], "name": "Operator", "csv": first_two}, status=201)
    assert again["replaced"] is True and again["rates"] == 2 and again["currency"] == "EUR"
    conflict = await admin.call("POST", "/api/v1/price-lists", {"company_id": acme["id"], "name": "Other", "csv": GUIDE_LIST}, status=409)
    assert "'Operator' already applies" in conflict["detail"]
    await admin.post("/api/v1/price-lists", {"company_id": acme["id"], "domain_id": paris["id"], "name": "Paris", "csv": GUIDE_LIST}, status=201)
    wrong = await admin.call("POST", "/api/v1/price-lists", {"company_id": globex["id"], "domain_id": paris["id"], "name": "X", "csv": GUIDE_LIST},
                             status=422)
    assert wrong["field"] == "domain_id"

    bad = await admin.call("POST", "/api/v1/price-lists", {"company_id": acme["id"], "name": "Bad", "csv": "0033,France,cheap,0,60,0,1,7,0,86400\n"},
                           status=422)
    assert bad["error"] == "invalid_price_list" and "line 1: rate: expected a decimal number" in bad["detail"] and "'cheap'" in bad["detail"]
    for field, value in (("currency", "euro"), ("time_zone", "Mars/Olympus"), ("time_zone", "Europe"), ("time_zone", "../etc")):
        refused = await admin.call("POST", "/api/v1/price-lists", {"company_id": acme["id"], "name": "Z", field: value, "csv": GUIDE_LIST},
                                   status=(400, 422))
        assert field in refused["detail"] and value in refused["detail"]

    globex_admin = await twp_server.admin(super_user=False, companies=(globex["id"],))
    assert (await globex_admin.get("/api/v1/price-lists"))["items"] == []
    await globex_admin.call("GET", f"/api/v1/price-lists/{again['id']}", status=404)
    await globex_admin.call("DELETE", f"/api/v1/price-lists/{again['id']}", status=404)
    await globex_admin.call("POST", "/api/v1/price-lists", {"company_id": acme["id"], "name": "Mine", "csv": GUIDE_LIST}, status=404)
    mine = await globex_admin.post("/api/v1/price-lists", {"company_id": globex["id"], "name": "Operator", "csv": GUIDE_LIST}, status=201)
    names = sorted((x["company_id"], x["name"]) for x in (await admin.get("/api/v1/price-lists"))["items"])
    assert names == [(acme["id"], "Operator"), (acme["id"], "Paris"), (globex["id"], "Operator")]
    full = await admin.get(f"/api/v1/price-lists/{mine['id']}")
    assert full["items"][3] == {"line": 5, "dialprefix": "00336", "destination": "France mobile", "rate": "0.120000", "min_duration": 3,
                                "billing_block": 30, "connect_charge": "0.150000", "start_day": 1, "stop_day": 7, "start_time": 0, "stop_time": 86400}
    await globex_admin.call("DELETE", f"/api/v1/price-lists/{mine['id']}", status=204)
    await admin.call("GET", f"/api/v1/price-lists/{mine['id']}", status=404)


# -- real calls ---------------------------------------------------------------------------------
@pytest.mark.parametrize("twp_db_url", ["sqlite", "postgresql"], indirect=True)
async def test_an_answered_outgoing_call_gets_the_cost_of_its_duration_from_its_domains_list(twp_app):
    lab = await start_lab(twp_app, "csta_call_cost", plugins=renamed_driver("csta_call_cost"))
    try:
        company_wide = "33,France,1,0,60,5,1,7,0,86400\n"
        per_second = "336,France mobile,0.01,0,1,0.10,1,7,0,86400\n"
        await lab.admin.post("/api/v1/price-lists", {"company_id": lab.company_id, "name": "Company", "csv": company_wide}, status=201)
        await lab.admin.post("/api/v1/price-lists", {"company_id": lab.company_id, "domain_id": lab.domain_id, "name": "Main domain",
                                                     "currency": "CHF", "csv": per_second}, status=201)
        ws = await lab.ws("alice")
        call_id = (await lab.users["alice"].post("/api/v1/calls", {"number": DIALED_EXTERNAL}, status=201))["call_id"]
        await ws.expect("call.delivered", call={"call_id": call_id})
        lab.sim.answer("00612345678")
        await ws.expect("call.established", call={"call_id": call_id})
        await asyncio.sleep(1.3)
        lab.sim.hang_up("00612345678")
        await ws.expect("call.cleared", call={"call_id": call_id})
        missed = await lab.sim.incoming_call("0612345678", "201")  # incoming: never priced
        await ws.expect("call.delivered", call={"call_id": missed})
        lab.sim.hang_up("0612345678", missed)
        entries = {e["call_id"]: e for e in (await wait_call_log(lab.users["alice"], 2))["items"]}
        out = entries[call_id]
        # The dialed 00612345678 is +33612345678 in canonical form: 336 (the domain's list) is matched, not 33 (the company's).
        assert (out["canonical_number"], out["price_list"], out["destination"], out["currency"]) == (
            "+33612345678", "Main domain", "France mobile", "CHF")
        assert out["duration"] >= 1.3 and out["cost"] == pytest.approx(0.10 + 0.01 * math.ceil(out["duration"]))
        assert (entries[missed]["cost"], entries[missed]["price_list"]) == (None, None)
    finally:
        await lab.close()
