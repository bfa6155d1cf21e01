"""A SOAP SMS provider, configured like the guide's J2S provider: ``host`` is the WSDL URL, ``password`` the key.

At start-up the provider fetches the WSDL and reads what it needs to call one operation
(``operation``, ``sendSms`` unless told otherwise): the endpoint (``soap:address``), the
``soapAction``, the style (document/literal "wrapped", or rpc), the wrapper element and
its namespace, and the names of the operation's parameters.  Each SMS is then one SOAP
envelope whose parameters come from templates (``parameters``: element name → value
with ``{password}``, ``{to}``, ``{text}``...), posted with ``aiohttp``.

The answer: the first text of the response element is the message id, unless it matches
``error_pattern`` (services of this kind answer error codes in the same place); a SOAP
fault from the client side refuses the message with its ``faultstring``, one from the
server side means "try later".  SOAP 1.1 and 1.2 bindings are read; a WSDL with imports
or a service needing WS-Security headers is out of scope.  The WSDL and the answers are
parsed with the standard library's ElementTree; a document carrying a DTD is refused
(SOAP forbids them), so no entity is ever expanded.
"""

from __future__ import annotations

import io
import logging
import re
import urllib.parse
import xml.etree.ElementTree as ET
from typing import Any

import aiohttp
import attrs

from twpcore.plugin_api import (
    MESSAGE_PLACEHOLDERS,
    Duration,
    NotReady,
    Secret,
    SmsMessage,
    SmsProvider,
    SmsProviderConfig,
    SmsRejected,
    SmsSent,
    SmsUnavailable,
    check_template,
    message_values,
    setting,
)

log = logging.getLogger(__name__)

WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAP11 = "http://schemas.xmlsoap.org/wsdl/soap/"
SOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"
XSD = "http://www.w3.org/2001/XMLSchema"
ENV11 = "http://schemas.xmlsoap.org/soap/envelope/"
ENV12 = "http://www.w3.org/2003/05/soap-envelope"
PLACEHOLDERS = (*MESSAGE_PLACEHOLDERS, "password")


class WsdlError(ValueError):
    """The WSDL does not describe what the provider needs; the message says what is missing."""


@attrs.frozen
class Operation:
    """What the provider read from the WSDL to call one operation."""

    name: str
    endpoint: str
    soap_action: str
    style: str
    namespace: str
    """Namespace of the wrapper element (and of the parameters when ``qualified``)."""
    wrapper: str
    """Local name of the element inside ``soap:Body``."""
    parameters: tuple[str, ...]
    qualified: bool
    soap12: bool


def _parse(data: bytes, what: str) -> tuple[ET.Element, dict[str, str]]:
    if re.search(rb"<!DOCTYPE", data[:4096], re.I):
        raise WsdlError(f"{what} carries a DTD (<!DOCTYPE>); refused")
    prefixes: dict[str, str] = {}
    try:
        root = None
        for event, item in ET.iterparse(io.BytesIO(data), events=("start-ns", "end")):
            if event == "start-ns":
                prefix, uri = item
                prefixes.setdefault(prefix, uri)
            else:
                root = item
    except ET.ParseError as exc:
        raise WsdlError(f"{what} is not XML: {exc}") from None
    assert root is not None
    return root, prefixes


def _local(qname: str | None) -> str:
    return (qname or "").rsplit(":", 1)[-1]


def _name(tag: str) -> str:
    """Local name of an ElementTree tag (``{uri}Body`` → ``Body``)."""
    return tag.rsplit("}", 1)[-1]


def _resolve(qname: str | None, prefixes: dict[str, str], default: str) -> tuple[str, str]:
    prefix, _, local = (qname or "").rpartition(":")
    return prefixes.get(prefix, default) if prefix else prefixes.get("", default), local


def read_wsdl(data: bytes, operation: str) -> Operation:
    """The endpoint, action, style and parameters of ``operation`` in a WSDL 1.1 document."""
    root, prefixes = _parse(data, "the WSDL")
    if root.tag != f"{{{WSDL}}}definitions":
        raise WsdlError(f"the document is not a WSDL 1.1 description (root element {root.tag})")
    tns = root.get("targetNamespace", "")
    ports: list[tuple[bool, str, str]] = []
    for port in root.iter(f"{{{WSDL}}}port"):
        for ns, soap12 in ((SOAP11, False), (SOAP12, True)):
            address = port.find(f"{{{ns}}}address")
            if address is not None and (location := address.get("location")):
                ports.append((soap12, location, _local(port.get("binding"))))
    if not ports:
        raise WsdlError("the WSDL has no SOAP port (no soap:address in a wsdl:service)")
    ports.sort(key=lambda p: p[0])  # SOAP 1.1 first
    offered: list[str] = []
    for soap12, endpoint, binding_name in ports:
        ns = SOAP12 if soap12 else SOAP11
        binding = next((b for b in root.findall(f"{{{WSDL}}}binding") if b.get("name") == binding_name), None)
        if binding is None:
            continue
        soap_binding = binding.find(f"{{{ns}}}binding")
        style = soap_binding.get("style", "document") if soap_binding is not None else "document"
        for op in binding.findall(f"{{{WSDL}}}operation"):
            offered.append(op.get("name", ""))
            if op.get("name") != operation:
                continue
            soap_op = op.find(f"{{{ns}}}operation")
            action = soap_op.get("soapAction", "") if soap_op is not None else ""
            style = (soap_op.get("style") or style) if soap_op is not None else style
            body = op.find(f"{{{WSDL}}}input/{{{ns}}}body")
            if body is not None and body.get("use", "literal") != "literal" and style == "document":
                raise WsdlError(f"operation {operation}: document style with use={body.get('use')} is not supported")
            parts = _message_parts(root, binding, operation, prefixes)
            if style == "rpc":
                namespace = body.get("namespace", tns) if body is not None else tns
                return Operation(operation, endpoint, action, "rpc", namespace, operation, tuple(n for n, _ in parts), False, soap12)
            if len(parts) != 1 or parts[0][1] is None:
                raise WsdlError(f"operation {operation}: document style needs one message part with an element= (wrapped style)")
            element_ns, element = _resolve(parts[0][1], prefixes, tns)
            names, qualified = _element_children(root, element_ns, element)
            return Operation(operation, endpoint, action, "document", element_ns, element, names, qualified, soap12)
    raise WsdlError(f"operation {operation!r} is not in the WSDL; it offers: {', '.join(sorted(set(offered))) or 'none'}")


def _message_parts(root: ET.Element, binding: ET.Element, operation: str, prefixes: dict[str, str]) -> list[tuple[str, str | None]]:
    port_type = _local(binding.get("type"))
    pt = next((p for p in root.findall(f"{{{WSDL}}}portType") if p.get("name") == port_type), None)
    op = next((o for o in pt.findall(f"{{{WSDL}}}operation") if o.get("name") == operation), None) if pt is not None else None
    inp = op.find(f"{{{WSDL}}}input") if op is not None else None
    if inp is None:
        raise WsdlError(f"operation {operation}: no input message in portType {port_type}")
    message = _local(inp.get("message"))
    msg = next((m for m in root.findall(f"{{{WSDL}}}message") if m.get("name") == message), None)
    if msg is None:
        raise WsdlError(f"operation {operation}: message {message} is not defined")
    return [(p.get("name", ""), p.get("element")) for p in msg.findall(f"{{{WSDL}}}part")]


def _element_children(root: ET.Element, namespace: str, element: str) -> tuple[tuple[str, ...], bool]:
    for schema in root.iter(f"{{{XSD}}}schema"):
        if schema.get("targetNamespace", "") != namespace:
            continue
        for el in schema.findall(f"{{{XSD}}}element"):
            if el.get("name") == element:
                names = tuple(child.get("name", "") for child in el.iter(f"{{{XSD}}}element") if child is not el and child.get("name"))
                return names, schema.get("elementFormDefault") == "qualified"
    raise WsdlError(f"element {element} of namespace {namespace} is not in the WSDL's schema")


@attrs.frozen
class SoapConfig(SmsProviderConfig):
    """``[sms.providers.<name>]`` with ``provider = "soap"``."""

    host: str = setting(help='URL of the WSDL (the guide\'s J2S provider: "http://www.ecosms.fr/ecosms.wsdl")')
    password: Secret | None = setting(None, help='the key given by the SMS company, used as {password}; write { env = "VARIABLE" }')
    operation: str = setting("sendSms", help="the WSDL operation that sends one SMS")
    parameters: dict[str, str] = setting(
        factory=lambda: {"key": "{password}", "to": "{to}", "text": "{text}", "sender": "{sender}"},
        help="operation parameter → value template ({password}, {to}, {to_digits}, {text}, {sender}, {reference}...)")
    error_pattern: str = setting(r"^\s*(ERR|ERROR|KO|FAIL|-\d)", help="a result matching this regular expression is a refusal")
    endpoint: str = setting("", help="URL to post to instead of the WSDL's soap:address (when that names an internal host)")
    timeout: Duration = setting(Duration(15), min=0.1, help="longest wait for the service")

    def __attrs_post_init__(self) -> None:
        check_template("parameters", self.parameters, PLACEHOLDERS)
        try:
            re.compile(self.error_pattern)
        except re.error as exc:
            raise ValueError(f"error_pattern: not a regular expression ({exc})") from None
        if "{password}" in "".join(self.parameters.values()) and self.password is None:
            raise ValueError("parameters use {password} but no password (the key) is set")


class SoapProvider(SmsProvider):
    """A SOAP SMS web service (``provider = "soap"``)."""

    type_name = "soap"
    Config = SoapConfig
    capabilities = frozenset({"gsm7", "ucs2", "concatenation"})
    description = "SOAP web service described by a WSDL (host = WSDL URL, password = key), like the guide's J2S provider"

    def __init__(self, config: SoapConfig, context: Any):
        super().__init__(config, context)
        self.session: aiohttp.ClientSession | None = None
        self.operation: Operation | None = None

    async def setup(self) -> None:
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.timeout))
        try:
            async with session.get(self.config.host) as resp:
                data = await resp.read()
                if resp.status != 200:
                    raise NotReady(f"WSDL {self.config.host}: HTTP {resp.status}")
        except aiohttp.ClientError as exc:
            await session.close()
            raise NotReady(f"cannot fetch the WSDL {self.config.host}: {exc}") from None
        except BaseException:
            await session.close()
            raise
        try:
            op = read_wsdl(data, self.config.operation)
            unknown = [p for p in self.config.parameters if p not in op.parameters]
            if unknown:
                raise WsdlError(f"operation {op.name} has no parameter {unknown[0]!r}; its parameters: {', '.join(op.parameters) or 'none'}")
        except BaseException:
            await session.close()
            raise
        if self.config.endpoint:
            op = attrs.evolve(op, endpoint=self.config.endpoint)
        else:
            op = attrs.evolve(op, endpoint=urllib.parse.urljoin(self.config.host, op.endpoint))
        self.session, self.operation = session, op
        log.info("SOAP SMS %s: %s %s at %s", self.name, op.style, op.name, op.endpoint)

    async def close(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            await session.close()

    def envelope(self, message: SmsMessage) -> bytes:
        op = self.operation
        assert op is not None
        values = {**message_values(message), "password": self.config.password.reveal() if self.config.password is not None else ""}
        env_ns = ENV12 if op.soap12 else ENV11
        env = ET.Element(f"{{{env_ns}}}Envelope")
        body = ET.SubElement(env, f"{{{env_ns}}}Body")
        wrapper = ET.SubElement(body, f"{{{op.namespace}}}{op.wrapper}")
        for name in op.parameters:
            if name in self.config.parameters:
                child = ET.SubElement(wrapper, f"{{{op.namespace}}}{name}" if op.qualified else name)
                child.text = self.config.parameters[name].format(**values)
        return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(env, encoding="utf-8", xml_declaration=False)

    async def send(self, message: SmsMessage) -> SmsSent:
        op, session = self.operation, self.session
        if op is None or session is None:
            raise SmsUnavailable("the SOAP provider is not started")
        if op.soap12:
            headers = {"Content-Type": f'application/soap+xml; charset=utf-8; action="{op.soap_action}"'}
        else:
            headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{op.soap_action}"'}
        where = urllib.parse.urlsplit(op.endpoint).netloc
        try:
            async with session.post(op.endpoint, data=self.envelope(message), headers=headers) as resp:
                status, data = resp.status, await resp.read()
        except aiohttp.ClientConnectorError as exc:
            raise SmsUnavailable(f"cannot connect to {where}: {exc.os_error or exc}") from None
        try:
            root, _ = _parse(data, "the answer")
        except WsdlError as exc:
            if status >= 500:
                raise SmsUnavailable(f"{where} answered HTTP {status}") from None
            raise SmsRejected(f"{where} answered HTTP {status}: {exc}") from None
        fault = next((el for el in root.iter() if _name(el.tag) == "Fault"), None)
        if fault is not None:
            code = " ".join((el.text or "").strip() for el in fault.iter() if _name(el.tag) in ("faultcode", "Value") and el.text)
            text = next(((el.text or "").strip() for el in fault.iter() if _name(el.tag) in ("faultstring", "Text")), "") or "no reason given"
            if re.search(r"(Server|Receiver)\b", code):
                raise SmsUnavailable(f"{where}: SOAP fault {code}: {text}")
            raise SmsRejected(f"{where}: SOAP fault {code}: {text}")
        if status != 200:
            raise (SmsUnavailable if status >= 500 else SmsRejected)(f"{where} answered HTTP {status}")
        body = next((el for el in root.iter() if _name(el.tag) == "Body"), None)
        answer = next(iter(body)) if body is not None and len(body) else None
        result = next(((el.text or "").strip() for el in (answer.iter() if answer is not None else []) if (el.text or "").strip()), "")
        if re.search(self.config.error_pattern, result):
            raise SmsRejected(f"{where} answered {result!r}")
        return SmsSent((result,) if result else ())
