"""`twp directory sync|search|reverse` on the store of a server, and the server picking up the CLI's sync."""

from __future__ import annotations

import asyncio

from tests.test_directory_service import FIELDS, SOURCES, MemoryPlugin, person, source
from twpcore import cli


async def test_cli_sync_search_and_reverse(twp_app, tmp_path, capsys, monkeypatch):
    server = await twp_app(plugins=[("memory", MemoryPlugin())])
    admin = await server.admin()
    company = await admin.create("companies", name="ACME")
    paris = await admin.create("domains", company_id=company["id"], name="Paris")
    alice = await admin.create("users", domain_id=paris["id"], login="alice", password="a-long-password-1")
    key = source([person("1", "Dupont", "Jean", o="SSDEI", tel="01 55 17 18 89"), ("uid=2", {"uid": "2"})])
    d = await admin.create("directories", domain_id=paris["id"], name="CRM", connector="memory", options={"source": key}, fields=FIELDS)
    await admin.create("authorizations", object_type="directory", object_ref=f"directory:{d['id']}", subject_type="user", subject_id=alice["id"])
    config = tmp_path / "twp.toml"
    config.write_text(f'[storage]\nurl = "{server.kernel.config.storage.url}"\nbackup_dir = "{tmp_path / "backups"}"\n')
    # The CLI loads plugins from entry points; the test's in-process connector is added the same way.
    from twpcore.app import Kernel
    build = Kernel.build
    monkeypatch.setattr(Kernel, "build", classmethod(lambda cls, c, **kw: build.__func__(cls, c, extra_plugins=[("memory", MemoryPlugin())])))

    def run(*argv):
        code = cli.main(["--config", str(config), *argv])
        return code, capsys.readouterr()

    code, out = await asyncio.to_thread(run, "directory", "sync", "CRM")
    assert code == 0 and "directory CRM: ok" in out.out and "1 created" in out.out and "ignored uid=2: no name and no number" in out.out
    code, out = await asyncio.to_thread(run, "directory", "search", "--user", "alice", "dupont")
    assert code == 0 and "Jean Dupont" in out.out and "phone 01 55 17 18 89" in out.out
    code, out = await asyncio.to_thread(run, "directory", "reverse", "--domain", "ACME/Paris", "0033155171889")
    assert code == 0 and out.out.startswith("0033155171889 -> Jean Dupont (SSDEI), phone in CRM")
    code, out = await asyncio.to_thread(run, "directory", "reverse", "--domain", "ACME/Paris", "0299999999")
    assert code == 1
    SOURCES[key]["down"] = True
    code, out = await asyncio.to_thread(run, "directory", "sync", "CRM")
    assert code == 1 and "source not ready" in out.err
    # The running server notices the sync made by another process and reloads the directory.
    svc = server.kernel.directories
    svc.tick = 0.05
    svc._wake.set()
    user = await server.login("alice", "a-long-password-1")
    for _ in range(100):
        if (await user.get("/api/v1/directories/search", params={"q": "dupont"}))["items"]:
            break
        await asyncio.sleep(0.05)
    assert (await user.get("/api/v1/directories/search", params={"q": "dupont"}))["items"][0]["company"] == "SSDEI"
