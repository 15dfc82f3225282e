"""Issue 22 part 3's acceptance, in Chromium on the systemd lab: a restore drill started from
the cluster page, its RTO recorded.

A customer's cluster with backups (the repository on the proxy) set up through the API,
pgbench data, a full backup, and the lab's spare server as the drill server (scanned first, no
member of any cluster). Before the drill server is set, the page's "Run restore drill" is
disabled and says why. Then, while a writer goes on inserting through the proxy into one of the
checked tables, an operator clicks "Run restore drill", confirms, and watches the job succeed:
the copy on spare1 holds exactly what the primary held at the drill's restore point. The
history row says passed with an RTO; on spare1 the drill's directory is gone and no PostgreSQL
runs.
"""

import re
import time

import pytest
from playwright.sync_api import Page, expect

from clusters.models import Cluster
from jobs.models import Job, JobStatus, RestoreDrill
from tests.conftest import wait_for
from tests.e2e.test_adopt_browser_systemd import expect_job_succeeded
from tests.e2e.test_wizard_browser import log_in
from tests.integration.conftest import worker  # noqa: F401 - the fixture
from tests.integration.systemd_clusters import POSTGRES, define_cluster, scanned
from tests.integration.test_fresh_servers_systemd import primary_name, run, sh, whole
from tests.writer import ProxyWriter

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.lab,
    pytest.mark.django_db(transaction=True),
    # Setup through the apt proxy, backups, a backup and the drill take ~8 min; the lab
    # fixture may first wait for another session's lab (its lock wait counts).
    pytest.mark.timeout(2400),
]
NAME = "dr"
PGBENCH = "cd / && runuser -u postgres -- pgbench -h /run/postgresql"
TABLES = ["pgbench_accounts", "pgbench_history", "writer_ledger"]


def test_a_restore_drill_from_the_cluster_page_passes_and_records_its_rto(
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

    def lap(what: str, since: float) -> None:
        took[what] = time.monotonic() - since

    cluster_id, login = define_cluster(api, lab, NAME)
    policy = api.put(
        f"/api/v1/clusters/{cluster_id}/backups/",
        # No schedule: the test starts every backup and drill itself.
        {"retention_full": 1, "full_every_hours": 0, "diff_every_hours": 0},
    )
    assert policy.status_code == 200, policy.content
    assert policy.json()["drill_server"] is None and policy.json()["drills"] == []
    phase = time.monotonic()
    setup = run(api, cluster_id, "setup")
    assert setup.status == JobStatus.SUCCEEDED, setup.error
    lap("setup", phase)
    cluster = Cluster.objects.get(pk=cluster_id)
    secret = cluster.secrets.get(name="superuser").value
    dsn = f"postgresql://postgres:{secret}@{lab.proxy.address}:5432/postgres"
    wait_for(lambda: whole(lab, dsn), 60, "the cluster to take writes")
    phase = time.monotonic()
    configured = run(api, cluster_id, "configure_backups")
    assert configured.status == JobStatus.SUCCEEDED, configured.error
    lap("configure_backups", phase)

    primary = primary_name(lab)
    sh(lab, primary, f"{PGBENCH} -q -i -s 5 postgres")
    sh(lab, primary, f"{PGBENCH} -T 5 -c 2 postgres")
    phase = time.monotonic()
    full = run(api, cluster_id, "backup", backup_type="full")
    assert full.status == JobStatus.SUCCEEDED, full.error
    lap("full backup", phase)
    sh(lab, primary, f"{PGBENCH} -T 5 -c 2 postgres")  # WAL after the backup to replay

    # Before a drill server is set the button is there, disabled, with the reason.
    log_in(page, live_server, django_user_model)
    page.goto(f"{live_server.url}/clusters/{cluster_id}/")
    expect(page.locator("#off-restore-drill")).to_contain_text("set a drill server first")

    # A member of the cluster is refused as the drill server; spare1, scanned, is taken.
    node1 = lab.host("node1").address
    member = api.put(
        f"/api/v1/clusters/{cluster_id}/backups/",
        {
            "drill_address": node1,
            "drill_credential": login,
            "drill_host_key_fingerprint": scanned(api, lab, "node1"),
        },
    )
    assert member.status_code == 400, member.content
    assert "member of a cluster" in str(member.json()), member.json()
    lab.power_on("spare1")
    spare = lab.host("spare1").address
    drill_server = {
        "drill_address": spare,
        "drill_credential": login,
        "drill_host_key_fingerprint": scanned(api, lab, "spare1"),
        "drill_tables": TABLES,
    }
    answer = api.put(f"/api/v1/clusters/{cluster_id}/backups/", drill_server)
    assert answer.status_code == 200, answer.content
    assert answer.json()["drill_server"]["address"] == spare
    assert lab.private_key_text not in answer.content.decode()

    # The drill, from the page, while a writer inserts into a checked table through the proxy.
    writer = ProxyWriter(dsn)
    writer.start()
    try:
        wait_for(lambda: len(writer.acks) > 20, 30, "the writer's first rows")
        page.goto(f"{live_server.url}/clusters/{cluster_id}/")
        section = page.locator("#restore-drill ~ .actions")
        section.get_by_role("link", name="Run restore drill").click()
        expect(page.locator(".consequence")).to_contain_text("restore point")
        phase = time.monotonic()
        page.get_by_role("button", name="Yes, run the drill").click()
        expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
        expect_job_succeeded(page)
        lap("restore drill job", phase)
    finally:
        writer.stop()
    job = Job.objects.get(pk=int(re.search(r"/jobs/(\d+)/", page.url).group(1)))
    assert job.kind == "restore_drill"
    for step in job.steps.order_by("position"):
        print(f"  {step.name}: {step.elapsed_s or 0:.0f} s, {step.summary}")
    drill = RestoreDrill.objects.get(job=job)
    assert drill.outcome == "passed" and drill.rto_seconds > 0, drill.reason
    assert drill.target_address == spare and drill.backup_label.endswith("F"), drill.backup_label
    assert [r["table"] for r in drill.results] == [f"public.{t}" for t in TABLES]
    assert all(r["same"] for r in drill.results), drill.results
    ledger = next(r for r in drill.results if r["table"] == "public.writer_ledger")
    assert ledger["rows"] > 20, ledger  # the writer's rows up to the restore point, no more
    assert writer.acks[-1].id > ledger["rows"]  # ... and it went on writing after it

    # The history row on the page.
    page.goto(f"{live_server.url}/clusters/{cluster_id}/")
    row = page.locator(f'#drill-history tr[data-drill="{drill.pk}"]')
    expect(row).to_have_attribute("data-outcome", "passed")
    expect(row.locator('td[data-label="RTO"]')).to_have_text(re.compile(r"^\d+ s$"))
    expect(row.locator('td[data-label="Backup"]')).to_contain_text(drill.backup_label)
    expect(row.locator('td[data-label="Tables checked"]')).to_contain_text("public.writer_ledger")

    # Torn down: the drill's directory is gone and no PostgreSQL runs on spare1.
    data = f"/var/lib/postgresql/{POSTGRES[lab.release]}/drill-{NAME}"
    assert sh(lab, "spare1", f"ls -d {data} {data}.log 2>/dev/null || true") == ""
    assert sh(lab, "spare1", "pgrep -u postgres -x postgres || true") == ""
    assert sh(lab, "spare1", "ss -Hltn 'sport = :5439'") == ""

    print(f"\nrestore drill RTO: {drill.rto_seconds:.1f} s (backup {drill.backup_label})")
    lap("whole test", began)
    for what, seconds in took.items():
        print(f"  {what}: {seconds:.0f} s")
