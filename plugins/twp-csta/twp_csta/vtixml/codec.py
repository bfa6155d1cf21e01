"""The VTI-XML codec: one XML document ↔ one ``VtiMessage``.

VTI-XML is the proprietary supervision protocol of the Aastra (now Mitel) A5000 /
NeXspan / MiVoice 5000 on TCP 3199.  No specification is public; what the admin guide
and the prerequisites say is in ``docs/vti-xml.md``, and the message set below is
TWP's own reconstruction from them (inferred, not Mitel's wording).  Every message is
one XML element whose name is the message name, whose attributes are its fields and
whose child elements, one level deep, are its list items::

    <Monitor id="12" device="1001"/>
    <Response id="12" result="ok" device="1001" site="1" cluster="2"/>
    <Event type="ringing" device="1001" callId="77" calling="0612345678" called="1001"/>
    <Response id="13" result="ok"><Subscriber number="1001" name="Alice Martin" site="1.2"/></Response>

Reading is strict about structure (known message names, required attributes, ids
1-9999, known event types and error codes, one level of children) and refuses DTDs and
entities; every refusal is a ``VtiCodecError`` naming the message, the field, the value
found and what was expected.  Unknown extra attributes are kept (a newer PBX may add
some).  ``encode`` checks the same rules, so the simulator cannot write what a driver
would refuse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from xml.parsers import expat
from xml.sax.saxutils import quoteattr

import attrs

from twp_csta.errors import CodecError

#: Requests the client sends → attributes each must carry (besides ``id``).
REQUESTS: dict[str, tuple[str, ...]] = {
    "Login": ("user", "password"),
    "Logout": (),
    "KeepAlive": (),
    "Monitor": ("device",),
    "StopMonitor": ("device",),
    "Snapshot": ("device",),
    "MakeCall": ("device", "number"),
    "Answer": ("device", "callId"),
    "HangUp": ("device", "callId"),
    "Hold": ("device", "callId"),
    "Retrieve": ("device", "callId"),
    "Subscribers": (),
    "Directory": (),
}
#: Every ``Event`` has ``type`` and ``device``; these are the types.
EVENT_TYPES = (
    "dialing", "ringing", "ringback", "connected", "held", "retrieved", "released", "failed", "diverted",
    "transferred", "conferenced", "forwarding", "dnd", "messageWaiting", "monitorEnded",
)
#: ``code`` values of a ``Response`` with ``result="error"``.
ERROR_CODES = (
    "badRequest", "notLoggedIn", "badCredentials", "unknownDevice", "badDevicePassword", "capacity",
    "invalidState", "unknownCall", "notSupported", "internal",
)
#: Child element names allowed in each message (others are refused).
ITEMS = {"Response": ("Call", "Subscriber", "Entry"), "Event": ()}
MESSAGES = (*REQUESTS, "Response", "Event")
MAX_ID = 9999
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
_MAX_ATTR = 1024


class VtiCodecError(CodecError):
    """Bytes that are not a VTI-XML message (or a message that cannot be written)."""


@attrs.frozen
class VtiItem:
    """One child element of a message: a call of a snapshot, a subscriber, a directory entry."""

    name: str
    attrs: Mapping[str, str] = attrs.field(factory=dict)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.attrs.get(key, default)


@attrs.frozen
class VtiMessage:
    """One VTI-XML message: its name, attributes and items."""

    name: str
    attrs: Mapping[str, str] = attrs.field(factory=dict)
    items: tuple[VtiItem, ...] = ()

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.attrs.get(key, default)

    @property
    def id(self) -> int | None:
        value = self.attrs.get("id")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def is_request(self) -> bool:
        return self.name in REQUESTS

    @property
    def ok(self) -> bool:
        return self.name == "Response" and self.attrs.get("result") == "ok"


def message(kind: str, items: tuple[VtiItem, ...] = (), /, **fields: Any) -> VtiMessage:
    """Build a message ``kind`` (``"Monitor"``); ``None`` fields are left out, others become strings."""
    return VtiMessage(kind, {k: str(v) for k, v in fields.items() if v is not None}, items)


def item(kind: str, /, **fields: Any) -> VtiItem:
    """Build a list item ``kind`` (``"Subscriber"``) of a message."""
    return VtiItem(kind, {k: str(v) for k, v in fields.items() if v is not None})


def check(msg: VtiMessage) -> VtiMessage:
    """Raise ``VtiCodecError`` if ``msg`` breaks a rule of the message set; return it."""
    name = msg.name
    if name not in MESSAGES:
        raise VtiCodecError(f"VTI-XML: unknown message <{_cut(name)}>; expected one of {', '.join(MESSAGES)}")
    for key, value in msg.attrs.items():
        if not _NAME_RE.fullmatch(key):
            raise VtiCodecError(f"VTI-XML <{name}>: attribute name {_cut(key)!r} is not a plain name")
        if len(value) > _MAX_ATTR:
            raise VtiCodecError(f"VTI-XML <{name}>: attribute {key} is {len(value)} characters long; at most {_MAX_ATTR}")
    ident = msg.attrs.get("id")
    if name != "Event":
        if ident is None:
            raise VtiCodecError(f"VTI-XML <{name}>: attribute id is missing; every request and response carries id 1-{MAX_ID}")
        if not (ident.isdigit() and 1 <= int(ident) <= MAX_ID):
            raise VtiCodecError(f"VTI-XML <{name}>: id expected an integer 1-{MAX_ID}, got {_cut(ident)!r}")
    for key in REQUESTS.get(name, ()):
        if not msg.attrs.get(key):
            raise VtiCodecError(f"VTI-XML <{name}>: attribute {key} is missing or empty")
    if name == "Response":
        result = msg.attrs.get("result")
        if result not in ("ok", "error"):
            raise VtiCodecError(f'VTI-XML <Response id="{ident}">: result expected "ok" or "error", got {_cut(result)!r}')
        if result == "error" and msg.attrs.get("code") not in ERROR_CODES:
            raise VtiCodecError(f'VTI-XML <Response id="{ident}">: error code expected one of {", ".join(ERROR_CODES)}, '
                                f'got {_cut(msg.attrs.get("code"))!r}')
    if name == "Event":
        etype = msg.attrs.get("type")
        if etype not in EVENT_TYPES:
            raise VtiCodecError(f"VTI-XML <Event>: type expected one of {', '.join(EVENT_TYPES)}, got {_cut(etype)!r}")
        if not msg.attrs.get("device"):
            raise VtiCodecError(f'VTI-XML <Event type="{etype}">: attribute device is missing or empty')
    allowed = ITEMS.get(name, ())
    for child in msg.items:
        if child.name not in allowed:
            raise VtiCodecError(f"VTI-XML <{name}>: child <{_cut(child.name)}> not allowed"
                                + (f"; expected {', '.join(allowed)}" if allowed else "; this message has no children"))
        for key, value in child.attrs.items():
            if not _NAME_RE.fullmatch(key) or len(value) > _MAX_ATTR:
                raise VtiCodecError(f"VTI-XML <{name}>/<{child.name}>: bad attribute {_cut(key)!r}")
    return msg


def encode(msg: VtiMessage) -> bytes:
    """The XML document of ``msg`` (UTF-8, no declaration); raises ``VtiCodecError`` for a message breaking the rules."""
    check(msg)
    head = msg.name + "".join(f" {k}={quoteattr(_clean(v))}" for k, v in msg.attrs.items())
    if not msg.items:
        return f"<{head}/>".encode()
    body = "".join(f"<{i.name}" + "".join(f" {k}={quoteattr(_clean(v))}" for k, v in i.attrs.items()) + "/>" for i in msg.items)
    return f"<{head}>{body}</{msg.name}>".encode()


def decode(payload: bytes, *, max_items: int = 100_000) -> VtiMessage:
    """Parse one XML document into a checked ``VtiMessage``; raises ``VtiCodecError`` for anything else."""
    if not isinstance(payload, (bytes, bytearray)):
        raise VtiCodecError(f"VTI-XML: expected bytes, got {type(payload).__name__}")
    parser = expat.ParserCreate()
    root: list[VtiMessage] = []
    items: list[VtiItem] = []
    depth = 0

    def refuse(*_args: Any) -> Any:
        raise VtiCodecError("VTI-XML: XML with a DOCTYPE or entity declaration refused")

    def start(tag: str, attributes: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth == 1:
            root.append(VtiMessage(tag, dict(attributes)))
        elif depth == 2:
            if len(items) >= max_items:
                raise VtiCodecError(f"VTI-XML <{root[0].name}>: more than {max_items} items")
            items.append(VtiItem(tag, dict(attributes)))
        else:
            raise VtiCodecError(f"VTI-XML <{root[0].name}>: elements nested deeper than two levels")

    def end(_tag: str) -> None:
        nonlocal depth
        depth -= 1

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(bytes(payload), True)
    except VtiCodecError:
        raise
    except expat.ExpatError as exc:
        raise VtiCodecError(f"VTI-XML: malformed XML: {expat.ErrorString(exc.code)} at line {exc.lineno}, column {exc.offset}") from None
    except Exception as exc:  # noqa: BLE001 - expat reports odd encodings as LookupError, ValueError ...
        raise VtiCodecError(f"VTI-XML: unreadable XML: {type(exc).__name__}: {exc}") from None
    if not root:
        raise VtiCodecError("VTI-XML: empty document")
    return check(attrs.evolve(root[0], items=tuple(items)))


def _clean(value: str) -> str:
    # Control characters other than tab cannot be written in XML 1.0.
    return "".join(ch for ch in value if ch == "\t" or ch >= " ")


def _cut(value: object, limit: int = 40) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[:limit] + "…"
