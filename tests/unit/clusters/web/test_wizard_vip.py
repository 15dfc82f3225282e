"""The wizard offers a second proxy and the floating address (issue 20)."""

import pytest

from clusters.models import Cluster
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
