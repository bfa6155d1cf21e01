"""E-mail alerts (guide 9.1.5) against a real SMTP server: PyPI aiosmtpd on 127.0.0.1.

Calls come from a PBX driver written in the test, through the kernel's call model, as
they would from a CSTA link: a call that rings and stops without being answered is a
missed call.  The SMTP parameters are set per domain, group or user like an admin does
(guide 9.1.5), including STARTTLS with a self-signed certificate made for the test
(trustme), implicit TLS, login, and a server that is down.
"""

from __future__ import annotations

import asyncio
import logging

import attrs
import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from twpcore.hookspecs import hookimpl
from twpcore.kinds import PbxDriver
from twpcore.mail import voicemail_event
from twpcore.schema import setting
from twpcore.telephony.events import PbxEvent
from twpcore.testing.servers import find_free_port
from twpcore.testing.smtp import Mailbox

SMTP_PASSWORD = "smtp-pa55-word"


pytestmark = pytest.mark.usefixtures("cheap_password_hashes")  # logins are not what these tests are about


# -- a PBX link whose calls the test drives ------------------------------------------------
@attrs.frozen
class LinkConfig:
    capacity: int = setting(10, min=0)


class CallsPbx(PbxDriver):
    type_name = "testpbx"
    Config = LinkConfig
    capabilities = frozenset({"monitor"})

    def __init__(self, config, context):
        super().__init__(config, context)
        self.capacity = config.capacity
        self.monitored: list[str] = []

    @property
    def connected(self):
        return True

    async def setup(self):
        self.link_up()

    async def monitor(self, device):
        self.monitored.append(device)


class Plugin:
    @hookimpl
    def twp_register_pbx_drivers(self, register):
        register(CallsPbx)


def missed(pbx, device, caller, call_id):
    pbx.emit(PbxEvent("delivered", device, call_id, calling=caller, called=device))
    pbx.emit(PbxEvent("cleared", device, call_id, cause="normal"))


def answered(pbx, device, caller, call_id):
    pbx.emit(PbxEvent("delivered", device, call_id, calling=caller, called=device))
    pbx.emit(PbxEvent("established", device, call_id, calling=caller, called=device))
    pbx.emit(PbxEvent("cleared", device, call_id, cause="normal"))


# -- the SMTP server -----------------------------------------------------------------------
def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"twp" and auth_data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def ca_file(ca, tmp_path):
    path = tmp_path / "smtp-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def server_context(ca):
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    return ctx


@pytest.fixture
async def smtp_servers():
    """Start aiosmtpd controllers (each in its own thread and loop); stop them after the test."""
    started = []

    async def start(*, port=None, **kwargs):
        box = Mailbox()
        controller = Controller(box, hostname="127.0.0.1", port=port or find_free_port(), **kwargs)
        await asyncio.to_thread(controller.start)
        started.append(controller)
        return controller, box

    yield start
    for controller in started:
        await asyncio.to_thread(controller.stop)


# -- the tenant ---------------------------------------------------------------------------
LINK = {"pbx": {"links": {"paris": {"driver": "testpbx", "company": "ACME", "domain": "Paris"}}}}


async def setup(twp_app, smtp: dict[str, str], *, options=None):
    server = await twp_app(config={**LINK, "plugins": {"notifications": {"mail_retry_delay": "50ms", "mail_timeout": "5s", **(options or {})}}},
                           plugins=[("testpbx", Plugin())])
    admin = await server.admin()
    company = await admin.create("companies", name="ACME")
    domain = await admin.create("domains", company_id=company["id"], name="Paris")
    users = {}
    for login, number, culture, mail in (("amelie", "201", "fr-FR", "amelie@acme.test"), ("bernd", "202", "de-DE", "bernd@acme.test"),
                                         ("carol", "203", "en-US", "carol@acme.test"), ("dan", "204", "en-US", "")):
        users[login] = await admin.create("users", domain_id=domain["id"], login=login, first_name=login.title(), culture=culture, email=mail)
        await admin.create("devices", user_id=users[login]["id"], number=number)
    for name, value in smtp.items():
        await admin.create("parameter_values", name=name, scope="domain", scope_id=domain["id"], value=value)
    pbx = server.kernel.telephony.links["paris"].driver
    for _ in range(250):
        if len(pbx.monitored) == 4:
            break
        await asyncio.sleep(0.02)
    assert sorted(pbx.monitored) == ["201", "202", "203", "204"]
    return server, admin, domain, users, pbx


def plain(port):
    return {"smtp": "127.0.0.1", "SmtpServerPort": str(port), "SmtpSecurity": "none", "SmtpSender": "TWP <twp@acme.test>"}


async def drained(server):
    await server.kernel.mail.drain(10)


# -- scenarios ------------------------------------------------------------------------------
async def test_a_missed_call_is_mailed_in_each_users_language(twp_app, smtp_servers):
    controller, box = await smtp_servers()
    server, _admin, _domain, _users, pbx = await setup(twp_app, plain(controller.port))
    missed(pbx, "201", "0612345678", "c1")
    missed(pbx, "202", "0612345678", "c2")
    missed(pbx, "203", None, "c3")  # hidden number
    await drained(server)
    by_to = {m["to"][0]: m for m in box.messages}
    assert sorted(by_to) == ["amelie@acme.test", "bernd@acme.test", "carol@acme.test"]
    fr, de, en = (by_to[a]["message"] for a in ("amelie@acme.test", "bernd@acme.test", "carol@acme.test"))
    assert fr["Subject"] == "Appel manqué de 0612345678" and "Vous avez manqué un appel de 0612345678 le " in fr.get_content()
    assert "sur votre poste 201." in fr.get_content() and fr["Content-Language"] == "fr"
    assert de["Subject"] == "Verpasster Anruf von 0612345678" and "auf Ihrem Telefon 202 verpasst" in de.get_content()
    assert en["Subject"] == "Missed call from an unknown caller"
    assert fr["From"] == "TWP <twp@acme.test>" and fr["To"] == "Amelie <amelie@acme.test>" and fr["Auto-Submitted"] == "auto-generated"
    assert by_to["amelie@acme.test"]["tls"] is False


async def test_no_mail_for_answered_or_outgoing_calls_nor_when_the_user_may_not_or_has_no_address(twp_app, smtp_servers):
    controller, box = await smtp_servers()
    server, admin, domain, users, pbx = await setup(twp_app, plain(controller.port))
    answered(pbx, "201", "0612345678", "a1")
    pbx.emit(PbxEvent("originated", "202", "o1", calling="202", called="0612345678"))
    pbx.emit(PbxEvent("delivered", "202", "o1", calling="202", called="0612345678"))
    pbx.emit(PbxEvent("cleared", "202", "o1", cause="normal"))
    missed(pbx, "204", "0612345678", "n1")  # dan has no e-mail address
    group = await admin.create("groups", domain_id=domain["id"], name="NoMail")
    await admin.post(f"/api/v1/groups/{group['id']}/members", {"user_id": users["carol"]["id"]}, status=204)
    await admin.create("parameter_values", name="AuthorizedEmailNotification", scope="group", scope_id=group["id"], value="No")
    missed(pbx, "203", "0612345678", "n2")
    await admin.create("parameter_values", name="EmailMissedCalls", scope="user", scope_id=users["bernd"]["id"], value="No")
    missed(pbx, "202", "0612345678", "n3")
    await drained(server)
    assert box.messages == []
    missed(pbx, "201", "0612345678", "yes")  # the control: amelie still gets hers
    await drained(server)
    assert [m["to"] for m in box.messages] == [["amelie@acme.test"]]


async def test_a_new_voicemail_message_is_mailed_to_the_owner_of_the_mailbox(twp_app, smtp_servers):
    controller, box = await smtp_servers()
    server, _admin, domain, _users, _pbx = await setup(twp_app, plain(controller.port))
    server.kernel.events.publish(voicemail_event(company_id=domain["company_id"], domain_id=domain["id"], device="202",
                                                 caller="+33612345678", caller_name="Jean Dupont", new_messages=3))
    await drained(server)
    [mail] = box.messages
    msg = mail["message"]
    assert mail["to"] == ["bernd@acme.test"]
    assert msg["Subject"] == "Neue Sprachnachricht von Jean Dupont (+33612345678)"
    assert "Sie haben 3 neue Sprachnachrichten." in msg.get_content() and "Ihres Telefons 202" in msg.get_content()


async def test_starttls_with_a_self_signed_certificate_and_a_login(twp_app, smtp_servers, ca, ca_file, caplog):
    caplog.set_level(logging.DEBUG)
    controller, box = await smtp_servers(tls_context=server_context(ca), require_starttls=True, auth_require_tls=True, authenticator=authenticator)
    smtp = {**plain(controller.port), "SmtpSecurity": "starttls", "SmtpCaFile": ca_file, "SmtpAuthUserName": "twp", "SmtpAuthPassword": SMTP_PASSWORD}
    server, admin, _domain, users, pbx = await setup(twp_app, smtp)
    missed(pbx, "203", "0612345678", "t1")
    await drained(server)
    [mail] = box.messages
    assert mail["tls"] is True and mail["login"] == b"twp"
    assert server.kernel.mail.failed == 0
    shown = await admin.get(f"/api/v1/users/{users['carol']['id']}/parameters", params={"expert": "true"})
    assert {p["name"]: p["value"] for p in shown["items"]}["SmtpAuthPassword"] == "***"
    assert SMTP_PASSWORD not in caplog.text


async def test_an_untrusted_certificate_or_a_wrong_password_is_logged_and_not_retried(twp_app, smtp_servers, ca, ca_file, caplog):
    controller, box = await smtp_servers(tls_context=server_context(ca), require_starttls=True, authenticator=authenticator)
    smtp = {**plain(controller.port), "SmtpSecurity": "starttls", "SmtpAuthUserName": "twp", "SmtpAuthPassword": "not-the-password"}
    server, admin, domain, _users, pbx = await setup(twp_app, smtp)
    missed(pbx, "203", "0612345678", "u1")  # no SmtpCaFile: the test CA is unknown
    await drained(server)
    assert "its TLS certificate is not trusted" in caplog.text and "set parameter SmtpCaFile" in caplog.text
    await admin.create("parameter_values", name="SmtpCaFile", scope="domain", scope_id=domain["id"], value=ca_file)
    missed(pbx, "203", "0612345678", "u2")
    await drained(server)
    assert "refused SmtpAuthUserName 'twp' and its password (535)" in caplog.text
    assert box.messages == [] and server.kernel.mail.failed == 2
    assert "new attempt" not in caplog.text  # permanent errors are not retried
    assert "not-the-password" not in caplog.text


async def test_implicit_tls(twp_app, smtp_servers, ca, ca_file):
    controller, box = await smtp_servers(ssl_context=server_context(ca))
    server, _admin, _domain, _users, pbx = await setup(twp_app, {**plain(controller.port), "SmtpSecurity": "tls", "SmtpCaFile": ca_file})
    missed(pbx, "201", "0612345678", "i1")
    await drained(server)
    [mail] = box.messages
    assert mail["tls"] is True


async def test_auto_never_sends_the_password_over_plain_text(twp_app, smtp_servers, caplog):
    controller, box = await smtp_servers(auth_require_tls=False, authenticator=authenticator)
    smtp = {**plain(controller.port), "SmtpSecurity": "auto", "SmtpAuthUserName": "twp", "SmtpAuthPassword": SMTP_PASSWORD}
    server, _admin, _domain, _users, pbx = await setup(twp_app, smtp)
    missed(pbx, "201", "0612345678", "p1")
    await drained(server)
    assert box.messages == [] and "logging in would send SmtpAuthPassword in clear text" in caplog.text


async def test_a_server_that_is_down_is_retried_and_the_mail_goes_when_it_is_back(twp_app, smtp_servers, caplog):
    port = find_free_port()
    server, _admin, _domain, _users, pbx = await setup(twp_app, plain(port), options={"mail_retries": 3, "mail_retry_delay": "300ms"})
    missed(pbx, "201", "0612345678", "d1")
    for _ in range(100):
        if "new attempt in" in caplog.text:
            break
        await asyncio.sleep(0.02)
    assert f"cannot reach SMTP server 127.0.0.1:{port}" in caplog.text
    _controller, box = await smtp_servers(port=port)
    await drained(server)
    assert [m["to"] for m in box.messages] == [["amelie@acme.test"]]


async def test_a_server_down_for_good_is_given_up_after_the_retries_and_the_server_keeps_running(twp_app, caplog):
    port = find_free_port()
    server, admin, _domain, _users, pbx = await setup(twp_app, plain(port), options={"mail_retries": 2})
    missed(pbx, "201", "0612345678", "g1")
    await drained(server)
    assert server.kernel.mail.failed == 1 and "missed_call e-mail to user" in caplog.text and "(after 3 attempts)" in caplog.text
    assert (await admin.get("/api/v1/health"))["ready"] is True
