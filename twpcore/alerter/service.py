"""``AlerterService``: the companies' Alerter templates, and a card pushed to each called user granted the Alerter.

When a call starts ringing on a device (``call.delivered`` or a ``call.diverted`` to it,
state ``alerting``), each user who receives the call event and is granted the Alerter
application (guide 9.2) gets one ``alerter.card`` event, rendered with that user's
``AlerterMode``, ``AlerterXml`` or ``AlerterUrl``, ``AlerterWidth`` and ``AlerterHeight``.
When the call leaves the device, ``alerter.closed`` follows.  The cards of ringing calls
are also served by ``GET /api/v1/me/alerter``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
from typing import Any, Protocol

import sqlalchemy as sa

from twpcore import rights
from twpcore.alerter import fields as f
from twpcore.alerter.template import Template, TemplateError, parse
from twpcore.events import Event, EventBus, Subscription
from twpcore.parameters import ParameterRegistry
from twpcore.principals import Principal
from twpcore.store import Store
from twpcore.store import schema as t
from twpcore.teamwork.access import TeamworkError, user_row
from twpcore.teamwork.chat import iso

log = logging.getLogger(__name__)
DEFAULT_TEMPLATE = """<alerter vip="true">
  <text x="10" y="10">[-DisplayName-]</text>
  <text x="10" y="35">[-CompanyName-]</text>
  <text x="10" y="60">[-PhoneNumber-]</text>
  <text x="10" y="85" directory="none">Not in your directories</text>
</alerter>"""
"""The card of a user whose ``AlerterXml`` is empty."""
RINGS = ("call.delivered", "call.diverted")
SETTINGS = ("AlerterMode", "AlerterXml", "AlerterUrl", "AlerterWidth", "AlerterHeight", "AlerterVipColor")


class ContactCards(Protocol):
    """The contact cards of the directories (``DirectoryService.contact``): the full card of the caller the call names."""

    async def contact(self, user_id: int, contact_id: int) -> dict[str, Any]: ...


class AlerterService:
    def __init__(self, parameters: ParameterRegistry, events: EventBus, directories: ContactCards | None = None,
                 server_name: str | None = None):
        self.parameters = parameters
        self.events = events
        self.directories = directories
        """Where the caller's full card comes from (the call event carries its name, company and contact id only)."""
        """Call events are read here; ``alerter.card`` and ``alerter.closed`` go out to the user concerned only."""
        self.server_name = server_name or socket.gethostname()
        """``[-ServerName-]``."""
        self.store: Store | None = None
        """Set by the kernel when it opens the store (``Kernel.attach_store``)."""
        self.cards: dict[int, dict[tuple[str, str], dict[str, Any]]] = {}
        """user id → (device, call id) → the card of a call ringing now."""
        self._sub: Subscription | None = None
        self._task: asyncio.Task | None = None
        self.default = parse(DEFAULT_TEMPLATE)

    def _db(self) -> Store:
        if self.store is None:
            raise TeamworkError(503, "not_ready", "the server is starting: its store is not open yet; retry in a moment")
        return self.store

    # -- templates (admins) ----------------------------------------------------------------
    @staticmethod
    def _company(who: Principal, company_id: int) -> None:
        if not who.manages(company_id):
            raise TeamworkError(404, "not_found", f"company {company_id} does not exist among those you manage", "company_id")

    @staticmethod
    def _row_json(row: Any) -> dict[str, Any]:
        template = parse(row.xml)
        return {"id": row.id, "company_id": row.company_id, "name": row.name, "xml": row.xml, "vip": template.vip,
                "fields": sorted(template.fields()), "created_at": iso(row.created_at), "updated_at": iso(row.updated_at)}

    @staticmethod
    def check(xml: str) -> Template:
        try:
            return parse(xml)
        except TemplateError as exc:
            raise TeamworkError(422, "invalid_template", f"field xml: {exc}", "xml") from None

    async def templates(self, who: Principal, company_id: int | None) -> dict[str, Any]:
        a = t.alerter_templates

        def run(conn: sa.Connection) -> list[dict[str, Any]]:
            sel = sa.select(a).order_by(a.c.company_id, a.c.name)
            if company_id is not None:
                sel = sel.where(a.c.company_id == company_id)
            return [self._row_json(r) for r in conn.execute(sel) if who.manages(r.company_id)]

        items = await self._db().read(run)
        return {"items": items, "total": len(items)}

    async def template(self, who: Principal, ident: int) -> dict[str, Any]:
        def run(conn: sa.Connection) -> dict[str, Any]:
            return self._row_json(self._own(conn, who, ident))

        return await self._db().read(run)

    @staticmethod
    def _own(conn: sa.Connection, who: Principal, ident: int) -> Any:
        a = t.alerter_templates
        row = conn.execute(sa.select(a).where(a.c.id == ident)).one_or_none()
        if row is None or not who.manages(row.company_id):
            raise TeamworkError(404, "not_found", f"Alerter template {ident} does not exist among those of the companies you manage", None)
        return row

    async def create(self, who: Principal, body: dict[str, Any]) -> dict[str, Any]:
        self._company(who, body["company_id"])
        self.check(body["xml"])
        name = body["name"].strip()
        if not name or len(name) > 200:
            raise TeamworkError(400, "bad_request", "field name: give the template a name of 1 to 200 characters (the value of AlerterXml)", "name")
        a = t.alerter_templates

        def run(conn: sa.Connection) -> dict[str, Any]:
            if conn.execute(sa.select(t.companies.c.id).where(t.companies.c.id == body["company_id"])).first() is None:
                raise TeamworkError(404, "not_found", f"company {body['company_id']} does not exist", "company_id")
            if conn.execute(sa.select(a.c.id).where(a.c.company_id == body["company_id"], a.c.name == name)).first() is not None:
                raise TeamworkError(409, "conflict", f'company {body["company_id"]} already has an Alerter template named "{name}"; '
                                    "choose another name or replace that one with PUT", "name")
            ident = conn.execute(sa.insert(a).values(company_id=body["company_id"], name=name, xml=body["xml"],
                                                     created_at=dt.datetime.now(dt.UTC)).returning(a.c.id)).scalar_one()
            return self._row_json(conn.execute(sa.select(a).where(a.c.id == ident)).one())

        return await self._db().run(run)

    async def replace(self, who: Principal, ident: int, xml: str) -> dict[str, Any]:
        self.check(xml)
        a = t.alerter_templates

        def run(conn: sa.Connection) -> dict[str, Any]:
            self._own(conn, who, ident)
            conn.execute(sa.update(a).where(a.c.id == ident).values(xml=xml, updated_at=dt.datetime.now(dt.UTC)))
            return self._row_json(conn.execute(sa.select(a).where(a.c.id == ident)).one())

        return await self._db().run(run)

    async def delete(self, who: Principal, ident: int) -> None:
        def run(conn: sa.Connection) -> None:
            self._own(conn, who, ident)
            conn.execute(sa.delete(t.alerter_templates).where(t.alerter_templates.c.id == ident))

        await self._db().run(run)

    # -- cards (users) ---------------------------------------------------------------------
    def _settings(self, conn: sa.Connection, user_id: int) -> dict[str, str]:
        wanted = [n for n in SETTINGS if n in self.parameters.definitions]
        values = {k: r.value for k, r in self.parameters.resolve(conn, user_id, wanted).items()}
        defaults = {"AlerterMode": "XML", "AlerterXml": "", "AlerterUrl": "", "AlerterWidth": "400", "AlerterHeight": "250",
                    "AlerterVipColor": "#F5C542"}
        return {**defaults, **values}

    @staticmethod
    def _size(value: str, fallback: int) -> int:
        try:
            return max(50, min(4000, int(value)))
        except ValueError:
            return fallback

    async def mine(self, who: Principal) -> dict[str, Any]:
        if who.is_admin:
            raise TeamworkError(403, "forbidden", "the Alerter belongs to users; log in as a user", None)

        def run(conn: sa.Connection) -> dict[str, Any]:
            s = self._settings(conn, who.id)
            return {"granted": rights.user_can(conn, who.id, "application", "Alerter"), "mode": s["AlerterMode"].upper(),
                    "width": self._size(s["AlerterWidth"], 400), "height": self._size(s["AlerterHeight"], 250), "vip_color": s["AlerterVipColor"]}

        out = await self._db().read(run)
        out["cards"] = list(self.cards.get(who.id, {}).values())
        return out

    async def contact_of(self, user_id: int, call: dict[str, Any]) -> dict[str, Any] | None:
        """The full card of the caller as ``user_id`` may see it, else the summary the call event carries."""
        summary = call.get("contact") if isinstance(call.get("contact"), dict) else None
        if summary is None:
            return None
        ident = summary.get("contact_id", summary.get("id"))
        if self.directories is not None and isinstance(ident, int):
            try:
                return await self.directories.contact(user_id, ident)
            except Exception:  # not visible to this user, or the index is loading: the summary will do
                log.debug("no contact card %s for user %s", ident, user_id, exc_info=True)
        return {"id": ident, "directory": summary.get("directory"), "name": summary.get("name"), "company": summary.get("company") or "",
                "vip": summary.get("vip")}

    def card_for(self, conn: sa.Connection, user_id: int, event: Event, call: dict[str, Any],
                 contact: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The card of ``call`` for ``user_id`` (``contact``: the caller's card), or None when the user is not granted the Alerter."""
        if not rights.user_can(conn, user_id, "application", "Alerter"):
            return None
        user = user_row(conn, user_id)
        if user is None:
            return None
        s = self._settings(conn, user_id)
        company = conn.execute(sa.select(t.companies.c.name).where(t.companies.c.id == user.company_id)).scalar_one()
        device = str(event.data.get("device") or "")
        if contact is None and isinstance(call.get("contact"), dict) and "numbers" in call["contact"]:
            contact = call["contact"]
        caller, directories = f.caller_fields({**call, "contact": contact}, self.server_name)
        values = {**caller, **f.callee_fields(user, company, device)}
        vip_value = str(contact.get("vip") or "") if contact else ""
        card: dict[str, Any] = {"call_id": call.get("call_id"), "device": device, "number": values["PhoneNumber"],
                                "name": values["DisplayName"], "contact_id": contact.get("id") if contact else None,
                                "directories": directories, "width": self._size(s["AlerterWidth"], 400),
                                "height": self._size(s["AlerterHeight"], 250), "vip_value": vip_value or None,
                                "buttons": ["answer", "divert"], "problem": None}
        if s["AlerterMode"].upper() == "URL":
            url = f.substitute_url(s["AlerterUrl"], values) if s["AlerterUrl"] else None
            card.update(mode="url", url=url, vip=bool(vip_value), background=s["AlerterVipColor"] if vip_value else None)
            if url is None:
                card["problem"] = "AlerterUrl is empty or not an http(s) address; ask an administrator to set it (guide 9.2.1)"
            return card
        template, name = self.default, s["AlerterXml"].strip()
        if name:
            a = t.alerter_templates
            xml = conn.execute(sa.select(a.c.xml).where(a.c.company_id == user.company_id, a.c.name == name)).scalar_one_or_none()
            if xml is None:
                card["problem"] = f'AlerterXml names the template "{name}", which your company does not have; the built-in card is shown'
            else:
                template = parse(xml)
        vip = template.vip and bool(vip_value)
        card.update(mode="xml", template=name or None, vip=vip, background=s["AlerterVipColor"] if vip else None,
                    elements=f.render(template, values, directories))
        return card

    async def _on_event(self, event: Event) -> None:
        call = event.data.get("call")
        if not isinstance(call, dict) or not event.user_ids:
            return
        device = str(event.data.get("device") or "")
        key = (device, str(call.get("call_id")))
        if call.get("state") == "cleared" or event.type == "call.cleared":
            for user_id in list(self.cards):
                if self.cards[user_id].pop(key, None) is not None:
                    self.events.publish(Event("alerter.closed", {"call_id": key[1], "device": device}, event.company_id, event.domain_id,
                                              frozenset({user_id})))
                    if not self.cards[user_id]:
                        del self.cards[user_id]
            return
        if event.type not in RINGS or call.get("state") != "alerting" or call.get("direction") == "outgoing":
            return
        new = [u for u in sorted(event.user_ids) if key not in self.cards.get(u, {})]
        if not new:
            return

        contacts = {user_id: await self.contact_of(user_id, call) for user_id in new}

        def run(conn: sa.Connection) -> list[tuple[int, dict[str, Any]]]:
            out = []
            for user_id in new:
                card = self.card_for(conn, user_id, event, call, contacts[user_id])
                if card is not None:
                    out.append((user_id, card))
            return out

        for user_id, card in await self._db().read(run):
            self.cards.setdefault(user_id, {})[key] = card
            self.events.publish(Event("alerter.card", card, event.company_id, event.domain_id, frozenset({user_id})))

    async def _run(self, sub: Subscription) -> None:
        while True:
            event = await sub.get()
            if event.category != "call":
                continue
            try:
                await self._on_event(event)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad call never stops the Alerter
                log.exception("Alerter card of %s failed", event.type)

    async def start(self) -> None:
        self._sub = self.events.subscribe(
            # Calls of this node only: in a cluster the node that owns the link renders the card, and its
            # alerter.card reaches the other nodes' clients through the shared bus (docs/cluster.md).
            lambda e: e.category == "call" and e.origin is None, name="alerter", queue_size=10000)
        self._task = asyncio.get_running_loop().create_task(self._run(self._sub))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._sub is not None:
            self.events.unsubscribe(self._sub)
            self._sub = None
