"""A PBX link whose ``company`` or ``domain`` does not exist (issue 12, item 7).

``twp config check`` refuses it when it can read the store, and says so when it cannot;
a running server shows the link as ``config_error`` naming the missing name, in
``GET /api/v1/plugins`` and in the health, and starts it once an administrator creates
the domain.
"""

import asyncio
import subprocess
import sys

import attrs

from twpcore.hookspecs import hookimpl
from twpcore.kinds import PbxDriver
from twpcore.schema import setting


@attrs.frozen
class QuietConfig:
    capacity: int = setting(10, min=0)


class QuietDriver(PbxDriver):
    """A PBX that is always there: setup succeeds at once."""

    type_name = "quiet"
    Config = QuietConfig
    capabilities = frozenset({"monitor"})
    setups = 0

    @property
    def connected(self):
        return True

    async def setup(self):
        QuietDriver.setups += 1
        self.link_up()


class Plugin:
    @hookimpl
    def twp_register_pbx_drivers(self, register):
        register(QuietDriver)


def link(**names):
    return {"pbx": {"links": {"paris": {"driver": "quiet", **names}}}}


async def wait_for(predicate, timeout=5.0):
    for _ in range(int(timeout / 0.02)):
        if await predicate():
            return True
        await asyncio.sleep(0.02)
    return False


async def test_a_link_to_a_missing_domain_is_a_config_error_until_the_domain_exists(twp_app):
    QuietDriver.setups = 0
    server = await twp_app(config=link(company="ACME", domain="Paris"), plugins=[("quiet", Plugin())])
    admin = await server.admin()
    company = await admin.create("companies", name="ACME")
    await admin.create("domains", company_id=company["id"], name="Lyon")

    instances = (await admin.get("/api/v1/plugins"))["instances"]
    paris = next(i for i in instances if i["name"] == "paris")
    assert paris["state"] == "config_error", paris
    assert 'pbx.links.paris.domain: no domain is named "Paris" of company "ACME"' in paris["reason"]
    assert QuietDriver.setups == 0  # held back: it supervises nobody's phones
    health = await admin.get("/api/v1/health")
    assert health["status"] == "degraded" and health["instances"]["not_ready"] >= 1
    assert any(i["name"] == "paris" and i["state"] == "config_error" for i in health["instances"]["items"])

    await admin.create("domains", company_id=company["id"], name="Paris")

    async def ready():
        items = (await admin.get("/api/v1/plugins"))["instances"]
        return next(i for i in items if i["name"] == "paris")["state"] == "ready"

    assert await wait_for(ready), (await admin.get("/api/v1/plugins"))["instances"]
    assert QuietDriver.setups == 1


async def test_a_link_to_a_missing_company_names_it(twp_app):
    server = await twp_app(config=link(company="Nobody", domain="Paris"), plugins=[("quiet", Plugin())])
    admin = await server.admin()
    paris = next(i for i in (await admin.get("/api/v1/plugins"))["instances"] if i["name"] == "paris")
    assert paris["state"] == "config_error"
    assert 'pbx.links.paris.company: no company is named "Nobody" in the store' in paris["reason"]


def twp(*args, cwd):
    return subprocess.run([sys.executable, "-m", "twpcore.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_config_check_refuses_a_link_to_a_missing_domain_when_it_can_read_the_store(tmp_path):
    cfg = tmp_path / "twp.toml"
    cfg.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/twp.db"\n[demo]\nseed = true\n'
                   '[pbx.links.paris]\ndriver = "mxone"\nhost = "127.0.0.1"\ncompany = "Demo"\ndomain = "Pariss"\n')
    # Before the store exists: accepted, with a note that the names were not checked.
    first = twp("--config", str(cfg), "config", "check", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "were not checked" in first.stdout and "does not exist yet" in first.stdout
    assert not (tmp_path / "twp.db").exists()  # config check creates nothing

    # A store with the demo company and its domain Paris.
    from twpcore.demo import seed_if_empty
    from twpcore.store import Store

    store = Store(f"sqlite:///{tmp_path}/twp.db")
    store.upgrade()
    store.transaction(seed_if_empty)
    store.close()

    bad = twp("--config", str(cfg), "config", "check", cwd=tmp_path)
    assert bad.returncode == 2, bad.stdout
    assert f'{cfg}: pbx.links.paris.domain: no domain is named "Pariss" of company "Demo" in the store' in bad.stderr

    cfg.write_text(cfg.read_text().replace('"Pariss"', '"Paris"'))
    good = twp("--config", str(cfg), "config", "check", cwd=tmp_path)
    assert good.returncode == 0 and "configuration OK" in good.stdout and "not checked" not in good.stdout, good.stderr
