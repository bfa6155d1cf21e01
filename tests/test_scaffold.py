"""``twp plugins new``: a generated plugin of each kind installs, loads, is listed and passes its own tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from twpcore.cli import main

TWP = Path(sys.executable).with_name("twp")
KINDS = {  # --kind: (the kind in "provides", the registration hook)
    "pbx": ("pbx_driver", "twp_register_pbx_drivers"),
    "directory": ("directory_connector", "twp_register_directory_connectors"),
    "auth": ("auth_method", "twp_register_auth_methods"),
    "sms": ("sms_provider", "twp_register_sms_providers"),
}


def env_with(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TWP_LOAD_PLUGINS", "TWP_CONFIG")}
    return {**env, "PYTHONPATH": str(site)}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One package per kind made by ``twp plugins new``, pip-installed into a private directory."""
    where = tmp_path_factory.mktemp("scaffolded")
    site = tmp_path_factory.mktemp("scaffolded-site")
    for kind in KINDS:
        assert main(["plugins", "new", f"acme-{kind}", "--kind", kind, "--dir", str(where)]) == 0
    packages = sorted(where.iterdir())
    assert [p.name for p in packages] == sorted(f"twp-acme-{kind}" for kind in KINDS)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(site), *map(str, packages)],
                   check=True, capture_output=True, timeout=180)
    return where, site


def test_each_generated_plugin_is_loaded_and_provides_its_type(generated, tmp_path):
    _where, site = generated
    config = tmp_path / "twp.toml"
    config.write_text(f"""
[storage]
url = "sqlite:///{tmp_path / 'twp.db'}"

[pbx.links.paris]
driver = "acme-pbx"
host = "10.0.0.10"

[directories.crm]
connector = "acme-directory"
company = "ACME"
domain = "Paris"
url = "https://crm.example.com/api/contacts"

[sms.providers.gateway]
provider = "acme-sms"
port = 2776
""")
    out = subprocess.run([str(TWP), "--config", str(config), "plugins", "list", "--json"], capture_output=True, text=True,
                         env=env_with(site), timeout=60)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    plugins = {p["name"]: p for p in body["plugins"]}
    for kind, (kind_value, hook) in KINDS.items():
        plugin = plugins[f"acme-{kind}"]
        assert (plugin["state"], plugin["source"], plugin["version"]) == ("loaded", f"twp-acme-{kind}", "0.1.0"), plugin
        assert (plugin["provides"], plugin["hooks"]) == ([f"{kind_value}:acme-{kind}"], [hook])
    instances = {i["config"]: i for i in body["instances"]}
    for path, type_name in (("pbx.links.paris", "acme-pbx"), ("directories.crm", "acme-directory"),
                            ("sms.providers.gateway", "acme-sms"), ("auth.methods.acme-auth", "acme-auth")):
        assert (instances[path]["type"], instances[path]["state"], instances[path]["plugin"]) == (type_name, "configured", type_name)
    # The PBX scaffold is a CSTA XML driver on the twp-csta driver base: every call-control capability.
    assert {"monitor", "make_call", "transfer", "conference", "forwarding"} <= set(instances["pbx.links.paris"]["capabilities"])


def test_each_generated_plugin_passes_its_own_tests(generated):
    where, site = generated
    packages = sorted(where.iterdir())
    # One pytest run for the four packages (the template gives them the same pytest
    # settings, read here from the first one's pyproject.toml): four runs cost 4x the start-up.
    out = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-c", str(packages[0] / "pyproject.toml"),
                          *(str(pkg / "tests") for pkg in packages)],
                         cwd=where, env=env_with(site), capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stdout + out.stderr
    expected = {
        "auth": ("test_plugin_is_loaded_and_instance_ready", "test_a_bad_option_names_its_key"),
        "sms": ("test_plugin_is_loaded_and_instance_ready", "test_a_bad_option_names_its_key"),
        # A directory connector reading JSON over HTTP, tested against an aiohttp server in the test.
        "directory": ("test_a_sync_reads_the_source_and_reverse_lookup_finds_a_contact",
                      "test_a_wrong_token_or_a_source_down_keeps_the_contacts_and_says_why", "test_a_bad_option_names_its_key"),
        # A CSTA driver that runs the twp-csta conformance suite against the simulator.
        "pbx": ("TestConformance::test_incoming_call_answer_and_hang_up", "TestConformance::test_consultation_and_transfer",
                "TestConformance::test_forwarding", "test_the_link_is_up_and_listed", "test_a_bad_option_names_its_key"),
    }
    for kind, tests in expected.items():
        for test in tests:
            assert f"test_twp_acme_{kind}.py::{test} PASSED" in out.stdout, out.stdout


def test_each_generated_plugin_passes_twp_plugins_check(generated, tmp_path):
    _where, site = generated
    for kind in KINDS:
        out = subprocess.run([str(TWP), "--config", str(tmp_path / "none.toml"), "plugins", "check", f"acme-{kind}"],
                             capture_output=True, text=True, env=env_with(site), timeout=60)
        assert out.returncode == 0 and out.stdout.rstrip().endswith("every check passed"), out.stdout + out.stderr


@pytest.mark.parametrize(("name", "kind", "expected"), [
    ("acme-pbx", "pbx", "AcmePbxDriver"), ("acme", "pbx", "AcmePbxDriver"), ("acme-pbx-driver", "pbx", "AcmePbxDriver"),
    ("acme-crm", "directory", "AcmeCrmDirectoryConnector"), ("acme-directory", "directory", "AcmeDirectoryConnector"),
    ("pin", "auth", "PinAuthMethod"), ("acme-auth", "auth", "AcmeAuthMethod"), ("acme-sms", "sms", "AcmeSmsProvider"),
])
def test_the_class_name_does_not_repeat_the_kind(tmp_path, name, kind, expected):
    assert main(["plugins", "new", name, "--kind", kind, "--dir", str(tmp_path)]) == 0
    source = (tmp_path / f"twp-{name}" / f"twp_{name.replace('-', '_')}" / "plugin.py").read_text()
    assert f"\nclass {expected}(" in source and f"register({expected})" in source


def test_each_pyproject_has_a_test_extra_with_what_its_tests_need(generated):
    where, _ = generated
    for kind in KINDS:
        project = tomllib.loads((where / f"twp-acme-{kind}" / "pyproject.toml").read_text())["project"]
        test_extra = project["optional-dependencies"]["test"]
        assert {"pytest>=8", "pytest-aiohttp>=1.0"} <= set(test_extra), (kind, test_extra)
        assert ("twp-csta[test]" in test_extra and "twp-csta" in project["dependencies"]) is (kind == "pbx"), (kind, project)
    assert "aiohttp>=3.9" in tomllib.loads((where / "twp-acme-directory" / "pyproject.toml").read_text())["project"]["dependencies"]


def test_generated_readme_shows_the_config_to_write(generated):
    where, _ = generated
    readme = (where / "twp-acme-pbx" / "README.md").read_text()
    assert '[pbx.links.demo]\ndriver = "acme-pbx"' in readme
    pyproject = (where / "twp-acme-pbx" / "pyproject.toml").read_text()
    assert '[project.entry-points.twp]\nacme-pbx = "twp_acme_pbx.plugin"' in pyproject


@pytest.mark.parametrize(("name", "message"), [
    ("Acme", 'plugin name "Acme" is not valid: use 2-40 lower-case letters and digits, words separated by single hyphens'),
    ("acme_pbx", 'plugin name "acme_pbx" is not valid'),
    ("acme-", 'plugin name "acme-" is not valid'),
    ("acme--pbx", 'plugin name "acme--pbx" is not valid'),
    ("9pbx", 'plugin name "9pbx" is not valid'),
    ("a", 'plugin name "a" is not valid'),
    ("a" * 41, "is not valid"),
    ("twp-acme", 'plugin name "twp-acme": leave out the "twp-" prefix, it is added to the package name (try "acme")'),
])
def test_invalid_names_are_refused_with_a_clear_message(tmp_path, capsys, name, message):
    assert main(["plugins", "new", name, "--kind", "pbx", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("twp: ") and message in err
    assert list(tmp_path.iterdir()) == []


def test_an_existing_package_is_not_overwritten_and_kinds_are_checked(tmp_path, capsys):
    assert main(["plugins", "new", "acme", "--kind", "sms", "--dir", str(tmp_path)]) == 0
    (tmp_path / "twp-acme" / "README.md").write_text("mine")
    assert main(["plugins", "new", "acme", "--kind", "pbx", "--dir", str(tmp_path)]) == 2
    assert f"twp: {tmp_path / 'twp-acme'} already exists; choose another name or --dir" in capsys.readouterr().err
    assert (tmp_path / "twp-acme" / "README.md").read_text() == "mine"
    with pytest.raises(SystemExit) as exc:
        main(["plugins", "new", "other", "--kind", "fax", "--dir", str(tmp_path)])
    assert exc.value.code == 2
    assert "invalid choice: 'fax'" in capsys.readouterr().err
