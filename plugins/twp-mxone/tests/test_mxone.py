"""The mxone driver: its defaults, its registration, and the conformance suite against the simulator."""

from typing import Any, ClassVar

import pytest

from twp_csta.testing import DriverConformance, driver_class, start_lab
from twp_mxone.plugin import MxOneApplicationLinkConfig, MxOneApplicationLinkDriver, MxOneConfig, MxOneDriver
from twpcore.plugin_api import ConfigErrors, structure


class TestMxOneConformance(DriverConformance):
    driver = "mxone"


class TestMxOneApplicationLinkConformance(DriverConformance):
    """The same scenarios through Application Link: CSTA phase III BER with a 2-byte length, after ACSE."""

    driver = "mxone-al"


class TestMxOneApplicationLinkPhase2Conformance(DriverConformance):
    driver = "mxone-al"
    link_options: ClassVar[dict[str, Any]] = {"phase": 2}


def test_the_installed_plugin_provides_the_driver():
    assert driver_class("mxone") is MxOneDriver


def test_defaults_follow_the_prerequisites():
    config = structure(MxOneConfig, {"host": "10.0.0.10"}, source="twp.toml", path="pbx.links.paris")
    assert (config.port, config.framing, config.edition, config.use_session) == (8882, "j2", 4, True)


async def test_link_state_shows_host_port_and_counters(twp_app):
    lab = await start_lab(twp_app, "mxone")
    try:
        links = await lab.admin.get("/api/v1/links")
        item = next(i for i in links["items"] if i["name"] == "lab")
        assert (item["driver"], item["host"], item["port"], item["connected"], item["current"]) == ("mxone", "127.0.0.1", lab.sim.port, True, 3)
        assert item["stats"]["session"] and item["stats"]["codec_errors"] == 0
    finally:
        await lab.close()


def test_the_application_link_mode_is_registered_and_needs_its_port():
    assert driver_class("mxone-al") is MxOneApplicationLinkDriver
    config = structure(MxOneApplicationLinkConfig, {"host": "al.example.com", "port": 5000}, source="twp.toml", path="pbx.links.al")
    assert (config.framing, config.association, config.phase) == ("len2", "acse", 3)
    with pytest.raises(ConfigErrors, match="port"):
        structure(MxOneApplicationLinkConfig, {"host": "al.example.com"}, source="twp.toml", path="pbx.links.al")
