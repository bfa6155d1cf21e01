"""CSTA over BER: every message the drivers use survives encode then decode, unchanged.

The driver above the codec must see the same ``Message`` whether the PBX speaks XML or
BER: same name, same kind, same field tree, and the ROSE invoke id in ``invoke_id``.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twp_csta.ber import BerCodec, BerError, samples
from twp_csta.errors import CodecError, CstaError
from twp_csta.xml import codec as x
from twp_csta.xml.codec import Connection, MessageKind

ALL = samples.all_messages()


@pytest.mark.parametrize("message", ALL, ids=[f"{m.name}-{i}" for i, m in enumerate(ALL)])
def test_every_message_round_trips(message):
    codec = BerCodec()
    decoded = codec.decode(codec.encode(message))
    assert decoded == message
    assert decoded.invoke_id == message.invoke_id
    assert decoded.kind is message.kind


def test_the_catalogue_covers_every_operation_and_event_of_the_codec():
    from twp_csta.ber.codec import EVENTS, OPERATION_CODES

    names = {m.name for m in ALL}
    assert set(OPERATION_CODES) <= names
    assert {f"{op}Response" for op in OPERATION_CODES} <= names
    assert set(EVENTS) <= names


def test_a_driver_reads_a_decoded_event_as_it_reads_an_xml_one():
    codec = BerCodec()
    event = codec.decode(codec.encode(next(m for m in samples.events() if m.name == "DeliveredEvent")))
    assert event.kind is MessageKind.EVENT
    assert event.monitor_cross_ref_id == "7"
    assert event.connection == Connection("12", "202")
    assert (event.calling_device, event.called_device, event.alerting_device) == ("201", "202", "202")
    assert event.cause == "newCall"
    assert event.local_connection_info == "alerting"


def test_a_restricted_caller_reads_as_no_number():
    codec = BerCodec()
    event = next(m for m in samples.events() if m.get("callingDevice/restricted") is not None)
    decoded = codec.decode(codec.encode(event))
    assert decoded.fields["callingDevice"] == {"restricted": ""}
    assert decoded.calling_device is None


def test_a_decoded_error_becomes_the_same_csta_error_as_over_xml():
    codec = BerCodec()
    request = x.make_call("201", "299")
    error = codec.decode(codec.encode(x.build("CSTAErrorCode", {"operation": "invalidCalledDeviceID"}, invoke_id=3)))
    assert error.kind is MessageKind.ERROR
    exc = CstaError.from_response(error, request)
    assert exc.http_status == 404
    assert "299" in exc.message


def test_snapshot_and_transfer_helpers_read_the_decoded_lists():
    codec = BerCodec()
    snap = codec.decode(codec.encode(next(m for m in samples.responses() if m.name == "SnapshotDeviceResponse")))
    assert [(i.connection.call_id, i.local_connection_state) for i in snap.snapshot_items()] == [
        ("12", "connected"), ("13", "hold"),
    ]
    transfer = codec.decode(codec.encode(next(m for m in samples.events() if m.name == "TransferedEvent")))
    assert [(i.new_connection.call_id, i.endpoint) for i in transfer.connection_list()] == [("14", "202"), ("14", "204")]


def test_empty_answers_are_written_as_no_data():
    codec = BerCodec()
    frame = codec.encode(x.build("AnswerCallResponse", invoke_id=9))
    # returnResult { invokeId 9, SEQUENCE { opcode 2 (answerCall), NULL } }
    assert frame.hex() == "a20a" "020109" "3005" "020102" "0500"


def test_a_request_without_invoke_id_gets_one_and_its_answer_needs_one():
    codec = BerCodec()
    first = codec.decode(codec.encode(x.make_call("201", "202")))
    second = codec.decode(codec.encode(x.make_call("201", "202")))
    assert first.invoke_id is not None and second.invoke_id == first.invoke_id + 1
    with pytest.raises(BerError, match="needs the invoke id"):
        codec.encode(x.build("MakeCallResponse", {"callingDevice": Connection("1", "201")}))


def test_a_result_without_result_part_is_named_after_its_request():
    codec = BerCodec()
    codec.encode(x.build("HoldCall", {"callToBeHeld": Connection("1", "201")}, invoke_id=77))
    # X.880 allows a returnResult with the invoke id only.
    answer = codec.decode(bytes.fromhex("a20302014d"))
    assert (answer.name, answer.kind, answer.invoke_id) == ("HoldCallResponse", MessageKind.RESPONSE, 77)
    stranger = codec.decode(bytes.fromhex("a203020150"))
    assert (stranger.name, stranger.kind) == ("EmptyResponse", MessageKind.RESPONSE)


def test_reject_round_trips_and_reads_as_an_error():
    codec = BerCodec()
    reject = x.build("RoseReject", {"problem": {"invoke": "unrecognizedOperation"}}, invoke_id=12)
    reject = type(reject)(reject.name, reject.fields, kind=MessageKind.ERROR, invoke_id=12)
    decoded = codec.decode(codec.encode(reject))
    assert decoded == reject and decoded.invoke_id == 12
    assert decoded.error_code == ("problem", "unrecognizedOperation")


def test_an_unknown_operation_names_its_code_and_invoke_id():
    codec = BerCodec()
    frame = bytes.fromhex("a1090201210202270f0500")  # invoke 33, operation 9999, NULL argument
    with pytest.raises(BerError) as info:
        codec.decode(frame)
    assert info.value.kind == "unknown-operation"
    assert (info.value.invoke_id, info.value.opcode) == (33, 9999)
    assert isinstance(info.value, CodecError)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (x.build("MakeCall", {"callingDevice": "201"}), "mandatory field calledDirectoryNumber is missing"),
        (x.build("SetForwarding", {"device": "201", "forwardingType": "forwardSometimes", "activateForward": "true"}),
         "expected one of forwardImmediate"),
        (x.build("MakeCall", {"callingDevice": "201", "calledDirectoryNumber": "2é2"}), "not ASCII"),
        (x.build("FrobnicateCall", {"device": "201"}), "no ECMA-285 operation or event"),
        (x.build("DeliveredEvent", {"connection": Connection("1", "201")}), "monitorCrossRefID is missing"),
        (x.build("CSTAErrorCode", {"whatever": "x"}, invoke_id=1), "expected one of operation"),
    ],
)
def test_a_message_ber_cannot_carry_is_refused_with_a_reason(message, expected):
    with pytest.raises(BerError, match=expected):
        BerCodec().encode(message)


def test_phase_2_writes_device_ids_without_the_phase_3_sequence():
    phase3, phase2 = BerCodec(3), BerCodec(2)
    message = x.build("MakeCall", {"callingDevice": "201", "calledDirectoryNumber": "202"}, invoke_id=1)
    # Phase III: DeviceID ::= SEQUENCE { deviceIdentifier CHOICE { dialingNumber [0] ... } }
    assert phase3.encode(message).hex() == "a116" "020101" "02010a" "300e" "3005800332303130058003323032"
    # Phase II: the dialingNumber [0] directly.
    assert phase2.encode(message).hex() == "a112" "020101" "02010a" "300a" "800332303180033230" "32"
    assert phase2.decode(phase2.encode(message)) == message


def test_system_status_is_operation_211_in_phase_3_and_52_in_phase_2():
    status = x.build("SystemStatus", {"systemStatus": "normal"}, invoke_id=1)
    assert BerCodec(3).encode(status).hex() == "a10c" "020101" "020200d3" "30030a0102"
    assert BerCodec(2).encode(status).hex() == "a10b" "020101" "020134" "30030a0102"
    assert BerCodec(2).decode(bytes.fromhex("a10b02010102013430030a0103")).system_status == "messagesLost"


def test_phase_2_tags_call_control_events_without_the_phase_3_additions():
    codec = BerCodec(2)
    event = next(m for m in samples.events() if m.name == "DeliveredEvent")
    frame = codec.encode(event).hex()
    # eventSpecificInfo callControlEvents [0] (a0), delivered [3] (a3) in Phase II, [4] (a4) in Phase III.
    def event_tag(hexframe: str) -> str:
        start = hexframe.index("550137a0") + 10  # after monitorCrossRefID "7", a0 and its length
        return hexframe[start:start + 2]

    assert event_tag(frame) == "a3"
    assert event_tag(BerCodec(3).encode(event).hex()) == "a4"
    assert codec.decode(bytes.fromhex(frame)) == event


def test_phase_2_refuses_what_it_cannot_name():
    with pytest.raises(BerError, match="not available in CSTA Phase II"):
        BerCodec(2).encode(x.set_do_not_disturb("201", True))


def _tlv(tag: str, body: str) -> str:
    return tag + f"{len(body) // 2:02x}" + body


def test_a_dynamic_device_id_from_the_pbx_is_written_back_as_dynamic():
    codec = BerCodec()
    # DeliveredEvent whose connection names the device by dynamicID [3] "T7" (OXO gives
    # such ids to devices once they are in a call).
    connection = _tlv("6b", _tlv("30", "80023132" + _tlv("a1", "83025437")))
    device = _tlv("63", "30058003323032")
    body = connection + device + "610730058003323031" + "620730058003323032" + "64028800" + "0a0116"
    report = "550137" + _tlv("a0", _tlv("a4", body))
    frame = bytes.fromhex(_tlv("a1", "020109" + "020115" + _tlv("30", report)))
    decoded = codec.decode(frame)
    assert decoded.name == "DeliveredEvent"
    assert decoded.connection == Connection("12", "T7")
    answer = codec.encode(x.build("AnswerCall", {"callToBeAnswered": decoded.connection}, invoke_id=2))
    assert "a10483025437" in answer.hex()  # deviceID [1] { dynamicID [3] "T7" }
    assert codec.decode(answer).fields["callToBeAnswered"] == {"callID": "12", "deviceID": "T7"}


def test_binary_call_ids_travel_as_hex_text_and_back():
    codec = BerCodec()
    message = x.build("ClearCall", {"callToBeCleared": {"callID": "0x0005"}}, invoke_id=1)
    frame = codec.encode(message)
    assert bytes.fromhex("6b0480020005") in frame  # callID [0] with the two bytes 00 05
    assert codec.decode(frame) == message


def test_a_monitor_filter_travels_as_named_bits():
    codec = BerCodec()
    message = x.monitor_start("201", requested_monitor_filter={
        "callControl": {"conferenced": "true", "transferred": "true"}, "logicalDeviceFeature": {"doNotDisturb": "true"},
    })
    frame = codec.encode(message)
    # requestedMonitorFilter [0] { callControl [0] BIT STRING: bits 1 and 13 set, 2 unused bits }
    assert bytes.fromhex("8003024004") in frame
    assert codec.decode(frame) == message
    with pytest.raises(BerError, match="unknown bit"):
        codec.encode(x.monitor_start("201", requested_monitor_filter={"callControl": {"teleported": "true"}}))


device_numbers = st.text(alphabet="0123456789*#+ABCDabcd", min_size=1, max_size=24)
call_ids = st.one_of(
    st.text(alphabet="0123456789abcdefXYZ-_.", min_size=1, max_size=16).filter(lambda t: not t.startswith("0x")),
    # Bytes that are not all printable ASCII are shown as 0x + hex (printable ones as text).
    st.binary(min_size=1, max_size=8).filter(lambda b: not all(0x20 < c < 0x7F for c in b)).map(lambda b: "0x" + b.hex()),
)


@settings(max_examples=150, deadline=None)
@given(device_numbers, device_numbers, call_ids, st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_any_numbers_and_call_ids_round_trip(calling, called, call_id, invoke_id):
    codec = BerCodec()
    connection = Connection(call_id, calling)
    for message in (
        x.build("MakeCall", {"callingDevice": calling, "calledDirectoryNumber": called}, invoke_id=invoke_id),
        x.build("MakeCallResponse", {"callingDevice": connection}, invoke_id=invoke_id),
        x.build("DeliveredEvent", {"monitorCrossRefID": call_id, "connection": connection, "alertingDevice": called,
                                   "callingDevice": calling, "calledDevice": called, "cause": "newCall"}, invoke_id=invoke_id),
    ):
        decoded = codec.decode(codec.encode(message))
        assert decoded == message and decoded.invoke_id == invoke_id
