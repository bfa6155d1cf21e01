"""The store: migrations match the tables, transactions are atomic, constraints answer clearly.

Run against SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from twpcore.store import Store, schema

BOTH = pytest.mark.parametrize("twp_db_url", ["sqlite", "postgresql"], indirect=True)


def _same_default(context, inspected_column, metadata_column, inspected_default, metadata_default, rendered_metadata_default):
    """Compare server defaults by value: SQLite reflects ``''`` where the model says ``""``."""
    def norm(text):
        if text is None:
            return None
        text = str(text).strip()
        while text.startswith("(") and text.endswith(")"):
            text = text[1:-1].strip()
        text = text.split("::")[0]  # PostgreSQL casts: ''::character varying
        return text.strip("'\"").lower()
    return norm(inspected_default) != norm(rendered_metadata_default)


@BOTH
def test_migrations_create_exactly_the_tables_of_the_schema_module(twp_db_url):
    store = Store(twp_db_url)
    try:
        before, after = store.upgrade()
        assert before is None and after == store.head_revision()
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": _same_default})
            diffs = compare_metadata(context, schema.metadata)
            tables = set(sa.inspect(conn).get_table_names())
        assert diffs == []
        assert tables == {t.name for t in schema.metadata.sorted_tables} | {"alembic_version"}
        # A second upgrade does nothing.
        assert store.upgrade() == (after, after)
        store.check_ready()
    finally:
        store.close()


@BOTH
def test_a_failed_transaction_leaves_nothing_even_after_a_savepoint(twp_db_url):
    store = Store(twp_db_url)
    store.upgrade()

    def half_done(conn):
        conn.execute(sa.select(schema.companies)).all()
        with conn.begin_nested():
            conn.execute(sa.insert(schema.companies).values(name="Half"))
        raise RuntimeError("the request fails after its first write")

    try:
        with pytest.raises(RuntimeError):
            store.transaction(half_done)
        assert store.transaction(lambda c: c.execute(sa.select(sa.func.count()).select_from(schema.companies)).scalar_one()) == 0
    finally:
        store.close()


def test_twp_db_upgrade_is_idempotent(tmp_path):
    cfg = tmp_path / "twp.toml"
    cfg.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/var/twp.db"\n')
    def run():
        return subprocess.run([sys.executable, "-m", "twpcore.cli", "--config", str(cfg), "db", "upgrade"],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path, env=dict(os.environ))

    first, second = run(), run()
    assert first.returncode == 0 and "upgraded from None to revision" in first.stdout, first.stderr
    head = Store(f"sqlite:///{tmp_path}/var/twp.db").head_revision()
    assert first.stdout.strip().endswith(f"revision {head}")
    assert second.returncode == 0 and f"already at revision {head}" in second.stdout, second.stderr


@BOTH
async def test_deleting_a_company_deletes_everything_in_it(twp_app):
    server = await twp_app()
    admin = await server.admin()
    keep = await admin.create("companies", name="Keep")
    keep_domain = await admin.create("domains", company_id=keep["id"], name="Paris")
    keep_user = await admin.create("users", domain_id=keep_domain["id"], login="stays")
    gone = await admin.create("companies", name="Gone")
    domain = await admin.create("domains", company_id=gone["id"], name="Paris")
    user = await admin.create("users", domain_id=domain["id"], login="jdoe")
    device = await admin.create("devices", user_id=user["id"], number="201")
    group = await admin.create("groups", domain_id=domain["id"], name="All")
    await admin.post(f"/api/v1/groups/{group['id']}/members", {"user_id": user["id"]}, status=204)
    intercom = await admin.create("intercom_groups", domain_id=domain["id"], name="Hotline")
    await admin.post(f"/api/v1/intercom-groups/{intercom['id']}/devices", {"device_id": device["id"]}, status=204)
    await admin.create("phone_queues", domain_id=domain["id"], name="Standard")
    await admin.create("directories", domain_id=domain["id"], name="Public", connector="users")
    await admin.create("authorizations", object_type="application", object_ref="Caller", subject_type="group", subject_id=group["id"])
    await admin.create("parameter_values", name="AuthorizeSms", scope="user", scope_id=user["id"], value="Yes")
    await admin.put(f"/api/v1/companies/{gone['id']}/quotas/Caller", {"seats": 5})
    limited = await admin.create("admins", login="gone-admin", password="gone-admin-password")
    await admin.put(f"/api/v1/admins/{limited['id']}/companies", {"companies": [gone["id"], keep["id"]]})

    await admin.delete(f"/api/v1/companies/{gone['id']}")

    counts = server.run(lambda c: {t.name: c.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in schema.TABLES})
    assert counts["companies"] == 1 and counts["domains"] == 1 and counts["users"] == 1
    for table in ("devices", "groups", "group_members", "intercom_groups", "intercom_group_devices", "phone_queues",
                  "directories", "authorizations", "parameter_values", "application_quotas"):
        assert counts[table] == 0, table
    assert (await admin.get(f"/api/v1/admins/{limited['id']}/companies"))["companies"] == [keep["id"]]
    for path in (f"/api/v1/users/{user['id']}", f"/api/v1/devices/{device['id']}", f"/api/v1/domains/{domain['id']}"):
        assert (await admin.get(path, status=404))["error"] == "not_found"
    assert (await admin.get(f"/api/v1/users/{keep_user['id']}"))["login"] == "stays"


@BOTH
async def test_unique_values_answer_409_naming_the_rule(twp_app):
    server = await twp_app()
    admin = await server.admin()
    company = await admin.create("companies", name="SSDEI")
    paris = await admin.create("domains", company_id=company["id"], name="Paris")
    nice = await admin.create("domains", company_id=company["id"], name="Nice")
    await admin.create("users", domain_id=paris["id"], login="jdoe")
    await admin.create("users", domain_id=nice["id"], login="jdoe")  # the same login in another domain is fine
    await admin.create("devices", domain_id=paris["id"], number="201")
    await admin.create("groups", domain_id=paris["id"], name="All")
    cases = [
        ("companies", {"name": "SSDEI"}, "company names are unique"),
        ("domains", {"company_id": company["id"], "name": "Paris"}, "domain names are unique within a company"),
        ("users", {"domain_id": paris["id"], "login": "jdoe"}, "logins are unique within a domain"),
        ("devices", {"domain_id": paris["id"], "number": "201"}, "device numbers are unique within a domain"),
        ("groups", {"domain_id": paris["id"], "name": "All"}, "group names are unique within a domain"),
        ("admins", {"login": admin.info["admin"]["login"], "password": "another-password"}, "admin logins are unique"),
    ]
    for resource, body, words in cases:
        answer = await admin.call("POST", f"/api/v1/{resource}", body)
        assert admin.last_status == 409 and answer["error"] == "conflict" and words in answer["detail"], (resource, answer)
    # Renaming onto a taken name is refused the same way, and changes nothing.
    other = await admin.create("companies", name="Other")
    answer = await admin.patch(f"/api/v1/companies/{other['id']}", {"name": "SSDEI"}, status=409)
    assert "company names are unique" in answer["detail"]
    assert (await admin.get(f"/api/v1/companies/{other['id']}"))["name"] == "Other"


async def test_concurrent_writes_on_sqlite_all_succeed(twp_server, admin):
    """SQLite has one writer at a time: concurrent requests wait their turn instead of failing."""
    company = await admin.create("companies", name="SSDEI")
    domain = await admin.create("domains", company_id=company["id"], name="Paris")
    results = await asyncio.gather(*(admin.call("POST", "/api/v1/users", {"domain_id": domain["id"], "login": f"u{i}"}) for i in range(40)))
    assert all("id" in r for r in results), [r for r in results if "id" not in r][:3]
    assert (await admin.get("/api/v1/users", params={"limit": "100"}))["total"] == 40
