"""Logging set-up for ``twp serve``: console, and optional syslog forwarding (guide 10.6).

The guide's "Syslog: enter the IP address of the PC which runs the syslog software"
becomes ``[logging] syslog = "udp://10.0.0.5:514"``.  Records go out in RFC 3164 form
through the standard library's ``SysLogHandler``; nothing is sent that the console log
would not show, so secrets stay out of it as they stay out of every log.

``RepeatLimiter`` keeps a peer that misbehaves (a hostile or broken PBX sending thousands
of malformed frames) from flooding the log: a few lines per kind of message, then one
summary line.
"""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import attrs

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
SYSLOG_FORMAT = "twp[%(process)d]: %(levelname)s %(name)s: %(message)s"


@attrs.define(eq=False)
class _Window:
    start: float
    level: int
    count: int = 0
    suppressed: int = 0
    summary: asyncio.TimerHandle | None = None


class RepeatLimiter:
    """At most ``burst`` log lines per key every ``interval`` seconds, then one summary line.

    The key names the source and the kind of message (``"link paris: unreadable frames"``);
    it must not carry what the peer sent, so the number of keys stays bounded.  Lines
    beyond the burst are counted, and when the interval ends (or the next line of the
    key arrives after it) one line says ``<key>: suppressed N similar messages in the
    last S s``.
    """

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter[Any], *, burst: int = 5, interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 1024):
        self.logger = logger
        self.burst = burst
        self.interval = interval
        self.clock = clock
        self.max_keys = max_keys
        self._windows: dict[str, _Window] = {}

    def log(self, level: int, key: str, msg: str, *args: Any, exc_info: bool = False) -> bool:
        """Log ``msg % args`` unless ``key`` already had its burst in this interval; True if logged."""
        now = self.clock()
        window = self._windows.get(key)
        if window is None or now - window.start >= self.interval:
            if window is not None:
                self._summarize(key, window)
            elif len(self._windows) >= self.max_keys:
                oldest = next(iter(self._windows))
                self._summarize(oldest, self._windows.pop(oldest))
            window = self._windows[key] = _Window(now, level)
        window.count += 1
        if window.count <= self.burst:
            self.logger.log(level, msg, *args, exc_info=exc_info)
            return True
        window.suppressed += 1
        if window.summary is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return False  # no loop: the summary waits for the next line of the key
            window.summary = loop.call_later(max(0.0, window.start + self.interval - now), self._expire, key, window)
        return False

    def flush(self) -> None:
        """Write the pending summaries now (at shutdown, or in tests)."""
        for key, window in list(self._windows.items()):
            self._summarize(key, window)
        self._windows.clear()

    def _expire(self, key: str, window: _Window) -> None:
        window.summary = None
        if self._windows.get(key) is window:
            del self._windows[key]
        self._summarize(key, window)

    def _summarize(self, key: str, window: _Window) -> None:
        if window.summary is not None:
            window.summary.cancel()
            window.summary = None
        if window.suppressed:
            self.logger.log(window.level, "%s: suppressed %d similar messages in the last %.0f s",
                            key, window.suppressed, max(1.0, self.clock() - window.start))
            window.suppressed = 0


def parse_syslog(url: str, facility: str = "daemon") -> tuple[str, int, socket.SocketKind, int]:
    """``udp://host:port`` → (host, port, socket type, facility code); ValueError names what is wrong."""
    parts = urlsplit(url if "://" in url else f"udp://{url}")
    if parts.scheme not in ("udp", "tcp"):
        raise ValueError(f'logging.syslog: expected "udp://host:port" or "tcp://host:port", got "{url}"')
    try:
        port = parts.port or 514
    except ValueError:
        raise ValueError(f'logging.syslog: the port of "{url}" is not a number 1-65535') from None
    if not parts.hostname:
        raise ValueError(f'logging.syslog: no host in "{url}"; write e.g. "udp://10.0.0.5:514"')
    code = logging.handlers.SysLogHandler.facility_names.get(facility)
    if code is None:
        raise ValueError(f'logging.syslog_facility: unknown facility "{facility}"; use daemon, user or local0 ... local7')
    kind = socket.SOCK_DGRAM if parts.scheme == "udp" else socket.SOCK_STREAM
    return parts.hostname, port, kind, code


def configure(level: str, syslog: str | None = None, facility: str = "daemon") -> logging.Handler | None:
    """Console logging at ``level``, plus a syslog handler when ``syslog`` is set; returns that handler."""
    logging.basicConfig(level=level, format=FORMAT)
    if not syslog:
        return None
    host, port, kind, code = parse_syslog(syslog, facility)
    try:
        handler = logging.handlers.SysLogHandler(address=(host, port), facility=code, socktype=kind)
    except OSError as exc:
        logging.getLogger(__name__).error("logging.syslog: cannot reach %s (%s); logs stay on the console only", syslog, exc)
        return None
    handler.setFormatter(logging.Formatter(SYSLOG_FORMAT))
    handler.setLevel(level)
    logging.getLogger().addHandler(handler)
    logging.getLogger(__name__).info("logs are also sent to syslog at %s", syslog)
    return handler
