"""Fuzzing the CSTA framings and codec: whatever a PBX sends, only documented errors come out.

``Framing.feed`` never raises and returns only ``Frame`` and ``FramingError`` items;
``Codec.decode`` raises nothing but ``CodecError``.  Budget: a few seconds in all.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twp_csta.errors import CodecError, CstaError, FramingError
from twp_csta.framing import FRAMINGS, Frame, J2Framing
from twp_csta.xml import codec as c
from twp_csta.xml.codec import Codec, Connection, Message, MessageKind

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CODEC = Codec(edition=4)

CALL = Connection("4711", "201")
SAMPLES = [
    c.make_call("201", "202"),
    c.clear_connection(CALL),
    c.consultation_call(CALL, "203"),
    c.set_forwarding("201", "forwardImmediate", True, "300"),
    c.system_status(),
    c.start_application_session("TWP", c.CSTA_NAMESPACES[5], requested_session_duration=60),
    c.build("DeliveredEvent", {
        "monitorCrossRefID": "1", "connection": CALL,
        "alertingDevice": {"deviceIdentifier": "201"}, "callingDevice": {"deviceIdentifier": "0612"},
        "cause": "newCall",
    }),
    c.csta_error("operation", "invalidDeviceID"),
]


def drain(framing_name: str, chunks: list[bytes], max_frame_size: int | None = None) -> list[Frame]:
    """Feed chunks, decode every frame; fail on anything undocumented."""
    kwargs = {"max_frame_size": max_frame_size} if max_frame_size else {}
    framing = FRAMINGS[framing_name](**kwargs)
    frames = []
    for chunk in chunks:
        for item in framing.feed(chunk):
            assert isinstance(item, (Frame, FramingError)), item
            if isinstance(item, FramingError):
                assert item.kind in {"garbage", "oversized", "bad-header", "empty"}
                assert not item.fatal
                continue
            frames.append(item)
            try:
                message = CODEC.decode(item.payload, invoke_id=item.invoke_id)
            except CodecError:
                continue
            assert isinstance(message, Message)
            if message.kind is MessageKind.ERROR:
                error = CstaError.from_response(message, SAMPLES[1])
                assert error.http_status in {400, 403, 404, 409, 501, 502, 503} and error.message
            # accessors never raise on odd trees either
            _ = (message.connection, message.calling_device, message.called_device, message.cause,
                 message.monitor_cross_ref_id, message.error_code, message.connection_list(),
                 message.snapshot_items())
        assert framing.buffered <= max(framing.max_frame_size, 65535) + len(chunk)
    return frames


@FUZZ
@given(framing=st.sampled_from(sorted(FRAMINGS)), chunks=st.lists(st.binary(max_size=200), max_size=8))
def test_random_bytes_yield_only_documented_items(framing, chunks):
    drain(framing, chunks, max_frame_size=300)


def encode_stream(framing_name: str, messages: list[Message], edition: int) -> bytes:
    framing = FRAMINGS[framing_name]()
    codec = Codec(edition=edition)
    return b"".join(framing.encode(i + 1, codec.encode(m)) for i, m in enumerate(messages))


mutation = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "zero"]), st.integers(min_value=0), st.integers(0, 255)
)


def mutate(data: bytes, mutations) -> bytes:
    buf = bytearray(data)
    for op, position, value in mutations:
        if not buf:
            break
        i = position % len(buf)
        if op == "flip":
            buf[i] ^= value or 1
        elif op == "insert":
            buf.insert(i, value)
        elif op == "delete":
            del buf[i]
        else:
            buf[i] = 0
    return bytes(buf)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    chunks, start = [], 0
    for point in points:
        chunks.append(data[start:point])
        start = point
    chunks.append(data[start:])
    return chunks


@FUZZ
@given(
    framing=st.sampled_from(sorted(FRAMINGS)),
    messages=st.lists(st.sampled_from(SAMPLES), min_size=1, max_size=5),
    edition=st.sampled_from([3, 4, 5]),
    mutations=st.lists(mutation, max_size=6),
    cuts=st.lists(st.integers(min_value=0), max_size=5),
)
def test_mutated_valid_streams_yield_only_documented_items(framing, messages, edition, mutations, cuts):
    data = mutate(encode_stream(framing, messages, edition), mutations)
    drain(framing, split(data, cuts))


@FUZZ
@given(
    messages=st.lists(st.sampled_from(SAMPLES), min_size=1, max_size=5),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(1, 255)), max_size=6),
    cuts=st.lists(st.integers(min_value=0), max_size=5),
)
def test_j2_damage_inside_payloads_loses_no_frame(messages, flips, cuts):
    """The length header keeps framing intact whatever happens to the XML."""
    framing = J2Framing()
    frames = [framing.encode(i + 1, CODEC.encode(m)) for i, m in enumerate(messages)]
    damaged = []
    for frame in frames:
        buf = bytearray(frame)
        for position, value in flips:
            i = 8 + position % (len(buf) - 8)
            buf[i] ^= value
        damaged.append(bytes(buf))
    got = drain("j2", split(b"".join(damaged), cuts))
    assert [f.invoke_id for f in got] == list(range(1, len(messages) + 1))


@FUZZ
@given(text=st.text(max_size=300))
def test_random_text_decodes_or_is_a_codec_error(text):
    try:
        CODEC.decode(text.encode("utf-8", "surrogatepass"))
    except CodecError:
        pass


@FUZZ
@given(category=st.one_of(st.sampled_from(["operation", "stateIncompatibility", "systemResourceAvailability",
                                           "privateData", "vendorThing"]), st.text(max_size=10)),
       value=st.text(max_size=30))
def test_any_error_code_reads_as_a_clear_error(category, value):
    try:
        message = c.build("CSTAErrorCode", {category: value})
    except ValueError:
        return
    try:
        decoded = CODEC.decode(CODEC.encode(message))
    except CodecError:
        return
    error = CstaError.from_response(decoded, c.make_call("201", "202"))
    assert error.message.startswith("MakeCall: ")


xml_name = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
xml_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Cn")), max_size=20
).map(str.strip)
field_tree = st.recursive(
    xml_text,
    lambda children: st.one_of(
        st.dictionaries(xml_name, children, min_size=1, max_size=4),
        st.lists(st.dictionaries(xml_name, children, min_size=1, max_size=3), min_size=2, max_size=3),
    ),
    max_leaves=12,
)


@FUZZ
@given(name=xml_name, fields=st.dictionaries(xml_name, field_tree, max_size=5), edition=st.sampled_from([3, 4, 5, None]))
def test_any_field_tree_round_trips(name, fields, edition):
    message = c.build(name, fields)
    codec = Codec(edition=edition)
    assert codec.decode(codec.encode(message)) == message


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: m.name)
def test_samples_are_valid_before_mutation(message):
    assert CODEC.decode(CODEC.encode(message)) == message
