"""Reliability of a CSTA link under injected faults, seen from the API and the WebSockets.

A dropped link reconnects with backoff, restarts the session, re-monitors every device
and reconciles calls from snapshots: a call that continued keeps its state and sends no
duplicate event, a call that ended meanwhile is cleared, a call that started meanwhile
appears.  Garbage and oversized frames are skipped without losing the link, missed
heartbeats make the link dead and reconnected, slow answers give 504.
"""

from __future__ import annotations

import asyncio
import socket
import time

from twp_csta.driver import CstaXmlDriver
from twp_csta.sim import PbxSimulator
from twp_csta.testing import EXTERNAL, DriverConformance, admin_client, start_lab
from twp_csta.xml.codec import Connection, build
from twpcore.plugin_api import hookimpl


class FaultDriver(CstaXmlDriver):
    type_name = "csta_faults"


class Drivers:
    @hookimpl
    def twp_register_pbx_drivers(self, register):
        register(FaultDriver)


PLUGINS = [("csta-fault-drivers", Drivers())]


async def lab_of(twp_app, **kw):
    return await start_lab(twp_app, "csta_faults", plugins=PLUGINS, **kw)


def call_events(stream, call_id, after):
    return [e["type"] for e in stream.events[after:] if e["type"].startswith("call.") and e["data"]["call"]["call_id"] == call_id]


async def test_reconnection_restores_monitors_and_reconciles_calls(twp_app):
    lab = await lab_of(twp_app)
    try:
        admin, alice, bob, carol = await lab.ws("admin"), await lab.ws("alice"), await lab.ws("bob"), await lab.ws("carol")
        kept = await DriverConformance.incoming_answered(lab, "alice")
        ended = await DriverConformance.incoming_answered(lab, "bob", caller="0155171889")
        marks = {name: s.mark() for name, s in lab.streams.items()}

        lab.sim.refuse_connections = True
        attempts_before = lab.sim.connection_attempts
        await lab.sim.drop_links()
        down = await admin.expect("link.down", link="lab")
        assert "closed by the PBX" in down["reason"]
        # While the link is down: bob's caller hangs up, carol gets a call and answers it.
        lab.sim.hang_up("0155171889", ended)
        started = lab.sim.dial("0498765432", "203")
        lab.sim.answer("203", started)
        await asyncio.sleep(1.0)
        attempts = lab.sim.connection_attempts - attempts_before
        assert 3 <= attempts <= 12, f"{attempts} reconnection attempts in 1 s: expected exponential backoff from 0.05 s to 0.4 s"
        states = (await lab.admin.get("/api/v1/devices/states"))["items"]
        assert {d["state"] for d in states} == {"Disconnected"}
        assert (await lab.calls("alice"))["items"][0]["state"] == "connected"  # kept while down: no flicker

        lab.sim.refuse_connections = False
        await admin.expect("link.up", link="lab", timeout=3)
        await lab.wait_supervised()
        assert all(lab.sim.monitored(n) for n in ("201", "202", "203"))
        await bob.expect("call.cleared", after=marks["bob"], call={"call_id": ended}, cause="ended_while_link_down")
        appeared = await carol.expect("call.snapshot", after=marks["carol"], call={"call_id": started})
        assert appeared["call"]["state"] == "connected" and appeared["call"]["remote"] == "0498765432"
        await asyncio.sleep(0.1)
        assert call_events(alice, kept, marks["alice"]) == []  # the call that went on: no duplicate, no ghost
        assert [c["state"] for c in (await lab.calls("alice"))["items"]] == ["connected"]
        assert (await lab.calls("bob"))["items"] == []
        assert lab.driver_obj.reconnects == 1
        assert (await lab.admin.get("/api/v1/links"))["items"][0]["stats"]["reconnects"] == 1

        # The call that went on is still under control after the reconnection.
        await lab.users["alice"].post(f"/api/v1/calls/{kept}/hold", status=204)
        await alice.expect("call.held", call={"call_id": kept})
        assert call_events(alice, kept, marks["alice"]) == ["call.held"]
    finally:
        await lab.close()


async def test_garbage_and_oversized_frames_are_skipped_without_losing_the_link(twp_app):
    lab = await lab_of(twp_app, link_options={"max_frame_size": 4096})
    try:
        admin, alice = await lab.ws("admin"), await lab.ws("alice")
        lab.sim.send_garbage()
        lab.sim.send_oversized(20000)   # beyond the link's max_frame_size: skipped by the framing
        lab.sim.send_oversized(3000)    # within it, but not XML: skipped by the codec
        call_id = await lab.sim.incoming_call(EXTERNAL, "201")
        await alice.expect("call.delivered", call={"call_id": call_id})
        stats = (await lab.admin.get("/api/v1/links"))["items"][0]["stats"]
        assert stats["framing_errors"] >= 2 and stats["codec_errors"] >= 1 and stats["reconnects"] == 0
        assert not admin.matching("link.down")
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/answer", status=204)
        await alice.expect("call.established", call={"call_id": call_id})
    finally:
        await lab.close()


async def test_garbage_on_a_nul_framed_link(twp_app):
    lab = await lab_of(twp_app, link_options={"framing": "nul", "use_session": False})
    try:
        alice = await lab.ws("alice")
        lab.sim.send_garbage()
        lab.sim.send_oversized(2 * 1024 * 1024)
        call_id = await lab.sim.incoming_call(EXTERNAL, "201")
        await alice.expect("call.delivered", call={"call_id": call_id})
        stats = lab.driver_obj.link_stats()
        assert stats["codec_errors"] >= 1 and stats["framing_errors"] >= 1 and lab.driver_obj.reconnects == 0
    finally:
        await lab.close()


async def test_missed_heartbeats_declare_the_link_dead_and_it_comes_back(twp_app):
    lab = await lab_of(twp_app, link_options={"heartbeat_interval": 0.1, "heartbeat_max_missed": 2})
    try:
        admin = await lab.ws("admin")
        await asyncio.sleep(0.35)
        assert lab.driver_obj.client.stats.heartbeats_sent >= 2 and not admin.matching("link.down")
        lab.sim.answer_system_status = False
        down = await admin.expect("link.down", link="lab", timeout=3)
        assert "2 SystemStatus heartbeats unanswered" in down["reason"]
        lab.sim.answer_system_status = True
        await admin.expect("link.up", link="lab", timeout=3)
        await lab.wait_supervised()
        await lab.users["alice"].post("/api/v1/calls", {"number": "202"}, status=201)
    finally:
        await lab.close()


async def test_the_switch_heartbeat_is_answered_and_the_session_kept_alive(twp_app):
    lab = await lab_of(twp_app, sim_options={"system_status_interval": 0.05, "session_duration": 1}, link_options={"session_duration": 1})
    try:
        admin = await lab.ws("admin")
        await asyncio.sleep(1.6)  # longer than the session: the keep-alive resets it
        assert lab.sim.heartbeats_missed == 0 and lab.driver_obj.client.stats.system_status_answered >= 10
        assert not admin.matching("link.down") and lab.driver_obj.reconnects == 0
        assert any(m.name == "ResetApplicationSessionTimer" for m in lab.sim.requests)
    finally:
        await lab.close()


async def test_slow_answers_give_504_and_the_link_stays(twp_app):
    lab = await lab_of(twp_app, link_options={"request_timeout": 0.3})
    try:
        admin = await lab.ws("admin")
        lab.sim.delay = 5.0
        t0 = time.monotonic()
        answer = await lab.users["alice"].post("/api/v1/calls", {"number": "202"}, status=504)
        assert time.monotonic() - t0 < 4.0  # the API gave up (0.3 s time-out) long before the late answer
        assert "no answer from the PBX" in answer["detail"] and "MakeCall" in answer["detail"]
        lab.sim.delay = 0
        for _ in range(400):  # the late answer arrives about 5 s after the request: ignored, counted
            if lab.driver_obj.link_stats()["unmatched"] >= 1:
                break
            await asyncio.sleep(0.025)
        assert lab.driver_obj.link_stats()["unmatched"] >= 1
        assert not admin.matching("link.down")
        await lab.users["alice"].call("GET", "/api/v1/calls", status=200)
        ignored = await lab.users["carol"].post("/api/v1/calls", {"number": "0155171889"}, status=201)
        assert ignored["call_id"]
    finally:
        await lab.close()


async def test_an_event_overtaking_the_monitor_answer_is_not_lost(twp_app):
    sim = PbxSimulator()
    original = sim._req_MonitorStart

    def monitor_then_event_first(link, message):
        response = original(link, message)
        xref = response.text("monitorCrossRefID")
        device = link.monitors[xref]
        if device == "202":
            # Written before the answer: the driver reads the event before it knows the monitor.
            link.write(build("DoNotDisturbEvent", {"monitorCrossRefID": xref, "device": {"deviceIdentifier": device}, "doNotDisturbOn": True}), 9999)
        return response

    sim._req_MonitorStart = monitor_then_event_first  # type: ignore[method-assign]
    await sim.start()
    try:
        server = await twp_app(config={"pbx": {"links": {"lab": {"driver": "csta_faults", "company": "Lab", "domain": "Main", "host": "127.0.0.1",
                                                                  "port": sim.port, "heartbeat_interval": 0}}}}, plugins=PLUGINS)
        admin = admin_client(server)
        company = await admin.create("companies", name="Lab")
        domain = await admin.create("domains", company_id=company["id"], name="Main")
        user = await admin.create("users", domain_id=domain["id"], login="bob")
        await admin.create("devices", user_id=user["id"], number="202")
        def model():
            return server.kernel.telephony.models.get(domain["id"])

        await sim.wait_until(lambda: model() is not None and model().dnd.get("202") is True, 3, "do-not-disturb of 202 known")
    finally:
        await sim.stop()


async def test_an_unreachable_pbx_at_start_is_retried_until_it_answers(twp_app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = await twp_app(config={"pbx": {"links": {"lab": {"driver": "csta_faults", "company": "Lab", "domain": "Main", "host": "127.0.0.1",
                                                              "port": port, "heartbeat_interval": 0, "reconnect_min": 0.2, "reconnect_max": 1}}}},
                           plugins=PLUGINS)
    admin = admin_client(server)
    company = await admin.create("companies", name="Lab")  # the link starts once its company and domain exist
    await admin.create("domains", company_id=company["id"], name="Main", numbering_plan_length=3)
    deadline = time.monotonic() + 5
    while (instance := next(i for i in (await admin.get("/api/v1/plugins"))["instances"] if i["name"] == "lab"))["state"] != "retrying":
        assert time.monotonic() < deadline, f"the link never tried to connect: {instance}"
        await asyncio.sleep(0.05)
    assert f"127.0.0.1:{port}" in instance["reason"] and "cannot connect" in instance["reason"]
    sim = await PbxSimulator(port=port).start()
    try:
        deadline = time.monotonic() + 5
        while server.kernel.instances.as_json() and next(i for i in server.kernel.instances.as_json() if i["name"] == "lab")["state"] != "ready":
            assert time.monotonic() < deadline, "the link never became ready"
            await asyncio.sleep(0.05)
        assert server.kernel.telephony.links["lab"].connected
    finally:
        await sim.stop()


async def test_the_pbx_ending_a_call_while_a_request_is_on_its_way(twp_app):
    lab = await lab_of(twp_app)
    try:
        alice = await lab.ws("alice")
        call_id = await DriverConformance.incoming_answered(lab)
        lab.sim.hang_up(EXTERNAL, call_id)
        await alice.expect("call.cleared", call={"call_id": call_id})
        gone = await lab.users["alice"].post(f"/api/v1/calls/{call_id}/hold", status=409)
        assert call_id in gone["detail"]
        assert Connection(call_id, "201").describe() in gone["detail"]
    finally:
        await lab.close()


async def test_a_session_stopped_by_the_pbx_is_started_again_with_its_monitors(twp_app):
    lab = await lab_of(twp_app)
    try:
        admin = await lab.ws("admin")
        first = lab.sim.links[0].session_id
        assert lab.sim.end_sessions() == 1 and not lab.sim.monitored("201")
        down = await admin.expect("link.down", link="lab")
        assert "stopped the application session" in down["reason"]
        await admin.expect("link.up", link="lab", timeout=3)
        await lab.wait_supervised()
        assert all(lab.sim.monitored(n) for n in ("201", "202", "203")) and lab.sim.links[-1].session_id not in (None, first)
    finally:
        await lab.close()
