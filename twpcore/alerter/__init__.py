"""The Alerter screen pop (guide 9.2.1): XML templates, their rendering into a card per ringing call, URL mode.

- ``template``: parse and check an ``AlerterXml`` template (``<alerter vip=...>`` with
  ``<text>``, ``<image>`` and ``<button>`` elements); errors name the line and the fix.
- ``fields``: the ``[-Field-]`` values of a call: the caller's contact card, the callee
  (the Alerter's user), the server; substitution, URL-escaped where it lands in a URL.
- ``service``: ``AlerterService``, which stores the templates per company and pushes an
  ``alerter.card`` event to each called user granted the Alerter application.

``exe=`` buttons are kept in the card for desktop clients; the server never runs them.
"""

from __future__ import annotations

from twpcore.alerter.service import AlerterService
from twpcore.alerter.template import Template, TemplateError, parse

__all__ = ["AlerterService", "Template", "TemplateError", "parse"]
