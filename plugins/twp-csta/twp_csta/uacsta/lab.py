"""A kernel with one uaCSTA link whose phones are SIPp processes: the lab of the uaCSTA, Snom and Yealink tests.

``start_phone_lab`` builds the kernel with the kit's ``twp_app``, one ``[pbx.links.lab]`` of a
uaCSTA driver whose ``phones`` all point at a started ``SippPhones``, a tenant, users with
devices through the admin API; it returns the conformance kit's ``Lab`` (users, WebSockets,
``wait_supervised``) with ``lab.sim`` being the ``SippPhones``; ``finish_phone_lab`` ends it.
``start_http_phone_lab`` is the same lab for the HTTP path (action URLs, remote control) on ``HttpPhones``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from twp_csta.sim.phones import HttpPhones
from twp_csta.sim.sipp import SippPhones
from twp_csta.testing.conformance import LAB_USERS, DriverConformance, Lab, tenant_lab

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
        lab = await tenant_lab(server, phones, "lab", driver, numbers)
    except BaseException:
        await phones.stop()
        raise
    if wait:
        try:
            await lab.wait_supervised(timeout=10)
        except BaseException:
            await lab.close()
            raise
    return lab



async def finish_phone_lab(lab: Lab) -> tuple[int, str]:
    """End the sessions (BYE), wait for SIPp to finish its calls, close the lab; (SIPp's exit status, -1 if it
    did not end within 5 s; its errors)."""
    await lab.driver_obj.close()
    try:
        code = await lab.sim.wait(5)  # type: ignore[attr-defined]
    except TimeoutError:
        code = -1
    errors = await lab.sim.errors()  # type: ignore[attr-defined]
    await lab.close()
    return code, errors


async def start_http_phone_lab(twp_app: Any, driver: str, phones: HttpPhones, users: dict[str, str], *,
                               action_urls: Callable[[str], dict[str, str]], link_options: dict[str, Any] | None = None) -> Lab:
    """Start the simulated ``phones`` and a kernel whose link ``lab`` (driver ``driver``, HTTP path) knows them; create
    the tenant with ``users`` (login → number); give every phone ``action_urls(base URL of TWP)``; wait (5 s at most)
    until the phones' devices are monitored.  ``link_options`` add to or override the link's table."""
    await phones.start()
    table = {"driver": driver, "company": "Lab", "domain": "Main", **FAST_UACSTA_OPTIONS, "host": "127.0.0.1", "port": 0,
             "phones": {number: phone.host for number, phone in phones.phones.items()}, "http_port": phones.port,
             "http_username": phones.username, "http_password": phones.password, **(link_options or {})}
    try:
        server = await twp_app(config={"pbx": {"links": {"lab": table}}})
        lab = await tenant_lab(server, phones, "lab", driver, dict(users))
    except BaseException:
        await phones.stop()
        raise
    urls = action_urls(str(server.client.make_url("")).rstrip("/"))
    for phone in phones.phones.values():
        phone.action_urls = urls
    for _ in range(250):
        if set(users.values()) <= lab.kernel.telephony.links["lab"].monitored:
            break
        await asyncio.sleep(0.02)
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
            code, errors = await finish_phone_lab(lab)
            assert code == 0, errors


def _skipped(name: str) -> Any:
    def scenario(self: Any) -> None:  # no lab: nothing is started for a scenario that cannot run
        pytest.skip(f"{name} drives the PbxSimulator's call model; SIPp phones play fixed scripts (see the vendor tests)")

    scenario.__name__ = name
    return scenario


for _name in SIM_DRIVEN:
    setattr(PhoneConformance, _name, _skipped(_name))
