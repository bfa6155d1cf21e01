"""Backup and restore of the store (guide 10.7): online, portable between SQLite and PostgreSQL.

A backup is taken while the server keeps serving writes; restoring it into a fresh store
of either kind gives back the same objects through the API.  A damaged backup is refused
and the store it was meant for is left as it was.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import sqlalchemy as sa

import twpcore.backup
from twpcore.backup import BackupError, backup, restore
from twpcore.store import Store, schema
from twpcore.testing.plugin import TwpClient


async def populate(admin) -> dict:
    company = await admin.create("companies", name="SSDEI", description="Société")
    domain = await admin.create("domains", company_id=company["id"], name="Paris", numbering_plan_length=3)
    users = [await admin.create("users", domain_id=domain["id"], login=f"user{i}", first_name=f"Zoé {i}", email=f"u{i}@ssdei.fr",
                                password=f"password-{i}-long", voicemail_password="1234") for i in range(2)]
    device = await admin.create("devices", user_id=users[0]["id"], number="201", password="dev-pass", video=True)
    group = await admin.create("groups", domain_id=domain["id"], name="All", priority=3)
    await admin.post(f"/api/v1/groups/{group['id']}/members", {"user_id": users[0]["id"]}, status=204)
    intercom = await admin.create("intercom_groups", domain_id=domain["id"], name="Hotline")
    await admin.post(f"/api/v1/intercom-groups/{intercom['id']}/devices", {"device_id": device["id"]}, status=204)
    await admin.create(
        "directories", domain_id=domain["id"], name="Public", connector="users", options={"fields": ["name", "phone"], "deep": {"x": 1}}
    )
    await admin.create("phone_queues", domain_id=domain["id"], name="Standard", number="300")
    await admin.put(f"/api/v1/companies/{company['id']}/quotas/Caller", {"seats": 1000})
    await admin.create("authorizations", object_type="application", object_ref="Caller", subject_type="group", subject_id=group["id"])
    await admin.create("parameter_values", name="AuthorizeSms", scope="domain", scope_id=domain["id"], value="yes")
    return {"company": company, "domain": domain, "users": users, "group": group, "intercom": intercom}


async def everything(client, world) -> dict:
    """What an admin reads: every list, relations, quotas, resolved parameters, the audit log."""
    doc = await client.get("/api/v1/openapi.json")
    out = {}
    for path, ops in doc["paths"].items():
        get = ops.get("get")
        if get and "{" not in path and get["x-twp-access"] == "admin" and any(p["name"] == "offset" for p in get.get("parameters", [])):
            out[path] = await client.get(path, params={"limit": "500"})
    out["members"] = await client.get(f"/api/v1/groups/{world['group']['id']}/members")
    out["intercom"] = await client.get(f"/api/v1/intercom-groups/{world['intercom']['id']}/devices")
    out["quotas"] = await client.get(f"/api/v1/companies/{world['company']['id']}/quotas")
    out["parameters"] = await client.get(f"/api/v1/users/{world['users'][0]['id']}/parameters", params={"expert": "true"})
    return utc_times(out)


def utc_times(value):
    """Times as instants: an endpoint may show SQLite's naive UTC times without the offset."""
    if isinstance(value, dict):
        return {k: (_instant(v) if k.endswith("_at") and isinstance(v, str) else utc_times(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [utc_times(v) for v in value]
    return value


def _instant(text):
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


async def restored_server(twp_app, url: str, token: str):
    """A server on ``url`` and a client using the token issued by the original server (tokens are restored too)."""
    server = await twp_app(config={"storage": {"url": url}})
    return server, TwpClient(server.client, token)


def pg_url(postgres_server) -> str:
    return postgres_server.create_database("r_" + uuid.uuid4().hex[:10])


class SlowJson:
    """``json`` for the backup module, 3 ms per row written: the backup then spans many writes."""

    loads = staticmethod(json.loads)

    @staticmethod
    def dumps(value):
        time.sleep(0.003)
        return json.dumps(value)


async def test_online_backup_restores_identically_into_sqlite_and_postgresql(twp_app, tmp_path, postgres_server, monkeypatch):
    source = await twp_app()
    admin = await source.admin()
    world = await populate(admin)
    for i in range(40):
        await admin.create("phone_queues", domain_id=world["domain"]["id"], name=f"queue{i}")

    # Users join a group while the backup runs: it must hold no member without their user.
    monkeypatch.setattr(twpcore.backup, "json", SlowJson)
    running = asyncio.create_task(asyncio.to_thread(backup, source.kernel.store, tmp_path / "online.jsonl.gz"))
    written = 0
    while not running.done():
        user = await admin.create("users", domain_id=world["domain"]["id"], login=f"busy{written}")
        await admin.post(f"/api/v1/groups/{world['group']['id']}/members", {"user_id": user["id"]}, status=204)
        written += 1
    header = await running
    monkeypatch.undo()
    assert written >= 3, "the backup was too quick to overlap with writes"
    assert 2 <= header["counts"]["users"] < 2 + written, "the backup saw neither all nor none of the writes made while it ran"
    with gzip.open(tmp_path / "online.jsonl.gz", "rt") as fh:
        rows = [json.loads(line) for line in fh][1:-1]
    users = {r["r"]["id"] for r in rows if r["t"] == "users"}
    members = {r["r"]["user_id"] for r in rows if r["t"] == "group_members"}
    assert members <= users, "a member whose user is not in the backup: not one snapshot"
    target = await twp_app(config={"storage": {"url": f"sqlite:///{tmp_path}/online-restore.db"}})
    await target.admin()
    restore(target.kernel.store, tmp_path / "online.jsonl.gz")

    # Now a quiet backup, restored into SQLite and PostgreSQL.
    expected = await everything(admin, world)
    header = backup(source.kernel.store, tmp_path / "twp.jsonl.gz")
    assert header["counts"]["users"] == 2 + written and header["dialect"] == "sqlite"
    for url in (f"sqlite:///{tmp_path}/restored.db", pg_url(postgres_server)):
        server, client = await restored_server(twp_app, url, admin.token)
        result = restore(server.kernel.store, tmp_path / "twp.jsonl.gz")
        assert result["counts"] == header["counts"]
        got = await everything(client, world)
        assert got == expected, url.split(":")[0]
        # The restored store goes on: ids continue after the restored ones, passwords still work.
        company = await client.create("companies", name="After restore")
        assert company["id"] > world["company"]["id"]
        user = await server.login("user1", "password-1-long")
        assert (await user.get("/api/v1/me"))["first_name"] == "Zoé 1"


async def test_postgresql_backup_restores_into_sqlite(twp_app, tmp_path, postgres_server):
    source = await twp_app(config={"storage": {"url": pg_url(postgres_server)}})
    admin = await source.admin()
    world = await populate(admin)
    expected = await everything(admin, world)
    header = backup(source.kernel.store, tmp_path / "pg.jsonl.gz")
    assert header["dialect"] == "postgresql"
    server, client = await restored_server(twp_app, f"sqlite:///{tmp_path}/from-pg.db", admin.token)
    restore(server.kernel.store, tmp_path / "pg.jsonl.gz")
    assert await everything(client, world) == expected
    assert (await client.create("companies", name="After restore"))["id"] > world["company"]["id"]


def rewrite(src, dst, edit) -> None:
    with gzip.open(src, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    with gzip.open(dst, "wt", encoding="utf-8") as out:
        out.write("\n".join(edit(lines)) + "\n")


async def test_a_damaged_backup_is_refused_and_changes_nothing(twp_app, tmp_path):
    source = await twp_app()
    admin = await source.admin()
    world = await populate(admin)
    good = tmp_path / "good.jsonl.gz"
    backup(source.kernel.store, good)
    raw = good.read_bytes()

    target = await twp_app(config={"storage": {"url": f"sqlite:///{tmp_path}/target.db"}})
    target_admin = await target.admin()
    await target_admin.create("companies", name="Precious")
    before = await target_admin.get("/api/v1/companies")

    def header_revision(lines):
        header = json.loads(lines[0])
        header["revision"] = "0000_other"
        return [json.dumps(header), *lines[1:]]

    def duplicate_user(lines):
        users = [line for line in lines if json.loads(line).get("t") == "users"]
        end = json.loads(lines[-1])
        end["counts"]["users"] += 1
        return [*lines[:-1], users[0], json.dumps(end)]

    damaged = {
        "cut.jsonl.gz": (lambda p: p.write_bytes(raw[: len(raw) // 2]), "cannot be read as a TWP backup"),
        "garbage.jsonl.gz": (lambda p: p.write_bytes(b"\x00\x01 this is not a backup"), "not a TWP backup"),
        "plain.jsonl.gz": (lambda p: p.write_bytes(gzip.compress(b'{"hello": "world"}\n')), "not a TWP backup (no twp-backup header)"),
        "no-end.jsonl.gz": (lambda p: rewrite(good, p, lambda lines: lines[:-1]), "truncated (no end marker)"),
        "lost-row.jsonl.gz": (
            lambda p: rewrite(good, p, lambda lines: [ln for ln in lines if '"login": "user1"' not in ln]),
            "do not match the counts",
        ),
        "bad-line.jsonl.gz": (lambda p: rewrite(good, p, lambda lines: [lines[0], "{oops", *lines[1:]]), "line 2 is not valid JSON"),
        "other-revision.jsonl.gz": (lambda p: rewrite(good, p, header_revision), "schema revision 0000_other differs"),
        "duplicate.jsonl.gz": (lambda p: rewrite(good, p, duplicate_user), "cannot be loaded"),
        "missing.jsonl.gz": (lambda p: None, "no such backup file"),
    }
    for name, (make, words) in damaged.items():
        path = tmp_path / name
        make(path)
        with pytest.raises(BackupError) as caught:
            restore(target.kernel.store, path)
        assert str(caught.value).startswith(str(path)) and words in str(caught.value), (name, str(caught.value))
    assert await target_admin.get("/api/v1/companies") == before
    # The good one restores; the target's own company is replaced by the backup's.
    restore(target.kernel.store, good)
    names = target.run(lambda c: sorted(c.execute(sa.select(schema.companies.c.name)).scalars()))
    assert names == [world["company"]["name"]]


def twp(config, *args, stdin=None):
    return subprocess.run([sys.executable, "-m", "twpcore.cli", "--config", str(config), *args], capture_output=True, text=True,
                          timeout=60, input=stdin, env=dict(os.environ), cwd=config.parent)


def test_twp_backup_and_restore_commands(tmp_path):
    source_cfg, target_cfg = tmp_path / "source.toml", tmp_path / "target.toml"
    source_cfg.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/source.db"\nbackup_dir = "{tmp_path}/backups"\n')
    target_cfg.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/target.db"\n')
    store = Store(f"sqlite:///{tmp_path}/source.db")
    store.upgrade()
    store.transaction(lambda c: c.execute(sa.insert(schema.companies).values(name="SSDEI")))
    store.close()

    made = twp(source_cfg, "backup")
    assert made.returncode == 0, made.stderr
    files = list((tmp_path / "backups").glob("twp-*.jsonl.gz"))
    assert len(files) == 1 and f"backup written to {files[0]}" in made.stdout

    refused = twp(target_cfg, "restore", str(files[0]))
    assert refused.returncode == 2 and "pass --yes to confirm" in refused.stderr
    done = twp(target_cfg, "restore", "--yes", str(files[0]))
    assert done.returncode == 0 and "restored" in done.stdout, done.stderr
    target = Store(f"sqlite:///{tmp_path}/target.db")
    assert target.transaction(lambda c: list(c.execute(sa.select(schema.companies.c.name)).scalars())) == ["SSDEI"]
    target.close()
    (tmp_path / "broken.jsonl.gz").write_bytes(files[0].read_bytes()[:100])
    broken = twp(target_cfg, "restore", "--yes", str(tmp_path / "broken.jsonl.gz"))
    assert broken.returncode == 2 and "broken.jsonl.gz" in broken.stderr and "Traceback" not in broken.stderr
