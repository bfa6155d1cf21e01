"""`make run` / `make test` set-up (scripts/setup.sh) on a machine that lacks a system package.

The probe really fails: the set-up runs with a PATH from which `krb5-config` (Debian
libkrb5-dev, needed to compile the Kerberos bindings) is missing.  ``--no-install`` makes
root behave as a user who is not root, and ``--venv`` points at a temporary directory, so
the real .venv is never touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def path_without(tmp_path: Path, *missing: str) -> str:
    """A PATH holding every command of today's PATH but ``missing``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            target = bin_dir / entry.name
            if entry.name not in missing and not target.exists() and os.access(entry.path, os.X_OK):
                target.symlink_to(entry.path)
    return str(bin_dir)


def test_set_up_without_krb5_config_stops_before_pip_with_the_apt_line(tmp_path):
    venv, log = tmp_path / "venv", tmp_path / "setup.log"
    env = {**os.environ, "PATH": path_without(tmp_path, "krb5-config"), "PYTHON": sys.executable}
    done = subprocess.run(["bash", "scripts/setup.sh", "test", "--venv", str(venv), "--log", str(log), "--no-install"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 1, done
    assert done.stdout == "setup [1/3] system packages: missing\n", done.stdout
    # The exact line to run, and what comes next.
    assert "sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libkrb5-dev\n" \
        in done.stderr, done.stderr
    assert "no Python package was installed" in done.stderr and "`make test` again" in done.stderr, done.stderr
    # pip never ran: no venv, and the log holds the set-up's first step only.
    assert not venv.exists()
    assert "[1/3] system packages" in log.read_text() and "[2/3]" not in log.read_text() and "pip" not in log.read_text()


def test_make_run_needs_no_kerberos_headers(tmp_path):
    """`make run` installs twp-windows-auth without its Kerberos bindings, so libkrb5-dev is not asked for."""
    env = {**os.environ, "PATH": path_without(tmp_path, "krb5-config"), "PYTHON": sys.executable}
    check = ["bash", "scripts/install-system-deps.sh", "--check", "--for"]
    assert subprocess.run([*check, "run"], cwd=ROOT, env=env, timeout=60).returncode == 0
    assert subprocess.run([*check, "test"], cwd=ROOT, env=env, timeout=60).returncode == 1
