"""A real SMSC for tests: PyPI ``smpp34``'s ``Server`` on 127.0.0.1.

``Smsc`` accepts any transceiver bind, answers every ``submit_sm`` (accepting it with a
message id, or refusing it with the status given for its destination), sends a delivery
receipt for each accepted part when asked, and reassembles what the phones would show:
concatenated parts are joined by their UDH reference, GSM 7-bit is decoded with
smpplib's own table (not TWP's), UCS-2 as UTF-16.  ``stop()`` unbinds every session and
closes the port, like an SMSC going down; ``start()`` again brings it back on the same
port.  smpp34 is asyncio-native (a Rust core), so it runs on the test's event loop.

Install with ``pip install 'twp-smpp[test]'``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import attrs
import smpp34
from smpplib.gsm import GSM_CHARACTER_TABLE

from twpcore.testing.servers import find_free_port


def decode_gsm7(data: bytes) -> str:
    out, escape = [], False
    for b in data:
        if escape:
            out.append(GSM_CHARACTER_TABLE[0x80 + b])
            escape = False
        elif b == 0x1B:
            escape = True
        else:
            out.append(GSM_CHARACTER_TABLE[b])
    return "".join(out)


@attrs.frozen
class Submitted:
    """One ``submit_sm`` as the SMSC received it."""

    system_id: str
    source_addr: str
    source_addr_ton: int
    destination_addr: str
    data_coding: int
    esm_class: int
    registered_delivery: int
    short_message: bytes
    message_id: str | None
    """The id the SMSC answered with; None when it refused the PDU."""


@attrs.frozen
class Delivered:
    """A whole message as the phone shows it."""

    to: str
    sender: str
    text: str
    parts: int
    data_coding: int


class Smsc:
    """An SMSC on 127.0.0.1 (see the module docstring)."""

    def __init__(self, port: int | None = None, *, receipts: str | None = "DELIVRD", receipt_tlvs: bool = False,
                 refuse: dict[str, int] | None = None, system_id: str = "TESTSMSC"):
        self.port = port or find_free_port()
        self.receipts = receipts
        """The ``stat:`` of the receipts sent (``DELIVRD``, ``UNDELIV``...), or None for no receipt."""
        self.receipt_tlvs = receipt_tlvs
        """Also carry the receipt in the receipted_message_id / message_state TLVs."""
        self.refuse = dict(refuse or {})
        """Destination (without +) → command_status the SMSC answers instead of accepting."""
        self.system_id = system_id
        self.submitted: list[Submitted] = []
        self.binds: list[str] = []
        self.sessions: dict[str, Any] = {}
        self.server: Any = None
        self._task: asyncio.Task | None = None
        self._receipts: set[asyncio.Task] = set()
        self._ids = itertools.count(0x1000)

    @property
    def running(self) -> bool:
        return self.server is not None

    async def start(self) -> Smsc:
        self.server = smpp34.Server(host="127.0.0.1", port=self.port, system_id=self.system_id)
        await self.server.start()
        self._task = asyncio.get_running_loop().create_task(self._serve(self.server))
        return self

    async def stop(self) -> None:
        """Unbind every ESME and close the port (an SMSC going down)."""
        server, self.server = self.server, None
        if server is None:
            return
        await server.stop()  # no new connections
        for esme in list(self.sessions.values()):
            try:
                await asyncio.wait_for(esme.unbind(), 2)
            except Exception:  # noqa: BLE001 - the client may already be gone
                pass
        self.sessions.clear()
        for task in [self._task, *self._receipts]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in [self._task, *self._receipts] if t), return_exceptions=True)
        self._task = None

    async def _serve(self, server: Any) -> None:
        while True:
            event = await server.next()
            if isinstance(event, smpp34.Esme):
                self.sessions[event.session_id] = event
                self.binds.append(event.system_id)
            elif isinstance(event, smpp34.Unbound):
                self.sessions.pop(event.session_id, None)
            elif isinstance(event, smpp34.SubmitSmEvent):
                self._submit(event)

    def _submit(self, event: Any) -> None:
        esme = self.sessions.get(event.session_id)
        status = self.refuse.get(event.destination_addr)
        message_id = None if status else f"{next(self._ids):x}"
        self.submitted.append(Submitted(esme.system_id if esme else "?", event.source_addr, event.source_addr_ton, event.destination_addr,
                                        event.data_coding, event.esm_class, event.registered_delivery, bytes(event.short_message), message_id))
        if status:
            event.reject(status)
            return
        event.accept(message_id=message_id)
        if self.receipts and event.registered_delivery and esme is not None and message_id is not None:
            task = asyncio.get_running_loop().create_task(self._receipt(esme, event.destination_addr, event.source_addr, message_id))
            self._receipts.add(task)
            task.add_done_callback(self._receipts.discard)

    async def _receipt(self, esme: Any, phone: str, sender: str, message_id: str) -> None:
        stamp = time.strftime("%y%m%d%H%M")
        delivered = "001" if self.receipts == "DELIVRD" else "000"
        text = f"id:{message_id} sub:001 dlvrd:{delivered} submit date:{stamp} done date:{stamp} stat:{self.receipts} err:000 text:"
        tlvs = []
        if self.receipt_tlvs:
            state = {"DELIVRD": 2, "EXPIRED": 3, "DELETED": 4, "UNDELIV": 5, "ACCEPTD": 6, "UNKNOWN": 7, "REJECTD": 8}[self.receipts or "UNKNOWN"]
            tlvs = [
                smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, message_id.encode() + b"\x00"),  # type: ignore[attr-defined]  # re-exported at run time
                smpp34.Tlv(smpp34.TLV_MESSAGE_STATE, bytes([state])),  # type: ignore[attr-defined]  # re-exported at run time
            ]
            text = ""  # the TLVs alone must be enough
        await esme.deliver_sm(sender, text.encode(), source_addr=phone, esm_class=0x04, tlvs=tlvs)

    # -- what the phones got -----------------------------------------------------------
    def messages(self) -> list[Delivered]:
        """Accepted submissions reassembled into whole messages, in order of their first part."""
        out: list[Delivered] = []
        pending: dict[tuple[str, int], dict[int, Submitted]] = {}
        for sub in self.submitted:
            if sub.message_id is None:
                continue
            body = sub.short_message
            if sub.esm_class & 0x40:
                udh_len = body[0]
                ref, total, seq = body[3], body[4], body[5]
                parts = pending.setdefault((sub.destination_addr, ref), {})
                parts[seq] = sub
                if len(parts) < total:
                    continue
                pending.pop((sub.destination_addr, ref))
                chunks = [parts[i].short_message[udh_len + 1:] for i in range(1, total + 1)]
            else:
                chunks, total = [body], 1
            raw = b"".join(chunks)
            text = decode_gsm7(raw) if sub.data_coding == 0 else raw.decode("utf-16-be")
            out.append(Delivered(sub.destination_addr, sub.source_addr, text, total, sub.data_coding))
        return out

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Delivered]:
        """Wait until ``count`` whole messages arrived; return them."""
        deadline = time.monotonic() + timeout
        while len(self.messages()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the SMSC got {len(self.messages())} messages, expected {count}: {self.submitted}")
            await asyncio.sleep(0.02)
        return self.messages()
