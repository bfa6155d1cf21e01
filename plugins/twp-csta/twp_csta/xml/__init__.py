"""The CSTA XML encoding (ECMA-323, every edition): ``codec`` turns documents into neutral ``Message`` values and back.

A future ECMA-285 BER encoding (ROSE/ACSE) sits beside it as ``twp_csta.ber``; the
framings (``twp_csta.framing``) and the error mapping (``twp_csta.errors``) are shared.
"""

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
    as_list,
    build,
    connection_of,
    device_text,
)

__all__ = [
    "APPL_SESSION_NAMESPACE",
    "CSTA_NAMESPACES",
    "REQUEST_BUILDERS",
    "Codec",
    "Connection",
    "ConnectionListItem",
    "Message",
    "MessageKind",
    "SnapshotItem",
    "as_list",
    "build",
    "connection_of",
    "device_text",
]
