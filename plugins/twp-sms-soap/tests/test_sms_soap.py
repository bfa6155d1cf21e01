"""The SOAP provider against a local SOAP service (aiohttp on 127.0.0.1) serving its own WSDL.

The service is modelled on the guide's J2S provider: the admin gives only the WSDL URL
(``host``) and the key (``password``).  It checks the key and the SOAPAction, parses the
envelope like a SOAP stack would, answers a message id, an error code in the result,
or a SOAP fault.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import pytest
from aiohttp import web

from twp_sms_soap.provider import WsdlError, read_wsdl
from twpcore.kinds import Kind
from twpcore.testing.servers import find_free_port
from twpcore.testing.sms import FAST_SMS, sms_tenant, start_sms, wait_sms_status

KEY = "j2s-key-0042"
ENV = "http://schemas.xmlsoap.org/soap/envelope/"
FAST = FAST_SMS

DOCUMENT_WSDL = """<?xml version="1.0" encoding="utf-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:s="http://www.w3.org/2001/XMLSchema" xmlns:tns="urn:ecosms" targetNamespace="urn:ecosms">
  <wsdl:types>
    <s:schema elementFormDefault="qualified" targetNamespace="urn:ecosms">
      <s:element name="sendSms"><s:complexType><s:sequence>
        <s:element name="key" type="s:string"/><s:element name="to" type="s:string"/>
        <s:element name="text" type="s:string"/><s:element name="sender" type="s:string" minOccurs="0"/>
      </s:sequence></s:complexType></s:element>
      <s:element name="sendSmsResponse"><s:complexType><s:sequence>
        <s:element name="return" type="s:string"/>
      </s:sequence></s:complexType></s:element>
      <s:element name="credit"><s:complexType><s:sequence><s:element name="key" type="s:string"/></s:sequence></s:complexType></s:element>
    </s:schema>
  </wsdl:types>
  <wsdl:message name="sendSmsIn"><wsdl:part name="parameters" element="tns:sendSms"/></wsdl:message>
  <wsdl:message name="sendSmsOut"><wsdl:part name="parameters" element="tns:sendSmsResponse"/></wsdl:message>
  <wsdl:message name="creditIn"><wsdl:part name="parameters" element="tns:credit"/></wsdl:message>
  <wsdl:portType name="EcoSmsPort">
    <wsdl:operation name="sendSms"><wsdl:input message="tns:sendSmsIn"/><wsdl:output message="tns:sendSmsOut"/></wsdl:operation>
    <wsdl:operation name="credit"><wsdl:input message="tns:creditIn"/></wsdl:operation>
  </wsdl:portType>
  <wsdl:binding name="EcoSmsBinding" type="tns:EcoSmsPort">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="sendSms"><soap:operation soapAction="urn:ecosms#sendSms"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input><wsdl:output><soap:body use="literal"/></wsdl:output></wsdl:operation>
    <wsdl:operation name="credit"><soap:operation soapAction="urn:ecosms#credit"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input></wsdl:operation>
  </wsdl:binding>
  <wsdl:service name="EcoSms">
    <wsdl:port name="EcoSmsSoap" binding="tns:EcoSmsBinding"><soap:address location="/soap/ecosms"/></wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"""

RPC_WSDL = """<?xml version="1.0"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:tns="urn:oldsms" targetNamespace="urn:oldsms">
  <message name="SendRequest"><part name="apiKey" type="xsd:string"/><part name="msisdn" type="xsd:string"/>
    <part name="message" type="xsd:string"/></message>
  <message name="SendResponse"><part name="result" type="xsd:string"/></message>
  <portType name="OldSmsPort"><operation name="Send"><input message="tns:SendRequest"/><output message="tns:SendResponse"/></operation></portType>
  <binding name="OldSmsBinding" type="tns:OldSmsPort">
    <soap:binding style="rpc" transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="Send"><soap:operation soapAction="Send"/>
      <input><soap:body use="literal" namespace="urn:oldsms:rpc"/></input>
      <output><soap:body use="literal" namespace="urn:oldsms:rpc"/></output></operation>
  </binding>
  <service name="OldSms"><port name="OldSmsPort" binding="tns:OldSmsBinding"><soap:address location="http://internal.example/soap"/></port></service>
</definitions>
"""


pytestmark = pytest.mark.usefixtures("cheap_password_hashes")  # logins are not what these tests are about


def fault(code: str, text: str) -> web.Response:
    xml = (f'<?xml version="1.0"?><soap:Envelope xmlns:soap="{ENV}"><soap:Body><soap:Fault>'
           f"<faultcode>soap:{code}</faultcode><faultstring>{text}</faultstring></soap:Fault></soap:Body></soap:Envelope>")
    return web.Response(status=500, text=xml, content_type="text/xml")


class SoapService:
    """A SOAP SMS service: WSDL at /ecosms.wsdl (document) and /old.wsdl (rpc), envelopes at /soap/*."""

    def __init__(self):
        self.port = find_free_port()
        self.received: list[dict] = []
        self.down_for_maintenance = False
        self.runner: web.AppRunner | None = None

    async def wsdl(self, request: web.Request) -> web.Response:
        return web.Response(text=DOCUMENT_WSDL if request.path == "/ecosms.wsdl" else RPC_WSDL, content_type="text/xml")

    async def soap(self, request: web.Request) -> web.Response:
        root = ET.fromstring(await request.read())  # a SOAP stack refuses what is not well-formed
        body = root.find(f"{{{ENV}}}Body")
        [call] = list(body)
        params = {child.tag: child.text for child in call}
        self.received.append({"action": request.headers.get("SOAPAction"), "operation": call.tag, "params": params})
        if self.down_for_maintenance:
            return fault("Server", "maintenance in progress")
        if call.tag == "{urn:ecosms}sendSms":
            if params.get("{urn:ecosms}key") != KEY:
                return fault("Client", "invalid key")
            result = "ERR_NUMBER" if params["{urn:ecosms}to"] == "+33699999999" else f"ECO-{len(self.received)}"
            xml = (f'<?xml version="1.0"?><soap:Envelope xmlns:soap="{ENV}"><soap:Body><sendSmsResponse xmlns="urn:ecosms">'
                   f"<return>{result}</return></sendSmsResponse></soap:Body></soap:Envelope>")
        else:
            xml = (f'<?xml version="1.0"?><soap:Envelope xmlns:soap="{ENV}"><soap:Body><r:SendResponse xmlns:r="urn:oldsms:rpc">'
                   f"<result>OK-{len(self.received)}</result></r:SendResponse></soap:Body></soap:Envelope>")
        return web.Response(text=xml, content_type="text/xml")

    async def start(self) -> SoapService:
        app = web.Application()
        app.router.add_get("/ecosms.wsdl", self.wsdl)
        app.router.add_get("/old.wsdl", self.wsdl)
        app.router.add_post("/soap/{name}", self.soap)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def service():
    svc = await SoapService().start()
    yield svc
    await svc.stop()


async def start(twp_app, providers, **options):
    return await start_sms(twp_app, providers, **options)


tenant = sms_tenant


async def wait_status(client, ident, statuses, timeout=5.0):
    return await wait_sms_status(client, ident, statuses, timeout)


def test_the_wsdl_gives_endpoint_action_and_parameters():
    op = read_wsdl(DOCUMENT_WSDL.encode(), "sendSms")
    assert (op.endpoint, op.soap_action, op.style, op.namespace, op.wrapper, op.qualified) == (
        "/soap/ecosms", "urn:ecosms#sendSms", "document", "urn:ecosms", "sendSms", True)
    assert op.parameters == ("key", "to", "text", "sender")
    rpc = read_wsdl(RPC_WSDL.encode(), "Send")
    assert (rpc.style, rpc.namespace, rpc.wrapper, rpc.parameters, rpc.qualified) == (
        "rpc",
        "urn:oldsms:rpc",
        "Send",
        ("apiKey", "msisdn", "message"),
        False,
    )
    with pytest.raises(WsdlError, match=r"operation 'SendSMS' is not in the WSDL; it offers: credit, sendSms"):
        read_wsdl(DOCUMENT_WSDL.encode(), "SendSMS")
    with pytest.raises(WsdlError, match="DTD"):
        read_wsdl(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "sendSms")


async def test_the_guides_setup_host_and_key_is_enough_to_send(twp_app, service):
    server = await start(twp_app, {"j2s": {"provider": "soap", "host": service.url("/ecosms.wsdl"), "password": KEY, "sender": "ACME"}})
    alice = await tenant(server)
    text = "Rendez-vous <demain> & 10h 😀"
    queued = await alice.post("/api/v1/sms", {"number": "06 12 34 56 78", "text": text}, status=202)
    sent = await wait_status(alice, queued["id"], "sent")
    [call] = service.received
    assert call["action"] == '"urn:ecosms#sendSms"' and call["operation"] == "{urn:ecosms}sendSms"
    assert call["params"] == {"{urn:ecosms}key": KEY, "{urn:ecosms}to": "+33612345678", "{urn:ecosms}text": text, "{urn:ecosms}sender": "ACME"}
    assert sent["provider"] == "j2s"
    rows = server.run(lambda c: c.exec_driver_sql("select provider_message_id from sms_outbox_parts").scalars().all())
    assert rows == ["ECO-1"]


async def test_an_error_code_a_client_fault_and_a_server_fault(twp_app, service):
    server = await start(twp_app, {
        "j2s": {"provider": "soap", "host": service.url("/ecosms.wsdl"), "password": KEY},
        "badkey": {"provider": "soap", "host": service.url("/ecosms.wsdl"), "password": "wrong", "company": "Other"},
    })
    alice = await tenant(server)
    refused = await alice.post("/api/v1/sms", {"number": "+33 6 99 99 99 99", "text": "x"}, status=202)
    assert (await wait_status(alice, refused["id"], "failed"))[
        "reason"
    ] == f"provider j2s refused the message: 127.0.0.1:{service.port} answered 'ERR_NUMBER'"

    service.down_for_maintenance = True
    later = await alice.post("/api/v1/sms", {"number": "0612345678", "text": "y"}, status=202)
    while len(service.received) < 3:
        await asyncio.sleep(0.02)
    waiting = await alice.get(f"/api/v1/sms/{later['id']}")
    assert waiting["status"] in ("queued", "sending") and "SOAP fault soap:Server: maintenance in progress" in (waiting["reason"] or "")
    service.down_for_maintenance = False
    await wait_status(alice, later["id"], "sent")

    bad = server.kernel.instances.instances[(Kind.SMS_PROVIDER, "badkey")].obj
    from twpcore.kinds import SmsMessage, SmsRejected

    with pytest.raises(SmsRejected, match="SOAP fault soap:Client: invalid key"):
        await bad.send(SmsMessage(99, "twp-99", "+33612345678", "z", "", "gsm7", 1))


async def test_an_rpc_service_with_its_own_parameter_names(twp_app, service):
    server = await start(twp_app, {"old": {
        "provider": "soap", "host": service.url("/old.wsdl"), "password": KEY, "operation": "Send",
        "endpoint": service.url("/soap/old"),  # the WSDL names an internal host
        "parameters": {"apiKey": "{password}", "msisdn": "{to_digits}", "message": "{text}"}}})
    alice = await tenant(server)
    queued = await alice.post("/api/v1/sms", {"number": "0612345678", "text": "hello"}, status=202)
    await wait_status(alice, queued["id"], "sent")
    [call] = service.received
    assert call["operation"] == "{urn:oldsms:rpc}Send" and call["action"] == '"Send"'
    assert call["params"] == {"apiKey": KEY, "msisdn": "33612345678", "message": "hello"}


async def test_a_missing_wsdl_retries_and_a_wrong_operation_is_an_error(twp_app, service):
    gone = SoapService()  # nothing listens there yet
    server = await start(twp_app, {
        "later": {"provider": "soap", "host": gone.url("/ecosms.wsdl"), "password": KEY},
        "wrong": {"provider": "soap", "host": service.url("/ecosms.wsdl"), "password": KEY, "parameters": {"key": "{password}", "phone": "{to}"}},
    })
    later = server.kernel.instances.instances[(Kind.SMS_PROVIDER, "later")]
    wrong = server.kernel.instances.instances[(Kind.SMS_PROVIDER, "wrong")]
    assert later.state == "retrying" and "cannot fetch the WSDL" in later.reason
    assert wrong.state == "setup_error" and "operation sendSms has no parameter 'phone'; its parameters: key, to, text, sender" in wrong.reason
