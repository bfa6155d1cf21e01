"""Errors of the CSTA XML toolkit, and the mapping of CSTA error codes to API errors.

Every exception the toolkit raises or returns derives from ``CstaBaseError`` and carries
an ``http_status`` and a ``message`` a person can read, so the call-control API can turn
any of them into a clear JSON error without knowing CSTA:

- ``FramingError``: bytes on the link that do not form a frame (returned by
  ``Framing.feed`` as an item, raised by ``Framing.encode`` for a payload that cannot
  be framed);
- ``CodecError``: a frame whose XML cannot be read, or a message that cannot be written;
- ``CstaError``: the PBX answered a request with ``CSTAErrorCode`` (ECMA-323) or an
  ECMA-354 negative response;
- ``CstaTimeout``: no answer in time (also a ``TimeoutError``);
- ``CstaLinkError``: the link is closed or was lost (also a ``ConnectionError``).

``describe_error(category, value)`` is the table behind ``CstaError``: it turns an
ECMA-269 error category and value into an HTTP status and a sentence; ``docs/csta.md``
shows the same table.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from twp_csta.xml.codec import Message

log = logging.getLogger(__name__)

#: The choices of ``CSTAErrorCode`` (ECMA-323, error definitions), in the standard's order.
ERROR_CATEGORIES = (
    "operation",
    "security",
    "stateIncompatibility",
    "systemResourceAvailability",
    "subscribedResourceAvailability",
    "performanceManagement",
    "privateData",
    "unspecified",
)

#: Category used for the ``errorCode`` of ECMA-354 negative responses.
APPLICATION_SESSION_CATEGORY = "applicationSession"


class CstaBaseError(Exception):
    """Base of every toolkit error: a readable ``message`` and the ``http_status`` to answer."""

    http_status: int = 502

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if http_status is not None:
            self.http_status = http_status

    def to_dict(self) -> dict[str, Any]:
        """The JSON body the API answers with."""
        return {"error": type(self).__name__, "status": self.http_status, "message": self.message}


class FramingError(CstaBaseError):
    """Bytes that do not form a frame.

    ``Framing.feed`` returns these as items of its result (it never raises); the caller
    logs and counts them.  ``kind`` is one of ``garbage`` (bytes that are not a frame
    header, dropped up to the next plausible header), ``oversized`` (a frame larger than
    the configured maximum, skipped), ``bad-header`` (a header whose invoke id is not four
    digits, frame skipped), ``empty`` (a frame without payload) and ``payload`` (a
    payload ``encode`` cannot frame).  ``skipped`` is the number of bytes dropped.
    ``fatal`` is true when the framer cannot find the next frame and the link must be
    reset; the framings shipped here always resynchronise, so they never set it.
    """

    def __init__(
        self, kind: str, detail: str, *, skipped: int = 0, fatal: bool = False, framing: str = ""
    ) -> None:
        prefix = f"{framing} framing: " if framing else "framing: "
        super().__init__(f"{prefix}{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.skipped = skipped
        self.fatal = fatal
        self.framing = framing

    def __repr__(self) -> str:
        return f"FramingError({self.kind!r}, {self.detail!r}, skipped={self.skipped}, fatal={self.fatal})"


class CodecError(CstaBaseError):
    """XML that cannot be read as a CSTA message (or a message that cannot be written)."""


class CstaError(CstaBaseError):
    """The PBX refused a request.

    ``category`` is the ``CSTAErrorCode`` choice (``operation``, ``stateIncompatibility``
    …, or ``applicationSession`` for ECMA-354 negative responses), ``value`` the error
    value (``invalidDeviceID`` …), ``operation`` the request's name and ``message`` a
    sentence naming the operation, the thing concerned and the CSTA value.
    """

    def __init__(
        self,
        category: str,
        value: str,
        message: str,
        *,
        http_status: int | None = None,
        operation: str | None = None,
        subject: str | None = None,
    ) -> None:
        if http_status is None:
            http_status = describe_error(category, value)[0]
        super().__init__(message, http_status=http_status)
        self.category = category
        self.value = value
        self.operation = operation
        self.subject = subject

    @classmethod
    def from_response(cls, response: Message, request: Message | None = None) -> CstaError:
        """Build the error for a ``CSTAErrorCode`` or ECMA-354 negative ``response``.

        ``request`` (the message that was refused) names the operation and supplies the
        device, call or monitor the sentence talks about.
        """
        category, value = error_code_of(response)
        operation = request.name if request is not None else None
        subject = _subject_for(value, request)
        status, text = describe_error(category, value, subject=subject)
        where = f"{operation}: " if operation else ""
        kind = "ECMA-354 application session" if category == APPLICATION_SESSION_CATEGORY else f"CSTA {category}"
        message = f"{where}{text} ({kind} error {value})"
        return cls(category, value, message, http_status=status, operation=operation, subject=subject)

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body.update(category=self.category, value=self.value, operation=self.operation)
        return body

    def __repr__(self) -> str:
        return f"CstaError({self.category!r}, {self.value!r}, {self.message!r})"


class CstaTimeout(CstaBaseError, TimeoutError):
    """No answer to ``operation`` within ``timeout`` seconds."""

    http_status = 504

    def __init__(self, operation: str, timeout: float, *, link: str = "") -> None:
        on = f" on link {link}" if link else ""
        super().__init__(
            f"{operation}: no answer from the PBX{on} within {timeout:g} s "
            "(check the link, or raise the request time-out)"
        )
        self.operation = operation
        self.timeout = timeout


class CstaLinkError(CstaBaseError, ConnectionError):
    """The link to the PBX is closed or was lost; nothing can be sent or answered on it."""

    http_status = 503


def error_code_of(response: Message) -> tuple[str, str]:
    """The ``(category, value)`` of a ``CSTAErrorCode`` or ECMA-354 negative response."""
    fields = response.fields
    if response.name.endswith("NegResponse"):
        code = fields.get("errorCode", fields)
        return APPLICATION_SESSION_CATEGORY, _first_value(code) or "unspecified"
    for key, value in fields.items():
        if key.startswith("@") or key == "#text":
            continue
        category = "privateData" if key == "privateErrorCode" else key
        if category in ERROR_CATEGORIES:
            return category, _first_value(value) or "generic"
    for key, value in fields.items():  # an unknown choice: keep what the PBX said
        if not key.startswith("@") and key != "#text":
            return key, _first_value(value) or "generic"
    return "unspecified", "generic"


def _first_value(value: Any) -> str:
    """The text of a leaf; for a nested value, the text (or name) of its first child."""
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, dict):
        text = value.get("#text")
        if isinstance(text, str) and text.strip():
            return text.strip()
        for key, child in value.items():
            if key.startswith("@") or key == "#text":
                continue
            return _first_value(child) or key
        return ""
    return str(value).strip() if value is not None else ""


# (http status, sentence) for specific values; {subject} is "" or " <the thing>".
_DEVICE_UNKNOWN = (404, "device{subject} unknown to the PBX")
_CALL_GONE = (409, "call{subject} no longer exists on the PBX (it may have ended)")
_CONNECTION_GONE = (409, "connection{subject} no longer exists on the PBX (the call may have ended or moved)")

_SPECIFIC: dict[str, tuple[int, str]] = {
    "invalidDeviceID": _DEVICE_UNKNOWN,
    "invalidCallingDeviceID": _DEVICE_UNKNOWN,
    "invalidCalledDeviceID": _DEVICE_UNKNOWN,
    "invalidActiveDeviceID": _DEVICE_UNKNOWN,
    "invalidHeldDeviceID": _DEVICE_UNKNOWN,
    "invalidDestinationDeviceID": _DEVICE_UNKNOWN,
    "invalidDivertingDeviceID": _DEVICE_UNKNOWN,
    "invalidPickUpDeviceID": _DEVICE_UNKNOWN,
    "invalidParkToDeviceID": _DEVICE_UNKNOWN,
    "invalidCallToParkDeviceID": _DEVICE_UNKNOWN,
    "objectNotKnown": (404, "object{subject} unknown to the PBX"),
    "invalidCallID": _CALL_GONE,
    "invalidActiveCallID": _CALL_GONE,
    "invalidHeldCallID": _CALL_GONE,
    "invalidConnectionID": _CONNECTION_GONE,
    "invalidActiveConnectionID": _CONNECTION_GONE,
    "invalidHeldConnectionID": _CONNECTION_GONE,
    "invalidMonitorCrossReferenceID": (404, "monitor{subject} unknown to the PBX (it may have been stopped)"),
    "invalidCrossReferenceID": (404, "cross reference{subject} unknown to the PBX"),
    "invalidDestination": (400, "destination{subject} cannot be reached (check the number)"),
    "invalidForwardingDestination": (400, "forwarding destination{subject} refused by the PBX"),
    "featureAlreadySet": (409, "the feature is already set on{subject_or_device}"),
    "serviceNotSupported": (501, "this operation is not supported by the PBX"),
    "requestIncompatibleWithObject": (501, "this operation is not possible on{subject_or_device} with this PBX"),
    "securityViolation": (403, "the PBX refused the request for security reasons"),
    "noActiveCall": (409, "there is no active call on{subject_or_device}"),
    "noHeldCall": (409, "there is no held call on{subject_or_device}"),
    "noCallToAnswer": (409, "there is no call to answer on{subject_or_device}"),
    "noCallToClear": (409, "there is no call to clear on{subject_or_device}"),
    "noConnectionToClear": (409, "there is no connection to clear on{subject_or_device}"),
    "noCallToComplete": (409, "there is no call to complete on{subject_or_device}"),
    "connectedCallExists": (409, "{subject_or_device_cap} already has a connected call"),
    "resourceBusy": (503, "a PBX resource is busy; try again in a moment"),
    "networkBusy": (503, "the network behind the PBX is busy; try again in a moment"),
    "objectMonitorLimitExceeded": (503, "the PBX monitors too many objects; free a monitor or raise the PBX limit"),
    "overallMonitorLimitExceeded": (503, "the PBX monitor limit is reached; free a monitor or raise the PBX limit"),
    "outstandingRequestsLimitExceeded": (503, "too many requests pending at the PBX; try again in a moment"),
    "performanceLimitExceeded": (503, "the PBX is overloaded; try again later"),
}

_CATEGORY_DEFAULT: dict[str, tuple[int, str]] = {
    "operation": (502, "the PBX refused the request"),
    "security": (403, "the PBX refused the request for security reasons"),
    "stateIncompatibility": (409, "not possible in the current state of{subject_or_device}"),
    "systemResourceAvailability": (503, "a PBX resource is unavailable; try again later"),
    "subscribedResourceAvailability": (503, "a subscribed PBX limit is reached"),
    "performanceManagement": (503, "the PBX is overloaded; try again later"),
    "privateData": (502, "the PBX reported a vendor-specific error"),
    "unspecified": (502, "the PBX reported an unspecified error"),
    APPLICATION_SESSION_CATEGORY: (502, "the PBX refused the application session"),
}


def describe_error(category: str, value: str, *, subject: str | None = None) -> tuple[int, str]:
    """HTTP status and sentence for a CSTA error ``category`` and ``value``.

    ``subject`` (a device number, ``call 12 at 201``, a monitor id …) is woven into the
    sentence when given.  Unknown values fall back on name patterns (``…NotSupported``
    is 501, ``privilegeViolation…`` 403, ``…OutOfService`` 503 …), then on the category.
    """
    status, template = _lookup(category, value)
    sub = f" {subject}" if subject else ""
    text = template.format(
        subject=sub,
        subject_or_device=sub or " the device",
        subject_or_device_cap=subject or "the device",
        value=value,
    )
    return status, text


def _lookup(category: str, value: str) -> tuple[int, str]:
    if category == "stateIncompatibility":
        if value in _SPECIFIC:
            return _SPECIFIC[value]
        return _CATEGORY_DEFAULT[category]
    if category in ("security", "performanceManagement", "privateData", "unspecified", APPLICATION_SESSION_CATEGORY):
        if category == "performanceManagement" and value in _SPECIFIC:
            return _SPECIFIC[value]
        return _CATEGORY_DEFAULT[category]
    if value in _SPECIFIC:
        return _SPECIFIC[value]
    if category == "operation":
        if value.startswith("privilegeViolation"):
            return 403, "no privilege for this operation on{subject_or_device}"
        if value.startswith("requestIncompatibleWith"):
            return 501, "this operation is not possible on{subject_or_device} with this PBX"
        if value.endswith("NotSupported"):
            return 501, "a parameter of this operation is not supported by the PBX ({value})"
        if value.endswith("DeviceID"):
            return _DEVICE_UNKNOWN
        if value.endswith("OutOfRange") or value.startswith("invalid") or value in (
            "atLeastOneConditionalParameterNotProvided",
            "messageIDRequired",
            "notDifferentDevices",
            "notSameDevice",
        ):
            return 400, "the PBX rejected a parameter of this operation ({value})"
    if category == "systemResourceAvailability":
        if value.endswith("OutOfService"):
            return 503, "{subject_or_device_cap} or a PBX resource is out of service"
        if value.endswith("Busy"):
            return 503, "a PBX resource is busy; try again in a moment"
        if value.endswith(("Exceeded", "CannotBeSatisfied")):
            return 503, "a PBX limit is reached ({value})"
    if category in _CATEGORY_DEFAULT:
        return _CATEGORY_DEFAULT[category]
    return 502, "the PBX refused the request"


# Which request fields name the thing an error value is about, most specific first.
_DEVICE_FIELDS = (
    "device",
    "callingDevice",
    "calledDirectoryNumber",
    "consultedDevice",
    "transferredTo",
    "newDestination",
    "snapshotObject",
    "monitorObject",
)
_DESTINATION_FIELDS = ("calledDirectoryNumber", "consultedDevice", "transferredTo", "newDestination", "forwardDN")
_VALUE_FIELDS: dict[str, tuple[str, ...]] = {
    "invalidCallingDeviceID": ("callingDevice",),
    "invalidCalledDeviceID": _DESTINATION_FIELDS,
    "invalidDestinationDeviceID": _DESTINATION_FIELDS,
    "invalidDestination": _DESTINATION_FIELDS,
    "invalidForwardingDestination": ("forwardDN",),
    "invalidDivertingDeviceID": ("callToBeDiverted",),
    "invalidMonitorCrossReferenceID": ("monitorCrossRefID",),
    "invalidCrossReferenceID": ("monitorCrossRefID", "crossRefIdentifier"),
    "invalidHeldCallID": ("heldCall",),
    "invalidHeldConnectionID": ("heldCall",),
    "invalidActiveCallID": ("activeCall", "existingCall"),
    "invalidActiveConnectionID": ("activeCall", "existingCall"),
    "noHeldCall": ("heldCall",),
}


def _subject_for(value: str, request: Message | None) -> str | None:
    """The device, call or monitor of ``request`` an error ``value`` is about, as text."""
    if request is None:
        return None
    from twp_csta.xml.codec import connection_of, device_text

    fields = request.fields
    names: tuple[str, ...] = _VALUE_FIELDS.get(value, ())
    is_call = "CallID" in value or "ConnectionID" in value or value == "invalidCallID"
    for name in names:
        if name in fields:
            conn = connection_of(fields[name])
            if conn is not None:
                return conn.describe()
            text = device_text(fields[name])
            if text:
                return text
    if is_call:
        for item in fields.values():
            conn = connection_of(item)
            if conn is not None:
                return conn.describe()
    for name in _DEVICE_FIELDS:
        if name in fields:
            text = device_text(fields[name])
            if text:
                return text
    for item in fields.values():
        conn = connection_of(item)
        if conn is not None:
            return conn.device_id if not is_call and conn.device_id else conn.describe()
    return None
