"""The Alerter screen pop (guide 9.2.1): XML templates checked on upload, rendered per ringing call, URL mode.

Alice is granted the Alerter; her domain's ``AlerterXml`` names a template that uses the
guide's fields.  When Jean Dupont (one of her private contacts) calls her device on the
PBX simulator, her WebSocket receives the card with his name, company, numbers and her
own details, the ``directory=`` filters applied and the URL of the button escaped; an
unknown caller gets the ``directory="none"`` elements instead.  Bob, without the Alerter,
gets no card.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from twp_csta.testing import EXTERNAL, renamed_driver, start_lab
from twpcore.alerter import TemplateError, parse
from twpcore.alerter.service import AlerterService
from twpcore.events import Event

GUIDE_EXAMPLE = """<alerter vip="true">
  <text x="10" y="5">[-DisplayName-] ([-CompanyName-])</text>
  <text x="10" y="25" directory="[TwsPrivate]">[-Firstname-] / [-Lastname-] / work [-WorkPhone-] / mobile [-MobilePhone-] / [-Custom0-]</text>
  <text x="10" y="45" directory="none">Unknown caller [-PhoneNumber-]</text>
  <text x="10" y="65">For [-MyFirstname-] [-MyLastname-] ([-MyUsername-], [-MyDevice-], [-MyCompany-]) on [-ServerName-]</text>
  <image x="300" y="5" directory="exchange">http://intranet.example.com/photos/[-PersonGuid-].jpg</image>
  <button x="10" y="90" url="http://www.google.fr/search?q=[-DisplayName-]">Search</button>
  <button x="120" y="90" exe="c:\\Windows\\notepad.exe [-PhoneNumber-]">Notes</button>
</alerter>
"""


@pytest.mark.parametrize(("xml", "expected"), [
    ("<alerter><txt>hi</txt></alerter>", "line 1: unknown element <txt>; use <text>, <image> or <button>"),
    ('<alerter vip="yes"><text>hi</text></alerter>', 'line 1: vip="yes"; write vip="true" or vip="false"'),
    ('<alerter>\n<text x="ten">hi</text></alerter>', 'line 2: <text> x="ten"; give a position in pixels'),
    ("<alerter>\n\n<button>Go</button></alerter>", "line 3: <button> does nothing; add url="),
    ('<alerter><button url="javascript:alert(1)">Go</button></alerter>', "give an http://, https://, mailto: or tel: address"),
    ("<alerter><text>[-DisplayName</text></alerter>", "unbalanced field marker"),
    ("<alerter><text>a</text>\n<text>b<b>c</b></text></alerter>", "line 2: <b> inside <text>"),
    ('<alerter><text url="http://x">a</text></alerter>', "<text> has no attribute url"),
    ("<card><text>a</text></card>", "line 1: the root element is <card>; an Alerter template starts with <alerter>"),
    ("<alerter>\n<text>a</alerter>", "line 2, column"),
    ('<!DOCTYPE lol [<!ENTITY lol "lol">]><alerter><text>&lol;</text></alerter>', "DOCTYPE or entity declaration is not allowed"),
    ('<?xml version="1.0"?>\n<!DOCTYPE a SYSTEM "file:///etc/passwd"><alerter/>', "DOCTYPE or entity declaration is not allowed"),
    ("<alerter></alerter>", "shows nothing"),
    ('<alerter><image>ftp://x/y.png</image></alerter>', "is not a web address"),
])
def test_a_bad_template_is_refused_with_its_line_and_the_fix(xml, expected):
    with pytest.raises(TemplateError) as caught:
        parse(xml)
    assert expected in str(caught.value)


def test_the_guide_example_parses_with_its_fields():
    template = parse(GUIDE_EXAMPLE)
    assert template.vip is True and [e.kind for e in template.elements] == ["text"] * 4 + ["image", "button", "button"]
    assert {"DisplayName", "MyDevice", "PersonGuid", "Custom0"} <= template.fields()
    assert template.elements[2].directories == ("none",) and (template.elements[0].x, template.elements[0].y) == (10, 5)


async def test_admins_upload_templates_checked_and_only_for_their_companies(twp_app):
    server = await twp_app()
    root = await server.admin()
    alpha = await root.create("companies", name="Alpha")
    bravo = await root.create("companies", name="Bravo")
    bad = await root.post("/api/v1/alerter/templates", {"company_id": alpha["id"], "name": "main", "xml": "<alerter>\n<txt/></alerter>"},
                          status=422)
    assert bad["field"] == "xml" and "line 2: unknown element <txt>" in bad["detail"]
    checked = await root.post("/api/v1/alerter/templates/check", {"xml": GUIDE_EXAMPLE}, status=200)
    assert checked["valid"] and checked["custom_fields"] == []
    made = await root.post("/api/v1/alerter/templates", {"company_id": alpha["id"], "name": "main", "xml": GUIDE_EXAMPLE}, status=201)
    await root.post("/api/v1/alerter/templates", {"company_id": alpha["id"], "name": "main", "xml": GUIDE_EXAMPLE}, status=409)
    bravo_admin = await server.admin(super_user=False, companies=(bravo["id"],))
    await bravo_admin.get(f"/api/v1/alerter/templates/{made['id']}", status=404)
    await bravo_admin.put(f"/api/v1/alerter/templates/{made['id']}", {"xml": GUIDE_EXAMPLE}, status=404)
    await bravo_admin.post("/api/v1/alerter/templates", {"company_id": alpha["id"], "name": "x", "xml": GUIDE_EXAMPLE}, status=404)
    assert (await bravo_admin.get("/api/v1/alerter/templates"))["items"] == []
    replaced = await root.put(f"/api/v1/alerter/templates/{made['id']}", {"xml": "<alerter><text>[-id-]</text></alerter>"})
    assert replaced["fields"] == ["id"] and replaced["vip"] is False
    await root.put(f"/api/v1/alerter/templates/{made['id']}", {"xml": "<alerter>"}, status=422)
    await root.delete(f"/api/v1/alerter/templates/{made['id']}")
    assert (await root.get("/api/v1/alerter/templates"))["items"] == []


async def test_a_ringing_call_pops_the_card_of_the_template_with_the_guides_fields(twp_app):
    lab = await start_lab(twp_app, "csta_alerter", plugins=renamed_driver("csta_alerter"))
    try:
        admin, alice = lab.admin, lab.users["alice"]
        private = await admin.create("directories", domain_id=lab.domain_id, name="[TwsPrivate]", connector="private", type="private")
        await admin.create("authorizations", object_type="directory", object_ref=f"directory:{private['id']}", subject_type="user",
                           subject_id=lab.user_ids["alice"])
        await admin.create("authorizations", object_type="application", object_ref="Alerter", subject_type="user", subject_id=lab.user_ids["alice"])
        await admin.patch(f"/api/v1/users/{lab.user_ids['alice']}", {"first_name": "Alice", "last_name": "Martin"})
        jean = await alice.post("/api/v1/me/contacts", {"last_name": "Dupont", "first_name": "Jean", "company": "SSDEI", "phone": "01 55 17 18 89",
                                                        "mobile": "06 12 34 56 78", "private0": "Key account"}, status=201)
        await admin.post("/api/v1/alerter/templates", {"company_id": lab.company_id, "name": "reception", "xml": GUIDE_EXAMPLE}, status=201)
        for name, value in (("AlerterXml", "reception"), ("AlerterWidth", "500")):
            await admin.create("parameter_values", name=name, scope="domain", scope_id=lab.domain_id, value=value)
        directories = lab.kernel.directories
        await directories.refresh_visibility()
        deadline = time.monotonic() + 5
        while directories.reverse_now(EXTERNAL, lab.domain_id, lab.user_ids["alice"]) is None:
            assert time.monotonic() < deadline, "alice's private contact never reached the reverse lookup"
            await asyncio.sleep(0.05)

        ws, bob_ws = await lab.ws("alice"), await lab.ws("bob")
        call_id = await lab.sim.incoming_call(EXTERNAL, lab.numbers["alice"])
        card = await ws.expect("alerter.card", call_id=call_id)
        assert (card["mode"], card["width"], card["height"], card["name"], card["contact_id"]) == ("xml", 500, 250, "Jean Dupont", jean["id"])
        texts = [e["text"] for e in card["elements"] if e["type"] == "text"]
        server_name = lab.kernel.alerter.server_name
        assert texts == ["Jean Dupont (SSDEI)", "Jean / Dupont / work 01 55 17 18 89 / mobile 06 12 34 56 78 / Key account",
                         f"For Alice Martin (alice, 201, Lab) on {server_name}"]
        buttons = [e for e in card["elements"] if e["type"] == "button"]
        assert buttons[0] == {"type": "button", "x": 10, "y": 90, "label": "Search", "url": "http://www.google.fr/search?q=Jean%20Dupont"}
        assert buttons[1]["exe"] == f"c:\\Windows\\notepad.exe {EXTERNAL}" and buttons[1]["runs_on"] == "desktop"
        assert not [e for e in card["elements"] if e["type"] == "image"]  # directory="exchange": Jean is not there
        assert (await alice.get("/api/v1/me/alerter"))["cards"] == [card]
        await bob_ws.expect_no("alerter.card", within=0.2)  # Bob has no Alerter (and the call is not his)

        lab.sim.hang_up(EXTERNAL, call_id)
        assert (await ws.expect("alerter.closed", call_id=call_id))["device"] == "201"
        assert (await alice.get("/api/v1/me/alerter"))["cards"] == []

        unknown = await lab.sim.incoming_call("0499887766", lab.numbers["alice"])
        card = await ws.expect("alerter.card", call_id=unknown)
        assert [e["text"] for e in card["elements"] if e["type"] == "text"][:2] == ["0499887766 ()", "Unknown caller 0499887766"]
        lab.sim.hang_up("0499887766", unknown)
        await ws.expect("alerter.closed", call_id=unknown)

        # URL mode: the guide's fields in the address, each escaped.
        await admin.create("parameter_values", name="AlerterMode", scope="user", scope_id=lab.user_ids["alice"], value="URL")
        await admin.create("parameter_values", name="AlerterUrl", scope="user", scope_id=lab.user_ids["alice"],
                           value="https://crm.example.com/find?who=[-DisplayName-]&n=[-PhoneNumber-]&c=[-CompanyName-]")
        again = await lab.sim.incoming_call(EXTERNAL, lab.numbers["alice"])
        card = await ws.expect("alerter.card", call_id=again)
        assert card["mode"] == "url" and card["url"] == f"https://crm.example.com/find?who=Jean%20Dupont&n={EXTERNAL}&c=SSDEI"
    finally:
        await lab.close()


async def test_a_vip_caller_takes_the_vip_colour_when_the_template_asks_for_it(twp_app):
    server = await twp_app()
    root = await server.admin()
    company = await root.create("companies", name="Alpha")
    domain = await root.create("domains", company_id=company["id"], name="Paris")
    user = await root.create("users", domain_id=domain["id"], login="ann")
    await root.create("authorizations", object_type="application", object_ref="Alerter", subject_type="user", subject_id=user["id"])
    await root.create("parameter_values", name="AlerterVipColor", scope="domain", scope_id=domain["id"], value="#FF0000")
    alerter: AlerterService = server.kernel.alerter
    # A call as the directory service enriches it: the contact of an LDAP directory whose [VIP] field is filled (guide 8.2.3).
    call = {"call_id": "c1", "state": "alerting", "direction": "incoming", "remote": "0140000042", "remote_name": "Eva Roy",
            "contact": {"id": 7, "directory": "exchange", "name": "Eva Roy", "last_name": "Roy", "first_name": "Eva", "vip": "Board member",
                        "numbers": [{"type": "phone", "number": "01 40 00 00 42"}], "custom": []}}
    event = Event("call.delivered", {"device": "201", "call": call}, company["id"], domain["id"], frozenset({user["id"]}))
    card = server.run(lambda conn: alerter.card_for(conn, user["id"], event, call))
    assert (card["vip"], card["background"], card["vip_value"]) == (True, "#FF0000", "Board member")
    assert [e["type"] for e in card["elements"]][:3] == ["text", "text", "text"]  # the built-in card (AlerterXml empty)
    plain = ('<alerter vip="false"><text>[-DisplayName-]</text>'
             '<image directory="exchange">http://photos.example.com/[-PersonGuid-].jpg</image></alerter>')
    await root.post("/api/v1/alerter/templates", {"company_id": company["id"], "name": "plain", "xml": plain}, status=201)
    chosen = await root.create("parameter_values", name="AlerterXml", scope="user", scope_id=user["id"], value="plain")
    card = server.run(lambda conn: alerter.card_for(conn, user["id"], event, call))
    assert (card["vip"], card["background"]) == (False, None)  # vip="false": no colour
    assert card["elements"][1]["src"] == "http://photos.example.com/7.jpg"
    await root.patch(f"/api/v1/parameter-values/{chosen['id']}", {"value": "missing"})
    card = server.run(lambda conn: alerter.card_for(conn, user["id"], event, call))
    assert 'names the template "missing"' in card["problem"] and card["elements"]
