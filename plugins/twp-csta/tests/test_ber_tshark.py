"""A tool we did not write reads our BER: Wireshark's tshark decodes the codec's frames.

The frames the codec writes (every message of the catalogue, and the ACSE association
APDUs) go into a pcap with ``text2pcap`` (one TCP segment each), and ``tshark`` decodes
them with its generic BER dissector (``-d tcp.port==N,ber``).  tshark has no CSTA
dissector, and its ROS and ACSE dissectors cannot be bound to a TCP port (they sit on the
OSI presentation layer), so what we check is what the generic dissector shows: the outer
tag (ROSE invoke ``[CONTEXT 1]`` … ACSE AARQ ``[APPLICATION 0]`` …), the invoke id and
operation code as the first INTEGERs, and the ACSE application context name as an OID.
Both programs ship with Debian's tshark package (scripts/install-system-deps.sh).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from twp_csta.ber import BerCodec, build_aare, build_aarq, build_abrt, build_rlre, build_rlrq, samples
from twp_csta.ber.codec import EVENT_REPORT_CODE, OPERATION_CODES, UNIVERSAL_FAILURE_CODE
from twp_csta.xml.codec import MessageKind

PORT = 2555
CONTEXT, APPLICATION = 2, 1  # ber.id.class values


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: install Debian's tshark package (scripts/install-system-deps.sh)")
    return path


def tshark_fields(tmp_path, frames: list[bytes]) -> list[dict[str, list[str]]]:
    """Per frame: the BER fields tshark shows (outer tag class and number, INTEGERs, OIDs)."""
    dump = tmp_path / "frames.txt"
    dump.write_text("".join("0000 " + " ".join(f"{b:02x}" for b in frame) + "\n" for frame in frames))
    pcap = tmp_path / "frames.pcap"
    subprocess.run([_tool("text2pcap"), "-q", "-T", f"40001,{PORT}", str(dump), str(pcap)], check=True, capture_output=True)
    out = subprocess.run(
        [_tool("tshark"), "-r", str(pcap), "-d", f"tcp.port=={PORT},ber", "-o", "ber.show_internals:TRUE",
         "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,",
         "-e", "ber.id.class", "-e", "ber.id.tag", "-e", "ber.unknown.INTEGER", "-e", "ber.unknown.OID",
         "-e", "_ws.expert.message"],
        check=True, capture_output=True, text=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        classes, tags, integers, oids, expert = line.split("|")
        rows.append({
            "class": classes.split(","), "tag": tags.split(","), "integer": [i for i in integers.split(",") if i],
            "oid": [o for o in oids.split(",") if o], "expert": expert,
        })
    assert len(rows) == len(frames), out
    return rows


def test_tshark_reads_invoke_ids_and_operation_codes_of_every_message(tmp_path):
    codec = BerCodec()
    messages = samples.all_messages()
    frames = [codec.encode(m) for m in messages]
    rows = tshark_fields(tmp_path, frames)
    for message, row in zip(messages, rows, strict=True):
        where = f"{message.name}: tshark showed {row}"
        assert "Malformed" not in row["expert"] and "Unknown" not in row["expert"], where
        assert int(row["class"][0]) == CONTEXT, where
        if message.kind is MessageKind.EVENT:
            expected_tag, code = 1, EVENT_REPORT_CODE
        elif message.kind is MessageKind.REQUEST:
            expected_tag, code = 1, OPERATION_CODES[message.name]
        elif message.kind is MessageKind.RESPONSE:
            expected_tag, code = 2, OPERATION_CODES[message.name.removesuffix("Response")]
        else:
            expected_tag, code = 3, UNIVERSAL_FAILURE_CODE
        assert int(row["tag"][0]) == expected_tag, where
        assert [int(v) for v in row["integer"][:2]] == [message.invoke_id, code], where


def test_tshark_reads_the_acse_association(tmp_path):
    frames = [
        build_aarq(password="secret"),
        build_aare(),
        build_aare(accepted=False, diagnostic="authentication-failure"),
        build_rlrq(),
        build_rlre(),
        build_abrt(),
        build_aarq(phase=2),
    ]
    rows = tshark_fields(tmp_path, frames)
    for frame, row, apdu_tag in zip(frames, rows, [0, 1, 1, 2, 3, 4, 0], strict=True):
        where = f"{frame.hex()}: tshark showed {row}"
        assert "Malformed" not in row["expert"], where
        assert (int(row["class"][0]), int(row["tag"][0])) == (APPLICATION, apdu_tag), where
    assert rows[0]["oid"] == ["1.3.12.0.285.200"]
    assert rows[1]["oid"] == ["1.3.12.0.285.200"]
    assert rows[6]["oid"] == ["1.3.12.0.218.200"]
    # AARE result [2] { INTEGER }: 0 accepted, 1 rejected-permanent; diagnostic 13 authentication-failure.
    assert rows[1]["integer"][:2] == ["0", "0"]
    assert rows[2]["integer"][:2] == ["1", "13"]
