"""The ``mxone`` and ``mxone-al`` PBX drivers: Mitel MiVoice MX-One (formerly Ericsson MX-ONE) over CSTA XML,
or through MX-One Application Link in CSTA BER.

The MX-One's CSTA XML interface is reached over TCP; the prerequisites of the product
this gateway re-imagines open TCP port 8882 on the PBX for it ("Ericsson/MiVoice
MX-One: en CSTA XML, ouvrir le port TCP 8882"), so that is the default ``port``.
Everything else is the CSTA toolkit's XML driver (``twp_csta.driver``, distribution ``twp-csta``): ECMA-323
messages with the J.2 header, edition 4 written by default (every edition is read),
an ECMA-354 application session when the switch offers one.  The driver declares every
call-control capability the base implements; they are verified against the simulator
by the conformance suite, not against a real MX-One (see the README).

Configured as::

    [pbx.links.paris]
    driver = "mxone"
    company = "ACME"
    domain = "Paris"
    host = "10.0.0.10"
    capacity = 500

**Application Link mode** (``driver = "mxone-al"``).  The prerequisites also accept MX-One
systems reached through Application Link 4.0 or later "with CSTA phase 1, phase 2 or
phase 3".  That link speaks CSTA in ASN.1 BER: ``twp_csta.driver_ber.CstaBerDriver`` with
the ``len2`` framing (a 2-byte length before each APDU, from our design notes, not from a
document we could read), phase 3 by default or 2 (``phase``; the toolkit's codec has no
phase I), an ACSE association first (``association = "none"`` if your Application Link
takes CSTA at once).  Application Link's TCP port is set on its server and no public
document gives a default, so ``port`` is required.  Mitel's own documents say the MX-One
itself no longer offers ASN.1 ("ASN.1 is no longer supported", CPI "IP Protocols and
Ports"): this mode is for installations that still run Application Link.
"""

from __future__ import annotations

from typing import Literal

import attrs

from twp_csta.driver import CSTA_CAPABILITIES, CstaXmlConfig, CstaXmlDriver
from twp_csta.driver_ber import CstaBerConfig, CstaBerDriver
from twpcore.plugin_api import PbxDriver, Register, hookimpl, setting

TWP_PLUGIN_API = "1.0"

DEFAULT_PORT = 8882
"""TCP port of the MX-One CSTA XML interface (prerequisites, "Ports à ouvrir")."""


@attrs.frozen(kw_only=True)
class MxOneConfig(CstaXmlConfig):
    """Options of a ``[pbx.links.<name>]`` table with ``driver = "mxone"``."""

    port: int = setting(DEFAULT_PORT, min=1, max=65535, help="TCP port of the MX-One CSTA XML interface (8882 by default)")


class MxOneDriver(CstaXmlDriver):
    """Mitel MiVoice MX-One over CSTA XML."""

    type_name = "mxone"
    Config = MxOneConfig
    capabilities = CSTA_CAPABILITIES
    description = "Mitel MiVoice MX-One (Ericsson MX-ONE) over CSTA XML, TCP 8882"


@attrs.frozen(kw_only=True)
class MxOneApplicationLinkConfig(CstaBerConfig):
    """Options of a ``[pbx.links.<name>]`` table with ``driver = "mxone-al"``."""

    port: int = setting(min=1, max=65535, help="TCP port of the Application Link CSTA server (set on that server; no default)")
    framing: Literal["len2", "hipath", "tlv"] = setting("len2", help='"len2": 2-byte length before each APDU (Application Link)')


class MxOneApplicationLinkDriver(CstaBerDriver):
    """Mitel MX-One through Application Link, CSTA phase III (or II) in BER."""

    type_name = "mxone-al"
    Config = MxOneApplicationLinkConfig
    capabilities = CSTA_CAPABILITIES
    description = "Mitel MiVoice MX-One through Application Link, CSTA BER (ECMA-285) with a 2-byte length"


@hookimpl
def twp_register_pbx_drivers(register: Register[type[PbxDriver]]) -> None:
    register(MxOneDriver)
    register(MxOneApplicationLinkDriver)
