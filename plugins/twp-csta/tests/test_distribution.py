"""The CSTA toolkit is a distribution of its own: the kernel ships no CSTA, the drivers and the demo PBX come from here."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from importlib import metadata

import pytest

DRIVERS = {"twp-mxone": "mxone", "twp-mivoice400": "mivoice400", "twp-openscape-voice": "openscape_voice"}


def test_the_kernel_ships_no_csta_and_no_pbx_simulator():
    for module in ("twpcore.csta", "twpcore.testing.pbxsim", "twpcore.testing.conformance", "twpcore.default_plugins.pbxsim"):
        assert importlib.util.find_spec(module) is None, f"{module} is still in the kernel; it belongs to twp-csta"


@pytest.mark.parametrize("distribution", sorted(DRIVERS))
def test_each_csta_driver_depends_on_the_toolkit(distribution):
    requires = [r.split(";")[0].split("[")[0].strip() for r in metadata.requires(distribution) or []]
    assert "twp-csta" in requires, f"{distribution} requires {requires}"


def test_plugins_list_shows_the_demo_pbx_and_the_drivers_as_installed_packages(tmp_path):
    config = tmp_path / "twp.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/t.db"\n')
    done = subprocess.run([sys.executable, "-m", "twpcore.cli", "--config", str(config), "plugins", "list", "--json"],
                          capture_output=True, text=True, timeout=60, check=True)
    plugins = {p["name"]: p for p in json.loads(done.stdout)["plugins"]}
    assert (plugins["pbxsim"]["source"], plugins["pbxsim"]["state"]) == ("twp-csta", "loaded")
    for distribution, name in DRIVERS.items():
        assert (plugins[name]["source"], plugins[name]["state"]) == (distribution, "loaded")
