"""Fence devices on the netns lab (issue 21 part 1): the real fence_redfish, run on the
witness (the proxy), asks the lab's Redfish BMC for a node's power state."""

import pytest

from clusters.inventory.fencing import fence_device_set
from clusters.models import FenceDevice
from jobs import services
from jobs.models import JobStatus, LogLine
from tests.integration.conftest import job_story, lab_credential, make_lab_cluster, wait_for_job
from tests.lab import network
from tests.lab.bmc import LabBMC

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PASSWORD = "bmc pass=with;odd'chars 4242"
WRONG = "Wr0ng-bmc-pass-9191"


@pytest.fixture
def bmc(lab_clean):
    with LabBMC(lab_clean, network.BRIDGE_ADDRESS, password=PASSWORD) as served:
        yield served
    lab_clean.heal()


def fence_test(node):
    job = wait_for_job(services.job_start(cluster=node.cluster, kind="fence_test", node=node))
    return job, FenceDevice.objects.get(node=node)


def test_fence_device_status_from_the_witness(lab_clean, bmc, worker):
    cluster = make_lab_cluster(lab_clean, lab_credential(lab_clean), name="fencec")
    node2 = cluster.nodes.get(name="node2")
    fence_device_set(node=node2, data=bmc.fence_device("node2", PASSWORD))

    job, device = fence_test(node2)
    assert job.status == JobStatus.SUCCEEDED, job_story(job)
    assert (device.last_test_ok, device.last_test_power) == (True, "on")
    assert device.last_test_result == "Status: ON"
    assert job.steps.get().node.name == cluster.proxy_node.name  # asked from the witness
    assert all(method == "GET" for method, _, _ in bmc.requests), bmc.requests  # never an off

    lab_clean.power_off("node2")
    job, device = fence_test(node2)
    assert job.status == JobStatus.SUCCEEDED, job_story(job)
    assert (device.last_test_ok, device.last_test_result) == (True, "Status: OFF")

    fence_device_set(node=node2, data={"secret": WRONG})
    job, device = fence_test(node2)
    assert job.status == JobStatus.FAILED, job_story(job)
    assert device.last_test_ok is False
    assert "Unable to get PowerState" in device.last_test_result
    assert "Check the address, port, user name and secret" in job.error
    lines = LogLine.objects.filter(job__cluster=cluster).values_list("text", flat=True)
    assert lines and not [t for t in lines if WRONG in t or PASSWORD in t]
    assert all(method == "GET" for method, _, _ in bmc.requests), bmc.requests
