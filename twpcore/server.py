"""The composition root: the one place that builds the kernel and the HTTP application over it.

Layers, from the top (checked by the import-linter contracts in ``.importlinter`` and
``tests/test_architecture.py``): the CLI, this module and the test kit; the HTTP layer
(``twpcore.http``); the kernel and its services; the store and low-level modules.  The
kernel never imports the HTTP layer, so what the two must agree on is handed over here:
the routes the HTTP layer serves itself, which no plugin may take.  The kernel's services
are wired, each with the dependencies it uses, in ``Kernel.__init__`` (``twpcore.app``):
``Kernel.build`` is the one way every entry point and test obtains a kernel, and this
module calls it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from twpcore.app import Kernel
from twpcore.config import Config
from twpcore.http.app import create_app, kernel_route_keys


def build_kernel(config: Config, *, extra_plugins: Iterable[tuple[str, Any]] = (), allowlist: Iterable[str] | None = None) -> Kernel:
    """``Kernel.build`` with the HTTP layer's own routes reserved, as every entry point (serve, CLI, test kit) builds it."""
    return Kernel.build(config, extra_plugins=extra_plugins, allowlist=allowlist, reserved_routes=kernel_route_keys())


def build_app(kernel: Kernel, *, manage_kernel: bool = True) -> web.Application:
    """The aiohttp application serving ``/api/v1`` over ``kernel`` (started and stopped with it when ``manage_kernel``)."""
    return create_app(kernel, manage_kernel=manage_kernel)
