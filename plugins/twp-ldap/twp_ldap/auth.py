"""The ``LDAP`` auth method (guide 6.3): the user's password is checked by binding to an LDAP server.

Where to bind comes from the user's parameters, resolved per user, group or domain:
``AuthLdapServer`` (host), ``AuthLdapPort`` and ``AuthLdapDn``, in which ``?`` is replaced by
the user name escaped for a DN (``uid=?,ou=people,dc=example,dc=com``, or ``?`` alone for
an Active Directory ``user@domain`` name).  An empty password is always refused: LDAP
servers treat it as an anonymous bind that "succeeds".  Every refusal gives the caller the
same answer; the audit log keeps the precise reason.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Literal

import attrs

from twp_ldap.deferred import Deferred
from twpcore.plugin_api import AuthMethod, AuthResult, Duration, LoginAttempt, ServerSide, setting

if TYPE_CHECKING:
    import ldap3
    from ldap3.core import exceptions as lx
    from ldap3.utils import dn as ldap_dn
else:  # imported on first use: ldap3 costs about 0.2 s of a server start (twp_ldap.deferred)
    ldap3 = Deferred("ldap3")
    lx = Deferred("ldap3.core.exceptions")
    ldap_dn = Deferred("ldap3.utils.dn")

PARAMETERS = ("AuthLdapServer", "AuthLdapPort", "AuthLdapDn")
REFUSED = "invalid login or password"


@attrs.frozen
class LdapAuthConfig:
    """Options of ``[auth.methods.LDAP]``; where to bind comes from the parameters."""

    security: Literal["none", "starttls", "ldaps"] = setting("none", help="plain LDAP, StartTLS, or LDAPS")
    ca_file: str | None = setting(
        None, help="CA certificates (PEM) trusted for StartTLS / LDAPS", server_side=ServerSide("a certificate file on the server")
    )
    verify: bool = setting(True, help="check the server certificate and its name")
    timeout: Duration = setting(Duration(5), min=0.1, max=120, help="connect and bind time-out")


def bind_dn(template: str, login: str) -> str:
    """``AuthLdapDn`` with every ``?`` replaced by the login escaped as a DN value."""
    return template.replace("?", ldap_dn.escape_rdn(login))


class LdapAuth(AuthMethod):
    type_name = "LDAP"
    Config = LdapAuthConfig
    capabilities = frozenset({"password"})
    description = "Password checked by a bind to the LDAP server named by the AuthLdap* parameters (guide 6.3)."

    async def authenticate(self, attempt: LoginAttempt) -> AuthResult:
        if attempt.password is None:
            return AuthResult.passes("no password in the request")
        if attempt.user is None:
            return AuthResult.reject(REFUSED, audit="unknown user")
        if attempt.password == "":
            return AuthResult.reject(REFUSED, audit="empty password (would be an anonymous bind)")
        params = await self.context.parameters(attempt.user["id"], PARAMETERS)
        host = params["AuthLdapServer"].strip()
        if not host:
            return AuthResult.reject(REFUSED, audit="AuthLdapServer is not set for this user, group or domain")
        port = int(params["AuthLdapPort"] or 389)
        dn = bind_dn(params["AuthLdapDn"] or "?", attempt.login)
        try:
            ok = await self.context.run_blocking(self._bind, host, port, dn, attempt.password)
        except (ssl.SSLError, ssl.CertificateError, lx.LDAPStartTLSError, lx.LDAPCertificateError, lx.LDAPSSLConfigurationError) as exc:
            return AuthResult.reject(REFUSED, audit=self._tls_problem(host, port, exc))
        except lx.LDAPSocketOpenError as exc:
            if self.config.security != "none" and _is_tls_error(exc):
                return AuthResult.reject(REFUSED, audit=self._tls_problem(host, port, exc))
            return AuthResult.reject(REFUSED, audit=f"LDAP server {host}:{port} unreachable: {exc}")
        except lx.LDAPException as exc:
            if self.config.security != "none" and _is_tls_error(exc):
                return AuthResult.reject(REFUSED, audit=self._tls_problem(host, port, exc))
            return AuthResult.reject(REFUSED, audit=f"LDAP bind to {host}:{port} failed: {type(exc).__name__}")
        if not ok:
            return AuthResult.reject(REFUSED, audit=f"LDAP server {host}:{port} refused the bind of {dn}")
        return AuthResult.accept(attempt.user, f"bound as {dn}")

    def _tls_problem(self, host: str, port: int, exc: Exception) -> str:
        where = f"ca_file {self.config.ca_file}" if self.config.ca_file else "the system CAs (set ca_file)"
        return (f"LDAP server {host}:{port}: TLS ({self.config.security}) failed: {exc}; its certificate must be signed by a CA in "
                f"{where} of [auth.methods.LDAP] and name {host}")

    def _bind(self, host: str, port: int, dn: str, password: str) -> bool:
        cfg: LdapAuthConfig = self.config
        tls = None
        if cfg.security != "none":
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED if cfg.verify else ssl.CERT_NONE, ca_certs_file=cfg.ca_file)
        server = ldap3.Server(host, port=port, use_ssl=cfg.security == "ldaps", tls=tls, get_info=ldap3.NONE, connect_timeout=cfg.timeout)
        conn = ldap3.Connection(
            server, user=dn, password=password, receive_timeout=max(1, round(cfg.timeout)), raise_exceptions=True
        )  # ldap3 wants whole seconds
        try:
            conn.open()
            if cfg.security == "starttls":
                # Never fall back to sending the password in clear text.
                try:
                    started = conn.start_tls()
                except (lx.LDAPStartTLSError, lx.LDAPCertificateError, lx.LDAPSSLConfigurationError):
                    raise
                except lx.LDAPException as exc:
                    raise lx.LDAPStartTLSError(f"the server refused StartTLS: {exc}") from exc
                if not started:
                    raise lx.LDAPStartTLSError(f"the server refused StartTLS: {conn.result.get('description', conn.result)}")
            return bool(conn.bind())
        except lx.LDAPInvalidCredentialsResult:
            return False
        finally:
            try:
                conn.unbind()
            except lx.LDAPException:
                pass


def _is_tls_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(word in text for word in ("ssl", "certificate", "tls"))


__all__ = ["LdapAuth", "bind_dn"]
