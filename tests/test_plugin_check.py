"""``twp plugins check NAME`` grades an installed plugin: every first-party plugin and contrib plugin passes,
a sloppy one fails and is told what to fix."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from twpcore import config as cfgmod
from twpcore.app import Kernel
from twpcore.cli import main
from twpcore.plugin_api import API_VERSION
from twpcore.plugin_check import check, report

ROOT = Path(__file__).resolve().parent.parent
TWP = Path(sys.executable).with_name("twp")
SLOPPY = Path(__file__).parent / "fixtures" / "check" / "sloppy"


def shipped_plugins() -> list[tuple[str, str]]:
    """(project directory, plugin name) of every plugin in plugins/ and contrib/, read from their pyproject.toml."""
    out = []
    for pyproject in sorted([*ROOT.glob("plugins/*/pyproject.toml"), *ROOT.glob("contrib/*/pyproject.toml")]):
        entry_points = tomllib.loads(pyproject.read_text())["project"].get("entry-points", {}).get("twp", {})
        out += [(pyproject.parent.name, name) for name in entry_points]
    return out


@pytest.fixture(scope="module")
def kernel() -> Kernel:
    return Kernel.build(cfgmod.Config())


@pytest.mark.parametrize(("project", "name"), shipped_plugins())
def test_every_shipped_plugin_passes_every_check(kernel, project, name):
    findings = check(kernel, name)
    text, status = report(name, findings)
    assert status == 0, text
    assert {f.check for f in findings} == {"loads", "registers", "api-version", "imports", "help", "secrets", "server-side", "tests"}, text


def test_the_command_prints_each_check_and_exits_0_when_all_pass(capsys):
    assert main(["--config", "/nonexistent/twp.toml", "plugins", "check", "webhook"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("plugin webhook:\n  ok    loads        twp-webhook 0.1.0 loaded\n"), out
    assert "  ok    api-version  TWP_PLUGIN_API = '1.0'" in out and out.rstrip().endswith("every check passed")


def test_an_unknown_plugin_is_named_with_what_is_installed(capsys):
    assert main(["--config", "/nonexistent/twp.toml", "plugins", "check", "acme-crm"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  loads        no installed plugin is named 'acme-crm' (installed: " in out and "webhook" in out


def test_a_sloppy_plugin_fails_with_every_reason_and_the_fix(tmp_path):
    # Installed from a copy (a build leaves build/ and *.egg-info next to the sources) into a private directory.
    source = shutil.copytree(SLOPPY, tmp_path / "sloppy")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(site), str(source)],
                   check=True, capture_output=True, timeout=120)
    env = {**{k: v for k, v in os.environ.items() if k not in ("TWP_LOAD_PLUGINS", "TWP_CONFIG")}, "PYTHONPATH": str(site)}
    out = subprocess.run([str(TWP), "--config", str(tmp_path / "none.toml"), "plugins", "check", "sloppy"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 1, out.stdout + out.stderr
    text = out.stdout
    assert "  ok    loads        twp-fixture-sloppy 1.0.0 loaded" in text
    assert "  ok    registers    directory_connector:sloppy" in text
    assert ('FAIL  api-version  twp_fixture_sloppy.plugin does not declare the plugin API it needs; '
            f'add TWP_PLUGIN_API = "{API_VERSION}" to it') in text
    assert f"FAIL  imports      {site / 'twp_fixture_sloppy' / 'plugin.py'}:5 imports twpcore.kinds; a plugin imports nothing of TWP" in text
    assert ('FAIL  help         directory_connector:sloppy: SloppyConfig.url has no help text; '
            'declare it with setting(..., help="what it is, its unit or format")') in text
    assert "FAIL  secrets      directory_connector:sloppy: SloppyConfig.password looks like a secret but is not marked: type it Secret" in text
    assert ("FAIL  server-side  directory_connector:sloppy: SloppyConfig.csv_file names a path on the server but is not marked: "
            "declare it setting(..., server_side=True)") in text
    assert f"FAIL  tests        {source / 'tests'} has no test_*.py; add tests with the TWP test kit" in text
    assert text.rstrip().endswith("6 problems to fix; then run `twp plugins check sloppy` again")
