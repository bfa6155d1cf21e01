"""Between the neutral ``Message`` field tree and asn1tools values, led by our ASN.1 module.

The field tree is the XML codec's (ECMA-323 element names, text leaves, ``dict`` for
elements with children, single item or ``list`` for repeats).  The conversion walks the
parse tree asn1tools gives for ``TWP-CSTA-ECMA285``, so each field is written with the
type the standard gives it, and read back to the shape ECMA-323 uses:

* a ``DeviceID`` is its number as text (``"201"``); written as a ``dialingNumber``;
* ``CallingDeviceID`` and its kin are the number too, or ``{"notKnown": ""}``,
  ``{"restricted": ""}`` …; a ``RedirectionDeviceID`` of ``notRequired`` (no
  redirection) is left out, and a missing one is written as ``notRequired``;
* a ``ConnectionID`` is ``{"callID": …, "deviceID": …}`` (either may be missing);
* octet strings (call ids, monitor cross-reference ids) are text when they are printable
  ASCII, otherwise ``0x`` and their hexadecimal digits; such text is written back as the
  same bytes;
* lists (``ConnectionList``, ``ForwardList``, snapshot data) sit under the ECMA-323 item
  element (``connectionListItem`` …); named bit strings are ``{bit: "true"}``.

A device identifier the PBX gave as ``dynamicID`` is remembered (a bounded set) so that
it is written back as ``dynamicID`` when a request names it again.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import asn1tools

from twp_csta.ber.modules import csta_module
from twp_csta.ber.tlv import BerError

_MODULE = "TWP-CSTA-ECMA285"
_DEVICE_WRAPPERS = {
    "CallingDeviceID": "deviceIdentifier",
    "CalledDeviceID": "deviceIdentifier",
    "SubjectDeviceID": "deviceIdentifier",
    "RedirectionDeviceID": "numberdialed",
}
_NULL_DEVICES = ("notKnown", "restricted", "notRequired", "notSpecified")
#: ECMA-323 item element of each list type.
_LIST_ITEMS = {
    "ConnectionList": "connectionListItem",
    "ForwardList": "forwardListItem",
    "SnapshotDeviceData": "snapshotDeviceResponseInfo",
    "SnapshotCallData": "snapshotCallResponseInfo",
    "CompoundCallState": "localConnectionState",
}
_MAX_DYNAMIC_IDS = 4096
_STRING_TYPES = frozenset({"IA5String", "GraphicString", "VisibleString", "UTF8String", "PrintableString"})


def octets_to_text(value: bytes | bytearray) -> str:
    """Printable ASCII as text; anything else (or text starting ``0x``) as ``0x`` + hex."""
    raw = bytes(value)
    if raw and all(0x20 < b < 0x7F for b in raw) and not raw.startswith(b"0x"):
        return raw.decode("ascii")
    return "0x" + raw.hex()


def text_to_octets(text: str) -> bytes:
    """The inverse of ``octets_to_text``."""
    if text.startswith("0x"):
        digits = text[2:]
        if len(digits) % 2 == 0:
            try:
                return bytes.fromhex(digits)
            except ValueError:
                pass
    return text.encode("utf-8")


def _text_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in ("#text", "deviceIdentifier", "numberdialed", "deviceID", "deviceObject"):
            if key in value:
                return _text_of(value[key])
    return None


@functools.lru_cache(maxsize=2)
def compiled(phase: int) -> tuple[Any, dict[str, Any]]:
    """(asn1tools BER specification, parse tree of the types) for a CSTA phase; cached."""
    text = csta_module(phase)
    return asn1tools.compile_string(text, "ber"), asn1tools.parse_string(text)[_MODULE]["types"]


class Schema:
    """The ECMA-285 types of one CSTA phase, with the field-tree conversions."""

    def __init__(self, phase: int = 3) -> None:
        self.phase = phase
        self.spec, self.types = compiled(phase)
        self._dynamic: OrderedDict[str, None] = OrderedDict()

    # -- encoding ------------------------------------------------------------------------
    def encode(self, type_name: str, fields: Any, where: str) -> bytes:
        """BER of ``fields`` as ECMA-285 type ``type_name``; ``where`` names the message in errors."""
        value = self.to_asn1({"type": type_name}, fields, where)
        try:
            return bytes(self.spec.encode(type_name, value, check_types=False))
        except Exception as exc:  # noqa: BLE001 - asn1tools' own checks (constraints, types) raise assorted types
            raise BerError("value", f"{where}: {exc}") from None

    def decode(self, type_name: str, data: bytes | bytearray, where: str) -> Any:
        """The field tree of BER ``data`` read as ECMA-285 type ``type_name``."""
        try:
            value = self.spec.decode(type_name, bytes(data))
        except Exception as exc:  # noqa: BLE001 - asn1tools raises assorted types on bad input; all become BerError
            raise BerError("schema", f"{where}: not a valid {type_name}: {exc}") from None
        return self.from_asn1({"type": type_name}, value)

    def _member_desc(self, desc: dict[str, Any]) -> dict[str, Any]:
        return self.types.get(desc["type"], desc)

    def to_asn1(self, desc: dict[str, Any], value: Any, where: str) -> Any:
        kind = desc["type"]
        if kind == "DeviceID":
            return self._device_id(value, where)
        if kind in _DEVICE_WRAPPERS:
            if isinstance(value, Mapping):
                for null in _NULL_DEVICES:
                    if null in value:
                        return (null, None)
            return (_DEVICE_WRAPPERS[kind], self._device_id(value, where))
        if kind == "ConnectionID":
            return self._connection_id(value, where)
        if kind in self.types:
            named = self.types[kind]
            if kind in _LIST_ITEMS:
                items = value.get(_LIST_ITEMS[kind]) if isinstance(value, Mapping) else value
                return self._list(named["element"], items, where)
            return self.to_asn1(named, value, where)
        if kind in ("SEQUENCE", "SET"):
            if not isinstance(value, Mapping):
                raise BerError("value", f"{where}: expected a structure, got {value!r}")
            out: dict[str, Any] = {}
            for member in desc["members"]:
                if member is None:
                    continue
                name = member["name"]
                if name in value and value[name] is not None:
                    out[name] = self.to_asn1(member, value[name], f"{where}/{name}")
                elif member["type"] == "RedirectionDeviceID":
                    out[name] = ("notRequired", None)
                elif member["type"] in _DEVICE_WRAPPERS and not member.get("optional"):
                    out[name] = ("notKnown", None)
                elif member["type"] == "EventCause" and not member.get("optional"):
                    out[name] = "normal"  # our default when a builder gives no cause
                elif not member.get("optional") and "default" not in member:
                    raise BerError("value", f"{where}: the mandatory field {name} is missing")
            return out
        if kind == "CHOICE":
            names = {m["name"]: m for m in desc["members"] if m is not None}
            if isinstance(value, Mapping):
                for key, item in value.items():
                    if key in names:
                        return (key, self.to_asn1(names[key], item, f"{where}/{key}"))
            raise BerError("value", f"{where}: expected one of {', '.join(names)}, got {value!r}")
        if kind in ("SEQUENCE OF", "SET OF"):
            element = desc["element"]
            if isinstance(value, Mapping) and element.get("type") == "DeviceID":
                value = value.get("deviceID")
            return self._list(element, value, where)
        if kind == "ENUMERATED":
            allowed = [name for name, _ in desc["values"] if name != "..."]
            text = _text_of(value)
            if text not in allowed:
                raise BerError("value", f"{where}: expected one of {', '.join(allowed)}, got {value!r}")
            return text
        if kind == "BOOLEAN":
            text = _text_of(value) if not isinstance(value, bool) else ("true" if value else "false")
            if text not in ("true", "false", "1", "0"):
                raise BerError("value", f"{where}: expected true or false, got {value!r}")
            return text in ("true", "1")
        if kind == "INTEGER":
            try:
                return int(value if isinstance(value, int) else str(_text_of(value)))
            except ValueError:
                raise BerError("value", f"{where}: expected an integer, got {value!r}") from None
        if kind in _STRING_TYPES:
            text = _text_of(value)
            if text is None:
                raise BerError("value", f"{where}: expected text, got {value!r}")
            if kind == "IA5String" and not text.isascii():
                raise BerError("value", f"{where}: {text!r} is not ASCII (IA5String)")
            return text
        if kind == "OCTET STRING":
            text = _text_of(value)
            if text is None:
                raise BerError("value", f"{where}: expected text, got {value!r}")
            return text_to_octets(text)
        if kind == "NULL":
            return None
        if kind == "BIT STRING":
            return self._bits(desc, value, where)
        raise BerError("unsupported", f"{where}: the BER codec cannot write a {kind}")

    def _list(self, element: dict[str, Any], value: Any, where: str) -> list[Any]:
        items = value if isinstance(value, list) else ([] if value is None else [value])
        return [self.to_asn1(element, item, f"{where}[{i}]") for i, item in enumerate(items)]

    def _bits(self, desc: dict[str, Any], value: Any, where: str) -> tuple[bytes, int]:
        named = {name: int(number) for name, number in desc.get("named-bits", [])}
        wanted = [k for k, v in value.items() if _text_of(v) in ("true", "1")] if isinstance(value, Mapping) else []
        unknown = [k for k in wanted if k not in named]
        if unknown:
            raise BerError("value", f"{where}: unknown bit(s) {', '.join(unknown)}; known: {', '.join(named)}")
        if not wanted:
            return (b"", 0)
        size = max(named[k] for k in wanted) + 1
        number = 0
        for key in wanted:
            number |= 1 << (size - 1 - named[key])
        nbytes = (size + 7) // 8
        return ((number << (nbytes * 8 - size)).to_bytes(nbytes, "big"), size)

    def _device_id(self, value: Any, where: str) -> Any:
        text = _text_of(value)
        if not text:
            raise BerError("value", f"{where}: expected a device number, got {value!r}")
        if not text.isascii():
            raise BerError("value", f"{where}: device number {text!r} is not ASCII")
        identifier = ("dialingNumber", text)
        return {"deviceIdentifier": identifier} if self.phase == 3 else identifier

    def _local_device_id(self, value: Any, where: str) -> Any:
        text = _text_of(value)
        if text is not None and text in self._dynamic:
            return ("dynamicID", text_to_octets(text))
        return ("staticID", self._device_id(value, where))

    def _connection_id(self, value: Any, where: str) -> Any:
        if not isinstance(value, Mapping):
            raise BerError("value", f"{where}: expected a connection (callID, deviceID), got {value!r}")
        call = _text_of(value.get("callID")) if "callID" in value else None
        device = value.get("deviceID")
        if call is not None and device is not None:
            return ("both", {"callID": text_to_octets(call), "deviceID": self._local_device_id(device, where)})
        if call is not None:
            return ("callID", text_to_octets(call))
        if device is not None:
            return ("deviceID", self._local_device_id(device, where))
        raise BerError("value", f"{where}: a connection needs a callID or a deviceID, got {value!r}")

    # -- decoding ------------------------------------------------------------------------
    def from_asn1(self, desc: dict[str, Any], value: Any) -> Any:
        kind = desc["type"]
        if kind == "DeviceID":
            return self._device_text(value)
        if kind in _DEVICE_WRAPPERS:
            choice, inner = value
            if choice in _NULL_DEVICES:
                return {choice: ""}
            return self._device_text(inner)
        if kind == "ConnectionID":
            choice, inner = value
            if choice == "callID":
                return {"callID": octets_to_text(inner)}
            if choice == "deviceID":
                return {"deviceID": self._local_text(inner)}
            return {"callID": octets_to_text(inner["callID"]), "deviceID": self._local_text(inner["deviceID"])}
        if kind in self.types:
            named = self.types[kind]
            if kind in _LIST_ITEMS:
                items = [self.from_asn1(named["element"], item) for item in value]
                return {_LIST_ITEMS[kind]: items} if items else {}
            return self.from_asn1(named, value)
        if kind in ("SEQUENCE", "SET"):
            out: dict[str, Any] = {}
            for member in desc["members"]:
                if member is None or member["name"] not in value:
                    continue
                if member["type"] == "RedirectionDeviceID" and value[member["name"]][0] == "notRequired":
                    continue
                out[member["name"]] = self.from_asn1(member, value[member["name"]])
            return out
        if kind == "CHOICE":
            choice, inner = value
            for member in desc["members"]:
                if member is not None and member["name"] == choice:
                    return {choice: self.from_asn1(member, inner)}
            return {choice: ""}
        if kind in ("SEQUENCE OF", "SET OF"):
            items = [self.from_asn1(desc["element"], item) for item in value]
            if desc["element"].get("type") == "DeviceID":
                return {"deviceID": items} if items else {}
            return items
        if kind == "BOOLEAN":
            return "true" if value else "false"
        if kind == "INTEGER":
            return str(value)
        if kind == "OCTET STRING":
            return octets_to_text(value)
        if kind == "NULL":
            return ""
        if kind == "BIT STRING":
            data, size = value
            number = int.from_bytes(bytes(data), "big") if data else 0
            total = len(data) * 8
            return {
                name: "true"
                for name, bit in desc.get("named-bits", [])
                if int(bit) < size and number >> (total - 1 - int(bit)) & 1
            }
        if kind == "ENUMERATED":
            return str(value)
        return value if isinstance(value, str) else str(value)

    def _device_text(self, value: Any) -> str:
        identifier = value["deviceIdentifier"] if self.phase == 3 else value
        _choice, inner = identifier
        if isinstance(inner, tuple):  # explicitPublic / explicitPrivate: (type of number, digits)
            inner = inner[1]
        if isinstance(inner, (bytes, bytearray)):
            return octets_to_text(inner)
        return str(inner)

    def _local_text(self, value: Any) -> str:
        choice, inner = value
        if choice == "dynamicID":
            text = octets_to_text(inner)
            self._dynamic[text] = None
            self._dynamic.move_to_end(text)
            while len(self._dynamic) > _MAX_DYNAMIC_IDS:
                self._dynamic.popitem(last=False)
            return text
        return self._device_text(inner)
