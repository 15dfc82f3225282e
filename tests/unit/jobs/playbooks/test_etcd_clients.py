"""Every etcdctl the console runs speaks as the cluster's Patroni does: https with the node's
certificate on clusters HA Center built, and on adopted ones whatever their etcd3 section says."""

import dataclasses
import shlex

from jobs.playbooks import adopt
from jobs.playbooks.etcd_members import local_etcdctl
from jobs.playbooks.layout import PatroniLayout
from jobs.playbooks.setup_etcd import etcdctl
from tests.unit.jobs.configs.test_configs import tls_for
from tests.unit.jobs.playbooks.scripted_server import SPEC

TLS_SPEC = dataclasses.replace(SPEC, tls=tls_for(tuple(n.name for n in SPEC.nodes)))
CERT_FLAGS = [
    "--cacert",
    "/etc/hacenter/tls/ca.crt",
    "--cert",
    "/etc/hacenter/tls/node.crt",
    "--key",
    "/etc/hacenter/tls/node.key",
]


def argv(command: str) -> list[str]:
    return shlex.split(command)[1:]  # without ETCDCTL_API=3


def test_setup_etcdctl_presents_the_node_certificate_to_https_endpoints():
    words = argv(etcdctl(TLS_SPEC, "endpoint", "health"))
    assert words[3:9] == CERT_FLAGS
    endpoints = words[words.index("--endpoints") + 1]
    assert endpoints == (
        "https://198.19.0.10:2379,https://198.19.0.11:2379,https://198.19.0.12:2379"
    )


def test_without_managed_tls_etcdctl_stays_plain():
    words = argv(etcdctl(SPEC, "endpoint", "health"))
    assert "--cert" not in words
    assert words[words.index("--endpoints") + 1].startswith("http://198.19.0.10:2379")


def test_the_proxys_local_etcdctl_uses_https_loopback_with_the_certificate():
    words = argv(local_etcdctl("member", "list"))
    assert words[3:9] == CERT_FLAGS
    assert words[words.index("--endpoints") + 1] == "https://127.0.0.1:2379"


def test_an_adopted_clusters_etcd_is_reached_as_its_patroni_reaches_it():
    config = {
        "etcd3": {
            "hosts": ["10.0.0.1:2379", "10.0.0.2:2379"],
            "protocol": "https",
            "cacert": "/etc/patroni/ca.pem",
            "cert": "/etc/patroni/client.pem",
            "key": "/etc/patroni/client.key",
        }
    }
    protocol, files = adopt._etcd_tls(config)
    assert (protocol, files) == (
        "https",
        ["/etc/patroni/ca.pem", "/etc/patroni/client.pem", "/etc/patroni/client.key"],
    )
    layout = PatroniLayout(
        scope="s",
        namespace="/service/",
        config_path="/etc/patroni.yml",
        data_dir="/d",
        bin_dir="/b",
        rest_user="",
        superuser="postgres",
        replication_user="r",
        etcd_hosts=("10.0.0.1:2379", "10.0.0.2:2379"),
        etcd_protocol=protocol,
        etcd_tls_files=tuple(files),
    )
    words = argv(layout.etcdctl("member", "list"))
    assert words[3:9] == [
        "--cacert",
        "/etc/patroni/ca.pem",
        "--cert",
        "/etc/patroni/client.pem",
        "--key",
        "/etc/patroni/client.key",
    ]
    assert "--endpoints=https://10.0.0.1:2379,https://10.0.0.2:2379" in words


def test_an_adopted_cluster_on_plain_etcd_stays_plain():
    assert adopt._etcd_tls({"etcd3": {"hosts": "10.0.0.1:2379"}}) == ("http", [])
    assert adopt._etcd_tls({"etcd3": {"hosts": ["https://10.0.0.1:2379"]}})[0] == "https"
