"""Where the console is and the token to use: the environment first, then a config file.

`HACENTER_URL` and `HACENTER_TOKEN` override `url` and `token` in
`~/.config/hacenter/config.toml` (`$XDG_CONFIG_HOME/hacenter/config.toml` when that is set;
`HACENTER_CONFIG` names another file). The file holds a token, so like ssh with a private key
we refuse one that the group or others may read, or that another user owns.
"""

import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from hacenter_cli.errors import CliError, Exit

KEYS = ("url", "token")


@dataclass(frozen=True)
class Config:
    """The console's base URL (no trailing slash, no /api/v1) and the API token."""

    url: str
    token: str = field(repr=False)  # never in a repr, a traceback or a message

    @property
    def api(self) -> str:
        return f"{self.url}/api/v1"


def default_path(env: dict[str, str]) -> Path:
    if env.get("HACENTER_CONFIG"):
        return Path(env["HACENTER_CONFIG"])
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "hacenter" / "config.toml"


def read_file(path: Path) -> dict[str, str]:
    """`url` and `token` from a TOML file private to its owner; {} when there is no file."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CliError(Exit.USAGE, f"cannot read {path}: {exc.strerror}") from None
    if info.st_uid != os.getuid():
        raise CliError(
            Exit.USAGE, f"{path} belongs to another user; it holds your token: refusing it"
        )
    if info.st_mode & 0o077:
        mode = stat.S_IMODE(info.st_mode)
        raise CliError(
            Exit.USAGE,
            f"{path} may be read by others (mode {mode:04o}); it holds a token, so it must be "
            f"private: chmod 600 {path}",
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(Exit.USAGE, f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CliError(Exit.USAGE, f"{path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise CliError(
            Exit.USAGE, f"{path}: unknown key(s) {', '.join(unknown)}; it takes url and token"
        )
    for key, value in data.items():
        if not isinstance(value, str):
            raise CliError(Exit.USAGE, f"{path}: {key} must be a string")
    return data


def base_url(raw: str, where: str) -> str:
    """The console's address as given, checked: http(s)://host[:port][/prefix]."""
    url = raw.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise CliError(
            Exit.USAGE, f"{where} must be the console's address, e.g. https://hacenter.example"
        )
    # Accept the API's own address too, as users copy it from the README's curl lines.
    return url.removesuffix("/api/v1")


def load(env: dict[str, str] | None = None) -> Config:
    """The configuration, the environment winning over the file; a clear error when either
    value is missing. The file is only read when the environment lacks something."""
    env = dict(os.environ) if env is None else env
    values = {key: env.get(f"HACENTER_{key.upper()}", "") for key in KEYS}
    where = {key: f"HACENTER_{key.upper()}" for key in KEYS}
    path = default_path(env)
    if not all(values.values()):
        from_file = read_file(path)
        for key in KEYS:
            if not values[key] and from_file.get(key):
                values[key], where[key] = from_file[key], f"{key} in {path}"
    missing = [f"HACENTER_{key.upper()}" for key in KEYS if not values[key]]
    if missing:
        raise CliError(
            Exit.USAGE,
            f"set {' and '.join(missing)} (or url and token in {path}, mode 600)",
        )
    token = values["token"].strip()
    # Tokens are URL-safe ASCII; anything else cannot go into an HTTP header anyway.
    if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        raise CliError(
            Exit.USAGE, f"{where['token']} is not an API token (spaces or non-ASCII characters)"
        )
    return Config(url=base_url(values["url"], where["url"]), token=token)
