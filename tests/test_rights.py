"""Authorizations (guide 7.4) and application seat quotas (7.4.1), through the admin API.

Directories, calendars and intercom groups may be shared between the domains of one
company; phone queues, call logs, statistics and records may not; nothing is shared
between companies (another company's object answers 404, as if it did not exist).
"""

from __future__ import annotations

import pytest

from twpcore import rights


@pytest.fixture
async def world(twp_app):
    server = await twp_app()
    admin = await server.admin()
    w = {"server": server, "admin": admin}
    ssdei = (await admin.create("companies", name="SSDEI"))["id"]
    other = (await admin.create("companies", name="Other"))["id"]
    w["ssdei"], w["other"] = ssdei, other
    for key, company, name in (("paris", ssdei, "Paris"), ("nice", ssdei, "Nice"), ("lyon", other, "Lyon")):
        domain = (await admin.create("domains", company_id=company, name=name))["id"]
        w[key] = {"domain": domain}
        d = w[key]
        d["user"] = (await admin.create("users", domain_id=domain, login=f"{key}-user"))["id"]
        d["user2"] = (await admin.create("users", domain_id=domain, login=f"{key}-user2"))["id"]
        d["group"] = (await admin.create("groups", domain_id=domain, name="All"))["id"]
        await admin.post(f"/api/v1/groups/{d['group']}/members", {"user_id": d["user"]}, status=204)
        d["directory"] = (await admin.create("directories", domain_id=domain, name="Public", connector="users"))["id"]
        d["intercom_group"] = (await admin.create("intercom_groups", domain_id=domain, name="Hotline"))["id"]
        d["phone_queue"] = (await admin.create("phone_queues", domain_id=domain, name="Standard"))["id"]
    return w


# object_type -> how its object_ref names an object of a domain
REFS = {
    "directory": lambda d: f"directory:{d['directory']}",
    "calendar": lambda d: f"group:{d['group']}",
    "intercom_group": lambda d: f"intercom_group:{d['intercom_group']}",
    "phone_queue": lambda d: f"phone_queue:{d['phone_queue']}",
    "call_log": lambda d: f"user:{d['user2']}",
    "statistics": lambda d: f"user:{d['user2']}",
    "records": lambda d: f"user:{d['user2']}",
}
# object_type, where the object is (for a subject in Paris), expected status
RULES = [
    ("directory", "paris", 201), ("directory", "nice", 201), ("directory", "lyon", 404),
    ("calendar", "paris", 201), ("calendar", "nice", 201), ("calendar", "lyon", 404),
    ("intercom_group", "paris", 201), ("intercom_group", "nice", 201), ("intercom_group", "lyon", 404),
    ("phone_queue", "paris", 201), ("phone_queue", "nice", 422), ("phone_queue", "lyon", 404),
    ("call_log", "paris", 201), ("call_log", "nice", 422), ("call_log", "lyon", 404),
    ("statistics", "paris", 201), ("statistics", "nice", 422), ("statistics", "lyon", 404),
    ("records", "paris", 201), ("records", "nice", 422), ("records", "lyon", 404),
]


async def test_guide_7_4_sharing_rules_for_every_object_type(world):
    admin = world["admin"]
    wrong = []
    for subject_type in ("group", "user"):
        subject_id = world["paris"][subject_type]
        for object_type, where, status in RULES:
            grant = {
                "object_type": object_type,
                "object_ref": REFS[object_type](world[where]),
                "subject_type": subject_type,
                "subject_id": subject_id,
            }
            answer = await admin.call("POST", "/api/v1/authorizations", grant)
            if admin.last_status != status:
                wrong.append((subject_type, object_type, where, admin.last_status, answer))
            elif status == 201:
                assert answer["company_id"] == world["ssdei"] and answer["subject_domain_id"] == world["paris"]["domain"]
                assert answer["object_domain_id"] == world[where]["domain"]
            elif status == 422:
                assert "can't be shared between domains" in answer["detail"] and "Nice" in answer["detail"] and "Paris" in answer["detail"], answer
                assert "guide 7.4" in answer["detail"]
            else:
                assert answer["field"] == "object_ref" and "not found" in answer["detail"] and "Lyon" not in answer["detail"], answer
    assert not wrong, "(subject, object type, object domain, status, answer):\n" + "\n".join(map(str, wrong))
    # A subject of another company reaching an object of this one is refused the same way.
    answer = await admin.call("POST", "/api/v1/authorizations", {"object_type": "directory", "object_ref": REFS["directory"](world["paris"]),
                                                                 "subject_type": "user", "subject_id": world["lyon"]["user"]})
    assert admin.last_status == 404 and answer["field"] == "object_ref"
    # Applications are company-wide: no object domain.
    app = await admin.create(
        "authorizations", object_type="application", object_ref="Caller", subject_type="group", subject_id=world["nice"]["group"]
    )
    assert app["object_domain_id"] is None and app["company_id"] == world["ssdei"]
    listed = await admin.get("/api/v1/authorizations", params={"subject_domain_id": str(world["paris"]["domain"]), "limit": "500"})
    assert listed["total"] == 2 * sum(1 for r in RULES if r[2] == 201)


async def test_malformed_grants_are_refused_naming_the_field(world):
    admin, paris = world["admin"], world["paris"]
    base = {"object_type": "directory", "object_ref": f"directory:{paris['directory']}", "subject_type": "user", "subject_id": paris["user"]}
    cases = [
        ({"object_type": "printer"}, 422, "object_type", 'object_type "printer" is unknown'),
        ({"object_ref": "directory:abc"}, 422, "object_ref", 'write "directory:<id>"'),
        ({"object_ref": f"user:{paris['user']}"}, 422, "object_ref", "does not fit object_type directory"),
        ({"object_type": "application", "object_ref": "Calller"}, 422, "object_ref", 'application "Calller" is unknown'),
        ({"subject_type": "robot"}, 422, "subject_type", 'subject_type "robot" is unknown'),
        ({"object_ref": "directory:999999"}, 404, "object_ref", "directory 999999 not found"),
        ({"subject_id": 999999}, 404, "subject_id", "user 999999 not found"),
        ({"subject_id": "5"}, 400, "subject_id", "expected integer"),
    ]
    for change, status, field, words in cases:
        answer = await admin.call("POST", "/api/v1/authorizations", {**base, **change})
        assert (admin.last_status, answer["field"]) == (status, field) and words in answer["detail"], (change, answer)
    await admin.create("authorizations", **base)
    answer = await admin.call("POST", "/api/v1/authorizations", base)
    assert admin.last_status == 409 and "already has this right" in answer["detail"]
    # Grants cannot be edited, only revoked and granted again.
    methods = (await admin.get("/api/v1/openapi.json"))["paths"]["/api/v1/authorizations/{id}"]
    assert set(methods) == {"get", "delete"}


async def test_application_quota_counts_seats_and_refuses_every_way_past_it(world):
    server, admin, paris = world["server"], world["admin"], world["paris"]
    company = world["ssdei"]
    quota = await admin.put(f"/api/v1/companies/{company}/quotas/Caller", {"seats": 2})
    assert quota == {"application": "Caller", "seats": 2, "used": 0}
    team = (await admin.create("groups", domain_id=paris["domain"], name="Team"))["id"]
    extra = []
    for i in range(3):
        extra.append((await admin.create("users", domain_id=paris["domain"], login=f"seat{i}", password=f"seat{i}-password"))["id"])
        await admin.post(f"/api/v1/groups/{team}/members", {"user_id": extra[-1]}, status=204)

    # Granting a group of three on a quota of two.
    answer = await admin.call(
        "POST", "/api/v1/authorizations", {"object_type": "application", "object_ref": "Caller", "subject_type": "group", "subject_id": team}
    )
    assert admin.last_status == 409 and answer["error"] == "quota_exceeded"
    assert "needs 3 seats" in answer["detail"] and "quota of 2" in answer["detail"] and "SSDEI" in answer["detail"], answer
    assert (await admin.get("/api/v1/authorizations", params={"object_type": "application"}))["total"] == 0, "the refused grant was stored"

    # Two members: the grant fits; a third member is refused and not stored.
    await admin.delete(f"/api/v1/groups/{team}/members/{extra[2]}")
    grant = await admin.create("authorizations", object_type="application", object_ref="Caller", subject_type="group", subject_id=team)
    usage = {q["application"]: q for q in (await admin.get(f"/api/v1/companies/{company}/quotas"))["items"]}
    assert usage["Caller"] == {"application": "Caller", "seats": 2, "used": 2}
    assert usage["Alerter"] == {"application": "Alerter", "seats": None, "used": 0}
    answer = await admin.call("POST", f"/api/v1/groups/{team}/members", {"user_id": extra[2]})
    assert admin.last_status == 409 and "quota of 2" in answer["detail"]
    members = await admin.get(f"/api/v1/groups/{team}/members")
    assert [m["id"] for m in members["items"]] == extra[:2]
    # A direct grant to a third user is refused too; one to a member already counted is free.
    answer = await admin.call(
        "POST", "/api/v1/authorizations", {"object_type": "application", "object_ref": "Caller", "subject_type": "user", "subject_id": extra[2]}
    )
    assert admin.last_status == 409
    await admin.create("authorizations", object_type="application", object_ref="Caller", subject_type="user", subject_id=extra[0])

    # Disabled users take no seat; enabling one past the quota is refused and changes nothing.
    await admin.patch(f"/api/v1/users/{extra[1]}", {"enabled": False})
    assert (await admin.get(f"/api/v1/companies/{company}/quotas"))["items"][0]["used"] == 1
    await admin.post(f"/api/v1/groups/{team}/members", {"user_id": extra[2]}, status=204)
    answer = await admin.patch(f"/api/v1/users/{extra[1]}", {"enabled": True}, status=409)
    assert "quota of 2" in answer["detail"]
    assert (await admin.get(f"/api/v1/users/{extra[1]}"))["enabled"] is False
    # Lowering the quota under what is used is refused; raising it lets the user back in.
    answer = await admin.put(f"/api/v1/companies/{company}/quotas/Caller", {"seats": 1}, status=409)
    assert "2 seats are already granted" in answer["detail"]
    await admin.put(f"/api/v1/companies/{company}/quotas/Caller", {"seats": 3})
    await admin.patch(f"/api/v1/users/{extra[1]}", {"enabled": True})
    assert (await admin.get(f"/api/v1/companies/{company}/quotas"))["items"][0] == {"application": "Caller", "seats": 3, "used": 3}
    # No quota at all: null removes it.
    assert (await admin.put(f"/api/v1/companies/{company}/quotas/Caller", {"seats": None}))["seats"] is None
    answer = await admin.put(f"/api/v1/companies/{company}/quotas/Calller", {"seats": 1}, status=404)
    assert "Caller" in answer["detail"]

    # What the user sees: the applications granted to them, directly or through a group.
    seat0 = await server.login("seat0", "seat0-password")
    assert (await seat0.get("/api/v1/me"))["applications"] == ["Caller"]
    await admin.delete(f"/api/v1/authorizations/{grant['id']}")
    seat1 = await server.login("seat1", "seat1-password")
    assert (await seat1.get("/api/v1/me"))["applications"] == []
    assert (await seat0.get("/api/v1/me"))["applications"] == ["Caller"]  # its direct grant remains


async def test_rights_queries_follow_the_grants(world):
    server, admin, paris, nice = world["server"], world["admin"], world["paris"], world["nice"]
    # Paris "All" may search Nice's public directory (7.4.2) and see the calendar of Nice's group (7.4.3).
    await admin.create(
        "authorizations", object_type="directory", object_ref=f"directory:{nice['directory']}", subject_type="group", subject_id=paris["group"]
    )
    await admin.create("authorizations", object_type="calendar", object_ref=f"group:{nice['group']}", subject_type="group", subject_id=paris["group"])
    await admin.create(
        "authorizations", object_type="phone_queue", object_ref=f"phone_queue:{paris['phone_queue']}", subject_type="user", subject_id=paris["user2"]
    )
    # Statistics go the other way: paris-user2 (the object) may view the statistics of the "All" group's members.
    await admin.create(
        "authorizations", object_type="statistics", object_ref=f"user:{paris['user2']}", subject_type="group", subject_id=paris["group"]
    )

    cases = [
        (rights.user_can, (paris["user"], "directory", f"directory:{nice['directory']}"), True),
        (rights.user_can, (paris["user2"], "directory", f"directory:{nice['directory']}"), False),  # not in "All"
        (rights.user_can, (paris["user"], "calendar", f"user:{nice['user']}"), True),  # a member of Nice's group
        (rights.user_can, (paris["user"], "calendar", f"user:{nice['user2']}"), False),
        (rights.user_can, (paris["user2"], "phone_queue", f"phone_queue:{paris['phone_queue']}"), True),
        (rights.user_can, (paris["user"], "phone_queue", f"phone_queue:{paris['phone_queue']}"), False),
        (rights.can_view_statistics, (paris["user2"], paris["user"]), True),
        (rights.can_view_statistics, (paris["user"], paris["user2"]), False),  # the reverse is not granted
        (rights.can_view_statistics, (paris["user2"], nice["user"]), False),
        (rights.can_view_statistics, (paris["user"], paris["user"]), True),  # one's own
        (rights.visible_objects, (paris["user"], "directory"), [f"directory:{nice['directory']}"]),
    ]
    got = [(fn.__name__, args, server.run(fn, *args), want) for fn, args, want in cases]
    assert [g for g in got if g[2] != g[3]] == []
    with pytest.raises(ValueError, match="can_view_statistics"):
        server.run(rights.user_can, paris["user"], "statistics", f"user:{paris['user2']}")
    # Leaving the group takes the rights away.
    await admin.delete(f"/api/v1/groups/{paris['group']}/members/{paris['user']}")
    assert server.run(rights.user_can, paris["user"], "directory", f"directory:{nice['directory']}") is False
    assert server.run(rights.can_view_statistics, paris["user2"], paris["user"]) is False


async def test_deleting_a_subject_or_object_takes_its_grants_and_values_with_it(world):
    """Grants and parameter values point at users and groups by id; none may outlive them.

    SQLite gives a new row the highest deleted id again: a leftover grant, value or login
    token would pass to the next user created, even in another company.
    """
    server, admin, paris, lyon = world["server"], world["admin"], world["paris"], world["lyon"]
    doomed = (await admin.create("users", domain_id=paris["domain"], login="doomed", password="doomed-password"))["id"]
    token = await server.login("doomed", "doomed-password")
    await admin.create("authorizations", object_type="application", object_ref="Caller", subject_type="user", subject_id=doomed)
    await admin.create("authorizations", object_type="call_log", object_ref=f"user:{doomed}", subject_type="user", subject_id=paris["user"])
    await admin.create("parameter_values", name="AuthorizeSms", scope="user", scope_id=doomed, value="Yes")
    await admin.delete(f"/api/v1/users/{doomed}")

    newcomer = (await admin.create("users", domain_id=lyon["domain"], login="newcomer", password="newcomer-password"))["id"]
    me = await server.login("newcomer", "newcomer-password")
    profile = await me.get("/api/v1/me")
    assert profile["applications"] == []
    assert {p["name"]: p for p in (await me.get("/api/v1/me/parameters"))["items"]}["AuthorizeSms"]["source"] == "built-in"
    grants = await admin.get("/api/v1/authorizations", params={"limit": "500"})
    assert not [g for g in grants["items"] if (doomed in (g["subject_id"],) and g["subject_type"] == "user") or g["object_ref"] == f"user:{doomed}"]
    assert (await admin.get("/api/v1/parameter-values", params={"scope": "user"}))["total"] == 0
    answer = await token.call("GET", "/api/v1/me")
    assert token.last_status == 401, f"the deleted user's token still works (as user {answer.get('id')}, newcomer is {newcomer})"
