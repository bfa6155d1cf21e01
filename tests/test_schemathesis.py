"""The OpenAPI document and the server agree: schemathesis (PyPI) fuzzes a live `twp serve` from its own document.

A client generated from ``/api/v1/openapi.json`` must be able to trust it: every status the
server answers is declared, every request the document calls valid is accepted, every request
it calls invalid is refused with a 4xx, answers match their schemas, and nothing answers 5xx.
The server is the one an admin runs (``twp serve`` in a subprocess), seeded with the demo
company and its simulated PBX, so the call routes have devices and a link to act on.

Two passes, each with every check (``--checks all``), a fixed seed and a few examples per
operation: a super user's token on the admin and shared operations, then a demo user's token
on the user operations (an admin's token only ever gets 403 there).  schemathesis is in the
``test`` extra, so the test always runs (measured 2026-12-07: 165 s of CPU in all, server included).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from twpcore.testing.servers import TwpServeProcess

ST = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
EXAMPLES = 8
"""Test cases per operation and phase: enough to cross every bound once, small enough for ~2 minutes on two cores."""
SEED = 20261207

# Operations left out of the runs, each for a reason, each covered elsewhere:
EXCLUDED_FOR_ADMIN = [
    # Ends the session whose token the fuzzer uses, so every later request would answer 401:
    # covered by tests/test_auth_tokens.py (logout revokes the token).
    ("POST", "/api/v1/auth/logout"),
    # Replaces the token with a new one (the old one is revoked): tests/test_sessions.py covers refresh.
    ("POST", "/api/v1/auth/refresh"),
]
EXCLUDED_FOR_USER = [
    ("POST", "/api/v1/auth/logout"),  # as above
    # A successful change revokes the user's other sessions and the fuzzer would then hold a
    # password nobody knows: covered by tests/test_sessions.py (password change rules).
    ("POST", "/api/v1/me/password"),
]


@pytest.fixture
def demo_server(tmp_path):
    """A `twp serve` of the demo (company Demo, simulated PBX): yields (base URL, first admin's password)."""
    twp = TwpServeProcess(tmp_path / "serve", demo=True)
    with twp:
        assert twp.password is not None
        yield twp.base_url, twp.password
    # A 5xx would show in the report; an unhandled error must also never reach the log.
    log = twp.log_text()
    assert "unhandled error" not in log, log[-5000:]


POSITIVE_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
"""What schemathesis expects for a request its schemas call valid (its default for positive_data_acceptance)."""


def rules_config(document: dict, tmp_path: Path) -> Path:
    """A schemathesis config letting the operations that state rules across fields (``x-twp-rules``) answer 400 or 422 to valid-looking data.

    "to must be after from" or "an administrator gives device and domain_id" bind two values; no JSON
    schema says so, so the fuzzer will send such requests as valid.  The document lists each rule
    on its operation; everywhere else a 400 to schema-valid data still fails the run.  The WebSocket's
    rule (a handshake, else 426) is a header the fuzzer does not send: its operation may answer 426.
    """
    groups: dict[tuple[str, ...], list[str]] = {}
    for ops in document["paths"].values():
        for op in ops.values():
            if op.get("x-twp-rules"):
                statuses = (*POSITIVE_STATUSES, "400", "422", *(["426"] if "426" in op["responses"] else []))
                groups.setdefault(statuses, []).append(op["operationId"])
    path = tmp_path / "schemathesis.toml"
    path.write_text("".join(f"[[operations]]\ninclude-operation-id = {json.dumps(sorted(ids))}\n"
                            f"checks.positive_data_acceptance.expected-statuses = {json.dumps(list(statuses))}\n\n"
                            for statuses, ids in groups.items()))
    return path


def schemathesis(base: str, token: str, selection: list[str], excluded: list[tuple[str, str]], tmp_path: Path, name: str,
                 config: Path) -> str | None:
    """Run schemathesis with every check; its report when a check failed, else None."""
    args = [
        ST,
        "--config-file",
        str(config),
        "run",
        f"{base}/api/v1/openapi.json",
        "--url",
        base,
        "--checks",
        "all",
        "-H",
        f"Authorization: Bearer {token}",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--generation-database",
        "none",
        # The server refuses NUL (\u0000) in every string, keys included (stated in the document's description).
        "--generation-allow-x00",
        "false",
        "--no-color",
        "--request-timeout",
        "30",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / f"report-{name}"),
        *selection,
    ]
    for method, path in excluded:
        args += ["--exclude-operation-id", operation_id(method, path)]
    run = subprocess.run(args, capture_output=True, text=True, timeout=1200, cwd=tmp_path)  # generous: a loaded CI machine
    (tmp_path / f"schemathesis-{name}.txt").write_text(run.stdout + run.stderr)
    if run.returncode == 0:
        return None
    return f"schemathesis ({name} pass) found disagreements between the document and the server:\n{run.stdout[-20000:]}\n{run.stderr[-3000:]}"


def operation_id(method: str, path: str) -> str:
    """The operationId the OpenAPI generator gives a route (twpcore.http.app.openapi)."""
    return f"{method.lower()}_{re.sub(r'[^a-zA-Z0-9]+', '_', path.removeprefix('/api/v1/')).strip('_')}"


def test_schemathesis_finds_no_disagreement_between_the_openapi_document_and_the_server(demo_server, tmp_path):
    base, password = demo_server
    document = requests.get(f"{base}/api/v1/openapi.json", timeout=10).json()
    ids = {op["operationId"] for ops in document["paths"].values() for op in ops.values()}
    for method, path in EXCLUDED_FOR_ADMIN + EXCLUDED_FOR_USER:
        assert operation_id(method, path) in ids, f"excluded operation {method} {path} is not in the document any more"

    admin = requests.post(f"{base}/api/v1/auth/admin-login", json={"login": "admin", "password": password}, timeout=30).json()["token"]
    admin_headers = {"Authorization": f"Bearer {admin}"}
    alice = requests.get(f"{base}/api/v1/users", params={"q": "alice"}, headers=admin_headers, timeout=10).json()["items"][0]
    user_password = "fuzz-" + password
    requests.patch(f"{base}/api/v1/users/{alice['id']}", json={"password": user_password}, headers=admin_headers, timeout=30).raise_for_status()
    user = requests.post(f"{base}/api/v1/auth/login", json={"login": "alice", "password": user_password}, timeout=30)
    assert user.status_code == 200, user.text
    user_token = user.json()["token"]

    # The user pass first: the admin pass may delete or change alice.
    config = rules_config(document, tmp_path)
    reports = [schemathesis(base, user_token, ["--include-by", '/x-twp-access == "user"'], EXCLUDED_FOR_USER, tmp_path, "user", config),
               schemathesis(base, admin, ["--exclude-by", '/x-twp-access == "user"'], EXCLUDED_FOR_ADMIN, tmp_path, "admin", config)]
    failed = [report for report in reports if report]
    assert not failed, "\n\n".join(failed)
