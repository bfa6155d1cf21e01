"""The BER side of the PBX simulator: codec, association (ACSE, OmniPCX Office ``B``/``P``) and BER faults.

``switch.PbxSimulator`` calls these when ``SimConfig.encoding == "ber"``; the call model,
scenarios and fault injection are the same as for XML.  The association follows what the
drivers expect of a real switch:

- ``association="oxo"``: the client's first byte must be ``B``; the switch answers ``P``
  (OmniPCX Office technical documentation, "Third party CTI - CSTA applications"), then
  ACSE as below;
- ``association="acse"``: the first APDU must be an AARQ; it is accepted with an AARE
  unless ``SimConfig.password`` is set and the AARQ's calling authentication value is not
  that password (then AARE rejected-permanent, ``authentication-failure``; ACSE carries
  no user name, so ``SimConfig.username`` plays no part in BER); a
  CSTA APDU before the association aborts the link (ABRT), an RLRQ is answered with an
  RLRE and the link closed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from twp_csta.errors import CodecError
from twp_csta.framing import Framing

if TYPE_CHECKING:  # pragma: no cover
    from twp_csta.sim.switch import PbxSimulator, SimConfig, SimLink

log = logging.getLogger(__name__)

#: First bytes of ACSE APDUs (X.227 application tags 0-4, constructed): AARQ, AARE, RLRQ, RLRE, ABRT.
ACSE_TAGS = frozenset({0x60, 0x61, 0x62, 0x63, 0x64})
OXO_CLIENT_HELLO = b"B"
OXO_SWITCH_HELLO = b"P"


def make_codec(cfg: SimConfig) -> Any:
    """The BER codec of one simulated link."""
    from twp_csta.ber import BerCodec

    return BerCodec(phase=cfg.phase)


def is_association_apdu(payload: bytes) -> bool:
    return bool(payload) and payload[0] in ACSE_TAGS


async def oxo_handshake(link: SimLink, timeout: float = 10.0) -> bool:
    """Wait for the client's ``B`` and answer ``P``; False (link closed) if something else comes."""
    try:
        got = await asyncio.wait_for(link.reader.readexactly(1), timeout)
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, OSError):
        link.close("no B from the client")
        return False
    if got != OXO_CLIENT_HELLO:
        log.warning("pbxsim link %s: expected B from the client, got %r; closed", link.id, got)
        link.close("bad handshake")
        return False
    link.write_raw(OXO_SWITCH_HELLO)
    return True


def on_association_apdu(sim: PbxSimulator, link: SimLink, payload: bytes) -> None:
    """AARQ → AARE (accepted or refused), RLRQ → RLRE and close, anything else ignored."""
    from twp_csta.ber import build_aare, build_rlre, decode_acse

    cfg = sim.config
    try:
        apdu = decode_acse(payload)
    except CodecError as exc:
        sim.codec_errors += 1
        log.warning("pbxsim link %s: unreadable ACSE APDU skipped: %s", link.id, exc.message)
        return
    kind = apdu.kind
    sim.associations.append(apdu)
    if kind == "aarq":
        given = apdu.authentication.decode("latin-1") if apdu.authentication is not None else None
        if cfg.password is not None and given != cfg.password:
            log.info("pbxsim link %s: association refused (authentication)", link.id)
            link.write_raw(link.framing.encode(None, build_aare(accepted=False, phase=cfg.phase, diagnostic="authentication-failure")))
            return
        link.associated = True
        link.write_raw(link.framing.encode(None, build_aare(accepted=True, phase=cfg.phase)))
    elif kind == "rlrq":
        link.write_raw(link.framing.encode(None, build_rlre()))
        link.close("association released by the client")
    elif kind == "abrt":
        link.close("association aborted by the client")


def abort_apdu(link: SimLink) -> bytes:
    from twp_csta.ber import build_abrt

    return link.framing.encode(None, build_abrt())


def oversized_frame(framing: Framing, size: int | None) -> bytes:
    """One frame larger than the framing accepts by default, with a consistent header (skipped by its length)."""
    name = framing.name
    if name == "tlv":
        body = b"X" * (size or 70_000)
        return bytes([0xA1, 0x83]) + len(body).to_bytes(3, "big") + body
    limit = 0x7FFF if name == "hipath" else 0xFFFF
    length = min(size or limit, limit)
    inner = length - 4  # A1 82 hh ll + content
    apdu = bytes([0xA1, 0x82]) + inner.to_bytes(2, "big") + b"\x02" + b"X" * (inner - 1)
    header = bytes([0x26]) + (0x8000 | length).to_bytes(2, "big") if name == "hipath" else length.to_bytes(2, "big")
    return header + apdu
