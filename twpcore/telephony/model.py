"""The kernel's call model: what each supervised device is doing, from normalized PBX events.

``CallModel.apply(event)`` updates the calls of the event's device and returns the
changes worth telling clients (``Change`` values); ``reconcile(device, snapshot)``
aligns the model with a snapshot taken after a link came back, so a call that ended
while the link was down is cleared (no ghost), a call that continued is kept without a
duplicated event, and a call that started meanwhile appears.

A device keeps at most ``max_calls_per_device`` calls (``[limits] calls_per_device``): a
PBX that reports more (a broken or hostile one, a lost clear) makes the model drop the
call it heard of least recently, with ``call.cleared`` and cause ``call_limit``.
"""

from __future__ import annotations

import time
from typing import Any

import attrs

from twpcore.telephony.events import CallSnapshot, PbxEvent

PRESENCE = ("idle", "ringing", "busy")


@attrs.define(eq=False)
class DeviceCall:
    """One call as seen from one device."""

    call_id: str
    device: str
    state: str = "initiated"
    direction: str | None = None
    """``incoming`` or ``outgoing``, when known."""
    remote: str | None = None
    """The far party's number."""
    remote_state: str | None = None
    """``alerting`` while the far end rings on an outgoing call."""
    started_at: float = attrs.field(factory=time.time)
    answered_at: float | None = None
    cause: str | None = None
    conference: bool = False
    touched: int = attrs.field(default=0, repr=False)
    """When the PBX last spoke of the call (the model's event counter): the stalest goes first past the limit."""

    def as_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id, "device": self.device, "state": self.state, "direction": self.direction,
            "remote": self.remote, "remote_state": self.remote_state, "started_at": self.started_at,
            "answered_at": self.answered_at, "cause": self.cause, "conference": self.conference,
        }


@attrs.frozen
class Change:
    """Something clients should hear about: ``call.<type>``, ``device.<type>`` or ``presence.changed``."""

    type: str
    device: str
    data: dict[str, Any]


CALL_LIMIT = "call_limit"
"""Cause of ``call.cleared`` when a call is dropped to keep the device within its call limit."""


class CallModel:
    def __init__(self, max_calls_per_device: int = 32) -> None:
        self.max_calls_per_device = max_calls_per_device
        self._tick = 0
        self.calls: dict[str, dict[str, DeviceCall]] = {}
        self.forwarding: dict[str, dict[str, str]] = {}
        self.dnd: dict[str, bool] = {}
        self.presence: dict[str, str] = {}

    def calls_of(self, device: str) -> list[DeviceCall]:
        return sorted(self.calls.get(device, {}).values(), key=lambda c: c.started_at)

    def call(self, device: str, call_id: str) -> DeviceCall | None:
        return self.calls.get(device, {}).get(call_id)

    def forget(self, device: str, cause: str = "monitor_lost") -> list[Change]:
        """The device is no longer supervised, or its calls are no longer known: drop them (and say so)."""
        changes = [Change("call.cleared", device, {"call": {**c.as_json(), "state": "cleared"}, "cause": cause}) for c in self.calls_of(device)]
        self.calls.pop(device, None)
        return changes + self._presence(device)

    # -- events ----------------------------------------------------------------------
    def apply(self, ev: PbxEvent) -> list[Change]:
        device = ev.device
        if ev.type == "forwarding":
            fw = dict(self.forwarding.get(device, {}))
            info = ev.forwarding or {}
            ftype = str(info.get("type", "immediate"))
            if info.get("on", True) and info.get("number"):
                fw[ftype] = str(info["number"])
            else:
                fw.pop(ftype, None)
            self.forwarding[device] = fw
            return [Change("device.forwarding", device, {"forwarding": fw})]
        if ev.type == "do_not_disturb":
            self.dnd[device] = bool(ev.dnd)
            return [Change("device.do_not_disturb", device, {"on": bool(ev.dnd)})]
        if ev.type == "monitor_lost":
            return [Change("device.monitor_lost", device, {"cause": ev.cause})] + self.forget(device)
        if ev.type == "message_waiting":
            if ev.messages is not None and ev.messages <= 0:
                return []  # the mailbox was emptied: nothing to announce
            return [Change("device.voicemail", device, {"caller": ev.calling, "caller_name": None, "new_messages": ev.messages})]
        if ev.call_id is None:
            return []
        calls = self.calls.setdefault(device, {})
        if ev.type in ("transferred", "conferenced"):
            return self._merge(ev, calls)
        call = calls.get(ev.call_id)
        created = call is None
        dropped: list[Change] = []
        if call is None:
            if ev.type == "cleared":
                return []  # never knew it: nothing to clear
            dropped = self._make_room(device, calls)
            call = DeviceCall(ev.call_id, device)
            calls[ev.call_id] = call
        self._touch(call)
        before = (call.state, call.remote, call.remote_state)
        self._update(call, ev)
        if call.state == "cleared":
            del calls[ev.call_id]
        if not created and before == (call.state, call.remote, call.remote_state) and ev.type not in ("diverted", "failed"):
            return self._presence(device)  # a repeated event: nothing new for clients
        data: dict[str, Any] = {"call": call.as_json(), "cause": ev.cause}
        if ev.type == "diverted" and ev.other and ev.other != device:
            data["to"] = ev.other  # where the call went (forwarded, deflected, picked up)
        return dropped + [Change(f"call.{ev.type}", device, data)] + self._presence(device)

    def _touch(self, call: DeviceCall) -> None:
        self._tick += 1
        call.touched = self._tick

    def _make_room(self, device: str, calls: dict[str, DeviceCall]) -> list[Change]:
        """Drop the stalest calls of ``device`` until one more fits within the limit."""
        changes = []
        while calls and len(calls) >= self.max_calls_per_device:
            stalest = min(calls.values(), key=lambda c: c.touched)
            del calls[stalest.call_id]
            stalest.state = "cleared"
            changes.append(Change("call.cleared", device, {"call": stalest.as_json(), "cause": CALL_LIMIT}))
        return changes

    def _update(self, call: DeviceCall, ev: PbxEvent) -> None:
        device = ev.device
        if call.direction is None:
            if ev.calling == device or ev.type == "originated":
                call.direction = "outgoing"
            elif ev.called == device or ev.other == device:
                call.direction = "incoming"
        far = ev.called if call.direction == "outgoing" else ev.calling
        if far and far != device:
            call.remote = far
        if ev.cause:
            call.cause = ev.cause
        t = ev.type
        if t == "originated":
            call.state = "initiated"
        elif t == "delivered":
            # ``other`` is the alerting device when the driver knows it: the call rings
            # here, or at the far end while this device waits (outgoing, consultation,
            # a transferred caller hearing the new destination ring).
            rings_here = ev.other == device if ev.other else call.direction != "outgoing"
            if rings_here:
                call.state = "alerting"
            else:
                call.state = ev.state or (call.state if call.state in ("connected", "held") else "initiated")
                call.remote_state = "alerting"
                if call.direction != "outgoing" and ev.other:
                    call.remote = ev.other
        elif t == "established":
            call.state, call.remote_state = "connected", None
            call.answered_at = call.answered_at or time.time()
            if ev.other and ev.other != device:
                call.remote = ev.other
        elif t == "held":
            call.state = ev.state or "held"
        elif t == "retrieved":
            call.state = "connected"
        elif t == "queued":
            call.state = "queued"
        elif t == "failed":
            call.state = "failed"
        elif t == "diverted":
            if ev.other == device:  # diverted to us
                call.state = ev.state or "alerting"
                call.direction = call.direction or "incoming"
            else:  # the call left this device
                call.state = "cleared"
        elif t == "cleared":
            call.state = "cleared"
        if ev.state and t not in ("diverted",):
            call.state = ev.state

    def _merge(self, ev: PbxEvent, calls: dict[str, DeviceCall]) -> list[Change]:
        """Transfer and conference: old calls of the device end or become the new call."""
        device = ev.device
        olds = [calls.pop(cid) for cid in ev.old_call_ids if cid in calls]
        changes: list[Change] = []
        if ev.state == "cleared" or (ev.type == "transferred" and ev.calling == device and not ev.state):
            # The transferring device leaves both calls.
            for old in olds:
                old.state = "cleared"
                changes.append(Change(f"call.{ev.type}", device, {"call": old.as_json(), "cause": ev.cause or ev.type}))
            return changes + self._presence(device)
        assert ev.call_id is not None
        if ev.call_id not in calls and not olds:
            changes = self._make_room(device, calls)
        call = calls.get(ev.call_id) or (olds[0] if olds else DeviceCall(ev.call_id, device, direction=None))
        self._touch(call)
        call.call_id = ev.call_id
        call.state = ev.state or "connected"
        call.remote_state = None
        if ev.type == "conferenced":
            call.conference = True
            call.remote = "conference"
        elif ev.other and ev.other != device:
            call.remote = ev.other
        calls[ev.call_id] = call
        return (
            changes
            + [Change(f"call.{ev.type}", device, {"call": call.as_json(), "cause": ev.cause, "old_call_ids": list(ev.old_call_ids)})]
            + self._presence(device)
        )

    def _presence(self, device: str) -> list[Change]:
        states = {c.state for c in self.calls.get(device, {}).values()}
        if not states:
            presence = "idle"
        elif states <= {"alerting"}:
            presence = "ringing"
        else:
            presence = "busy"
        if self.presence.get(device, "idle") == presence:
            self.presence[device] = presence
            return []
        self.presence[device] = presence
        return [Change("presence.changed", device, {"presence": presence})]

    # -- reconciliation ------------------------------------------------------------
    def reconcile(self, device: str, snapshot: list[CallSnapshot]) -> list[Change]:
        """Align the device's calls with the PBX's snapshot (after a reconnect)."""
        calls = self.calls.setdefault(device, {})
        seen = {s.call_id: s for s in snapshot}
        changes: list[Change] = []
        for call_id in [c for c in calls if c not in seen]:
            gone = calls.pop(call_id)
            gone.state = "cleared"
            changes.append(Change("call.cleared", device, {"call": gone.as_json(), "cause": "ended_while_link_down"}))
        for snap in snapshot:
            call = calls.get(snap.call_id)
            if call is None:
                call = DeviceCall(snap.call_id, device, snap.state, remote=snap.other)
                self._touch(call)
                if snap.state == "connected":
                    call.answered_at = time.time()
                calls[snap.call_id] = call
                changes.append(Change("call.snapshot", device, {"call": call.as_json(), "cause": "found_after_reconnect"}))
            elif call.state != snap.state:
                call.state = snap.state
                changes.append(Change("call.snapshot", device, {"call": call.as_json(), "cause": "state_after_reconnect"}))
        return changes + self._presence(device)
