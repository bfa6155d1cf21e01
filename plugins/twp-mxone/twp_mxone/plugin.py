"""The ``mxone`` PBX driver: Mitel MiVoice MX-One (formerly Ericsson MX-ONE) over CSTA XML.

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
"""

from __future__ import annotations

import attrs

from twp_csta.driver import CSTA_CAPABILITIES, CstaXmlConfig, CstaXmlDriver
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


@hookimpl
def twp_register_pbx_drivers(register: Register[type[PbxDriver]]) -> None:
    register(MxOneDriver)
