"""A kernel with one uaCSTA link whose phones are SIPp processes: the lab of the uaCSTA, Snom and Yealink tests.

``start_phone_lab`` builds the kernel with the kit's ``twp_app``, one ``[pbx.links.lab]`` of a
uaCSTA driver whose ``phones`` all point at a started ``SippPhones``, a tenant, users with
devices through the admin API; it returns the conformance kit's ``Lab`` (users, WebSockets,
``wait_supervised``) with ``lab.sim`` being the ``SippPhones``.
"""

from __future__ import annotations

from typing import Any

import pytest

from twp_csta.sim.sipp import SippPhones
from twp_csta.testing.conformance import LAB_USERS, DriverConformance, Lab, admin_client, user_client

FAST_UACSTA_OPTIONS: dict[str, Any] = {"request_timeout": 2, "keepalive_interval": 0, "reconnect_min": 0.05, "reconnect_max": 0.3}


async def start_phone_lab(twp_app: Any, driver: str, phones: SippPhones, *, link_options: dict[str, Any] | None = None,
                          plugins: list[tuple[str, Any]] = (), users: dict[str, str] | None = None,  # type: ignore[assignment]
                          wait: bool = True, config: dict[str, Any] | None = None) -> Lab:
    """Start ``phones`` and a kernel whose link ``lab`` (driver ``driver``) supervises them; create the tenant."""
    numbers = dict(users or LAB_USERS)
    await phones.start()
    options = {**FAST_UACSTA_OPTIONS, "host": "127.0.0.1", "port": 0, "transport": phones.transport,
               "phones": dict.fromkeys(numbers.values(), phones.address), **(link_options or {})}
    cfg = dict(config or {})
    cfg["pbx"] = {"links": {"lab": {"driver": driver, "company": "Lab", "domain": "Main", **options}}}
    try:
        server = await twp_app(config=cfg, plugins=list(plugins))
        admin = admin_client(server)
        company = await admin.create("companies", name="Lab")
        domain = await admin.create("domains", company_id=company["id"], name="Main", numbering_plan_length=3)
        clients, ids = {}, {}
        for login, number in numbers.items():
            user = await admin.create("users", domain_id=domain["id"], login=login)
            await admin.create("devices", user_id=user["id"], number=number)
            ids[login] = user["id"]
            clients[login] = user_client(server, user["id"])
    except BaseException:
        await phones.stop()
        raise
    lab = Lab(phones, server, admin, "lab", driver, company["id"], domain["id"], clients, numbers, ids)  # type: ignore[arg-type]
    if wait:
        try:
            await lab.wait_supervised(timeout=10)
        except BaseException:
            await lab.close()
            raise
    return lab


#: Scenarios of ``DriverConformance`` that drive the ``PbxSimulator``'s call model (``sim.incoming_call``, ``sim.answer``,
#: ``sim.calls`` ...): a SIPp phone plays a script fixed when it starts and has no such model, so they cannot run against it.
SIM_DRIVEN = (
    "test_monitor", "test_incoming_call_answer_and_hang_up", "test_make_call", "test_make_internal_call_rings_the_other_user",
    "test_hold_and_retrieve", "test_consultation_and_transfer", "test_alternate", "test_reconnect", "test_blind_transfer",
    "test_conference", "test_deflect", "test_dtmf", "test_forwarding", "test_forwarding_busy_and_no_answer", "test_do_not_disturb",
    "test_snapshot_shows_a_call_in_progress_when_supervision_starts", "test_link_loss_reconnects_and_resynchronises",
    "test_garbage_on_the_link_is_skipped",
)


class PhoneConformance(DriverConformance):
    """``DriverConformance`` with its lab on SIPp phones (``link_options`` must give the vendor's ``firmware``).

    The scenarios listed in ``SIM_DRIVEN`` are skipped with that reason (the vendor tests play the same
    steps with SIPp stories instead); the others run unchanged.
    """

    @pytest.fixture
    async def lab(self, twp_app: Any) -> Any:
        phones = SippPhones(story="plain", transport="tcp", calls=3)
        lab = await start_phone_lab(twp_app, self.driver, phones, link_options=self.link_options, plugins=self.plugins)
        try:
            yield lab
        finally:
            await lab.driver_obj.close()
            code = await phones.wait(5)
            errors = await phones.errors()
            await lab.close()
            assert code == 0, errors


def _skipped(name: str) -> Any:
    def scenario(self: Any) -> None:  # no lab: nothing is started for a scenario that cannot run
        pytest.skip(f"{name} drives the PbxSimulator's call model; SIPp phones play fixed scripts (see the vendor tests)")

    scenario.__name__ = name
    return scenario


for _name in SIM_DRIVEN:
    setattr(PhoneConformance, _name, _skipped(_name))
