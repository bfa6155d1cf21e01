"""CSTA BER links end to end: the client and the simulator over each framing and association, faults on one link.

The client (``CstaClient``) and the simulated switch talk ECMA-285 in ROSE through the BER
codec; the association (ACSE, OmniPCX Office ``B``/``P``) runs before any CSTA service.
A switch sending garbage on one link costs that link a few skipped bytes, never the
other links of the kernel.
"""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import pytest

from twp_csta.ber import BerCodec, build_aarq, decode_acse
from twp_csta.driver_ber import CstaBerDriver
from twp_csta.errors import CodecError, CstaError, CstaLinkError
from twp_csta.framing_ber import BER_FRAMINGS
from twp_csta.session import CstaClient
from twp_csta.sim import PbxSimulator
from twp_csta.testing import EXTERNAL, FAST_SIM_OPTIONS, EventStream, admin_client, start_lab, user_client
from twp_csta.xml import codec as c
from twpcore.plugin_api import hookimpl


async def associate(client: CstaClient, *, oxo: bool = False, password: str | None = None) -> Any:
    if oxo:
        await client.handshake(b"B", b"P", timeout=10)
    return decode_acse(await client.exchange(build_aarq(password=password), timeout=10))


async def ber_client(sim: PbxSimulator, events: list | None = None, **kw: Any) -> CstaClient:
    async def prelude(client: CstaClient) -> None:
        if sim.config.association != "none":
            answer = await associate(client, oxo=sim.config.association == "oxo", password=kw.pop("password", None))
            assert answer.kind == "aare" and answer.accepted, answer

    return await CstaClient.connect("127.0.0.1", sim.port, framing=BER_FRAMINGS[sim.config.framing](), codec=BerCodec(),
                                    prelude=prelude, on_event=(events.append if events is not None else None), request_timeout=10.0, **kw)


@pytest.mark.parametrize(("framing", "association"), [("len2", "acse"), ("hipath", "acse"), ("tlv", "oxo"), ("len2", "none")])
async def test_a_call_is_seen_and_controlled_over_each_framing_and_association(framing, association):
    events: list = []
    async with PbxSimulator(encoding="ber", framing=framing, association=association, devices=("201-203",)) as sim:
        client = await ber_client(sim, events)
        try:
            answer = await client.request(c.monitor_start("201"))
            xref = answer.monitor_cross_ref_id
            assert xref and answer.name == "MonitorStartResponse"
            call_id = await sim.incoming_call(EXTERNAL, "201")
            for _ in range(200):
                if any(m.name == "DeliveredEvent" for m in events):
                    break
                await asyncio.sleep(0.01)
            delivered = next(m for m in events if m.name == "DeliveredEvent")
            assert (delivered.monitor_cross_ref_id, delivered.call_id, delivered.calling_device) == (xref, call_id, EXTERNAL)
            await client.request(c.answer_call(c.Connection(call_id, "201")))
            assert sim.calls[call_id].connections == {EXTERNAL: "connected", "201": "connected"}
            with pytest.raises(CstaError) as refused:
                await client.request(c.monitor_start("0612"))  # an outside number cannot be monitored
            assert refused.value.category == "operation" and refused.value.http_status < 500
            assert client.stats.codec_errors == 0 and client.stats.framing_errors == 0
            assert [a.kind for a in sim.associations] == (["aarq"] if association != "none" else [])
        finally:
            await client.close()


async def test_the_switch_system_status_is_answered_and_the_link_kept():
    async with PbxSimulator(encoding="ber", framing="tlv", association="oxo", system_status_interval=0.05,
                            system_status_max_missed=2, devices=("201",)) as sim:
        client = await ber_client(sim)
        try:
            await asyncio.sleep(0.4)
            assert client.stats.system_status_answered >= 4 and sim.heartbeats_missed == 0 and client.connected
        finally:
            await client.close()


async def test_a_wrong_password_is_refused_by_the_aare():
    async with PbxSimulator(encoding="ber", framing="len2", association="acse", password="right") as sim:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        client = CstaClient(reader, writer, framing=BER_FRAMINGS["len2"](), codec=BerCodec())
        try:
            refused = await associate(client, password="wrong")
            assert refused.kind == "aare" and not refused.accepted and refused.diagnostic == "authentication-failure"
            accepted = await associate(client, password="right")
            assert accepted.accepted and sim.associations[-1].authentication == b"right"
        finally:
            await client.close()


async def test_csta_before_the_association_is_aborted():
    async with PbxSimulator(encoding="ber", framing="len2", association="acse", devices=("201",)) as sim:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
        client = CstaClient(reader, writer, framing=BER_FRAMINGS["len2"](), codec=BerCodec())
        try:
            answer = await client.exchange(BerCodec().encode(attrs.evolve(c.monitor_start("201"), invoke_id=1)), timeout=10)
            assert decode_acse(answer).kind == "abrt"
            assert await reader.read(100) == b""  # the switch closed the link
            assert not sim.monitored("201")
        finally:
            await client.close()


async def test_a_wrong_oxo_handshake_answer_is_a_clear_error():
    async def not_p(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.write(b"X")
        await writer.drain()
        await asyncio.sleep(0.5)
        writer.close()

    server = await asyncio.start_server(not_p, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async def prelude(client: CstaClient) -> None:
            await client.handshake(b"B", b"P", timeout=10, what="OmniPCX Office B/P exchange")

        with pytest.raises(CstaLinkError, match=r"OmniPCX Office B/P exchange: .*expected b'P' from the PBX, got b'X'"):
            await CstaClient.connect("127.0.0.1", port, framing=BER_FRAMINGS["tlv"](), prelude=prelude)
    finally:
        server.close()


class RawSwitch:
    """A bare TCP peer speaking len2-framed bytes we write by hand (no association)."""

    def __init__(self) -> None:
        self.framing = BER_FRAMINGS["len2"]()
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.writer: asyncio.StreamWriter | None = None
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.writer = writer
            while data := await reader.read(4096):
                for item in self.framing.feed(data):
                    await self.received.put(item.payload)

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    def send(self, apdu: bytes) -> None:
        assert self.writer is not None
        self.writer.write(self.framing.encode(None, apdu))

    async def stop(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.server is not None:
            self.server.close()


async def test_an_invoke_of_an_unknown_operation_is_answered_with_a_rose_reject():
    switch = RawSwitch()
    port = await switch.start()
    client = await CstaClient.connect("127.0.0.1", port, framing=BER_FRAMINGS["len2"](), codec=BerCodec())
    try:
        # invoke { invokeId 5, opcode local 999, argument OCTET STRING 00 }
        switch.send(bytes([0xA1, 0x0A, 0x02, 0x01, 0x05, 0x02, 0x02, 0x03, 0xE7, 0x04, 0x01, 0x00]))
        answer = BerCodec().decode(await asyncio.wait_for(switch.received.get(), 10))
        assert (answer.name, answer.invoke_id, answer.fields) == ("RoseReject", 5, {"problem": {"invoke": "unrecognizedOperation"}})
        assert client.stats.codec_errors == 1 and client.connected
    finally:
        await client.close()
        await switch.stop()


async def test_an_unreadable_answer_fails_its_request_at_once_not_after_the_time_out():
    switch = RawSwitch()
    port = await switch.start()
    client = await CstaClient.connect("127.0.0.1", port, framing=BER_FRAMINGS["len2"](), codec=BerCodec(), request_timeout=30)
    try:
        pending = asyncio.create_task(client.request(c.make_call("201", "202")))
        sent = BerCodec().decode(await asyncio.wait_for(switch.received.get(), 10))
        assert sent.name == "MakeCall" and sent.invoke_id is not None
        # returnResult { invokeId, result { opcode local 10 (makeCall), result: an INTEGER, not a MakeCallResult } }
        switch.send(bytes([0xA2, 0x0B, 0x02, 0x01, sent.invoke_id, 0x30, 0x06, 0x02, 0x01, 0x0A, 0x02, 0x01, 0x07]))
        with pytest.raises(CodecError, match="MakeCall: the PBX's answer could not be read"):
            await asyncio.wait_for(pending, 10)  # well before the 30 s time-out
        assert client.pending == 0 and client.connected
    finally:
        await client.close()
        await switch.stop()


# -- two BER links in one kernel: garbage on one leaves the other untouched ----------------------------------
class LabBerDriver(CstaBerDriver):
    type_name = "lab-ber"


class Drivers:
    @hookimpl
    def twp_register_pbx_drivers(self, register):
        register(LabBerDriver)


PLUGINS = [("lab-ber-drivers", Drivers())]
FAST = {"heartbeat_interval": 0, "request_timeout": 2, "connect_timeout": 2, "reconnect_min": 0.05, "reconnect_max": 0.4}


async def test_garbage_on_one_link_is_skipped_and_the_other_link_is_untouched(twp_app):
    one = await PbxSimulator(encoding="ber", framing="hipath", association="acse", **FAST_SIM_OPTIONS).start()
    two = await PbxSimulator(encoding="ber", framing="len2", association="acse", **FAST_SIM_OPTIONS).start()
    streams: list[EventStream] = []
    try:
        links = {
            "one": {"driver": "lab-ber", "company": "Lab", "domain": "One", "host": "127.0.0.1", "port": one.port, "framing": "hipath",
                    "max_frame_size": 4096, **FAST},
            "two": {"driver": "lab-ber", "company": "Lab", "domain": "Two", "host": "127.0.0.1", "port": two.port, "framing": "len2", **FAST},
        }
        server = await twp_app(config={"pbx": {"links": links}}, plugins=PLUGINS)
        admin = admin_client(server)
        company = await admin.create("companies", name="Lab")
        ws: dict[str, EventStream] = {}
        for login, domain_name in (("alice", "One"), ("zoe", "Two")):
            domain = await admin.create("domains", company_id=company["id"], name=domain_name, numbering_plan_length=3)
            user = await admin.create("users", domain_id=domain["id"], login=login)
            await admin.create("devices", user_id=user["id"], number="201")
            socket = await server.client.ws_connect(f"/api/v1/events?access_token={user_client(server, user['id']).token}")
            ws[login] = EventStream(socket, login)
            streams.append(ws[login])
            await ws[login].expect("system.hello")
        watcher = EventStream(await server.client.ws_connect(f"/api/v1/events?access_token={admin.token}"), "admin")
        streams.append(watcher)
        for _ in range(250):
            if one.monitored("201") and two.monitored("201"):
                break
            await asyncio.sleep(0.02)
        assert one.monitored("201") and two.monitored("201")

        one.send_garbage()
        one.send_garbage(b"\x26\x80\x40" + b"\xa1" * 30)   # a header that lies about what follows
        one.send_oversized(20000)                           # beyond link one's max_frame_size: skipped by length
        first = await one.incoming_call(EXTERNAL, "201")
        second = await two.incoming_call("0498765432", "201")
        await ws["alice"].expect("call.delivered", call={"call_id": first, "state": "alerting"})
        await ws["zoe"].expect("call.delivered", call={"call_id": second, "state": "alerting"})

        stats = {item["name"]: item["stats"] for item in (await admin.get("/api/v1/links"))["items"]}
        assert stats["one"]["framing_errors"] >= 2 and stats["one"]["reconnects"] == 0
        assert stats["two"]["framing_errors"] == 0 and stats["two"]["codec_errors"] == 0 and stats["two"]["reconnects"] == 0
        assert not watcher.matching("link.down")
    finally:
        for stream in streams:
            await stream.close()
        await one.stop()
        await two.stop()


async def test_a_pdu_trace_of_a_ber_link_is_readable_and_holds_no_password(twp_app, tmp_path):
    lab = await start_lab(twp_app, "lab-ber", plugins=PLUGINS, link_options={"password": "s3cret-pw", "trace_dir": str(tmp_path)},
                          sim_options={"password": "s3cret-pw"})
    try:
        path = lab.driver_obj.trace_start("201")
        ws = await lab.ws("alice")
        call_id = await lab.sim.incoming_call(EXTERNAL, "201")
        await ws.expect("call.delivered", call={"call_id": call_id})
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/answer", status=204)
        await ws.expect("call.established", call={"call_id": call_id})
        lab.driver_obj.trace_stop()
        text = path.read_text()
        assert "DeliveredEvent" in text and "AnswerCall " in text and "PBX -> TWP" in text and "PBX <- TWP" in text
        assert "a1 " in text  # the APDU in hex under its decoded form
        assert "s3cret" not in text and "AARQ" not in text  # association frames are not traced
    finally:
        await lab.close()
