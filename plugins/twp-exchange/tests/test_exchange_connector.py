"""The Exchange connector against the EWS simulator, through an unmodified exchangelib (guide 8.7).

Each scenario is one an admin meets: public folders (all, or a selection: 8.7.2), one
mailbox made public (8.7.3), users' private contacts through impersonation or delegate
access (8.7.5), Office 365 with an OAuth application, and the failures that must keep
the previous contacts: server down, time-out, refused credentials or rights, a server
dying while paging, unreadable items.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from twp_exchange.connector import ExchangeConfig, ExchangeConnector, parse_connection_string
from twp_exchange.testing import EwsContact, EwsFolder, EwsServer
from twpcore.directory import SkippedRecord
from twpcore.directory.service import DirectoryRef
from twpcore.kinds import AuthFailed, ConnectorError, InstanceContext, Kind, NotReady
from twpcore.schema import ConfigErrors, structure

SERVICE = "svc-twp@corp.example.com"


def contact(i: int, **extra: Any) -> EwsContact:
    return EwsContact(given_name="Anne", surname=f"Martin{i:03d}", company_name="Algo",
                      phones={"BusinessPhone": f"+33 1 40 00 {i:04d}", "MobilePhone": f"+33 6 10 00 {i:04d}"},
                      emails={"EmailAddress1": f"anne{i}@algo.example"}, **extra)


@pytest.fixture
def ews() -> Iterator[EwsServer]:
    server = EwsServer(users={SERVICE: "S3cret!", "CORP\\reader": "R3ader"})
    general = EwsFolder("General", folder_class="IPF.Note")
    general.add(
        EwsFolder("Algo Distributors", folder_class="IPF.Note").add(
            EwsFolder("Export", items=[contact(i) for i in range(1, 251)])),
        EwsFolder("Algo suppliers", items=[contact(500), EwsContact(surname="Broken", corrupt=True),
                                           EwsContact(display_name="All suppliers", distribution_list=True)]),
    )
    server.public.add(general, EwsFolder("Sales", items=[contact(900)]), EwsFolder("Notes", folder_class="IPF.Note"))
    server.mailbox(SERVICE).contacts.items.append(contact(700, department="Switchboard"))
    server.mailbox("alice@corp.example.com").contacts.items.extend([contact(800), contact(801)])
    server.mailbox("bob@corp.example.com").contacts.items.append(contact(802))
    with server:
        yield server


def make(ews: EwsServer, suffix: str = "", **options: Any) -> ExchangeConnector:
    data = {"url": ews.url + suffix, "auth": "basic", "user": SERVICE, "password": "S3cret!", **options}
    config = structure(ExchangeConfig, data, source="test", path="options")
    return ExchangeConnector(config, InstanceContext("test", Kind.DIRECTORY_CONNECTOR))


async def collect(connector: ExchangeConnector, user: Any = None) -> list[Any]:
    return [record async for record in connector.records(user)]


def test_connection_strings_follow_the_guide() -> None:
    assert parse_connection_string("https://mx/ews/Exchange.asmx|public|General/Algo Distributors/Export,General/Algo suppliers").folders == (
        ("General", "Algo Distributors", "Export"), ("General", "Algo suppliers"))
    assert parse_connection_string("https://outlook.office365.com/ews/Exchange.asmx|user").mode == "mailbox"
    assert parse_connection_string("https://mx/ews/Exchange.asmx").folders == ()
    with pytest.raises(ValueError, match=r'expected "url", "url\|public\|folder1,folder2/sub" or "url\|user"'):
        parse_connection_string("https://mx/ews/Exchange.asmx|private")
    with pytest.raises(ConfigErrors, match="needs user and password"):
        structure(ExchangeConfig, {"url": "https://mx/ews/Exchange.asmx"}, source="twp.toml", path="directories.x")
    with pytest.raises(ConfigErrors, match="client_secret, tenant_id"):
        structure(ExchangeConfig, {"url": "https://mx/ews/Exchange.asmx", "auth": "oauth", "client_id": "app"},
                  source="twp.toml", path="directories.x")


async def test_every_public_contacts_folder_is_read_page_by_page(ews: EwsServer) -> None:
    connector = make(ews, page_size=100)
    message = await connector.test_connection()
    assert "3 public contacts folders: General/Algo Distributors/Export (250), General/Algo suppliers (3), Sales (1)" in message

    records = await collect(connector)
    contacts = [r for r in records if not isinstance(r, SkippedRecord)]
    assert len(contacts) == 252
    anne = next(r for r in contacts if r.fields.get("Surname") == "Martin042")
    assert anne.fields["BusinessPhone"] == "+33 1 40 00 0042"
    assert anne.fields["MobilePhone"] == "+33 6 10 00 0042"
    assert anne.fields["Email1Address"] == "anne42@algo.example"
    assert anne.fields["CompanyName"] == "Algo" and anne.fields["FolderPath"] == "General/Algo Distributors/Export"
    # 250 contacts at 100 per page: three FindItem pages for the big folder.
    assert ews.operations().count("FindItem") == 3 + 1 + 1
    # The unreadable item and the distribution list are named, not silently dropped.
    skipped = sorted((r.id, r.reason) for r in records if isinstance(r, SkippedRecord))
    assert skipped[0] == ("General/Algo suppliers #2", "Exchange cannot read this item: ErrorItemCorrupt: The item is corrupt.")
    assert skipped[1][1] == 'distribution list "All suppliers" in General/Algo suppliers, not a contact'


async def test_a_selection_of_public_folders_reads_only_those(ews: EwsServer) -> None:
    connector = make(ews, "|public|General/Algo suppliers,Sales")
    records = [r for r in await collect(connector) if not isinstance(r, SkippedRecord)]
    assert sorted(r.fields["Surname"] for r in records) == ["Martin500", "Martin900"]

    wrong_case = make(ews, "|public|General/algo suppliers")
    with pytest.raises(ConnectorError, match=r'public folder "General/algo suppliers" not found \(names are case sensitive\); '
                                             r'General holds: "Algo Distributors", "Algo suppliers"'):
        await collect(wrong_case)


async def test_one_mailbox_made_public(ews: EwsServer) -> None:
    connector = make(ews, "|user")
    assert "mailbox svc-twp@corp.example.com, 1 items in Contacts" in await connector.test_connection()
    records = await collect(connector)
    assert [(r.fields["Surname"], r.fields["Department"]) for r in records] == [("Martin700", "Switchboard")]


@pytest.mark.parametrize("version", [(14, 3, 123, 3, "Exchange2010_SP2"), (15, 20, 7452, 28, "V2018_01_08")],
                         ids=["exchange-2010-sp3", "office-365"])
async def test_exchange_2010_and_office_365_version_headers(version: tuple[int, int, int, int, str]) -> None:
    # The guide's "Server type: Exchange 2010", also for Office 365: the connector takes the
    # version the server announces (Office 365 sends a "V2018_…" name exchangelib maps back).
    with EwsServer(users={SERVICE: "S3cret!"}, version=version) as ews:
        ews.mailbox(SERVICE).contacts.items.append(contact(1))
        assert [r.fields["Surname"] for r in await collect(make(ews, "|user"))] == ["Martin001"]


async def test_private_contacts_through_impersonation(ews: EwsServer) -> None:
    connector = make(ews, access="impersonation")
    connector.directory = DirectoryRef(1, "Exchange private", "private", 1, 1)
    assert await connector.test_connection() == (
        f"Exchange at {ews.url}: account svc-twp@corp.example.com logged in; each granted user's Contacts are read through impersonation")
    alice = {"login": "alice", "email": "alice@corp.example.com"}
    with pytest.raises(AuthFailed, match="may not impersonate this user; give it the ApplicationImpersonation role"):
        await collect(connector, alice)

    ews.impersonators.add(SERVICE)
    assert sorted(r.fields["Surname"] for r in await collect(connector, alice)) == ["Martin800", "Martin801"]
    with pytest.raises(ConnectorError, match=r"no such mailbox .*check the user's Email field"):
        await collect(connector, {"login": "carol", "email": "carol@corp.example.com"})
    with pytest.raises(ConnectorError, match="user dave has no Email"):
        await collect(connector, {"login": "dave", "email": None})


async def test_private_contacts_through_delegate_access(ews: EwsServer) -> None:
    connector = make(ews, access="delegate")
    bob = {"login": "bob", "email": "bob@corp.example.com"}
    with pytest.raises(AuthFailed, match=r"access denied to account svc-twp@corp.example.com; grant it Receive-As"):
        await collect(connector, bob)
    # Bob gives the service account Reviewer rights in Outlook (guide 8.7.6, solution 2).
    ews.mailbox("bob@corp.example.com").reviewers.add(SERVICE)
    assert [r.fields["Surname"] for r in await collect(connector, bob)] == ["Martin802"]


async def test_office_365_with_an_oauth_application(ews: EwsServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # oauthlib refuses tokens over plain http unless told; the simulator serves http on 127.0.0.1.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    ews.apps["6731de76-14a6-49ae-97bc-6eba6914391e"] = "app-secret"
    ews.app_roles["6731de76-14a6-49ae-97bc-6eba6914391e"] = {"alice@corp.example.com"}
    options = {"auth": "oauth", "user": "", "password": None, "client_id": "6731de76-14a6-49ae-97bc-6eba6914391e",
               "client_secret": "app-secret", "tenant_id": "corp", "token_url": ews.token_url}
    connector = make(ews, **options)
    records = await collect(connector, {"login": "alice", "email": "alice@corp.example.com"})
    assert sorted(r.fields["Surname"] for r in records) == ["Martin800", "Martin801"]
    assert "token" in ews.operations()
    with pytest.raises(AuthFailed, match="access denied to application 6731de76"):
        await collect(connector, {"login": "bob", "email": "bob@corp.example.com"})

    refused = make(ews, **{**options, "client_secret": "wrong"})
    with pytest.raises(AuthFailed, match="check client_id, client_secret and tenant_id") as info:
        await collect(refused, {"login": "alice", "email": "alice@corp.example.com"})
    assert "wrong" not in str(info.value)


async def test_wrong_password_is_auth_failed_and_never_shown(ews: EwsServer) -> None:
    connector = make(ews, password="not-the-password")
    with pytest.raises(AuthFailed, match=r"refused the credentials of account svc-twp@corp.example.com \(HTTP 401\)") as info:
        await connector.test_connection()
    assert "not-the-password" not in str(info.value)
    with pytest.raises(AuthFailed):
        await collect(connector)


async def test_server_down_time_out_and_death_while_paging_are_not_ready(ews: EwsServer) -> None:
    connector = make(ews, page_size=50, timeout=1)
    ews.delay = 2
    with pytest.raises(NotReady, match="no answer within 1 s"):
        await collect(connector)
    ews.delay = 0

    # The server dies at the third FindItem page of the 250 contacts of Export.
    ews.requests.clear()
    assert len(await collect(make(ews, page_size=50))) == 254
    third_page = [i for i, op in enumerate(ews.operations()) if op == "FindItem"][2]
    ews.requests.clear()
    ews.fail_after = third_page
    with pytest.raises(NotReady, match="cannot reach the EWS endpoint"):
        await collect(make(ews, page_size=50))
    assert ews.operations().count("GetItem") == 2
    ews.fail_after = None

    url = ews.url
    ews.stop()
    down = ExchangeConnector(structure(ExchangeConfig, {"url": url, "auth": "basic", "user": SERVICE, "password": "x"}),
                             InstanceContext("down", Kind.DIRECTORY_CONNECTOR))
    with pytest.raises(NotReady, match="cannot reach the EWS endpoint"):
        await down.test_connection()


async def test_ntlm_the_default_authentication(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # IIS "Integrated Windows authentication": the simulator runs pyspnego's NTLM acceptor,
    # which reads its accounts from NTLM_USER_FILE.
    with EwsServer(users={"CORP\\reader": "R3ader"}, ntlm=True) as ews:
        monkeypatch.setenv("NTLM_USER_FILE", ews.ntlm_user_file(tmp_path / "ntlm-users"))
        ews.mailbox("reader@corp.example.com").contacts.items.append(contact(1))
        options = {"url": ews.url + "|user", "user": "CORP\\reader", "mailbox": "reader@corp.example.com"}
        connector = ExchangeConnector(structure(ExchangeConfig, {**options, "password": "R3ader"}),
                                      InstanceContext("ntlm", Kind.DIRECTORY_CONNECTOR))
        assert [r.fields["Surname"] for r in await collect(connector)] == ["Martin001"]
        assert ("GetItem", "CORP\\reader") in ews.requests

        refused = ExchangeConnector(structure(ExchangeConfig, {**options, "password": "wrong"}),
                                    InstanceContext("ntlm", Kind.DIRECTORY_CONNECTOR))
        with pytest.raises(AuthFailed, match=r"refused the credentials of account CORP\\reader \(HTTP 401\)"):
            await collect(refused)


def test_loading_the_plugin_does_not_import_exchangelib() -> None:
    """exchangelib costs a quarter of a second and 20 MiB: only a server with an Exchange directory pays, at first use."""
    import subprocess
    import sys

    probe = ("import sys, twp_exchange.plugin, twp_exchange.connector; "
             "print(sorted(m for m in ('exchangelib', 'requests') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

