"""The wizard offers a second proxy and the floating address (issue 20)."""

import pytest

from clusters.models import Cluster, Credential
from clusters.web import wizard
from tests.unit.clusters.web.test_wizard import FP, STEP1, admin, cred, fake_scan  # noqa: F401

pytestmark = pytest.mark.django_db

ROWS = [
    ("node1", "198.18.0.11", "master"),
    ("node2", "198.18.0.12", "standby"),
    ("proxy", "198.18.0.10", "proxy"),
    ("proxy2", "198.18.0.13", "proxy"),
]


def rows(cred_pk: int) -> list[dict]:
    return [{"name": n, "address": a, "role": r, "credential": cred_pk} for n, a, r in ROWS]


def test_two_proxies_and_a_floating_address_make_the_cluster(admin, cred, monkeypatch):  # noqa: F811
    monkeypatch.setitem(FP, "198.18.0.13", "SHA256:" + "d" * 43)
    draft = wizard.draft_get(user=admin)
    wizard.wizard_cluster_save(
        draft=draft, fields={**STEP1, "virtual_ip": "198.18.0.100/24", "vrrp_router_id": "7"}
    )
    wizard.wizard_servers_save(draft=draft, rows=rows(cred.pk))
    wizard.wizard_host_keys_scan(draft=draft, scan=fake_scan)
    cluster = wizard.wizard_host_keys_confirm(draft=draft, confirmed={0, 1, 2, 3}, user=admin)
    assert cluster.virtual_ip == "198.18.0.100/24" and cluster.vrrp_router_id == 7
    assert [p.name for p in cluster.proxy_nodes] == ["proxy", "proxy2"]


def test_step1_refuses_an_address_without_prefix_and_a_bad_router_id(admin):  # noqa: F811
    draft = wizard.draft_get(user=admin)
    with pytest.raises(wizard.InvalidInput) as exc:
        wizard.wizard_cluster_save(
            draft=draft, fields={**STEP1, "virtual_ip": "198.18.0.100", "vrrp_router_id": "300"}
        )
    assert {"virtual_ip", "vrrp_router_id"} <= set(exc.value.field_errors)


def test_step2_says_when_the_address_is_outside_the_proxies_network(admin, cred):  # noqa: F811
    draft = wizard.draft_get(user=admin)
    wizard.wizard_cluster_save(draft=draft, fields={**STEP1, "virtual_ip": "10.9.9.9/24"})
    with pytest.raises(wizard.InvalidInput) as exc:
        wizard.wizard_servers_save(draft=draft, rows=rows(cred.pk))
    assert "Floating address" in " ".join(exc.value.field_errors["nodes"])
    assert not Cluster.objects.exists()


def test_the_first_step_shows_the_fields(client, admin):  # noqa: F811
    client.force_login(admin)
    page = client.get("/wizard/1/").content.decode()
    assert 'name="virtual_ip"' in page and 'name="vrrp_router_id"' in page


def other_cluster(vip: str = "198.18.0.100/24") -> Cluster:
    other = Cluster.objects.create(name="other", virtual_ip=vip)
    login = Credential.objects.create(name="other", username="root", password="pw-654321")
    other.nodes.create(name="db9", address="198.18.0.90", kind="database", credential=login)
    return other


def test_step1_says_when_another_cluster_floats_the_address(admin):  # noqa: F811
    other_cluster()
    draft = wizard.draft_get(user=admin)
    with pytest.raises(wizard.InvalidInput) as exc:
        wizard.wizard_cluster_save(draft=draft, fields={**STEP1, "virtual_ip": "198.18.0.100/24"})
    assert exc.value.field_errors["virtual_ip"] == ["Another cluster uses this floating address."]


def test_step1_says_when_the_address_is_another_clusters_server(admin):  # noqa: F811
    other_cluster(vip="198.18.0.101/24")
    draft = wizard.draft_get(user=admin)
    with pytest.raises(wizard.InvalidInput) as exc:
        wizard.wizard_cluster_save(draft=draft, fields={**STEP1, "virtual_ip": "198.18.0.90/24"})
    assert "db9 of cluster other" in " ".join(exc.value.field_errors["virtual_ip"])


def test_step2_says_when_the_address_was_taken_since_step1(admin, cred):  # noqa: F811
    draft = wizard.draft_get(user=admin)
    wizard.wizard_cluster_save(draft=draft, fields={**STEP1, "virtual_ip": "198.18.0.100/24"})
    other_cluster()
    with pytest.raises(wizard.InvalidInput) as exc:
        wizard.wizard_servers_save(draft=draft, rows=rows(cred.pk))
    assert exc.value.field_errors["nodes"] == [
        "Floating address: Another cluster uses this floating address."
    ]


def test_the_host_keys_step_shows_what_creating_the_cluster_refused(
    client,
    admin,  # noqa: F811
    cred,  # noqa: F811
    monkeypatch,
):
    """Taken between the servers step and the confirmation: the error has no field on step 3,
    so the page says it at the top instead of showing nothing."""
    monkeypatch.setitem(FP, "198.18.0.13", "SHA256:" + "d" * 43)
    draft = wizard.draft_get(user=admin)
    wizard.wizard_cluster_save(draft=draft, fields={**STEP1, "virtual_ip": "198.18.0.100/24"})
    wizard.wizard_servers_save(draft=draft, rows=rows(cred.pk))
    wizard.wizard_host_keys_scan(draft=draft, scan=fake_scan)
    other_cluster()
    client.force_login(admin)
    confirm = {"action": "confirm", **{f"confirm-{i}": "on" for i in range(4)}}
    page = client.post("/wizard/3/", confirm).content.decode()
    assert "Floating address: Another cluster uses this floating address." in page
    assert not Cluster.objects.exclude(name="other").exists()


def test_the_servers_step_offers_a_second_proxy(client, admin, cred):  # noqa: F811
    client.force_login(admin)
    wizard.wizard_cluster_save(
        draft=wizard.draft_get(user=admin), fields={**STEP1, "virtual_ip": "198.18.0.100/24"}
    )
    page = client.get("/wizard/2/").content.decode()
    assert "Add a second proxy" in page and "198.18.0.100/24" in page
    posted = {"rows": "3", "credential": str(cred.pk), "action": "add-proxy"}
    for i, (name, address, role) in enumerate(ROWS[:3]):
        posted |= {f"servers-{i}-name": name, f"servers-{i}-address": address}
        posted |= {f"servers-{i}-role": role, f"servers-{i}-ssh_port": "22"}
    client.post("/wizard/2/", posted)
    servers = wizard.draft_get(user=admin).servers
    assert [(s["name"], s["role"]) for s in servers][3] == ("proxy2", "proxy")
    page = client.get("/wizard/2/").content.decode()
    assert "Add a second proxy" not in page and 'id="two-proxies"' in page
