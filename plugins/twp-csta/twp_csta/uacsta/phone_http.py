"""The HTTP side of SIP phones: action URLs (phone → TWP) as an event source, and remote control (TWP → phone).

**Action URLs.**  Snom and Yealink phones send an HTTP GET to a URL set per event on the
phone (incoming call, outgoing call, connected, disconnected, missed, DND, forwarding ...),
with runtime variables the phone replaces (Snom ``$remote``, ``$local``, ``$call-id``,
``$active_user``; Yealink ``$remote``, ``$local``, ``$call_id``, ``$active_user``).  TWP
serves one route per vendor, ``GET /api/v1/<vendor>/<link>/<event>?device=…&remote=…&call_id=…&key=…``;
``ActionUrls.receive`` checks, in this order, and answers with a JSON error naming the
reason, logged (rate-limited) and counted, nothing else affected:

- the event is one the vendor sends (``404 unknown_event``);
- ``key`` equals the link's ``action_url_secret`` when one is set (compared in constant time;
  ``403 forged``);
- the request comes from the address of the device's phone when ``phones`` gives it (``403 wrong_address``);
- the device is one the link supervises over HTTP (``404 unknown_device``);
- the same event of the same call was not received already (``409 replayed``; kept
  ``replay_window`` seconds, at most 10,000 entries per link).

At least one of the secret or the phone's address is always required (the config says so).

**Remote control.**  ``RemoteControl`` sends the vendor's HTTP commands to the phone (Snom
``/command.htm?number=…`` / ``?key=…``; Yealink ``/servlet?key=…``) with the device's
credentials (HTTP basic); the phone's refusal or silence becomes a clear error.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import attrs

from twp_csta.errors import CstaBaseError, CstaLinkError, CstaTimeout
from twpcore.plugin_api import PbxEvent, RepeatLimiter

log = logging.getLogger(__name__)

_NUMBER = re.compile(r"^(?:sips?:|tel:)?([^@;>]*)")
_REPLAY_ENTRIES = 10_000


def number_of(uri: str | None) -> str | None:
    """The user part of a phone's ``$remote``/``$local`` (``sip:0612345678@pbx`` → ``0612345678``); None if empty."""
    if not uri:
        return None
    uri = uri.strip().strip("<>")
    match = _NUMBER.match(uri)
    number = match.group(1).strip() if match else ""
    return number[:64] or None


class RemoteControlError(CstaBaseError):
    """The phone refused or did not answer a remote-control request."""

    http_status = 502


@attrs.define(eq=False)
class RemoteControl:
    """HTTP commands to one vendor's phones: ``await get(host, path, params)`` with the link's credentials."""

    port: int = 80
    username: str | None = None
    password: str | None = None
    timeout: float = 5.0
    scheme: str = "http"
    sent: list[str] = attrs.field(factory=list)
    """Paths sent (without credentials), newest last, at most 100: for ``link_stats`` and tests."""
    _session: aiohttp.ClientSession | None = None

    async def get(self, host: str, path: str, params: Mapping[str, str]) -> str:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        headers = {"Authorization": "Basic " + base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()} \
            if self.username else {}
        url = f"{self.scheme}://{host}:{self.port}{path}"
        try:
            async with self._session.get(url, params=dict(params), headers=headers, allow_redirects=False) as response:
                text = await response.text(errors="replace")
                status = response.status
        except TimeoutError:
            raise CstaTimeout(f"remote control {path}", self.timeout) from None
        except aiohttp.ClientError as exc:
            raise CstaLinkError(f"remote control: cannot reach the phone at {host}:{self.port}: {exc}") from None
        self.sent.append(f"{path}?{'&'.join(f'{k}={v}' for k, v in params.items())}")
        del self.sent[:-100]
        if status in (401, 403):
            raise RemoteControlError(f"the phone at {host} refused TWP's HTTP credentials (status {status}) for {path}; set http_username "
                                     "and http_password on the link to the phone's web user (and, on Yealink, allow TWP's address "
                                     "in the action URI list)")
        if status >= 300:
            raise RemoteControlError(f"the phone at {host} answered {status} to {path}")
        return text

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@attrs.frozen
class ActionEvent:
    """What one vendor's action-URL event means: a ``PbxEvent`` type and its fixed fields, or nothing to report."""

    kind: str
    """``delivered``, ``originated``, ``established``, ``cleared``, ``missed``, ``dnd_on``, ``dnd_off``,
    ``forward_on``, ``forward_off``, or ``none`` (accepted, nothing changes: off-hook, on-hook, set-up finished ...)."""


@attrs.define(eq=False)
class ActionUrls:
    """The action-URL event source of one link."""

    name: str
    events: Mapping[str, ActionEvent]
    secret: str | None
    phone_host: Callable[[str], str | None]
    """The address of the device's phone, or None when the link does not know it."""
    supervised: Callable[[str], bool]
    emit: Callable[[PbxEvent], None]
    replay_window: float = 3600.0
    repeats: RepeatLimiter = attrs.field(factory=lambda: RepeatLimiter(log))
    counters: dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(
        ("accepted", "unknown_event", "forged", "wrong_address", "unknown_device", "replayed", "bad_request"), 0))
    _seen: OrderedDict[tuple[str, str, str], float] = attrs.field(factory=OrderedDict)
    _calls: dict[tuple[str, str], tuple[str | None, str | None]] = attrs.field(factory=dict)
    _waiting: dict[str, list[asyncio.Future[str]]] = attrs.field(factory=dict)

    def _refuse(self, status: int, error: str, detail: str, peer: str) -> tuple[int, dict[str, Any]]:
        self.counters[error] += 1
        self.repeats.log(logging.WARNING, f"{self.name}: action URL {error}", "%s: action URL from %s refused (%s): %s; counted in "
                         "action_urls.%s", self.name, peer, error, detail, error)
        return status, {"error": error, "detail": detail}

    def receive(self, event: str, query: Mapping[str, str], peer: str) -> tuple[int, dict[str, Any]]:
        """Check and apply one action URL; (HTTP status, JSON body)."""
        spec = self.events.get(event)
        if spec is None:
            return self._refuse(404, "unknown_event", f"event {event[:40]!r} is not one the phone sends; expected one of "
                                f"{', '.join(sorted(self.events))}", peer)
        if self.secret is not None and not hmac.compare_digest(query.get("key", "").encode(), self.secret.encode()):
            return self._refuse(403, "forged", "key does not match the link's action_url_secret; copy the action URLs from the "
                                "link's README again", peer)
        device = (query.get("device") or number_of(query.get("local")) or "").strip()
        if not re.fullmatch(r"[0-9A-Za-z*#+]{1,32}", device):
            return self._refuse(400, "bad_request", f"device: expected the phone's number ($active_user), got {device[:40]!r}", peer)
        host = self.phone_host(device)
        if host is not None and host != peer:
            return self._refuse(403, "wrong_address", f"device {device}'s phone is at {host}, not {peer}", peer)
        if host is None and self.secret is None:
            return self._refuse(403, "wrong_address", f"device {device} has no phone address on this link and the link has no "
                                "action_url_secret: nothing proves the request comes from the phone", peer)
        if not self.supervised(device):
            return self._refuse(404, "unknown_device", f"device {device} is not supervised by link {self.name}", peer)
        call_id = (query.get("call_id") or "").strip()[:128]
        if call_id:
            key = (device, event, call_id)
            now = time.monotonic()
            while self._seen and next(iter(self._seen.values())) < now - self.replay_window:
                self._seen.popitem(last=False)
            if key in self._seen:
                return self._refuse(409, "replayed", f"event {event} of call {call_id} on device {device} was already received", peer)
            self._seen[key] = now
            if len(self._seen) > _REPLAY_ENTRIES:
                self._seen.popitem(last=False)
        self.counters["accepted"] += 1
        self._apply(spec, device, call_id or None, number_of(query.get("remote")), query)
        return 200, {"accepted": event, "device": device}

    def _apply(self, spec: ActionEvent, device: str, call_id: str | None, remote: str | None, query: Mapping[str, str]) -> None:
        kind = spec.kind
        if kind in ("dnd_on", "dnd_off"):
            self.emit(PbxEvent("do_not_disturb", device, dnd=kind == "dnd_on"))
            return
        if kind in ("forward_on", "forward_off"):
            target = number_of(query.get("target")) if kind == "forward_on" else None
            self.emit(PbxEvent("forwarding", device, forwarding={"type": "immediate", "number": target, "on": kind == "forward_on"}))
            return
        if kind == "none" or call_id is None:
            return
        if kind == "delivered":
            self._calls[(device, call_id)] = (remote, device)
            self.emit(PbxEvent("delivered", device, call_id, "alerting", remote, device, device))
        elif kind == "originated":
            self._calls[(device, call_id)] = (device, remote)
            self.emit(PbxEvent("originated", device, call_id, "initiated", device, remote))
            for future in self._waiting.pop(device, []):
                if not future.done():
                    future.set_result(call_id)
        elif kind == "established":
            calling, called = self._calls.get((device, call_id), (None, None))
            self.emit(PbxEvent("established", device, call_id, "connected", calling, called, remote))
        elif kind in ("cleared", "missed"):
            self._calls.pop((device, call_id), None)
            self.emit(PbxEvent("cleared", device, call_id, "cleared", other=remote, cause="noAnswer" if kind == "missed" else "normalClearing"))

    async def next_outgoing(self, device: str, timeout: float) -> str:
        """The call id of the next ``outgoing`` action URL of ``device`` (after a remote-control dial)."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(device, []).append(future)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise CstaTimeout(f"make_call on {device} (the phone dialled but sent no outgoing-call action URL; set it on the phone)",
                              timeout) from None
        finally:
            waiting = self._waiting.get(device, [])
            if future in waiting:
                waiting.remove(future)
