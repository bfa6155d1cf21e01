"""The dialing plan through the API and CLI: stored per domain, refused when invalid, testable (guide 5)."""

import subprocess
import sys


async def _domain(admin, name="SSDEI"):
    company = await admin.create("companies", name=name)
    return await admin.create("domains", company_id=company["id"], name="Paris")


async def test_default_plan_and_test_facility(twp_server, admin):
    domain = await _domain(admin)
    plan = await admin.get(f"/api/v1/domains/{domain['id']}/dialing-plan")
    assert plan["default"] is True and plan["rules"], plan
    out = await admin.post(f"/api/v1/domains/{domain['id']}/dialing-plan/test", {"number": "+33 (0) 123456789"}, status=200)
    assert out["output"] == "00123456789"
    assert out["rule"]["pattern"] == "+[-LocalCountryPrefix-](0)"
    assert out["canonical_keys"] == ["+33123456789"]
    received = await admin.post(f"/api/v1/domains/{domain['id']}/dialing-plan/test", {"number": "0155171889", "direction": "received"}, status=200)
    assert received["canonical_keys"] == ["+33155171889"]


async def test_saved_rule_is_used_and_invalid_rule_is_refused_at_save(twp_server, admin):
    domain = await _domain(admin)
    url = f"/api/v1/domains/{domain['id']}/dialing-plan"
    plan = await admin.get(url)
    rules = plan["rules"] + [{"priority": 5, "pattern": "36", "value": "036"}]
    await admin.put(url, {"settings": plan["settings"], "rules": rules})
    out = await admin.post(url + "/test", {"number": "3611"}, status=200)
    assert out["output"] == "03611" and out["rule"]["pattern"] == "36"
    bad = await admin.call("PUT", url, {"settings": plan["settings"], "rules": [{"priority": 1, "pattern": "[(]", "value": "x"}]}, status=422)
    assert bad["error"] == "invalid_rule" and "rules[0]" in bad["detail"], bad
    # The previous plan is still in force.
    assert (await admin.post(url + "/test", {"number": "3611"}, status=200))["output"] == "03611"
    await admin.put(url, {"default": True})
    assert (await admin.get(url))["default"] is True


async def test_other_company_cannot_read_or_test_the_plan(twp_server, admin):
    domain = await _domain(admin, "A")
    other = await admin.create("companies", name="B")
    limited = await twp_server.admin(super_user=False, companies=(other["id"],))
    url = f"/api/v1/domains/{domain['id']}/dialing-plan"
    await limited.call("GET", url, status=404)
    await limited.call("PUT", url, {"default": True}, status=404)
    await limited.call("POST", url + "/test", {"number": "1"}, status=404)


async def test_cli_dialplan_test(twp_server, admin, tmp_path):
    await _domain(admin)
    cfg = tmp_path / "twp.toml"
    cfg.write_text(f'[storage]\nurl = "{twp_server.kernel.config.storage.url}"\n')
    out = subprocess.run([sys.executable, "-m", "twpcore.cli", "--config", str(cfg), "dialplan", "test", "--domain", "SSDEI/Paris", "+33155171889"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "'+33155171889' -> '00155171889'" in out.stdout
    assert "rule: priority" in out.stdout
