"""A first walk through the admin API: create a tenant, a user, log in."""


async def test_admin_creates_tenant_and_user_logs_in(twp_server, admin):
    company = await admin.create("companies", name="SSDEI")
    domain = await admin.create("domains", company_id=company["id"], name="Paris", numbering_plan_length=4)
    user = await admin.create("users", domain_id=domain["id"], login="jdoe", first_name="John", password="s3cret-Passw0rd")
    assert user["password_set"] is True and "password" not in user and "password_hash" not in user
    me = await twp_server.login("jdoe", "s3cret-Passw0rd")
    profile = await me.get("/api/v1/me")
    assert profile["login"] == "jdoe" and profile["domain_id"] == domain["id"]
    await twp_server.login("jdoe", "wrong", status=401)
