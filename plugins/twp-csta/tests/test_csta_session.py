"""CSTA client sessions over a real loopback TCP socket, against a tiny scripted PBX."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from twp_csta.errors import CstaBaseError, CstaError, CstaLinkError, CstaTimeout
from twp_csta.framing import Framing, J2Framing, NulFraming
from twp_csta.session import CstaClient, InvokeIdAllocator
from twp_csta.xml import codec as c
from twp_csta.xml.codec import APPL_SESSION_NAMESPACE, CSTA_NAMESPACES, Codec, Connection, Message

Handler = Callable[["Peer", Message], Awaitable[None]]


class Peer:
    """The PBX end of the link: records what it receives, answers as a test scripts it."""

    def __init__(self, framing: Framing, edition: int = 4, handler: Handler | None = None) -> None:
        self.framing = framing
        self.codec = Codec(edition)
        self.handler = handler
        self.received: asyncio.Queue[Message] = asyncio.Queue()
        self.writer: asyncio.StreamWriter | None = None
        self.connected = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.connected.set()
        while data := await reader.read(65536):
            for frame in self.framing.feed(data):
                message = self.codec.decode(frame.payload, invoke_id=frame.invoke_id)
                if self.handler is not None:
                    await self.handler(self, message)
                else:
                    await self.received.put(message)

    async def send(self, message: Message, invoke_id: int | None = None) -> None:
        await self.send_raw(self.framing.encode(invoke_id, self.codec.encode(message)))

    async def send_raw(self, data: bytes) -> None:
        await self.connected.wait()
        assert self.writer is not None
        self.writer.write(data)
        await self.writer.drain()

    async def expect(self, name: str, timeout: float = 2.0) -> Message:
        message = await asyncio.wait_for(self.received.get(), timeout)
        assert message.name == name, f"PBX expected {name}, got {message.name}"
        return message

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class Recorder:
    """Collects what the client hands to its callbacks."""

    def __init__(self) -> None:
        self.events: list[Message] = []
        self.lost: list[str] = []
        self.lost_event = asyncio.Event()

    def on_event(self, message: Message) -> None:
        self.events.append(message)

    async def on_link_lost(self, reason: str) -> None:
        self.lost.append(reason)
        self.lost_event.set()


@pytest.fixture
async def link():
    """Start a peer and a client connected to it: ``peer, client, recorder = await link(...)``."""
    made: list[tuple[Peer, CstaClient]] = []

    async def make(framing: str = "j2", handler: Handler | None = None, peer_edition: int = 4, **kwargs):
        framing_cls = {"j2": J2Framing, "nul": NulFraming}[framing]
        peer = Peer(framing_cls(), peer_edition, handler)
        await peer.start()
        recorder = Recorder()
        kwargs.setdefault("codec", Codec(edition=4))
        kwargs["framing"] = kwargs.pop("client_framing", None) or framing_cls()
        client = await CstaClient.connect(
            "127.0.0.1", peer.port, name="paris", on_event=recorder.on_event,
            on_link_lost=recorder.on_link_lost, **kwargs,
        )
        await asyncio.wait_for(peer.connected.wait(), 2)
        made.append((peer, client))
        return peer, client, recorder

    yield make
    for peer, client in made:
        await client.close()
        await peer.close()


async def until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_answers_are_matched_to_requests_among_events(link):
    peer, client, rec = await link()
    make_call = asyncio.create_task(client.request(c.make_call("201", "202")))
    monitor = asyncio.create_task(client.request(c.monitor_start("201")))
    received = [await asyncio.wait_for(peer.received.get(), 2) for _ in range(2)]
    by_name = {m.name: m for m in received}
    assert by_name["MakeCall"].invoke_id != by_name["MonitorStart"].invoke_id
    assert 1 <= by_name["MakeCall"].invoke_id <= 9998

    await peer.send(c.build("OriginatedEvent", {
        "monitorCrossRefID": "55", "originatedConnection": Connection("4730", "201"), "cause": "makeCall",
    }), 9999)
    await peer.send(c.build("MonitorStartResponse", {"monitorCrossRefID": "55"}), by_name["MonitorStart"].invoke_id)
    await peer.send(c.build("DeliveredEvent", {
        "monitorCrossRefID": "55", "connection": Connection("4730", "202"), "cause": "newCall",
    }), 9999)
    await peer.send(c.build("MakeCallResponse", {"callingDevice": Connection("4730", "201")}),
                    by_name["MakeCall"].invoke_id)

    assert (await monitor).monitor_cross_ref_id == "55"
    answer = await make_call
    assert answer.name == "MakeCallResponse" and answer.connection == Connection("4730", "201")
    await until(lambda: len(rec.events) == 2)
    assert [e.name for e in rec.events] == ["OriginatedEvent", "DeliveredEvent"]
    assert rec.events[1].call_id == "4730" and rec.events[1].invoke_id == 9999
    assert client.pending == 0 and client.stats.events == 2 and client.stats.unmatched == 0


async def test_silent_pbx_times_out_and_late_answer_becomes_an_event(link):
    peer, client, rec = await link()
    with pytest.raises(CstaTimeout) as caught:
        await client.request(c.snapshot_device("201"), timeout=0.1)
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.http_status == 504
    assert caught.value.message.startswith("SnapshotDevice: no answer from the PBX on link paris within 0.1 s")
    assert client.pending == 0 and client.stats.timeouts == 1
    late = await peer.expect("SnapshotDevice")
    await peer.send(c.build("SnapshotDeviceResponse"), late.invoke_id)
    await until(lambda: rec.events)
    assert rec.events[0].name == "SnapshotDeviceResponse" and client.stats.unmatched == 1
    assert client.connected


async def test_pbx_system_status_is_answered_with_its_invoke_id(link):
    peer, client, rec = await link()
    await peer.send(c.system_status("normal"), 17)
    answer = await peer.expect("SystemStatusResponse")
    assert answer.invoke_id == 17
    await until(lambda: rec.events)
    assert rec.events[0].name == "SystemStatus" and client.stats.system_status_answered == 1


async def test_pbx_request_reusing_a_pending_invoke_id_does_not_answer_it(link):
    peer, client, _rec = await link()
    pending = asyncio.create_task(client.request(c.hold_call(Connection("1", "201"))))
    hold = await peer.expect("HoldCall")
    await peer.send(c.system_status(), hold.invoke_id)  # same number, other direction
    assert (await peer.expect("SystemStatusResponse")).invoke_id == hold.invoke_id
    assert not pending.done()
    await peer.send(c.build("HoldCallResponse"), hold.invoke_id)
    assert (await pending).name == "HoldCallResponse"


async def test_unanswered_heartbeats_declare_the_link_lost(link):
    peer, client, rec = await link(heartbeat_interval=0.05, heartbeat_timeout=0.05, heartbeat_max_missed=2)
    await asyncio.wait_for(rec.lost_event.wait(), 2)
    assert rec.lost == ["2 SystemStatus heartbeats unanswered"]
    assert not client.connected and client.stats.heartbeats_missed == 2
    assert (await peer.expect("SystemStatus")).system_status == "normal"
    with pytest.raises(CstaLinkError, match="link lost \\(2 SystemStatus heartbeats unanswered\\)"):
        await client.request(c.snapshot_device("201"))


async def test_answered_heartbeats_keep_the_link(link):
    async def pbx(peer: Peer, message: Message) -> None:
        if message.name == "SystemStatus":
            await peer.send(c.system_status_response(), message.invoke_id)

    _peer, client, rec = await link(handler=pbx, heartbeat_interval=0.05, heartbeat_timeout=1.0, heartbeat_max_missed=1)
    await until(lambda: client.stats.heartbeats_sent >= 4)
    assert client.connected and client.stats.heartbeats_missed == 0 and not rec.lost


async def test_refused_heartbeat_still_proves_the_pbx_alive(link):
    async def pbx(peer: Peer, message: Message) -> None:
        await peer.send(c.csta_error("operation", "serviceNotSupported"), message.invoke_id)

    _peer, client, rec = await link(handler=pbx, heartbeat_interval=0.05, heartbeat_timeout=1.0, heartbeat_max_missed=1)
    await until(lambda: client.stats.heartbeats_sent >= 3)
    assert client.connected and not rec.lost


async def test_csta_error_code_becomes_a_clear_error(link):
    async def pbx(peer: Peer, message: Message) -> None:
        await peer.send(c.csta_error("operation", "invalidDeviceID"), message.invoke_id)

    _peer, client, _rec = await link(handler=pbx)
    with pytest.raises(CstaError) as caught:
        await client.request(c.make_call("299", "202"))
    assert caught.value.http_status == 404
    assert caught.value.message == "MakeCall: device 299 unknown to the PBX (CSTA operation error invalidDeviceID)"
    assert client.stats.errors == 1 and client.connected


async def test_application_session_is_started_kept_alive_and_stopped(link):
    seen: list[Message] = []

    async def pbx(peer: Peer, message: Message) -> None:
        seen.append(message)
        if message.name == "StartApplicationSession":
            await peer.send(c.start_application_session_pos_response("s-1", CSTA_NAMESPACES[3], 180),
                            message.invoke_id)
        elif message.name == "ResetApplicationSessionTimer":
            await peer.send(c.build("ResetApplicationSessionTimerPosResponse", {"actualSessionDuration": 180}),
                            message.invoke_id)
        elif message.name == "StopApplicationSession":
            await peer.send(c.build("StopApplicationSessionPosResponse"), message.invoke_id)
        elif message.name == "MonitorStart":
            await peer.send(c.build("MonitorStartResponse", {"monitorCrossRefID": "9"}), message.invoke_id)

    _peer, client, rec = await link(handler=pbx)
    session = await client.start_application_session(
        "TWP", requested_session_duration=180, keepalive_interval=0.05,
        application_specific_info={"user": "twp"},
    )
    assert (session.session_id, session.session_duration) == ("s-1", 180)
    start = seen[0]
    assert start.namespace == APPL_SESSION_NAMESPACE
    assert start.text("applicationInfo/applicationID") == "TWP"
    assert start.text("requestedProtocolVersions/protocolVersion") == CSTA_NAMESPACES[4]
    assert client.codec.edition == 3  # the PBX granted ed3: the client now writes it
    await client.request(c.monitor_start("201"))
    assert seen[-1].name == "MonitorStart" and seen[-1].namespace == CSTA_NAMESPACES[3]

    await until(lambda: sum(m.name == "ResetApplicationSessionTimer" for m in seen) >= 2)
    reset = next(m for m in seen if m.name == "ResetApplicationSessionTimer")
    assert reset.text("sessionID") == "s-1" and reset.text("requestedSessionDuration") == "180"

    await client.stop_application_session()
    assert seen[-1].name == "StopApplicationSession" and seen[-1].text("sessionID") == "s-1"
    assert client.session is None and client.connected and not rec.lost


async def test_refused_session_is_a_csta_error(link):
    async def pbx(peer: Peer, message: Message) -> None:
        await peer.send(c.build("StartApplicationSessionNegResponse",
                                {"errorCode": {"definedError": "invalidApplicationInfo"}}), message.invoke_id)

    _peer, client, _rec = await link(handler=pbx)
    with pytest.raises(CstaError) as caught:
        await client.start_application_session("TWP")
    assert caught.value.category == "applicationSession" and caught.value.value == "invalidApplicationInfo"
    assert "StartApplicationSession: the PBX refused the application session" in caught.value.message


async def test_refused_keepalive_reports_the_link_lost(link):
    async def pbx(peer: Peer, message: Message) -> None:
        if message.name == "StartApplicationSession":
            await peer.send(c.start_application_session_pos_response("s-2", CSTA_NAMESPACES[4], 60),
                            message.invoke_id)
        else:
            await peer.send(c.build("ResetApplicationSessionTimerNegResponse",
                                    {"errorCode": {"definedError": "invalidSessionID"}}), message.invoke_id)

    _peer, client, rec = await link(handler=pbx)
    await client.start_application_session("TWP", keepalive_interval=0.05)
    await asyncio.wait_for(rec.lost_event.wait(), 2)
    assert rec.lost[0].startswith("application session s-2 ended: ResetApplicationSessionTimer:")
    assert not client.connected


async def test_malformed_frames_are_skipped_and_the_link_survives(link):
    peer, client, rec = await link(client_framing=J2Framing(max_frame_size=1000))
    pending = asyncio.create_task(client.request(c.get_forwarding("201")))
    request = await peer.expect("GetForwarding")
    big = c.build("DeliveredEvent", {"cause": "x" * 2000})
    await peer.send_raw(b"\r\nGARBAGE FROM A CONFUSED PBX\r\n")
    await peer.send(big, 9999)
    await peer.send_raw(peer.framing.encode(9999, b"<DeliveredEvent><cause>newCall</DeliveredEvent>"))
    await peer.send(c.build("GetForwardingResponse", {"forwardingList": ""}), request.invoke_id)
    assert (await pending).name == "GetForwardingResponse"
    assert client.stats.framing_errors == 2 and client.stats.codec_errors == 1
    assert client.connected and not rec.lost and not rec.events


async def test_pbx_closing_the_link_fails_pending_requests(link):
    peer, client, rec = await link()
    pending = asyncio.create_task(client.request(c.answer_call(Connection("3", "201"))))
    await peer.expect("AnswerCall")
    await peer.close()
    with pytest.raises(CstaLinkError, match="AnswerCall: paris: link lost"):
        await pending
    await asyncio.wait_for(rec.lost_event.wait(), 2)
    assert rec.lost == ["connection closed by the PBX"] and not client.connected


async def test_close_fails_pending_requests_without_reporting_a_loss(link):
    peer, client, rec = await link()
    pending = asyncio.create_task(client.request(c.snapshot_device("201")))
    await peer.expect("SnapshotDevice")
    await client.close()
    with pytest.raises(CstaLinkError, match="link closed"):
        await pending
    assert not rec.lost
    with pytest.raises(CstaLinkError):
        await client.request(c.snapshot_device("201"))


async def test_nul_framing_matches_answers_by_name_then_age(link):
    peer, client, rec = await link(framing="nul")
    make_call = asyncio.create_task(client.request(c.make_call("201", "202")))
    await peer.expect("MakeCall")
    snapshot = asyncio.create_task(client.request(c.snapshot_device("203")))
    clear = asyncio.create_task(client.request(c.clear_connection(Connection("5", "204"))))
    assert (await peer.expect("SnapshotDevice")).invoke_id is None
    await peer.expect("ClearConnection")
    await peer.send(c.build("SnapshotDeviceResponse"))
    await peer.send(c.build("DeliveredEvent", {"cause": "newCall"}))
    await peer.send(c.csta_error("stateIncompatibility", "invalidObjectState"))  # goes to the oldest: MakeCall
    await peer.send(c.build("ClearConnectionResponse"))
    assert (await snapshot).name == "SnapshotDeviceResponse"
    with pytest.raises(CstaError, match="MakeCall: not possible in the current state"):
        await make_call
    assert (await clear).name == "ClearConnectionResponse"
    await until(lambda: rec.events)
    assert [e.name for e in rec.events] == ["DeliveredEvent"]
    await peer.send(c.system_status())
    assert (await peer.expect("SystemStatusResponse")).name == "SystemStatusResponse"


async def test_only_requests_may_be_requested(link):
    peer, client, _rec = await link()
    with pytest.raises(ValueError, match="not a request"):
        await client.request(c.system_status_response())
    await client.send(c.system_status_response(), invoke_id=3)
    assert (await peer.expect("SystemStatusResponse")).invoke_id == 3


async def test_failing_callback_does_not_stop_the_link(link):
    peer, client, _rec = await link()

    def broken(message: Message) -> None:
        raise RuntimeError("subscriber bug")

    client.on_event = broken
    await peer.send(c.build("HeldEvent", {"cause": "normal"}), 9999)
    await peer.send(c.system_status(), 2)
    await peer.expect("SystemStatusResponse")
    assert client.connected and client.stats.events == 1


async def test_traces_see_every_pdu(link):
    pdus: list[tuple[str, int | None, bytes]] = []
    peer, _client, _rec = await link(on_pdu=lambda *pdu: pdus.append(pdu))
    await peer.send(c.system_status(), 8)
    await peer.expect("SystemStatusResponse")
    assert [(d, i) for d, i, _ in pdus] == [("in", 8), ("out", 8)]
    assert pdus[0][2].startswith(b"<?xml")


async def test_connect_to_a_closed_port_is_a_link_error():
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(CstaLinkError, match=f"127.0.0.1:{port}: cannot connect"):
        await CstaClient.connect("127.0.0.1", port, framing=J2Framing())


def test_invoke_ids_wrap_skip_in_flight_ids_and_never_use_9999():
    ids = InvokeIdAllocator()
    assert [ids.allocate(set()) for _ in range(3)] == [1, 2, 3]
    ids._next = 9997
    in_use = {9998, 1}
    assert [ids.allocate(in_use) for _ in range(3)] == [9997, 2, 3]
    full = InvokeIdAllocator(1, 3)
    with pytest.raises(CstaBaseError, match="all 3 invoke ids are waiting"):
        full.allocate({1, 2, 3})
    cycle = InvokeIdAllocator()
    got = [cycle.allocate(()) for _ in range(2 * 9998)]
    assert min(got) == 1 and max(got) == 9998 and got[9998] == 1
