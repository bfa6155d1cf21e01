"""The LDAP and Active Directory connectors against a real slapd (guide 8.3, 7.2.2).

The kit's ``SlapdServer`` caps searches like Active Directory: a plain search stops at
1,000 entries with "size limit exceeded", a paged search with pages of at most 1,000
reads everything, a larger page is refused.  The directory here holds 2,500 people, so
a connector that forgot to page would lose 1,500 contacts.  Failures (server down,
time-out, refused credentials, a server dying between two pages, malformed entries)
raise what the kernel needs to keep the previous contacts and tell the admin why.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import struct
import time
import uuid
from typing import Any

import ldap3
import pytest

from twp_ldap import ActiveDirectoryConnector, LdapConnector, format_sid
from twpcore.kinds import AuthFailed, ConnectorError, InstanceContext, Kind, NotReady, SourceRecord
from twpcore.schema import ConfigErrors, structure
from twpcore.testing.servers import SlapdServer, find_free_port

pytestmark = pytest.mark.skipif(
    not SlapdServer.available() and not os.environ.get("CI"),
    reason="slapd / ldap-utils not installed (run scripts/install-system-deps.sh)",
)

PEOPLE = 2_500
SUFFIX = "dc=example,dc=com"
AD_SUFFIX = "DC=corp,DC=example,DC=com"


def person(i: int, **extra: Any) -> tuple[str, dict[str, Any]]:
    attributes: dict[str, Any] = {
        "objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson"],
        "uid": f"p{i:05d}",
        "cn": f"Person {i}",
        "sn": f"Name{i:05d}",
        "givenName": "Camille",
        "telephoneNumber": f"+33 1 40 {i:06d}",
        "mail": f"p{i:05d}@example.com",
        "employeeNumber": str(10_000 + i),
    }
    if i % 10 == 0:  # some people have two mobiles
        attributes["mobile"] = [f"+33 6 00 {i:06d}", f"+33 7 00 {i:06d}"]
    attributes.update(extra)
    return f"uid=p{i:05d},ou=people,{SUFFIX}", attributes


@pytest.fixture(scope="module")
def directory() -> Any:
    """2,500 people behind slapd's 1,000-entry size limit (read-only for the tests)."""
    with SlapdServer(suffix=SUFFIX, entries=[person(i) for i in range(PEOPLE)]) as server:
        yield server


def make(cls: type[LdapConnector], server: SlapdServer | None = None, name: str = "corp", **options: Any) -> LdapConnector:
    """A connector configured the way an admin would write it in twp.toml (checked by the schema)."""
    table: dict[str, Any] = {}
    if server is not None:
        table.update(url=server.url, base_dn=server.people_dn, bind_dn=server.reader_dn, password=server.reader_password)
    table.update(options)
    config = structure(cls.Config, table, source="twp.toml", path=f"directories.{name}")
    return cls(config, InstanceContext(name, Kind.DIRECTORY_CONNECTOR, logger=logging.getLogger(f"twp.directory_connector.{name}")))


async def read_all(connector: LdapConnector, user: Any = None) -> list[SourceRecord]:
    return [record async for record in connector.records(user)]


# -- the size limit and paging ----------------------------------------------------------


def test_a_plain_search_stops_at_1000_entries_like_active_directory(directory: SlapdServer) -> None:
    conn = ldap3.Connection(directory.url, directory.reader_dn, directory.reader_password, auto_bind=True)
    conn.search(directory.people_dn, "(objectClass=person)", attributes=["uid"])
    assert conn.result["description"] == "sizeLimitExceeded"
    assert len(conn.entries) == 1_000
    conn.unbind()


async def test_a_paged_sync_reads_all_2500_entries_past_the_size_limit(directory: SlapdServer) -> None:
    connector = make(LdapConnector, directory, page_size=1000)
    records = await read_all(connector)

    assert len(records) == PEOPLE
    assert len({r.id for r in records}) == PEOPLE
    by_uid = {r.fields["uid"]: r for r in records}
    last = by_uid["p02499"]
    assert last.id == f"uid=p02499,ou=people,{SUFFIX}"
    assert last.fields["dn"] == last.id
    assert last.fields["cn"] == "Person 2499"
    assert last.fields["telephoneNumber"] == "+33 1 40 002499"
    # A multi-valued attribute is a list, in the server's order.
    assert by_uid["p02490"].fields["mobile"] == ["+33 6 00 002490", "+33 7 00 002490"]
    assert "mobile" not in last.fields  # no value, and "mobile" was not asked for by name


async def test_without_paging_the_sync_fails_rather_than_losing_1500_contacts(directory: SlapdServer) -> None:
    connector = make(LdapConnector, directory, page_size=0)
    with pytest.raises(ConnectorError) as failure:
        await read_all(connector)
    message = str(failure.value)
    assert "size limit after 1,000 entries" in message
    assert "set page_size" in message


async def test_a_page_larger_than_the_server_allows_is_refused_with_the_fix(directory: SlapdServer) -> None:
    connector = make(LdapConnector, directory, page_size=2000)
    with pytest.raises(ConnectorError) as failure:
        await read_all(connector)
    message = str(failure.value)
    assert "refused page_size = 2000" in message
    assert "Active Directory: 1000" in message


async def test_connection_test_counts_the_matching_entries(directory: SlapdServer) -> None:
    connector = make(LdapConnector, directory)
    text = await connector.test_connection()
    assert text == (f"{directory.url}: bound as {directory.reader_dn}; 2,500 entries match "
                    f"(objectClass=person) under {directory.people_dn}")


async def test_requested_attributes_are_spelt_as_configured_and_missing_ones_are_none(directory: SlapdServer) -> None:
    connector = make(LdapConnector, directory, attributes=["SN", "telephonenumber", "mobile", "jpegPhoto"],
                     id_attribute="employeeNumber", filter="(uid=p0000*)")
    records = {r.id: r for r in await read_all(connector)}
    assert len(records) == 10
    assert records["10001"].fields == {
        "dn": f"uid=p00001,ou=people,{SUFFIX}", "SN": "Name00001", "telephonenumber": "+33 1 40 000001",
        "mobile": None, "jpegPhoto": None, "employeeNumber": "10001",
    }
    assert connector.source_fields() == ["dn", "SN", "telephonenumber", "mobile", "jpegPhoto"]


async def test_lower_case_names_gives_the_guides_lower_case_field_names(directory: SlapdServer) -> None:
    connector = make(LdapConnector, directory, lower_case_names=True, filter="(uid=p00010)")
    [record] = await read_all(connector)
    assert record.fields["telephonenumber"] == "+33 1 40 000010"
    assert record.fields["givenname"] == "Camille"
    assert all(name == name.lower() for name in record.fields)


async def test_size_limit_is_a_safety_cap_that_fails_the_sync(directory: SlapdServer) -> None:
    connector = make(LdapConnector, directory, size_limit=2000, page_size=500)
    with pytest.raises(ConnectorError, match=r"more than size_limit = 2,000 entries match"):
        await read_all(connector)
    assert len(await read_all(make(LdapConnector, directory, size_limit=2500))) == PEOPLE


async def test_the_producer_never_runs_more_than_a_few_pages_ahead(directory: SlapdServer) -> None:
    """Records are handed over through a bounded queue: memory stays flat for big directories."""
    pages: list[int] = []

    class Counting(LdapConnector):
        def _search(self, *args: Any, **kwargs: Any) -> Any:
            pages.append(1)
            return super()._search(*args, **kwargs)

    records = make(Counting, directory, page_size=100).records()
    first = await records.__anext__()
    await asyncio.sleep(0.5)  # the worker thread has had all the time it wants
    assert first.fields["uid"].startswith("p")
    assert len(pages) <= 4, f"{len(pages)} pages of 100 read while the consumer holds one record"
    await records.aclose()


async def test_the_event_loop_keeps_running_during_a_sync(directory: SlapdServer) -> None:
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    # A full garbage collection stops every thread; it is not the connector's doing.
    gc.disable()
    try:
        task = asyncio.create_task(ticker())
        started = time.perf_counter()
        connector = make(LdapConnector, directory, page_size=1000)
        counts: list[int] = []
        # Sync for long enough that a free loop ticks many times, however fast the machine.
        while len(counts) < 4 or time.perf_counter() - started < 0.6:
            counts.append(len(await read_all(connector)))
        elapsed = time.perf_counter() - started
        done.set()
        await task
    finally:
        gc.enable()
    assert counts == [PEOPLE] * len(counts)
    # Each sync reads 3 pages of 1,000 entries.  Run on the loop, the ticker would only get
    # a turn between pages (one per page at most); in a worker thread it keeps ticking every
    # few milliseconds (the median is robust to a busy CI machine).
    pages = 3 * len(counts)
    median = sorted(gaps)[len(gaps) // 2]
    assert len(gaps) > pages + 5, f"the loop ran {len(gaps)} times during {elapsed:.3f} s of syncs ({pages} pages)"
    assert median < 0.03, f"median gap between ticks {median:.3f} s during {elapsed:.3f} s of syncs"


# -- user input in filters and DNs ------------------------------------------------------


async def test_a_private_directorys_user_is_escaped_in_the_filter_and_the_base_dn() -> None:
    owner_ou = f"ou=Smith\\, John (sales)*,ou=private,{SUFFIX}"
    entries = [
        (f"ou=private,{SUFFIX}", {"objectClass": ["top", "organizationalUnit"], "ou": "private"}),
        (owner_ou, {"objectClass": ["top", "organizationalUnit"], "ou": "Smith, John (sales)*"}),
        *[(f"cn=Contact {i},{owner_ou}", {"objectClass": ["inetOrgPerson"], "cn": f"Contact {i}", "sn": "C",
                                           "telephoneNumber": f"+33 5 {i}"}) for i in range(2)],
        (f"uid=o*,ou=people,{SUFFIX}", {"objectClass": ["inetOrgPerson"], "uid": "o*", "cn": "O", "sn": "O"}),
        *[person(i) for i in range(2, 6)],
    ]
    with SlapdServer(suffix=SUFFIX, entries=entries) as server:
        private = make(LdapConnector, server, base_dn=f"ou={{login}},ou=private,{SUFFIX}", filter="(objectClass=inetOrgPerson)")
        records = await read_all(private, {"login": "Smith, John (sales)*", "email": "js@example.com"})
        assert sorted(r.fields["cn"] for r in records) == ["Contact 0", "Contact 1"]
        assert (await private.test_connection()).endswith("base_dn and filter depend on the user ({login}, {email}): "
                                                          "they are checked when the directory synchronizes its users")
        with pytest.raises(ConnectorError, match=r"uses \{login\} but the user has no login"):
            await read_all(private, {"email": "nobody@example.com"})

        by_login = make(LdapConnector, server, filter="(&(objectClass=inetOrgPerson)(uid={login}))")
        # Unescaped, "(uid=o*)" would be a wildcard; escaped it is the literal login.
        [record] = await read_all(by_login, {"login": "o*"})
        assert record.fields["uid"] == "o*"
        assert await read_all(by_login, {"login": "*"}) == []
        # An attempt to widen the filter stays a value.
        assert await read_all(by_login, {"login": "x)(uid=*"}) == []


# -- failures ---------------------------------------------------------------------------


async def test_wrong_credentials_are_auth_failed_and_the_password_is_never_shown(directory: SlapdServer) -> None:
    connector = make(LdapConnector, directory, password="not-the-password-42")
    with pytest.raises(AuthFailed) as failure:
        await read_all(connector)
    message = str(failure.value)
    assert "refused the bind as cn=reader,dc=example,dc=com" in message
    assert "invalidCredentials" in message
    assert "not-the-password-42" not in message
    with pytest.raises(AuthFailed):
        await connector.test_connection()


async def test_a_server_that_is_down_is_not_ready_and_the_next_url_is_tried(directory: SlapdServer) -> None:
    dead = f"ldap://127.0.0.1:{find_free_port()}"
    down = make(LdapConnector, directory, url=dead, timeout=2)
    with pytest.raises(NotReady) as failure:
        await read_all(down)
    assert f"{dead}: connection refused" in str(failure.value)

    fallback = make(LdapConnector, directory, url=f"{dead} {directory.url}")
    assert len(await read_all(fallback)) == PEOPLE


async def test_a_server_that_does_not_answer_times_out_as_not_ready() -> None:
    with SlapdServer(suffix=SUFFIX, entries=[person(i) for i in range(5)]) as server:
        connector = make(LdapConnector, server, timeout=1)
        server.pause()
        try:
            started = time.monotonic()
            with pytest.raises(NotReady) as failure:
                await read_all(connector)
            elapsed = time.monotonic() - started
        finally:
            server.resume()
        assert "no answer within 1 s (timeout)" in str(failure.value)
        assert elapsed < 5
        assert len(await read_all(connector)) == 5  # and it works again once the server answers


async def test_a_server_dying_between_pages_fails_the_sync_instead_of_truncating_it() -> None:
    with SlapdServer(suffix=SUFFIX, entries=[person(i) for i in range(PEOPLE)]) as server:
        connector = make(LdapConnector, server, page_size=100, timeout=2)
        received = 0
        with pytest.raises(NotReady) as failure:
            async for _ in connector.records():
                received += 1
                if received == 150:
                    server.kill()
        assert 150 <= received < PEOPLE
        message = str(failure.value)
        assert "entries; the previous contacts are kept" in message
        assert server.url in message


async def test_a_bad_filter_and_a_missing_base_dn_name_what_to_fix(directory: SlapdServer) -> None:
    with pytest.raises(ConnectorError) as failure:
        await read_all(make(LdapConnector, directory, filter="(objectClass=person"))
    assert 'filter "(objectClass=person" is not a valid LDAP filter' in str(failure.value)

    with pytest.raises(ConnectorError) as failure:
        await read_all(make(LdapConnector, directory, base_dn=f"ou=nobody,{SUFFIX}"))
    assert f'base_dn "ou=nobody,{SUFFIX}" does not exist' in str(failure.value)


def test_config_errors_name_the_key_and_hide_the_password() -> None:
    with pytest.raises(ConfigErrors) as failure:
        make(LdapConnector, url="http://dc1.corp.example", base_dn=SUFFIX, password="hunter2")
    assert 'url: expected ldap://host[:port] or ldaps://host[:port], got "http://dc1.corp.example"' in str(failure.value)
    with pytest.raises(ConfigErrors) as failure:
        make(LdapConnector, url="ldap://dc1", base_dn=SUFFIX, page_size=-1, tls_verify="yes")
    text = str(failure.value)
    assert "twp.toml: directories.corp.page_size: expected an integer 0-100000, got -1" in text
    assert 'directories.corp.tls_verify: expected one of "full", "ca", "none", got "yes"' in text


async def test_malformed_entries_are_read_as_far_as_possible_and_named_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    entries = [
        person(1),
        # No phone, no mail, no employeeNumber (the id attribute).
        (f"uid=bare,ou=people,{SUFFIX}", {"objectClass": ["inetOrgPerson"], "uid": "bare", "cn": "Bare", "sn": "Bare"}),
        # A photo that is not text, read by a config that did not declare it binary.
        person(2, jpegPhoto=b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\xfe\xfe"),
    ]
    with SlapdServer(suffix=SUFFIX, entries=entries) as server:
        connector = make(LdapConnector, server, attributes=["cn", "telephoneNumber", "mail", "jpegPhoto"],
                         id_attribute="employeeNumber", binary_attributes=[])
        with caplog.at_level(logging.WARNING):
            records = {r.fields["cn"]: r for r in await read_all(connector)}

    assert set(records) == {"Person 1", "Bare", "Person 2"}
    bare = records["Bare"]
    assert bare.id == f"uid=bare,ou=people,{SUFFIX}"  # no employeeNumber: the DN identifies it
    assert bare.fields["telephoneNumber"] is None and bare.fields["mail"] is None
    assert records["Person 2"].fields["jpegPhoto"] == b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\xfe\xfe"
    assert records["Person 1"].id == "10001"
    log = caplog.text
    assert f"entry uid=bare,ou=people,{SUFFIX} has no usable employeeNumber; its DN is used as its id" in log
    assert f"entry uid=p00002,ou=people,{SUFFIX}: jpegPhoto holds 13 bytes that are not UTF-8 text; add it to binary_attributes" in log


# -- TLS --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_directory() -> Any:
    with SlapdServer(suffix=SUFFIX, entries=[person(i) for i in range(3)], tls=True) as server:
        yield server


async def test_ldaps_with_the_servers_ca_reads_the_directory(tls_directory: SlapdServer) -> None:
    connector = make(LdapConnector, tls_directory, url=tls_directory.ldaps_url, ca_file=str(tls_directory.ca_file))
    assert len(await read_all(connector)) == 3


async def test_starttls_with_the_servers_ca_reads_the_directory(tls_directory: SlapdServer) -> None:
    connector = make(LdapConnector, tls_directory, start_tls=True, ca_file=str(tls_directory.ca_file))
    assert len(await read_all(connector)) == 3


async def test_an_untrusted_certificate_is_an_error_that_names_the_fix(tls_directory: SlapdServer) -> None:
    for options in ({"url": tls_directory.ldaps_url}, {"start_tls": True}):
        connector = make(LdapConnector, tls_directory, **options)
        with pytest.raises(ConnectorError) as failure:
            await read_all(connector)
        message = str(failure.value)
        assert "TLS failed" in message and "CERTIFICATE_VERIFY_FAILED" in message
        assert "must be signed by a CA in the system CAs" in message
    unverified = make(LdapConnector, tls_directory, url=tls_directory.ldaps_url, tls_verify="none")
    assert len(await read_all(unverified)) == 3


async def test_the_host_name_is_checked_unless_tls_verify_is_ca() -> None:
    # A certificate for another name than the host in the URL.
    with SlapdServer(suffix=SUFFIX, entries=[person(1)], tls=True, tls_names=("ldap.corp.example",)) as server:
        strict = make(LdapConnector, server, url=server.ldaps_url, ca_file=str(server.ca_file))
        with pytest.raises(ConnectorError) as failure:
            await read_all(strict)
        assert "TLS failed" in str(failure.value) and "127.0.0.1" in str(failure.value)
        relaxed = make(LdapConnector, server, url=server.ldaps_url, ca_file=str(server.ca_file), tls_verify="ca")
        assert len(await read_all(relaxed)) == 1


# -- Active Directory -------------------------------------------------------------------


def guid(i: int) -> uuid.UUID:
    return uuid.UUID(int=0x6F1D2C3B_0000_4000_8000_000000000000 + i)


def sid(rid: int) -> bytes:
    return bytes([1, 5]) + (5).to_bytes(6, "big") + struct.pack("<5I", 21, 1004336348, 1177238915, 682003330, rid)


def ad_user(i: int, *, enabled: bool = True, **extra: Any) -> tuple[str, dict[str, Any]]:
    attributes: dict[str, Any] = {
        "objectClass": ["top", "person", "organizationalPerson", "user"],
        "cn": f"User {i}", "sn": f"Martin{i}", "givenName": "Alice", "displayName": f"Alice Martin{i}",
        "sAMAccountName": f"amartin{i}", "userPrincipalName": f"amartin{i}@corp.example.com",
        "sAMAccountType": 805306368, "userAccountControl": 512 if enabled else 514,
        "objectGUID": guid(i).bytes_le, "objectSid": sid(1000 + i),
        "objectCategory": f"CN=Person,CN=Schema,CN=Configuration,{AD_SUFFIX}",
        "telephoneNumber": f"+33 1 70 {i:06d}", "mobile": f"+33 6 70 {i:06d}", "mail": f"amartin{i}@corp.example.com",
        "company": "Corp", "department": "Sales", "title": "Account manager",
    }
    attributes.update(extra)
    return f"CN=User {i},OU=people,{AD_SUFFIX}", attributes


AD_USERS = 1_200
PHOTO = bytes(range(256)) * 4


@pytest.fixture(scope="module")
def active_directory() -> Any:
    entries = [ad_user(i) for i in range(AD_USERS)]
    entries[7][1]["thumbnailPhoto"] = PHOTO
    entries[8][1]["otherTelephone"] = ["+33 1 70 111111", "+33 1 70 222222"]
    entries += [
        ad_user(90_001, enabled=False),
        (f"CN=PC-042,OU=people,{AD_SUFFIX}", {
            "objectClass": ["top", "person", "organizationalPerson", "user", "computer"], "cn": "PC-042", "sn": "PC-042",
            "sAMAccountName": "PC-042$", "sAMAccountType": 805306369, "userAccountControl": 4096,
            "objectGUID": guid(90_002).bytes_le}),
        (f"CN=Supplier Desk,OU=people,{AD_SUFFIX}", {
            "objectClass": ["top", "person", "organizationalPerson", "contact"], "cn": "Supplier Desk", "sn": "Desk",
            "telephoneNumber": "+33 4 00 000000", "objectGUID": guid(90_003).bytes_le}),
        (f"CN=Sales,OU=people,{AD_SUFFIX}", {
            "objectClass": ["top", "group"], "cn": "Sales", "sAMAccountName": "Sales", "sAMAccountType": 268435456,
            "objectGUID": guid(90_004).bytes_le}),
        # An objectGUID that is not 16 bytes (hand-made import gone wrong).
        ad_user(90_005, objectGUID=b"\x01\x02\x03"),
    ]
    with SlapdServer(suffix=AD_SUFFIX, entries=entries, active_directory=True) as server:
        yield server


async def test_the_active_directory_preset_reads_enabled_users_and_contacts_past_1000(
    active_directory: SlapdServer, caplog: pytest.LogCaptureFixture
) -> None:
    connector = make(ActiveDirectoryConnector, url=active_directory.url, base_dn=active_directory.suffix,
                     bind_dn=active_directory.reader_dn, password=active_directory.reader_password)
    assert connector.config.page_size == 1000
    with caplog.at_level(logging.WARNING):
        records = await read_all(connector)
    names = {r.fields["dn"].split(",")[0].lower() for r in records}
    # 1,200 enabled users, the contact and the user with a broken GUID; no computer,
    # no group, no disabled account.
    assert len(records) == AD_USERS + 2
    assert "cn=supplier desk" in names and "cn=user 90005" in names
    assert not names & {"cn=user 90001", "cn=pc-042", "cn=sales"}

    user = next(r for r in records if r.fields["dn"].lower().startswith("cn=user 7,"))
    assert user.id == str(guid(7)) == user.fields["objectGUID"]
    assert user.fields["thumbnailPhoto"] == PHOTO
    assert user.fields["sAMAccountName"] == "amartin7"
    assert user.fields["telephoneNumber"] == "+33 1 70 000007"
    assert user.fields["company"] == "Corp" and user.fields["department"] == "Sales"
    assert user.fields["ipPhone"] is None  # asked for, not set
    other = next(r for r in records if r.fields["dn"].lower().startswith("cn=user 8,"))
    assert other.fields["otherTelephone"] == ["+33 1 70 111111", "+33 1 70 222222"]

    broken = next(r for r in records if r.fields["dn"].lower().startswith("cn=user 90005,"))
    assert broken.id == broken.fields["dn"]  # no usable objectGUID: the DN identifies it
    assert broken.fields["objectGUID"] is None
    assert f"entry {broken.id}: objectGUID is 3 bytes, not a 16-byte GUID; ignored" in caplog.text
    assert f"entry {broken.id} has no usable objectGUID; its DN is used as its id" in caplog.text


async def test_object_sid_is_read_in_its_text_form(active_directory: SlapdServer) -> None:
    connector = make(ActiveDirectoryConnector, url=active_directory.url, base_dn=active_directory.suffix,
                     bind_dn=active_directory.reader_dn, password=active_directory.reader_password,
                     attributes=["sAMAccountName", "objectSid"], filter="(sAMAccountName=amartin3)")
    [record] = await read_all(connector)
    assert record.fields["objectSid"] == "S-1-5-21-1004336348-1177238915-682003330-1003"
    assert format_sid(sid(1003)) == "S-1-5-21-1004336348-1177238915-682003330-1003"


def test_guid_text_form_is_active_directorys() -> None:
    from twp_ldap import format_guid

    raw = bytes.fromhex("3b2c1d6f0000004080000000000000aa")
    # AD stores the first three fields little-endian: 6f1d2c3b-0000-4000-…
    assert format_guid(raw) == "6f1d2c3b-0000-4000-8000-0000000000aa"
