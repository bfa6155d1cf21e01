"""CSTA over ASN.1 BER (ECMA-285) in ROSE (X.880) with an ACSE (X.227) association.

``BerCodec`` turns neutral ``Message`` values into ROSE PDUs and back, with the XML
codec's contract; ``acse`` builds and reads the association APDUs; ``tlv`` checks raw BER
and sizes PDUs in a stream.  See docs/csta.md, section "CSTA over BER".
"""

from twp_csta.ber.acse import (
    APPLICATION_CONTEXTS,
    AcseApdu,
    CstaFunctions,
    build_aare,
    build_aarq,
    build_abrt,
    build_rlre,
    build_rlrq,
    decode_acse,
    is_acse,
)
from twp_csta.ber.codec import EVENTS, OPERATION_CODES, BerCodec
from twp_csta.ber.tlv import BerError, check_tlv, pdu_size


def preload(phase: int = 3) -> None:
    """Compile the ASN.1 modules now (about a second; otherwise done at first use).

    Blocking: from async code, ``await asyncio.to_thread(preload, phase)`` at set-up.
    """
    from twp_csta.ber.acse import _spec
    from twp_csta.ber.codec import _rose
    from twp_csta.ber.schema import compiled

    compiled(phase)
    _rose()
    _spec()

__all__ = [
    "APPLICATION_CONTEXTS",
    "EVENTS",
    "OPERATION_CODES",
    "AcseApdu",
    "BerCodec",
    "BerError",
    "CstaFunctions",
    "build_aare",
    "build_aarq",
    "build_abrt",
    "build_rlre",
    "build_rlrq",
    "check_tlv",
    "decode_acse",
    "is_acse",
    "pdu_size",
    "preload",
]
