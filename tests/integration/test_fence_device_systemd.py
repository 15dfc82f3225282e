"""Setup puts the fence agents on the witness of a customer's fresh servers (issue 21 part 1).

The systemd lab's hosts have no fence-agents, as a customer's servers do not: a node's fence
device defined through the API cannot be tested until setup has installed Debian's
fence-agents on the witness (the proxy), and only there; then "Test fence device" reaches the
lab's Redfish BMC from the witness.
"""

import pytest

from jobs.models import Job, JobStatus, StepStatus
from tests.conftest import wait_for
from tests.integration.conftest import job_story, wait_for_job
from tests.integration.systemd_clusters import define_cluster
from tests.integration.test_fresh_servers_systemd import sh
from tests.lab import sdmachine
from tests.lab.bmc import LabBMC

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PASSWORD = "sd-bmc-pass 5150"
HAS_AGENT = "test -x /usr/sbin/fence_redfish && echo yes || echo no"


def fence_test(api, cluster_id: int) -> Job:
    started = api.post(f"/api/v1/clusters/{cluster_id}/nodes/node2/fence/test/")
    assert started.status_code == 202, started.content
    return wait_for_job(Job.objects.get(pk=started.json()["id"]), timeout=120)


@pytest.mark.timeout(1800)
def test_setup_installs_the_fence_agents_on_the_witness_only(fresh_systemd_lab, worker, api):
    lab = fresh_systemd_lab
    cluster_id, _login = define_cluster(api, lab, "fsd")
    with LabBMC(lab, sdmachine.BRIDGE_ADDRESS, password=PASSWORD) as bmc:
        body = bmc.fence_device("node2", PASSWORD)
        defined = api.put(f"/api/v1/clusters/{cluster_id}/nodes/node2/fence/", body)
        assert defined.status_code == 200, defined.content

        assert sh(lab, "proxy", HAS_AGENT) == "no"  # a fresh server has none
        job = fence_test(api, cluster_id)
        assert job.status == JobStatus.FAILED and "run setup" in job.error, job_story(job)

        # Setup's package step is what matters here: the rest of setup is other tests' business.
        started = api.post(f"/api/v1/clusters/{cluster_id}/jobs/", {"kind": "setup"})
        assert started.status_code == 202, started.content
        setup = Job.objects.get(pk=started.json()["id"])
        installs = setup.steps.filter(name="install_packages")

        def installed() -> bool:
            setup.refresh_from_db()
            assert not setup.is_terminal or setup.status == JobStatus.SUCCEEDED, job_story(setup)
            return not installs.exclude(status=StepStatus.SUCCEEDED).exists()

        wait_for(installed, 900, "setup's install_packages steps to succeed")
        api.post(f"/api/v1/jobs/{setup.pk}/cancel/")
        wait_for_job(setup, timeout=300)

        assert sh(lab, "proxy", HAS_AGENT) == "yes"
        for node in ("node1", "node2"):  # the agents run on the witness only
            assert sh(lab, node, HAS_AGENT) == "no"

        job = fence_test(api, cluster_id)
        assert job.status == JobStatus.SUCCEEDED, job_story(job)
        answer = api.get(f"/api/v1/clusters/{cluster_id}/nodes/node2/fence/").json()
        assert answer["last_test"]["ok"] is True
        assert answer["last_test"]["result"] == "Status: ON"
        assert all(method == "GET" for method, _, _ in bmc.requests), bmc.requests
