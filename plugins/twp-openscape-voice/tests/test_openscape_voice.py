"""The openscape_voice driver: edition 4 on the wire, defaults, and the conformance suite."""

from twp_csta.testing import DriverConformance, driver_class, start_lab
from twp_csta.xml.codec import CSTA_NAMESPACES
from twp_openscape_voice.plugin import OpenScapeVoiceConfig, OpenScapeVoiceDriver
from twpcore.plugin_api import structure


class TestOpenScapeVoiceConformance(DriverConformance):
    driver = "openscape_voice"


def test_the_installed_plugin_provides_the_driver():
    assert driver_class("openscape_voice") is OpenScapeVoiceDriver


def test_defaults():
    config = structure(OpenScapeVoiceConfig, {"host": "osv.example.com"}, source="twp.toml", path="pbx.links.osv")
    assert (config.port, config.edition, config.framing) == (1040, 4, "j2")


async def test_requests_travel_in_the_edition_4_namespace(twp_app):
    lab = await start_lab(twp_app, "openscape_voice", sim_options={"edition": 4})
    try:
        session = next(m for m in lab.sim.requests if m.name == "StartApplicationSession")
        assert session.get("requestedProtocolVersions/protocolVersion") == CSTA_NAMESPACES[4]
        monitor = next(m for m in lab.sim.requests if m.name == "MonitorStart")
        assert monitor.namespace == CSTA_NAMESPACES[4]
        await lab.users["alice"].post("/api/v1/calls", {"number": "202"}, status=201)
        assert lab.sim.requests[-1].name == "MakeCall" and lab.sim.requests[-1].namespace == CSTA_NAMESPACES[4]
    finally:
        await lab.close()
