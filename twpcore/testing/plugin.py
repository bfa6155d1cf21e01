"""The TWP pytest kit (entry point ``pytest11: twp``), for the kernel's tests and plugin authors.

Fixtures:

- ``twp_config``: a config dict for a server on a fresh store (SQLite in ``tmp_path``, or
  PostgreSQL when ``TWP_TEST_DB=postgresql`` is set or a test asks ``twp_db_url`` for it);
- ``twp_app``: an async factory ``await twp_app(config=None, plugins=[("name", obj)])``
  returning a started ``TwpTestServer`` whose ``client`` speaks JSON to the real routes;
- ``twp_server``: a started server with the default config;
- ``admin``: a ``TwpClient`` with a token of a freshly created super user;
- ``register_plugin``: append ``(name, plugin_object)`` pairs before calling ``twp_app``;
- ``postgres_server``: a real PostgreSQL server for the session (``twpcore.testing.servers``);
- ``redis_server``: a real redis-server for one test (the test is skipped when it is not installed).

Simulators that serve one plugin live with it: ``twp_exchange.testing`` (EWS),
``twp_google.testing`` (Google APIs), ``twp_windows_auth.testing`` (a KDC and its ``kdc`` fixture).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from twpcore.app import Kernel
from twpcore.auth import generate_password, hash_password, issue_token
from twpcore.config import Config
from twpcore.kinds import Kind
from twpcore.plugins import PluginManager
from twpcore.server import build_app, build_kernel
from twpcore.store import schema as t
from twpcore.testing.servers import PostgresServer, RedisServer


class TwpClient:
    """JSON calls to a test server, with a bearer token when logged in."""

    def __init__(self, client: Any, token: str | None = None, info: dict | None = None):
        self.client = client
        self.token = token
        self.info = info or {}

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        status: int | tuple[int, ...] | None = None,
        params: dict | None = None,
        raw: bytes | None = None,
    ) -> Any:
        """Send a request; check ``status`` when given; return the decoded JSON (or None for 204)."""
        kwargs: dict[str, Any] = {"headers": self.headers(), "params": params}
        if raw is not None:
            kwargs["data"] = raw
            kwargs["headers"] = {**kwargs["headers"], "Content-Type": "application/json"}
        elif body is not None:
            kwargs["json"] = body
        resp = await self.client.request(method, path, **kwargs)
        text = await resp.text()
        data = json.loads(text) if text else None
        if status is not None:
            expected = status if isinstance(status, tuple) else (status,)
            assert resp.status in expected, f"{method} {path} -> {resp.status}, expected {expected}: {text[:500]}"
        self.last_status = resp.status
        return data

    async def get(self, path: str, **kw: Any) -> Any:
        return await self.call("GET", path, status=kw.pop("status", 200), **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return await self.call("POST", path, body, status=kw.pop("status", (200, 201, 204)), **kw)

    async def patch(self, path: str, body: Any, **kw: Any) -> Any:
        return await self.call("PATCH", path, body, status=kw.pop("status", 200), **kw)

    async def put(self, path: str, body: Any, **kw: Any) -> Any:
        return await self.call("PUT", path, body, status=kw.pop("status", 200), **kw)

    async def delete(self, path: str, **kw: Any) -> Any:
        return await self.call("DELETE", path, status=kw.pop("status", 204), **kw)

    async def create(self, resource: str, **fields: Any) -> dict[str, Any]:
        return await self.post(f"/api/v1/{resource.replace('_', '-')}", fields, status=201)


class TwpTestServer:
    """A started kernel behind an aiohttp test client."""

    def __init__(self, kernel: Kernel, client: Any):
        self.kernel = kernel
        self.client = client
        self.anonymous = TwpClient(client)

    def run(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(conn, *args)`` in one store transaction (blocking; for test set-up)."""
        assert self.kernel.store is not None
        return self.kernel.store.transaction(fn, *args)

    async def admin(self, *, super_user: bool = True, companies: tuple[int, ...] = ()) -> TwpClient:
        """Create an admin account and a token for it (a super user, or one limited to ``companies``).

        The account has the kit's password (``client.info["password"]``); the token is issued
        in the store rather than through ``POST /api/v1/auth/admin-login``, which spares two
        argon2 computations per test.  Use ``login_admin`` to go through the real login.
        """
        return self.admin_client(super_user=super_user, companies=companies)

    def admin_client(self, *, super_user: bool = True, companies: tuple[int, ...] = ()) -> TwpClient:
        """``admin()`` for code that cannot await (the same account and token)."""
        login = f"admin-{uuid.uuid4().hex[:8]}"
        password, password_hash = _kit_password()
        lifetime = self.kernel.config.auth.admin_token_lifetime

        def create(conn: Any) -> tuple[int, str, Any]:
            admin_id = conn.execute(sa.insert(t.admins).values(login=login, password_hash=password_hash, super_user=super_user)
                                    .returning(t.admins.c.id)).scalar_one()
            for company in companies:
                conn.execute(sa.insert(t.admin_companies).values(admin_id=admin_id, company_id=company))
            token, expires = issue_token(conn, "admin", admin_id, lifetime, "test kit", "admin")
            return admin_id, token, expires

        admin_id, token, expires = self.run(create)
        info = {"token": token, "token_type": "Bearer", "expires_at": expires.isoformat(),
                "admin": {"id": admin_id, "login": login, "super_user": super_user}, "password": password}
        return TwpClient(self.client, token, info)

    async def instance_until(self, name: str, done: Any, timeout: float = 10.0) -> dict[str, Any]:
        """Poll ``GET /api/v1/plugins`` until the instance ``name`` satisfies ``done(instance)``.

        Instances move through transient states (``config_error`` while the store lacks a
        company, ``starting``, ``retrying``); a test that looks once may catch any of them.
        Fails with the last instance seen once ``timeout`` seconds have passed.
        """
        root = self.admin_client()
        deadline = time.monotonic() + timeout
        while True:
            instances = (await root.get("/api/v1/plugins"))["instances"]
            instance = next((i for i in instances if i["name"] == name), None)
            if instance is not None and done(instance):
                return instance
            assert time.monotonic() < deadline, f"instance {name!r} never reached the expected state: {instance}"
            await asyncio.sleep(0.05)

    def user_client(self, user_id: int, lifetime: int = 3600) -> TwpClient:
        """A ``TwpClient`` of user ``user_id`` with a token issued in the store (no login, no password hashing)."""
        token, _ = self.run(lambda conn: issue_token(conn, "user", user_id, lifetime, "test kit", "test"))
        return TwpClient(self.client, token)

    async def login_admin(self, login: str, password: str) -> TwpClient:
        data = await self.anonymous.post("/api/v1/auth/admin-login", {"login": login, "password": password}, status=200)
        return TwpClient(self.client, data["token"], data)

    async def login(self, login: str, password: str | None = None, *, domain: str | None = None, status: int = 200) -> TwpClient:
        body: dict[str, Any] = {"login": login}
        if password is not None:
            body["password"] = password
        if domain is not None:
            body["domain"] = domain
        data = await self.anonymous.post("/api/v1/auth/login", body, status=status)
        return TwpClient(self.client, data.get("token") if status == 200 else None, data)

    def add_user(self, domain_id: int, login: str, password: str | None = None, **fields: Any) -> int:
        """Insert a user directly in the store (fast set-up); returns its id."""
        values = {"domain_id": domain_id, "login": login, **fields}
        if password is not None:
            values["password_hash"] = hash_password(password)
        return self.run(lambda c: c.execute(sa.insert(t.users).values(**values).returning(t.users.c.id)).scalar_one())


@functools.cache
def _kit_password() -> tuple[str, str]:
    """One generated password and its argon2 hash for every admin the kit creates in this process."""
    password = generate_password()
    return password, hash_password(password)


def registered_type(kind: Kind, type_name: str, plugins: list[tuple[str, Any]] | tuple[()] = ()) -> type[Any]:
    """The class registered as ``type_name`` of ``kind`` by the installed plugins plus ``plugins`` (``(name, object)`` pairs).

    Raises ``LookupError`` naming the known types when no plugin registers it.
    """
    pm = PluginManager()
    pm.load()
    for name, obj in plugins:
        pm.register_plugin(obj, name)
    pm.register_types()
    record = pm.types[kind].get(type_name)
    if record is None:
        known = ", ".join(sorted(pm.types[kind])) or "none"
        raise LookupError(f'no installed plugin registers the {kind.label} "{type_name}" (known: {known}); install its package (make venv)')
    return record.cls


def base_config(db_url: str, tmp_path: Any) -> dict[str, Any]:
    return {
        "storage": {"url": db_url, "backup_dir": str(tmp_path / "backups")},
        "http": {"host": "127.0.0.1", "port": 8080},
    }


@pytest.fixture(scope="session")
def postgres_server() -> Any:
    """A real PostgreSQL server for the whole session (skipped when not installed, outside CI)."""
    if not PostgresServer.available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; run scripts/install-system-deps.sh")
        pytest.skip("PostgreSQL is not installed")
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_server() -> Any:
    """A real redis-server of its own for one test (``twpcore.testing.servers.RedisServer``); skipped when not installed.

    The cluster tests that use it run with ``make test-cluster`` (``TWP_CLUSTER_TESTS=1``), not in every ``make test``:
    one run in about ten hangs the whole pytest process (cause not found yet; docs/cluster.md, "Known problems").
    """
    if os.environ.get("TWP_CLUSTER_TESTS") != "1":
        pytest.skip("cluster tests against redis-server run with `make test-cluster` (TWP_CLUSTER_TESTS=1): "
                    "an intermittent hang is being investigated (docs/cluster.md)")
    if not RedisServer.available():
        pytest.skip("redis-server is not installed; run scripts/install-system-deps.sh")
    with RedisServer() as server:
        yield server


@pytest.fixture
def twp_db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """Store URL for one test: a new SQLite file, or a new PostgreSQL database.

    Parametrize indirectly with ``"postgresql"`` / ``"sqlite"``, or set ``TWP_TEST_DB``.
    """
    backend = getattr(request, "param", None) or os.environ.get("TWP_TEST_DB", "sqlite")
    if backend == "postgresql":
        server = request.getfixturevalue("postgres_server")
        name = "t_" + uuid.uuid4().hex[:12]
        server.create_database(name)
        return server.url(name)
    return f"sqlite:///{tmp_path / 'twp.db'}"


@pytest.fixture
def twp_config(twp_db_url: str, tmp_path: Any) -> dict[str, Any]:
    return base_config(twp_db_url, tmp_path)


@pytest.fixture
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash passwords at argon2's lowest cost, for tests where logins are not the subject."""
    import argon2

    import twpcore.auth

    monkeypatch.setattr(twpcore.auth, "_hasher", argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def register_plugin() -> list[tuple[str, Any]]:
    """Append ``(name, plugin)`` pairs; ``twp_app`` registers them like installed plugins."""
    return []


@pytest.fixture
async def twp_app(aiohttp_client: Any, twp_config: dict[str, Any], register_plugin: list) -> AsyncIterator[Any]:
    async def factory(config: dict[str, Any] | None = None, plugins: list[tuple[str, Any]] | None = None, allowlist: Any = None) -> TwpTestServer:
        cfg = copy.deepcopy(twp_config)
        for key, value in (config or {}).items():
            if isinstance(value, dict) and isinstance(cfg.get(key), dict):
                cfg[key] = {**cfg[key], **value}
            else:
                cfg[key] = value
        kernel = build_kernel(Config.from_dict(cfg, source="<test config>"), extra_plugins=[*register_plugin, *(plugins or [])], allowlist=allowlist)
        client = await aiohttp_client(build_app(kernel))
        return TwpTestServer(kernel, client)

    yield factory


@pytest.fixture
async def twp_server(twp_app: Any) -> TwpTestServer:
    return await twp_app()


@pytest.fixture
async def admin(twp_server: TwpTestServer) -> TwpClient:
    return await twp_server.admin()


__all__ = ["TwpClient", "TwpTestServer", "generate_password", "registered_type"]
