"""Issue 16's acceptance, in Chromium on the systemd lab: a customer's live database and the
application in front of it are taken over from the wizard, and survive a power-off of the
primary.

The customer's day before HA Center: Debian's PostgreSQL 15 on node1 with a pgbench database
(tests/integration/test_adopt_database_systemd.py's ``install_customer_postgres``), and their
HTTP service (tests/lab/sample_app.py: every ``POST /write`` inserts a row through the local
PostgreSQL) as an enabled systemd unit on both database nodes. Then an admin, in the browser:
the wizard with "Use the database already on the master", the lab's APT proxy and synchronous
replication; servers, host keys, preflight (which describes the server it will take over);
the application step (proxy :80 → the app's port, its health path, its unit); review; Launch.

Afterwards users write through the proxy's :80 while the primary loses power: they see a gap,
then go on on the standby; every write the application acknowledged is in the database; the
old primary is rebuilt from the cluster page; the data is the same on every node; and at each
checkpoint the application runs on the primary only.
"""

import re
import time
from itertools import pairwise

import pytest
from playwright.sync_api import Page, expect

from clusters.models import Cluster, NodeStatus
from jobs.models import Job
from tests.conftest import wait_for
from tests.e2e.test_wizard_browser import log_in
from tests.integration.conftest import (
    job_story,
    worker,  # noqa: F401 - the fixture
)
from tests.integration.test_adopt_database_systemd import (
    APP_PASSWORD,
    DATA_DIR,
    app_logs_in,
    checksums,
    install_customer_postgres,
    psql,
)
from tests.integration.test_application_systemd import Users, post_write
from tests.integration.test_fresh_servers_systemd import primary_name, unit_state
from tests.lab import sample_app
from tests.workers import start_beat

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.lab,
    pytest.mark.django_db(transaction=True),
    # Installing the customer's PostgreSQL, preflight and setup through the apt proxy, a
    # failover and a rebuild take ~10 min; the lab fixture may first wait for another
    # session's lab (its lock wait counts against the timeout).
    pytest.mark.timeout(3600),
]
NAME = "shop"
JOB_TIMEOUT_MS = 900_000
TERMINAL = re.compile("^(succeeded|failed|errored|canceled|lost)$")
USERS = 3  # threads writing through the proxy's :80 at once
ROWS_SQL = (
    "SELECT count(*) || ' ' || md5(string_agg(id || ':' || node, ',' ORDER BY id)) FROM sample_rows"
)


def app_states(lab) -> dict[str, str]:
    """The application unit's boot setting and state on each database node ("off": no power)."""
    return {
        host: unit_state(lab, host, sample_app.UNIT) if lab.is_powered(host) else "off"
        for host in ("node1", "node2")
    }


def assert_app_only_on(lab, primary: str) -> None:
    """The checkpoint: Patroni's primary runs the application; no other node does."""
    assert primary_name(lab) == primary
    states = app_states(lab)
    assert states[primary] == "disabled/active", states
    others = {h: s for h, s in states.items() if h != primary}
    assert all(s in ("disabled/inactive", "off") for s in others.values()), states


def observed_role(node: str) -> str | None:
    status = NodeStatus.objects.filter(node__cluster__name=NAME, node__name=node).first()
    return status.role if status else None


def stored_ids(lab, host: str) -> set[int]:
    """Every row id the application wrote, as `host`'s PostgreSQL has them."""
    out = psql(lab, host, "SELECT id FROM sample_rows", database="postgres")
    return {int(line) for line in out.split()}


def rows_checksum(lab, host: str) -> str:
    return psql(lab, host, ROWS_SQL, database="postgres")


def run_adopt_wizard(page: Page, lab) -> None:
    """Steps 1-6 as the customer's admin fills them; ends on the setup job's page."""
    page.get_by_role("link", name="New cluster").click()
    page.get_by_label("Cluster name").fill(NAME)
    expect(page.get_by_label("PostgreSQL version")).to_have_value("15")
    page.get_by_label(re.compile(r"^\s*Synchronous")).check()  # not "Asynchronous"
    page.get_by_label("Client networks").fill("198.19.0.1/32")  # the test runner's address
    # Their application already has its database and role, which the wizard's defaults
    # (app/app) name too: preflight warns, and setup keeps the role's password as it was.
    page.get_by_label("APT proxy").fill(lab.apt_proxy_url)
    page.get_by_label("Use the database already on the master").check()
    page.get_by_role("button", name="Next: servers").click()

    for i, host in enumerate(("node1", "node2", "proxy")):
        page.get_by_label(f"Address of server {i + 1}").fill(lab.host(host).address)
    page.get_by_label("Credential name").fill("lab-root")
    page.get_by_label("SSH user").fill("root")
    page.get_by_label("Private key (paste)").fill(lab.private_key_text)
    page.get_by_role("button", name="Save credential").click()
    expect(page.get_by_text("Credential lab-root saved")).to_be_visible()
    page.get_by_role("button", name="Next: scan host keys").click()

    for host in ("node1", "node2", "proxy"):
        expect(page.get_by_text(lab.host_key_fingerprint(host))).to_be_visible()
        page.get_by_label(f"I checked the fingerprint of {host}").check()
    page.get_by_role("button", name="Trust these keys and run preflight").click()

    # Preflight describes the server it will take over; its warnings need the admin's tick.
    results = page.locator("#wizard-preflight")
    expect(results).to_have_attribute(
        "data-verdict", re.compile("passed|warnings|errors"), timeout=600_000
    )
    verdict = results.get_attribute("data-verdict")
    assert verdict == "warnings", results.inner_text()  # the postgres password is always one
    inspection = results.locator("li.check", has_text="The master's PostgreSQL, to take over")
    expect(inspection).to_have_class(re.compile("check-warning"))
    expect(inspection).to_contain_text("on node1")
    expect(inspection).to_contain_text("PostgreSQL 15.")
    expect(inspection).to_contain_text(f"data {DATA_DIR}")
    expect(inspection).to_contain_text("postgres role's password")
    expect(inspection).to_contain_text("application role app already exists")
    assert APP_PASSWORD not in page.content()
    page.get_by_label("I read the warnings and want to go on").check()
    page.get_by_role("button", name="Next: application").click()

    expect(page.get_by_role("heading", name="The application")).to_be_visible()
    page.get_by_label("Port on the proxy, frontend 1").fill("80")
    page.get_by_label("Application port on the database servers, frontend 1").fill(
        str(sample_app.PORT)
    )
    page.get_by_label("Health check path, frontend 1").fill("/health")
    page.get_by_label("The application's systemd unit").fill(sample_app.UNIT)
    page.get_by_role("button", name="Next: review").click()

    expect(page.get_by_role("heading", name="Review and launch")).to_be_visible()
    review = page.locator("dl.review")
    expect(review).to_contain_text("synchronous (no data loss on failover)")
    expect(review).to_contain_text(f"through the APT proxy {lab.apt_proxy_url}")
    expect(review).to_contain_text(f"proxy :80 → primary :{sample_app.PORT} (checks /health)")
    expect(review).to_contain_text(f"unit {sample_app.UNIT} runs on the primary only")
    expect(review).to_contain_text("take over the PostgreSQL already running on the master")
    page.get_by_role("button", name="Launch").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))


def expect_job_succeeded(page: Page) -> None:
    """The job page ends in "succeeded"; any other end fails at once, with the job's story."""
    status = page.locator("[data-status]")
    expect(status).to_have_attribute("data-status", TERMINAL, timeout=JOB_TIMEOUT_MS)
    if status.get_attribute("data-status") != "succeeded":
        job = Job.objects.get(pk=int(re.search(r"/jobs/(\d+)/", page.url).group(1)))
        pytest.fail(f"{job.kind} #{job.pk} {job.status}: {job.error}\n{job_story(job)}")


def report(users: list[Users], cut: float) -> tuple[float, float]:
    """Print what the users saw; returns (longest gap between two successful writes, seconds
    from the power-off to the first write on the new primary)."""
    ok = sorted(at for u in users for at, _, _ in u.ok)
    failed = [at for u in users for at in u.failed]
    gap = max(b - a for a, b in pairwise(ok))
    first_after = min(at for u in users for at, n, _ in u.ok if n == "node2" and at > cut) - cut
    print(
        f"\napplication users ({len(users)} threads on :80): {len(ok)} writes succeeded, "
        f"{len(failed)} failed ({sum(at > cut for at in failed)} after the power-off); "
        f"longest gap between two successful writes {gap:.1f} s; first write on the new "
        f"primary {first_after:.1f} s after the power-off"
    )
    return gap, first_after


def test_wizard_adopts_a_live_database_and_its_application_through_a_primary_power_off(
    page: Page,
    live_server,
    django_user_model,
    fresh_systemd_lab,
    worker,  # noqa: F811
):
    lab = fresh_systemd_lab
    page.set_viewport_size({"width": 1280, "height": 800})

    # The customer's state: their PostgreSQL 15 with pgbench data on node1, their application
    # enabled on both database nodes (on node2 it runs, without a database to write to).
    install_customer_postgres(lab, scale=5)
    for host in ("node1", "node2"):
        sample_app.install(lab, host)
    first = wait_for(
        lambda: post_write(f"http://{lab.host('node1').address}:{sample_app.PORT}/write"),
        30,
        "the customer's application to write on node1",
    )
    assert first["node"] == "node1", first
    assert app_states(lab) == {"node1": "enabled/active", "node2": "enabled/active"}
    before = checksums(lab, "node1")
    assert set(before) >= {"pgbench_accounts", "pgbench_history", "docs", "large objects"}

    # The wizard, then the setup job it launches.
    log_in(page, live_server, django_user_model)
    run_adopt_wizard(page, lab)
    expect_job_succeeded(page)
    cluster = Cluster.objects.get(name=NAME)
    assert cluster.adopt_database and cluster.replication == "sync"
    assert cluster.adopted_from["data_dir"] == DATA_DIR, cluster.adopted_from
    print(f"\ntake-over: {cluster.adopted_from.get('outage_s')} s refused")

    # Checkpoint 1, after setup: the customer's data everywhere, their password unchanged, the
    # application on the primary only.
    assert_app_only_on(lab, "node1")
    for host in ("node1", "node2"):
        wait_for(lambda h=host: checksums(lab, h) == before, 60, f"{host} to hold the data")
    assert app_logs_in(lab.proxy.address) == 40  # the customer's own role, through HAProxy

    url = f"http://{lab.proxy.address}:80/write"
    proxied = wait_for(lambda: post_write(url), 60, "a write through the proxy's :80")
    assert proxied["node"] == "node1", proxied
    beat = start_beat()  # the monitor: the cluster page follows the failover
    users = [Users(url) for _ in range(USERS)]
    try:
        for u in users:
            u.start()
        wait_for(lambda: all(len(u.ok) >= 10 for u in users), 30, "users writing through :80")

        # The primary loses power; users go on on node2 after a gap.
        cut = time.monotonic()
        lab.power_off("node1")
        off = time.monotonic()  # a write in flight may still be answered until here
        wait_for(
            lambda: all(any(n == "node2" and at > cut for at, n, _ in u.ok) for u in users),
            180,
            "every user writing on node2 through :80",
        )
        time.sleep(3)  # a few more writes on the new primary
        for u in users:
            u.stop()
        gap, first_after = report(users, cut)
        assert first_after < 120 and gap < 120

        # Checkpoint 2, after the failover: sync replication lost no acknowledged write, and
        # the application runs on the new primary only (node1 has no power).
        acknowledged = {row_id for u in users for _, _, row_id in u.ok}
        missing = acknowledged - stored_ids(lab, "node2")
        assert not missing, f"{len(missing)} acknowledged writes lost: {sorted(missing)[:20]}"
        for u in users:  # one database took the writes at a time
            after = [n for at, n, _ in u.ok if at > off]
            assert after == ["node2"] * len(after), after
            ids = [row_id for _, _, row_id in u.ok]
            assert ids == sorted(ids), "row ids went back: a write landed on a second database"
        assert_app_only_on(lab, "node2")
        wait_for(lambda: observed_role("node2") == "primary", 120, "the monitor to see node2 lead")
        page.goto(f"{live_server.url}/clusters/{cluster.pk}/")
        expect(page.locator(".topo-primary")).to_contain_text("node2")

        # Power node1 on; it boots with Patroni, not with the application.
        lab.power_on("node1")
        wait_for(lambda: app_states(lab)["node1"] == "disabled/inactive", 60, "node1 booted")
        assert_app_only_on(lab, "node2")

        # Rebuild the old primary from its row on the cluster page.
        page.goto(f"{live_server.url}/clusters/{cluster.pk}/")
        row = page.locator('tr[data-node="node1"]')
        row.get_by_role("link", name="Rebuild as standby").click()
        page.get_by_role("button", name="Yes, rebuild").click()
        expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
        expect_job_succeeded(page)
    finally:
        for u in users:
            u.stop()
        beat.stop()

    # Checkpoint 3, after the rebuild: the same data on every node, the application on the
    # primary only.
    rows = rows_checksum(lab, "node2")
    for host in ("node1", "node2"):
        wait_for(lambda h=host: checksums(lab, h) == before, 120, f"{host}'s pgbench data")
        wait_for(lambda h=host: rows_checksum(lab, h) == rows, 120, f"{host}'s application rows")
    assert acknowledged <= stored_ids(lab, "node1")
    assert_app_only_on(lab, "node2")
    assert app_logs_in(lab.proxy.address) == 40
