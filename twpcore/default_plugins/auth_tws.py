"""The ``TWS`` auth method: a local password checked against its argon2 hash (guide 6.4)."""

from __future__ import annotations

import asyncio

from twpcore.auth import verify_password
from twpcore.hookspecs import hookimpl
from twpcore.kinds import AuthMethod, AuthResult, LoginAttempt


class TwsPassword(AuthMethod):
    type_name = "TWS"
    capabilities = frozenset({"password"})
    description = "Local password set by the administrator, stored as an argon2 hash."

    async def authenticate(self, attempt: LoginAttempt) -> AuthResult:
        if attempt.password is None:
            return AuthResult.passes("no password in the request")
        # An unknown login, or a user with no TWS password, is checked against a dummy hash
        # (verify_password), so the answer takes as long as a wrong password of a real account.
        password_hash = attempt.user.get("password_hash") if attempt.user is not None else None
        ok = await asyncio.get_running_loop().run_in_executor(None, verify_password, password_hash, attempt.password)
        if not ok or attempt.user is None:
            # One answer for every refusal, so a caller cannot tell which logins exist;
            # the audit log keeps the precise reason for the administrator.
            why = "unknown user" if attempt.user is None else "no TWP password is set for this user" if not password_hash else "wrong password"
            return AuthResult.reject("invalid login or password", audit=why)
        return AuthResult.accept(attempt.user)


@hookimpl
def twp_register_auth_methods(register):
    register(TwsPassword)
