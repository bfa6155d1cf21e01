"""A generic HTTP SMS provider: most SaaS SMS gateways need only its config.

The request is built from templates: ``url``, ``headers`` and one body among ``json``
(a TOML table sent as JSON), ``form`` (sent URL-encoded) and ``body`` (raw text).
Placeholders: ``{to}`` (E.164 with +), ``{to_digits}`` (without +), ``{text}``,
``{sender}``, ``{reference}`` (``twp-<id>``, stable for one message), ``{id}``,
``{parts}``, ``{encoding}`` and ``{secret}`` (the ``secret`` option).  In ``url``
values are percent-encoded; in ``json`` and ``form`` they are plain values, encoded by
the body format; in ``body`` they are inserted as they are.

The answer is mapped by config: an HTTP status in ``success_status`` is accepted, one in
``unavailable_status`` means "not sent, try later" (the next provider is tried), any
other refuses the message with the gateway's reason (``error_path``).  When the gateway
answers 200 for everything and says the outcome in its JSON, ``status_path`` and
``status_map`` read it.  ``id_path`` finds the gateway's message id, which delivery
receipts posted to ``/api/v1/sms-http/<instance>/receipts?token=…`` refer to.
"""

from __future__ import annotations

import hmac
import json
import logging
import urllib.parse
from typing import Any, Literal

import aiohttp
import attrs
from aiohttp import web

from twpcore.plugin_api import (
    MESSAGE_PLACEHOLDERS,
    ApiError,
    Duration,
    Kind,
    Secret,
    SmsMessage,
    SmsProvider,
    SmsProviderConfig,
    SmsRejected,
    SmsSent,
    SmsUnavailable,
    check_template,
    context_of,
    message_values,
    setting,
)

log = logging.getLogger(__name__)

PLACEHOLDERS = (*MESSAGE_PLACEHOLDERS, "secret")
OUTCOMES = ("sent", "delivered", "unavailable", "rejected")


@attrs.frozen
class HttpConfig(SmsProviderConfig):
    """``[sms.providers.<name>]`` with ``provider = "http"``."""

    url: str = setting(help='gateway URL, with placeholders: "https://api.example.com/sms?to={to_digits}"')
    method: Literal["POST", "GET", "PUT"] = setting("POST", help="HTTP method")
    headers: dict[str, str] = setting(factory=dict, help='headers, with placeholders: { Authorization = "Bearer {secret}" }')
    json: dict[str, Any] | None = setting(None, help="body sent as JSON: a table whose strings take placeholders")
    form: dict[str, str] | None = setting(None, help="body sent URL-encoded: a table whose values take placeholders")
    body: str | None = setting(None, help="raw body with placeholders (values inserted as they are); set content_type")
    content_type: str = setting("text/plain; charset=utf-8", help="Content-Type of a raw body")
    secret: Secret | None = setting(None, help='API key or token, used as {secret}; write { env = "VARIABLE" }')
    timeout: Duration = setting(Duration(15), min=0.1, help="longest wait for the gateway's answer")
    success_status: list[int] = setting(factory=lambda: [200, 201, 202, 204], help="HTTP statuses meaning accepted")
    unavailable_status: list[int] = setting(
        factory=lambda: [429, 502, 503], help="HTTP statuses meaning not sent now: try later or the next provider"
    )
    id_path: str = setting("", help='dotted path of the message id in the JSON answer, such as "messages.0.id"; empty: none')
    status_path: str = setting("", help="dotted path of an outcome field in the JSON answer, read with status_map")
    status_map: dict[str, Literal["sent", "delivered", "unavailable", "rejected"]] = setting(
        factory=dict, help='value of status_path → sent, delivered, unavailable or rejected: { OK = "sent", NO_CREDIT = "unavailable" }')
    error_path: str = setting("", help="dotted path of the gateway's error text in its JSON answer")
    receipt_token: Secret | None = setting(None, help="token the gateway adds to receipt callbacks (?token=…); no token: receipts refused")
    receipt_id_path: str = setting("id", help="dotted path of the message id in a receipt callback (JSON or form)")
    receipt_status_path: str = setting("status", help="dotted path of the status in a receipt callback")
    receipt_status_map: dict[str, Literal["delivered", "failed", "pending"]] = setting(
        factory=lambda: {"delivered": "delivered", "failed": "failed", "undelivered": "failed", "expired": "failed", "rejected": "failed"},
        help="receipt status value → delivered, failed or pending (case-insensitive)")

    def __attrs_post_init__(self) -> None:
        bodies = [k for k in ("json", "form", "body") if getattr(self, k) is not None]
        if len(bodies) > 1:
            raise ValueError(f"give one body among json, form and body, not {' and '.join(bodies)}")
        if bodies and self.method == "GET":
            raise ValueError(f"method GET sends no body; remove {bodies[0]} or use POST")
        for name in ("url", "headers", "json", "form", "body"):
            check_template(name, getattr(self, name), PLACEHOLDERS)
        if "{secret}" in str([self.url, self.headers, self.json, self.form, self.body]) and self.secret is None:
            raise ValueError("a template uses {secret} but no secret is set")
        overlap = set(self.success_status) & set(self.unavailable_status)
        if overlap:
            raise ValueError(f"status {sorted(overlap)[0]} is in both success_status and unavailable_status")


def dig(data: Any, path: str) -> Any:
    """The value at a dotted path (``messages.0.id``), or None."""
    for key in path.split(".") if path else []:
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and key.lstrip("-").isdigit() and -len(data) <= int(key) < len(data):
            data = data[int(key)]
        else:
            return None
    return data


class HttpProvider(SmsProvider):
    """An HTTP SMS gateway (``provider = "http"``)."""

    type_name = "http"
    Config = HttpConfig
    capabilities = frozenset({"gsm7", "ucs2", "concatenation", "delivery_receipts"})
    description = "HTTP SMS gateway driven by templates (URL, headers, JSON/form/raw body) and status mapping"

    def __init__(self, config: HttpConfig, context: Any):
        super().__init__(config, context)
        self.session: aiohttp.ClientSession | None = None

    async def setup(self) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.timeout))

    async def close(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            await session.close()

    def values(self, message: SmsMessage) -> dict[str, str]:
        return {**message_values(message), "secret": self.config.secret.reveal() if self.config.secret is not None else ""}

    def request(self, message: SmsMessage) -> dict[str, Any]:
        """The keyword arguments of the aiohttp request for a message."""
        cfg, values = self.config, self.values(message)
        url = cfg.url.format(**{k: urllib.parse.quote(v, safe="") for k, v in values.items()})

        def fill(value: Any) -> Any:
            if isinstance(value, str):
                return value.format(**values)
            if isinstance(value, dict):
                return {k: fill(v) for k, v in value.items()}
            if isinstance(value, list):
                return [fill(v) for v in value]
            return value

        headers = {k: fill(v) for k, v in cfg.headers.items()}
        if any("\r" in v or "\n" in v for v in headers.values()):
            raise SmsRejected("a header would contain a line break (from the text or sender); refused")
        kwargs: dict[str, Any] = {"method": cfg.method, "url": url, "headers": headers}
        if cfg.json is not None:
            kwargs["data"] = json.dumps(fill(cfg.json), ensure_ascii=False).encode()
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        elif cfg.form is not None:
            kwargs["data"] = urllib.parse.urlencode(fill(cfg.form)).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif cfg.body is not None:
            kwargs["data"] = fill(cfg.body).encode()
            headers.setdefault("Content-Type", cfg.content_type)
        return kwargs

    async def send(self, message: SmsMessage) -> SmsSent:
        if self.session is None:
            raise SmsUnavailable("the HTTP provider is not started")
        request = self.request(message)
        where = urllib.parse.urlsplit(self.config.url.split("{", 1)[0]).netloc or "the gateway"
        try:
            async with self.session.request(**request) as resp:
                status, text = resp.status, await resp.text(errors="replace")
        except aiohttp.ClientConnectorError as exc:
            raise SmsUnavailable(f"cannot connect to {where}: {exc.os_error or exc}") from None
        # Any other failure (time-out, connection cut) may come after the gateway took the
        # message: it propagates, and the kernel fails the message without resending it.
        try:
            data: Any = json.loads(text) if text.strip() else None
        except ValueError:
            data = None
        reason = self._reason(data, text)
        if status in self.config.unavailable_status:
            raise SmsUnavailable(f"{where} answered HTTP {status}{': ' + reason if reason else ''}")
        if status not in self.config.success_status:
            raise SmsRejected(f"{where} answered HTTP {status}{': ' + reason if reason else ''}")
        outcome = "sent"
        if self.config.status_path:
            value = dig(data, self.config.status_path)
            outcome = self.config.status_map.get(str(value), "rejected") if value is not None else "rejected"
            if outcome == "rejected":
                raise SmsRejected(f"{where} answered {self.config.status_path} = {value!r}{': ' + reason if reason else ''}")
            if outcome == "unavailable":
                raise SmsUnavailable(f"{where} answered {self.config.status_path} = {value!r}{': ' + reason if reason else ''}")
        ident = dig(data, self.config.id_path) if self.config.id_path else None
        return SmsSent((str(ident),) if ident not in (None, "") else (), delivered=outcome == "delivered")

    def _reason(self, data: Any, text: str) -> str:
        if self.config.error_path:
            value = dig(data, self.config.error_path)
            if value not in (None, ""):
                return str(value)[:300]
        return " ".join(text.split())[:300]

    def receipt(self, data: Any) -> tuple[str, str] | None:
        """(message id, delivered/failed/pending) of a receipt callback body, or None when it has neither."""
        ident, status = dig(data, self.config.receipt_id_path), dig(data, self.config.receipt_status_path)
        if ident in (None, "") or status in (None, ""):
            return None
        mapping = {k.lower(): v for k, v in self.config.receipt_status_map.items()}
        return str(ident), mapping.get(str(status).lower(), "pending")


async def receipt_callback(request: web.Request) -> web.Response:
    """``POST`` (JSON or form) or ``GET`` (query) ``/api/v1/sms-http/{instance}/receipts?token=…``: a gateway's delivery receipt."""
    name = request.match_info["instance"]
    provider = context_of(request).instance(Kind.SMS_PROVIDER, name)
    if not isinstance(provider, HttpProvider):
        raise ApiError(404, "not_found", f"no HTTP SMS provider named {name!r}")
    token = provider.config.receipt_token
    if token is None or not hmac.compare_digest(request.query.get("token", ""), token.reveal()):
        raise ApiError(403, "forbidden", f"receipts for {name} need ?token= with its receipt_token")
    raw = await request.read() if request.method == "POST" else b""
    if request.method == "GET":
        data: Any = {k: v for k, v in request.query.items() if k != "token"}
    elif (request.content_type or "").endswith("json"):
        try:
            data = json.loads(raw or b"null")
        except ValueError:
            raise ApiError(400, "bad_request", "the receipt is not valid JSON") from None
    else:
        data = dict(urllib.parse.parse_qsl(raw.decode(errors="replace")))
        data.update({k: v for k, v in request.query.items() if k != "token" and k not in data})
    items = data if isinstance(data, list) else [data]
    accepted = 0
    for item in items:
        found = provider.receipt(item)
        if found is None:
            continue
        ident, outcome = found
        if outcome != "pending":
            provider.report_delivery(
                ident, outcome == "delivered", "" if outcome == "delivered" else f"gateway status {dig(item, provider.config.receipt_status_path)}"
            )
        accepted += 1
    if not accepted:
        raise ApiError(400, "bad_request", f"no receipt found: expected {provider.config.receipt_id_path} and {provider.config.receipt_status_path}")
    return web.json_response({"accepted": accepted})
