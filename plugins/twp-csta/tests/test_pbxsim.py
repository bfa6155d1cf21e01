"""The PBX simulator, driven with the kernel's own CstaClient over a real TCP socket.

What a CTI application sees of a switch: session, monitors, services, ECMA-323 events
with their fields, the switch's telephony behaviour (forwarding, busy, do-not-disturb,
queues), scripted scenarios and the faults tests inject.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import pytest

from twp_csta.errors import CstaError, CstaTimeout
from twp_csta.framing import J2Framing, NulFraming
from twp_csta.session import CstaClient
from twp_csta.sim import PbxSimulator, expand_devices
from twp_csta.xml import codec as c
from twp_csta.xml.codec import CSTA_NAMESPACES, Codec, Connection, Message

EXT = "0612345678"


class Phone:
    """A CTI client of the simulator: a CstaClient plus the events it received."""

    def __init__(self, client: CstaClient):
        self.client = client
        self.events: list[Message] = []
        self.lost: list[str] = []
        self.xrefs: dict[str, str] = {}
        self._arrived = asyncio.Event()

    def on_event(self, message: Message) -> None:
        self.events.append(message)
        self._arrived.set()

    def on_lost(self, reason: str) -> None:
        self.lost.append(reason)
        self._arrived.set()

    async def monitor(self, *devices: str) -> None:
        for device in devices:
            answer = await self.client.request(c.monitor_start(device))
            self.xrefs[answer.monitor_cross_ref_id] = device

    def of(self, name: str, device: str | None = None) -> list[Message]:
        return [m for m in self.events if m.name == name and (device is None or self.xrefs.get(m.monitor_cross_ref_id or "") == device)]

    async def expect(self, name: str, device: str | None = None, timeout: float = 2.0, **texts: str) -> Message:
        deadline = time.monotonic() + timeout
        while True:
            for m in self.of(name, device):
                if all(m.text(k) == v or m.device_field(k) == v for k, v in texts.items()):
                    return m
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {name} for {device} with {texts}; got {[(m.name, self.xrefs.get(m.monitor_cross_ref_id or '')) for m in self.events]}"
                )
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                pass


async def connect(sim: PbxSimulator, framing=None, edition: int = 4, **kw) -> Phone:
    phone = Phone(None)  # type: ignore[arg-type]
    phone.client = await CstaClient.connect("127.0.0.1", sim.port, framing=framing or J2Framing(), codec=Codec(edition),
                                            on_event=phone.on_event, on_link_lost=phone.on_lost, request_timeout=kw.pop("request_timeout", 2.0), **kw)
    return phone


@pytest.fixture
async def sim():
    sim = PbxSimulator(
        devices=("201-205",),
        failed_clear_after=0.2,
        no_answer_after=0.2,
        external_answer_after=0.05,
        queues={"500": ("204", "205")},
        queue_delay=0.05,
    )
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def phone(sim):
    phone = await connect(sim)
    await phone.monitor("201", "202", "203")
    yield phone
    await phone.client.close()


def test_expand_devices():
    assert expand_devices(["201-203", "300", "0098-0100"]) == ["201", "202", "203", "300", "0098", "0099", "0100"]
    with pytest.raises(ValueError, match="FIRST-LAST"):
        expand_devices(["210-201"])


async def test_session_grants_the_requested_edition_and_writes_it():
    sim = await PbxSimulator(edition=5, require_session=True).start()
    try:
        phone = await connect(sim, edition=4)
        with pytest.raises(CstaError) as refused:
            await phone.client.request(c.monitor_start("201"))
        assert refused.value.http_status == 403  # no session yet
        session = await phone.client.start_application_session("TWP", requested_session_duration=60)
        assert session.protocol_version == CSTA_NAMESPACES[4] and session.session_duration == 60
        await phone.monitor("201")
        sim.dial(EXT, "201")
        delivered = await phone.expect("DeliveredEvent", "201")
        assert delivered.namespace == CSTA_NAMESPACES[4]
        await phone.client.stop_application_session()
        assert sim.links[0].session_id is None and not sim.monitored("201")
        await phone.client.close()
    finally:
        await sim.stop()


async def test_wrong_credentials_are_refused_with_a_negative_response():
    sim = await PbxSimulator(require_session=True, username="twp", password="right").start()
    try:
        phone = await connect(sim)
        with pytest.raises(CstaError) as refused:
            await phone.client.start_application_session("TWP", application_specific_info={"userID": "twp", "password": "wrong"})
        assert refused.value.category == "applicationSession" and refused.value.value == "invalidApplicationInfo"
        session = await phone.client.start_application_session("TWP", application_specific_info={"userID": "twp", "password": "right"})
        assert session.session_id
        await phone.client.close()
    finally:
        await sim.stop()


async def test_a_session_not_reset_in_time_ends_the_link():
    sim = await PbxSimulator(require_session=True, session_duration=1).start()
    try:
        phone = await connect(sim)
        await phone.client.start_application_session("TWP", keepalive=False)
        await sim.wait_until(lambda: phone.lost, 3, "link drop")
        assert "closed by the PBX" in phone.lost[0]
    finally:
        await sim.stop()


async def test_monitors_accept_internal_devices_only(sim, phone):
    with pytest.raises(CstaError) as unknown:
        await phone.client.request(c.monitor_start(EXT))
    assert unknown.value.http_status == 404 and EXT in unknown.value.message
    await phone.monitor("4321")  # matches the internal pattern: created on the fly
    assert sim.devices["4321"].internal and sim.monitored("4321")
    with pytest.raises(CstaError) as bad_xref:
        await phone.client.request(c.monitor_stop("nope"))
    assert bad_xref.value.http_status == 404
    xref = next(x for x, d in phone.xrefs.items() if d == "4321")
    await phone.client.request(c.monitor_stop(xref))
    assert not sim.monitored("4321")


async def test_incoming_external_call_events_carry_the_ecma_fields(sim, phone):
    call_id = await sim.incoming_call(EXT, "201")
    delivered = await phone.expect("DeliveredEvent", "201")
    assert (delivered.call_id, delivered.calling_device, delivered.called_device, delivered.alerting_device) == (call_id, EXT, "201", "201")
    assert (delivered.local_connection_info, delivered.cause) == ("alerting", "newCall")
    await phone.client.request(c.answer_call(Connection(call_id, "201")))
    established = await phone.expect("EstablishedEvent", "201")
    assert (established.answering_device, established.local_connection_info) == ("201", "connected")
    assert sim.calls[call_id].connections == {EXT: "connected", "201": "connected"}
    sim.hang_up(EXT)
    await sim.wait_until(lambda: len(phone.of("ConnectionClearedEvent", "201")) == 2, what="two clears")
    first, second = phone.of("ConnectionClearedEvent", "201")
    assert (first.get("droppedConnection/deviceID"), first.releasing_device, first.local_connection_info) == (EXT, EXT, "connected")
    assert (second.get("droppedConnection/deviceID"), second.local_connection_info, second.cause) == ("201", "null", "normalClearing")
    assert call_id not in sim.calls


async def test_make_call_to_a_busy_number_fails_then_clears(sim, phone):
    sim.busy("00155171889")
    answer = await phone.client.request(c.make_call("201", "00155171889"))
    call_id = answer.call_id
    originated = await phone.expect("OriginatedEvent", "201")
    assert (originated.calling_device, originated.called_device) == ("201", "00155171889")
    failed = await phone.expect("FailedEvent", "201")
    assert (failed.cause, failed.local_connection_info, failed.device_field("failingDevice")) == ("busy", "fail", "00155171889")
    await phone.expect("ConnectionClearedEvent", "201", timeout=2)
    assert call_id not in sim.calls


async def test_make_call_needs_an_internal_calling_device_and_a_number(sim, phone):
    with pytest.raises(CstaError) as bad_caller:
        await phone.client.request(c.make_call(EXT, "201"))
    assert bad_caller.value.http_status == 404
    with pytest.raises(CstaError) as bad_number:
        await phone.client.request(c.make_call("201", "12ab"))
    assert bad_number.value.http_status == 404


async def test_internal_call_is_seen_by_both_monitors(sim, phone):
    call_id = (await phone.client.request(c.make_call("201", "202"))).call_id
    at_caller = await phone.expect("DeliveredEvent", "201")
    at_callee = await phone.expect("DeliveredEvent", "202")
    assert (at_caller.local_connection_info, at_callee.local_connection_info) == ("connected", "alerting")
    sim.answer("202")
    await phone.expect("EstablishedEvent", "201", answeringDevice="202")
    snapshot = await phone.client.request(c.snapshot_device("202"))
    assert [(i.connection.call_id, i.local_connection_state) for i in snapshot.snapshot_items()] == [(call_id, "connected")]
    parties = await phone.client.request(c.snapshot_call(Connection(call_id, "202")))
    infos = parties.get("crossRefIDorSnapshotData/snapshotData")["snapshotCallResponseInfo"]
    assert [(i["deviceOnCall"]["deviceIdentifier"], i["localConnectionState"]) for i in infos] == [("201", "connected"), ("202", "connected")]


async def test_invalid_connections_are_refused(sim, phone):
    with pytest.raises(CstaError) as gone:
        await phone.client.request(c.answer_call(Connection("999", "201")))
    assert gone.value.http_status == 409 and "999" in gone.value.message
    call_id = await sim.incoming_call(EXT, "201")
    with pytest.raises(CstaError) as state:
        await phone.client.request(c.hold_call(Connection(call_id, "201")))  # ringing: cannot hold
    assert state.value.category == "stateIncompatibility"


async def test_hold_retrieve_and_dtmf(sim, phone):
    call_id = await sim.incoming_call(EXT, "201")
    sim.answer("201")
    await phone.client.request(c.hold_call(Connection(call_id, "201")))
    held = await phone.expect("HeldEvent", "201")
    assert (held.device_field("holdingDevice"), held.local_connection_info) == ("201", "hold")
    await phone.client.request(c.retrieve_call(Connection(call_id, "201")))
    await phone.expect("RetrievedEvent", "201", localConnectionInfo="connected")
    await phone.client.request(c.generate_digits(Connection(call_id, "201"), "42#"))
    assert sim.digits == [(call_id, "201", "42#")]


async def test_consultation_then_transfer_lists_the_connections(sim, phone):
    first = await sim.incoming_call(EXT, "201")
    sim.answer("201")
    consult = (await phone.client.request(c.consultation_call(Connection(first, "201"), "202"))).call_id
    await phone.expect("HeldEvent", "201")
    await phone.expect("DeliveredEvent", "202", cause="consultation")
    sim.answer("202", consult)
    await phone.client.request(c.transfer_call(Connection(first, "201"), Connection(consult, "201")))
    at_transferrer = await phone.expect("TransferedEvent", "201")
    at_target = await phone.expect("TransferedEvent", "202")
    assert at_transferrer.local_connection_info == "null" and at_target.local_connection_info == "connected"
    assert (at_target.device_field("transferringDevice"), at_target.device_field("transferredToDevice")) == ("201", "202")
    items = {i.endpoint: (i.old_connection.call_id, i.new_connection.call_id) for i in at_target.connection_list()}
    new = items["202"][1]
    assert items == {EXT: (first, new), "202": (consult, new)}
    assert sim.calls[new].connections == {EXT: "connected", "202": "connected"} and not sim.connections_of("201")


async def test_alternate_and_reconnect(sim, phone):
    first = await sim.incoming_call(EXT, "201")
    sim.answer("201")
    consult = (await phone.client.request(c.consultation_call(Connection(first, "201"), "202"))).call_id
    sim.answer("202", consult)
    await phone.client.request(c.alternate_call(Connection(first, "201"), Connection(consult, "201")))
    assert (sim.calls[first].connections["201"], sim.calls[consult].connections["201"]) == ("connected", "hold")
    await phone.client.request(c.reconnect_call(Connection(first, "201"), Connection(consult, "201")))
    assert first not in sim.calls  # the active one (now the first call) was cleared with its far end
    assert sim.calls[consult].connections == {"201": "connected", "202": "connected"}


async def test_conference_joins_three_parties(sim, phone):
    first = await sim.incoming_call(EXT, "201")
    sim.answer("201")
    consult = (await phone.client.request(c.consultation_call(Connection(first, "201"), "202"))).call_id
    sim.answer("202", consult)
    answer = await phone.client.request(c.conference_call(Connection(first, "201"), Connection(consult, "201")))
    new = answer.call_id
    event = await phone.expect("ConferencedEvent", "202")
    assert (event.device_field("conferencingDevice"), event.device_field("addedParty"), event.cause) == ("201", "202", "conference")
    assert {i.endpoint for i in event.connection_list()} == {"201", EXT, "202"}
    assert sim.calls[new].connections == {"201": "connected", EXT: "connected", "202": "connected"} and sim.calls[new].conference
    sim.hang_up(EXT, new)  # a party leaves: the conference goes on with two
    assert sim.calls[new].connections == {"201": "connected", "202": "connected"}


async def test_single_step_transfer_and_deflect(sim, phone):
    first = await sim.incoming_call(EXT, "201")
    sim.answer("201")
    answer = await phone.client.request(c.single_step_transfer_call(Connection(first, "201"), "202"))
    new = answer.call_id
    delivered = await phone.expect("DeliveredEvent", "202", cause="singleStepTransfer")
    assert (delivered.calling_device, delivered.last_redirection_device) == (EXT, "201")
    second = await sim.incoming_call("0155171889", "203")
    await phone.client.request(c.deflect_call(Connection(second, "203"), "201"))
    diverted = await phone.expect("DivertedEvent", "203")
    assert (diverted.device_field("newDestination"), diverted.cause, diverted.local_connection_info) == ("201", "redirected", "null")
    await phone.expect("DeliveredEvent", "201", lastRedirectionDevice="203")
    assert sim.calls[new].connections == {EXT: "connected", "202": "alerting"}


async def test_forwarding_is_reported_listed_and_honoured(sim, phone):
    await phone.client.request(c.set_forwarding("201", "forwardImmediate", True, "202"))
    event = await phone.expect("ForwardingEvent", "201")
    assert (event.text("forwardingType"), event.text("forwardStatus"), event.device_field("forwardTo")) == ("forwardImmediate", "true", "202")
    listed = await phone.client.request(c.get_forwarding("201"))
    assert listed.get("forwardingList/forwardListItem") == {"forwardingType": "forwardImmediate", "forwardStatus": "true", "forwardDN": "202"}
    call_id = await sim.incoming_call(EXT, "201")
    diverted = await phone.expect("DivertedEvent", "201", cause="callForwardImmediate")
    assert diverted.device_field("newDestination") == "202"
    await phone.expect("DeliveredEvent", "202", lastRedirectionDevice="201")
    assert sim.calls[call_id].connections == {EXT: "connected", "202": "alerting"}
    with pytest.raises(CstaError):
        await phone.client.request(c.set_forwarding("201", "forwardBusy", True))  # no destination
    await phone.client.request(c.set_forwarding("201", "forwardImmediate", False))
    assert sim.devices["201"].forwarding == {}


async def test_forwarding_on_busy_and_on_no_answer(sim, phone):
    sim.set_forwarding("201", "forwardNoAns", "203")
    sim.set_forwarding("202", "forwardBusy", "203")
    ringing = await sim.incoming_call(EXT, "201")
    await phone.expect("DivertedEvent", "201", cause="callForwardNoAnswer", timeout=2)
    await phone.expect("DeliveredEvent", "203")
    assert sim.calls[ringing].connections == {EXT: "connected", "203": "alerting"}
    sim.hang_up(EXT)
    first = await sim.incoming_call("0155171889", "202")
    sim.answer("202", first)
    busy = await sim.incoming_call("0498765432", "202")
    await phone.expect("DivertedEvent", "202", cause="callForwardBusy")
    assert sim.calls[busy].connections == {"0498765432": "connected", "203": "alerting"}


async def test_busy_internal_device_and_do_not_disturb(sim, phone):
    first = await sim.incoming_call(EXT, "201")
    sim.answer("201", first)
    second = await sim.incoming_call("0155171889", "201")
    failed = await phone.expect("FailedEvent", "201")
    assert failed.cause == "busy" and failed.local_connection_info == "null"
    await phone.client.request(c.set_do_not_disturb("202", True))
    await phone.expect("DoNotDisturbEvent", "202", doNotDisturbOn="true")
    assert (await phone.client.request(c.get_do_not_disturb("202"))).text("doNotDisturbOn") == "true"
    third = await sim.incoming_call("0498765432", "202")
    await phone.expect("FailedEvent", "202", cause="doNotDisturb")
    await sim.wait_until(lambda: second not in sim.calls and third not in sim.calls, what="failed calls cleared")


async def test_queue_hands_calls_to_the_first_idle_member(sim, phone):
    await phone.monitor("204", "500")
    call_id = await sim.incoming_call(EXT, "500")
    queued = await phone.expect("QueuedEvent", "500")
    assert queued.local_connection_info == "queued"
    await phone.expect("DeliveredEvent", "204", cause="distributed")
    assert sim.calls[call_id].connections == {EXT: "connected", "204": "alerting"}


async def test_external_behaviours_and_ring_timeout():
    sim = await PbxSimulator(ring_timeout=0.2, external_default="answer", external_answer_after=0.05).start()
    try:
        phone = await connect(sim)
        await phone.monitor("201")
        answered = (await phone.client.request(c.make_call("201", "00155171889"))).call_id
        await phone.expect("EstablishedEvent", "201", answeringDevice="00155171889")
        sim.hang_up("201", answered)
        sim.no_answer("00498765432")
        ringing = (await phone.client.request(c.make_call("201", "00498765432"))).call_id
        cleared = await phone.expect("ConnectionClearedEvent", "201", cause="noAnswer", timeout=2)
        assert cleared.call_id == ringing and ringing not in sim.calls
    finally:
        await sim.stop()


async def test_scenarios(sim, phone):
    await sim.scenarios.incoming_external_call(EXT, "201", answer_after=0.01, talk=0.01)
    await phone.expect("EstablishedEvent", "201")
    await phone.expect("ConnectionClearedEvent", "201", releasingDevice=EXT)
    await sim.scenarios.busy("202", "00155171889", hang_up_after=0.01)
    await phone.expect("FailedEvent", "202", cause="busy")
    await sim.scenarios.no_answer(EXT, "203", ring_for=0.01)
    await phone.expect("ConnectionClearedEvent", "203")
    transferred = await sim.scenarios.transfer(EXT, "201", "202", step=0.01)
    await phone.expect("TransferedEvent", "202")
    assert sim.calls[transferred].connections == {EXT: "connected", "202": "connected"}
    sim.hang_up(EXT)
    conference = await sim.scenarios.conference("0155171889", "201", "203", step=0.01)
    await phone.expect("ConferencedEvent", "203")
    assert len(sim.calls[conference].connections) == 3
    sim.hang_up("201", conference)
    sim.hang_up("203", conference)
    forwarded = await sim.scenarios.forward("0498765432", "202", "201")
    await phone.expect("DeliveredEvent", "201", lastRedirectionDevice="202")
    assert sim.calls[forwarded].connections == {"0498765432": "connected", "201": "alerting"}


@pytest.mark.parametrize("edition", [3, 5])
async def test_nul_framing_and_other_editions(edition):
    sim = await PbxSimulator(framing="nul", edition=edition).start()
    try:
        phone = await connect(sim, framing=NulFraming(), edition=edition)
        await phone.monitor("201")
        answer = await phone.client.request(c.make_call("201", "202"))
        delivered = await phone.expect("DeliveredEvent", "201")
        assert delivered.namespace == CSTA_NAMESPACES[edition] and delivered.call_id == answer.call_id
        assert delivered.invoke_id is None
    finally:
        await sim.stop()


async def test_system_status_both_ways():
    sim = await PbxSimulator(system_status_interval=0.05, system_status_max_missed=2).start()
    try:
        good = await connect(sim)
        deaf = await connect(sim, answer_system_status=False)
        await sim.wait_until(lambda: deaf.lost, 2, "deaf client dropped")
        assert good.client.stats.system_status_answered >= 2 and not good.lost
        await good.client.request(c.system_status("normal"))  # the switch answers ours
        sim.answer_system_status = False
        with pytest.raises(CstaTimeout):
            await good.client.request(c.system_status("normal"), timeout=0.1)
        await good.client.close()
    finally:
        await sim.stop()


async def test_faults_garbage_oversized_slow_ignored_mute_drop(sim, phone):
    sim.send_garbage()
    sim.send_oversized()
    await phone.client.request(c.snapshot_device("201"))  # the link survived both
    assert phone.client.stats.framing_errors >= 1 and phone.client.stats.codec_errors >= 1
    sim.delay = 0.3
    with pytest.raises(CstaTimeout):
        await phone.client.request(c.snapshot_device("201"), timeout=0.1)
    sim.delay = 0
    sim.ignore.add("MakeCall")
    with pytest.raises(CstaTimeout):
        await phone.client.request(c.make_call("201", "202"), timeout=0.1)
    sim.ignore.clear()
    sim.mute = True
    with pytest.raises(CstaTimeout):
        await phone.client.request(c.snapshot_device("201"), timeout=0.1)
    sim.mute = False
    call_id = await sim.incoming_call(EXT, "201")
    assert await sim.drop_links() == 1
    await sim.wait_until(lambda: phone.lost, 2, "link lost")
    assert sim.calls[call_id].connections == {EXT: "connected", "201": "alerting"}  # calls outlive the link
    assert not sim.monitored("201")


async def test_oversized_frame_beyond_the_client_limit_is_skipped(sim):
    phone = await connect(sim, framing=J2Framing(max_frame_size=4096))
    sim.send_oversized(10000)
    await phone.client.request(c.monitor_start("201"))
    assert phone.client.stats.framing_errors == 1 and not phone.lost
    await phone.client.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_standalone_command():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "twp_csta.sim", "--port", str(port), "--framing", "j2", "--devices", "201-210"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        client = None
        for _ in range(200):
            try:
                client = await CstaClient.connect("127.0.0.1", port, framing=J2Framing(), request_timeout=2)
                break
            except Exception:  # noqa: BLE001 - not listening yet
                await asyncio.sleep(0.05)
        assert client is not None, "the standalone simulator never listened"
        answer = await client.request(c.monitor_start("205"))
        assert answer.monitor_cross_ref_id
        made = await client.request(c.make_call("205", "0612345678"))
        assert made.call_id
        await client.close()
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0].decode()
    assert f"listening on 127.0.0.1:{port}" in output


async def test_the_demo_plugin_runs_a_pbx_whose_calls_reach_the_api(twp_app):
    """``make run``: [plugins.pbxsim] starts the simulator; the mxone link retries until it listens."""
    pytest.importorskip("twp_mxone")
    from twp_csta.demo import simulator
    from twp_csta.testing import EventStream, admin_client, user_client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = await twp_app(config={
        "demo": {"seed": True},
        "plugins": {"pbxsim": {"listen": f"127.0.0.1:{port}", "traffic_interval": "0.3s", "answer_after": "0.2s", "external_answer_after": "0.1s"}},
        "pbx": {"links": {"demo": {"driver": "mxone", "company": "Demo", "domain": "Paris", "host": "127.0.0.1", "port": port,
                                   "reconnect_min": 0.1, "heartbeat_interval": 0}}},
    })
    context = server.kernel.plugin_context("pbxsim")
    sim = simulator(context)
    assert sim is not None and sim.port == port
    admin = admin_client(server)
    link = server.kernel.telephony.links["demo"]
    await sim.wait_until(lambda: link.connected and link.monitored >= {"201", "202", "203"}, 5, "demo link supervising 201-203")
    alice_id = server.run(lambda conn: conn.exec_driver_sql("SELECT id FROM users WHERE login = 'alice'").scalar_one())
    alice = user_client(server, alice_id)
    ws = await server.client.ws_connect(f"/api/v1/events?access_token={admin.token}")
    events = EventStream(ws, "admin")
    await events.expect("call.delivered", timeout=5)  # a generated demo call
    traffic = context.state.traffic
    await traffic.stop()
    for call in list(sim.calls.values()):  # end the demo calls in progress: every phone idle
        for party in list(call.connections):
            if call.id in sim.calls and party in call.connections:
                sim.hang_up(party, call.id)
    await sim.wait_until(lambda: not link.driver.client or all(not sim.connections_of(n) for n in ("201", "202")), 2, "idle phones")
    mark = events.mark()
    body = await alice.post("/api/v1/calls", {"number": "202"}, status=201)
    await events.expect("call.delivered", after=mark, device="202", call={"call_id": body["call_id"], "state": "alerting"})
    await events.expect("call.established", after=mark, device="202", call={"call_id": body["call_id"]}, timeout=3)  # a simulated person answers
    await events.close()


async def test_clear_call_call_duration_and_a_queue_waiting_for_a_member():
    sim = await PbxSimulator(max_call_duration=0.15, queues={"500": ("204",)}, queue_delay=0.05).start()
    try:
        phone = await connect(sim)
        await phone.monitor("201", "204")
        first = await sim.incoming_call(EXT, "201")
        await phone.client.request(c.clear_call(Connection(first, "201")))
        assert first not in sim.calls and len(phone.of("ConnectionClearedEvent", "201")) == 2
        talking = await sim.incoming_call(EXT, "204")
        sim.answer("204", talking)
        waiting = await sim.incoming_call("0155171889", "500")
        await asyncio.sleep(0.1)
        assert sim.calls[waiting].connections["500"] == "queued"  # the only member talks
        await phone.expect("ConnectionClearedEvent", "204", releasingDevice=EXT, timeout=2)  # the caller hangs up after max_call_duration
        await phone.expect("DeliveredEvent", "204", cause="distributed", timeout=2)
        assert sim.calls[waiting].connections == {"0155171889": "connected", "204": "alerting"}
        await phone.client.close()
    finally:
        await sim.stop()


def test_events_from_csta_for_the_tricky_cases():
    from twp_csta.driver import events_from_csta

    def ev(name, **fields):
        return c.build(name, {"monitorCrossRefID": "1", **fields})

    other_left = ev("ConnectionClearedEvent", droppedConnection=Connection("7", "202"), localConnectionInfo="connected")
    assert events_from_csta(other_left, "201") == []
    never_reached = ev(
        "FailedEvent", failedConnection=Connection("7", "201"), failingDevice={"deviceIdentifier": "201"}, localConnectionInfo="null", cause="busy"
    )
    assert events_from_csta(never_reached, "201") == []
    diverted_elsewhere = ev(
        "DivertedEvent", connection=Connection("7", "202"), divertingDevice={"deviceIdentifier": "202"}, newDestination={"deviceIdentifier": "203"}
    )
    assert events_from_csta(diverted_elsewhere, "201") == []
    items = {"connectionListItem": [
        {"newConnection": Connection("9", EXT), "oldConnection": Connection("7", EXT), "endpoint": {"deviceID": EXT}},
        {"newConnection": Connection("9", "202"), "oldConnection": Connection("8", "202"), "endpoint": {"deviceID": "202"}}]}
    transfer = dict(primaryOldCall=Connection("7", "201"), secondaryOldCall=Connection("8", "201"), transferringDevice={"deviceIdentifier": "201"},
                    transferredToDevice={"deviceIdentifier": "202"}, transferredConnections=items)
    (mine,) = events_from_csta(ev("TransferedEvent", **transfer, localConnectionInfo="null"), "201")
    assert (mine.type, mine.call_id, mine.state, mine.old_call_ids) == ("transferred", "9", "cleared", ("7", "8"))
    (theirs,) = events_from_csta(ev("TransferedEvent", **transfer, localConnectionInfo="connected"), "202")
    assert (theirs.call_id, theirs.state, theirs.old_call_ids, theirs.other) == ("9", "connected", ("8",), EXT)
    (fwd,) = events_from_csta(
        ev("ForwardingEvent", device={"deviceIdentifier": "201"}, forwardingType="forwardBusyInt", forwardStatus=True, forwardTo="300"), "201"
    )
    assert fwd.forwarding == {"type": "busy", "number": "300", "on": True}
    assert events_from_csta(ev("CallInformationEvent", connection=Connection("7", "201")), "201") == []
