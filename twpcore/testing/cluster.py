"""Several ``twp serve`` processes on one PostgreSQL and one Redis, for the cluster tests and benchmark (issue 20).

``ClusterRig`` writes one config per node (same store, same Redis, same PBX links), starts
each node as an admin would (``python -m twpcore.cli --config FILE serve``), reads the
first admin's password that the first node prints, and kills a node with SIGKILL the way a
crashed machine stops.  The PBX is whatever the caller runs (the CSTA simulator in the
tests), given as ``links``: ``{"l1": {"driver": "mxone", "host": ..., "port": ...}}``.

    async with ClusterRig(tmp_path, pg_url, redis_url, links) as rig:
        await rig.start("a")                 # seeds the demo data, prints the password
        await asyncio.gather(rig.start("b"), rig.start("c"))
        status = await rig.get("b", "/api/v1/cluster")
        rig.kill("a")
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import IO, Any, Self

import aiohttp

from twpcore.testing.servers import find_free_port


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))


def _log_files(home: Path) -> tuple[IO[bytes], IO[bytes]]:
    """The node's stdout (the banner) and stderr (its log), handed to the child process."""
    return open(home / "stdout.log", "wb"), open(home / "stderr.log", "ab")  # closed by the caller once the child has them


class ClusterRig:
    def __init__(self, directory: Path, store_url: str, redis_url: str, links: dict[str, dict[str, Any]], *,
                 lease_ttl: float = 1.5, extra: str = "", plugins: tuple[str, ...] | None = ("mxone",)) -> None:
        self.directory = directory
        self.store_url = store_url
        self.redis_url = redis_url
        self.links = links
        self.lease_ttl = lease_ttl
        self.extra = extra
        self.plugins = plugins
        """Plugins the nodes load (``TWP_LOAD_PLUGINS``; the kernel's default plugins always load); None: every installed one."""
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.ports: dict[str, int] = {}
        self.password: str | None = None
        self.token: str | None = None
        self.http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self.http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            if proc.returncode is None:
                try:
                    await asyncio.wait_for(proc.wait(), 15)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
        if self.http is not None:
            await self.http.close()

    def prepare_store(self) -> None:
        """Migrate the store, create the demo data and the first admin here, so that every node may start at once."""
        from twpcore.auth import create_admin
        from twpcore.demo import seed_if_empty
        from twpcore.store import Store

        store = Store(self.store_url)
        try:
            store.upgrade()
            store.transaction(seed_if_empty)
            _, self.password = store.transaction(lambda conn: create_admin(conn, "admin", super_user=True))
        finally:
            store.close()

    def config_text(self, name: str, port: int) -> str:
        lines = ["[storage]", f"url = {_toml(self.store_url)}", "[http]", 'host = "127.0.0.1"', f"port = {port}",
                 "[demo]", "seed = true", "[cluster]", f"redis = {_toml(self.redis_url)}", f"node = {_toml(name)}",
                 f'lease_ttl = "{self.lease_ttl}s"']
        for link, options in self.links.items():
            lines.append(f"[pbx.links.{link}]")
            lines += [f"{key} = {_toml(value)}" for key, value in options.items()]
        return "\n".join(lines) + "\n" + self.extra

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.plugins is not None:
            env["TWP_LOAD_PLUGINS"] = ",".join(self.plugins)
        return env

    def base(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def log(self, name: str) -> str:
        return (self.directory / name / "stderr.log").read_text(errors="replace")

    async def start(self, name: str, timeout: float = 60.0) -> None:
        """Start node ``name`` and wait until it answers its health; the first node's admin password is kept."""
        home = self.directory / name
        home.mkdir(parents=True, exist_ok=True)
        port = self.ports.get(name) or find_free_port()
        self.ports[name] = port
        (home / "twp.toml").write_text(self.config_text(name, port))
        out, errors = _log_files(home)
        try:
            self.procs[name] = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "twpcore.cli", "--config", str(home / "twp.toml"), "serve", cwd=home, stdout=out, stderr=errors,
                env=self.environment())
        finally:
            out.close()
            errors.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[name].returncode is not None:
                raise RuntimeError(f"node {name} exited with {self.procs[name].returncode}:\n{self.log(name)[-4000:]}")
            if self.password is None:
                match = re.search(r"^\s+password: (\S+)$", (home / "stdout.log").read_text(), re.M)
                if match:
                    self.password = match.group(1)
            try:
                assert self.http is not None
                async with self.http.get(f"{self.base(name)}/api/v1/health") as resp:
                    if resp.status == 200 and (await resp.json()).get("ready") and (self.password or self.token):
                        if self.token is None:
                            self.token = await self._login(name)
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"node {name} did not become ready in {timeout:.0f} s:\n{self.log(name)[-4000:]}")

    async def _login(self, name: str) -> str:
        assert self.http is not None
        async with self.http.post(f"{self.base(name)}/api/v1/auth/admin-login", json={"login": "admin", "password": self.password}) as resp:
            if resp.status != 200:
                raise RuntimeError(f"admin login on node {name} failed: {resp.status} {await resp.text()}")
            return str((await resp.json())["token"])

    def kill(self, name: str) -> None:
        """SIGKILL node ``name``, as a crash would stop it."""
        self.procs[name].kill()

    def alive(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.returncode is None]

    async def request(self, name: str, method: str, path: str, body: Any = None, *, status: int | None = 200) -> Any:
        assert self.http is not None
        async with self.http.request(method, f"{self.base(name)}{path}", json=body,
                                     headers={"Authorization": f"Bearer {self.token}"}) as resp:
            data = await resp.json(content_type=None) if resp.content_length != 0 else None
            if status is not None and resp.status != status:
                raise AssertionError(f"{method} {path} on node {name}: {resp.status} {data}")
            return data

    async def get(self, name: str, path: str) -> Any:
        return await self.request(name, "GET", path)

    async def websocket(self, name: str) -> aiohttp.ClientWebSocketResponse:
        """The admin's event WebSocket on node ``name``, past its ``system.hello``."""
        assert self.http is not None
        ws = await self.http.ws_connect(f"{self.base(name)}/api/v1/events", params={"access_token": str(self.token)})
        hello = await ws.receive_json(timeout=10)
        assert hello["type"] == "system.hello", hello
        return ws

    async def owners(self, via: str) -> dict[str, dict[str, Any]]:
        """Each link's row of ``GET /api/v1/cluster`` read on node ``via``."""
        status = await self.get(via, "/api/v1/cluster")
        return {row["link"]: row for row in status["links"]}
