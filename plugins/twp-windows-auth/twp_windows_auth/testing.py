"""A real MIT Kerberos KDC on loopback for tests (k5test drives Debian's krb5-kdc binaries).

``KdcServer`` makes a realm in a private temporary directory: a KDC database, a KDC
listening on 127.0.0.1 on free ports, a service principal with its keytab
(``HTTP/localhost`` by default) and user principals with passwords.  While it runs the
process environment points Kerberos at it (``KRB5_CONFIG``, ``KRB5CCNAME``,
``KRB5RCACHEDIR``...), so code under test finds the KDC as it would find
``/etc/krb5.conf``'s; ``stop()`` ends the KDC, restores the environment and removes the
directory.  It works as root (the KDC does not mind) and as any other user.

The pytest fixture ``kdc`` (session scope; a test folder's ``conftest.py`` imports it:
``from twp_windows_auth.testing import kdc``) yields one::

    def test_ticket(kdc):
        kdc.add_user("alice", "alice-pw")
        ccache = kdc.kinit("alice", "alice-pw")      # a ticket cache file for alice
        spnego.client(spnego.KerberosCCache(ccache), hostname="localhost", service="HTTP")

It needs ``k5test`` (the ``[test]`` extra of twp-windows-auth) and the Debian packages
krb5-kdc, krb5-admin-server and krb5-user (``scripts/install-system-deps.sh``).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest

log = logging.getLogger(__name__)

__all__ = ["KdcServer", "KdcUnavailable", "kdc"]

BINARIES = ("/usr/sbin/krb5kdc", "/usr/sbin/kdb5_util", "/usr/sbin/kadmin.local", "/usr/bin/kinit")


class KdcUnavailable(RuntimeError):
    """k5test or the MIT Kerberos programs are missing."""


def _ports_free(base: int, count: int = 6) -> bool:
    for port in range(base, base + count):
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    return False
    return True


def _free_port_base() -> int:
    """A base port with the next six TCP and UDP ports free (k5test uses base+0..base+5)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            base = sock.getsockname()[1]
        if base + 10 < 65535 and _ports_free(base):
            return base
    raise KdcUnavailable("no run of 6 free TCP and UDP ports found on 127.0.0.1 for the test KDC")


class KdcServer:
    """One test realm with a running KDC; see the module docstring."""

    def __init__(self, realm: str = "TWP.TEST", service: str = "HTTP/localhost") -> None:
        self.realm_name = realm
        self.service = service
        self.service_principal = f"{service}@{realm}"
        self.users: dict[str, str] = {}
        self._realm: Any = None
        self._saved_env: dict[str, str | None] = {}
        self._ccaches: dict[str, str] = {}

    @classmethod
    def available(cls) -> bool:
        try:
            import k5test  # noqa: F401 - only whether it is installed matters
        except ImportError:
            return False
        return all(os.path.exists(b) for b in BINARIES)

    @property
    def tmpdir(self) -> Path:
        assert self._realm is not None, "the KDC is not started"
        return Path(self._realm.tmpdir)

    @property
    def keytab(self) -> str:
        """The service principal's keytab, as an administrator exports it for TWP."""
        return str(self.tmpdir / "service.keytab")

    @property
    def env(self) -> dict[str, str]:
        """The environment pointing Kerberos at this realm (already set in ``os.environ`` while running)."""
        return dict(self._realm.env)

    def start(self) -> Self:
        if not self.available():
            raise KdcUnavailable("the test KDC needs k5test (pip install 'plugins/twp-windows-auth[test]') and the Debian packages "
                                 "krb5-kdc krb5-admin-server krb5-user (bash scripts/install-system-deps.sh)")
        import k5test

        loopback = {"kdc": "127.0.0.1:$port0", "admin_server": "127.0.0.1:$port1", "kpasswd_server": "127.0.0.1:$port2"}
        last: Exception | None = None
        for _ in range(3):
            realm = k5test.K5Realm(
                realm=self.realm_name, portbase=_free_port_base(), create_user=False, create_host=False, get_creds=False,
                start_kdc=False,
                krb5_conf={"libdefaults": {"dns_canonicalize_hostname": "false", "rdns": "false", "dns_lookup_realm": "false"},
                           "realms": {"$realm": loopback}},
                kdc_conf={"realms": {"$realm": {"kdc_listen": "127.0.0.1:$port0", "kdc_tcp_listen": "127.0.0.1:$port0"}}},
            )
            try:
                realm.start_kdc()
            except Exception as exc:  # noqa: BLE001 - k5test raises bare Exception when the KDC does not start
                last = exc
                log.warning("test KDC did not start (%s); trying other ports", exc)
                realm.stop()
                continue
            self._realm = realm
            break
        else:
            raise KdcUnavailable(f"the test KDC did not start: {last}")
        for key, value in self._realm.env.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        self._realm.addprinc(self.service_principal)
        self._realm.extract_keytab(self.service_principal, self.keytab)
        return self

    def add_user(self, name: str, password: str) -> str:
        """Create a user principal (``name@REALM``) with this password; return the principal."""
        principal = name if "@" in name else f"{name}@{self.realm_name}"
        if principal in self.users:
            self._realm.change_password(principal, password)
        else:
            self._realm.addprinc(principal, password)
        self.users[principal] = password
        self._ccaches.pop(principal, None)
        return principal

    def kinit(self, name: str, password: str | None = None) -> str:
        """Get a ticket-granting ticket for a user into its own cache file; return the file's path."""
        principal = name if "@" in name else f"{name}@{self.realm_name}"
        if principal in self._ccaches and password is None:
            return self._ccaches[principal]
        ccache = str(self.tmpdir / f"ccache-{principal.replace('/', '_')}")
        self._realm.kinit(principal, password if password is not None else self.users[principal], flags=["-c", ccache])
        self._ccaches[principal] = ccache
        return ccache

    def kadmin(self, query: str) -> str:
        """Run a ``kadmin.local`` query (``delprinc -force bob``, ``modprinc -allow_tix bob``)."""
        return self._realm.run_kadminl(query).decode()

    def stop(self) -> None:
        if self._realm is None:
            return
        tmpdir = self._realm.tmpdir
        try:
            self._realm.stop()
        finally:
            for key, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            self._saved_env.clear()
            shutil.rmtree(tmpdir, ignore_errors=True)
            self._realm = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()



@pytest.fixture(scope="session")
def kdc() -> Iterator[KdcServer]:
    """A real MIT KDC for the session (``KdcServer``); skipped when not installed, outside CI."""
    if not KdcServer.available():
        if os.environ.get("CI"):
            pytest.fail("the test KDC needs k5test and krb5-kdc; run make venv and scripts/install-system-deps.sh")
        pytest.skip("the test KDC needs k5test and krb5-kdc (not installed)")
    server = KdcServer().start()
    yield server
    server.stop()
