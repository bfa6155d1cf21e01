"""The a5000 driver: defaults and config errors, the conformance suite on both protocols, "A5000 INT" users import,
the PBX directory, the voicemail e-mail alert from a real message-waiting event, PDU traces."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiosmtpd.controller import Controller
from conftest import PASSWORD, start_multisite

from twp_a5000.driver import A5000Driver
from twp_csta.sim.vtixml import VtiSite
from twp_csta.testing import LAB_USERS, DriverConformance, Lab, driver_class
from twpcore.plugin_api import ConfigErrors, structure
from twpcore.testing.servers import find_free_port
from twpcore.testing.smtp import Mailbox

pytestmark = pytest.mark.usefixtures("cheap_password_hashes")


def test_the_installed_plugin_provides_the_driver():
    assert driver_class("a5000") is A5000Driver


def test_defaults_follow_the_guide_and_prerequisites():
    from twp_a5000.config import A5000Config

    vti = structure(A5000Config, {"host": "10.0.0.1", "username": "twp", "password": "x"}, source="twp.toml", path="pbx.links.v")
    csta = structure(A5000Config, {"host": "10.0.0.1", "protocol": "csta"}, source="twp.toml", path="pbx.links.c")
    assert (vti.protocol, vti.effective_port) == ("vtixml", 3199)
    assert (csta.effective_port, csta.framing, csta.use_session) == (3211, "j2", False)


@pytest.mark.parametrize(("options", "says"), [
    ({"protocol": "csta", "username": "twp", "password": "x"}, "not used on the A5000 CSTA link"),
    ({"username": "twp"}, "the VTI-XML link logs in with a password"),
    ({"protocol": "csta", "csta_link": "c"}, "only a VTI-XML link names the CSTA link"),
    ({"protocol": "sip"}, "protocol"),
    ({"username": "twp", "password": "x", "port": 70000}, "port"),
])
def test_bad_options_are_refused_naming_the_option_and_the_fix(options, says):
    from twp_a5000.config import A5000Config

    with pytest.raises(ConfigErrors) as info:
        structure(A5000Config, {"host": "10.0.0.1", **options}, source="twp.toml", path="pbx.links.a5000")
    assert says in str(info.value) and "pbx.links.a5000" in str(info.value)


# -- the conformance suite on the CSTA link ----------------------------------------------------


class TestCstaLinkConformance(DriverConformance):
    """The A5000 CSTA link (3211): the toolkit's CSTA XML driver with the A5000's defaults."""

    driver = "a5000"
    link_options: ClassVar[dict[str, Any]] = {"protocol": "csta"}


# -- the conformance suite on a VTI-XML link ---------------------------------------------------


class VtiFronted:
    """The switch as the suite sees it, with link faults (drop, refuse, garbage) acting on the VTI-XML site."""

    def __init__(self, switch: Any, vti: Any, site: str):
        self._switch, self._vti, self._site = switch, vti, site

    def __getattr__(self, name: str) -> Any:
        return getattr(self._switch, name)

    async def drop_links(self) -> int:
        return await self._vti.drop(self._site)

    def send_garbage(self, data: bytes | None = None) -> None:
        self._vti.send_garbage(self._site)

    @property
    def refuse_connections(self) -> bool:
        return bool(self._vti.refuse.get(self._site))

    @refuse_connections.setter
    def refuse_connections(self, value: bool) -> None:
        self._vti.refuse[self._site] = value

    async def stop(self) -> None:
        await self._vti.stop()
        await self._switch.stop()


class TestVtiXmlLinkConformance(DriverConformance):
    """A VTI-XML link (3199): what it declares works through the API, the rest answers 501."""

    driver = "a5000"

    @pytest.fixture
    async def lab(self, twp_app: Any) -> Any:
        # A domain served by VTI-XML only: its link takes devices of any protocol (the suite creates CSTA ones).
        site = await start_multisite(twp_app, sites=(VtiSite("link0", "1.1", 50),), explicit={}, csta=False,
                                     link_options={"device_protocols": ["VTIXML", "CSTA"]})
        numbers = dict(LAB_USERS)
        ids, clients = {}, {}
        for login, number in numbers.items():
            user = await site.admin.create("users", domain_id=site.domain_id, login=login)
            await site.admin.create("devices", user_id=user["id"], number=number, protocol="VTIXML", site="1.1")
            ids[login], clients[login] = user["id"], site.server.user_client(user["id"])
        sim: Any = VtiFronted(site.switch, site.vti, "link0")
        lab = Lab(sim, site.server, site.admin, "a5000-link0", "a5000", site.company_id, site.domain_id, clients, numbers, ids)
        try:
            await lab.wait_supervised()
            yield lab
        finally:
            await lab.close()


# -- users import, PBX directory, voicemail alert, traces --------------------------------------


async def test_a5000_int_users_import_reads_the_pbx_subscribers(multisite):
    lab = await multisite(csta=False, subscribers={"10001": "Alice Martin", "10002": "Bob Durand", "10003": "Standard"})
    await lab.wait(lambda: lab.link("link0").connected and lab.link("link0").domain_id == lab.domain_id, "link0 connected")
    imp = await lab.admin.post("/api/v1/user-imports", {"domain_id": lab.domain_id, "name": "A5000 INT", "source": "pbx",
                                                        "link": "a5000-link0", "sync_type": "full"}, status=201)
    report = await lab.admin.post(f"/api/v1/user-imports/{imp['id']}/run", status=200)
    assert report["status"] == "ok", report.get("error")
    users = {u["login"]: u for u in (await lab.admin.get("/api/v1/users", params={"domain_id": str(lab.domain_id)}))["items"]}
    assert {k: (v["first_name"], v["last_name"]) for k, v in users.items() if k.isdigit()} == {
        "10001": ("Alice", "Martin"), "10002": ("Bob", "Durand"), "10003": ("", "Standard")}
    del lab.switch.subscribers["10002"]
    again = await lab.admin.post(f"/api/v1/user-imports/{imp['id']}/run", status=200)
    assert again["status"] == "ok"
    logins = {u["login"] for u in (await lab.admin.get("/api/v1/users", params={"domain_id": str(lab.domain_id)}))["items"]}
    assert "10002" not in logins and {"10001", "10003"} <= logins


async def test_the_pbx_directory_is_a_directory_source(multisite):
    lab = await multisite(csta=False, directory={"Reception Desk": "9", "Night Service": "8100"})
    options = {"host": "127.0.0.1", "port": lab.vti.port("link1"), "username": "twp", "password": PASSWORD}
    d = await lab.admin.create("directories", domain_id=lab.domain_id, name="A5000", connector="a5000", options=options)
    tested = await lab.admin.post(f"/api/v1/directories/{d['id']}/test")
    assert tested["state"] == "ready" and "2 directory entries" in tested["message"]
    report = await lab.admin.post(f"/api/v1/directories/{d['id']}/sync")
    assert report["status"] == "ok", report
    reader = await lab.admin.create("users", domain_id=lab.domain_id, login="reader")
    await lab.admin.create("authorizations", object_type="directory", object_ref=f"directory:{d['id']}", subject_type="user",
                           subject_id=reader["id"])
    found = (await lab.admin.get("/api/v1/directories/search", params={"q": "reception", "user_id": str(reader["id"])}))["items"]
    assert [(c["last_name"], c["first_name"]) for c in found] == [("Desk", "Reception")], found
    assert found[0]["numbers"] == [{"type": "phone", "number": "9"}] and found[0]["directory"] == "A5000"
    # A wrong password makes the test answer auth_failed, naming the user, never the password.
    await lab.admin.patch(f"/api/v1/directories/{d['id']}", {"options": {**options, "password": "Not-It-77"}})
    refused = await lab.admin.post(f"/api/v1/directories/{d['id']}/test")
    assert refused["state"] == "auth_failed" and "'twp'" in refused["message"] and "Not-It-77" not in str(refused)


async def test_a_new_voice_message_on_the_a5000_mails_the_owner(twp_app):
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=find_free_port())
    await asyncio.to_thread(controller.start)
    lab = await start_multisite(twp_app, csta=True, csta_only={"10009"},
                                config={"plugins": {"notifications": {"mail_retry_delay": "50ms", "mail_timeout": "5s"}}})
    try:
        for name, value in {"smtp": "127.0.0.1", "SmtpServerPort": str(controller.port), "SmtpSecurity": "none",
                            "SmtpSender": "TWP <twp@acme.test>"}.items():
            await lab.admin.create("parameter_values", name=name, scope="domain", scope_id=lab.domain_id, value=value)
        await lab.add_devices({"10001": ("1.1", "VTIXML"), "10009": ("1.1", "CSTA")}, users={"alice": "10001", "ian": "10009"})
        await lab.wait(lambda: "10001" in lab.link("link0").monitored and "10009" in lab.telephony.links["a5000-csta"].monitored, "monitored")
        # A caller leaves a message for alice (VTI-XML device) and one for ian (I2052, CSTA device).
        assert lab.vti.leave_message("10001", "0612345678") == 1
        lab.vti.leave_message("10009", "0698765432")
        await lab.wait(lambda: len(box.messages) == 2, "two voicemail e-mails", timeout=10)
        by_to = {m["to"][0]: m["message"] for m in box.messages}
        assert sorted(by_to) == ["alice@example.com", "ian@example.com"]
        assert "0612345678" in by_to["alice@example.com"]["Subject"] and "10001" in by_to["alice@example.com"].get_content()
        assert "0698765432" in by_to["ian@example.com"]["Subject"]
    finally:
        await lab.close()
        await asyncio.to_thread(controller.stop)


async def test_pdu_traces_per_protocol_mask_the_password(multisite, tmp_path):
    lab = await multisite(csta=True, link_options={"trace_dir": str(tmp_path)})
    await lab.add_devices({"10001": ("1.1", "VTIXML")})
    await lab.wait(lambda: "10001" in lab.link("link0").monitored and lab.telephony.links["a5000-csta"].connected, "monitored")
    vti = await lab.admin.post("/api/v1/links/a5000-link0/trace", {"device": "*"}, status=201)
    csta = await lab.admin.post("/api/v1/links/a5000-csta/trace", {"device": "*"}, status=201)
    assert "vtixml" in vti["file"] and vti["file"] != csta["file"]
    await lab.add_devices({"10009": ("1.1", "CSTA")})  # monitored over CSTA, inside the CSTA trace
    await lab.wait(lambda: "10009" in lab.telephony.links["a5000-csta"].monitored, "10009 monitored over CSTA")
    await lab.vti.drop("link0")  # the reconnection logs in again, inside the trace
    await lab.wait(lambda: lab.link("link0").driver.reconnects >= 1 and "10001" in lab.link("link0").monitored, "link0 back")
    await lab.admin.call("DELETE", "/api/v1/links/a5000-link0/trace", status=200)
    text = Path(vti["file"]).read_text()
    assert 'user="twp"' in text and PASSWORD not in text and 'password="***"' in text and '<Monitor' in text
    stopped = await lab.admin.call("DELETE", "/api/v1/links/a5000-csta/trace", status=200)
    assert stopped["pdus"] > 0 and "<MonitorStart" in Path(csta["file"]).read_text() and "MonitorStart" not in text
