"""Inventory export and import as JSON: no secrets out, everything validated on the way in."""

import io
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.core.management import CommandError, call_command

from clusters.inventory.export_import import inventory_export
from clusters.inventory.fencing import fence_device_set
from clusters.inventory.ssh_keys import fingerprint_of
from clusters.models import (
    AuditEntry,
    Cluster,
    Credential,
    FenceDevice,
    Node,
    ScannedHostKey,
)

pytestmark = pytest.mark.django_db
PASSWORD = "inventory-password-1"


def host_key() -> tuple[str, str, str]:
    line = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    key_type, blob = line.split()[:2]
    return key_type, blob, fingerprint_of(key_type, blob)


@pytest.fixture
def inventory():
    cred = Credential.objects.create(name="lab", username="root", password=PASSWORD)
    cluster = Cluster.objects.create(
        name="pg1",
        client_networks=["10.20.0.0/16"],
        database_name="app",
        database_user="app",
        state="healthy",
    )
    for i, (name, kind) in enumerate(
        (("node1", "database"), ("node2", "database"), ("proxy", "proxy"))
    ):
        key_type, blob, fp = host_key()
        Node.objects.create(
            cluster=cluster,
            name=name,
            address=f"198.18.0.{11 + i}",
            credential=cred,
            kind=kind,
            bootstrap_primary=i == 0,
            host_key_type=key_type,
            host_key_base64=blob,
            host_key_fingerprint=fp,
        )
    cluster.secrets.create(name="superuser", value="cluster-superuser-secret")
    return cluster


def export_text(tmp_path) -> str:
    path = tmp_path / "inventory.json"
    call_command("export_inventory", "-o", str(path))
    return path.read_text()


def test_export_holds_the_inventory_and_no_secret(inventory, tmp_path):
    text = export_text(tmp_path)
    assert PASSWORD not in text and "cluster-superuser-secret" not in text
    data = json.loads(text)
    assert data["credentials"] == [{"name": "lab", "username": "root", "kind": "password"}]
    (cluster,) = data["clusters"]
    assert cluster["name"] == "pg1" and cluster["database"] == {"name": "app", "user": "app"}
    assert [n["name"] for n in cluster["nodes"]] == ["node1", "node2", "proxy"]
    assert cluster["nodes"][0]["master"] is True and cluster["nodes"][0]["credential"] == "lab"
    assert AuditEntry.objects.get(action="inventory.export").result == "ok"


def test_an_export_imports_into_an_empty_console_with_the_same_pinned_keys(inventory, tmp_path):
    text = export_text(tmp_path)
    pinned = sorted(Node.objects.values_list("name", "host_key_base64", "host_key_fingerprint"))
    Cluster.objects.all().delete()
    ScannedHostKey.objects.all().delete()
    call_command("import_inventory", str(tmp_path / "inventory.json"))
    cluster = Cluster.objects.get(name="pg1")
    assert cluster.state == "new"  # the console must observe (or set up) it before trusting it
    assert cluster.client_networks == ["10.20.0.0/16"] and cluster.database_user == "app"
    assert (
        sorted(Node.objects.values_list("name", "host_key_base64", "host_key_fingerprint"))
        == pinned
    )
    assert Node.objects.get(bootstrap_primary=True).name == "node1"
    assert json.loads(text)["clusters"] == inventory_export()["clusters"]


def _altered(tmp_path, change) -> str:
    data = json.loads(export_text(tmp_path))
    change(data)
    path = tmp_path / "altered.json"
    path.write_text(json.dumps(data))
    Cluster.objects.all().delete()
    ScannedHostKey.objects.all().delete()
    return str(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["clusters"][0]["nodes"][1].update(address="$(reboot)"), "nodes[1].address"),
        (lambda d: d["clusters"][0].update(name="pg1; reboot"), "clusters[0].name"),
        (
            lambda d: d["clusters"][0]["nodes"][0]["host_key"].update(
                base64=d["clusters"][0]["nodes"][1]["host_key"]["base64"]
            ),
            "does not match its fingerprint",
        ),
        (lambda d: d["clusters"][0]["nodes"][0].update(credential="gone"), "No credential named"),
        (lambda d: d["clusters"][0]["nodes"].pop(), "one proxy node, or two"),
        (lambda d: d.update(format="something-else"), "not an HA Center inventory"),
    ],
)
def test_a_bad_import_names_the_problem_and_creates_nothing(inventory, tmp_path, change, message):
    path = _altered(tmp_path, change)
    with pytest.raises(CommandError, match="Nothing was imported") as refused:
        call_command("import_inventory", path)
    assert message in str(refused.value)
    assert not Cluster.objects.exists() and not Node.objects.exists()
    assert not ScannedHostKey.objects.exists()
    assert AuditEntry.objects.get(action="inventory.import").result.startswith("refused")


def test_an_import_of_a_cluster_that_exists_is_refused(inventory, tmp_path):
    path = tmp_path / "inventory.json"
    export_text(tmp_path)
    with pytest.raises(CommandError, match="exists already"):
        call_command("import_inventory", str(path))
    assert Cluster.objects.count() == 1


BMC_PASSWORD = "bmc-secret-;42"


def with_fast_failover(cluster: Cluster) -> None:
    """Fast failover on, node1 behind a redfish BMC (a password), node2 a GCE instance (none)."""
    Cluster.objects.filter(pk=cluster.pk).update(
        fast_failover=True, fast_failover_window_s=1800, application_unit="shop.service"
    )
    node1, node2 = cluster.database_nodes
    fence_device_set(
        node=node1,
        data={
            "method": "redfish",
            "options": {"ip": "10.9.0.1", "username": "admin"},
            "secret": BMC_PASSWORD,
        },
    )
    fence_device_set(
        node=node2,
        data={"method": "gce", "options": {"project": "p", "zone": "z", "plug": "node2"}},
    )


def test_fast_failover_and_fence_devices_go_without_the_secret(inventory, tmp_path):
    with_fast_failover(inventory)
    text = export_text(tmp_path)
    assert BMC_PASSWORD not in text
    (cluster,) = json.loads(text)["clusters"]
    assert cluster["fast_failover"] is True and cluster["fast_failover_window_s"] == 1800
    assert cluster["application_unit"] == "shop.service"
    node1, node2, proxy = cluster["nodes"]
    stored = FenceDevice.objects.get(node__name="node1").options
    assert stored["ip"] == "10.9.0.1"
    assert node1["fence_device"] == {"method": "redfish", "options": stored}  # no secret
    assert "fence_device" not in proxy
    assert node2["fence_device"]["method"] == "gce"

    Cluster.objects.all().delete()
    ScannedHostKey.objects.all().delete()
    out = io.StringIO()
    call_command("import_inventory", str(tmp_path / "inventory.json"), stdout=out)
    imported = Cluster.objects.get(name="pg1")
    assert imported.fast_failover and imported.fast_failover_window_s == 1800
    assert imported.application_unit == "shop.service"
    # The device without a secret to give comes back untested; the other is left out, said so.
    (device,) = FenceDevice.objects.all()
    assert device.node.name == "node2" and device.last_test_ok is None
    assert "pg1/node1: fence device (redfish) not imported: its password" in out.getvalue()


def test_a_fence_secret_added_to_the_file_by_hand_is_taken(inventory, tmp_path):
    with_fast_failover(inventory)
    path = _altered(
        tmp_path, lambda d: d["clusters"][0]["nodes"][0]["fence_device"].update(secret="typed")
    )
    call_command("import_inventory", path, stdout=io.StringIO())
    assert FenceDevice.objects.get(node__name="node1").secret == "typed"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(fast_failover="yes"), "clusters[0].fast_failover: Expected true"),
        (lambda c: c.update(fast_failover_window_s=5), "clusters[0].fast_failover_window_s"),
        (
            lambda c: c["nodes"][1]["fence_device"].update(method="telnet"),
            "clusters[0].nodes[1].fence_device.method",
        ),
        (
            lambda c: c["nodes"][1]["fence_device"]["options"].update(zone="$(reboot)"),
            "clusters[0].nodes[1].fence_device.options.zone",
        ),
    ],
)
def test_a_bad_fast_failover_or_fence_device_imports_nothing(inventory, tmp_path, change, message):
    with_fast_failover(inventory)
    path = _altered(tmp_path, lambda d: change(d["clusters"][0]))
    with pytest.raises(CommandError, match="Nothing was imported") as refused:
        call_command("import_inventory", path)
    assert message in str(refused.value)
    assert not Cluster.objects.exists() and not FenceDevice.objects.exists()
