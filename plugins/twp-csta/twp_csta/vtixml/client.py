"""``VtiClient``: one asyncio VTI-XML link to an A5000 (connect, log in, requests, events, keep-alive).

- ``connect`` opens TCP, sends ``Login`` (user, password) and waits for its answer: a
  refusal raises ``VtiError`` with code ``badCredentials``, silence ``CstaTimeout``;
- ``request(name, **fields)`` numbers the request (ids 1-9999, skipping ids in flight),
  waits ``request_timeout`` for the ``Response`` with the same id and returns it, or
  raises ``VtiError`` (its ``http_status`` says what the API answers), ``CstaTimeout``
  or ``CstaLinkError`` when the link is down;
- ``Event`` messages go to ``on_event``; a ``KeepAlive`` is sent every
  ``keepalive_interval`` and the link is declared lost after ``keepalive_max_missed``
  unanswered ones (``on_link_lost(reason)``, once);
- malformed frames and documents are logged through ``repeats`` (a few lines, then a
  summary), counted in ``stats`` and skipped; ``on_pdu(direction, payload)`` sees every
  PDU for traces (guide 10.6).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from twp_csta.errors import CodecError, CstaBaseError, CstaLinkError, CstaTimeout, FramingError
from twp_csta.vtixml import codec
from twp_csta.vtixml.codec import VtiMessage
from twp_csta.vtixml.framing import VtiFraming

log = logging.getLogger(__name__)

#: ``code`` of an error response → HTTP status of the API's answer.
HTTP_STATUS = {
    "badRequest": 400, "notLoggedIn": 503, "badCredentials": 403, "unknownDevice": 404, "badDevicePassword": 403,
    "capacity": 409, "invalidState": 409, "unknownCall": 404, "notSupported": 501, "internal": 502,
}


class VtiError(CstaBaseError):
    """The A5000 refused a VTI-XML request; ``code`` is the error code of its answer."""

    def __init__(self, operation: str, code: str, detail: str = "", *, device: str | None = None):
        about = f" for device {device}" if device else ""
        text = f"{operation}{about}: the PBX answered {code}" + (f" ({detail})" if detail else "")
        super().__init__(text, http_status=HTTP_STATUS.get(code, 502))
        self.operation, self.code, self.detail = operation, code, detail


@attrs.define
class VtiStats:
    frames_in: int = 0
    frames_out: int = 0
    framing_errors: int = 0
    codec_errors: int = 0
    events: int = 0
    keepalives_missed: int = 0


class VtiClient:
    """A logged-in VTI-XML link; build it with ``await VtiClient.connect(...)``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, name: str, request_timeout: float,
                 on_event: Callable[[VtiMessage], None] | None, on_link_lost: Callable[[str], Awaitable[None] | None] | None,
                 on_pdu: Callable[[str, bytes], None] | None, repeats: Any, framing: VtiFraming):
        self.name = name
        self.reader, self.writer = reader, writer
        self.request_timeout = request_timeout
        self.on_event, self.on_link_lost, self.on_pdu = on_event, on_link_lost, on_pdu
        self.repeats = repeats
        self.framing = framing
        self.stats = VtiStats()
        self.login_info: dict[str, str] = {}
        self._pending: dict[int, asyncio.Future[VtiMessage]] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self._lost_reported = False
        self._tasks: list[asyncio.Task] = []

    @classmethod
    async def connect(cls, host: str, port: int, *, user: str, password: str, name: str = "vti-xml", connect_timeout: float = 10,
                      request_timeout: float = 10, keepalive_interval: float | None = 30, keepalive_max_missed: int = 2,
                      on_event: Callable[[VtiMessage], None] | None = None,
                      on_link_lost: Callable[[str], Awaitable[None] | None] | None = None,
                      on_pdu: Callable[[str, bytes], None] | None = None, repeats: Any = None,
                      application: str = "TWP", max_frame_size: int | None = None) -> VtiClient:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), connect_timeout)
        except TimeoutError:
            raise CstaLinkError(f"{host}:{port}: no TCP connection within {connect_timeout:g} s (VTI-XML port, 3199 by default)") from None
        except OSError as exc:
            raise CstaLinkError(f"{host}:{port}: cannot connect: {exc.strerror or exc}") from None
        framing = VtiFraming(max_frame_size) if max_frame_size else VtiFraming()
        client = cls(reader, writer, name=name, request_timeout=request_timeout, on_event=on_event, on_link_lost=on_link_lost,
                     on_pdu=on_pdu, repeats=repeats, framing=framing)
        loop = asyncio.get_running_loop()
        client._tasks.append(loop.create_task(client._read(), name=f"vti-xml-read-{name}"))
        try:
            answer = await client.request("Login", user=user, password=password, application=application)
        except BaseException:
            await client.close()
            raise
        client.login_info = dict(answer.attrs)
        if keepalive_interval:
            client._tasks.append(loop.create_task(client._keepalive(keepalive_interval, keepalive_max_missed), name=f"vti-xml-keepalive-{name}"))
        return client

    @property
    def connected(self) -> bool:
        return not self._closed and not self.writer.is_closing()

    # -- requests --------------------------------------------------------------------
    async def request(self, name: str, **fields: Any) -> VtiMessage:
        if not self.connected:
            raise CstaLinkError(f"{name}: VTI-XML link {self.name} is closed")
        ident = self._next_id()
        msg = codec.message(name, id=ident, **fields)
        payload = codec.encode(msg)
        future: asyncio.Future[VtiMessage] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        try:
            self._write(payload)
            try:
                answer = await asyncio.wait_for(future, self.request_timeout)
            except TimeoutError:
                raise CstaTimeout(name, self.request_timeout, link=self.name) from None
        finally:
            self._pending.pop(ident, None)
        if not answer.ok:
            raise VtiError(name, answer.get("code") or "internal", answer.get("reason") or "", device=fields.get("device"))
        return answer

    def _next_id(self) -> int:
        for _ in range(codec.MAX_ID):
            ident = next(self._ids) % codec.MAX_ID + 1
            if ident not in self._pending:
                return ident
        raise CstaLinkError(f"VTI-XML link {self.name}: {codec.MAX_ID} requests in flight")

    def _write(self, payload: bytes) -> None:
        data = self.framing.encode(payload)
        if self.on_pdu is not None:
            self.on_pdu("out", payload)
        self.writer.write(data)
        self.stats.frames_out += 1

    # -- reading ---------------------------------------------------------------------
    async def _read(self) -> None:
        reason = "connection closed by the PBX"
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                for frame in self.framing.feed(data):
                    if isinstance(frame, FramingError):
                        self.stats.framing_errors += 1
                        self._malformed(frame.message)
                        continue
                    self.stats.frames_in += 1
                    if self.on_pdu is not None:
                        self.on_pdu("in", frame)
                    try:
                        msg = codec.decode(frame)
                    except CodecError as exc:
                        self.stats.codec_errors += 1
                        self._malformed(exc.message)
                        continue
                    self._dispatch(msg)
        except asyncio.CancelledError:
            raise
        except (ConnectionError, OSError) as exc:
            reason = f"connection lost: {exc}"
        await self._lost(reason)

    def _malformed(self, text: str) -> None:
        if self.repeats is not None:
            self.repeats.log(logging.WARNING, f"{self.name}: malformed VTI-XML", "%s: malformed VTI-XML skipped: %s", self.name, text)
        else:
            log.warning("%s: malformed VTI-XML skipped: %s", self.name, text)

    def _dispatch(self, msg: VtiMessage) -> None:
        if msg.name == "Response":
            future = self._pending.get(msg.id or 0)
            if future is not None and not future.done():
                future.set_result(msg)
            return
        if msg.name == "Event":
            self.stats.events += 1
            if self.on_event is not None:
                try:
                    self.on_event(msg)
                except Exception:  # an odd event must not stop the link
                    log.exception("%s: VTI-XML event handler failed", self.name)
            return
        if msg.name == "KeepAlive":  # the PBX checks us too: answer it
            with contextlib.suppress(Exception):
                self._write(codec.encode(codec.message("Response", id=msg.id, result="ok")))

    async def _keepalive(self, interval: float, max_missed: int) -> None:
        missed = 0
        while self.connected:
            await asyncio.sleep(interval)
            try:
                await self.request("KeepAlive")
                missed = 0
            except CstaTimeout:
                missed += 1
                self.stats.keepalives_missed += 1
                if missed >= max_missed:
                    await self._lost(f"{missed} keep-alives unanswered")
                    return
            except CstaBaseError:
                return

    async def _lost(self, reason: str) -> None:
        was_open = not self._closed
        await self._shutdown()
        if was_open and not self._lost_reported:
            self._lost_reported = True
            if self.on_link_lost is not None:
                result = self.on_link_lost(reason)
                if asyncio.iscoroutine(result):
                    await result

    async def _shutdown(self) -> None:
        self._closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(CstaLinkError(f"VTI-XML link {self.name} lost before the answer came"))
        self._pending.clear()
        with contextlib.suppress(Exception):
            self.writer.close()

    async def close(self) -> None:
        """Close the link without reporting it lost."""
        self._lost_reported = True
        if self.connected:
            with contextlib.suppress(Exception):
                self._write(codec.encode(codec.message("Logout", id=self._next_id())))
        await self._shutdown()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for task in self._tasks:
            if task is not current:
                with contextlib.suppress(BaseException):
                    await task
