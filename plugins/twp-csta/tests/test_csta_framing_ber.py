"""The BER framings (MX-One Application Link, HiPath / OpenScape Business, bare TLV): frames in, frames out, garbage skipped."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twp_csta.errors import FramingError
from twp_csta.framing import Frame
from twp_csta.framing_ber import BER_FRAMINGS, HiPathFraming, Len2Framing, TlvFraming, encode_length


def invoke(invoke_id: int, opcode: int, argument: bytes = b"") -> bytes:
    """A ROSE invoke APDU built by hand: [1] { invokeId INTEGER, opcode INTEGER, argument }."""
    body = bytes([0x02, 0x01, invoke_id, 0x02, 0x01, opcode]) + argument
    return bytes([0xA1]) + encode_length(len(body)) + body


MAKE_CALL = invoke(7, 10, bytes([0x30, 0x0A, 0x80, 0x03]) + b"201" + bytes([0x80, 0x03]) + b"202")
EVENT = invoke(9, 21, bytes([0x30, 0x03, 0x55, 0x01, 0x01]))
AARQ = bytes([0x60, 0x05, 0xA1, 0x03, 0x06, 0x01, 0x00])
RLRQ = bytes([0x62, 0x00])
BIG = invoke(3, 74, bytes([0x04, 0x82, 0x01, 0x2C]) + b"x" * 300)  # two-byte BER length inside and out


def frames(items: list[Frame | FramingError]) -> list[bytes]:
    return [i.payload for i in items if isinstance(i, Frame)]


def errors(items: list[Frame | FramingError]) -> list[FramingError]:
    return [i for i in items if isinstance(i, FramingError)]


@pytest.mark.parametrize("name", sorted(BER_FRAMINGS))
def test_every_apdu_comes_out_whole_whatever_the_reads(name):
    framing = BER_FRAMINGS[name]()
    apdus = [AARQ, MAKE_CALL, EVENT, BIG, RLRQ]
    wire = b"".join(framing.encode(None, a) for a in apdus)
    reader = BER_FRAMINGS[name]()
    assert frames(reader.feed(wire)) == apdus
    one_by_one = BER_FRAMINGS[name]()
    out: list[Frame | FramingError] = []
    for i in range(len(wire)):
        out += one_by_one.feed(wire[i : i + 1])
    assert frames(out) == apdus and not errors(out) and one_by_one.buffered == 0
    assert all(isinstance(i, Frame) and i.invoke_id is None for i in out)


def test_application_link_prefix_is_the_apdu_length_on_two_bytes():
    assert Len2Framing().encode(None, MAKE_CALL) == len(MAKE_CALL).to_bytes(2, "big") + MAKE_CALL


def test_hipath_header_is_0x26_then_the_length_with_the_top_bit_set():
    wire = HiPathFraming().encode(None, BIG)
    assert wire[:3] == bytes([0x26, 0x80 | (len(BIG) >> 8), len(BIG) & 0xFF]) and wire[3:] == BIG


def test_tlv_sends_the_apdu_as_is():
    assert TlvFraming().encode(None, EVENT) == EVENT


@pytest.mark.parametrize("name", sorted(BER_FRAMINGS))
@pytest.mark.parametrize("payload", [b"", b"<xml/>", bytes([0xA1, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00]), MAKE_CALL + b"\x00"])
def test_what_is_not_one_apdu_is_refused_when_sending(name, payload):
    with pytest.raises(FramingError) as info:
        BER_FRAMINGS[name]().encode(None, payload)
    assert info.value.kind == "payload" and "not one BER APDU" in info.value.message


@pytest.mark.parametrize("name", sorted(BER_FRAMINGS))
@pytest.mark.parametrize(
    "junk",
    [b"\x13\x37 not a CSTA frame \xff\xfe garbage <<<", b"abcdefgh", b"\x00\x00\x00", b"\x26\x80\x05\xa1\x03junk", b"\xa1\x80\x02\x01"],
)
def test_garbage_between_frames_is_reported_once_and_the_next_frame_read(name, junk):
    writer, reader = BER_FRAMINGS[name](), BER_FRAMINGS[name]()
    out = reader.feed(writer.encode(None, MAKE_CALL) + junk + writer.encode(None, EVENT) + writer.encode(None, RLRQ))
    assert frames(out) == [MAKE_CALL, EVENT, RLRQ]
    errs = errors(out)
    assert len(errs) == 1 and errs[0].kind == "garbage" and not errs[0].fatal
    assert reader.errors == 1 and reader.bytes_skipped == len(junk)


@pytest.mark.parametrize("cls", [Len2Framing, HiPathFraming])
def test_an_oversized_frame_is_skipped_by_its_announced_length(cls):
    small = cls(max_frame_size=64)
    wire = cls().encode(None, BIG) + cls().encode(None, EVENT)
    out = small.feed(wire)
    assert frames(out) == [EVENT]
    [err] = errors(out)
    assert err.kind == "oversized" and str(cls.header_size + len(BIG)) in err.message


def test_tlv_treats_a_header_beyond_the_maximum_as_garbage():
    small = TlvFraming(max_frame_size=64)
    out = small.feed(BIG + EVENT)
    assert frames(out) == [EVENT] and [e.kind for e in errors(out)] == ["garbage"]


@pytest.mark.parametrize("cls", [Len2Framing, HiPathFraming, TlvFraming])
def test_the_maximum_frame_size_is_checked(cls):
    with pytest.raises(ValueError, match="max_frame_size"):
        cls(max_frame_size=1)


@pytest.mark.parametrize("name", sorted(BER_FRAMINGS))
@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=600), cut=st.integers(min_value=1, max_value=50))
def test_random_bytes_never_raise_and_the_buffer_stays_bounded(name, data, cut):
    framing = BER_FRAMINGS[name](max_frame_size=512) if name != "hipath" else HiPathFraming(max_frame_size=512)
    for i in range(0, len(data), cut):
        for item in framing.feed(data[i : i + cut]):
            assert isinstance(item, (Frame, FramingError))
            if isinstance(item, FramingError):
                assert not item.fatal
        assert framing.buffered <= 512 + 3


@pytest.mark.parametrize("name", sorted(BER_FRAMINGS))
def test_reset_forgets_a_partial_frame(name):
    framing = BER_FRAMINGS[name]()
    wire = framing.encode(None, MAKE_CALL)
    framing.feed(wire[:5])
    framing.reset()
    assert framing.buffered == 0 and frames(framing.feed(wire)) == [MAKE_CALL]
