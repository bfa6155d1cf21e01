"""A simulated A5000 / MiVoice 5000 multi-site: VTI-XML links on top of the CSTA switch simulator.

``VtiXmlSimulator`` serves VTI-XML (``twp_csta.vtixml``) on one TCP port per
*connection site* (a ``VtiSite``: name, ``Site.Cluster`` of the site, capacity) and
shares the call model of a running ``PbxSimulator`` (``twp_csta.sim.switch``): a call
made, answered or forwarded through the CSTA link is seen on the VTI-XML links and the
other way round, as on one PBX.  What it adds:

- **Log-in**: ``Login`` with the configured user and password (refused with
  ``badCredentials``); nothing else is served before it (``notLoggedIn``).
- **Capacity**: a connection site supervises at most ``capacity`` devices over all its
  connections; one more ``Monitor`` is refused with ``capacity`` (guide 4.1: "each link
  is limited in the maximum number of permanent supervisions").  Any site may supervise
  a device of another site (a *transit* site, guide 4.2).
- **Where a subscriber is logged**: ``locations`` maps a number to its ``Site.Cluster``;
  the ``Monitor`` answer and the subscriber list carry ``site`` and ``cluster``.
- **Devices not on VTI-XML**: numbers in ``csta_only`` (I2052 softphones, guide 4.2
  "any device type except I2052") are refused with ``notSupported``.
- **Events** of the shared call model, one ``Event`` per monitored device, with the
  call details from the moment the device rings (guide 9.2 note); message waiting with
  ``leave_message(device, caller)``, which also reaches the CSTA monitors of the device
  as an ECMA-269 ``MessageWaitingEvent``.
- **Lists**: ``Subscribers`` (number, name, site) and ``Directory`` (the PBX's own
  directory, ``directory``: name → number).
- **Faults**: ``await drop(site)`` cuts a site's connections, ``refuse[site] = True``
  refuses new ones, ``send_garbage(site)``.

``guide_4_2()`` builds the example of the admin guide, 4.2: three centres, links of
capacity 500, 250 and 200 on sites 1.1, 2.1 and 3.1, and 950 subscribers on sites 1.*
(500), 2.* (250), 3.* (100) and 4.* (100).

The hook into the switch is its monitor table: a VTI-XML connection registers itself
there like a CSTA link and receives the switch's ECMA-323 events, which it translates
with the toolkit's own ``events_from_csta``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Iterable
from typing import Any

import attrs

from twp_csta.driver import events_from_csta
from twp_csta.errors import CodecError, FramingError
from twp_csta.sim.switch import PbxSimulator
from twp_csta.vtixml import codec
from twp_csta.vtixml.codec import VtiItem, VtiMessage, item, message
from twp_csta.vtixml.framing import VtiFraming
from twp_csta.xml.codec import Message, build

log = logging.getLogger(__name__)

#: Kernel event types (what ``events_from_csta`` gives) → VTI-XML event types.
VTI_EVENT = {
    "originated": "dialing", "established": "connected", "held": "held", "retrieved": "retrieved", "cleared": "released",
    "failed": "failed", "diverted": "diverted", "transferred": "transferred", "conferenced": "conferenced",
    "forwarding": "forwarding", "do_not_disturb": "dnd", "monitor_lost": "monitorEnded",
}
#: CSTA local connection states of the switch → VTI-XML call states of ``Snapshot``.
VTI_STATE = {"initiated": "initiated", "alerting": "alerting", "connected": "connected", "hold": "held", "queued": "queued", "fail": "failed"}


@attrs.frozen
class VtiSite:
    """One connection site of the multi-site: a VTI-XML link endpoint."""

    name: str
    site: str
    """``Site.Cluster`` of the connection site (``"1.1"``)."""
    capacity: int
    port: int = 0


def guide_4_2() -> tuple[tuple[VtiSite, ...], dict[str, str]]:
    """The admin guide's 4.2 table: the three connection sites and where each of the 950 subscribers is logged."""
    sites = (VtiSite("link0", "1.1", 500), VtiSite("link1", "2.1", 250), VtiSite("link2", "3.1", 200))
    locations: dict[str, str] = {}
    for first, count, site_no in ((10000, 500, 1), (20000, 250, 2), (30000, 100, 3), (40000, 100, 4)):
        for n in range(count):
            locations[str(first + n)] = f"{site_no}.{1 + n % 2}"  # two clusters per site
    return sites, locations


def split_location(location: str | None) -> tuple[str | None, str | None]:
    """``"1.2"`` → ``("1", "2")``: site and cluster (guide 10.5 shows them apart)."""
    if not location:
        return None, None
    site, _, cluster = location.partition(".")
    return site or None, cluster or None


class _VtiConnection:
    """One client connection to one connection site."""

    _ids = itertools.count(1)

    def __init__(self, sim: VtiXmlSimulator, site: VtiSite, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.sim, self.site = sim, site
        self.id = next(self._ids)
        self.reader, self.writer = reader, writer
        self.framing = VtiFraming()
        self.logged_in = False
        self.monitors: dict[str, str] = {}
        """device → the cross reference it has in the switch's monitor table."""
        self.closed = False
        self.deferred: list[VtiMessage] | None = None

    # -- the switch's monitor-table interface ----------------------------------------
    def send_event(self, csta: Message) -> None:
        if csta.name == "MessageWaitingEvent":
            return  # leave_message writes VTI-XML's own event
        device = next((d for d, x in self.monitors.items() if x == csta.monitor_cross_ref_id), None)
        if device is None:
            return
        for ev in events_from_csta(csta, device):
            if ev.type == "delivered":
                vtype = "ringing" if ev.state == "alerting" else "ringback"
            elif ev.type in VTI_EVENT:
                vtype = VTI_EVENT[ev.type]
            else:
                continue
            fields: dict[str, Any] = {
                "type": vtype, "device": device, "callId": ev.call_id, "state": ev.state, "calling": ev.calling, "called": ev.called,
                "other": ev.other, "cause": ev.cause, "oldCallIds": " ".join(ev.old_call_ids) or None,
            }
            if ev.forwarding is not None:
                fwd = ev.forwarding
                fields.update(forwardType=fwd.get("type"), forwardTo=fwd.get("number"), on=str(bool(fwd.get("on"))).lower())
            if ev.dnd is not None:
                fields["on"] = str(ev.dnd).lower()
            self.send(message("Event", **fields))

    # -- writing ---------------------------------------------------------------------
    def send(self, msg: VtiMessage) -> None:
        if msg.name == "Event" and self.deferred is not None:
            self.deferred.append(msg)
            return
        self.write(codec.encode(msg))

    def write(self, payload: bytes) -> None:
        if self.closed or self.writer.is_closing():
            return
        self.writer.write(self.framing.encode(payload))

    def close(self, why: str, *, abort: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        log.info("vti-xml sim %s connection %s closed: %s", self.site.name, self.id, why)
        for device in list(self.monitors):
            self.sim._unmonitor(self, device)
        with contextlib.suppress(Exception):
            if abort and self.writer.transport is not None:
                self.writer.transport.abort()
            else:
                self.writer.close()
        self.sim._forget(self)

    async def serve(self) -> None:
        try:
            while not self.closed:
                try:
                    data = await self.reader.read(65536)
                except (ConnectionError, OSError):
                    break
                if not data:
                    break
                for frame in self.framing.feed(data):
                    if isinstance(frame, FramingError):
                        self.sim.malformed += 1
                        continue
                    try:
                        request = codec.decode(frame)
                    except CodecError as exc:
                        self.sim.malformed += 1
                        log.info("vti-xml sim %s: unreadable request skipped: %s", self.site.name, exc.message)
                        continue
                    self.handle(request)
        finally:
            self.close("connection closed by the client")

    def handle(self, request: VtiMessage) -> None:
        if request.name in ("Response", "Event"):
            return
        self.sim.requests.append((self.site.name, request))
        self.deferred = []
        try:
            try:
                answer = self.sim._answer(self, request)
            except _Refused as refused:
                answer = message("Response", id=request.id, result="error", code=refused.code, reason=refused.reason or None)
            except LookupError as exc:
                answer = message("Response", id=request.id, result="error", code="unknownCall", reason=str(exc)[:200])
            except Exception:  # a simulator bug must not kill the link
                log.exception("vti-xml sim: %s failed", request.name)
                answer = message("Response", id=request.id, result="error", code="internal")
            self.write(codec.encode(answer))
        finally:
            pending, self.deferred = self.deferred, None
            for event in pending or ():
                self.write(codec.encode(event))


class _Refused(Exception):
    def __init__(self, code: str, reason: str = ""):
        super().__init__(reason or code)
        self.code, self.reason = code, reason


class VtiXmlSimulator:
    """VTI-XML connection sites over a ``PbxSimulator``.  ``await start()``, use, ``await stop()``."""

    def __init__(self, switch: PbxSimulator, sites: Iterable[VtiSite], *, user: str = "twp", password: str = "vti-secret",
                 locations: dict[str, str] | None = None, csta_only: Iterable[str] = (), directory: dict[str, str] | None = None,
                 host: str = "127.0.0.1"):
        self.switch = switch
        self.sites = {s.name: s for s in sites}
        self.user, self.password, self.host = user, password, host
        self.locations: dict[str, str] = dict(locations or {})
        self.csta_only = set(csta_only)
        self.directory: dict[str, str] = dict(directory or {})
        """The PBX's own directory (name → number) answered to ``Directory``."""
        self.mailboxes: dict[str, int] = {}
        """New voice messages per device."""
        self.refuse: dict[str, bool] = {}
        self.requests: list[tuple[str, VtiMessage]] = []
        self.malformed = 0
        self.logins = 0
        self._servers: dict[str, asyncio.Server] = {}
        self._connections: list[_VtiConnection] = []
        self._xref = itertools.count(1)

    async def start(self) -> VtiXmlSimulator:
        for site in self.sites.values():
            self._servers[site.name] = await asyncio.start_server(functools.partial(self._serve, site), self.host, site.port)
        return self

    async def stop(self) -> None:
        for conn in list(self._connections):
            conn.close("simulator stopped", abort=True)
        for server in self._servers.values():
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        self._servers.clear()

    def port(self, site: str) -> int:
        return self._servers[site].sockets[0].getsockname()[1]

    async def _serve(self, site: VtiSite, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse.get(site.name):
            writer.close()
            return
        conn = _VtiConnection(self, site, reader, writer)
        self._connections.append(conn)
        await conn.serve()

    def _forget(self, conn: _VtiConnection) -> None:
        if conn in self._connections:
            self._connections.remove(conn)

    # -- what tests look at ------------------------------------------------------------
    def monitored_on(self, site: str) -> set[str]:
        """Devices the connection site supervises now."""
        return {d for c in self._connections if c.site.name == site for d in c.monitors}

    def connected(self, site: str) -> bool:
        return any(c.site.name == site and c.logged_in for c in self._connections)

    async def drop(self, site: str) -> int:
        """Cut every connection of one site abruptly; returns how many."""
        conns = [c for c in self._connections if c.site.name == site]
        for conn in conns:
            conn.close("dropped by fault injection", abort=True)
        await asyncio.sleep(0)
        return len(conns)

    def send_garbage(self, site: str, data: bytes = b"<<not vti-xml\xff>>\x00") -> None:
        """Write bytes that are no VTI-XML message to every connection of ``site``."""
        for conn in self._connections:
            if conn.site.name == site and not conn.writer.is_closing():
                conn.writer.write(data)

    def leave_message(self, device: str, caller: str | None = None) -> int:
        """A caller leaves a voice message for ``device``: message waiting on the VTI-XML and CSTA monitors; returns the count."""
        count = self.mailboxes.get(device, 0) + 1
        self.mailboxes[device] = count
        for conn in list(self._connections):
            if device in conn.monitors:
                conn.send(message("Event", type="messageWaiting", device=device, on="true", count=count, calling=caller))
        self.switch.send_event(device, "MessageWaitingEvent", {
            "targetDevice": {"deviceIdentifier": device}, "messageWaitingOn": "true",
            **({"invokingDevice": {"deviceIdentifier": caller}} if caller else {}),
        })
        return count

    # -- requests ------------------------------------------------------------------
    def _answer(self, conn: _VtiConnection, req: VtiMessage) -> VtiMessage:
        name = req.name
        if name == "Login":
            if req.get("user") != self.user or req.get("password") != self.password:
                raise _Refused("badCredentials", "unknown user or wrong password")
            conn.logged_in = True
            self.logins += 1
            return message("Response", id=req.id, result="ok", site=conn.site.site, capacity=conn.site.capacity, version="1")
        if not conn.logged_in:
            raise _Refused("notLoggedIn", "send Login first")
        if name == "Logout":
            conn.logged_in = False
            return message("Response", id=req.id, result="ok")
        if name == "KeepAlive":
            return message("Response", id=req.id, result="ok")
        if name == "Subscribers":
            subscribers = sorted(self.switch.subscribers.items())
            items = tuple(item("Subscriber", number=n, name=label, site=self.locations.get(n)) for n, label in subscribers)
            return message("Response", items, id=req.id, result="ok", count=len(items))
        if name == "Directory":
            entries = tuple(item("Entry", name=label, number=number) for label, number in sorted(self.directory.items()))
            return message("Response", entries, id=req.id, result="ok", count=len(entries))
        device = req.get("device") or ""
        if not self.switch.is_internal(device):
            raise _Refused("unknownDevice", f"{device} is no subscriber of this PBX")
        if name == "Monitor":
            return self._monitor(conn, req, device)
        if name == "StopMonitor":
            self._unmonitor(conn, device)
            return message("Response", id=req.id, result="ok")
        if name == "Snapshot":
            calls: list[VtiItem] = []
            for call, state in self.switch.connections_of(device):
                if state in VTI_STATE:
                    other = next(iter(call.others(device)), None)
                    calls.append(item("Call", callId=call.id, state=VTI_STATE[state], other=other))
            return message("Response", tuple(calls), id=req.id, result="ok")
        if device not in conn.monitors:
            raise _Refused("invalidState", f"{device} is not supervised on this link")
        call_id = req.get("callId")
        if name == "MakeCall":
            if any(state in ("connected", "initiated") for _, state in self.switch.connections_of(device)):
                raise _Refused("invalidState", f"{device} is already in a call")
            return message("Response", id=req.id, result="ok", callId=self.switch.dial(device, req.get("number") or ""))
        if name == "Answer":
            self.switch.answer(device, call_id)
        elif name == "HangUp":
            self.switch.hang_up(device, call_id)
        elif name == "Hold":
            self.switch.hold(device, call_id)
        elif name == "Retrieve":
            self.switch.retrieve(device, call_id)
        else:
            raise _Refused("notSupported", f"{name} is not served")
        return message("Response", id=req.id, result="ok")

    def _monitor(self, conn: _VtiConnection, req: VtiMessage, device: str) -> VtiMessage:
        if device in self.csta_only:
            raise _Refused("notSupported", f"{device} is an I2052: supervise it over CSTA")
        if device not in conn.monitors:
            if len(self.monitored_on(conn.site.name)) >= conn.site.capacity:
                raise _Refused("capacity", f"site {conn.site.site} supervises {conn.site.capacity} devices already")
            xref = f"vti{next(self._xref)}"
            conn.monitors[device] = xref
            self.switch.device(device)
            self.switch._monitors.setdefault(device, []).append((conn, xref))  # type: ignore[arg-type]
        site, cluster = split_location(self.locations.get(device))
        return message("Response", id=req.id, result="ok", device=device, site=site, cluster=cluster)

    def _unmonitor(self, conn: _VtiConnection, device: str) -> None:
        xref = conn.monitors.pop(device, None)
        if xref is None:
            return
        entries = self.switch._monitors.get(device, [])
        entries[:] = [(ln, x) for ln, x in entries if not (ln is conn and x == xref)]
        if not entries:
            self.switch._monitors.pop(device, None)


def build_message_waiting(device: str, on: bool = True) -> Message:
    """An ECMA-269 ``MessageWaitingEvent`` (for tests that write one by hand)."""
    return build("MessageWaitingEvent", {"targetDevice": {"deviceIdentifier": device}, "messageWaitingOn": str(on).lower()})
