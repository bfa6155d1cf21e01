"""Config files (``twp.toml``): every mistake gives one message naming the file, the key and the value.

The malformed files are real TOML files, loaded with ``twpcore.config.load`` (and with
``Kernel.build`` for what only the plugins' schemas can tell), and a few of them through
``twp config check`` in a subprocess, as an admin would run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from twpcore import config
from twpcore.app import Kernel
from twpcore.hookspecs import hookimpl
from twpcore.kinds import PbxDriver
from twpcore.schema import ConfigErrors, Secret, setting

# name, file content, key path named, words the message must hold (the received value first)
MALFORMED = [
    ("bad TOML syntax", '[http]\nhost = "0.0.0.0"\nport = \n', "http.port", ["not valid TOML at line 3", "'port ='"]),
    ("unknown section", "[htpp]\nport = 8080\n", "htpp", ['unknown section (did you mean "http"?)']),
    ("port with a letter", '[http]\nport = "3199a"\n', "http.port", ['got "3199a"', "expected an integer 1-65535"]),
    ("port out of range", "[http]\nport = 70000\n", "http.port", ["got 70000", "expected an integer 1-65535"]),
    ("limits not a table", "limits = 5\n", "limits", ["got 5", "expected a table"]),
    ("limit of the wrong type", '[limits]\ncompanies = "many"\n', "limits.companies", ['got "many"', "expected an integer >= 1"]),
    ("unknown key in [http]", "[http]\nprot = 8080\n", "http.prot", ['unknown key (did you mean "port"?)', "allowed keys here: host,"]),
    ("missing environment variable", '[storage]\nurl = { env = "TWP_TEST_MISSING_VAR" }\n', "storage.url",
     ['environment variable "TWP_TEST_MISSING_VAR" is not set']),
    ("PBX link without driver", '[pbx.links.paris]\nhost = "10.0.0.1"\n', "pbx.links.paris.driver", ["is required", "got nothing"]),
    ("misspelt instance table", '[pbx.link.paris]\ndriver = "mxone"\n', "pbx.link", ['unknown key (did you mean "links"?)', "[pbx.links.<name>]"]),
    ("plugins.disabled not a list", '[plugins]\ndisabled = "webhook"\n', "plugins.disabled", ['got "webhook"', "expected an array"]),
    ("bad duration", '[auth]\ntoken_lifetime = "8x"\n', "auth.token_lifetime", ['got "8x"', '"15m" or "8h"']),
    ("duration below the minimum", "[auth]\ntoken_lifetime = 10\n", "auth.token_lifetime", ["got 10", ">= 60"]),
    ("logging level typo", '[logging]\nlevel = "DEBG"\n', "logging.level", ['got "DEBG"', 'did you mean "DEBUG"?']),
    ("enabled as a string", '[pbx.links.paris]\ndriver = "mxone"\nenabled = "yes"\n', "pbx.links.paris.enabled", ['got "yes"', "true or false"]),
    ("plugin options not a table", '[plugins]\nwebhook = "on"\n', "plugins.webhook", ['got "on"', "expected a table of options"]),
]


@pytest.mark.parametrize("name,text,path,words", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_config_gives_one_message_naming_file_key_and_value(tmp_path, monkeypatch, name, text, path, words):
    monkeypatch.delenv("TWP_TEST_MISSING_VAR", raising=False)
    file = tmp_path / "twp.toml"
    file.write_text(text)
    with pytest.raises(ConfigErrors) as caught:
        config.load(file)
    problems = caught.value.problems
    assert len(problems) == 1, [str(p) for p in problems]
    message = str(problems[0])
    assert message.startswith(f"{file}: {path}: "), message
    for w in words:
        assert w in message, message


def test_a_file_that_is_missing_or_not_utf8_is_named(tmp_path):
    with pytest.raises(ConfigErrors, match=r"twp\.toml: file not found; pass --config"):
        config.load(tmp_path / "twp.toml")
    (tmp_path / "latin1.toml").write_bytes(b'[http]\nhost = "caf\xe9"\n')
    with pytest.raises(ConfigErrors, match=r"latin1\.toml: cannot be read"):
        config.load(tmp_path / "latin1.toml")


def test_several_mistakes_are_all_listed_one_per_line(tmp_path):
    file = tmp_path / "twp.toml"
    file.write_text('[http]\nport = "x"\n[limits]\ncompanies = 0\n[logging]\nlevel = "LOUD"\n')
    with pytest.raises(ConfigErrors) as caught:
        config.load(file)
    assert [p.path for p in caught.value.problems] == ["http.port", "limits.companies", "logging.level"]
    assert str(caught.value).count("\n") == 2


@attrs.frozen
class FakePbxConfig:
    host: str = setting(help="address of the PBX")
    port: int = setting(3199, min=1, max=65535, help="CTI port")
    password: Secret = setting(Secret(""), help="CTI password")


class FakePbx(PbxDriver):
    type_name = "fakepbx"
    Config = FakePbxConfig


class FakePbxPlugin:
    @hookimpl
    def twp_register_pbx_drivers(self, register):
        register(FakePbx)


# instance table body, key path, words
INSTANCE_MISTAKES = [
    ('driver = "mx-one"\nhost = "h"', "pbx.links.paris.driver", ['pbx driver "mx-one"', "use one of:", "fakepbx"]),
    ('driver = "fakepbx"\nhost = "h"\nport = "3199a"', "pbx.links.paris.port", ['got "3199a"', "1-65535"]),
    ('driver = "fakepbx"\nhots = "h"', "pbx.links.paris.hots", ['did you mean "host"?']),
    ('driver = "fakepbx"\nhost = "h"\ncolour = "blue"', "pbx.links.paris.colour", ["unknown key", "allowed keys here: host, password, port"]),
    (
        'driver = "fakepbx"\nhost = "h"\npassword = { env = "TWP_TEST_MISSING_VAR" }',
        "pbx.links.paris.password",
        ['"TWP_TEST_MISSING_VAR" is not set'],
    ),
    ('driver = "fakepbx"\nhost = "h"\npassword = 31415926', "pbx.links.paris.password", ["type int (not shown: it is a secret)"]),
]


@pytest.mark.parametrize(
    "body,path,words", INSTANCE_MISTAKES, ids=["not installed", "option type", "option typo", "unknown option", "env secret", "secret type"]
)
def test_instance_options_are_checked_against_the_driver_config(tmp_path, monkeypatch, body, path, words):
    monkeypatch.delenv("TWP_TEST_MISSING_VAR", raising=False)
    file = tmp_path / "twp.toml"
    file.write_text(f"[pbx.links.paris]\n{body}\n")
    kernel = Kernel.build(config.load(file), extra_plugins=[("fakepbx", FakePbxPlugin())])
    problems = kernel.config_problems()
    assert len(problems) == 1 and "\n" not in problems[0], problems
    assert problems[0].startswith(f"{file}: {path}: "), problems[0]
    for w in words:
        assert w in problems[0], problems[0]
    assert "31415926" not in problems[0]
    state = {i["name"]: i for i in kernel.instances.as_json()}["paris"]
    assert state["state"] in ("config_error", "not_installed") and state["reason"] == problems[0]


def test_a_good_instance_and_an_env_secret_are_accepted(tmp_path, monkeypatch):
    monkeypatch.setenv("TWP_TEST_PBX_PASSWORD", "s3cret-from-env")
    file = tmp_path / "twp.toml"
    file.write_text('[pbx.links.paris]\ndriver = "fakepbx"\nhost = "10.0.0.1"\npassword = { env = "TWP_TEST_PBX_PASSWORD" }\n')
    kernel = Kernel.build(config.load(file), extra_plugins=[("fakepbx", FakePbxPlugin())])
    assert kernel.config_problems() == []
    obj = kernel.instances.instances[(FakePbx.kind, "paris")].obj
    assert obj.config.password.reveal() == "s3cret-from-env" and "s3cret" not in repr(obj.config)


def test_redacted_config_hides_secret_looking_keys_and_url_passwords(tmp_path, monkeypatch):
    monkeypatch.setenv("TWP_TEST_DB_URL", "sqlite:///var/x.db")
    file = tmp_path / "twp.toml"
    file.write_text(
        '[storage]\nurl = { env = "TWP_TEST_DB_URL" }\n'
        '[auth]\ntoken_lifetime = "8h"\n'
        '[pbx.links.paris]\ndriver = "mxone"\nhost = "10.0.0.1"\npassword = "hunter2"\napi_key = "k-123"\n'
        'link = "csta://cti:pa55@10.0.0.1:2555"\ncredentials = { user = "cti", secret = "s-456" }\n'
        '[plugins.webhook]\nurl = "https://hooks.example/x"\nsecret = { env = "WEBHOOK_SECRET" }\n'
    )
    cfg = config.load(file)
    assert cfg.storage.url == "sqlite:///var/x.db"
    red = cfg.redacted()
    link = red["pbx"]["links"]["paris"]
    assert link["password"] == "***" and link["api_key"] == "***" and link["host"] == "10.0.0.1"
    assert link["link"] == "csta://cti:***@10.0.0.1:2555"
    assert link["credentials"] == {"user": "cti", "secret": "***"}
    assert red["storage"]["url"] == {"env": "TWP_TEST_DB_URL"}  # names the variable, not its value
    assert red["plugins"]["webhook"]["secret"] == {"env": "WEBHOOK_SECRET"}
    assert red["auth"]["token_lifetime"] == "8h"  # "token" in a key name is not enough to be a secret
    for secret in ("hunter2", "k-123", "pa55", "s-456"):
        assert secret not in str(red)
    assert cfg.raw["pbx"]["links"]["paris"]["password"] == "hunter2"  # the real config is untouched


def twp(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twpcore.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_twp_config_check_in_a_subprocess(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[http]\nport = "3199a"\n[pbx.links.paris]\ndriver = "fakepbx"\npassword = "hunter2-secret"\n')
    result = twp("--config", str(bad), "config", "check", cwd=tmp_path)
    assert result.returncode == 2
    assert f'{bad}: http.port: expected an integer 1-65535, got "3199a"' in result.stderr
    assert "1 problem(s)" in result.stderr and result.stdout == ""

    missing_driver = tmp_path / "driver.toml"
    missing_driver.write_text('[storage]\nurl = "postgresql+psycopg://twp:hunter2-secret@127.0.0.1:9/twp"\n'
                              '[pbx.links.paris]\ndriver = "nosuchpbx"\nhost = "10.0.0.1"\npassword = "hunter2-secret"\n')
    missing = twp("--config", str(missing_driver), "config", "check", cwd=tmp_path)
    assert missing.returncode == 2, missing
    assert f'{missing_driver}: pbx.links.paris.driver: no loaded plugin provides the pbx driver "nosuchpbx"' in missing.stderr
    assert "use one of:" in missing.stderr

    good = tmp_path / "good.toml"
    good.write_text(f'[storage]\nurl = "sqlite:///{tmp_path}/twp.db"\n[http]\nport = 3199\n')
    ok = twp("--config", str(good), "config", "check", cwd=tmp_path)
    assert ok.returncode == 0 and f"{good}: configuration OK" in ok.stdout, ok.stderr
    # Nothing printed shows a secret value.
    assert "hunter2" not in "".join(r.stdout + r.stderr for r in (result, missing, ok))
