"""The telephony service: links, supervision, the call model, call control.

It binds itself to every PBX driver instance as its event sink, decides which link
supervises which device (``supervision.allocate``), re-monitors and reconciles after a
link comes back, turns model changes into bus events addressed to the device's owner,
and runs call-control requests through the right driver with the dialing plan applied.

What a PBX reports is bounded here, whatever the driver (``[limits]``): over-long
identifiers are refused (``events.bounded_event``), a device keeps at most
``calls_per_device`` calls, and the calls of a link that went down are cleared once it
has been down ``calls_kept_after_link_down``, or by reconciliation when it comes back.
Warnings about a misbehaving PBX go through a ``RepeatLimiter``, so it cannot flood the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import attrs
import sqlalchemy as sa

from twpcore.config import LimitsConfig
from twpcore.dialing import DialingPlans
from twpcore.events import Event, EventBus
from twpcore.instances import InstanceManager
from twpcore.kinds import Kind, NotSupported, PbxDriver
from twpcore.logs import RepeatLimiter
from twpcore.parameters import ParameterRegistry
from twpcore.store import Store
from twpcore.store import schema as t
from twpcore.telephony.call_logs import CallLogRecorder
from twpcore.telephony.events import CallSnapshot, PbxEvent, bounded_event, bounded_snapshot
from twpcore.telephony.model import CALL_LIMIT, CallModel, Change
from twpcore.telephony.supervision import DeviceSlot, LinkSlot, allocate
from twpcore.telephony.watchers import SHARED_CHANGES, keep_watchers

log = logging.getLogger(__name__)


def _shown(value: object, limit: int = 32) -> str:
    """``value`` for a log line: quoted, cut to ``limit`` characters (it comes from the PBX)."""
    text = str(value)
    return repr(text if len(text) <= limit else text[:limit] + "…")


class TelephonyError(Exception):
    """A call-control request cannot be carried out; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, error: str, detail: str, field: str | None = None):
        super().__init__(detail)
        self.status, self.error, self.detail, self.field = status, error, detail, field


@attrs.define(eq=False)
class Link:
    """One configured PBX link as the service sees it."""

    name: str
    driver: PbxDriver
    company: str | None
    domain: str | None
    domain_id: int | None = None
    company_id: int | None = None
    connected: bool = False
    since: float = attrs.field(factory=time.time)
    last_error: str | None = None
    devices: set[str] = attrs.field(factory=set)
    monitored: set[str] = attrs.field(factory=set)
    resync: asyncio.Task | None = None
    resync_again: bool = False
    """Devices changed while a resync pass ran: it makes one more pass rather than being cancelled mid-request."""
    retry: asyncio.TimerHandle | None = None
    """Devices the PBX refused or did not answer for are tried again after ``limits.monitor_retry``."""
    expiry: asyncio.TimerHandle | None = None
    """While the link is down: clears its calls after ``limits.calls_kept_after_link_down``."""


@attrs.define(eq=False)
class Device:
    id: int
    number: str
    domain_id: int
    company_id: int
    user_id: int | None
    site: str | None
    link: str | None = None
    reason: str | None = None
    """Why the device is not supervised, when it is not."""


class CallEnricher(Protocol):
    """Adds what the directories know of the remote party to a call event (``DirectoryService.enrich_call``)."""

    def enrich_call(self, domain_id: int, user_id: int | None, device: str, data: dict[str, Any], change_type: str) -> None: ...


class TelephonyService:
    def __init__(self, limits: LimitsConfig, instances: InstanceManager, events: EventBus, parameters: ParameterRegistry,
                 dialing_plans: DialingPlans, directories: CallEnricher | None = None):
        self.instances = instances
        """The configured PBX driver instances (``[pbx.links.*]``): each becomes a link."""
        self.events = events
        """Link, call and device events are published here; admin events about devices and domains are read."""
        self.directories = directories
        """Reverse lookup of call events (None: calls carry no contact)."""
        self.store: Store | None = None
        """Set by the kernel when it opens the store (``Kernel.attach_store``): devices, domains and grants are read from it."""
        self.models: dict[int, CallModel] = {}
        """One call model per domain: device numbers are only unique within a domain."""
        self.links: dict[str, Link] = {}
        self.devices: dict[tuple[int, str], Device] = {}
        self.watchers: dict[tuple[int, str], frozenset[int]] = {}
        self.queue_watchers: dict[tuple[int, str], frozenset[int]] = {}
        """(domain id, queue number) → users granted that phone queue (guide 7.4.5): they get the call events of its device."""
        """(domain id, number) → users granted an intercom group of the device (guide 7.4.4), kept by ``watchers.keep_watchers``."""
        self._tasks: list[asyncio.Task] = []
        self.call_logs = CallLogRecorder(parameters, dialing_plans, self.devices)
        self.limits = limits
        self.on_message_waiting: Callable[[Device, PbxEvent], None] | None = None
        """Told of every ``message_waiting`` event of a supervised device, emptied mailboxes included (the reception service's counters)."""
        self.repeats = RepeatLimiter(log)
        """Rate limit of the warnings about what a PBX sends (one key per link and kind of problem)."""
        self.serving: Callable[[str], bool] | None = None
        """Set by a cluster node (``twpcore.cluster``): whether this node still holds a link's lease; events of a link it may no
        longer hold are ignored, so two nodes never act on one link's events.  ``None``: one process, every link is its own."""
        self.rules: Any = None
        """The forward rules (``twpcore.rules.service.RulesService``), set by the kernel: told of call changes and of links coming back."""

    def model(self, domain_id: int) -> CallModel:
        model = self.models.get(domain_id)
        if model is None:
            model = self.models[domain_id] = CallModel(self.limits.calls_per_device)
        return model

    def _db(self) -> Store:
        if self.store is None:
            raise RuntimeError("the telephony service has no store: the kernel has not started it")
        return self.store

    # -- start-up --------------------------------------------------------------------
    def bind_drivers(self) -> None:
        """Become the sink of every PBX driver instance (before their ``setup`` runs)."""
        for (kind, name), inst in self.instances.instances.items():
            if kind == Kind.PBX_DRIVER and isinstance(inst.obj, PbxDriver):  # every PBX driver type is one (plugins.py checks)
                driver = inst.obj
                driver.bind(self)
                self.links[name] = Link(name, driver, inst.spec.company, inst.spec.domain)

    async def start(self) -> None:
        await self._db().run(self._resolve_domains)
        self.call_logs.start()
        await self.refresh()
        self._tasks.append(asyncio.get_running_loop().create_task(self._watch_admin_changes()))
        self._tasks.append(asyncio.get_running_loop().create_task(keep_watchers(self)))

    def _resolve_domains(self, conn: sa.Connection) -> None:
        for link in self.links.values():
            if link.domain_id is not None:
                continue
            if not link.domain:
                link.last_error = f"pbx.links.{link.name}: no domain; add company = \"…\" and domain = \"…\" to say whose devices it supervises"
                continue
            sel = (
                sa.select(t.domains.c.id, t.domains.c.company_id)
                .join(t.companies, t.companies.c.id == t.domains.c.company_id)
                .where(t.domains.c.name == link.domain)
            )
            if link.company:
                sel = sel.where(t.companies.c.name == link.company)
            rows = conn.execute(sel.limit(2)).all()
            if len(rows) != 1:
                link.last_error = (
                    f"pbx.links.{link.name}: domain {link.domain!r}"
                    + (f" of company {link.company!r}" if link.company else "")
                    + (" does not exist; create it or fix the config" if not rows else ' exists in several companies; add company = "…"')
                )
                log.error("%s", link.last_error)
                continue
            link.domain_id, link.company_id, link.last_error = rows[0].id, rows[0].company_id, None

    async def refresh(self, domain_ids: set[int] | None = None) -> None:
        """(Re)load devices of the linked domains and (re)allocate them to links."""
        domains = {link.domain_id for link in self.links.values() if link.domain_id is not None}
        if domain_ids is not None:
            domains &= domain_ids
        if not domains:
            return
        rows = await self._db().run(
            lambda c: c.execute(
                sa.select(t.devices.c.id, t.devices.c.number, t.devices.c.domain_id, t.devices.c.user_id, t.devices.c.site, t.devices.c.protocol,
                          t.domains.c.company_id)
                .join(t.domains, t.domains.c.id == t.devices.c.domain_id)
                .where(t.devices.c.domain_id.in_(sorted(domains)))
                .order_by(t.devices.c.id)
            ).all()
        )
        for domain_id in domains:
            fresh = {r.number: r for r in rows if r.domain_id == domain_id}
            for key in [k for k in self.devices if k[0] == domain_id and k[1] not in fresh]:
                await self._unsupervise(self.devices.pop(key), "device deleted")
            links = [link for link in self.links.values() if link.domain_id == domain_id]
            slots = [LinkSlot(lk.name, max(0, lk.driver.capacity), tuple(lk.driver.sites), protocols=tuple(lk.driver.protocols))
                     for lk in links]
            current = {}
            for number, r in fresh.items():
                dev = self.devices.get((domain_id, number))
                if dev is None:
                    dev = Device(r.id, number, domain_id, r.company_id, r.user_id, r.site or None)
                    self.devices[(domain_id, number)] = dev
                dev.user_id, dev.site = r.user_id, r.site or None
                if dev.link:
                    current[number] = dev.link
            result = allocate([DeviceSlot(n, fresh[n].site or None, fresh[n].protocol or None) for n in fresh], slots, current)
            for number, link_name in result.items():
                dev = self.devices[(domain_id, number)]
                if dev.link and dev.link != link_name:
                    await self._unsupervise(dev, "moved to another link")
                dev.link = link_name
                protocol = fresh[number].protocol or ""
                if link_name:
                    dev.reason = None
                elif slots and not any(slot.accepts(protocol) for slot in slots):
                    dev.reason = (f"no PBX link of the domain supervises {protocol} devices (guide 4); set the device's protocol "
                                  f"to one a link takes ({', '.join(sorted({p for s in slots for p in s.protocols}))}) or add a link")
                else:
                    dev.reason = "every PBX link of the domain is at capacity (guide 4.1); raise a link's capacity or add a link"
                if link_name:
                    self.links[link_name].devices.add(number)
            for link in links:
                if link.connected:
                    self._schedule_resync(link)

    async def _unsupervise(self, dev: Device, why: str) -> None:
        if dev.link and dev.link in self.links:
            link = self.links[dev.link]
            link.devices.discard(dev.number)
            if dev.number in link.monitored:
                link.monitored.discard(dev.number)
                try:
                    await link.driver.stop_monitor(dev.number)
                except Exception as exc:  # noqa: BLE001 - best effort: the device is forgotten either way
                    log.debug("stop monitoring %s on %s: %s", dev.number, link.name, exc)
        self._publish(dev, self.model(dev.domain_id).forget(dev.number))
        dev.link = None
        dev.reason = why

    async def _watch_admin_changes(self) -> None:
        watched = ("admin.device.", "admin.domain.", "admin.company.")
        sub = self.events.subscribe(lambda e: e.type.startswith(watched), name="telephony")
        try:
            while True:
                event = await sub.get()
                try:
                    if event.type.startswith(("admin.domain.", "admin.company.")) or event.type == "system.resync":
                        unresolved = any(link.domain_id is None for link in self.links.values())
                        if unresolved:
                            await self._db().run(self._resolve_domains)
                        await self.refresh()
                    elif event.domain_id is not None:
                        await self.refresh({event.domain_id})
                    else:
                        await self.refresh()
                except asyncio.CancelledError:
                    raise
                except Exception:  # keep watching whatever one refresh did
                    log.exception("telephony refresh after %s failed", event.type)
        finally:
            self.events.unsubscribe(sub)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for link in self.links.values():
            self._cancel_resync(link)
            if link.expiry:
                link.expiry.cancel()
        self.repeats.flush()
        await asyncio.gather(*self._tasks, *(link.resync for link in self.links.values() if link.resync), return_exceptions=True)
        await self.call_logs.stop()

    # -- the driver sink ---------------------------------------------------------------
    def _link_of(self, driver: PbxDriver) -> Link | None:
        return self.links.get(driver.name)

    def on_link_up(self, driver: PbxDriver) -> None:
        link = self._link_of(driver)
        if link is None:
            return
        link.connected, link.since, link.last_error = True, time.time(), None
        self._cancel_resync(link)
        link.monitored.clear()
        if link.expiry:
            link.expiry.cancel()
            link.expiry = None
        log.info("PBX link %s up", link.name)
        self.events.publish(Event("link.up", {"link": link.name}, link.company_id, link.domain_id))
        if self.rules is not None:
            self.rules.link_up(link.name)  # what TWP set in the PBX (simple forward rules) is set again
        self._schedule_resync(link)

    def on_link_down(self, driver: PbxDriver, reason: str) -> None:
        link = self._link_of(driver)
        if link is None:
            return
        link.connected, link.since, link.last_error = False, time.time(), reason
        link.monitored.clear()
        self._cancel_resync(link)
        log.warning("PBX link %s down: %s", link.name, reason)
        self.events.publish(Event("link.down", {"link": link.name, "reason": reason}, link.company_id, link.domain_id))
        if link.expiry:
            link.expiry.cancel()
        grace = float(self.limits.calls_kept_after_link_down)
        if grace <= 0:
            link.expiry = None
            self._clear_calls_of(link)
        else:
            link.expiry = asyncio.get_running_loop().call_later(grace, self._clear_calls_of, link)

    def _clear_calls_of(self, link: Link) -> None:
        """The link stayed down: its calls are no longer known, clear them (cause ``link_down``)."""
        link.expiry = None
        if link.connected or link.domain_id is None:
            return
        model = self.model(link.domain_id)
        cleared = 0
        for number in sorted(link.devices):
            dev = self.devices.get((link.domain_id, number))
            if dev is not None and model.calls.get(number):
                cleared += len(model.calls[number])
                self._publish(dev, model.forget(number, cause="link_down"))
        if cleared:
            log.warning("PBX link %s still down after %g s: its %d call(s) cleared (limits.calls_kept_after_link_down)",
                        link.name, float(self.limits.calls_kept_after_link_down), cleared)

    def release_link(self, name: str, why: str) -> None:
        """Another cluster node serves the link now (``twpcore.cluster``): stop supervising it here, silently.

        Its calls are forgotten without events or call-log entries: the node that took the
        link over reconciles them with snapshots and reports what follows.
        """
        link = self.links.get(name)
        if link is None:
            return
        link.connected, link.since, link.last_error = False, time.time(), why
        link.monitored.clear()
        self._cancel_resync(link)
        if link.expiry:
            link.expiry.cancel()
            link.expiry = None
        if link.domain_id is not None:
            model = self.model(link.domain_id)
            for number in link.devices:
                model.forget(number, cause="handed_over")

    def _cancel_resync(self, link: Link) -> None:
        if link.resync and not link.resync.done():
            link.resync.cancel()
        if link.retry:
            link.retry.cancel()
            link.retry = None
        link.resync_again = False

    def _schedule_resync(self, link: Link) -> None:
        """Monitor what the link does not monitor yet. A pass already running is not cancelled (a monitor request
        cancelled half-way would leave the PBX monitoring a device the kernel thinks it does not): it runs once more."""
        if link.retry:
            link.retry.cancel()
            link.retry = None
        if link.resync and not link.resync.done():
            link.resync_again = True
            return
        link.resync = asyncio.get_running_loop().create_task(self._resync(link))

    async def _resync(self, link: Link) -> None:
        failed = True
        while link.connected:
            link.resync_again = False
            failed = await self._resync_pass(link)
            if not link.resync_again:
                break
        retry = float(self.limits.monitor_retry)
        if failed and link.connected and retry > 0:
            link.retry = asyncio.get_running_loop().call_later(retry, self._schedule_resync, link)

    async def _resync_pass(self, link: Link) -> bool:
        """Monitor every device of the link not yet monitored, then reconcile its calls; True when a monitor failed."""
        failed = False
        for number in sorted(link.devices - link.monitored):
            if not link.connected:
                return failed
            if number not in link.devices or number in link.monitored:
                continue  # moved away or monitored meanwhile
            dev = self.devices.get((link.domain_id, number)) if link.domain_id is not None else None
            if dev and "snapshot" not in link.driver.capabilities:
                self._forget_unknown(link, dev, "unknown_after_reconnect")  # before monitoring: only calls from before
            try:
                await link.driver.monitor(number)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a driver may raise anything; the device shows the reason
                if dev:
                    dev.reason = f"monitor refused by the PBX: {exc}"
                    self._forget_unknown(link, dev, "not_monitored")
                log.warning("link %s: cannot monitor %s (tried again in %s s): %s", link.name, number, self.limits.monitor_retry, exc)
                failed = True
                continue
            link.monitored.add(number)
            if dev:
                dev.reason = None
            if "snapshot" not in link.driver.capabilities:
                continue
            try:
                snapshot = await link.driver.snapshot(number)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a driver may raise anything; the device is re-checked later
                log.warning("link %s: snapshot of %s failed: %s", link.name, number, exc)
                if dev:
                    self._forget_unknown(link, dev, "unknown_after_reconnect")
                continue
            if dev:
                self._publish(dev, self.model(dev.domain_id).reconcile(number, self._bounded_snapshot(link, number, snapshot)))
        return failed

    def _forget_unknown(self, link: Link, dev: Device, cause: str) -> None:
        """Calls the kernel can no longer check against the PBX are cleared rather than kept as ghosts."""
        if link.connected and link.driver.connected:  # not when the link itself just dropped: its expiry decides
            self._publish(dev, self.model(dev.domain_id).forget(dev.number, cause=cause))

    def _bounded_snapshot(self, link: Link, number: str, snapshot: list[CallSnapshot]) -> list[CallSnapshot]:
        kept, problem = bounded_snapshot(snapshot, self.limits.calls_per_device)
        if problem:
            self.repeats.log(
                logging.WARNING, f"PBX link {link.name}: snapshot bounds", "PBX link %s: snapshot of device %s: %s", link.name, number, problem
            )
        return kept

    def on_event(self, driver: PbxDriver, event: PbxEvent) -> None:
        link = self._link_of(driver)
        if link is None or link.domain_id is None or (self.serving is not None and not self.serving(link.name)):
            return
        bounded, problem = bounded_event(event)
        if problem:
            self.repeats.log(logging.WARNING, f"PBX link {link.name}: identifier bounds", "PBX link %s: %s event for device %s: %s",
                             link.name, event.type, _shown(event.device), problem)
        if bounded is None:
            return
        dev = self.devices.get((link.domain_id, bounded.device))
        if dev is None:
            log.debug("link %s: event for unknown device %s ignored", link.name, _shown(bounded.device))
            return
        if bounded.type == "message_waiting" and self.on_message_waiting is not None:
            self.on_message_waiting(dev, bounded)
        try:
            changes = self.model(link.domain_id).apply(attrs.evolve(bounded, link=link.name))
        except Exception:  # noqa: BLE001 - a bad event must never stop the link
            self.repeats.log(logging.ERROR, f"PBX link {link.name}: events not applied", "link %s: event %s for %s could not be applied",
                             link.name, bounded.type, bounded.device, exc_info=True)
            return
        dropped = sum(1 for c in changes if c.type == "call.cleared" and c.data.get("cause") == CALL_LIMIT)
        if dropped:
            self.repeats.log(logging.WARNING, f"PBX link {link.name}: call limit",
                             "PBX link %s: device %s has more than %d calls; the stalest was dropped (limits.calls_per_device; "
                             "a PBX that never clears its calls, or sends invented ones)", link.name, bounded.device, self.limits.calls_per_device)
        self._publish(dev, changes)

    def _publish(self, dev: Device, changes: list[Change]) -> None:
        users = frozenset({dev.user_id}) if dev.user_id else frozenset()
        directories = self.directories
        published = []
        for change in changes:
            data = {"device": change.device, "link": dev.link, **change.data}
            if directories is not None and change.type.startswith("call."):
                # Reverse lookup once per call, from the index in memory: adds remote_name and contact.
                directories.enrich_call(dev.domain_id, dev.user_id, change.device, data, change.type)
            if self.rules is not None and change.type.startswith("call."):
                self.rules.on_call_change(dev, change.type, data)  # advanced forward rules decide; a forwarded call names its rule
            # Presence (not call details) also reaches the users granted the device's intercom groups.
            seen_by = (users | self.watchers.get((dev.domain_id, dev.number), frozenset())) if change.type in SHARED_CHANGES else users
            if change.type.startswith("call.") and self.queue_watchers:
                seen_by = seen_by | self.queue_watchers.get((dev.domain_id, dev.number), frozenset())
            self.events.publish(Event(change.type, data, dev.company_id, dev.domain_id, seen_by))
            published.append((change.type, data))
        self.call_logs.observe(dev, published)  # calls that left the device become call-log entries

    # -- call control ------------------------------------------------------------------
    def device_for(self, who: Any, number: str | None, domain_id: int | None, user_devices: list[tuple[int, str]]) -> Device:
        """The device a request acts on: one of the user's own, or (admins) any device of a managed company."""
        if who.is_admin:
            if number is None or domain_id is None:
                raise TelephonyError(400, "bad_request", "administrators name the device: give device and domain_id", "device")
            dev = self.devices.get((domain_id, number))
            if dev is None or not who.manages(dev.company_id):
                raise TelephonyError(
                    404, "not_found", f"device {number} is not supervised in domain {domain_id} (unknown, or no PBX link serves the domain)", "device"
                )
            return dev
        if not user_devices:
            raise TelephonyError(409, "no_device", "you have no device; ask an administrator to give you one", "device")
        if number is None:
            domain, number = user_devices[0][0], user_devices[0][1]
        else:
            match = [d for d in user_devices if d[1] == number]
            if not match:
                raise TelephonyError(403, "forbidden", f"device {number} is not yours", "device")
            domain = match[0][0]
        dev = self.devices.get((domain, number))
        if dev is None:
            raise TelephonyError(409, "not_supervised", f"device {number} is not supervised: no PBX link serves its domain", "device")
        return dev

    def link_for(self, dev: Device, operation: str) -> Link:
        if dev.link is None:
            raise TelephonyError(409, "not_supervised", f"device {dev.number} is not supervised: {dev.reason or 'no link'}", "device")
        link = self.links[dev.link]
        if operation not in link.driver.capabilities:
            raise TelephonyError(501, "not_supported", f'the {link.driver.type_name} driver of link {link.name} does not support "{operation}"')
        if not link.connected:
            raise TelephonyError(503, "link_down", f"PBX link {link.name} is down ({link.last_error or 'connecting'}); retry when it is back")
        return link

    async def run(self, dev: Device, operation: str, method: str, *args: Any) -> Any:
        link = self.link_for(dev, operation)
        try:
            return await getattr(link.driver, method)(dev.number, *args)
        except NotSupported as exc:
            raise TelephonyError(501, "not_supported", f"{exc} (link {link.name})") from None
        except TelephonyError:
            raise
        except Exception as exc:  # noqa: BLE001 - a driver may raise anything; the caller gets a clear error
            status = getattr(exc, "status", None) or getattr(exc, "http_status", None)
            if isinstance(status, int) and 400 <= status < 600:
                raise TelephonyError(status, "pbx_error", f"the PBX refused {operation} on device {dev.number}: {exc}") from None
            if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
                raise TelephonyError(504, "pbx_timeout", f"the PBX did not answer {operation} for device {dev.number} in time") from None
            raise TelephonyError(502, "pbx_error", f"{operation} on device {dev.number} failed: {type(exc).__name__}: {exc}") from None

    # -- states (guide 10.4, 10.5) -----------------------------------------------------
    def links_json(self, who: Any) -> list[dict[str, Any]]:
        out = []
        for link in self.links.values():
            if link.company_id is not None and not who.manages(link.company_id):
                continue
            if link.company_id is None and not who.super_user:
                continue
            cfg = link.driver.config
            out.append({
                "name": link.name, "driver": link.driver.type_name, "host": getattr(cfg, "host", None), "port": getattr(cfg, "port", None),
                "connected": link.connected, "current": len(link.devices), "monitored": len(link.monitored), "count": link.driver.capacity,
                "site": ",".join(link.driver.sites), "domain": link.domain, "domain_id": link.domain_id, "since": link.since,
                "last_error": link.last_error, "capabilities": sorted(link.driver.capabilities),
            })
            stats = getattr(link.driver, "link_stats", None)
            if callable(stats):
                try:
                    out[-1]["stats"] = stats()
                except Exception:  # a driver's counters must not break the page
                    log.exception("link %s: link_stats() failed", link.name)
        return out

    def devices_json(self, who: Any, lo: str | None, hi: str | None) -> list[dict[str, Any]]:
        def key(n: str) -> tuple[int, str]:
            return (len(n), n)

        out = []
        for (domain_id, number), dev in sorted(self.devices.items(), key=lambda kv: (kv[0][0], key(kv[0][1]))):
            if not who.manages(dev.company_id):
                continue
            if (lo and key(number) < key(lo)) or (hi and key(number) > key(hi)):
                continue
            link = self.links.get(dev.link) if dev.link else None
            supervised = bool(link and link.connected and number in link.monitored)
            # Where the PBX says the subscriber is logged (site, cluster), for drivers that know (A5000 VTI-XML, guide 10.5).
            where = getattr(link.driver, "device_location", None) if link else None
            logged = where(number) if callable(where) else None
            out.append(
                {
                    "device": number,
                    "domain_id": domain_id,
                    "user_id": dev.user_id,
                    "site": dev.site,
                    "provider": dev.link,
                    "state": "Connected" if supervised else "Disconnected",
                    "type": "CTI",
                    "reason": None if supervised else (dev.reason or (link.last_error if link else None)),
                    "presence": self.model(domain_id).presence.get(number, "idle"),
                    "calls": len(self.model(domain_id).calls.get(number, {})),
                    "logged_site": logged[0] if logged else None,
                    "cluster": logged[1] if logged else None,
                }
            )
        return out
