"""``UaCstaDriver``: a PBX driver whose "switch" is each phone itself, reached over uaCSTA (ECMA TR/87).

A uaCSTA link has no PBX at the other end: TWP opens one SIP dialog per supervised phone
(INVITE with ``Content-Type: application/csta+xml``), then sends each CSTA request
(``MonitorStart``, ``MakeCall``, ``AnswerCall`` ...) in an INFO inside that dialog and reads the
phone's CSTA events from the INFO requests the phone sends back.  The ECMA-323 messages are
the toolkit's own (``twp_csta.xml.codec``); the events become ``PbxEvent`` values through
the same ``events_from_csta`` as every CSTA XML driver.

- The link is up as soon as its SIP endpoint listens; each phone is a session of its own.
  A phone that cannot be reached makes ``monitor`` fail with the reason (the kernel tries
  again after ``limits.monitor_retry``).
- A session is kept alive with an in-dialog OPTIONS every ``keepalive_interval``; when the
  phone stops answering, answers 481 or sends BYE (it restarted), the device reports
  ``monitor_lost`` (its calls are unknown) and the driver re-opens the session and the
  monitor with a backoff between ``reconnect_min`` and ``reconnect_max``.
- The CSTA answer to a request is read from the body of the 200 to its INFO; when the phone
  sends it in an INFO of its own instead, the oldest request waiting on that phone gets it.
- INFO bodies that are not CSTA XML are answered 415/400, logged (rate-limited) and counted;
  the session stays up.

Vendor drivers (``twp-snom``, ``twp-yealink``) subclass it with their defaults and the
HTTP paths (action URLs, remote control) of ``twp_csta.uacsta.phone_http``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from typing import Any, Literal

import attrs
from aiosipua.auth import SipDigestAuth

from twp_csta.driver import events_from_csta
from twp_csta.errors import CodecError, CstaBaseError, CstaError, CstaLinkError, CstaTimeout
from twp_csta.uacsta.sip import PhoneDialog, SipEndpoint, SipError
from twp_csta.xml import codec
from twp_csta.xml.codec import Codec, Connection, Message, MessageKind
from twpcore.plugin_api import Duration, NotReady, PbxDriver, PbxEvent, RepeatLimiter, Secret, setting

log = logging.getLogger(__name__)

UACSTA_CAPABILITIES = frozenset({"monitor", "make_call", "answer", "hang_up", "hold", "retrieve"})
"""What a uaCSTA phone does for TWP (first-party call control of its own calls, ECMA TR/87)."""


def parse_phone_address(text: str, default_port: int) -> tuple[str, int]:
    """``"10.0.0.5"`` or ``"10.0.0.5:5062"`` → (host, port); ValueError naming the value otherwise."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or "]" in port:
        host, port = text.strip(), str(default_port)
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'expected "host" or "host:port" of the phone, got {text!r}')
    return host, int(port)


@attrs.frozen(kw_only=True)
class UaCstaConfig:
    """Options of a ``[pbx.links.<name>]`` table served by a uaCSTA driver."""

    host: str = setting("0.0.0.0", help="address TWP's SIP endpoint listens on for the phones")
    port: int = setting(min=0, max=65535, help="SIP port of TWP chosen when the link is created (the phones reach it; 0: any free port)")
    transport: Literal["tcp", "udp"] = setting("tcp", help='SIP transport to the phones: "tcp" (the prerequisites open a TCP port) or "udp"')
    advertised_host: str | None = setting(None, help="address written in Via/Contact when TWP is behind NAT; default: the listening address")
    phones: dict[str, str] = setting(factory=dict, help='device number → SIP address of its phone: { "201" = "10.0.0.21", "202" = "10.0.0.22:5062" }')
    phone_sip_port: int = setting(5060, min=1, max=65535, help="SIP port of a phone whose address gives none")
    sip_username: str | None = setting(None, help="user name TWP answers a phone's SIP digest challenge with; default: the device number")
    sip_password: Secret | None = setting(None, help='password for the phones\' SIP digest challenges; write it { env = "VAR" }')
    edition: Literal[3, 4, 5] = setting(3, help="ECMA-323 edition written in the CSTA bodies (every edition is read)")
    request_timeout: Duration = setting(Duration(5), min=0.05, max=600, help="how long a SIP transaction or a CSTA answer may take")
    keepalive_interval: Duration = setting(Duration(30), min=0, max=3600, help="send an in-dialog OPTIONS to each phone so often; 0 disables")
    reconnect_min: Duration = setting(Duration(1), min=0.01, max=3600, help="first wait before re-opening a lost phone session")
    reconnect_max: Duration = setting(Duration(60), min=0.01, max=3600, help="longest wait between attempts to re-open a phone session")
    capacity: int = setting(500, min=0, max=1_000_000, help="maximum phones this link supervises (guide 4.1)")
    sites: list[str] = setting(factory=list, help='sites whose devices this link supervises first, e.g. ["1.*"] (guide 4.1)')

    def __attrs_post_init__(self) -> None:
        if self.reconnect_min > self.reconnect_max:
            raise ValueError(f"reconnect_min ({self.reconnect_min:g} s) must not exceed reconnect_max ({self.reconnect_max:g} s)")
        for number, address in self.phones.items():
            try:
                parse_phone_address(address, self.phone_sip_port)
            except ValueError as exc:
                raise ValueError(f"phones.{number}: {exc}") from None


@attrs.define(eq=False)
class PhoneSession:
    """The uaCSTA state of one supervised phone."""

    device: str
    addr: tuple[str, int]
    dialog: PhoneDialog | None = None
    xref: str | None = None
    monitored: bool = False
    waiting: deque[asyncio.Future[Message]] = attrs.field(factory=deque)
    keepalive: asyncio.Task[None] | None = None
    reopen: asyncio.Task[None] | None = None
    restarts: int = 0


class UaCstaDriver(PbxDriver):
    """Phones supervised and controlled over uaCSTA: CSTA XML in SIP INFO, one dialog per phone."""

    type_name = "uacsta"
    Config = UaCstaConfig
    capabilities = UACSTA_CAPABILITIES
    description = "SIP phones over uaCSTA (ECMA TR/87): CSTA XML in SIP INFO"

    def __init__(self, config: UaCstaConfig, context: Any):
        super().__init__(config, context)
        self.config: UaCstaConfig = config
        self.capacity = config.capacity
        self.sites = tuple(config.sites)
        self.log = logging.LoggerAdapter(log, {"link": context.name})
        self.repeats = RepeatLimiter(log)
        self.codec = Codec(config.edition)
        self.endpoint: SipEndpoint | None = None
        self.sessions: dict[str, PhoneSession] = {}
        self.counters: dict[str, int] = dict.fromkeys(
            ("events", "emit_errors", "csta_errors", "sessions_opened", "sessions_lost", "unsolicited_answers"), 0)
        self._running = False

    @property
    def address(self) -> str:
        return f"{self.config.transport}:{self.config.host}:{self.endpoint.port if self.endpoint else self.config.port}"

    @property
    def connected(self) -> bool:
        return self._running and self.endpoint is not None

    # -- life cycle -----------------------------------------------------------------
    async def setup(self) -> None:
        endpoint = SipEndpoint(host=self.config.host, port=self.config.port, transport=self.config.transport, name=self.name,
                               advertised_host=self.config.advertised_host, repeats=self.repeats)
        try:
            await endpoint.start()
        except OSError as exc:
            raise NotReady(f"cannot listen for SIP on {self.config.transport} {self.config.host}:{self.config.port}: {exc.strerror or exc}") from None
        self.endpoint = endpoint
        self._running = True
        self.log.info("%s: uaCSTA endpoint listening on %s", self.name, self.address)
        self.link_up()

    async def close(self) -> None:
        self._running = False
        for session in list(self.sessions.values()):
            await self._end(session)
        self.sessions.clear()
        if self.endpoint is not None:
            await self.endpoint.stop()
            self.endpoint = None
        self.repeats.flush()

    def link_stats(self) -> dict[str, Any]:
        """Counters of the link for ``GET /api/v1/links``: SIP (malformed, stray ...), CSTA, sessions."""
        stats: dict[str, Any] = dict(self.counters)
        if self.endpoint is not None:
            stats.update({f"sip_{k}": v for k, v in attrs.asdict(self.endpoint.stats).items()})
        stats["phones"] = {d: ("up" if s.dialog is not None and s.dialog.established else "down") for d, s in sorted(self.sessions.items())}
        return stats

    # -- sessions ---------------------------------------------------------------------
    def phone_address(self, device: str) -> tuple[str, int]:
        text = self.config.phones.get(device)
        if text is None:
            raise CstaLinkError(f'device {device}: link {self.name} knows no phone for it; add phones = {{ "{device}" = "<phone address>" }} '
                                f"to [pbx.links.{self.name}]")
        return parse_phone_address(text, self.config.phone_sip_port)

    def _endpoint(self, operation: str) -> SipEndpoint:
        if self.endpoint is None or not self._running:
            raise CstaLinkError(f"{operation}: uaCSTA link {self.name} is not running")
        return self.endpoint

    async def _open(self, session: PhoneSession) -> None:
        endpoint = self._endpoint("monitor")
        password = self.config.sip_password.reveal() if self.config.sip_password is not None else None
        auth = SipDigestAuth(self.config.sip_username or session.device, password) if password is not None else None
        dialog = PhoneDialog(endpoint, addr=session.addr, user=session.device, auth=auth, timeout=float(self.config.request_timeout),
                             on_csta=lambda body: self._on_csta(session, body), on_lost=lambda reason: self._on_lost(session, reason))
        session.dialog = dialog
        try:
            await dialog.open()
        except SipError as exc:
            session.dialog = None
            with contextlib.suppress(Exception):
                await dialog.close()
            raise CstaLinkError(f"device {session.device}: {exc}") from None
        self.counters["sessions_opened"] += 1
        self.log.info("%s: uaCSTA session with phone %s at %s:%s open (%s)", self.name, session.device, *session.addr,
                      dialog.user_agent or "user agent not given")
        if self.config.keepalive_interval > 0:
            session.keepalive = asyncio.get_running_loop().create_task(self._keepalive(session, dialog))

    async def _session(self, device: str, operation: str) -> PhoneSession:
        session = self.sessions.get(device)
        if session is None or session.dialog is None or not session.dialog.established:
            raise CstaLinkError(f"{operation}: the uaCSTA session with the phone of {device} is down (link {self.name})")
        return session

    async def _keepalive(self, session: PhoneSession, dialog: PhoneDialog) -> None:
        interval = float(self.config.keepalive_interval)
        endpoint = self._endpoint("keep-alive")
        while dialog.established:
            await asyncio.sleep(interval)
            if not dialog.established:
                return
            host, port = endpoint.local_addr
            request = dialog.dialog.create_request("OPTIONS", via_host=host, via_port=port, via_transport=endpoint.transport_name.upper())
            try:
                response = await endpoint.transact(request, dialog.addr, float(self.config.request_timeout))
            except SipError as exc:
                dialog.lost(f"keep-alive: {exc}")
                return
            if response.status_code == 481:
                dialog.lost("keep-alive: the phone no longer knows the session (481); it restarted")
                return

    def _on_lost(self, session: PhoneSession, reason: str) -> None:
        self.counters["sessions_lost"] += 1
        self.log.warning("%s: uaCSTA session with phone %s lost: %s; re-opening", self.name, session.device, reason)
        for future in session.waiting:
            if not future.done():
                future.set_exception(CstaLinkError(f"the uaCSTA session with the phone of {session.device} was lost: {reason}"))
        session.waiting.clear()
        session.dialog = None
        session.xref = None
        if session.keepalive is not None:
            session.keepalive.cancel()
            session.keepalive = None
        if session.monitored:
            self.emit(PbxEvent("monitor_lost", session.device, cause="phone_session_lost"))
            if self._running and (session.reopen is None or session.reopen.done()):
                session.reopen = asyncio.get_running_loop().create_task(self._reopen(session))

    async def _reopen(self, session: PhoneSession) -> None:
        delay = float(self.config.reconnect_min)
        while self._running and session.monitored and self.sessions.get(session.device) is session:
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            try:
                await self._open(session)
                await self._monitor_start(session)
            except (CstaBaseError, SipError) as exc:
                self.repeats.log(logging.WARNING, f"{self.name}: phone re-open", "%s: phone %s not back yet: %s", self.name, session.device, exc)
                if session.dialog is not None:
                    await session.dialog.close()
                    session.dialog = None
                delay = min(delay * 2, float(self.config.reconnect_max))
                continue
            session.restarts += 1
            self.log.info("%s: phone %s supervised again", self.name, session.device)
            return

    async def _end(self, session: PhoneSession) -> None:
        session.monitored = False
        for task in (session.keepalive, session.reopen):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if session.dialog is not None:
            await session.dialog.close()
            session.dialog = None

    # -- CSTA over INFO --------------------------------------------------------------
    def _on_csta(self, session: PhoneSession, body: bytes) -> int:
        try:
            message = self.codec.decode(body)
        except CodecError as exc:
            self.counters["csta_errors"] += 1
            self.repeats.log(logging.WARNING, f"{self.name}: unreadable CSTA", "%s: INFO body from phone %s is not CSTA XML (%s); answered 400, "
                             "counted in csta_errors", self.name, session.device, exc)
            if self.endpoint is not None:
                self.endpoint.stats.refused_bodies += 1
            return 400
        if message.kind is MessageKind.EVENT:
            self.counters["events"] += 1
            try:
                events = events_from_csta(message, session.device)
            except Exception:  # noqa: BLE001 - an odd event must not end the session
                self.counters["csta_errors"] += 1
                self.repeats.log(logging.ERROR, f"{self.name}: mapping errors", "%s: cannot map %s of phone %s", self.name, message.name,
                                 session.device, exc_info=True)
                return 200
            for event in events:
                try:
                    self.emit(event)
                except Exception:  # noqa: BLE001 - the phone gets its 200 whatever the kernel made of the event
                    self.counters["emit_errors"] += 1
                    self.repeats.log(logging.ERROR, f"{self.name}: events not applied", "%s: %s of phone %s could not be applied", self.name,
                                     event.type, session.device, exc_info=True)
            return 200
        if message.kind in (MessageKind.RESPONSE, MessageKind.ERROR):
            while session.waiting:
                future = session.waiting.popleft()
                if not future.done():
                    future.set_result(message)
                    return 200
            self.counters["unsolicited_answers"] += 1
            return 200
        return 200  # a request from the phone (SystemStatus ...): acknowledged, nothing to do

    async def request(self, session: PhoneSession, message: Message) -> Message:
        """Send a CSTA request to the phone; its answer, or ``CstaError``/``CstaTimeout``/``CstaLinkError``."""
        dialog = session.dialog
        if dialog is None or not dialog.established:
            raise CstaLinkError(f"{message.name}: the uaCSTA session with the phone of {session.device} is down (link {self.name})")
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        session.waiting.append(future)
        timeout = float(self.config.request_timeout)
        try:
            try:
                body = await dialog.info(self.codec.encode(message))
            except SipError as exc:
                if exc.status is None:
                    raise CstaTimeout(message.name, timeout, link=self.name) from None
                raise CstaLinkError(f"{message.name}: {exc}") from None
            if body.strip():
                try:
                    answer = self.codec.decode(body)
                except CodecError as exc:
                    self.counters["csta_errors"] += 1
                    raise CodecError(f"{message.name}: the phone of {session.device} answered with a body that is not CSTA XML: {exc}") from None
            else:
                try:
                    async with asyncio.timeout(timeout):
                        answer = await future
                except TimeoutError:
                    raise CstaTimeout(message.name, timeout, link=self.name) from None
        finally:
            with contextlib.suppress(ValueError):
                session.waiting.remove(future)
        if answer.kind is MessageKind.ERROR:
            raise CstaError.from_response(answer, message)
        return answer

    # -- operations ------------------------------------------------------------------
    async def _monitor_start(self, session: PhoneSession) -> None:
        response = await self.request(session, codec.monitor_start(session.device))
        xref = response.monitor_cross_ref_id
        if not xref:
            raise CodecError(f"MonitorStartResponse of the phone of {session.device} carries no monitorCrossRefID")
        session.xref = xref
        session.monitored = True

    async def monitor(self, device: str) -> None:
        self._endpoint("monitor")
        addr = self.phone_address(device)
        session = self.sessions.get(device)
        if session is None or session.addr != addr:
            if session is not None:
                await self._end(session)
            session = self.sessions[device] = PhoneSession(device, addr)
        if session.dialog is None or not session.dialog.established:
            await self._open(session)
        await self._monitor_start(session)

    async def stop_monitor(self, device: str) -> None:
        session = self.sessions.pop(device, None)
        if session is None:
            return
        if session.xref and session.dialog is not None and session.dialog.established:
            with contextlib.suppress(CstaBaseError):
                await self.request(session, codec.monitor_stop(session.xref))
        await self._end(session)

    async def make_call(self, device: str, number: str) -> str:
        session = await self._session(device, "make_call")
        response = await self.request(session, codec.make_call(device, number))
        if response.call_id is None:
            raise CodecError(f"MakeCallResponse of the phone of {device} for {number} carries no call id")
        return response.call_id

    async def answer(self, device: str, call_id: str) -> None:
        session = await self._session(device, "answer")
        await self.request(session, codec.answer_call(Connection(call_id, device)))

    async def hang_up(self, device: str, call_id: str) -> None:
        session = await self._session(device, "hang_up")
        await self.request(session, codec.clear_connection(Connection(call_id, device)))

    async def hold(self, device: str, call_id: str) -> None:
        session = await self._session(device, "hold")
        await self.request(session, codec.hold_call(Connection(call_id, device)))

    async def retrieve(self, device: str, call_id: str) -> None:
        session = await self._session(device, "retrieve")
        await self.request(session, codec.retrieve_call(Connection(call_id, device)))
