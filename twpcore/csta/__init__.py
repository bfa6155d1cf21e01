"""CSTA XML toolkit shared by the CSTA drivers and the PBX simulator.

Three layers, each usable alone:

- ``framing``: where messages start and end on the byte stream (ECMA-323 annex J.2
  header, or NUL-terminated XML), sans-IO;
- ``codec``: ECMA-323 XML of any edition to neutral ``Message`` values and back, with
  builders for the requests drivers send and ECMA-354 session messages;
- ``session``: ``CstaClient``, an asyncio link with invoke ids, time-outs, events,
  SystemStatus answered and sent, and the ECMA-354 application session.

``errors`` maps CSTA error codes to exceptions that carry an HTTP status and a sentence.
Protocol notes and the error table are in ``docs/csta.md``.
"""

from twpcore.csta.codec import (
    APPL_SESSION_NAMESPACE,
    CSTA_NAMESPACES,
    REQUEST_BUILDERS,
    Codec,
    Connection,
    ConnectionListItem,
    Message,
    MessageKind,
    SnapshotItem,
    build,
    connection_of,
    device_text,
)
from twpcore.csta.errors import (
    CodecError,
    CstaBaseError,
    CstaError,
    CstaLinkError,
    CstaTimeout,
    FramingError,
    describe_error,
)
from twpcore.csta.framing import EVENT_INVOKE_ID, FRAMINGS, Frame, Framing, J2Framing, NulFraming
from twpcore.csta.session import ApplicationSession, CstaClient, InvokeIdAllocator, LinkStats

__all__ = [
    "APPL_SESSION_NAMESPACE",
    "CSTA_NAMESPACES",
    "EVENT_INVOKE_ID",
    "FRAMINGS",
    "REQUEST_BUILDERS",
    "ApplicationSession",
    "Codec",
    "CodecError",
    "Connection",
    "ConnectionListItem",
    "CstaBaseError",
    "CstaClient",
    "CstaError",
    "CstaLinkError",
    "CstaTimeout",
    "Frame",
    "Framing",
    "FramingError",
    "InvokeIdAllocator",
    "J2Framing",
    "LinkStats",
    "Message",
    "MessageKind",
    "NulFraming",
    "SnapshotItem",
    "build",
    "connection_of",
    "describe_error",
    "device_text",
]
