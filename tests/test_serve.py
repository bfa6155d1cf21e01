"""`twp serve` started and stopped as an admin does: a busy port, Ctrl-C with clients connected."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from twpcore.testing.servers import find_free_port

log = logging.getLogger(__name__)


def write_config(tmp_path: Path, port: int) -> Path:
    cfg = tmp_path / "twp.toml"
    cfg.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/var/twp.db"\n[http]\nhost = "127.0.0.1"\nport = {port}\n')
    return cfg


async def start_serve(cfg: Path, cwd: Path, stderr_path: Path) -> tuple[asyncio.subprocess.Process, str]:
    """Start ``twp serve``; return the process and the first admin's password, read from what it prints."""
    with open(stderr_path, "wb") as stderr:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "twpcore.cli", "--config", str(cfg), "serve",
                                                    cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=stderr)
    assert proc.stdout is not None
    printed = []
    try:
        async with asyncio.timeout(30):
            while line := (await proc.stdout.readline()).decode():
                printed.append(line)
                if match := re.match(r"^\s+password: (\S+)$", line):
                    return proc, match.group(1)
    except TimeoutError:
        pass
    proc.kill()
    await proc.wait()
    pytest.fail(f"twp serve printed no admin password:\n{''.join(printed)}\n{stderr_path.read_text()}")


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
    first_dir.mkdir()
    second_dir.mkdir()
    first, _ = await start_serve(write_config(first_dir, port), first_dir, first_dir / "stderr.log")
    try:
        second = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "twpcore.cli", "--config", str(write_config(second_dir, port)), "serve",
            cwd=second_dir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(second.communicate(), 60)
    finally:
        first.terminate()
        await first.wait()
    out, err = out.decode(), err.decode()
    assert second.returncode == 2, (out, err)
    # Nothing announces a server that never served, and no admin was created for it.
    assert "serving" not in out and "password" not in out, out
    assert not (second_dir / "var" / "twp.db").exists()
    # The error names the address, the cause and both fixes.
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in err, err
    assert "[http]" in err and str(second_dir / "twp.toml") in err and "stop it" in err, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
async def test_stopping_the_server_closes_websockets_with_going_away_and_exits_at_once(tmp_path, sig):
    port = find_free_port()
    base = f"http://127.0.0.1:{port}"
    stderr_path = tmp_path / "stderr.log"
    proc, password = await start_serve(write_config(tmp_path, port), tmp_path, stderr_path)
    try:
        token = await admin_token(base, password)
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"{base}/api/v1/events", params={"access_token": token})
            hello = await ws.receive_json(timeout=10)
            assert hello["type"] == "system.hello"

            started = time.monotonic()
            proc.send_signal(sig)
            # Generous bounds: a slow machine must not fail this test; the log shows the time.
            msg = await ws.receive(timeout=10)
            closed_after = time.monotonic() - started
            assert msg.type == aiohttp.WSMsgType.CLOSE, msg
            assert msg.data == aiohttp.WSCloseCode.GOING_AWAY and msg.extra == "server shutdown", msg
            code = await asyncio.wait_for(proc.wait(), 10)
            exited_after = time.monotonic() - started
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log.warning("%s: WebSocket closed %.2f s and process exited %.2f s after the signal", sig.name, closed_after, exited_after)
    assert code == 0
    assert "closing 1 WebSocket(s) with code 1001 (going away)" in stderr_path.read_text()
