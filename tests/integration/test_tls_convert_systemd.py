"""The TLS conversion and a rotation on real Debian 12 servers booting systemd (the daemons run
as units, etcd and PostgreSQL from Debian's archive): the path customers take. Opt-in
(`HACENTER_TLS_SYSTEMD=1`): about 4 minutes per Debian release with apt, beside the netns lab's
test_rotate_certificates_lab.py, which runs the same flow in process mode in every `make test`.
"""

import os
import time

import pytest

from clusters.models import Cluster, Node
from jobs.playbooks import tls_probe
from tests.conftest import wait_for
from tests.integration.conftest import lab_credential, make_lab_cluster
from tests.integration.test_rotate_certificates_lab import leader, longest_gap, run, served
from tests.lab_fixtures import on_debian
from tests.writer import ProxyWriter

pytestmark = [
    pytest.mark.lab,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("HACENTER_TLS_SYSTEMD") != "1", reason="opt-in: HACENTER_TLS_SYSTEMD=1"
    ),
]


# The PostgreSQL major each release's archive has; etcd is 3.4 on Debian 12, 3.5 on 13.
POSTGRES = {"12": 15, "13": 17}


@on_debian("12", "13")
def test_conversion_and_rotation_under_systemd(fresh_systemd_lab, worker):
    lab = fresh_systemd_lab
    cluster = make_lab_cluster(lab, lab_credential(lab), name="tlsconv")
    Cluster.objects.filter(pk=cluster.pk).update(
        apt_proxy=lab.apt_proxy_url, postgres_version=POSTGRES[lab.release]
    )
    run(cluster, "setup", timeout=900, tls=False)
    secret = cluster.secrets.get(name="superuser").value
    proxy = cluster.nodes.get(kind=Node.Kind.PROXY).address
    writer = ProxyWriter(f"postgresql://postgres:{secret}@{proxy}:5432/postgres")
    writer.start()
    try:
        wait_for(lambda: len(writer.acks) >= 10, 20, "the writer to get going")
        before = leader(cluster)
        started = time.monotonic()
        converted = run(cluster, "setup", timeout=600)
        convert_gap = longest_gap(writer, started, time.monotonic())
        for step in converted.steps.select_related("node"):
            if step.name.startswith("convert_"):
                print(f"convert {step.name} {step.node.name if step.node else ''}: {step.summary}")
        assert leader(cluster) == before
        assert not Node.objects.filter(cluster=cluster, tls_active=False).exists()
        started = time.monotonic()
        run(cluster, "rotate_certificates")
        rotate_gap = longest_gap(writer, started, time.monotonic())
        assert leader(cluster) == before
        cluster.refresh_from_db()
        for node in cluster.nodes.all():
            want = tls_probe.certificate_serial(node.tls_certificate)
            assert set(served(lab, cluster, node).values()) == {want}, node.name
    finally:
        writer.stop()
    missing = {a.id for a in writer.acks} - writer.stored_ids()
    print(
        f"Debian {lab.release}, systemd: TLS conversion gap {convert_gap:.2f} s, "
        f"rotation gap {rotate_gap:.2f} s; "
        f"{len(writer.acks)} writes, {len(missing)} missing, {len(writer.errors)} failed"
    )
    assert not missing
