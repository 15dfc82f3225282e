"""Real Celery worker and beat processes for integration tests (not task_always_eager)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    env = os.environ.copy()
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    env["HACENTER_TEST_DB_NAME"] = str(settings.DATABASES["default"]["NAME"])
    return env


class CeleryProcess:
    """A `celery worker` or `celery beat` subprocess in its own process group."""

    def __init__(self, *args: str, log_name: str) -> None:
        self.log_path = Path(os.environ.get("HACENTER_TEST_LOGS", "/tmp")) / log_name
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "hacenter", *args],
            cwd=ROOT,
            env=_env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL the whole process group, as when a machine or container dies."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def start_worker(name: str = "w1", concurrency: int = 4) -> CeleryProcess:
    """Start a worker on the test queue and wait until it answers a ping. Its name carries the
    test process's pid: two test runs side by side (make test runs two) share the broker, and a
    ping or an inspect by name must reach this run's worker only."""
    from hacenter.celery import app

    name = f"{name}-{os.getpid()}"
    worker = CeleryProcess(
        "worker",
        "--pool",
        "threads",
        "--concurrency",
        str(concurrency),
        "--queues",
        settings.CELERY_TASK_DEFAULT_QUEUE,
        "--hostname",
        f"{name}@%h",
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "INFO",
        log_name=f"hacenter-test-{name}.log",
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if worker.proc.poll() is not None:
            raise RuntimeError(f"worker exited; see {worker.log_path}")
        replies = app.control.ping(destination=[f"{name}@{os.uname().nodename}"], timeout=0.5)
        if replies:
            return worker
    worker.stop()
    raise RuntimeError(f"worker did not answer a ping within 60 s; see {worker.log_path}")


def start_beat() -> CeleryProcess:
    return CeleryProcess(
        "beat",
        "--loglevel",
        "INFO",
        "--schedule",
        f"/tmp/hacenter-test-beat-{os.getpid()}",
        log_name=f"hacenter-test-beat-{os.getpid()}.log",
    )


class WorkerSlot:
    """The single worker of a test that kills workers mid-job: `replace` kills it (SIGKILL, as
    when its machine dies) and starts the next one. Being the only consumer of the test queue,
    no other worker can pick a job up while the killed one is gone; the reaper (a beat task)
    runs on the replacement."""

    def __init__(self, name: str) -> None:
        self.name, self.generation = name, 0
        self.process = start_worker(name=f"{name}{self.generation}")

    def replace(self) -> None:
        self.process.kill()
        self.process.stop()  # closes its log
        self.generation += 1
        self.process = start_worker(name=f"{self.name}{self.generation}")

    def stop(self) -> None:
        self.process.stop()
