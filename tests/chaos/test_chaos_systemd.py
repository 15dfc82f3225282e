"""The chaos suite's faults that only hosts booting systemd can show (a reboot, a clean
shutdown), on the systemd lab, with the same writer, monitor, promises and results file as
test_chaos. `make chaos` runs each `HACENTER_CHAOS_ROUNDS` times on an async and a sync cluster;
`make test` runs each once, on the cluster its `quick_on` names.
"""

import pytest

from clusters.models import Cluster
from tests.chaos.faults import FAULTS
from tests.chaos.test_chaos import ROUNDS, chaos_rounds, run_job
from tests.integration.conftest import lab_credential, make_lab_cluster

pytestmark = [pytest.mark.lab, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("replication", ["async", "sync"])
def test_chaos_on_systemd_servers(fresh_systemd_lab, workers, replication):
    faults = [f for f in FAULTS if f.systemd]
    if not ROUNDS and not any(f.quick_on == replication for f in faults):
        pytest.skip(f"`make test` runs these faults on the other cluster, not {replication}")
    lab = fresh_systemd_lab
    cluster = make_lab_cluster(lab, lab_credential(lab), name=f"sdchaos{replication[0]}")
    Cluster.objects.filter(pk=cluster.pk).update(
        replication=replication, apt_proxy=lab.apt_proxy_url
    )
    cluster.refresh_from_db()
    run_job(cluster, "setup")
    chaos_rounds(lab, cluster, workers, faults)
