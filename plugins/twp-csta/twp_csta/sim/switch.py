"""A PBX simulator speaking CSTA XML or CSTA BER over TCP: the peer of the CSTA drivers in tests and demos.

``PbxSimulator`` is an asyncio TCP server that behaves like a switch's CSTA interface,
built on the toolkit's own framing and codec (``twp_csta``), so what it writes is what
a driver reads from a real PBX.  One call model, two encodings, chosen per simulated
switch (``SimConfig.encoding``):

- **BER wire** (``encoding="ber"``): ECMA-285 in ROSE, framed ``len2`` (MX-One
  Application Link), ``hipath`` (HiPath / OpenScape Business) or ``tlv``; an optional
  association (``association="acse"``: AARQ answered with AARE, checking ``username`` /
  ``password``; ``"oxo"``: the OmniPCX Office ``B``/``P`` exchange, then ACSE), RLRQ
  answered with RLRE.  ``sim/ber.py`` holds that part.
- **XML wire**: J.2 (8-byte header) or NUL-terminated framing, ECMA-323 edition 3, 4 or 5
  (any edition is read), an optional ECMA-354 application session (required or not,
  with optional credentials and a session timer), ``SystemStatus`` sent every
  ``system_status_interval`` and expected to be answered (the link is dropped after
  ``system_status_max_missed`` unanswered), ``SystemStatus`` from the client answered.
- **Devices**: *internal* devices are the numbers listed in ``devices`` (``"201-210"``
  ranges allowed) and any number matching ``internal_pattern``, created when first
  monitored, called or listed; every other number is the *outside world* (external
  parties that ring, answer, are busy or never answer, as the script says).
- **Services**: StartApplicationSession, ResetApplicationSessionTimer,
  StopApplicationSession, MonitorStart/Stop, SnapshotDevice, SnapshotCall, MakeCall,
  AnswerCall, ClearConnection, ClearCall, HoldCall, RetrieveCall, ConsultationCall,
  AlternateCall, ReconnectCall, TransferCall, SingleStepTransferCall, ConferenceCall,
  DeflectCall, DirectedPickupCall, GenerateDigits, SetForwarding/GetForwarding, SetDoNotDisturb/
  GetDoNotDisturb, GetSwitchingFunctionDevices (the ``subscribers`` list, sent in
  SwitchingFunctionDevices segments), SystemStatus.  Unknown devices, calls and monitors are answered
  with ``CSTAErrorCode`` as a switch would.
- **Events** (ECMA-323) go to the monitors of every device involved: Originated,
  Delivered, Established, Held, Retrieved, Transfered, Conferenced, Diverted,
  ConnectionCleared, Failed, Queued, Forwarding, DoNotDisturb and MessageWaiting (``sim.message_waiting``), with the calling,
  called, alerting, answering, last-redirection devices, ``localConnectionInfo`` of
  the monitored device, a cause, and connection lists for transfers and conferences.
- **Telephony behaviour**: forwarding immediate / busy / no answer (after
  ``no_answer_after`` seconds), do-not-disturb, busy internal devices, queues that hand
  calls to their first idle member, failed calls cleared after ``failed_clear_after``.

A test scripts the far ends with ``await sim.incoming_call("0612345678", "201")``,
``sim.answer("201")``, ``sim.hang_up("0612345678")``, ``sim.busy(number)``,
``sim.no_answer(number)``, ``sim.auto_answer(number, after)`` and the ready-made
``sim.scenarios``.  Faults: ``await sim.drop_links()``, ``sim.send_garbage()``,
``sim.send_oversized()``, ``sim.delay`` (slow answers), ``sim.ignore`` (requests never
answered), ``sim.answer_system_status = False``, ``sim.send_heartbeats = False``,
``sim.mute = True`` (a hung switch).

**Vendor quirks** a driver must handle are ``SimConfig`` options: ``framing="nul"``,
``edition``, ``require_session``, a log-in in the application session (``username`` /
``password``), events on another invoke id than 9999 (``event_invoke_id``: a fixed id
such as 0, or ``"counter"``, the switch's running counter), unsupported services
(``unsupported``).  ``tests/test_vendor_quirks.py`` runs the conformance suite against them.

Standalone::

    python -m twp_csta.sim --port 8882 --framing j2 --devices 201-210

The simulator is deliberately simple where real switches differ (one connection per
device and call, new call ids after transfers and conferences); ``docs/telephony.md``
lists its rules.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import random
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Literal

import attrs

from twp_csta.errors import CodecError, FramingError
from twp_csta.framing import EVENT_INVOKE_ID, FRAMINGS, Framing
from twp_csta.framing_ber import BER_FRAMINGS
from twp_csta.sim import ber as sim_ber
from twp_csta.xml.codec import (
    CSTA_NAMESPACES,
    Codec,
    Connection,
    Message,
    MessageKind,
    as_list,
    build,
    csta_error,
    device_text,
    edition_of,
    start_application_session_pos_response,
    system_status,
)

log = logging.getLogger(__name__)

#: CSTA local connection states the simulator uses.
LOCAL_STATES = ("null", "initiated", "alerting", "connected", "hold", "queued", "fail")
_ACTIVE = frozenset({"initiated", "alerting", "connected", "queued"})
ExternalBehaviour = Literal["ring", "answer", "busy"]
FORWARD_CAUSES = {
    "forwardImmediate": "callForwardImmediate",
    "forwardBusy": "callForwardBusy",
    "forwardNoAns": "callForwardNoAnswer",
}


def expand_devices(specs: Iterable[str]) -> list[str]:
    """``["201-203", "300"]`` → ``["201", "202", "203", "300"]`` (ranges keep the width)."""
    out: list[str] = []
    for spec in specs:
        for part in str(spec).split(","):
            part = part.strip()
            if not part:
                continue
            lo, sep, hi = part.partition("-")
            if sep:
                if not (lo.isdigit() and hi.isdigit()) or int(hi) < int(lo):
                    raise ValueError(f"device range {part!r}: expected FIRST-LAST such as 201-210")
                if int(hi) - int(lo) > 100_000:
                    raise ValueError(f"device range {part!r}: more than 100,000 devices")
                out += [str(n).zfill(len(lo)) for n in range(int(lo), int(hi) + 1)]
            else:
                out.append(part)
    return out


@attrs.define
class SimConfig:
    """How the simulated switch behaves; every field has a default fit for tests."""

    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = 0
    """TCP port; 0 picks a free one (``sim.port`` tells which)."""
    encoding: Literal["xml", "ber"] = "xml"
    """CSTA XML (ECMA-323) or CSTA BER (ECMA-285 in ROSE)."""
    framing: Literal["j2", "nul", "len2", "hipath", "tlv"] = "j2"
    """XML: ECMA-323 J.2 header, or NUL-terminated.  BER: ``len2``, ``hipath`` or ``tlv`` (``twp_csta.framing_ber``)."""
    association: Literal["none", "acse", "oxo"] = "none"
    """BER: what must happen before CSTA services: nothing, an ACSE association, or ``B``/``P`` then ACSE (OmniPCX Office)."""
    phase: int = 3
    """BER: CSTA phase of the codec."""
    edition: int = 4
    """ECMA-323 edition written (3, 4 or 5) unless the session grants another one."""
    require_session: bool = False
    """Refuse CSTA services until an ECMA-354 application session is started."""
    session_duration: int = 300
    """Longest session duration granted (seconds); the link is dropped if not reset in time."""
    username: str | None = None
    """When set, ``StartApplicationSession`` must carry this ``userID`` ..."""
    password: str | None = None
    """... and this ``password`` in ``applicationSpecificInfo``."""
    event_invoke_id: int | Literal["counter"] = EVENT_INVOKE_ID
    """Vendor quirk: the invoke id of unsolicited events.  9999 by ECMA-323 annex J.2's convention; some switches use
    another fixed id (0), others ``"counter"``: their own running counter, which may equal the id of a request in flight."""
    system_status_interval: float | None = None
    """Send ``SystemStatus`` every so many seconds (None: never)."""
    system_status_timeout: float | None = None
    """How long an answer may take (default: the interval)."""
    system_status_max_missed: int = 2
    """Unanswered ``SystemStatus`` in a row after which the link is dropped."""
    devices: tuple[str, ...] = ()
    """Internal devices created at start (``"201-210"`` ranges allowed)."""
    internal_pattern: str = r"^[1-9][0-9]{1,5}$"
    """Numbers that are internal devices (auto-created); other numbers are external."""
    external_default: ExternalBehaviour = "ring"
    """What an external party does when called: ring until scripted, answer, or be busy."""
    external_answer_after: float = 0.05
    """Delay before an answering external party picks up."""
    no_answer_after: float = 10.0
    """Seconds a call rings before forwarding on no answer."""
    internal_answer_after: float | None = None
    """Simulated people answer their internal phones after so many seconds (None: only when scripted)."""
    ring_timeout: float | None = None
    """Seconds after which an unanswered call is cleared (None: rings forever)."""
    failed_clear_after: float | None = 2.0
    """Seconds after which a failed call (busy, DND) is cleared (None: never)."""
    max_call_duration: float | None = None
    """External parties hang up after so many seconds of conversation (None: never)."""
    queues: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    """Queue numbers and their members: calls wait there, then ring the first idle member."""
    queue_delay: float = 0.5
    """Seconds a call waits in a queue before it is offered to a member."""
    max_frame_size: int | None = None
    """Largest frame read (framing default when None)."""
    unsupported: frozenset[str] = frozenset()
    """Request names answered with ``serviceNotSupported`` (a switch without the feature)."""
    subscribers: dict[str, str] = attrs.field(factory=dict)
    """The switch's subscriber list, number → display name, listed by ``GetSwitchingFunctionDevices`` (users import, guide 7.2)."""
    subscriber_segment: int = 100
    """Devices per ``SwitchingFunctionDevices`` segment of that list."""


@attrs.define(eq=False)
class SimDevice:
    """A device the switch knows: internal (monitorable) or an external party."""

    number: str
    internal: bool
    forwarding: dict[str, str] = attrs.field(factory=dict)
    """ECMA-269 forwarding type → destination (``forwardImmediate`` → ``"202"``)."""
    dnd: bool = False


@attrs.define(eq=False)
class SimCall:
    """A call: its parties with their CSTA local connection states."""

    id: str
    calling: str
    called: str
    connections: dict[str, str] = attrs.field(factory=dict)
    """Device → local connection state, in the order the parties joined."""
    last_redirection: str | None = None
    conference: bool = False
    kind: str = "newCall"
    """Cause of its first delivery: ``newCall``, ``consultation`` or ``singleStepTransfer``."""
    started: float = attrs.field(factory=time.time)
    timers: dict[tuple[str, str], asyncio.TimerHandle] = attrs.field(factory=dict, repr=False)

    def others(self, device: str) -> list[str]:
        return [d for d in self.connections if d != device]

    def cancel_timers(self, device: str | None = None) -> None:
        for key in [k for k in self.timers if device is None or k[0] == device]:
            self.timers.pop(key).cancel()


class SimFault(Exception):
    """A request the switch refuses: becomes a ``CSTAErrorCode`` answer."""

    def __init__(self, category: str, value: str, detail: str = ""):
        super().__init__(detail or value)
        self.category, self.value = category, value


class SimLink:
    """One client connection to the simulated switch."""

    _ids = itertools.count(1)

    def __init__(self, sim: PbxSimulator, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.sim = sim
        self.id = next(self._ids)
        self.reader = reader
        self.writer = writer
        cfg = sim.config
        framing_cls = {**FRAMINGS, **BER_FRAMINGS}[cfg.framing]
        self.framing: Framing = framing_cls(max_frame_size=cfg.max_frame_size) if cfg.max_frame_size else framing_cls()
        self.codec: Any = sim_ber.make_codec(cfg) if cfg.encoding == "ber" else Codec(cfg.edition)
        self.ids_in_payload = bool(getattr(self.codec, "carries_invoke_id", False))
        self.associated = cfg.encoding != "ber" or cfg.association == "none"
        """False until the ACSE association is accepted (BER switches that want one)."""
        self.monitors: dict[str, str] = {}
        """monitorCrossRefID → device."""
        self.session_id: str | None = None
        self.session_duration: int | None = None
        self.session_timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.peer = writer.get_extra_info("peername")
        self._xref = itertools.count(1)
        self._invoke = itertools.count(1)
        self._status_answered = asyncio.Event()
        self.tasks: set[asyncio.Task] = set()
        self.deferred: list[Message] | None = None

    def __repr__(self) -> str:
        return f"<SimLink {self.id} {self.peer}>"

    def next_xref(self) -> str:
        return f"{self.id}{next(self._xref):04d}"

    def write(self, message: Message, invoke_id: int | None) -> None:
        """Encode and write one message (dropped while the switch is mute or the link closed)."""
        if self.closed or self.sim.mute or self.writer.is_closing():
            return
        if self.ids_in_payload and message.invoke_id != invoke_id:
            message = attrs.evolve(message, invoke_id=invoke_id)
        try:
            data = self.framing.encode(invoke_id, self.codec.encode(message))
        except (CodecError, FramingError) as exc:
            log.error("pbxsim link %s: cannot write %s: %s", self.id, message.name, exc)
            return
        self.writer.write(data)
        self.sim.frames_out += 1

    def event_invoke_id(self) -> int:
        """The invoke id the next unsolicited event carries (``SimConfig.event_invoke_id``)."""
        chosen = self.sim.config.event_invoke_id
        if chosen == EVENT_INVOKE_ID and self.sim.config.encoding == "ber":
            chosen = "counter"  # 9999 is a J.2 header convention; a ROSE switch numbers its invokes
        return next(self._invoke) % 9000 + 1 if chosen == "counter" else chosen

    def send_event(self, message: Message) -> None:
        if self.deferred is not None:
            self.deferred.append(message)
        else:
            self.write(message, self.event_invoke_id())

    def write_raw(self, data: bytes) -> None:
        if not self.closed and not self.writer.is_closing():
            self.writer.write(data)

    def close(self, why: str, *, abort: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        log.info("pbxsim link %s closed: %s", self.id, why)
        if self.session_timer:
            self.session_timer.cancel()
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        with contextlib.suppress(Exception):
            if abort and self.writer.transport is not None:
                self.writer.transport.abort()
            else:
                self.writer.close()
        self.sim._forget_link(self)

    def spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def heartbeat(self) -> None:
        cfg = self.sim.config
        assert cfg.system_status_interval
        interval = cfg.system_status_interval
        timeout = cfg.system_status_timeout or interval
        missed = 0
        while not self.closed:
            await asyncio.sleep(interval)
            if not self.sim.send_heartbeats or self.sim.mute:
                continue
            self._status_answered.clear()
            invoke = next(self._invoke) % 9000 + 1
            self.write(system_status("normal"), invoke)
            try:
                await asyncio.wait_for(self._status_answered.wait(), timeout)
                missed = 0
            except TimeoutError:
                missed += 1
                self.sim.heartbeats_missed += 1
                log.info("pbxsim link %s: SystemStatus unanswered (%d of %d)", self.id, missed, cfg.system_status_max_missed)
                if missed >= cfg.system_status_max_missed:
                    self.close(f"{missed} SystemStatus requests unanswered")
                    return


class PbxSimulator:
    """The simulated switch.  ``await start()``, use, ``await stop()`` (or ``async with``)."""

    def __init__(self, config: SimConfig | None = None, **overrides: Any):
        self.config = attrs.evolve(config or SimConfig(), **overrides)
        framings = BER_FRAMINGS if self.config.encoding == "ber" else FRAMINGS
        if self.config.framing not in framings:
            raise ValueError(f"framing: expected one of {', '.join(framings)} for encoding {self.config.encoding}, got {self.config.framing!r}")
        if self.config.edition not in CSTA_NAMESPACES:
            raise ValueError(f"edition: expected one of {sorted(CSTA_NAMESPACES)}, got {self.config.edition!r}")
        self._internal = re.compile(self.config.internal_pattern)
        self.devices: dict[str, SimDevice] = {}
        self.calls: dict[str, SimCall] = {}
        self.links: list[SimLink] = []
        self._monitors: dict[str, list[tuple[SimLink, str]]] = {}
        self._call_ids = itertools.count(1001)
        self._renamed: dict[str, str] = {}
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.external_behaviour: dict[str, tuple[ExternalBehaviour, float]] = {}
        self.requests: deque[Message] = deque(maxlen=2000)
        """The last requests received, for assertions."""
        self.associations: deque[Any] = deque(maxlen=200)
        """BER: the last ACSE APDUs received (``twp_csta.ber.AcseApdu``), for assertions."""
        self.digits: list[tuple[str, str, str]] = []
        """(call id, device, digits) of every GenerateDigits."""
        self.codec_errors = 0
        self.framing_errors = 0
        self.frames_in = 0
        self.frames_out = 0
        self.heartbeats_missed = 0
        self.connections_accepted = 0
        self.connection_attempts = 0
        # Faults a test switches on and off.
        self.delay = 0.0
        """Seconds every CSTA service request waits before it is processed and answered."""
        self.ignore: set[str] = set()
        """Request names never answered (a switch that swallows them)."""
        self.answer_system_status = True
        """Answer the client's ``SystemStatus``."""
        self.send_heartbeats = True
        """Send our own ``SystemStatus`` (when ``system_status_interval`` is set)."""
        self.mute = False
        """Write nothing at all (a hung switch); incoming requests are still read."""
        self.refuse_connections = False
        """Close new TCP connections at once."""
        self.scenarios = Scenarios(self)
        self.subscribers: dict[str, str] = dict(self.config.subscribers)
        """Number → name of the subscribers the switch lists; tests change it between two imports."""
        for number in expand_devices(self.config.devices):
            self.device(number, internal=True)

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> PbxSimulator:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._serve, self.config.host, self.config.port)
        cfg = self.config
        wire = f"BER phase {cfg.phase}, association {cfg.association}" if cfg.encoding == "ber" else f"CSTA ed{cfg.edition}"
        log.info("pbxsim listening on %s:%s (%s framing, %s)", self.config.host, self.port, self.config.framing, wire)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "start the simulator first"
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for call in list(self.calls.values()):
            call.cancel_timers()
        for link in list(self.links):
            link.close("simulator stopped", abort=True)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def __aenter__(self) -> PbxSimulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connection_attempts += 1
        if self.refuse_connections:
            writer.close()
            return
        link = SimLink(self, reader, writer)
        self.links.append(link)
        self.connections_accepted += 1
        log.info("pbxsim link %s connected from %s", link.id, link.peer)
        try:
            if self.config.encoding == "ber" and self.config.association == "oxo" and not await sim_ber.oxo_handshake(link):
                return
            if self.config.system_status_interval:
                link.spawn(link.heartbeat())
            while not link.closed:
                try:
                    data = await reader.read(65536)
                except (ConnectionError, OSError):
                    break
                if not data:
                    break
                for item in link.framing.feed(data):
                    if isinstance(item, FramingError):
                        self.framing_errors += 1
                        log.warning("pbxsim link %s: %s", link.id, item.message)
                        continue
                    self.frames_in += 1
                    if self.config.encoding == "ber" and sim_ber.is_association_apdu(item.payload):
                        sim_ber.on_association_apdu(self, link, item.payload)
                        continue
                    if not link.associated:
                        log.warning("pbxsim link %s: CSTA APDU before the ACSE association; link aborted", link.id)
                        link.write_raw(sim_ber.abort_apdu(link))
                        link.close("CSTA before the association", abort=False)
                        break
                    try:
                        if item.invoke_id is None:
                            message = link.codec.decode(item.payload)
                        else:
                            message = link.codec.decode(item.payload, invoke_id=item.invoke_id)
                    except CodecError as exc:
                        self.codec_errors += 1
                        log.warning("pbxsim link %s: unreadable frame skipped: %s", link.id, exc.message)
                        continue
                    self._receive(link, message)
        finally:
            link.close("connection closed by the client")

    def _forget_link(self, link: SimLink) -> None:
        if link in self.links:
            self.links.remove(link)
        for device in link.monitors.values():
            entries = self._monitors.get(device, [])
            entries[:] = [(ln, x) for ln, x in entries if ln is not link]
            if not entries:
                self._monitors.pop(device, None)
        link.monitors.clear()

    # -- devices ---------------------------------------------------------------------
    def is_internal(self, number: str) -> bool:
        dev = self.devices.get(number)
        return dev.internal if dev is not None else bool(self._internal.match(number)) or number in self.config.queues

    def device(self, number: str, *, internal: bool | None = None) -> SimDevice:
        """The device of ``number``, created on first use."""
        dev = self.devices.get(number)
        if dev is None:
            dev = SimDevice(number, self.is_internal(number) if internal is None else internal)
            self.devices[number] = dev
        return dev

    def monitored(self, number: str) -> bool:
        """Is the device monitored by at least one client?"""
        return bool(self._monitors.get(number))

    def connections_of(self, number: str) -> list[tuple[SimCall, str]]:
        """(call, local state) of every call the device is part of, oldest first."""
        return [(c, c.connections[number]) for c in sorted(self.calls.values(), key=lambda c: c.started) if number in c.connections]

    def call_of(self, number: str, states: Iterable[str] | None = None) -> SimCall | None:
        """The newest call of ``number`` in one of ``states`` (any state when None)."""
        wanted = set(states) if states is not None else None
        found = [c for c, s in self.connections_of(number) if wanted is None or s in wanted]
        return found[-1] if found else None

    def _busy(self, number: str) -> bool:
        return any(state in _ACTIVE for _, state in self.connections_of(number))

    # -- the outside world -------------------------------------------------------------
    def busy(self, number: str) -> None:
        """External party ``number`` is busy from now on."""
        self.external_behaviour[number] = ("busy", 0.0)

    def no_answer(self, number: str) -> None:
        """External party ``number`` lets calls ring (until ``ring_timeout``, if any)."""
        self.external_behaviour[number] = ("ring", 0.0)

    def auto_answer(self, number: str, after: float | None = None) -> None:
        """External party ``number`` answers calls after ``after`` seconds."""
        self.external_behaviour[number] = ("answer", self.config.external_answer_after if after is None else after)

    def _behaviour(self, number: str) -> tuple[ExternalBehaviour, float]:
        return self.external_behaviour.get(number, (self.config.external_default, self.config.external_answer_after))

    # -- scenario API (what people at phones do) ---------------------------------------
    async def incoming_call(self, from_number: str, to_device: str) -> str:
        """``from_number`` (external or internal) calls ``to_device``; returns the call id."""
        return self.dial(from_number, to_device)

    def dial(self, from_number: str, to_number: str, *, kind: str = "newCall") -> str:
        """A party picks up and dials; returns the new call id."""
        if not from_number or not to_number:
            raise ValueError("dial needs a calling and a called number")
        call = self._originate(from_number, to_number, kind=kind)
        return call.id

    def answer(self, party: str, call_id: str | None = None) -> str:
        """``party`` answers its ringing call (the newest, or ``call_id``); returns the call id."""
        call = self._find(party, call_id, ("alerting",))
        self._answer(call, party)
        return call.id

    def hang_up(self, party: str, call_id: str | None = None) -> str:
        """``party`` hangs up (its newest call, or ``call_id``); returns the call id."""
        call = self._find(party, call_id, None)
        self._clear(call, party, "normalClearing")
        return call.id

    def hold(self, party: str, call_id: str | None = None) -> str:
        call = self._find(party, call_id, ("connected",))
        self._hold(call, party)
        return call.id

    def retrieve(self, party: str, call_id: str | None = None) -> str:
        call = self._find(party, call_id, ("hold",))
        self._retrieve(call, party)
        return call.id

    def set_forwarding(self, number: str, forwarding_type: str, destination: str | None) -> None:
        """Forwarding set at the phone: ``destination`` None cancels it."""
        self._set_forwarding(self.device(number), forwarding_type, destination is not None, destination)

    def message_waiting(self, number: str, on: bool = True, left_by: str | None = None) -> None:
        """The voice mail of ``number`` got a new message (or was emptied: ``on=False``): ECMA-269 MessageWaitingEvent."""
        self._internal_device(number)
        self._notify("MessageWaitingEvent", None, [number], {
            "targetDevice": _dev(number), "deviceForMessage": _dev(left_by) if left_by else None, "messageWaitingOn": on})

    def set_dnd(self, number: str, on: bool) -> None:
        """Do-not-disturb switched at the phone."""
        self._set_dnd(self.device(number), on)

    def _find(self, party: str, call_id: str | None, states: Iterable[str] | None) -> SimCall:
        if call_id is not None:
            call = self.calls.get(self._renamed.get(call_id, call_id))
            if call is None or party not in call.connections:
                raise LookupError(f"{party} is not in call {call_id}")
            return call
        call = self.call_of(party, states)
        if call is None:
            raise LookupError(f"{party} has no call" + (f" in state {'/'.join(states)}" if states else ""))
        return call

    async def wait_until(self, predicate: Callable[[], Any], timeout: float = 3.0, what: str = "condition") -> Any:
        """Poll ``predicate`` until it is true; raise ``TimeoutError`` naming ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"pbxsim: {what} not reached within {timeout:g} s")
            await asyncio.sleep(0.01)

    async def wait_monitored(self, *numbers: str, timeout: float = 3.0) -> None:
        await self.wait_until(lambda: all(self.monitored(n) for n in numbers), timeout, f"monitors on {', '.join(numbers)}")

    # -- faults ----------------------------------------------------------------------
    async def drop_links(self) -> int:
        """Cut every client connection abruptly (calls go on); returns how many."""
        links = list(self.links)
        for link in links:
            link.close("dropped by fault injection", abort=True)
        await asyncio.sleep(0)
        return len(links)

    def send_garbage(self, data: bytes | None = None) -> None:
        """Write bytes that are no frame to every client."""
        junk = data if data is not None else b"\x13\x37 not a CSTA frame \xff\xfe garbage <<<"
        for link in self.links:
            link.write_raw(junk + (b"\x00" if self.config.framing == "nul" and data is None else b""))

    def send_oversized(self, size: int | None = None) -> None:
        """Write one frame of ``size`` bytes that no client should accept (not XML, too big)."""
        for link in self.links:
            if self.config.encoding == "ber":
                link.write_raw(sim_ber.oversized_frame(link.framing, size))
            elif self.config.framing == "j2":
                total = min(size or 65535, 65535)
                link.write_raw(b"\x00\x00" + total.to_bytes(2, "big") + b"9999" + b"X" * (total - 8))
            else:
                link.write_raw(b"X" * (size or 2 * 1024 * 1024) + b"\x00")

    def end_sessions(self, reason: str = "normal") -> int:
        """Stop every application session from the switch side (ECMA-354); their monitors end too."""
        count = 0
        for link in list(self.links):
            if link.session_id is None:
                continue
            link.write(build("StopApplicationSession", {"sessionID": link.session_id, "sessionEndReason": {"definedEndReason": reason}}),
                       next(link._invoke) % 9000 + 1)
            link.session_id = None
            if link.session_timer:
                link.session_timer.cancel()
            for xref in list(link.monitors):
                self._stop_monitor(link, xref)
            count += 1
        return count

    def send_event(self, device: str, name: str, fields: dict[str, Any]) -> None:
        """Send any event to the monitors of ``device`` (for tests of odd PBX behaviour)."""
        for link, xref in list(self._monitors.get(device, [])):
            link.send_event(build(name, {"monitorCrossRefID": xref, **fields}))

    # -- receiving -------------------------------------------------------------------
    def _receive(self, link: SimLink, message: Message) -> None:
        if message.kind is MessageKind.REQUEST:
            self.requests.append(message)
            if self.mute or message.name in self.ignore:
                return
            if message.name == "SystemStatus":
                if self.answer_system_status:
                    link.write(build("SystemStatusResponse"), message.invoke_id)
                return
            if self.delay > 0:
                link.spawn(self._handle_later(link, message))
            else:
                self._handle(link, message)
        elif message.name == "SystemStatusResponse" or (message.kind is MessageKind.ERROR and message.invoke_id is not None):
            link._status_answered.set()

    async def _handle_later(self, link: SimLink, message: Message) -> None:
        await asyncio.sleep(self.delay)
        if not link.closed:
            self._handle(link, message)

    def _handle(self, link: SimLink, message: Message) -> None:
        name = message.name
        link.deferred = []
        try:
            try:
                if name in self.config.unsupported:
                    raise SimFault("operation", "serviceNotSupported")
                sessionless = name in ("StartApplicationSession", "StopApplicationSession", "ResetApplicationSessionTimer")
                if not sessionless and self.config.require_session and link.session_id is None:
                    raise SimFault("security", "securityViolation", "no application session")
                handler = getattr(self, f"_req_{name}", None)
                if handler is None:
                    raise SimFault("operation", "serviceNotSupported")
                response = handler(link, message)
            except SimFault as fault:
                link.deferred = []
                response = csta_error(fault.category, fault.value)
            except Exception:  # a simulator bug must not kill the link
                log.exception("pbxsim: %s failed", name)
                link.deferred = []
                response = csta_error("operation", "generic")
            if response is not None:
                link.write(response, message.invoke_id)
        finally:
            # Only this link's events wait for the answer; other links got theirs directly.
            pending, link.deferred = link.deferred, None
            for event in pending or ():
                link.write(event, link.event_invoke_id())

    # -- requests: the subscriber list (ECMA-269 GetSwitchingFunctionDevices) -----------
    def _req_GetSwitchingFunctionDevices(self, link: SimLink, m: Message) -> Message:
        """Answer at once, then send the list in ``SwitchingFunctionDevices`` segments, as ECMA-269 describes.

        Each ``deviceEntry`` carries ``deviceID``, ``deviceCategory`` and ``deviceName``
        (the subscriber's display name; a simulator field where real switches use their
        own extensions).
        """
        xref = link.next_xref()
        items = sorted(self.subscribers.items())
        size = max(1, self.config.subscriber_segment)
        segments = [items[i:i + size] for i in range(0, len(items), size)] or [[]]

        def send() -> None:
            for n, segment in enumerate(segments, 1):
                entries = [{"deviceID": number, "deviceCategory": "station", "deviceName": name} for number, name in segment]
                link.write(build("SwitchingFunctionDevices", {
                    "serviceCrossRefID": xref, "segmentID": n, "lastSegment": n == len(segments),
                    "deviceList": {"deviceEntry": entries} if entries else None,
                }), next(link._invoke) % 9000 + 1)

        asyncio.get_running_loop().call_soon(send)
        return build("GetSwitchingFunctionDevicesResponse", {"serviceCrossRefID": xref})

    # -- requests: ECMA-354 session ----------------------------------------------------
    def _req_StartApplicationSession(self, link: SimLink, m: Message) -> Message:
        cfg = self.config
        if cfg.encoding == "ber":
            raise SimFault("operation", "serviceNotSupported", "a BER switch has no ECMA-354 session")
        if cfg.username is not None or cfg.password is not None:
            info = m.get("applicationInfo/applicationSpecificInfo")
            user = _text(info.get("userID")) if isinstance(info, dict) else None
            password = _text(info.get("password")) if isinstance(info, dict) else None
            if user != cfg.username or password != cfg.password:
                return build("StartApplicationSessionNegResponse", {"errorCode": {"definedError": "invalidApplicationInfo"}})
        requested_versions = m.fields.get("requestedProtocolVersions")
        versions = (
            [v for v in (_text(x) for x in as_list(requested_versions.get("protocolVersion"))) if v] if isinstance(requested_versions, dict) else []
        )
        ours = CSTA_NAMESPACES[cfg.edition]
        granted = ours if (not versions or ours in versions) else next((v for v in versions if edition_of(v) in CSTA_NAMESPACES), None)
        if granted is None:
            return build("StartApplicationSessionNegResponse", {"errorCode": {"definedError": "noProtocolVersionSupported"}})
        requested = _int(m.text("requestedSessionDuration"))
        duration = min(requested, cfg.session_duration) if requested else cfg.session_duration
        link.session_id = f"sim-{link.id}-{int(time.time() * 1000) % 100000}"
        link.session_duration = duration
        link.codec = link.codec.with_edition(edition_of(granted))
        self._restart_session_timer(link)
        return start_application_session_pos_response(link.session_id, granted, duration)

    def _restart_session_timer(self, link: SimLink) -> None:
        if link.session_timer:
            link.session_timer.cancel()
        duration = link.session_duration
        if duration and self._loop is not None:
            link.session_timer = self._loop.call_later(duration, lambda: link.close("application session expired (not reset in time)"))

    def _req_ResetApplicationSessionTimer(self, link: SimLink, m: Message) -> Message:
        if link.session_id is None or m.text("sessionID") != link.session_id:
            return build("ResetApplicationSessionTimerNegResponse", {"errorCode": {"definedError": "invalidSessionID"}})
        self._restart_session_timer(link)
        return build("ResetApplicationSessionTimerPosResponse", {"actualSessionDuration": link.session_duration})

    def _req_StopApplicationSession(self, link: SimLink, m: Message) -> Message:
        if link.session_id is None or m.text("sessionID") != link.session_id:
            return build("StopApplicationSessionNegResponse", {"errorCode": {"definedError": "invalidSessionID"}})
        link.session_id = None
        if link.session_timer:
            link.session_timer.cancel()
        for xref in list(link.monitors):
            self._stop_monitor(link, xref)
        return build("StopApplicationSessionPosResponse")

    # -- requests: monitoring and snapshots ------------------------------------------
    def _internal_device(self, number: str | None, value: str = "invalidDeviceID") -> SimDevice:
        if not number or not self.is_internal(number):
            raise SimFault("operation", value, f"{number!r} is not an internal device")
        return self.device(number)

    def _req_MonitorStart(self, link: SimLink, m: Message) -> Message:
        dev = self._internal_device(m.device_field("monitorObject"))
        xref = link.next_xref()
        link.monitors[xref] = dev.number
        self._monitors.setdefault(dev.number, []).append((link, xref))
        return build("MonitorStartResponse", {"monitorCrossRefID": xref})

    def _stop_monitor(self, link: SimLink, xref: str) -> None:
        device = link.monitors.pop(xref)
        entries = self._monitors.get(device, [])
        entries[:] = [(ln, x) for ln, x in entries if not (ln is link and x == xref)]
        if not entries:
            self._monitors.pop(device, None)

    def _req_MonitorStop(self, link: SimLink, m: Message) -> Message:
        xref = m.text("monitorCrossRefID")
        if xref not in link.monitors:
            raise SimFault("operation", "invalidMonitorCrossReferenceID")
        self._stop_monitor(link, xref)
        return build("MonitorStopResponse")

    def _req_SnapshotDevice(self, link: SimLink, m: Message) -> Message:
        dev = self._internal_device(m.device_field("snapshotObject"))
        infos = [
            {"connectionIdentifier": Connection(call.id, dev.number),
             "localCallState": {"compoundCallState": {"localConnectionState": state}}}
            for call, state in self.connections_of(dev.number)
        ]
        return build("SnapshotDeviceResponse", {"crossRefIDorSnapshotData": {"snapshotData": {"snapshotDeviceResponseInfo": infos or None}}})

    def _req_SnapshotCall(self, link: SimLink, m: Message) -> Message:
        conn = m.connection_field("snapshotObject")
        call = self.calls.get(self._renamed.get(conn.call_id, conn.call_id)) if conn else None
        if call is None:
            raise SimFault("operation", "invalidCallID")
        infos = [
            {"deviceOnCall": {"deviceIdentifier": d}, "callIdentifier": Connection(call.id, d), "localConnectionState": s}
            for d, s in call.connections.items()
        ]
        return build("SnapshotCallResponse", {"crossRefIDorSnapshotData": {"snapshotData": {"snapshotCallResponseInfo": infos}}})

    # -- requests: call control -------------------------------------------------------
    def _conn(self, m: Message, field: str, states: Iterable[str] | None = None) -> tuple[SimCall, str]:
        conn = m.connection_field(field)
        if conn is None:
            raise SimFault("operation", "valueOutOfRange", f"{field} missing")
        call = self.calls.get(self._renamed.get(conn.call_id, conn.call_id))
        device = conn.device_id
        if call is None or device is None or device not in call.connections:
            raise SimFault("operation", "invalidConnectionID")
        if states is not None and call.connections[device] not in states:
            raise SimFault("stateIncompatibility", "invalidObjectState")
        return call, device

    def _req_MakeCall(self, link: SimLink, m: Message) -> Message:
        caller = self._internal_device(m.device_field("callingDevice"), "invalidCallingDeviceID").number
        called = m.device_field("calledDirectoryNumber")
        if not called or not re.fullmatch(r"[0-9*#+]{1,32}", called):
            raise SimFault("operation", "invalidCalledDeviceID")
        if any(state in ("connected", "initiated") for _, state in self.connections_of(caller)):
            raise SimFault("stateIncompatibility", "connectedCallExists")
        call = self._originate(caller, called)
        return build("MakeCallResponse", {"callingDevice": Connection(call.id, caller)})

    def _req_AnswerCall(self, link: SimLink, m: Message) -> Message:
        call, device = self._conn(m, "callToBeAnswered")
        if call.connections[device] != "alerting":
            raise SimFault("stateIncompatibility", "noCallToAnswer")
        self._answer(call, device)
        return build("AnswerCallResponse")

    def _req_ClearConnection(self, link: SimLink, m: Message) -> Message:
        call, device = self._conn(m, "connectionToBeCleared")
        self._clear(call, device, "normalClearing")
        return build("ClearConnectionResponse")

    def _req_ClearCall(self, link: SimLink, m: Message) -> Message:
        call, _ = self._conn(m, "callToBeCleared")
        for device in list(call.connections):
            if call.id in self.calls:
                self._clear(call, device, "normalClearing", cascade=False)
        self._end(call)
        return build("ClearCallResponse")

    def _req_HoldCall(self, link: SimLink, m: Message) -> Message:
        call, device = self._conn(m, "callToBeHeld", ("connected",))
        self._hold(call, device)
        return build("HoldCallResponse")

    def _req_RetrieveCall(self, link: SimLink, m: Message) -> Message:
        call, device = self._conn(m, "callToBeRetrieved", ("hold",))
        self._retrieve(call, device)
        return build("RetrieveCallResponse")

    def _req_ConsultationCall(self, link: SimLink, m: Message) -> Message:
        call, device = self._conn(m, "existingCall", ("connected", "hold"))
        target = m.device_field("consultedDevice")
        if not target:
            raise SimFault("operation", "invalidDestination")
        if call.connections[device] == "connected":
            self._hold(call, device)
        new = self._originate(device, target, kind="consultation")
        return build("ConsultationCallResponse", {"initiatedCall": Connection(new.id, device)})

    def _req_AlternateCall(self, link: SimLink, m: Message) -> Message:
        held, device = self._conn(m, "heldCall", ("hold",))
        active, other = self._conn(m, "activeCall")
        if other != device:
            raise SimFault("operation", "notSameDevice")
        if active.connections[device] == "connected":
            self._hold(active, device)
        self._retrieve(held, device)
        return build("AlternateCallResponse")

    def _req_ReconnectCall(self, link: SimLink, m: Message) -> Message:
        active, device = self._conn(m, "activeCall")
        held, other = self._conn(m, "heldCall", ("hold",))
        if other != device:
            raise SimFault("operation", "notSameDevice")
        self._clear(active, device, "normalClearing")
        self._retrieve(held, device)
        return build("ReconnectCallResponse")

    def _req_TransferCall(self, link: SimLink, m: Message) -> Message:
        held, device = self._conn(m, "heldCall", ("hold", "connected"))
        active, other = self._conn(m, "activeCall")
        if other != device or held is active:
            raise SimFault("operation", "notSameDevice")
        new = self._transfer(device, held, active)
        return build("TransferCallResponse", {"transferredCall": Connection(new.id, new.others(device)[0] if new.others(device) else device)})

    def _req_SingleStepTransferCall(self, link: SimLink, m: Message) -> Message:
        call, device = self._conn(m, "activeCall", ("connected", "hold", "alerting"))
        target = m.device_field("transferredTo")
        if not target or target in call.connections:
            raise SimFault("operation", "invalidDestination")
        new = self._single_step_transfer(call, device, target)
        return build("SingleStepTransferCallResponse", {"transferredCall": Connection(new.id, target)})

    def _req_ConferenceCall(self, link: SimLink, m: Message) -> Message:
        held, device = self._conn(m, "heldCall", ("hold",))
        active, other = self._conn(m, "activeCall", ("connected",))
        if other != device or held is active:
            raise SimFault("operation", "notSameDevice")
        if any(s != "connected" for d, s in active.connections.items() if d != device):
            raise SimFault("stateIncompatibility", "invalidObjectState")
        new = self._conference(device, held, active)
        return build("ConferenceCallResponse", {"conferenceCall": Connection(new.id, device)})

    def _req_DeflectCall(self, link: SimLink, m: Message) -> Message:
        call, device = self._conn(m, "callToBeDiverted", ("alerting",))
        target = m.device_field("newDestination")
        if not target or target in call.connections:
            raise SimFault("operation", "invalidDestination")
        self._divert(call, device, target, "redirected", alerted=True)
        return build("DeflectCallResponse")

    def _req_DirectedPickupCall(self, link: SimLink, m: Message) -> Message:
        """ECMA-269 Directed Pickup Call: the call ringing (or queued) at a device goes to the requesting device, answered."""
        call, device = self._conn(m, "callToBePickedUp", ("alerting", "queued"))
        requesting = self._internal_device(m.device_field("requestingDevice"), "invalidPickUpDeviceID").number
        if requesting in call.connections:
            raise SimFault("operation", "invalidDestination")
        if any(state in ("connected", "initiated") for _, state in self.connections_of(requesting)):
            raise SimFault("stateIncompatibility", "connectedCallExists")
        call.cancel_timers(device)
        recipients = list(call.connections)
        del call.connections[device]
        self._notify("DivertedEvent", call, [*recipients, requesting], {
            "connection": Connection(call.id, device),
            "divertingDevice": _dev(device),
            "newDestination": _dev(requesting),
            **self._party_fields(call),
        }, cause="callPickup", local={device: "null"})
        call.last_redirection = device
        call.connections[requesting] = "alerting"
        self._answer(call, requesting)
        return build("DirectedPickupCallResponse", {"pickedCall": Connection(call.id, requesting)})

    def _req_GenerateDigits(self, link: SimLink, m: Message) -> Message:
        call, device = self._conn(m, "connectionToSendDigits", ("connected",))
        digits = m.text("charactersToSend") or ""
        if not re.fullmatch(r"[0-9*#A-Da-d]{1,64}", digits):
            raise SimFault("operation", "valueOutOfRange")
        self.digits.append((call.id, device, digits))
        return build("GenerateDigitsResponse")

    def _req_SetForwarding(self, link: SimLink, m: Message) -> Message:
        dev = self._internal_device(m.device_field("device"))
        ftype = m.text("forwardingType") or ""
        if not ftype.startswith("forward"):
            raise SimFault("operation", "valueOutOfRange")
        on = (m.text("activateForward") or "").lower() == "true"
        dn = m.device_field("forwardDN")
        if on and not dn:
            raise SimFault("operation", "invalidForwardingDestination")
        if on and dn == dev.number:
            raise SimFault("operation", "invalidForwardingDestination")
        self._set_forwarding(dev, ftype, on, dn)
        return build("SetForwardingResponse")

    def _req_GetForwarding(self, link: SimLink, m: Message) -> Message:
        dev = self._internal_device(m.device_field("device"))
        items = [{"forwardingType": t, "forwardStatus": True, "forwardDN": dn} for t, dn in dev.forwarding.items()]
        return build("GetForwardingResponse", {"forwardingList": {"forwardListItem": items or None}})

    def _req_SetDoNotDisturb(self, link: SimLink, m: Message) -> Message:
        dev = self._internal_device(m.device_field("device"))
        self._set_dnd(dev, (m.text("doNotDisturbOn") or "").lower() == "true")
        return build("SetDoNotDisturbResponse")

    def _req_GetDoNotDisturb(self, link: SimLink, m: Message) -> Message:
        dev = self._internal_device(m.device_field("device"))
        return build("GetDoNotDisturbResponse", {"doNotDisturbOn": dev.dnd})

    # -- the switching model ------------------------------------------------------------
    def _new_call(self, calling: str, called: str, kind: str = "newCall") -> SimCall:
        call = SimCall(str(next(self._call_ids)), calling, called, kind=kind)
        self.calls[call.id] = call
        return call

    def _notify(self, name: str, call: SimCall | None, devices: Iterable[str], fields: dict[str, Any],
                cause: str | None = None, local: dict[str, str] | None = None) -> None:
        """Send event ``name`` to every monitor of ``devices``, with each one's local state."""
        for device in dict.fromkeys(devices):
            monitors = self._monitors.get(device)
            if not monitors:
                continue
            if local is not None and device in local:
                state: str | None = local[device]
            elif call is not None:
                state = call.connections.get(device, "null")
            else:
                state = None
            body = dict(fields)
            if state is not None:
                body["localConnectionInfo"] = state
            if cause:
                body["cause"] = cause
            for link, xref in list(monitors):
                link.send_event(build(name, {"monitorCrossRefID": xref, **body}))

    def _party_fields(self, call: SimCall) -> dict[str, Any]:
        return {
            "callingDevice": _dev(call.calling),
            "calledDevice": _dev(call.called),
            "lastRedirectionDevice": _dev(call.last_redirection) if call.last_redirection else None,
        }

    def _timer(self, call: SimCall, device: str, kind: str, delay: float, action: Callable[..., None]) -> None:
        assert self._loop is not None
        key = (device, kind)
        if key in call.timers:
            call.timers.pop(key).cancel()

        def fire(call_id: str = call.id) -> None:
            current = self.calls.get(self._renamed.get(call_id, call_id))
            if current is not None:
                current.timers.pop(key, None)
            try:
                action()
            except LookupError as exc:
                log.debug("pbxsim timer %s for %s: %s", kind, device, exc)
            except Exception:  # one timer's failure must not stop the others
                log.exception("pbxsim timer %s for %s failed", kind, device)

        call.timers[key] = self._loop.call_later(max(0.0, delay), fire)

    def _current(self, call_id: str) -> SimCall:
        seen = 0
        while call_id in self._renamed and seen < 20:
            call_id, seen = self._renamed[call_id], seen + 1
        call = self.calls.get(call_id)
        if call is None:
            raise LookupError(f"call {call_id} ended")
        return call

    def _originate(self, caller: str, called: str, kind: str = "newCall") -> SimCall:
        self.device(caller)
        call = self._new_call(caller, called, kind)
        call.connections[caller] = "connected"
        self._notify("OriginatedEvent", call, [caller], {
            "originatedConnection": Connection(call.id, caller),
            "callingDevice": _dev(caller),
            "calledDevice": _dev(called),
        }, cause=kind)
        self._deliver(call, called, kind)
        return call

    def _deliver(self, call: SimCall, target: str, cause: str, via: str | None = None, hops: int = 0) -> None:
        if target in call.connections or hops > 5:
            self._fail(call, target, "blocked")
            return
        dev = self.device(target)
        if via is not None:
            call.last_redirection = via
        if dev.internal:
            if target in self.config.queues:
                self._queue(call, target, cause)
                return
            if dev.dnd:
                self._fail(call, target, "doNotDisturb")
                return
            if "forwardImmediate" in dev.forwarding:
                self._divert(call, target, dev.forwarding["forwardImmediate"], "callForwardImmediate", alerted=False, hops=hops)
                return
            if self._busy(target):
                if "forwardBusy" in dev.forwarding:
                    self._divert(call, target, dev.forwarding["forwardBusy"], "callForwardBusy", alerted=False, hops=hops)
                else:
                    self._fail(call, target, "busy")
                return
            self._alert(call, target, cause)
            if self.config.internal_answer_after is not None:
                self._timer(call, target, "answer", self.config.internal_answer_after,
                            lambda c=call.id: self._answer(self._current(c), target))
            if "forwardNoAns" in dev.forwarding:
                dest = dev.forwarding["forwardNoAns"]
                self._timer(call, target, "no-answer", self.config.no_answer_after,
                            lambda c=call.id: self._divert(self._current(c), target, dest, "callForwardNoAnswer", alerted=True, hops=hops))
        else:
            behaviour, after = self._behaviour(target)
            if behaviour == "busy":
                self._fail(call, target, "busy")
                return
            self._alert(call, target, cause)
            if behaviour == "answer":
                self._timer(call, target, "answer", after, lambda c=call.id: self._answer(self._current(c), target))
        if self.config.ring_timeout is not None:
            self._timer(call, target, "ring-timeout", self.config.ring_timeout, lambda c=call.id: self._ring_timeout(c, target))

    def _ring_timeout(self, call_id: str, target: str) -> None:
        call = self._current(call_id)
        if call.connections.get(target) == "alerting":
            self._clear(call, target, "noAnswer")

    def _alert(self, call: SimCall, target: str, cause: str) -> None:
        call.connections[target] = "alerting"
        self._notify("DeliveredEvent", call, call.connections, {
            "connection": Connection(call.id, target),
            "alertingDevice": _dev(target),
            **self._party_fields(call),
        }, cause=cause)

    def _queue(self, call: SimCall, queue: str, cause: str) -> None:
        call.connections[queue] = "queued"
        self._notify("QueuedEvent", call, call.connections, {
            "queuedConnection": Connection(call.id, queue),
            "queue": _dev(queue),
            **self._party_fields(call),
            "numberQueued": sum(1 for c in self.calls.values() if c.connections.get(queue) == "queued"),
        }, cause=cause)
        self._timer(call, queue, "queue", self.config.queue_delay, lambda c=call.id: self._dequeue(c, queue))

    def _dequeue(self, call_id: str, queue: str) -> None:
        call = self._current(call_id)
        if call.connections.get(queue) != "queued":
            return
        members = [m for m in self.config.queues.get(queue, ()) if not self._busy(m) and not self.device(m).dnd]
        if not members:
            self._timer(call, queue, "queue", self.config.queue_delay, lambda: self._dequeue(call.id, queue))
            return
        self._divert(call, queue, members[0], "distributed", alerted=True)

    def _divert(self, call: SimCall, source: str, destination: str, cause: str, *, alerted: bool, hops: int = 0) -> None:
        """The call leaves ``source`` (ringing or not yet) for ``destination``."""
        if alerted and source in call.connections:
            call.cancel_timers(source)
            recipients = list(call.connections)
            del call.connections[source]
        else:
            recipients = [*call.connections, source]
        self._notify("DivertedEvent", call, recipients, {
            "connection": Connection(call.id, source),
            "divertingDevice": _dev(source),
            "newDestination": _dev(destination),
            **self._party_fields(call),
        }, cause=cause, local={source: "null"})
        self._deliver(call, destination, cause, via=source, hops=hops + 1)

    def _fail(self, call: SimCall, target: str, cause: str) -> None:
        for device, state in call.connections.items():
            if state in ("connected", "initiated"):
                call.connections[device] = "fail"
        self._notify("FailedEvent", call, [*call.connections, target], {
            "failedConnection": Connection(call.id, target),
            "failingDevice": _dev(target),
            **self._party_fields(call),
        }, cause=cause, local={target: "null"})
        if self.config.failed_clear_after is not None:
            for device in list(call.connections):
                self._timer(call, device, "failed", self.config.failed_clear_after,
                            lambda c=call.id, d=device: self._clear(self._current(c), d, cause))

    def _answer(self, call: SimCall, device: str) -> None:
        if call.connections.get(device) != "alerting":
            raise LookupError(f"{device} is not ringing in call {call.id}")
        call.cancel_timers(device)
        call.connections[device] = "connected"
        for other in call.others(device):
            if call.connections[other] == "initiated":
                call.connections[other] = "connected"
        self._notify("EstablishedEvent", call, call.connections, {
            "establishedConnection": Connection(call.id, device),
            "answeringDevice": _dev(device),
            **self._party_fields(call),
        }, cause=call.kind)
        self._limit_duration(call)

    def _limit_duration(self, call: SimCall) -> None:
        limit = self.config.max_call_duration
        if limit is None:
            return
        parties = list(call.connections)
        if not parties:
            return
        # An outside party hangs up first; between two devices, the one who answered.
        party = next((p for p in parties if not self.device(p).internal), parties[-1])
        self._timer(call, party, "hang-up", limit, lambda c=call.id, p=party: self._clear(self._current(c), p, "normalClearing"))

    def _hold(self, call: SimCall, device: str) -> None:
        call.connections[device] = "hold"
        self._notify("HeldEvent", call, call.connections, {
            "heldConnection": Connection(call.id, device),
            "holdingDevice": _dev(device),
        })

    def _retrieve(self, call: SimCall, device: str) -> None:
        call.connections[device] = "connected"
        self._notify("RetrievedEvent", call, call.connections, {
            "retrievedConnection": Connection(call.id, device),
            "retrievingDevice": _dev(device),
        })

    def _clear(self, call: SimCall, device: str, cause: str, *, cascade: bool = True) -> None:
        if device not in call.connections:
            raise LookupError(f"{device} is not in call {call.id}")
        recipients = list(call.connections)
        call.cancel_timers(device)
        del call.connections[device]
        self._notify("ConnectionClearedEvent", call, recipients, {
            "droppedConnection": Connection(call.id, device),
            "releasingDevice": _dev(device),
        }, cause=cause, local={device: "null"})
        if not cascade:
            return
        remaining = list(call.connections)
        if len(remaining) == 1 or (remaining and all(call.connections[d] in ("alerting", "queued", "fail") for d in remaining)):
            for other in remaining:
                if other in call.connections:
                    self._clear(call, other, cause, cascade=False)
        if not call.connections:
            self._end(call)

    def _end(self, call: SimCall) -> None:
        call.cancel_timers()
        self.calls.pop(call.id, None)

    def _merged_call(self, parties: dict[str, str], calling: str, called: str, olds: Iterable[SimCall]) -> SimCall:
        new = self._new_call(calling, called)
        new.connections.update(parties)
        for old in olds:
            for key in [k for k in old.timers if k[0] in parties]:
                new.timers[key] = old.timers.pop(key)
            old.cancel_timers()
            self.calls.pop(old.id, None)
            self._renamed[old.id] = new.id
        return new

    def _transfer(self, device: str, held: SimCall, active: SimCall) -> SimCall:
        held_others, active_others = held.others(device), active.others(device)
        parties = {d: held.connections[d] for d in held_others}
        parties.update({d: active.connections[d] for d in active_others})
        recipients = [device, *held_others, *active_others]
        new = self._merged_call(parties, held_others[0] if held_others else device, active_others[0] if active_others else device, (held, active))
        items = [{"newConnection": Connection(new.id, d), "oldConnection": Connection(held.id, d), "endpoint": {"deviceID": d}} for d in held_others]
        items += [
            {"newConnection": Connection(new.id, d), "oldConnection": Connection(active.id, d), "endpoint": {"deviceID": d}} for d in active_others
        ]
        self._notify("TransferedEvent", new, recipients, {
            "primaryOldCall": Connection(held.id, device),
            "secondaryOldCall": Connection(active.id, device),
            "transferringDevice": _dev(device),
            "transferredToDevice": _dev(active_others[0] if active_others else None),
            "transferredConnections": {"connectionListItem": items},
        }, cause="transfer", local={device: "null"})
        self._after_merge(new)
        return new

    def _single_step_transfer(self, call: SimCall, device: str, target: str) -> SimCall:
        others = call.others(device)
        parties = {d: call.connections[d] for d in others}
        new = self._merged_call(parties, others[0] if others else device, target, (call,))
        new.kind = "singleStepTransfer"
        items = [{"newConnection": Connection(new.id, d), "oldConnection": Connection(call.id, d), "endpoint": {"deviceID": d}} for d in others]
        self._notify("TransferedEvent", new, [device, *others], {
            "primaryOldCall": Connection(call.id, device),
            "transferringDevice": _dev(device),
            "transferredToDevice": _dev(target),
            "transferredConnections": {"connectionListItem": items},
        }, cause="singleStepTransfer", local={device: "null"})
        if not new.connections:
            self._end(new)
            return new
        self._deliver(new, target, "singleStepTransfer", via=device)
        return new

    def _conference(self, device: str, held: SimCall, active: SimCall) -> SimCall:
        held_others, active_others = held.others(device), active.others(device)
        parties = {device: "connected"}
        parties.update({d: held.connections[d] for d in held_others})
        parties.update({d: active.connections[d] for d in active_others})
        new = self._merged_call(parties, held.calling, held.called, (held, active))
        new.conference = True
        items = [{"newConnection": Connection(new.id, device), "oldConnection": Connection(active.id, device), "endpoint": {"deviceID": device}}]
        items += [{"newConnection": Connection(new.id, d), "oldConnection": Connection(held.id, d), "endpoint": {"deviceID": d}} for d in held_others]
        items += [
            {"newConnection": Connection(new.id, d), "oldConnection": Connection(active.id, d), "endpoint": {"deviceID": d}} for d in active_others
        ]
        self._notify("ConferencedEvent", new, new.connections, {
            "primaryOldCall": Connection(held.id, device),
            "secondaryOldCall": Connection(active.id, device),
            "conferencingDevice": _dev(device),
            "addedParty": _dev(active_others[0] if active_others else None),
            "conferenceConnections": {"connectionListItem": items},
        }, cause="conference")
        self._after_merge(new)
        return new

    def _after_merge(self, call: SimCall) -> None:
        if len(call.connections) < 2:
            for device in list(call.connections):
                self._clear(call, device, "normalClearing", cascade=False)
            self._end(call)
        elif all(s == "connected" for s in call.connections.values()):
            self._limit_duration(call)

    def _set_forwarding(self, dev: SimDevice, ftype: str, on: bool, dn: str | None) -> None:
        if on and dn:
            dev.forwarding[ftype] = dn
        else:
            dev.forwarding.pop(ftype, None)
        self._notify("ForwardingEvent", None, [dev.number], {
            "device": _dev(dev.number),
            "forwardingType": ftype,
            "forwardStatus": bool(on and dn),
            "forwardTo": dn if on else None,
        })

    def _set_dnd(self, dev: SimDevice, on: bool) -> None:
        dev.dnd = on
        self._notify("DoNotDisturbEvent", None, [dev.number], {"device": _dev(dev.number), "doNotDisturbOn": on})

    def describe(self) -> dict[str, Any]:
        """State for logs and demos: links, monitored devices, calls."""
        return {
            "links": [{"id": ln.id, "peer": str(ln.peer), "session": ln.session_id, "monitors": len(ln.monitors)} for ln in self.links],
            "calls": [{"id": c.id, "calling": c.calling, "called": c.called, "connections": dict(c.connections)} for c in self.calls.values()],
        }


def _dev(number: str | None) -> dict[str, Any]:
    return {"deviceIdentifier": number} if number else {"notKnown": ""}


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return device_text(value)
    return None


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


class Scenarios:
    """Ready-made call scenarios (the admin guide's situations), scripted on a simulator.

    Every scenario returns the call id; the waits are in seconds and may be zero.
    """

    def __init__(self, sim: PbxSimulator):
        self.sim = sim

    async def incoming_external_call(self, caller: str, device: str, *, answer_after: float | None = 0.2,
                                     talk: float | None = 1.0) -> str:
        """An outside caller rings ``device``; it answers after ``answer_after``; the caller hangs up after ``talk``."""
        call_id = await self.sim.incoming_call(caller, device)
        if answer_after is None:
            return call_id
        await asyncio.sleep(answer_after)
        with contextlib.suppress(LookupError):
            self.sim.answer(device, call_id)
            if talk is not None:
                await asyncio.sleep(talk)
                self.sim.hang_up(caller, call_id)
        return call_id

    async def busy(self, device: str, external: str, *, hang_up_after: float = 0.5) -> str:
        """``device`` calls a busy outside number, hears busy, hangs up."""
        self.sim.busy(external)
        call_id = self.sim.dial(device, external)
        await asyncio.sleep(hang_up_after)
        with contextlib.suppress(LookupError):
            self.sim.hang_up(device, call_id)
        return call_id

    async def no_answer(self, caller: str, device: str, *, ring_for: float = 1.0) -> str:
        """``caller`` rings ``device``, nobody answers, the caller gives up."""
        call_id = await self.sim.incoming_call(caller, device)
        await asyncio.sleep(ring_for)
        with contextlib.suppress(LookupError):
            self.sim.hang_up(caller, call_id)
        return call_id

    async def transfer(self, caller: str, device: str, to: str, *, step: float = 0.2) -> str:
        """An outside call answered at ``device`` is transferred to ``to`` after a consultation."""
        call_id = await self.sim.incoming_call(caller, device)
        await asyncio.sleep(step)
        self.sim.answer(device, call_id)
        await asyncio.sleep(step)
        call = self.sim.calls[call_id]
        self.sim._hold(call, device)
        consult = self.sim._originate(device, to, kind="consultation")
        await asyncio.sleep(step)
        with contextlib.suppress(LookupError):
            self.sim.answer(to, consult.id)
        await asyncio.sleep(step)
        held = self.sim.calls.get(call_id)
        active = self.sim.calls.get(consult.id)
        if held is None or active is None:
            return call_id
        return self.sim._transfer(device, held, active).id

    async def conference(self, caller: str, device: str, third: str, *, step: float = 0.2) -> str:
        """``device`` answers ``caller``, consults ``third`` and joins all three."""
        call_id = await self.sim.incoming_call(caller, device)
        await asyncio.sleep(step)
        self.sim.answer(device, call_id)
        self.sim._hold(self.sim.calls[call_id], device)
        consult = self.sim._originate(device, third, kind="consultation")
        await asyncio.sleep(step)
        with contextlib.suppress(LookupError):
            self.sim.answer(third, consult.id)
        await asyncio.sleep(step)
        held, active = self.sim.calls.get(call_id), self.sim.calls.get(consult.id)
        if held is None or active is None:
            return call_id
        return self.sim._conference(device, held, active).id

    async def forward(self, caller: str, device: str, to: str, forwarding_type: str = "forwardImmediate") -> str:
        """``device`` forwards to ``to`` (set at the phone), then ``caller`` rings it."""
        self.sim.set_forwarding(device, forwarding_type, to)
        return await self.sim.incoming_call(caller, device)


class DemoTraffic:
    """Occasional calls between demo devices and the outside world (``make run``, ``--traffic``).

    Every ``interval`` seconds (with jitter) one scenario runs: an outside caller rings a
    device that answers and talks a while, two devices call each other, a device calls a
    busy number, or a caller gives up unanswered.  Simulated people answer their phones
    after ``answer_after`` seconds unless someone answered through the API first.
    """

    def __init__(self, sim: PbxSimulator, devices: Iterable[str], *, interval: float = 30.0,
                 externals: Iterable[str] = ("0612345678", "0155171889", "0498765432"), answer_after: float = 4.0,
                 talk: tuple[float, float] = (8.0, 25.0), seed: int | None = None):
        self.sim = sim
        self.devices = list(devices)
        self.externals = list(externals)
        self.interval = interval
        self.answer_after = answer_after
        self.talk = talk
        self.random = random.Random(seed)
        self._task: asyncio.Task | None = None
        self._jobs: set[asyncio.Task] = set()
        self.runs = 0

    def start(self) -> None:
        if self._task is None and self.devices:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="pbxsim-demo-traffic")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._jobs) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    async def _loop(self) -> None:
        await asyncio.sleep(min(3.0, self.interval))
        while True:
            job = asyncio.get_running_loop().create_task(self.run_once())
            self._jobs.add(job)
            job.add_done_callback(self._jobs.discard)
            await asyncio.sleep(self.interval * self.random.uniform(0.6, 1.4))

    def _idle(self) -> list[str]:
        return [d for d in self.devices if not self.sim.connections_of(d)]

    async def run_once(self) -> None:
        """Play one random scenario (skipped when every device is busy)."""
        idle = self._idle()
        if not idle:
            return
        self.runs += 1
        r = self.random
        device = r.choice(idle)
        external = r.choice(self.externals)
        choice = r.random()
        try:
            if choice < 0.55:
                await self._call(external, device)
            elif choice < 0.8 and len(idle) > 1:
                await self._call(device, r.choice([d for d in idle if d != device]))
            elif choice < 0.9:
                await self.sim.scenarios.busy(device, "0" + external, hang_up_after=2.0)
            else:
                await self.sim.scenarios.no_answer(external, device, ring_for=min(6.0, self.answer_after * 1.5))
        except LookupError as exc:
            log.debug("demo traffic: scenario ended early: %s", exc)

    async def _call(self, caller: str, device: str) -> None:
        call_id = self.sim.dial(caller, device)
        await asyncio.sleep(self.answer_after * self.random.uniform(0.7, 1.3))
        call = self.sim.calls.get(self.sim._renamed.get(call_id, call_id))
        if call is not None and call.connections.get(device) == "alerting":
            self.sim.answer(device, call.id)
        await asyncio.sleep(self.random.uniform(*self.talk))
        call = self.sim.calls.get(self.sim._renamed.get(call_id, call_id))
        if call is not None and caller in call.connections:
            self.sim.hang_up(caller, call.id)


# -- standalone ------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m twp_csta.sim", description="Simulated PBX speaking CSTA XML or BER over TCP.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8882, help="TCP port (default 8882, the MX-One CSTA XML port)")
    p.add_argument("--encoding", choices=["xml", "ber"], default="xml", help="CSTA XML (ECMA-323) or BER (ECMA-285)")
    p.add_argument("--framing", choices=sorted({**FRAMINGS, **BER_FRAMINGS}), default=None,
                   help="XML: j2 (default) or nul; BER: len2 (default), hipath or tlv")
    p.add_argument("--association", choices=["none", "acse", "oxo"], default="none", help="BER: ACSE association, or B/P then ACSE")
    p.add_argument("--edition", type=int, choices=sorted(CSTA_NAMESPACES), default=4, help="ECMA-323 edition written")
    p.add_argument("--devices", action="append", default=[], help="internal devices, e.g. 201-210 (repeatable)")
    p.add_argument("--session", action="store_true", help="require an ECMA-354 application session")
    p.add_argument("--username", help="user name the session must carry")
    p.add_argument("--password", help="password the session must carry")
    p.add_argument("--heartbeat", type=float, default=None, help="send SystemStatus every N seconds")
    p.add_argument("--external", choices=["ring", "answer", "busy"], default="answer", help="what outside numbers do when called")
    p.add_argument("--traffic", type=float, default=None, help="play a demo call every N seconds between --devices and the outside")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    return p


async def _run(args: argparse.Namespace) -> None:
    sim = PbxSimulator(SimConfig(
        host=args.host, port=args.port, encoding=args.encoding, association=args.association,
        framing=args.framing or ("len2" if args.encoding == "ber" else "j2"), edition=args.edition, devices=tuple(args.devices),
        require_session=args.session, username=args.username, password=args.password,
        system_status_interval=args.heartbeat, external_default=args.external, external_answer_after=2.0,
        ring_timeout=60.0, max_call_duration=300.0,
    ))
    await sim.start()
    traffic = None
    if args.traffic:
        traffic = DemoTraffic(sim, expand_devices(args.devices), interval=args.traffic)
        traffic.start()
    try:
        await asyncio.Event().wait()
    finally:
        if traffic:
            await traffic.stop()
        await sim.stop()


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(args))

