"""Phone queues (guide 9.2.2, user guide 4.2): calls wait longest first, a granted receptionist takes one, statistics follow."""

from __future__ import annotations

import asyncio

from test_reception_kit import lab_of

from twp_csta.testing import EXTERNAL
from twpcore.testing.waiting import eventually

SECOND = "0698765432"


async def standard_queue(lab) -> dict:
    """The "Standard" queue on the PBX's queue device 600 (no member takes its calls: they wait), granted to Alice."""
    await lab.admin.create("devices", domain_id=lab.domain_id, number="600")
    queue = await lab.admin.create("phone_queues", domain_id=lab.domain_id, name="Standard", number="600")
    await lab.admin.create("authorizations", object_type="phone_queue", object_ref=f"phone_queue:{queue['id']}",
                           subject_type="user", subject_id=lab.user_ids["alice"])
    await lab.sim.wait_monitored("600", timeout=5)
    reception = lab.kernel.reception
    await eventually(lambda: reception.queues.get((lab.domain_id, "600")) == queue["id"], "queue 600 known")
    await eventually(lambda: lab.user_ids["alice"] in lab.kernel.telephony.queue_watchers.get((lab.domain_id, "600"), ()), "alice watches 600")
    return queue


async def test_a_receptionist_takes_the_longest_waiting_call(twp_app):
    lab = await lab_of(twp_app, sim_options={"queues": {"600": ()}})
    try:
        queue = await standard_queue(lab)
        alice = await lab.ws("alice")
        first = await lab.sim.incoming_call(EXTERNAL, "600")
        await alice.expect("call.queued", device="600", call={"call_id": first}, timeout=10)
        second = await lab.sim.incoming_call(SECOND, "600")
        await alice.expect("call.queued", device="600", call={"call_id": second}, timeout=10)

        waiting = await lab.users["alice"].get(f"/api/v1/phone-queues/{queue['id']}/calls")
        assert [c["caller"] for c in waiting["items"]] == [EXTERNAL, SECOND]  # longest waiting first
        assert waiting["items"][0]["waiting"] >= waiting["items"][1]["waiting"]
        # Bob is not granted the queue.
        await lab.users["bob"].post(f"/api/v1/phone-queues/{queue['id']}/take", {}, status=403)

        await asyncio.sleep(0.4)  # the callers wait a moment (statistics round waits to 0.1 s)
        taken = await lab.users["alice"].post(f"/api/v1/phone-queues/{queue['id']}/take", {})
        assert (taken["picked_call_id"], taken["device"], taken["from_device"]) == (first, "201", "600")
        await alice.expect("call.established", device="201", call={"remote": EXTERNAL, "state": "connected"})
        left = await lab.users["alice"].get(f"/api/v1/phone-queues/{queue['id']}/calls")
        assert [c["caller"] for c in left["items"]] == [SECOND]

        # The second caller gives up.
        lab.sim.hang_up(SECOND, second)
        await alice.expect("call.cleared", device="600", call={"call_id": second})
        await eventually(lambda: lab.kernel.reception.taking == {}, "pickup settled")

        deadline = asyncio.get_running_loop().time() + 10
        while True:  # the call events are recorded as they come: wait for the hang-up to be
            stats = await lab.users["alice"].get(f"/api/v1/phone-queues/{queue['id']}/statistics")
            if stats["waiting"] == 0 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)
        assert (stats["offered"], stats["taken"], stats["abandoned"], stats["waiting"]) == (2, 1, 1, 0)
        assert stats["taken_by"] == [{"user_id": lab.user_ids["alice"], "login": "alice", "calls": 1}]
        assert stats["wait_longest"] is not None and stats["wait_longest"] >= stats["wait_average"] > 0 and stats["wait_longest"] >= 0.4
        await lab.users["bob"].get(f"/api/v1/phone-queues/{queue['id']}/statistics", status=403)
        bad = await lab.users["alice"].call("GET", f"/api/v1/phone-queues/{queue['id']}/statistics", params={"from": "yesterday"}, status=400)
        assert bad["field"] == "from" and "ISO 8601" in bad["detail"]
    finally:
        await lab.close()


async def test_taking_a_call_no_longer_waiting_says_so(twp_app):
    lab = await lab_of(twp_app, sim_options={"queues": {"600": ()}})
    try:
        queue = await standard_queue(lab)
        empty = await lab.users["alice"].post(f"/api/v1/phone-queues/{queue['id']}/take", {}, status=409)
        assert empty["error"] == "no_call" and "Standard" in empty["detail"]
        gone = await lab.users["alice"].post(f"/api/v1/phone-queues/{queue['id']}/take", {"call_id": "4711"}, status=409)
        assert "4711" in gone["detail"]
    finally:
        await lab.close()
