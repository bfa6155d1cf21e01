"""Logging set-up for ``twp serve``: console, and optional syslog forwarding (guide 10.6).

The guide's "Syslog: enter the IP address of the PC which runs the syslog software"
becomes ``[logging] syslog = "udp://10.0.0.5:514"``.  Records go out in RFC 3164 form
through the standard library's ``SysLogHandler``; nothing is sent that the console log
would not show, so secrets stay out of it as they stay out of every log.
"""

from __future__ import annotations

import logging
import logging.handlers
import socket
from urllib.parse import urlsplit

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
SYSLOG_FORMAT = "twp[%(process)d]: %(levelname)s %(name)s: %(message)s"


def parse_syslog(url: str, facility: str = "daemon") -> tuple[str, int, int, int]:
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
