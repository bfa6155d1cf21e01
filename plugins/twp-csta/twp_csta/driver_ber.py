"""The CSTA BER driver base: ECMA-285 operations and events in ROSE, after an optional ACSE association.

``CstaBerDriver`` is ``CstaDriver`` with the BER encoding: the codec of ``twp_csta.ber``
(same neutral ``Message`` values as XML, so event mapping, routing, reconnection and
resynchronisation are shared), one of the BER framings of ``twp_csta.framing_ber``, and
an association step before any CSTA service:

- ``association = "acse"``: an ACSE AARQ (CSTA application context and versions of the
  ``phase``, the call-control services and events, the link's ``password`` as calling
  authentication value when set) answered by an AARE;
  a rejection about authentication becomes ``AuthFailed``, any other ``NotReady``;
- ``association = "oxo"``: the Alcatel OmniPCX Office exchange first, the client
  sending ``B`` and the switch answering ``P``, then ACSE as above;
- ``association = "none"``: CSTA services at once (switches without ACSE).

An orderly close sends RLRQ.  The switch's ``SystemStatus`` invokes are answered by the
client, whatever the encoding; the link's own heartbeat is ``heartbeat_interval``.
Vendor drivers (``twp-alcatel``, ``twp-openscape-business``, the Application Link mode of
``twp-mxone``) subclass it with their defaults.  ``docs/csta.md`` cites the facts.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import attrs

from twp_csta.driver import AssociationRefused, CstaDriver, CstaLinkConfig
from twp_csta.errors import CodecError
from twp_csta.framing import Framing
from twp_csta.framing_ber import BER_FRAMINGS
from twp_csta.session import CstaClient, MessageCodec
from twpcore.plugin_api import setting

log = logging.getLogger(__name__)

#: The CSTA operations a capability needs, for those that some phase lacks (``PHASE3_ONLY`` of the codec).
CAPABILITY_OPERATIONS: dict[str, tuple[str, ...]] = {
    "deflect": ("DeflectCall",), "dtmf": ("GenerateDigits",), "forwarding": ("SetForwarding",),
    "do_not_disturb": ("SetDoNotDisturb",), "single_step_transfer": ("SingleStepTransferCall",),
}
OXO_CLIENT_HELLO = b"B"
"""What the application sends first on an OmniPCX Office CSTA link (3EH 21000 BSAA, "Link management")."""
OXO_SWITCH_HELLO = b"P"
"""What the OmniPCX Office answers."""


@attrs.frozen(kw_only=True)
class CstaBerConfig(CstaLinkConfig):
    """Options of a ``[pbx.links.<name>]`` table served by a CSTA BER driver: the link's, plus framing, association, phase."""

    framing: Literal["len2", "hipath", "tlv"] = setting(
        "len2", help='"len2": 2-byte length (MX-One Application Link); "hipath": 0x26 + 15-bit length (HiPath, OpenScape Business); '
                     '"tlv": the APDU alone (Alcatel)')
    association: Literal["acse", "oxo", "none"] = setting(
        "acse", help='"acse": ACSE AARQ/AARE first; "oxo": B/P exchange, then ACSE (OmniPCX Office); "none": no association')
    phase: Literal[2, 3] = setting(3, help="CSTA phase: 3 (ECMA-285, default) or 2 (ECMA-218)")

    def __attrs_post_init__(self) -> None:
        if self.reconnect_min > self.reconnect_max:
            raise ValueError(f"reconnect_min ({self.reconnect_min:g} s) must not exceed reconnect_max ({self.reconnect_max:g} s)")
        if not self.host.strip():
            raise ValueError('host: expected the PBX address, got ""')
        if self.password is not None and self.association == "none":
            raise ValueError('password is set but association = "none" sends no log-in; use association = "acse" or remove password')


class CstaBerDriver(CstaDriver):
    """Base of the CSTA BER drivers; see the module docstring."""

    type_name = "csta_ber"
    Config = CstaBerConfig
    description = "CSTA BER (ECMA-285 in ROSE/ACSE) over TCP"

    def __init__(self, config: CstaBerConfig, context: Any):
        super().__init__(config, context)
        self.config: CstaBerConfig = config
        if config.phase != 3:
            # What the codec cannot write in this phase is not declared: the API answers 501 for it.
            from twp_csta.ber.codec import PHASE3_ONLY

            # An instance value shadows the class's declaration for this link only.
            object.__setattr__(self, "capabilities", frozenset(
                c for c in type(self).capabilities if not set(CAPABILITY_OPERATIONS.get(c, ())) & PHASE3_ONLY
            ))
        self.association_result: str | None = None
        """What the switch said to the last association (for link state)."""

    def make_codec(self) -> MessageCodec:
        from twp_csta.ber import BerCodec

        codec: MessageCodec = BerCodec(phase=self.config.phase)
        return codec

    def make_framing(self) -> Framing:
        framing_cls = BER_FRAMINGS[self.config.framing]
        return framing_cls(max_frame_size=self.config.max_frame_size) if self.config.max_frame_size else framing_cls()

    def describe_wire(self, client: CstaClient) -> str:
        return f"BER phase {self.config.phase}, {client.framing.name} framing, association {self.config.association}"

    def render_pdu(self) -> Any:
        codec = self.make_codec()

        def render(payload: bytes) -> str:
            try:
                message = codec.decode(payload)
                what = f"{message.name} {message.fields}"
            except CodecError as exc:
                what = f"(undecodable: {exc.message})"
            return f"{what}\n{payload.hex(' ')}"

        return render

    async def associate(self, client: CstaClient) -> None:
        cfg = self.config
        if cfg.association == "none":
            return
        timeout = float(cfg.request_timeout)
        if cfg.association == "oxo":
            await client.handshake(OXO_CLIENT_HELLO, OXO_SWITCH_HELLO, timeout=timeout, what="OmniPCX Office B/P exchange")
        from twp_csta.ber import build_aarq, decode_acse

        password = cfg.password.reveal() if cfg.password is not None else None
        aarq = build_aarq(phase=cfg.phase, password=password)
        answer = await client.exchange(aarq, timeout=timeout, what="ACSE association")
        try:
            result = decode_acse(answer)
        except CodecError as exc:
            raise AssociationRefused(f"the switch answered the ACSE AARQ with something unreadable ({exc.message})") from None
        if result.kind != "aare":
            raise AssociationRefused(f"the switch answered the ACSE AARQ with an {result.kind.upper()} instead of an AARE")
        if not result.accepted:
            why = f"{result.result}, {result.diagnostic or 'no diagnostic'}"
            self.association_result = f"rejected: {why}"
            raise AssociationRefused(f"the switch refused the ACSE association ({why})",
                                     auth=(result.diagnostic or "").startswith("authentication"))
        self.association_result = "accepted"
        log.debug("%s: ACSE association accepted", self.name)

    async def end_session(self, client: CstaClient) -> None:
        if self.config.association == "none":
            return
        from twp_csta.ber import build_rlrq

        await client.send_payload(build_rlrq(), what="ACSE release")
