"""``HttpPhones``: the web side of simulated Snom or Yealink phones, for the tests of the HTTP path.

Each phone listens on its own loopback address (``127.0.0.1``, ``127.0.0.2`` ...) and one
shared port, like phones on a LAN with port 80 open.  A phone:

- answers remote-control requests the way its vendor documents them (Snom
  ``/command.htm?number=…`` / ``?key=…``; Yealink ``/servlet?key=…``), refusing wrong HTTP
  credentials (401) and, for Yealink, clients outside its trusted list (403); every request is
  kept in ``requests``;
- sends action URLs: the URL templates set on the phone (``action_urls``, with the vendor's
  ``$variables``) are filled like the phone fills them and fetched from the phone's own address;
- behaves like a phone would: a remote dial sends the outgoing-call action URL with a new call
  id, answering sends "connected", hanging up sends "disconnected".
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import urllib.parse
from typing import Any, Literal

import aiohttp
import attrs
from aiohttp import web

Vendor = Literal["snom", "yealink"]

#: Vendor → (action-URL event names for outgoing, connected, disconnected; the call-id variable).
_VENDOR: dict[str, tuple[str, str, str, str]] = {
    "snom": ("outgoing", "connected", "disconnected", "$call-id"),
    "yealink": ("outgoing_call", "call_established", "call_terminated", "$call_id"),
}


@attrs.define(eq=False)
class SimPhone:
    """One simulated phone."""

    number: str
    host: str
    action_urls: dict[str, str] = attrs.field(factory=dict)
    """Event → URL template as set on the phone (``http://twp/...?call_id=$call-id``)."""
    calls: dict[str, str] = attrs.field(factory=dict)
    """Call id → remote number of the phone's calls."""
    requests: list[tuple[str, dict[str, str]]] = attrs.field(factory=list)


class HttpPhones:
    """Simulated phones of one vendor on ``port``; ``phones`` maps a number to its loopback address."""

    def __init__(self, vendor: Vendor, phones: dict[str, str], *, port: int, username: str = "admin", password: str = "admin",
                 trusted: tuple[str, ...] = ("127.0.0.1",)) -> None:
        self.vendor = vendor
        self.port = port
        self.username, self.password = username, password
        self.trusted = trusted
        self.phones = {number: SimPhone(number, host) for number, host in phones.items()}
        self._by_host = {p.host: p for p in self.phones.values()}
        self._ids = itertools.count(33093)
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.sent: list[tuple[str, str, int]] = []
        """Action URLs sent: (phone number, event, TWP's HTTP status)."""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/command.htm", self._snom)
        app.router.add_get("/servlet", self._yealink)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        for host in self._by_host:
            await web.TCPSite(self._runner, host, self.port).start()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- remote control --------------------------------------------------------------
    def _phone(self, request: web.Request) -> SimPhone:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        phone = self._by_host.get(sockname[0] if sockname else "")
        if phone is None:
            raise web.HTTPNotFound(text="no phone at this address")
        return phone

    def _check_auth(self, request: web.Request) -> None:
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Basic realm="phone"'})

    async def _snom(self, request: web.Request) -> web.Response:
        if self.vendor != "snom":
            raise web.HTTPNotFound()
        phone = self._phone(request)
        self._check_auth(request)
        query = dict(request.query)
        phone.requests.append((request.path, query))
        if "number" in query:
            self._dialled(phone, query["number"])
        elif query.get("key") == "OFFHOOK":
            self._event_for_ringing(phone, 1)
        elif query.get("key") == "CANCEL":
            self._event_for_ringing(phone, 2)
        return web.Response(text="<html><body>OK</body></html>", content_type="text/html")

    async def _yealink(self, request: web.Request) -> web.Response:
        if self.vendor != "yealink":
            raise web.HTTPNotFound()
        phone = self._phone(request)
        if request.remote not in self.trusted:
            raise web.HTTPForbidden(text="Forbidden: not in the action URI allow list")
        self._check_auth(request)
        query = dict(request.query)
        phone.requests.append((request.path, query))
        key = query.get("key", "")
        if key.startswith("number="):
            self._dialled(phone, key.removeprefix("number="))
        elif key.startswith("ASW:"):
            self._event_for(phone, key[4:], 1)
        elif key.startswith("CANCEL:"):
            self._event_for(phone, key[7:], 2)
        return web.Response(text="OK")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _dialled(self, phone: SimPhone, number: str) -> None:
        call_id = str(next(self._ids))
        phone.calls[call_id] = number
        self._spawn(self.send(phone.number, _VENDOR[self.vendor][0], remote=number, call_id=call_id))

    def _event_for_ringing(self, phone: SimPhone, which: int) -> None:
        if phone.calls:
            self._event_for(phone, next(reversed(phone.calls)), which)

    def _event_for(self, phone: SimPhone, call_id: str, which: int) -> None:
        remote = phone.calls.get(call_id)
        if remote is None:
            return
        if which == 2:
            phone.calls.pop(call_id, None)
        self._spawn(self.send(phone.number, _VENDOR[self.vendor][which], remote=remote, call_id=call_id))

    # -- action URLs -----------------------------------------------------------------
    def ring(self, number: str, caller: str) -> str:
        """An outside call reaches the phone: it rings (the test then sends the incoming-call action URL); the call id."""
        call_id = str(next(self._ids))
        self.phones[number].calls[call_id] = caller
        return call_id

    def fill(self, phone: SimPhone, template: str, remote: str | None, call_id: str | None) -> str:
        """The URL the phone fetches: its template with the vendor's variables replaced (URL-encoded)."""
        values = {
            "$active_user": phone.number, "$local": f"sip:{phone.number}@pbx.example", "$phone_ip": phone.host, "$ip": phone.host,
            "$remote": f"sip:{remote}@pbx.example" if remote else "", _VENDOR[self.vendor][3]: call_id or "",
            "$display_remote": remote or "",
        }
        for name in sorted(values, key=len, reverse=True):
            template = template.replace(name, urllib.parse.quote(values[name], safe=""))
        return template

    async def send(self, number: str, event: str, *, remote: str | None = None, call_id: str | None = None,
                   url: str | None = None, source: str | None = None) -> tuple[int, dict[str, Any]]:
        """The phone of ``number`` sends its action URL for ``event`` (or ``url``), from its address (or ``source``)."""
        phone = self.phones[number]
        template = url if url is not None else phone.action_urls.get(event)
        if template is None:
            return 0, {}
        target = self.fill(phone, template, remote, call_id)
        connector = aiohttp.TCPConnector(local_addr=(source or phone.host, 0))
        body: Any = {}
        async with aiohttp.ClientSession(connector=connector) as session, session.get(target) as response:
            with contextlib.suppress(Exception):
                body = await response.json()
            status = response.status
        self.sent.append((number, event, status))
        return status, body if isinstance(body, dict) else {}
