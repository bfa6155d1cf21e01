"""The yealink driver: firmware switches, uaCSTA against SIPp phones, action URLs and action URI against simulated phones."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from twp_csta.sim.phones import HttpPhones
from twp_csta.sim.sipp import SippPhones, free_port, sipp_binary
from twp_csta.testing import EXTERNAL, Lab, driver_class
from twp_csta.uacsta.lab import PhoneConformance, finish_phone_lab, start_http_phone_lab, start_phone_lab
from twp_yealink.plugin import YealinkConfig, YealinkDriver
from twpcore.plugin_api import ConfigErrors, structure

SECRET = "yealink-action-key"


def test_the_installed_plugin_provides_the_driver() -> None:
    assert driver_class("yealink") is YealinkDriver


@pytest.mark.parametrize(("firmware", "mode"), [("66.86.0.15", "uacsta"), ("T46S 66.81.0.110", "uacsta"), ("28.80.0.95", "http"),
                                                ("44.73.193.40", "http")])
def test_uacsta_from_v81_action_urls_from_v73(firmware: str, mode: str) -> None:
    config = structure(YealinkConfig, {"port": 7061, "firmware": firmware}, source="twp.toml", path="pbx.links.yealink")
    assert YealinkDriver.choose_mode(config) == mode


def test_firmware_before_v73_and_forced_uacsta_before_v81_are_refused_with_the_fix() -> None:
    with pytest.raises(ConfigErrors, match=r"firmware: 38.72.0.10 is version 72; TWP needs Yealink firmware v73 or later"):
        structure(YealinkConfig, {"port": 7061, "firmware": "38.72.0.10"}, source="twp.toml", path="pbx.links.yealink")
    with pytest.raises(ConfigErrors, match=r'control: "uacsta" needs Yealink firmware v81 or later, the phones run v80'):
        structure(YealinkConfig, {"port": 7061, "firmware": "28.80.0.95", "control": "uacsta"}, source="twp.toml", path="pbx.links.y")


@pytest.mark.skipif(sipp_binary() is None, reason="sipp (Debian sip-tester) is not installed")
async def test_uacsta_phone_over_udp_rings_is_answered_and_hung_up(twp_app: Any) -> None:
    phones = SippPhones(story="incoming", transport="udp", calls=1)
    lab = await start_phone_lab(twp_app, "yealink", phones, link_options={"firmware": "66.86.0.15"}, users={"alice": "201"})
    try:
        assert lab.driver_obj.mode == "uacsta"
        ws = await lab.ws("alice")
        ringing = await ws.expect("call.delivered", call={"state": "alerting"}, timeout=5)
        call_id = ringing["call"]["call_id"]
        assert ringing["call"]["remote"] == EXTERNAL
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/answer", status=204)
        await ws.expect("call.established", call={"call_id": call_id, "state": "connected"})
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/hangup", status=204)
        await ws.expect("call.cleared", call={"call_id": call_id})
    finally:
        code, errors = await finish_phone_lab(lab)
    assert code == 0, errors


def yealink_action_urls(base: str, link: str, secret: str) -> dict[str, str]:
    """The action URLs the README tells the admin to set (Features → Action URL), one per event."""
    query = f"key={secret}&device=$active_user&remote=$remote&local=$local&call_id=$call_id"
    return {event: f"{base}/api/v1/yealink/{link}/{event}?{query}" for event in
            ("incoming_call", "outgoing_call", "call_established", "call_terminated", "missed_call", "open_dnd", "close_dnd")}


async def http_lab(twp_app: Any, *, trusted: tuple[str, ...] = ("127.0.0.1",)) -> Lab:
    phones = HttpPhones("yealink", {"301": "127.0.0.1"}, port=free_port(), username="admin", password="yl-pw", trusted=trusted)
    return await start_http_phone_lab(twp_app, "yealink", phones, {"yves": "301"},
                                      action_urls=lambda base: yealink_action_urls(base, "lab", SECRET),
                                      link_options={"firmware": "44.73.193.40", "action_url_secret": SECRET})


async def test_action_urls_and_action_uri_carry_a_whole_call(twp_app: Any) -> None:
    lab = await http_lab(twp_app)
    try:
        stream = await lab.ws("yves")
        call_id = lab.sim.ring("301", "0612345678")
        assert (await lab.sim.send("301", "incoming_call", remote="0612345678", call_id=call_id))[0] == 200
        await stream.expect("call.delivered", call={"call_id": call_id, "state": "alerting", "remote": "0612345678"})
        await lab.users["yves"].post(f"/api/v1/calls/{call_id}/answer", status=204)
        assert lab.sim.phones["301"].requests[-1] == ("/servlet", {"key": f"ASW:{call_id}"})
        await stream.expect("call.established", call={"call_id": call_id, "state": "connected"})
        await lab.users["yves"].post(f"/api/v1/calls/{call_id}/hold", status=204)
        assert lab.sim.phones["301"].requests[-1] == ("/servlet", {"key": f"HOLD:{call_id}"})
        await lab.users["yves"].post(f"/api/v1/calls/{call_id}/hangup", status=204)
        assert lab.sim.phones["301"].requests[-1] == ("/servlet", {"key": f"CANCEL:{call_id}"})
        await stream.expect("call.cleared", call={"call_id": call_id})
        assert (await lab.sim.send("301", "open_dnd"))[0] == 200
        await stream.expect("device.do_not_disturb", on=True)
        dialled = await lab.users["yves"].post("/api/v1/calls", {"number": "0612345678"}, status=201)
        assert lab.sim.phones["301"].requests[-1] == ("/servlet", {"key": "number=00612345678"})
        assert dialled["call_id"] in lab.sim.phones["301"].calls
    finally:
        await lab.close()


async def test_a_phone_that_does_not_trust_twp_gives_a_clear_error(twp_app: Any) -> None:
    lab = await http_lab(twp_app, trusted=("10.9.9.9",))
    try:
        answer = await lab.admin.call("POST", "/api/v1/yealink/lab/keys", {"device": "301", "keys": "OK"}, status=502)
        assert "status 403" in answer["detail"] and "action URI list" in answer["detail"]
        assert lab.sim.phones["301"].requests == []
    finally:
        await lab.close()


async def test_action_urls_for_a_link_that_does_not_exist_or_another_vendor_are_404(twp_app: Any) -> None:
    lab = await http_lab(twp_app)
    try:
        for path in ("/api/v1/yealink/nosuchlink/incoming_call?key=x", "/api/v1/snom/lab/incoming?key=x"):
            response = await lab.server.client.get(path)
            assert response.status == 404, path
    finally:
        await lab.close()


@pytest.mark.skipif(sipp_binary() is None, reason="sipp (Debian sip-tester) is not installed")
class TestYealinkConformance(PhoneConformance):
    """The conformance suite's scenarios that SIPp phones can play (the others are skipped, naming why)."""

    driver = "yealink"
    link_options: ClassVar[dict[str, Any]] = {"firmware": "66.86.0.15"}
