"""The ``alcatel-oxe`` and ``alcatel-oxo`` PBX drivers: Alcatel-Lucent OmniPCX Enterprise and OmniPCX Office over CSTA BER.

Both switches offer CSTA in ASN.1 BER over TCP, inside ROSE, after an ACSE association.
What comes from a document, and what is our inference, is in TWP's ``docs/csta.md``:

- port 2555 for both: the prerequisites of the product this gateway re-imagines ("Alcatel
  OXO, OXE : ouvrir le port TCP 2555 du PABX"); for the OmniPCX Office also its technical
  documentation, chapter "Third party CTI - CSTA applications" (ref. 3EH 21000 BSAA, "Link
  management": the CTI server connects to TCP port 2555);
- OmniPCX Office: the application sends ``B`` and the system answers ``P`` before
  anything else (same chapter), then the ACSE association (AARQ listing the CSTA versions,
  AARE answering the chosen one), then ROSE; the system sends a system status every 30 s
  when idle and declares the link faulty after two unanswered: the toolkit's client
  answers every ``SystemStatus``;
- OmniPCX Enterprise: ACSE then ROSE on port 2555; whether it also wants ``B``/``P`` is
  not in a document we could read, so ``association`` is ``acse`` by default and may be
  set to ``oxo``;
- framing ``tlv`` (the APDU alone, delimited by its own BER length) for both: inferred,
  as no public document describes a prefix; ``framing`` may be changed.

Configured as::

    [pbx.links.office]
    driver = "alcatel-oxo"
    company = "ACME"
    domain = "Lyon"
    host = "10.0.0.20"
"""

from __future__ import annotations

from typing import Literal

import attrs

from twp_csta.driver import CSTA_CAPABILITIES
from twp_csta.driver_ber import CstaBerConfig, CstaBerDriver
from twpcore.plugin_api import PbxDriver, Register, hookimpl, setting

TWP_PLUGIN_API = "1.0"

DEFAULT_PORT = 2555
"""CSTA port of OmniPCX Office and Enterprise (prerequisites, "Ports à ouvrir"; OXO technical documentation 3EH 21000 BSAA)."""


@attrs.frozen(kw_only=True)
class AlcatelOxeConfig(CstaBerConfig):
    """Options of a ``[pbx.links.<name>]`` table with ``driver = "alcatel-oxe"``."""

    port: int = setting(DEFAULT_PORT, min=1, max=65535, help="TCP port of the OmniPCX Enterprise CSTA server (2555 by default)")
    framing: Literal["len2", "hipath", "tlv"] = setting("tlv", help='"tlv": each BER APDU delimited by its own length (inferred default)')
    association: Literal["acse", "oxo", "none"] = setting("acse", help='"acse": ACSE AARQ/AARE before CSTA; "oxo": B/P first')


@attrs.frozen(kw_only=True)
class AlcatelOxoConfig(CstaBerConfig):
    """Options of a ``[pbx.links.<name>]`` table with ``driver = "alcatel-oxo"``."""

    port: int = setting(DEFAULT_PORT, min=1, max=65535, help="TCP port of the OmniPCX Office CSTA server (2555 by default)")
    framing: Literal["len2", "hipath", "tlv"] = setting("tlv", help='"tlv": each BER APDU delimited by its own length (inferred default)')
    association: Literal["acse", "oxo", "none"] = setting("oxo", help='"oxo": B/P exchange then ACSE, as the OmniPCX Office documents')


class AlcatelOxeDriver(CstaBerDriver):
    """Alcatel-Lucent OmniPCX Enterprise over CSTA BER, TCP 2555."""

    type_name = "alcatel-oxe"
    Config = AlcatelOxeConfig
    capabilities = CSTA_CAPABILITIES
    description = "Alcatel-Lucent OmniPCX Enterprise (OXE) over CSTA BER (ECMA-285, ROSE/ACSE), TCP 2555"


class AlcatelOxoDriver(CstaBerDriver):
    """Alcatel-Lucent OmniPCX Office over CSTA BER: B/P, ACSE, ROSE on TCP 2555."""

    type_name = "alcatel-oxo"
    Config = AlcatelOxoConfig
    capabilities = CSTA_CAPABILITIES
    description = "Alcatel-Lucent OmniPCX Office (OXO) over CSTA BER (B/P, ACSE, ROSE), TCP 2555"


@hookimpl
def twp_register_pbx_drivers(register: Register[type[PbxDriver]]) -> None:
    register(AlcatelOxeDriver)
    register(AlcatelOxoDriver)
