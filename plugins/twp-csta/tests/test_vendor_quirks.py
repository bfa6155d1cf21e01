"""Vendor quirks the simulator reproduces (``SimConfig``), and a driver on the toolkit's base that handles them.

Unsolicited events carry invoke id 9999 by ECMA-323 annex J.2's convention, but switches
differ: some use 0, some their own running counter, which may equal the id of a request
still waiting for its answer.  A driver must route events by their kind and
``monitorCrossRefID``, never by invoke id: the whole conformance suite runs here against a
switch numbering its events from a counter.  (The other quirk drivers meet at log-in, a
user and password in the application session's ``applicationSpecificInfo``, is
``SimConfig.username``/``password``: the mivoice400 driver runs the suite with it.)
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest

from twp_csta.framing import EVENT_INVOKE_ID, J2Framing
from twp_csta.session import CstaClient
from twp_csta.sim import PbxSimulator
from twp_csta.testing import DriverConformance, start_lab
from twp_csta.xml import codec as c
from twp_csta.xml.codec import Codec, Message


async def delivered_events(event_invoke_id: Any) -> list[Message]:
    """The events a CTI client receives for incoming calls to 201 and 202, from a switch with that ``event_invoke_id``."""
    events: list[Message] = []
    async with PbxSimulator(devices=("201-203",), event_invoke_id=event_invoke_id) as sim:
        client = await CstaClient.connect("127.0.0.1", sim.port, framing=J2Framing(), codec=Codec(4), on_event=events.append,
                                          request_timeout=2.0)
        try:
            for device, caller in (("201", "0612345678"), ("202", "0698765432")):
                await client.request(c.monitor_start(device))
                await sim.incoming_call(caller, device)
            for _ in range(200):
                if sum(m.name == "DeliveredEvent" for m in events) == 2:
                    break
                await asyncio.sleep(0.01)
        finally:
            await client.close()
    return [m for m in events if m.name == "DeliveredEvent"]


@pytest.mark.parametrize(("quirk", "expected"), [(EVENT_INVOKE_ID, {9999}), (0, {0})])
async def test_events_carry_the_invoke_id_the_switch_uses(quirk, expected):
    events = await delivered_events(quirk)
    assert len(events) == 2 and {m.invoke_id for m in events} == expected


async def test_a_counting_switch_numbers_its_events_like_requests():
    ids = [m.invoke_id for m in await delivered_events("counter")]
    assert len(set(ids)) == 2 and all(i is not None and 1 <= i <= 9000 for i in ids), ids


class TestConformanceWithEventsOnCountedInvokeIds(DriverConformance):
    """The driver base handles a switch whose events carry running invoke ids: every scenario passes."""

    driver = "pbxsim"
    sim_options: ClassVar[dict[str, Any]] = {"event_invoke_id": "counter"}


async def test_a_link_to_a_switch_sending_events_on_invoke_id_0_shows_calls(twp_app):
    lab = await start_lab(twp_app, "pbxsim", sim_options={"event_invoke_id": 0})
    try:
        ws = await lab.ws("alice")
        call_id = await lab.sim.incoming_call("0612345678", "201")
        await ws.expect("call.delivered", call={"call_id": call_id, "state": "alerting"})
        assert lab.driver_obj.link_stats()["codec_errors"] == 0
    finally:
        await lab.close()
