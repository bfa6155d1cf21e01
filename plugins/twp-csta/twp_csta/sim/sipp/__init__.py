"""SIPp (Debian ``sip-tester``) scripted as uaCSTA phones: the real SIP peer of the uaCSTA tests and benchmark.

``SippPhones`` starts ``/usr/bin/sipp`` as a subprocess on a free port with the scenario
``uacsta_phone.xml`` of this folder: it answers TWP's INVITEs (one per phone; the phone's
number is the user part of the request URI), answers each CSTA request sent in INFO with the
response in its 200 and plays the phone's events in INFO.  ``story`` picks what the phones do
after ``MonitorStart`` (see the scenario's header).  SIPp's exit status says whether every
message TWP sent was the one the scenario expected (0) or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Literal

SCENARIO = Path(__file__).with_name("uacsta_phone.xml")
"""The uaCSTA phone scenario."""
Story = Literal["plain", "incoming", "badbody", "auth", "events"]


def sipp_binary() -> str | None:
    """Path of the ``sipp`` binary, or None when SIPp is not installed."""
    return shutil.which("sipp")


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free for both UDP and TCP on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, other) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise OSError("no free port found on 127.0.0.1")


class SippPhones:
    """One SIPp process playing uaCSTA phones on ``127.0.0.1:port``."""

    def __init__(self, *, story: Story = "plain", transport: Literal["udp", "tcp"] = "udp", port: int | None = None,
                 calls: int = 1, user: str = "", password: str = "", count: int = 1) -> None:
        self.story, self.transport, self.calls = story, transport, calls
        self.user, self.password, self.count = user, password, count
        self.port = port or free_port()
        self.process: asyncio.subprocess.Process | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix="twp-sipp-"))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        binary = sipp_binary()
        if binary is None:
            raise FileNotFoundError("sipp is not installed (Debian package sip-tester; scripts/install-system-deps.sh)")
        return [
            binary, "-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", str(self.port), "-t", "u1" if self.transport == "udp" else "t1",
            "-set", "story", self.story, "-set", "user", self.user or "none", "-set", "password", self.password or "none",
            "-set", "count", str(self.count), "-m", str(self.calls), "-l", str(max(self.calls, 1)), "-nostdin", "-max_socket", "5000",
            "-trace_err", "-error_file", str(self.workdir / "errors.log"), "-timeout_error", "-recv_timeout", "600000",
            # Over UDP SIPp would resend its 200 to an INVITE whose ACK is late (a loaded machine); TWP rightly ACKs each
            # copy, and a script cannot take an ACK in the middle of a pause: no retransmissions (loopback loses nothing).
            *(["-nr"] if self.transport == "udp" else []),
        ]

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(*self.command(), stdout=asyncio.subprocess.DEVNULL,
                                                            stderr=asyncio.subprocess.PIPE, cwd=self.workdir)
        await self._wait_listening()

    async def _wait_listening(self, timeout: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        kind = socket.SOCK_DGRAM if self.transport == "udp" else socket.SOCK_STREAM
        while loop.time() < deadline:
            if self.process is not None and self.process.returncode is not None:
                raise RuntimeError(f"sipp exited at start ({self.process.returncode}): {await self.errors()}")
            with socket.socket(socket.AF_INET, kind) as s:
                try:
                    s.bind(("127.0.0.1", self.port))
                except OSError:
                    return  # SIPp holds the port
            await asyncio.sleep(0.05)
        raise RuntimeError(f"sipp did not open port {self.port} within {timeout:g} s")

    async def wait(self, timeout: float = 10.0) -> int:
        """Wait for SIPp to finish its calls; its exit status (0: every call went as scripted)."""
        assert self.process is not None
        async with asyncio.timeout(timeout):
            return await self.process.wait()

    async def errors(self) -> str:
        """SIPp's error output and error log (for assertion messages)."""
        text = ""
        if self.process is not None and self.process.stderr is not None and self.process.returncode is not None:
            with contextlib.suppress(Exception):
                text += (await self.process.stderr.read()).decode(errors="replace")[-2000:]
        log = self.workdir / "errors.log"
        if log.exists():
            text += log.read_text(errors="replace")[-3000:]
        return text

    async def kill(self) -> None:
        """Stop SIPp at once, as a phone that is switched off."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def stop(self) -> None:
        await self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)
