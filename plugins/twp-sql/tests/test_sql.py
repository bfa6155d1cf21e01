"""The sql connector against a real SQLite file and a real PostgreSQL server (the kit's)."""

from __future__ import annotations

import sqlite3
import uuid

import psycopg
import sqlalchemy as sa

from twpcore.testing.directories import directory_world, granted_directory
from twpcore.testing.servers import find_free_port

FIELDS = {"id": "id", "last_name": "nom", "first_name": "prenom", "company": "societe", "phone": "tel", "email": "mail"}
ROWS = [(1, "Dupont", "Jean", "SSDEI", "01 55 17 18 89", "j.dupont@ssdei.fr"), (2, "Martin", "Léa", "ACME", None, None),
        (3, "", "", "", None, None)]


async def directory(admin, domain, user, options, **extra):
    return await granted_directory(admin, domain, user, name=extra.pop("name", "CRM"), connector="sql", options=options, fields=FIELDS, **extra)


def sqlite_file(path):
    with sqlite3.connect(path) as db:
        db.execute("create table contacts (id integer primary key, nom text, prenom text, societe text, tel text, mail text)")
        db.executemany("insert into contacts values (?, ?, ?, ?, ?, ?)", ROWS)
    return path


async def test_sqlite_table_query_and_missing_file(twp_app, tmp_path):
    server, admin, domain, user = await directory_world(twp_app)
    path = sqlite_file(tmp_path / "crm.db")
    d = await directory(admin, domain, user, {"url": f"sqlite:///{path}", "table": "contacts", "key_column": "id"})
    assert (await admin.post(f"/api/v1/directories/{d['id']}/test"))["message"].endswith("3 rows in table contacts")
    report = await admin.post(f"/api/v1/directories/{d['id']}/sync")
    assert (report["status"], report["created"], report["problems"]) == ("ok", 2, [{"record": "3", "reason": "no name and no number"}])
    alice = await server.login("alice", "a-long-password-1")
    assert (await alice.get("/api/v1/directories/reverse", params={"number": "+33155171889"}))["contact"]["email"] == "j.dupont@ssdei.fr"
    q = await directory(admin, domain, user, {"url": f"sqlite:///{path}", "query": "select * from contacts where societe = 'ACME'"}, name="ACME only")
    assert (await admin.post(f"/api/v1/directories/{q['id']}/sync"))["created"] == 1
    # A key column the query does not return fails the sync, naming the columns there are.
    await admin.patch(f"/api/v1/directories/{q['id']}", {"options": {"url": f"sqlite:///{path}", "query": "select nom, tel from contacts",
                                                                     "key_column": "id"}})
    report = await admin.post(f"/api/v1/directories/{q['id']}/sync")
    assert report["status"] == "failed" and "key_column 'id' is not a column; columns: nom, tel" in report["error"], report
    # The file disappears: the sync fails as "not ready", the contacts stay, no empty database is created.
    path.rename(tmp_path / "moved.db")
    report = await admin.post(f"/api/v1/directories/{d['id']}/sync")
    assert report["status"] == "failed" and report["error"].startswith("source not ready:") and "unable to open database file" in report["error"]
    assert not path.exists()
    assert [c["last_name"] for c in (await alice.get("/api/v1/directories/search", params={"q": "dupont"}))["items"]] == ["Dupont"]
    assert len((await alice.get("/api/v1/directories/search", params={"q": "martin"}))["items"]) == 2
    bad = await admin.call(
        "POST",
        "/api/v1/directories",
        {
            "domain_id": domain["id"],
            "name": "Bad",
            "connector": "sql",
            "options": {"url": f"sqlite:///{path}", "table": "contacts", "query": "select 1"},
        },
        status=422,
    )
    assert "exactly one of table" in bad["detail"]


async def test_postgresql_credentials_down_server_and_bad_table(twp_app, postgres_server):
    server, admin, domain, user = await directory_world(twp_app)
    db_name, role = f"crm_{uuid.uuid4().hex[:8]}", f"reader_{uuid.uuid4().hex[:8]}"  # the server is shared by the session
    postgres_server.create_database(db_name)
    postgres_server.create_role(role, "reader-pass-1")
    with psycopg.connect(postgres_server.conninfo(db_name), autocommit=True) as db:
        db.execute("create table contacts (id integer primary key, nom text, prenom text, societe text, tel text, mail text)")
        with db.cursor() as cur:
            cur.executemany("insert into contacts values (%s, %s, %s, %s, %s, %s)", ROWS)
        db.execute(f"grant select on contacts to {role}")
    url = sa.engine.make_url(postgres_server.url(db_name)).set(username=role).render_as_string(hide_password=False)
    d = await directory(admin, domain, user, {"url": url, "password": "reader-pass-1", "table": "contacts"})
    assert d["options"]["password"] == "***"
    report = await admin.post(f"/api/v1/directories/{d['id']}/sync")
    assert (report["status"], report["created"], report["ignored"]) == ("ok", 2, 1)

    await admin.patch(f"/api/v1/directories/{d['id']}", {"options": {"url": url, "password": "wrong-pass", "table": "contacts"}})
    report = await admin.post(f"/api/v1/directories/{d['id']}/sync")
    assert report["status"] == "failed" and report["error"].startswith("credentials refused:") and "wrong-pass" not in str(report)
    test = await admin.post(f"/api/v1/directories/{d['id']}/test")
    assert test["ok"] is False and test["state"] == "auth_failed"

    down = sa.engine.make_url(url).set(port=find_free_port()).render_as_string(hide_password=False)
    await admin.patch(f"/api/v1/directories/{d['id']}", {"options": {"url": down, "password": "reader-pass-1", "table": "contacts", "timeout": 2}})
    report = await admin.post(f"/api/v1/directories/{d['id']}/sync")
    assert report["status"] == "failed" and report["error"].startswith("source not ready:")

    await admin.patch(f"/api/v1/directories/{d['id']}", {"options": {"url": url, "password": "reader-pass-1", "table": "nope"}})
    report = await admin.post(f"/api/v1/directories/{d['id']}/sync")
    assert report["status"] == "failed" and "nope" in report["error"] and not report["error"].startswith(("source not ready", "credentials"))

    alice = await server.login("alice", "a-long-password-1")
    assert [c["first_name"] for c in (await alice.get("/api/v1/directories/search", params={"q": "lea"}))["items"]] == ["Léa"]
