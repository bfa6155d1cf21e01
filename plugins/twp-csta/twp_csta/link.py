"""The life of one TCP link to a PBX: connect, notice the loss, reconnect with backoff, close.

``ReconnectingLink`` is mixed into a driver (a ``PbxDriver``) whose client, once open,
reports its own loss through ``on_link_lost(reason)``.  The driver supplies ``_open()``
(a new connected client, handed ``self._generation`` so that a late callback of an old
client is ignored) and ``_attach(client)`` (adopt it); the mixin keeps the rest: the
backoff, the manager task that waits for a loss, says ``link_down``, retries with backoff
until ``_open`` succeeds and then says ``link_up``; the counters of the clients the link
went through; and the stopping of all that on ``close``.

Used by ``twp_csta.driver.CstaDriver`` (CSTA over any encoding) and by the A5000 plugin's
VTI-XML links; a third-party driver with its own client can use it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

import attrs

from twp_csta.errors import CstaBaseError


class LinkClient(Protocol):
    """What the mixin needs of a client: its counters (an attrs instance) and ``close()``."""

    @property
    def stats(self) -> Any: ...

    async def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=LinkClient)


class ReconnectingLink(Generic[ClientT]):
    """Reconnection with backoff for a driver holding one client at a time; see the module docstring."""

    link_kind: ClassVar[str] = "CSTA"
    """What the link speaks, in its log lines ("CSTA link back after 2 attempt(s)")."""
    retried_errors: ClassVar[tuple[type[BaseException], ...]] = (CstaBaseError, OSError)
    """Failures of ``_open`` logged as one warning line (anything else is logged with its traceback); both are retried."""

    if TYPE_CHECKING:  # what the driver it is mixed into has (``PbxDriver`` and its config)
        name: str
        log: logging.Logger
        config: Any

        def link_up(self) -> None: ...
        def link_down(self, reason: str) -> None: ...

    def init_link(self) -> None:
        """Set up the link's state; call it from the driver's ``__init__``."""
        self.client: ClientT | None = None
        self.last_error: str | None = None
        """Why the link last failed or was lost; None while it is up."""
        self._reconnects = 0
        self._generation = 0
        self._closing = False
        self._lost = asyncio.Event()
        self._lost_reason = ""
        self._manager: asyncio.Task[None] | None = None
        self._totals: dict[str, int] = {}

    # -- what the driver provides --------------------------------------------------------
    async def _open(self) -> ClientT:
        """A new connected client, its callbacks bound to ``self._generation`` (incremented first)."""
        raise NotImplementedError

    def _attach(self, client: ClientT) -> None:
        """Adopt a newly opened client: set ``self.client``, clear ``self._lost``, ``self.last_error`` and what belonged to the previous one."""
        raise NotImplementedError

    # -- the shared part ---------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    @property
    def reconnects(self) -> int:
        """Times the link came back after being lost."""
        return self._reconnects

    def backoff(self, attempt: int, *, jitter: bool = True) -> float:
        """Wait before reconnection attempt ``attempt`` (0-based): exponential, capped, with ±20% jitter."""
        cfg = self.config
        delay = min(float(cfg.reconnect_max), float(cfg.reconnect_min) * (2 ** min(attempt, 30)))
        return delay * random.uniform(0.8, 1.2) if jitter else delay

    def _begin_setup(self) -> None:
        """Called first by ``setup``: the link is wanted again (after a ``close``)."""
        self._closing = False
        self._lost = asyncio.Event()

    def _start_manager(self, task_name: str) -> None:
        """Called by ``setup`` once the first client is attached: from now on, a loss is repaired."""
        self._manager = asyncio.get_running_loop().create_task(self._manage(), name=task_name)

    async def _on_link_lost(self, generation: int, reason: str) -> None:
        """The ``on_link_lost`` callback of the client of ``generation``."""
        if generation != self._generation or self._closing:
            return
        self._lost_reason = reason
        self._lost.set()

    async def _manage(self) -> None:
        """Wait for the link to be lost, then reconnect with backoff until it is back."""
        while not self._closing:
            await self._lost.wait()
            if self._closing:
                return
            reason = self._lost_reason or "link lost"
            self.last_error = reason
            client, self.client = self.client, None
            if client is not None:
                self._remember(client)
                await client.close()
            self.link_down(reason)
            attempt = 0
            while not self._closing:
                delay = self.backoff(attempt)
                attempt += 1
                self.log.info("%s: reconnecting to %s in %.2f s (attempt %d)", self.name, self.address, delay, attempt)
                await asyncio.sleep(delay)
                try:
                    client = await self._open()
                except asyncio.CancelledError:
                    raise
                except self.retried_errors as exc:
                    self.last_error = getattr(exc, "message", None) or str(exc)
                    self.log.warning("%s: %s reconnection to %s failed: %s", self.name, self.link_kind, self.address, self.last_error)
                    continue
                except Exception as exc:  # keep the link manager alive whatever happens
                    self.last_error = repr(exc)
                    self.log.exception("%s: %s reconnection to %s failed", self.name, self.link_kind, self.address)
                    continue
                self._attach(client)
                self._reconnects += 1
                self.log.info("%s: %s link back after %d attempt(s)", self.name, self.link_kind, attempt)
                self.link_up()
                break

    def _remember(self, client: ClientT) -> None:
        """Add a client's counters to the link's totals (before it is dropped)."""
        for key, value in attrs.asdict(client.stats).items():
            self._totals[key] = self._totals.get(key, 0) + value

    def _counters(self) -> dict[str, Any]:
        """The counters of every client the link went through, the current one included."""
        stats: dict[str, Any] = dict(self._totals)
        if self.client is not None:
            for key, value in attrs.asdict(self.client.stats).items():
                stats[key] = stats.get(key, 0) + value
        return stats

    async def _stop_manager(self) -> None:
        """Called first by ``close``: no reconnection from now on."""
        self._closing = True
        self._lost.set()
        manager, self._manager = self._manager, None
        if manager is not None and manager is not asyncio.current_task():
            manager.cancel()
            with contextlib.suppress(BaseException):
                await manager
