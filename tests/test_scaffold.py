"""``twp plugins new``: a generated plugin of each kind installs, loads, is listed and passes its own tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
    where, site = generated
    config = tmp_path / "twp.toml"
    config.write_text(f"""
[storage]
url = "sqlite:///{tmp_path / 'twp.db'}"

[pbx.links.paris]
driver = "acme-pbx"

[directories.crm]
connector = "acme-directory"

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
    assert instances["pbx.links.paris"]["capabilities"] == ["monitor"]


def test_each_generated_plugin_passes_its_own_tests(generated):
    where, site = generated
    packages = sorted(where.iterdir())
    # One pytest run for the four packages (the template gives them the same pytest
    # settings, read here from the first one's pyproject.toml): four runs cost 4x the start-up.
    out = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-c", str(packages[0] / "pyproject.toml"),
                          *(str(pkg / "tests") for pkg in packages)],
                         cwd=where, env=env_with(site), capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    for kind in KINDS:
        for test in ("test_plugin_is_loaded_and_instance_ready", "test_a_bad_option_names_its_key"):
            assert f"test_twp_acme_{kind}.py::{test} PASSED" in out.stdout, out.stdout
    assert "8 passed" in out.stdout


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
