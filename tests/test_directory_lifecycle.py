"""One lifecycle for directories (issue 12, item 4).

A directory is one instance with the states of a PBX link, whether declared in twp.toml or
created through the API: a failing sync shows in its state with the reason (in
``GET /api/v1/directories``, ``/directories/{id}`` and the health), and a good sync brings
it back to ``ready``.  The directory service is the one owner of its connector: a
``[directories.<name>]`` table is not set up a second time by the instance manager.
Real sources: the ``files`` connector on a CSV file that goes missing or gets emptied.
"""

from __future__ import annotations

import asyncio

import attrs

from twpcore.hookspecs import hookimpl
from twpcore.kinds import AuthFailed, DirectoryConnector, SourceRecord
from twpcore.schema import setting

CSV = "id;last_name;phone\n1;Durand;+33140000001\n2;Martin;+33140000002\n"


def people(path, **extra):
    return {"demo": {"seed": True},
            "directories": {"people": {"connector": "files", "company": "Demo", "domain": "Paris", "path": str(path), **extra}}}


async def find(admin, name):
    return next(d for d in (await admin.get("/api/v1/directories"))["items"] if d["name"] == name)


def health_item(health, name):
    return next(i for i in health["instances"]["items"] if i["kind"] == "directory_connector" and i["name"] == name)


async def test_a_failing_sync_shows_in_the_state_with_the_reason_then_ready_again(twp_app, tmp_path):
    source = tmp_path / "people.csv"
    source.write_text(CSV)
    server = await twp_app(config=people(source))
    admin = await server.admin()
    d = await find(admin, "people")
    assert (await admin.post(f"/api/v1/directories/{d['id']}/sync"))["status"] == "ok"
    assert (await admin.get(f"/api/v1/directories/{d['id']}"))["state"] == "ready"

    source.unlink()  # the share is not mounted: temporary, retried with back-off
    report = await admin.post(f"/api/v1/directories/{d['id']}/sync")
    assert report["status"] == "failed"
    shown = await admin.get(f"/api/v1/directories/{d['id']}")
    assert shown["state"] == "retrying" and f"file {source} not found" in shown["reason"], shown
    assert shown["next_attempt"] is not None
    assert (await find(admin, "people"))["state"] == "retrying"
    health = await admin.get("/api/v1/health")
    item = health_item(health, "people")
    assert item["state"] == "retrying" and f"file {source} not found" in item["reason"] and item["next_attempt"]
    assert health["status"] == "degraded"

    source.write_text("")  # there, but broken: not temporary
    await admin.post(f"/api/v1/directories/{d['id']}/sync")
    shown = await admin.get(f"/api/v1/directories/{d['id']}")
    assert shown["state"] == "setup_error" and "the file is empty" in shown["reason"], shown

    source.write_text(CSV)  # fixed
    assert (await admin.post(f"/api/v1/directories/{d['id']}/sync"))["status"] == "ok"
    shown = await admin.get(f"/api/v1/directories/{d['id']}")
    assert (shown["state"], shown["reason"], shown["next_attempt"]) == ("ready", None, None)
    assert health_item(await admin.get("/api/v1/health"), "people")["state"] == "ready"


async def test_a_directory_created_through_the_api_has_the_same_states(twp_app, tmp_path):
    source = tmp_path / "partners.csv"
    source.write_text("")
    server = await twp_app(config={"demo": {"seed": True}})
    admin = await server.admin()
    domain = next(d for d in (await admin.get("/api/v1/domains"))["items"] if d["name"] == "Paris")
    d = await admin.create("directories", domain_id=domain["id"], name="Partners", connector="files", options={"path": str(source)})
    assert d["state"] == "ready"
    await admin.post(f"/api/v1/directories/{d['id']}/sync")
    shown = await admin.get(f"/api/v1/directories/{d['id']}")
    assert shown["state"] == "setup_error" and "the file is empty" in shown["reason"]
    item = health_item(await admin.get("/api/v1/health"), "Partners")
    assert item["state"] == "setup_error" and "the file is empty" in item["reason"]

    source.write_text(CSV)
    await admin.post(f"/api/v1/directories/{d['id']}/sync")
    assert (await admin.get(f"/api/v1/directories/{d['id']}"))["state"] == "ready"
    assert health_item(await admin.get("/api/v1/health"), "Partners")["state"] == "ready"

    await admin.delete(f"/api/v1/directories/{d['id']}", status=204)
    assert not any(i["name"] == "Partners" for i in (await admin.get("/api/v1/health"))["instances"]["items"])


@attrs.frozen
class CountingConfig:
    size: int = setting(2, min=0, help="records to give")


class CountingConnector(DirectoryConnector):
    """Counts how often the kernel builds and sets it up."""

    type_name = "counting"
    Config = CountingConfig
    capabilities = frozenset({"sync"})
    built = 0
    setups = 0

    def __init__(self, config, context):
        super().__init__(config, context)
        CountingConnector.built += 1

    async def setup(self):
        CountingConnector.setups += 1

    async def records(self, user=None):
        for i in range(self.config.size):
            yield SourceRecord(str(i), {"id": str(i), "last_name": f"Person {i}", "phone": f"+3314000010{i}"})


class Counting:
    @hookimpl
    def twp_register_directory_connectors(self, register):
        register(CountingConnector)


async def test_a_directory_of_twp_toml_is_set_up_once_by_its_one_owner(twp_app):
    CountingConnector.built = CountingConnector.setups = 0
    config = {"demo": {"seed": True}, "directories": {"counted": {"connector": "counting", "company": "Demo", "domain": "Paris"}}}
    server = await twp_app(config=config, plugins=[("counting", Counting())])
    admin = await server.admin()
    assert (CountingConnector.built, CountingConnector.setups) == (0, 0)  # nothing set up that no sync uses
    d = await find(admin, "counted")
    assert (await admin.post(f"/api/v1/directories/{d['id']}/sync"))["created"] == 2
    assert (CountingConnector.built, CountingConnector.setups) == (1, 1)
    items = [i for i in (await admin.get("/api/v1/plugins"))["instances"] if i["kind"] == "directory_connector"]
    assert [(i["name"], i["state"]) for i in items] == [("counted", "ready")]


async def test_twp_plugins_list_shows_a_directory_whose_last_sync_failed(tmp_path):
    """Offline, `twp plugins list` reads the last sync of each [directories.<name>] table from the store."""
    import json
    import subprocess
    import sys

    from twpcore.app import Kernel
    from twpcore.config import load

    missing = tmp_path / "people.csv"
    cfg = tmp_path / "twp.toml"
    cfg.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/twp.db"\n[demo]\nseed = true\n'
                   f'[directories.people]\nconnector = "files"\ncompany = "Demo"\ndomain = "Paris"\npath = "{missing}"\n')
    kernel = Kernel.build(load(cfg))
    await kernel.start()
    try:
        did = next(i for i, row in kernel.directories.rows.items() if row["name"] == "people")
        assert (await kernel.directories.sync(did, "cli")).status == "failed"
    finally:
        await kernel.stop()
    out = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "twpcore.cli", "--config", str(cfg), "plugins", "list", "--json"],
                                  capture_output=True, text=True, timeout=120, check=True)
    people = next(i for i in json.loads(out.stdout)["instances"] if i["name"] == "people")
    assert people["state"] == "retrying" and f"file {missing} not found" in people["reason"], people


class GuardedConnector(DirectoryConnector):
    """A source that refuses our credentials while ``GuardedConnector.refuse`` is set."""

    type_name = "guarded"
    Config = CountingConfig
    capabilities = frozenset({"sync"})
    refuse = True

    async def setup(self):
        if GuardedConnector.refuse:
            raise AuthFailed("invalid credentials for bind user cn=twp (LDAP result 49)")

    async def records(self, user=None):
        for i in range(self.config.size):
            yield SourceRecord(str(i), {"id": str(i), "last_name": f"Person {i}", "phone": f"+3314000020{i}"})


class Guarded:
    @hookimpl
    def twp_register_directory_connectors(self, register):
        register(GuardedConnector)


async def test_refused_credentials_make_the_directory_auth_failed_until_a_good_sync(twp_app):
    GuardedConnector.refuse = True
    config = {"demo": {"seed": True}, "directories": {"guarded": {"connector": "guarded", "company": "Demo", "domain": "Paris"}}}
    server = await twp_app(config=config, plugins=[("guarded", Guarded())])
    admin = await server.admin()
    d = await find(admin, "guarded")
    await admin.post(f"/api/v1/directories/{d['id']}/sync")
    shown = await admin.get(f"/api/v1/directories/{d['id']}")
    assert shown["state"] == "auth_failed", shown
    assert "invalid credentials for bind user" in shown["reason"]
    assert health_item(await admin.get("/api/v1/health"), "guarded")["state"] == "auth_failed"

    GuardedConnector.refuse = False  # the admin fixed the bind password
    assert (await admin.post(f"/api/v1/directories/{d['id']}/sync"))["created"] == 2
    shown = await admin.get(f"/api/v1/directories/{d['id']}")
    assert (shown["state"], shown["reason"]) == ("ready", None)
