"""The CSTA PBX driver base: ``CstaLinkConfig``, the options of every CSTA link; ``CstaDriver``, the link logic
whatever the encoding; ``CstaXmlDriver``, which every CSTA XML driver subclasses (the BER one is
``twp_csta.driver_ber.CstaBerDriver``).

``CstaDriver`` runs one ``[pbx.links.<name>]`` link on the toolkit's framing, codec and session; its
subclass chooses them (``make_framing``, ``make_codec``) and the steps that open the link
(``associate``: raw handshake, ACSE; ``start_session``: ECMA-354):

- ``setup()`` opens the TCP connection, runs the association step, starts the session (XML:
  ECMA-354, when ``use_session``), then reports ``link_up()``; a PBX that cannot be reached raises
  ``NotReady`` (the kernel retries, after the driver's own backoff), refused
  credentials raise ``AuthFailed``;
- a connection manager notices a lost link (socket closed, unanswered heartbeats,
  session ended), reports ``link_down(reason)``, reconnects with exponential backoff
  and jitter between ``reconnect_min`` and ``reconnect_max``, restarts the session and
  reports ``link_up()``: the kernel then re-monitors every device and reconciles its
  calls with snapshots;
- every ECMA-323 event is routed by its ``monitorCrossRefID`` to the monitored device
  and turned into ``PbxEvent`` values (``events_from_csta``); events that arrive before
  the answer to their ``MonitorStart`` has been read are held and replayed;
- every ``PbxDriver`` operation is one CSTA request built with the codec's builders; a
  refusal raises ``CstaError`` (its ``http_status`` becomes the API's status), silence
  ``CstaTimeout`` (504), a down link ``CstaLinkError`` (503);
- malformed frames are logged, counted (``link_stats()``) and skipped by the client;
  warnings about what the PBX sends go through one ``RepeatLimiter`` per link (a few
  lines, then a summary), so a hostile PBX cannot flood the log; the kernel bounds
  calls per device and identifier lengths for every driver;
- ``trace_start(device or "*")`` / ``trace_stop()`` write readable PDU traces under
  ``trace_dir`` (guide 10.6), with passwords masked.

A vendor driver is a subclass that sets ``type_name``, its ``Config`` (a subclass of
``CstaXmlConfig`` with the vendor's defaults), ``capabilities`` and, where the switch
differs from the standard, overrides ``session_info()``, ``events_from_csta()`` or an
operation.  ``docs/telephony.md`` describes the options.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import attrs

from twp_csta.errors import APPLICATION_SESSION_CATEGORY, CodecError, CstaBaseError, CstaError, CstaLinkError
from twp_csta.framing import FRAMINGS, Framing
from twp_csta.link import ReconnectingLink
from twp_csta.session import CstaClient, MessageCodec
from twp_csta.xml import codec
from twp_csta.xml.codec import Codec, Connection, Message, MessageKind, as_list, device_text
from twpcore.plugin_api import (
    AuthFailed,
    CallSnapshot,
    Duration,
    NotReady,
    PbxDriver,
    PbxEvent,
    RepeatLimiter,
    Secret,
    ServerSide,
    setting,
)

log = logging.getLogger(__name__)

#: CSTA local connection states → the kernel's connection states.
LOCAL_STATES: dict[str, str] = {
    "null": "cleared", "initiated": "initiated", "alerting": "alerting", "connected": "connected",
    "hold": "held", "queued": "queued", "fail": "failed",
}
#: The kernel's forwarding types → ECMA-269 forwarding types.
CSTA_FORWARDING: dict[str, str] = {"immediate": "forwardImmediate", "busy": "forwardBusy", "no_answer": "forwardNoAns"}
#: ECMA-269 forwarding types → the kernel's (internal/external variants fold into the main type).
FORWARDING_OF: dict[str, str] = {
    "forwardImmediate": "immediate", "forwardImmInt": "immediate", "forwardImmExt": "immediate",
    "forwardBusy": "busy", "forwardBusyInt": "busy", "forwardBusyExt": "busy",
    "forwardNoAns": "no_answer", "forwardNoAnsInt": "no_answer", "forwardNoAnsExt": "no_answer",
}
#: Everything this base implements; subclasses declare the subset their PBX supports.
CSTA_CAPABILITIES = frozenset({
    "monitor", "snapshot", "make_call", "answer", "hang_up", "hold", "retrieve", "consultation_call", "alternate",
    "reconnect", "transfer", "single_step_transfer", "conference", "deflect", "dtmf", "forwarding", "do_not_disturb",
})
#: What the XML base adds (plugin API 1.2): ECMA-269 Directed Pickup Call and Message Waiting events. The BER base
#: does not: the project's ECMA-285 modules (``twp_csta.ber.modules``) have neither the operation nor the event.
CSTA_XML_CAPABILITIES = CSTA_CAPABILITIES | {"directed_pickup", "message_waiting"}
_ORPHANS_PER_MONITOR = 50
_ORPHAN_MONITORS = 500
_PASSWORD_RE = re.compile(rb"(<(?:[\w.-]+:)?password\b[^>]*>)(.*?)(</(?:[\w.-]+:)?password\s*>)", re.S | re.I)


@attrs.frozen(kw_only=True)
class CstaLinkConfig:
    """Options of a ``[pbx.links.<name>]`` table that every CSTA link has, whatever its encoding (XML today, BER next)."""

    host: str = setting(help="address (name or IP) of the PBX's CSTA interface")
    port: int = setting(8882, min=1, max=65535, help="TCP port of the CSTA interface")
    heartbeat_interval: Duration = setting(Duration(30), min=0, max=3600, help="send SystemStatus every so often; 0 disables")
    heartbeat_max_missed: int = setting(2, min=1, max=100, help="unanswered heartbeats after which the link is declared dead")
    request_timeout: Duration = setting(Duration(10), min=0.01, max=600, help="how long a request may wait for the PBX's answer")
    connect_timeout: Duration = setting(Duration(10), min=0.01, max=600, help="how long opening the TCP connection may take")
    capacity: int = setting(500, min=0, max=1_000_000, help="maximum devices this link supervises (guide 4.1)")
    sites: list[str] = setting(factory=list, help='sites whose devices this link supervises first, e.g. ["1.*", "2.1"] (guide 4.1)')
    reconnect_min: Duration = setting(Duration(1), min=0.01, max=3600, help="first wait before reconnecting a lost link")
    reconnect_max: Duration = setting(Duration(60), min=0.01, max=3600, help="longest wait between reconnection attempts")
    username: str | None = setting(None, help="user the PBX wants at log-in (CSTA XML: userID of the session's applicationSpecificInfo)")
    password: Secret | None = setting(None, help='password sent with username; write it { env = "VAR" }')
    max_frame_size: int = setting(0, min=0, max=16 * 1024 * 1024, help="largest frame accepted in bytes; 0: the framing's default")
    trace_dir: str = setting("var/traces", help="directory of PDU trace files (guide 10.6)", server_side=ServerSide("a directory on the server"))
    trace_max_bytes: int = setting(50_000_000, min=1000, help="a trace stops by itself after writing so many bytes")

    def __attrs_post_init__(self) -> None:
        if self.reconnect_min > self.reconnect_max:
            raise ValueError(f"reconnect_min ({self.reconnect_min:g} s) must not exceed reconnect_max ({self.reconnect_max:g} s)")
        if self.password is not None and not self.username:
            raise ValueError("password is set without username; add username = \"...\" or remove password")
        if not self.host.strip():
            raise ValueError('host: expected the PBX address, got ""')


@attrs.frozen(kw_only=True)
class CstaXmlConfig(CstaLinkConfig):
    """Options of a ``[pbx.links.<name>]`` table served by a CSTA XML driver: the link's, plus XML's framing, edition and session."""

    framing: Literal["j2", "nul"] = setting("j2", help='"j2": ECMA-323 annex J.2 8-byte header; "nul": NUL-terminated XML')
    edition: Literal[3, 4, 5] = setting(4, help="ECMA-323 edition written (every edition is read)")
    application_id: str = setting("TWP", help="applicationID sent in StartApplicationSession")
    use_session: bool = setting(True, help="start an ECMA-354 application session after connecting")
    session_duration: Duration = setting(Duration(180), min=1, max=86400, help="session duration requested; kept alive at half of it")


def events_from_csta(message: Message, device: str) -> list[PbxEvent]:
    """The normalized events an ECMA-323 event means for the monitored ``device``.

    Events about other parties that change nothing at ``device`` (another party leaving
    a conference, a call diverted away from the far end) give an empty list.
    """
    name = message.name
    local = LOCAL_STATES.get(message.local_connection_info or "")
    calling, called, cause = message.calling_device, message.called_device, message.cause

    def conn(field: str) -> Connection | None:
        return message.connection_field(field)

    if name in ("OriginatedEvent", "ServiceInitiatedEvent"):
        c = conn("originatedConnection") or conn("initiatedConnection") or message.connection
        if c is None or (c.device_id and c.device_id != device):
            return []
        return [PbxEvent("originated", device, c.call_id, "initiated", calling or device, called, None, cause)]
    if name == "DeliveredEvent":
        c = conn("connection")
        if c is None:
            return []
        alerting = message.alerting_device or c.device_id
        state = "alerting" if alerting == device else None
        return [PbxEvent("delivered", device, c.call_id, state, calling, called, alerting, cause)]
    if name == "EstablishedEvent":
        c = conn("establishedConnection")
        if c is None:
            return []
        answering = message.answering_device or c.device_id
        state = local if local in ("connected", "held") else "connected"
        return [PbxEvent("established", device, c.call_id, state, calling, called, answering, cause)]
    if name == "HeldEvent":
        c = conn("heldConnection")
        if c is None:
            return []
        holding = message.device_field("holdingDevice") or c.device_id
        state = local if local in ("held", "connected") else ("held" if holding == device else "connected")
        return [PbxEvent("held", device, c.call_id, state, other=holding, cause=cause)]
    if name == "RetrievedEvent":
        c = conn("retrievedConnection")
        if c is None:
            return []
        return [PbxEvent("retrieved", device, c.call_id, "connected", other=message.device_field("retrievingDevice") or c.device_id, cause=cause)]
    if name == "ConnectionClearedEvent":
        c = conn("droppedConnection")
        if c is None or not (c.device_id == device or local == "cleared"):
            return []
        return [PbxEvent("cleared", device, c.call_id, "cleared", other=message.releasing_device or c.device_id, cause=cause)]
    if name == "FailedEvent":
        c = conn("failedConnection")
        if c is None:
            return []
        failing = message.device_field("failingDevice") or c.device_id
        if failing == device and local not in ("alerting", "connected", "held", "failed", "initiated"):
            return []  # a call that never reached this device: nothing to show, no ghost to clear
        return [PbxEvent("failed", device, c.call_id, "failed", calling, called, failing, cause)]
    if name == "DivertedEvent":
        c = conn("connection")
        if c is None:
            return []
        diverting = message.device_field("divertingDevice") or c.device_id
        if diverting != device:
            return []  # the delivery to the new destination follows; the caller's call goes on
        return [PbxEvent("diverted", device, c.call_id, None, calling, called, message.device_field("newDestination"), cause)]
    if name == "QueuedEvent":
        c = conn("queuedConnection")
        if c is None:
            return []
        return [PbxEvent("queued", device, c.call_id, "queued" if c.device_id == device else None, calling, called,
                         message.device_field("queue") or c.device_id, cause)]
    if name in ("TransferedEvent", "TransferredEvent"):
        return _merged("transferred", message, device, local, message.device_field("transferringDevice"),
                       message.device_field("transferredToDevice"))
    if name == "ConferencedEvent":
        return _merged("conferenced", message, device, local, message.device_field("conferencingDevice"),
                       message.device_field("addedParty"))
    if name == "ForwardingEvent":
        ftype = FORWARDING_OF.get(message.text("forwardingType") or "")
        if ftype is None:
            return []
        on = (message.text("forwardStatus") or "").lower() == "true"
        number = message.device_field("forwardTo") or message.device_field("forwardDN")
        return [PbxEvent("forwarding", device, forwarding={"type": ftype, "number": number if on else None, "on": on})]
    if name == "DoNotDisturbEvent":
        return [PbxEvent("do_not_disturb", device, dnd=(message.text("doNotDisturbOn") or "").lower() == "true")]
    if name == "MonitorEndedEvent":
        return [PbxEvent("monitor_lost", device, cause=cause or "monitorEnded")]
    if name == "MessageWaitingEvent":
        # ECMA-269 Message Waiting: a lamp state (messageWaitingOn), no message count; deviceForMessage is optional.
        on = (message.text("messageWaitingOn") or "").lower() == "true"
        return [PbxEvent("message_waiting", device, calling=message.device_field("deviceForMessage"), messages=None if on else 0)]
    return []


def _merged(kind: str, message: Message, device: str, local: str | None, actor: str | None, target: str | None) -> list[PbxEvent]:
    """Transfer and conference: old calls of ``device`` end or become the new call."""
    primary, secondary = message.connection_field("primaryOldCall"), message.connection_field("secondaryOldCall")
    items = message.connection_list()
    cause = message.cause or ("transfer" if kind == "transferred" else "conference")
    mine = [i for i in items if i.endpoint == device or (i.new_connection is not None and i.new_connection.device_id == device)]
    if actor == device:
        olds = tuple(c.call_id for c in (primary, secondary) if c is not None)
        new = mine[0].new_connection.call_id if mine and mine[0].new_connection else next(
            (i.new_connection.call_id for i in items if i.new_connection), olds[0] if olds else None)
        if new is None:
            return []
        if kind == "transferred" or local == "cleared":
            return [PbxEvent(kind, device, new, "cleared", other=target, cause=cause, old_call_ids=olds)]
        return [PbxEvent(kind, device, new, local or "connected", other=target, cause=cause, old_call_ids=olds)]
    item = mine[0] if mine else None
    if item is None or item.new_connection is None:
        return []
    old = (item.old_connection.call_id,) if item.old_connection else ()
    others = [i.endpoint or (i.new_connection.device_id if i.new_connection else None) for i in items if i is not item]
    other = next((o for o in others if o and o != device and o != actor), target if target != device else None)
    state = local if local not in (None, "cleared") else "connected"
    return [PbxEvent(kind, device, item.new_connection.call_id, state, other=other, cause=cause, old_call_ids=old)]


class PduTrace:
    """A PDU trace file (guide 10.6): every PDU of the link, or those naming one device."""

    def __init__(self, path: Path, header: str, device: str, max_bytes: int, xref_of: Any,
                 render: Callable[[bytes], str] | None = None):
        self.path = path
        self.device = device
        self.max_bytes = max_bytes
        self.written = 0
        self.pdus = 0
        self.started = time.time()
        self._xref_of = xref_of
        self._render = render
        """Turns a binary payload (BER) into text; None for XML, written as is with passwords masked."""
        if device == "*":
            self._pattern: re.Pattern[bytes] | None = None
        elif render is None:
            self._pattern = re.compile(rb">\s*" + re.escape(device.encode()) + rb"\s*<")
        else:  # BER: the number as the content of a string, not inside a longer number
            self._pattern = re.compile(rb"(?<![0-9])" + re.escape(device.encode()) + rb"(?![0-9])")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8", buffering=1)
        self._write(f"# {header}\n# device {device}, started {dt.datetime.now().isoformat(timespec='seconds')}\n")

    def matches(self, payload: bytes) -> bool:
        if self._pattern is None:
            return True
        if self._pattern.search(payload):
            return True
        xref = self._xref_of(self.device)
        if not xref:
            return False
        if self._render is not None:
            return xref.encode() in payload
        return f"<monitorCrossRefID>{xref}</monitorCrossRefID>".encode() in payload

    def record(self, direction: str, invoke_id: int | None, payload: bytes) -> bool:
        """Write one PDU if it concerns the traced device; False once the size limit is reached."""
        if not self.matches(payload):
            return True
        if self._render is not None:
            text = self._render(payload)
        else:
            text = _PASSWORD_RE.sub(rb"\1***\3", payload).decode("utf-8", "replace")
        arrow = "PBX <- TWP" if direction == "out" else "PBX -> TWP"
        invoke = f" invoke {invoke_id:04d}" if invoke_id is not None else ""
        self._write(f"{dt.datetime.now().isoformat(timespec='milliseconds')} {arrow}{invoke}\n{text}\n\n")
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


class CstaDriver(ReconnectingLink[CstaClient], PbxDriver):
    """Base of every CSTA driver, whatever the encoding; see the module docstring.

    An encoding is four hooks: ``make_codec`` and ``make_framing`` (what goes on the
    wire), ``associate`` (run on the raw link before the client starts: the OmniPCX
    Office ``B``/``P`` exchange, ACSE AARQ/AARE) and ``start_session`` (after it
    starts: ECMA-354 for XML).  ``CstaXmlDriver`` and ``twp_csta.driver_ber.CstaBerDriver``
    fill them in.
    """

    type_name = "csta"
    Config = CstaLinkConfig
    capabilities = CSTA_CAPABILITIES
    description = "CSTA over TCP"

    def __init__(self, config: CstaLinkConfig, context: Any):
        super().__init__(config, context)
        self.config: Any = config
        self.capacity = config.capacity
        self.sites = tuple(config.sites)
        self.log = getattr(context, "logger", None) or log
        self.repeats = RepeatLimiter(self.log)
        """Rate limit of warnings about what the PBX sends; shared by the link's successive clients."""
        self.init_link()  # the client, reconnection with backoff, link counters (twp_csta.link)
        self.session_id: str | None = None
        self.orphans_dropped = 0
        self.events_unrouted = 0
        self.mapping_errors = 0
        self.trace: PduTrace | None = None
        self._setup_failures = 0
        self._xref_device: dict[str, str] = {}
        self._device_xref: dict[str, str] = {}
        self._orphans: dict[str, list[Message]] = {}
        self._snapshot_call = True

    # -- the encoding's hooks -----------------------------------------------------------
    def make_codec(self) -> MessageCodec:
        """The codec of a new connection."""
        raise NotImplementedError

    def make_framing(self) -> Framing:
        """The framing of a new connection."""
        raise NotImplementedError

    async def associate(self, client: CstaClient) -> None:
        """Run before the client starts reading (raw ``client.handshake``, framed ``client.exchange``); nothing by default."""

    async def start_session(self, client: CstaClient) -> None:
        """Run once the client reads (an application session); nothing by default."""

    async def end_session(self, client: CstaClient) -> None:
        """Run before an orderly close; nothing by default."""

    def describe_wire(self, client: CstaClient) -> str:
        """A few words on what the link speaks, for the log line of a new connection."""
        return f"{client.framing.name} framing"

    def render_pdu(self) -> Callable[[bytes], str] | None:
        """How PDU traces write a payload: None for text payloads (XML)."""
        return None

    # -- what vendor subclasses may override -----------------------------------------
    def events_from_csta(self, message: Message, device: str) -> list[PbxEvent]:
        """Normalized events of one CSTA event for ``device`` (override for vendor quirks)."""
        return events_from_csta(message, device)

    # -- lifecycle (the reconnect loop, ``address`` and ``backoff``: twp_csta.link.ReconnectingLink) ----------
    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.connected

    async def setup(self) -> None:
        self._begin_setup()
        try:
            client = await self._open()
        except AssociationRefused as exc:
            self._setup_failures += 1
            self.last_error = exc.message
            if exc.auth:
                raise AuthFailed(f"{self.address}: {exc.message}; check username and password of the link") from None
            raise NotReady(f"{self.address}: {exc.message}", retry_after=self.backoff(self._setup_failures - 1, jitter=False)) from None
        except CstaError as exc:
            self._setup_failures += 1
            self.last_error = exc.message
            if exc.category == APPLICATION_SESSION_CATEGORY and self.config.username:
                raise AuthFailed(f"{self.address}: the PBX refused the application session of user {self.config.username!r}: {exc.message}; "
                                 "check username and password of the link") from None
            raise NotReady(f"{self.address}: {exc.message}", retry_after=self.backoff(self._setup_failures - 1, jitter=False)) from None
        except (CstaBaseError, OSError) as exc:
            self._setup_failures += 1
            self.last_error = getattr(exc, "message", None) or str(exc)
            reason = self.last_error if self.last_error.startswith(self.address) else f"{self.address}: {self.last_error}"
            raise NotReady(reason, retry_after=self.backoff(self._setup_failures - 1, jitter=False)) from None
        self._setup_failures = 0
        self._attach(client)
        self._start_manager(f"csta-link-{self.name}")
        self.log.info("CSTA link %s connected to %s (%s%s)", self.name, self.address, self.describe_wire(client),
                      f", session {self.session_id}" if self.session_id else "")
        self.link_up()

    async def _open(self) -> CstaClient:
        cfg = self.config
        self._generation += 1
        gen = self._generation
        client = await CstaClient.connect(
            cfg.host, cfg.port, framing=self.make_framing(), codec=self.make_codec(), name=self.name,
            connect_timeout=float(cfg.connect_timeout), prelude=self.associate,
            on_event=functools.partial(self._on_message, gen),
            on_link_lost=functools.partial(self._on_link_lost, gen),
            on_pdu=functools.partial(self._on_pdu, gen),
            request_timeout=float(cfg.request_timeout),
            heartbeat_interval=float(cfg.heartbeat_interval) or None,
            heartbeat_max_missed=cfg.heartbeat_max_missed,
            repeats=self.repeats,
        )
        self.session_id = None
        try:
            await self.start_session(client)
        except BaseException:
            await client.close()
            raise
        return client


    def _attach(self, client: CstaClient) -> None:
        self.client = client
        self._lost.clear()
        self._xref_device.clear()
        self._device_xref.clear()
        self._orphans.clear()
        self.last_error = None

    async def close(self) -> None:
        await self._stop_manager()
        client, self.client = self.client, None
        if client is not None:
            if client.connected:
                with contextlib.suppress(Exception):
                    await self.end_session(client)
            self._remember(client)
            await client.close()
        self.trace_stop()
        self.repeats.flush()

    def link_stats(self) -> dict[str, Any]:
        """Counters of the link (frames, malformed frames skipped, reconnections ...) for ``GET /api/v1/links``."""
        stats = self._counters()
        stats.update(reconnects=self.reconnects, orphans_dropped=self.orphans_dropped, events_unrouted=self.events_unrouted,
                     mapping_errors=self.mapping_errors, monitors=len(self._xref_device), session=self.session_id,
                     last_error=self.last_error, trace=self.trace.as_json() if self.trace else None)
        return stats

    # -- incoming --------------------------------------------------------------------
    def _on_message(self, gen: int, message: Message) -> None:
        if gen != self._generation:
            return
        if message.kind is MessageKind.REQUEST:
            if message.name == "SystemStatus" and message.system_status not in (None, "normal", "enabled"):
                self.repeats.log(logging.WARNING, f"{self.name}: system status", "%s: the PBX reports system status %.64s",
                                 self.name, message.system_status)
            elif message.name == "StopApplicationSession" and self.session_id is not None:
                # The session's monitors are gone with it: start afresh, as after a lost link.
                self._lost_reason = "the PBX stopped the application session"
                self._lost.set()
            return
        if message.kind is not MessageKind.EVENT:
            return
        xref = message.monitor_cross_ref_id
        if xref is None:
            self.events_unrouted += 1
            self.repeats.log(logging.WARNING, f"{self.name}: unrouted events", "%s: %s without monitorCrossRefID skipped",
                             self.name, message.name)
            return
        device = self._xref_device.get(xref)
        if device is None:
            # The event may have overtaken our reading of the MonitorStart answer: hold it a while.
            held = self._orphans.get(xref)
            if held is None:
                if len(self._orphans) >= _ORPHAN_MONITORS:
                    self.orphans_dropped += len(self._orphans.pop(next(iter(self._orphans))))
                held = self._orphans[xref] = []
            if len(held) >= _ORPHANS_PER_MONITOR:
                self.orphans_dropped += 1
                self.repeats.log(logging.WARNING, f"{self.name}: orphan events", "%s: events for monitorCrossRefID %.32r, which no monitor "
                                 "of this link has, dropped", self.name, xref)
                return
            held.append(message)
            return
        self._dispatch(device, message)

    def _dispatch(self, device: str, message: Message) -> None:
        try:
            events = self.events_from_csta(message, device)
        except Exception:  # noqa: BLE001 - an odd event must not stop the link
            self.mapping_errors += 1
            self.repeats.log(logging.ERROR, f"{self.name}: mapping errors", "%s: cannot map %s for device %s", self.name, message.name, device,
                             exc_info=True)
            return
        if message.name == "MonitorEndedEvent":
            xref = self._device_xref.pop(device, None)
            if xref:
                self._xref_device.pop(xref, None)
        for event in events:
            self.emit(event)

    def _on_pdu(self, gen: int, direction: str, invoke_id: int | None, payload: bytes) -> None:
        trace = self.trace
        if trace is not None and not trace.record(direction, invoke_id, payload):
            self.log.warning("%s: PDU trace %s reached %d bytes; stopped", self.name, trace.path, trace.max_bytes)
            self.trace_stop()

    # -- traces (guide 10.6) ---------------------------------------------------------
    def trace_start(self, device: str = "*") -> Path:
        """Start a PDU trace of one device number (or ``*``); returns the file written."""
        device = device.strip() or "*"
        if device != "*" and not re.fullmatch(r"[0-9A-Za-z*#+]{1,64}", device):
            raise ValueError(f"trace device: expected a device number or *, got {device!r}")
        self.trace_stop()
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        safe = "all" if device == "*" else device
        path = Path(self.config.trace_dir) / f"{self.name}-{safe}-{stamp}.pdu.log"
        header = f"TWP PDU trace of PBX link {self.name} ({self.type_name}, {self.address})"
        self.trace = PduTrace(path, header, device, self.config.trace_max_bytes, self._device_xref.get, self.render_pdu())
        self.log.info("%s: PDU trace of %s started in %s", self.name, device, path)
        return path

    def trace_stop(self) -> Path | None:
        """Stop the PDU trace, if one runs; returns its file."""
        trace, self.trace = self.trace, None
        if trace is None:
            return None
        trace.close()
        self.log.info("%s: PDU trace stopped (%d PDUs in %s)", self.name, trace.pdus, trace.path)
        return trace.path

    # -- operations ------------------------------------------------------------------
    def _client(self, operation: str) -> CstaClient:
        client = self.client
        if client is None or not client.connected:
            raise CstaLinkError(f"{operation}: PBX link {self.name} to {self.address} is down ({self.last_error or 'connecting'})")
        return client

    async def _request(self, operation: str, message: Message) -> Message:
        return await self._client(operation).request(message)

    async def monitor(self, device: str) -> None:
        client = self._client("monitor")
        response = await client.request(codec.monitor_start(device))
        xref = response.monitor_cross_ref_id
        if not xref:
            raise CodecError(f"MonitorStartResponse for device {device} carries no monitorCrossRefID")
        old = self._device_xref.get(device)
        if old and old != xref:
            self._xref_device.pop(old, None)
            with contextlib.suppress(CstaBaseError):
                await client.request(codec.monitor_stop(old))
        self._xref_device[xref] = device
        self._device_xref[device] = xref
        for message in self._orphans.pop(xref, []):
            self._dispatch(device, message)

    async def stop_monitor(self, device: str) -> None:
        xref = self._device_xref.pop(device, None)
        if xref is None:
            return
        self._xref_device.pop(xref, None)
        if self.client is None or not self.client.connected:
            return
        try:
            await self.client.request(codec.monitor_stop(xref))
        except CstaError as exc:
            self.log.debug("%s: MonitorStop of %s: %s", self.name, device, exc.message)

    async def snapshot(self, device: str) -> list[CallSnapshot]:
        client = self._client("snapshot")
        response = await client.request(codec.snapshot_device(device))
        out = []
        for item in response.snapshot_items():
            state = LOCAL_STATES.get(item.local_connection_state or "")
            if state is None or state == "cleared":
                continue
            parties = await self._parties(client, item.connection.call_id, device)
            other = next((d for d in parties if d != device), None)
            if state == "connected" and parties and all(s == "alerting" for d, s in parties.items() if d != device):
                state = "initiated"  # our outgoing call still rings at the far end
            out.append(CallSnapshot(item.connection.call_id, state, other))
        return out

    async def _parties(self, client: CstaClient, call_id: str, device: str) -> dict[str, str]:
        """Devices of a call with their local states (``SnapshotCall``), or {} if the PBX will not say."""
        if not self._snapshot_call:
            return {}
        try:
            response = await client.request(codec.snapshot_call(Connection(call_id, device)))
        except CstaError as exc:
            if exc.http_status == 501:
                self._snapshot_call = False
            return {}
        data = response.get("crossRefIDorSnapshotData/snapshotData")
        parties: dict[str, str] = {}
        if isinstance(data, dict):
            for info in as_list(data.get("snapshotCallResponseInfo")):
                if isinstance(info, dict):
                    number = device_text(info.get("deviceOnCall")) or device_text(info.get("callIdentifier"))
                    state = info.get("localConnectionState")
                    if number:
                        parties[number] = state if isinstance(state, str) else ""
        return parties

    async def make_call(self, device: str, number: str) -> str:
        response = await self._request("make_call", codec.make_call(device, number))
        if response.call_id is None:
            raise CodecError(f"MakeCallResponse for {device} → {number} carries no call id")
        return response.call_id

    async def answer(self, device: str, call_id: str) -> None:
        await self._request("answer", codec.answer_call(Connection(call_id, device)))

    async def hang_up(self, device: str, call_id: str) -> None:
        await self._request("hang_up", codec.clear_connection(Connection(call_id, device)))

    async def hold(self, device: str, call_id: str) -> None:
        await self._request("hold", codec.hold_call(Connection(call_id, device)))

    async def retrieve(self, device: str, call_id: str) -> None:
        await self._request("retrieve", codec.retrieve_call(Connection(call_id, device)))

    async def consultation_call(self, device: str, call_id: str, number: str) -> str:
        response = await self._request("consultation_call", codec.consultation_call(Connection(call_id, device), number))
        if response.call_id is None:
            raise CodecError(f"ConsultationCallResponse for {device} → {number} carries no call id")
        return response.call_id

    async def alternate(self, device: str, held_call_id: str, active_call_id: str) -> None:
        await self._request("alternate", codec.alternate_call(Connection(held_call_id, device), Connection(active_call_id, device)))

    async def reconnect(self, device: str, held_call_id: str, active_call_id: str) -> None:
        await self._request("reconnect", codec.reconnect_call(Connection(active_call_id, device), Connection(held_call_id, device)))

    async def transfer(self, device: str, held_call_id: str, active_call_id: str) -> None:
        await self._request("transfer", codec.transfer_call(Connection(held_call_id, device), Connection(active_call_id, device)))

    async def single_step_transfer(self, device: str, call_id: str, number: str) -> None:
        await self._request("single_step_transfer", codec.single_step_transfer_call(Connection(call_id, device), number))

    async def conference(self, device: str, held_call_id: str, active_call_id: str) -> None:
        await self._request("conference", codec.conference_call(Connection(held_call_id, device), Connection(active_call_id, device)))

    async def deflect(self, device: str, call_id: str, number: str) -> None:
        await self._request("deflect", codec.deflect_call(Connection(call_id, device), number))

    async def directed_pickup(self, device: str, call_id: str, requesting_device: str) -> str | None:
        response = await self._request("directed_pickup", codec.directed_pickup_call(Connection(call_id, device), requesting_device))
        picked = response.connection_field("pickedCall")
        return picked.call_id if picked is not None else None

    async def dtmf(self, device: str, call_id: str, digits: str) -> None:
        await self._request("dtmf", codec.generate_digits(Connection(call_id, device), digits))

    async def set_forwarding(self, device: str, forward_type: str, number: str | None) -> None:
        csta_type = CSTA_FORWARDING.get(forward_type)
        if csta_type is None:
            raise ValueError(f"forwarding type: expected one of {', '.join(CSTA_FORWARDING)}, got {forward_type!r}")
        await self._request("forwarding", codec.set_forwarding(device, csta_type, number is not None, number))

    async def set_do_not_disturb(self, device: str, on: bool) -> None:
        await self._request("do_not_disturb", codec.set_do_not_disturb(device, on))


class AssociationRefused(CstaBaseError):
    """The switch refused the association step (ACSE AARE rejected, unexpected handshake answer)."""

    http_status = 502

    def __init__(self, message: str, *, auth: bool = False) -> None:
        super().__init__(message)
        self.auth = auth
        """True when the refusal is about the log-in (wrong user or password)."""


class CstaXmlDriver(CstaDriver):
    """Base of the CSTA XML drivers: J.2 or NUL framing, ECMA-323 codec, ECMA-354 session."""

    type_name = "csta_xml"
    Config = CstaXmlConfig
    capabilities = CSTA_XML_CAPABILITIES
    description = "CSTA XML (ECMA-323) over TCP"

    def __init__(self, config: CstaXmlConfig, context: Any):
        super().__init__(config, context)
        self.config: CstaXmlConfig = config

    def session_info(self) -> dict[str, Any] | None:
        """``applicationSpecificInfo`` of StartApplicationSession (log-in data), or None."""
        if not self.config.username:
            return None
        info: dict[str, Any] = {"userID": self.config.username}
        if self.config.password is not None:
            info["password"] = self.config.password.reveal()
        return info

    def make_codec(self) -> MessageCodec:
        return Codec(self.config.edition)

    def make_framing(self) -> Framing:
        framing_cls = FRAMINGS[self.config.framing]
        return framing_cls(max_frame_size=self.config.max_frame_size) if self.config.max_frame_size else framing_cls()

    def describe_wire(self, client: CstaClient) -> str:
        return f"{client.framing.name} framing, ed{client.codec.edition}"

    async def start_session(self, client: CstaClient) -> None:
        if not self.config.use_session:
            return
        try:
            session = await client.start_application_session(
                self.config.application_id,
                requested_session_duration=int(self.config.session_duration),
                application_specific_info=self.session_info(),
            )
        except CstaError as exc:
            if exc.category == "operation" and exc.value in ("serviceNotSupported", "requestIncompatibleWithObject", "generic"):
                self.log.warning("%s: the PBX does not offer ECMA-354 sessions (%s); going on without one; set use_session = false to skip asking",
                                 self.name, exc.value)
                return
            raise
        self.session_id = session.session_id

    async def end_session(self, client: CstaClient) -> None:
        if client.session is not None:
            await client.stop_application_session(timeout=1.0)
