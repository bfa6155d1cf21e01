"""Configured plugin instances: checking their config, starting them, retrying, reporting state.

Every ``[pbx.links.*]``, ``[directories.*]``, ``[sms.providers.*]`` table and every
installed auth method becomes an ``Instance`` with a visible state:

- ``disabled``: ``enabled = false`` in config;
- ``not_installed``: no loaded plugin provides the type it names;
- ``config_error``: its options do not fit the type's ``Config`` class;
- ``configured``: checked, not started (what ``twp plugins list`` shows offline);
- ``starting``, ``ready``;
- ``retrying``: ``setup`` raised ``NotReady``; ``next_attempt`` says when it is tried again;
- ``auth_failed``: the remote system refused the credentials (not retried);
- ``setup_error``: ``setup`` raised anything else (not retried).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import attrs

from twpcore.config import InstanceSpec
from twpcore.kinds import AuthFailed, InstanceContext, Kind, NotReady, PluginType
from twpcore.plugins import TypeRecord, describe_exception
from twpcore.schema import ConfigErrors, structure

log = logging.getLogger(__name__)

TYPE_KEY = {Kind.PBX_DRIVER: "driver", Kind.DIRECTORY_CONNECTOR: "connector", Kind.SMS_PROVIDER: "provider", Kind.AUTH_METHOD: "method"}


@attrs.define(eq=False)
class Instance:
    spec: InstanceSpec
    state: str = "starting"
    reason: str | None = None
    type: TypeRecord | None = None
    obj: PluginType | None = None
    attempts: int = 0
    next_attempt: float | None = None
    since: float = attrs.field(factory=time.time)
    task: asyncio.Task | None = attrs.field(default=None, repr=False)

    def set(self, state: str, reason: str | None = None) -> None:
        if state != self.state or reason != self.reason:
            level = logging.INFO if state in ("ready", "disabled", "starting", "configured") else logging.WARNING
            log.log(level, "%s %s: %s%s", self.spec.kind.label, self.spec.name, state, f" ({reason})" if reason else "")
        self.state, self.reason, self.since = state, reason, time.time()

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.spec.kind.value,
            "name": self.spec.name,
            "type": self.spec.type_name,
            "config": self.spec.path,
            "plugin": self.type.plugin if self.type else None,
            "state": self.state,
            "reason": self.reason,
            "attempts": self.attempts,
            "next_attempt": self.next_attempt,
            "capabilities": sorted(self.type.cls.capabilities) if self.type else [],
        }


def check_spec(spec: InstanceSpec, types: dict[Kind, dict[str, TypeRecord]], source: str) -> tuple[TypeRecord | None, Any, str, str | None]:
    """Resolve an instance's type and check its options; return (type, config, state, reason)."""
    if not spec.enabled:
        return None, None, "disabled", "enabled = false in config"
    rec = types[spec.kind].get(spec.type_name)
    if rec is None:
        known = ", ".join(sorted(types[spec.kind])) or "none"
        return None, None, "not_installed", (
            f'{source}: {spec.path}.{TYPE_KEY[spec.kind]}: no loaded plugin provides the {spec.kind.label} "{spec.type_name}"; '
            f"install the package that provides it, or use one of: {known}")
    try:
        cfg = structure(rec.cls.Config, spec.options, source=source, path=spec.path)
    except ConfigErrors as exc:
        return rec, None, "config_error", str(exc)
    return rec, cfg, "configured", None


class InstanceManager:
    """Starts every configured instance and keeps retrying the ones that are not ready."""

    def __init__(self, kernel: Any):
        self.kernel = kernel
        self.instances: dict[tuple[Kind, str], Instance] = {}
        self.max_backoff = 300.0

    def load(self, specs: list[InstanceSpec]) -> None:
        for spec in specs:
            inst = Instance(spec)
            inst.type, config, state, reason = check_spec(spec, self.kernel.plugins.types, self.kernel.config.source)
            inst.set(state, reason)
            if state == "configured":
                assert inst.type is not None
                ctx = InstanceContext(spec.name, spec.kind, self.kernel, logging.getLogger(f"twp.{spec.kind.value}.{spec.name}"))
                try:
                    inst.obj = inst.type.cls(config, ctx)
                except Exception as exc:  # noqa: BLE001
                    inst.set("setup_error", describe_exception(exc))
                    self.kernel.plugins.fail(inst.type.plugin, f"setup of {spec.path}", exc)
            self.instances[(spec.kind, spec.name)] = inst

    async def start_all(self) -> None:
        pending = [i for i in self.instances.values() if i.state == "configured" and i.obj is not None]
        for inst in pending:
            inst.set("starting")
        await asyncio.gather(*(self._setup(i) for i in pending))

    async def _setup(self, inst: Instance) -> None:
        assert inst.obj is not None
        inst.attempts += 1
        try:
            await inst.obj.setup()
        except NotReady as exc:
            delay = exc.retry_after if exc.retry_after is not None else min(self.max_backoff, 2.0 ** min(inst.attempts, 9))
            delay *= random.uniform(0.8, 1.2)
            inst.next_attempt = time.time() + delay
            inst.set("retrying", exc.reason)
            inst.task = asyncio.get_running_loop().create_task(self._retry_later(inst, delay))
            return
        except AuthFailed as exc:
            inst.set("auth_failed", str(exc) or "credentials refused")
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            inst.set("setup_error", describe_exception(exc))
            self.kernel.plugins.fail(inst.type.plugin if inst.type else "?", f"setup of {inst.spec.path}", exc)
            return
        inst.next_attempt = None
        inst.set("ready")

    async def _retry_later(self, inst: Instance, delay: float) -> None:
        await asyncio.sleep(delay)
        if inst.obj is not None:
            try:
                await inst.obj.close()
            except Exception:  # noqa: BLE001
                log.debug("close before retry of %s failed", inst.spec.path, exc_info=True)
        inst.set("starting")
        await self._setup(inst)

    async def close_all(self) -> None:
        for inst in self.instances.values():
            if inst.task and not inst.task.done():
                inst.task.cancel()
        for inst in self.instances.values():
            if inst.obj is not None and inst.state in ("ready", "retrying", "starting"):
                try:
                    await asyncio.wait_for(inst.obj.close(), 10)
                except Exception as exc:  # noqa: BLE001
                    log.warning("closing %s failed: %s", inst.spec.path, describe_exception(exc))

    def ready(self, kind: Kind) -> dict[str, PluginType]:
        return {name: i.obj for (k, name), i in self.instances.items() if k == kind and i.state == "ready" and i.obj is not None}

    def as_json(self) -> list[dict[str, Any]]:
        return [i.as_json() for i in self.instances.values()]
