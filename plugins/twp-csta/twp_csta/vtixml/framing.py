"""VTI-XML framing: one XML document after the other, each ended by a NUL byte (sans-IO).

Inferred (``docs/vti-xml.md``): no public text says how VTI-XML delimits its messages
on TCP 3199.  A NUL terminator is what the CSTA XML interfaces of the same vendor
family use when they carry no header, and a UTF-8 XML document never contains a NUL,
so a reader always finds the next message again after garbage.  ``feed`` returns
payloads and ``FramingError`` items in stream order and never raises; a payload larger
than ``max_frame_size`` is skipped up to its NUL and reported ``oversized``.
"""

from __future__ import annotations

import attrs

from twp_csta.errors import FramingError

DEFAULT_MAX_FRAME = 4 * 1024 * 1024
"""A subscriber list of some thousand entries fits; more is refused rather than buffered."""


@attrs.define(eq=False)
class VtiFraming:
    """Splits a byte stream into VTI-XML documents; one per link."""

    max_frame_size: int = DEFAULT_MAX_FRAME
    _buffer: bytearray = attrs.field(factory=bytearray, init=False)
    _skipping: int = attrs.field(default=0, init=False)
    """Bytes of an oversized frame dropped so far (0: not skipping)."""

    def encode(self, payload: bytes) -> bytes:
        if b"\x00" in payload:
            raise FramingError("payload", "a VTI-XML message cannot contain a NUL byte (it ends messages)", framing="vti-xml")
        if len(payload) > self.max_frame_size:
            raise FramingError("payload", f"message of {len(payload)} bytes exceeds max_frame_size {self.max_frame_size}", framing="vti-xml")
        return bytes(payload) + b"\x00"

    def feed(self, data: bytes) -> list[bytes | FramingError]:
        out: list[bytes | FramingError] = []
        start = 0
        while start < len(data):
            end = data.find(b"\x00", start)
            chunk = data[start:] if end < 0 else data[start:end]
            if self._skipping:
                self._skipping += len(chunk)
                if end >= 0:
                    out.append(_oversized(self._skipping, self.max_frame_size))
                    self._skipping = 0
            else:
                self._buffer += chunk
                if len(self._buffer) > self.max_frame_size:
                    self._skipping = len(self._buffer)
                    self._buffer.clear()
                    if end >= 0:
                        out.append(_oversized(self._skipping, self.max_frame_size))
                        self._skipping = 0
                elif end >= 0:
                    payload, self._buffer = bytes(self._buffer), bytearray()
                    if payload.strip():
                        out.append(payload)
            if end < 0:
                break
            start = end + 1
        return out

    @property
    def buffered(self) -> int:
        return len(self._buffer)


def _oversized(size: int, limit: int) -> FramingError:
    return FramingError("oversized", f"frame of {size} bytes exceeds max_frame_size {limit}; skipped", skipped=size, framing="vti-xml")
