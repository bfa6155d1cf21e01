"""Framings of CSTA in ASN.1 BER (ECMA-285 inside ROSE and ACSE) on a TCP stream.

Same sans-IO contract as ``twp_csta.framing``: ``feed(data)`` returns the ``Frame`` and
``FramingError`` items the bytes complete, in order, and never raises; ``encode`` frames
one APDU.  A payload here is one whole BER APDU: a ROSE APDU (invoke ``A1``,
returnResult ``A2``, returnError ``A3``, reject ``A4``) or an ACSE APDU (AARQ ``60``,
AARE ``61``, RLRQ ``62``, RLRE ``63``, ABRT ``64``).  The invoke id travels inside the
APDU, so ``Frame.invoke_id`` is always None and ``carries_invoke_id`` False.

Three framings, chosen per PBX link by name in ``BER_FRAMINGS``:

``len2`` (``Len2Framing``)
    Two bytes of big-endian length (of the APDU, prefix excluded), then the APDU:
    MD110 / MX-One Application Link.
``hipath`` (``HiPathFraming``)
    A 3-byte header: ``0x26``, then the APDU length on 15 bits, big-endian, with the top
    bit of the first length byte set: HiPath 3000 / OpenScape Business.
``tlv`` (``TlvFraming``)
    No prefix: the APDU's own BER tag and definite length delimit it.  Used by the
    Alcatel drivers after the OmniPCX Office ``B``/``P`` exchange.

Where the facts come from, and what is inferred, is in TWP's ``docs/csta.md``.

Every framing resynchronises by itself.  A header is believed only when the APDU's
first byte is an APDU tag and the APDU's own BER length agrees with the header (for
``len2`` and ``hipath``), so bytes that are not a frame are dropped up to the next
position where a consistent header starts; frames larger than ``max_frame_size`` are
skipped using their announced length (at most 64 KiB for the prefixed framings; for
``tlv``, whose length may be huge, an oversized header counts as garbage).  Indefinite
lengths are refused at the outer level: a switch never sends them there, and they
would make the frame's end depend on parsing its whole content.
"""

from __future__ import annotations

import logging
from typing import ClassVar

import attrs

from twp_csta.errors import FramingError
from twp_csta.framing import Frame, Framing

log = logging.getLogger(__name__)

#: First bytes of the APDUs a CSTA BER link carries: ROSE invoke, returnResult, returnError, reject (X.880,
#: context-specific constructed tags 1-4) and ACSE AARQ, AARE, RLRQ, RLRE, ABRT (X.227, application tags 0-4).
APDU_TAGS = frozenset({0xA1, 0xA2, 0xA3, 0xA4, 0x60, 0x61, 0x62, 0x63, 0x64})
#: First byte of an APDU's content: ROSE's invoke id (INTEGER ``02``, or NULL ``05`` in a reject), a SEQUENCE
#: (``30``, explicit tagging), ACSE's first field (``80`` protocol version, ``A1`` application context name).
CONTENT_FIRST = frozenset({0x02, 0x05, 0x30, 0x80, 0xA1})
#: APDUs that may be empty (RLRQ, RLRE without a reason).
EMPTY_OK = frozenset({0x62, 0x63})
HIPATH_MARK = 0x26
"""First byte of the HiPath / OpenScape Business frame header."""


def ber_outer_length(buf: bytes | bytearray, start: int = 0) -> tuple[int, int] | str | None:
    """Length of the TLV starting at ``buf[start]``: ``(header size, content length)``.

    Returns None when more bytes are needed, or a reason (str) when the bytes cannot start a
    definite-length TLV with a one-byte tag (indefinite length, length of more than 4 bytes).
    """
    if len(buf) < start + 2:
        return None
    first = buf[start + 1]
    if first < 0x80:
        return 2, first
    if first == 0x80:
        return "indefinite length"
    count = first & 0x7F
    if count > 4:
        return f"length in {count} bytes"
    if len(buf) < start + 2 + count:
        return None
    return 2 + count, int.from_bytes(buf[start + 2 : start + 2 + count], "big")


def encode_length(length: int) -> bytes:
    """BER definite length octets of ``length``."""
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _content_ok(buf: bytes | bytearray, start: int, outer: tuple[int, int]) -> bool | None:
    """Does the APDU at ``buf[start]`` start its content as an APDU does?  None: not enough bytes yet."""
    header, length = outer
    if length == 0:
        return buf[start] in EMPTY_OK
    if len(buf) <= start + header:
        return None
    return buf[start + header] in CONTENT_FIRST


def _apdu_error(payload: bytes, tags: frozenset[int]) -> str | None:
    """Why ``payload`` is not one whole BER APDU, or None."""
    if not payload:
        return "empty payload"
    if payload[0] not in tags:
        return f"first byte 0x{payload[0]:02x} is not an APDU tag"
    outer = ber_outer_length(payload)
    if outer is None or isinstance(outer, str):
        return f"no definite BER length ({outer or 'truncated'})"
    if sum(outer) != len(payload):
        return f"BER length says {sum(outer)} bytes, payload has {len(payload)}"
    return None


@attrs.define(eq=False)
class _ResyncingFraming(Framing):
    """What the three BER framings share: after bytes no frame can start with, skip to the next place one can.

    Each framing says where a frame could start (``_plausible``); ``_resync`` drops the
    bytes before the next such place and reports them once per run of garbage (the
    ``garbage`` error), counting the rest of the run in ``bytes_skipped``.
    """

    garbage_words: ClassVar[str] = "a {name} frame"
    """What the dropped bytes are not, in the ``garbage`` error (``{name}``: the framing's name)."""

    _in_garbage: bool = attrs.field(default=False, init=False, repr=False)

    def reset(self) -> None:
        super().reset()
        self._in_garbage = False

    def _plausible(self, buf: bytearray, i: int) -> bool | None:
        """Could a frame start at ``buf[i]``?  None: not enough bytes to say."""
        raise NotImplementedError

    def _resync(self, out: list[Frame | FramingError]) -> None:
        buf = self._buffer
        cut = len(buf)
        for i in range(1, len(buf)):
            if self._plausible(buf, i) is not False:
                cut = i
                break
        if not self._in_garbage:
            self._in_garbage = True
            what = self.garbage_words.format(name=self.name)
            out.append(self._error("garbage", f"{cut} bytes that are not {what} dropped", skipped=cut))
        else:
            self.bytes_skipped += cut
        del buf[:cut]


@attrs.define(eq=False)
class _PrefixedFraming(_ResyncingFraming):
    """A length prefix, then one BER APDU whose own length must agree with it."""

    header_size: ClassVar[int] = 2
    length_limit: ClassVar[int] = 0xFFFF

    max_frame_size: int = attrs.field(default=0xFFFF)
    apdu_tags: frozenset[int] = attrs.field(default=APDU_TAGS)
    """First bytes accepted as the start of an APDU."""
    _discard: int = attrs.field(default=0, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        upper = self.length_limit + self.header_size
        if not self.header_size + 2 <= self.max_frame_size <= upper:
            raise ValueError(f"{type(self).__name__}.max_frame_size: expected {self.header_size + 2}-{upper}, got {self.max_frame_size}")

    # -- the header, per framing -------------------------------------------------------
    def _pack(self, length: int) -> bytes:
        raise NotImplementedError

    def _unpack(self, buf: bytearray, i: int) -> int | None:
        """APDU length announced by a header at ``buf[i]``, or None if no header can start there."""
        raise NotImplementedError

    # -- the contract -------------------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        self._discard = 0

    def encode(self, invoke_id: int | None, payload: bytes) -> bytes:
        problem = _apdu_error(payload, self.apdu_tags)
        if problem is not None:
            raise FramingError("payload", f"not one BER APDU: {problem}", framing=self.name)
        total = len(payload) + self.header_size
        if len(payload) > self.length_limit or total > self.max_frame_size:
            raise FramingError(
                "payload", f"APDU of {total} bytes exceeds the maximum frame size of {self.max_frame_size} bytes", framing=self.name
            )
        return self._pack(len(payload)) + payload

    def _plausible(self, buf: bytearray, i: int) -> bool | None:
        """Could a frame start at ``buf[i]``?  None: not enough bytes to say (a partial header counts as possible)."""
        length = self._unpack(buf, i)
        if length is None:
            return False if len(buf) >= i + self.header_size else None
        if length < 2:
            return False
        body = i + self.header_size
        if len(buf) <= body:
            return None
        if buf[body] not in self.apdu_tags:
            return False
        outer = ber_outer_length(buf, body)
        if outer is None:
            return None
        if isinstance(outer, str) or sum(outer) != length:
            return False
        return _content_ok(buf, body, outer)

    def feed(self, data: bytes) -> list[Frame | FramingError]:
        buf = self._buffer
        buf += data
        out: list[Frame | FramingError] = []
        hs = self.header_size
        while True:
            if self._discard:
                n = min(self._discard, len(buf))
                del buf[:n]
                self._discard -= n
                if self._discard:
                    break
            if not buf:
                break
            verdict = self._plausible(buf, 0)
            if verdict is None:
                break
            if not verdict:
                self._resync(out)
                continue
            length = self._unpack(buf, 0)
            assert length is not None
            total = hs + length
            if total > self.max_frame_size:
                out.append(self._error("oversized", f"frame of {total} bytes exceeds the maximum of {self.max_frame_size}; skipped",
                                       skipped=total))
                self._in_garbage = False
                self._discard = total
                continue
            if len(buf) < total:
                break
            payload = bytes(buf[hs:total])
            del buf[:total]
            self._in_garbage = False
            self.frames += 1
            out.append(Frame(payload, None))
        return out


@attrs.define(eq=False)
class Len2Framing(_PrefixedFraming):
    """MD110 / MX-One Application Link: 16-bit big-endian APDU length, then the APDU."""

    name: ClassVar[str] = "len2"
    header_size: ClassVar[int] = 2
    length_limit: ClassVar[int] = 0xFFFF

    max_frame_size: int = attrs.field(default=0xFFFF + 2)

    def _pack(self, length: int) -> bytes:
        return length.to_bytes(2, "big")

    def _unpack(self, buf: bytearray, i: int) -> int | None:
        if len(buf) < i + 2:
            return None
        return int.from_bytes(buf[i : i + 2], "big")


@attrs.define(eq=False)
class HiPathFraming(_PrefixedFraming):
    """HiPath 3000 / OpenScape Business: ``0x26``, then 15-bit APDU length with the top bit set, then the APDU."""

    name: ClassVar[str] = "hipath"
    header_size: ClassVar[int] = 3
    length_limit: ClassVar[int] = 0x7FFF

    max_frame_size: int = attrs.field(default=0x7FFF + 3)

    def _pack(self, length: int) -> bytes:
        return bytes([HIPATH_MARK]) + (0x8000 | length).to_bytes(2, "big")

    def _unpack(self, buf: bytearray, i: int) -> int | None:
        if len(buf) < i + 1 or buf[i] != HIPATH_MARK:
            return None
        if len(buf) < i + 3:
            return None
        if not buf[i + 1] & 0x80:
            return None
        return int.from_bytes(buf[i + 1 : i + 3], "big") & 0x7FFF

    def _plausible(self, buf: bytearray, i: int) -> bool | None:
        if len(buf) > i and buf[i] != HIPATH_MARK:
            return False
        if len(buf) > i + 1 and not buf[i + 1] & 0x80:
            return False
        return super()._plausible(buf, i)


@attrs.define(eq=False)
class TlvFraming(_ResyncingFraming):
    """No prefix: each APDU is delimited by its own BER tag and definite length."""

    name: ClassVar[str] = "tlv"
    carries_invoke_id: ClassVar[bool] = False
    garbage_words: ClassVar[str] = "a BER APDU"

    max_frame_size: int = attrs.field(default=0xFFFF)
    apdu_tags: frozenset[int] = attrs.field(default=APDU_TAGS)

    @max_frame_size.validator
    def _check_max(self, attribute: attrs.Attribute, value: int) -> None:
        if not 4 <= value <= 16 * 1024 * 1024:
            raise ValueError(f"TlvFraming.max_frame_size: expected 4-{16 * 1024 * 1024}, got {value}")

    def encode(self, invoke_id: int | None, payload: bytes) -> bytes:
        problem = _apdu_error(payload, self.apdu_tags)
        if problem is not None:
            raise FramingError("payload", f"not one BER APDU: {problem}", framing=self.name)
        if len(payload) > self.max_frame_size:
            raise FramingError(
                "payload", f"APDU of {len(payload)} bytes exceeds the maximum frame size of {self.max_frame_size} bytes",
                framing=self.name,
            )
        return bytes(payload)

    def _plausible(self, buf: bytearray, i: int) -> bool | None:
        if len(buf) <= i:
            return None
        if buf[i] not in self.apdu_tags:
            return False
        outer = ber_outer_length(buf, i)
        if outer is None:
            return None
        if isinstance(outer, str) or sum(outer) > self.max_frame_size:
            return False
        return _content_ok(buf, i, outer)

    def feed(self, data: bytes) -> list[Frame | FramingError]:
        buf = self._buffer
        buf += data
        out: list[Frame | FramingError] = []
        while buf:
            verdict = self._plausible(buf, 0)
            if verdict is None:
                break
            if not verdict:
                self._resync(out)
                continue
            outer = ber_outer_length(buf)
            assert isinstance(outer, tuple)
            total = sum(outer)
            if len(buf) < total:
                break
            payload = bytes(buf[:total])
            del buf[:total]
            self._in_garbage = False
            self.frames += 1
            out.append(Frame(payload, None))
        return out


#: BER framings by the name used in PBX link config (``framing = "len2"``).
BER_FRAMINGS: dict[str, type[Framing]] = {"len2": Len2Framing, "hipath": HiPathFraming, "tlv": TlvFraming}
