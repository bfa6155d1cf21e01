"""The HTTP SMS provider against a local gateway (an aiohttp server on 127.0.0.1), through the kernel.

The gateway here behaves like SaaS SMS APIs do: a bearer key, a JSON or form request,
an answer carrying a message id or an error, ``429`` when throttled, and delivery
receipts called back later.  Everything the provider does with it comes from config.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse

import pytest
from aiohttp import web

from twpcore.kinds import Kind
from twpcore.testing.servers import find_free_port
from twpcore.testing.sms import FAST_SMS, sms_tenant, start_sms, wait_sms_status

KEY = "k3y-for-the-gateway"
TOKEN = "receipt-token-42"
FAST = FAST_SMS


pytestmark = pytest.mark.usefixtures("cheap_password_hashes")  # logins are not what these tests are about


class Gateway:
    """A local SMS gateway: records requests and answers ``self.answer`` (status, JSON)."""

    def __init__(self):
        self.port = find_free_port()
        self.requests: list[dict] = []
        self.answer: tuple[int, dict] = (200, {"messages": [{"id": "gw-1", "status": "OK"}]})
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append({"method": request.method, "path": request.path, "query": dict(request.query),
                              "headers": dict(request.headers), "body": body})
        status, data = self.answer
        return web.json_response(data, status=status)

    async def start(self) -> Gateway:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def gateway():
    gw = await Gateway().start()
    yield gw
    await gw.stop()


def json_gateway(gw, **options):
    return {"provider": "http", "url": f"{gw.url}/v1/messages", "sender": "ACME", "secret": KEY,
            "headers": {"Authorization": "Bearer {secret}"},
            "json": {"to": "{to}", "from": "{sender}", "text": "{text}", "ref": "{reference}", "meta": {"parts": "{parts}"}},
            "id_path": "messages.0.id", "error_path": "error.message", "receipt_token": TOKEN, **options}


async def start(twp_app, providers, **options):
    return await start_sms(twp_app, providers, **options)


tenant = sms_tenant


async def wait_status(client, ident, statuses, timeout=5.0):
    return await wait_sms_status(client, ident, statuses, timeout)


async def test_a_json_gateway_gets_the_message_and_its_receipt_delivers_it(twp_app, gateway):
    server = await start(twp_app, {"gw": json_gateway(gateway)})
    alice = await tenant(server)
    text = "Café & co, 10h → salle 2 😀"
    queued = await alice.post("/api/v1/sms", {"number": "06 12 34 56 78", "text": text}, status=202)
    sent = await wait_status(alice, queued["id"], "sent")
    [req] = gateway.requests
    assert (req["method"], req["path"], req["headers"]["Authorization"]) == ("POST", "/v1/messages", f"Bearer {KEY}")
    assert req["headers"]["Content-Type"].startswith("application/json")
    assert json.loads(req["body"]) == {"to": "+33612345678", "from": "ACME", "text": text, "ref": f"twp-{queued['id']}", "meta": {"parts": "1"}}
    assert sent["provider"] == "gw"

    receipts = "/api/v1/sms-http/gw/receipts"
    await server.anonymous.post(f"{receipts}?token=wrong", {"id": "gw-1", "status": "DELIVERED"}, status=403)
    await server.anonymous.post(f"{receipts}?token={TOKEN}", {"id": "gw-1", "status": "DELIVERED"}, status=200)
    done = await wait_status(alice, queued["id"], "delivered")
    assert done["delivered_at"]


async def test_url_and_form_templates_carry_any_text_intact(twp_app, gateway):
    text = "a&b=c d?é #1 +2 %20"
    server = await start(twp_app, {
        "get": {"provider": "http", "method": "GET", "url": gateway.url + "/send?to={to_digits}&msg={text}&key={secret}", "secret": KEY},
        "form": {"provider": "http", "url": gateway.url + "/form", "form": {"dest": "{to}", "body": "{text}"}, "priority": 200},
    })
    alice = await tenant(server)
    first = await alice.post("/api/v1/sms", {"number": "0612345678", "text": text}, status=202)
    await wait_status(alice, first["id"], "sent")
    assert gateway.requests[0]["query"] == {"to": "33612345678", "msg": text, "key": KEY}

    # The GET gateway is down for maintenance (503): the form gateway takes the next message.
    gateway.answer = (503, {"error": {"message": "maintenance"}})
    second = await alice.post("/api/v1/sms", {"number": "0612345678", "text": text}, status=202)
    while len(gateway.requests) < 3:
        await asyncio.sleep(0.02)
    waiting = await alice.get(f"/api/v1/sms/{second['id']}")
    assert waiting["status"] in ("queued", "sending")
    gateway.answer = (200, {"ok": True})
    await wait_status(alice, second["id"], "sent")
    [form, *_] = [r for r in gateway.requests if r["path"] == "/form"]
    assert form["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert dict(urllib.parse.parse_qsl(form["body"].decode())) == {"dest": "+33612345678", "body": text}


async def test_the_gateway_outcome_is_read_with_the_status_map(twp_app, gateway):
    server = await start(twp_app, {"gw": json_gateway(gateway, status_path="status", status_map={"OK": "sent", "NO_CREDIT": "unavailable"})})
    alice = await tenant(server)
    gateway.answer = (200, {"status": "ERR_NUMBER", "error": {"message": "unknown subscriber"}})
    refused = await alice.post("/api/v1/sms", {"number": "0612345678", "text": "x"}, status=202)
    failed = await wait_status(alice, refused["id"], "failed")
    assert failed["reason"] == f"provider gw refused the message: 127.0.0.1:{gateway.port} answered status = 'ERR_NUMBER': unknown subscriber"

    gateway.answer = (200, {"status": "NO_CREDIT", "error": {"message": "top up your account"}})
    later = await alice.post("/api/v1/sms", {"number": "0612345678", "text": "y"}, status=202)
    while len(gateway.requests) < 3:
        await asyncio.sleep(0.02)
    assert "top up your account" in (await alice.get(f"/api/v1/sms/{later['id']}"))["reason"]
    gateway.answer = (200, {"status": "OK", "messages": [{"id": "m-9"}]})
    await wait_status(alice, later["id"], "sent")


async def test_a_client_error_refuses_the_message_with_the_gateways_reason(twp_app, gateway):
    server = await start(twp_app, {"gw": json_gateway(gateway)})
    alice = await tenant(server)
    gateway.answer = (400, {"error": {"message": "sender ACME is not registered"}})
    queued = await alice.post("/api/v1/sms", {"number": "0612345678", "text": "x"}, status=202)
    failed = await wait_status(alice, queued["id"], "failed")
    assert failed["reason"].endswith("answered HTTP 400: sender ACME is not registered")
    assert len(gateway.requests) == 1


async def test_a_throttled_gateway_fails_over_to_the_next_one(twp_app, gateway):
    other = await Gateway().start()
    try:
        gateway.answer = (429, {"error": {"message": "slow down"}})
        server = await start(twp_app, {"first": json_gateway(gateway, priority=1), "second": json_gateway(other, priority=2)})
        alice = await tenant(server)
        queued = await alice.post("/api/v1/sms", {"number": "0612345678", "text": "x"}, status=202)
        sent = await wait_status(alice, queued["id"], "sent")
        assert sent["provider"] == "second" and len(gateway.requests) == 1 and len(other.requests) == 1
    finally:
        await other.stop()


async def test_a_gateway_that_is_down_keeps_the_message_until_it_returns(twp_app):
    gw = Gateway()  # not started
    server = await start(twp_app, {"gw": json_gateway(gw)})
    alice = await tenant(server)
    queued = await alice.post("/api/v1/sms", {"number": "0612345678", "text": "wait for me"}, status=202)
    for _ in range(500):  # retried at least twice, and back in the queue between two attempts
        msg = await alice.get(f"/api/v1/sms/{queued['id']}")
        if msg["attempts"] >= 2 and msg["status"] == "queued":
            break
        await asyncio.sleep(0.01)
    assert msg["status"] == "queued" and "cannot connect to 127.0.0.1" in msg["reason"]
    await gw.start()
    try:
        await wait_status(alice, queued["id"], "sent")
        assert len(gw.requests) == 1
    finally:
        await gw.stop()


async def test_template_mistakes_are_config_errors_naming_the_key(twp_app, gateway):
    server = await start(twp_app, {
        "typo": {"provider": "http", "url": gateway.url + "/send?to={phone}"},
        "two": {"provider": "http", "url": gateway.url, "json": {"a": "{to}"}, "form": {"b": "{to}"}},
        "nosecret": {"provider": "http", "url": gateway.url, "headers": {"X-Key": "{secret}"}},
    })
    states = {i.spec.name: (i.state, i.reason) for (k, _), i in server.kernel.instances.instances.items() if k == Kind.SMS_PROVIDER}
    assert states["typo"][0] == "config_error" and "sms.providers.typo: url: unknown placeholder {phone}; known: {to}" in states["typo"][1]
    assert "give one body among json, form and body, not json and form" in states["two"][1]
    assert "a template uses {secret} but no secret is set" in states["nosecret"][1]


async def test_the_key_never_shows_in_logs_or_the_api(twp_app, gateway, caplog):
    caplog.set_level(logging.DEBUG)
    server = await start(twp_app, {"gw": json_gateway(gateway)})
    alice = await tenant(server)
    queued = await alice.post("/api/v1/sms", {"number": "0612345678", "text": "x"}, status=202)
    await wait_status(alice, queued["id"], "sent")
    admin = await server.admin()
    assert KEY not in json.dumps(await admin.get("/api/v1/plugins")) and KEY not in caplog.text and TOKEN not in caplog.text
