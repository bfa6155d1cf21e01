"""Which PBX link supervises which device (guide 4.1).

Each link has a capacity and, optionally, the sites it serves explicitly (``"1.*"`` for
every site of center 1, ``"2.1"`` for one site).  For each device, in order:

1. *explicit mode*: the links whose sites match the device's site are candidates; the
   least loaded one with room takes the device;
2. if all of them are saturated, the device *overflows* to the other links, least loaded
   first;
3. *implicit mode*: a device whose site no link names goes to the least loaded link with
   room;
4. when no link has room the device is not supervised (and says why).

A link may take only some device protocols (``LinkSlot.protocols``: an A5000's VTI-XML
links take ``VTIXML`` devices, its CSTA link ``CSTA`` ones such as the I2052, guide 4);
the other links are no candidates for a device of another protocol.

"Least loaded" is the lowest fill ratio (current / capacity), then the fewest devices,
then the link name, so results are deterministic.  A device keeps its link while that
link has it (no reshuffling when others come and go).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

import attrs


@attrs.define
class LinkSlot:
    name: str
    capacity: int
    sites: tuple[str, ...] = ()
    current: int = 0
    up: bool = True
    protocols: tuple[str, ...] = ()
    """Device protocols the link supervises (``"VTIXML"``, ``"CSTA"``); empty: any."""

    @property
    def free(self) -> int:
        return self.capacity - self.current

    def accepts(self, protocol: str | None) -> bool:
        return not self.protocols or protocol_key(protocol) in {protocol_key(p) for p in self.protocols}

    def serves(self, site: str | None) -> bool:
        if not site:
            return False
        return any(fnmatch.fnmatchcase(site, pattern) for pattern in self.sites)


@attrs.frozen
class DeviceSlot:
    number: str
    site: str | None = None
    protocol: str | None = None
    """The device's supervision protocol (guide 3.3.4); only links accepting it are candidates."""


def protocol_key(protocol: str | None) -> str:
    """``"VTI-XML"``, ``"vtixml"`` and ``"VTIXML"`` name the same protocol."""
    return "".join(ch for ch in (protocol or "").upper() if ch.isalnum())


def _least_loaded(links: Iterable[LinkSlot]) -> LinkSlot | None:
    room = [link for link in links if link.free > 0]
    if not room:
        return None
    return min(room, key=lambda link: (link.current / link.capacity, link.current, link.name))


def choose(device: DeviceSlot, links: list[LinkSlot]) -> LinkSlot | None:
    links = [link for link in links if link.accepts(device.protocol)]
    explicit = [link for link in links if link.serves(device.site)]
    if explicit:
        return _least_loaded(explicit) or _least_loaded([link for link in links if link not in explicit])
    return _least_loaded(links)


def allocate(devices: Iterable[DeviceSlot], links: list[LinkSlot], current: dict[str, str] | None = None) -> dict[str, str | None]:
    """Assign devices to links; ``current`` assignments are kept while their link exists.

    Returns ``{device number: link name or None}`` and updates each ``LinkSlot.current``.
    """
    by_name = {link.name: link for link in links}
    current = current or {}
    out: dict[str, str | None] = {}
    pending: list[DeviceSlot] = []
    for device in devices:
        kept = current.get(device.number)
        if kept in by_name and by_name[kept].free > 0 and by_name[kept].accepts(device.protocol):
            by_name[kept].current += 1
            out[device.number] = kept
        else:
            pending.append(device)
    for device in pending:
        link = choose(device, links)
        if link is not None:
            link.current += 1
        out[device.number] = link.name if link else None
    return out
