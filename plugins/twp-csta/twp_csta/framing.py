"""Framings of CSTA XML on a byte stream: where one message ends and the next begins.

Sans-IO: a ``Framing`` is fed the bytes read from the link and returns what they
complete; it never reads or writes a socket, so drivers, the PBX simulator and the fuzz
tests share it unchanged.  Two framings ship, chosen per PBX link by name in
``FRAMINGS``:

``j2`` (``J2Framing``)
    ECMA-323 annex J.2, CSTA XML over TCP without SOAP.  Each message is preceded by an
    8-byte header: two zero bytes, the total length (header included) as a big-endian
    16-bit number, and the invoke id as four ASCII digits.
``nul`` (``NulFraming``)
    One XML document after the other, each ended by a NUL byte, no header and so no
    invoke id on the wire.

``feed(data)`` returns a list of ``Frame`` and ``FramingError`` items in stream order.
Errors are reported, never raised: the framer resynchronises by itself.  For J.2 an
oversized frame or a header with a bad invoke id is skipped using the length it
announces (16 bits, so always bounded); bytes that cannot be a header at all (non-zero
first bytes, a length under 8) are dropped up to the next plausible header, which is
found reliably because a UTF-8 XML document never contains a NUL byte.  No framing here
ever reports ``fatal``; a future framing that cannot resynchronise sets it, and the
session then resets the link.
"""

from __future__ import annotations

import abc
import logging
import struct
from typing import ClassVar

import attrs

from twp_csta.errors import FramingError

log = logging.getLogger(__name__)

#: Invoke id that unsolicited events conventionally carry in the J.2 header.
EVENT_INVOKE_ID = 9999

_J2_HEADER = struct.Struct(">HH4s")
J2_HEADER_SIZE = _J2_HEADER.size  # 8
J2_MAX_LENGTH = 0xFFFF


@attrs.frozen
class Frame:
    """One framed message as it came off the link."""

    payload: bytes
    """The XML document, without header or terminator."""
    invoke_id: int | None = None
    """The invoke id from the frame header (0-9999), or None for framings without one."""


@attrs.define(eq=False)
class Framing(abc.ABC):
    """A stateful, sans-IO framer for one link direction pair (read side buffered)."""

    name: ClassVar[str] = ""
    carries_invoke_id: ClassVar[bool] = False
    """True when the frame header carries the invoke id (responses match requests by it)."""

    max_frame_size: int = 65535
    """Largest accepted frame, header included; larger frames are skipped and reported."""
    frames: int = attrs.field(default=0, init=False)
    """Frames decoded so far."""
    errors: int = attrs.field(default=0, init=False)
    """Framing errors reported so far."""
    bytes_skipped: int = attrs.field(default=0, init=False)
    """Bytes dropped while skipping bad frames or resynchronising."""
    _buffer: bytearray = attrs.field(factory=bytearray, init=False, repr=False)

    @abc.abstractmethod
    def feed(self, data: bytes) -> list[Frame | FramingError]:
        """Take bytes read from the link; return the frames and errors they complete, in order."""

    @abc.abstractmethod
    def encode(self, invoke_id: int | None, payload: bytes) -> bytes:
        """Frame ``payload`` for sending; raises ``FramingError`` (kind ``payload``) if it cannot."""

    def reset(self) -> None:
        """Forget buffered bytes (after a reconnection); counters are kept."""
        self._buffer.clear()

    @property
    def buffered(self) -> int:
        """Bytes received and not yet part of a complete frame."""
        return len(self._buffer)

    def _error(self, kind: str, detail: str, *, skipped: int = 0) -> FramingError:
        self.errors += 1
        self.bytes_skipped += skipped
        return FramingError(kind, detail, skipped=skipped, framing=self.name)


def _is_digits(raw: bytes) -> bool:
    return len(raw) == 4 and all(0x30 <= b <= 0x39 for b in raw)


@attrs.define(eq=False)
class J2Framing(Framing):
    """ECMA-323 annex J.2 framing: ``00 00``, 16-bit total length, 4 ASCII digits, XML."""

    name: ClassVar[str] = "j2"
    carries_invoke_id: ClassVar[bool] = True

    max_frame_size: int = attrs.field(default=J2_MAX_LENGTH)
    _discard: int = attrs.field(default=0, init=False, repr=False)
    _in_garbage: bool = attrs.field(default=False, init=False, repr=False)

    @max_frame_size.validator
    def _check_max(self, attribute: attrs.Attribute, value: int) -> None:
        if not J2_HEADER_SIZE < value <= J2_MAX_LENGTH:
            raise ValueError(
                f"J2Framing.max_frame_size: expected {J2_HEADER_SIZE + 1}-{J2_MAX_LENGTH}, got {value}"
            )

    def reset(self) -> None:
        super().reset()
        self._discard = 0
        self._in_garbage = False

    def encode(self, invoke_id: int | None, payload: bytes) -> bytes:
        if invoke_id is None:
            invoke_id = EVENT_INVOKE_ID
        if not 0 <= invoke_id <= 9999:
            raise FramingError("payload", f"invoke id must be 0-9999, got {invoke_id}", framing=self.name)
        total = len(payload) + J2_HEADER_SIZE
        if total > self.max_frame_size:
            raise FramingError(
                "payload",
                f"message of {total} bytes exceeds the maximum frame size of {self.max_frame_size} bytes",
                framing=self.name,
            )
        return _J2_HEADER.pack(0, total, b"%04d" % invoke_id) + payload

    def feed(self, data: bytes) -> list[Frame | FramingError]:
        buf = self._buffer
        buf += data
        out: list[Frame | FramingError] = []
        while True:
            if self._discard:
                n = min(self._discard, len(buf))
                del buf[:n]
                self._discard -= n
                if self._discard:
                    break
            if len(buf) < 2:
                break
            if buf[0] or buf[1] or (len(buf) >= 4 and int.from_bytes(buf[2:4], "big") < J2_HEADER_SIZE):
                self._resync(out)
                continue
            if len(buf) < J2_HEADER_SIZE:
                break
            _, length, raw_id = _J2_HEADER.unpack_from(buf)
            if length > self.max_frame_size:
                out.append(
                    self._error(
                        "oversized",
                        f"frame of {length} bytes exceeds the maximum of {self.max_frame_size}; skipped",
                        skipped=length,
                    )
                )
                self._in_garbage = False
                self._discard = length
                continue
            if not _is_digits(raw_id):
                out.append(
                    self._error(
                        "bad-header",
                        f"invoke id {bytes(raw_id)!r} is not four ASCII digits; frame of {length} bytes skipped",
                        skipped=length,
                    )
                )
                self._in_garbage = False
                self._discard = length
                continue
            if len(buf) < length:
                break
            payload = bytes(buf[J2_HEADER_SIZE:length])
            del buf[:length]
            self._in_garbage = False
            if not payload.strip():
                out.append(self._error("empty", "frame without payload skipped", skipped=length))
                continue
            self.frames += 1
            out.append(Frame(payload, int(raw_id)))
        return out

    def _resync(self, out: list[Frame | FramingError]) -> None:
        """Drop bytes up to the next plausible header (or keep a possible partial one)."""
        buf = self._buffer
        cut = len(buf)
        start = 1
        while True:
            i = buf.find(b"\x00", start)
            if i < 0:
                break
            if _plausible_header(buf, i):
                cut = i
                break
            start = i + 1
        if not self._in_garbage:
            self._in_garbage = True
            out.append(
                self._error("garbage", f"{cut} bytes that are not a J.2 header dropped", skipped=cut)
            )
        else:
            self.bytes_skipped += cut
        del buf[:cut]


def _plausible_header(buf: bytearray, i: int) -> bool:
    """Could a J.2 header start at ``buf[i]``?  Partial headers at the end count as yes."""
    head = buf[i : i + J2_HEADER_SIZE]
    if len(head) >= 2 and head[1]:
        return False
    if len(head) >= 4 and int.from_bytes(head[2:4], "big") <= J2_HEADER_SIZE:
        return False
    return all(0x30 <= b <= 0x39 for b in head[4:8])


@attrs.define(eq=False)
class NulFraming(Framing):
    """NUL-terminated XML documents, no header (invoke ids do not travel on the wire)."""

    name: ClassVar[str] = "nul"
    carries_invoke_id: ClassVar[bool] = False

    max_frame_size: int = attrs.field(default=1024 * 1024)
    _skipping: bool = attrs.field(default=False, init=False, repr=False)

    @max_frame_size.validator
    def _check_max(self, attribute: attrs.Attribute, value: int) -> None:
        if value < 2:
            raise ValueError(f"NulFraming.max_frame_size: expected at least 2, got {value}")

    def reset(self) -> None:
        super().reset()
        self._skipping = False

    def encode(self, invoke_id: int | None, payload: bytes) -> bytes:
        if b"\x00" in payload:
            raise FramingError("payload", "a NUL-framed message cannot contain a NUL byte", framing=self.name)
        if len(payload) + 1 > self.max_frame_size:
            raise FramingError(
                "payload",
                f"message of {len(payload) + 1} bytes exceeds the maximum frame size of {self.max_frame_size} bytes",
                framing=self.name,
            )
        return payload + b"\x00"

    def feed(self, data: bytes) -> list[Frame | FramingError]:
        buf = self._buffer
        out: list[Frame | FramingError] = []
        scan_from = len(buf)
        buf += data
        while True:
            end = buf.find(b"\x00", scan_from)
            if end < 0:
                if len(buf) > self.max_frame_size:
                    if not self._skipping:
                        self._skipping = True
                        out.append(
                            self._error(
                                "oversized",
                                f"no end of message within {self.max_frame_size} bytes; skipped up to the next NUL",
                                skipped=len(buf),
                            )
                        )
                    else:
                        self.bytes_skipped += len(buf)
                    buf.clear()
                break
            if self._skipping:
                self.bytes_skipped += end + 1
                self._skipping = False
                del buf[: end + 1]
                scan_from = 0
                continue
            if end + 1 > self.max_frame_size:
                out.append(
                    self._error(
                        "oversized",
                        f"message of {end + 1} bytes exceeds the maximum of {self.max_frame_size}; skipped",
                        skipped=end + 1,
                    )
                )
                del buf[: end + 1]
                scan_from = 0
                continue
            payload = bytes(buf[:end]).strip()
            del buf[: end + 1]
            scan_from = 0
            if payload:
                self.frames += 1
                out.append(Frame(payload, None))
        return out


#: Framings by the name used in PBX link config (``framing = "j2"``).
FRAMINGS: dict[str, type[Framing]] = {"j2": J2Framing, "nul": NulFraming}
