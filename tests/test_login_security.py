"""Login security (issue 11): lock-out under concurrency, bounded password checks, no login oracle.

- An attempt is counted before its password is checked, so a burst of concurrent wrong
  passwords for one login gets ``lockout_threshold`` checks and 429 for the rest, on
  SQLite and PostgreSQL alike.
- Password checks wait for one of ``password_check_concurrency`` turns in a queue of
  ``password_check_queue``; beyond it a login door answers 429 ``busy`` with
  ``Retry-After``, and memory stays bounded.
- An unknown login costs one password check like a real one, and a login that exists in
  several companies answers like an unknown one until its password is right.

No assertion here is on a duration: what is counted is checks, answers and memory.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections import Counter

import argon2
import pytest
import sqlalchemy as sa

import twpcore.auth
from twpcore.auth import hash_password
from twpcore.hookspecs import hookimpl
from twpcore.kinds import AuthMethod, AuthResult
from twpcore.store import schema as t

PASSWORD = "correct-horse-1"
BOTH = pytest.mark.parametrize("twp_db_url", ["sqlite", "postgresql"], indirect=True)


class Gate(AuthMethod):
    """An auth method that holds logins named ``slow-*`` until the test opens it, counting how many it holds at once."""

    type_name = "Gate"
    opened: asyncio.Event
    held = 0
    most = 0

    async def authenticate(self, attempt):
        if attempt.login.startswith("slow-"):
            Gate.held += 1
            Gate.most = max(Gate.most, Gate.held)
            try:
                await Gate.opened.wait()
            finally:
                Gate.held -= 1
        return AuthResult.passes("gate only")


class GatePlugin:
    @hookimpl
    def twp_register_auth_methods(self, register):
        register(Gate)


class CountingHasher(argon2.PasswordHasher):
    """argon2 at its lowest cost, counting the verifications it runs."""

    def __init__(self):
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified = 0

    def verify(self, hash, password):
        self.verified += 1
        return super().verify(hash, password)


@pytest.fixture
def hasher(monkeypatch):
    counting = CountingHasher()
    monkeypatch.setattr(twpcore.auth, "_hasher", counting)
    return counting


async def post(server, path, body, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with server.client.post(path, json=body, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers.get("Retry-After")


async def until(condition, what):
    """Wait for the server to reach a state (a bounded wait, not a timed assertion)."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the server never reached: {what}")


async def company_with_user(admin, company, domain, login, password):
    c = await admin.create("companies", name=company)
    d = await admin.create("domains", company_id=c["id"], name=domain)
    u = await admin.create("users", domain_id=d["id"], login=login, password=password)
    return c, d, u


# -- lock-out under concurrency -----------------------------------------------------------

@BOTH
@pytest.mark.parametrize("door", ["/api/v1/auth/login", "/api/v1/auth/admin-login"])
async def test_concurrent_wrong_passwords_get_only_the_threshold_of_checks(twp_app, hasher, door):
    server = await twp_app(config={"auth": {"lockout_threshold": 5, "password_check_queue": 500}})
    admin = await server.admin()
    if door.endswith("admin-login"):
        login = admin.info["admin"]["login"]
    else:
        await company_with_user(admin, "SSDEI", "Paris", "jdoe", PASSWORD)
        login = "jdoe"
    before = hasher.verified

    answers = await asyncio.gather(*(post(server, door, {"login": login, "password": f"guess-{i}"}) for i in range(150)))

    statuses = Counter(status for status, _, _ in answers)
    assert statuses == {401: 5, 429: 145}, statuses
    assert hasher.verified - before == 5  # the other 145 passwords were never checked
    assert all(body["error"] == "locked_out" and int(retry) > 0 for status, body, retry in answers if status == 429)
    # The right password is refused too while the name is locked.
    status, body, _ = await post(server, door, {"login": login, "password": admin.info["password"] if "admin" in door else PASSWORD})
    assert status == 429 and body["error"] == "locked_out"


async def test_a_right_password_does_not_count_against_the_source_address(twp_app, hasher):
    server = await twp_app(config={"auth": {"lockout_address_threshold": 3}})
    admin = await server.admin()
    await company_with_user(admin, "SSDEI", "Paris", "jdoe", PASSWORD)
    for _ in range(6):
        await server.login("jdoe", PASSWORD)
    await server.login("nobody", "wrong-password-1", status=401)
    await server.login("jdoe", PASSWORD)
    assert (await admin.get("/api/v1/lockouts"))["items"] == []


# -- bounded password checks ---------------------------------------------------------------

async def test_password_checks_beyond_the_queue_are_refused_at_every_login_door(twp_app, hasher):
    Gate.opened, Gate.held, Gate.most = asyncio.Event(), 0, 0
    server = await twp_app(config={"auth": {"password_check_concurrency": 2, "password_check_queue": 3, "lockout_address_threshold": 0}},
                           plugins=[("gate", GatePlugin())])
    admin = await server.admin()
    _, _, jdoe = await company_with_user(admin, "SSDEI", "Paris", "jdoe", PASSWORD)
    await admin.create("parameter_values", name="AuthMethods", scope="default", value="Gate|TWS")
    me = await server.login("jdoe", PASSWORD)
    checks = server.kernel.password_checks

    held = [asyncio.ensure_future(post(server, "/api/v1/auth/login", {"login": f"slow-{i}", "password": "x"})) for i in range(5)]
    await until(lambda: checks.running == 2 and checks.waiting == 3, "2 checks running and 3 waiting")

    refused = [
        await post(server, "/api/v1/auth/login", {"login": "jdoe", "password": PASSWORD}),
        await post(server, "/api/v1/auth/login", {"login": "jdoe", "password": "wrong-password-1"}),
        await post(server, "/api/v1/auth/admin-login", {"login": admin.info["admin"]["login"], "password": admin.info["password"]}),
        await post(server, "/api/v1/me/password", {"current_password": PASSWORD, "new_password": "Another-horse-2"}, me.token),
        await post(server, "/api/v1/auth/password-reset", {"login": "jdoe", "code": "ABCD-EFGH-JKLM-NPQR", "new_password": "Another-horse-2"}),
    ]
    for status, body, retry in refused:
        assert status == 429 and body["error"] == "busy" and "password_check_queue" in body["detail"] and int(retry) >= 1, body
    assert checks.refused == 5 and Gate.held == 2

    Gate.opened.set()
    assert [status for status, _, _ in await asyncio.gather(*held)] == [401] * 5
    assert Gate.most == 2 and checks.peak == 2
    # A refused attempt checked no password: it is not counted as a failure.
    assert (await admin.get(f"/api/v1/users/{jdoe['id']}/lockout"))["failures"] == 0
    await server.login("jdoe", PASSWORD)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_forty_concurrent_logins_at_full_argon2_cost_keep_memory_bounded(twp_app):
    """argon2 takes 64 MiB per check: 40 at once would take 2.5 GB; two turns keep it near 128 MiB."""
    server = await twp_app(config={"auth": {"password_check_concurrency": 2, "password_check_queue": 100, "lockout_address_threshold": 0}})
    admin = await server.admin()
    _, domain, _ = await company_with_user(admin, "SSDEI", "Paris", "jdoe", PASSWORD)
    real_hash = hash_password(PASSWORD)  # the default cost: 64 MiB
    assert argon2.extract_parameters(real_hash).memory_cost == 65536
    server.run(
        lambda c: c.execute(sa.insert(t.users), [{"domain_id": domain["id"], "login": f"user-{i}", "password_hash": real_hash} for i in range(40)])
    )

    baseline, peak, done = _rss(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            done.wait(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        answers = await asyncio.gather(
            *(post(server, "/api/v1/auth/login", {"login": f"user-{i}", "password": "wrong-password-1"}) for i in range(40))
        )
    finally:
        done.set()
        sampler.join()
    assert [status for status, _, _ in answers] == [401] * 40
    assert server.kernel.password_checks.peak == 2
    growth = peak[0] - baseline
    assert growth < 4 * 64 * 2**20, f"memory grew by {growth / 2**20:.0f} MiB during 40 concurrent logins"


# -- no login oracle -----------------------------------------------------------------------

async def test_an_unknown_login_costs_one_password_check_like_a_real_one(twp_app, hasher):
    server = await twp_app()
    admin = await server.admin()
    _, domain, _ = await company_with_user(admin, "SSDEI", "Paris", "jdoe", PASSWORD)
    await admin.create("users", domain_id=domain["id"], login="nopass")  # no TWS password
    cases = {
        "/api/v1/auth/login": ["jdoe", "nopass", "nobody"],
        "/api/v1/auth/admin-login": [admin.info["admin"]["login"], "nobody"],
    }
    for door, logins in cases.items():
        seen = []
        for login in logins:
            before = hasher.verified
            status, body, _ = await post(server, door, {"login": login, "password": "wrong-password-1"})
            seen.append((status, body, hasher.verified - before))
        assert all(answer == seen[0] for answer in seen) and seen[0][0] == 401 and seen[0][2] == 1, (door, seen)


async def test_a_login_in_several_companies_answers_like_an_unknown_one_until_its_password_is_right(twp_app, hasher):
    server = await twp_app()
    admin = await server.admin()
    _, _, a_user = await company_with_user(admin, "Acme", "Paris", "shared", "acme-password-1")
    await company_with_user(admin, "Globex", "Lyon", "shared", "globex-password-1")

    shared = await post(server, "/api/v1/auth/login", {"login": "shared", "password": "wrong-password-1"})
    unknown = await post(server, "/api/v1/auth/login", {"login": "nobody", "password": "wrong-password-1"})
    assert shared[:2] == unknown[:2] and shared[0] == 401
    assert "several" not in str(shared[1]) and "domain" not in str(shared[1])

    # The right password of one of them: now the domain is asked.
    status, body, _ = await post(server, "/api/v1/auth/login", {"login": "shared", "password": "globex-password-1"})
    assert status == 409 and body["error"] == "ambiguous_login" and body["field"] == "domain"
    me = await server.login("shared", "acme-password-1", domain="Acme/Paris")
    assert me.info["user"]["id"] == a_user["id"]
    await server.login("shared", "globex-password-1", domain="Acme/Paris", status=401)

    # A reset code needs no domain: each user's code is its own.
    code = (await admin.post(f"/api/v1/users/{a_user['id']}/password-reset", {"send_email": False}, status=201))["code"]
    reset = await post(server, "/api/v1/auth/password-reset", {"login": "shared", "code": "ABCD-EFGH-JKLM-NPQR", "new_password": "Brand-new-horse-3"})
    unknown = await post(
        server, "/api/v1/auth/password-reset", {"login": "nobody", "code": "ABCD-EFGH-JKLM-NPQR", "new_password": "Brand-new-horse-3"}
    )
    assert reset[:2] == unknown[:2] and reset[0] == 401
    status, _, _ = await post(server, "/api/v1/auth/password-reset", {"login": "shared", "code": code, "new_password": "Brand-new-horse-3"})
    assert status == 200
    await server.login("shared", "Brand-new-horse-3", domain="Acme/Paris")


async def test_lock_out_answers_are_the_same_for_real_unknown_and_shared_logins(twp_app, hasher):
    server = await twp_app(config={"auth": {"lockout_threshold": 2}})
    admin = await server.admin()
    _, paris, _ = await company_with_user(admin, "Acme", "Paris", "shared", "acme-password-1")
    await company_with_user(admin, "Globex", "Lyon", "shared", "globex-password-1")
    await admin.create("users", domain_id=paris["id"], login="jdoe", password=PASSWORD)
    answers = {}
    for login in ("jdoe", "shared", "nobody"):
        first = [await post(server, "/api/v1/auth/login", {"login": login, "password": "wrong-password-1"}) for _ in range(2)]
        locked = await post(server, "/api/v1/auth/login", {"login": login, "password": "wrong-password-1"})
        answers[login] = [(s, b["error"], re.sub(r"[0-9]+", "N", b["detail"])) for s, b, _ in [*first, locked]]
    assert answers["jdoe"] == answers["shared"] == answers["nobody"]
    assert [a[:2] for a in answers["jdoe"]] == [(401, "login_failed"), (401, "login_failed"), (429, "locked_out")]
