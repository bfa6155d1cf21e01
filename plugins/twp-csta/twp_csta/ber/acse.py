"""ACSE (X.227) association for CSTA links: AARQ / AARE / RLRQ / RLRE / ABRT.

A CSTA application opens an association before any ROSE PDU: its AARQ names the CSTA
application context, lists the CSTA versions it speaks and, in the ECMA-285 user
information, the services and events it needs; it may carry a log-in (the
``calling-authentication-value``).  The switch answers an AARE (accepted or rejected,
with the version it chose and what it can supply).  RLRQ / RLRE release the association;
ABRT aborts it.

``build_aarq`` / ``build_aare`` / ``build_rlrq`` / ``build_rlre`` / ``build_abrt`` give
bytes; ``decode_acse`` reads any of them into an ``AcseApdu``.  Names of versions,
services and events are those of ECMA-285's ``acse_user_info_csta.asn1`` bit strings
(``versionThree``; ``makeCall``; ``delivered`` …).  Passwords are never logged and never
appear in ``repr``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import asn1tools
import attrs

from twp_csta.ber.modules import ACSE_MODULE
from twp_csta.ber.tlv import MAX_DEPTH, MAX_PDU_SIZE, BerError, scan, to_definite

#: Application context names (object identifiers) per CSTA phase.  The arcs are those of
#: the ECMA modules ({iso(1) identified-organization(3) icd-ecma(12) standard(0)
#: csta2(218) / csta3(285)} and the application-context arc 200); see docs/csta.md.
APPLICATION_CONTEXTS = {2: "1.3.12.0.218.200", 3: "1.3.12.0.285.200"}
#: CSTA versions requested by default per phase (ECMA-218; ECMA-285 editions 1 and 2).
DEFAULT_VERSIONS = {2: ("versionTwo",), 3: ("versionThree", "versionFive")}
#: Services a call-control application asks for by default, by functionality group.
DEFAULT_SERVICES: dict[str, tuple[str, ...]] = {
    "switchingFunctionServices": (
        "alternateCall", "answerCall", "clearCall", "clearConnection", "conferenceCall",
        "consultationCall", "divertCall", "holdCall", "makeCall", "reconnectCall",
        "retrieveCall", "setFeature", "singleStepTransfer", "transferCall", "queryDevice",
        "sendDTMFTones",
    ),
    "bidirectionalServices": ("systemStatus",),
    "statusReportingServices": ("monitorStart", "monitorStop", "snapshotDevice", "snapshotCall"),
}
#: Events a call-control application asks for by default.
DEFAULT_EVENTS: tuple[str, ...] = (
    "callCleared", "conferenced", "connectionCleared", "delivered", "diverted", "established",
    "failed", "held", "networkReached", "originated", "queued", "retrieved", "serviceInitiated",
    "transferred", "doNotDisturb", "forwarding",
)
_ASSOCIATE_RESULTS = ("accepted", "rejected-permanent", "rejected-transient")
_DIAGNOSTICS = (
    "null", "no-reason-given", "application-context-name-not-supported", "calling-AP-title-not-recognized",
    "calling-AP-invocation-identifier-not-recognized", "calling-AE-qualifier-not-recognized",
    "calling-AE-invocation-identifier-not-recognized", "called-AP-title-not-recognized",
    "called-AP-invocation-identifier-not-recognized", "called-AE-qualifier-not-recognized",
    "called-AE-invocation-identifier-not-recognized", "authentication-mechanism-name-not-recognized",
    "authentication-mechanism-name-required", "authentication-failure", "authentication-required",
)
_PROVIDER_DIAGNOSTICS = ("null", "no-reason-given", "no-common-acse-version")
_RELEASE_REQUEST_REASONS = {"normal": 0, "urgent": 1, "user-defined": 30}
_RELEASE_RESPONSE_REASONS = {"normal": 0, "not-finished": 1, "user-defined": 30}
_ABORT_SOURCES = ("acse-service-user", "acse-service-provider")


def _number(names: dict[str, int] | tuple[str, ...], name: str, what: str) -> int:
    table = names if isinstance(names, dict) else {n: i for i, n in enumerate(names)}
    if name not in table:
        raise BerError("value", f"{what}: expected one of {', '.join(table)}, got {name!r}")
    return table[name]


def _name(names: dict[str, int] | tuple[str, ...], number: int) -> str:
    table = names if isinstance(names, dict) else {n: i for i, n in enumerate(names)}
    return next((n for n, i in table.items() if i == number), str(number))


@functools.lru_cache(maxsize=1)
def _spec() -> Any:
    return asn1tools.compile_string(ACSE_MODULE, "ber")


def _types() -> dict[str, Any]:
    return _parsed()["TWP-CSTA-ACSE"]["types"]


@functools.lru_cache(maxsize=1)
def _parsed() -> dict[str, Any]:
    return asn1tools.parse_string(ACSE_MODULE)


def _named_bits(type_name: str) -> dict[str, int]:
    return {name: int(bit) for name, bit in _types()[type_name]["named-bits"]}


def _to_bits(type_name: str, names: Iterable[str]) -> tuple[bytes, int]:
    named = _named_bits(type_name)
    wanted = list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in named]
    if unknown:
        raise BerError("value", f"{type_name}: unknown name(s) {', '.join(unknown)}; known: {', '.join(named)}")
    if not wanted:
        return (b"", 0)
    size = max(named[n] for n in wanted) + 1
    number = 0
    for name in wanted:
        number |= 1 << (size - 1 - named[name])
    nbytes = (size + 7) // 8
    return ((number << (nbytes * 8 - size)).to_bytes(nbytes, "big"), size)


def _from_bits(type_name: str, value: tuple[bytes, int]) -> tuple[str, ...]:
    data, size = value
    total = len(data) * 8
    number = int.from_bytes(bytes(data), "big") if data else 0
    return tuple(
        name for name, bit in _named_bits(type_name).items() if bit < size and number >> (total - 1 - bit) & 1
    )


@attrs.frozen
class CstaFunctions:
    """Services and events of an ECMA-285 ``CSTAFunctionality``, by name."""

    services: dict[str, tuple[str, ...]] = attrs.field(factory=dict)
    """Functionality group (``switchingFunctionServices`` …) -> service names."""
    events: tuple[str, ...] = ()
    """``EventReportServicesC2`` names (``delivered`` …)."""


_SERVICE_GROUPS = {
    "switchingFunctionServices": "SwitchingFunctionServicesC2",
    "bidirectionalServices": "BidirectionalServicesC2",
    "statusReportingServices": "StatusReportingServicesC2",
}


def _functionality(functions: CstaFunctions) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for group, names in functions.services.items():
        if group not in _SERVICE_GROUPS:
            raise BerError("value", f"CSTA services: unknown group {group!r}; known: {', '.join(_SERVICE_GROUPS)}")
        out[group] = _to_bits(_SERVICE_GROUPS[group], names)
    if functions.events:
        out["eventReportServices"] = _to_bits("EventReportServicesC2", functions.events)
    return out


def _functions_of(value: dict[str, Any] | None) -> CstaFunctions | None:
    if value is None:
        return None
    services = {group: _from_bits(type_name, value[group]) for group, type_name in _SERVICE_GROUPS.items() if group in value}
    events = _from_bits("EventReportServicesC2", value["eventReportServices"]) if "eventReportServices" in value else ()
    return CstaFunctions(services, events)


@attrs.frozen
class AcseApdu:
    """One decoded ACSE APDU.

    ``kind`` is ``aarq``, ``aare``, ``rlrq``, ``rlre`` or ``abrt``.  For an AARE,
    ``accepted`` tells the outcome and ``diagnostic`` why (``authentication-failure`` …).
    """

    kind: str
    """Which APDU."""
    application_context: str | None = None
    """Application context name (dotted object identifier), AARQ / AARE."""
    versions: tuple[str, ...] = ()
    """CSTA versions: requested (AARQ) or chosen (AARE)."""
    required: CstaFunctions | None = None
    """Services and events the application needs (``cSTAFunctionsRequiredByApplication``)."""
    supplied: CstaFunctions | None = None
    """Services and events the switch can supply (``cSTAFunctionsThatCanBeSupplied``)."""
    result: str | None = None
    """AARE: ``accepted``, ``rejected-permanent`` or ``rejected-transient``."""
    diagnostic: str | None = None
    """AARE: the result-source diagnostic (``null``, ``authentication-failure`` …)."""
    authentication: bytes | None = attrs.field(default=None, repr=False)
    """AARQ: the calling authentication value (password), never shown in ``repr``."""
    mechanism: str | None = None
    """AARQ / AARE: authentication mechanism name (object identifier), if any."""
    reason: str | None = None
    """RLRQ / RLRE reason, ABRT source."""

    @property
    def accepted(self) -> bool:
        """True for an AARE that accepts the association."""
        return self.kind == "aare" and self.result == "accepted"

    @property
    def authentication_refused(self) -> bool:
        """True for an AARE refusing the association because of the log-in."""
        return self.kind == "aare" and not self.accepted and bool(self.diagnostic and "authentication" in self.diagnostic)

    def describe(self) -> str:
        """A sentence for logs and errors (never the password)."""
        if self.kind == "aare":
            if self.accepted:
                chosen = ", ".join(self.versions) or "no version named"
                return f"ACSE association accepted (CSTA {chosen})"
            why = self.diagnostic or "no diagnostic"
            fix = " (check the CSTA password configured for the link)" if self.authentication_refused else ""
            return f"ACSE association refused by the PBX: {self.result}, {why}{fix}"
        if self.kind == "aarq":
            return f"ACSE association request (CSTA {', '.join(self.versions) or 'no version named'})"
        if self.kind == "abrt":
            return f"ACSE association aborted ({self.reason})"
        return f"ACSE release {'request' if self.kind == 'rlrq' else 'response'} ({self.reason or 'no reason'})"


def _user_information(versions: Iterable[str], required: CstaFunctions | None, supplied: CstaFunctions | None) -> list[Any]:
    info: dict[str, Any] = {"cSTAVersion": _to_bits("CSTAVersion", versions)}
    if required is not None:
        info["cSTAFunctionsRequiredByApplication"] = _functionality(required)
    if supplied is not None:
        info["cSTAFunctionsThatCanBeSupplied"] = _functionality(supplied)
    inner = _encode("ACSEUserInformationForCSTA", ("newDefinition", info), "ACSE user information")
    return [{"encoding": ("single-ASN1-type", inner)}]


def _encode(type_name: str, value: Any, where: str) -> bytes:
    try:
        return bytes(_spec().encode(type_name, value))
    except BerError:
        raise
    except Exception as exc:  # noqa: BLE001 - asn1tools raises assorted types on bad input; all become BerError
        raise BerError("value", f"{where}: {exc}") from None


def build_aarq(
    *,
    phase: int = 3,
    versions: Iterable[str] | None = None,
    services: dict[str, Iterable[str]] | None = None,
    events: Iterable[str] | None = None,
    password: str | bytes | None = None,
    mechanism: str | None = None,
    application_context: str | None = None,
) -> bytes:
    """An AARQ asking for a CSTA association.

    ``versions`` defaults to ``DEFAULT_VERSIONS[phase]``, ``services`` and ``events`` to
    the call-control set (``DEFAULT_SERVICES`` / ``DEFAULT_EVENTS``).  ``password``, when
    given, goes in ``calling-authentication-value`` (``charstring``) with the
    ``authentication`` ACSE requirement, and ``mechanism`` (an object identifier) in
    ``mechanism-name``.
    """
    if phase not in APPLICATION_CONTEXTS:
        raise BerError("value", f"AARQ: CSTA phase must be 2 or 3, got {phase!r}")
    required = CstaFunctions(
        {k: tuple(v) for k, v in (DEFAULT_SERVICES if services is None else services).items()},
        tuple(DEFAULT_EVENTS if events is None else events),
    )
    value: dict[str, Any] = {
        "protocol-version": (b"\x80", 1),
        "application-context-name": application_context or APPLICATION_CONTEXTS[phase],
        "user-information": _user_information(DEFAULT_VERSIONS[phase] if versions is None else versions, required, None),
    }
    if password is not None:
        try:
            secret = password.encode("latin-1") if isinstance(password, str) else bytes(password)
        except UnicodeEncodeError:
            raise BerError("value", "AARQ: the CSTA password must be Latin-1 text (a GraphicString)") from None
        value["sender-acse-requirements"] = (b"\x80", 1)
        value["calling-authentication-value"] = ("charstring", secret.decode("latin-1"))
    if mechanism is not None:
        value["mechanism-name"] = mechanism
    return _encode("AARQ-apdu", value, "AARQ")


def build_aare(
    *,
    accepted: bool = True,
    phase: int = 3,
    version: str | None = None,
    supplied: CstaFunctions | None = None,
    diagnostic: str = "null",
    permanent: bool = True,
    application_context: str | None = None,
) -> bytes:
    """An AARE: the association ``accepted`` (with the chosen ``version`` and what can be
    ``supplied``) or rejected (``diagnostic`` such as ``authentication-failure``)."""
    result = "accepted" if accepted else ("rejected-permanent" if permanent else "rejected-transient")
    chosen = version or DEFAULT_VERSIONS.get(phase, ("versionThree",))[-1]
    value: dict[str, Any] = {
        "protocol-version": (b"\x80", 1),
        "application-context-name": application_context or APPLICATION_CONTEXTS.get(phase, APPLICATION_CONTEXTS[3]),
        "result": _number(_ASSOCIATE_RESULTS, result, "AARE result"),
        "result-source-diagnostic": ("acse-service-user", _number(_DIAGNOSTICS, diagnostic, "AARE diagnostic")),
    }
    if accepted:
        value["user-information"] = _user_information((chosen,), None, supplied)
    return _encode("AARE-apdu", value, "AARE")


def build_rlrq(reason: str = "normal") -> bytes:
    """A release request (``normal``, ``urgent`` or ``user-defined``)."""
    return _encode("RLRQ-apdu", {"reason": _number(_RELEASE_REQUEST_REASONS, reason, "RLRQ reason")}, "RLRQ")


def build_rlre(reason: str = "normal") -> bytes:
    """A release response (``normal``, ``not-finished`` or ``user-defined``)."""
    return _encode("RLRE-apdu", {"reason": _number(_RELEASE_RESPONSE_REASONS, reason, "RLRE reason")}, "RLRE")


def build_abrt(source: str = "acse-service-user") -> bytes:
    """An abort (``acse-service-user`` or ``acse-service-provider``)."""
    return _encode("ABRT-apdu", {"abort-source": _number(_ABORT_SOURCES, source, "ABRT source")}, "ABRT")


def is_acse(data: bytes | bytearray) -> bool:
    """True when ``data`` starts with an ACSE APDU tag ([APPLICATION 0-4], constructed)."""
    return bool(data) and data[0] in (0x60, 0x61, 0x62, 0x63, 0x64)


def decode_acse(data: bytes | bytearray, *, max_size: int = MAX_PDU_SIZE) -> AcseApdu:
    """Read one ACSE APDU; ``BerError`` for anything else."""
    _size, indefinite = scan(data, max_size=max_size, max_depth=MAX_DEPTH)
    if indefinite:
        data = to_definite(data)
    if not is_acse(data):
        raise BerError("not-acse", f"tag byte 0x{data[0]:02x} does not start an ACSE APDU (0x60-0x64)")
    try:
        kind, value = _spec().decode("AcseApdu", bytes(data))
    except Exception as exc:  # noqa: BLE001 - asn1tools raises assorted types on bad input; all become BerError
        raise BerError("schema", f"not a valid ACSE APDU: {exc}") from None
    short = kind
    if short in ("rlrq", "rlre"):
        reason = value.get("reason")
        table = _RELEASE_REQUEST_REASONS if short == "rlrq" else _RELEASE_RESPONSE_REASONS
        return AcseApdu(short, reason=None if reason is None else _name(table, reason))
    if short == "abrt":
        return AcseApdu(short, reason=_name(_ABORT_SOURCES, value["abort-source"]))
    versions: tuple[str, ...] = ()
    required = supplied = None
    for external in value.get("user-information", []):
        choice, inner = external["encoding"]
        if choice != "single-ASN1-type":
            continue
        try:
            _form, info = _spec().decode("ACSEUserInformationForCSTA", bytes(inner))
        except Exception as exc:  # noqa: BLE001 - asn1tools raises assorted types on bad input; all become BerError
            raise BerError("schema", f"{short.upper()}: CSTA user information not readable: {exc}") from None
        versions = _from_bits("CSTAVersion", info["cSTAVersion"])
        required = _functions_of(info.get("cSTAFunctionsRequiredByApplication"))
        supplied = _functions_of(info.get("cSTAFunctionsThatCanBeSupplied"))
    common = {
        "application_context": value.get("application-context-name"),
        "versions": versions,
        "required": required,
        "supplied": supplied,
        "mechanism": value.get("mechanism-name"),
    }
    if short == "aarq":
        auth = value.get("calling-authentication-value")
        secret = None
        if auth is not None:
            choice, inner = auth
            secret = inner.encode("latin-1") if isinstance(inner, str) else bytes(inner[0] if isinstance(inner, tuple) else inner)
        return AcseApdu("aarq", authentication=secret, **common)
    result = value.get("result")
    source, diagnostic = value.get("result-source-diagnostic", (None, None))
    diagnostics = _DIAGNOSTICS if source == "acse-service-user" else _PROVIDER_DIAGNOSTICS
    return AcseApdu(
        "aare",
        result=None if result is None else _name(_ASSOCIATE_RESULTS, result),
        diagnostic=None if diagnostic is None else _name(diagnostics, diagnostic),
        **common,
    )
