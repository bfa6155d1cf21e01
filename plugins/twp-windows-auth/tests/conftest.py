"""The ``kdc`` fixture: a real MIT Kerberos KDC for the session (``twp_windows_auth.testing``)."""

from twp_windows_auth.testing import kdc  # noqa: F401 - the fixture
