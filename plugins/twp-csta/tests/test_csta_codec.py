"""CSTA XML codec and error mapping: what PBXs send is read, what drivers send is written right."""

from __future__ import annotations

import pytest

from twp_csta.errors import CodecError, CstaError, describe_error
from twp_csta.xml import codec as c
from twp_csta.xml.codec import APPL_SESSION_NAMESPACE, CSTA_NAMESPACES, Codec, Connection, Message, MessageKind

CALL = Connection("4711", "201")
OTHER = Connection("4712", "201")

# One example per builder: every request a driver sends.
BUILDER_CASES = {
    "MonitorStart": lambda: c.monitor_start("201"),
    "MonitorStop": lambda: c.monitor_stop("17"),
    "SnapshotDevice": lambda: c.snapshot_device(201),
    "SnapshotCall": lambda: c.snapshot_call(CALL),
    "MakeCall": lambda: c.make_call("201", "0033123456789", auto_originate="doNotPrompt"),
    "AnswerCall": lambda: c.answer_call(CALL),
    "ClearConnection": lambda: c.clear_connection(CALL),
    "ClearCall": lambda: c.clear_call(CALL),
    "HoldCall": lambda: c.hold_call(CALL),
    "RetrieveCall": lambda: c.retrieve_call(CALL),
    "ConsultationCall": lambda: c.consultation_call(CALL, "203"),
    "AlternateCall": lambda: c.alternate_call(CALL, OTHER),
    "ReconnectCall": lambda: c.reconnect_call(OTHER, CALL),
    "TransferCall": lambda: c.transfer_call(CALL, OTHER),
    "SingleStepTransferCall": lambda: c.single_step_transfer_call(CALL, "204"),
    "ConferenceCall": lambda: c.conference_call(CALL, OTHER),
    "DeflectCall": lambda: c.deflect_call(CALL, "205"),
    "DirectedPickupCall": lambda: c.directed_pickup_call(CALL, "205"),
    "GenerateDigits": lambda: c.generate_digits(CALL, "123#"),
    "SetForwarding": lambda: c.set_forwarding("201", "forwardImmediate", True, "300"),
    "GetForwarding": lambda: c.get_forwarding("201"),
    "SetDoNotDisturb": lambda: c.set_do_not_disturb("201", True),
    "GetDoNotDisturb": lambda: c.get_do_not_disturb("201"),
    "SystemStatus": lambda: c.system_status(),
    "StartApplicationSession": lambda: c.start_application_session(
        "TWP", [CSTA_NAMESPACES[4], CSTA_NAMESPACES[3]], requested_session_duration=180,
        application_specific_info={"user": "twp", "password": "s3cret"},
    ),
    "StopApplicationSession": lambda: c.stop_application_session("abc-1"),
    "ResetApplicationSessionTimer": lambda: c.reset_application_session_timer("abc-1", 180),
}


def test_every_request_builder_has_a_case():
    assert set(BUILDER_CASES) == set(c.REQUEST_BUILDERS)


@pytest.mark.parametrize("edition", [3, 4, 5])
@pytest.mark.parametrize("name", sorted(BUILDER_CASES))
def test_builder_round_trips_in_every_edition(name, edition):
    codec = Codec(edition=edition)
    message = BUILDER_CASES[name]()
    assert message.name == name and message.kind is MessageKind.REQUEST
    xml = codec.encode(message)
    expected_ns = APPL_SESSION_NAMESPACE if name in c.APPL_SESSION_MESSAGES else CSTA_NAMESPACES[edition]
    assert f'<{name} xmlns="{expected_ns}"'.encode() in xml
    decoded = codec.decode(xml)
    assert decoded == message
    assert decoded.namespace == expected_ns
    # any other edition's codec reads it too
    assert Codec(edition=3 if edition != 3 else 5).decode(xml) == message


def test_make_call_is_written_as_ecma_323_says():
    xml = Codec(edition=3, xml_declaration=False).encode(c.make_call("201", "202"))
    assert xml == (
        b'<MakeCall xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed3">'
        b"<callingDevice>201</callingDevice><calledDirectoryNumber>202</calledDirectoryNumber></MakeCall>"
    )


def test_clear_connection_is_written_as_ecma_323_says():
    xml = Codec(edition=4, xml_declaration=False).encode(c.clear_connection(Connection("1", "201")))
    assert xml == (
        b'<ClearConnection xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4">'
        b"<connectionToBeCleared><callID>1</callID><deviceID>201</deviceID></connectionToBeCleared>"
        b"</ClearConnection>"
    )


def test_field_order_follows_the_schema():
    xml = Codec(edition=5, xml_declaration=False).encode(c.set_forwarding("201", "forwardBusy", False))
    assert xml.endswith(
        b"<device>201</device><forwardingType>forwardBusy</forwardingType>"
        b"<activateForward>false</activateForward></SetForwarding>"
    )
    xml = Codec(xml_declaration=False).encode(c.monitor_start("201"))
    assert b"<monitorObject><deviceObject>201</deviceObject></monitorObject>" in xml


def test_system_status_and_its_response():
    codec = Codec(edition=4)
    request = codec.decode(codec.encode(c.system_status("messagesLost")))
    assert request.kind is MessageKind.REQUEST and request.system_status == "messagesLost"
    response = codec.decode(codec.encode(c.system_status_response()))
    assert response.name == "SystemStatusResponse" and response.kind is MessageKind.RESPONSE
    assert response.fields == {}


def test_codec_without_namespace_writes_none_and_reads_none():
    codec = Codec(edition=None)
    xml = codec.encode(c.hold_call(CALL))
    assert b"xmlns" not in xml
    message = codec.decode(xml)
    assert message.namespace is None and message.edition is None and message.call_id == "4711"


def test_builders_refuse_bad_values():
    with pytest.raises(ValueError, match="forwarding type"):
        c.set_forwarding("201", "forwardSometimes", True)
    with pytest.raises(ValueError, match="system status"):
        c.system_status("fine")
    with pytest.raises(ValueError, match="device number"):
        c.make_call("", "202")
    with pytest.raises(ValueError):
        Codec(edition=2)


def test_text_xml_cannot_carry_is_refused_on_encoding():
    with pytest.raises(CodecError, match="cannot carry"):
        Codec().encode(c.make_call("201", "20\x012"))


def test_special_characters_are_escaped_and_read_back():
    codec = Codec()
    message = c.build("MakeCall", {"callingDevice": "N<201>;noa=nk", "calledDirectoryNumber": '"a"&b'})
    assert codec.decode(codec.encode(message)) == message


# -- events a PBX sends --------------------------------------------------------------

ED3 = CSTA_NAMESPACES[3]
ED4 = CSTA_NAMESPACES[4]
ED5 = CSTA_NAMESPACES[5]

DELIVERED = f"""<?xml version="1.0" encoding="UTF-8"?>
<DeliveredEvent xmlns="{ED4}">
  <monitorCrossRefID>1001</monitorCrossRefID>
  <connection><callID>4711</callID><deviceID>201</deviceID></connection>
  <alertingDevice><deviceIdentifier>201</deviceIdentifier></alertingDevice>
  <callingDevice><deviceIdentifier>0612345678</deviceIdentifier></callingDevice>
  <calledDevice><deviceIdentifier>201</deviceIdentifier></calledDevice>
  <lastRedirectionDevice><notRequired/></lastRedirectionDevice>
  <localConnectionInfo>alerting</localConnectionInfo>
  <cause>newCall</cause>
</DeliveredEvent>"""

ESTABLISHED = f"""<EstablishedEvent xmlns="{ED3}">
  <monitorCrossRefID>1001</monitorCrossRefID>
  <establishedConnection><callID>4711</callID><deviceID>201</deviceID></establishedConnection>
  <answeringDevice><deviceIdentifier>201</deviceIdentifier></answeringDevice>
  <callingDevice><deviceIdentifier>0612345678</deviceIdentifier></callingDevice>
  <calledDevice><deviceIdentifier>201</deviceIdentifier></calledDevice>
  <lastRedirectionDevice><notRequired/></lastRedirectionDevice>
  <localConnectionInfo>connected</localConnectionInfo>
  <cause>normal</cause>
</EstablishedEvent>"""

CLEARED = f"""<ConnectionClearedEvent xmlns="{ED5}">
  <monitorCrossRefID>1001</monitorCrossRefID>
  <droppedConnection><callID>4711</callID><deviceID>0612345678</deviceID></droppedConnection>
  <releasingDevice><deviceIdentifier>0612345678</deviceIdentifier></releasingDevice>
  <localConnectionInfo>null</localConnectionInfo>
  <cause>normalClearing</cause>
</ConnectionClearedEvent>"""

HELD = f"""<HeldEvent xmlns="{ED4}"><monitorCrossRefID>1001</monitorCrossRefID>
  <heldConnection><callID>4711</callID><deviceID>201</deviceID></heldConnection>
  <holdingDevice><deviceIdentifier>201</deviceIdentifier></holdingDevice>
  <localConnectionInfo>hold</localConnectionInfo><cause>normal</cause></HeldEvent>"""

RETRIEVED = f"""<RetrievedEvent xmlns="{ED4}"><monitorCrossRefID>1001</monitorCrossRefID>
  <retrievedConnection><callID>4711</callID><deviceID>201</deviceID></retrievedConnection>
  <retrievingDevice><deviceIdentifier>201</deviceIdentifier></retrievingDevice>
  <localConnectionInfo>connected</localConnectionInfo><cause>normal</cause></RetrievedEvent>"""

TRANSFERED = f"""<TransferedEvent xmlns="{ED3}">
  <monitorCrossRefID>1001</monitorCrossRefID>
  <primaryOldCall><callID>4711</callID><deviceID>201</deviceID></primaryOldCall>
  <secondaryOldCall><callID>4712</callID><deviceID>201</deviceID></secondaryOldCall>
  <transferringDevice><deviceIdentifier>201</deviceIdentifier></transferringDevice>
  <transferredToDevice><deviceIdentifier>203</deviceIdentifier></transferredToDevice>
  <transferredConnections>
    <connectionListItem>
      <newConnection><callID>4712</callID><deviceID>0612345678</deviceID></newConnection>
      <oldConnection><callID>4711</callID><deviceID>0612345678</deviceID></oldConnection>
      <endpoint><deviceID>0612345678</deviceID></endpoint>
    </connectionListItem>
    <connectionListItem>
      <newConnection><callID>4712</callID><deviceID>203</deviceID></newConnection>
      <endpoint><deviceID>203</deviceID></endpoint>
    </connectionListItem>
  </transferredConnections>
  <localConnectionInfo>null</localConnectionInfo>
  <cause>transfer</cause>
</TransferedEvent>"""

CONFERENCED = f"""<ConferencedEvent xmlns="{ED4}">
  <monitorCrossRefID>1001</monitorCrossRefID>
  <primaryOldCall><callID>4711</callID><deviceID>201</deviceID></primaryOldCall>
  <secondaryOldCall><callID>4712</callID><deviceID>201</deviceID></secondaryOldCall>
  <conferencingDevice><deviceIdentifier>201</deviceIdentifier></conferencingDevice>
  <addedParty><deviceIdentifier>203</deviceIdentifier></addedParty>
  <conferenceConnections>
    <connectionListItem><newConnection><callID>4711</callID><deviceID>201</deviceID></newConnection>
      <endpoint><deviceID>201</deviceID></endpoint></connectionListItem>
    <connectionListItem><newConnection><callID>4711</callID><deviceID>203</deviceID></newConnection>
      <oldConnection><callID>4712</callID><deviceID>203</deviceID></oldConnection>
      <endpoint><deviceID>203</deviceID></endpoint></connectionListItem>
  </conferenceConnections>
  <localConnectionInfo>connected</localConnectionInfo>
  <cause>conference</cause>
</ConferencedEvent>"""

DIVERTED = f"""<DivertedEvent xmlns="{ED4}">
  <monitorCrossRefID>1001</monitorCrossRefID>
  <connection><callID>4720</callID><deviceID>201</deviceID></connection>
  <divertingDevice><deviceIdentifier>201</deviceIdentifier></divertingDevice>
  <newDestination><deviceIdentifier>300</deviceIdentifier></newDestination>
  <callingDevice><deviceIdentifier>0612345678</deviceIdentifier></callingDevice>
  <calledDevice><deviceIdentifier>201</deviceIdentifier></calledDevice>
  <lastRedirectionDevice><deviceIdentifier>201</deviceIdentifier></lastRedirectionDevice>
  <localConnectionInfo>null</localConnectionInfo>
  <cause>callForwardImmediate</cause>
</DivertedEvent>"""

ORIGINATED = f"""<OriginatedEvent xmlns="{ED5}">
  <monitorCrossRefID>1001</monitorCrossRefID>
  <originatedConnection><callID>4730</callID><deviceID>201</deviceID></originatedConnection>
  <callingDevice><deviceIdentifier>201</deviceIdentifier></callingDevice>
  <calledDevice><deviceIdentifier>202</deviceIdentifier></calledDevice>
  <localConnectionInfo>connected</localConnectionInfo>
  <cause>makeCall</cause>
</OriginatedEvent>"""

FAILED = """<FailedEvent>
  <monitorCrossRefID>1001</monitorCrossRefID>
  <failedConnection><callID>4730</callID><deviceID>202</deviceID></failedConnection>
  <failingDevice><deviceIdentifier>202</deviceIdentifier></failingDevice>
  <callingDevice><deviceIdentifier>201</deviceIdentifier></callingDevice>
  <calledDevice><deviceIdentifier>202</deviceIdentifier></calledDevice>
  <lastRedirectionDevice><notKnown/></lastRedirectionDevice>
  <localConnectionInfo>connected</localConnectionInfo>
  <cause>busy</cause>
</FailedEvent>"""

FORWARDING = f"""<ForwardingEvent xmlns="{ED4}">
  <monitorCrossRefID>1001</monitorCrossRefID>
  <device><deviceIdentifier>201</deviceIdentifier></device>
  <forwardingType>forwardImmediate</forwardingType>
  <forwardStatus>true</forwardStatus>
  <forwardTo><deviceIdentifier>300</deviceIdentifier></forwardTo>
</ForwardingEvent>"""

DND = f"""<DoNotDisturbEvent xmlns="{ED3}">
  <monitorCrossRefID>1001</monitorCrossRefID>
  <device><deviceIdentifier>201</deviceIdentifier></device>
  <doNotDisturbOn>true</doNotDisturbOn>
</DoNotDisturbEvent>"""


def decode(xml: str) -> Message:
    return Codec(edition=4).decode(xml.encode("utf-8"), invoke_id=9999)


def test_delivered_event():
    event = decode(DELIVERED)
    assert event.name == "DeliveredEvent" and event.kind is MessageKind.EVENT
    assert event.edition == 4 and event.invoke_id == 9999
    assert event.monitor_cross_ref_id == "1001"
    assert event.connection == Connection("4711", "201")
    assert (event.call_id, event.device_id) == ("4711", "201")
    assert event.alerting_device == "201"
    assert event.calling_device == "0612345678"
    assert event.called_device == "201"
    assert event.last_redirection_device is None
    assert event.local_connection_info == "alerting"
    assert event.cause == "newCall"


def test_established_event():
    event = decode(ESTABLISHED)
    assert event.edition == 3
    assert event.connection == Connection("4711", "201")
    assert event.answering_device == "201" and event.calling_device == "0612345678"
    assert event.local_connection_info == "connected"


def test_connection_cleared_event():
    event = decode(CLEARED)
    assert event.edition == 5
    assert event.connection == Connection("4711", "0612345678")
    assert event.releasing_device == "0612345678"
    assert event.cause == "normalClearing"


def test_held_and_retrieved_events():
    held, retrieved = decode(HELD), decode(RETRIEVED)
    assert held.connection == retrieved.connection == Connection("4711", "201")
    assert held.device_field("holdingDevice") == "201" and held.local_connection_info == "hold"
    assert retrieved.device_field("retrievingDevice") == "201"


def test_transfered_event_spelled_as_ecma_spells_it():
    event = decode(TRANSFERED)
    assert event.name == "TransferedEvent" and event.kind is MessageKind.EVENT
    assert event.connection_field("primaryOldCall") == Connection("4711", "201")
    assert event.connection_field("secondaryOldCall") == Connection("4712", "201")
    assert event.device_field("transferringDevice") == "201"
    assert event.device_field("transferredToDevice") == "203"
    items = event.connection_list()
    assert [i.endpoint for i in items] == ["0612345678", "203"]
    assert items[0].new_connection == Connection("4712", "0612345678")
    assert items[0].old_connection == Connection("4711", "0612345678")
    assert items[1].old_connection is None
    assert event.cause == "transfer"


def test_conferenced_event():
    event = decode(CONFERENCED)
    assert event.device_field("conferencingDevice") == "201"
    assert event.device_field("addedParty") == "203"
    assert [i.new_connection for i in event.connection_list()] == [
        Connection("4711", "201"), Connection("4711", "203"),
    ]


def test_diverted_event():
    event = decode(DIVERTED)
    assert event.connection == Connection("4720", "201")
    assert event.device_field("divertingDevice") == "201"
    assert event.device_field("newDestination") == "300"
    assert event.last_redirection_device == "201"
    assert event.cause == "callForwardImmediate"


def test_originated_event():
    event = decode(ORIGINATED)
    assert event.connection == Connection("4730", "201")
    assert (event.calling_device, event.called_device) == ("201", "202")
    assert event.cause == "makeCall"


def test_failed_event_without_namespace():
    event = decode(FAILED)
    assert event.namespace is None and event.edition is None
    assert event.connection == Connection("4730", "202")
    assert event.device_field("failingDevice") == "202"
    assert event.cause == "busy"


def test_forwarding_and_do_not_disturb_events():
    fwd, dnd = decode(FORWARDING), decode(DND)
    assert fwd.subject_device == "201"
    assert fwd.text("forwardingType") == "forwardImmediate"
    assert fwd.text("forwardStatus") == "true"
    assert fwd.device_field("forwardTo") == "300"
    assert dnd.subject_device == "201" and dnd.text("doNotDisturbOn") == "true"
    assert fwd.connection is None and fwd.call_id is None


def test_attributes_and_restricted_numbers():
    event = decode(
        f"""<DeliveredEvent xmlns="{ED4}"><connection><callID>9</callID>
        <deviceID typeOfNumber="dialingNumber">201</deviceID></connection>
        <callingDevice><restricted/></callingDevice>
        <calledDevice><deviceIdentifier typeOfNumber="explicitPublic:international">+33140000000</deviceIdentifier></calledDevice>
        </DeliveredEvent>"""
    )
    assert event.connection == Connection("9", "201")
    assert event.get("connection/deviceID") == {"@typeOfNumber": "dialingNumber", "#text": "201"}
    assert event.calling_device is None
    assert event.called_device == "+33140000000"


def test_responses_carry_their_fields():
    codec = Codec()
    make_call = decode(
        f"""<MakeCallResponse xmlns="{ED4}"><callingDevice><callID>77</callID><deviceID>201</deviceID>
        </callingDevice></MakeCallResponse>"""
    )
    assert make_call.kind is MessageKind.RESPONSE and make_call.connection == Connection("77", "201")
    monitor = codec.decode(
        b"<MonitorStartResponse><monitorCrossRefID>55</monitorCrossRefID><actualMonitorFilter/></MonitorStartResponse>"
    )
    assert monitor.monitor_cross_ref_id == "55"
    snapshot = decode(
        f"""<SnapshotDeviceResponse xmlns="{ED4}"><crossRefIDorSnapshotData><snapshotData>
        <snapshotDeviceResponseInfo><connectionIdentifier><callID>1</callID><deviceID>201</deviceID></connectionIdentifier>
          <localCallState><compoundCallState><localConnectionState>connected</localConnectionState></compoundCallState></localCallState>
        </snapshotDeviceResponseInfo>
        <snapshotDeviceResponseInfo><connectionIdentifier><callID>2</callID><deviceID>201</deviceID></connectionIdentifier>
          <localCallState><compoundCallState><localConnectionState>hold</localConnectionState></compoundCallState></localCallState>
        </snapshotDeviceResponseInfo>
        </snapshotData></crossRefIDorSnapshotData></SnapshotDeviceResponse>"""
    )
    assert [(i.connection.call_id, i.local_connection_state) for i in snapshot.snapshot_items()] == [
        ("1", "connected"), ("2", "hold"),
    ]


def test_application_session_answers():
    pos = Codec().decode(
        f"""<StartApplicationSessionPosResponse xmlns="{APPL_SESSION_NAMESPACE}">
        <sessionID>abc-1</sessionID><actualProtocolVersion>{ED3}</actualProtocolVersion>
        <actualSessionDuration>180</actualSessionDuration></StartApplicationSessionPosResponse>""".encode()
    )
    assert pos.kind is MessageKind.RESPONSE and pos.text("sessionID") == "abc-1"
    neg = Codec().decode(
        f"""<StartApplicationSessionNegResponse xmlns="{APPL_SESSION_NAMESPACE}">
        <errorCode><definedError>invalidApplicationInfo</definedError></errorCode>
        </StartApplicationSessionNegResponse>""".encode()
    )
    assert neg.kind is MessageKind.ERROR
    assert neg.error_code == ("applicationSession", "invalidApplicationInfo")


def test_soap_envelope_is_unwrapped():
    message = Codec().decode(
        f"""<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
        <csta:HeldEvent xmlns:csta="{ED5}"><csta:heldConnection><csta:callID>3</csta:callID>
        <csta:deviceID>201</csta:deviceID></csta:heldConnection></csta:HeldEvent></soap:Body></soap:Envelope>""".encode()
    )
    assert message.name == "HeldEvent" and message.edition == 5 and message.call_id == "3"


def test_utf16_document_is_read():
    xml = '<?xml version="1.0" encoding="UTF-16"?><DeliveredEvent><cause>newCall</cause></DeliveredEvent>'
    assert Codec().decode(xml.encode("utf-16")).cause == "newCall"


# -- hostile or broken XML -----------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<DeliveredEvent><cause>&lol3;</cause></DeliveredEvent>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><DeliveredEvent><cause>&xxe;</cause></DeliveredEvent>"""


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, EXTERNAL_ENTITY, b"<!DOCTYPE a><a/>"])
def test_doctype_and_entities_are_refused(payload):
    with pytest.raises(CodecError, match=r"DOCTYPE|entity"):
        Codec().decode(payload)


@pytest.mark.parametrize(
    "payload",
    [b"", b"   ", b"<a>", b"<a></b>", b"not xml", b"<a/><b/>", b"\xff\xfe\x00<", b'<?xml version="1.0" encoding="klingon"?><a/>'],
)
def test_malformed_xml_is_a_codec_error(payload):
    with pytest.raises(CodecError):
        Codec().decode(payload)


def test_depth_and_size_are_bounded():
    deep = b"<a>" * 100 + b"</a>" * 100
    with pytest.raises(CodecError, match="deeper than 48"):
        Codec().decode(deep)
    wide = b"<a>" + b"<b/>" * 30 + b"</a>"
    with pytest.raises(CodecError, match="more than 10 elements"):
        Codec(max_elements=10).decode(wide)


def test_repeated_elements_become_lists():
    message = Codec().decode(b"<GetForwardingResponse><forwardingList>"
                             b"<forwardListItem><forwardingType>forwardBusy</forwardingType></forwardListItem>"
                             b"<forwardListItem><forwardingType>forwardNoAns</forwardingType></forwardListItem>"
                             b"</forwardingList></GetForwardingResponse>")
    items = c.as_list(message.fields["forwardingList"]["forwardListItem"])
    assert [i["forwardingType"] for i in items] == ["forwardBusy", "forwardNoAns"]
    assert message.text("forwardingList/forwardListItem/forwardingType") == "forwardBusy"


# -- CSTA error codes ----------------------------------------------------------------


def error(category: str, value: str) -> Message:
    codec = Codec(edition=4)
    return codec.decode(codec.encode(c.csta_error(category, value)))


def test_csta_error_code_is_an_error_message():
    message = error("operation", "invalidDeviceID")
    assert message.kind is MessageKind.ERROR and message.error_code == ("operation", "invalidDeviceID")


def test_unknown_device_is_404_naming_the_device():
    exc = CstaError.from_response(error("operation", "invalidDeviceID"), c.make_call("299", "202"))
    assert exc.http_status == 404
    assert exc.message == "MakeCall: device 299 unknown to the PBX (CSTA operation error invalidDeviceID)"
    assert exc.to_dict() == {
        "error": "CstaError", "status": 404, "message": exc.message,
        "category": "operation", "value": "invalidDeviceID", "operation": "MakeCall",
    }


def test_unknown_called_device_names_the_called_number():
    exc = CstaError.from_response(error("operation", "invalidCalledDeviceID"), c.make_call("201", "999"))
    assert exc.http_status == 404 and "device 999 unknown" in exc.message


@pytest.mark.parametrize("value", ["invalidCallID", "invalidConnectionID"])
def test_vanished_call_is_409_naming_the_call(value):
    exc = CstaError.from_response(error("operation", value), c.hold_call(Connection("12", "201")))
    assert exc.http_status == 409
    assert "call 12 at 201" in exc.message and value in exc.message


@pytest.mark.parametrize(
    ("category", "value", "status"),
    [
        ("stateIncompatibility", "invalidObjectState", 409),
        ("stateIncompatibility", "noActiveCall", 409),
        ("systemResourceAvailability", "resourceBusy", 503),
        ("systemResourceAvailability", "deviceOutOfService", 503),
        ("subscribedResourceAvailability", "objectMonitorLimitExceeded", 503),
        ("performanceManagement", "performanceLimitExceeded", 503),
        ("operation", "requestIncompatibleWithObject", 501),
        ("operation", "requestIncompatibleWithHeldConnection", 501),
        ("operation", "serviceNotSupported", 501),
        ("operation", "forwardingDestinationNotSupported", 501),
        ("operation", "privilegeViolationSpecifiedDevice", 403),
        ("security", "sequenceNumberViolated", 403),
        ("operation", "invalidForwardingDestination", 400),
        ("operation", "valueOutOfRange", 400),
        ("operation", "generic", 502),
        ("privateData", "x", 502),
        ("unspecified", "generic", 502),
    ],
)
def test_error_table(category, value, status):
    got, text = describe_error(category, value, subject="201")
    assert got == status
    assert text and "{" not in text


def test_state_incompatibility_message_reads_well():
    exc = CstaError.from_response(error("stateIncompatibility", "noCallToAnswer"), c.answer_call(CALL))
    assert exc.message == (
        "AnswerCall: there is no call to answer on 201 (CSTA stateIncompatibility error noCallToAnswer)"
    )


def test_error_without_request_still_reads_well():
    exc = CstaError.from_response(error("systemResourceAvailability", "resourceBusy"))
    assert exc.http_status == 503 and exc.operation is None
    assert exc.message.startswith("a PBX resource is busy")


def test_private_error_is_kept():
    message = Codec().decode(
        b"<CSTAErrorCode><privateErrorCode><vendorError>E42</vendorError></privateErrorCode></CSTAErrorCode>"
    )
    assert message.error_code == ("privateData", "E42")
    assert CstaError.from_response(message).http_status == 502
