"""CSTA XML codec: ECMA-323 documents to neutral ``Message`` values and back.

Decoding accepts every edition a PBX may speak: the root element may be in the ECMA-323
namespace of edition 3, 4 or 5, in the ECMA-354 application-session namespace, in a
vendor namespace, or in none at all; a SOAP envelope is unwrapped.  Namespaces are then
forgotten: a ``Message`` is a name (``MakeCall``, ``DeliveredEvent``, ``CSTAErrorCode``
…), a kind (request, response, event, error) and a tree of namespace-free fields.

Encoding writes the configured edition's namespace (``Codec(edition=4)``), except for
the ECMA-354 messages, which always travel in their own namespace.  Field order is
preserved, so builders list fields in the order the ECMA-323 schema wants.

The field tree is plain data: an element with text only becomes a ``str``; an element
with children becomes a ``dict``; a repeated element becomes a ``list``; attributes
appear as ``"@name"`` keys, with the text under ``"#text"``.  Treat it as read-only.

Parsing uses the standard library's expat directly, with no DTD support at all: a
document with a DOCTYPE or an entity declaration is refused before anything is
expanded (no "billion laughs", no external entities), and depth and element count are
bounded.  Builders for the requests drivers send sit at the end of this module.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

import attrs

from twp_csta.errors import CodecError, error_code_of

log = logging.getLogger(__name__)

#: ECMA-323 namespaces by edition.
CSTA_NAMESPACES: dict[int, str] = {
    3: "http://www.ecma-international.org/standards/ecma-323/csta/ed3",
    4: "http://www.ecma-international.org/standards/ecma-323/csta/ed4",
    5: "http://www.ecma-international.org/standards/ecma-323/csta/ed5",
}
#: ECMA-354 application session services namespace.
APPL_SESSION_NAMESPACE = "http://www.ecma-international.org/standards/ecma-354/appl_session"
#: Messages that belong to ECMA-354 and are always written in its namespace.
APPL_SESSION_MESSAGES = frozenset(
    f"{op}{suffix}"
    for op in ("StartApplicationSession", "StopApplicationSession", "ResetApplicationSessionTimer")
    for suffix in ("", "PosResponse", "NegResponse")
)
_SOAP_NAMESPACES = frozenset(
    {"http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope"}
)
_EDITION_RE = re.compile(r"/ecma-323/csta/ed(\d+)")

#: Forwarding types of ECMA-269 (``SetForwarding``/``ForwardingEvent``).
FORWARDING_TYPES = frozenset(
    {
        "forwardImmediate", "forwardBusy", "forwardNoAns", "forwardBusyInt", "forwardBusyExt",
        "forwardNoAnsInt", "forwardNoAnsExt", "forwardImmInt", "forwardImmExt",
        "forwardDND", "forwardDNDInt", "forwardDNDExt",
    }
)
#: Values of ``systemStatus`` in ``SystemStatus`` requests.
SYSTEM_STATUSES = frozenset(
    {
        "initializing", "enabled", "normal", "messagesLost", "disabled", "partiallyDisabled",
        "overloadImminent", "overloadReached", "overloadRelieved",
    }
)

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_ILLEGAL_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_UNKNOWN_DEVICE_CHOICES = frozenset({"notKnown", "restricted", "notRequired", "notSpecified"})


class MessageKind(enum.StrEnum):
    """What a message is, from its name."""

    REQUEST = "request"
    RESPONSE = "response"
    EVENT = "event"
    ERROR = "error"


def kind_of(name: str) -> MessageKind:
    """Kind of a message by name: ``CSTAErrorCode`` and ``…NegResponse`` are errors."""
    if name == "CSTAErrorCode" or name.endswith("NegResponse"):
        return MessageKind.ERROR
    if name.endswith("Response"):
        return MessageKind.RESPONSE
    if name.endswith("Event"):
        return MessageKind.EVENT
    return MessageKind.REQUEST


def edition_of(namespace: str | None) -> int | None:
    """ECMA-323 edition of a namespace URI, or None (no namespace, ECMA-354, vendor)."""
    if not namespace:
        return None
    match = _EDITION_RE.search(namespace)
    return int(match.group(1)) if match else None


@attrs.frozen
class Connection:
    """A CSTA connection identifier: a call at a device (``ConnectionID``)."""

    call_id: str
    """The PBX's call identifier."""
    device_id: str | None = None
    """The device of the connection (absent in a few PBX answers)."""

    def to_fields(self) -> dict[str, str]:
        """The ``callID``/``deviceID`` children of a ConnectionID element."""
        fields = {"callID": self.call_id}
        if self.device_id is not None:
            fields["deviceID"] = self.device_id
        return fields

    def describe(self) -> str:
        """``call 12 at 201``, for messages a person reads."""
        return f"call {self.call_id} at {self.device_id}" if self.device_id else f"call {self.call_id}"


@attrs.frozen
class ConnectionListItem:
    """One entry of a ``TransferedEvent``/``ConferencedEvent`` connection list."""

    new_connection: Connection | None
    """The connection after the transfer or conference."""
    old_connection: Connection | None
    """The connection it replaces."""
    endpoint: str | None
    """The device at that end."""


@attrs.frozen
class SnapshotItem:
    """One call at a device, from a ``SnapshotDeviceResponse``."""

    connection: Connection
    """The connection of the device in that call."""
    local_connection_state: str | None
    """``alerting``, ``connected``, ``hold``, ``queued``, ``fail``, ``initiated`` or ``null``."""


def _leaf_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        text = value.get("#text")
        return text if isinstance(text, str) else None
    return None


def as_list(value: Any) -> list[Any]:
    """A field that may occur once or several times, as a list (empty if absent)."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def connection_of(value: Any) -> Connection | None:
    """Read a ConnectionID-shaped field (``callID`` and ``deviceID`` children), or None."""
    if not isinstance(value, dict):
        return None
    call_id = _leaf_text(value.get("callID"))
    if call_id is None:
        return None
    device_id = device_text(value["deviceID"]) if "deviceID" in value else None
    return Connection(call_id, device_id)


def device_text(value: Any) -> str | None:
    """The number of a device-shaped field, or None if absent, not known or restricted.

    Accepts the plain form (``<callingDevice>201</callingDevice>``), the event form
    (``<callingDevice><deviceIdentifier>201</deviceIdentifier></callingDevice>``), the
    connection form (``callID``/``deviceID`` children) and ``monitorObject``.
    """
    if value is None:
        return None
    if isinstance(value, list):
        return device_text(value[0]) if value else None
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        for key in ("deviceIdentifier", "deviceObject", "deviceID", "device"):
            if key in value:
                return device_text(value[key])
        if _UNKNOWN_DEVICE_CHOICES.intersection(value):
            return None
        text = value.get("#text")
        return text if isinstance(text, str) and text else None
    return None


# Fields that hold "the" connection of a message, most specific first.
CONNECTION_FIELDS = (
    "connection",
    "establishedConnection",
    "droppedConnection",
    "heldConnection",
    "retrievedConnection",
    "originatedConnection",
    "failedConnection",
    "initiatedConnection",
    "queuedConnection",
    "callingDevice",
    "initiatedCall",
    "transferredCall",
    "conferenceCall",
    "connectionToBeCleared",
    "callToBeCleared",
    "callToBeAnswered",
    "callToBeHeld",
    "callToBeRetrieved",
    "callToBeDiverted",
    "callToBePickedUp",
    "pickedCall",
    "connectionToSendDigits",
    "existingCall",
    "activeCall",
    "heldCall",
    "primaryOldCall",
)


@attrs.frozen
class Message:
    """A CSTA message, independent of edition and namespace."""

    name: str
    """Element name of the message: ``MakeCall``, ``DeliveredEvent``, ``CSTAErrorCode`` …"""
    fields: dict[str, Any] = attrs.field(factory=dict, converter=lambda f: _normalize_fields(f))
    """Namespace-free field tree (see the module docstring); read-only by convention.

    Values given when building are normalised to the decoded form: numbers become
    text, booleans ``"true"``/``"false"``, a ``Connection`` its ``callID``/``deviceID``
    children, and ``None`` values are dropped; so ``decode(encode(m)) == m``.
    """
    kind: MessageKind = attrs.field(converter=MessageKind)
    """Request, response, event or error; derived from the name unless given."""
    namespace: str | None = attrs.field(default=None, eq=False)
    """Namespace URI the message was received in (None when built or namespace-less)."""
    invoke_id: int | None = attrs.field(default=None, eq=False)
    """Invoke id of the frame it came in (or is to go out with), when the framing has one."""

    @kind.default
    def _kind_from_name(self) -> MessageKind:
        return kind_of(self.name)

    @property
    def edition(self) -> int | None:
        """ECMA-323 edition of the namespace it was received in, if any."""
        return edition_of(self.namespace)

    def get(self, path: str, default: Any = None) -> Any:
        """Field at a ``/``-separated path (``"connection/callID"``); the first item of lists."""
        node: Any = self.fields
        for part in path.split("/"):
            if isinstance(node, list):
                node = node[0] if node else None
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def text(self, path: str) -> str | None:
        """Text of the leaf at ``path``, or None."""
        return _leaf_text(self.get(path))

    def device_field(self, name: str) -> str | None:
        """Device number held by field ``name`` (any of the forms ``device_text`` reads)."""
        return device_text(self.fields.get(name))

    def connection_field(self, name: str) -> Connection | None:
        """Connection held by field ``name``, or None."""
        return connection_of(self.fields.get(name))

    @property
    def connection(self) -> Connection | None:
        """The message's main connection (``connection``, ``establishedConnection`` …)."""
        for name in CONNECTION_FIELDS:
            if name in self.fields:
                conn = connection_of(self.fields[name])
                if conn is not None:
                    return conn
        return None

    @property
    def call_id(self) -> str | None:
        """``callID`` of the main connection."""
        conn = self.connection
        return conn.call_id if conn else None

    @property
    def device_id(self) -> str | None:
        """``deviceID`` of the main connection."""
        conn = self.connection
        return conn.device_id if conn else None

    @property
    def monitor_cross_ref_id(self) -> str | None:
        """``monitorCrossRefID`` (events and ``MonitorStartResponse``)."""
        return self.text("monitorCrossRefID")

    @property
    def calling_device(self) -> str | None:
        """Number of ``callingDevice`` (None when not known or restricted)."""
        return self.device_field("callingDevice")

    @property
    def called_device(self) -> str | None:
        """Number of ``calledDevice`` (``calledDirectoryNumber`` in a ``MakeCall``)."""
        if "calledDevice" in self.fields:
            return self.device_field("calledDevice")
        return self.device_field("calledDirectoryNumber")

    @property
    def alerting_device(self) -> str | None:
        """Number of ``alertingDevice`` (``DeliveredEvent``)."""
        return self.device_field("alertingDevice")

    @property
    def answering_device(self) -> str | None:
        """Number of ``answeringDevice`` (``EstablishedEvent``)."""
        return self.device_field("answeringDevice")

    @property
    def releasing_device(self) -> str | None:
        """Number of ``releasingDevice`` (``ConnectionClearedEvent``)."""
        return self.device_field("releasingDevice")

    @property
    def last_redirection_device(self) -> str | None:
        """Number of ``lastRedirectionDevice`` (set when the call was diverted)."""
        return self.device_field("lastRedirectionDevice")

    @property
    def subject_device(self) -> str | None:
        """Number of ``device`` (``ForwardingEvent``, ``DoNotDisturbEvent``, ``SetForwarding`` …)."""
        return self.device_field("device")

    @property
    def cause(self) -> str | None:
        """Event ``cause`` (``newCall``, ``normalClearing``, ``busy`` …)."""
        return self.text("cause")

    @property
    def local_connection_info(self) -> str | None:
        """``localConnectionInfo`` of an event (``alerting``, ``connected``, ``hold`` …)."""
        return self.text("localConnectionInfo")

    @property
    def system_status(self) -> str | None:
        """``systemStatus`` of a ``SystemStatus`` request."""
        return self.text("systemStatus")

    @property
    def error_code(self) -> tuple[str, str] | None:
        """``(category, value)`` for an error message, None otherwise."""
        return error_code_of(self) if self.kind is MessageKind.ERROR else None

    def connection_list(self) -> list[ConnectionListItem]:
        """Entries of ``transferredConnections`` or ``conferenceConnections``."""
        container = self.fields.get("transferredConnections") or self.fields.get("conferenceConnections")
        if not isinstance(container, dict):
            return []
        items = []
        for entry in as_list(container.get("connectionListItem")):
            if isinstance(entry, dict):
                items.append(
                    ConnectionListItem(
                        connection_of(entry.get("newConnection")),
                        connection_of(entry.get("oldConnection")),
                        device_text(entry.get("endpoint")),
                    )
                )
        return items

    def snapshot_items(self) -> list[SnapshotItem]:
        """Calls listed in a ``SnapshotDeviceResponse``."""
        data = self.get("crossRefIDorSnapshotData/snapshotData")
        if not isinstance(data, dict):
            return []
        items = []
        for info in as_list(data.get("snapshotDeviceResponseInfo")):
            if not isinstance(info, dict):
                continue
            conn = connection_of(info.get("connectionIdentifier"))
            if conn is None:
                continue
            state_node = info.get("localCallState")
            state = None
            if isinstance(state_node, dict):
                compound = state_node.get("compoundCallState")
                if isinstance(compound, dict):
                    states = as_list(compound.get("localConnectionState"))
                    state = _leaf_text(states[0]) if states else None
                else:
                    state = _leaf_text(state_node.get("simpleCallState"))
            elif isinstance(state_node, str):
                state = state_node
            items.append(SnapshotItem(conn, state))
        return items


def _normalize(value: Any, depth: int = 0) -> Any:
    if depth > 64:
        raise ValueError("message fields nested too deeply")
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, Connection):
        return value.to_fields()
    if isinstance(value, Mapping):
        normalized = {str(k): _normalize(v, depth + 1) for k, v in value.items()}
        return {k: v for k, v in normalized.items() if v is not None}
    if isinstance(value, (list, tuple)):
        items = [item for item in (_normalize(v, depth + 1) for v in value) if item is not None]
        if not items:
            return None
        return items if len(items) > 1 else items[0]
    if value is None:
        return None
    raise ValueError(f"cannot put a {type(value).__name__} in a CSTA message field")


def _normalize_fields(fields: Mapping[str, Any] | None) -> dict[str, Any]:
    if not fields:
        return {}
    normalized = _normalize(fields)
    if not isinstance(normalized, dict):
        raise ValueError("message fields must be a mapping")
    return normalized


@attrs.define(eq=False)
class _Node:
    name: str
    namespace: str | None
    attributes: dict[str, str]
    children: list[_Node] = attrs.field(factory=list)
    text: list[str] = attrs.field(factory=list)


class Codec:
    """Reads CSTA XML of any edition; writes the configured one.

    ``edition`` is 3, 4 or 5, or None to write messages without a namespace (a few old
    PBXs want that).  ``max_depth`` and ``max_elements`` bound what a document may
    contain; anything beyond is a ``CodecError``.
    """

    def __init__(
        self,
        edition: int | None = 4,
        *,
        max_depth: int = 48,
        max_elements: int = 20000,
        xml_declaration: bool = True,
    ) -> None:
        if edition is not None and edition not in CSTA_NAMESPACES:
            raise ValueError(
                f"CSTA edition: expected one of {sorted(CSTA_NAMESPACES)} or None, got {edition!r}"
            )
        self.edition = edition
        self.max_depth = max_depth
        self.max_elements = max_elements
        self.xml_declaration = xml_declaration

    def __repr__(self) -> str:
        return f"Codec(edition={self.edition!r})"

    @property
    def namespace(self) -> str | None:
        """Namespace written on CSTA (non ECMA-354) messages."""
        return CSTA_NAMESPACES[self.edition] if self.edition is not None else None

    def with_edition(self, edition: int | None) -> Codec:
        """A codec like this one writing ``edition``."""
        return Codec(
            edition,
            max_depth=self.max_depth,
            max_elements=self.max_elements,
            xml_declaration=self.xml_declaration,
        )

    def namespace_for(self, name: str) -> str | None:
        """Namespace a message called ``name`` is written in."""
        return APPL_SESSION_NAMESPACE if name in APPL_SESSION_MESSAGES else self.namespace

    # -- decoding -------------------------------------------------------------------

    def decode(self, payload: bytes, *, invoke_id: int | None = None) -> Message:
        """Parse one XML document; raises ``CodecError`` for anything that is not one."""
        if not isinstance(payload, (bytes, bytearray)):
            raise CodecError(f"expected bytes, got {type(payload).__name__}")
        root = self._parse(bytes(payload))
        if root.name == "Envelope" and root.namespace in _SOAP_NAMESPACES:
            root = _soap_body_child(root)
        return Message(root.name, _node_fields(root), namespace=root.namespace, invoke_id=invoke_id)

    def _parse(self, payload: bytes) -> _Node:
        parser = expat.ParserCreate(namespace_separator=" ")
        stack: list[_Node] = []
        roots: list[_Node] = []
        count = 0
        max_depth, max_elements = self.max_depth, self.max_elements

        def refuse_dtd(*_args: Any) -> None:
            raise CodecError("XML with a DOCTYPE or entity declaration refused (DTDs are not allowed in CSTA)")

        def refuse_external(*_args: Any) -> int:
            raise CodecError("XML with an external entity reference refused")

        def start(tag: str, attributes: dict[str, str]) -> None:
            nonlocal count
            count += 1
            if count > max_elements:
                raise CodecError(f"XML has more than {max_elements} elements")
            if len(stack) >= max_depth:
                raise CodecError(f"XML nested deeper than {max_depth} levels")
            namespace, _, local = tag.rpartition(" ")
            attrs_local = {key.rpartition(" ")[2]: value for key, value in attributes.items()}
            node = _Node(local, namespace or None, attrs_local)
            if stack:
                stack[-1].children.append(node)
            else:
                roots.append(node)
            stack.append(node)

        def end(_tag: str) -> None:
            stack.pop()

        def data(text: str) -> None:
            if stack:
                stack[-1].text.append(text)

        parser.StartDoctypeDeclHandler = refuse_dtd
        parser.EntityDeclHandler = refuse_dtd
        parser.UnparsedEntityDeclHandler = refuse_dtd
        parser.ExternalEntityRefHandler = refuse_external
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartElementHandler = start
        parser.EndElementHandler = end
        parser.CharacterDataHandler = data
        parser.buffer_text = True
        try:
            parser.Parse(payload, True)
        except CodecError:
            raise
        except expat.ExpatError as exc:
            raise CodecError(f"malformed XML: {expat.ErrorString(exc.code)} at line {exc.lineno}, column {exc.offset}") from None
        except Exception as exc:  # noqa: BLE001 - expat surfaces odd encodings as LookupError, ValueError …
            raise CodecError(f"unreadable XML: {exc}") from None
        if not roots:
            raise CodecError("no XML element in the frame")
        return roots[0]

    # -- encoding -------------------------------------------------------------------

    def encode(self, message: Message) -> bytes:
        """Serialise ``message`` (UTF-8); raises ``CodecError`` for names or text XML cannot carry."""
        out: list[str] = []
        if self.xml_declaration:
            out.append('<?xml version="1.0" encoding="UTF-8"?>')
        namespace = self.namespace_for(message.name)
        _write_element(message.name, message.fields, out, namespace, depth=0)
        return "".join(out).encode("utf-8")

    def encode_fields(self, name: str, fields: Mapping[str, Any] | None = None) -> bytes:
        """Shortcut for ``encode(build(name, fields))``."""
        return self.encode(build(name, fields))


def _soap_body_child(root: _Node) -> _Node:
    for child in root.children:
        if child.name == "Body":
            for inner in child.children:
                return inner
    raise CodecError("SOAP envelope without a message in its Body")


def _node_fields(node: _Node) -> dict[str, Any]:
    """The field tree of an element's content (its children and attributes)."""
    value = _node_value(node)
    if isinstance(value, dict):
        return value
    return {"#text": value} if value else {}


def _node_value(node: _Node) -> Any:
    text = "".join(node.text).strip()
    if not node.children and not node.attributes:
        return text
    result: dict[str, Any] = {f"@{key}": value for key, value in node.attributes.items()}
    for child in node.children:
        value = _node_value(child)
        if child.name in result:
            existing = result[child.name]
            if isinstance(existing, list):
                existing.append(value)
            else:
                result[child.name] = [existing, value]
        else:
            result[child.name] = value
    if text and not node.children:
        result["#text"] = text
    return result


def _check_text(text: str, where: str) -> str:
    if _ILLEGAL_XML_CHARS.search(text):
        raise CodecError(f"{where}: text {text!r} holds characters XML cannot carry")
    return text


def _scalar(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return _check_text(value, where)
    raise CodecError(f"{where}: cannot write a {type(value).__name__} as XML text")


def _write_element(name: str, value: Any, out: list[str], namespace: str | None, depth: int) -> None:
    if not _NAME_RE.match(name):
        raise CodecError(f"{name!r} is not a valid XML element name")
    if depth > 64:
        raise CodecError(f"{name}: fields nested too deeply")
    if value is None:
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _write_element(name, item, out, namespace, depth)
        return
    if isinstance(value, Connection):
        value = value.to_fields()
    open_tag = name
    if namespace:
        open_tag += f' xmlns="{escape(namespace)}"'
    if not isinstance(value, Mapping):
        text = _scalar(value, name)
        out.append(f"<{open_tag}>{escape(text)}</{name}>" if text else f"<{open_tag}/>")
        return
    children: list[tuple[str, Any]] = []
    text = ""
    for key, item in value.items():
        if key.startswith("@"):
            if item is None:
                continue
            if not _NAME_RE.match(key[1:]):
                raise CodecError(f"{name}: {key[1:]!r} is not a valid attribute name")
            open_tag += f" {key[1:]}={quoteattr(_scalar(item, f'{name}/{key}'))}"
        elif key == "#text":
            text = _scalar(item, name) if item is not None else ""
        else:
            children.append((key, item))
    if not children and not text:
        out.append(f"<{open_tag}/>")
        return
    out.append(f"<{open_tag}>")
    if text:
        out.append(escape(text))
    for key, item in children:
        _write_element(key, item, out, None, depth + 1)
    out.append(f"</{name}>")


# -- builders -----------------------------------------------------------------------

DeviceRef = str | int


def _dev(value: DeviceRef) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("a device number cannot be empty")
    return text


def build(name: str, fields: Mapping[str, Any] | None = None, *, invoke_id: int | None = None) -> Message:
    """Any message by name; ``None`` field values are left out when encoding."""
    if not _NAME_RE.match(name):
        raise ValueError(f"{name!r} is not a valid CSTA message name")
    return Message(name, dict(fields or {}), invoke_id=invoke_id)


def monitor_start(
    device: DeviceRef,
    *,
    monitor_type: str | None = None,
    requested_monitor_filter: Mapping[str, Any] | None = None,
) -> Message:
    """``MonitorStart`` on a device; the answer carries ``monitorCrossRefID``."""
    return build(
        "MonitorStart",
        {
            "monitorObject": {"deviceObject": _dev(device)},
            "requestedMonitorFilter": dict(requested_monitor_filter) if requested_monitor_filter else None,
            "monitorType": monitor_type,
        },
    )


def monitor_stop(monitor_cross_ref_id: str) -> Message:
    """``MonitorStop`` of a monitor started earlier."""
    return build("MonitorStop", {"monitorCrossRefID": str(monitor_cross_ref_id)})


def snapshot_device(device: DeviceRef) -> Message:
    """``SnapshotDevice``: the calls a device is part of right now."""
    return build("SnapshotDevice", {"snapshotObject": _dev(device)})


def snapshot_call(call: Connection) -> Message:
    """``SnapshotCall``: the devices of a call."""
    return build("SnapshotCall", {"snapshotObject": call})


def make_call(
    calling_device: DeviceRef,
    called_directory_number: DeviceRef,
    *,
    account_code: str | None = None,
    auto_originate: str | None = None,
) -> Message:
    """``MakeCall`` from ``calling_device`` to a number; ``auto_originate`` is ``prompt`` or ``doNotPrompt``."""
    return build(
        "MakeCall",
        {
            "callingDevice": _dev(calling_device),
            "calledDirectoryNumber": _dev(called_directory_number),
            "accountCode": account_code,
            "autoOriginate": auto_originate,
        },
    )


def answer_call(call: Connection) -> Message:
    """``AnswerCall`` on an alerting connection."""
    return build("AnswerCall", {"callToBeAnswered": call})


def clear_connection(connection: Connection) -> Message:
    """``ClearConnection``: hang up one device's part of a call."""
    return build("ClearConnection", {"connectionToBeCleared": connection})


def clear_call(call: Connection) -> Message:
    """``ClearCall``: end the whole call for every device."""
    return build("ClearCall", {"callToBeCleared": call})


def hold_call(call: Connection) -> Message:
    """``HoldCall`` on a connected connection."""
    return build("HoldCall", {"callToBeHeld": call})


def retrieve_call(call: Connection) -> Message:
    """``RetrieveCall`` of a held connection."""
    return build("RetrieveCall", {"callToBeRetrieved": call})


def consultation_call(existing_call: Connection, consulted_device: DeviceRef) -> Message:
    """``ConsultationCall``: hold ``existing_call`` and call ``consulted_device``."""
    return build("ConsultationCall", {"existingCall": existing_call, "consultedDevice": _dev(consulted_device)})


def alternate_call(held_call: Connection, active_call: Connection) -> Message:
    """``AlternateCall``: hold the active call and retrieve the held one."""
    return build("AlternateCall", {"heldCall": held_call, "activeCall": active_call})


def reconnect_call(active_call: Connection, held_call: Connection) -> Message:
    """``ReconnectCall``: clear the active call and retrieve the held one."""
    return build("ReconnectCall", {"activeCall": active_call, "heldCall": held_call})


def transfer_call(held_call: Connection, active_call: Connection) -> Message:
    """``TransferCall``: join the held and active calls and drop the transferring device."""
    return build("TransferCall", {"heldCall": held_call, "activeCall": active_call})


def single_step_transfer_call(active_call: Connection, transferred_to: DeviceRef) -> Message:
    """``SingleStepTransferCall`` (blind transfer) of ``active_call`` to a number."""
    return build("SingleStepTransferCall", {"activeCall": active_call, "transferredTo": _dev(transferred_to)})


def conference_call(held_call: Connection, active_call: Connection) -> Message:
    """``ConferenceCall``: join the held and active calls, the conferencing device stays."""
    return build("ConferenceCall", {"heldCall": held_call, "activeCall": active_call})


def deflect_call(call_to_be_diverted: Connection, new_destination: DeviceRef) -> Message:
    """``DeflectCall``: send an alerting call elsewhere."""
    return build("DeflectCall", {"callToBeDiverted": call_to_be_diverted, "newDestination": _dev(new_destination)})


def directed_pickup_call(call_to_be_picked_up: Connection, requesting_device: DeviceRef) -> Message:
    """``DirectedPickupCall`` (ECMA-269 "Directed Pickup Call"; ECMA-285 operation 220): take a call alerting or queued at another device."""
    return build("DirectedPickupCall", {"callToBePickedUp": call_to_be_picked_up, "requestingDevice": _dev(requesting_device)})


def generate_digits(connection: Connection, characters_to_send: str) -> Message:
    """``GenerateDigits``: send DTMF on a connection."""
    if not characters_to_send:
        raise ValueError("GenerateDigits needs at least one character to send")
    return build(
        "GenerateDigits", {"connectionToSendDigits": connection, "charactersToSend": characters_to_send}
    )


def set_forwarding(
    device: DeviceRef,
    forwarding_type: str,
    activate: bool,
    forward_dn: DeviceRef | None = None,
    *,
    ring_count: int | None = None,
) -> Message:
    """``SetForwarding``: turn a forwarding type on (to ``forward_dn``) or off."""
    if forwarding_type not in FORWARDING_TYPES:
        raise ValueError(
            f"forwarding type: expected one of {', '.join(sorted(FORWARDING_TYPES))}, got {forwarding_type!r}"
        )
    return build(
        "SetForwarding",
        {
            "device": _dev(device),
            "forwardingType": forwarding_type,
            "activateForward": bool(activate),
            "forwardDN": _dev(forward_dn) if forward_dn is not None else None,
            "ringCount": ring_count,
        },
    )


def get_forwarding(device: DeviceRef) -> Message:
    """``GetForwarding``: the forwarding settings of a device."""
    return build("GetForwarding", {"device": _dev(device)})


def set_do_not_disturb(device: DeviceRef, on: bool) -> Message:
    """``SetDoNotDisturb`` on or off."""
    return build("SetDoNotDisturb", {"device": _dev(device), "doNotDisturbOn": bool(on)})


def get_do_not_disturb(device: DeviceRef) -> Message:
    """``GetDoNotDisturb``: whether do-not-disturb is on."""
    return build("GetDoNotDisturb", {"device": _dev(device)})


def system_status(status: str = "normal") -> Message:
    """``SystemStatus`` request (the heartbeat both sides may send)."""
    if status not in SYSTEM_STATUSES:
        raise ValueError(f"system status: expected one of {', '.join(sorted(SYSTEM_STATUSES))}, got {status!r}")
    return build("SystemStatus", {"systemStatus": status})


def system_status_response() -> Message:
    """``SystemStatusResponse``, the (empty) positive answer to ``SystemStatus``."""
    return build("SystemStatusResponse")


def csta_error(category: str, value: str) -> Message:
    """``CSTAErrorCode`` answer (for simulators and tests)."""
    return build("CSTAErrorCode", {category: value})


def start_application_session(
    application_id: str,
    requested_protocol_versions: str | Sequence[str],
    *,
    requested_session_duration: int | None = None,
    application_specific_info: Mapping[str, Any] | None = None,
) -> Message:
    """ECMA-354 ``StartApplicationSession``.

    ``requested_protocol_versions`` are namespace URIs (``CSTA_NAMESPACES[4]`` …), best
    first; ``application_specific_info`` carries vendor log-in data (user, password),
    written as given.
    """
    versions = [requested_protocol_versions] if isinstance(requested_protocol_versions, str) else list(
        requested_protocol_versions
    )
    if not versions:
        raise ValueError("StartApplicationSession needs at least one requested protocol version")
    info: dict[str, Any] = {"applicationID": str(application_id)}
    if application_specific_info:
        info["applicationSpecificInfo"] = dict(application_specific_info)
    return build(
        "StartApplicationSession",
        {
            "applicationInfo": info,
            "requestedProtocolVersions": {"protocolVersion": versions},
            "requestedSessionDuration": requested_session_duration,
        },
    )


def start_application_session_pos_response(
    session_id: str, actual_protocol_version: str, actual_session_duration: int | None = None
) -> Message:
    """ECMA-354 ``StartApplicationSessionPosResponse`` (for simulators and tests)."""
    return build(
        "StartApplicationSessionPosResponse",
        {
            "sessionID": str(session_id),
            "actualProtocolVersion": actual_protocol_version,
            "actualSessionDuration": actual_session_duration,
        },
    )


def stop_application_session(session_id: str, reason: str = "normal") -> Message:
    """ECMA-354 ``StopApplicationSession`` with a defined end reason."""
    return build(
        "StopApplicationSession",
        {"sessionID": str(session_id), "sessionEndReason": {"definedEndReason": reason}},
    )


def reset_application_session_timer(session_id: str, requested_session_duration: int | None = None) -> Message:
    """ECMA-354 ``ResetApplicationSessionTimer``: the session keep-alive."""
    return build(
        "ResetApplicationSessionTimer",
        {"sessionID": str(session_id), "requestedSessionDuration": requested_session_duration},
    )


#: Request builders by message name (drivers look capabilities up here).
REQUEST_BUILDERS: dict[str, Callable[..., Message]] = {
    "MonitorStart": monitor_start,
    "MonitorStop": monitor_stop,
    "SnapshotDevice": snapshot_device,
    "SnapshotCall": snapshot_call,
    "MakeCall": make_call,
    "AnswerCall": answer_call,
    "ClearConnection": clear_connection,
    "ClearCall": clear_call,
    "HoldCall": hold_call,
    "RetrieveCall": retrieve_call,
    "ConsultationCall": consultation_call,
    "AlternateCall": alternate_call,
    "ReconnectCall": reconnect_call,
    "TransferCall": transfer_call,
    "SingleStepTransferCall": single_step_transfer_call,
    "ConferenceCall": conference_call,
    "DeflectCall": deflect_call,
    "DirectedPickupCall": directed_pickup_call,
    "GenerateDigits": generate_digits,
    "SetForwarding": set_forwarding,
    "GetForwarding": get_forwarding,
    "SetDoNotDisturb": set_do_not_disturb,
    "GetDoNotDisturb": get_do_not_disturb,
    "SystemStatus": system_status,
    "StartApplicationSession": start_application_session,
    "StopApplicationSession": stop_application_session,
    "ResetApplicationSessionTimer": reset_application_session_timer,
}


def response_names(request_name: str) -> frozenset[str]:
    """Names of the positive answers to a request (``MakeCallResponse``, ``…PosResponse``)."""
    return frozenset({f"{request_name}Response", f"{request_name}PosResponse"})

