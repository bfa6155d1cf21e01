"""Golden frames: BER built by hand from ECMA-285's tags and codes, read by the codec.

Each frame below is written from the standard's modules (public copy: repository
Wildboar-Software/asn1-typescript-libraries, commit 8edab49c986ccd1158e05ccc1aefedf32cfe4053,
``packages/csta/doc/``), not from our ASN.1 text: operation codes from each service's
``CODE local: n``, tags from its argument type.  The codec must decode each frame to the
expected message and encode that message back to the same bytes, so a wrong tag or code
in our module fails here.

Reminders of the encodings used (BER, X.690):
* ROSE invoke ``A1`` { invokeId INTEGER, opcode INTEGER, argument }, returnResult ``A2``
  { invokeId, SEQUENCE { opcode, result } }, returnError ``A3`` { invokeId, errcode, parameter };
* Phase III ``DeviceID`` = SEQUENCE ``30`` { dialingNumber ``[0]`` IMPLICIT IA5String ``80`` };
* ``ConnectionID`` = ``[APPLICATION 11]`` ``6B`` { both SEQUENCE ``30`` { callID ``[0]`` ``80``,
  deviceID ``[1]`` ``A1`` { staticID DeviceID } } };
* ``SubjectDeviceID`` ``[APPLICATION 3]`` ``63``, ``CallingDeviceID`` ``61``, ``CalledDeviceID``
  ``62``, ``RedirectionDeviceID`` ``64`` (notRequired ``[8]`` ``88 00``), each explicit;
* ``LocalConnectionState`` ``[APPLICATION 14]`` IMPLICIT ENUMERATED ``4E``;
  ``MonitorCrossRefID`` ``[APPLICATION 21]`` IMPLICIT OCTET STRING ``55``.
"""

from __future__ import annotations

import pytest

from twp_csta.ber import BerCodec
from twp_csta.ber.codec import OPERATION_CODES
from twp_csta.xml.codec import Message, MessageKind


def tlv(tag: int, *parts: bytes) -> bytes:
    body = b"".join(parts)
    assert len(body) < 0x80  # short form is enough for these frames
    return bytes([tag, len(body)]) + body


def integer(value: int) -> bytes:
    return tlv(0x02, value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True))


def enum(value: int) -> bytes:
    return tlv(0x0A, bytes([value]))


def boolean(value: bool) -> bytes:
    return tlv(0x01, b"\xff" if value else b"\x00")


def device(number: str) -> bytes:
    return tlv(0x30, tlv(0x80, number.encode()))


def conn(call: str, number: str) -> bytes:
    return tlv(0x6B, tlv(0x30, tlv(0x80, call.encode()), tlv(0xA1, device(number))))


def invoke(invoke_id: int, code: int, *argument: bytes) -> bytes:
    return tlv(0xA1, integer(invoke_id), integer(code), tlv(0x30, *argument))


def result(invoke_id: int, code: int, *fields: bytes) -> bytes:
    return tlv(0xA2, integer(invoke_id), tlv(0x30, integer(code), tlv(0x30, *fields)))


NO_DATA = b"\x05\x00"
A, B = conn("12", "201"), conn("13", "201")
FA, FB = {"callID": "12", "deviceID": "201"}, {"callID": "13", "deviceID": "201"}

#: (operation, code cited from its ECMA-285 module, frame, expected fields)
REQUESTS = [
    ("AlternateCall", 1, invoke(1, 1, A, B), {"heldCall": FA, "activeCall": FB}),
    ("AnswerCall", 2, invoke(1, 2, A), {"callToBeAnswered": FA}),
    ("ClearCall", 4, invoke(1, 4, A), {"callToBeCleared": FA}),
    ("ClearConnection", 5, invoke(1, 5, A), {"connectionToBeCleared": FA}),
    ("ConferenceCall", 6, invoke(1, 6, A, B), {"heldCall": FA, "activeCall": FB}),
    # existingCall [0] IMPLICIT ConnectionID (A0 replaces 6B), consultedDevice [1] DeviceID (explicit A1).
    ("ConsultationCall", 7, invoke(1, 7, tlv(0xA0, tlv(0x30, tlv(0x80, b"12"), tlv(0xA1, device("201")))),
                                   tlv(0xA1, device("203"))),
     {"existingCall": FA, "consultedDevice": "203"}),
    ("HoldCall", 9, invoke(1, 9, A), {"callToBeHeld": FA}),
    # autoOriginate [3] IMPLICIT ENUMERATED doNotPrompt (1); accountCode [0] IMPLICIT OCTET STRING.
    ("MakeCall", 10, invoke(1, 10, device("201"), device("202"), tlv(0x80, b"4711"), tlv(0x83, b"\x01")),
     {"callingDevice": "201", "calledDirectoryNumber": "202", "accountCode": "4711", "autoOriginate": "doNotPrompt"}),
    ("ReconnectCall", 13, invoke(1, 13, B, A), {"activeCall": FB, "heldCall": FA}),
    ("RetrieveCall", 14, invoke(1, 14, A), {"callToBeRetrieved": FA}),
    ("TransferCall", 16, invoke(1, 16, A, B), {"heldCall": FA, "activeCall": FB}),
    ("SingleStepTransferCall", 50, invoke(1, 50, A, device("204")), {"activeCall": FA, "transferredTo": "204"}),
    # monitorObject CSTAObject: deviceObject DeviceID (untagged choice); monitorType ENUMERATED device (1).
    ("MonitorStart", 71, invoke(1, 71, device("201"), enum(1)), {"monitorObject": {"deviceObject": "201"}, "monitorType": "device"}),
    ("MonitorStop", 73, invoke(1, 73, tlv(0x55, b"7")), {"monitorCrossRefID": "7"}),
    ("SnapshotDevice", 74, invoke(1, 74, device("201")), {"snapshotObject": "201"}),
    ("SnapshotCall", 75, invoke(1, 75, A), {"snapshotObject": FA}),
    # SystemStatus ENUMERATED: normal (2).
    ("SystemStatus", 211, invoke(1, 211, enum(2)), {"systemStatus": "normal"}),
    ("DeflectCall", 218, invoke(1, 218, A, device("205")), {"callToBeDiverted": FA, "newDestination": "205"}),
    ("GenerateDigits", 232, invoke(1, 232, A, tlv(0x16, b"123#")), {"connectionToSendDigits": FA, "charactersToSend": "123#"}),
    ("GetDoNotDisturb", 308, invoke(1, 308, device("201")), {"device": "201"}),
    ("GetForwarding", 309, invoke(1, 309, device("201")), {"device": "201"}),
    ("SetDoNotDisturb", 316, invoke(1, 316, device("201"), boolean(True)), {"device": "201", "doNotDisturbOn": "true"}),
    # ForwardingType forwardImmediate (0), activateForward BOOLEAN, forwardDN DeviceID.
    ("SetForwarding", 317, invoke(1, 317, device("201"), enum(0), boolean(True), device("300")),
     {"device": "201", "forwardingType": "forwardImmediate", "activateForward": "true", "forwardDN": "300"}),
]

RESULTS = [
    ("MakeCall", result(1, 10, conn("12", "201")), {"callingDevice": FA}),
    ("ConsultationCall", result(1, 7, conn("13", "201")), {"initiatedCall": FB}),
    ("TransferCall", result(1, 16, conn("14", "202")), {"transferredCall": {"callID": "14", "deviceID": "202"}}),
    ("SingleStepTransferCall", result(1, 50, conn("14", "204")), {"transferredCall": {"callID": "14", "deviceID": "204"}}),
    ("ConferenceCall", result(1, 6, conn("14", "201")), {"conferenceCall": {"callID": "14", "deviceID": "201"}}),
    ("MonitorStart", result(1, 71, tlv(0x55, b"7")), {"monitorCrossRefID": "7"}),
    ("GetDoNotDisturb", result(1, 308, boolean(False)), {"doNotDisturbOn": "false"}),
    # ForwardList SEQUENCE OF SEQUENCE { forwardingType, forwardStatus, forwardDN }.
    ("GetForwarding", result(1, 309, tlv(0x30, tlv(0x30, enum(1), boolean(True), device("300")))),
     {"forwardingList": {"forwardListItem": {"forwardingType": "forwardBusy", "forwardStatus": "true", "forwardDN": "300"}}}),
    # snapshotData [APPLICATION 22] IMPLICIT SEQUENCE OF { ConnectionID, CallState compoundCallState [0] { LocalConnectionState } }
    ("SnapshotDevice", result(1, 74, tlv(0x76, tlv(0x30, A, tlv(0xA0, tlv(0x4E, b"\x03"))))),
     {"crossRefIDorSnapshotData": {"snapshotData": {"snapshotDeviceResponseInfo": {
         "connectionIdentifier": FA, "localCallState": {"compoundCallState": {"localConnectionState": "connected"}}}}}}),
]
NO_DATA_RESULTS = sorted(set(OPERATION_CODES) - {name for name, _frame, _fields in RESULTS} - {"SnapshotCall"})


def test_the_operation_codes_are_those_of_the_standard():
    assert {name: code for name, code, _frame, _fields in REQUESTS} == OPERATION_CODES


@pytest.mark.parametrize(("name", "code", "frame", "fields"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_a_hand_built_request_decodes_and_encodes_back(name, code, frame, fields):
    codec = BerCodec()
    message = codec.decode(frame)
    assert (message.name, message.kind, message.invoke_id) == (name, MessageKind.REQUEST, 1)
    assert message.fields == fields
    assert codec.encode(message) == frame


@pytest.mark.parametrize(("name", "frame", "fields"), RESULTS, ids=[r[0] for r in RESULTS])
def test_a_hand_built_result_decodes_and_encodes_back(name, frame, fields):
    codec = BerCodec()
    message = codec.decode(frame)
    assert (message.name, message.kind, message.invoke_id) == (f"{name}Response", MessageKind.RESPONSE, 1)
    assert message.fields == fields
    assert codec.encode(message) == frame


@pytest.mark.parametrize("name", NO_DATA_RESULTS)
def test_a_no_data_result_decodes_and_encodes_back(name):
    frame = tlv(0xA2, integer(3), tlv(0x30, integer(OPERATION_CODES[name]), NO_DATA))
    codec = BerCodec()
    message = codec.decode(frame)
    assert message == Message(f"{name}Response", {}) and message.invoke_id == 3
    assert codec.encode(message) == frame


def event_report(invoke_id: int, xref: bytes, group_tag: int, event_tag: int, *fields: bytes) -> bytes:
    return tlv(0xA1, integer(invoke_id), integer(21), tlv(0x30, tlv(0x55, xref), tlv(group_tag, tlv(event_tag, *fields))))


# EventSpecificInfo callControlEvents [0] (explicit A0); CallControlEvents choices IMPLICIT.
EVENTS = [
    ("DeliveredEvent", event_report(
        9, b"7", 0xA0, 0xA4, conn("12", "202"), tlv(0x63, device("202")), tlv(0x61, device("201")),
        tlv(0x62, device("202")), tlv(0x64, b"\x88\x00"), tlv(0x4E, b"\x02"), enum(22)),
     {"connection": {"callID": "12", "deviceID": "202"}, "alertingDevice": "202", "callingDevice": "201",
      "calledDevice": "202", "localConnectionInfo": "alerting", "cause": "newCall"}),
    ("EstablishedEvent", event_report(
        9, b"7", 0xA0, 0xA7, conn("12", "202"), tlv(0x63, device("202")), tlv(0x61, device("201")),
        tlv(0x62, device("202")), tlv(0x64, b"\x88\x00"), tlv(0x4E, b"\x03"), enum(22)),
     {"establishedConnection": {"callID": "12", "deviceID": "202"}, "answeringDevice": "202", "callingDevice": "201",
      "calledDevice": "202", "localConnectionInfo": "connected", "cause": "newCall"}),
    ("ConnectionClearedEvent", event_report(
        9, b"7", 0xA0, 0xA3, conn("12", "202"), tlv(0x63, device("202")), tlv(0x4E, b"\x00"), enum(48)),
     {"droppedConnection": {"callID": "12", "deviceID": "202"}, "releasingDevice": "202",
      "localConnectionInfo": "null", "cause": "normalClearing"}),
    ("HeldEvent", event_report(9, b"7", 0xA0, 0xA9, A, tlv(0x63, device("201")), tlv(0x4E, b"\x04"), enum(78)),
     {"heldConnection": FA, "holdingDevice": "201", "localConnectionInfo": "hold", "cause": "normal"}),
    ("RetrievedEvent", event_report(9, b"7", 0xA0, 0xAF, A, tlv(0x63, device("201")), enum(78)),
     {"retrievedConnection": FA, "retrievingDevice": "201", "cause": "normal"}),
    ("OriginatedEvent", event_report(9, b"7", 0xA0, 0xAD, A, tlv(0x63, device("201")), tlv(0x62, device("202")), enum(22)),
     {"originatedConnection": FA, "callingDevice": "201", "calledDevice": "202", "cause": "newCall"}),
    # logicalDeviceFeatureEvents [4] (explicit A4); doNotDisturb [11] IMPLICIT (AB), forwarding [12] (AC).
    ("DoNotDisturbEvent", event_report(9, b"7", 0xA4, 0xAB, tlv(0x63, device("201")), boolean(True)),
     {"device": "201", "doNotDisturbOn": "true"}),
    ("ForwardingEvent", event_report(9, b"7", 0xA4, 0xAC, tlv(0x63, device("201")), enum(0), boolean(True), device("300")),
     {"device": "201", "forwardingType": "forwardImmediate", "forwardStatus": "true", "forwardTo": "300"}),
]


@pytest.mark.parametrize(("name", "frame", "fields"), EVENTS, ids=[e[0] for e in EVENTS])
def test_a_hand_built_event_report_decodes_and_encodes_back(name, frame, fields):
    codec = BerCodec()
    message = codec.decode(frame)
    assert (message.name, message.kind, message.invoke_id) == (name, MessageKind.EVENT, 9)
    assert message.fields == {"monitorCrossRefID": "7", **fields}
    assert codec.encode(message) == frame


@pytest.mark.parametrize(
    ("frame", "category", "value"),
    [
        # universalFailure (error code 1): operation [0] explicit, invalidDeviceID (12).
        (tlv(0xA3, integer(4), integer(1), tlv(0xA0, enum(12))), "operation", "invalidDeviceID"),
        # stateIncompatibility [2]: noActiveCall (4).
        (tlv(0xA3, integer(4), integer(1), tlv(0xA2, enum(4))), "stateIncompatibility", "noActiveCall"),
        # subscribedResourceAvailability [4]: objectMonitorLimitExceeded (2).
        (tlv(0xA3, integer(4), integer(1), tlv(0xA4, enum(2))), "subscribedResourceAvailability", "objectMonitorLimitExceeded"),
    ],
)
def test_a_hand_built_error_decodes_to_its_category_and_value(frame, category, value):
    codec = BerCodec()
    message = codec.decode(frame)
    assert (message.name, message.kind, message.invoke_id) == ("CSTAErrorCode", MessageKind.ERROR, 4)
    assert message.error_code == (category, value)
    assert codec.encode(message) == frame


def test_an_error_value_the_codec_does_not_know_is_still_an_error():
    frame = tlv(0xA3, integer(4), integer(1), tlv(0xA0, enum(250)))
    message = BerCodec().decode(frame)
    assert message.kind is MessageKind.ERROR and message.name == "CSTAErrorCode"
