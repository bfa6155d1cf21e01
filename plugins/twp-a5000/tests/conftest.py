"""A simulated A5000 multi-site (CSTA switch + VTI-XML sites) and a TWP server linked to it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import attrs
import pytest

from twp_csta.sim import PbxSimulator, SimConfig
from twp_csta.sim.vtixml import VtiSite, VtiXmlSimulator, guide_4_2
from twp_csta.testing import FAST_SIM_OPTIONS, admin_client

PASSWORD = "vti-Secret-42"
FAST = {"heartbeat_interval": 0, "request_timeout": 3, "connect_timeout": 2, "reconnect_min": 0.05, "reconnect_max": 0.3}
#: The guide's 4.2 table: which sites each link names explicitly.
EXPLICIT = {"link0": ["1.*"], "link1": ["2.*"], "link2": ["3.*", "4.*"]}


@attrs.define(eq=False)
class MultiSite:
    switch: PbxSimulator
    vti: VtiXmlSimulator
    server: Any
    admin: Any
    company_id: int
    domain_id: int

    @property
    def telephony(self) -> Any:
        return self.server.kernel.telephony

    def link(self, site: str) -> Any:
        return self.telephony.links[f"a5000-{site}"]

    async def wait(self, predicate: Any, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not reached within {timeout:g} s")
            await asyncio.sleep(0.05)

    async def add_devices(self, devices: dict[str, tuple[str | None, str]], users: dict[str, str] | None = None) -> dict[str, int]:
        """Create devices {number: (site, protocol)}; ``users`` {login: number} get a user owning that device."""
        owners: dict[str, int] = {}
        for login, number in (users or {}).items():
            user = await self.admin.create("users", domain_id=self.domain_id, login=login, email=f"{login}@example.com")
            owners[number] = user["id"]
        numbers = list(devices)
        for start in range(0, len(numbers), 50):
            await asyncio.gather(*(
                self.admin.create("devices", domain_id=self.domain_id, number=n, site=devices[n][0] or "", protocol=devices[n][1],
                                  **({"user_id": owners[n]} if n in owners else {}))
                for n in numbers[start:start + 50]))
        return owners

    async def close(self) -> None:
        await self.vti.stop()
        await self.switch.stop()


async def start_multisite(twp_app: Any, *, sites: tuple[VtiSite, ...] | None = None, explicit: dict[str, list[str]] | None = None,
                          csta: bool = True, csta_only: set[str] | None = None, config: dict[str, Any] | None = None,
                          subscribers: dict[str, str] | None = None, directory: dict[str, str] | None = None,
                          plugins: list[Any] = (), link_options: dict[str, Any] | None = None) -> MultiSite:  # type: ignore[assignment]
    guide_sites, locations = guide_4_2()
    sites = sites or guide_sites
    explicit = EXPLICIT if explicit is None else explicit
    switch = await PbxSimulator(SimConfig(**FAST_SIM_OPTIONS, subscribers=dict(subscribers or {}))).start()
    vti = await VtiXmlSimulator(switch, sites, password=PASSWORD, locations=locations, csta_only=csta_only or set(),
                                directory=directory).start()
    links: dict[str, Any] = {}
    for site in sites:
        links[f"a5000-{site.name}"] = {
            "driver": "a5000", "company": "ACME", "domain": "Paris", "host": "127.0.0.1", "port": vti.port(site.name),
            "username": "twp", "password": PASSWORD, "capacity": site.capacity, "sites": explicit.get(site.name, []), **FAST, **(link_options or {}),
            **({"csta_link": "a5000-csta"} if csta else {}),
        }
    if csta:
        links["a5000-csta"] = {"driver": "a5000", "protocol": "csta", "company": "ACME", "domain": "Paris", "host": "127.0.0.1",
                               "port": switch.port, "capacity": 100, **FAST, **(link_options or {})}
    cfg = dict(config or {})
    cfg["pbx"] = {"links": links}
    try:
        server = await twp_app(config=cfg, plugins=list(plugins))
        admin = admin_client(server)
        company = await admin.create("companies", name="ACME")
        domain = await admin.create("domains", company_id=company["id"], name="Paris", numbering_plan_length=5)
    except BaseException:
        await vti.stop()
        await switch.stop()
        raise
    return MultiSite(switch, vti, server, admin, company["id"], domain["id"])


@pytest.fixture
async def multisite(twp_app):
    made: list[MultiSite] = []

    async def start(**kw: Any) -> MultiSite:
        lab = await start_multisite(twp_app, **kw)
        made.append(lab)
        return lab

    yield start
    for lab in made:
        await lab.close()
