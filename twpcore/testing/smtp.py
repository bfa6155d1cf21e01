"""An aiosmtpd handler that keeps what it receives, for tests of e-mail alerts and reset codes.

    box = Mailbox()
    controller = aiosmtpd.controller.Controller(box, hostname="127.0.0.1", port=find_free_port())
    controller.start()       # a thread of its own; controller.stop() afterwards
    ...
    box.messages[0]["to"], box.messages[0]["message"].get_content()

aiosmtpd is in the ``[test]`` extra of twp.
"""

from __future__ import annotations

import email
import email.policy
from typing import Any

__all__ = ["Mailbox"]


class Mailbox:
    """aiosmtpd handler: keeps every message it accepts, with how the client came.

    Each entry of ``messages``: ``from``, ``to`` (the envelope recipients), ``message``
    (an ``email.message.EmailMessage``), ``tls`` (STARTTLS or TLS from the start) and
    ``login`` (the SMTP AUTH user name, or None).
    """

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        login = session.auth_data.login if session.authenticated else None
        self.messages.append({"from": envelope.mail_from, "to": envelope.rcpt_tos, "message": msg, "tls": tls, "login": login})
        return "250 OK"
