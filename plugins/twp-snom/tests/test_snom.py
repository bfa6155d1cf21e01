"""The snom driver: uaCSTA against SIPp phones, and the HTTP path (action URLs, remote control) against simulated phones."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from twp_csta.sim.phones import HttpPhones
from twp_csta.sim.sipp import SippPhones, free_port, sipp_binary
from twp_csta.testing import EXTERNAL, Lab, driver_class
from twp_csta.uacsta.lab import PhoneConformance, finish_phone_lab, start_http_phone_lab, start_phone_lab
from twp_snom.plugin import SnomConfig, SnomDriver
from twpcore.plugin_api import ConfigErrors, structure

SECRET = "k3y-for-actions"


def test_the_installed_plugin_provides_the_driver() -> None:
    assert driver_class("snom") is SnomDriver


@pytest.mark.parametrize(("firmware", "mode"), [("8.7.3.25", "uacsta"), ("snomD785-SIP 10.1.46.16", "uacsta"), ("8.7.3.24", "http"),
                                                ("8.4.35", "http")])
def test_the_firmware_picks_uacsta_from_8_7_3_25(firmware: str, mode: str) -> None:
    config = structure(SnomConfig, {"port": 7060, "firmware": firmware}, source="twp.toml", path="pbx.links.snom")
    assert SnomDriver.choose_mode(config) == mode


def test_a_firmware_that_is_no_version_is_refused_naming_it() -> None:
    with pytest.raises(ConfigErrors, match=r"firmware: expected the Snom firmware version like \"8.7.3.25\", got 'latest'"):
        structure(SnomConfig, {"port": 7060, "firmware": "latest"}, source="twp.toml", path="pbx.links.snom")


@pytest.mark.skipif(sipp_binary() is None, reason="sipp (Debian sip-tester) is not installed")
async def test_uacsta_phones_make_hold_retrieve_and_hang_up_a_call(twp_app: Any) -> None:
    phones = SippPhones(story="plain", transport="tcp", calls=3)
    lab = await start_phone_lab(twp_app, "snom", phones, link_options={"firmware": "10.1.46.16"})
    try:
        assert lab.driver_obj.mode == "uacsta"
        ws = await lab.ws("alice")
        call_id = (await lab.users["alice"].post("/api/v1/calls", {"number": "0612345678"}, status=201))["call_id"]
        await ws.expect("call.established", call={"call_id": call_id, "state": "connected"})
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/hold", status=204)
        await ws.expect("call.held", call={"call_id": call_id})
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/retrieve", status=204)
        await ws.expect("call.retrieved", call={"call_id": call_id, "state": "connected"})
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/hangup", status=204)
        await ws.expect("call.cleared", call={"call_id": call_id})
        links = {i["name"]: i for i in (await lab.admin.get("/api/v1/links"))["items"]}
        assert links["lab"]["connected"] is True and links["lab"]["current"] == 3
    finally:
        code, errors = await finish_phone_lab(lab)
    assert code == 0, errors


@pytest.mark.skipif(sipp_binary() is None, reason="sipp (Debian sip-tester) is not installed")
async def test_uacsta_phone_rings_and_is_answered_through_the_api(twp_app: Any) -> None:
    phones = SippPhones(story="incoming", transport="tcp", calls=1)
    lab = await start_phone_lab(twp_app, "snom", phones, link_options={"firmware": "8.7.3.25"}, users={"alice": "201"})
    try:
        ws = await lab.ws("alice")
        ringing = await ws.expect("call.delivered", call={"state": "alerting"}, timeout=5)
        assert ringing["call"]["remote"] == EXTERNAL and ringing["call"]["direction"] == "incoming"
        await lab.users["alice"].post(f"/api/v1/calls/{ringing['call']['call_id']}/answer", status=204)
        await ws.expect("call.established", call={"call_id": ringing["call"]["call_id"], "state": "connected"})
    finally:
        code, errors = await finish_phone_lab(lab)
    assert code == 0, errors


# -- the HTTP path: action URLs and remote control -----------------------------------------------------------------

def snom_action_urls(base: str, link: str, secret: str) -> dict[str, str]:
    """The action URLs the README tells the admin to set on the phone (Setup → Action URL Settings)."""
    query = f"key={secret}&device=$active_user&remote=$remote&local=$local&call_id=$call-id"
    return {event: f"{base}/api/v1/snom/{link}/{event}?{query}" for event in
            ("incoming", "outgoing", "connected", "disconnected", "missed", "dnd_on", "dnd_off", "offhook", "onhook")}


async def http_lab(twp_app: Any, **options: Any) -> Lab:
    phones = HttpPhones("snom", {"201": "127.0.0.1", "202": "127.0.0.2"}, port=free_port(), username="admin", password="phone-pw")
    return await start_http_phone_lab(twp_app, "snom", phones, {"alice": "201", "bob": "202"},
                                      action_urls=lambda base: snom_action_urls(base, "lab", SECRET),
                                      link_options={"firmware": "8.4.35", "action_url_secret": SECRET, **options})


async def test_http_path_incoming_call_from_action_urls_answered_and_hung_up_by_remote_control(twp_app: Any) -> None:
    lab = await http_lab(twp_app)
    try:
        assert lab.driver_obj.mode == "http"
        stream = await lab.ws("alice")
        call_id = lab.sim.ring("201", "0612345678")
        assert (await lab.sim.send("201", "incoming", remote="0612345678", call_id=call_id))[0] == 200
        ringing = await stream.expect("call.delivered", call={"call_id": call_id, "state": "alerting"})
        assert ringing["call"]["remote"] == "0612345678"
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/answer", status=204)
        await stream.expect("call.established", call={"call_id": call_id, "state": "connected"})
        assert lab.sim.phones["201"].requests[-1] == ("/command.htm", {"key": "OFFHOOK"})
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/hangup", status=204)
        await stream.expect("call.cleared", call={"call_id": call_id})
        assert lab.sim.phones["201"].requests[-1] == ("/command.htm", {"key": "CANCEL"})
    finally:
        await lab.close()


async def test_http_path_make_call_dials_by_remote_control_and_returns_the_phones_call_id(twp_app: Any) -> None:
    lab = await http_lab(twp_app)
    try:
        body = await lab.users["alice"].post("/api/v1/calls", {"number": "0612345678"}, status=201)
        assert lab.sim.phones["201"].requests == [("/command.htm", {"number": "00612345678"})]
        assert body["call_id"] in lab.sim.phones["201"].calls
        calls = (await lab.users["alice"].get("/api/v1/calls"))["items"]
        assert [(c["call_id"], c["remote"]) for c in calls] == [(body["call_id"], "00612345678")]
        keys = await lab.admin.post("/api/v1/snom/lab/keys", {"device": "201", "keys": "F1;ENTER"})
        assert keys == {"device": "201", "keys": "F1;ENTER"} and lab.sim.phones["201"].requests[-1] == ("/command.htm", {"key": "F1;ENTER"})
    finally:
        await lab.close()


async def test_wrong_http_credentials_give_a_clear_error_not_a_5xx_of_twp(twp_app: Any) -> None:
    lab = await http_lab(twp_app, http_password="not-the-phone-pw")
    try:
        answer = await lab.admin.call("POST", "/api/v1/snom/lab/keys", {"device": "201", "keys": "ENTER"}, status=502)
        assert "refused TWP's HTTP credentials (status 401)" in answer["detail"] and "not-the-phone-pw" not in str(answer)
    finally:
        await lab.close()


async def test_forged_replayed_and_misaddressed_action_urls_are_refused_counted_and_harmless(twp_app: Any, caplog: Any) -> None:
    lab = await http_lab(twp_app)
    try:
        call_id = lab.sim.ring("201", "0612345678")
        good = snom_action_urls(str(lab.server.client.make_url("")).rstrip("/"), "lab", SECRET)["incoming"]
        forged = good.replace(SECRET, "guessed")
        assert (await lab.sim.send("201", "incoming", remote="0498765432", call_id="666", url=forged))[0] == 403
        # From another machine than the phone of 201, even with the right key:
        status, body = await lab.sim.send("201", "incoming", remote="0498765432", call_id="667", source="127.0.0.2")
        assert (status, body["error"]) == (403, "wrong_address") and "127.0.0.1, not 127.0.0.2" in body["detail"]
        assert (await lab.sim.send("201", "incoming", remote="0612345678", call_id=call_id))[0] == 200
        status, body = await lab.sim.send("201", "incoming", remote="0612345678", call_id=call_id)   # the same request again
        assert (status, body["error"]) == (409, "replayed")
        status, body = await lab.sim.send("201", "reboot", url=good.replace("/incoming?", "/reboot?"))
        assert (status, body["error"]) == (404, "unknown_event")
        calls = (await lab.users["alice"].get("/api/v1/calls"))["items"]
        assert [(c["call_id"], c["remote"]) for c in calls] == [(call_id, "0612345678")]    # the forged calls never appeared
        counters = lab.driver_obj.link_stats()["action_urls"]
        assert counters == {"accepted": 1, "unknown_event": 1, "forged": 1, "wrong_address": 1, "unknown_device": 0, "replayed": 1,
                            "bad_request": 0}
        assert "refused (forged)" in caplog.text and "refused (replayed)" in caplog.text and SECRET not in caplog.text
    finally:
        await lab.close()


@pytest.mark.skipif(sipp_binary() is None, reason="sipp (Debian sip-tester) is not installed")
class TestSnomConformance(PhoneConformance):
    """The conformance suite's scenarios that SIPp phones can play (the others are skipped, naming why)."""

    driver = "snom"
    link_options: ClassVar[dict[str, Any]] = {"firmware": "8.7.3.25"}
