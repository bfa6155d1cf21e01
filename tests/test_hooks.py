"""Every hook of ``twpcore/hookspecs.py``, exercised through a real kernel and API.

One ``test_hook_<name>`` per hook, and two meta-tests: every hook is documented under a
``## name(args)`` heading in ``docs/plugin-hooks.md``, and every hook has its test.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import web

from twpcore import hookspecs
from twpcore.http.core import read_json
from twpcore.plugin_api import (
    AuthMethod,
    AuthResult,
    CallEvent,
    ConfigErrors,
    ConfigProblem,
    DeviceEvent,
    DirectoryConnector,
    Event,
    InstanceState,
    Kind,
    LoginAttempt,
    ParameterDefinition,
    PbxDriver,
    PluginContext,
    PluginType,
    PresenceEvent,
    Secret,
    SmsProvider,
    SmsProviderConfig,
    context_of,
    hookimpl,
    principal_of,
    setting,
)

ROOT = Path(__file__).resolve().parent.parent
HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("twp_"))


def by(items: list[dict], key: str) -> dict[str, dict]:
    return {item[key]: item for item in items}


async def until(predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


# -- the four type registration hooks ---------------------------------------------------
@attrs.frozen
class SiteConfig:
    """A config schema with a required option, a bounded one and a secret."""

    host: str = setting(help="address of the remote system")
    port: int = setting(4000, min=1, max=65535, help="its TCP port")
    password: Secret | None = setting(None, help="its password")


@attrs.frozen(kw_only=True)
class SmsSiteConfig(SmsProviderConfig):
    """The same options for an SMS provider, whose schema extends the common one (priority, sender...)."""

    host: str = setting(help="address of the remote system")
    port: int = setting(4000, min=1, max=65535, help="its TCP port")
    password: Secret | None = setting(None, help="its password")


def make_type(base: type[PluginType], name: str, capabilities: set[str], **extra: Any) -> type[PluginType]:
    """A type of the given kind that records its instances' set-up."""

    async def setup(self) -> None:
        self.started = (self.name, self.config.host, self.config.port)

    config = SmsSiteConfig if base is SmsProvider else SiteConfig
    return type(f"Acme{base.__name__}", (base,), {"type_name": name, "Config": config, "capabilities": frozenset(capabilities),
                                                    "setup": setup, **extra})


class Registers:
    """A plugin whose ``hook`` registers the given classes."""

    def __init__(self, hook: str, *classes: Any):
        def impl(register):
            for cls in classes:
                register(cls)

        impl.__name__ = hook
        setattr(self, hook, hookimpl(impl))


async def check_type_hook(twp_app, hook: str, kind: Kind, base: type[PluginType], capabilities: set[str],
                          table: tuple[str, ...], type_key: str, **extra: Any) -> Any:
    """Register a good type, a bad one and a clash; configure an instance; check what the admin sees."""
    good = make_type(base, "acme", capabilities, **extra)
    bad = make_type(base, "broken", {"teleport"}, **extra)
    clash = make_type(base, "acme", capabilities, **extra)
    path = ".".join(table)

    directory = kind is Kind.DIRECTORY_CONNECTOR

    def instance(options: dict) -> dict:
        # A [directories.<name>] table belongs to a domain (admin guide 11): the demo's.
        config: dict = {"demo": {"seed": True}} if directory else {}
        if directory:
            options = {**options, "company": "Demo", "domain": "Paris"}
        node = config
        for part in table[:-1]:
            node = node.setdefault(part, {})
        node[table[-1]] = options
        return config

    config = instance({type_key: "acme", "host": "acme.example.com", "password": "pw-not-shown"} if type_key else
                      {"host": "acme.example.com", "password": "pw-not-shown"})
    server = await twp_app(config=config, plugins=[("acme", Registers(hook, good)), ("broken", Registers(hook, bad)),
                                                   ("clash", Registers(hook, clash)), ("not-a-type", Registers(hook, dict))])
    admin = await server.admin()
    body = await admin.get("/api/v1/plugins")
    plugins = by(body["plugins"], "name")
    assert plugins["acme"]["state"] == "loaded"
    assert plugins["acme"]["provides"] == [f"{kind.value}:acme"]
    assert plugins["acme"]["hooks"] == [hook]

    assert plugins["broken"]["state"] == "register_error" and plugins["broken"]["provides"] == []
    assert f"{hook}: RegistrationError: Acme{base.__name__} declares unknown capabilities ['teleport']; known: [" in plugins["broken"]["reason"]
    assert plugins["not-a-type"]["state"] == "register_error"
    assert plugins["not-a-type"]["reason"] == (f"{hook}: RegistrationError: {kind.label} registrations must be subclasses of "
                                               f"twpcore.plugin_api.{base.__name__}, got <class 'dict'>")
    # A second type of the same name is refused; its plugin is told why and stays loaded.
    assert plugins["clash"]["state"] == "loaded" and plugins["clash"]["provides"] == []
    assert plugins["clash"]["last_error"] == f'{hook}: RegistrationError: {kind.label} "acme" is already registered by plugin acme; rename yours'

    inst = by(body["instances"], "config")[path]
    assert (inst["type"], inst["plugin"], inst["state"], inst["capabilities"]) == ("acme", "acme", "ready", sorted(capabilities))
    if directory:
        # The directory service owns a directory's connector: one is set up for each sync or test.
        listed = next(d for d in (await admin.get("/api/v1/directories"))["items"] if d["name"] == table[-1])
        await admin.post(f"/api/v1/directories/{listed['id']}/test")
        assert "pw-not-shown" not in str(body) and "pw-not-shown" not in str(listed)
    else:
        obj = server.kernel.instances.instances[(kind, table[-1])].obj
        assert isinstance(obj, good) and obj.started == (table[-1], "acme.example.com", 4000)
        assert obj.config.password.reveal() == "pw-not-shown"
        assert "pw-not-shown" not in str(body) and "pw-not-shown" not in repr(obj.config)

    # An option that does not fit the type's schema names the key.
    server2 = await twp_app(config=instance({type_key: "acme", "host": "h", "port": 0} if type_key else {"host": "h", "port": 0}),
                            plugins=[("acme", Registers(hook, good))])
    inst = by((await (await server2.admin()).get("/api/v1/plugins"))["instances"], "config")[path]
    assert (inst["state"], inst["reason"]) == ("config_error", f"<test config>: {path}.port: expected an integer 1-65535, got 0")
    return server


async def test_hook_twp_register_pbx_drivers(twp_app):
    await check_type_hook(twp_app, "twp_register_pbx_drivers", Kind.PBX_DRIVER, PbxDriver, {"monitor", "make_call"},
                          ("pbx", "links", "paris"), "driver")


async def test_hook_twp_register_directory_connectors(twp_app):
    await check_type_hook(twp_app, "twp_register_directory_connectors", Kind.DIRECTORY_CONNECTOR, DirectoryConnector,
                          {"search", "sync"}, ("directories", "crm"), "connector")


async def test_hook_twp_register_sms_providers(twp_app):
    await check_type_hook(twp_app, "twp_register_sms_providers", Kind.SMS_PROVIDER, SmsProvider, {"gsm7", "ucs2"},
                          ("sms", "providers", "gateway"), "provider")


async def test_hook_twp_register_auth_methods(twp_app):
    async def authenticate(self, attempt: LoginAttempt) -> AuthResult:
        if attempt.user is None or attempt.password is None:
            return AuthResult.passes()
        if attempt.password == f"pin-{attempt.user['login']}":
            return AuthResult.accept(attempt.user, "PIN accepted")
        return AuthResult.reject(f"wrong PIN for {attempt.user['login']}")

    # Auth methods are instances too: [auth.methods.<name>] holds their options.
    server = await check_type_hook(twp_app, "twp_register_auth_methods", Kind.AUTH_METHOD, AuthMethod, {"password"},
                                   ("auth", "methods", "acme"), "", authenticate=authenticate)
    admin = await server.admin()
    company = await admin.create("companies", name="ACME")
    domain = await admin.create("domains", company_id=company["id"], name="Paris", numbering_plan_length=4)
    await admin.create("users", domain_id=domain["id"], login="jdoe", password="tws-Passw0rd-long")
    # The registered method becomes a choice of the AuthMethods parameter, and logs users in.
    definitions = by((await admin.get("/api/v1/parameters", params={"q": "AuthMethods"}))["items"], "name")
    assert "acme" in definitions["AuthMethods"]["choices"]
    await admin.create("parameter_values", name="AuthMethods", scope="domain", scope_id=domain["id"], value="acme")
    user = await server.login("jdoe", "pin-jdoe")
    assert user.info["method"] == "acme"
    body = await server.anonymous.post("/api/v1/auth/login", {"login": "jdoe", "password": "tws-Passw0rd-long"}, status=401)
    assert body["detail"] == "wrong PIN for jdoe"


# -- routes and parameters --------------------------------------------------------------
async def acme_status(request: web.Request) -> web.Response:
    context = context_of(request)  # the plugin's own context, not the kernel
    return web.json_response({"plugin": context.name, "ready": context.ready, "caller": principal_of(request).login})


async def acme_echo(request: web.Request) -> web.Response:
    return web.json_response({"echo": (await read_json(request))["text"]}, status=201)


async def acme_ping(request: web.Request) -> web.Response:
    return web.json_response({"pong": True})


class AcmeRoutes:
    @hookimpl
    def twp_register_routes(self, register):
        register("GET", "/api/v1/acme/status", acme_status, access="admin", summary="ACME link status")
        register("POST", "/api/v1/acme/echo", acme_echo, access="user", summary="Echo a text", status=201,
                 body={"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}})
        register("GET", "/api/v1/acme/ping", acme_ping, access="public", summary="Liveness")


@attrs.frozen
class AcmeOptions:
    crm_url: str = setting("https://crm.example.com", help="CRM page opened on incoming calls")
    timeout: int = setting(5, min=1, max=60, help="seconds to wait for the CRM")


class AcmeWithOptions:
    def __init__(self) -> None:
        self.seen: Any = "never started"

    @hookimpl
    def twp_register_options(self, register):
        register(AcmeOptions)

    @hookimpl
    async def twp_startup(self, context):
        self.seen = context.options


class ReaderWithChecks:
    """A reader function: the table (None when absent) in, options out, ConfigErrors for problems."""

    @hookimpl
    def twp_register_options(self, register):
        def read(source, table):
            if table is None:
                return None
            if not str(table.get("url", "")).startswith("https://"):
                raise ConfigErrors([ConfigProblem(source, "plugins.reader.url", f'expected an https:// URL, got {table.get("url")!r}')])
            return dict(table)
        register(read)


async def test_hook_twp_register_options(twp_app):
    class Twice:
        @hookimpl
        def twp_register_options(self, register):
            register(AcmeOptions)
            register(AcmeOptions)

    class NotOptions:
        @hookimpl
        def twp_register_options(self, register):
            register(42)

    acme = AcmeWithOptions()
    server = await twp_app(config={"plugins": {"acme": {"timeout": 9}, "reader": {"url": "https://crm.example.com/hook"}}},
                           plugins=[("acme", acme), ("reader", ReaderWithChecks()), ("twice", Twice()), ("not-options", NotOptions())])
    admin = await server.admin()
    assert acme.seen == AcmeOptions(timeout=9)  # the plugin gets its checked table, defaults filled in
    assert server.kernel.plugin_options["reader"] == {"url": "https://crm.example.com/hook"}
    assert server.kernel.config_problems() == []
    plugins = by((await admin.get("/api/v1/plugins"))["plugins"], "name")
    assert plugins["twice"]["state"] == "register_error" and "more than once" in plugins["twice"]["reason"]
    assert plugins["not-options"]["state"] == "register_error" and "attrs class" in plugins["not-options"]["reason"]

    # What `twp config check` reports: every bad table, named, with the fix; the kernel still builds.
    from twpcore.app import Kernel
    from twpcore.config import Config

    config = Config.from_dict({"storage": {"url": "sqlite://"}, "plugins": {
        "acme": {"timeout": 0, "colour": "red"}, "reader": {"url": "ftp://x"}, "ghost": {"a": 1}, "parameters": {"b": 2}}}, source="twp.toml")
    kernel = Kernel.build(config, extra_plugins=[("acme", AcmeWithOptions()), ("reader", ReaderWithChecks())])
    problems = kernel.config_problems()
    assert "twp.toml: plugins.acme.timeout: expected an integer 1-60, got 0" in problems
    assert "twp.toml: plugins.acme.colour: unknown key; allowed keys here: crm_url, timeout" in problems
    assert "twp.toml: plugins.reader.url: expected an https:// URL, got 'ftp://x'" in problems
    assert any(p.startswith("twp.toml: plugins.ghost: no installed plugin is named 'ghost'") and "remove the table" in p for p in problems)
    assert "twp.toml: plugins.parameters: plugin parameters takes no options; remove the table" in problems
    assert "acme" not in kernel.plugin_options  # never half-checked options


async def test_hook_twp_register_routes(twp_app):
    class BadAccess:
        @hookimpl
        def twp_register_routes(self, register):
            register("GET", "/api/v1/bad/x", acme_ping, access="everyone")

    class SyncHandler:
        @hookimpl
        def twp_register_routes(self, register):
            register("GET", "/api/v1/sync/x", lambda request: web.json_response({}), access="admin")

    class Squatter:
        @hookimpl
        def twp_register_routes(self, register):
            register("GET", "/api/v1/squatter/ok", acme_ping, access="public")
            register("GET", "/api/v1/health", acme_ping, access="public")

    server = await twp_app(plugins=[("acme", AcmeRoutes()), ("bad-access", BadAccess()), ("sync-handler", SyncHandler()),
                                    ("squatter", Squatter())])
    admin = await server.admin()
    company = await admin.create("companies", name="ACME")
    domain = await admin.create("domains", company_id=company["id"], name="Paris", numbering_plan_length=4)
    await admin.create("users", domain_id=domain["id"], login="jdoe", password="tws-Passw0rd-long")
    user = await server.login("jdoe", "tws-Passw0rd-long")

    # Served, with the access level the plugin declared.
    assert await admin.get("/api/v1/acme/status") == {"plugin": "acme", "ready": True, "caller": admin.info["admin"]["login"]}
    await server.anonymous.get("/api/v1/acme/status", status=401)
    assert (await user.get("/api/v1/acme/status", status=403))["error"] == "forbidden"
    assert await user.post("/api/v1/acme/echo", {"text": "hello"}, status=201) == {"echo": "hello"}
    bad_body = await user.post("/api/v1/acme/echo", {"txt": "hello"}, status=400)
    assert (bad_body["error"], bad_body["field"]) == ("bad_request", "text")
    await admin.post("/api/v1/acme/echo", {"text": "hello"}, status=403)
    assert await server.anonymous.get("/api/v1/acme/ping") == {"pong": True}

    # Listed in the OpenAPI document as the plugin's.
    doc = await server.anonymous.get("/api/v1/openapi.json")
    status = doc["paths"]["/api/v1/acme/status"]["get"]
    assert (status["x-twp-plugin"], status["x-twp-access"], status["tags"], status["summary"]) == (
        "acme",
        "admin",
        ["plugin:acme"],
        "ACME link status",
    )
    assert status["security"] == [{"bearer": []}]
    echo = doc["paths"]["/api/v1/acme/echo"]["post"]
    assert echo["requestBody"]["content"]["application/json"]["schema"]["required"] == ["text"]
    assert doc["paths"]["/api/v1/acme/ping"]["get"]["security"] == []

    # Bad registrations: the plugin is refused whole, with the reason.
    plugins = by((await admin.get("/api/v1/plugins"))["plugins"], "name")
    assert plugins["acme"]["state"] == "loaded"
    assert plugins["bad-access"]["state"] == "register_error"
    assert (
        plugins["bad-access"]["reason"]
        == "twp_register_routes: ValueError: route /api/v1/bad/x: access must be one of ('public', 'user', 'admin', 'any'), got 'everyone'"
    )
    assert plugins["sync-handler"]["state"] == "register_error"
    assert "the handler must be an async function taking the request" in plugins["sync-handler"]["reason"]
    assert "/api/v1/bad/x" not in doc["paths"] and "/api/v1/sync/x" not in doc["paths"]
    await admin.get("/api/v1/sync/x", status=404)
    # A kernel path cannot be taken over: that route is refused, the plugin's others are served.
    assert plugins["squatter"]["state"] == "loaded"
    assert plugins["squatter"]["last_error"] == ("twp_register_routes: RegistrationError: route GET /api/v1/health is already served by the kernel; "
                                                 "choose another path (plugin routes belong under /api/v1/<plugin-name>/)")
    assert "x-twp-plugin" not in doc["paths"]["/api/v1/health"]["get"]
    assert "ready" in await server.anonymous.get("/api/v1/health")
    assert await server.anonymous.get("/api/v1/squatter/ok") == {"pong": True}


class AcmeParameters:
    @hookimpl
    def twp_register_parameters(self, register):
        register(ParameterDefinition("AcmeCrmUrl", "https://crm.example.com", "URL of the ACME CRM opened on incoming calls", "Acme"))
        register(ParameterDefinition("AcmePopup", "Yes", "Yes to open the CRM page when a call rings", "Acme", "yesno"))
        register(ParameterDefinition("AcmeDebug", "No", "Yes to log every CRM request", "Acme", "yesno", expert=True))


async def test_hook_twp_register_parameters(twp_app):
    class BadDefault:
        @hookimpl
        def twp_register_parameters(self, register):
            register(ParameterDefinition("BadFlag", "Maybe", "a yes/no with a bad default", "Bad", "yesno"))

    class NotADefinition:
        @hookimpl
        def twp_register_parameters(self, register):
            register("AcmeOther", "x")

    class Redefines:
        @hookimpl
        def twp_register_parameters(self, register):
            register(ParameterDefinition("AuthMethods", "None", "let everyone in", "Server", "methods"))

    server = await twp_app(plugins=[("acme", AcmeParameters()), ("bad-default", BadDefault()), ("not-a-definition", NotADefinition()),
                                    ("redefines", Redefines())])
    admin = await server.admin()

    # Listed with the kernel's parameters; expert ones only in expert mode.
    listed = by((await admin.get("/api/v1/parameters", params={"application": "Acme"}))["items"], "name")
    assert set(listed) == {"AcmeCrmUrl", "AcmePopup"}
    assert listed["AcmePopup"] == {"name": "AcmePopup", "default": "Yes", "description": "Yes to open the CRM page when a call rings",
                                   "application": "Acme", "kind": "yesno", "expert": False, "choices": []}
    expert = by((await admin.get("/api/v1/parameters", params={"application": "Acme", "expert": "true"}))["items"], "name")
    assert expert["AcmeDebug"]["expert"] is True

    # Resolved for users: built-in default, then the domain's value.
    company = await admin.create("companies", name="ACME")
    paris = await admin.create("domains", company_id=company["id"], name="Paris", numbering_plan_length=4)
    lyon = await admin.create("domains", company_id=company["id"], name="Lyon", numbering_plan_length=4)
    await admin.create("users", domain_id=paris["id"], login="jdoe", password="tws-Passw0rd-long")
    await admin.create("users", domain_id=lyon["id"], login="asmith", password="tws-Passw0rd-long")
    await admin.create("parameter_values", name="AcmeCrmUrl", scope="domain", scope_id=paris["id"], value="https://paris.crm.example.com")
    bad = await admin.post(
        "/api/v1/parameter-values", {"name": "AcmePopup", "scope": "domain", "scope_id": paris["id"], "value": "Maybe"}, status=422
    )
    assert (bad["detail"], bad["field"]) == ('parameter AcmePopup: expected Yes or No, got "Maybe"', "value")
    for login, url, source in (("jdoe", "https://paris.crm.example.com", "domain"), ("asmith", "https://crm.example.com", "built-in")):
        me = await server.login(login, "tws-Passw0rd-long")
        mine = by((await me.get("/api/v1/me/parameters"))["items"], "name")
        assert (mine["AcmeCrmUrl"]["value"], mine["AcmeCrmUrl"]["source"]) == (url, source)

    plugins = by((await admin.get("/api/v1/plugins"))["plugins"], "name")
    assert plugins["bad-default"]["state"] == "register_error"
    assert plugins["bad-default"]["reason"] == 'twp_register_parameters: ParameterError: parameter BadFlag: expected Yes or No, got "Maybe"'
    assert plugins["not-a-definition"]["state"] == "register_error"
    assert plugins["not-a-definition"]["reason"].startswith(
        "twp_register_parameters: RegistrationError: register() takes one twpcore.parameters.ParameterDefinition"
    )
    # Another plugin's parameter cannot be redefined: refused, the original stays.
    assert plugins["redefines"]["state"] == "loaded"
    assert (
        plugins["redefines"]["last_error"]
        == "twp_register_parameters: RegistrationError: parameter AuthMethods is already defined by plugin parameters; rename yours"
    )
    assert server.kernel.parameters.definitions["AuthMethods"].default == "TWS"
    assert "BadFlag" not in server.kernel.parameters.definitions


# -- lifecycle ----------------------------------------------------------------------------
class Lifecycle:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.user_id = 0

    @hookimpl
    async def twp_startup(self, context):
        context.state = "started"  # the plugin's slot, kept until twp_shutdown
        self.calls.append(("startup", {"context": context, "ready": context.ready, "nobody": await context.user(1),
                                       "TWS": context.instance_state(Kind.AUTH_METHOD, "TWS"),
                                       "None": context.instance_state(Kind.AUTH_METHOD, "None")}))

    @hookimpl
    async def twp_shutdown(self, context):
        # The store is still open.
        user = await context.user(self.user_id)
        self.calls.append(("shutdown", {"context": context, "state": context.state, "login": user.login if user else None}))


async def test_hook_twp_startup(twp_app):
    lifecycle = Lifecycle()

    class Fails:
        @hookimpl
        def twp_startup(self):
            raise KeyError("ACME_LICENSE")

    server = await twp_app(plugins=[("fails", Fails()), ("lifecycle", lifecycle)])
    # Called once, with the plugin's context (not the kernel), the store open and the instances started, before it serves.
    assert [name for name, _ in lifecycle.calls] == ["startup"]
    seen = lifecycle.calls[0][1]
    assert isinstance(seen["context"], PluginContext) and seen["context"].name == "lifecycle"
    assert not hasattr(seen["context"], "kernel") and not hasattr(seen["context"], "store")
    assert seen["ready"] is False and seen["nobody"] is None
    assert (seen["TWS"], seen["None"]) == (InstanceState.READY, InstanceState.READY) == ("ready", "ready")
    admin = await server.admin()
    plugins = by((await admin.get("/api/v1/plugins"))["plugins"], "name")
    assert (plugins["fails"]["state"], plugins["fails"]["reason"]) == ("startup_error", "twp_startup: KeyError: 'ACME_LICENSE'")
    assert plugins["lifecycle"]["state"] == "loaded"  # after a failing plugin, the next ones still start


async def test_hook_twp_shutdown(twp_app):
    lifecycle = Lifecycle()
    server = await twp_app(plugins=[("lifecycle", lifecycle)])
    admin = await server.admin()
    company = await admin.create("companies", name="ACME")
    domain = await admin.create("domains", company_id=company["id"], name="Paris", numbering_plan_length=4)
    lifecycle.user_id = (await admin.create("users", domain_id=domain["id"], login="jdoe"))["id"]
    assert [name for name, _ in lifecycle.calls] == ["startup"]
    await server.client.close()  # stops the server
    assert [name for name, _ in lifecycle.calls] == ["startup", "shutdown"]
    # The same context as at start-up, with what the plugin kept in its slot; the store still answers.
    assert lifecycle.calls[1][1] == {"context": lifecycle.calls[0][1]["context"], "state": "started", "login": "jdoe"}
    assert server.kernel.ready is False


# -- observers ----------------------------------------------------------------------------
class Observer:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, Any]] = []

    @hookimpl
    def twp_call_event(self, event, context):
        self.seen.append(("call", event.type, (event, context)))

    @hookimpl
    async def twp_device_event(self, event):
        await asyncio.sleep(0)
        self.seen.append(("device", event.type, event))

    @hookimpl
    def twp_presence_event(self, event, context):
        self.seen.append(("presence", event.type, event))


async def observe(twp_app, *events: Event) -> tuple[Any, Observer]:
    observer = Observer()
    server = await twp_app(plugins=[("observer", observer)])
    for event in events:
        server.kernel.events.publish(event)
    # A marker in each category closes the sequence: everything before it was delivered.
    for marker in ("call.end-of-test", "device.end-of-test", "presence.end-of-test"):
        server.kernel.events.publish(Event(marker, {}))
    await until(lambda: sum(1 for _, type_, _ in observer.seen if type_.endswith("end-of-test")) == 3)
    return server, observer


MIXED = (
    Event("call.delivered", {"device": "2001", "calling": "0612345678"}, company_id=1, user_ids=frozenset({7})),
    Event("device.forwarding", {"device": "2001", "forward": "immediate", "to": "2002"}, company_id=1),
    Event("presence.changed", {"user_id": 7, "presence": "busy"}, company_id=1, user_ids=frozenset({7})),
    Event("admin.user.created", {"id": 7}, company_id=1),
    Event("call.cleared", {"device": "2001"}, company_id=2, user_ids=frozenset({9})),
)


async def test_hook_twp_call_event(twp_app):
    _server, observer = await observe(twp_app, *MIXED)
    calls = [(type_, payload) for category, type_, payload in observer.seen if category == "call" and not type_.endswith("end-of-test")]
    # Every call event, of every company, in order, typed, with the plugin's context.
    assert [type_ for type_, _ in calls] == ["call.delivered", "call.cleared"]
    event, context = calls[0][1]
    assert event == MIXED[0] and isinstance(event, CallEvent) and (event.device, event.call_id) == ("2001", None)
    assert isinstance(context, PluginContext) and context.name == "observer"
    assert calls[1][1][0].company_id == 2


async def test_hook_twp_device_event(twp_app):
    _, observer = await observe(twp_app, *MIXED)
    devices = [event for category, type_, event in observer.seen if category == "device" and not type_.endswith("end-of-test")]
    assert devices == [MIXED[1]]  # async implementations are awaited; fewer arguments are fine
    assert isinstance(devices[0], DeviceEvent) and devices[0].device == "2001"


async def test_hook_twp_presence_event(twp_app):
    _, observer = await observe(twp_app, *MIXED)
    presences = [event for category, type_, event in observer.seen if category == "presence" and not type_.endswith("end-of-test")]
    assert presences == [MIXED[2]] and isinstance(presences[0], PresenceEvent)
    assert not any(type_.startswith("admin.") for _, type_, _ in observer.seen)  # admin events are not for observers


# -- meta-tests ---------------------------------------------------------------------------
def spec_heading(name: str) -> str:
    params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
    return f"## {name}({params})"


def test_every_hook_is_documented():
    text = (ROOT / "docs" / "plugin-hooks.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^## (twp_\w+\(.*\))\s*$", text, re.M))
    missing = [spec_heading(name) for name in HOOKS if spec_heading(name)[3:] not in headings]
    assert not missing, f"docs/plugin-hooks.md lacks these headings: {missing}"
    stale = sorted(h for h in headings if h.split("(")[0] not in HOOKS)
    assert not stale, f"docs/plugin-hooks.md documents hooks that do not exist: {stale}"
    assert len(HOOKS) >= 11


def test_every_hook_has_a_test():
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py"))
    missing = [name for name in HOOKS if not re.search(rf"^(async )?def test_hook_{name}\(", tests, re.M)]
    assert not missing, f"hooks without a test_hook_<name> test: {missing}"


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_one_line_docstring(name):
    doc = getattr(hookspecs, name).__doc__ or ""
    assert doc.strip() and "\n" not in doc.strip(), f"{name}: one-line docstring expected; the full text goes to docs/plugin-hooks.md"
