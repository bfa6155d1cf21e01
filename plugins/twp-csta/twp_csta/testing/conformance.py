"""The PBX driver conformance suite: one set of scenarios any CSTA driver, XML or BER, runs against the simulator.

A driver package (first- or third-party) subclasses ``DriverConformance`` in its tests::

    from twp_csta.testing import DriverConformance

    class TestConformance(DriverConformance):
        driver = "mxone"                       # the type_name to test
        link_options = {"edition": 4}          # optional: extra [pbx.links.lab] options

Each test builds a real kernel (the kit's ``twp_app``) with one ``[pbx.links.lab]`` of
that driver connected over TCP to a started ``PbxSimulator`` set up like the driver's
defaults (encoding, framing, edition, application session or ACSE association), creates a company, a domain, three
users with devices 201, 202 and 203 through the admin API, logs the users in and opens
their WebSockets (``/api/v1/events``).  Then, for **every capability the driver
declares**, it plays the scenario through the HTTP call-control API and checks what a
user sees: the events on the WebSocket (``call.delivered``, ``call.established``,
``presence.changed`` …) and ``GET /api/v1/calls``.  Capabilities the driver does not
declare are skipped, and the suite checks that the API answers 501 for them.  Every
driver also goes through link loss (reconnection, re-monitoring, calls reconciled from
snapshots) and garbage on the link (skipped, link kept).

``start_lab`` and ``Lab`` are usable on their own (the kernel's API and fault-injection
tests use them); ``EventStream`` reads a WebSocket with ``expect``/``expect_no``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any, ClassVar

import attrs
import pytest

from twp_csta.driver import CstaXmlDriver
from twp_csta.driver_ber import CstaBerConfig
from twp_csta.sim import PbxSimulator, SimConfig
from twpcore.plugin_api import Kind, hookimpl
from twpcore.testing.plugin import TwpClient, registered_type

#: Link options that make tests fast (applied when the driver's Config has them).
FAST_LINK_OPTIONS: dict[str, Any] = {
    "heartbeat_interval": 0, "request_timeout": 2, "connect_timeout": 2, "reconnect_min": 0.05,
    "reconnect_max": 0.4, "session_duration": 60,
}
#: Simulator options that make tests fast.
FAST_SIM_OPTIONS: dict[str, Any] = {"no_answer_after": 0.3, "failed_clear_after": 0.3, "external_answer_after": 0.05, "queue_delay": 0.1}
#: Users created by ``start_lab``: login → device number.
LAB_USERS = {"alice": "201", "bob": "202", "carol": "203"}
EXTERNAL = "0612345678"
"""The outside caller of the scenarios (as the PBX presents it)."""
DIALED_EXTERNAL = "06 12 34 56 78"
"""An outside number as a user types it; the default dialing plan sends ``00612345678``."""


def _subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and _subset(v, actual[k]) for k, v in expected.items())
    return expected == actual


class EventStream:
    """One WebSocket on ``/api/v1/events``: every event received is kept in ``events``."""

    def __init__(self, ws: Any, name: str = ""):
        self.ws = ws
        self.name = name
        self.events: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type.name != "TEXT" or msg.data == "pong":
                continue
            self.events.append(json.loads(msg.data))
            self._arrived.set()

    def matching(self, type_: str, where: Callable[[dict], bool] | None = None, **data: Any) -> list[dict[str, Any]]:
        """Events received so far of ``type_`` whose data contains ``data`` (nested dicts compare as subsets)."""
        return [e for e in self.events if e.get("type") == type_ and _subset(data, e.get("data", {})) and (where is None or where(e["data"]))]

    async def expect(
        self, type_: str, where: Callable[[dict], bool] | None = None, *, timeout: float = 3.0, after: int = 0, **data: Any
    ) -> dict[str, Any]:
        """Wait for an event of ``type_`` matching ``data``/``where`` (among those from index ``after`` on); return its data."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events[after:]:
                if event.get("type") == type_ and _subset(data, event.get("data", {})) and (where is None or where(event["data"])):
                    return event["data"]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [
                    (
                        e["type"],
                        e.get("data", {}).get("call", {}).get("state")
                        if isinstance(e.get("data", {}).get("call"), dict)
                        else e.get("data", {}).get("presence"),
                    )
                    for e in self.events[after:]
                ]
                raise AssertionError(f"{self.name}: no {type_} matching {data} within {timeout:g} s; received {seen}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def expect_no(self, type_: str, where: Callable[[dict], bool] | None = None, *, within: float = 0.3, after: int = 0, **data: Any) -> None:
        """Fail if an event of ``type_`` matching ``data`` arrives within ``within`` seconds."""
        await asyncio.sleep(within)
        found = [
            e for e in self.events[after:] if e.get("type") == type_ and _subset(data, e.get("data", {})) and (where is None or where(e["data"]))
        ]
        assert not found, f"{self.name}: unexpected {type_}: {found}"

    def mark(self) -> int:
        """Index to pass as ``after=`` to look only at events from now on."""
        return len(self.events)

    async def close(self) -> None:
        await self.ws.close()
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


async def event_stream(server: Any, client: Any, name: str = "") -> EventStream:
    """``client``'s WebSocket on ``/api/v1/events`` of ``server``, its ``system.hello`` read."""
    ws = await server.client.ws_connect("/api/v1/events", params={"access_token": client.token})
    stream = EventStream(ws, name)
    await stream.expect("system.hello")
    return stream


@attrs.define(eq=False)
class Lab:
    """A running kernel with one PBX link to a simulator, a tenant, users and their WebSockets."""

    sim: PbxSimulator
    server: Any
    admin: Any
    link: str
    driver: str
    company_id: int
    domain_id: int
    users: dict[str, Any]
    """login → logged-in ``TwpClient``."""
    numbers: dict[str, str]
    """login → device number."""
    user_ids: dict[str, int]
    streams: dict[str, EventStream] = attrs.field(factory=dict)

    @property
    def kernel(self) -> Any:
        return self.server.kernel

    @property
    def driver_obj(self) -> Any:
        return self.kernel.telephony.links[self.link].driver

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(self.driver_obj.capabilities)

    async def ws(self, login: str) -> EventStream:
        """The WebSocket of ``login`` (opened on first use, before the scenario acts)."""
        if login not in self.streams:
            self.streams[login] = await event_stream(self.server, self.users.get(login, self.admin), login)
        return self.streams[login]

    async def calls(self, login: str) -> dict[str, Any]:
        """``GET /api/v1/calls`` as ``login``."""
        return await self.users[login].get("/api/v1/calls")

    async def call_states(self, login: str) -> dict[str, str]:
        return {c["call_id"]: c["state"] for c in (await self.calls(login))["items"]}

    async def wait_calls(self, login: str, predicate: Callable[[list[dict]], bool], timeout: float = 3.0) -> list[dict]:
        """Poll ``GET /api/v1/calls`` until ``predicate(items)``."""
        deadline = time.monotonic() + timeout
        while True:
            client = self.users[login]
            body = await client.call("GET", "/api/v1/calls")
            items: Any = body.get("items") if client.last_status == 200 and isinstance(body, dict) else body
            if client.last_status == 200 and predicate(items):
                return items
            if time.monotonic() > deadline:
                raise AssertionError(f"GET /api/v1/calls of {login} never satisfied the condition; last: {items}")
            await asyncio.sleep(0.02)

    def connected(self) -> bool:
        """Is the link up with every lab device monitored?"""
        link = self.kernel.telephony.links[self.link]
        return link.connected and set(self.numbers.values()) <= link.monitored and link.devices <= link.monitored

    async def wait_supervised(self, timeout: float = 5.0) -> None:
        """Wait until the link is up and every device is monitored."""
        deadline = time.monotonic() + timeout
        while not self.connected():
            if time.monotonic() > deadline:
                link = self.kernel.telephony.links[self.link]
                raise AssertionError(f"link {self.link} not supervising every device within {timeout:g} s: connected={link.connected}, "
                                     f"devices={sorted(link.devices)}, monitored={sorted(link.monitored)}, last_error={link.last_error}")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        for stream in self.streams.values():
            await stream.close()
        await self.sim.stop()


def renamed_driver(type_name: str, base: type[Any] | None = None) -> list[tuple[str, Any]]:
    """``plugins=`` for ``start_lab``: one plugin registering ``base`` (the CSTA XML driver by default) as ``type_name``.

    A test gives the kernel's driver a name of its own (``start_lab(twp_app, "csta_notes", plugins=renamed_driver("csta_notes"))``)
    so that its link never mixes with another test's registrations.
    """
    base = base or CstaXmlDriver
    cls = type(f"{base.__name__}As_{type_name}", (base,), {"type_name": type_name, "__doc__": f"{base.__name__} as {type_name!r}."})

    class Drivers:
        TWP_PLUGIN_API = "1.2"

        @hookimpl
        def twp_register_pbx_drivers(self, register: Any) -> None:
            register(cls)

    return [(f"{type_name}-pbx", Drivers())]


# (driver, plugin identities) → (class, the plugins, kept alive so their ids stay theirs)
_DRIVER_CLASSES: dict[tuple[str, tuple[tuple[str, int], ...]], tuple[type[Any], list[tuple[str, Any]]]] = {}


def driver_class(driver: str, plugins: list[tuple[str, Any]] = ()) -> type[Any]:  # type: ignore[assignment]
    """The registered class of PBX driver ``driver`` (installed entry points plus ``plugins``)."""
    key = (driver, tuple((name, id(obj)) for name, obj in plugins))
    if key not in _DRIVER_CLASSES:
        _DRIVER_CLASSES[key] = (_load_driver_class(driver, list(plugins)), list(plugins))
    return _DRIVER_CLASSES[key][0]


def _load_driver_class(driver: str, plugins: list[tuple[str, Any]]) -> type[Any]:
    return registered_type(Kind.PBX_DRIVER, driver, plugins)


def sim_config_for(cls: type[Any], link_options: dict[str, Any], sim_options: dict[str, Any]) -> SimConfig:
    """A simulator set up like the driver's link: same encoding, framing, edition, session use or association."""
    defaults = {}
    for field in attrs.fields(cls.Config):
        if field.default is not attrs.NOTHING and not isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            defaults[field.name] = field.default
    merged = {**defaults, **link_options}
    options: dict[str, Any] = dict(FAST_SIM_OPTIONS)
    if isinstance(cls.Config, type) and issubclass(cls.Config, CstaBerConfig):
        options["encoding"] = "ber"
        options["framing"] = merged.get("framing", "len2")
        options["association"] = merged.get("association", "acse")
        options["phase"] = merged.get("phase", 3)
    elif merged.get("framing") in ("j2", "nul"):
        options["framing"] = merged["framing"]
    if merged.get("edition") in (3, 4, 5):
        options["edition"] = merged["edition"]
    if "use_session" in merged:
        options["require_session"] = bool(merged["use_session"])
    if merged.get("username"):
        options["username"] = merged["username"]
        password: Any = merged.get("password")
        options["password"] = password.reveal() if hasattr(password, "reveal") else password
    options.update(sim_options)
    return SimConfig(**options)


def user_client(server: Any, user_id: int) -> TwpClient:
    """A ``TwpClient`` with a fresh token of user ``user_id``.

    Tokens are issued directly (a login would spend a few hundred milliseconds hashing a
    password per user); everything else goes through the real API.
    """
    return server.user_client(user_id)


def admin_client(server: Any) -> TwpClient:
    """A ``TwpClient`` of a new super user (token issued directly, no login)."""
    return server.admin_client()


async def tenant_lab(server: Any, sim: Any, link: str, driver: str, numbers: dict[str, str]) -> Lab:
    """The ``Lab`` of a started kernel: company "Lab", domain "Main" and, per login → number, a user with that device
    (created through the admin API, the users' clients logged in); ``sim`` is what ``Lab.close`` stops."""
    admin = admin_client(server)
    company = await admin.create("companies", name="Lab")
    domain = await admin.create("domains", company_id=company["id"], name="Main", numbering_plan_length=3)
    clients, ids = {}, {}
    for login, number in numbers.items():
        user = await admin.create("users", domain_id=domain["id"], login=login)
        await admin.create("devices", user_id=user["id"], number=number)
        ids[login] = user["id"]
        clients[login] = user_client(server, user["id"])
    return Lab(sim, server, admin, link, driver, company["id"], domain["id"], clients, numbers, ids)


async def start_lab(twp_app: Any, driver: str, *, link_options: dict[str, Any] | None = None, sim_options: dict[str, Any] | None = None,
                    plugins: list[tuple[str, Any]] = (), users: dict[str, str] | None = None, link: str = "lab",  # type: ignore[assignment]
                    config: dict[str, Any] | None = None, wait: bool = True) -> Lab:
    """Start a simulator and a kernel whose link ``link`` (driver ``driver``) connects to it; create the tenant."""
    cls = driver_class(driver, list(plugins))
    fields = {f.name for f in attrs.fields(cls.Config)}
    link_options = dict(link_options or {})
    sim = PbxSimulator(sim_config_for(cls, link_options, sim_options or {}))
    await sim.start()
    options = {k: v for k, v in FAST_LINK_OPTIONS.items() if k in fields}
    options.update(link_options)
    options.update(host="127.0.0.1", port=sim.port)
    table = {"driver": driver, "company": "Lab", "domain": "Main", **options}
    cfg = dict(config or {})
    cfg["pbx"] = {"links": {link: table}}
    try:
        server = await twp_app(config=cfg, plugins=list(plugins))
        lab = await tenant_lab(server, sim, link, driver, dict(users or LAB_USERS))
    except BaseException:
        await sim.stop()
        raise
    if wait:
        try:
            await lab.wait_supervised()
        except BaseException:
            await lab.close()
            raise
    return lab


class DriverConformance:
    """Subclass as ``Test…`` with ``driver = "<type_name>"``; see the module docstring."""

    driver: ClassVar[str] = ""
    link_options: ClassVar[dict[str, Any]] = {}
    sim_options: ClassVar[dict[str, Any]] = {}
    plugins: ClassVar[list[tuple[str, Any]]] = []

    @pytest.fixture
    async def lab(self, twp_app: Any) -> Any:
        if not self.driver:
            pytest.fail(f"{type(self).__name__}.driver: set the type_name of the driver to test")
        lab = await start_lab(twp_app, self.driver, link_options=self.link_options, sim_options=self.sim_options, plugins=self.plugins)
        try:
            yield lab
        finally:
            await lab.close()

    @staticmethod
    def needs(lab: Lab, *capabilities: str) -> None:
        missing = [c for c in capabilities if c not in lab.capabilities]
        if missing:
            pytest.skip(f"the {lab.driver} driver does not declare {', '.join(missing)}")

    # -- shared steps -------------------------------------------------------------------
    @staticmethod
    async def incoming_answered(lab: Lab, login: str = "alice", caller: str = EXTERNAL) -> str:
        """An outside call rings ``login``'s device and is answered through the API; returns the call id."""
        ws = await lab.ws(login)
        mark = ws.mark()
        call_id = await lab.sim.incoming_call(caller, lab.numbers[login])
        await ws.expect("call.delivered", after=mark, call={"call_id": call_id, "state": "alerting"})
        await lab.users[login].post(f"/api/v1/calls/{call_id}/answer", status=204)
        await ws.expect("call.established", after=mark, call={"call_id": call_id, "state": "connected"})
        return call_id

    @staticmethod
    async def consulted(lab: Lab, call_id: str, login: str = "alice", other: str = "bob") -> str:
        """``login`` consults ``other`` (who answers) from the answered ``call_id``; returns the consultation call id."""
        ws, ows = await lab.ws(login), await lab.ws(other)
        mark, omark = ws.mark(), ows.mark()
        body = await lab.users[login].post(f"/api/v1/calls/{call_id}/consult", {"number": lab.numbers[other]}, status=201)
        consult = body["call_id"]
        await ws.expect("call.held", after=mark, call={"call_id": call_id, "state": "held"})
        await ows.expect("call.delivered", after=omark, call={"call_id": consult, "state": "alerting"})
        await lab.users[other].post(f"/api/v1/calls/{consult}/answer", status=204)
        await ws.expect("call.established", after=mark, call={"call_id": consult, "state": "connected"})
        return consult

    # -- the scenarios, one per capability ---------------------------------------------------
    async def test_monitor(self, lab: Lab) -> None:
        self.needs(lab, "monitor")
        states = await lab.admin.get("/api/v1/devices/states", params={"from": "201", "to": "203"})
        mine = {d["device"]: d for d in states["items"] if d["domain_id"] == lab.domain_id}
        assert {n: d["state"] for n, d in mine.items()} == {"201": "Connected", "202": "Connected", "203": "Connected"}
        assert all(d["provider"] == lab.link for d in mine.values())
        links = {item["name"]: item for item in (await lab.admin.get("/api/v1/links"))["items"]}
        assert links[lab.link]["connected"] is True and links[lab.link]["current"] == 3
        assert all(lab.sim.monitored(n) for n in lab.numbers.values())

    async def test_incoming_call_answer_and_hang_up(self, lab: Lab) -> None:
        self.needs(lab, "monitor", "answer", "hang_up")
        ws = await lab.ws("alice")
        call_id = await lab.sim.incoming_call(EXTERNAL, "201")
        delivered = await ws.expect("call.delivered", call={"call_id": call_id})
        assert delivered["call"]["state"] == "alerting" and delivered["call"]["direction"] == "incoming"
        assert delivered["call"]["remote"] == EXTERNAL
        await ws.expect("presence.changed", presence="ringing", device="201")
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/answer", status=204)
        await ws.expect("call.established", call={"call_id": call_id, "state": "connected"})
        await ws.expect("presence.changed", presence="busy", device="201")
        assert lab.sim.calls[call_id].connections == {EXTERNAL: "connected", "201": "connected"}
        assert await lab.call_states("alice") == {call_id: "connected"}
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/hangup", status=204)
        await ws.expect("call.cleared", call={"call_id": call_id})
        await ws.expect("presence.changed", presence="idle", device="201")
        assert (await lab.calls("alice"))["items"] == [] and call_id not in lab.sim.calls
        assert len(ws.matching("call.established", call={"call_id": call_id})) == 1

    async def test_make_call(self, lab: Lab) -> None:
        self.needs(lab, "make_call")
        ws = await lab.ws("alice")
        body = await lab.users["alice"].post("/api/v1/calls", {"number": DIALED_EXTERNAL}, status=201)
        call_id = body["call_id"]
        assert body["dialed"] == "00612345678"
        call = await ws.expect("call.delivered", call={"call_id": call_id})
        assert call["call"]["direction"] == "outgoing" and call["call"]["remote_state"] == "alerting"
        assert call["call"]["remote"] == "00612345678"
        assert lab.sim.calls[call_id].connections == {"201": "connected", "00612345678": "alerting"}
        lab.sim.answer("00612345678")
        await ws.expect("call.established", call={"call_id": call_id, "state": "connected"})
        lab.sim.hang_up("00612345678")
        await ws.expect("call.cleared", call={"call_id": call_id})

    async def test_make_internal_call_rings_the_other_user(self, lab: Lab) -> None:
        self.needs(lab, "make_call", "answer")
        bob = await lab.ws("bob")
        call_id = (await lab.users["alice"].post("/api/v1/calls", {"number": "202"}, status=201))["call_id"]
        ringing = await bob.expect("call.delivered", call={"call_id": call_id, "state": "alerting"})
        assert ringing["call"]["remote"] == "201"
        await lab.users["bob"].post(f"/api/v1/calls/{call_id}/answer", status=204)
        await bob.expect("call.established", call={"call_id": call_id})
        alice_calls = await lab.wait_calls("alice", lambda items: [c["state"] for c in items] == ["connected"])
        assert alice_calls[0]["remote"] == "202"

    async def test_hold_and_retrieve(self, lab: Lab) -> None:
        self.needs(lab, "hold", "retrieve")
        ws = await lab.ws("alice")
        call_id = await self.incoming_answered(lab)
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/hold", status=204)
        await ws.expect("call.held", call={"call_id": call_id, "state": "held"})
        assert lab.sim.calls[call_id].connections["201"] == "hold"
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/retrieve", status=204)
        await ws.expect("call.retrieved", call={"call_id": call_id, "state": "connected"})
        assert await lab.call_states("alice") == {call_id: "connected"}

    async def test_consultation_and_transfer(self, lab: Lab) -> None:
        self.needs(lab, "consultation_call", "transfer")
        ws, bob = await lab.ws("alice"), await lab.ws("bob")
        call_id = await self.incoming_answered(lab)
        consult = await self.consulted(lab, call_id)
        assert await lab.call_states("alice") == {call_id: "held", consult: "connected"}
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/transfer", {"other_call_id": consult}, status=204)
        await ws.expect("call.transferred", call={"call_id": call_id, "state": "cleared"})
        await ws.expect("presence.changed", presence="idle", device="201")
        moved = await bob.expect("call.transferred", call={"state": "connected"})
        assert moved["call"]["remote"] == EXTERNAL
        assert (await lab.calls("alice"))["items"] == []
        assert [(c["state"], c["remote"]) for c in (await lab.calls("bob"))["items"]] == [("connected", EXTERNAL)]
        new_id = moved["call"]["call_id"]
        assert lab.sim.calls[new_id].connections == {EXTERNAL: "connected", "202": "connected"}

    async def test_alternate(self, lab: Lab) -> None:
        self.needs(lab, "consultation_call", "alternate")
        ws = await lab.ws("alice")
        call_id = await self.incoming_answered(lab)
        consult = await self.consulted(lab, call_id)
        mark = ws.mark()
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/alternate", {"other_call_id": consult}, status=204)
        await ws.expect("call.held", after=mark, call={"call_id": consult, "state": "held"})
        await ws.expect("call.retrieved", after=mark, call={"call_id": call_id, "state": "connected"})
        assert await lab.call_states("alice") == {call_id: "connected", consult: "held"}

    async def test_reconnect(self, lab: Lab) -> None:
        self.needs(lab, "consultation_call", "reconnect")
        ws, bob = await lab.ws("alice"), await lab.ws("bob")
        call_id = await self.incoming_answered(lab)
        consult = await self.consulted(lab, call_id)
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/reconnect", {"other_call_id": consult}, status=204)
        await ws.expect("call.cleared", call={"call_id": consult})
        await bob.expect("call.cleared", call={"call_id": consult})
        await ws.expect("call.retrieved", call={"call_id": call_id, "state": "connected"})
        assert await lab.call_states("alice") == {call_id: "connected"}

    async def test_blind_transfer(self, lab: Lab) -> None:
        self.needs(lab, "single_step_transfer")
        ws, bob = await lab.ws("alice"), await lab.ws("bob")
        call_id = await self.incoming_answered(lab)
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/blind-transfer", {"number": "202"}, status=204)
        await ws.expect("call.transferred", call={"call_id": call_id, "state": "cleared"})
        ringing = await bob.expect("call.delivered", call={"state": "alerting"})
        assert ringing["call"]["remote"] == EXTERNAL
        await lab.users["bob"].post(f"/api/v1/calls/{ringing['call']['call_id']}/answer", status=204)
        await bob.expect("call.established", call={"call_id": ringing["call"]["call_id"]})
        assert (await lab.calls("alice"))["items"] == []

    async def test_conference(self, lab: Lab) -> None:
        self.needs(lab, "consultation_call", "conference")
        ws, bob = await lab.ws("alice"), await lab.ws("bob")
        call_id = await self.incoming_answered(lab)
        consult = await self.consulted(lab, call_id)
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/conference", {"other_call_id": consult}, status=204)
        mine = await ws.expect("call.conferenced")
        assert mine["call"]["conference"] is True and mine["call"]["state"] == "connected"
        assert set(mine["old_call_ids"]) == {call_id, consult}
        theirs = await bob.expect("call.conferenced")
        assert theirs["call"]["call_id"] == mine["call"]["call_id"] and theirs["call"]["conference"] is True
        new_id = mine["call"]["call_id"]
        assert lab.sim.calls[new_id].connections == {"201": "connected", EXTERNAL: "connected", "202": "connected"}
        assert await lab.call_states("alice") == {new_id: "connected"}

    async def test_deflect(self, lab: Lab) -> None:
        self.needs(lab, "deflect")
        ws, bob = await lab.ws("alice"), await lab.ws("bob")
        call_id = await lab.sim.incoming_call(EXTERNAL, "201")
        await ws.expect("call.delivered", call={"call_id": call_id})
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/deflect", {"number": "202"}, status=204)
        await ws.expect("call.diverted", call={"call_id": call_id, "state": "cleared"})
        ringing = await bob.expect("call.delivered", call={"call_id": call_id, "state": "alerting"})
        assert ringing["call"]["remote"] == EXTERNAL
        assert (await lab.calls("alice"))["items"] == []

    async def test_dtmf(self, lab: Lab) -> None:
        self.needs(lab, "dtmf")
        call_id = await self.incoming_answered(lab)
        await lab.users["alice"].post(f"/api/v1/calls/{call_id}/dtmf", {"digits": "12#*"}, status=204)
        assert lab.sim.digits == [(call_id, "201", "12#*")]

    async def test_forwarding(self, lab: Lab) -> None:
        self.needs(lab, "forwarding")
        ws, bob = await lab.ws("alice"), await lab.ws("bob")
        body = await lab.users["alice"].put("/api/v1/devices/forwarding", {"type": "immediate", "number": "202"})
        assert body == {"device": "201", "type": "immediate", "number": "202"}
        await ws.expect("device.forwarding", forwarding={"immediate": "202"})
        assert (await lab.calls("alice"))["forwarding"] == {"immediate": "202"}
        call_id = await lab.sim.incoming_call(EXTERNAL, "201")
        await bob.expect("call.delivered", call={"call_id": call_id, "state": "alerting"})
        await ws.expect("call.diverted", call={"call_id": call_id})
        assert lab.sim.calls[call_id].connections == {EXTERNAL: "connected", "202": "alerting"}
        mark = ws.mark()
        await lab.users["alice"].put("/api/v1/devices/forwarding", {"type": "immediate", "number": None})
        await ws.expect("device.forwarding", lambda d: d["forwarding"] == {}, after=mark)
        assert (await lab.calls("alice"))["forwarding"] == {}
        assert lab.sim.devices["201"].forwarding == {}

    async def test_forwarding_busy_and_no_answer(self, lab: Lab) -> None:
        self.needs(lab, "forwarding", "answer")
        carol = await lab.ws("carol")
        await lab.users["alice"].put("/api/v1/devices/forwarding", {"type": "no_answer", "number": "203"})
        await lab.users["alice"].put("/api/v1/devices/forwarding", {"type": "busy", "number": "203"})
        assert lab.sim.devices["201"].forwarding == {"forwardNoAns": "203", "forwardBusy": "203"}
        first = await lab.sim.incoming_call(EXTERNAL, "201")
        await carol.expect("call.delivered", call={"call_id": first, "state": "alerting"}, timeout=3)  # after no_answer_after
        lab.sim.hang_up(EXTERNAL, first)
        await carol.expect("call.cleared", call={"call_id": first})
        busy = await self.incoming_answered(lab, caller="0155171889")
        second = await lab.sim.incoming_call("0498765432", "201")
        await carol.expect("call.delivered", call={"call_id": second, "state": "alerting"})
        assert busy != second

    async def test_do_not_disturb(self, lab: Lab) -> None:
        self.needs(lab, "do_not_disturb")
        ws = await lab.ws("alice")
        assert (await lab.users["alice"].put("/api/v1/devices/do-not-disturb", {"on": True})) == {"device": "201", "on": True}
        await ws.expect("device.do_not_disturb", on=True)
        assert (await lab.calls("alice"))["do_not_disturb"] is True
        mark = ws.mark()
        call_id = await lab.sim.incoming_call(EXTERNAL, "201")
        await ws.expect_no("call.delivered", after=mark, within=0.3)
        assert call_id not in lab.sim.calls or "201" not in lab.sim.calls[call_id].connections
        await lab.users["alice"].put("/api/v1/devices/do-not-disturb", {"on": False})
        await ws.expect("device.do_not_disturb", on=False)
        assert lab.sim.devices["201"].dnd is False

    async def test_snapshot_shows_a_call_in_progress_when_supervision_starts(self, lab: Lab) -> None:
        self.needs(lab, "snapshot")
        call_id = lab.sim.dial(EXTERNAL, "204")
        lab.sim.answer("204", call_id)
        dave = await lab.admin.create("users", domain_id=lab.domain_id, login="dave")
        await lab.admin.create("devices", user_id=dave["id"], number="204")
        lab.users["dave"] = user_client(lab.server, dave["id"])
        lab.numbers["dave"] = "204"
        items = await lab.wait_calls("dave", lambda items: bool(items))
        assert [(c["call_id"], c["state"], c["remote"]) for c in items] == [(call_id, "connected", EXTERNAL)]

    async def test_link_loss_reconnects_and_resynchronises(self, lab: Lab) -> None:
        self.needs(lab, "monitor", "snapshot")
        admin, alice, bob = await lab.ws("admin"), await lab.ws("alice"), await lab.ws("bob")
        ended = lab.sim.dial(EXTERNAL, "202")
        lab.sim.answer("202", ended)
        await bob.expect("call.established", call={"call_id": ended})
        lab.sim.refuse_connections = True
        await lab.sim.drop_links()
        await admin.expect("link.down", link=lab.link)
        lab.sim.hang_up(EXTERNAL, ended)        # ends while the link is down
        started = lab.sim.dial("0498765432", "201")
        lab.sim.answer("201", started)          # starts while the link is down
        lab.sim.refuse_connections = False
        await admin.expect("link.up", link=lab.link, timeout=5)
        await lab.wait_supervised()
        await bob.expect("call.cleared", call={"call_id": ended})
        appeared = await alice.expect("call.snapshot", call={"call_id": started})
        assert appeared["call"]["state"] == "connected" and appeared["call"]["remote"] == "0498765432"
        assert lab.driver_obj.reconnects == 1
        mark = bob.mark()
        call_id = await lab.sim.incoming_call(EXTERNAL, "202")
        await bob.expect("call.delivered", after=mark, call={"call_id": call_id, "state": "alerting"})

    async def test_garbage_on_the_link_is_skipped(self, lab: Lab) -> None:
        self.needs(lab, "monitor")
        admin, alice = await lab.ws("admin"), await lab.ws("alice")
        lab.sim.send_garbage()
        call_id = await lab.sim.incoming_call(EXTERNAL, "201")
        await alice.expect("call.delivered", call={"call_id": call_id, "state": "alerting"})
        stats = lab.driver_obj.link_stats()
        assert stats["framing_errors"] + stats["codec_errors"] >= 1 and stats["reconnects"] == 0
        assert not admin.matching("link.down")

    async def test_undeclared_capabilities_answer_501(self, lab: Lab) -> None:
        routes = {
            "hold": ("POST", "/api/v1/calls/1/hold", {}), "deflect": ("POST", "/api/v1/calls/1/deflect", {"number": "202"}),
            "dtmf": ("POST", "/api/v1/calls/1/dtmf", {"digits": "1"}), "conference": ("POST", "/api/v1/calls/1/conference", {"other_call_id": "2"}),
            "forwarding": ("PUT", "/api/v1/devices/forwarding", {"type": "immediate", "number": "202"}),
            "do_not_disturb": ("PUT", "/api/v1/devices/do-not-disturb", {"on": True}),
        }
        missing = [c for c in routes if c not in lab.capabilities]
        if not missing:
            pytest.skip(f"the {lab.driver} driver declares every capability checked here")
        for capability in missing:
            method, path, body = routes[capability]
            answer = await lab.users["alice"].call(method, path, body, status=501)
            assert lab.driver in answer["detail"] and capability in answer["detail"]
