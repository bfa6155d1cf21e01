"""The call-control API end to end: HTTP → kernel → CSTA XML driver → TCP → PBX simulator → events → WebSocket.

The conformance suite (``twp_csta.testing``) plays every operation with the
kernel's CSTA XML driver base, over J.2 and NUL framings; the tests below add what the
suite does not: the dialing plan on the wire, 501/503/403/404 answers, administrators
acting for a device, link and device states (guide 10.4, 10.5), who sees which event,
PBX refusals, and PDU traces (guide 10.6).
"""

from __future__ import annotations

from typing import ClassVar

from twp_csta.driver import CSTA_CAPABILITIES, CstaXmlDriver
from twp_csta.testing import EXTERNAL, DriverConformance, admin_client, start_lab, user_client
from twpcore.hookspecs import hookimpl


class BaseDriver(CstaXmlDriver):
    """The CSTA XML base as it ships, under a test name."""

    type_name = "csta_test"


class BasicDriver(CstaXmlDriver):
    """A driver for a PBX without conference, deflect, DTMF, forwarding or do-not-disturb."""

    type_name = "csta_basic"
    capabilities = CSTA_CAPABILITIES - {"conference", "deflect", "dtmf", "forwarding", "do_not_disturb"}


class Drivers:
    @hookimpl
    def twp_register_pbx_drivers(self, register):
        register(BaseDriver)
        register(BasicDriver)


PLUGINS = [("csta-test-drivers", Drivers())]


class TestBaseDriverConformance(DriverConformance):
    driver = "csta_test"
    plugins = PLUGINS


class TestNulFramingEdition3Conformance(DriverConformance):
    driver = "csta_test"
    plugins = PLUGINS
    link_options: ClassVar[dict[str, object]] = {"framing": "nul", "edition": 3, "use_session": False}


class TestPartialDriverConformance(DriverConformance):
    """The suite skips what a driver does not declare, and checks the API answers 501 for it."""

    driver = "csta_basic"
    plugins = PLUGINS


async def lab_of(twp_app, driver="csta_test", **kw):
    return await start_lab(twp_app, driver, plugins=PLUGINS, **kw)


async def test_make_call_applies_the_domain_dialing_plan(twp_app):
    lab = await lab_of(twp_app)
    try:
        await lab.admin.put(f"/api/v1/domains/{lab.domain_id}/dialing-plan", {"settings": {"external_prefix": "9", "internal_length": 3}})
        body = await lab.users["alice"].post("/api/v1/calls", {"number": "+33 6 12 34 56 78"}, status=201)
        assert body["dialed"] == "90612345678"
        make_call = [m for m in lab.sim.requests if m.name == "MakeCall"][-1]
        assert (make_call.device_field("callingDevice"), make_call.called_device) == ("201", "90612345678")
        assert lab.sim.calls[body["call_id"]].called == "90612345678"
        internal = await lab.users["alice"].post("/api/v1/calls", {"number": "203", "device": "201"}, status=(201, 409))
        assert lab.users["alice"].last_status == 409 and "already has a connected call" in internal["detail"]
        empty = await lab.users["alice"].post("/api/v1/calls", {"number": "()"}, status=400)
        assert empty["field"] == "number" and "cannot be dialed" in empty["detail"]
    finally:
        await lab.close()


async def test_a_capability_the_driver_lacks_answers_501_and_never_reaches_the_pbx(twp_app):
    lab = await lab_of(twp_app, "csta_basic")
    try:
        call_id = await DriverConformance.incoming_answered(lab)
        before = len(lab.sim.requests)
        answer = await lab.users["alice"].post(f"/api/v1/calls/{call_id}/dtmf", {"digits": "1"}, status=501)
        assert answer["error"] == "not_supported" and 'the csta_basic driver of link lab does not support "dtmf"' in answer["detail"]
        await lab.users["alice"].put("/api/v1/devices/do-not-disturb", {"on": True}, status=501)
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/hold", status=204)  # declared: works
        assert [m.name for m in list(lab.sim.requests)[before:]] == ["HoldCall"]
        links = await lab.admin.get("/api/v1/links")
        assert "dtmf" not in links["items"][0]["capabilities"] and "hold" in links["items"][0]["capabilities"]
    finally:
        await lab.close()


async def test_a_link_that_is_down_answers_503_then_works_again(twp_app):
    lab = await lab_of(twp_app)
    try:
        lab.sim.refuse_connections = True
        await lab.sim.drop_links()
        link = lab.kernel.telephony.links["lab"]
        await lab.sim.wait_until(lambda: not link.connected, 3, "link down")
        answer = await lab.users["alice"].post("/api/v1/calls", {"number": "202"}, status=503)
        assert answer["error"] == "link_down" and "PBX link lab is down" in answer["detail"] and "retry" in answer["detail"]
        item = (await lab.admin.get("/api/v1/links"))["items"][0]
        assert item["connected"] is False and item["last_error"]
        states = (await lab.admin.get("/api/v1/devices/states"))["items"]
        assert {d["state"] for d in states} == {"Disconnected"} and all(d["reason"] for d in states)
        lab.sim.refuse_connections = False
        await lab.wait_supervised()
        await lab.users["alice"].post("/api/v1/calls", {"number": "202"}, status=201)
    finally:
        await lab.close()


async def test_users_act_on_their_own_devices_only(twp_app):
    lab = await lab_of(twp_app)
    try:
        answer = await lab.users["alice"].post("/api/v1/calls", {"number": "203", "device": "202"}, status=403)
        assert answer["detail"] == "device 202 is not yours" and answer["field"] == "device"
        await lab.users["alice"].get("/api/v1/calls", params={"device": "202"}, status=403)
        await lab.users["alice"].put("/api/v1/devices/forwarding", {"type": "immediate", "number": "203", "device": "202"}, status=403)
        assert not [m for m in lab.sim.requests if m.name in ("MakeCall", "SetForwarding")]
        await lab.users["bob"].call("GET", "/api/v1/calls", status=200)
    finally:
        await lab.close()


async def test_call_events_reach_only_the_device_owner_and_the_company_admins(twp_app):
    lab = await lab_of(twp_app)
    try:
        alice, bob, admin = await lab.ws("alice"), await lab.ws("bob"), await lab.ws("admin")
        call_id = await lab.sim.incoming_call(EXTERNAL, "201")
        await alice.expect("call.delivered", call={"call_id": call_id})
        seen_by_admin = await admin.expect("call.delivered", call={"call_id": call_id})
        assert seen_by_admin["device"] == "201" and seen_by_admin["link"] == "lab"
        await bob.expect_no("call.delivered", within=0.2)
        other = await lab.admin.create("companies", name="Elsewhere")
        outsider = await lab.server.admin(super_user=False, companies=(other["id"],))
        ws = await lab.server.client.ws_connect(f"/api/v1/events?access_token={outsider.token}")
        from twp_csta.testing import EventStream

        stream = EventStream(ws, "outsider")
        await stream.expect("system.hello")
        lab.sim.answer("201", call_id)
        await alice.expect("call.established", call={"call_id": call_id})
        await stream.expect_no("call.established", within=0.2)
        await stream.close()
    finally:
        await lab.close()


async def test_administrators_act_for_a_device_with_device_and_domain_id(twp_app):
    lab = await lab_of(twp_app)
    try:
        bob = await lab.ws("bob")
        missing = await lab.admin.post("/api/v1/calls", {"number": "202"}, status=400)
        assert missing["field"] == "device" and "domain_id" in missing["detail"]
        body = await lab.admin.post("/api/v1/calls", {"number": "202", "device": "201", "domain_id": lab.domain_id}, status=201)
        await bob.expect("call.delivered", call={"call_id": body["call_id"], "remote": "201"})
        calls = await lab.admin.get("/api/v1/calls", params={"device": "202", "domain_id": str(lab.domain_id)})
        assert calls["device"] == "202" and [c["state"] for c in calls["items"]] == ["alerting"]
        await lab.admin.post(f"/api/v1/calls/{body['call_id']}/answer", {"device": "202", "domain_id": lab.domain_id}, status=204)
        await bob.expect("call.established", call={"call_id": body["call_id"]})
        other = await lab.admin.create("companies", name="Elsewhere")
        outsider = await lab.server.admin(super_user=False, companies=(other["id"],))
        refused = await outsider.post("/api/v1/calls", {"number": "202", "device": "203", "domain_id": lab.domain_id}, status=404)
        assert "203" in refused["detail"]
        assert (await outsider.get("/api/v1/links"))["items"] == []
        assert (await outsider.get("/api/v1/devices/states"))["items"] == []
    finally:
        await lab.close()


async def test_pbx_refusals_become_clear_errors(twp_app):
    lab = await lab_of(twp_app)
    try:
        gone = await lab.users["alice"].post("/api/v1/calls/999/answer", status=409)
        assert gone["error"] == "pbx_error" and "999" in gone["detail"] and "no longer exists" in gone["detail"]
        await lab.users["alice"].post("/api/v1/calls/1001/dtmf", {"digits": "12x"}, status=400)
        bad_type = await lab.users["alice"].put("/api/v1/devices/forwarding", {"type": "sometimes", "number": "202"}, status=400)
        assert bad_type["field"] == "type"
        call_id = await lab.sim.incoming_call(EXTERNAL, "201")
        state = await lab.users["alice"].post(f"/api/v1/calls/{call_id}/hold", status=409)
        assert "not possible in the current state" in state["detail"]
    finally:
        await lab.close()


async def test_link_states_follow_guide_10_4(twp_app):
    lab = await lab_of(twp_app, link_options={"capacity": 50, "sites": ["1.*"]})
    try:
        item = (await lab.admin.get("/api/v1/links"))["items"][0]
        expected = {"name": "lab", "driver": "csta_test", "host": "127.0.0.1", "port": lab.sim.port, "connected": True, "current": 3,
                    "monitored": 3, "count": 50, "site": "1.*", "domain": "Main", "domain_id": lab.domain_id}
        assert {k: item[k] for k in expected} == expected
        assert item["stats"]["monitors"] == 3 and item["stats"]["reconnects"] == 0 and item["stats"]["frames_in"] > 0
        await lab.users["alice"].get("/api/v1/links", status=403)
    finally:
        await lab.close()


async def test_device_states_follow_guide_10_5(twp_app):
    lab = await lab_of(twp_app)
    try:
        nice = await lab.admin.create("domains", company_id=lab.company_id, name="Nice")
        user = await lab.admin.create("users", domain_id=nice["id"], login="david")
        await lab.admin.create("devices", user_id=user["id"], number="301", site="2.1")
        bob_ws = await lab.ws("bob")
        call_id = await lab.sim.incoming_call(EXTERNAL, "202")
        await bob_ws.expect("call.delivered", call={"call_id": call_id})
        items = (await lab.admin.get("/api/v1/devices/states", params={"from": "202", "to": "301"}))["items"]
        by_number = {d["device"]: d for d in items}
        assert set(by_number) == {"202", "203"}  # 301 is in a domain no link serves: not supervised, not listed
        bob = by_number["202"]
        assert {k: bob[k] for k in ("provider", "state", "type", "presence", "calls")} == {
            "provider": "lab", "state": "Connected", "type": "CTI", "presence": "ringing", "calls": 1}
        await lab.admin.get("/api/v1/devices/states", params={"from": "2x"}, status=400)
    finally:
        await lab.close()


async def test_pdu_traces_of_one_device(twp_app, tmp_path):
    lab = await lab_of(twp_app, link_options={"trace_dir": str(tmp_path)})
    try:
        await lab.users["alice"].post("/api/v1/links/lab/trace", {"device": "201"}, status=403)
        await lab.admin.post("/api/v1/links/nope/trace", {"device": "201"}, status=404)
        await lab.admin.post("/api/v1/links/lab/trace", {"device": "2 01"}, status=400)
        carol = await lab.ws("carol")
        started = await lab.admin.post("/api/v1/links/lab/trace", {"device": "201"}, status=201)
        assert started["running"] is True and started["device"] == "201" and started["file"].startswith(str(tmp_path))
        await lab.users["alice"].post("/api/v1/calls", {"number": "203"}, status=201)
        await lab.users["bob"].post("/api/v1/calls", {"number": "00155171889"}, status=201)
        await carol.expect("call.delivered")
        state = await lab.admin.get("/api/v1/links/lab/trace")
        assert state["running"] is True and state["pdus"] >= 3
        stopped = await lab.admin.delete("/api/v1/links/lab/trace", status=200)
        assert stopped["running"] is False
        await lab.admin.delete("/api/v1/links/lab/trace", status=409)
        with open(stopped["file"], encoding="utf-8") as trace:
            text = trace.read()
        assert "PBX link lab" in text and "<MakeCall" in text and "<callingDevice>201</callingDevice>" in text
        assert "00155171889" not in text  # bob's call does not concern device 201
        assert "PBX <- TWP" in text and "PBX -> TWP" in text
        audit = await lab.admin.get("/api/v1/audit")
        assert {"trace.start", "trace.stop"} <= {a["action"] for a in audit["items"]}
    finally:
        await lab.close()


async def test_a_link_configured_before_its_domain_exists_starts_supervising_when_it_is_created(twp_app):
    lab = await lab_of(twp_app)
    try:
        assert lab.kernel.telephony.links["lab"].domain_id == lab.domain_id
        assert await lab.call_states("alice") == {}
    finally:
        await lab.close()


async def test_user_client_and_admin_client_tokens_are_real(twp_app):
    server = await twp_app()
    admin = admin_client(server)
    await admin.get("/api/v1/me")
    company = await admin.create("companies", name="T")
    domain = await admin.create("domains", company_id=company["id"], name="D")
    user = await admin.create("users", domain_id=domain["id"], login="u")
    client = user_client(server, user["id"])
    me = await client.get("/api/v1/me")
    assert "u" in str(me)


async def test_a_switch_without_ecma_354_sessions_is_used_without_one(twp_app):
    lab = await lab_of(twp_app, sim_options={"unsupported": frozenset({"StartApplicationSession"}), "require_session": False})
    try:
        assert lab.driver_obj.session_id is None and lab.connected()
        await lab.users["alice"].post("/api/v1/calls", {"number": "202"}, status=201)
    finally:
        await lab.close()


def test_a_delivery_elsewhere_keeps_the_state_of_a_connected_party():
    """A transferred caller hears the new destination ring: its call stays connected, the far end alerts."""
    from twpcore.telephony.events import PbxEvent
    from twpcore.telephony.model import CallModel

    model = CallModel()
    model.apply(PbxEvent("established", "301", "c1", calling="301", called="201", other="201"))
    model.apply(PbxEvent("transferred", "301", "c2", "connected", other="202", old_call_ids=("c1",)))
    model.apply(PbxEvent("delivered", "301", "c2", calling="301", called="202", other="202"))
    call = model.call("301", "c2")
    assert (call.state, call.remote_state, call.remote) == ("connected", "alerting", "202")
    model.apply(PbxEvent("established", "301", "c2", calling="301", called="202", other="202"))
    assert (model.call("301", "c2").state, model.call("301", "c2").remote_state) == ("connected", None)
