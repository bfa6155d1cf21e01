"""What drivers tell the kernel: normalized PBX events and call snapshots.

A driver turns its protocol's messages into ``PbxEvent`` values and hands them to the
sink the kernel gave it (``PbxDriver.emit``).  The kernel's call model never sees a
protocol detail: CSTA, VTI-XML and SIP action URLs all end up as these events.
"""

from __future__ import annotations

from typing import Any, Literal

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
)

CONNECTION_STATES = ("initiated", "alerting", "connected", "held", "queued", "failed", "cleared")
ForwardType = Literal["immediate", "busy", "no_answer"]
FORWARD_TYPES = ("immediate", "busy", "no_answer")


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
