"""The CSTA toolkit of TWP: what CSTA PBX drivers and the PBX simulator build on.

Layers, each usable alone:

- ``framing``: where messages start and end on the byte stream (ECMA-323 annex J.2
  header, or NUL-terminated XML), sans-IO;
- ``xml``: the ECMA-323 codec, XML of any edition to neutral ``Message`` values and
  back, with builders for the requests drivers send and ECMA-354 session messages;
- ``session``: ``CstaClient``, an asyncio link with invoke ids, time-outs, events,
  SystemStatus answered and sent, and the ECMA-354 application session;
- ``framing_ber``: the BER framings (2-byte length, HiPath header, bare TLV), sans-IO;
- ``driver``: the PBX driver base (``CstaLinkConfig``, ``CstaDriver``, ``CstaXmlConfig``, ``CstaXmlDriver``);
  ``driver_ber``: its BER encoding (``CstaBerConfig``, ``CstaBerDriver``);
- ``sim``: ``PbxSimulator``, a switch speaking CSTA XML over TCP; ``testing``: the driver
  conformance suite; ``demo``: the ``pbxsim`` plugin of the ``make run`` demo.

``errors`` maps CSTA error codes to exceptions that carry an HTTP status and a sentence.
The BER encoding (``ber``: ECMA-285 in ROSE/ACSE) sits beside ``xml``; uaCSTA (CSTA XML
in SIP INFO) is to come.  The toolkit imports nothing from TWP but
``twpcore.plugin_api``.  Protocol notes and the error table are in TWP's ``docs/csta.md``.
"""

from twp_csta.errors import (
    CodecError,
    CstaBaseError,
    CstaError,
    CstaLinkError,
    CstaTimeout,
    FramingError,
    describe_error,
)
from twp_csta.framing import EVENT_INVOKE_ID, FRAMINGS, Frame, Framing, J2Framing, NulFraming
from twp_csta.session import ApplicationSession, CstaClient, InvokeIdAllocator, LinkStats
from twp_csta.xml.codec import (
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
