"""What the reception tests share: drivers on the CSTA XML base, a directory the test fills, a tenant on the PBX simulator.

Every test runs a real server (``twp_app``) whose CSTA XML link talks TCP to the
``twp_csta`` PBX simulator; users act through the HTTP API and watch their WebSocket.
"""

from __future__ import annotations

import uuid
from typing import Any

import attrs

from twp_csta.driver import CSTA_CAPABILITIES, CstaXmlDriver
from twp_csta.testing import start_lab
from twpcore.hookspecs import hookimpl
from twpcore.kinds import DirectoryConnector, SourceRecord
from twpcore.schema import setting


class PickupDriver(CstaXmlDriver):
    """The CSTA XML base as it ships: directed pickup, message waiting, caller details once answered (CSTA, guide 9.1.7)."""

    type_name = "csta_reception"


class RingingDetailsDriver(CstaXmlDriver):
    """A driver whose PBX names the caller while the phone rings (as A5000 VTI-XML does, guide 9.1.7)."""

    type_name = "csta_ringing_details"
    capabilities = CstaXmlDriver.capabilities | {"details_at_ringing"}


class NoPickupDriver(CstaXmlDriver):
    """A PBX without directed pickup."""

    type_name = "csta_no_pickup"
    capabilities = CSTA_CAPABILITIES


BOOKS: dict[str, list[tuple[str, dict[str, str]]]] = {}


@attrs.frozen
class BookConfig:
    book: str = setting(help="key of the test's list of contacts")


class Book(DirectoryConnector):
    """A directory whose contacts the test writes (the LDAP, SQL and file connectors have their own tests)."""

    type_name = "book"
    Config = BookConfig
    capabilities = frozenset({"sync"})

    async def records(self, user: Any = None) -> Any:
        for rid, fields in BOOKS[self.config.book]:
            yield SourceRecord(rid, fields)


class Plugins:
    @hookimpl
    def twp_register_pbx_drivers(self, register: Any) -> None:
        register(PickupDriver)
        register(RingingDetailsDriver)
        register(NoPickupDriver)

    @hookimpl
    def twp_register_directory_connectors(self, register: Any) -> None:
        register(Book)


PLUGINS = [("reception-test", Plugins())]
FIELDS = {"id": "uid", "last_name": "sn", "first_name": "givenName", "phone": "telephoneNumber"}


async def lab_of(twp_app: Any, driver: str = "csta_reception", **kw: Any) -> Any:
    return await start_lab(twp_app, driver, plugins=PLUGINS, **kw)


async def set_parameter(lab: Any, name: str, value: str, *, user: str | None = None) -> dict[str, Any]:
    """Set ``name`` for one user of the lab, or as the default value; ``""`` removes that value (empty values are refused)."""
    body: dict[str, Any] = {"name": name, "value": value, "scope": "user" if user else "default"}
    if user:
        body["scope_id"] = lab.user_ids[user]
    existing = (await lab.admin.get("/api/v1/parameter-values", params={"name": name}))["items"]
    for item in existing:
        if item["name"] == name and item["scope"] == body["scope"] and (not user or item.get("scope_id") == body["scope_id"]):
            if not value:
                await lab.admin.call("DELETE", f"/api/v1/parameter-values/{item['id']}", status=204)
                return item
            return await lab.admin.call("PATCH", f"/api/v1/parameter-values/{item['id']}", {"value": value}, status=200)
    if not value:
        return {}
    return await lab.admin.create("parameter_values", **body)


async def bosses_group(lab: Any, name: str, *members: str) -> dict[str, Any]:
    group = await lab.admin.create("groups", domain_id=lab.domain_id, name=name)
    for login in members:
        await lab.admin.post(f"/api/v1/groups/{group['id']}/members", {"user_id": lab.user_ids[login]}, status=204)
    return group


async def device_id(lab: Any, number: str) -> int:
    return int((await lab.admin.get("/api/v1/devices", params={"number": number}))["items"][0]["id"])


async def intercom_with_book(lab: Any, name: str, numbers: tuple[str, ...], watchers: tuple[str, ...],
                             contacts: list[tuple[str, dict[str, str]]]) -> dict[str, Any]:
    """Guide 9.1.7 steps 1-2: an intercom group of the devices, granted to the users, and a directory granted to the group."""
    group = await lab.admin.create("intercom_groups", domain_id=lab.domain_id, name=name)
    for number in numbers:
        await lab.admin.post(f"/api/v1/intercom-groups/{group['id']}/devices", {"device_id": await device_id(lab, number)}, status=204)
    for login in watchers:
        await lab.admin.create("authorizations", object_type="intercom_group", object_ref=f"intercom_group:{group['id']}",
                               subject_type="user", subject_id=lab.user_ids[login])
    key = uuid.uuid4().hex
    BOOKS[key] = contacts
    book = await lab.admin.create("directories", domain_id=lab.domain_id, name=f"Book {name}", connector="book",
                                  options={"book": key}, fields=FIELDS)
    await lab.admin.create("authorizations", object_type="directory", object_ref=f"directory:{book['id']}",
                           subject_type="intercom_group", subject_id=group["id"])
    report = await lab.admin.post(f"/api/v1/directories/{book['id']}/sync")
    assert report["status"] == "ok", report
    return group
