"""Forward rules at work: simple rules applied in the PBX, advanced rules evaluated on each incoming call.

Simple rules (admin guide 9.6) of the active profile, and imposed ones, become the PBX
forwarding of the user's first device through its driver (``set_forwarding``,
``set_do_not_disturb``).  What TWP set is applied again when the device's PBX link comes back
(a PBX that restarted forgets it) and whenever the active profile or a rule changes.

Advanced rules are evaluated by TWP when a call rings a user's device (the telephony
service calls ``on_call_change``).  The first rule whose conditions hold fires:
``immediate`` deflects the call at once, ``no_answer`` after ``WAITTIMENOREPLY`` seconds
if the call still rings, ``busy`` at once when the device has another call.  Before a
forward, ``CIRCULARLEVEL`` is checked against the devices the call was already forwarded
from; with ``TRANSFERVERIFICATION`` a forward the PBX refuses, or one to a supervised device
that is not answered within ``WAITTIMENOREPLY``, goes to ``EMERGENCYNUMBER`` (tried up to
``EMERGENCYNUMBERCALLTIMES`` times).  Every decision is stored with its reason
(``forward_decisions``) and the call log entry of the forwarded call names the rule in its cause.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

import attrs
import sqlalchemy as sa

from twpcore import calendars
from twpcore.dialing import DialingPlans
from twpcore.parameters import ParameterRegistry
from twpcore.rules import store as rules_db
from twpcore.rules.model import CallFacts, CompiledRule, Decision, compile_rule, decide
from twpcore.store import Store
from twpcore.store import schema as t

log = logging.getLogger(__name__)
CALL_PARAMETERS = ["WAITTIMENOREPLY", "CIRCULARLEVEL", "TRANSFERVERIFICATION", "EMERGENCYNUMBER", "EMERGENCYNUMBERCALLTIMES"]
PBX_TYPES = ("immediate", "busy", "no_answer")
CAUSE_LENGTH = 64
CACHE_SECONDS = 10.0
"""How long a user's rules and Rules parameters are kept in memory; changes through the rules API take effect at once."""


@attrs.frozen
class UserRules:
    """A user's rules in effect, compiled, with the Rules parameters of the user."""

    simple: list[dict[str, Any]]
    advanced: list[CompiledRule]
    wait: float
    circular: int
    verify: bool
    emergency: str
    emergency_times: int
    uses_calendar: bool
    loaded: float = 0.0
    """``time.monotonic()`` when read: older than ``CACHE_SECONDS``, it is read again (parameters may have changed)."""


class RulesService:
    def __init__(self, telephony: Any, presence: Any, parameters: ParameterRegistry, dialing_plans: DialingPlans,
                 store: Callable[[], Store | None]):
        self.telephony = telephony
        self.presence = presence
        self.parameters = parameters
        self.dialing_plans = dialing_plans
        self._store = store
        self.cache: dict[int, UserRules] = {}
        """user id → rules in effect; dropped when the user's rules, profile or parameters change."""
        self.applied: dict[tuple[int, str], dict[str, str | None]] = {}
        """(domain id, device) → what TWP set in the PBX: forward type → number, ``dnd`` → "on"."""
        self.hops: dict[str, list[str]] = {}
        """call id → devices an advanced rule already forwarded it from (CIRCULARLEVEL at call time)."""
        self.why: dict[tuple[int, str, str], str] = {}
        """(domain id, device, call id) → the cause the call log shows when the call leaves the device."""
        self._tasks: set[asyncio.Task] = set()
        presence.on_profile_switch = self.profile_switched
        self.now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
        """The clock the rules read (a test sets another day)."""
        self.decided = 0
        """Incoming calls the rules looked at (for health and tests)."""

    def store(self) -> Store:
        store = self._store()
        if store is None:
            raise RuntimeError("the rules service has no store: the kernel has not started it")
        return store

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def forget(self, user_id: int | None = None) -> None:
        """Drop cached rules (of one user, or of everybody after a parameter change)."""
        if user_id is None:
            self.cache.clear()
        else:
            self.cache.pop(user_id, None)

    # -- loading ------------------------------------------------------------------------------------
    def load(self, conn: sa.Connection, user_id: int) -> UserRules:
        rows = rules_db.rules_in_effect(conn, user_id)
        lists = {lst for r in rows for key in ("include", "exclude") for lst in ((r.get("conditions") or {}).get(key, {}).get("lists", []))}
        members = rules_db.list_members(conn, lists)
        params = self.parameters.resolve(conn, user_id, CALL_PARAMETERS)
        advanced = [compile_rule(r, members) for r in rows if r["kind"] == "advanced"]
        return UserRules(
            simple=[r for r in rows if r["kind"] == "simple"], advanced=advanced,
            wait=max(0.0, float(params["WAITTIMENOREPLY"].value)), circular=int(params["CIRCULARLEVEL"].value),
            verify=params["TRANSFERVERIFICATION"].as_bool(), emergency=params["EMERGENCYNUMBER"].value.strip(),
            emergency_times=max(0, int(params["EMERGENCYNUMBERCALLTIMES"].value)),
            uses_calendar=any("calendar" in r.presence for r in advanced), loaded=time.monotonic(),
        )

    async def rules_of(self, user_id: int) -> UserRules:
        cached = self.cache.get(user_id)
        if cached is None or time.monotonic() - cached.loaded > CACHE_SECONDS:
            cached = self.cache[user_id] = await self.store().read(self.load, user_id)
        return cached

    # -- simple rules in the PBX ----------------------------------------------------------------------
    def wanted(self, rules: UserRules) -> dict[str, str | None]:
        """The PBX forwarding the simple rules in effect ask for (the first rule of each type wins)."""
        out: dict[str, str | None] = dict.fromkeys(PBX_TYPES)
        out["dnd"] = None
        for r in rules.simple:
            if out.get(r["forward"]) is None:
                out[r["forward"]] = r["target"] if r["forward"] != "dnd" else "on"
        return out

    async def apply_simple(self, user_id: int, *, force: bool = False) -> dict[str, Any]:
        """Set the PBX forwarding of the user's first supervised device to what their simple rules ask; returns what was done."""
        self.forget(user_id)
        rules = await self.rules_of(user_id)
        devices = await self.store().read(rules_db.user_devices, user_id)
        dev = next((self.telephony.devices[k] for k in self.telephony.devices if k[1] in devices and self.telephony.devices[k].user_id == user_id),
                   None)
        if dev is None:
            return {"applied": False, "reason": "you have no supervised device: the rules are applied when one is"}
        key = (dev.domain_id, dev.number)
        before = self.applied.get(key, {})
        want = self.wanted(rules)
        plan = await self.store().read(self.dialing_plans.get, dev.domain_id)
        done: dict[str, Any] = {}
        for ftype, target in want.items():
            if target is None and before.get(ftype) is None:
                continue  # TWP never set it: a forward set at the phone stays
            if not force and before.get(ftype) == target:
                continue
            if ftype == "dnd":
                await self.telephony.run(dev, "do_not_disturb", "set_do_not_disturb", target is not None)
            else:
                dialed = plan.to_dialable(target).output if target else None
                await self.telephony.run(dev, "forwarding", "set_forwarding", ftype, dialed or target)
            done[ftype] = target
        self.applied[key] = {k: v for k, v in want.items() if v is not None}
        return {"applied": True, "device": dev.number, "forwarding": {k: v for k, v in want.items() if v is not None and k != "dnd"},
                "do_not_disturb": want["dnd"] is not None, "changed": done}

    async def profile_switched(self, user_id: int) -> None:
        """A schedule made another profile active: its simple rules go to the PBX (a link that is down gets them when back)."""
        try:
            await self.apply_simple(user_id)
        except Exception as exc:  # noqa: BLE001 - the switch stays; the link's return applies them
            log.warning("profile of user %s switched by its schedule; forward rules not applied yet: %s", user_id, exc)

    def link_up(self, link_name: str) -> None:
        """A PBX link came back: what TWP set in the PBX for its devices is set again."""
        self._spawn(self._reapply(link_name))

    async def _reapply(self, link_name: str) -> None:
        link = self.telephony.links.get(link_name)
        if link is None or link.domain_id is None:
            return
        for _ in range(200):  # the link's devices are monitored first (resync); forwarding needs the link up only
            if link.connected:
                break
            await asyncio.sleep(0.05)
        users = await self.store().read(_users_with_simple_rules, link.domain_id)
        for user_id in users:
            dev_numbers = [n for (d, n), dev in self.telephony.devices.items() if d == link.domain_id and dev.user_id == user_id]
            if not any(self.telephony.devices[(link.domain_id, n)].link == link_name for n in dev_numbers):
                continue
            try:
                result = await self.apply_simple(user_id, force=True)
                log.info("PBX link %s back: forward rules of user %s applied again: %s", link_name, user_id, result.get("changed"))
            except Exception as exc:  # noqa: BLE001 - one user's forwarding must not stop the others'
                log.warning("PBX link %s back: forward rules of user %s not applied: %s", link_name, user_id, exc)

    # -- advanced rules on incoming calls -------------------------------------------------------------
    def on_call_change(self, dev: Any, change_type: str, data: dict[str, Any]) -> None:
        """Called by the telephony service for each call change of a device, before it is published."""
        call = data.get("call")
        if not isinstance(call, dict):
            return
        key = (dev.domain_id, dev.number, str(call.get("call_id")))
        if change_type == "call.delivered":
            if dev.user_id and call.get("direction") == "incoming" and call.get("state") == "alerting":
                self._spawn(self._incoming(dev, dict(call)))
        elif change_type in ("call.diverted", "call.cleared") and key in self.why:
            why = self.why.pop(key)
            if change_type == "call.diverted":
                data["cause"] = why[:CAUSE_LENGTH]
        if change_type == "call.cleared" and len(self.hops) > 10_000:
            self.hops.clear()

    async def facts_for(self, dev: Any, call: dict[str, Any], rules: UserRules, at: dt.datetime) -> CallFacts:
        user_id = dev.user_id
        remote = str(call.get("remote") or "")
        model = self.telephony.model(dev.domain_id)
        busy = any(c.call_id != call.get("call_id") for c in model.calls_of(dev.number))
        contact = call.get("contact") if isinstance(call.get("contact"), dict) else None
        in_event = False
        if rules.uses_calendar:
            events = await self.store().read(calendars.events_between, user_id, at, at + dt.timedelta(seconds=1))
            in_event = any(e["show_as"] in ("busy", "away") for e in events)
        return CallFacts(at=at, presence=self.presence.state_of(user_id).state, caller=remote,
                         internal=(dev.domain_id, remote) in self.telephony.devices, busy=busy,
                         contact_id=contact.get("contact_id") if contact else None, in_calendar_event=in_event)

    async def _incoming(self, dev: Any, call: dict[str, Any]) -> None:
        call_id = str(call.get("call_id"))
        try:
            rules = await self.rules_of(dev.user_id)
            if not rules.advanced:
                return
            self.decided += 1
            at = self.now()
            facts = await self.facts_for(dev, call, rules, at)
            decision = decide(rules.advanced, facts)
            rule = decision.rule
            if rule is None:
                return
            chain = self.hops.setdefault(call_id, [])
            if rules.circular > 0 and (rule.target in chain or rule.target == dev.number or len(chain) >= rules.circular):
                await self.note(dev, call, rule, "refused", None,
                                f"{rule.describe()} fires but forwarding to {rule.target} would loop: the call was already forwarded "
                                f"from {', '.join(chain + [dev.number])} (CIRCULARLEVEL {rules.circular}); the call keeps ringing")
                return
            if rule.forward == "no_answer":
                await asyncio.sleep(rules.wait)
                current = self.telephony.model(dev.domain_id).call(dev.number, call_id)
                if current is None or current.state != "alerting":
                    return  # answered, or gone, meanwhile
                reason = f"{rule.describe()} fires: every condition holds and the call rang {rules.wait:g} s unanswered (WAITTIMENOREPLY)"
            else:
                reason = f"{rule.describe()} fires: every condition holds"
            chain.append(dev.number)
            await self.forward(dev, call, rule, rule.target, reason, rules)
        except asyncio.CancelledError:
            raise
        except Exception:  # a rule problem never stops the telephony; the call rings as usual
            log.exception("forward rules: call %s at device %s not handled", call_id, dev.number)

    async def forward(self, dev: Any, call: dict[str, Any], rule: CompiledRule, target: str, reason: str, rules: UserRules,
                      owner: int | None = None) -> bool:
        """Deflect the call ringing ``dev`` to ``target``; ``owner`` is the user whose rule it is (default: the device's user)."""
        call_id = str(call.get("call_id"))
        plan = await self.store().read(self.dialing_plans.get, dev.domain_id)
        dialed = plan.to_dialable(target).output or target
        self.why[(dev.domain_id, dev.number, call_id)] = f"forward rule: {rule.name}"
        try:
            await self.telephony.run(dev, "deflect", "deflect", call_id, dialed)
        except Exception as exc:  # noqa: BLE001 - the PBX refused: say so, and try the emergency number if asked
            self.why.pop((dev.domain_id, dev.number, call_id), None)
            detail = getattr(exc, "detail", None) or str(exc)
            await self.note(dev, call, rule, "failed", dialed, f"{reason}; the PBX refused the forward to {dialed}: {detail}", owner)
            if rules.verify and rules.emergency and target != rules.emergency:
                await self.to_emergency(dev, call, rule, rules, f"the forward to {dialed} failed", owner)
            return False
        await self.note(dev, call, rule, "forwarded", dialed, reason, owner)
        if rules.verify and rules.emergency and target != rules.emergency:
            self._spawn(self._verify(dev.domain_id, dialed, call, rule, rules, owner or dev.user_id))
        return True

    async def to_emergency(self, dev: Any, call: dict[str, Any], rule: CompiledRule, rules: UserRules, why: str, owner: int | None) -> None:
        for attempt in range(1, max(1, rules.emergency_times) + 1):
            reason = f"TRANSFERVERIFICATION: {why}; to EMERGENCYNUMBER {rules.emergency} (attempt {attempt} of {rules.emergency_times})"
            if await self.forward(dev, call, rule, rules.emergency, reason, attrs.evolve(rules, verify=False), owner):
                return

    async def _verify(self, domain_id: int, target: str, call: dict[str, Any], rule: CompiledRule, rules: UserRules, owner: int) -> None:
        """TRANSFERVERIFICATION for a forward to a supervised device: not answered in time, the call goes to the emergency number."""
        target_dev = self.telephony.devices.get((domain_id, target))
        if target_dev is None:
            return  # outside TWP's supervision: only a refused forward can be seen
        await asyncio.sleep(rules.wait)
        current = self.telephony.model(domain_id).call(target, str(call.get("call_id")))
        if current is None or current.state != "alerting":
            return
        await self.to_emergency(target_dev, call, rule, rules, f"{target} did not answer within {rules.wait:g} s (WAITTIMENOREPLY)", owner)

    async def note(self, dev: Any, call: dict[str, Any], rule: CompiledRule | None, action: str, target: str | None, reason: str,
                   owner: int | None = None) -> None:
        values = {"user_id": owner or dev.user_id, "device": dev.number, "call_id": str(call.get("call_id"))[:128],
                  "caller": str(call.get("remote") or "")[:64], "rule_id": rule.id if rule else None,
                  "rule_name": rule.name if rule else "", "action": action, "target": target, "reason": reason,
                  "at": self.now()}
        log.info("forward rules: call %s at %s: %s", values["call_id"], dev.number, reason)
        await self.store().run(lambda c: c.execute(sa.insert(t.forward_decisions).values(**values)))

    # -- explain ----------------------------------------------------------------------------------------
    async def explain(self, user_id: int, domain_id: int, facts: CallFacts) -> dict[str, Any]:
        self.forget(user_id)
        rules = await self.rules_of(user_id)
        decision: Decision = decide(rules.advanced, facts, explain=True)
        out = decision.as_json()
        out["facts"] = {"at": facts.at.isoformat(), "presence": facts.presence, "caller": facts.caller, "internal": facts.internal,
                        "busy": facts.busy, "contact_id": facts.contact_id, "in_calendar_event": facts.in_calendar_event}
        if decision.rule is not None:
            out["then"] = {"immediate": "the call is forwarded at once", "busy": "the call is forwarded at once (the device is busy)",
                           "no_answer": f"the call rings {rules.wait:g} s (WAITTIMENOREPLY), then is forwarded if unanswered"}[decision.rule.forward]
        out["simple_rules_in_pbx"] = {k: v for k, v in self.wanted(rules).items() if v is not None}
        return out


def _users_with_simple_rules(conn: sa.Connection, domain_id: int) -> list[int]:
    r = t.forward_rules.c
    return sorted(set(conn.execute(sa.select(r.user_id).join(t.users, t.users.c.id == r.user_id)
                                   .where(t.users.c.domain_id == domain_id, r.kind == "simple", r.active.is_(True))).scalars()))
