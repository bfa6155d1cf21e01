"""CSTA over BER: ECMA-285 operations and events in X.880 ROSE, to neutral ``Message`` values.

``BerCodec`` has the XML ``Codec``'s contract: ``encode(Message) -> bytes`` gives one
whole ROSE PDU, ``decode(bytes) -> Message`` reads one.  Names and field shapes are those
the XML codec produces for the same operation or event, so a driver above sees no
difference; ``Message.invoke_id`` carries the ROSE invoke id both ways.

How each message travels (X.880 PDU, ECMA-285 operation code, ASN.1 type):

* a request (``MakeCall`` …): ``invoke`` with the operation's code and argument;
* its answer (``MakeCallResponse`` …): ``returnResult`` with the same invoke id, the
  code and the result (services without result data answer ``noData``);
* ``CSTAErrorCode``: ``returnError``, error code 1 (``universalFailure``), the
  category and value as a ``UniversalFailure``;
* an event (``DeliveredEvent`` …): ``invoke`` of ``cSTAEventReport`` (code 21), which
  expects no answer; ``monitorCrossRefID`` goes in the report, the rest in the event;
* ``SystemStatus``: ``invoke`` of code 211 (Phase III) or 52 (Phase II);
* ``RoseReject`` (kind error): ``reject``; ``fields["problem"]`` is
  ``{"invoke": "unrecognizedOperation"}`` and the like.

A request encoded without an invoke id gets the next one of the codec's own counter
(1–32767); an answer without one is refused.  The codec remembers the operation of the
invokes it encodes (bounded), so a ``returnResult`` that carries no result (allowed by
X.880) is still named after its request; otherwise it decodes as ``EmptyResponse``.
Decoding first checks the bytes' structure with caps on size and depth (``tlv``); any
problem is a ``BerError`` (a ``CodecError``), never another exception.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections import OrderedDict
from typing import Any

import asn1tools

from twp_csta.ber.modules import ROSE_MODULE
from twp_csta.ber.schema import Schema
from twp_csta.ber.tlv import MAX_DEPTH, MAX_PDU_SIZE, BerError, scan, to_definite
from twp_csta.xml.codec import Message, MessageKind

log = logging.getLogger(__name__)

#: ECMA-285 operation codes (``CODE local: n`` in each service module), Phase III.
OPERATION_CODES: dict[str, int] = {
    "AlternateCall": 1,
    "AnswerCall": 2,
    "ClearCall": 4,
    "ClearConnection": 5,
    "ConferenceCall": 6,
    "ConsultationCall": 7,
    "HoldCall": 9,
    "MakeCall": 10,
    "ReconnectCall": 13,
    "RetrieveCall": 14,
    "TransferCall": 16,
    "SingleStepTransferCall": 50,
    "MonitorStart": 71,
    "MonitorStop": 73,
    "SnapshotDevice": 74,
    "SnapshotCall": 75,
    "SystemStatus": 211,
    "DeflectCall": 218,
    "GenerateDigits": 232,
    "GetDoNotDisturb": 308,
    "GetForwarding": 309,
    "SetDoNotDisturb": 316,
    "SetForwarding": 317,
}
#: ``cSTAEventReport`` (event-report-definitions.asn1).
EVENT_REPORT_CODE = 21
#: ``universalFailure`` (error-definition.asn1).
UNIVERSAL_FAILURE_CODE = 1
#: Phase II codes that differ from Phase III.
PHASE2_CODES = {"SystemStatus": 52}
#: Phase III services with no Phase II equivalent under the same code (ECMA-218 has
#: divertCall, sendDTMFTones, setFeature and queryDevice instead).
PHASE3_ONLY = frozenset(
    {"DeflectCall", "GenerateDigits", "GetDoNotDisturb", "GetForwarding", "SetDoNotDisturb", "SetForwarding"}
)

# Operation name -> (argument type, result type or None for the noData choice).
_TYPES: dict[str, tuple[str, str | None]] = {
    "AlternateCall": ("AlternateCallArgument", None),
    "AnswerCall": ("AnswerCallArgument", None),
    "ClearCall": ("ClearCallArgument", None),
    "ClearConnection": ("ClearConnectionArgument", None),
    "ConferenceCall": ("ConferenceCallArgument", "ConferenceCallResult"),
    "ConsultationCall": ("ConsultationCallArgument", "ConsultationCallResult"),
    "HoldCall": ("HoldCallArgument", None),
    "MakeCall": ("MakeCallArgument", "MakeCallResult"),
    "ReconnectCall": ("ReconnectCallArgument", None),
    "RetrieveCall": ("RetrieveCallArgument", None),
    "TransferCall": ("TransferCallArgument", "TransferCallResult"),
    "SingleStepTransferCall": ("SingleStepTransferCallArgument", "SingleStepTransferCallResult"),
    "MonitorStart": ("MonitorStartArgument", "MonitorStartResult"),
    "MonitorStop": ("MonitorStopArgument", None),
    "SnapshotDevice": ("SnapshotDeviceArgument", "SnapshotDeviceResult"),
    "SnapshotCall": ("SnapshotCallArgument", "SnapshotCallResult"),
    "SystemStatus": ("SystemStatusArgument", None),
    "DeflectCall": ("DeflectCallArgument", None),
    "GenerateDigits": ("GenerateDigitsArgument", None),
    "GetDoNotDisturb": ("GetDoNotDisturbArgument", "GetDoNotDisturbResult"),
    "GetForwarding": ("GetForwardingArgument", "GetForwardingResult"),
    "SetDoNotDisturb": ("SetDoNotDisturbArgument", None),
    "SetForwarding": ("SetForwardingArgument", None),
}

#: Event message name (ECMA-323) -> (EventSpecificInfo choice, event choice, ASN.1 type).
EVENTS: dict[str, tuple[str, str, str]] = {
    "CallClearedEvent": ("callControlEvents", "callCleared", "CallClearedEvent"),
    "ConferencedEvent": ("callControlEvents", "conferenced", "ConferencedEvent"),
    "ConnectionClearedEvent": ("callControlEvents", "connectionCleared", "ConnectionClearedEvent"),
    "DeliveredEvent": ("callControlEvents", "delivered", "DeliveredEvent"),
    "DivertedEvent": ("callControlEvents", "diverted", "DivertedEvent"),
    "EstablishedEvent": ("callControlEvents", "established", "EstablishedEvent"),
    "FailedEvent": ("callControlEvents", "failed", "FailedEvent"),
    "HeldEvent": ("callControlEvents", "held", "HeldEvent"),
    "NetworkReachedEvent": ("callControlEvents", "networkReached", "NetworkReachedEvent"),
    "OriginatedEvent": ("callControlEvents", "originated", "OriginatedEvent"),
    "QueuedEvent": ("callControlEvents", "queued", "QueuedEvent"),
    "RetrievedEvent": ("callControlEvents", "retrieved", "RetrievedEvent"),
    "ServiceInitiatedEvent": ("callControlEvents", "serviceInitiated", "ServiceInitiatedEvent"),
    # ECMA-323 spells it with one r; ECMA-285's choice is "transferred".
    "TransferedEvent": ("callControlEvents", "transferred", "TransferredEvent"),
    "DoNotDisturbEvent": ("logicalDeviceFeatureEvents", "doNotDisturb", "DoNotDisturbEvent"),
    "ForwardingEvent": ("logicalDeviceFeatureEvents", "forwarding", "ForwardingEvent"),
}
_EVENT_BY_CHOICE = {(group, choice): name for name, (group, choice, _t) in EVENTS.items()}
_ERROR_CATEGORIES = (
    "operation", "security", "stateIncompatibility", "systemResourceAvailability",
    "subscribedResourceAvailability", "performanceManagement", "privateData", "unspecified",
)
_REJECT_PROBLEMS = ("general", "invoke", "returnResult", "returnError")
_MAX_PENDING = 4096
_INVOKE_ID_RANGE = (-(2**31), 2**31 - 1)


@functools.lru_cache(maxsize=1)
def _rose() -> Any:
    return asn1tools.compile_string(ROSE_MODULE, "ber")


class BerCodec:
    """Reads and writes CSTA messages as ECMA-285 BER in ROSE PDUs.

    ``phase`` is 3 (ECMA-285, the default) or 2 (ECMA-218: device identifiers without the
    Phase III SEQUENCE, SystemStatus as operation 52, older event tags; see docs).
    ``max_pdu_size`` and ``max_depth`` bound what ``decode`` accepts.
    """

    #: The ROSE PDU carries the invoke id itself (sessions set ``Message.invoke_id`` first).
    carries_invoke_id = True

    def __init__(self, phase: int = 3, *, max_pdu_size: int = MAX_PDU_SIZE, max_depth: int = MAX_DEPTH) -> None:
        self.schema = Schema(phase)
        self.phase = phase
        self.max_pdu_size = max_pdu_size
        self.max_depth = max_depth
        self.codes = dict(OPERATION_CODES)
        if phase == 2:
            self.codes.update(PHASE2_CODES)
        self._names = {code: name for name, code in self.codes.items()}
        self._ids = itertools.cycle(range(1, 32768))
        self._pending: OrderedDict[int, str] = OrderedDict()

    def __repr__(self) -> str:
        return f"BerCodec(phase={self.phase})"

    # -- encoding ------------------------------------------------------------------------
    def encode(self, message: Message) -> bytes:
        """The ROSE PDU of ``message`` (raises ``BerError`` if BER cannot carry it)."""
        name = message.name
        fields = dict(message.fields)
        if name in EVENTS:
            group, choice, type_name = EVENTS[name]
            xref = fields.pop("monitorCrossRefID", None)
            if xref is None:
                raise BerError("value", f"{name}: monitorCrossRefID is missing (an event report needs it)")
            event = self.schema.to_asn1({"type": type_name}, fields, name)
            argument = self._encode_value(
                "CSTAEventReportArgument",
                {"monitorCrossRefID": self.schema.to_asn1({"type": "MonitorCrossRefID"}, xref, name),
                 "eventSpecificInfo": (group, (choice, event))},
                name,
            )
            return self._invoke(message, EVENT_REPORT_CODE, argument, name)
        if name == "CSTAErrorCode":
            return self._return_error(message, fields)
        if name == "RoseReject":
            return self._reject(message, fields)
        if name.endswith("Response") and name[: -len("Response")] in _TYPES:
            operation = name[: -len("Response")]
            code = self._code(operation)
            result_type = _TYPES[operation][1]
            if result_type is None:
                result = self._encode_value("NoDataResult", ("noData", None), name)
            else:
                result = self.schema.encode(result_type, fields, name)
            invoke_id = self._answer_id(message)
            pdu = ("returnResult", {"invokeId": invoke_id, "result": {"opcode": ("local", code), "result": result}})
            return self._encode_rose(pdu, name)
        if name in _TYPES:
            code = self._code(name)
            argument = self.schema.encode(_TYPES[name][0], fields, name)
            return self._invoke(message, code, argument, name)
        raise BerError("unsupported", f"{name}: the BER codec has no ECMA-285 operation or event for this message")

    def _code(self, operation: str) -> int:
        if self.phase == 2 and operation in PHASE3_ONLY:
            raise BerError("unsupported", f"{operation}: not available in CSTA Phase II with this codec")
        return self.codes[operation]

    def _encode_value(self, type_name: str, value: Any, where: str) -> bytes:
        try:
            return bytes(self.schema.spec.encode(type_name, value, check_types=False))
        except Exception as exc:  # noqa: BLE001 - asn1tools raises assorted types on bad input; all become BerError
            raise BerError("value", f"{where}: {exc}") from None

    def _encode_rose(self, pdu: tuple[str, dict[str, Any]], where: str) -> bytes:
        try:
            return bytes(_rose().encode("RosePdu", pdu, check_types=False))
        except Exception as exc:  # noqa: BLE001 - asn1tools raises assorted types on bad input; all become BerError
            raise BerError("value", f"{where}: {exc}") from None

    def _invoke(self, message: Message, code: int, argument: bytes, where: str) -> bytes:
        invoke_id = message.invoke_id if message.invoke_id is not None else next(self._ids)
        self._check_id(invoke_id, where)
        if code != EVENT_REPORT_CODE:
            self._pending[invoke_id] = message.name
            self._pending.move_to_end(invoke_id)
            while len(self._pending) > _MAX_PENDING:
                self._pending.popitem(last=False)
        pdu = ("invoke", {"invokeId": invoke_id, "opcode": ("local", code), "argument": argument})
        return self._encode_rose(pdu, where)

    def _answer_id(self, message: Message) -> int:
        if message.invoke_id is None:
            raise BerError("value", f"{message.name}: an answer needs the invoke id of the request it answers")
        self._check_id(message.invoke_id, message.name)
        return message.invoke_id

    @staticmethod
    def _check_id(invoke_id: int, where: str) -> None:
        if not _INVOKE_ID_RANGE[0] <= invoke_id <= _INVOKE_ID_RANGE[1]:
            raise BerError("value", f"{where}: invoke id {invoke_id} is outside the 32-bit range")

    def _return_error(self, message: Message, fields: dict[str, Any]) -> bytes:
        category = next((k for k in fields if k in _ERROR_CATEGORIES), None)
        if category is None and "privateErrorCode" in fields:
            category, fields = "privateData", {"privateData": "cSTAPrivateDataInfoError"}
        if category is None:
            raise BerError(
                "value", f"CSTAErrorCode: expected one of {', '.join(_ERROR_CATEGORIES)}, got {sorted(fields)}"
            )
        value = self.schema.to_asn1({"type": "UniversalFailure"}, {category: fields[category]}, "CSTAErrorCode")
        parameter = self._encode_value("UniversalFailure", value, "CSTAErrorCode")
        pdu = ("returnError", {
            "invokeId": self._answer_id(message), "errcode": ("local", UNIVERSAL_FAILURE_CODE), "parameter": parameter,
        })
        return self._encode_rose(pdu, "CSTAErrorCode")

    def _reject(self, message: Message, fields: dict[str, Any]) -> bytes:
        problem = fields.get("problem")
        if not isinstance(problem, dict) or len(problem) != 1 or next(iter(problem)) not in _REJECT_PROBLEMS:
            raise BerError("value", f"RoseReject: problem must be one of {', '.join(_REJECT_PROBLEMS)}, got {problem!r}")
        kind, value = next(iter(problem.items()))
        invoke = ("absent", None) if message.invoke_id is None else ("present", message.invoke_id)
        return self._encode_rose(("reject", {"invokeId": invoke, "problem": (kind, value)}), "RoseReject")

    # -- decoding ------------------------------------------------------------------------
    def decode(self, data: bytes | bytearray) -> Message:
        """The message in one ROSE PDU; ``BerError`` for anything else."""
        _size, indefinite = scan(data, max_size=self.max_pdu_size, max_depth=self.max_depth)
        if indefinite:
            data = to_definite(data)
        if data[0] not in (0xA1, 0xA2, 0xA3, 0xA4):
            raise BerError("not-rose", f"tag byte 0x{data[0]:02x} does not start a ROSE PDU (0xa1-0xa4)")
        try:
            kind, pdu = _rose().decode("RosePdu", bytes(data))
        except Exception as exc:  # noqa: BLE001 - asn1tools raises assorted types on bad input; all become BerError
            raise BerError("schema", f"not a valid ROSE PDU: {exc}") from None
        if kind == "invoke":
            return self._decode_invoke(pdu)
        if kind == "returnResult":
            return self._decode_result(pdu)
        if kind == "returnError":
            return self._decode_error(pdu)
        choice, value = pdu["invokeId"]
        problem_kind, problem = pdu["problem"]
        return Message(
            "RoseReject", {"problem": {problem_kind: str(problem)}}, kind=MessageKind.ERROR,
            invoke_id=value if choice == "present" else None,
        )

    @staticmethod
    def _local_code(code: tuple[str, Any], invoke_id: int, what: str) -> int:
        choice, value = code
        if choice != "local":
            raise BerError("unknown-operation", f"{what} with a global code {value}", invoke_id=invoke_id)
        return int(value)

    def _decode_invoke(self, pdu: dict[str, Any]) -> Message:
        invoke_id = pdu["invokeId"]
        code = self._local_code(pdu["opcode"], invoke_id, "an operation")
        argument = pdu.get("argument")
        if argument is None:
            raise BerError("schema", f"operation {code} has no argument", invoke_id=invoke_id, opcode=code)
        if code == EVENT_REPORT_CODE:
            report = self._decode_value("CSTAEventReportArgument", argument, "an event report", invoke_id)
            group, (choice, event) = report["eventSpecificInfo"]
            name = _EVENT_BY_CHOICE[(group, choice)]
            fields = {"monitorCrossRefID": self.schema.from_asn1({"type": "MonitorCrossRefID"}, report["monitorCrossRefID"])}
            fields.update(self.schema.from_asn1({"type": EVENTS[name][2]}, event))
            return Message(name, fields, invoke_id=invoke_id)
        operation = self._names.get(code)
        if operation is None or (self.phase == 2 and operation in PHASE3_ONLY):
            raise BerError(
                "unknown-operation", f"operation code {code} is not one this codec knows", invoke_id=invoke_id, opcode=code
            )
        return Message(operation, self.schema.decode(_TYPES[operation][0], argument, operation), invoke_id=invoke_id)

    def _decode_value(self, type_name: str, data: Any, where: str, invoke_id: int) -> Any:
        try:
            return self.schema.spec.decode(type_name, bytes(data))
        except Exception as exc:  # noqa: BLE001 - asn1tools raises assorted types on bad input; all become BerError
            raise BerError("schema", f"{where}: not a valid {type_name}: {exc}", invoke_id=invoke_id) from None

    def _decode_result(self, pdu: dict[str, Any]) -> Message:
        invoke_id = pdu["invokeId"]
        pending = self._pending.pop(invoke_id, None)
        result = pdu.get("result")
        if result is None:
            return Message(f"{pending}Response" if pending else "EmptyResponse", {}, kind=MessageKind.RESPONSE, invoke_id=invoke_id)
        code = self._local_code(result["opcode"], invoke_id, "a result")
        operation = self._names.get(code)
        if operation is None:
            raise BerError(
                "unknown-operation", f"a result for operation code {code}, which this codec does not know",
                invoke_id=invoke_id, opcode=code,
            )
        result_type = _TYPES[operation][1]
        name = f"{operation}Response"
        if result_type is None:
            self._decode_value("NoDataResult", result["result"], name, invoke_id)
            return Message(name, {}, invoke_id=invoke_id)
        try:
            fields = self.schema.decode(result_type, result["result"], name)
        except BerError as exc:
            exc.invoke_id = invoke_id
            raise
        return Message(name, fields, invoke_id=invoke_id)

    def _decode_error(self, pdu: dict[str, Any]) -> Message:
        invoke_id = pdu["invokeId"]
        self._pending.pop(invoke_id, None)
        code = self._local_code(pdu["errcode"], invoke_id, "an error")
        fields: dict[str, Any] = {"unspecified": ""}
        parameter = pdu.get("parameter")
        if code == UNIVERSAL_FAILURE_CODE and parameter is not None:
            try:
                fields = self.schema.decode("UniversalFailure", parameter, "CSTAErrorCode")
            except BerError as exc:
                # An error value this codec does not know is still a refusal of the request.
                log.debug("CSTA BER: error parameter of invoke %s not read: %s", invoke_id, exc)
                fields = {"unspecified": ""}
        return Message("CSTAErrorCode", fields, invoke_id=invoke_id)

    def forget(self, invoke_id: int) -> None:
        """Drop the remembered operation of an invoke (after a time-out, say)."""
        self._pending.pop(invoke_id, None)
