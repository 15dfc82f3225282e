"""The application in front of the cluster follows the primary, on the systemd lab.

The vendor manual's picture: users reach an HTTP service through the proxy's :80, the service
runs on the master only ("the Slave stays idle"), and on the slave once it took over. Here the
customer's application (tests/lab/sample_app.py, a unit enabled and running on both database
nodes) is put behind a frontend 80 → 8080 with its own health path, and its unit follows the
primary through Patroni's callbacks; a switchover moves it, and users on :80 keep writing.
"""

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import pytest

from jobs.models import JobStatus
from tests.conftest import wait_for
from tests.integration.systemd_clusters import define_cluster
from tests.integration.test_fresh_servers_systemd import primary_name, run, sh, steps, unit_state
from tests.lab import sample_app
from tests.lab_fixtures import on_debian
from tests.workers import start_beat

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

NAME = "appfront"
UNIT = sample_app.UNIT


def define(api, lab) -> int:
    """The cluster through the API, with the application's frontend and unit."""
    frontend = {"listen_port": 80, "app_port": sample_app.PORT, "check_path": "/health"}
    cluster_id, _ = define_cluster(api, lab, NAME, http_frontends=[frontend], application_unit=UNIT)
    return cluster_id


def post_write(url: str, timeout: float = 2.0) -> dict | None:
    """One user's write through the proxy: the app's answer, or None when it failed."""
    try:
        request = urllib.request.Request(url, data=b"", method="POST")  # noqa: S310 - lab URL
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            return json.loads(resp.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


@dataclass(eq=False)  # a thread: hashed by identity
class Users(threading.Thread):
    """Writes through the proxy's :80 every 50 ms, counting successes and failures."""

    url: str
    ok: list[tuple[float, str, int]] = field(default_factory=list)  # (at, node, id)
    failed: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(daemon=True, name="app-users")
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            answer = post_write(self.url)
            now = time.monotonic()
            if answer is None:
                self.failed.append(now)
            else:
                self.ok.append((now, answer["node"], answer["id"]))
            self._stop_event.wait(0.05)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


def where_running(lab) -> dict[str, str]:
    return {host: unit_state(lab, host, UNIT) for host in ("node1", "node2")}


@pytest.mark.timeout(2400)
@on_debian("12")
def test_application_follows_the_primary_through_a_switchover(fresh_systemd_lab, worker, api):
    lab = fresh_systemd_lab
    for host in ("node1", "node2"):
        sample_app.install(lab, host)  # the customer's state: running everywhere, at boot too
    assert where_running(lab) == {"node1": "enabled/active", "node2": "enabled/active"}
    cluster_id = define(api, lab)

    setup = run(api, cluster_id, "setup")
    found = steps(setup)
    assert setup.status == JobStatus.SUCCEEDED, (setup.error, [s.summary for s in found.values()])
    print("\n".join(f"{k}: {s.summary}" for k, s in found.items() if "application" in k[1]))
    primary = primary_name(lab)
    standby = "node2" if primary == "node1" else "node1"
    assert where_running(lab) == {primary: "disabled/active", standby: "disabled/inactive"}
    assert (
        sh(lab, primary, f"visudo -c -q -f /etc/sudoers.d/hacenter-{NAME}-app && echo ok") == "ok"
    )

    url = f"http://{lab.proxy.address}:80/write"
    first = wait_for(lambda: post_write(url), 60, "a write through the proxy's :80")
    assert first["node"] == primary, first

    beat = start_beat()
    users = Users(url)
    users.start()
    try:
        wait_for(lambda: len(users.ok) >= 20, 30, "users writing through :80")
        started = time.monotonic()
        switchover = run(api, cluster_id, "switchover", timeout=300, node=standby)
        assert switchover.status == JobStatus.SUCCEEDED, switchover.error
        wait_for(
            lambda: any(node == standby and at > started for at, node, _ in users.ok),
            60,
            f"writes through :80 served by {standby}",
        )
        time.sleep(2)  # a few more writes on the new primary
    finally:
        users.stop()
        beat.stop()
    during = [at for at in users.failed if at > started]
    on_new = [at for at, node, _ in users.ok if node == standby and at > started]
    last_old = max(at for at, node, _ in users.ok if node == primary)
    gap = min(on_new) - last_old
    print(
        f"switchover {primary} -> {standby}: {len(users.ok)} writes succeeded, "
        f"{len(users.failed)} failed ({len(during)} after the switchover started); "
        f"no write succeeded for {gap:.1f} s"
    )
    assert primary_name(lab) == standby
    assert where_running(lab) == {standby: "disabled/active", primary: "disabled/inactive"}
    # Users never reached the old primary's application after the new one answered.
    assert all(node == standby for at, node, _ in users.ok if at > min(on_new))
    ids = [row_id for _, _, row_id in users.ok]
    assert ids == sorted(ids), "row ids went back: a write landed on a second database"
    journal = sh(lab, standby, "journalctl -t hacenter-app --no-pager -o cat", check=False)
    assert f"{UNIT}: start done (on_role_change, role primary)" in journal, journal

    # The console's view: the frontend routes to the new primary.
    def routed() -> dict:
        detail = api.get(f"/api/v1/clusters/{cluster_id}/").json()
        frontends = detail.get("application", {}).get("frontends", [])
        return detail if frontends and frontends[0]["routes_to"] == [standby] else {}

    beat = start_beat()
    try:
        detail = wait_for(routed, 60, f"the API to show :80 routed to {standby}")
    finally:
        beat.stop()
    assert detail["application"]["unit"] == UNIT

    # Removing the cluster takes our files away and gives the unit its boot setting back.
    removal = run(api, cluster_id, "remove_cluster", timeout=300, confirm=NAME)
    assert removal.status == JobStatus.SUCCEEDED, removal.error
    for host in ("node1", "node2"):
        left = sh(lab, host, f"ls /etc/sudoers.d/ /usr/local/lib/hacenter/ | grep {NAME} || true")
        assert left == "", (host, left)
        assert unit_state(lab, host, UNIT).startswith("enabled/"), host
