"""Security of issue 11 seen from the admin side (guide 10.1): sessions after an admin sets a
password, what an admin limited to one company sees of the server, and users imports that
name another company's PBX link.

The server has two companies, Alpha and Bravo, each with a domain Paris and a PBX link of its
own (``alpha``, ``bravo``), plus a link ``shared`` that names no company.  The links point at
closed ports, so each one retries with a reason that quotes its host and port.  An admin is
limited to Alpha.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from twpcore.testing.servers import find_free_port

pytestmark = pytest.mark.usefixtures("cheap_password_hashes")  # argon2's cost is not what these tests measure

PASSWORD = "correct-horse-1"
NEW_PASSWORD = "Battery-staple-22"


@pytest.fixture
async def world(twp_app: Any) -> dict[str, Any]:
    ports = {name: find_free_port() for name in ("alpha", "bravo", "shared")}
    # A long backoff keeps each link "retrying" with its reason (host:port) for the whole test.
    fast = {"connect_timeout": 1, "reconnect_min": 120, "reconnect_max": 120, "heartbeat_interval": 0}
    links: dict[str, Any] = {name: {"driver": "pbxsim", "host": "127.0.0.1", "port": port, **fast} for name, port in ports.items()}
    links["alpha"].update(company="Alpha", domain="Paris")
    links["bravo"].update(company="Bravo", domain="Paris")
    server = await twp_app(config={"pbx": {"links": links}})
    root = await server.admin()
    w: dict[str, Any] = {"server": server, "root": root, "ports": ports}
    for name in ("Alpha", "Bravo"):
        company = await root.create("companies", name=name)
        domain = await root.create("domains", company_id=company["id"], name="Paris")
        w[name] = {"company": company["id"], "domain": domain["id"]}
    w["limited"] = await server.admin(super_user=False, companies=(w["Alpha"]["company"],))
    for name, port in ports.items():  # each link leaves config_error/starting once its company exists
        await server.instance_until(name, lambda i, port=port: i["state"] == "retrying" and str(port) in (i["reason"] or ""))
    return w


async def socket_of(server: Any, token: str) -> Any:
    ws = await server.client.ws_connect("/api/v1/events", params={"access_token": token})
    assert (await ws.receive_json(timeout=5))["type"] == "system.hello"
    return ws


async def closed_with(ws: Any) -> tuple[Any, Any]:
    while True:
        msg = await ws.receive(timeout=10)
        if msg.type != aiohttp.WSMsgType.TEXT:
            assert msg.type == aiohttp.WSMsgType.CLOSE, msg
            return msg.data, msg.extra


async def still_open(ws: Any) -> None:
    await ws.send_str("ping")
    while (msg := await ws.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT and msg.data != "pong":
        pass
    assert msg.data == "pong", msg


# -- defect 4: sessions after a password set by an admin -------------------------------------

async def test_a_password_set_by_an_admin_ends_the_users_sessions_and_closes_their_sockets(world):
    server, limited = world["server"], world["limited"]
    user = await limited.create("users", domain_id=world["Alpha"]["domain"], login="jdoe", password=PASSWORD)
    laptop, phone = await server.login("jdoe", PASSWORD), await server.login("jdoe", PASSWORD)
    ws = await socket_of(server, phone.token)

    # Another field changes nothing to the sessions.
    await limited.patch(f"/api/v1/users/{user['id']}", {"first_name": "John"})
    await laptop.get("/api/v1/me")

    # The admin gives the user a new password (the user told them the old one leaked).
    await limited.patch(f"/api/v1/users/{user['id']}", {"password": NEW_PASSWORD})
    for old in (laptop, phone):
        answer = await old.call("GET", "/api/v1/me")
        assert old.last_status == 401 and "revoked" in answer["detail"], answer
    assert await closed_with(ws) == (4001, "token was revoked; log in again")
    await server.login("jdoe", PASSWORD, status=401)
    fresh = await server.login("jdoe", NEW_PASSWORD)
    await fresh.get("/api/v1/me")
    await limited.get("/api/v1/me")  # the admin's own session goes on

    # Clearing the password (the user moves to another auth method) ends the sessions too.
    await limited.patch(f"/api/v1/users/{user['id']}", {"password": None})
    await fresh.get("/api/v1/me", status=401)
    audit = (await limited.get("/api/v1/audit"))["items"]
    assert [e["detail"]["revoked"] for e in audit if e["action"] == "update" and "password" in e["detail"]["fields"]] == [1, 2]


async def test_a_password_set_on_an_admin_ends_its_sessions_but_not_the_changers(world):
    server, root = world["server"], world["root"]
    root_ws = await socket_of(server, root.token)
    other = await root.create("admins", login="night-shift", password=PASSWORD, super_user=True)
    first, second = await server.login_admin("night-shift", PASSWORD), await server.login_admin("night-shift", PASSWORD)
    ws = await socket_of(server, first.token)

    await root.patch(f"/api/v1/admins/{other['id']}", {"password": NEW_PASSWORD})
    for old in (first, second):
        answer = await old.call("GET", "/api/v1/me")
        assert old.last_status == 401 and "revoked" in answer["detail"], answer
    assert await closed_with(ws) == (4001, "token was revoked; log in again")
    await root.get("/api/v1/me")  # the super user who changed it keeps its session and socket
    await still_open(root_ws)

    # An admin that sets its own password keeps the token it uses; its other sessions end.
    here, elsewhere = await server.login_admin("night-shift", NEW_PASSWORD), await server.login_admin("night-shift", NEW_PASSWORD)
    ws_here, ws_elsewhere = await socket_of(server, here.token), await socket_of(server, elsewhere.token)
    await here.patch(f"/api/v1/admins/{other['id']}", {"password": "Yet-another-pass-3"})
    await here.get("/api/v1/me")
    await elsewhere.get("/api/v1/me", status=401)
    assert (await closed_with(ws_elsewhere))[0] == 4001
    await still_open(ws_here)
    await still_open(root_ws)
    for sock in (ws_here, root_ws):
        await sock.close()


# -- defect 6: what a limited admin sees of plugins, instances and health -----------------------

async def test_a_limited_admin_sees_its_own_instances_only_in_plugins_and_health(world):
    root, limited, ports = world["root"], world["limited"], world["ports"]
    everything = await root.get("/api/v1/plugins")
    names = {i["name"] for i in everything["instances"] if i["kind"] == "pbx_driver"}
    assert names == {"alpha", "bravo", "shared"}
    reasons = {i["name"]: i["reason"] or "" for i in everything["instances"]}
    assert all(str(ports[n]) in reasons[n] for n in ports), reasons  # the super user sees every detail

    for path, pick in (("/api/v1/plugins", lambda d: (d["plugins"], d["instances"])),
                       ("/api/v1/health", lambda d: (d["plugins"]["items"], d["instances"]["items"]))):
        body = await limited.call("GET", path)
        plugins, instances = pick(body)
        seen = {i["name"]: i for i in instances if i["kind"] == "pbx_driver"}
        assert set(seen) == {"alpha", "shared"}, f"{path}: {sorted(seen)}"
        assert str(ports["alpha"]) in seen["alpha"]["reason"]  # its own link, in full
        assert seen["shared"]["state"] and seen["shared"]["reason"] is None  # a server-wide link: its state, not its address
        text = json.dumps(body)
        assert "bravo" not in text and str(ports["bravo"]) not in text and str(ports["shared"]) not in text, path
        # Plugins stay listed with name, version and state; their error texts are the server's.
        assert "pbxsim" in {p["name"] for p in plugins}
        assert all(p["reason"] is None and p["last_error"] is None for p in plugins)
        assert {i["name"] for i in instances if i["kind"] == "auth_method"} >= {"TWS", "None"}


async def test_health_warnings_name_only_the_limited_admins_own_domains(world):
    root, limited = world["root"], world["limited"]
    a, b = world["Alpha"]["domain"], world["Bravo"]["domain"]
    for domain in (a, b):
        await root.create("parameter_values", name="AuthMethods", scope="domain", scope_id=domain, value="TWS|None")
    everything = (await root.get("/api/v1/health"))["warnings"]
    assert len(everything) == 1 and f"domain {a}" in everything[0] and f"domain {b}" in everything[0]

    mine = (await limited.get("/api/v1/health"))["warnings"]
    assert len(mine) == 1 and "None auth method" in mine[0] and f"domain {a}" in mine[0], mine
    assert f"domain {b}" not in mine[0], mine

    # A server-wide default concerns every company: the limited admin is told.
    await root.create("parameter_values", name="AuthMethods", scope="default", value="None")
    mine = (await limited.get("/api/v1/health"))["warnings"]
    assert f"domain {a}" in mine[0] and "default 0" in mine[0] and f"domain {b}" not in mine[0], mine


# -- defect 8: a users import names a PBX link of its own domain -------------------------------

async def test_a_users_import_cannot_name_another_companys_pbx_link(world):
    root, limited = world["root"], world["limited"]
    domain = world["Alpha"]["domain"]
    body = {"domain_id": domain, "name": "PBX", "source": "pbx"}
    for who in (limited, root):
        for link in ("bravo", "shared", "nosuchlink"):
            answer = await who.call("POST", "/api/v1/user-imports", {**body, "link": link})
            assert who.last_status == 422 and answer["field"] == "link", answer
            assert f'"{link}"' in answer["detail"] and "links of this domain: alpha" in answer["detail"], answer
    assert (await root.get("/api/v1/user-imports"))["items"] == []

    imp = await limited.post("/api/v1/user-imports", {**body, "link": "alpha"}, status=201)
    answer = await limited.call("PATCH", f"/api/v1/user-imports/{imp['id']}", {"link": "bravo"})
    assert limited.last_status == 422 and answer["field"] == "link" and '"bravo"' in answer["detail"], answer
    await limited.patch(f"/api/v1/user-imports/{imp['id']}", {"name": "PBX Paris"})  # other changes still work
    assert (await root.get(f"/api/v1/user-imports/{imp['id']}"))["link"] == "alpha"
