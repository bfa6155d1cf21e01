"""A hostile (or badly broken) PBX cannot inflate the call model or flood the log.

Against the real simulator over a real CSTA XML link: thousands of invented calls keep
a device within ``[limits] calls_per_device``; a call id of 30,000 characters is refused
with a warning naming the link; the calls of a link that stays down are cleared after
``calls_kept_after_link_down`` and the ghosts never come back with the link; thousands
of malformed frames leave a handful of log lines and one summary (admin guide 15,
"A hostile PBX").
"""

from __future__ import annotations

import logging
import uuid

from twp_csta.driver import CstaXmlDriver
from twp_csta.testing import EXTERNAL, DriverConformance, start_lab
from twp_csta.xml.codec import Connection, build
from twpcore.plugin_api import hookimpl


class HostileDriver(CstaXmlDriver):
    type_name = "csta_hostile"


class Drivers:
    @hookimpl
    def twp_register_pbx_drivers(self, register):
        register(HostileDriver)


PLUGINS = [("csta-hostile-drivers", Drivers())]
FLOOD = 5000


async def lab_of(twp_app, **kw):
    return await start_lab(twp_app, "csta_hostile", plugins=PLUGINS, **kw)


def invent_call(lab, device: str, call_id: str, calling: str = EXTERNAL) -> None:
    """The PBX says a call rings at ``device`` that it never placed."""
    lab.sim.send_event(device, "DeliveredEvent", {
        "connection": Connection(call_id, device), "alertingDevice": {"deviceIdentifier": device},
        "callingDevice": {"deviceIdentifier": calling}, "calledDevice": {"deviceIdentifier": device},
        "localConnectionInfo": "alerting", "cause": "newCall",
    })


def j2_frame(payload: bytes) -> bytes:
    return b"\x00\x00" + (len(payload) + 8).to_bytes(2, "big") + b"9999" + payload


def lines(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


async def test_thousands_of_invented_calls_keep_the_device_within_its_call_limit(twp_app, caplog):
    caplog.set_level(logging.WARNING)
    lab = await lab_of(twp_app)
    try:
        for _ in range(FLOOD):
            invent_call(lab, "201", uuid.uuid4().hex)
        real = await lab.sim.incoming_call("0498765432", "201")  # read after the flood: the flood is fully applied then
        items = await lab.wait_calls("alice", lambda items: any(c["call_id"] == real for c in items), timeout=60)
        assert len(items) == 32, f"{len(items)} calls listed at device 201: expected the default limit of 32"
        warned = lines(caplog, "calls_per_device")
        assert warned and all("PBX link lab" in w and "device 201" in w for w in warned)
        assert len(warned) <= 5, f"{len(warned)} warnings about the call limit: the log is flooded"
        await lab.kernel.telephony.call_logs.flush()
        logged = await lab.users["alice"].get("/api/v1/me/call-logs")
        assert logged["total"] == 0, f"{logged['total']} call-log entries: calls dropped past the limit, never answered, are not logged"
        # The device still works: the real call is answered like any other.
        await lab.users["alice"].post(f"/api/v1/calls/{real}/answer", status=204)
        await lab.wait_calls("alice", lambda items: any(c["call_id"] == real and c["state"] == "connected" for c in items))
    finally:
        await lab.close()


async def test_an_over_long_call_id_is_refused_with_a_warning_naming_the_link(twp_app, caplog):
    caplog.set_level(logging.WARNING)
    lab = await lab_of(twp_app)
    try:
        invent_call(lab, "201", "C" * 30_000)
        invent_call(lab, "201", "short-1", calling="9" * 5_000)  # a usable call id with an absurd caller number
        items = await lab.wait_calls("alice", lambda items: any(c["call_id"] == "short-1" for c in items))
        assert [c["call_id"] for c in items] == ["short-1"], "the call with a 30,000-character id must not be listed"
        assert items[0]["remote"] is None, "an over-long party number is left out, not kept"
        refused = lines(caplog, "call id of 30000 characters")
        assert len(refused) == 1 and "PBX link lab" in refused[0] and "at most 128" in refused[0] and "refused" in refused[0]
        assert "C" * 100 not in refused[0], "the log line must not carry the PBX's 30,000 characters"
        assert lines(caplog, "calling number of 5000 characters")
        assert lab.connected()
    finally:
        await lab.close()


async def test_calls_of_a_link_that_stays_down_are_cleared_and_ghosts_do_not_come_back(twp_app):
    lab = await lab_of(twp_app, config={"limits": {"calls_kept_after_link_down": "1s"}})
    try:
        alice, admin = await lab.ws("alice"), await lab.ws("admin")
        real = await DriverConformance.incoming_answered(lab, "alice")
        ghosts = [f"ghost-{n}" for n in range(10)]
        for ghost in ghosts:
            invent_call(lab, "201", ghost)
        await lab.wait_calls("alice", lambda items: len(items) == 11)

        lab.sim.refuse_connections = True
        mark = alice.mark()
        await lab.sim.drop_links()
        await admin.expect("link.down", link="lab")
        assert len((await lab.calls("alice"))["items"]) == 11  # a short outage does not make calls flicker
        await alice.expect("call.cleared", call={"call_id": real}, cause="link_down", after=mark, timeout=5)
        assert (await lab.calls("alice"))["items"] == [], "calls of a link that stays down must not stay listed"
        assert (await lab.calls("alice"))["presence"] == "idle"

        lab.sim.refuse_connections = False
        await admin.expect("link.up", link="lab", timeout=5)
        await lab.wait_supervised()
        back = await alice.expect("call.snapshot", call={"call_id": real}, cause="found_after_reconnect", after=mark)
        assert back["call"]["state"] == "connected"  # the PBX still has it: it is listed again
        items = await lab.wait_calls("alice", lambda items: len(items) == 1)
        assert [c["call_id"] for c in items] == [real], "only the call the PBX confirms comes back, no ghost"
    finally:
        await lab.close()


async def test_ghost_calls_are_removed_by_reconciliation_when_the_link_comes_back(twp_app):
    lab = await lab_of(twp_app)
    try:
        admin = await lab.ws("admin")
        for n in range(40):
            invent_call(lab, "202", f"ghost-{n}")
        await lab.wait_calls("bob", lambda items: len(items) == 32)
        await lab.sim.drop_links()
        await admin.expect("link.down", link="lab")
        await admin.expect("link.up", link="lab", timeout=5)
        await lab.wait_supervised()
        await lab.wait_calls("bob", lambda items: items == [])
    finally:
        await lab.close()


async def test_thousands_of_malformed_frames_leave_a_bounded_log(twp_app, caplog):
    caplog.set_level(logging.INFO)
    lab = await lab_of(twp_app)
    try:
        for link in lab.sim.links:
            for n in range(FLOOD):
                link.write_raw(j2_frame(b"<not xml %d" % n))
            for _ in range(FLOOD):
                link.send_event(build("DeliveredEvent", {"connection": Connection("x", "201")}))  # no monitorCrossRefID
        driver = lab.driver_obj
        await lab.sim.wait_until(lambda: driver.link_stats()["codec_errors"] >= FLOOD and driver.events_unrouted >= FLOOD, 60,
                                 "every malformed frame read")
        assert lab.connected(), "malformed frames must not cost the link"
        unreadable = lines(caplog, "skipped an unreadable frame")
        unrouted = lines(caplog, "without monitorCrossRefID")
        assert 1 <= len(unreadable) <= 5 and 1 <= len(unrouted) <= 5, f"{len(unreadable)} + {len(unrouted)} log lines for {2 * FLOOD} bad PDUs"
        driver.repeats.flush()
        summaries = lines(caplog, "suppressed")
        assert any("lab: unreadable frames: suppressed 4995 similar messages" in s for s in summaries), summaries
        assert any("lab: unrouted events: suppressed 4995 similar messages" in s for s in summaries), summaries
        assert len(caplog.records) < 100, f"{len(caplog.records)} log records for {2 * FLOOD} bad PDUs"
        # The link still carries calls.
        call_id = await lab.sim.incoming_call(EXTERNAL, "201")
        await lab.wait_calls("alice", lambda items: any(c["call_id"] == call_id for c in items))
    finally:
        await lab.close()
