"""The alcatel-oxe and alcatel-oxo drivers: defaults, registration, the OXO link opening, and the conformance suite over BER."""

import pytest

from twp_alcatel.plugin import AlcatelOxeConfig, AlcatelOxeDriver, AlcatelOxoConfig, AlcatelOxoDriver
from twp_csta.sim import PbxSimulator
from twp_csta.testing import DriverConformance, admin_client, driver_class, start_lab
from twpcore.plugin_api import structure


class TestAlcatelOxoConformance(DriverConformance):
    driver = "alcatel-oxo"


class TestAlcatelOxeConformance(DriverConformance):
    driver = "alcatel-oxe"


def test_the_installed_plugin_provides_both_drivers():
    assert driver_class("alcatel-oxe") is AlcatelOxeDriver and driver_class("alcatel-oxo") is AlcatelOxoDriver


@pytest.mark.parametrize(("config", "association"), [(AlcatelOxeConfig, "acse"), (AlcatelOxoConfig, "oxo")])
def test_defaults_follow_the_documentation(config, association):
    cfg = structure(config, {"host": "10.0.0.20"}, source="twp.toml", path="pbx.links.office")
    assert (cfg.port, cfg.framing, cfg.association, cfg.phase) == (2555, "tlv", association, 3)


async def test_an_oxo_link_says_b_gets_p_then_associates(twp_app):
    lab = await start_lab(twp_app, "alcatel-oxo")
    try:
        links = await lab.admin.get("/api/v1/links")
        item = next(i for i in links["items"] if i["name"] == "lab")
        assert (item["driver"], item["connected"], item["current"]) == ("alcatel-oxo", True, 3)
        assert lab.sim.config.association == "oxo" and all(link.associated for link in lab.sim.links)
        assert item["stats"]["codec_errors"] == 0 and item["stats"]["framing_errors"] == 0
    finally:
        await lab.close()


async def test_a_wrong_password_is_refused_at_association_and_the_link_is_auth_failed(twp_app):
    sim = await PbxSimulator(encoding="ber", framing="tlv", association="oxo", username="cti", password="right").start()
    try:
        server = await twp_app(config={"pbx": {"links": {"office": {
            "driver": "alcatel-oxo", "company": "ACME", "domain": "Lyon", "host": "127.0.0.1", "port": sim.port,
            "username": "cti", "password": "wrong", "request_timeout": 2}}}})
        admin = admin_client(server)
        company = await admin.create("companies", name="ACME")
        await admin.create("domains", company_id=company["id"], name="Lyon", numbering_plan_length=3)
        instance = await server.instance_until("office", lambda i: i["state"] not in ("configured", "config_error", "starting"))
        assert instance["state"] == "auth_failed", instance
        assert "ACSE association" in instance["reason"] and "wrong" not in instance["reason"]
        assert sim.links == [] or not any(link.associated for link in sim.links)
    finally:
        await sim.stop()
