"""An LDAP directory pointed at a service that is not LDAP (issue 12, item 7).

A real TCP service that answers something else than LDAP: the sync fails with an error
naming the URL and saying what to check, never a decoding ``KeyError`` and a traceback.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator

import pytest

from twp_ldap import LdapConnector
from twpcore.kinds import ConnectorError, InstanceContext, Kind
from twpcore.schema import structure

# What a misdirected port may answer: a BER sequence whose operation is no LDAP response
# (ldap3 raised KeyError: (1, 20) on it), a truncated one (IndexError), and an HTTP/1.1
# server's answer to bytes it does not understand.
ANSWERS = {
    "unknown operation": b"\x30\x05\x02\x01\x01\x74\x00",
    "truncated message": b"\x30\x03\x02\x01\x01",
    "not a message id": b"\x30\x06\x04\x01\x01\x61\x00\x00",
}


class Answering:
    """A TCP server that reads what it is sent and answers ``data``, keeping the connection open."""

    def __init__(self, data: bytes):
        self.data = data
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.open: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.open.append(conn)
            try:
                conn.recv(4096)
                conn.sendall(self.data)
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()
        for conn in self.open:
            conn.close()


@pytest.fixture(params=sorted(ANSWERS))
def not_ldap(request: pytest.FixtureRequest) -> Iterator[Answering]:
    server = Answering(ANSWERS[request.param])
    yield server
    server.close()


def make(url: str) -> LdapConnector:
    config = structure(LdapConnector.Config, {"url": url, "base_dn": "dc=example,dc=com", "timeout": 5}, source="twp.toml", path="directories.corp")
    return LdapConnector(config, InstanceContext("corp", Kind.DIRECTORY_CONNECTOR, logger=logging.getLogger("twp.directory_connector.corp")))


async def test_a_service_that_is_not_ldap_is_named_in_a_clear_error(not_ldap: Answering, caplog: pytest.LogCaptureFixture) -> None:
    url = f"ldap://127.0.0.1:{not_ldap.port}"
    with pytest.raises(ConnectorError) as failure:
        await make(url).test_connection()
    message = str(failure.value)
    assert message.startswith(f"{url} did not answer as an LDAP server"), message
    assert "389" in message and "636" in message  # what to check
    with pytest.raises(ConnectorError):
        [r async for r in make(url).records()]
    assert "Traceback" not in caplog.text and "KeyError" not in caplog.text
