"""The SMS service (guide 9.1.9) through the API, with providers written in the test.

The providers here pin the kernel's side of the SMS provider contract; the SMPP, HTTP
and SOAP plugins run the same scenarios against real servers in their own tests.
Scenarios: a user sends to a number or to a colleague's mobile; AuthorizeSms, the
number, the text and the hourly limit are checked before anything is queued; the
outbox fails over to the next provider, waits while every provider is down, and never
sends a message twice, across restarts and with two nodes on one store.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import uuid

import attrs
import pytest
import sqlalchemy as sa

from twpcore.hookspecs import hookimpl
from twpcore.kinds import Kind, NotReady, SmsProvider, SmsProviderConfig, SmsRejected, SmsSent, SmsUnavailable
from twpcore.schema import setting
from twpcore.store import schema as t
from twpcore.testing.sms import wait_sms_status

pytestmark = pytest.mark.usefixtures("cheap_password_hashes")  # logins are not what these tests are about


INBOXES: dict[str, list] = {}
"""What each test provider accepted, by inbox name; survives a kernel restart within a test."""


@attrs.frozen
class RecordingConfig(SmsProviderConfig):
    inbox: str = setting(help="name of the list in INBOXES")
    mode: str = setting("ok", help="ok, unavailable, reject or crash")
    receipt: str = setting("none", help="none, delivered or failed")
    delay: float = setting(0.0, min=0)
    ready: bool = setting(True, help="false: setup raises NotReady (the instance keeps retrying)")


class RecordingProvider(SmsProvider):
    """Accepts messages into an in-memory inbox; behaves as its config (or the test) says."""

    type_name = "recording"
    Config = RecordingConfig
    capabilities = frozenset({"gsm7", "ucs2", "concatenation", "delivery_receipts"})
    ids = itertools.count(1)

    def __init__(self, config, context):
        super().__init__(config, context)
        self.mode, self.receipt, self.delay = config.mode, config.receipt, config.delay
        self.calls = 0
        self.accepted = 0

    async def setup(self):
        if not self.config.ready:
            raise NotReady("the test SMSC is not there yet", retry_after=60)

    async def send(self, message):
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.mode == "unavailable":
            raise SmsUnavailable("connection refused by the test SMSC")
        if self.mode == "reject":
            raise SmsRejected("destination barred")
        if self.mode == "crash":
            raise ConnectionResetError("connection reset after the message was written")
        INBOXES.setdefault(self.config.inbox, []).append(message)
        self.accepted += 1
        pid = f"{self.name}-{next(self.ids)}"
        if self.receipt != "none":
            # Before send() returns: the kernel must keep a receipt that beats the "sent" row.
            self.report_delivery(pid, self.receipt == "delivered", "" if self.receipt == "delivered" else "stat:UNDELIV err:001")
        return SmsSent((pid,))


class SingleSmsProvider(RecordingProvider):
    """An old gateway: GSM 7-bit only, one SMS per message."""

    type_name = "single"
    capabilities = frozenset({"gsm7"})


class Plugin:
    @hookimpl
    def twp_register_sms_providers(self, register):
        register(RecordingProvider)
        register(SingleSmsProvider)


FAST = {"sms_poll_interval": "20ms", "sms_retry_delay": "50ms", "sms_retry_max_delay": "100ms", "sms_send_timeout": "2s"}


def sms_config(providers: dict, **options) -> dict:
    return {"plugins": {"notifications": {**FAST, **options}}, "sms": {"providers": providers}}


def provider(server, name):
    return server.kernel.instances.instances[(Kind.SMS_PROVIDER, name)].obj


async def start(twp_app, providers, *, config=None, **options):
    cfg = sms_config(providers, **options)
    if config:
        cfg.update(config)
    return await twp_app(config=cfg, plugins=[("sms-test", Plugin())])


async def tenant(server, *, company="ACME", domain="Paris", authorize=True):
    admin = await server.admin()
    c = await admin.create("companies", name=company)
    d = await admin.create("domains", company_id=c["id"], name=domain)
    alice = await admin.create("users", domain_id=d["id"], login="alice", password="alice-password-1", mobile="+33 6 11 22 33 44")
    bob = await admin.create("users", domain_id=d["id"], login="bob", password="bob-password-1", mobile="06 55 66 77 88")
    if authorize:
        await admin.create("parameter_values", name="AuthorizeSms", scope="domain", scope_id=d["id"], value="Yes")
    return {"admin": admin, "company": c, "domain": d, "alice": alice, "bob": bob,
            "as_alice": await server.login("alice", "alice-password-1"), "as_bob": await server.login("bob", "bob-password-1")}


async def wait_status(client, ident, statuses, timeout=5.0):
    return await wait_sms_status(client, ident, statuses, timeout)


def inbox():
    name = uuid.uuid4().hex[:8]
    INBOXES[name] = []
    return name


# -- sending -------------------------------------------------------------------------
async def test_a_user_sends_an_sms_to_a_national_number(twp_app):
    box = inbox()
    server = await start(twp_app, {"main": {"provider": "recording", "inbox": box, "sender": "ACME"}})
    ten = await tenant(server)
    queued = await ten["as_alice"].post("/api/v1/sms", {"number": "06 12 34 56 78", "text": "Rendez-vous à 15h €"}, status=202)
    assert (queued["status"], queued["to"], queued["parts"], queued["encoding"]) == ("queued", "+33612345678", 1, "gsm7")
    sent = await wait_status(ten["as_alice"], queued["id"], "sent")
    assert sent["provider"] == "main" and sent["sent_at"]
    [message] = INBOXES[box]
    assert (message.to, message.text, message.encoding, message.sender, message.reference) == (
        "+33612345678", "Rendez-vous à 15h €", "gsm7", "ACME", f"twp-{queued['id']}")
    mine = await ten["as_alice"].get("/api/v1/sms")
    assert [m["id"] for m in mine["items"]] == [queued["id"]]
    assert (await ten["as_bob"].get("/api/v1/sms"))["items"] == []
    await ten["as_bob"].get(f"/api/v1/sms/{queued['id']}", status=404)


async def test_sms_to_a_colleague_goes_to_the_mobile_of_the_user(twp_app):
    box = inbox()
    server = await start(twp_app, {"main": {"provider": "recording", "inbox": box}})
    ten = await tenant(server)
    queued = await ten["as_alice"].post("/api/v1/sms", {"user_id": ten["bob"]["id"], "text": "Call me"}, status=202)
    assert (queued["to"], queued["recipient_user_id"]) == ("+33655667788", ten["bob"]["id"])
    await wait_status(ten["as_alice"], queued["id"], "sent")
    no_mobile = await ten["admin"].create("users", domain_id=ten["domain"]["id"], login="carol")
    err = await ten["as_alice"].post("/api/v1/sms", {"user_id": no_mobile["id"], "text": "hi"}, status=422)
    assert err["error"] == "no_mobile" and "carol" in err["detail"]
    other = await ten["admin"].create("companies", name="Other")
    od = await ten["admin"].create("domains", company_id=other["id"], name="Lyon")
    stranger = await ten["admin"].create("users", domain_id=od["id"], login="dan", mobile="0612345678")
    err = await ten["as_alice"].post("/api/v1/sms", {"user_id": stranger["id"], "text": "hi"}, status=404)
    assert err["field"] == "user_id"


async def test_sms_to_a_directory_contact_goes_to_its_mobile_when_the_user_may_see_it(twp_app):
    box = inbox()
    server = await start(twp_app, {"main": {"provider": "recording", "inbox": box}})
    ten = await tenant(server)
    admin = ten["admin"]
    priv = await admin.create("directories", domain_id=ten["domain"]["id"], name="[TwsPrivate]", connector="private", type="private")
    await admin.create(
        "authorizations", object_type="directory", object_ref=f"directory:{priv['id']}", subject_type="user", subject_id=ten["alice"]["id"]
    )
    await admin.create("parameter_values", name="AuthorizeContactFavorite", scope="domain", scope_id=ten["domain"]["id"], value="Yes")
    mum = await ten["as_alice"].post("/api/v1/me/contacts", {"last_name": "Mum", "mobile": "06 11 22 33 44"}, status=201)
    desk = await ten["as_alice"].post("/api/v1/me/contacts", {"last_name": "Desk", "phone": "01 55 17 18 89"}, status=201)
    queued = await ten["as_alice"].post("/api/v1/sms", {"contact": mum["id"], "text": "On my way"}, status=202)
    assert queued["to"] == "+33611223344"
    await wait_status(ten["as_alice"], queued["id"], "sent")
    assert [m.to for m in INBOXES[box]] == ["+33611223344"]
    err = await ten["as_alice"].post("/api/v1/sms", {"contact": desk["id"], "text": "hi"}, status=422)
    assert err["error"] == "no_mobile" and "Desk" in err["detail"]
    # bob may not see alice's private contacts: the contact does not exist for him.
    err = await ten["as_bob"].post("/api/v1/sms", {"contact": mum["id"], "text": "hi"}, status=404)
    assert err["field"] == "contact"
    assert len(INBOXES[box]) == 1


# -- refusals ------------------------------------------------------------------------
async def test_authorize_sms_is_enforced_with_the_reason(twp_app):
    server = await start(twp_app, {"main": {"provider": "recording", "inbox": inbox()}})
    ten = await tenant(server, authorize=False)
    err = await ten["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": "hi"}, status=403)
    assert err["error"] == "sms_not_allowed"
    assert "AuthorizeSms is No for you (from its built-in default)" in err["detail"]
    group = await ten["admin"].create("groups", domain_id=ten["domain"]["id"], name="Sales")
    await ten["admin"].post(f"/api/v1/groups/{group['id']}/members", {"user_id": ten["alice"]["id"]}, status=204)
    await ten["admin"].create("parameter_values", name="AuthorizeSms", scope="group", scope_id=group["id"], value="Yes")
    await ten["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": "hi"}, status=202)
    await ten["admin"].create("parameter_values", name="AuthorizeSms", scope="user", scope_id=ten["alice"]["id"], value="No")
    err = await ten["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": "hi"}, status=403)
    assert "(from user)" in err["detail"]
    admin_err = await ten["admin"].post("/api/v1/sms", {"number": "0612345678", "text": "hi"}, status=403)
    assert "for users" in admin_err["detail"]
    await server.anonymous.post("/api/v1/sms", {"number": "0612345678", "text": "hi"}, status=401)


@pytest.mark.parametrize("number, reason", [
    ("01 23 45 67 89", "is a fixed-line number; an SMS needs a mobile number"),
    ("06 12", "is too short"),
    ("06-12-AB", "is not a phone number"),
])
async def test_invalid_numbers_are_refused_with_the_reason_and_nothing_is_queued(twp_app, number, reason):
    server = await start(twp_app, {"main": {"provider": "recording", "inbox": inbox()}})
    ten = await tenant(server)
    err = await ten["as_alice"].post("/api/v1/sms", {"number": number, "text": "hi"}, status=422)
    assert (err["error"], err["field"]) == ("invalid_number", "number")
    assert reason in err["detail"]
    assert (await ten["as_alice"].get("/api/v1/sms"))["total"] == 0


async def test_a_text_too_long_for_a_single_sms_provider_is_refused(twp_app):
    box = inbox()
    server = await start(twp_app, {"old": {"provider": "single", "inbox": box}})
    ten = await tenant(server)
    err = await ten["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": "x" * 161}, status=422)
    assert err["error"] == "text_not_sendable"
    assert "needs 2 SMS parts; provider old sends single SMS only, at most 160 GSM 7-bit characters" in err["detail"]
    err = await ten["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": "Привет"}, status=422)
    assert "provider old sends GSM 7-bit only" in err["detail"]
    await ten["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": "x" * 160}, status=202)


async def test_a_long_text_is_split_up_to_the_providers_max_parts(twp_app):
    box2 = inbox()
    server2 = await start(twp_app, {"modern": {"provider": "recording", "inbox": box2, "max_parts": 3}})
    ten2 = await tenant(server2)
    queued = await ten2["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": "y" * 459}, status=202)
    assert (queued["parts"], queued["encoding"]) == (3, "gsm7")
    await wait_status(ten2["as_alice"], queued["id"], "sent")
    assert INBOXES[box2][0].parts == 3
    err = await ten2["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": "y" * 460}, status=422)
    assert "needs 4 SMS parts; provider modern sends at most 3 parts" in err["detail"]


async def test_the_hourly_limit_of_a_user(twp_app):
    server = await start(twp_app, {"main": {"provider": "recording", "inbox": inbox()}})
    ten = await tenant(server)
    await ten["admin"].create("parameter_values", name="SmsMaxPerHour", scope="domain", scope_id=ten["domain"]["id"], value="2")
    for _ in range(2):
        await ten["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": "hi"}, status=202)
    resp = await ten["as_alice"].client.post("/api/v1/sms", json={"number": "0612345678", "text": "hi"}, headers=ten["as_alice"].headers())
    body = await resp.json()
    assert resp.status == 429 and body["error"] == "rate_limited"
    assert "you sent 2 SMS in the last hour, the most parameter SmsMaxPerHour allows you (2)" in body["detail"]
    assert 3500 <= int(resp.headers["Retry-After"]) <= 3601
    await ten["as_bob"].post("/api/v1/sms", {"number": "0612345678", "text": "hi"}, status=202)  # per user


async def test_an_idempotency_key_makes_a_repeated_request_safe(twp_app):
    box = inbox()
    server = await start(twp_app, {"main": {"provider": "recording", "inbox": box}})
    ten = await tenant(server)
    body = {"number": "0612345678", "text": "only once"}
    first = await ten["as_alice"].call("POST", "/api/v1/sms", body, status=202)
    ten["as_alice"].client  # noqa: B018 - reading the property opens the client session before the timed requests
    resp = await ten["as_alice"].client.post("/api/v1/sms", json=body, headers={**ten["as_alice"].headers(), "Idempotency-Key": "k-1"})
    assert resp.status == 202
    again = await ten["as_alice"].client.post("/api/v1/sms", json=body, headers={**ten["as_alice"].headers(), "Idempotency-Key": "k-1"})
    assert again.status == 200 and (await again.json())["id"] == (await resp.json())["id"]
    clash = await ten["as_alice"].client.post(
        "/api/v1/sms", json={**body, "text": "other"}, headers={**ten["as_alice"].headers(), "Idempotency-Key": "k-1"}
    )
    assert clash.status == 409
    await wait_status(ten["as_alice"], first["id"], "sent")
    await wait_status(ten["as_alice"], (await resp.json())["id"], "sent")
    assert [m.text for m in INBOXES[box]] == ["only once", "only once"]  # two requests without / with one key


# -- dispatch ------------------------------------------------------------------------
async def test_failover_to_the_next_provider_of_the_domain(twp_app):
    first, second, elsewhere = inbox(), inbox(), inbox()
    server = await start(twp_app, {
        "primary": {"provider": "recording", "inbox": first, "priority": 10, "mode": "unavailable", "company": "ACME", "domain": "Paris"},
        "backup": {"provider": "recording", "inbox": second, "priority": 20, "company": "ACME"},
        "lyon": {"provider": "recording", "inbox": elsewhere, "priority": 1, "company": "ACME", "domain": "Lyon"},
    })
    ten = await tenant(server)
    queued = await ten["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": "via backup"}, status=202)
    sent = await wait_status(ten["as_alice"], queued["id"], "sent")
    assert sent["provider"] == "backup" and sent["attempts"] == 1
    assert provider(server, "primary").calls == 1
    assert [m.text for m in INBOXES[second]] == ["via backup"] and INBOXES[first] == [] and INBOXES[elsewhere] == []


async def test_a_provider_that_is_down_keeps_messages_queued_until_it_returns(twp_app):
    box = inbox()
    server = await start(twp_app, {"main": {"provider": "recording", "inbox": box, "mode": "unavailable"}})
    ten = await tenant(server)
    queued = await ten["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": "patience"}, status=202)
    for _ in range(500):  # retried at least twice, and back in the queue between two attempts
        msg = await ten["as_alice"].get(f"/api/v1/sms/{queued['id']}")
        if msg["attempts"] >= 2 and msg["status"] == "queued":
            break
        await asyncio.sleep(0.01)
    assert msg["status"] == "queued" and "connection refused by the test SMSC" in msg["reason"]
    provider(server, "main").mode = "ok"
    sent = await wait_status(ten["as_alice"], queued["id"], "sent")
    assert sent["reason"] is None
    assert [m.text for m in INBOXES[box]] == ["patience"]


async def test_a_message_is_failed_after_the_last_attempt(twp_app):
    server = await start(twp_app, {"main": {"provider": "recording", "inbox": inbox(), "mode": "unavailable"}}, sms_max_attempts=2)
    ten = await tenant(server)
    queued = await ten["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": "lost cause"}, status=202)
    failed = await wait_status(ten["as_alice"], queued["id"], "failed")
    assert failed["reason"].startswith("gave up after 2 attempts: main: connection refused")


async def test_a_refused_message_fails_and_a_maybe_sent_one_is_never_resent(twp_app):
    server = await start(twp_app, {"main": {"provider": "recording", "inbox": inbox(), "mode": "reject"}})
    ten = await tenant(server)
    refused = await ten["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": "a"}, status=202)
    assert (await wait_status(ten["as_alice"], refused["id"], "failed"))["reason"] == "provider main refused the message: destination barred"
    provider(server, "main").mode = "crash"
    maybe = await ten["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": "b"}, status=202)
    failed = await wait_status(ten["as_alice"], maybe["id"], "failed")
    assert "ConnectionResetError" in failed["reason"] and "so it is not sent again" in failed["reason"]
    calls = provider(server, "main").calls
    await asyncio.sleep(0.2)
    assert provider(server, "main").calls == calls


@pytest.mark.parametrize("receipt, status", [("delivered", "delivered"), ("failed", "failed")])
async def test_delivery_receipts_set_the_final_status(twp_app, receipt, status):
    server = await start(twp_app, {"main": {"provider": "recording", "inbox": inbox(), "receipt": receipt}})
    ten = await tenant(server)
    queued = await ten["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": "did it arrive?"}, status=202)
    final = await wait_status(ten["as_alice"], queued["id"], status)
    if status == "delivered":
        assert final["delivered_at"] and final["reason"] is None
    else:
        assert final["reason"] == "not delivered: stat:UNDELIV err:001"


async def test_status_changes_reach_the_sender_as_events(twp_app):
    server = await start(twp_app, {"main": {"provider": "recording", "inbox": inbox(), "receipt": "delivered"}})
    ten = await tenant(server)
    async with ten["as_alice"].client.ws_connect("/api/v1/events", headers=ten["as_alice"].headers()) as ws:
        assert (await ws.receive_json())["type"] == "system.hello"
        queued = await ten["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": "tell me"}, status=202)
        seen = []
        while "sms.delivered" not in seen:
            event = await asyncio.wait_for(ws.receive_json(), 5)
            assert event["data"]["id"] == queued["id"]
            seen.append(event["type"])
    assert seen == ["sms.queued", "sms.sent", "sms.delivered"]


# -- durability -------------------------------------------------------------------------
async def test_a_queued_message_survives_a_restart_and_is_sent_exactly_once(twp_app):
    box = inbox()
    providers = {"main": {"provider": "recording", "inbox": box, "mode": "unavailable"}}
    first = await start(twp_app, providers)
    ten = await tenant(first)
    queued = await ten["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": "after the restart"}, status=202)
    await asyncio.sleep(0.1)
    await first.client.close()  # the server stops with the message still queued

    second = await start(twp_app, {"main": {"provider": "recording", "inbox": box}})
    as_alice = await second.login("alice", "alice-password-1")
    await wait_status(as_alice, queued["id"], "sent")
    await second.client.close()

    third = await start(twp_app, {"main": {"provider": "recording", "inbox": box}})
    as_alice = await third.login("alice", "alice-password-1")
    await asyncio.sleep(0.2)
    assert (await as_alice.get(f"/api/v1/sms/{queued['id']}"))["status"] == "sent"
    assert [m.text for m in INBOXES[box]] == ["after the restart"]


async def test_a_send_interrupted_by_a_crash_is_failed_not_resent(twp_app):
    box = inbox()
    server = await start(twp_app, {"main": {"provider": "recording", "inbox": box}})
    ten = await tenant(server)
    await server.kernel.sms.stop()  # no dispatcher: the row stays as a crashed node left it

    def crashed_mid_send(conn):
        o = t.sms_outbox
        past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        user = conn.execute(sa.select(t.users).where(t.users.c.login == "alice")).one()
        return conn.execute(sa.insert(o).values(
            company_id=ten["company"]["id"], domain_id=user.domain_id, user_id=user.id, recipient="+33612345678", text="in flight",
            encoding="gsm7", parts=1, status="sending", attempts=1, claimed_by="dead-node", claimed_until=past, provider="main", created_at=past,
        ).returning(o.c.id)).scalar_one()

    ident = server.run(crashed_mid_send)
    await server.kernel.sms.start()
    failed = await wait_status(ten["as_alice"], ident, "failed")
    assert "interrupted while being handed to provider main" in failed["reason"] and "not sent again" in failed["reason"]
    assert INBOXES[box] == []


async def test_two_nodes_on_one_store_never_send_a_message_twice(twp_app):
    box = inbox()
    providers = {"main": {"provider": "recording", "inbox": box, "delay": 0.005, "mode": "unavailable"}}
    node_a = await start(twp_app, providers)
    ten = await tenant(node_a)
    await ten["admin"].create("parameter_values", name="SmsMaxPerHour", scope="domain", scope_id=ten["domain"]["id"], value="0")
    node_b = await start(twp_app, providers)
    ids = []
    for i in range(30):
        ids.append((await ten["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": f"message {i}"}, status=202))["id"])
    # Both nodes now race over the same backlog.
    provider(node_a, "main").mode = provider(node_b, "main").mode = "ok"
    for ident in ids:
        await wait_status(ten["as_alice"], ident, "sent", timeout=10)
    texts = [m.text for m in INBOXES[box]]
    assert sorted(texts) == sorted(f"message {i}" for i in range(30))
    accepted = (provider(node_a, "main").accepted, provider(node_b, "main").accepted)
    assert sum(accepted) == 30 and min(accepted) > 0


# -- views ---------------------------------------------------------------------------------
async def test_admins_see_the_outbox_of_their_companies_only(twp_app):
    server = await start(twp_app, {"main": {"provider": "recording", "inbox": inbox(), "ready": False}})
    ten = await tenant(server)
    queued = await ten["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": "hi"}, status=202)
    waiting = await ten["as_alice"].get(f"/api/v1/sms/{queued['id']}")
    assert waiting["status"] == "queued"
    everyone = await ten["admin"].get("/api/v1/sms/outbox", params={"user_id": ten["alice"]["id"]})
    assert [m["id"] for m in everyone["items"]] == [queued["id"]]
    other = await ten["admin"].create("companies", name="Other")
    limited = await server.admin(super_user=False, companies=(other["id"],))
    assert (await limited.get("/api/v1/sms/outbox"))["items"] == []
    await limited.get(f"/api/v1/sms/{queued['id']}", status=404)
    await limited.post(f"/api/v1/sms/{queued['id']}/cancel", status=404)
    await ten["as_alice"].get("/api/v1/sms/outbox", status=403)
    cancelled = await ten["as_alice"].post(f"/api/v1/sms/{queued['id']}/cancel", status=200)
    assert (cancelled["status"], cancelled["reason"]) == ("failed", "cancelled by user alice")
    again = await ten["admin"].post(f"/api/v1/sms/{queued['id']}/retry", status=200)
    assert again["status"] == "queued" and again["attempts"] == 0
    await ten["as_alice"].post(f"/api/v1/sms/{queued['id']}/retry", status=403)


async def test_bad_outbox_options_are_config_problems_and_keep_sms_off(twp_app):
    server = await start(twp_app, {"main": {"provider": "recording", "inbox": inbox()}}, sms_retry_delay="soon")
    problem = '<test config>: plugins.notifications.sms_retry_delay: expected a duration such as 30, "30s", "15m" or "8h", got "soon"'
    assert server.kernel.config_problems() == [problem]
    ten = await tenant(server)
    err = await ten["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": "hi"}, status=503)
    assert err["detail"] == f"SMS sending is off on this server: {problem}"


async def test_disabling_the_notifications_plugin_turns_sms_off(twp_app):
    server = await twp_app(config={**sms_config({"main": {"provider": "recording", "inbox": inbox()}}),
                                   "plugins": {"disabled": ["notifications"]}}, plugins=[("sms-test", Plugin())])
    ten = await tenant(server)
    err = await ten["as_alice"].post("/api/v1/sms", {"number": "0612345678", "text": "hi"}, status=503)
    assert err["detail"] == "SMS sending is off on this server: the notifications plugin is disabled"
