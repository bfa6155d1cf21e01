"""One message of every kind the BER codec carries, as drivers and the simulator build them.

Used by the codec's round-trip tests and by ``benchmarks/bench_ber.py``: each request the
XML builders write, the answer the simulator gives to it, each event the simulator sends
and an error of each category, with the field shapes of ``twp_csta.xml.codec``.
"""

from __future__ import annotations

from typing import Any

from twp_csta.xml import codec as x
from twp_csta.xml.codec import Connection, Message

_A = Connection("12", "201")
_B = Connection("13", "201")
_C = Connection("12", "202")


def requests() -> list[Message]:
    """Every request the drivers send (the XML builders)."""
    return [
        x.monitor_start("201"),
        x.monitor_start("201", monitor_type="device"),
        x.monitor_stop("7"),
        x.snapshot_device("201"),
        x.snapshot_call(_A),
        x.make_call("201", "202"),
        x.make_call("201", "0612345678", account_code="4711", auto_originate="doNotPrompt"),
        x.answer_call(_C),
        x.clear_connection(_A),
        x.clear_call(_A),
        x.hold_call(_A),
        x.retrieve_call(_A),
        x.consultation_call(_A, "203"),
        x.alternate_call(_A, _B),
        x.reconnect_call(_B, _A),
        x.transfer_call(_A, _B),
        x.single_step_transfer_call(_A, "204"),
        x.conference_call(_A, _B),
        x.deflect_call(_C, "205"),
        x.generate_digits(_A, "123#"),
        x.set_forwarding("201", "forwardImmediate", True, "300"),
        x.set_forwarding("201", "forwardBusy", False),
        x.get_forwarding("201"),
        x.set_do_not_disturb("201", True),
        x.get_do_not_disturb("201"),
        x.system_status("normal"),
        x.system_status("messagesLost"),
    ]


def responses() -> list[Message]:
    """An answer to each operation, as the simulator builds them (invoke id 5)."""
    items = [
        {"connectionIdentifier": _A, "localCallState": {"compoundCallState": {"localConnectionState": "connected"}}},
        {"connectionIdentifier": _B, "localCallState": {"compoundCallState": {"localConnectionState": "hold"}}},
    ]
    calls = [
        {"deviceOnCall": "201", "callIdentifier": _A, "localConnectionState": "connected"},
        {"deviceOnCall": "202", "callIdentifier": _C, "localConnectionState": "alerting"},
    ]
    built: list[tuple[str, dict[str, Any]]] = [
        ("MonitorStartResponse", {"monitorCrossRefID": "7"}),
        ("MonitorStopResponse", {}),
        ("SnapshotDeviceResponse", {"crossRefIDorSnapshotData": {"snapshotData": {"snapshotDeviceResponseInfo": items}}}),
        ("SnapshotDeviceResponse", {"crossRefIDorSnapshotData": {"snapshotData": {}}}),
        ("SnapshotCallResponse", {"crossRefIDorSnapshotData": {"snapshotData": {"snapshotCallResponseInfo": calls}}}),
        ("MakeCallResponse", {"callingDevice": _A}),
        ("AnswerCallResponse", {}),
        ("ClearConnectionResponse", {}),
        ("ClearCallResponse", {}),
        ("HoldCallResponse", {}),
        ("RetrieveCallResponse", {}),
        ("ConsultationCallResponse", {"initiatedCall": _B}),
        ("AlternateCallResponse", {}),
        ("ReconnectCallResponse", {}),
        ("TransferCallResponse", {"transferredCall": Connection("14", "202")}),
        ("SingleStepTransferCallResponse", {"transferredCall": Connection("14", "204")}),
        ("ConferenceCallResponse", {"conferenceCall": Connection("14", "201")}),
        ("DeflectCallResponse", {}),
        ("GenerateDigitsResponse", {}),
        ("SetForwardingResponse", {}),
        ("GetForwardingResponse", {"forwardingList": {"forwardListItem": [
            {"forwardingType": "forwardImmediate", "forwardStatus": True, "forwardDN": "300"},
            {"forwardingType": "forwardBusy", "forwardStatus": False},
        ]}}),
        ("GetForwardingResponse", {"forwardingList": {}}),
        ("SetDoNotDisturbResponse", {}),
        ("GetDoNotDisturbResponse", {"doNotDisturbOn": False}),
        ("SystemStatusResponse", {}),
    ]
    return [x.build(name, fields, invoke_id=5) for name, fields in built]


def events() -> list[Message]:
    """Every event the simulator sends (cross-reference id 7)."""
    parties = {"callingDevice": "201", "calledDevice": "202"}
    redirected = {**parties, "lastRedirectionDevice": "203"}
    items = [
        {"newConnection": Connection("14", "202"), "oldConnection": _C, "endpoint": {"deviceID": "202"}},
        {"newConnection": Connection("14", "204"), "oldConnection": Connection("13", "204"), "endpoint": {"deviceID": "204"}},
    ]
    built: list[tuple[str, dict[str, Any]]] = [
        ("OriginatedEvent", {"originatedConnection": _A, **parties, "localConnectionInfo": "connected", "cause": "newCall"}),
        ("ServiceInitiatedEvent", {"initiatedConnection": _A, "initiatingDevice": "201", "localConnectionInfo": "initiated", "cause": "makeCall"}),
        ("DeliveredEvent", {"connection": _C, "alertingDevice": "202", **parties, "localConnectionInfo": "alerting", "cause": "newCall"}),
        ("DeliveredEvent", {"connection": _C, "alertingDevice": "202", **redirected, "cause": "callForwardNoAnswer"}),
        ("DeliveredEvent", {"connection": _C, "alertingDevice": "202", "callingDevice": {"restricted": ""},
                            "calledDevice": "202", "cause": "newCall"}),
        ("EstablishedEvent", {"establishedConnection": _C, "answeringDevice": "202", **parties,
                              "localConnectionInfo": "connected", "cause": "newCall"}),
        ("QueuedEvent", {"queuedConnection": Connection("12", "600"), "queue": "600", **parties, "numberQueued": 2,
                         "localConnectionInfo": "queued", "cause": "enteringDistribution"}),
        ("DivertedEvent", {"connection": _C, "divertingDevice": "202", "newDestination": "300", **parties,
                           "localConnectionInfo": "null", "cause": "callForwardImmediate"}),
        ("FailedEvent", {"failedConnection": _C, "failingDevice": "202", **parties, "localConnectionInfo": "fail", "cause": "busy"}),
        ("HeldEvent", {"heldConnection": _A, "holdingDevice": "201", "localConnectionInfo": "hold", "cause": "normal"}),
        ("RetrievedEvent", {"retrievedConnection": _A, "retrievingDevice": "201", "localConnectionInfo": "connected", "cause": "normal"}),
        ("ConnectionClearedEvent", {"droppedConnection": _C, "releasingDevice": "202", "localConnectionInfo": "null", "cause": "normalClearing"}),
        ("CallClearedEvent", {"clearedCall": {"callID": "12"}, "cause": "normalClearing"}),
        ("NetworkReachedEvent", {"outboundConnection": Connection("12", "T1"), "networkInterfaceUsed": "T1", "callingDevice": "201",
                                 "calledDevice": "0612345678", "cause": "newCall"}),
        ("TransferedEvent", {"primaryOldCall": _A, "secondaryOldCall": _B, "transferringDevice": "201", "transferredToDevice": "204",
                             "transferredConnections": {"connectionListItem": items}, "localConnectionInfo": "null", "cause": "transfer"}),
        ("ConferencedEvent", {"primaryOldCall": _A, "secondaryOldCall": _B, "conferencingDevice": "201", "addedParty": "204",
                              "conferenceConnections": {"connectionListItem": items}, "localConnectionInfo": "connected", "cause": "conference"}),
        ("ForwardingEvent", {"device": "201", "forwardingType": "forwardImmediate", "forwardStatus": True, "forwardTo": "300"}),
        ("ForwardingEvent", {"device": "201", "forwardingType": "forwardBusy", "forwardStatus": False}),
        ("DoNotDisturbEvent", {"device": "201", "doNotDisturbOn": True}),
    ]
    return [x.build(name, {"monitorCrossRefID": "7", **fields}, invoke_id=9) for name, fields in built]


def errors() -> list[Message]:
    """A ``CSTAErrorCode`` of each category (invoke id 5)."""
    values = [
        ("operation", "invalidDeviceID"),
        ("operation", "invalidCallID"),
        ("security", "generic"),
        ("stateIncompatibility", "noActiveCall"),
        ("systemResourceAvailability", "resourceBusy"),
        ("subscribedResourceAvailability", "objectMonitorLimitExceeded"),
        ("performanceManagement", "performanceLimitExceeded"),
        ("privateData", "cSTAPrivateDataInfoError"),
        ("unspecified", ""),
    ]
    return [x.build("CSTAErrorCode", {category: value}, invoke_id=5) for category, value in values]


def all_messages() -> list[Message]:
    """Requests (invoke id 5), responses, events and errors."""
    return [x.build(m.name, m.fields, invoke_id=5) for m in requests()] + responses() + events() + errors()
