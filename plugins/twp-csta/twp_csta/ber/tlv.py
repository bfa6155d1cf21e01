"""BER errors and a bounded structural check of BER bytes, run before any decoding.

``check_tlv`` walks the tag-length-value tree of one PDU without building anything:
every length must fit in what was received, the nesting depth and the PDU size are
capped, indefinite lengths are allowed only on constructed values and must end with an
end-of-contents marker.  So the schema decoder (asn1tools) only ever sees well-formed,
bounded input, and every malformation is reported as a ``BerError`` with a kind a caller
can count.  ``pdu_size`` tells a stream reader how long the PDU at the head of a buffer is.
"""

from __future__ import annotations

from twp_csta.errors import CodecError

#: Default cap on the size of one PDU (bytes); the BER framings carry at most 64 KiB.
MAX_PDU_SIZE = 65535
#: Default cap on the nesting depth of constructed values (CSTA PDUs need about 12).
MAX_DEPTH = 32


class BerError(CodecError):
    """BER bytes that cannot be read as a CSTA PDU, or a message BER cannot carry.

    ``kind`` names the problem: ``truncated`` (a length runs past the data), ``length``
    (a length form BER forbids, or longer than 4 bytes), ``too-large`` (beyond the size
    cap), ``depth`` (nesting beyond the cap), ``tag`` (a malformed tag), ``trailing``
    (bytes after the PDU), ``empty``, ``not-rose`` / ``not-acse`` (another kind of PDU),
    ``schema`` (well-formed BER that does not match the ECMA-285 type),
    ``unknown-operation`` (an operation code this codec does not know), ``value`` (a
    field value the encoder cannot write) and ``unsupported`` (a message the codec or
    the phase does not carry).  ``invoke_id`` and ``opcode`` are set when known, so a
    session can answer an unknown operation with a ROSE reject.
    """

    def __init__(self, kind: str, detail: str, *, invoke_id: int | None = None, opcode: int | None = None) -> None:
        super().__init__(f"CSTA BER: {kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.invoke_id = invoke_id
        self.opcode = opcode


def _header(data: bytes | bytearray, offset: int, end: int) -> tuple[bool, int, int | None, int]:
    """(constructed, tag number, length or None if indefinite, offset of contents)."""
    if offset >= end:
        raise BerError("truncated", f"a tag was expected at byte {offset}")
    first = data[offset]
    constructed = bool(first & 0x20)
    number = first & 0x1F
    offset += 1
    if number == 0x1F:
        number = 0
        for count in range(5):
            if offset >= end:
                raise BerError("truncated", "the data ends inside a long tag")
            byte = data[offset]
            offset += 1
            number = (number << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
            if count == 3:
                raise BerError("tag", f"a tag number longer than 4 bytes at byte {offset}")
    if offset >= end:
        raise BerError("truncated", "the data ends before a length")
    first_len = data[offset]
    offset += 1
    if first_len < 0x80:
        return constructed, number, first_len, offset
    if first_len == 0x80:
        if not constructed:
            raise BerError("length", f"an indefinite length on a primitive value at byte {offset - 1}")
        return constructed, number, None, offset
    count = first_len & 0x7F
    if count > 4:
        raise BerError("length", f"a length of {count} bytes at byte {offset - 1} (at most 4 are accepted)")
    if offset + count > end:
        raise BerError("truncated", "the data ends inside a length")
    length = int.from_bytes(data[offset:offset + count], "big")
    return constructed, number, length, offset + count


def check_tlv(
    data: bytes | bytearray, *, max_size: int = MAX_PDU_SIZE, max_depth: int = MAX_DEPTH, whole: bool = True
) -> int:
    """Check the PDU at the start of ``data``; return its size in bytes.

    With ``whole`` (the default) bytes after the PDU are an error (``trailing``).
    """
    return scan(data, max_size=max_size, max_depth=max_depth, whole=whole)[0]


def scan(
    data: bytes | bytearray, *, max_size: int = MAX_PDU_SIZE, max_depth: int = MAX_DEPTH, whole: bool = True
) -> tuple[int, bool]:
    """``check_tlv``, also telling whether an indefinite length was seen."""
    indefinite = False
    if not data:
        raise BerError("empty", "no bytes to decode")
    end = min(len(data), max_size + 1)
    # Open constructed values: (their end offset, or None while indefinite) and the
    # offset nothing inside them may pass (the nearest definite end, or the data's end).
    ends: list[int | None] = []
    bounds: list[int] = []
    offset = 0
    while True:
        bound = bounds[-1] if bounds else end
        if ends and ends[-1] is None and offset + 1 < bound and data[offset] == 0 and data[offset + 1] == 0:
            offset += 2  # end-of-contents of the innermost indefinite value
            ends.pop()
            bounds.pop()
        elif ends and offset == ends[-1]:
            ends.pop()
            bounds.pop()
        else:
            constructed, _number, length, offset = _header(data, offset, bound)
            if length is not None and offset + length > bound:
                if offset + length > max_size:
                    raise BerError("too-large", f"a value of {length} bytes at byte {offset} (the cap is {max_size})")
                raise BerError("truncated", f"a value of {length} bytes at byte {offset} runs past the data")
            if constructed:
                if len(ends) >= max_depth:
                    raise BerError("depth", f"values nested more than {max_depth} deep")
                indefinite = indefinite or length is None
                ends.append(None if length is None else offset + length)
                bounds.append(bound if length is None else offset + length)
            else:
                assert length is not None
                offset += length
        if not ends:
            break
        if ends[-1] is None and offset >= bounds[-1]:
            if bounds[-1] > max_size:
                raise BerError("too-large", f"an indefinite-length value beyond {max_size} bytes")
            raise BerError("truncated", "an indefinite-length value has no end-of-contents marker")
    if offset > max_size:
        raise BerError("too-large", f"a PDU of {offset} bytes (the cap is {max_size})")
    if whole and offset != len(data):
        raise BerError("trailing", f"{len(data) - offset} bytes after the PDU")
    return offset, indefinite


def _encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def to_definite(data: bytes | bytearray) -> bytes:
    """The same values with every indefinite length made definite.

    Only for data ``check_tlv`` accepted (so well-formed and of bounded depth): the
    schema decoder handles definite lengths everywhere, indefinite ones not inside ANY.
    """
    return _definite(data, 0, len(data))[0]


def _definite(data: bytes | bytearray, offset: int, end: int) -> tuple[bytes, int]:
    """Re-encode the values from ``offset`` up to ``end`` or an end-of-contents marker."""
    out = bytearray()
    while offset < end:
        if data[offset] == 0 and offset + 1 < end and data[offset + 1] == 0:
            return bytes(out), offset + 2
        tag_end = offset + 1
        if data[offset] & 0x1F == 0x1F:
            while data[tag_end] & 0x80:
                tag_end += 1
            tag_end += 1
        tag = data[offset:tag_end]
        constructed, _number, length, contents = _header(data, offset, end)
        if length is None:
            body, offset = _definite(data, contents, end)
        elif constructed:
            body, _ = _definite(data, contents, contents + length)
            offset = contents + length
        else:
            body = bytes(data[contents:contents + length])
            offset = contents + length
        out += tag + _encode_length(len(body)) + body
    return bytes(out), offset


def pdu_size(buffer: bytes | bytearray, *, max_size: int = MAX_PDU_SIZE) -> int | None:
    """Size of the definite-length PDU at the head of ``buffer``, or None if more bytes are needed.

    For stream framings without a length prefix.  Raises ``BerError`` for a header that
    can never become valid (indefinite outer length, a length beyond ``max_size``).
    """
    if len(buffer) < 2:
        return None
    try:
        _constructed, _number, length, offset = _header(buffer, 0, len(buffer))
    except BerError as exc:
        if exc.kind == "truncated":
            return None
        raise
    if length is None:
        raise BerError("length", "an indefinite length on the outer value of a PDU")
    total = offset + length
    if total > max_size:
        raise BerError("too-large", f"a PDU of {total} bytes (the cap is {max_size})")
    return total if len(buffer) >= total else None
