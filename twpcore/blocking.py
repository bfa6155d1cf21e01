"""Blocking client libraries (ldap3, pyodbc, exchangelib…) run in a thread, never on the event loop.

``await run_blocking(function, *args)`` runs one blocking call in the loop's default thread
pool.  ``iterate_in_thread(produce)`` turns a blocking producer into an async iterator: the
producer runs in the loop's default thread pool and hands batches over through a
bounded queue, so a directory of a million entries never sits in memory at once and a
slow consumer slows the producer down rather than the other way round::

    def produce(emit):                      # runs in a worker thread
        with connect() as conn:
            for rows in conn.pages():
                emit([to_record(r) for r in rows])   # blocks while the queue is full

    async for record in iterate_in_thread(produce):
        ...

An exception raised by ``produce`` is raised by the iterator after the batches emitted
before it.  When the consumer stops early (``break``, an error, cancellation), the next
``emit`` raises ``ProducerStopped`` in the worker so that it unwinds and closes its
connection; the iterator's ``aclose()`` waits for that.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["ProducerStopped", "iterate_in_thread", "run_blocking"]


async def run_blocking(function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run one blocking call (``function(*args, **kwargs)``) in the loop's thread pool and return its result."""
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(function, *args, **kwargs))


class ProducerStopped(Exception):
    """Raised by ``emit`` in the worker thread: the consumer has gone, stop producing."""


class _Done:
    pass


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


async def iterate_in_thread(
    produce: Callable[[Callable[[Sequence[T]], None]], Any],
    *,
    max_batches: int = 4,
) -> AsyncIterator[T]:
    """Run ``produce(emit)`` in a worker thread and yield every item of every batch it emits.

    At most ``max_batches`` batches wait in the queue; ``emit`` blocks the worker beyond that.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Sequence[T] | _Done | _Failed] = asyncio.Queue(max(1, max_batches))
    stopped = threading.Event()

    def put(item: Sequence[T] | _Done | _Failed) -> None:
        if stopped.is_set():
            raise ProducerStopped()
        asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()
        if stopped.is_set():
            raise ProducerStopped()

    def emit(batch: Sequence[T]) -> None:
        if batch:
            put(batch)

    def run() -> None:
        try:
            produce(emit)
        except ProducerStopped:
            return
        except BaseException as exc:  # noqa: BLE001 - handed over to the consumer
            try:
                put(_Failed(exc))
            except (ProducerStopped, RuntimeError):  # consumer gone, or loop closed
                pass
            return
        try:
            put(_Done())
        except (ProducerStopped, RuntimeError):
            pass

    worker = loop.run_in_executor(None, run)
    try:
        while True:
            item = await queue.get()
            if isinstance(item, _Done):
                break
            if isinstance(item, _Failed):
                raise item.exc
            for value in item:
                yield value
    finally:
        stopped.set()
        # Make room for a put the worker may be blocked on; it then sees ``stopped``.
        while not queue.empty():
            queue.get_nowait()
        await worker
