"""CSTA client session over an asyncio stream: requests, events, heartbeats, whatever the encoding.

``CstaClient`` runs one PBX link.  It is transport- and encoding-agnostic: give it the
``(StreamReader, StreamWriter)`` of a TCP connection (``CstaClient.connect`` opens one),
a ``Framing`` and a codec (``MessageCodec``: the XML ``Codec``, or the BER codec of
``twp_csta.ber``, which writes the invoke id inside each ROSE APDU).  Before ``start()``
an association step may use the link directly (``handshake`` for raw bytes such as
the OmniPCX Office ``B``/``P`` exchange, ``exchange`` for one framed APDU and its
answer, such as ACSE AARQ/AARE); ``CstaClient.connect(prelude=...)`` runs it.  It then

- allocates invoke ids (1-9998, wrapping, skipping ids still in flight; 9999 is left to
  events) and matches each answer to its request: by the invoke id of the frame header
  or of the ROSE APDU, or, when neither carries one (NUL-terminated XML), to the oldest
  pending request whose answer has that name (a ``CSTAErrorCode`` goes to the oldest
  pending request);
- turns ``CSTAErrorCode`` and ECMA-354 negative answers into ``CstaError`` and silence
  into ``CstaTimeout``;
- hands every event, every unmatched answer and every request from the PBX to
  ``on_event`` (a late answer to a request that timed out is unmatched);
- answers the PBX's ``SystemStatus`` requests at once with ``SystemStatusResponse``
  under the same invoke id (the message is then also passed to ``on_event``, since a
  status such as ``messagesLost`` or ``disabled`` matters to the driver);
- optionally sends its own ``SystemStatus`` every ``heartbeat_interval`` seconds and
  declares the link lost after ``heartbeat_max_missed`` unanswered ones (any answer,
  even an error, proves the PBX alive);
- starts an ECMA-354 application session and keeps it alive with
  ``ResetApplicationSessionTimer``; a refused keep-alive means the session is gone,
  which is reported as a lost link so the driver restarts it;
- logs, counts and skips malformed frames without closing the link, unless the framing
  reports a fatal error; repeated warnings go through a ``RepeatLimiter`` (a few lines,
  then one summary), so a PBX sending garbage cannot flood the log.

When the link is lost (closed by the PBX, socket error, heartbeat or session loss,
fatal framing error) every pending request fails with ``CstaLinkError`` and
``on_link_lost(reason)`` is called once.  ``close()`` does not call it.  Payloads are
never logged, since log-in data travels in them; ``on_pdu`` receives them for traces.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Container
from typing import Any, Protocol

import attrs

from twp_csta.errors import (
    CodecError,
    CstaBaseError,
    CstaError,
    CstaLinkError,
    CstaTimeout,
    FramingError,
)
from twp_csta.framing import Frame, Framing
from twp_csta.xml.codec import (
    CSTA_NAMESPACES,
    Codec,
    Message,
    MessageKind,
    build,
    edition_of,
    reset_application_session_timer,
    response_names,
    start_application_session,
    stop_application_session,
    system_status,
    system_status_response,
)
from twpcore.plugin_api import RepeatLimiter

log = logging.getLogger(__name__)

class MessageCodec(Protocol):
    """What the client needs of a codec: neutral ``Message`` values to bytes and back."""

    def encode(self, message: Message) -> bytes:
        """One payload (an XML document, a BER APDU) for ``message``; raises ``CodecError``."""
        ...

    def decode(self, payload: bytes) -> Message:
        """The message in one payload; raises ``CodecError`` for anything else."""
        ...


def codec_carries_invoke_id(codec: object) -> bool:
    """Does ``codec`` write the invoke id inside the payload (ROSE), so answers can be matched by it?"""
    return bool(getattr(codec, "carries_invoke_id", False))


EventCallback = Callable[[Message], Awaitable[None] | None]
LinkLostCallback = Callable[[str], Awaitable[None] | None]
PduCallback = Callable[[str, int | None, bytes], None]

FIRST_INVOKE_ID = 1
LAST_INVOKE_ID = 9998


class InvokeIdAllocator:
    """Hands out invoke ids ``first``..``last`` in turn, skipping ids still in use."""

    def __init__(self, first: int = FIRST_INVOKE_ID, last: int = LAST_INVOKE_ID) -> None:
        if not 0 <= first <= last <= 9999:
            raise ValueError(f"invoke id range: expected 0 <= first <= last <= 9999, got {first}..{last}")
        self.first = first
        self.last = last
        self._next = first

    def allocate(self, in_use: Container[int]) -> int:
        """The next free id; raises ``CstaBaseError`` (503) when every id is in flight."""
        for _ in range(self.last - self.first + 1):
            candidate = self._next
            self._next = self.first if candidate >= self.last else candidate + 1
            if candidate not in in_use:
                return candidate
        raise CstaBaseError(
            f"all {self.last - self.first + 1} invoke ids are waiting for an answer; "
            "the PBX is not answering, try again later",
            http_status=503,
        )


@attrs.frozen
class ApplicationSession:
    """An ECMA-354 application session the PBX accepted."""

    session_id: str
    """``sessionID`` given by the PBX."""
    protocol_version: str | None
    """``actualProtocolVersion`` (a CSTA namespace URI, usually)."""
    session_duration: int | None
    """``actualSessionDuration`` in seconds: the session ends unless reset within it."""


@attrs.define
class LinkStats:
    """Counters of one client, for link states, traces and tests."""

    frames_in: int = 0
    """Frames received."""
    frames_out: int = 0
    """Frames sent."""
    framing_errors: int = 0
    """Framing errors (garbage, oversized frames …) skipped."""
    codec_errors: int = 0
    """Frames whose XML could not be read, skipped."""
    events: int = 0
    """Events delivered to ``on_event``."""
    unmatched: int = 0
    """Answers that matched no pending request (late, or unknown invoke id)."""
    requests: int = 0
    """Requests sent."""
    timeouts: int = 0
    """Requests that got no answer in time."""
    errors: int = 0
    """Requests the PBX refused."""
    system_status_answered: int = 0
    """``SystemStatus`` requests of the PBX answered."""
    heartbeats_sent: int = 0
    """Own ``SystemStatus`` heartbeats sent."""
    heartbeats_missed: int = 0
    """Own heartbeats left unanswered."""


@attrs.define(eq=False)
class _Pending:
    request: Message
    future: asyncio.Future[Message]
    expected: frozenset[str]


async def _call(callback: Callable[..., Any] | None, *args: Any) -> None:
    if callback is None:
        return
    result = callback(*args)
    if inspect.isawaitable(result):
        await result


class CstaClient:
    """One CSTA link (XML or BER): see the module docstring for what it does on its own.

    ``request_timeout`` is the default time-out of ``request``; ``heartbeat_interval``
    (seconds, None for no heartbeat), ``heartbeat_timeout`` (defaults to the interval)
    and ``heartbeat_max_missed`` drive link-loss detection; ``name`` appears in logs and
    error messages (use the PBX link's name); ``repeats`` rate-limits the warnings about
    what the PBX sends (give the driver's, so the limit outlives a reconnection).  Call
    ``start()`` (or use ``connect`` or ``async with``) before sending.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        framing: Framing,
        codec: MessageCodec | None = None,
        name: str = "csta",
        on_event: EventCallback | None = None,
        on_link_lost: LinkLostCallback | None = None,
        on_pdu: PduCallback | None = None,
        request_timeout: float = 10.0,
        heartbeat_interval: float | None = None,
        heartbeat_timeout: float | None = None,
        heartbeat_max_missed: int = 2,
        answer_system_status: bool = True,
        read_size: int = 65536,
        repeats: RepeatLimiter | None = None,
    ) -> None:
        if heartbeat_interval is not None and heartbeat_interval <= 0:
            raise ValueError(f"heartbeat_interval: expected a positive number of seconds, got {heartbeat_interval}")
        if heartbeat_max_missed < 1:
            raise ValueError(f"heartbeat_max_missed: expected at least 1, got {heartbeat_max_missed}")
        self._reader = reader
        self._writer = writer
        self.framing = framing
        self.codec: Any = codec if codec is not None else Codec()
        self._ids_in_payload = codec_carries_invoke_id(self.codec)
        self.name = name
        self.on_event = on_event
        self.on_link_lost = on_link_lost
        self.on_pdu = on_pdu
        self.request_timeout = request_timeout
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.heartbeat_max_missed = heartbeat_max_missed
        self.answer_system_status = answer_system_status
        self.read_size = read_size
        self.repeats = repeats if repeats is not None else RepeatLimiter(log)
        self.stats = LinkStats()
        self.session: ApplicationSession | None = None
        """The application session, once ``start_application_session`` succeeded."""
        self.lost_reason: str | None = None
        """Why the link was lost, once it was."""
        self._ids = InvokeIdAllocator()
        self._pending: dict[int, _Pending] = {}
        self._closed = False
        self._reader_task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._keepalive_task: asyncio.Task[None] | None = None
        self._backlog: list[Frame] = []
        """Frames read during the association step, handled first once started."""

    # -- lifecycle ------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        framing: Framing,
        connect_timeout: float = 10.0,
        prelude: Callable[[CstaClient], Awaitable[None]] | None = None,
        **kwargs: Any,
    ) -> CstaClient:
        """Open a TCP connection to a PBX and return a started client.

        ``prelude(client)`` runs before the client starts reading: the association step
        (``handshake``, ``exchange``).  If it fails, the connection is closed and its
        error raised.
        """
        try:
            async with asyncio.timeout(connect_timeout):
                reader, writer = await asyncio.open_connection(host, port)
        except TimeoutError:
            raise CstaLinkError(f"{host}:{port}: no TCP connection within {connect_timeout:g} s") from None
        except OSError as exc:
            raise CstaLinkError(f"{host}:{port}: cannot connect ({exc.strerror or exc})") from None
        try:
            client = cls(reader, writer, framing=framing, **kwargs)
        except BaseException:
            writer.close()
            raise
        if prelude is not None:
            try:
                await prelude(client)
            except BaseException:
                await client.close()
                raise
        client.start()
        return client

    # -- association step (before start) ---------------------------------------------
    async def handshake(self, send: bytes, expect: bytes, *, timeout: float | None = None, what: str = "handshake") -> None:
        """Write ``send`` as raw bytes and read exactly ``expect`` back (before ``start``)."""
        self._before_start(what)
        timeout = self.request_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(send)
                await self._writer.drain()
                got = await self._reader.readexactly(len(expect))
        except TimeoutError:
            raise CstaTimeout(what, timeout, link=self.name) from None
        except asyncio.IncompleteReadError as exc:
            raise CstaLinkError(f"{what}: {self.name}: the PBX closed the connection after {len(exc.partial)} bytes") from None
        except (ConnectionError, OSError) as exc:
            raise CstaLinkError(f"{what}: {self.name}: {exc}") from None
        if got != expect:
            raise CstaLinkError(f"{what}: {self.name}: expected {expect!r} from the PBX, got {got!r}; "
                                "is this port the switch's CSTA interface?")

    async def exchange(self, payload: bytes, *, timeout: float | None = None, what: str = "association") -> bytes:
        """Send one framed payload and return the payload of the first frame that comes back (before ``start``).

        Frames after it that arrived in the same read are kept and handled once the client starts.
        """
        self._before_start(what)
        timeout = self.request_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(self.framing.encode(None, payload))
                await self._writer.drain()
                self.stats.frames_out += 1
                while not self._backlog:
                    data = await self._reader.read(self.read_size)
                    if not data:
                        raise CstaLinkError(f"{what}: {self.name}: the PBX closed the connection")
                    for item in self.framing.feed(data):
                        if isinstance(item, FramingError):
                            self.stats.framing_errors += 1
                            self.repeats.log(logging.WARNING, f"{self.name}: framing errors", "%s: %s", self.name, item.message)
                        else:
                            self._backlog.append(item)
        except TimeoutError:
            raise CstaTimeout(what, timeout, link=self.name) from None
        except (ConnectionError, OSError) as exc:
            if isinstance(exc, CstaLinkError):
                raise
            raise CstaLinkError(f"{what}: {self.name}: {exc}") from None
        frame = self._backlog.pop(0)
        self.stats.frames_in += 1
        return frame.payload

    def _before_start(self, what: str) -> None:
        if self._reader_task is not None:
            raise RuntimeError(f"{what}: the association step runs before start()")
        self._ensure_open(what)

    def start(self) -> None:
        """Start reading (and the heartbeat, if configured); needs a running event loop."""
        if self._reader_task is not None:
            return
        self._reader_task = asyncio.create_task(self._read_loop(), name=f"csta-read-{self.name}")
        if self.heartbeat_interval:
            self._heartbeat_task = asyncio.create_task(self._heartbeat_loop(), name=f"csta-heartbeat-{self.name}")

    async def __aenter__(self) -> CstaClient:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        """True until the link is closed or lost."""
        return not self._closed

    @property
    def pending(self) -> int:
        """Requests waiting for an answer."""
        return len(self._pending)

    async def close(self) -> None:
        """Close the link (without ``on_link_lost``); pending requests fail with ``CstaLinkError``."""
        if self._closed:
            return
        self._shutdown(f"{self.name}: link closed")
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
        for task in (self._reader_task, self._heartbeat_task, self._keepalive_task):
            if task is not None and task is not asyncio.current_task():
                with contextlib.suppress(BaseException):
                    await task

    def _shutdown(self, why: str) -> None:
        self._closed = True
        current = asyncio.current_task()
        for task in (self._reader_task, self._heartbeat_task, self._keepalive_task):
            if task is not None and task is not current and not task.done():
                task.cancel()
        pending, self._pending = self._pending, {}
        for item in pending.values():
            if not item.future.done():
                item.future.set_exception(CstaLinkError(f"{item.request.name}: {why}"))
        with contextlib.suppress(Exception):
            self._writer.close()

    async def _link_lost(self, reason: str) -> None:
        if self._closed:
            return
        self.lost_reason = reason
        log.warning("%s: CSTA link lost: %s", self.name, reason)
        self._shutdown(f"{self.name}: link lost ({reason})")
        try:
            await _call(self.on_link_lost, reason)
        except Exception:
            log.exception("%s: on_link_lost callback failed", self.name)

    # -- sending --------------------------------------------------------------------

    async def request(self, message: Message, *, timeout: float | None = None) -> Message:
        """Send a request and return its positive answer.

        Raises ``CstaError`` when the PBX refuses it, ``CstaTimeout`` when no answer comes
        within ``timeout`` seconds (default ``request_timeout``), ``CstaLinkError`` when
        the link is or goes down, ``CodecError``/``FramingError`` when the message cannot
        be written.
        """
        if message.kind is not MessageKind.REQUEST:
            raise ValueError(f"{message.name} is a {message.kind}, not a request; use send()")
        self._ensure_open(message.name)
        timeout = self.request_timeout if timeout is None else timeout
        invoke_id = self._ids.allocate(self._pending)
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        expected = response_names(message.name) | {f"{message.name}NegResponse"}
        self._pending[invoke_id] = _Pending(message, future, expected)
        self.stats.requests += 1
        try:
            async with asyncio.timeout(timeout):
                await self._write(message, invoke_id)
                response = await future
        except TimeoutError:
            self.stats.timeouts += 1
            raise CstaTimeout(message.name, timeout, link=self.name) from None
        finally:
            self._pending.pop(invoke_id, None)
        if response.kind is MessageKind.ERROR:
            self.stats.errors += 1
            raise CstaError.from_response(response, message)
        return response

    async def send(self, message: Message, *, invoke_id: int | None = None) -> None:
        """Send a message that expects no answer (an answer to the PBX, an event …)."""
        self._ensure_open(message.name)
        await self._write(message, invoke_id if invoke_id is not None else message.invoke_id)

    async def send_payload(self, payload: bytes, *, what: str = "payload") -> None:
        """Frame and send an already encoded payload (an ACSE RLRQ): no answer is awaited, nothing traced."""
        self._ensure_open(what)
        try:
            self._writer.write(self.framing.encode(None, payload))
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise CstaLinkError(f"{what}: {self.name}: link lost while sending ({exc})") from None
        self.stats.frames_out += 1

    def _ensure_open(self, what: str) -> None:
        if self._closed:
            why = f"link lost ({self.lost_reason})" if self.lost_reason else "link closed"
            raise CstaLinkError(f"{what}: {self.name}: {why}")

    async def _write(self, message: Message, invoke_id: int | None) -> None:
        if self._ids_in_payload and message.invoke_id != invoke_id:
            message = attrs.evolve(message, invoke_id=invoke_id)
        payload = self.codec.encode(message)
        frame = self.framing.encode(invoke_id, payload)
        self._trace("out", invoke_id, payload)
        log.debug("%s: -> %s (invoke id %s)", self.name, message.name, invoke_id)
        try:
            self._writer.write(frame)
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            await self._link_lost(f"write failed: {exc}")
            raise CstaLinkError(f"{message.name}: {self.name}: link lost while sending ({exc})") from None
        self.stats.frames_out += 1

    def _trace(self, direction: str, invoke_id: int | None, payload: bytes) -> None:
        if self.on_pdu is None:
            return
        try:
            self.on_pdu(direction, invoke_id, payload)
        except Exception:
            log.exception("%s: on_pdu callback failed", self.name)

    # -- receiving ------------------------------------------------------------------

    async def _read_loop(self) -> None:
        reason = "connection closed by the PBX"
        try:
            backlog, self._backlog = self._backlog, []
            for frame in backlog:
                await self._on_frame(frame)
            while True:
                data = await self._reader.read(self.read_size)
                if not data:
                    break
                for item in self.framing.feed(data):
                    if isinstance(item, FramingError):
                        self.stats.framing_errors += 1
                        if item.fatal:
                            log.warning("%s: %s", self.name, item.message)
                            reason = f"unrecoverable framing error: {item.message}"
                            return
                        self.repeats.log(logging.WARNING, f"{self.name}: framing errors", "%s: %s", self.name, item.message)
                        continue
                    await self._on_frame(item)
        except asyncio.CancelledError:
            raise
        except (ConnectionError, OSError) as exc:
            reason = f"connection error: {exc}"
        except Exception as exc:  # a bug must not leave a link that silently stopped reading
            log.exception("%s: CSTA reader failed", self.name)
            reason = f"internal error while reading: {exc!r}"
        finally:
            if not self._closed:
                await asyncio.shield(self._link_lost(reason))

    async def _on_frame(self, frame: Frame) -> None:
        self.stats.frames_in += 1
        self._trace("in", frame.invoke_id, frame.payload)
        try:
            if frame.invoke_id is None:
                message = self.codec.decode(frame.payload)
            else:
                message = self.codec.decode(frame.payload, invoke_id=frame.invoke_id)
        except CodecError as exc:
            self.stats.codec_errors += 1
            self.repeats.log(logging.WARNING, f"{self.name}: unreadable frames", "%s: skipped an unreadable frame (invoke id %s): %s",
                             self.name, frame.invoke_id, exc.message)
            if self._ids_in_payload:
                await self._on_unreadable_apdu(frame.payload, exc)
            return
        log.debug("%s: <- %s (invoke id %s)", self.name, message.name, frame.invoke_id)
        await self._dispatch(message)

    async def _on_unreadable_apdu(self, payload: bytes, exc: CodecError) -> None:
        """ROSE: an unreadable answer fails its request at once; an invoke of an unknown operation gets a reject."""
        invoke_id = getattr(exc, "invoke_id", None)
        if not isinstance(invoke_id, int) or not payload:
            return
        if payload[0] in (0xA2, 0xA3):  # returnResult, returnError
            pending = self._pending.pop(invoke_id, None)
            if pending is not None and not pending.future.done():
                pending.future.set_exception(CodecError(f"{pending.request.name}: the PBX's answer could not be read ({exc.message})"))
        elif payload[0] == 0xA1 and getattr(exc, "kind", None) == "unknown-operation":
            reject = Message("RoseReject", {"problem": {"invoke": "unrecognizedOperation"}}, kind=MessageKind.ERROR, invoke_id=invoke_id)
            try:
                await self._write(reject, invoke_id)
            except (CstaLinkError, CodecError, FramingError) as err:
                log.debug("%s: could not reject invoke %s: %s", self.name, invoke_id, err)

    async def _dispatch(self, message: Message) -> None:
        if message.kind in (MessageKind.RESPONSE, MessageKind.ERROR):
            pending = self._match(message)
            if pending is not None:
                if not pending.future.done():
                    pending.future.set_result(message)
                return
            self.stats.unmatched += 1
            self.repeats.log(
                logging.INFO, f"{self.name}: unmatched answers",
                "%s: %s with invoke id %s matches no pending request (late or unknown); passed on as an event",
                self.name, message.name, message.invoke_id,
            )
        elif message.kind is MessageKind.REQUEST:
            await self._answer_request(message)
        else:
            self.stats.events += 1
        try:
            await _call(self.on_event, message)
        except Exception:  # noqa: BLE001 - a callback's bug must not stop the reader
            self.repeats.log(logging.ERROR, f"{self.name}: on_event failures", "%s: on_event callback failed for %s",
                             self.name, message.name, exc_info=True)

    def _match(self, message: Message) -> _Pending | None:
        if (self.framing.carries_invoke_id or self._ids_in_payload) and message.invoke_id is not None:
            return self._pending.pop(message.invoke_id, None)
        any_error = message.name == "CSTAErrorCode"
        for invoke_id, item in self._pending.items():
            if any_error or message.name in item.expected:
                return self._pending.pop(invoke_id)
        return None

    async def _answer_request(self, message: Message) -> None:
        answer: Message | None = None
        if message.name == "SystemStatus" and self.answer_system_status:
            answer = system_status_response()
            self.stats.system_status_answered += 1
        elif message.name == "StopApplicationSession" and self.session is not None:
            log.warning("%s: the PBX stopped application session %s", self.name, self.session.session_id)
            self._stop_keepalive()
            self.session = None
            answer = build("StopApplicationSessionPosResponse")
        if answer is None:
            return
        try:
            await self._write(answer, message.invoke_id)
        except (CstaLinkError, CodecError, FramingError) as exc:
            log.warning("%s: could not answer %s: %s", self.name, message.name, exc)

    # -- heartbeat ------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        assert self.heartbeat_interval is not None
        interval = self.heartbeat_interval
        timeout = self.heartbeat_timeout or interval
        missed = 0
        while not self._closed:
            await asyncio.sleep(interval)
            self.stats.heartbeats_sent += 1
            try:
                await self.request(system_status("normal"), timeout=timeout)
                missed = 0
            except CstaTimeout:
                missed += 1
                self.stats.heartbeats_missed += 1
                log.warning(
                    "%s: SystemStatus heartbeat unanswered within %g s (%d of %d allowed)",
                    self.name, timeout, missed, self.heartbeat_max_missed,
                )
                if missed >= self.heartbeat_max_missed:
                    await self._link_lost(f"{missed} SystemStatus heartbeats unanswered")
                    return
            except CstaError:
                missed = 0  # refused, but answered: the PBX is alive
            except CstaLinkError:
                return
            except CstaBaseError as exc:
                log.warning("%s: SystemStatus heartbeat not sent: %s", self.name, exc.message)

    # -- ECMA-354 application session -------------------------------------------------

    async def start_application_session(
        self,
        application_id: str,
        *,
        requested_protocol_versions: list[str] | None = None,
        requested_session_duration: int | None = None,
        application_specific_info: dict[str, Any] | None = None,
        keepalive: bool = True,
        keepalive_interval: float | None = None,
        timeout: float | None = None,
    ) -> ApplicationSession:
        """Start an ECMA-354 session and keep it alive.

        ``requested_protocol_versions`` default to the codec's edition namespace (all of
        ed5, ed4, ed3 for a namespace-less codec).  When the PBX grants another CSTA
        edition, the codec switches to it.  The keep-alive resets the session timer every
        ``keepalive_interval`` seconds, by default half the granted duration.
        """
        if requested_protocol_versions is None:
            ns = self.codec.namespace
            requested_protocol_versions = [ns] if ns else [CSTA_NAMESPACES[e] for e in (5, 4, 3)]
        response = await self.request(
            start_application_session(
                application_id,
                requested_protocol_versions,
                requested_session_duration=requested_session_duration,
                application_specific_info=application_specific_info,
            ),
            timeout=timeout,
        )
        session_id = response.text("sessionID")
        if not session_id:
            raise CodecError(f"{self.name}: {response.name} without a sessionID")
        duration_text = response.text("actualSessionDuration")
        duration = int(duration_text) if duration_text and duration_text.isdigit() else None
        session = ApplicationSession(session_id, response.text("actualProtocolVersion"), duration)
        self.session = session
        edition = edition_of(session.protocol_version)
        if edition in CSTA_NAMESPACES and edition != self.codec.edition:
            log.info("%s: PBX granted CSTA edition %d; writing it from now on", self.name, edition)
            self.codec = self.codec.with_edition(edition)
        log.info("%s: application session %s started (duration %s s)", self.name, session_id, duration)
        interval = keepalive_interval if keepalive_interval is not None else (duration / 2 if duration else None)
        if keepalive and interval:
            self._stop_keepalive()
            self._keepalive_task = asyncio.create_task(
                self._keepalive_loop(session, interval), name=f"csta-keepalive-{self.name}"
            )
        return session

    async def stop_application_session(self, reason: str = "normal", *, timeout: float | None = None) -> None:
        """Stop the application session (the link stays open)."""
        session = self.session
        if session is None:
            return
        self._stop_keepalive()
        self.session = None
        await self.request(stop_application_session(session.session_id, reason), timeout=timeout)

    def _stop_keepalive(self) -> None:
        task, self._keepalive_task = self._keepalive_task, None
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()

    async def _keepalive_loop(self, session: ApplicationSession, interval: float) -> None:
        while not self._closed:
            await asyncio.sleep(interval)
            try:
                await self.request(
                    reset_application_session_timer(session.session_id, session.session_duration),
                    timeout=min(self.request_timeout, max(interval, 1.0)),
                )
            except CstaTimeout as exc:
                log.warning("%s: session keep-alive unanswered: %s", self.name, exc.message)
            except CstaError as exc:
                await self._link_lost(f"application session {session.session_id} ended: {exc.message}")
                return
            except CstaLinkError:
                return
            except CstaBaseError as exc:
                log.warning("%s: session keep-alive not sent: %s", self.name, exc.message)
