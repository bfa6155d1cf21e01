"""The mivoice400 driver: defaults, CTI log-in, and the conformance suite against the simulator."""

import asyncio
from typing import ClassVar

from twp_csta.sim import PbxSimulator
from twp_csta.testing import DriverConformance, admin_client, driver_class, start_lab
from twp_mivoice400.plugin import MiVoice400Config, MiVoice400Driver
from twpcore.plugin_api import structure


class TestMiVoice400Conformance(DriverConformance):
    driver = "mivoice400"
    link_options: ClassVar[dict[str, object]] = {"username": "twp", "password": "cti-secret"}


def test_the_installed_plugin_provides_the_driver():
    assert driver_class("mivoice400") is MiVoice400Driver


def test_defaults_follow_the_prerequisites():
    config = structure(MiVoice400Config, {"host": "192.168.1.20"}, source="twp.toml", path="pbx.links.office")
    assert (config.port, config.capacity, config.framing) == (7001, 250, "j2")


async def test_the_cti_user_logs_in_and_the_password_stays_out_of_traces(twp_app, tmp_path):
    lab = await start_lab(twp_app, "mivoice400", link_options={"username": "twp", "password": "cti-secret", "trace_dir": str(tmp_path)})
    try:
        session = next(m for m in lab.sim.requests if m.name == "StartApplicationSession")
        assert session.get("applicationInfo/applicationSpecificInfo") == {"userID": "twp", "password": "cti-secret"}
        driver = lab.driver_obj
        path = driver.trace_start("*")
        await lab.sim.drop_links()  # the reconnection logs in again, inside the trace
        await lab.sim.wait_until(lambda: driver.reconnects >= 1 and lab.connected(), 5, "reconnection")
        driver.trace_stop()
        text = path.read_text()
        assert "<userID>twp</userID>" in text and "cti-secret" not in text and "<password>***</password>" in text
        links = await lab.admin.get("/api/v1/links")
        assert "cti-secret" not in str(links)
    finally:
        await lab.close()


async def test_a_wrong_password_makes_the_link_auth_failed(twp_app):
    sim = await PbxSimulator(require_session=True, username="twp", password="right").start()
    try:
        server = await twp_app(config={"pbx": {"links": {"office": {
            "driver": "mivoice400", "company": "ACME", "domain": "Office", "host": "127.0.0.1", "port": sim.port,
            "username": "twp", "password": "wrong", "request_timeout": 2}}}})
        admin = admin_client(server)
        company = await admin.create("companies", name="ACME")  # the link starts once its company and domain exist
        await admin.create("domains", company_id=company["id"], name="Office", numbering_plan_length=3)
        # config_error until the domain exists, then starting, then the refused session
        instance = await server.instance_until("office", lambda i: i["state"] not in ("configured", "config_error", "starting"))
        assert instance["state"] == "auth_failed", instance
        assert "twp" in instance["reason"] and "wrong" not in instance["reason"]
        await asyncio.sleep(0)
    finally:
        await sim.stop()
