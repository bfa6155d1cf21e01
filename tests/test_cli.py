"""The ``twp`` command as an admin runs it: first start, admin accounts, store upgrades."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from twpcore.cli import main
from twpcore.testing.servers import find_free_port


def write_config(tmp_path, port=8080):
    cfg = tmp_path / "twp.toml"
    cfg.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/var/twp.db"\n[http]\nhost = "127.0.0.1"\nport = {port}\n')
    return cfg


def http(method, url, body=None, token=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def serve_until_ready(cfg, port, cwd):
    """Start ``twp serve``; return (process, lines printed before the API answered)."""
    proc = subprocess.Popen([sys.executable, "-m", "twpcore.cli", "--config", str(cfg), "serve"], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            status, body = http("GET", f"http://127.0.0.1:{port}/api/v1/health")
            if status == 200 and body["ready"]:
                return proc
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"twp serve did not come up: {proc.communicate()[0]}")


def stop(proc) -> str:
    proc.terminate()
    out, _ = proc.communicate(timeout=20)
    return out


def test_first_start_prints_url_and_a_generated_password_once(tmp_path):
    port = find_free_port()
    cfg = write_config(tmp_path, port)
    first = serve_until_ready(cfg, port, tmp_path)
    try:
        status, _ = http("POST", f"http://127.0.0.1:{port}/api/v1/auth/admin-login", {"login": "admin", "password": "admin"})
        assert status == 401  # no default password exists
    finally:
        out = stop(first)
    assert f"serving http://127.0.0.1:{port}" in out and f"OpenAPI: http://127.0.0.1:{port}/api/v1/openapi.json" in out
    found = re.search(r"login:\s+(\S+)\s+password:\s+(\S+)", out)
    assert found, out
    login, password = found.groups()
    assert login == "admin" and len(password) >= 16 and out.count(password) == 1

    second = serve_until_ready(cfg, port, tmp_path)
    try:
        status, data = http("POST", f"http://127.0.0.1:{port}/api/v1/auth/admin-login", {"login": login, "password": password})
        assert status == 200 and data["admin"]["super_user"] is True
        status, admins = http("GET", f"http://127.0.0.1:{port}/api/v1/admins", token=data["token"])
        assert status == 200 and [a["login"] for a in admins["items"]] == ["admin"]
    finally:
        out = stop(second)
    assert "password:" not in out and "First start" not in out


def run_main(capsys, monkeypatch, *args, stdin=None):
    """``twp ARGS`` in this process (quicker than a subprocess): (exit code, stdout, stderr)."""
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    out = capsys.readouterr()
    return code, out.out, out.err


async def test_admin_create_prints_a_password_that_logs_in(tmp_path, twp_app, capsys, monkeypatch):
    cfg = str(write_config(tmp_path))
    code, out, err = run_main(capsys, monkeypatch, "--config", cfg, "admin", "create", "operator")
    assert code == 0 and "admin operator created (super user)" in out, err
    password = re.search(r"^password: (\S+)$", out, re.M).group(1)
    assert len(password) >= 16

    chosen = "chosen-password-123"
    code, out, err = run_main(capsys, monkeypatch, "--config", cfg, "admin", "create", "piped", "--password-stdin", stdin=chosen + "\n")
    assert code == 0 and chosen not in out and "password:" not in out, (out, err)
    code, out, err = run_main(capsys, monkeypatch, "--config", cfg, "admin", "create", "short", "--password-stdin", stdin="short\n")
    assert code == 2 and "at least 12 characters" in err
    code, out, err = run_main(capsys, monkeypatch, "--config", cfg, "admin", "create", "operator")
    assert code != 0 and "admin 'operator' already exists" in err
    code, out, err = run_main(capsys, monkeypatch, "--config", cfg, "admin", "create", "limited", "--company", "Nowhere")
    assert code != 0 and "company 'Nowhere' does not exist" in err

    server = await twp_app(config={"storage": {"url": f"sqlite:///{tmp_path}/var/twp.db"}})
    operator = await server.login_admin("operator", password)
    assert operator.info["admin"]["super_user"] is True
    company = await operator.create("companies", name="SSDEI")
    await server.login_admin("piped", chosen)
    await server.anonymous.post("/api/v1/auth/admin-login", {"login": "short", "password": "short"}, status=401)

    code, out, err = run_main(capsys, monkeypatch, "--config", cfg, "admin", "create", "ssdei-admin", "--company", "SSDEI")
    assert code == 0 and "limited to SSDEI" in out, err
    client = await server.login_admin("ssdei-admin", re.search(r"^password: (\S+)$", out, re.M).group(1))
    assert client.info["admin"]["super_user"] is False
    assert (await client.get("/api/v1/me"))["companies"] == [company["id"]]


async def test_a_locked_out_administrator_is_unlocked_from_the_command_line(tmp_path, twp_app, capsys, monkeypatch):
    """The rescue when the only super user locked itself out: `twp lockouts list` and `twp lockouts unlock`."""
    cfg = str(write_config(tmp_path))
    code, out, _ = run_main(capsys, monkeypatch, "--config", cfg, "admin", "create", "Operator")
    password = re.search(r"^password: (\S+)$", out, re.M).group(1)
    server = await twp_app(config={"storage": {"url": f"sqlite:///{tmp_path}/var/twp.db"},
                                   "auth": {"lockout_threshold": 2, "lockout_base_delay": "1h", "lockout_address_threshold": 1000}})
    for _ in range(2):
        await server.anonymous.post("/api/v1/auth/admin-login", {"login": "Operator", "password": "wrong-password-1"}, status=401)
    await server.anonymous.post("/api/v1/auth/admin-login", {"login": "Operator", "password": password}, status=429)

    code, out, err = run_main(capsys, monkeypatch, "--config", cfg, "lockouts", "list")
    assert code == 0 and re.search(r"^admin\s+operator\s+2 failures, locked until ", out, re.M), (out, err)
    code, out, err = run_main(capsys, monkeypatch, "--config", cfg, "lockouts", "unlock", "admin", "OPERATOR")
    assert code == 0 and "admin operator unlocked (it had 2 failures)" in out, err
    await server.login_admin("Operator", password)  # in again
    code, out, _ = run_main(capsys, monkeypatch, "--config", cfg, "lockouts", "list", "--json")
    assert json.loads(out) == []
    code, out, _ = run_main(capsys, monkeypatch, "--config", cfg, "lockouts", "unlock", "address", "192.0.2.7")
    assert code == 0 and "address 192.0.2.7 was not locked" in out
    audit = await (await server.admin()).get("/api/v1/audit", params={"limit": "50"})
    assert any(e["action"] == "unlock" and e["actor"] == "cli" and e["object_id"] == "operator" for e in audit["items"]), audit


def test_db_upgrade_and_commands_that_need_a_migrated_store(tmp_path, capsys, monkeypatch):
    cfg = str(write_config(tmp_path))
    code, out, err = run_main(capsys, monkeypatch, "--config", cfg, "backup", str(tmp_path / "b.jsonl.gz"))
    assert code == 2 and "run `twp db upgrade`" in err  # the store was never created: nothing to back up
    code, out, err = run_main(capsys, monkeypatch, "--config", cfg, "db", "upgrade")
    assert code == 0 and "upgraded from None to revision" in out, err
    code, out, err = run_main(capsys, monkeypatch, "--config", cfg, "db", "upgrade")
    assert code == 0 and "already at revision" in out
    bad = tmp_path / "bad.toml"
    bad.write_text('[storage]\nurl = "nosuchdb://x"\n')
    code, out, err = run_main(capsys, monkeypatch, "--config", str(bad), "db", "upgrade")
    assert code == 2 and "storage.url" in err, err
    code, out, err = run_main(capsys, monkeypatch, "--config", str(tmp_path / "missing.toml"), "db", "upgrade")
    assert code == 2 and "missing.toml: file not found" in err


def test_serve_on_a_busy_port_says_so(tmp_path, capsys, monkeypatch):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = str(write_config(tmp_path, port))
        code, _out, err = run_main(capsys, monkeypatch, "--config", cfg, "serve")
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err and "http.port" in err, err


def test_plugins_list_setup_shows_setup_errors_offline(tmp_path):
    """`twp plugins list --setup` connects each instance, so a PBX that is unreachable shows why."""
    import json
    import socket
    import subprocess
    import sys

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "twp.toml"
    cfg.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/t.db"\n[pbx.links.paris]\ndriver = "mxone"\nhost = "127.0.0.1"\nport = {port}\n'
                   'company = "A"\ndomain = "B"\nconnect_timeout = 1\n')
    base = [sys.executable, "-m", "twpcore.cli", "--config", str(cfg), "plugins", "list", "--json"]
    offline = json.loads(subprocess.run(base, capture_output=True, text=True, timeout=60, check=True).stdout)
    assert next(i for i in offline["instances"] if i["name"] == "paris")["state"] == "configured"
    out = json.loads(subprocess.run(base + ["--setup"], capture_output=True, text=True, timeout=60, check=True).stdout)
    link = next(i for i in out["instances"] if i["name"] == "paris")
    assert link["state"] == "retrying" and str(port) in link["reason"], link


def test_an_unusable_sqlite_folder_is_a_clear_error_not_a_traceback(tmp_path):
    import subprocess
    import sys

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cfg = tmp_path / "twp.toml"
    cfg.write_text(f'[storage]\nurl = "sqlite:///{blocker}/sub/twp.db"\n')
    for command in (["config", "check"], ["db", "upgrade"]):
        out = subprocess.run([sys.executable, "-m", "twpcore.cli", "--config", str(cfg), *command], capture_output=True, text=True, timeout=60)
        assert out.returncode == 2, (command, out.stdout, out.stderr)
        assert "storage.url" in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_the_command_reference_in_the_admin_guide_matches_the_help():
    """docs/admin-guide.md section 16 shows what `twp ... --help` prints today (scripts/gen_cli_docs.py)."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, str(root / "scripts" / "gen_cli_docs.py"), "--check"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
