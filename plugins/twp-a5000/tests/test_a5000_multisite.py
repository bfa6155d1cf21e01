"""The A5000 multi-site of guide 4.2: allocation over three VTI-XML links, a lost link, forwarding over CSTA, I2052 devices."""

from __future__ import annotations

from collections import Counter

from twp_csta.sim.vtixml import guide_4_2


async def test_950_devices_are_supervised_across_the_three_links_as_the_guide_table_says(multisite):
    lab = await multisite(csta=False)
    _, locations = guide_4_2()
    await lab.add_devices({n: (site, "VTIXML") for n, site in locations.items()})
    await lab.wait(lambda: sum(len(lab.link(s).monitored) for s in ("link0", "link1", "link2")) == 950, "950 devices monitored")
    # What the PBX supervises on each connection site: exactly the guide's table.
    by_site = {s: Counter(locations[n].split(".")[0] for n in lab.vti.monitored_on(s)) for s in ("link0", "link1", "link2")}
    assert by_site == {"link0": {"1": 500}, "link1": {"2": 250}, "link2": {"3": 100, "4": 100}}
    # Connection states (guide 10.4): current and count per link, with the link's sites.
    links = {item["name"]: item for item in (await lab.admin.get("/api/v1/links"))["items"]}
    assert [(links[f"a5000-{s}"]["current"], links[f"a5000-{s}"]["count"], links[f"a5000-{s}"]["site"], links[f"a5000-{s}"]["connected"])
            for s in ("link0", "link1", "link2")] == [(500, 500, "1.*", True), (250, 250, "2.*", True), (200, 200, "3.*,4.*", True)]
    assert links["a5000-link0"]["stats"]["connection_site"] == "1.1"
    # Device states (guide 10.5): the site and cluster where the PBX says each subscriber is logged.
    states = {d["device"]: d for d in (await lab.admin.get("/api/v1/devices/states?from=40098&to=40099"))["items"]}
    assert {n: (d["provider"], d["state"], d["logged_site"], d["cluster"]) for n, d in states.items()} == {
        "40098": ("a5000-link2", "Connected", "4", "1"), "40099": ("a5000-link2", "Connected", "4", "2")}


async def test_implicit_sites_fill_the_least_loaded_link_and_saturated_explicit_links_overflow(multisite):
    lab = await multisite(csta=False, explicit={"link0": ["1.*"], "link1": [], "link2": []})
    # Site 1 has more subscribers than link 0 can take (500): the rest overflows; sites 2-4 are implicit.
    devices = {str(10000 + n): ("1.1", "VTIXML") for n in range(520)}
    devices.update({str(20000 + n): ("2.1", "VTIXML") for n in range(100)})
    await lab.add_devices(devices)
    await lab.wait(lambda: sum(len(lab.link(s).monitored) for s in ("link0", "link1", "link2")) == 620, "620 devices monitored")
    on0, on1, on2 = (lab.vti.monitored_on(s) for s in ("link0", "link1", "link2"))
    assert len(on0) == 500 and all(n.startswith("1") for n in on0)
    # Overflow and implicit devices go to the least loaded of links 1 (capacity 250) and 2 (200): they end up equally filled.
    assert (len(on1), len(on2)) in ((67, 53), (66, 54))
    assert len(on1) + len(on2) == 120


async def test_a_lost_link_comes_back_and_resynchronises_its_devices_and_calls(multisite):
    lab = await multisite(csta=False)
    devices = {"10001": ("1.1", "VTIXML"), "10002": ("1.2", "VTIXML"), "20001": ("2.1", "VTIXML")}
    await lab.add_devices(devices, users={"alice": "10001"})
    await lab.wait(lambda: lab.link("link0").monitored == {"10001", "10002"} and lab.link("link1").monitored == {"20001"}, "monitored")
    alice = lab.server.user_client(lab.server.kernel.telephony.devices[(lab.domain_id, "10001")].user_id)
    before = lab.link("link0").driver.reconnects
    lab.vti.refuse["link0"] = True  # the connection site stays unreachable for a while
    await lab.vti.drop("link0")
    await lab.wait(lambda: not lab.link("link0").connected, "link0 reported down")
    states = {d["device"]: d for d in (await lab.admin.get("/api/v1/devices/states?from=10001&to=10002"))["items"]}
    assert [states[n]["state"] for n in ("10001", "10002")] == ["Disconnected", "Disconnected"]
    assert "closed" in states["10001"]["reason"]
    # While it is down, a call starts at alice's phone; the other link is unaffected.
    call_id = lab.switch.dial("10001", "0612345678")
    assert lab.link("link1").connected
    lab.vti.refuse["link0"] = False
    await lab.wait(lambda: lab.link("link0").connected and lab.link("link0").monitored == {"10001", "10002"}, "link0 back and resynchronised")
    assert lab.link("link0").driver.reconnects == before + 1
    assert lab.vti.monitored_on("link0") == {"10001", "10002"}
    # The snapshot after the reconnection brought alice's call into the call model.
    calls = await alice.get("/api/v1/calls")
    assert [c["call_id"] for c in calls["items"]] == [call_id]
    links = {i["name"]: i for i in (await lab.admin.get("/api/v1/links"))["items"]}
    assert links["a5000-link0"]["stats"]["reconnects"] == before + 1


async def test_forwarding_goes_through_the_csta_link_and_i2052_devices_are_supervised_over_csta(multisite):
    lab = await multisite(csta_only={"10009"})
    owners = await lab.add_devices({"10001": ("1.1", "VTIXML"), "10009": ("1.1", "CSTA")}, users={"alice": "10001", "ian": "10009"})
    await lab.wait(lambda: "10001" in lab.link("link0").monitored and "10009" in lab.telephony.links["a5000-csta"].monitored, "monitored")
    assert "10009" not in lab.vti.monitored_on("link0")
    alice = lab.server.user_client(owners["10001"])
    body = await alice.put("/api/v1/devices/forwarding", {"type": "immediate", "number": "0612345678"})
    dialed = body["number"]  # as the domain's dialing plan writes it
    assert (body["device"], body["type"]) == ("10001", "immediate")
    forwards = [m for m in lab.switch.requests if m.name == "SetForwarding"]
    assert forwards and forwards[-1].device_field("device") == "10001"
    assert lab.switch.device("10001").forwarding == {"forwardImmediate": dialed}
    # The VTI-XML link reports the change back to the user's state.
    await lab.wait(lambda: lab.telephony.model(lab.domain_id).forwarding.get("10001") == {"immediate": dialed}, "forwarding seen")
    assert (await alice.get("/api/v1/calls"))["forwarding"] == {"immediate": dialed}
    # An I2052 (CSTA device) makes calls over the CSTA link.
    ian = lab.server.user_client(owners["10009"])
    made = await ian.post("/api/v1/calls", {"number": "10001"}, status=201)
    assert made["call_id"] in lab.switch.calls
    assert any(m.name == "MakeCall" for m in lab.switch.requests)


def test_allocation_gives_each_device_only_to_links_of_its_protocol():
    from twpcore.telephony.supervision import DeviceSlot, LinkSlot, allocate

    links = [LinkSlot("vti0", 2, ("1.*",), protocols=("VTIXML",)), LinkSlot("vti1", 2, (), protocols=("VTIXML",)),
             LinkSlot("csta", 5, (), protocols=("CSTA",))]
    devices = [DeviceSlot("1", "1.1", "VTI-XML"), DeviceSlot("2", "1.1", "vtixml"), DeviceSlot("3", "1.1", "VTIXML"),
               DeviceSlot("4", "1.1", "CSTA"), DeviceSlot("5", None, "VTIXML"), DeviceSlot("6", None, "VTIXML"), DeviceSlot("7", None, "SIP")]
    # 1-2 fill the explicit link, 3 overflows, 4 (an I2052) goes to CSTA only, 5 and 6 fill what VTI-XML room is left, 7 has no link.
    assert allocate(devices, links) == {"1": "vti0", "2": "vti0", "3": "vti1", "4": "csta", "5": "vti1", "6": None, "7": None}
    # A device kept on a link that does not take its protocol (its protocol changed) moves.
    again = [LinkSlot("vti0", 2, protocols=("VTIXML",)), LinkSlot("csta", 5, protocols=("CSTA",))]
    assert allocate([DeviceSlot("4", None, "CSTA")], again, current={"4": "vti0"}) == {"4": "csta"}
