"""uaCSTA (ECMA TR/87) against SIPp phones: sessions, CSTA in INFO, events on the WebSocket, restarts, digest, bad input."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from typing import Any

import pytest

from twp_csta.sim.sipp import SippPhones, sipp_binary
from twp_csta.testing import EXTERNAL
from twp_csta.uacsta import UaCstaDriver
from twp_csta.uacsta.lab import finish_phone_lab, start_phone_lab
from twpcore.plugin_api import hookimpl

pytestmark = pytest.mark.skipif(sipp_binary() is None, reason="sipp (Debian sip-tester) is not installed")


class _Plugin:
    TWP_PLUGIN_API = "1.2"

    @hookimpl
    def twp_register_pbx_drivers(self, register: Any) -> None:
        register(UaCstaDriver)


PLUGINS = [("uacsta-lab", _Plugin())]


ALICE_ONLY = {"alice": "201"}


async def lab_with(twp_app: Any, story: str = "plain", transport: str = "udp", users: dict[str, str] | None = None, **options: Any) -> Any:
    """A lab whose phones play ``story``; stories that ring get one phone (SIPp must not be ending a ring when TWP says BYE)."""
    users = users or (ALICE_ONLY if story != "plain" else None)
    phones = SippPhones(story=story, transport=transport, calls=len(users or "123"))  # type: ignore[arg-type]
    return await start_phone_lab(twp_app, "uacsta", phones, plugins=PLUGINS, link_options=options, users=users)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_sessions_open_and_make_call_plays_on_the_websocket(twp_app: Any, transport: str) -> None:
    lab = await lab_with(twp_app, transport=transport)
    try:
        ws = await lab.ws("alice")
        body = await lab.users["alice"].post("/api/v1/calls", {"number": "202"}, status=201)
        call_id = body["call_id"]
        assert call_id == "20102"
        await ws.expect("call.delivered", call={"call_id": call_id})
        await ws.expect("call.established", call={"call_id": call_id, "state": "connected"}, timeout=3)
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/hold", status=204)
        await ws.expect("call.held", call={"call_id": call_id, "state": "held"})
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/retrieve", status=204)
        await ws.expect("call.retrieved", call={"call_id": call_id, "state": "connected"})
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/hangup", status=204)
        await ws.expect("call.cleared", call={"call_id": call_id})
        stats = lab.driver_obj.link_stats()
        assert stats["phones"] == {"201": "up", "202": "up", "203": "up"} and stats["sessions_opened"] == 3
    finally:
        code, errors = await finish_phone_lab(lab)
    assert code == 0, errors


async def test_an_incoming_call_rings_is_answered_and_hung_up_through_the_api(twp_app: Any) -> None:
    lab = await lab_with(twp_app, story="incoming")
    try:
        ws = await lab.ws("alice")
        delivered = await ws.expect("call.delivered", call={"call_id": "20101"}, timeout=5)
        assert delivered["call"]["state"] == "alerting" and delivered["call"]["remote"] == EXTERNAL
        await ws.expect("presence.changed", presence="ringing", device="201")
        await lab.users["alice"].post("/api/v1/calls/20101/answer", status=204)
        await ws.expect("call.established", call={"call_id": "20101", "state": "connected"})
        await lab.users["alice"].post("/api/v1/calls/20101/hangup", status=204)
        await ws.expect("call.cleared", call={"call_id": "20101"})
        await ws.expect("presence.changed", presence="idle", device="201")
    finally:
        code, errors = await finish_phone_lab(lab)
    assert code == 0, errors


async def test_the_phone_asks_for_digest_authentication_and_gets_the_link_credentials(twp_app: Any) -> None:
    phones = SippPhones(story="auth", calls=3, user="twp", password="s3cret")
    lab = await start_phone_lab(twp_app, "uacsta", phones, plugins=PLUGINS,
                                link_options={"sip_username": "twp", "sip_password": "s3cret"})
    try:
        assert lab.driver_obj.link_stats()["sip_auth_challenges"] == 3
    finally:
        code, errors = await finish_phone_lab(lab)
    assert code == 0, errors


async def test_wrong_digest_credentials_leave_the_device_unsupervised_with_the_reason(twp_app: Any, caplog: Any) -> None:
    phones = SippPhones(story="auth", calls=3, user="twp", password="s3cret")
    lab = await start_phone_lab(twp_app, "uacsta", phones, plugins=PLUGINS, wait=False,
                                link_options={"sip_username": "twp", "sip_password": "wrong"})
    try:
        link = lab.kernel.telephony.links["lab"]
        for _ in range(200):
            if "refused the SIP credentials" in caplog.text:
                break
            await asyncio.sleep(0.02)
        assert "refused the SIP credentials of the link (status 403)" in caplog.text
        assert not link.monitored and "s3cret" not in caplog.text and "wrong" not in caplog.text
    finally:
        await lab.driver_obj.close()
        await lab.close()


async def test_a_restarted_phone_is_supervised_again_over_tcp(twp_app: Any) -> None:
    """Over TCP the closed connection says the phone is gone; the session and the monitor come back with the phone."""
    lab = await lab_with(twp_app, transport="tcp", users=ALICE_ONLY)
    port = lab.sim.port
    try:
        admin = await lab.ws("admin")
        await lab.sim.kill()                      # the phone is switched off: its SIP stack is gone
        await admin.expect("device.monitor_lost", device="201", timeout=5)
        lab.sim = SippPhones(story="incoming", transport="tcp", calls=1, port=port)
        await lab.sim.start()                     # ... and back, knowing nothing of the old dialogs
        alice = await lab.ws("alice")
        await alice.expect("call.delivered", call={"call_id": "20101", "state": "alerting"}, timeout=10)
        stats = lab.driver_obj.link_stats()
        assert stats["sessions_lost"] == 1 and stats["sessions_opened"] == 2 and stats["phones"] == {"201": "up"}
    finally:
        code, errors = await finish_phone_lab(lab)
    assert code == 0, errors


async def test_info_bodies_that_are_not_csta_are_refused_and_counted_and_the_session_goes_on(twp_app: Any, caplog: Any) -> None:
    lab = await lab_with(twp_app, story="badbody")
    try:
        ws = await lab.ws("alice")
        await ws.expect("call.delivered", call={"call_id": "20101"}, timeout=5)  # the good event after the bad ones
        stats = lab.driver_obj.link_stats()
        assert stats["csta_errors"] == 1 and stats["sip_refused_bodies"] == 2 and stats["sessions_lost"] == 0
        assert "is not CSTA XML" in caplog.text and "Content-Type 'text/plain' refused (415)" in caplog.text
    finally:
        code, errors = await finish_phone_lab(lab)
    assert code == 0, errors  # SIPp checked that TWP answered 400 and 415


async def test_malformed_sip_and_stray_requests_are_refused_counted_and_harmless(twp_app: Any, caplog: Any) -> None:
    lab = await lab_with(twp_app, story="incoming")
    try:
        ws = await lab.ws("alice")
        port = lab.driver_obj.endpoint.port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"\x00\x01garbage that is not SIP\r\n\r\n", ("127.0.0.1", port))
            s.sendto(b"INFO sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n"
                     b"To: <sip:c@d>\r\nCall-ID: forged\r\nCSeq: 1 INFO\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                     ("127.0.0.1", port))
            call_id = lab.driver_obj.sessions["201"].dialog.dialog.call_id     # the phone's real dialog, from another socket
            event = (b'<DeliveredEvent xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed3"><monitorCrossRefID>x'
                     b'</monitorCrossRefID><connection><callID>666</callID><deviceID>201</deviceID></connection></DeliveredEvent>')
            s.sendto(b"INFO sip:twp@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK2\r\nFrom: <sip:201@b>;tag=9\r\n"
                     b"To: <sip:twp@d>\r\nCall-ID: " + call_id.encode() + b"\r\nCSeq: 7 INFO\r\nMax-Forwards: 70\r\n"
                     b"Content-Type: application/csta+xml\r\nContent-Length: " + str(len(event)).encode() + b"\r\n\r\n" + event,
                     ("127.0.0.1", port))
        await ws.expect("call.delivered", call={"call_id": "20101"}, timeout=5)
        for _ in range(100):
            stats = lab.driver_obj.link_stats()
            if stats["sip_malformed"] and stats["sip_stray"] >= 2:
                break
            await asyncio.sleep(0.02)
        assert stats["sip_malformed"] == 1 and stats["sip_stray"] == 2 and stats["sessions_lost"] == 0 and stats["events"] == 1
        assert "malformed SIP from 127.0.0.1" in caplog.text and "belongs to no uaCSTA session" in caplog.text
        assert "came from 127.0.0.1" in caplog.text and "answered 403" in caplog.text
        assert [c["call_id"] for c in (await lab.calls("alice"))["items"]] == ["20101"]        # the injected call never appeared
    finally:
        code, errors = await finish_phone_lab(lab)
    assert code == 0, errors


async def test_a_device_without_a_phone_address_says_how_to_fix_it(twp_app: Any) -> None:
    lab = await lab_with(twp_app)
    try:
        dave = await lab.admin.create("users", domain_id=lab.domain_id, login="dave")
        await lab.admin.create("devices", user_id=dave["id"], number="209")
        with pytest.raises(Exception, match=r'add phones = \{ "209" = "<phone address>" \} to \[pbx.links.lab\]'):
            await lab.driver_obj.monitor("209")
    finally:
        code, errors = await finish_phone_lab(lab)
    assert code == 0, errors


async def test_a_restarted_phone_is_supervised_again_over_udp_through_the_keep_alive(twp_app: Any) -> None:
    lab = await lab_with(twp_app, users=ALICE_ONLY, keepalive_interval=0.2, request_timeout=0.6)
    port = lab.sim.port
    try:
        admin = await lab.ws("admin")
        await asyncio.sleep(0.5)                  # a few keep-alives answered
        assert lab.driver_obj.link_stats()["sessions_lost"] == 0
        await lab.sim.kill()
        await admin.expect("device.monitor_lost", device="201", timeout=5)
        lab.sim = SippPhones(story="plain", calls=1, port=port)
        await lab.sim.start()
        for _ in range(250):
            stats = lab.driver_obj.link_stats()
            if stats["sessions_opened"] == 2 and stats["phones"] == {"201": "up"}:
                break
            await asyncio.sleep(0.02)
        assert stats["sessions_opened"] == 2 and stats["phones"] == {"201": "up"} and stats["sessions_lost"] == 1
    finally:
        code, errors = await finish_phone_lab(lab)
    # The closing BYE may reach the restarted SIPp phone while its script pauses after answering the re-opened
    # session's requests; SIPp then aborts that call ("unexpected BYE") and exits 1.  That is the scripted phone's
    # limit (docs/sip-phones.md), not TWP's: any other SIPp error still fails the test.
    aborts = [line for line in errors.splitlines() if "Aborting" in line]
    unexpected_bye_only = code == 1 and bool(aborts) and all("BYE" in line for line in aborts)
    assert code == 0 or unexpected_bye_only, errors


def test_phone_addresses_are_checked_in_the_config() -> None:
    from twp_csta.uacsta import UaCstaConfig
    from twpcore.plugin_api import ConfigErrors, structure
    with pytest.raises(ConfigErrors, match=r"phones.201: expected \"host\" or \"host:port\" of the phone, got '10.0.0.5:99999'"):
        structure(UaCstaConfig, {"port": 7060, "phones": {"201": "10.0.0.5:99999"}}, source="twp.toml", path="pbx.links.snom")
    _ = sys, logging


async def test_an_info_the_phone_sends_again_is_answered_again_but_applied_once() -> None:
    """Over UDP a phone that missed TWP's 200 sends its INFO again (same CSeq): one event, two answers."""
    from twp_csta.uacsta import PhoneDialog, SipEndpoint

    phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    phone.bind(("127.0.0.1", 0))
    phone.setblocking(False)
    loop = asyncio.get_running_loop()
    endpoint = SipEndpoint(host="127.0.0.1", port=0, transport="udp", name="unit")
    await endpoint.start()
    bodies: list[bytes] = []
    dialog = PhoneDialog(endpoint, addr=phone.getsockname(), user="201", auth=None, timeout=2,
                         on_csta=lambda body: bodies.append(body) or 200, on_lost=lambda reason: None)
    try:
        opening = loop.create_task(dialog.open())
        invite = (await loop.sock_recv(phone, 4096)).decode()
        head = {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip() for line in invite.split("\r\n")[1:] if ":" in line}
        answer = (f"SIP/2.0 200 OK\r\nVia: {head['via']}\r\nFrom: {head['from']}\r\nTo: {head['to']};tag=p1\r\nCall-ID: {head['call-id']}\r\n"
                  f"CSeq: {head['cseq']}\r\nContact: <sip:201@{phone.getsockname()[0]}:{phone.getsockname()[1]}>\r\nContent-Length: 0\r\n\r\n")
        await loop.sock_sendto(phone, answer.encode(), ("127.0.0.1", endpoint.port))
        await opening
        assert (await loop.sock_recv(phone, 4096)).startswith(b"ACK ")
        body = b"<DeliveredEvent/>"
        info = (f"INFO sip:twp@127.0.0.1:{endpoint.port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{phone.getsockname()[1]};branch=z9hG4bKx\r\n"
                f"From: {head['to']};tag=p1\r\nTo: {head['from']}\r\nCall-ID: {head['call-id']}\r\nCSeq: 1 INFO\r\nMax-Forwards: 70\r\n"
                f"Content-Type: application/csta+xml\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        for _ in range(2):
            await loop.sock_sendto(phone, info, ("127.0.0.1", endpoint.port))
            assert (await asyncio.wait_for(loop.sock_recv(phone, 4096), 2)).startswith(b"SIP/2.0 200 OK")
        assert bodies == [body] and endpoint.stats.duplicates == 1
    finally:
        await endpoint.stop()
        phone.close()
