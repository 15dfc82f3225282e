"""`hacenter` run as its own process against a live console (pytest-django's live_server), as
a user runs it: the console's address and an admin's API token in its environment."""

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from clusters.access.roles import assign_role
from clusters.models import ApiToken

ROOT = Path(__file__).resolve().parents[2]
PROXY_VARIABLES = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
)


@dataclass
class Followed:
    """What `hacenter logs JOB --follow` printed, and when each line reached us."""

    code: int
    lines: list[tuple[float, str]] = field(default_factory=list)
    stderr: str = ""

    @property
    def texts(self) -> list[str]:
        return [text for _, text in self.lines]


class Cli:
    """`python -m hacenter_cli` from this checkout (what the `hacenter` script runs), with the
    live console's address and a token in its environment, as a user's shell would have them."""

    def __init__(self, url: str, token: str, home: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
        self.env.update(
            HACENTER_URL=url, HACENTER_TOKEN=token, HOME=str(home), PYTHONPATH=str(ROOT)
        )
        self.env.pop("HACENTER_CONFIG", None)
        self.token = token

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "hacenter_cli", *args]

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        done = subprocess.run(
            self.command(*args),
            env=self.env,
            cwd="/",  # the package comes from PYTHONPATH, not from the working directory
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert self.token not in done.stdout + done.stderr
        return done

    def follow(self, job_id: int, timeout: float) -> Followed:
        """Run `logs JOB --follow`, stamping each line as it arrives on the pipe."""
        process = subprocess.Popen(
            self.command("logs", str(job_id), "--follow", "--interval", "0.2"),
            env=self.env,
            cwd="/",
            stdout=subprocess.PIPE,  # bytes: a '\r' in a line (apt's progress) must not split it
            stderr=subprocess.PIPE,
        )
        followed = Followed(code=-1)
        errors: list[str] = []

        def read_stdout() -> None:
            for raw in process.stdout:
                text = raw.decode("utf-8", "replace").rstrip("\n")
                followed.lines.append((time.time(), text))

        readers = [
            threading.Thread(target=read_stdout),
            threading.Thread(
                target=lambda: errors.append(process.stderr.read().decode("utf-8", "replace"))
            ),
        ]
        for reader in readers:
            reader.start()
        try:
            followed.code = process.wait(timeout)
        finally:
            process.kill()
            for reader in readers:
                reader.join(10)
        followed.stderr = "".join(errors)
        assert self.token not in followed.stderr + "\n".join(followed.texts)
        return followed


def admin_cli(live_server, user_model, home: Path) -> Cli:
    """The command line of an admin of the live console (a token made as the API makes it)."""
    admin = user_model.objects.create_user("cli-admin", password="pw-cli-admin-1")
    assign_role(admin, "admin")
    return Cli(live_server.url, ApiToken.issue(admin, name="cli test"), home)
