"""Configuration: the environment, else a config file private to its owner (as ssh insists)."""

import os

import pytest

from hacenter_cli.config import load
from hacenter_cli.errors import CliError, Exit
from hacenter_cli.main import main
from tests.unit.cli.fake_console import TOKEN


def write(path, text, mode):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_the_config_file_is_read_from_home(tmp_path, console, capsys):
    write(
        tmp_path / ".config/hacenter/config.toml",
        f'url = "{console.url}"\ntoken = "{TOKEN}"\n',
        0o600,
    )
    console.on("GET", "/clusters/", (200, []))
    assert main(["clusters"], {"HOME": str(tmp_path)}) == 0
    assert console.seen[0].headers["Authorization"] == f"Token {TOKEN}"


def test_the_environment_wins_over_the_file(tmp_path):
    write(tmp_path / "c.toml", 'url = "http://file.example"\ntoken = "from-file"\n', 0o600)
    config = load({"HACENTER_CONFIG": str(tmp_path / "c.toml"), "HACENTER_TOKEN": "from-env"})
    assert (config.url, config.token) == ("http://file.example", "from-env")
    assert "from-env" not in repr(config)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_config_file_others_may_read_is_refused(tmp_path, capsys, mode):
    path = write(tmp_path / "c.toml", f'url = "http://x.example"\ntoken = "{TOKEN}"\n', mode)
    assert main(["clusters"], {"HACENTER_CONFIG": str(path)}) == Exit.USAGE
    err = capsys.readouterr().err
    assert f"may be read by others (mode {mode:04o})" in err
    assert f"chmod 600 {path}" in err
    assert TOKEN not in err


def test_the_file_is_not_read_when_the_environment_has_both(tmp_path):
    path = write(tmp_path / "c.toml", "not toml at all [", 0o644)
    env = {"HACENTER_CONFIG": str(path), "HACENTER_URL": "http://x.example", "HACENTER_TOKEN": "t"}
    assert load(env).url == "http://x.example"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("url = [", "is not valid TOML"),
        ('url = "http://x.example"\ntoken = "t"\npassword = "p"\n', "unknown key(s) password"),
        ("url = 1\n", "url must be a string"),
        ('url = "x.example"\ntoken = "t"\n', "must be the console's address"),
        ('url = "http://x.example"\n', "set HACENTER_TOKEN (or url and token in"),
    ],
)
def test_bad_configuration_is_a_usage_error_that_says_what(tmp_path, text, message):
    path = write(tmp_path / "c.toml", text, 0o600)
    with pytest.raises(CliError) as raised:
        load({"HACENTER_CONFIG": str(path)})
    assert raised.value.code == Exit.USAGE
    assert message in raised.value.message


def test_nothing_configured_names_both_variables(tmp_path, capsys):
    assert main(["clusters"], {"HOME": str(tmp_path)}) == 2
    assert "set HACENTER_URL and HACENTER_TOKEN (or url and token in" in capsys.readouterr().err


@pytest.mark.parametrize("token", ["has space", "tökén", "tab\there"])
def test_a_token_that_cannot_be_one_is_refused(token):
    with pytest.raises(CliError) as raised:
        load({"HACENTER_URL": "http://x.example", "HACENTER_TOKEN": token})
    assert raised.value.code == Exit.USAGE
    assert token not in raised.value.message
