"""The ``None`` auth method: the user name alone logs in (guide 6.5).

It is only used for users whose ``AuthMethods`` parameter names it; the kernel warns in
the log and in ``/api/v1/health`` whenever any domain, group or user has it.
"""

from __future__ import annotations

from twpcore.hookspecs import hookimpl
from twpcore.kinds import AuthMethod, AuthResult, LoginAttempt


class NoAuthentication(AuthMethod):
    type_name = "None"
    capabilities = frozenset({"username_only"})
    description = "User name only, no password. Only for closed test set-ups."

    async def authenticate(self, attempt: LoginAttempt) -> AuthResult:
        if attempt.user is None:
            return AuthResult.passes("unknown user")
        return AuthResult.accept(attempt.user, "user name only (None method)")


@hookimpl
def twp_register_auth_methods(register):
    register(NoAuthentication)
