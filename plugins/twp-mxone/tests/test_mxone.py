"""The mxone driver: its defaults, its registration, and the conformance suite against the simulator."""

from twp_csta.testing import DriverConformance, driver_class, start_lab
from twp_mxone.plugin import MxOneConfig, MxOneDriver
from twpcore.plugin_api import structure


class TestMxOneConformance(DriverConformance):
    driver = "mxone"


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
