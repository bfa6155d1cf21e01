"""The KDC test kit of twp-windows-auth (``twp_windows_auth.testing``): real tickets, then nothing left behind."""

from __future__ import annotations

import os
import re
import socket

import pytest

from twp_windows_auth.testing import KdcServer

pytestmark = pytest.mark.skipif(not KdcServer.available() and not os.environ.get("CI"), reason="k5test or krb5-kdc not installed")


def test_a_kdc_gives_tickets_and_keytabs_then_leaves_nothing_behind(monkeypatch):
    monkeypatch.setenv("KRB5_CONFIG", "/etc/krb5.conf.before")
    with KdcServer(realm="KIT.TEST") as kdc:
        tmpdir = kdc.tmpdir
        assert os.environ["KRB5_CONFIG"] == str(tmpdir / "krb5.conf")
        port = int(re.search(r"kdc = 127\.0\.0\.1:(\d+)", (tmpdir / "krb5.conf").read_text()).group(1))
        kdc.add_user("erin", "erin-pw")
        ccache = kdc.kinit("erin")
        assert os.path.getsize(ccache) > 0
        assert "HTTP/localhost@KIT.TEST" in kdc.kadmin("listprincs")
        assert os.path.getsize(kdc.keytab) > 0
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # the KDC listens on loopback
    assert not tmpdir.exists()
    assert os.environ["KRB5_CONFIG"] == "/etc/krb5.conf.before"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
