"""The ``WindowsSecurity`` auth method (guide 6.2): HTTP Negotiate with Kerberos or NTLM, and Kerberos passwords.

Two ways in:

- ``POST /api/v1/auth/negotiate`` (``twpcore.http.negotiate``) hands every
  ``Authorization: Negotiate`` token to ``negotiate()``.  Kerberos tickets are checked
  with the service keytab (one leg, plus the mutual-auth token); NTLM takes two legs and
  its half-made context waits here, bound to the client's TCP connection like IIS does,
  for ``handshake_timeout`` seconds, at most ``max_handshakes`` at a time.
- ``POST /api/v1/auth/login`` with a password (guide 6.2.2, "with the pop-up"):
  ``authenticate()`` asks the KDC for a ticket with that password (an AS exchange) and,
  with ``verify_kdc``, checks the ticket against the keytab so a forged KDC cannot vouch
  for anyone.  Without a keytab, with NTLM on, the password is checked against the NTLM
  user file by a local NTLM exchange (guide 6.2.2: users declared on the server).

Names are mapped to TWP logins by ``realm_handling``: ``strip`` (``alice@CORP.COM`` and
``CORP\\alice`` log in as ``alice``), ``keep`` (as ``alice@CORP.COM``) or ``domain`` (as
``alice`` in the TWP domain that ``realm_domains`` gives for the realm).  Only the realms
(and NTLM domains) in ``realms`` are accepted.

pyspnego does the SPNEGO, Kerberos (through gssapi) and NTLM work.  Its server side has
no public way to name a keytab or to refuse old NTLM responses, so this module hands it
ready-made sub-contexts (``_negotiate_contexts``, ``_gssapi_credential``) and sets two
attributes of its NTLM acceptor; ``pyproject.toml`` pins the versions this was tested
with.  Its NTLM acceptor reads the user file named by the ``NTLM_USER_FILE`` environment
variable, which ``setup()`` sets for the process (and ``close()`` restores).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import re
import socket
import time
from collections.abc import Hashable
from typing import Any, Literal

import attrs

from twpcore.plugin_api import (
    AuthMethod,
    AuthResult,
    Duration,
    LoginAttempt,
    NegotiateRefused,
    NegotiateStep,
    ServerSide,
    setting,
)

log = logging.getLogger(__name__)

REFUSED = "invalid login or password"
GUIDE = "docs/admin-guide.md section 9, WindowsSecurity"
_KRB5_MECH_OID = "1.2.840.113554.1.2.2"


@attrs.frozen
class WindowsSecurityConfig:
    """Options of ``[auth.methods.WindowsSecurity]``."""

    keytab: str | None = setting(None, help="service keytab file (ktpass or kadmin ktadd output); unset: no Kerberos",
                                 server_side=ServerSide("a keytab file on the server"))
    service_principal: str = setting(
        "", help='principal clients get tickets for, "HTTP/<host>" or "HTTP/<host>@REALM"; empty: HTTP/<this host\'s FQDN>'
    )
    realms: list[str] = setting(
        factory=list,
        help="Kerberos realms and NTLM domains whose users are accepted; empty: the service principal's realm "
        '(with realm_handling = "domain": the realms of realm_domains)',
    )
    realm_handling: Literal["strip", "keep", "domain"] = setting(
        "strip",
        help='how a principal becomes a TWP login: "strip" alice@CORP.COM -> alice, "keep" -> alice@CORP.COM, '
        '"domain" -> alice in the TWP domain realm_domains gives for CORP.COM',
    )
    realm_domains: dict[str, str] = setting(factory=dict, help='with realm_handling = "domain": realm (or NTLM domain) -> "Company/Domain"')
    ntlm: bool = setting(False, help="also accept NTLM (no domain controller: accounts of ntlm_user_file)")
    ntlm_user_file: str | None = setting(None, help="NTLM accounts, one per line: DOMAIN:user:password or smbpasswd lines; required with ntlm = true",
                                         server_side=ServerSide("an account file on the server"))
    password_check: bool = setting(True, help="check passwords typed in POST /api/v1/auth/login against the KDC (guide 6.2.2, pop-up)")
    verify_kdc: bool = setting(True, help="check each password ticket against the keytab, so a forged KDC cannot vouch for anyone")
    handshake_timeout: Duration = setting(Duration(30), min=1, max=600, help="how long a half-made NTLM handshake waits for its next leg")
    max_handshakes: int = setting(1000, min=1, max=100_000, help="half-made handshakes kept at once; the oldest is dropped beyond")

    def __attrs_post_init__(self) -> None:
        if self.ntlm and not self.ntlm_user_file:
            raise ValueError("ntlm = true needs ntlm_user_file: the file of NTLM accounts (DOMAIN:user:password lines)")
        if self.realm_handling == "domain":
            if not self.realm_domains:
                raise ValueError('realm_handling = "domain" needs realm_domains, e.g. { "CORP.EXAMPLE.COM" = "ACME/Paris" }')
            unmapped = sorted({r.upper() for r in self.realms} - {r.upper() for r in self.realm_domains})
            if unmapped:
                raise ValueError(f"realms {', '.join(unmapped)} have no TWP domain in realm_domains; add them or remove them from realms")
        for realm, target in self.realm_domains.items():
            if not realm or not target.strip():
                raise ValueError(f'realm_domains: expected REALM = "Company/Domain", got {realm!r} = {target!r}')
        if self.service_principal and not re.fullmatch(r"[^/@\s]+/[^/@\s]+(@[^@\s]+)?", self.service_principal):
            raise ValueError(f'service_principal: expected "HTTP/<host>" or "HTTP/<host>@REALM", got {self.service_principal!r}')


class WindowsSecuritySetupError(Exception):
    """The keytab or the NTLM user file cannot be used; the message names the file and the fix."""


def split_principal(name: str) -> tuple[str, str | None]:
    """``alice@CORP.COM`` / ``CORP\\alice`` / ``alice`` -> (user, realm or NTLM domain, upper-case, or None)."""
    if "\\" in name:
        domain, _, user = name.partition("\\")
        return user, domain.upper() or None
    user, at, realm = name.rpartition("@")
    if at and user:
        return user, realm.upper()
    return name, None


class Handshakes:
    """Half-made security contexts by client connection: bounded, oldest dropped first, expiring."""

    def __init__(self, limit: int, timeout: float):
        self.limit, self.timeout = limit, timeout
        self._items: collections.OrderedDict[Hashable, tuple[float, Any]] = collections.OrderedDict()
        self.dropped = 0
        """Handshakes dropped because ``limit`` was reached."""

    def _expire(self) -> None:
        now = time.monotonic()
        while self._items:
            key, (deadline, _) = next(iter(self._items.items()))
            if deadline > now:
                break
            del self._items[key]

    def put(self, key: Hashable, ctx: Any) -> None:
        self._expire()
        self._items.pop(key, None)
        while len(self._items) >= self.limit:
            self._items.popitem(last=False)
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.warning("WindowsSecurity: %d half-made Negotiate handshakes dropped (max_handshakes = %d reached)", self.dropped, self.limit)
        self._items[key] = (time.monotonic() + self.timeout, ctx)

    def take(self, key: Hashable) -> Any:
        self._expire()
        item = self._items.pop(key, None)
        return item[1] if item else None

    def __len__(self) -> int:
        self._expire()
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()


def _gss_reason(exc: Exception) -> str:
    """The useful part of a GSSAPI error: the mechanism's (minor) message when there is one."""
    text = str(exc)
    m = re.search(r"Minor \(\d+\): (.*)$", text)
    return (m.group(1) if m else text).strip() or type(exc).__name__


def _step(ctx: Any, token: bytes) -> bytes | None:
    """``ctx.step(token)``; the StopIteration pyspnego raises when no mechanism the client offers is enabled becomes a
    refusal (a StopIteration cannot cross a Future: the request would wait for ever)."""
    try:
        return ctx.step(token)
    except StopIteration:
        raise NegotiateRefused("the client offered no mechanism enabled here (Kerberos needs keytab, NTLM needs ntlm = true "
                               "in [auth.methods.WindowsSecurity])", audit="Negotiate: no offered mechanism is enabled") from None


def _ntlm_accounts(path: str) -> dict[tuple[str, str], str]:
    """(DOMAIN upper, user lower) -> the user name as the file spells it; raises OSError or ValueError naming the line."""
    accounts: dict[tuple[str, str], str] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f.read().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split(":")
            if len(parts) == 3:
                domain, user = parts[0], parts[1]
            elif len(parts) == 6:
                domain, _, user = parts[0].rpartition("\\")
            else:
                raise ValueError(f"line {n}: expected DOMAIN:user:password or an smbpasswd line (6 fields), got {len(parts)} fields")
            if not user:
                raise ValueError(f"line {n}: the user name is empty")
            accounts[(domain.upper(), user.lower())] = user
    if not accounts:
        raise ValueError("the file holds no account")
    return accounts


class WindowsSecurity(AuthMethod):
    type_name = "WindowsSecurity"
    Config = WindowsSecurityConfig
    capabilities = frozenset({"password", "negotiate"})
    description = "Windows authentication (guide 6.2): HTTP Negotiate with Kerberos or NTLM; passwords checked by the KDC or the NTLM user file."

    def __init__(self, config: WindowsSecurityConfig, context: Any):
        super().__init__(config, context)
        self.handshakes = Handshakes(config.max_handshakes, float(config.handshake_timeout))
        self.service_principal = ""
        self.service_realm: str | None = None
        self.accepted_realms: tuple[str, ...] = ()
        self._acceptor_cred: Any = None
        self._ntlm_accounts: dict[tuple[str, str], str] = {}
        self._saved_ntlm_env: str | None = None

    # -- life cycle ----------------------------------------------------------------
    @property
    def configured(self) -> bool:
        """Whether Kerberos (a keytab) or NTLM is set up; without either every request passes."""
        return self._acceptor_cred is not None or bool(self._ntlm_accounts)

    async def setup(self) -> None:
        cfg: WindowsSecurityConfig = self.config
        if not cfg.keytab and not cfg.ntlm:
            log.info("WindowsSecurity: no keytab and NTLM off in [auth.methods.WindowsSecurity]; the method passes every request")
            return
        loop = asyncio.get_running_loop()
        if cfg.keytab:
            await loop.run_in_executor(None, self._load_keytab, cfg.keytab)
        if cfg.ntlm:
            assert cfg.ntlm_user_file is not None
            await loop.run_in_executor(None, self._load_ntlm, cfg.ntlm_user_file)
        if cfg.realms:
            self.accepted_realms = tuple(r.upper() for r in cfg.realms)
        elif cfg.realm_handling == "domain":
            self.accepted_realms = tuple(r.upper() for r in cfg.realm_domains)
        elif self.service_realm:
            self.accepted_realms = (self.service_realm,)
        log.info("WindowsSecurity ready: Kerberos %s, NTLM %s, realms %s, realm handling %s",
                 f"as {self.service_principal}" if self._acceptor_cred is not None else "off",
                 "on" if self._ntlm_accounts else "off", ", ".join(self.accepted_realms) or "none", cfg.realm_handling)

    def _load_keytab(self, path: str) -> None:
        where = "auth.methods.WindowsSecurity.keytab"
        try:
            import gssapi
            import krb5
        except ImportError as exc:
            # `make run` installs the plugin without them (docs/architecture.md, "Dependencies and why").
            raise WindowsSecuritySetupError(
                f"{where} is set but the Kerberos bindings are not installed ({exc}); install them with "
                "pip install 'twp-windows-auth[kerberos]' (on Debian first apt-get install libkrb5-dev gcc python3-dev), "
                "or remove the keytab to use NTLM only") from None
        try:
            with open(path, "rb") as f:
                f.read(2)
        except OSError as exc:
            raise WindowsSecuritySetupError(
                f"keytab {path}: cannot read it ({exc.strerror}); create it (Active Directory: ktpass; MIT: kadmin ktadd), "
                f"make it readable by the TWP service account, or correct {where} (see {GUIDE})") from None
        spn = self.config.service_principal or f"HTTP/{socket.getfqdn()}"
        try:
            ctx = krb5.init_context()
            parsed = krb5.parse_name_flags(ctx, spn.encode())
            self.service_realm = parsed.realm.decode().upper()
            full = krb5.unparse_name_flags(ctx, parsed).decode()
        except Exception as exc:  # noqa: BLE001 - krb5 raises its own error types
            raise WindowsSecuritySetupError(
                f"service principal {spn}: {exc}; write it with its realm (HTTP/host@REALM) in "
                "auth.methods.WindowsSecurity.service_principal, or set default_realm in krb5.conf") from None
        try:
            name = gssapi.Name(full, gssapi.NameType.kerberos_principal)
            self._acceptor_cred = gssapi.Credentials(name=name, usage="accept", store={"keytab": path})
        except gssapi.exceptions.GSSError as exc:
            raise WindowsSecuritySetupError(
                f"keytab {path}: no usable key for {full} ({_gss_reason(exc)}); export the key of that principal into the keytab "
                f"(ktpass -princ {full} ..., or kadmin ktadd -k {path} {full}) or set auth.methods.WindowsSecurity.service_principal "
                f"to the principal the keytab holds (klist -k {path})") from None
        self.service_principal = full

    def _load_ntlm(self, path: str) -> None:
        try:
            self._ntlm_accounts = _ntlm_accounts(path)
        except OSError as exc:
            raise WindowsSecuritySetupError(
                f"ntlm_user_file {path}: cannot read it ({exc.strerror}); create it or correct auth.methods.WindowsSecurity.ntlm_user_file") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise WindowsSecuritySetupError(f"ntlm_user_file {path}: {exc}; see {GUIDE} for the format") from None
        self._saved_ntlm_env = os.environ.get("NTLM_USER_FILE")
        if self._saved_ntlm_env not in (None, path):
            log.warning("WindowsSecurity: NTLM_USER_FILE was %s; using %s from the config", self._saved_ntlm_env, path)
        os.environ["NTLM_USER_FILE"] = path

    async def close(self) -> None:
        self.handshakes.clear()
        if self._ntlm_accounts and os.environ.get("NTLM_USER_FILE") == self.config.ntlm_user_file:
            if self._saved_ntlm_env is None:
                os.environ.pop("NTLM_USER_FILE", None)
            else:
                os.environ["NTLM_USER_FILE"] = self._saved_ntlm_env
        self._ntlm_accounts = {}
        self._acceptor_cred = None

    # -- names ---------------------------------------------------------------------
    def map_principal(self, principal: str, protocol: str) -> tuple[str, str | None]:
        """The TWP (login, "Company/Domain" or None) for an authenticated name; ``NegotiateRefused`` for a refused realm."""
        user, realm = split_principal(principal)
        if protocol == "ntlm":
            # NTLM names are case-insensitive: log in with the spelling of the user file.
            user = self._ntlm_accounts.get((realm or "", user.lower()), user)
        if realm is not None and realm not in self.accepted_realms:
            accepted = ", ".join(self.accepted_realms) or "none"
            raise NegotiateRefused(
                f"{principal} authenticated, but realm {realm} is not accepted here (accepted: {accepted}); "
                "an administrator can add it to realms in [auth.methods.WindowsSecurity]", principal=principal)
        handling = self.config.realm_handling
        if handling == "keep" and realm is not None:
            return f"{user}@{realm}", None
        if handling == "domain" and realm is not None:
            mapping = {r.upper(): d for r, d in self.config.realm_domains.items()}
            return user, mapping.get(realm)
        return user, None

    def password_principal(self, login: str, user: Any) -> str | None:
        """The Kerberos principal whose password a login's password is checked against."""
        name, realm = split_principal(login)
        if realm is None:
            if self.config.realm_handling == "domain" and user is not None:
                domain = f"{user.get('company_name')}/{user.get('domain_name')}"
                realm = next((r.upper() for r, d in self.config.realm_domains.items() if d in (domain, user.get("domain_name"))), None)
            else:
                realm = self.accepted_realms[0] if self.accepted_realms else None
        if realm is None or realm not in self.accepted_realms:
            return None
        return f"{name}@{realm}"

    # -- HTTP Negotiate --------------------------------------------------------------
    def _new_context(self) -> Any:
        import spnego
        from spnego._context import GSSMech

        subs: dict[Any, Any] = {}
        host, _, _ = self.service_principal.partition("@")
        service, _, hostname = host.partition("/")
        if self._acceptor_cred is not None:
            subs[GSSMech.kerberos] = spnego.server(hostname=hostname, service=service, protocol="kerberos",
                                                   options=spnego.NegotiateOptions.use_gssapi, _gssapi_credential=self._acceptor_cred)
        if self._ntlm_accounts:
            ntlm = spnego.server(protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm)
            # Refuse LM and NTLMv1 responses: only NTLMv2 (LmCompatibilityLevel 5).  pyspnego's NTLM
            # context has no public option for it, and spnego.server() is typed as the generic proxy.
            ntlm._lm = False  # type: ignore[attr-defined]
            ntlm._nt_v1 = False  # type: ignore[attr-defined]
            subs[GSSMech.ntlm] = ntlm
        return spnego.server(protocol="negotiate", options=spnego.NegotiateOptions.use_negotiate, _negotiate_contexts=subs)

    def negotiate_schemes(self) -> tuple[str, ...]:
        return ("Negotiate", "NTLM") if self._ntlm_accounts else ("Negotiate",)

    async def negotiate(self, connection: Hashable, token: bytes) -> NegotiateStep:
        if not self.configured:
            raise NegotiateRefused("WindowsSecurity is not configured on this server: an administrator must set keytab (or ntlm) "
                                   "in [auth.methods.WindowsSecurity]", status=503)
        ntlm_raw = token.startswith(b"NTLMSSP\x00")
        if ntlm_raw and not self._ntlm_accounts:
            raise NegotiateRefused("the client sent NTLM, which is turned off here; use Kerberos (join the domain, get a ticket) "
                                   "or ask an administrator to set ntlm = true", audit="NTLM token refused: NTLM is off")
        starts = token[:1] == b"\x60" or token.startswith(b"NTLMSSP\x00\x01\x00\x00\x00")
        ctx = self.handshakes.take(connection)
        if starts or ctx is None:
            if not starts:
                raise NegotiateRefused(
                    "this Negotiate token continues a handshake this server does not know: it expired after "
                    f"{float(self.config.handshake_timeout):g} s or was begun on another connection; start again with a new token",
                    audit="Negotiate continuation without a handshake")
            ctx = self._new_context()
        try:
            out = await asyncio.get_running_loop().run_in_executor(None, _step, ctx, token)
        except NegotiateRefused:
            raise
        except (ValueError, IndexError, TypeError) as exc:  # the token does not parse
            raise NegotiateRefused(f"the Negotiate token is not a valid SPNEGO, Kerberos or NTLM token ({exc})", status=400) from None
        except AttributeError:
            # gssapi answered the ticket with a KRB-ERROR token instead of raising, and pyspnego then trips
            # on the unfinished context: MIT refused the ticket without saying why to us.
            raise NegotiateRefused(
                "the Negotiate token was refused (ticket or NTLM response not valid for this server)",
                audit="Kerberos refused the ticket: a replay, an expired ticket, clock skew, or a key the keytab does not hold",
            ) from None
        except Exception as exc:  # noqa: BLE001 - spnego and gssapi raise many types: every one is a refusal
            reason = _gss_reason(exc)
            log.info("WindowsSecurity: Negotiate token refused: %s", reason)
            raise NegotiateRefused(
                "the Negotiate token was refused (ticket or NTLM response not valid for this server)", audit=f"Negotiate refused: {reason}"
            ) from None
        protocol = ctx.negotiated_protocol or ""
        if protocol == "ntlm" and not self._ntlm_accounts:  # a SPNEGO-wrapped NTLM that slipped through
            raise NegotiateRefused("NTLM is turned off here; use Kerberos", audit="NTLM refused: NTLM is off")
        if not ctx.complete:
            self.handshakes.put(connection, ctx)
            return NegotiateStep(token=out, protocol=protocol)
        principal = (ctx.client_principal or "").rstrip("\x00")
        if not principal:
            raise NegotiateRefused("the handshake completed without naming a user", audit="Negotiate: no client principal")
        login, domain = self.map_principal(principal, protocol)
        return NegotiateStep(token=out, complete=True, principal=principal, login=login, domain=domain, protocol=protocol)

    # -- passwords (guide 6.2.2, with the pop-up) --------------------------------------
    async def authenticate(self, attempt: LoginAttempt) -> AuthResult:
        if attempt.password is None:
            return AuthResult.passes("no password in the request")
        if not self.configured or not self.config.password_check:
            return AuthResult.passes("WindowsSecurity checks no passwords here (not configured, or password_check = false)")
        if attempt.user is None:
            return AuthResult.reject(REFUSED, audit="unknown user")
        if attempt.password == "":
            return AuthResult.reject(REFUSED, audit="empty password")
        loop = asyncio.get_running_loop()
        if self._acceptor_cred is None:  # NTLM only: the accounts of the user file (no domain controller)
            account = self.ntlm_account(attempt.login)
            if account is None:
                return AuthResult.reject(REFUSED, audit=f"no account for {attempt.login!r} in ntlm_user_file (or several, in different domains)")
            why = await loop.run_in_executor(None, self._check_ntlm_password, account, attempt.password)
            return AuthResult.reject(REFUSED, audit=why) if why else AuthResult.accept(attempt.user, f"NTLM password of {account}")
        principal = self.password_principal(attempt.login, attempt.user)
        if principal is None:
            return AuthResult.reject(
                REFUSED, audit=f"no accepted Kerberos realm for login {attempt.login!r} (accepted: {', '.join(self.accepted_realms) or 'none'})"
            )
        why = await loop.run_in_executor(None, self._check_password, principal, attempt.password)
        if why:
            return AuthResult.reject(REFUSED, audit=why)
        return AuthResult.accept(attempt.user, f"Kerberos password of {principal}")

    def ntlm_account(self, login: str) -> str | None:
        """The user file's account (``DOMAIN\\user`` or ``user``) a login's password is checked against."""
        name, realm = split_principal(login)
        found = [(d, u) for (d, _), u in self._ntlm_accounts.items()
                 if u.lower() == name.lower() and (d == realm if realm is not None else (not d or d in self.accepted_realms))]
        if realm is None and any(not d for d, _ in found):
            found = [(d, u) for d, u in found if not d]  # a local account of the login's name first
        if len(found) != 1:
            return None
        domain, user = found[0]
        return f"{domain}\\{user}" if domain else user

    def _check_ntlm_password(self, account: str, password: str) -> str:
        """A local NTLMv2 exchange against the user file; '' when the password is right, else why not."""
        import spnego

        client = spnego.client(account, password, protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm)
        server = self._new_context()
        try:
            server.step(client.step(server.step(client.step())))
        except Exception as exc:  # noqa: BLE001 - every failure is a refusal
            return f"NTLM refused the password of {account}: {_gss_reason(exc)}"
        return "" if server.complete else f"NTLM did not complete for {account}"

    def _check_password(self, principal: str, password: str) -> str:
        """An AS exchange with the KDC for ``principal``; '' when the password is right, else why not."""
        import gssapi
        import gssapi.raw

        try:
            name = gssapi.Name(principal, gssapi.NameType.kerberos_principal)
            got = gssapi.raw.acquire_cred_with_password(name, password.encode(), usage="initiate")
        except gssapi.exceptions.GSSError as exc:
            return f"KDC refused the password of {principal}: {_gss_reason(exc)}"
        if not self.config.verify_kdc:
            return ""
        try:
            mech = gssapi.OID.from_int_seq(_KRB5_MECH_OID)
            service = gssapi.Name(self.service_principal, gssapi.NameType.kerberos_principal)
            initiator = gssapi.SecurityContext(name=service, creds=gssapi.Credentials(got.creds), usage="initiate", mech=mech)
            acceptor = gssapi.SecurityContext(creds=self._acceptor_cred, usage="accept")
            acceptor.step(initiator.step())
            if not acceptor.complete:  # MIT answered with a KRB-ERROR token rather than an exception
                return "password accepted by a KDC whose ticket the keytab cannot verify (forged KDC, or stale keytab)"
            if str(acceptor.initiator_name).rstrip("\x00") != principal:
                return f"the KDC's ticket names {acceptor.initiator_name}, not {principal}"
        except gssapi.exceptions.GSSError as exc:
            return f"password accepted by a KDC whose ticket the keytab cannot verify (forged KDC, or stale keytab): {_gss_reason(exc)}"
        return ""


__all__ = ["Handshakes", "WindowsSecurity", "WindowsSecurityConfig", "WindowsSecuritySetupError", "split_principal"]
