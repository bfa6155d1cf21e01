"""Plugin ``pbxsim``: a simulated PBX inside the server, the PBX of the ``make run`` demo.

It does nothing unless the config has a ``[plugins.pbxsim]`` table::

    [plugins.pbxsim]
    listen = "127.0.0.1:18882"     # where the simulated switch listens (CSTA XML, J.2 framing)
    traffic_interval = "30s"       # a demo call every ~30 s; 0 for none
    devices = ["201-203"]          # internal devices; other numbers are the outside world

With it, ``twp_startup`` starts ``twp_csta.sim.PbxSimulator`` in the server's
event loop and, when ``traffic_interval`` is not 0, ``DemoTraffic``: calls between the
devices and a few outside numbers, answered and hung up by simulated people.  A
``[pbx.links.demo]`` with ``driver = "mxone"``, ``host = "127.0.0.1"`` and the same port
supervises the devices like a real PBX link.

The plugin also registers the ``pbxsim`` PBX driver: the toolkit's CSTA XML driver plus
the optional ``subscribers`` operation (users import, guide 7.2), which asks the switch
for its subscriber list with ``GetSwitchingFunctionDevices`` and reads the
``SwitchingFunctionDevices`` segments the simulator answers with.  The subscribers
(number and display name) come from ``subscribers = { "201" = "Alice Martin" }``.

Start-up order: PBX link instances start *before* ``twp_startup`` hooks, so the link's
first connection is refused; its driver answers ``NotReady`` with its own reconnection
delay (``reconnect_min``, 1 s by default) and the kernel retries, by which time the
simulator listens.  Starting the simulator earlier would need a hook that runs before
instances, which the kernel does not have for good reason (plugins start after the
store and instances are ready); the retry is the path a real PBX that boots after TWP
takes too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Literal

import attrs

from twp_csta.driver import CSTA_CAPABILITIES, CstaXmlConfig, CstaXmlDriver
from twp_csta.errors import CstaTimeout
from twp_csta.sim import DemoTraffic, PbxSimulator, SimConfig, expand_devices
from twp_csta.xml.codec import Message, as_list, build, device_text
from twpcore.plugin_api import (
    ConfigErrors,
    ConfigProblem,
    Duration,
    InstanceContext,
    PluginContext,
    Register,
    hookimpl,
    setting,
    structure,
)

TWP_PLUGIN_API = "1.0"

log = logging.getLogger(__name__)

PLUGIN = "pbxsim"


@attrs.frozen
class Config:
    """Options of ``[plugins.pbxsim]``."""

    listen: str = setting("127.0.0.1:18882", help='"host:port" the simulated PBX listens on')
    traffic_interval: Duration = setting(Duration(30), min=0, max=86400, help="average time between two demo calls; 0 disables them")
    devices: list[str] = setting(factory=lambda: ["201-203"], help='internal devices, ranges allowed ("201-210")')
    externals: list[str] = setting(factory=lambda: ["0612345678", "0155171889", "0498765432"], help="outside numbers of the demo calls")
    framing: Literal["j2", "nul"] = setting("j2", help="framing of the simulated CSTA XML interface")
    edition: Literal[3, 4, 5] = setting(4, help="ECMA-323 edition the simulator writes")
    require_session: bool = setting(False, help="refuse services until an ECMA-354 session is started")
    answer_after: Duration = setting(Duration(8), min=0, max=3600, help="simulated people answer a ringing internal phone after this")
    external_answer_after: Duration = setting(Duration(3), min=0, max=3600, help="outside numbers answer after this")
    ring_timeout: Duration = setting(Duration(45), min=1, max=3600, help="an unanswered call is cleared after this")
    max_call_duration: Duration = setting(Duration(120), min=1, max=86400, help="outside parties hang up after talking this long")
    subscribers: dict[str, str] = setting(factory=dict, help='the subscriber list a users import reads: { "201" = "Alice Martin" }')

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host or "127.0.0.1", int(port)


@attrs.define(eq=False)
class Running:
    """What ``twp_startup`` started, kept in the plugin's ``context.state``."""

    sim: PbxSimulator
    traffic: DemoTraffic | None


def read_config(source: str, options: dict[str, Any] | None) -> Config | None:
    """Check ``[plugins.pbxsim]``; None when the table is absent (the plugin stays idle)."""
    if options is None:
        return None
    path = f"plugins.{PLUGIN}"
    config = structure(Config, options, source=source, path=path)
    _, _, port = config.listen.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigErrors([ConfigProblem(source, f"{path}.listen", f'expected "host:port" such as "127.0.0.1:18882", got "{config.listen}"')])
    try:
        expand_devices(config.devices)
    except ValueError as exc:
        raise ConfigErrors([ConfigProblem(source, f"{path}.devices", str(exc))]) from None
    return config


@hookimpl
def twp_register_options(register: Register[Any]) -> None:
    register(read_config)  # `twp config check` reports a bad table; twp_startup gets the result as context.options


@hookimpl
async def twp_startup(context: PluginContext) -> None:
    config = context.options  # what read_config returned; None without a [plugins.pbxsim] table
    if config is None:
        return
    host, port = config.address
    sim = PbxSimulator(SimConfig(
        host=host, port=port, framing=config.framing, edition=config.edition, devices=tuple(config.devices),
        require_session=config.require_session, external_default="answer", external_answer_after=float(config.external_answer_after),
        internal_answer_after=float(config.answer_after), ring_timeout=float(config.ring_timeout),
        max_call_duration=float(config.max_call_duration), subscribers=dict(config.subscribers),
    ))
    await sim.start()
    traffic = None
    if config.traffic_interval > 0:
        traffic = DemoTraffic(sim, expand_devices(config.devices), interval=float(config.traffic_interval),
                              externals=config.externals, answer_after=min(float(config.answer_after), 4.0))
        traffic.start()
    context.state = Running(sim, traffic)
    log.info("simulated PBX listening on %s:%s%s", host, sim.port,
             f", a demo call every ~{config.traffic_interval:g} s" if traffic else "")


@hookimpl
async def twp_shutdown(context: PluginContext) -> None:
    running, context.state = context.state, None
    if not isinstance(running, Running):
        return
    if running.traffic is not None:
        await running.traffic.stop()
    await running.sim.stop()


def simulator(context: PluginContext) -> PbxSimulator | None:
    """The simulator this plugin started in a server, if any (tests: ``simulator(kernel.plugin_context("pbxsim"))``)."""
    running = context.state
    return running.sim if isinstance(running, Running) else None


# -- the pbxsim driver -------------------------------------------------------------

@attrs.frozen(kw_only=True)
class PbxSimLinkConfig(CstaXmlConfig):
    """Options of a ``[pbx.links.<name>]`` table with ``driver = "pbxsim"``."""

    port: int = setting(18882, min=1, max=65535, help="TCP port of the simulated PBX (the listen port of [plugins.pbxsim])")


class PbxSimDriver(CstaXmlDriver):
    """The simulated PBX over CSTA XML, with its subscriber list (``subscribers``)."""

    type_name = "pbxsim"
    Config = PbxSimLinkConfig
    capabilities = CSTA_CAPABILITIES | {"subscribers"}
    description = "the built-in PBX simulator over CSTA XML, with its subscriber list for users import"

    #: Subscriber-list transfers kept at once (a switch that sends segments nobody asked for cannot fill memory).
    MAX_TRANSFERS = 8

    def __init__(self, config: PbxSimLinkConfig, context: InstanceContext):
        super().__init__(config, context)
        self._segments: dict[str, list[Message]] = {}
        self._segment_arrived = asyncio.Event()

    def _on_message(self, gen: int, message: Message) -> None:
        if message.name == "SwitchingFunctionDevices":
            xref = message.text("serviceCrossRefID") or ""
            if xref in self._segments or len(self._segments) < self.MAX_TRANSFERS:
                self._segments.setdefault(xref, []).append(message)
                self._segment_arrived.set()
            return
        super()._on_message(gen, message)

    async def subscribers(self) -> list[dict[str, Any]]:
        """Every subscriber of the switch as ``{"number", "name"}``."""
        response = await self._request("subscribers", build("GetSwitchingFunctionDevices"))
        xref = response.text("serviceCrossRefID") or ""
        deadline = time.monotonic() + float(self.config.request_timeout)
        try:
            while True:
                got = self._segments.get(xref, [])
                if any(m.text("lastSegment") == "true" for m in got):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CstaTimeout("subscribers (the last SwitchingFunctionDevices segment)", float(self.config.request_timeout), link=self.name)
                self._segment_arrived.clear()
                try:
                    await asyncio.wait_for(self._segment_arrived.wait(), left)
                except TimeoutError:
                    pass
        finally:
            segments = self._segments.pop(xref, [])
        out = []
        for message in sorted(segments, key=lambda m: int(m.text("segmentID") or 0)):
            for entry in as_list(message.get("deviceList/deviceEntry")):
                if isinstance(entry, dict):
                    number = device_text(entry.get("deviceID"))
                    if number:
                        out.append({"number": number, "name": str(entry.get("deviceName") or "")})
        return out


@hookimpl
def twp_register_pbx_drivers(register: Register[type[PbxSimDriver]]) -> None:
    register(PbxSimDriver)
