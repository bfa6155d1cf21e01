"""The webhook plugin: POST call, device and presence events as JSON to configured URLs.

Configured in the server's ``twp.toml``::

    [plugins.webhook]
    url = "https://crm.example.com/twp-events"   # or an array of URLs
    events = ["call.*"]                           # glob patterns; default: every event
    secret = { env = "TWP_WEBHOOK_SECRET" }       # signs each body (X-TWP-Signature)

The kernel hands observer hooks every event from one task shared by all plugins, so the
hooks only put the event on a bounded queue per URL and return; a worker per URL POSTs
in order, retries with bounded exponential backoff, and gives up on an event after the
last retry.  Failed and dropped events are counted, shown by
``GET /api/v1/webhook/deliveries`` and reported to the kernel, which counts them in the
plugin's ``runtime_errors`` / ``last_error`` (``/api/v1/plugins``).
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import attrs
from aiohttp import web

from twp_webhook import __version__
from twpcore.plugin_api import (
    ApiError,
    CallEvent,
    ConfigErrors,
    ConfigProblem,
    DeviceEvent,
    Duration,
    Event,
    PluginContext,
    PresenceEvent,
    Register,
    RegisterRoute,
    Secret,
    context_of,
    hookimpl,
    join_path,
    principal_of,
    setting,
    show_value,
    structure,
)

TWP_PLUGIN_API = "1.0"
"""The TWP plugin API version this plugin is written for."""

log = logging.getLogger(__name__)

PLUGIN = "webhook"
"""The entry-point name: the plugin's name in ``twp plugins list`` and its config table."""
CATEGORIES = ("call", "device", "presence")
SIGNATURE_HEADER = "X-TWP-Signature"


@attrs.frozen
class Config:
    """Options of ``[plugins.webhook]``; checked at start-up."""

    url: str | list[str] = setting(help="http:// or https:// URL that receives the events, or an array of URLs")
    events: list[str] = setting(factory=lambda: ["call.*", "device.*", "presence.*"],
                                help='event types to send, as glob patterns such as "call.*" or "call.delivered"')
    secret: Secret | None = setting(None, help='key of the HMAC-SHA256 signature sent in X-TWP-Signature; write it as { env = "VAR" }')
    timeout: Duration = setting(Duration(5), min=0.1, max=120, help="how long one POST may take")
    retries: int = setting(3, min=0, max=10, help="new attempts after a failed POST, before the event is given up")
    backoff: Duration = setting(Duration(1), min=0, max=600, help="wait before the first retry; doubled at each retry")
    max_backoff: Duration = setting(Duration(30), min=0, max=3600, help="longest wait between two attempts")
    queue_size: int = setting(1000, min=1, max=1_000_000, help="events kept per URL while it is slow or down; newer ones are dropped beyond")

    @property
    def urls(self) -> list[str]:
        return [self.url] if isinstance(self.url, str) else list(self.url)


def read_config(source: str, options: dict[str, Any] | None) -> Config | None:
    """Check the ``[plugins.webhook]`` table; ``None`` when there is none (the plugin stays idle)."""
    if options is None:
        return None
    path = f"plugins.{PLUGIN}"
    config = structure(Config, options, source=source, path=path)
    problems = []
    if not config.urls:
        problems.append(ConfigProblem(source, join_path(path, "url"), "expected at least one URL, got an empty array"))
    for i, url in enumerate(config.urls):
        where = join_path(path, "url") if isinstance(config.url, str) else join_path(join_path(path, "url"), i)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(
                ConfigProblem(source, where, f'expected an http:// or https:// URL such as "https://crm.example.com/twp", got {show_value(url)}')
            )
    for i, pattern in enumerate(config.events):
        category = pattern.split(".", 1)[0]
        if not fnmatch.filter(CATEGORIES, category):
            problems.append(
                ConfigProblem(
                    source,
                    join_path(join_path(path, "events"), i),
                    f'{show_value(pattern)} matches no event; event types start with {", ".join(c + "." for c in CATEGORIES)} (e.g. "call.*")',
                )
            )
    if problems:
        raise ConfigErrors(problems)
    return config


def redact_url(url: str) -> str:
    """The URL as logs and the API show it: scheme, host and port only (paths and queries may hold tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


def sign(secret: str, body: bytes) -> str:
    """The ``X-TWP-Signature`` value of a body: ``sha256=`` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode(event: Event) -> bytes:
    """The JSON body POSTed for an event: its versioned JSON shape (``"v"``, as on the WebSocket) and ``user_ids``."""
    body = {**event.as_json(), "user_ids": sorted(event.user_ids)}
    return json.dumps(body, separators=(",", ":"), default=str).encode()


class DeliveryError(Exception):
    """The receiver answered with a status other than 2xx."""


def describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, asyncio.TimeoutError) and not str(exc):
        return f"TimeoutError: no answer within {timeout:g} s"
    return f"{type(exc).__name__}: {exc}"


@attrs.define(eq=False)
class Target:
    """One receiving URL: its queue, its worker and what became of its events."""

    url: str
    queue: asyncio.Queue
    delivered: int = 0
    """Events the receiver accepted (2xx)."""
    retried: int = 0
    """Attempts after a first failure."""
    failed: int = 0
    """Events given up after the last retry (or refused with a 4xx)."""
    dropped: int = 0
    """Events not queued because the queue was full."""
    last_status: int | None = None
    last_error: str | None = None
    task: asyncio.Task | None = attrs.field(default=None, repr=False)

    @property
    def label(self) -> str:
        return redact_url(self.url)

    def as_json(self) -> dict[str, Any]:
        return {"url": self.label, "queued": self.queue.qsize(), "delivered": self.delivered, "retried": self.retried,
                "failed": self.failed, "dropped": self.dropped, "last_status": self.last_status, "last_error": self.last_error}


class Webhook:
    """The running plugin of one server (kept in ``context.state``): a session, and a queue and a worker per URL."""

    def __init__(self, config: Config, report: Callable[[Target, BaseException], None]):
        self.config = config
        self.report = report
        self.targets = [Target(url, asyncio.Queue(config.queue_size)) for url in config.urls]
        self.session = aiohttp.ClientSession(headers={"User-Agent": f"twp-webhook/{__version__}"})

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for target in self.targets:
            target.task = loop.create_task(self._worker(target), name=f"webhook {target.label}")

    def wants(self, event_type: str) -> bool:
        return any(fnmatch.fnmatchcase(event_type, p) for p in self.config.events)

    def offer(self, event: Any) -> None:
        """Queue an event for every URL; never waits."""
        if not self.wants(event.type):
            return
        delivery = uuid.uuid4().hex
        for target in self.targets:
            try:
                target.queue.put_nowait((delivery, event))
            except asyncio.QueueFull:
                target.dropped += 1
                if target.dropped == 1 or target.dropped % 1000 == 0:
                    log.warning("webhook %s is too slow or down: %d event(s) dropped so far", target.label, target.dropped)

    async def _worker(self, target: Target) -> None:
        while True:
            delivery, event = await target.queue.get()
            try:
                await self.deliver(target, delivery, event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a bug here must not end the worker
                target.failed += 1
                target.last_error = describe(exc, self.config.timeout)
                self.report(target, exc)

    async def deliver(self, target: Target, delivery: str, event: Any) -> bool:
        """POST one event, retrying with backoff; True when the receiver accepted it."""
        body = encode(event)
        headers = {"Content-Type": "application/json", "X-TWP-Event": event.type, "X-TWP-Delivery": delivery}
        if self.config.secret is not None:
            headers[SIGNATURE_HEADER] = sign(self.config.secret.reveal(), body)
        timeout = aiohttp.ClientTimeout(total=self.config.timeout)
        error: BaseException = DeliveryError("not attempted")
        for attempt in range(self.config.retries + 1):
            if attempt:
                target.retried += 1
                await asyncio.sleep(min(self.config.max_backoff, self.config.backoff * 2 ** (attempt - 1)))
            try:
                async with self.session.post(target.url, data=body, headers=headers, timeout=timeout, allow_redirects=False) as resp:
                    target.last_status = resp.status
                    if 200 <= resp.status < 300:
                        target.delivered += 1
                        return True
                    error = DeliveryError(f"HTTP {resp.status} {resp.reason or ''}".strip())
                    if resp.status < 500 and resp.status not in (408, 425, 429):
                        break  # the receiver refuses this event: another attempt would be refused too
            except (TimeoutError, aiohttp.ClientError) as exc:
                error = exc
        target.failed += 1
        target.last_error = describe(error, self.config.timeout)
        self.report(target, error)
        return False

    async def close(self) -> None:
        tasks = [t.task for t in self.targets if t.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.session.close()
        for target in self.targets:
            if target.queue.qsize():
                log.warning("webhook %s: %d queued event(s) not delivered at shutdown", target.label, target.queue.qsize())

    def as_json(self) -> dict[str, Any]:
        return {"events": list(self.config.events), "signed": self.config.secret is not None,
                "targets": [t.as_json() for t in self.targets]}


@hookimpl
def twp_register_options(register: Register[Any]) -> None:
    register(read_config)  # checked with the rest of twp.toml: a bad table keeps the plugin in startup_error


@hookimpl
async def twp_startup(context: PluginContext) -> None:
    config = context.options
    if config is None:
        log.info("webhook plugin installed but not configured: add a [plugins.%s] table with a url to send events", PLUGIN)
        return
    webhook = Webhook(config, lambda target, exc: context.report_error(f"delivery to {target.label}", exc))
    webhook.start()
    context.state = webhook  # one Webhook per running server: several may share a process (tests do)
    log.info("webhook sends %s to %s", ", ".join(config.events), ", ".join(t.label for t in webhook.targets))


@hookimpl
async def twp_shutdown(context: PluginContext) -> None:
    webhook, context.state = context.state, None
    if webhook is not None:
        await webhook.close()


def _offer(context: PluginContext, event: Event) -> None:
    # In a cluster every node observes every event; the node that published it (origin None) posts it, once.
    if isinstance(context.state, Webhook) and getattr(event, "origin", None) is None:
        context.state.offer(event)


@hookimpl
def twp_call_event(event: CallEvent, context: PluginContext) -> None:
    _offer(context, event)


@hookimpl
def twp_device_event(event: DeviceEvent, context: PluginContext) -> None:
    _offer(context, event)


@hookimpl
def twp_presence_event(event: PresenceEvent, context: PluginContext) -> None:
    _offer(context, event)


async def deliveries(request: web.Request) -> web.Response:
    """What became of the events sent to each URL (super users: the URLs are server-wide)."""
    if not principal_of(request).manages(None):
        raise ApiError(403, "forbidden", "webhook deliveries are server-wide: only super users may see them")
    webhook = context_of(request).state
    if not isinstance(webhook, Webhook):
        return web.json_response({"configured": False, "events": [], "signed": False, "targets": []})
    return web.json_response({"configured": True, **webhook.as_json()})


@hookimpl
def twp_register_routes(register: RegisterRoute) -> None:
    register("GET", "/api/v1/webhook/deliveries", deliveries, access="admin",
             summary="Webhook delivery counters per URL: delivered, retried, failed, dropped")
