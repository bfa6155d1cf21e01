"""The openscape-business and hipath3000 drivers: defaults, registration, the HiPath framing on the wire, conformance over BER."""

import pytest

from twp_csta.testing import DriverConformance, driver_class, start_lab
from twp_openscape_business.plugin import HiPath3000Config, HiPath3000Driver, OpenScapeBusinessConfig, OpenScapeBusinessDriver
from twpcore.plugin_api import structure


class TestOpenScapeBusinessConformance(DriverConformance):
    driver = "openscape-business"


class TestHiPath3000Conformance(DriverConformance):
    driver = "hipath3000"


def test_the_installed_plugin_provides_both_drivers():
    assert driver_class("openscape-business") is OpenScapeBusinessDriver and driver_class("hipath3000") is HiPath3000Driver


@pytest.mark.parametrize(("config", "port"), [(OpenScapeBusinessConfig, 8800), (HiPath3000Config, 7001)])
def test_each_product_defaults_to_its_documented_port(config, port):
    cfg = structure(config, {"host": "10.0.0.30"}, source="twp.toml", path="pbx.links.hq")
    assert (cfg.port, cfg.framing, cfg.association, cfg.phase) == (port, "hipath", "acse", 3)


async def test_the_link_speaks_hipath_frames_after_an_acse_association(twp_app):
    lab = await start_lab(twp_app, "openscape-business")
    try:
        assert lab.sim.config.framing == "hipath" and all(link.associated for link in lab.sim.links)
        assert lab.sim.frames_in > 3 and lab.sim.framing_errors == 0 and lab.sim.codec_errors == 0
        stats = lab.driver_obj.link_stats()
        assert stats["framing_errors"] == 0 and stats["codec_errors"] == 0
    finally:
        await lab.close()
