"""The ``a5000`` PBX driver: the links of an Aastra / Mitel A5000 (MiVoice 5000, NeXspan) domain.

Guide chapter 4: per domain TWP runs *one CSTA link* and *several VTI-XML links* at the
same time.  Each is one ``[pbx.links.<name>]`` with ``driver = "a5000"`` and a
``protocol``:

- ``protocol = "vtixml"`` (TCP 3199, user and password): supervises every device type
  but the I2052; ``capacity`` and ``sites`` (``["1.*"]``) feed the kernel's allocation
  (explicit sites first, least loaded first, overflow, implicit; guide 4.1), and only
  devices whose protocol is VTIXML are given to it.  Call details come with ringing
  (guide 9.2 note).  ``monitor`` learns where the subscriber is logged (site and
  cluster: ``device_location``, shown by ``GET /api/v1/devices/states``, guide 10.5).
  Forwarding goes through the domain's CSTA link (guide 4.1 "It is mandatory to define
  the CSTA link for the call forwarding feature").  ``subscribers()`` reads the PBX's
  subscriber list for the "A5000 INT" users import (guide 7.2).
- ``protocol = "csta"`` (TCP 3211, no log-in): the toolkit's CSTA XML driver with the
  A5000's defaults; supervises CSTA devices (I2052 softphones) and serves forwarding.

Both report a new voice message as a ``message_waiting`` event, which the kernel turns
into ``device.voicemail`` for the voicemail e-mail alert (guide 9.1.4, 9.1.5), and both
write PDU traces (guide 10.6) under ``trace_dir``, VTI-XML with its password masked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import re
import time
from pathlib import Path
from typing import Any

import attrs

from twp_a5000.config import A5000Config
from twp_csta.driver import CSTA_CAPABILITIES, CstaXmlDriver
from twp_csta.errors import CstaBaseError, CstaLinkError
from twp_csta.link import ReconnectingLink
from twp_csta.vtixml import VtiClient, VtiError, VtiMessage
from twp_csta.xml.codec import Message
from twpcore.plugin_api import AuthFailed, CallSnapshot, Kind, NotReady, PbxDriver, PbxEvent, RepeatLimiter

log = logging.getLogger(__name__)

#: What a VTI-XML link does itself; ``forwarding`` is added when a CSTA link serves the domain.
VTIXML_CAPABILITIES = frozenset({"monitor", "snapshot", "make_call", "answer", "hang_up", "hold", "retrieve", "subscribers"})
#: What the A5000 CSTA link does (the toolkit's set; inferred from ECMA-269, see docs/csta.md).
A5000_CSTA_CAPABILITIES = CSTA_CAPABILITIES
#: VTI-XML event types → kernel event types (``ringing``/``ringback`` are both ``delivered``).
KERNEL_EVENT = {
    "dialing": "originated", "ringing": "delivered", "ringback": "delivered", "connected": "established", "held": "held",
    "retrieved": "retrieved", "released": "cleared", "failed": "failed", "diverted": "diverted", "transferred": "transferred",
    "conferenced": "conferenced", "monitorEnded": "monitor_lost",
}
STATES = {"initiated", "alerting", "connected", "held", "queued", "failed", "cleared"}
_PASSWORD_RE = re.compile(rb'(\bpassword=")([^"]*)(")')


def message_waiting_of(message: Message, device: str) -> list[PbxEvent]:
    """ECMA-269 ``MessageWaitingEvent``: a new message for ``device`` when ``messageWaitingOn`` is true."""
    on = (message.text("messageWaitingOn") or "").lower() == "true"
    if not on:
        return []
    caller = message.device_field("invokingDevice")
    return [PbxEvent("message_waiting", device, calling=caller)]


class A5000CstaEngine(CstaXmlDriver):
    """The A5000 CSTA link: the toolkit's XML driver, plus message waiting."""

    type_name = "a5000"
    capabilities = A5000_CSTA_CAPABILITIES

    def events_from_csta(self, message: Message, device: str) -> list[PbxEvent]:
        if message.name == "MessageWaitingEvent":
            return message_waiting_of(message, device)
        return super().events_from_csta(message, device)


class VtiTrace:
    """A VTI-XML PDU trace file (guide 10.6): every PDU, or those naming one device; passwords masked."""

    def __init__(self, path: Path, header: str, device: str, max_bytes: int):
        self.path, self.device, self.max_bytes = path, device, max_bytes
        self.written = self.pdus = 0
        self.started = time.time()
        self._needle = None if device == "*" else f'"{device}"'.encode()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8", buffering=1)
        self._write(f"# {header}\n# device {device}, started {dt.datetime.now().isoformat(timespec='seconds')}\n")

    def record(self, direction: str, payload: bytes) -> bool:
        if self._needle is not None and self._needle not in payload:
            return True
        text = _PASSWORD_RE.sub(rb"\1***\3", payload).decode("utf-8", "replace")
        arrow = "PBX <- TWP" if direction == "out" else "PBX -> TWP"
        self._write(f"{dt.datetime.now().isoformat(timespec='milliseconds')} {arrow} VTI-XML\n{text}\n\n")
        self.pdus += 1
        return self.written < self.max_bytes

    def _write(self, text: str) -> None:
        self._file.write(text)
        self.written += len(text)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._write(f"# stopped {dt.datetime.now().isoformat(timespec='seconds')}, {self.pdus} PDUs\n")
            self._file.close()

    def as_json(self) -> dict[str, Any]:
        return {"file": str(self.path), "device": self.device, "pdus": self.pdus, "bytes": self.written, "started": self.started}


_DELEGATED = (
    "setup", "close", "monitor", "stop_monitor", "snapshot", "make_call", "answer", "hang_up", "hold", "retrieve", "consultation_call",
    "alternate", "reconnect", "transfer", "single_step_transfer", "conference", "deflect", "dtmf", "set_forwarding",
    "set_do_not_disturb", "link_stats", "trace_start", "trace_stop",
)


class A5000Driver(ReconnectingLink[VtiClient], PbxDriver):
    """One link of an A5000 domain; see the module docstring.

    A VTI-XML link reconnects through the toolkit's ``ReconnectingLink``; a CSTA link is the
    toolkit's CSTA XML driver (``self.csta``), to which the lifecycle and the calls are delegated.
    """

    link_kind = "VTI-XML"

    type_name = "a5000"
    Config = A5000Config
    capabilities = VTIXML_CAPABILITIES | A5000_CSTA_CAPABILITIES
    description = "Aastra / Mitel A5000 (MiVoice 5000, NeXspan): VTI-XML links (3199) and the CSTA link (3211) of a domain"

    def __init__(self, config: A5000Config, context: Any):
        config = attrs.evolve(config, port=config.effective_port)
        super().__init__(config, context)
        self.config: A5000Config = config
        self.capacity = config.capacity
        self.sites = tuple(config.sites)
        self.log = getattr(context, "logger", None) or log
        self.csta: A5000CstaEngine | None = None
        if config.protocol == "csta":
            self.protocols: tuple[str, ...] = tuple(config.device_protocols) or ("CSTA",)
            vars(self)["capabilities"] = A5000_CSTA_CAPABILITIES  # per link: the class declares what either protocol can do
            self.csta = A5000CstaEngine(config.csta_config(), context)
            for name in _DELEGATED:
                setattr(self, name, getattr(self.csta, name))
            return
        self.protocols = tuple(config.device_protocols) or ("VTIXML",)
        vars(self)["capabilities"] = VTIXML_CAPABILITIES | ({"forwarding"} if config.csta_link else frozenset())
        self.repeats = RepeatLimiter(self.log)
        self.init_link()  # the client, reconnection with backoff, link counters (twp_csta.link)
        self.locations: dict[str, tuple[str | None, str | None]] = {}
        self.connection_site: str | None = None
        self._trace: VtiTrace | None = None
        self._failures = 0

    def bind(self, sink: Any) -> None:
        super().bind(sink)
        if self.csta is not None:
            self.csta.bind(sink)

    @property
    def connected(self) -> bool:
        if self.csta is not None:
            return self.csta.connected
        return self.client is not None and self.client.connected

    @property
    def reconnects(self) -> int:
        """Times the link came back after being lost."""
        return self.csta.reconnects if self.csta is not None else self._reconnects

    @property
    def trace(self) -> Any:
        return self.csta.trace if self.csta is not None else self._trace

    def device_location(self, device: str) -> tuple[str | None, str | None] | None:
        """(site, cluster) where the PBX says the subscriber is logged (VTI-XML links only, guide 10.5)."""
        return self.locations.get(device) if self.csta is None else None

    # -- lifecycle (VTI-XML; the reconnect loop, ``address`` and ``backoff``: twp_csta.link.ReconnectingLink) --
    async def setup(self) -> None:
        self._begin_setup()
        try:
            client = await self._open()
        except VtiError as exc:
            self._failures += 1
            self.last_error = exc.message
            if exc.code == "badCredentials":
                raise AuthFailed(f"{self.address}: the A5000 refused the VTI-XML log-in of user {self.config.user!r}; "
                                 "check username and password of the link") from None
            raise NotReady(f"{self.address}: {exc.message}", retry_after=self.backoff(self._failures - 1, jitter=False)) from None
        except (CstaBaseError, OSError) as exc:
            self._failures += 1
            self.last_error = getattr(exc, "message", None) or str(exc)
            raise NotReady(self.last_error if self.last_error.startswith(self.address) else f"{self.address}: {self.last_error}",
                           retry_after=self.backoff(self._failures - 1, jitter=False)) from None
        self._failures = 0
        self._attach(client)
        self._start_manager(f"vtixml-link-{self.name}")
        self.log.info("VTI-XML link %s connected to %s (connection site %s)", self.name, self.address, self.connection_site)
        self.link_up()

    async def _open(self) -> VtiClient:
        cfg = self.config
        self._generation += 1
        gen = self._generation
        assert cfg.password is not None
        return await VtiClient.connect(
            cfg.host, cfg.port, user=cfg.user, password=cfg.password.reveal(), name=self.name, application=cfg.application_id,
            connect_timeout=float(cfg.connect_timeout), request_timeout=float(cfg.request_timeout),
            keepalive_interval=float(cfg.heartbeat_interval) or None, keepalive_max_missed=cfg.heartbeat_max_missed,
            on_event=functools.partial(self._on_event, gen), on_link_lost=functools.partial(self._on_link_lost, gen),
            on_pdu=self._on_pdu, repeats=self.repeats, max_frame_size=cfg.max_frame_size or None,
        )

    def _attach(self, client: VtiClient) -> None:
        self.client = client
        self.connection_site = client.login_info.get("site")
        self.locations.clear()
        self._lost.clear()
        self.last_error = None

    async def close(self) -> None:
        await self._stop_manager()
        client, self.client = self.client, None
        if client is not None:
            self._remember(client)
            await client.close()
        self.trace_stop()
        self.repeats.flush()

    def link_stats(self) -> dict[str, Any]:
        stats = self._counters()
        stats.update(protocol="vtixml", connection_site=self.connection_site, reconnects=self._reconnects, monitors=len(self.locations),
                     last_error=self.last_error, trace=self._trace.as_json() if self._trace else None)
        return stats

    # -- events ----------------------------------------------------------------------
    def _on_event(self, gen: int, msg: VtiMessage) -> None:
        if gen != self._generation:
            return
        try:
            events = events_from_vtixml(msg)
        except Exception:  # noqa: BLE001 - an odd event must not stop the link
            self.repeats.log(logging.ERROR, f"{self.name}: mapping errors", "%s: cannot map VTI-XML %s event", self.name, msg.get("type"),
                             exc_info=True)
            return
        if msg.get("type") == "monitorEnded":
            self.locations.pop(msg.get("device") or "", None)
        for event in events:
            self.emit(event)

    def _on_pdu(self, direction: str, payload: bytes) -> None:
        trace = self._trace
        if trace is not None and not trace.record(direction, payload):
            self.log.warning("%s: PDU trace %s reached %d bytes; stopped", self.name, trace.path, trace.max_bytes)
            self.trace_stop()

    # -- traces (guide 10.6) ---------------------------------------------------------
    def trace_start(self, device: str = "*") -> Path:
        device = device.strip() or "*"
        if device != "*" and not re.fullmatch(r"[0-9A-Za-z*#+]{1,64}", device):
            raise ValueError(f"trace device: expected a device number or *, got {device!r}")
        self.trace_stop()
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path(self.config.trace_dir) / f"{self.name}-vtixml-{'all' if device == '*' else device}-{stamp}.pdu.log"
        self._trace = VtiTrace(path, f"TWP PDU trace of A5000 VTI-XML link {self.name} ({self.address})", device, self.config.trace_max_bytes)
        return path

    def trace_stop(self) -> Path | None:
        trace, self._trace = self._trace, None
        if trace is None:
            return None
        trace.close()
        return trace.path

    # -- operations ------------------------------------------------------------------
    def _client(self, operation: str) -> VtiClient:
        client = self.client
        if client is None or not client.connected:
            raise CstaLinkError(f"{operation}: VTI-XML link {self.name} to {self.address} is down ({self.last_error or 'connecting'})")
        return client

    async def monitor(self, device: str) -> None:
        answer = await self._client("monitor").request("Monitor", device=device)
        self.locations[device] = (answer.get("site"), answer.get("cluster"))

    async def stop_monitor(self, device: str) -> None:
        self.locations.pop(device, None)
        if self.client is None or not self.client.connected:
            return
        with contextlib.suppress(VtiError):
            await self.client.request("StopMonitor", device=device)

    async def snapshot(self, device: str) -> list[CallSnapshot]:
        answer = await self._client("snapshot").request("Snapshot", device=device)
        out = []
        for call in answer.items:
            state, call_id = call.get("state"), call.get("callId")
            if call_id and state in STATES and state != "cleared":
                out.append(CallSnapshot(call_id, state, call.get("other")))
        return out

    async def make_call(self, device: str, number: str) -> str:
        answer = await self._client("make_call").request("MakeCall", device=device, number=number)
        call_id = answer.get("callId")
        if not call_id:
            raise CstaLinkError(f"make_call {device} → {number}: the A5000's answer carries no callId")
        return call_id

    async def answer(self, device: str, call_id: str) -> None:
        await self._client("answer").request("Answer", device=device, callId=call_id)

    async def hang_up(self, device: str, call_id: str) -> None:
        await self._client("hang_up").request("HangUp", device=device, callId=call_id)

    async def hold(self, device: str, call_id: str) -> None:
        await self._client("hold").request("Hold", device=device, callId=call_id)

    async def retrieve(self, device: str, call_id: str) -> None:
        await self._client("retrieve").request("Retrieve", device=device, callId=call_id)

    def _csta_link(self) -> PbxDriver:
        wanted = self.config.csta_link
        found = self.context.instance(Kind.PBX_DRIVER, wanted) if wanted else None
        if not isinstance(found, A5000Driver) or found.csta is None:
            raise CstaLinkError(f"forwarding of link {self.name} goes through the domain's CSTA link (guide 4.1), but csta_link = {wanted!r} "
                                "names no a5000 link with protocol = \"csta\"; fix csta_link in pbx.links." + self.name)
        return found

    async def set_forwarding(self, device: str, forward_type: str, number: str | None) -> None:
        await self._csta_link().set_forwarding(device, forward_type, number)

    async def subscribers(self) -> list[dict[str, Any]]:
        """The subscriber list (guide 7.2 "A5000 INT"): number, name, first and last name (split at the first space), site."""
        answer = await self._client("subscribers").request("Subscribers")
        out = []
        for sub in answer.items:
            name = (sub.get("name") or "").strip()
            first, _, last = name.partition(" ")
            out.append({"number": sub.get("number") or "", "name": name, "first_name": first if last else "", "last_name": last or first,
                        "site": sub.get("site")})
        return out


def events_from_vtixml(msg: VtiMessage) -> list[PbxEvent]:
    """The kernel events one VTI-XML ``Event`` means for its device."""
    etype, device = msg.get("type") or "", msg.get("device") or ""
    if etype == "messageWaiting":
        if (msg.get("on") or "true") != "true":
            return []
        count = msg.get("count")
        return [PbxEvent("message_waiting", device, calling=msg.get("calling"), messages=int(count) if count and count.isdigit() else None)]
    if etype == "forwarding":
        ftype = msg.get("forwardType") or "immediate"
        on = msg.get("on") == "true"
        return [PbxEvent("forwarding", device, forwarding={"type": ftype, "number": msg.get("forwardTo") if on else None, "on": on})]
    if etype == "dnd":
        return [PbxEvent("do_not_disturb", device, dnd=msg.get("on") == "true")]
    kind = KERNEL_EVENT.get(etype)
    if kind is None:
        return []
    if kind == "monitor_lost":
        return [PbxEvent("monitor_lost", device, cause=msg.get("cause") or "monitorEnded")]
    state = msg.get("state")
    olds = tuple((msg.get("oldCallIds") or "").split())
    return [PbxEvent(kind, device, msg.get("callId"), state if state in STATES else None, msg.get("calling"), msg.get("called"),
                     msg.get("other"), msg.get("cause"), olds)]

