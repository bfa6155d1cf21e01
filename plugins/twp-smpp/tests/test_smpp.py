"""The SMPP provider against a real SMSC (PyPI smpp34's Server on 127.0.0.1), through the kernel.

Scenarios of guide 9.1.9: a user sends an SMS and the SMSC gets it in the right alphabet
and in as many parts as it needs; receipts give the final status; an SMSC that goes down
keeps messages queued and they leave when it returns; a dead SMSC fails over to the next
provider; a kernel restart never sends a message twice.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time

import pytest
import smpplib.gsm

from twp_smpp.testing import Smsc
from twpcore.kinds import Kind
from twpcore.sms import gsm7_encode
from twpcore.testing.servers import find_free_port
from twpcore.testing.sms import FAST_SMS, sms_tenant, start_sms, wait_sms_status

PASSWORD = "s3cret-bind-pw"
FAST = FAST_SMS


pytestmark = pytest.mark.usefixtures("cheap_password_hashes")  # logins are not what these tests are about


@pytest.fixture
async def smsc():
    server = await Smsc().start()
    yield server
    await server.stop()


def smpp(port, **options):
    return {"provider": "smpp", "host": "127.0.0.1", "port": port, "system_id": "twp", "password": PASSWORD, "sender": "ACME",
            "reconnect_delay": "50ms", "reconnect_max_delay": "200ms", "response_timeout": "2s", **options}


async def start(twp_app, providers, **options):
    return await start_sms(twp_app, providers, **options)


tenant = sms_tenant


async def wait_status(client, ident, statuses, timeout=8.0):
    return await wait_sms_status(client, ident, statuses, timeout)


def instance(server, name="operator"):
    return server.kernel.instances.instances[(Kind.SMS_PROVIDER, name)]


async def wait_ready(server, name="operator", timeout=8.0):
    for _ in range(int(timeout / 0.02)):
        inst = instance(server, name)
        if inst.state == "ready" and inst.obj.available:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"provider {name} is {inst.state} ({inst.reason})")


# -- what the SMSC receives -------------------------------------------------------------
async def test_a_short_text_goes_as_one_gsm7_sms_and_is_delivered(twp_app, smsc):
    server = await start(twp_app, {"operator": smpp(smsc.port)})
    alice = await tenant(server)
    queued = await alice.post("/api/v1/sms", {"number": "06 12 34 56 78", "text": "Réunion à 15h, salle [B] : 5€"}, status=202)
    [got] = await smsc.wait_for(1)
    assert (got.to, got.sender, got.text, got.parts, got.data_coding) == ("33612345678", "ACME", "Réunion à 15h, salle [B] : 5€", 1, 0)
    [pdu] = smsc.submitted
    assert (pdu.system_id, pdu.source_addr_ton, pdu.esm_class, pdu.registered_delivery) == ("twp", 5, 0, 1)
    done = await wait_status(alice, queued["id"], "delivered")
    assert done["provider"] == "operator" and done["delivered_at"]


async def test_a_long_unicode_text_goes_as_concatenated_ucs2_parts(twp_app, smsc):
    server = await start(twp_app, {"operator": smpp(smsc.port)})
    alice = await tenant(server)
    text = "Встреча перенесена на завтра. " * 5  # 150 characters, Cyrillic: UCS-2, 67 per part
    queued = await alice.post("/api/v1/sms", {"number": "+33 6 12 34 56 78", "text": text}, status=202)
    assert (queued["encoding"], queued["parts"]) == ("ucs2", 3)
    [got] = await smsc.wait_for(1)
    assert (got.text, got.parts, got.data_coding) == (text, 3, 8)
    assert [p.esm_class for p in smsc.submitted] == [0x40, 0x40, 0x40]
    await wait_status(alice, queued["id"], "delivered")  # only once the three parts are delivered


async def test_a_long_gsm7_text_never_cuts_an_escaped_character(twp_app, smsc):
    server = await start(twp_app, {"operator": smpp(smsc.port)})
    alice = await tenant(server)
    text = "a" * 152 + "€" + " fin du message"
    await alice.post("/api/v1/sms", {"number": "0612345678", "text": text}, status=202)
    [got] = await smsc.wait_for(1)
    assert (got.text, got.parts, got.data_coding) == (text, 2, 0)


def test_gsm7_encoding_agrees_with_smpplib():
    text = "Hello @£$¥èéùìòÇ ØøÅåΔ_ΦΓΛΩΠΨΣΘΞ ÆæßÉ !\"#¤%&'()*+,-./:;<=>? ¡ÄÖÑÜ¿äöñüà ^{}\\[~]|€"
    assert gsm7_encode(text) == smpplib.gsm.gsm_encode(text)


# -- receipts and refusals ----------------------------------------------------------------
@pytest.mark.parametrize("tlvs", [False, True], ids=["receipt text", "receipt TLVs"])
async def test_an_undeliverable_receipt_fails_the_message(twp_app, tlvs):
    smsc = await Smsc(receipts="UNDELIV", receipt_tlvs=tlvs).start()
    try:
        server = await start(twp_app, {"operator": smpp(smsc.port)})
        alice = await tenant(server)
        queued = await alice.post("/api/v1/sms", {"number": "0612345678", "text": "hello"}, status=202)
        failed = await wait_status(alice, queued["id"], "failed")
        assert failed["reason"].startswith("not delivered: stat:UNDELIV")
    finally:
        await smsc.stop()


async def test_a_destination_refused_by_the_smsc_fails_with_its_reason(twp_app):
    smsc = await Smsc(refuse={"33612345678": 0x0000000B}).start()  # ESME_RINVDSTADR
    try:
        server = await start(twp_app, {"operator": smpp(smsc.port)})
        alice = await tenant(server)
        queued = await alice.post("/api/v1/sms", {"number": "0612345678", "text": "hello"}, status=202)
        failed = await wait_status(alice, queued["id"], "failed")
        assert (
            failed["reason"] == f"provider operator refused the message: SMSC 127.0.0.1:{smsc.port} answered Invalid Destination Address (0x0000000B)"
        )
    finally:
        await smsc.stop()


async def test_a_throttled_message_waits_and_leaves_when_the_smsc_accepts_again(twp_app):
    smsc = await Smsc(refuse={"33612345678": 0x00000058}).start()  # ESME_RTHROTTLED
    try:
        server = await start(twp_app, {"operator": smpp(smsc.port)})
        alice = await tenant(server)
        queued = await alice.post("/api/v1/sms", {"number": "0612345678", "text": "slowly"}, status=202)
        while len(smsc.submitted) < 2:
            await asyncio.sleep(0.02)
        msg = await alice.get(f"/api/v1/sms/{queued['id']}")
        assert msg["status"] in ("queued", "sending") and msg["attempts"] >= 1
        smsc.refuse.clear()
        await wait_status(alice, queued["id"], "delivered")
        assert len(smsc.messages()) == 1
    finally:
        await smsc.stop()


# -- outages ---------------------------------------------------------------------------------
async def test_an_smsc_that_goes_down_keeps_messages_queued_until_it_returns(twp_app, smsc):
    server = await start(twp_app, {"operator": smpp(smsc.port)})
    alice = await tenant(server)
    await wait_ready(server)
    await smsc.stop()
    while instance(server).obj.available:
        await asyncio.sleep(0.02)
    queued = await alice.post("/api/v1/sms", {"number": "0612345678", "text": "are you there?"}, status=202)
    await asyncio.sleep(0.5)
    waiting = await alice.get(f"/api/v1/sms/{queued['id']}")
    assert waiting["status"] == "queued"
    assert "operator: not connected" in waiting["reason"] or "connection refused" in waiting["reason"].lower()

    await smsc.start()  # same port
    done = await wait_status(alice, queued["id"], "delivered")
    assert done["provider"] == "operator"
    assert [m.text for m in smsc.messages()] == ["are you there?"]
    assert smsc.binds == ["twp", "twp"]  # the first bind, and one bind again when the SMSC came back


async def test_an_smsc_missing_at_start_leaves_the_provider_retrying_then_ready(twp_app):
    smsc = Smsc()
    server = await start(twp_app, {"operator": smpp(smsc.port)})
    alice = await tenant(server)
    deadline = time.monotonic() + 5
    while instance(server).state == "starting":  # the first bind attempt may still be under way
        assert time.monotonic() < deadline, "the provider's first setup never finished"
        await asyncio.sleep(0.02)
    assert instance(server).state == "retrying" and "Connection refused" in instance(server).reason
    queued = await alice.post("/api/v1/sms", {"number": "0612345678", "text": "first"}, status=202)
    await asyncio.sleep(0.2)
    waiting = await alice.get(f"/api/v1/sms/{queued['id']}")
    # The provider retries its bind in the background: the reason names it as retrying, or
    # as starting while a new bind attempt is under way.
    assert waiting["status"] == "queued", waiting
    assert waiting["reason"].startswith(("waiting for a provider: operator: retrying", "waiting for a provider: operator: starting")), waiting
    await smsc.start()
    try:
        await wait_status(alice, queued["id"], "delivered")
    finally:
        await smsc.stop()


async def test_failover_from_a_dead_smsc_to_the_next_provider(twp_app, smsc):
    dead = find_free_port()
    server = await start(twp_app, {"operator": smpp(dead, priority=1), "backup": smpp(smsc.port, priority=2, system_id="twp-backup")})
    alice = await tenant(server)
    queued = await alice.post("/api/v1/sms", {"number": "0612345678", "text": "via the backup"}, status=202)
    done = await wait_status(alice, queued["id"], "delivered")
    assert done["provider"] == "backup"
    assert [s.system_id for s in smsc.submitted] == ["twp-backup"]


async def test_a_kernel_restart_never_sends_a_message_twice(twp_app, smsc):
    first = await start(twp_app, {"operator": smpp(smsc.port)})
    alice = await tenant(first)
    sent = await alice.post("/api/v1/sms", {"number": "0612345678", "text": "before the restart"}, status=202)
    await wait_status(alice, sent["id"], "delivered")
    await smsc.stop()
    while instance(first).obj.available:
        await asyncio.sleep(0.02)
    queued = await alice.post("/api/v1/sms", {"number": "0612345678", "text": "queued across the restart"}, status=202)
    await first.client.close()  # the kernel stops; the SMSC is still down

    await smsc.start()
    second = await start(twp_app, {"operator": smpp(smsc.port)})
    alice = await second.login("alice", "alice-password-1")
    await wait_status(alice, queued["id"], "delivered")
    await asyncio.sleep(0.3)
    assert [m.text for m in smsc.messages()] == ["before the restart", "queued across the restart"]
    assert (await alice.get(f"/api/v1/sms/{sent['id']}"))["status"] == "delivered"


# -- the link ----------------------------------------------------------------------------------
async def test_an_idle_link_is_kept_with_enquire_link(twp_app, smsc):
    server = await start(twp_app, {"operator": smpp(smsc.port, enquire_link="100ms")})
    alice = await tenant(server)
    await wait_ready(server)
    await asyncio.sleep(0.6)
    assert instance(server).obj.available and len(smsc.binds) == 1
    queued = await alice.post("/api/v1/sms", {"number": "0612345678", "text": "still there"}, status=202)
    await wait_status(alice, queued["id"], "delivered")
    assert len(smsc.binds) == 1


async def test_the_bind_password_is_never_logged(twp_app, smsc, caplog):
    caplog.set_level(logging.DEBUG)
    server = await start(twp_app, {"operator": smpp(smsc.port)})
    alice = await tenant(server)
    queued = await alice.post("/api/v1/sms", {"number": "0612345678", "text": "hello"}, status=202)
    await wait_status(alice, queued["id"], "delivered")
    text = caplog.text
    assert ">>b'" in text  # the wire log is on...
    assert PASSWORD not in text and PASSWORD.encode().hex() not in text  # ...but never shows the bind
    plugins = await (await server.admin()).get("/api/v1/plugins")
    assert PASSWORD not in str(plugins)


async def test_smpp_over_tls_checks_the_smsc_certificate(twp_app, smsc, tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    async def relay(reader, writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", smsc.port)

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    tls_port = find_free_port()
    proxy = await asyncio.start_server(relay, "127.0.0.1", tls_port, ssl=server_ctx)
    try:
        server = await start(twp_app, {"operator": smpp(tls_port, tls=True, ca_file=str(ca_file)),
                                       "untrusted": smpp(tls_port, tls=True, priority=200)})
        alice = await tenant(server)
        queued = await alice.post("/api/v1/sms", {"number": "0612345678", "text": "over TLS"}, status=202)
        await wait_status(alice, queued["id"], "delivered")
        assert [m.text for m in smsc.messages()] == ["over TLS"]
        untrusted = instance(server, "untrusted")  # no ca_file: the system's CAs do not know the test CA
        for _ in range(150):
            if untrusted.state == "retrying":
                break
            await asyncio.sleep(0.02)
        assert untrusted.state == "retrying" and "CERTIFICATE_VERIFY_FAILED" in untrusted.reason
    finally:
        proxy.close()
        await proxy.wait_closed()
