"""The SIP side of uaCSTA (ECMA TR/87): one local SIP endpoint and one INVITE dialog per phone.

SIP messages are parsed, built and authenticated by aiosipua (``SipMessage``, ``Dialog``,
``answer_challenge``) over its UDP or TCP transport; this module only keeps what uaCSTA
needs on top: a dialog per phone opened by an INVITE whose body type is
``application/csta+xml``, requests sent in INFO inside that dialog with their answers
matched by Call-ID and CSeq, INFO requests from the phone handed to a callback, and
retransmission over UDP (RFC 3261 timer A/E, doubled from ``T1`` up to ``T2``).

What arrives and is not SIP (a datagram or stream aiosipua cannot parse), or is a request
outside any dialog we opened, is answered where SIP allows it (481, 415, 400), logged through
a ``RepeatLimiter`` and counted in ``SipStats``; nothing else is affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from typing import Literal

import attrs
from aiosipua import Dialog, DialogState, SipMessage, SipRequest, SipResponse, TcpSipTransport, UdpSipTransport
from aiosipua import transport as aiosipua_transport
from aiosipua.auth import SipDigestAuth, answer_challenge
from aiosipua.headers import Address
from aiosipua.message import missing_required_headers
from aiosipua.transport import SipTransport
from aiosipua.utils import generate_branch, generate_call_id, generate_tag

from twpcore.plugin_api import RepeatLimiter

log = logging.getLogger(__name__)

CSTA_CONTENT_TYPE = "application/csta+xml"
"""Body type of uaCSTA messages (ECMA TR/87)."""
T1, T2 = 0.5, 4.0
"""RFC 3261 retransmission timers (seconds) for requests sent over UDP."""

Transport = Literal["udp", "tcp"]


class SipError(Exception):
    """A SIP request failed: refused by the phone (``status``), not answered, or the dialog is gone."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@attrs.define
class SipStats:
    """Counters of one endpoint, shown in ``link_stats()``."""

    received: int = 0
    sent: int = 0
    malformed: int = 0
    """Datagrams or stream messages that are not SIP."""
    stray: int = 0
    """Requests or responses that belong to no dialog or request of ours."""
    refused_bodies: int = 0
    """INFO bodies that are not ``application/csta+xml`` or not readable CSTA XML."""
    retransmissions: int = 0
    """Requests TWP sent again over UDP (no answer yet)."""
    duplicates: int = 0
    """Requests the phone sent again (our answer was lost): answered again, not applied twice."""
    auth_challenges: int = 0


class _Counting:
    """Mixin: count and log (rate-limited) what aiosipua cannot parse, instead of its own warning with a traceback."""

    endpoint: SipEndpoint

    def _dispatch(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            msg = SipMessage.parse(data)
        except Exception as exc:  # noqa: BLE001 - aiosipua raises ValueError and friends for anything unparsable
            self.endpoint.malformed(addr, str(exc))
            return
        problem = _problem(msg)
        if problem:
            self.endpoint.malformed(addr, problem)
            return
        try:
            self.endpoint.on_message(msg, addr)
        except Exception as exc:  # noqa: BLE001 - a message we could not handle must not close the phone's connection
            self.endpoint.malformed(addr, f"{type(exc).__name__}: {exc}")


_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]{1,32}")


def _problem(msg: SipRequest | SipResponse) -> str | None:
    """What makes a message aiosipua parsed (it is lenient) unusable: a method that is no token, a missing header."""
    try:
        cseq = msg.cseq
    except ValueError as exc:  # aiosipua parses CSeq when asked
        return f"CSeq {msg.get_header('CSeq')!r:.40}: {exc}"
    if cseq is None:
        return "no CSeq"
    if isinstance(msg, SipRequest):
        if not _TOKEN.fullmatch(msg.method):
            return f"request method {msg.method[:32]!r} is not a SIP token"
        missing = missing_required_headers(msg)
        if missing:
            return f"{msg.method} without {', '.join(missing)}"
        return None
    if not msg.call_id:
        return "response without Call-ID"
    return None


class _UdpProtocol(aiosipua_transport._UdpProtocol):
    # aiosipua 0.7.1 asserts isinstance(transport, asyncio.DatagramTransport), which CPython 3.11's selector
    # transport is not (it is from 3.12 on); the transport is taken from create_datagram_endpoint instead.
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        pass


class _UdpTransport(_Counting, UdpSipTransport):
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), local_addr=self.local_addr)
        self._udp_transport = transport


class _TcpTransport(_Counting, TcpSipTransport):
    async def _handle_incoming(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, addr: tuple[str, int]) -> None:
        try:
            await super()._handle_incoming(reader, writer, addr)
        finally:
            self.endpoint.connection_closed(addr)


class SipEndpoint:
    """The local SIP endpoint of a uaCSTA link: a UDP socket or a TCP listener, and the phones' dialogs.

    ``on_request(dialog_call_id, request, addr)`` receives every in-dialog request other than
    the ones the endpoint answers itself (ACK, BYE, OPTIONS); it returns the response to
    send (status, body) or None for a plain 200.
    """

    def __init__(self, *, host: str, port: int, transport: Transport, name: str, advertised_host: str | None = None,
                 repeats: RepeatLimiter | None = None) -> None:
        self.host, self.port, self.transport_name, self.name = host, port, transport, name
        self.advertised_host = advertised_host
        self.repeats = repeats or RepeatLimiter(log)
        self.stats = SipStats()
        self.transport: SipTransport | None = None
        self.dialogs: dict[str, PhoneDialog] = {}
        self._pending: dict[tuple[str, int, str], asyncio.Future[SipResponse]] = {}

    @property
    def local_addr(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.local_addr
        return (self.advertised_host or (host if host not in ("0.0.0.0", "") else "127.0.0.1"), port)

    async def start(self) -> None:
        cls = _UdpTransport if self.transport_name == "udp" else _TcpTransport
        transport = cls(local_addr=(self.host, self.port))
        transport.endpoint = self
        await transport.start()
        if self.port == 0:  # learn the port the system chose (tests, benchmarks)
            if isinstance(transport, _UdpTransport) and transport._udp_transport is not None:
                self.port = transport._udp_transport.get_extra_info("sockname")[1]
            elif isinstance(transport, _TcpTransport) and transport._server is not None:
                self.port = transport._server.sockets[0].getsockname()[1]
            transport.local_addr = (self.host, self.port)
        self.transport = transport

    async def stop(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(SipError("the SIP endpoint was stopped"))
        self._pending.clear()
        if self.transport is not None:
            await self.transport.stop()
            self.transport = None

    # -- incoming ------------------------------------------------------------------
    def malformed(self, addr: tuple[str, int], reason: str) -> None:
        self.stats.malformed += 1
        self.repeats.log(logging.WARNING, f"{self.name}: malformed SIP", "%s: malformed SIP from %s:%s refused (%.120s); counted in "
                         "sip_malformed", self.name, addr[0], addr[1], reason)

    def connection_closed(self, addr: tuple[str, int]) -> None:
        """The TCP connection to a phone closed: its dialogs are gone (the phone restarted or was switched off)."""
        if self.transport is None:
            return
        for dialog in [d for d in self.dialogs.values() if d.addr == addr]:
            dialog.lost(f"the TCP connection to the phone at {addr[0]}:{addr[1]} closed")

    def on_message(self, msg: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        self.stats.received += 1
        if isinstance(msg, SipResponse):
            self._on_response(msg, addr)
        else:
            self._on_request(msg, addr)

    def _on_response(self, response: SipResponse, addr: tuple[str, int]) -> None:
        cseq = response.cseq
        key = (response.call_id or "", cseq.seq if cseq else -1, cseq.method if cseq else "")
        future = self._pending.get(key)
        if future is None:
            if cseq is not None and cseq.method == "INVITE" and 200 <= response.status_code < 300:
                dialog = self.dialogs.get(key[0])
                if dialog is not None:
                    dialog.ack(response)  # a retransmitted 2xx: acknowledge again
                    return
            self.stats.stray += 1
            return
        if response.status_code >= 200 and not future.done():
            future.set_result(response)

    def _on_request(self, request: SipRequest, addr: tuple[str, int]) -> None:
        dialog = self.dialogs.get(request.call_id or "")
        if request.method == "ACK":
            return
        if dialog is not None and dialog.addr != addr:
            # A request naming a phone's dialog from another address: nobody but the phone may speak in it.
            self.stats.stray += 1
            self.repeats.log(logging.WARNING, f"{self.name}: SIP from a foreign address", "%s: SIP %s for the session of the phone at %s "
                             "came from %s:%s; answered 403", self.name, request.method[:16], dialog.addr[0], addr[0], addr[1])
            self.reply(request, 403, addr)
            return
        if dialog is None or dialog.closed:
            if request.method == "OPTIONS":
                self.reply(request, 200, addr)
                return
            self.stats.stray += 1
            self.repeats.log(logging.WARNING, f"{self.name}: SIP outside a dialog", "%s: SIP %s from %s:%s belongs to no uaCSTA session "
                             "of this link; answered 481", self.name, request.method[:16], addr[0], addr[1])
            self.reply(request, 481, addr)
            return
        if request.method == "BYE":
            self.reply(request, 200, addr)
            dialog.lost("the phone ended the uaCSTA session (BYE)")
            return
        if request.method in ("OPTIONS", "UPDATE"):
            self.reply(request, 200, addr)
            return
        if request.method != "INFO":
            self.reply(request, 405, addr)
            return
        cseq = request.cseq.seq if request.cseq else -1
        if cseq in dialog.answered:
            # The phone did not get our answer (UDP) and sent the INFO again: answer it again, do not apply it twice.
            self.stats.duplicates += 1
            self.reply(request, dialog.answered[cseq], addr)
            return
        status, body = dialog.on_info(request)
        dialog.answered[cseq] = status
        if len(dialog.answered) > 32:
            del dialog.answered[next(iter(dialog.answered))]
        self.reply(request, status, addr, body=body)

    def reply(self, request: SipRequest, status: int, addr: tuple[str, int], *, body: bytes = b"", reason: str = "") -> None:
        response = SipResponse(status_code=status, reason_phrase=reason or _REASONS.get(status, ""))
        for via in request.headers.get("via"):
            response.headers.append("Via", via)
        for name in ("From", "To", "Call-ID", "CSeq"):
            value = request.headers.get_first(name)
            if value:
                response.headers.set_single(name, value)
        to = request.headers.get_first("to") or ""
        dialog = self.dialogs.get(request.call_id or "")
        if dialog is not None and "tag=" not in to:
            response.headers.set_single("To", f"{to};tag={dialog.dialog.local_tag}")
        if body:
            response.headers.set_single("Content-Type", CSTA_CONTENT_TYPE)
            response.body = body
        self.send(response, addr)

    # -- outgoing ------------------------------------------------------------------
    def send(self, message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        if self.transport is None:
            raise SipError(f"{self.name}: the SIP endpoint is not started")
        try:
            self.transport.send(message, addr)
        except RuntimeError as exc:
            raise SipError(f"{self.name}: cannot send to {addr[0]}:{addr[1]}: {exc}") from None
        self.stats.sent += 1

    async def transact(self, request: SipRequest, addr: tuple[str, int], timeout: float) -> SipResponse:
        """Send ``request`` and wait for its final response (retransmitting over UDP); raises ``SipError`` on silence."""
        cseq = request.cseq
        assert cseq is not None
        key = (request.call_id or "", cseq.seq, cseq.method)
        future: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            self.send(request, addr)
            interval = T1
            async with asyncio.timeout(timeout):
                while True:
                    if self.transport_name == "tcp":
                        return await future
                    done, _ = await asyncio.wait({future}, timeout=interval)
                    if done:
                        return future.result()
                    self.stats.retransmissions += 1
                    self.send(request, addr)
                    interval = min(interval * 2, T2)
        except TimeoutError:
            raise SipError(f"no answer to SIP {cseq.method} from {addr[0]}:{addr[1]} within {timeout:g} s") from None
        finally:
            self._pending.pop(key, None)

    async def connect(self, addr: tuple[str, int], timeout: float) -> None:
        """Over TCP, open the connection to ``addr`` (once); over UDP, nothing."""
        transport = self.transport
        if isinstance(transport, _TcpTransport) and addr not in transport._connections:
            try:
                async with asyncio.timeout(timeout):
                    await transport.connect(addr)
            except (OSError, TimeoutError) as exc:
                raise SipError(f"cannot open TCP to the phone at {addr[0]}:{addr[1]}: {exc or 'time-out'}") from None

    def disconnect(self, addr: tuple[str, int]) -> None:
        transport = self.transport
        if isinstance(transport, _TcpTransport):
            conn = transport._connections.pop(addr, None)
            if conn is not None:
                conn[1].close()


_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 405: "Method Not Allowed", 415: "Unsupported Media Type",
            481: "Call/Transaction Does Not Exist",
            488: "Not Acceptable Here", 500: "Server Internal Error"}


class PhoneDialog:
    """The uaCSTA session with one phone: the INVITE dialog and the INFO requests inside it.

    ``on_csta(body)`` receives each CSTA body the phone sends in INFO and returns the SIP status
    to answer (200, or 400/415 for a body it refused).  ``on_lost(reason)`` is called once
    when the dialog ends (BYE from the phone, keep-alive unanswered, closed by us).
    """

    def __init__(self, endpoint: SipEndpoint, *, addr: tuple[str, int], user: str, auth: SipDigestAuth | None,
                 on_csta: Callable[[bytes], int], on_lost: Callable[[str], None], timeout: float,
                 local_user: str = "twp") -> None:
        self.endpoint = endpoint
        self.addr = addr
        self.user = user
        self.auth = auth
        self.on_csta = on_csta
        self.on_lost = on_lost
        self.timeout = timeout
        host, port = addr
        self.dialog = Dialog(call_id=generate_call_id(endpoint.local_addr[0]), local_tag=generate_tag(), remote_tag="",
                             local_uri=f"sip:{local_user}@{endpoint.local_addr[0]}:{endpoint.local_addr[1]}",
                             remote_uri=f"sip:{user}@{host}:{port}", remote_target=f"sip:{user}@{host}:{port}", state=DialogState.EARLY)
        self.closed = False
        self.user_agent: str | None = None
        self.answered: dict[int, int] = {}
        """CSeq → status of the phone's last INFO requests, to answer a retransmission without applying it again."""
        self._lock = asyncio.Lock()

    @property
    def established(self) -> bool:
        return self.dialog.state is DialogState.CONFIRMED and not self.closed

    def _via(self) -> str:
        host, port = self.endpoint.local_addr
        return f"SIP/2.0/{self.endpoint.transport_name.upper()} {host}:{port};branch={generate_branch()};rport"

    def _invite(self, body: bytes) -> SipRequest:
        d = self.dialog
        request = SipRequest(method="INVITE", uri=d.remote_uri)
        request.headers.append("Via", self._via())
        request.headers.set_single("From", f"<{d.local_uri}>;tag={d.local_tag}")
        request.headers.set_single("To", f"<{d.remote_uri}>")
        request.headers.set_single("Call-ID", d.call_id)
        request.headers.set_single("CSeq", f"{d.next_cseq()} INVITE")
        request.headers.set_single("Max-Forwards", "70")
        request.headers.set_single("Contact", f"<{d.local_uri};transport={self.endpoint.transport_name}>")
        request.headers.set_single("User-Agent", "TWP uaCSTA")
        request.headers.set_single("Content-Type", CSTA_CONTENT_TYPE)
        request.headers.set_single("Content-Disposition", "session")
        request.body = body
        return request

    async def open(self, body: bytes = b"") -> None:
        """Send the INVITE (answering one digest challenge with the link's credentials), then ACK the 200."""
        self.endpoint.dialogs[self.dialog.call_id] = self
        await self.endpoint.connect(self.addr, self.timeout)
        request = self._invite(body)
        response = await self.endpoint.transact(request, self.addr, self.timeout)
        if response.status_code in (401, 407):
            self.endpoint.stats.auth_challenges += 1
            self.ack(response, request)
            if self.auth is None:
                raise SipError(f"the phone at {self.addr[0]} asks for SIP digest authentication (status {response.status_code}); set "
                               "sip_username and sip_password on the link", status=response.status_code)
            header = answer_challenge(self.auth, response, response.status_code, "INVITE", request.uri)
            if header is None:
                raise SipError(f"the phone at {self.addr[0]} asks for an authentication TWP cannot answer", status=response.status_code)
            request = self._invite(body)
            request.headers.set_single(*header)
            response = await self.endpoint.transact(request, self.addr, self.timeout)
            if response.status_code in (401, 403, 407):
                self.ack(response, request)
                raise SipError(f"the phone at {self.addr[0]} refused the SIP credentials of the link (status {response.status_code}); "
                               "check sip_username and sip_password", status=response.status_code)
        if response.status_code >= 300:
            self.ack(response, request)
            raise SipError(f"the phone at {self.addr[0]} refused the uaCSTA session: {response.status_code} {response.reason_phrase}; "
                           "is uaCSTA (CSTA control) enabled on it?", status=response.status_code)
        to = response.to_addr
        self.dialog.remote_tag = (to.tag or "") if to else ""
        contacts = response.contact
        if contacts and contacts[0].uri.host:
            self.dialog.remote_target = _uri_text(contacts[0])
        self.dialog.route_set = list(reversed(response.headers.get("record-route")))
        self.dialog.confirm()
        self.user_agent = response.get_header("User-Agent") or response.get_header("Server")
        self.ack(response)

    def ack(self, response: SipResponse, request: SipRequest | None = None) -> None:
        """ACK a final response to our INVITE (RFC 3261 17.1.1.3 for non-2xx, 13.2.2.4 for 2xx)."""
        d = self.dialog
        cseq = response.cseq
        ack = SipRequest(method="ACK", uri=d.remote_target if request is None else request.uri)
        if request is not None:
            ack.headers.append("Via", request.headers.get_first("via") or self._via())
        else:
            ack.headers.append("Via", self._via())
        ack.headers.set_single("From", f"<{d.local_uri}>;tag={d.local_tag}")
        ack.headers.set_single("To", response.headers.get_first("to") or f"<{d.remote_uri}>")
        ack.headers.set_single("Call-ID", d.call_id)
        ack.headers.set_single("CSeq", f"{cseq.seq if cseq else 1} ACK")
        ack.headers.set_single("Max-Forwards", "70")
        with contextlib.suppress(SipError):
            self.endpoint.send(ack, self.addr)

    async def info(self, body: bytes) -> bytes:
        """Send one CSTA message in INFO; return the body of the 200 (empty if the phone put none there)."""
        if not self.established:
            raise SipError(f"the uaCSTA session with the phone at {self.addr[0]} is not established")
        host, port = self.endpoint.local_addr
        request = self.dialog.create_request("INFO", via_host=host, via_port=port, via_transport=self.endpoint.transport_name.upper())
        request.headers.set_single("Content-Type", CSTA_CONTENT_TYPE)
        request.body = body
        response = await self.endpoint.transact(request, self.addr, self.timeout)
        if response.status_code == 481:
            self.lost("the phone no longer knows the uaCSTA session (481); it probably restarted")
            raise SipError("the phone no longer knows the uaCSTA session (481)", status=481)
        if response.status_code >= 300:
            raise SipError(f"the phone at {self.addr[0]} refused INFO: {response.status_code} {response.reason_phrase}",
                           status=response.status_code)
        return bytes(response.body or b"")

    def on_info(self, request: SipRequest) -> tuple[int, bytes]:
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        if content_type != CSTA_CONTENT_TYPE:
            self.endpoint.stats.refused_bodies += 1
            self.endpoint.repeats.log(logging.WARNING, f"{self.endpoint.name}: INFO not CSTA", "%s: INFO from the phone at %s with "
                                      "Content-Type %.40r refused (415); expected %s", self.endpoint.name, self.addr[0], content_type,
                                      CSTA_CONTENT_TYPE)
            return 415, b""
        return self.on_csta(bytes(request.body or b"")), b""

    def lost(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.dialog.terminate()
        self.endpoint.dialogs.pop(self.dialog.call_id, None)
        self.on_lost(reason)

    async def close(self) -> None:
        """End the session with a BYE (best effort) and forget it, without calling ``on_lost``."""
        if self.closed:
            return
        was_up = self.established
        self.closed = True
        self.endpoint.dialogs.pop(self.dialog.call_id, None)
        if was_up:
            host, port = self.endpoint.local_addr
            bye = self.dialog.create_request("BYE", via_host=host, via_port=port, via_transport=self.endpoint.transport_name.upper())
            with contextlib.suppress(SipError):
                await self.endpoint.transact(bye, self.addr, min(self.timeout, 1.0))
        self.dialog.terminate()


def _uri_text(address: Address) -> str:
    uri = address.uri
    return f"sip:{uri.user + '@' if uri.user else ''}{uri.host}{':' + str(uri.port) if uri.port else ''}"


__all__ = ["CSTA_CONTENT_TYPE", "PhoneDialog", "SipEndpoint", "SipError", "SipStats"]
