"""The ``wildix`` PBX driver: a link fed by the Wildix pop-up URL instead of a CTI socket.

Each user's Wildix pop-up URL points at TWP (``/api/v1/wildix/<link>/popup``).  A hit from
the Ringing (incoming) or Call generation (outgoing) trigger starts a call at the user's
device; a hit from the Answer trigger answers it.  Wildix never reports the end of a
call, so the driver ends it itself: an answered call at once (its duration is unknown,
so 0), a ringing call that no Answer hit follows after ``ring_timeout`` (missed, or
unanswered for an outgoing call).  The kernel does the rest as for any PBX: call events
on the user's WebSocket with the caller found in the user's directories, then the
call-log entry (with its cost when the domain has a price list).

The link controls nothing on the PBX: it declares ``monitor`` only.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets

import attrs

from twp_wildix.popup import PopupHit, user_key
from twpcore.plugin_api import CallSnapshot, Duration, InstanceContext, PbxDriver, PbxEvent, Secret, setting


@attrs.frozen(kw_only=True)
class WildixConfig:
    """Options of a ``[pbx.links.<name>]`` table with ``driver = "wildix"``."""

    secret: Secret = setting(help="secret each user's pop-up key is derived from (GET /api/v1/wildix/<link>/popup-urls lists the URLs); "
                                  'write { env = "VARIABLE" }')
    ring_timeout: Duration = setting(Duration(60), min=0.01, max=3600,
                                     help="how long a ringing call waits for an Answer pop-up before it is logged as missed")
    capacity: int = setting(5000, min=1, max=100000, help="most devices (Wildix users) this link takes")


@attrs.define(eq=False)
class _Ringing:
    call_id: str
    hit: PopupHit
    timer: asyncio.TimerHandle | None = None


class WildixDriver(PbxDriver):
    """Wildix PBX through its per-user pop-up URL (screen pop, reverse lookup, call log; no call control)."""

    type_name = "wildix"
    Config = WildixConfig
    capabilities = frozenset({"monitor"})
    description = "Wildix PBX: the per-user pop-up URL reports calls (no call control)"

    config: WildixConfig

    def __init__(self, config: WildixConfig, context: InstanceContext):
        super().__init__(config, context)
        self.capacity = config.capacity
        self.monitored: set[str] = set()
        self.hits = 0
        """Pop-up hits turned into call events."""
        self.refused = 0
        """Pop-up hits refused (wrong key, unknown user, unreadable URL)."""
        self._ringing: dict[tuple[str, str | None, str], _Ringing] = {}
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(4)
        self._up = False

    @property
    def connected(self) -> bool:
        return self._up

    async def setup(self) -> None:
        self._up = True
        self.link_up()

    async def close(self) -> None:
        self._up = False
        for ringing in self._ringing.values():
            if ringing.timer is not None:
                ringing.timer.cancel()
        self._ringing.clear()

    async def monitor(self, device: str) -> None:
        self.monitored.add(device)

    async def stop_monitor(self, device: str) -> None:
        self.monitored.discard(device)

    async def snapshot(self, device: str) -> list[CallSnapshot]:
        return []  # Wildix tells nothing of calls in progress: after a restart there are none

    # -- the pop-up URL ------------------------------------------------------------------
    def key_of(self, user_number: str) -> str:
        """The key of a user's pop-up URL on this link."""
        return user_key(self.config.secret.reveal(), self.name, user_number)

    def report(self, hit: PopupHit) -> str:
        """Turn one pop-up hit into call events at the user's device; the call id."""
        self.hits += 1
        key = (hit.user_number, hit.number, hit.direction)
        ringing = self._ringing.get(key)
        if hit.event == "ringing":
            if ringing is not None:
                return ringing.call_id  # the same pop-up opened again (a reload): the same call
            call_id = f"wx{self._prefix}-{next(self._ids)}"
            self._start(hit, call_id)
            entry = self._ringing[key] = _Ringing(call_id, hit)
            entry.timer = asyncio.get_running_loop().call_later(float(self.config.ring_timeout), self._unanswered, key, call_id)
            return call_id
        if ringing is not None:
            del self._ringing[key]
            if ringing.timer is not None:
                ringing.timer.cancel()
            call_id = ringing.call_id
        else:
            call_id = f"wx{self._prefix}-{next(self._ids)}"
            self._start(hit, call_id)
        device, far = hit.user_number, hit.number
        calling, called = (far, device) if hit.direction == "incoming" else (device, far)
        self.emit(PbxEvent("established", device, call_id, state="connected", calling=calling, called=called, other=far))
        self.emit(PbxEvent("cleared", device, call_id, state="cleared", calling=calling, called=called, cause="normal"))
        return call_id

    def _start(self, hit: PopupHit, call_id: str) -> None:
        device, far = hit.user_number, hit.number
        if hit.direction == "incoming":
            self.emit(PbxEvent("delivered", device, call_id, state="alerting", calling=far, called=device, other=device))
        else:
            self.emit(PbxEvent("originated", device, call_id, state="initiated", calling=device, called=far))
            self.emit(PbxEvent("delivered", device, call_id, state="initiated", calling=device, called=far, other=far))

    def _unanswered(self, key: tuple[str, str | None, str], call_id: str) -> None:
        ringing = self._ringing.get(key)
        if ringing is None or ringing.call_id != call_id:
            return
        del self._ringing[key]
        device, far = ringing.hit.user_number, ringing.hit.number
        calling, called = (far, device) if ringing.hit.direction == "incoming" else (device, far)
        self.emit(PbxEvent("cleared", device, call_id, state="cleared", calling=calling, called=called))
