"""``SipPhoneDriver``: a vendor's SIP phones, supervised over uaCSTA or over HTTP (action URLs and remote control).

The path is chosen per link from the phones' firmware (each vendor says from which version
it offers uaCSTA) or forced with ``control``:

- ``uacsta``: everything of ``UaCstaDriver`` (CSTA XML in SIP INFO); action URLs, when the
  phones also send them, are accepted and counted but not turned into events (uaCSTA
  already reports the calls, twice would be wrong);
- ``http``: ``monitor`` only records the device (the phone reports by action URLs),
  operations are the vendor's remote-control commands (``RemoteControl``); ``make_call``
  returns the call id the phone gives in its outgoing-call action URL.

A vendor subclass sets ``vendor``, ``action_events`` (its event names → ``ActionEvent``) and
``commands`` (its remote-control requests by operation), and decides ``uacsta_from_firmware``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar, Literal

import attrs

from twp_csta.errors import CstaLinkError
from twp_csta.uacsta.driver import UaCstaConfig, UaCstaDriver
from twp_csta.uacsta.phone_http import ActionEvent, ActionUrls, RemoteControl
from twpcore.plugin_api import Duration, PbxEvent, Secret, setting

log = logging.getLogger(__name__)

Command = tuple[str, dict[str, str]]
"""An HTTP remote-control request: path and query parameters."""


@attrs.frozen(kw_only=True)
class SipPhoneConfig(UaCstaConfig):
    """Options of a ``[pbx.links.<name>]`` table of SIP phones (Snom, Yealink): uaCSTA's, plus the HTTP side."""

    firmware: str = setting(help="firmware version of the link's phones, as the phone's status page shows it; picks uaCSTA or HTTP")
    control: Literal["auto", "uacsta", "http"] = setting("auto", help='"auto": from the firmware; "uacsta" or "http" to force one')
    http_port: int = setting(80, min=1, max=65535, help="port of the phones' web server (remote control; the prerequisites open 80)")
    http_username: str | None = setting(None, help="web user of the phones, for remote control")
    http_password: Secret | None = setting(None, help='password of that web user; write it { env = "VAR" }')
    action_url_secret: Secret | None = setting(None, help="key the phones put in every action URL (key=...); requests without it are refused")
    replay_window: Duration = setting(Duration(3600), min=1, max=86400, help="how long a call's action-URL event is remembered to refuse replays")


class SipPhoneDriver(UaCstaDriver):
    """Base of the Snom and Yealink drivers."""

    type_name = "sip_phone"
    Config = SipPhoneConfig
    vendor: ClassVar[str] = ""
    action_events: ClassVar[dict[str, ActionEvent]] = {}

    def __init__(self, config: SipPhoneConfig, context: Any):
        super().__init__(config, context)
        self.config: SipPhoneConfig = config
        self.mode: Literal["uacsta", "http"] = self.choose_mode(config)
        self.remote = RemoteControl(port=config.http_port, username=config.http_username,
                                    password=config.http_password.reveal() if config.http_password is not None else None,
                                    timeout=float(config.request_timeout))
        self.http_devices: set[str] = set()
        self.actions = ActionUrls(
            name=self.name, events=self.action_events,
            secret=config.action_url_secret.reveal() if config.action_url_secret is not None else None,
            phone_host=self._phone_host, supervised=self._supervised, emit=self._emit_action, replay_window=float(config.replay_window),
            repeats=self.repeats)

    # -- vendor hooks ----------------------------------------------------------------
    @classmethod
    def uacsta_from_firmware(cls, firmware: str) -> bool:
        """Does this firmware offer uaCSTA? (``ValueError`` naming the version when the phone cannot be used at all.)"""
        raise NotImplementedError

    #: The vendor's remote-control requests, by operation (``dial``, ``answer``, ``hang_up``, ``hold``,
    #: ``retrieve``, ``keys``): path and query, where ``{number}``, ``{call_id}`` and ``{keys}`` in a value
    #: are replaced by the operation's argument (``("/servlet", {"key": "ASW:{call_id}"})``).
    commands: ClassVar[dict[str, Command]] = {}

    def command(self, operation: str, **values: str) -> Command:
        """The remote-control request of ``operation`` with ``values`` put in (``NotImplementedError`` when the vendor has none)."""
        if operation not in self.commands:
            raise NotImplementedError(f"{type(self).__name__} has no remote-control command for {operation!r}")
        path, query = self.commands[operation]
        return path, {name: template.format(**values) for name, template in query.items()}

    def dial(self, number: str) -> Command:
        return self.command("dial", number=number)

    def answer_command(self, call_id: str) -> Command:
        return self.command("answer", call_id=call_id)

    def hang_up_command(self, call_id: str) -> Command:
        return self.command("hang_up", call_id=call_id)

    def hold_command(self, call_id: str) -> Command:
        return self.command("hold", call_id=call_id)

    def retrieve_command(self, call_id: str) -> Command:
        return self.command("retrieve", call_id=call_id)

    def keys_command(self, keys: str) -> Command:
        return self.command("keys", keys=keys)

    # -- mode ------------------------------------------------------------------------
    @classmethod
    def choose_mode(cls, config: SipPhoneConfig) -> Literal["uacsta", "http"]:
        if config.control != "auto":
            cls.uacsta_from_firmware(config.firmware)  # still refuses a firmware the phones cannot be used with
            return config.control
        return "uacsta" if cls.uacsta_from_firmware(config.firmware) else "http"

    def _phone_host(self, device: str) -> str | None:
        try:
            return self.phone_address(device)[0]
        except CstaLinkError:
            return None

    def _supervised(self, device: str) -> bool:
        if self.mode == "http":
            return device in self.http_devices
        return device in self.sessions

    def _emit_action(self, event: PbxEvent) -> None:
        if self.mode == "http":
            self.emit(event)

    def link_stats(self) -> dict[str, Any]:
        stats = super().link_stats()
        stats["mode"] = self.mode
        stats["action_urls"] = dict(self.actions.counters)
        if self.mode == "http":
            stats["phones"] = dict.fromkeys(sorted(self.http_devices), "http")
            stats["remote_control_sent"] = len(self.remote.sent)
        return stats

    async def close(self) -> None:
        await self.remote.close()
        await super().close()

    # -- operations ------------------------------------------------------------------
    async def _http(self, device: str, command: Command) -> str:
        host, _ = self.phone_address(device)
        path, params = command
        return await self.remote.get(host, path, params)

    async def monitor(self, device: str) -> None:
        if self.mode == "uacsta":
            await super().monitor(device)
            return
        self.phone_address(device)  # a clear error when the link knows no phone for the device
        self.http_devices.add(device)

    async def stop_monitor(self, device: str) -> None:
        if self.mode == "uacsta":
            await super().stop_monitor(device)
            return
        self.http_devices.discard(device)

    async def make_call(self, device: str, number: str) -> str:
        if self.mode == "uacsta":
            return await super().make_call(device, number)
        waiting = self.actions.next_outgoing(device, float(self.config.request_timeout))
        task = asyncio.ensure_future(waiting)
        try:
            await self._http(device, self.dial(number))
        except BaseException:
            task.cancel()
            raise
        return await task

    async def answer(self, device: str, call_id: str) -> None:
        if self.mode == "uacsta":
            return await super().answer(device, call_id)
        await self._http(device, self.answer_command(call_id))

    async def hang_up(self, device: str, call_id: str) -> None:
        if self.mode == "uacsta":
            return await super().hang_up(device, call_id)
        await self._http(device, self.hang_up_command(call_id))

    async def hold(self, device: str, call_id: str) -> None:
        if self.mode == "uacsta":
            return await super().hold(device, call_id)
        await self._http(device, self.hold_command(call_id))

    async def retrieve(self, device: str, call_id: str) -> None:
        if self.mode == "uacsta":
            return await super().retrieve(device, call_id)
        await self._http(device, self.retrieve_command(call_id))

    async def press_keys(self, device: str, keys: str) -> None:
        """Press keys on the device's phone by remote control (whatever the mode): ``"F1;ENTER"`` (Snom), ``"OK"`` (Yealink)."""
        keys = keys.strip()
        if not keys or len(keys) > 200 or not all(part.strip() for part in keys.split(";")):
            raise ValueError(f'keys: expected key names separated by ";" (at most 200 characters), got {keys[:60]!r}')
        await self._http(device, self.keys_command(keys))
