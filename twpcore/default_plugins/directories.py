"""Built-in directory connectors: the TWP users directory, private contacts, client-pushed contacts.

- ``twp_users`` (guide 8.1's "TWP" server type): the enabled users of the directory's
  domain as contacts, their devices as office numbers and their mobile.  The kernel
  re-synchronizes it by itself when users or devices change.
- ``private`` ([TwsPrivate], guide 9.1.1): contacts users create themselves through
  ``/api/v1/me/contacts``; nothing to pull.
- ``push`` (the Outlook add-in of guide 8.8): a user's client uploads its contacts to
  ``POST /api/v1/me/directories/{name}/push``; each push replaces that user's contacts,
  mapped with the directory's fields (Outlook's field names by default).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa

from twpcore.hookspecs import hookimpl
from twpcore.kinds import DirectoryConnector, SourceRecord
from twpcore.plugin_context import kernel_of
from twpcore.store import schema as t

if TYPE_CHECKING:  # pragma: no cover
    from twpcore.directory.service import DirectoryRef


class TwpUsers(DirectoryConnector):
    """The users of the directory's domain, with their devices as numbers."""

    type_name = "twp_users"
    capabilities = frozenset({"sync", "test_connection"})
    description = "TWP users of the directory's domain (guide 8.1, server type TWP)"
    default_fields: ClassVar[dict[str, str]] = {
        "id": "login", "last_name": "last_name", "first_name": "first_name", "email": "email",
        "phone": "devices", "mobile": "mobile",
    }
    directory: DirectoryRef
    """Set by the directory service before ``setup()`` (``DirectoryConnector``)."""

    def source_fields(self) -> list[str]:
        return ["login", "last_name", "first_name", "email", "mobile", "devices", "culture"]

    def _rows(self, conn: sa.Connection) -> list[dict[str, Any]]:
        domain_id = self.directory.domain_id  # set by the directory service
        users = conn.execute(sa.select(t.users.c.id, t.users.c.login, t.users.c.last_name, t.users.c.first_name, t.users.c.email,
                                       t.users.c.mobile, t.users.c.culture)
                             .where(t.users.c.domain_id == domain_id, t.users.c.enabled.is_(True)).order_by(t.users.c.id)).all()
        devices: dict[int, list[str]] = {}
        for r in conn.execute(sa.select(t.devices.c.user_id, t.devices.c.number).where(t.devices.c.domain_id == domain_id,
                                                                                      t.devices.c.user_id.is_not(None)).order_by(t.devices.c.id)):
            devices.setdefault(r.user_id, []).append(r.number)
        return [{**dict(u._mapping), "devices": devices.get(u.id, [])} for u in users]

    async def _users(self) -> list[dict[str, Any]]:
        store = kernel_of(self.context).store  # kernel_of() raises NotRunning unless the server runs, with its store open
        assert store is not None
        return await store.run(self._rows)

    async def test_connection(self) -> str:
        rows = await self._users()
        return f"{len(rows)} enabled users in the domain"

    async def records(self, user: Any = None) -> AsyncIterator[SourceRecord]:
        for row in await self._users():
            uid = row.pop("id")
            yield SourceRecord(f"user:{uid}", row)


class PrivateContacts(DirectoryConnector):
    """[TwsPrivate]: users' own contacts, edited through /api/v1/me/contacts."""

    type_name = "private"
    capabilities = frozenset({"private"})
    description = "private contacts created by each user ([TwsPrivate], guide 9.1.1)"

    async def test_connection(self) -> str:
        return "private contacts are stored by TWP itself: nothing to reach"


class PushedContacts(DirectoryConnector):
    """Contacts uploaded by each user's client (the Outlook add-in of guide 8.8)."""

    type_name = "push"
    capabilities = frozenset({"private", "push"})
    description = "contacts pushed by users' clients, such as the Outlook add-in (guide 8.8)"
    default_fields: ClassVar[dict[str, str]] = {
        "last_name": "LastName", "first_name": "FirstName", "company": "CompanyName", "department": "Department",
        "title": "JobTitle", "email": "Email1Address", "phone": "BusinessTelephoneNumber", "mobile": "MobileTelephoneNumber",
        "home": "HomeTelephoneNumber", "fax": "BusinessFaxNumber", "other": "OtherTelephoneNumber",
        "assistant": "AssistantTelephoneNumber", "address": "BusinessAddressStreet", "city": "BusinessAddressCity",
        "zip": "BusinessAddressPostalCode", "country": "BusinessAddressCountry", "website": "WebPage",
    }

    async def test_connection(self) -> str:
        return "pushed by users' clients to /api/v1/me/directories/{name}/push: nothing to reach"


@hookimpl
def twp_register_directory_connectors(register):
    register(TwpUsers)
    register(PrivateContacts)
    register(PushedContacts)
