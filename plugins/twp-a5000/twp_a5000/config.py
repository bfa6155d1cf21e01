"""Options of an A5000 link (``[pbx.links.<name>]`` with ``driver = "a5000"``) and of the PBX directory connector."""

from __future__ import annotations

from typing import Literal

import attrs

from twp_csta.driver import CstaLinkConfig, CstaXmlConfig
from twpcore.plugin_api import Duration, Secret, setting

VTIXML_PORT = 3199
"""Default VTI-XML port (guide 3.3.3 "the default port is 3199 for VTIXML"; prerequisites "ouvrir le port TCP 3199")."""
CSTA_PORT = 3211
"""Default CSTA port (guide 4.3 "the default is 3211 in non-delimited mode"; prerequisites "3211 ..., ou 4211")."""
DEFAULT_USER = "twp"


@attrs.frozen(kw_only=True)
class A5000Config(CstaLinkConfig):
    """One link of an A5000 domain: a VTI-XML link (``protocol = "vtixml"``, several per domain) or the CSTA link (one per domain)."""

    protocol: Literal["vtixml", "csta"] = setting(
        "vtixml", help='"vtixml": a VTI-XML link (guide 4.2); "csta": the domain\'s CSTA link (guide 4.3)')
    port: int = setting(0, min=0, max=65535, help="TCP port on the PBX; 0: 3199 for vtixml, 3211 for csta")
    heartbeat_interval: Duration = setting(Duration(30), min=0, max=3600,
                                           help="keep-alive (VTI-XML) or SystemStatus (CSTA) every so often; 0 disables")
    framing: Literal["j2", "nul"] = setting("j2", help='CSTA only: "j2" length header (3211, "non-delimited mode"); "nul" NUL-delimited XML')
    edition: Literal[3, 4, 5] = setting(4, help="CSTA only: ECMA-323 edition written (every edition is read)")
    use_session: bool = setting(False, help="CSTA only: start an ECMA-354 application session (the A5000 CSTA link has no log-in)")
    csta_link: str | None = setting(None, help="vtixml only: name of the domain's CSTA link, through which forwarding goes "
                                               "(without it the link offers no forwarding)")
    application_id: str = setting("TWP", help="application name sent at log-in")
    device_protocols: list[str] = setting(factory=list, help='device protocols (guide 3.3.4) this link supervises; default ["VTIXML"] '
                                                             'for vtixml, ["CSTA"] for csta')

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        if self.protocol == "csta" and (self.username or self.password is not None):
            raise ValueError("username/password: not used on the A5000 CSTA link (guide 4.3: \"Username/Password are not used in this case\"); "
                             "remove them, or set protocol = \"vtixml\"")
        if self.protocol == "vtixml" and self.password is None:
            raise ValueError('password: the VTI-XML link logs in with a password (guide 3.3.4 "important for the VTIXML protocol"); '
                             'write password = { env = "TWP_A5000_PASSWORD" }')
        if self.protocol == "csta" and self.csta_link:
            raise ValueError("csta_link: only a VTI-XML link names the CSTA link it forwards through; remove it from the CSTA link")

    @property
    def effective_port(self) -> int:
        return self.port or (CSTA_PORT if self.protocol == "csta" else VTIXML_PORT)

    @property
    def user(self) -> str:
        return self.username or DEFAULT_USER

    def csta_config(self) -> CstaXmlConfig:
        """The toolkit's CSTA XML options of this (CSTA) link."""
        names = {f.name for f in attrs.fields(CstaXmlConfig)}
        values = {name: getattr(self, name) for name in names if hasattr(self, name)}
        values["port"] = self.effective_port
        return CstaXmlConfig(**values)


@attrs.frozen(kw_only=True)
class A5000DirectoryConfig:
    """Options of a directory whose connector is ``a5000``: the PBX's own directory over a VTI-XML link."""

    host: str = setting(help="address of the PBX's VTI-XML interface")
    port: int = setting(VTIXML_PORT, min=1, max=65535, help="VTI-XML port (3199)")
    username: str = setting(DEFAULT_USER, help="VTI-XML user")
    password: Secret = setting(help='VTI-XML password; write it { env = "VAR" }')
    timeout: Duration = setting(Duration(20), min=0.1, max=600, help="longest wait for the log-in and the directory list")
    source: Literal["directory", "subscribers"] = setting("directory", help='"directory": the PBX directory; "subscribers": the subscriber list')

    def __attrs_post_init__(self) -> None:
        if not self.host.strip():
            raise ValueError('host: expected the PBX address, got ""')
