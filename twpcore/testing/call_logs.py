"""Test-kit helper for call logs: wait until the background writer has put a call's entry in a log.

    from twpcore.testing.call_logs import wait_call_log

    [entry] = (await wait_call_log(alice, 1))["items"]
"""

from __future__ import annotations

import asyncio
import time
from typing import Any


async def wait_call_log(client: Any, n: int, path: str = "/api/v1/me/call-logs", params: dict[str, str] | None = None,
                        timeout: float = 5.0) -> dict[str, Any]:
    """Poll the call log at ``path`` as ``client`` until it holds at least ``n`` entries (``total``); its body.

    Entries are written in the background, so a test reads the log through this; an ``AssertionError`` naming
    the path, ``n`` and the last body when the log does not get there within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        body = await client.get(path, params=params)
        if body["total"] >= n:
            return body
        assert time.monotonic() < deadline, f"{path}: {n} entries expected, got {body}"
        await asyncio.sleep(0.05)
