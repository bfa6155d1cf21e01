"""VTI-XML, the A5000 / MiVoice 5000 supervision protocol (TCP 3199): codec, framing, client.

No specification is public; ``docs/vti-xml.md`` cites what is known and says what TWP
inferred.  ``codec`` turns XML documents into ``VtiMessage`` values and back,
``framing`` delimits them on the stream, ``client.VtiClient`` runs one logged-in link.
The simulator side is ``twp_csta.sim.vtixml``.
"""

from twp_csta.vtixml.client import HTTP_STATUS, VtiClient, VtiError, VtiStats
from twp_csta.vtixml.codec import (
    ERROR_CODES,
    EVENT_TYPES,
    REQUESTS,
    VtiCodecError,
    VtiItem,
    VtiMessage,
    decode,
    encode,
    item,
    message,
)
from twp_csta.vtixml.framing import VtiFraming

__all__ = [
    "ERROR_CODES",
    "EVENT_TYPES",
    "HTTP_STATUS",
    "REQUESTS",
    "VtiClient",
    "VtiCodecError",
    "VtiError",
    "VtiFraming",
    "VtiItem",
    "VtiMessage",
    "VtiStats",
    "decode",
    "encode",
    "item",
    "message",
]
