"""The SMPP 3.4 SMS provider: a transceiver bind to an operator's SMSC (default port 2775).

``smpplib`` is a blocking library, so each provider instance owns one thread, the
*session*, which holds the socket and does everything on it: bind, ``submit_sm`` and
waiting for its ``submit_sm_resp``, answering ``enquire_link`` and ``deliver_sm``,
sending ``enquire_link`` when idle, and reconnecting with a growing delay after the link
drops.  The event loop only hands it messages through a queue and awaits a future.

Encoding and splitting come from the kernel (``twpcore.sms``): GSM 7-bit text goes as
unpacked septets with ``data_coding`` 0, anything else as UCS-2 with ``data_coding`` 8; a
long text goes as concatenated parts, each with a 6-octet UDH (``esm_class`` 0x40).
Delivery receipts (``deliver_sm`` with ``esm_class`` 0x04) are matched by message id,
from the ``receipted_message_id`` / ``message_state`` TLVs when present, else from the
receipt text (``id:… stat:DELIVRD err:…``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import random
import re
import select
import socket
import ssl
import threading
import time
from typing import Any, Literal

import attrs
import smpplib.client
import smpplib.consts as C
import smpplib.exceptions
import smpplib.smpp

from twpcore.plugin_api import (
    AuthFailed,
    Duration,
    NotReady,
    Secret,
    ServerSide,
    SmsMessage,
    SmsProvider,
    SmsProviderConfig,
    SmsRejected,
    SmsSent,
    SmsUnavailable,
    setting,
    split_text,
    udh_concat,
)

log = logging.getLogger(__name__)


@attrs.frozen
class SmppConfig(SmsProviderConfig):
    """``[sms.providers.<name>]`` with ``provider = "smpp"``."""

    host: str = setting(help="SMSC host name or address given by the operator")
    system_id: str = setting(help="bind login (system_id) given by the operator")
    password: Secret | None = setting(None, help='bind password; better written { env = "VARIABLE" }')
    port: int = setting(2775, min=1, max=65535, help="SMSC port (the prerequisites open 2775)")
    system_type: str = setting("", help="system_type of the bind, when the operator asks for one")
    tls: bool = setting(False, help="SMPP over TLS; the SMSC certificate is checked against the system's CAs")
    ca_file: str = setting("", help="PEM file of the CAs trusted for the SMSC certificate (with tls); empty: the system's",
                           server_side=ServerSide("a certificate file on the server"))
    registered_delivery: bool = setting(True, help="ask the SMSC for delivery receipts")
    receipt_ids: Literal["as_sent", "hex_to_decimal"] = setting(
        "as_sent", help="hex_to_decimal for SMSCs whose receipts give in decimal the id submit_sm_resp gave in hex")
    enquire_link: Duration = setting(Duration(30), min=0.05, help="idle time after which an enquire_link checks the link")
    response_timeout: Duration = setting(Duration(10), min=0.05, help="longest wait for a response of the SMSC")
    reconnect_delay: Duration = setting(Duration(2), min=0.01, help="first wait before binding again after a failure; doubles each time")
    reconnect_max_delay: Duration = setting(Duration(60), min=0.01, help="longest wait between two bind attempts")


# submit_sm_resp statuses after which nothing was accepted and a later try may pass.
TEMPORARY = {C.SMPP_ESME_RTHROTTLED, C.SMPP_ESME_RMSGQFUL, C.SMPP_ESME_RSYSERR, 0x00000064, 0x00000066}  # + RX_T_APPN, RX_R_APPN
AUTH = {C.SMPP_ESME_RINVPASWD, C.SMPP_ESME_RINVSYSID}
FINAL_STATES = {"DELIVRD": True, "EXPIRED": False, "DELETED": False, "UNDELIV": False, "REJECTD": False}
MESSAGE_STATE = {2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD"}


def describe_status(status: int) -> str:
    return f"{C.DESCRIPTIONS.get(status, 'unknown error')} (0x{status:08X})"


def source_address(sender: str) -> tuple[str, int, int]:
    """(source_addr, ton, npi) for an originator: a +number, a short number, or up to 11 letters and digits."""
    if not sender:
        return "", 0, 0
    if sender.startswith("+") and sender[1:].isdigit():
        return sender[1:], 1, 1  # international, E.164
    if sender.isdigit():
        return sender, 0, 1
    if len(sender) > 11:
        raise SmsRejected(f'sender "{sender}" has {len(sender)} characters; an alphanumeric originator has at most 11')
    return sender, 5, 0  # alphanumeric


def parse_receipt(pdu: Any) -> tuple[str | None, str | None, str]:
    """(message id, state, detail) of a delivery receipt ``deliver_sm``."""
    text = (pdu.short_message or b"")
    text = text.decode("latin-1") if isinstance(text, bytes) else str(text)
    rid = getattr(pdu, "receipted_message_id", None)
    if isinstance(rid, bytes):
        rid = rid.decode("latin-1")
    state = MESSAGE_STATE.get(getattr(pdu, "message_state", None) or -1)
    if not rid:
        m = re.search(r"\bid:(\S+)", text, re.I)
        rid = m.group(1) if m else None
    if not state:
        m = re.search(r"\bstat:(\w+)", text, re.I)
        state = m.group(1).upper() if m else None
    err = re.search(r"\berr:(\w+)", text, re.I)
    detail = f"stat:{state}" + (f" err:{err.group(1)}" if err else "")
    return (rid.strip("\x00") if rid else None), state, detail


class _Client(smpplib.client.Client):
    """smpplib's client, with TLS that checks the SMSC's name."""

    _socket: socket.socket | None

    def __init__(self, *args: Any, tls_context: ssl.SSLContext | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._tls_context = tls_context

    def connect(self) -> None:
        # smpplib turns every failure into "Connection refused"; keep the real reason.
        try:
            self._socket = self._socket or self._create_socket()
            self._socket.connect((self.host, self.port))
        except OSError as exc:
            raise smpplib.exceptions.ConnectionError(str(exc) or type(exc).__name__) from exc
        self.state = C.SMPP_CLIENT_STATE_OPEN

    def _create_socket(self) -> socket.socket:
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.settimeout(self.timeout)
        if self._tls_context is None:
            return raw
        return self._tls_context.wrap_socket(raw, server_hostname=self.host)


class _LinkLost(Exception):
    """The SMPP link is gone (closed, unbound, silent)."""


LINK_ERRORS = (OSError, smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, ssl.SSLError, _LinkLost)
_SILENT = logging.getLogger("twp_smpp.wire.silent")
_SILENT.disabled = True


class Uncertain(Exception):
    """The SMSC may have accepted the message (or part of it): the kernel never resends it."""


class _Session(threading.Thread):
    """The thread that owns one SMPP connection."""

    POLL = 0.02

    def __init__(self, provider: SmppProvider):
        super().__init__(name=f"smpp-{provider.name}", daemon=True)
        self.provider = provider
        self.cfg: SmppConfig = provider.config
        self.requests: queue.SimpleQueue[tuple[SmsMessage, concurrent.futures.Future]] = queue.SimpleQueue()
        self.first_bind: concurrent.futures.Future = concurrent.futures.Future()
        self.bound = threading.Event()
        self.stopping = threading.Event()
        self.last_error = "not connected yet"
        self.client: _Client | None = None
        self._enquiry: tuple[int, float] | None = None
        self._last_io = time.monotonic()

    # -- connection ------------------------------------------------------------------
    def _settle_first(self, error: BaseException | None) -> None:
        """Answer whoever waits for the first bind; the waiter may have given up (timed out, server stopping)."""
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            if error is None:
                self.first_bind.set_result(None)
            else:
                self.first_bind.set_exception(error)

    def run(self) -> None:
        delay: float = self.cfg.reconnect_delay
        while not self.stopping.is_set():
            first = not self.first_bind.done()
            try:
                self._bind()
            except AuthFailed as exc:
                self.last_error = str(exc)
                if first:
                    self._settle_first(exc)
                    return
                log.error("SMPP %s: %s", self.provider.name, exc)
                if self.stopping.wait(self.cfg.reconnect_max_delay):
                    break
                continue
            except LINK_ERRORS as exc:
                self._close()
                self.last_error = f"cannot bind to {self.where}: {exc or type(exc).__name__}"
                if first:
                    self._settle_first(NotReady(self.last_error))
                    return
                log.warning("SMPP %s: %s; new attempt in %.1f s", self.provider.name, self.last_error, delay)
                if self.stopping.wait(delay):
                    break
                delay = min(delay * 2, self.cfg.reconnect_max_delay)
                continue
            delay = self.cfg.reconnect_delay
            if first:
                self._settle_first(None)
            log.info("SMPP %s: bound as transceiver to %s", self.provider.name, self.where)
            try:
                self._serve()
            except LINK_ERRORS as exc:
                self.bound.clear()
                self._close()
                self.last_error = f"link to {self.where} lost: {exc or type(exc).__name__}"
                log.warning("SMPP %s: %s; binding again", self.provider.name, self.last_error)
                continue
            self.bound.clear()
            self._unbind()
        self._drain("the SMPP provider is stopping")

    @property
    def where(self) -> str:
        return f"SMSC {self.cfg.host}:{self.cfg.port}"

    def _bind(self) -> None:
        ctx = None
        if self.cfg.tls:
            ctx = ssl.create_default_context(cafile=self.cfg.ca_file or None)
        client = _Client(self.cfg.host, self.cfg.port, timeout=self.cfg.response_timeout, allow_unknown_opt_params=True,
                         tls_context=ctx, logger_name=f"twp_smpp.wire.{self.provider.name}")
        self.client = client
        client.connect()
        password = self.cfg.password.reveal() if self.cfg.password is not None else ""
        # smpplib logs every PDU in hex at debug level: the bind PDU carries the password.
        wire, client.logger = client.logger, _SILENT
        try:
            client.bind_transceiver(system_id=self.cfg.system_id, password=password, system_type=self.cfg.system_type)
        except smpplib.exceptions.PDUError as exc:
            status = exc.args[1] if len(exc.args) > 1 else None
            if isinstance(status, int) and status in AUTH:
                self._close()
                raise AuthFailed(f"{self.where} refused system_id {self.cfg.system_id!r} and its password: {describe_status(status)}") from None
            raise
        finally:
            client.logger = wire
        self.bound.set()
        self._last_io = time.monotonic()
        self._enquiry = None

    def _close(self) -> None:
        client, self.client = self.client, None
        if client is not None and client._socket is not None:
            try:
                client._socket.close()
            except OSError:
                pass
            client._socket = None
            client.state = C.SMPP_CLIENT_STATE_CLOSED

    def _unbind(self) -> None:
        client = self.client
        if client is None or client._socket is None:
            return
        try:
            client.send_pdu(smpplib.smpp.make_pdu("unbind", client=client))
            deadline = time.monotonic() + min(2.0, self.cfg.response_timeout)
            while time.monotonic() < deadline:
                pdu = self._read(deadline - time.monotonic())
                if pdu is not None and pdu.command == "unbind_resp":
                    break
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        self._close()

    def _drain(self, reason: str) -> None:
        while True:
            try:
                _, fut = self.requests.get_nowait()
            except queue.Empty:
                return
            if fut.set_running_or_notify_cancel():
                fut.set_exception(SmsUnavailable(reason))

    # -- the bound session ------------------------------------------------------------
    def _serve(self) -> None:
        while not self.stopping.is_set():
            pdu = self._read(self.POLL)
            if pdu is not None:
                self._handle(pdu)
                continue
            try:
                message, fut = self.requests.get_nowait()
            except queue.Empty:
                self._keepalive()
                continue
            if fut.set_running_or_notify_cancel():
                self._submit(message, fut)

    def _read(self, timeout: float) -> Any:
        """The next PDU, or None when none arrived within ``timeout``."""
        client = self.client
        if client is None or client._socket is None:
            raise _LinkLost("not connected")
        sock = client._socket
        pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
        if not pending:
            readable, _, _ = select.select([sock], [], [], max(0.0, timeout))
            if not readable:
                return None
        pdu = client.read_pdu()
        self._last_io = time.monotonic()
        return pdu

    def _keepalive(self) -> None:
        now = time.monotonic()
        if self._enquiry is not None:
            if now - self._enquiry[1] > self.cfg.response_timeout:
                raise _LinkLost(f"no enquire_link_resp within {self.cfg.response_timeout:g} s")
            return
        if now - self._last_io >= self.cfg.enquire_link:
            assert self.client is not None
            pdu = smpplib.smpp.make_pdu("enquire_link", client=self.client)
            self.client.send_pdu(pdu)
            self._enquiry = (pdu.sequence, now)

    def _respond(self, command: str, request: Any, **kw: Any) -> None:
        assert self.client is not None
        resp = smpplib.smpp.make_pdu(command, client=self.client, **kw)
        resp.sequence = request.sequence
        self.client.send_pdu(resp)

    def _handle(self, pdu: Any) -> None:
        command = pdu.command
        if command == "deliver_sm":
            self._respond("deliver_sm_resp", pdu, status=C.SMPP_ESME_ROK)
            if (pdu.esm_class or 0) & 0x3C in (0x04, 0x08):
                self._receipt(pdu)
            else:
                log.info("SMPP %s: incoming SMS from %s ignored (TWP does not receive SMS yet)", self.provider.name, pdu.source_addr)
        elif command == "enquire_link":
            self._respond("enquire_link_resp", pdu)
        elif command == "enquire_link_resp":
            self._enquiry = None
        elif command == "unbind":
            self._respond("unbind_resp", pdu)
            raise _LinkLost("the SMSC unbound")
        elif command == "generic_nack":
            log.warning("SMPP %s: generic_nack %s for PDU %s", self.provider.name, describe_status(pdu.status), pdu.sequence)
        else:
            log.debug("SMPP %s: %s ignored", self.provider.name, command)

    def _receipt(self, pdu: Any) -> None:
        rid, state, detail = parse_receipt(pdu)
        if not rid or state not in FINAL_STATES:
            log.debug("SMPP %s: receipt %s %s is not final; ignored", self.provider.name, rid, state)
            return
        self.provider.report_delivery(rid, FINAL_STATES[state], "" if FINAL_STATES[state] else detail)

    def _submit(self, message: SmsMessage, fut: concurrent.futures.Future) -> None:
        try:
            fut.set_result(self._submit_parts(message))
        except BaseException as exc:  # noqa: BLE001 - every outcome goes back to the caller
            fut.set_exception(exc)
            cause = exc if isinstance(exc, LINK_ERRORS) else exc.__cause__
            if isinstance(cause, LINK_ERRORS):
                raise cause from None  # the link is broken: bind again

    def _submit_parts(self, message: SmsMessage) -> SmsSent:
        client = self.client
        if client is None or not self.bound.is_set():
            raise SmsUnavailable(f"not bound to {self.where}: {self.last_error}")
        source, ton, npi = source_address(message.sender)
        payloads = split_text(message.text, message.encoding)
        coding = 0x00 if message.encoding == "gsm7" else 0x08
        reference = random.randint(0, 255)
        ids: list[str] = []
        for seq, payload in enumerate(payloads, start=1):
            esm = 0x00
            if len(payloads) > 1:
                payload = udh_concat(reference, len(payloads), seq) + payload
                esm = 0x40
            try:
                pdu = client.send_message(
                    source_addr=source, source_addr_ton=ton, source_addr_npi=npi,
                    destination_addr=message.to.lstrip("+"), dest_addr_ton=1, dest_addr_npi=1,
                    short_message=payload, data_coding=coding, esm_class=esm,
                    registered_delivery=1 if self.cfg.registered_delivery else 0,
                )
            except (OSError, smpplib.exceptions.ConnectionError) as exc:
                if not ids:
                    raise SmsUnavailable(f"{self.where}: sending failed ({exc or type(exc).__name__})") from exc
                raise Uncertain(f"part {seq} of {len(payloads)} could not be sent after {len(ids)} were accepted") from exc
            try:
                resp = self._await_response(pdu.sequence)
            except (_LinkLost, OSError, smpplib.exceptions.ConnectionError) as exc:
                raise Uncertain(f"no submit_sm_resp for part {seq} of {len(payloads)}: {exc or type(exc).__name__}") from exc
            if resp.status != C.SMPP_ESME_ROK:
                if ids:
                    raise Uncertain(f"part {seq} of {len(payloads)} refused ({describe_status(resp.status)}) after {len(ids)} were accepted")
                if resp.status in TEMPORARY:
                    raise SmsUnavailable(f"{self.where} answered {describe_status(resp.status)}")
                raise SmsRejected(f"{self.where} answered {describe_status(resp.status)}")
            mid = resp.message_id.decode("latin-1") if isinstance(resp.message_id, bytes) else str(resp.message_id or "")
            mid = mid.strip("\x00")
            if self.cfg.receipt_ids == "hex_to_decimal":
                try:
                    mid = str(int(mid, 16))
                except ValueError:
                    pass
            ids.append(mid)
        return SmsSent(tuple(ids))

    def _await_response(self, sequence: int) -> Any:
        deadline = time.monotonic() + self.cfg.response_timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _LinkLost(f"no answer within {self.cfg.response_timeout:g} s")
            pdu = self._read(left)
            if pdu is None:
                continue
            if pdu.command == "submit_sm_resp" and pdu.sequence == sequence:
                return pdu
            if pdu.command == "generic_nack" and pdu.sequence == sequence:
                return pdu
            self._handle(pdu)


class SmppProvider(SmsProvider):
    """SMPP 3.4 transceiver (``provider = "smpp"``)."""

    type_name = "smpp"
    Config = SmppConfig
    capabilities = frozenset({"gsm7", "ucs2", "concatenation", "delivery_receipts"})
    description = "SMPP 3.4 SMSC (transceiver bind, GSM 7-bit / UCS-2, concatenation, delivery receipts)"

    def __init__(self, config: SmppConfig, context: Any):
        super().__init__(config, context)
        self.session: _Session | None = None
        self._setup_failures = 0

    @property
    def available(self) -> bool:
        return self.session is not None and self.session.bound.is_set()

    async def setup(self) -> None:
        session = _Session(self)
        self.session = session
        session.start()
        try:
            await asyncio.wait_for(asyncio.wrap_future(session.first_bind), self.config.response_timeout * 2 + 1)
        except NotReady as exc:
            self._setup_failures += 1
            await self.close()
            delay = min(self.config.reconnect_delay * 2 ** (self._setup_failures - 1), self.config.reconnect_max_delay)
            raise NotReady(exc.reason, retry_after=delay) from None
        except TimeoutError:
            await self.close()
            raise NotReady(f"no bind answer from SMSC {self.config.host}:{self.config.port}") from None
        except BaseException:
            await self.close()
            raise
        self._setup_failures = 0

    async def send(self, message: SmsMessage) -> SmsSent:
        session = self.session
        if session is None or not session.is_alive() or not session.bound.is_set():
            raise SmsUnavailable(f"not bound to SMSC {self.config.host}:{self.config.port}: {session.last_error if session else 'not started'}")
        fut: concurrent.futures.Future = concurrent.futures.Future()
        session.requests.put((message, fut))
        return await asyncio.wrap_future(fut)

    async def close(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            session.stopping.set()
            await asyncio.to_thread(session.join, 10)
            session._drain("the SMPP provider stopped")
