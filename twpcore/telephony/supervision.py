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

    @property
    def free(self) -> int:
        return self.capacity - self.current

    def serves(self, site: str | None) -> bool:
        if not site:
            return False
        return any(fnmatch.fnmatchcase(site, pattern) for pattern in self.sites)


@attrs.frozen
class DeviceSlot:
    number: str
    site: str | None = None


def _least_loaded(links: Iterable[LinkSlot]) -> LinkSlot | None:
    room = [link for link in links if link.free > 0]
    if not room:
        return None
    return min(room, key=lambda link: (link.current / link.capacity, link.current, link.name))


def choose(device: DeviceSlot, links: list[LinkSlot]) -> LinkSlot | None:
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
        if kept in by_name and by_name[kept].free > 0:
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
