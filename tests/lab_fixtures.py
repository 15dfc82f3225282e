"""Pytest plugin with the lab fixtures; register with ``pytest_plugins = ["tests.lab_fixtures"]``.

- ``lab`` (session): proxy + 2 database hosts, booted fresh once per test session and removed at
  its end; skips (with the reason) where the lab cannot run: not root, no ``ip netns``, no sshd.
- ``lab_clean`` (function): the same lab with every host powered on and plugged in before the
  test, for tests that cut or power off hosts.
- ``wait_until``: poll a condition with a deadline instead of sleeping.
- ``fresh_systemd_lab`` (function): the systemd lab with wiped disks.
- ``systemd_lab`` (session): the systemd-nspawn lab of real Debian 12 servers (proxy + 2 database
  hosts on 198.19.0.0/24, fresh disks), for tests where the product installs packages itself;
  skips where it cannot run. ``HCLAB_SYSTEMD_ROOT`` overrides its data dir (default
  /var/lib/hclab-systemd); it holds ``/run/hclab-systemd.lock`` from boot to teardown.
  ``@on_debian("12", "13")`` runs a test on a lab of each release instead (Debian 13: trixie).

``HCLAB_ROOT`` overrides where host data lives (default /var/lib/hclab). The lab's names are fixed
(hclab0, hclab-*), so a lab a person brought up with ``make lab`` is replaced by the test lab, and
two test sessions (two checkouts, CI beside a developer) take turns: the ``lab`` fixture holds an
exclusive lock on ``/run/hclab.lock`` from boot to teardown.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from tests.lab import DEFAULT_ROOT, Lab
from tests.lab._util import wait_for
from tests.lab.rootfs import DEFAULT_RELEASE
from tests.lab.systemd_lab import DEFAULT_ROOT as SYSTEMD_DEFAULT_ROOT
from tests.lab.systemd_lab import SystemdLab

T = TypeVar("T")

LAB_LOCK = "/run/hclab.lock"
SYSTEMD_LAB_LOCK = "/run/hclab-systemd.lock"


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.1,
    message: str = "condition",
) -> T:
    """Return ``predicate()``'s first truthy value, failing the test after ``timeout`` seconds."""
    try:
        return wait_for(predicate, timeout, interval, message)
    except TimeoutError as exc:
        raise AssertionError(str(exc)) from None


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``lab`` marker (harmless if pyproject already does)."""
    config.addinivalue_line("markers", "lab: needs root and the network-namespace lab")


@contextlib.contextmanager
def lab_lock(path: str = LAB_LOCK) -> Iterator[None]:
    """Hold a lab (the netns one by default) for this process (tests, benchmarks); waits while
    another one holds it."""
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """A running lab: ``proxy`` 198.18.0.10, ``node1`` .11, ``node2`` .12 (fresh disks and keys)."""
    reason = Lab.preflight()
    if reason:
        pytest.skip(f"lab unavailable: {reason}")
    the_lab = Lab(n_db=2, root=os.environ.get("HCLAB_ROOT", DEFAULT_ROOT))
    with lab_lock():  # waits for another session's lab to be torn down
        try:  # a failed boot is torn down too, not left for the next run to find
            the_lab.up(fresh=True)
            yield the_lab
        finally:
            the_lab.down()


@pytest.fixture
def lab_clean(lab: Lab) -> Lab:
    """The session lab with every host powered on and its network restored."""
    lab.heal()
    return lab


@pytest.fixture
def fresh_lab(lab: Lab) -> Lab:
    """The session lab with wiped disks: every host a new server with nothing running."""
    lab.down(keep_data=False)
    lab.up(fresh=True)
    return lab


def on_debian(*releases: str) -> pytest.MarkDecorator:
    """Run the test once on a systemd lab of each Debian release ("12", "13"): it takes
    ``systemd_lab`` or ``fresh_systemd_lab`` as usual and reads the release from ``lab.release``.
    """
    return pytest.mark.parametrize(
        "systemd_lab", releases, indirect=True, ids=[f"debian{r}" for r in releases]
    )


@pytest.fixture(scope="session")
def systemd_lab(request: pytest.FixtureRequest) -> Iterator[SystemdLab]:
    """Debian hosts booting systemd: ``proxy`` 198.19.0.10, ``node1`` .11, ``node2`` .12.

    Fresh disks: nothing but a minimal Debian, sshd, sudo and the ``hcops`` admin user. apt
    works only through ``systemd_lab.apt_proxy_url``. The first run on a machine builds the
    image (about half a minute); later ones boot in seconds.

    Debian 12, unless the test is parametrized with a release (:func:`on_debian`). Labs of two
    releases share the bridge, the addresses and the lock, so only one may be up: pytest tears a
    session fixture down (lab down, lock released) before it sets it up with another parameter,
    and groups the tests by parameter, so a session boots each release's lab in turn.
    """
    reason = SystemdLab.preflight()
    if reason:
        pytest.skip(f"systemd lab unavailable: {reason}")
    root = os.environ.get("HCLAB_SYSTEMD_ROOT", SYSTEMD_DEFAULT_ROOT)
    release = getattr(request, "param", DEFAULT_RELEASE)
    # spare1 (198.19.0.21) is booted only by a test that asks for it (power_on)
    the_lab = SystemdLab(n_db=2, root=root, release=release, spares=1)
    # its own lock: it shares nothing with the namespace lab, so both may run at once
    with lab_lock(SYSTEMD_LAB_LOCK):
        try:  # a failed boot is torn down too, not left for the next run to find
            the_lab.up(fresh=True)
            yield the_lab
        finally:
            the_lab.down()


@pytest.fixture
def fresh_systemd_lab(systemd_lab: SystemdLab) -> SystemdLab:
    """The session's systemd lab with wiped disks: new servers, whatever ran there before."""
    systemd_lab.up(fresh=True)  # up() tears the running hosts down first
    return systemd_lab
