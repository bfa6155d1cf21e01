"""`twp serve` started and stopped as an admin does: a busy port, Ctrl-C with clients connected."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import time

import aiohttp
import pytest

from twpcore.testing.servers import TwpServeProcess, find_free_port

log = logging.getLogger(__name__)


async def admin_token(base: str, password: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(30):
            while True:  # the banner comes just before the socket is served
                try:
                    async with http.post(f"{base}/api/v1/auth/admin-login", json={"login": "admin", "password": password}) as resp:
                        assert resp.status == 200, await resp.text()
                        return (await resp.json())["token"]
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)


async def test_a_second_serve_on_a_busy_port_fails_without_announcing_itself(tmp_path):
    port = find_free_port()
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    second = TwpServeProcess(second_dir, port=port)
    second_dir.mkdir()
    second.config_path.write_text(second.config_text())
    with TwpServeProcess(first_dir, port=port):
        done = await asyncio.to_thread(subprocess.run, second.argv(), cwd=second_dir, capture_output=True, text=True, timeout=60)
    out, err = done.stdout, done.stderr
    assert done.returncode == 2, (out, err)
    # Nothing announces a server that never served, and no admin was created for it.
    assert "serving" not in out and "password" not in out, out
    assert not (second_dir / "var" / "twp.db").exists()
    # The error names the address, the cause and both fixes.
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in err, err
    assert "[http]" in err and str(second_dir / "twp.toml") in err and "stop it" in err, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
async def test_stopping_the_server_closes_websockets_with_going_away_and_exits_at_once(tmp_path, sig):
    twp = TwpServeProcess(tmp_path)
    twp.start()
    proc = twp.process
    assert proc is not None and twp.password is not None
    try:
        token = await admin_token(twp.base_url, twp.password)
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"{twp.base_url}/api/v1/events", params={"access_token": token})
            hello = await ws.receive_json(timeout=10)
            assert hello["type"] == "system.hello"

            started = time.monotonic()
            proc.send_signal(sig)
            # Generous bounds: a slow machine must not fail this test; the log shows the time.
            msg = await ws.receive(timeout=10)
            closed_after = time.monotonic() - started
            assert msg.type == aiohttp.WSMsgType.CLOSE, msg
            assert msg.data == aiohttp.WSCloseCode.GOING_AWAY and msg.extra == "server shutdown", msg
            code = await asyncio.to_thread(proc.wait, 10)
            exited_after = time.monotonic() - started
    finally:
        twp.stop(signal.SIGKILL)  # only if it is still running: the test failed
    log.warning("%s: WebSocket closed %.2f s and process exited %.2f s after the signal", sig.name, closed_after, exited_after)
    assert code == 0
    assert "closing 1 WebSocket(s) with code 1001 (going away)" in twp.log_text()
