"""The webhook plugin, installed as a package and driven through a real TWP server.

A real HTTP receiver listens on 127.0.0.1; the server is built by the TWP test kit with
``[plugins.webhook]`` pointing at it; events are published on the server's event bus the
way PBX drivers publish them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time

import pytest
from aiohttp import web

from twpcore.events import Event
from twpcore.hookspecs import hookimpl


class Receiver:
    """A real HTTP endpoint recording what it receives.

    ``answers`` scripts its first statuses; with ``hold`` it answers nothing until ``release`` is set.
    """

    def __init__(self, answers: list[int] | None = None, hold: bool = False):
        self.answers = list(answers or [])
        self.release = asyncio.Event()
        if not hold:
            self.release.set()
        self.requests: asyncio.Queue = asyncio.Queue()
        self.app = web.Application()
        self.app.router.add_post("/hooks/twp", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        await self.requests.put((dict(request.headers), body))
        await self.release.wait()
        status = self.answers.pop(0) if self.answers else 204
        return web.Response(status=status)

    async def next(self, timeout: float = 5.0) -> tuple[dict[str, str], bytes]:
        return await asyncio.wait_for(self.requests.get(), timeout)


@pytest.fixture
async def receiver(aiohttp_server):
    async def start(answers: list[int] | None = None, hold: bool = False) -> tuple[Receiver, str]:
        rec = Receiver(answers, hold)
        server = await aiohttp_server(rec.app)
        return rec, str(server.make_url("/hooks/twp"))

    return start


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks/twp"


def call_event(type_: str = "call.delivered", **data) -> Event:
    return Event(type_, {"device": "2001", "calling": "0612345678", **data}, company_id=3, domain_id=4, user_ids=frozenset({7, 9}))


class Recorder:
    """Another plugin observing calls, to show the webhook never holds it up."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str]] = []

    @hookimpl
    def twp_call_event(self, event):
        self.events.append((time.monotonic(), event.type))


async def wait_for(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def plugin_row(body: dict, name: str = "webhook") -> dict:
    return next(p for p in body["plugins"] if p["name"] == name)


async def test_a_call_event_reaches_the_receiver_signed(twp_app, receiver, monkeypatch, caplog):
    rec, url = await receiver()
    monkeypatch.setenv("TWP_TEST_WEBHOOK_SECRET", "s3cret-for-hmac")
    server = await twp_app(config={"plugins": {"webhook": {"url": url, "events": ["call.*"], "secret": {"env": "TWP_TEST_WEBHOOK_SECRET"}}}})
    admin = await server.admin()

    plugins = await admin.get("/api/v1/plugins")
    webhook = plugin_row(plugins)
    # Loaded from the installed distribution's entry point, like any third-party package.
    assert (webhook["state"], webhook["source"], webhook["version"]) == ("loaded", "twp-webhook", "0.1.0")
    assert {"twp_startup", "twp_call_event", "twp_register_routes"} <= set(webhook["hooks"])

    server.kernel.events.publish(Event("device.forwarding", {"device": "2001", "forward": "immediate"}, company_id=3))
    server.kernel.events.publish(call_event())
    headers, body = await rec.next()

    # The device event did not match events = ["call.*"]: the first POST is the call.
    payload = json.loads(body)
    assert (payload["v"], payload["type"]) == (1, "call.delivered")  # the same versioned shape as on the WebSocket
    assert payload["data"] == {"device": "2001", "calling": "0612345678"}
    assert (payload["company_id"], payload["domain_id"], payload["user_ids"]) == (3, 4, [7, 9])
    assert headers["Content-Type"] == "application/json"
    assert headers["X-TWP-Event"] == "call.delivered"
    expected = "sha256=" + hmac.new(b"s3cret-for-hmac", body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-TWP-Signature"], expected)

    deliveries = await wait_for(lambda: _delivered(admin, 1))
    port = url.split(":")[2].split("/")[0]
    assert deliveries["targets"] == [{"url": f"http://127.0.0.1:{port}", "queued": 0, "delivered": 1, "retried": 0,
                                      "failed": 0, "dropped": 0, "last_status": 204, "last_error": None}]
    assert deliveries["signed"] is True

    # The secret shows nowhere: not in the API, not in the log.
    for path in ("/api/v1/plugins", "/api/v1/health", "/api/v1/webhook/deliveries"):
        assert "s3cret-for-hmac" not in json.dumps(await admin.get(path))
    assert "s3cret-for-hmac" not in caplog.text


async def _delivered(admin, n):
    body = await admin.get("/api/v1/webhook/deliveries")
    return body if sum(t["delivered"] for t in body["targets"]) >= n else None


async def test_a_failing_receiver_is_retried_with_the_same_delivery_id(twp_app, receiver):
    rec, url = await receiver(answers=[503, 500])
    server = await twp_app(config={"plugins": {"webhook": {"url": url, "retries": 3, "backoff": "10ms"}}})
    admin = await server.admin()
    server.kernel.events.publish(call_event("call.established"))

    attempts = [await rec.next() for _ in range(3)]
    assert len({h["X-TWP-Delivery"] for h, _ in attempts}) == 1
    assert {json.loads(b)["type"] for _, b in attempts} == {"call.established"}
    assert "X-TWP-Signature" not in attempts[0][0]  # no secret configured: no signature

    body = await wait_for(lambda: _delivered(admin, 1))
    target = body["targets"][0]
    assert (target["delivered"], target["retried"], target["failed"], target["last_status"]) == (1, 2, 0, 204)
    assert plugin_row(await admin.get("/api/v1/plugins"))["runtime_errors"] == 0


async def test_receiver_down_the_event_is_dropped_after_retries_and_counted(twp_app, register_plugin, caplog):
    recorder = Recorder()
    register_plugin.append(("recorder", recorder))
    url = closed_port_url()
    server = await twp_app(config={"plugins": {"webhook": {"url": url, "retries": 2, "backoff": "10ms"}}})
    admin = await server.admin()

    server.kernel.events.publish(call_event("call.cleared"))

    async def failed():
        body = await admin.get("/api/v1/webhook/deliveries")
        return body["targets"][0] if body["targets"][0]["failed"] else None

    target = await wait_for(failed)
    assert (target["delivered"], target["retried"], target["failed"]) == (0, 2, 1)
    assert target["last_error"].startswith("ClientConnectorError")

    webhook = plugin_row(await admin.get("/api/v1/plugins"))
    assert webhook["state"] == "loaded" and webhook["runtime_errors"] == 1
    port = url.split(":")[2].split("/")[0]
    assert webhook["last_error"].startswith(f"delivery to http://127.0.0.1:{port}: ClientConnectorError")
    assert f"plugin webhook failed in delivery to http://127.0.0.1:{port}" in caplog.text

    # The kernel is fine: other observers got the event, the server answers, the worker goes on.
    assert [t for _, t in recorder.events] == ["call.cleared"]
    health = await admin.get("/api/v1/health")
    assert health["ready"] is True
    server.kernel.events.publish(call_event("call.delivered"))
    await wait_for(lambda: _failed(admin, 2))
    assert [t for _, t in recorder.events] == ["call.cleared", "call.delivered"]


async def _failed(admin, n):
    body = await admin.get("/api/v1/webhook/deliveries")
    return body["targets"][0]["failed"] >= n


async def test_a_slow_receiver_holds_up_no_other_observer(twp_app, register_plugin, receiver):
    rec, url = await receiver(hold=True)
    recorder = Recorder()
    register_plugin.append(("recorder", recorder))
    server = await twp_app(config={"plugins": {"webhook": {"url": url, "timeout": "10s"}}})

    published = time.monotonic()
    for i in range(3):
        server.kernel.events.publish(call_event("call.delivered", n=i))
    await rec.next()  # the receiver holds the first POST and answers nothing
    await wait_for(lambda: _count(recorder, 3), timeout=5)
    # Other observers got every event while the webhook's receiver still holds the first POST.
    assert max(at for at, _ in recorder.events) - published < 5
    assert rec.requests.empty()  # the webhook waits for the first answer before the next POST
    rec.release.set()
    await rec.next()


async def _count(recorder, n):
    return len(recorder.events) >= n


async def test_bad_options_leave_the_plugin_in_startup_error_and_the_server_up(twp_app, register_plugin):
    recorder = Recorder()
    register_plugin.append(("recorder", recorder))
    server = await twp_app(config={"plugins": {"webhook": {"url": "crm.example.com/twp", "events": ["calls.*"], "retries": 50}}})
    admin = await server.admin()

    webhook = plugin_row(await admin.get("/api/v1/plugins"))
    assert webhook["state"] == "startup_error"
    reason = webhook["reason"]
    assert reason.startswith("twp_startup: ConfigErrors: ")
    assert "<test config>: plugins.webhook.retries: expected an integer 0-10, got 50" in reason
    assert webhook["last_error"] == reason

    health = await admin.get("/api/v1/health")
    assert health["ready"] is True and health["status"] == "degraded"
    assert plugin_row({"plugins": health["plugins"]["items"]})["state"] == "startup_error"

    # The url and events problems are reported together once the types are right.
    server2 = await twp_app(config={"plugins": {"webhook": {"url": "crm.example.com/twp", "events": ["calls.*"]}}})
    admin2 = await server2.admin()
    reason = plugin_row(await admin2.get("/api/v1/plugins"))["reason"]
    assert 'plugins.webhook.url: expected an http:// or https:// URL such as "https://crm.example.com/twp", got "crm.example.com/twp"' in reason
    assert 'plugins.webhook.events[0]: "calls.*" matches no event' in reason

    # A plugin that failed to start is not called any more; the others are.
    server2.kernel.events.publish(call_event())
    assert (await admin2.get("/api/v1/webhook/deliveries"))["configured"] is False
    await wait_for(lambda: _count(recorder, 1))


async def test_without_options_the_plugin_is_loaded_and_idle(twp_server, admin):
    webhook = plugin_row(await admin.get("/api/v1/plugins"))
    assert webhook["state"] == "loaded" and webhook["runtime_errors"] == 0
    twp_server.kernel.events.publish(call_event())
    assert await admin.get("/api/v1/webhook/deliveries") == {"configured": False, "events": [], "signed": False, "targets": []}


async def test_disabled_in_config_it_is_not_loaded(twp_app):
    server = await twp_app(config={"plugins": {"disabled": ["webhook"], "webhook": {"url": "http://127.0.0.1:9/x"}}})
    admin = await server.admin()
    webhook = plugin_row(await admin.get("/api/v1/plugins"))
    assert (webhook["state"], webhook["reason"]) == ("disabled", "listed in [plugins] disabled")
    await admin.get("/api/v1/webhook/deliveries", status=404)


async def test_delivery_counters_are_for_super_users_only(twp_app, receiver):
    _, url = await receiver()
    server = await twp_app(config={"plugins": {"webhook": {"url": url}}})
    admin = await server.admin()
    company = await admin.create("companies", name="ACME")
    limited = await server.admin(super_user=False, companies=(company["id"],))
    body = await limited.get("/api/v1/webhook/deliveries", status=403)
    assert body["error"] == "forbidden" and "super users" in body["detail"]
    await server.anonymous.get("/api/v1/webhook/deliveries", status=401)
