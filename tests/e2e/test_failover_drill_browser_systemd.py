"""Issue 21 part 6's acceptance, in Chromium on the systemd lab: a failover drill started from
the cluster page powers the primary off through its fence device, measures the RTO and the
RPO with the product's own writer through the proxy, powers it on and rebuilds it.

A customer's cluster (synchronous, then asynchronous) set up through the API, with a redfish
fence device on both database nodes through the lab's BMC (setup installs fence-agents on the
witness). Before the devices are tested, the page's "Run failover drill" is disabled and says
why; after both tests answer "Status: ON", an admin clicks it, types the cluster's name and
watches the job succeed. The history row says passed, with an RTO in seconds, the rows lost
(0 on the synchronous cluster; on the asynchronous one what the standby lacked, measured) and
the other node as the new primary; Patroni shows the old primary streaming again, and the BMC
saw exactly one ForceOff and one On for it.
"""

import re
import time

import pytest
from playwright.sync_api import Page, expect

from clusters.models import Cluster
from clusters.monitoring.fastpath_decisions import fastpath_decisions_read_all
from jobs.models import FailoverDrill, Job, JobStatus
from tests.conftest import wait_for
from tests.e2e.test_adopt_browser_systemd import expect_job_succeeded
from tests.e2e.test_wizard_browser import log_in
from tests.integration.conftest import (
    job_story,
    wait_for_job,
    worker,  # noqa: F401 - the fixture
)
from tests.integration.systemd_clusters import define_cluster
from tests.integration.test_fresh_servers_systemd import primary_name, run, whole
from tests.lab import sdmachine
from tests.lab.bmc import RESET_SUFFIX, LabBMC
from tests.writer import query_rows

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.lab,
    pytest.mark.django_db(transaction=True),
    # Setup through the apt proxy (~5 min), two fence tests and the drill (~1-2 min); the lab
    # fixture may first wait for another session's lab (its lock wait counts).
    pytest.mark.timeout(2400),
]
NAME = "fdrill"
PASSWORD = "sd-bmc-drill 7781"


def fence_test(api, cluster_id: int, node: str) -> Job:
    started = api.post(f"/api/v1/clusters/{cluster_id}/nodes/{node}/fence/test/")
    assert started.status_code == 202, started.content
    return wait_for_job(Job.objects.get(pk=started.json()["id"]), timeout=120)


def arm_fast_failover(api, cluster_id: int) -> None:
    """Fast failover on through the API: setup runs and installs the agent on the witness
    (a systemd unit) and its peers, armed with both tested devices."""
    answer = api.put(
        f"/api/v1/clusters/{cluster_id}/fast-failover/", {"enabled": True, "window_minutes": 60}
    )
    assert answer.status_code == 200, answer.content
    assert all(n["armed"] for n in answer.json()["nodes"]), answer.json()
    setup = wait_for_job(Job.objects.get(pk=answer.json()["job"]["id"]), timeout=600)
    assert setup.status == JobStatus.SUCCEEDED, job_story(setup)
    armed = setup.steps.get(name="fastpath", node__kind="proxy").summary
    assert "fence devices: node1, node2" in armed, armed


# The sync cluster runs the drill with the fenced fast path on (the witness's agent hands over
# as soon as the device confirms the primary off); the async one with the lease alone.
@pytest.mark.parametrize(("replication", "fast"), [("sync", True), ("async", False)])
def test_a_failover_drill_from_the_cluster_page_measures_rto_and_rpo_and_rebuilds(
    replication: str,
    fast: bool,
    page: Page,
    live_server,
    django_user_model,
    fresh_systemd_lab,
    worker,  # noqa: F811
    api,
):
    lab = fresh_systemd_lab
    began = time.monotonic()
    took: dict[str, float] = {}
    cluster_id, _login = define_cluster(api, lab, NAME, replication=replication)
    with LabBMC(lab, sdmachine.BRIDGE_ADDRESS, password=PASSWORD) as bmc:
        for node in ("node1", "node2"):
            body = bmc.fence_device(node, PASSWORD)
            defined = api.put(f"/api/v1/clusters/{cluster_id}/nodes/{node}/fence/", body)
            assert defined.status_code == 200, defined.content
        phase = time.monotonic()
        setup = run(api, cluster_id, "setup")
        assert setup.status == JobStatus.SUCCEEDED, setup.error
        took["setup"] = time.monotonic() - phase
        cluster = Cluster.objects.get(pk=cluster_id)
        secret = cluster.secrets.get(name="superuser").value
        dsn = f"postgresql://postgres:{secret}@{lab.proxy.address}:5432/postgres"
        wait_for(lambda: whole(lab, dsn, replication), 60, "the cluster to take writes")
        primary = primary_name(lab)
        standby = "node2" if primary == "node1" else "node1"

        # Untested devices: the button is there, disabled, with the reason; the API agrees.
        log_in(page, live_server, django_user_model)
        page.goto(f"{live_server.url}/clusters/{cluster_id}/")
        expect(page.locator("#off-failover-drill")).to_contain_text("never tested")
        listed = api.get(f"/api/v1/clusters/{cluster_id}/failover-drills/").json()
        assert "never tested" in listed["why_not"] and listed["drills"] == [], listed

        for node in ("node1", "node2"):
            tested = fence_test(api, cluster_id, node)
            assert tested.status == JobStatus.SUCCEEDED, job_story(tested)
        assert all(method == "GET" for method, _, _ in bmc.requests), bmc.requests
        if fast:
            phase = time.monotonic()
            arm_fast_failover(api, cluster_id)
            took["fast failover on (setup)"] = time.monotonic() - phase
        # A wrong confirmation starts nothing.
        wrong = api.post(f"/api/v1/clusters/{cluster_id}/failover-drills/", {"confirm": "pg"})
        assert wrong.status_code == 400 and "repeat the cluster's name" in wrong.json()["error"]
        assert not Job.objects.filter(kind="failover_drill").exists()

        # The drill, from the page.
        page.goto(f"{live_server.url}/clusters/{cluster_id}/")
        page.locator("#failover-drill ~ .actions").get_by_role(
            "link", name="Run failover drill"
        ).click()
        expect(page.locator(".consequence")).to_contain_text("powered off through its fence")
        page.locator("#confirm-name").fill(NAME)
        phase = time.monotonic()
        page.get_by_role("button", name="Yes, power the primary off").click()
        expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
        expect_job_succeeded(page)
        took["failover drill job"] = time.monotonic() - phase
        resets = [(path, kind) for method, path, kind in bmc.requests if method == "POST"]
    job = Job.objects.get(pk=int(re.search(r"/jobs/(\d+)/", page.url).group(1)))
    assert job.kind == "failover_drill" and job.requested_by.username == "admin"
    for step in job.steps.order_by("position"):
        print(f"  {step.name}: {step.elapsed_s or 0:.1f} s, {step.summary}")
    # Exactly one ForceOff and one On, both to the old primary's system.
    target = bmc.systems_uri(primary) + RESET_SUFFIX
    assert resets == [(target, "ForceOff"), (target, "On")], resets

    drill = FailoverDrill.objects.get(job=job)
    assert drill.outcome == "passed", drill.message
    assert (drill.primary_before, drill.primary_after) == (primary, standby)
    assert drill.replication == replication
    assert drill.rto_s is not None and drill.rto_s > 0, drill.rto_s
    assert drill.outage_s is not None and drill.outage_s > 0
    assert drill.acknowledged > 40 and drill.rpo_rows is not None
    if replication == "sync":  # the synchronous standby had every acknowledged row
        assert drill.rpo_rows == 0, (drill.acknowledged, drill.rpo_rows)
    else:  # what the standby had not received when the power went: measured, not promised
        assert drill.rpo_rows <= drill.acknowledged
    assert drill.powered_off_at <= drill.off_confirmed_at <= drill.first_write_at

    # The history row on the page.
    page.goto(f"{live_server.url}/clusters/{cluster_id}/")
    row = page.locator(f'#failover-drill-history tr[data-drill="{drill.pk}"]')
    expect(row).to_have_attribute("data-outcome", "passed")
    expect(row.locator('td[data-label="RTO"]')).to_have_text(re.compile(r"^\d+\.\d s$"))
    rows = f"{drill.rpo_rows} row{'' if drill.rpo_rows == 1 else 's'} of {drill.acknowledged}"
    expect(row.locator('td[data-label="RPO"]')).to_contain_text(f"{rows} ({replication})")
    expect(row.locator('td[data-label="Primary"]')).to_have_text(f"{primary} → {standby}")
    answer = api.get(f"/api/v1/clusters/{cluster_id}/failover-drills/").json()
    assert answer["drills"][0]["rto_s"] == drill.rto_s
    assert answer["drills"][0]["rpo_rows"] == drill.rpo_rows

    # Whole again: the other node leads, the old primary streams, writes go through.
    wait_for(
        lambda: primary_name(lab) == standby and whole(lab, dsn, replication),
        60,
        f"{standby} to lead and {primary} to stream",
    )
    # The device's password is in no log line; the agent itself confirmed the off and the on.
    assert not job.log_lines.filter(text__contains=PASSWORD).exists()
    assert not job.log_lines.filter(text__contains="the agent did not confirm").exists()
    # The drill's rows were counted, then removed.
    assert query_rows(dsn, "SELECT count(*) FROM hacenter.failover_drill") == [(0,)]
    if fast:  # the agent handed over, and the console read its decision
        fastpath_decisions_read_all()
        decided = api.get(f"/api/v1/clusters/{cluster_id}/fast-failover/").json()["decisions"]
        assert [d["outcome"] for d in decided] == ["acted"], decided
        print(f"fast path: {decided[0]['sentence']} {decided[0]['timings_ms']}")

    print(
        f"\n{replication}{' (fast path)' if fast else ''} failover drill RTO: {drill.rto_s:.1f} s "
        f"(writes stopped {drill.outage_s:.1f} s), "
        f"RPO {drill.rpo_rows} of {drill.acknowledged} acknowledged rows; "
        f"{primary} → {standby}"
    )
    took["whole test"] = time.monotonic() - began
    for what, seconds in took.items():
        print(f"  {what}: {seconds:.0f} s")
