"""Bad BER from a PBX: the decoder answers every input with a Message or a BerError.

Random bytes, valid frames cut short or with a byte changed, lengths far beyond the data,
indefinite lengths, deep nesting and operation codes nobody defined: the codec must never
raise anything but ``BerError`` (a ``CodecError``, which the session counts and skips),
and its memory must stay bounded whatever a length field claims.
"""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twp_csta.ber import BerCodec, BerError, check_tlv, decode_acse, pdu_size, samples
from twp_csta.ber.acse import build_aare, build_aarq
from twp_csta.ber.codec import OPERATION_CODES
from twp_csta.xml.codec import Message

CODEC = BerCodec()
FRAMES = [CODEC.encode(m) for m in samples.all_messages()]
ACSE_FRAMES = [build_aarq(password="pw"), build_aare(), build_aare(accepted=False, diagnostic="authentication-failure")]
KINDS = {
    "truncated", "length", "too-large", "depth", "tag", "trailing", "empty", "not-rose", "not-acse", "schema",
    "unknown-operation", "value", "unsupported",
}
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decode_or_ber_error(data: bytes) -> Message | None:
    try:
        return CODEC.decode(data)
    except BerError as exc:
        assert exc.kind in KINDS
        assert exc.detail
        return None


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(data):
    decode_or_ber_error(data)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_behind_a_rose_tag(data):
    decode_or_ber_error(bytes([0xA1, min(len(data), 0x7F)]) + data)


@FUZZ
@given(st.sampled_from(FRAMES), st.data())
def test_a_valid_frame_cut_short(frame, data):
    cut = data.draw(st.integers(min_value=0, max_value=len(frame) - 1))
    with pytest.raises(BerError) as info:
        CODEC.decode(frame[:cut])
    assert info.value.kind in {"empty", "truncated", "schema"}


@FUZZ
@given(st.sampled_from(FRAMES), st.data())
def test_a_valid_frame_with_bytes_changed(frame, data):
    mutated = bytearray(frame)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        position = data.draw(st.integers(min_value=0, max_value=len(frame) - 1))
        mutated[position] = data.draw(st.integers(min_value=0, max_value=255))
    decode_or_ber_error(bytes(mutated))


@FUZZ
@given(st.sampled_from(FRAMES), st.integers(min_value=0x80, max_value=2**32 - 1))
def test_a_length_far_beyond_the_data(frame, length):
    # The outer length rewritten in the 4-byte long form: the frame claims up to 4 GiB.
    forged = frame[:1] + b"\x84" + length.to_bytes(4, "big") + frame[2:]
    tracemalloc.start()
    try:
        with pytest.raises(BerError) as info:
            CODEC.decode(forged)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.kind in {"truncated", "too-large", "trailing"}
    assert peak < 1_000_000


def test_a_length_of_more_than_four_bytes_is_refused():
    with pytest.raises(BerError) as info:
        CODEC.decode(b"\xa1\x85\x01\x00\x00\x00\x00" + b"\x00" * 16)
    assert info.value.kind == "length"


def _indefinite(data: bytes) -> bytes:
    """The same BER with every constructed value in indefinite-length form."""
    out = bytearray()
    offset = 0
    while offset < len(data):
        tag = data[offset]
        length = data[offset + 1]
        start = offset + 2
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(data[start:start + count], "big")
            start += count
        body = data[start:start + length]
        if tag & 0x20:
            out += bytes([tag, 0x80]) + _indefinite(body) + b"\x00\x00"
        else:
            out += data[offset:start + length]
        offset = start + length
    return bytes(out)


@pytest.mark.parametrize("message", samples.all_messages()[:40], ids=lambda m: m.name)
def test_indefinite_lengths_decode_to_the_same_message(message):
    frame = CODEC.encode(message)
    indefinite = _indefinite(frame)
    assert indefinite != frame
    decoded = CODEC.decode(indefinite)
    assert decoded == message and decoded.invoke_id == message.invoke_id


def test_an_indefinite_length_on_a_primitive_or_without_end_is_refused():
    with pytest.raises(BerError) as info:
        CODEC.decode(b"\xa1\x80\x02\x80\x01\x00\x00")
    assert info.value.kind == "length"
    with pytest.raises(BerError) as info:
        CODEC.decode(b"\xa1\x80\x02\x01\x01\x02\x01\x0a")
    assert info.value.kind == "truncated"


@pytest.mark.parametrize("depth", [33, 1000, 30000])
def test_deep_nesting_stops_at_the_cap(depth):
    definite = b"\x30\x80" * depth + b"\x00\x00" * depth
    tracemalloc.start()
    try:
        with pytest.raises(BerError) as info:
            CODEC.decode(b"\xa1\x80" + definite + b"\x00\x00")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.kind == "depth"
    assert peak < 1_000_000


def test_nesting_within_the_cap_is_only_a_schema_error():
    nested = b"\x30\x80" * 20 + b"\x00\x00" * 20
    with pytest.raises(BerError) as info:
        CODEC.decode(b"\xa1\x80\x02\x01\x01\x02\x01\x0a" + nested + b"\x00\x00")
    assert info.value.kind == "schema"


def test_a_pdu_over_the_size_cap_is_refused():
    small = BerCodec(max_pdu_size=48)
    frame = CODEC.encode(samples.events()[0])
    assert len(frame) > 48
    with pytest.raises(BerError) as info:
        small.decode(frame)
    assert info.value.kind == "too-large"


unknown_codes = st.integers(min_value=0, max_value=2**31 - 1).filter(
    lambda code: code not in OPERATION_CODES.values() and code != 21
)


@FUZZ
@given(unknown_codes, st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_an_unknown_operation_is_reported_with_its_invoke_id(code, invoke_id):
    def integer(value: int) -> bytes:
        raw = value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)
        return bytes([0x02, len(raw)]) + raw

    body = integer(invoke_id) + integer(code) + b"\x30\x00"
    with pytest.raises(BerError) as info:
        CODEC.decode(bytes([0xA1, len(body)]) + body)
    assert info.value.kind == "unknown-operation"
    assert (info.value.invoke_id, info.value.opcode) == (invoke_id, code)


@FUZZ
@given(st.binary(max_size=200))
def test_acse_random_bytes(data):
    try:
        decode_acse(data)
    except BerError as exc:
        assert exc.kind in KINDS


@FUZZ
@given(st.sampled_from(ACSE_FRAMES), st.data())
def test_acse_frames_with_bytes_changed(frame, data):
    mutated = bytearray(frame)
    position = data.draw(st.integers(min_value=0, max_value=len(frame) - 1))
    mutated[position] = data.draw(st.integers(min_value=0, max_value=255))
    try:
        decode_acse(bytes(mutated))
    except BerError as exc:
        assert exc.kind in KINDS


@FUZZ
@given(st.binary(max_size=40))
def test_pdu_size_of_a_stream_head(data):
    try:
        size = pdu_size(data)
    except BerError as exc:
        assert exc.kind in {"length", "too-large", "tag"}
        return
    if size is not None:
        assert 2 <= size <= len(data)


def test_pdu_size_tells_when_a_frame_is_complete():
    frame = FRAMES[0]
    assert pdu_size(frame[:1]) is None
    assert pdu_size(frame[:-1]) is None
    assert pdu_size(frame + b"\xa1") == len(frame)
    assert check_tlv(frame) == len(frame)
    with pytest.raises(BerError):
        check_tlv(frame + b"\x00")
