"""A newcomer's start (issue 19, observation 10): `make run` writes `.env` once, filling only
what the environment does not set; the settings never let it override the shell; the tests
never read it; the port comes from the environment."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from clusters.management.commands.init_local import broker_folders
from hacenter.local_env import write_local_env

ROOT = Path(__file__).resolve().parents[2]
LOCAL_KEYS = {"HACENTER_DEBUG", "HACENTER_SECRET_KEY", "HACENTER_FIELD_KEYS"}


def _values(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_a_first_run_writes_keys_debug_and_the_broker_readable_by_its_owner_only(tmp_path):
    env_file = tmp_path / ".env"
    written = write_local_env(env_file, {}, redis=False)
    values = _values(env_file)
    assert values == written
    assert set(values) == LOCAL_KEYS | {
        "CELERY_BROKER_URL",
        "CELERY_BROKER_TRANSPORT_OPTIONS",
        "CELERY_RESULT_BACKEND",
    }
    assert values["HACENTER_DEBUG"] == "true" and values["CELERY_BROKER_URL"] == "filesystem://"
    assert str(tmp_path / "var" / "broker") in values["CELERY_BROKER_TRANSPORT_OPTIONS"]
    assert env_file.stat().st_mode & 0o777 == 0o600
    redis = write_local_env(tmp_path / "other.env", {}, redis=True)
    assert redis["CELERY_BROKER_URL"] == "redis://127.0.0.1:6379/0"
    assert "CELERY_BROKER_TRANSPORT_OPTIONS" not in redis


def test_what_the_shell_sets_is_left_out_of_the_file(tmp_path):
    shell = {"CELERY_BROKER_URL": "redis://cache.example:6379/0", "HACENTER_DEBUG": "false"}
    written = write_local_env(tmp_path / ".env", shell, redis=True)
    # No broker line at all: not the URL, not a result backend or options to mix with it.
    assert set(written) == {"HACENTER_SECRET_KEY", "HACENTER_FIELD_KEYS"}
    assert "CELERY" not in (tmp_path / ".env").read_text()


def test_an_existing_env_file_is_never_rewritten(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("HACENTER_DEBUG=true\nCELERY_BROKER_URL=redis://mine:6379/0\n")
    before = env_file.read_bytes()
    assert write_local_env(env_file, {}, redis=False) is None
    assert env_file.read_bytes() == before


def _settings_in(module: str, env_file: Path, **env: str) -> dict[str, str]:
    """DEBUG and the broker URL as `module` computes them in a fresh process."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HACENTER_", "CELERY_"))}
    clean.update(env, DJANGO_SETTINGS_MODULE=module, HACENTER_ENV_FILE=str(env_file))
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DEBUG, s.CELERY_BROKER_URL)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=clean, cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    debug, broker = out.stdout.split()
    return {"DEBUG": debug, "broker": broker}


@pytest.fixture
def developer_env(tmp_path) -> Path:
    """A .env as `make run` writes it on a developer's machine."""
    env_file = tmp_path / ".env"
    write_local_env(env_file, {}, redis=False)
    return env_file


def test_the_settings_read_env_without_overriding_the_shell(developer_env):
    assert _settings_in("hacenter.settings", developer_env) == {
        "DEBUG": "True",
        "broker": "filesystem://",
    }
    shell = _settings_in(
        "hacenter.settings", developer_env, CELERY_BROKER_URL="redis://cache.example:6379/0"
    )
    assert shell["broker"] == "redis://cache.example:6379/0"


def test_the_test_settings_ignore_a_developers_env(developer_env):
    # HACENTER_DEBUG=true in the file would turn off what test_hardening checks.
    assert _settings_in("tests.settings", developer_env) == {
        "DEBUG": "False",
        "broker": "redis://127.0.0.1:6379/0",
    }


@pytest.mark.django_db
def test_init_local_makes_the_filesystem_brokers_folders_and_leaves_env_alone(settings, tmp_path):
    settings.BASE_DIR = tmp_path
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(tmp_path / "q"),
        "data_folder_out": str(tmp_path / "q"),
        "processed_folder": str(tmp_path / "done"),
    }
    settings.CELERY_RESULT_BACKEND = f"file://{tmp_path / 'results'}"
    call_command("init_local", stdout=io.StringIO())
    assert all((tmp_path / name).is_dir() for name in ("q", "done", "results"))
    assert not (tmp_path / ".env").exists()
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    assert broker_folders() == []


def _web_bind(environ: dict[str, str]) -> str:
    """The address the Procfile's web process binds, with the shell expanding it."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    web = next(line for line in lines if line.startswith("web:"))
    command = web.split(":", 1)[1]
    out = subprocess.run(
        ["sh", "-c", f"echo {command}"], env=environ, capture_output=True, text=True, check=True
    )
    return out.stdout.split("--bind ", 1)[1].split()[0]


def test_the_port_comes_from_the_environment_with_8000_by_default():
    assert _web_bind({"PATH": os.environ["PATH"]}) == "127.0.0.1:8000"
    assert _web_bind({"PATH": os.environ["PATH"], "HACENTER_PORT": "9000"}) == "127.0.0.1:9000"
    makefile = (ROOT / "Makefile").read_text()
    assert "PORT ?= 8000" in makefile and "HACENTER_PORT=$(PORT)" in makefile
