"""Syslog forwarding (guide 10.6): `twp serve` sends its log to a syslog server."""

import signal
import socket
import subprocess
import sys
import time

import pytest

from twpcore.config import Config
from twpcore.schema import ConfigErrors
from twpcore.testing.servers import find_free_port


def test_serve_sends_its_log_to_a_udp_syslog_receiver(tmp_path):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(0.5)
    port = find_free_port()
    cfg = tmp_path / "twp.toml"
    cfg.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/t.db"\n[http]\nport = {port}\n'
                   f'[logging]\nlevel = "INFO"\nsyslog = "udp://127.0.0.1:{receiver.getsockname()[1]}"\nsyslog_facility = "local3"\n')
    proc = subprocess.Popen([sys.executable, "-m", "twpcore.cli", "--config", str(cfg), "serve"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("kernel ready" in line for line in lines):
            try:
                lines.append(receiver.recv(65535).decode())
            except TimeoutError:
                assert proc.poll() is None, proc.stderr.read()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _err = proc.communicate(timeout=30)
        receiver.close()
    ready = [line for line in lines if "kernel ready" in line]
    assert ready, lines
    # RFC 3164 priority: facility local3 (19) * 8 + severity info (6) = 158
    assert ready[0].startswith("<158>twp[") and "INFO twpcore.app:" in ready[0]
    # The generated admin password is printed once on the console, never sent to syslog.
    password = next(line.split()[-1] for line in out.splitlines() if "password:" in line)
    assert not any(password in line for line in lines)


@pytest.mark.parametrize("value,message", [
    ("http://10.0.0.5", 'expected "udp://host:port" or "tcp://host:port"'),
    ("udp://:514", "no host"),
    ("udp://10.0.0.5:99999", "port"),
])
def test_bad_syslog_targets_are_config_errors(value, message):
    with pytest.raises(ConfigErrors) as exc:
        Config.from_dict({"logging": {"syslog": value}}, "twp.toml")
    assert "twp.toml: logging" in str(exc.value) and message in str(exc.value)
