"""TWP Internet (guide 1.3.3): "call me back" for web sites.

A web application logs in as a TWP user that holds the ``Internet`` application right
and asks ``POST /api/v1/callback`` to connect one of its domain's agents with a
customer.  The PBX first rings the agent (a CSTA MakeCall from the agent's device);
when the agent answers it calls the customer and joins them.  Requests are rate-limited
per client address and per customer number, because such a button faces the public.
"""

from __future__ import annotations

import time
from collections import deque

from aiohttp import web

from twpcore.http.core import KERNEL, ApiError, Route, principal, read_json, store_of
from twpcore.http.telephony import _dialable, _run, _str
from twpcore.telephony import call_control_access as access
from twpcore.telephony.service import TelephonyError


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds for each key (sliding window, in memory)."""

    def __init__(self, limit: int, window: float):
        self.limit, self.window = limit, window
        self.hits: dict[str, deque[float]] = {}

    def allow(self, key: str, now: float | None = None) -> float | None:
        """Record a hit and return None, or return the seconds to wait when over the limit."""
        now = time.monotonic() if now is None else now
        q = self.hits.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        if len(q) >= self.limit:
            return q[0] + self.window - now
        q.append(now)
        if len(self.hits) > 10000:  # forget idle keys so memory stays bounded
            for k in [k for k, v in self.hits.items() if not v or v[-1] <= now - self.window][:5000]:
                del self.hits[k]
        return None


PER_SOURCE = web.AppKey("callback_per_source", RateLimiter)
PER_NUMBER = web.AppKey("callback_per_number", RateLimiter)


def install_limiters(app: web.Application) -> None:
    app[PER_SOURCE] = RateLimiter(10, 60)   # ten callbacks a minute from one address
    app[PER_NUMBER] = RateLimiter(3, 600)   # three callbacks in ten minutes to one customer


async def callback(request: web.Request) -> web.Response:
    who = principal(request)
    if who.is_admin or who.domain_id is None:
        raise ApiError(403, "forbidden", "callbacks are requested with the token of a user holding the Internet application")
    body = await read_json(request)
    number = _str(body, "number")
    agent = _str(body, "agent")
    kernel = request.app[KERNEL]
    await store_of(request).run(access.require_internet, who.id)
    per_source, per_number = request.app[PER_SOURCE], request.app[PER_NUMBER]
    wait = per_source.allow(request.remote or "?")
    if wait is not None:
        raise ApiError(429, "rate_limited", f"too many callback requests from your address; try again in {int(wait) + 1} s")
    if not await store_of(request).run(access.domain_has_device, who.domain_id, agent):
        raise ApiError(404, "not_found", f"agent device {agent} is not in your domain", "agent")
    try:
        dev = kernel.telephony.device_for(who, agent, None, [(who.domain_id, agent)])
    except TelephonyError as exc:
        raise ApiError(exc.status, exc.error, exc.detail, "agent") from None
    dialed = await _dialable(request, dev, number)
    # Only requests that would really ring someone count against the customer's limit.
    wait = per_number.allow(f"{who.domain_id}:{dialed}")
    if wait is not None:
        raise ApiError(429, "rate_limited", f"this number was called back recently; try again in {int(wait) + 1} s")
    call_id = await _run(request, dev, "make_call", "make_call", dialed)
    return web.json_response({"call_id": call_id, "agent": agent, "dialed": dialed, "status": "ringing agent"}, status=202)


def callback_routes() -> list[Route]:
    return [Route("POST", "/api/v1/callback", callback, "user", "TWP Internet callback: ring an agent, then call the customer (guide 1.3.3)", "calls",
                  body={"type": "object", "required": ["agent", "number"], "properties": {
                      "agent": {"type": "string", "pattern": r"\S", "description": "agent device number in the caller's domain"},
                      "number": {"type": "string", "pattern": r"\S", "maxLength": 64, "description": "customer number"}}},
                  # 202: the agent's phone rings; the PBX may refuse (409, 501, 503) and repeated requests are rate limited (429).
                  status=202, errors=(409, 429, 501, 503))]

