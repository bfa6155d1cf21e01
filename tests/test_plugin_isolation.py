"""A failing plugin never takes the server down, and says why it failed.

Real packages from ``tests/fixtures/plugins/`` are installed with pip into a private
directory: one raises on import, one registers a PBX driver whose ``setup()`` raises, one
whose PBX "does not answer yet" (``NotReady``), one declares a capability outside the PBX
vocabulary.  The ``twp`` command sees them through ``PYTHONPATH`` exactly as it would see
packages installed next to it; the admin reads their states in ``twp plugins list``,
``/api/v1/plugins``, ``/api/v1/health`` and the log.

In-process tests (``register_plugin``) cover failures at run time, at start-up and in
registration, instance states, ``[plugins] disabled`` and ``TWP_LOAD_PLUGINS``.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import attrs
import pytest

from twpcore.events import Event
from twpcore.hookspecs import hookimpl
from twpcore.kinds import AuthFailed, DirectoryConnector, Kind, NotReady, PbxDriver, SmsProvider
from twpcore.schema import setting
from twpcore.testing.servers import find_free_port

FIXTURES = Path(__file__).parent / "fixtures" / "plugins"
TWP = Path(sys.executable).with_name("twp")


# -- helpers ------------------------------------------------------------------------
def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TWP_LOAD_PLUGINS", "TWP_CONFIG", "PYTHONPATH")}
    return {**env, **extra}


def http(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def by_name(items: list[dict], key: str = "name") -> dict[str, dict]:
    return {item[key]: item for item in items}


@pytest.fixture(scope="session")
def fixture_plugins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture packages, pip-installed into a directory to put on ``PYTHONPATH``."""
    sources = tmp_path_factory.mktemp("fixture-plugin-sources")
    target = tmp_path_factory.mktemp("fixture-plugin-site")
    # Build from copies: a build leaves build/ and *.egg-info next to the sources.
    copies = [shutil.copytree(d, sources / d.name) for d in sorted(FIXTURES.iterdir()) if (d / "pyproject.toml").exists()]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(target), *map(str, copies)],
                   check=True, capture_output=True, timeout=120)
    return target


def write_config(tmp_path: Path, port: int = 8080) -> Path:
    path = tmp_path / "twp.toml"
    path.write_text(f"""
[storage]
url = "sqlite:///{tmp_path / 'twp.db'}"
backup_dir = "{tmp_path / 'backups'}"

[http]
host = "127.0.0.1"
port = {port}

[pbx.links.failing]
driver = "fixture-failing"

[pbx.links.waiting]
driver = "fixture-not-ready"

[pbx.links.teleport]
driver = "fixture-teleport"
""")
    return path


# -- the installed fixture packages, through the twp command ------------------------------
def test_plugins_list_shows_each_failing_package_with_its_reason(fixture_plugins, tmp_path):
    config = write_config(tmp_path)
    out = subprocess.run([str(TWP), "--config", str(config), "plugins", "list", "--json"], capture_output=True, text=True,
                         env=clean_env(PYTHONPATH=str(fixture_plugins)), timeout=60)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    plugins = by_name(body["plugins"])

    broken = plugins["broken-import"]
    assert (broken["state"], broken["source"], broken["version"]) == ("import_error", "twp-fixture-broken-import", "1.0.0")
    assert broken["reason"] == "RuntimeError: the acme-cti library is not installed; pip install acme-cti"

    bad = plugins["bad-capability"]
    assert bad["state"] == "register_error"
    assert bad["reason"].startswith(
        "twp_register_pbx_drivers: RegistrationError: TeleportDriver declares unknown capabilities ['teleport']; known: ["
    )
    assert bad["provides"] == []

    assert (plugins["failing-setup"]["state"], plugins["failing-setup"]["provides"]) == ("loaded", ["pbx_driver:fixture-failing"])
    assert (plugins["not-ready"]["state"], plugins["not-ready"]["provides"]) == ("loaded", ["pbx_driver:fixture-not-ready"])
    assert plugins["auth_tws"]["state"] == "loaded"  # the kernel's own plugins are untouched

    # Offline, instances are only checked: set-up errors show once the server runs.
    instances = by_name(body["instances"], "config")
    assert instances["pbx.links.failing"]["state"] == "configured"
    assert instances["pbx.links.waiting"]["state"] == "configured"
    teleport = instances["pbx.links.teleport"]
    assert teleport["state"] == "not_installed"
    assert teleport["reason"].startswith(f'{config}: pbx.links.teleport.driver: no loaded plugin provides the pbx driver "fixture-teleport"')

    # The log names them too.
    assert "plugin broken-import (twp-fixture-broken-import) failed to import: RuntimeError" in out.stderr
    assert "plugin bad-capability failed in twp_register_pbx_drivers" in out.stderr


def test_the_server_stays_up_and_reports_failing_plugins_and_instances(fixture_plugins, tmp_path):
    port = find_free_port()
    config = write_config(tmp_path, port)
    log_path = tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}/api/v1"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen([str(TWP), "--config", str(config), "serve"], stdout=subprocess.PIPE, stderr=log_file, text=True,
                                env=clean_env(PYTHONPATH=str(fixture_plugins)))
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
        try:
            # First start: the server prints a generated password for the "admin" account.
            password = None
            deadline = time.monotonic() + 20
            while password is None:
                assert proc.poll() is None, f"twp serve exited with {proc.returncode}: {log_path.read_text()}"
                try:
                    line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    pytest.fail(f"twp serve printed no admin password: {log_path.read_text()}")
                if line.strip().startswith("password:"):
                    password = line.split(":", 1)[1].strip()
            while True:
                try:
                    status, health = http("GET", f"{base}/health")
                    if status == 200:
                        break
                except OSError:  # not listening yet
                    pass
                assert time.monotonic() < deadline, f"twp serve did not become ready: {log_path.read_text()}"
                time.sleep(0.05)

            # Everyone sees that the server is up but degraded, and how many things failed...
            assert health["ready"] is True and health["status"] == "degraded"
            assert "items" not in health["plugins"] and "items" not in health["instances"]

            # ...the admin sees which ones and why.
            status, login = http("POST", f"{base}/auth/admin-login", {"login": "admin", "password": password})
            assert status == 200, login
            token = login["token"]
            status, detailed = http("GET", f"{base}/health", token=token)
            assert status == 200
            status, listing = http("GET", f"{base}/plugins", token=token)
            assert status == 200
            failed_plugins = {p["name"] for p in detailed["plugins"]["items"] if p["state"] not in ("loaded", "disabled")}
            not_ready = {i["config"] for i in detailed["instances"]["items"] if i["state"] not in ("ready", "disabled")}
            assert {"broken-import", "bad-capability"} <= failed_plugins and health["plugins"]["failed"] == len(failed_plugins)
            assert {"pbx.links.failing", "pbx.links.waiting", "pbx.links.teleport"} <= not_ready
            assert health["instances"]["not_ready"] == len(not_ready)
            for body in ({"plugins": detailed["plugins"]["items"], "instances": detailed["instances"]["items"]}, listing):
                plugins = by_name(body["plugins"])
                assert plugins["broken-import"]["state"] == "import_error"
                assert plugins["broken-import"]["reason"] == "RuntimeError: the acme-cti library is not installed; pip install acme-cti"
                assert plugins["bad-capability"]["state"] == "register_error"
                assert "unknown capabilities ['teleport']" in plugins["bad-capability"]["reason"]
                # The driver's failure is the instance's state; its plugin stays loaded and counts the error.
                assert plugins["failing-setup"]["state"] == "loaded"
                assert plugins["failing-setup"]["runtime_errors"] == 1
                assert plugins["failing-setup"]["last_error"] == (
                    "setup of pbx.links.failing: ValueError: the PBX answered with protocol version 9, this driver speaks 1-3")

                instances = by_name(body["instances"], "config")
                failing = instances["pbx.links.failing"]
                assert (failing["state"], failing["plugin"], failing["attempts"]) == ("setup_error", "failing-setup", 1)
                assert failing["reason"] == "ValueError: the PBX answered with protocol version 9, this driver speaks 1-3"
                waiting = instances["pbx.links.waiting"]
                assert (waiting["state"], waiting["reason"]) == ("retrying", "the PBX at 192.0.2.10:3199 does not answer")
                assert time.time() + 30 < waiting["next_attempt"] < time.time() + 75  # retry_after=60, with jitter
                assert instances["pbx.links.teleport"]["state"] == "not_installed"

            # The rest of the API works as usual.
            status, company = http("POST", f"{base}/companies", {"name": "ACME"}, token=token)
            assert status == 201, company
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
    assert code == 0, log_path.read_text()
    log = log_path.read_text()
    assert "plugin broken-import (twp-fixture-broken-import) failed to import: RuntimeError: the acme-cti library" in log
    assert "pbx driver failing: setup_error (ValueError: the PBX answered with protocol version 9" in log
    assert "pbx driver waiting: retrying (the PBX at 192.0.2.10:3199 does not answer)" in log
    assert "Traceback" not in log


# -- in-process: failures at run time, start-up and registration -------------------------
class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.devices: list[str] = []

    @hookimpl
    def twp_call_event(self, event):
        self.calls.append(event.type)

    @hookimpl
    def twp_device_event(self, event):
        self.devices.append(event.type)


async def until(predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def plugin_states(server) -> dict[str, dict]:
    admin = await server.admin()
    return by_name((await admin.get("/api/v1/plugins"))["plugins"])


async def test_an_observer_that_raises_does_not_stop_the_others(twp_app):
    class Broken:
        @hookimpl
        def twp_call_event(self, event):
            raise ZeroDivisionError(f"cannot rate {event.type}")

    recorder = Recorder()
    server = await twp_app(plugins=[("broken", Broken()), ("recorder", recorder)])
    server.kernel.events.publish(Event("call.delivered", {"device": "2001"}, company_id=1))
    server.kernel.events.publish(Event("call.cleared", {"device": "2001"}, company_id=1))
    await until(lambda: len(recorder.calls) == 2)
    assert recorder.calls == ["call.delivered", "call.cleared"]

    states = await plugin_states(server)
    assert states["broken"]["state"] == "loaded"  # a run-time error is counted, the plugin stays
    assert states["broken"]["runtime_errors"] == 2
    assert states["broken"]["last_error"] == "twp_call_event: ZeroDivisionError: cannot rate call.cleared"
    assert states["recorder"]["runtime_errors"] == 0


async def test_an_observer_that_hangs_is_cut_off(twp_app, monkeypatch):
    monkeypatch.setattr("twpcore.events.OBSERVER_TIMEOUT", 0.1)

    class Hanging:
        @hookimpl
        async def twp_device_event(self, event):
            await asyncio.sleep(3600)

    recorder = Recorder()
    server = await twp_app(plugins=[("hanging", Hanging()), ("recorder", recorder)])
    server.kernel.events.publish(Event("device.forwarding", {"device": "2001"}, company_id=1))
    server.kernel.events.publish(Event("device.do_not_disturb", {"device": "2001"}, company_id=1))
    await until(lambda: len(recorder.devices) == 2)
    states = await plugin_states(server)
    assert states["hanging"]["runtime_errors"] == 2
    assert states["hanging"]["last_error"] == "twp_device_event: TimeoutError: did not finish within 0.1 s"


async def test_a_plugin_whose_startup_raises_is_set_aside(twp_app):
    calls: list[str] = []

    class FailsToStart:
        @hookimpl
        def twp_startup(self, context):
            raise ConnectionRefusedError("cannot reach the CRM at crm.example.com:443")

        @hookimpl
        def twp_call_event(self, event):
            calls.append("event")

        @hookimpl
        def twp_shutdown(self):
            calls.append("shutdown")

    recorder = Recorder()
    server = await twp_app(plugins=[("fails-to-start", FailsToStart()), ("recorder", recorder)])
    admin = await server.admin()
    body = await admin.get("/api/v1/plugins")
    failed = by_name(body["plugins"])["fails-to-start"]
    assert failed["state"] == "startup_error"
    assert failed["reason"] == "twp_startup: ConnectionRefusedError: cannot reach the CRM at crm.example.com:443"
    health = await admin.get("/api/v1/health")
    assert (health["ready"], health["status"], health["plugins"]["failed"]) == (True, "degraded", 1)

    server.kernel.events.publish(Event("call.delivered", {}, company_id=1))
    await until(lambda: recorder.calls == ["call.delivered"])
    await server.client.close()  # stops the kernel
    assert calls == []  # neither events nor twp_shutdown reach a plugin that did not start


@attrs.frozen
class LinkConfig:
    host: str = setting(help="PBX address")
    port: int = setting(3199, min=1, max=65535, help="CTI port")


class FlakyDriver(PbxDriver):
    """Not ready at the first attempt, ready at the second."""

    type_name = "flaky"
    Config = LinkConfig
    capabilities = frozenset({"monitor"})
    attempts = 0

    async def setup(self) -> None:
        FlakyDriver.attempts += 1
        if FlakyDriver.attempts == 1:
            raise NotReady(f"{self.config.host}:{self.config.port} refused the connection", retry_after=0.05)


class RefusedConnector(DirectoryConnector):
    type_name = "refused"
    capabilities = frozenset({"sync"})

    async def setup(self) -> None:
        raise AuthFailed("invalid credentials for cn=twp,dc=example,dc=com")


class ExplodingProvider(SmsProvider):
    type_name = "exploding"

    def __init__(self, config, context):
        raise OSError("cannot open the modem /dev/ttyUSB9")


class Drivers:
    @hookimpl
    def twp_register_pbx_drivers(self, register):
        register(FlakyDriver)

    @hookimpl
    def twp_register_directory_connectors(self, register):
        register(RefusedConnector)

    @hookimpl
    def twp_register_sms_providers(self, register):
        register(ExplodingProvider)


async def test_instance_states_ready_after_retry_auth_failed_setup_error_config_error_disabled(twp_app):
    FlakyDriver.attempts = 0
    server = await twp_app(
        plugins=[("drivers", Drivers())],
        config={
            "pbx": {"links": {
                "paris": {"driver": "flaky", "host": "pbx-paris.example.com"},
                "lyon": {"driver": "flaky", "host": "pbx-lyon.example.com", "port": "3199a"},
                "nice": {"driver": "flaky", "host": "pbx-nice.example.com", "enabled": False},
            }},
            "directories": {"ldap": {"connector": "refused"}},
            "sms": {"providers": {"modem": {"provider": "exploding"}}},
        },
    )
    admin = await server.admin()

    async def instances() -> dict[str, dict]:
        return by_name((await admin.get("/api/v1/plugins"))["instances"], "config")

    paris = (await instances())["pbx.links.paris"]
    if paris["state"] == "retrying":  # the retry may already have happened
        assert paris["reason"] == "pbx-paris.example.com:3199 refused the connection"
        assert paris["next_attempt"] > time.time() - 1
    await until(lambda: server.kernel.instances.instances[(Kind.PBX_DRIVER, "paris")].state == "ready")
    now = await instances()
    assert (now["pbx.links.paris"]["state"], now["pbx.links.paris"]["attempts"], now["pbx.links.paris"]["next_attempt"]) == ("ready", 2, None)
    assert now["pbx.links.lyon"]["state"] == "config_error"
    assert now["pbx.links.lyon"]["reason"] == '<test config>: pbx.links.lyon.port: expected an integer 1-65535, got "3199a"'
    assert (now["pbx.links.nice"]["state"], now["pbx.links.nice"]["reason"]) == ("disabled", "enabled = false in config")
    # A directory is started by the directory service (tests/test_directory_lifecycle.py); this one names no domain.
    assert now["directories.ldap"]["state"] == "config_error" and "directories.ldap: no domain" in now["directories.ldap"]["reason"]
    assert (now["sms.providers.modem"]["state"], now["sms.providers.modem"]["reason"]) == (
        "setup_error",
        "OSError: cannot open the modem /dev/ttyUSB9",
    )
    health = await admin.get("/api/v1/health")
    assert health["status"] == "degraded" and health["instances"]["not_ready"] == 3  # lyon, ldap, modem
    plugins = by_name((await admin.get("/api/v1/plugins"))["plugins"])
    assert plugins["drivers"]["state"] == "loaded"  # its instances failed, the plugin did not
    assert plugins["drivers"]["runtime_errors"] == 1
    assert plugins["drivers"]["last_error"] == "setup of sms.providers.modem: OSError: cannot open the modem /dev/ttyUSB9"


async def test_a_failed_registration_keeps_nothing_of_the_plugin(twp_app):
    started: list[str] = []

    class HalfGood:
        """Registers a good driver, then a bad route: the driver must not survive."""

        @hookimpl
        def twp_register_pbx_drivers(self, register):
            register(FlakyDriver)

        @hookimpl
        def twp_register_routes(self, register):
            async def handler(request):
                raise AssertionError("never served")

            register("GET", "/status", handler)

        @hookimpl
        def twp_startup(self):
            started.append("half-good")

    class Swallower:
        """Catches the error of a bad register() call and goes on: still refused."""

        @hookimpl
        def twp_register_sms_providers(self, register):
            try:
                register(object)
            except Exception:  # noqa: BLE001 - the plugin under test swallows whatever register() raises
                pass

    server = await twp_app(plugins=[("half-good", HalfGood()), ("swallower", Swallower())],
                           config={"pbx": {"links": {"paris": {"driver": "flaky", "host": "pbx"}}}})
    admin = await server.admin()
    body = await admin.get("/api/v1/plugins")
    plugins = by_name(body["plugins"])
    assert plugins["half-good"]["state"] == "register_error"
    assert plugins["half-good"]["reason"] == "twp_register_routes: ValueError: route path must start with /api/v1/, got '/status'"
    assert plugins["half-good"]["provides"] == []
    assert plugins["swallower"]["state"] == "register_error"
    assert plugins["swallower"]["reason"].startswith("twp_register_sms_providers: RegistrationError: sms provider registrations must be subclasses")
    paris = by_name(body["instances"], "config")["pbx.links.paris"]
    assert paris["state"] == "not_installed" and 'no loaded plugin provides the pbx driver "flaky"' in paris["reason"]
    assert started == []


async def test_disabled_in_config_and_the_allowlist(twp_app, monkeypatch):
    recorder, other = Recorder(), Recorder()
    server = await twp_app(plugins=[("recorder", recorder), ("other", other)],
                           config={"plugins": {"disabled": ["recorder", "auth_none"]}})
    plugins = await plugin_states(server)
    assert (plugins["recorder"]["state"], plugins["recorder"]["reason"]) == ("disabled", "listed in [plugins] disabled")
    assert (plugins["auth_none"]["state"], plugins["auth_none"]["source"]) == ("disabled", "default")
    assert "None" not in server.kernel.plugins.types[Kind.AUTH_METHOD]
    server.kernel.events.publish(Event("call.delivered", {}, company_id=1))
    await until(lambda: other.calls == ["call.delivered"])
    assert recorder.calls == []

    # TWP_LOAD_PLUGINS lists the plugins to load; the kernel's own plugins always load.
    monkeypatch.setenv("TWP_LOAD_PLUGINS", "other, webhook")
    recorder2, other2 = Recorder(), Recorder()
    server2 = await twp_app(plugins=[("recorder", recorder2), ("other", other2)])
    plugins = await plugin_states(server2)
    assert (plugins["recorder"]["state"], plugins["recorder"]["reason"]) == ("disabled", "not listed in TWP_LOAD_PLUGINS")
    assert plugins["other"]["state"] == plugins["webhook"]["state"] == plugins["auth_tws"]["state"] == "loaded"

    monkeypatch.setenv("TWP_LOAD_PLUGINS", "")
    server3 = await twp_app(plugins=[("other", Recorder())])
    plugins = await plugin_states(server3)
    assert {"auth_tws", "auth_none", "parameters"} <= {name for name, p in plugins.items() if p["state"] == "loaded"}
    assert all(p["source"] == "default" for p in plugins.values() if p["state"] == "loaded")
    assert plugins["webhook"]["reason"] == "not listed in TWP_LOAD_PLUGINS"
