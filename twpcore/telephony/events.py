"""What drivers tell the kernel: normalized PBX events and call snapshots.

A driver turns its protocol's messages into ``PbxEvent`` values and hands them to the
sink the kernel gave it (``PbxDriver.emit``).  The kernel's call model never sees a
protocol detail: CSTA, VTI-XML and SIP action URLs all end up as these events.

Whatever the driver, the kernel bounds what a PBX may put in them (``bounded_event``,
``bounded_snapshot``): identifiers longer than ``MAX_ID_LENGTH`` are refused, since a cut
identifier would name another call; an over-long party number is left out (unknown
rather than wrong); an over-long cause is cut.
"""

from __future__ import annotations

from typing import Any, Literal, TypeGuard

import attrs

EVENT_TYPES = (
    "originated",   # the monitored device starts a call (off-hook / dialing done)
    "delivered",    # a call rings somewhere: at the device (incoming) or at the far end (outgoing)
    "established",  # the call is answered
    "held",
    "retrieved",
    "transferred",
    "conferenced",
    "diverted",     # the call left the device (forwarded, deflected, picked up elsewhere)
    "queued",
    "failed",       # busy, rejected, invalid number...
    "cleared",      # a party hung up: the device's connection is gone
    "forwarding",   # forwarding settings of the device changed
    "do_not_disturb",
    "monitor_lost", # the PBX stopped monitoring the device
    "message_waiting",  # a new voice message waits in the device's mailbox (the voicemail e-mail alert, guide 9.1.5)
)

CONNECTION_STATES = ("initiated", "alerting", "connected", "held", "queued", "failed", "cleared")
ForwardType = Literal["immediate", "busy", "no_answer"]
FORWARD_TYPES = ("immediate", "busy", "no_answer")
MAX_ID_LENGTH = 128
"""Longest device number or call id kept from a PBX (the API's call-id pattern allows as much)."""
MAX_CAUSE_LENGTH = 64
MAX_OLD_CALLS = 16
"""Most ``old_call_ids`` one transfer or conference event may name."""


@attrs.frozen
class PbxEvent:
    """One normalized event about one monitored device."""

    type: str
    """One of ``EVENT_TYPES``."""
    device: str
    """The monitored device the event is reported for (its number)."""
    call_id: str | None = None
    """The PBX's call identifier for the device's connection."""
    state: str | None = None
    """The device's connection state after the event (``CONNECTION_STATES``), when known."""
    calling: str | None = None
    """Calling device number (who started the call)."""
    called: str | None = None
    """Called device number (who was dialed)."""
    other: str | None = None
    """The other party relevant to this event: alerting, answering, diverted-to, transferred-to."""
    cause: str | None = None
    """CSTA-style cause: normal, busy, noAnswer, callForward, transfer, conference, ..."""
    old_call_ids: tuple[str, ...] = ()
    """For transfer and conference: the calls that were merged or replaced."""
    forwarding: dict[str, Any] | None = None
    """For ``forwarding``: ``{"type": "immediate", "number": "204", "on": true}``."""
    dnd: bool | None = None
    """For ``do_not_disturb``: the new state."""
    messages: int | None = None
    """For ``message_waiting``: how many new messages wait, when the PBX says; ``calling`` is who left the last one."""
    link: str = ""
    """The PBX link name; set by the kernel."""

    def __attrs_post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise ValueError(f"unknown PBX event type {self.type!r}; expected one of {', '.join(EVENT_TYPES)}")
        if self.state is not None and self.state not in CONNECTION_STATES:
            raise ValueError(f"unknown connection state {self.state!r}; expected one of {', '.join(CONNECTION_STATES)}")


@attrs.frozen
class CallSnapshot:
    """A call in progress at a device, as the PBX reports it (snapshot after a reconnect)."""

    call_id: str
    state: str
    """The device's connection state (``CONNECTION_STATES``)."""
    other: str | None = None
    """The far party's number, when the PBX gives it."""


def _too_long(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) > MAX_ID_LENGTH


def bounded_event(ev: PbxEvent) -> tuple[PbxEvent | None, str | None]:
    """``ev`` as the kernel keeps it, and what was wrong with it (None if nothing).

    The event comes back None (refused) when its device, call id or an old call id is
    longer than ``MAX_ID_LENGTH`` or it names more than ``MAX_OLD_CALLS`` old calls, or
    its forwarding number is too long; over-long party numbers become None, a cause is cut.
    """
    for name, value in (("device", ev.device), ("call id", ev.call_id)):
        if _too_long(value):
            return None, f"{name} of {len(value)} characters (at most {MAX_ID_LENGTH}): event refused"
    if len(ev.old_call_ids) > MAX_OLD_CALLS or any(_too_long(c) for c in ev.old_call_ids):
        return None, f"old call ids too many or too long (at most {MAX_OLD_CALLS} of {MAX_ID_LENGTH} characters): event refused"
    if ev.forwarding and _too_long(ev.forwarding.get("number")):
        return None, f"forwarding number of {len(ev.forwarding['number'])} characters (at most {MAX_ID_LENGTH}): event refused"
    changes: dict[str, Any] = {}
    problems = []
    for name in ("calling", "called", "other"):
        value = getattr(ev, name)
        if _too_long(value):
            changes[name] = None
            problems.append(f"{name} number of {len(value)} characters (over {MAX_ID_LENGTH}) left out")
    if isinstance(ev.cause, str) and len(ev.cause) > MAX_CAUSE_LENGTH:
        changes["cause"] = ev.cause[:MAX_CAUSE_LENGTH]
        problems.append(f"cause of {len(ev.cause)} characters cut to {MAX_CAUSE_LENGTH}")
    if not changes:
        return ev, None
    return attrs.evolve(ev, **changes), "; ".join(problems)


def bounded_snapshot(snapshot: list[CallSnapshot], limit: int) -> tuple[list[CallSnapshot], str | None]:
    """At most ``limit`` calls of a snapshot, none with an over-long call id, and what was wrong."""
    kept = [s if not _too_long(s.other) else attrs.evolve(s, other=None) for s in snapshot if not _too_long(s.call_id)]
    problems = []
    if len(kept) < len(snapshot):
        problems.append(f"{len(snapshot) - len(kept)} call(s) with a call id over {MAX_ID_LENGTH} characters left out")
    if len(kept) > limit:
        problems.append(f"{len(kept)} calls, only the first {limit} kept (limits.calls_per_device)")
        kept = kept[:limit]
    return kept, "; ".join(problems) or None
