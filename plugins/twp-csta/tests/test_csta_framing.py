"""CSTA framings: a PBX's byte stream, cut anywhere, damaged or oversized, still yields its messages."""

from __future__ import annotations

import pytest

from twp_csta.errors import FramingError
from twp_csta.framing import FRAMINGS, Frame, J2Framing, NulFraming

DELIVERED = b'<?xml version="1.0" encoding="UTF-8"?><DeliveredEvent><cause>newCall</cause></DeliveredEvent>'
MAKE_CALL_RESPONSE = b"<MakeCallResponse><callingDevice><callID>7</callID><deviceID>201</deviceID></callingDevice></MakeCallResponse>"
SYSTEM_STATUS = b"<SystemStatus><systemStatus>normal</systemStatus></SystemStatus>"

STREAM = [(9999, DELIVERED), (12, MAKE_CALL_RESPONSE), (4, SYSTEM_STATUS)]


def j2_bytes(frames=STREAM) -> bytes:
    framing = J2Framing()
    return b"".join(framing.encode(i, p) for i, p in frames)


def nul_bytes(frames=STREAM) -> bytes:
    framing = NulFraming()
    return b"".join(framing.encode(i, p) for i, p in frames)


def frames_of(items):
    return [(item.invoke_id, item.payload) for item in items if isinstance(item, Frame)]


def errors_of(items):
    return [item for item in items if isinstance(item, FramingError)]


def test_registry_names_both_framings():
    assert {"j2": J2Framing, "nul": NulFraming} == FRAMINGS
    assert J2Framing.carries_invoke_id and not NulFraming.carries_invoke_id


def test_j2_header_layout_is_zero_length_and_four_digits():
    frame = J2Framing().encode(42, b"<SystemStatusResponse/>")
    assert frame[:2] == b"\x00\x00"
    assert int.from_bytes(frame[2:4], "big") == len(frame) == 8 + len(b"<SystemStatusResponse/>")
    assert frame[4:8] == b"0042"
    assert frame[8:] == b"<SystemStatusResponse/>"


def test_j2_events_without_invoke_id_use_9999():
    assert J2Framing().encode(None, b"<x/>")[4:8] == b"9999"


def test_j2_several_frames_in_one_chunk():
    framing = J2Framing()
    items = framing.feed(j2_bytes())
    assert frames_of(items) == STREAM
    assert framing.frames == 3 and framing.errors == 0 and framing.buffered == 0


@pytest.mark.parametrize("cut", range(1, len(j2_bytes())))
def test_j2_stream_split_at_every_byte_boundary(cut):
    data = j2_bytes()
    framing = J2Framing()
    items = framing.feed(data[:cut]) + framing.feed(data[cut:])
    assert frames_of(items) == STREAM
    assert not errors_of(items)


def test_j2_stream_fed_one_byte_at_a_time():
    framing = J2Framing()
    items = []
    for byte in j2_bytes():
        items += framing.feed(bytes([byte]))
    assert frames_of(items) == STREAM
    assert not errors_of(items)


def test_j2_oversized_frame_is_skipped_by_its_announced_length():
    small = J2Framing(max_frame_size=200)
    big_payload = b"<DeliveredEvent>" + b"x" * 500 + b"</DeliveredEvent>"
    data = J2Framing().encode(9999, big_payload) + j2_bytes()
    items = []
    for i in range(0, len(data), 37):  # arrives in pieces, like on a socket
        items += small.feed(data[i : i + 37])
    errors = errors_of(items)
    assert [e.kind for e in errors] == ["oversized"]
    assert errors[0].skipped == len(big_payload) + 8 and not errors[0].fatal
    assert "exceeds the maximum of 200" in errors[0].message
    assert frames_of(items) == STREAM
    assert small.errors == 1 and small.bytes_skipped == len(big_payload) + 8


def test_j2_garbage_before_and_between_frames_is_dropped_up_to_the_next_header():
    framing = J2Framing()
    good = j2_bytes()
    first = J2Framing().encode(1, SYSTEM_STATUS)
    data = b"HELLO PBX\r\n" + first + b"\xff\xfe garbage <xml/>" + good
    items = framing.feed(data)
    assert frames_of(items) == [(1, SYSTEM_STATUS)] + STREAM
    errors = errors_of(items)
    assert [e.kind for e in errors] == ["garbage", "garbage"]
    assert errors[0].skipped == len(b"HELLO PBX\r\n")
    assert all(not e.fatal for e in errors)


@pytest.mark.parametrize("cut", range(1, 40))
def test_j2_garbage_split_anywhere_is_reported_once(cut):
    framing = J2Framing()
    data = b"garbage-garbage\x00\x01" + j2_bytes()
    items = framing.feed(data[:cut]) + framing.feed(data[cut:])
    assert frames_of(items) == STREAM
    assert len(errors_of(items)) == 1


def test_j2_header_with_non_digit_invoke_id_skips_that_frame_only():
    bad = b"\x00\x00" + (8 + len(DELIVERED)).to_bytes(2, "big") + b"12a4" + DELIVERED
    framing = J2Framing()
    items = framing.feed(bad + j2_bytes())
    assert [e.kind for e in errors_of(items)] == ["bad-header"]
    assert frames_of(items) == STREAM


def test_j2_length_below_header_size_is_garbage():
    framing = J2Framing()
    items = framing.feed(b"\x00\x00\x00\x03" + j2_bytes())
    assert [e.kind for e in errors_of(items)] == ["garbage"]
    assert frames_of(items) == STREAM


def test_j2_empty_frame_is_reported_and_skipped():
    framing = J2Framing()
    items = framing.feed(b"\x00\x00\x00\x080001" + j2_bytes())
    assert [e.kind for e in errors_of(items)] == ["empty"]
    assert frames_of(items) == STREAM


def test_j2_encode_refuses_what_cannot_be_framed():
    framing = J2Framing(max_frame_size=100)
    with pytest.raises(FramingError, match="exceeds the maximum frame size of 100"):
        framing.encode(1, b"x" * 100)
    with pytest.raises(FramingError, match="invoke id must be 0-9999"):
        framing.encode(10000, b"<x/>")
    with pytest.raises(ValueError, match="max_frame_size"):
        J2Framing(max_frame_size=70000)


def test_j2_reset_forgets_a_partial_frame():
    framing = J2Framing()
    framing.feed(j2_bytes()[:20])
    assert framing.buffered == 20
    framing.reset()
    assert frames_of(framing.feed(j2_bytes())) == STREAM


def test_nul_frames_have_no_invoke_id():
    framing = NulFraming()
    items = framing.feed(nul_bytes())
    assert frames_of(items) == [(None, p) for _, p in STREAM]
    assert NulFraming().encode(5, b"<x/>") == b"<x/>\x00"


@pytest.mark.parametrize("cut", range(1, len(nul_bytes())))
def test_nul_stream_split_at_every_byte_boundary(cut):
    data = nul_bytes()
    framing = NulFraming()
    items = framing.feed(data[:cut]) + framing.feed(data[cut:])
    assert frames_of(items) == [(None, p) for _, p in STREAM]
    assert not errors_of(items)


def test_nul_whitespace_between_documents_is_ignored():
    framing = NulFraming()
    items = framing.feed(b"\r\n" + DELIVERED + b"\n\x00\x00  \x00" + SYSTEM_STATUS + b"\x00")
    assert frames_of(items) == [(None, DELIVERED), (None, SYSTEM_STATUS)]


def test_nul_oversized_message_is_skipped_up_to_the_next_nul():
    framing = NulFraming(max_frame_size=150)
    data = b"<DeliveredEvent>" + b"y" * 1000 + b"</DeliveredEvent>\x00" + nul_bytes()
    items = []
    for i in range(0, len(data), 64):
        items += framing.feed(data[i : i + 64])
    assert [e.kind for e in errors_of(items)] == ["oversized"]
    assert frames_of(items) == [(None, p) for _, p in STREAM]
    assert framing.buffered == 0


def test_nul_oversized_message_in_one_chunk():
    framing = NulFraming(max_frame_size=150)
    items = framing.feed(b"<a>" + b"z" * 300 + b"</a>\x00" + nul_bytes())
    assert [e.kind for e in errors_of(items)] == ["oversized"]
    assert frames_of(items) == [(None, p) for _, p in STREAM]


def test_nul_encode_refuses_nul_in_payload():
    with pytest.raises(FramingError, match="cannot contain a NUL"):
        NulFraming().encode(None, b"<a>\x00</a>")
