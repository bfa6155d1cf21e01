"""Test-kit helper: wait until something a test cannot be told about has happened (a background task, another process).

    from twpcore.testing.waiting import eventually

    await eventually(lambda: "201" in link.monitored, "201 monitored")
    row = await eventually(lambda: client.get("/api/v1/links"), "the links answered", timeout=10)
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def eventually(predicate: Callable[[], Any], what: str, timeout: float = 5.0, every: float = 0.02) -> Any:
    """Call ``predicate`` (awaiting what it returns when that is awaitable) every ``every`` seconds until it gives a true
    value, and return that value; an ``AssertionError`` "<what>: not within <timeout> s" when ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        await asyncio.sleep(every)
