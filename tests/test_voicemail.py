"""Voicemail (guide 9.1.4, 9.1.5): the voicemail number per default / domain / group / user, "call my voicemail", and a new
message reported by the PBX (CSTA MessageWaiting from the simulator) counted per user and mailed through a real SMTP server."""

from __future__ import annotations

import asyncio

import pytest
from aiosmtpd.controller import Controller
from test_reception_kit import lab_of, set_parameter

from twp_csta.testing import EXTERNAL
from twpcore.testing.servers import find_free_port
from twpcore.testing.smtp import Mailbox
from twpcore.testing.waiting import eventually

MAIL_OPTIONS = {"plugins": {"notifications": {"mail_retry_delay": "50ms", "mail_timeout": "5s"}}}


@pytest.fixture
async def smtp():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=find_free_port())
    await asyncio.to_thread(controller.start)
    yield controller, box
    await asyncio.to_thread(controller.stop)


async def test_a_new_voicemail_sends_the_email_and_counts_the_message(twp_app, smtp):
    controller, box = smtp
    lab = await lab_of(twp_app, config=MAIL_OPTIONS)
    try:
        await lab.admin.call("PATCH", f"/api/v1/users/{lab.user_ids['alice']}", {"email": "alice@lab.test", "first_name": "Alice"}, status=200)
        for name, value in {"smtp": "127.0.0.1", "SmtpServerPort": str(controller.port), "SmtpSecurity": "none",
                            "SmtpSender": "TWP <twp@lab.test>"}.items():
            await lab.admin.create("parameter_values", name=name, scope="domain", scope_id=lab.domain_id, value=value)
        alice, bob = await lab.ws("alice"), await lab.ws("bob")

        lab.sim.message_waiting("201", left_by=EXTERNAL)  # the PBX's MessageWaitingEvent for Alice's mailbox
        await alice.expect("device.voicemail", device="201", caller=EXTERNAL)
        await alice.expect("device.voicemail_count", device="201", new_messages=1)
        await lab.kernel.mail.drain(10)
        mails = await eventually(lambda: [m for m in box.messages if m["to"] == ["alice@lab.test"]], "the voicemail e-mail")
        assert EXTERNAL in mails[0]["message"].get_content()
        await bob.expect_no("device.voicemail", within=0.1)

        lab.sim.message_waiting("201", left_by=EXTERNAL)
        await alice.expect("device.voicemail_count", device="201", new_messages=2)
        mine = await lab.users["alice"].get("/api/v1/me/voicemail")
        assert (mine["new_messages"], mine["devices"][0]["last_caller"]) == (2, EXTERNAL)
        assert (await lab.users["bob"].get("/api/v1/me/voicemail"))["new_messages"] == 0

        # The mailbox is emptied at the PBX: the counter goes back to zero and nothing is mailed.
        sent = len(box.messages)
        lab.sim.message_waiting("201", on=False)
        await alice.expect("device.voicemail_count", device="201", new_messages=0)
        await lab.kernel.mail.drain(10)
        assert len(box.messages) == sent
    finally:
        await lab.close()


async def test_call_my_voicemail_dials_the_vmnumber_of_the_user_group_domain_or_default(twp_app):
    lab = await lab_of(twp_app)
    try:
        none = await lab.users["alice"].post("/api/v1/me/voicemail/call", {}, status=409)
        assert none["error"] == "no_voicemail_number" and "vmNumber" in none["detail"]
        await set_parameter(lab, "vmNumber", "8000")
        await lab.admin.create("parameter_values", name="vmNumber", scope="domain", scope_id=lab.domain_id, value="8100")
        group = await lab.admin.create("groups", domain_id=lab.domain_id, name="Sales")
        await lab.admin.post(f"/api/v1/groups/{group['id']}/members", {"user_id": lab.user_ids["bob"]}, status=204)
        await lab.admin.create("parameter_values", name="vmNumber", scope="group", scope_id=group["id"], value="8200")
        await set_parameter(lab, "vmNumber", "8300", user="carol")
        expected = {"alice": ("8100", "domain"), "bob": ("8200", "group:Sales"), "carol": ("8300", "user")}
        for login, (number, source) in expected.items():
            box = await lab.users[login].get("/api/v1/me/voicemail")
            assert (box["number"], box["from"]) == (number, source)
        called = await lab.users["bob"].post("/api/v1/me/voicemail/call", {}, status=201)
        assert (called["device"], called["dialed"]) == ("202", "8200")
        make_call = [m for m in lab.sim.requests if m.name == "MakeCall"][-1]
        assert (make_call.device_field("callingDevice"), make_call.called_device) == ("202", "8200")
    finally:
        await lab.close()
