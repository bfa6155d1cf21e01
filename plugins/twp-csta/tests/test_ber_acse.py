"""The ACSE association of a CSTA BER link: what the driver asks, what the switch answers."""

from __future__ import annotations

import pytest

from twp_csta.ber import (
    BerCodec,
    BerError,
    CstaFunctions,
    build_aare,
    build_aarq,
    build_abrt,
    build_rlre,
    build_rlrq,
    decode_acse,
    is_acse,
)
from twp_csta.xml import codec as x


def test_the_aarq_names_versions_services_events_and_carries_the_password():
    frame = build_aarq(
        versions=("versionFive",),
        services={"statusReportingServices": ("monitorStart", "snapshotDevice"), "switchingFunctionServices": ("makeCall",)},
        events=("delivered", "established"),
        password="s3cret",
    )
    assert is_acse(frame)
    apdu = decode_acse(frame)
    assert apdu.kind == "aarq"
    assert apdu.application_context == "1.3.12.0.285.200"
    assert apdu.versions == ("versionFive",)
    assert apdu.required == CstaFunctions(
        {"switchingFunctionServices": ("makeCall",), "statusReportingServices": ("monitorStart", "snapshotDevice")},
        ("delivered", "established"),
    )
    assert apdu.authentication == b"s3cret"
    assert "s3cret" not in repr(apdu) and "s3cret" not in apdu.describe()


def test_a_phase_2_aarq_asks_for_version_two_in_the_phase_2_context():
    apdu = decode_acse(build_aarq(phase=2))
    assert (apdu.application_context, apdu.versions) == ("1.3.12.0.218.200", ("versionTwo",))
    assert apdu.authentication is None


def test_the_switch_accepts_with_the_version_it_chose():
    supplied = CstaFunctions({"statusReportingServices": ("monitorStart",)}, ("delivered",))
    apdu = decode_acse(build_aare(version="versionThree", supplied=supplied))
    assert apdu.accepted and not apdu.authentication_refused
    assert apdu.versions == ("versionThree",)
    assert apdu.supplied == supplied
    assert apdu.describe() == "ACSE association accepted (CSTA versionThree)"


def test_a_refused_login_says_so_and_what_to_check():
    apdu = decode_acse(build_aare(accepted=False, diagnostic="authentication-failure"))
    assert not apdu.accepted and apdu.authentication_refused
    assert (apdu.result, apdu.diagnostic) == ("rejected-permanent", "authentication-failure")
    assert "check the CSTA password" in apdu.describe()
    other = decode_acse(build_aare(accepted=False, diagnostic="no-reason-given", permanent=False))
    assert (other.result, other.authentication_refused) == ("rejected-transient", False)


def test_a_hand_built_aare_is_read():
    # AARE [APPLICATION 1] { application-context-name [1] { OID 1.3.12.0.285.200 },
    #   result [2] { INTEGER 0 }, result-source-diagnostic [3] { acse-service-user [1] { INTEGER 0 } } }
    frame = bytes.fromhex("6117" "a10906072b0c00821d8148" "a203020100" "a305a103020100")
    apdu = decode_acse(frame)
    assert apdu.accepted and apdu.diagnostic == "null" and apdu.versions == ()


@pytest.mark.parametrize(
    ("frame", "kind", "reason"),
    [
        (build_rlrq(), "rlrq", "normal"),
        (build_rlrq("urgent"), "rlrq", "urgent"),
        (build_rlre(), "rlre", "normal"),
        (build_rlre("not-finished"), "rlre", "not-finished"),
        (build_abrt(), "abrt", "acse-service-user"),
    ],
)
def test_release_and_abort(frame, kind, reason):
    apdu = decode_acse(frame)
    assert (apdu.kind, apdu.reason) == (kind, reason)


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: build_aarq(events=("delivered", "rang")), r"unknown name\(s\) rang"),
        (lambda: build_aarq(services={"teleportServices": ("beamUp",)}), "unknown group 'teleportServices'"),
        (lambda: build_aarq(password="naïve ☎"), "must be Latin-1"),
        (lambda: build_aare(accepted=False, diagnostic="bad mood"), "expected one of null"),
        (lambda: build_rlrq("later"), "expected one of normal"),
        (lambda: build_aarq(phase=4), "phase must be 2 or 3"),
    ],
)
def test_what_acse_cannot_say_is_refused_with_a_reason(build, expected):
    with pytest.raises(BerError, match=expected):
        build()


def test_acse_and_rose_are_told_apart():
    rose = BerCodec().encode(x.make_call("201", "202"))
    assert not is_acse(rose)
    with pytest.raises(BerError) as info:
        decode_acse(rose)
    assert info.value.kind == "not-acse"
    with pytest.raises(BerError) as info:
        BerCodec().decode(build_aarq())
    assert info.value.kind == "not-rose"
