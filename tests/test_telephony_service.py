"""The telephony service with an in-test driver: allocation, call control, events, callback.

The CSTA drivers are tested against the PBX simulator elsewhere; these tests pin the
kernel's side of the driver contract with a driver written in the test.
"""

import asyncio
import itertools
from typing import ClassVar

import attrs

from twpcore.hookspecs import hookimpl
from twpcore.kinds import PbxDriver
from twpcore.schema import setting
from twpcore.telephony.events import CallSnapshot, PbxEvent


@attrs.frozen
class RecordingConfig:
    capacity: int = setting(10, min=0)


class RecordingDriver(PbxDriver):
    """Remembers what the kernel asked and answers like a tiny PBX."""

    type_name = "recording"
    Config = RecordingConfig
    capabilities = frozenset({"monitor", "snapshot", "make_call"})
    ids = itertools.count(1)

    def __init__(self, config, context):
        super().__init__(config, context)
        self.capacity = config.capacity
        self.monitored: list[str] = []
        self.up = False

    @property
    def connected(self):
        return self.up

    async def setup(self):
        self.up = True
        self.link_up()

    async def monitor(self, device):
        self.monitored.append(device)

    async def snapshot(self, device):
        return [CallSnapshot("pre", "connected", "0612")] if device == "201" else []

    async def make_call(self, device, number):
        call_id = f"c{next(self.ids)}"
        self.emit(PbxEvent("originated", device, call_id, calling=device, called=number))
        self.emit(PbxEvent("delivered", device, call_id, calling=device, called=number, other=number))
        return call_id


class Plugin:
    @hookimpl
    def twp_register_pbx_drivers(self, register):
        register(RecordingDriver)


LINK = {"pbx": {"links": {"paris": {"driver": "recording", "company": "ACME", "domain": "Paris", "capacity": 2}}}}


async def setup_tenant(server, admin):
    company = await admin.create("companies", name="ACME")
    domain = await admin.create("domains", company_id=company["id"], name="Paris")
    users = {}
    for login, number in (("alice", "201"), ("bob", "202"), ("carol", "203")):
        user = await admin.create("users", domain_id=domain["id"], login=login, password="a-long-password-1")
        await admin.create("devices", user_id=user["id"], number=number)
        users[login] = user
    return company, domain, users


async def wait_for(predicate, timeout=5.0):
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


def driver_of(server):
    return server.kernel.telephony.links["paris"].driver


async def test_devices_are_allocated_monitored_and_reconciled(twp_app):
    server = await twp_app(config=LINK, plugins=[("recording", Plugin())])
    admin = await server.admin()
    await setup_tenant(server, admin)
    await wait_for(lambda: len(driver_of(server).monitored) == 2 and len(server.kernel.telephony.devices) == 3)
    states = {d["device"]: d for d in (await admin.get("/api/v1/devices/states"))["items"]}
    assert [states[n]["state"] for n in ("201", "202", "203")] == ["Connected", "Connected", "Disconnected"]
    assert "capacity" in states["203"]["reason"]
    links = (await admin.get("/api/v1/links"))["items"]
    assert (links[0]["name"], links[0]["connected"], links[0]["current"], links[0]["count"], links[0]["domain"]) == ("paris", True, 2, 2, "Paris")
    # The snapshot taken on monitoring shows alice's call already in progress.
    alice = await server.login("alice", "a-long-password-1")
    calls = await alice.get("/api/v1/calls")
    assert [c["call_id"] for c in calls["items"]] == ["pre"] and calls["presence"] == "busy"


async def test_make_call_goes_through_dialing_plan_and_events_reach_the_owner(twp_app):
    server = await twp_app(config=LINK, plugins=[("recording", Plugin())])
    admin = await server.admin()
    await setup_tenant(server, admin)
    await wait_for(lambda: "202" in driver_of(server).monitored)
    bob = await server.login("bob", "a-long-password-1")
    ws = await server.client.ws_connect(f"/api/v1/events?access_token={bob.token}")
    assert (await ws.receive_json())["type"] == "system.hello"
    made = await bob.post("/api/v1/calls", {"number": "+33 1 55 17 18 89"}, status=201)
    assert made["dialed"] == "00155171889"
    seen = [(await ws.receive_json(timeout=5))["type"] for _ in range(3)]
    assert seen == ["call.originated", "presence.changed", "call.delivered"]
    calls = await bob.get("/api/v1/calls")
    assert calls["items"][0]["remote"] == "00155171889" and calls["items"][0]["remote_state"] == "alerting"
    # alice never sees bob's call.
    alice = await server.login("alice", "a-long-password-1")
    assert [c["call_id"] for c in (await alice.get("/api/v1/calls"))["items"]] == ["pre"]
    await ws.close()


async def test_missing_capability_is_501_and_foreign_device_is_403(twp_app):
    server = await twp_app(config=LINK, plugins=[("recording", Plugin())])
    admin = await server.admin()
    await setup_tenant(server, admin)
    await wait_for(lambda: "202" in driver_of(server).monitored)
    bob = await server.login("bob", "a-long-password-1")
    err = await bob.call("POST", "/api/v1/calls/c1/hold", {}, status=501)
    assert "recording driver" in err["detail"] and "hold" in err["detail"]
    err = await bob.call("POST", "/api/v1/calls", {"number": "300", "device": "201"}, status=403)
    assert err["field"] == "device"
    carol = await server.login("carol", "a-long-password-1")
    err = await carol.call("POST", "/api/v1/calls", {"number": "300"}, status=409)
    assert "not supervised" in err["detail"]


async def test_link_down_answers_503(twp_app):
    server = await twp_app(config=LINK, plugins=[("recording", Plugin())])
    admin = await server.admin()
    await setup_tenant(server, admin)
    await wait_for(lambda: "202" in driver_of(server).monitored)
    driver_of(server).link_down("cable pulled")
    bob = await server.login("bob", "a-long-password-1")
    err = await bob.call("POST", "/api/v1/calls", {"number": "300"}, status=503)
    assert "cable pulled" in err["detail"]


async def test_callback_needs_the_internet_application_and_is_rate_limited(twp_app):
    server = await twp_app(config=LINK, plugins=[("recording", Plugin())])
    admin = await server.admin()
    _company, _domain, users = await setup_tenant(server, admin)
    await wait_for(lambda: "202" in driver_of(server).monitored)
    web = await server.login("alice", "a-long-password-1")
    err = await web.call("POST", "/api/v1/callback", {"agent": "202", "number": "0155171889"}, status=403)
    assert "Internet" in err["detail"]
    await admin.create("authorizations", object_type="application", object_ref="Internet", subject_type="user", subject_id=users["alice"]["id"])
    out = await web.call("POST", "/api/v1/callback", {"agent": "202", "number": "0155171889"}, status=202)
    assert out["agent"] == "202" and out["dialed"] == "00155171889"  # external prefix added (guide 5.2)
    await web.call("POST", "/api/v1/callback", {"agent": "999", "number": "0155171889"}, status=404)
    for _ in range(2):
        await web.call("POST", "/api/v1/callback", {"agent": "202", "number": "0155171889"}, status=202)
    err = await web.call("POST", "/api/v1/callback", {"agent": "202", "number": "0155171889"}, status=429)
    assert "try again" in err["detail"]


class FlakyDriver(RecordingDriver):
    """Refuses the first monitor of 202, and answers every monitor slowly, like a loaded PBX."""

    type_name = "flaky"
    refused: ClassVar[set[str]] = set()

    async def monitor(self, device):
        await asyncio.sleep(0.05)
        if device == "202" and device not in self.refused:
            self.refused.add(device)
            raise RuntimeError("the PBX did not answer in time")
        self.monitored.append(device)


class FlakyPlugin:
    @hookimpl
    def twp_register_pbx_drivers(self, register):
        register(FlakyDriver)


async def test_a_refused_monitor_is_tried_again_and_devices_added_meanwhile_are_monitored_once(twp_app):
    FlakyDriver.refused = set()
    config = {"limits": {"monitor_retry": "0.3s"},
              "pbx": {"links": {"paris": {"driver": "flaky", "company": "ACME", "domain": "Paris", "capacity": 10}}}}
    server = await twp_app(config=config, plugins=[("flaky", FlakyPlugin())])
    admin = await server.admin()
    company = await admin.create("companies", name="ACME")
    domain = await admin.create("domains", company_id=company["id"], name="Paris")
    # Devices arrive one by one while the link's resync is still monitoring the earlier ones.
    for number in ("201", "202", "203", "204", "205"):
        await admin.create("devices", domain_id=domain["id"], number=number)
    driver = driver_of(server)
    await wait_for(lambda: "202" in FlakyDriver.refused)
    states = {d["device"]: d for d in (await admin.get("/api/v1/devices/states"))["items"]}
    if "202" not in driver.monitored:  # between the refusal and the retry the device says why it is not supervised
        assert "did not answer in time" in (states["202"]["reason"] or "")
    await wait_for(lambda: sorted(driver.monitored) == ["201", "202", "203", "204", "205"])
    assert sorted(driver.monitored) == sorted(set(driver.monitored)), "a device was monitored twice"
    states = {d["device"]: d for d in (await admin.get("/api/v1/devices/states"))["items"]}
    assert {n: (s["state"], s["reason"]) for n, s in states.items()} == dict.fromkeys(("201", "202", "203", "204", "205"), ("Connected", None))
