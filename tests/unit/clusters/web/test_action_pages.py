"""Issue 19, state-aware actions on the pages: a button that cannot succeed is drawn disabled
with its reason beside it; "Fail over" is the main action only for the standby Patroni would
promote; every action that interrupts anything goes through a confirmation that shows the
target's facts and the predicted loss; a typed confirmation says what to type, and a mistyped
one answers in words."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from clusters.models import AuditEntry, Cluster, NodeStatus
from tests.conftest import make_user
from tests.unit.clusters.web.test_action_checks import world

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(django_user_model):
    return make_user(django_user_model, "boss", "admin")


def page(client, user, cluster: Cluster, path: str = "") -> str:
    client.force_login(user)
    response = client.get(f"/clusters/{cluster.pk}/{path}")
    assert response.status_code == 200
    return response.content.decode()


def disabled(html: str, label: str) -> str:
    """The reason shown beside the disabled action `label` (fails if it is not disabled)."""
    found = re.search(
        r'<span class="button [^"]*disabled" role="link" aria-disabled="true" '
        r'aria-describedby="([\w-]+)">' + re.escape(label) + r"</span> "
        r'<small id="\1" class="off-reason">([^<]+)</small>',
        html,
    )
    assert found, f"{label} is not drawn disabled with its reason"
    return found.group(2)


def test_switch_over_on_a_degraded_cluster_is_disabled_with_the_reason_beside_it(client, admin):
    cluster = world("degraded")
    html = page(client, admin, cluster)
    assert disabled(html, "Switch over") == ("needs a healthy cluster: pg1 is degraded")
    assert "/confirm/switchover/" not in html  # neither the heading's nor a node's
    # What can run stays a plain link.
    assert f'href="/clusters/{cluster.pk}/confirm/restart/"' in html


def test_fail_over_to_a_node_down_for_minutes_is_disabled_and_says_since_when(client, admin):
    cluster = world("degraded")
    NodeStatus.objects.filter(node__name="node2").update(
        role="unknown", state="stopped", last_seen=timezone.now() - timedelta(minutes=5)
    )
    html = page(client, admin, cluster)
    assert disabled(html, "Fail over to node2") == (
        "node2 is stopped (last answered 5 min ago): only a running standby can take over"
    )
    # The rebuild it needs is still offered, as the main action.
    assert (
        f'class="button rebuild recommended" href="/clusters/{cluster.pk}/confirm/rebuild/' in html
    )


def test_remove_on_a_two_node_cluster_is_disabled_before_the_name_is_typed(client, admin):
    html = page(client, admin, world("healthy"))
    assert disabled(html, "Remove") == (
        "a cluster keeps at least two database nodes: add a standby first, or replace node2"
    )


def test_remove_on_a_three_node_cluster_is_offered(client, admin):
    html = page(client, admin, world("healthy", three=True))
    assert "/confirm/remove_node/?node=node2" in html and "at least two" not in html


def test_fail_over_is_the_main_action_only_for_the_standby_patroni_would_promote(client, admin):
    cluster = world("maintenance", maintenance=True, three=True)
    NodeStatus.objects.filter(node__name="node3").update(wal_position=6_000_000, lag_bytes=0)
    html = page(client, admin, cluster)
    base = f"/clusters/{cluster.pk}/confirm/failover/?node="
    assert f'<a class="button small" href="{base}node3">Fail over to node3</a>' in html
    assert f'<a class="button secondary small" href="{base}node2">Fail over to node2</a>' in html


def test_on_a_healthy_cluster_switch_over_is_the_main_action_and_every_failover_secondary(
    client, admin
):
    html = page(client, admin, world("healthy", three=True))
    assert '<a class="button small" href' not in html.split('<table class="nodes stack">')[1]


def test_end_maintenance_asks_first_and_says_what_patroni_will_do(client, admin):
    cluster = world("maintenance", maintenance=True)
    html = page(client, admin, cluster)
    assert f'<a class="button" href="/clusters/{cluster.pk}/confirm/maintenance_off/">' in html
    assert 'value="maintenance_off"' not in html  # no one-click form any more
    confirm = page(client, admin, cluster, "confirm/maintenance_off/")
    assert (
        "acts at once on what it finds" in confirm and "Yes, resume automatic failover" in confirm
    )


def test_failover_confirmation_shows_the_target_and_the_bytes_at_risk(client, admin):
    cluster = world("degraded")
    html = page(client, admin, cluster, "confirm/failover/?node=node2")
    row = html.split('<tr data-node="node2" class="target" aria-current="true">', 1)[1]
    row = row.split("</tr>", 1)[0]
    assert "(target)" in row and ">Replica<" in row
    assert "2 KiB · 0.2 s" in row and "0/4C4B40" in row and ">4<" in row
    assert "just now" in row  # last seen
    assert "<strong>Predicted loss:</strong> up to 2 KiB of acknowledged writes" in html
    assert "Type <code>pg1</code> to confirm (the cluster's name)" in html
    assert '<button type="submit" class="danger">Yes, promote</button>' in html


def test_switchover_and_rebuild_confirmations_name_the_loss_and_what_is_replaced(client, admin):
    cluster = world("healthy")
    html = page(client, admin, cluster, "confirm/switchover/?node=node2")
    assert "<strong>Predicted loss:</strong> none: the primary shuts down cleanly" in html
    html = page(client, admin, cluster, "confirm/rebuild/?node=node2")
    assert "<strong>What is replaced:</strong> node2&#x27;s PostgreSQL data directory, " in html
    assert "/var/lib/postgresql/" in html and "(kept, not deleted)" in html
    assert "<strong>Predicted loss:</strong> none on the cluster" in html


def test_a_confirmation_that_cannot_succeed_says_why_and_cannot_be_sent(client, admin):
    cluster = world("healthy")
    html = page(client, admin, cluster, "confirm/remove_node/?node=node2")
    assert "<strong>This cannot succeed now:</strong> a cluster keeps at least two" in html
    assert 'disabled aria-describedby="why-not">Yes, remove it</button>' in html
    assert "Type <code>node2</code> to confirm (the node's name)" in html


def test_a_mistyped_confirmation_answers_in_words_on_its_page_and_starts_nothing(client, admin):
    cluster = world("degraded")
    client.force_login(admin)
    response = client.post(
        f"/clusters/{cluster.pk}/jobs/",
        {"kind": "failover", "node": "node2", "confirm": "pg2"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == f"/clusters/{cluster.pk}/confirm/failover/?node=node2"
    html = response.content.decode()
    assert "You typed &#x27;pg2&#x27;; type the cluster&#x27;s name, pg1, to confirm." in html
    assert "in &#x27;confirm&#x27;" not in html
    assert not cluster.jobs.exists()
    entry = AuditEntry.objects.get(action="job.start.failover")
    assert entry.result == "refused: the typed confirmation did not match"
    empty = client.post(
        f"/clusters/{cluster.pk}/jobs/",
        {"kind": "failover", "node": "node2", "confirm": ""},
        follow=True,
    )
    assert (
        "You typed nothing; type the cluster&#x27;s name, pg1, to confirm."
        in empty.content.decode()
    )


def test_add_and_replace_pages_say_why_they_cannot_run_before_anything_is_typed(client, admin):
    cluster = world("healthy")
    Cluster.objects.filter(pk=cluster.pk).update(maintenance=True)
    for path in ("nodes/new/", "nodes/node2/replace/"):
        html = page(client, admin, cluster, path)
        assert "cannot run now: pg1 is in maintenance mode: end it first." in html
        assert re.search(r'value="scan" class="secondary" disabled', html)
    Cluster.objects.filter(pk=cluster.pk).update(maintenance=False)
    assert "cannot run now" not in page(client, admin, cluster, "nodes/new/")


def off_reason(html: str, off_id: str) -> str:
    found = re.search(f'<small id="{off_id}" class="off-reason">([^<]+)</small>', html)
    assert found, f"no disabled action {off_id}"
    return found.group(1)


def test_proxy_rows_offer_replace_and_remove_and_the_page_offers_a_second_proxy(client, admin):
    cluster = world("healthy")
    html = page(client, admin, cluster)
    # One proxy: "Add a proxy" goes to the add page for a proxy; the only proxy is replaced,
    # never removed.
    assert f'href="/clusters/{cluster.pk}/nodes/new/?kind=proxy">Add a proxy</a>' in html
    assert f'href="/clusters/{cluster.pk}/nodes/proxy/replace/">Replace</a>' in html
    assert off_reason(html, "off-proxy-remove") == "proxy is the only proxy"
    add = page(client, admin, cluster, "nodes/new/?kind=proxy")
    assert "<h1>Add a proxy" in add and 'name="node_kind" value="proxy"' in add
    assert "runs no etcd: proxy stays the witness" in add

    proxy = cluster.nodes.get(name="proxy")
    proxy.pk, proxy.name, proxy.address = None, "proxy2", "198.18.0.40"
    proxy.host_key_fingerprint = "SHA256:other"
    proxy.save()
    html = page(client, admin, cluster)
    assert "Add a proxy" not in html  # two already: the most
    assert f'href="/clusters/{cluster.pk}/confirm/remove_node/?node=proxy2">Remove</a>' in html
    assert off_reason(html, "off-proxy-remove") == "proxy is the etcd witness: replace it instead"
    address = cluster.nodes.get(name="proxy").address
    assert f"etcd witness (third member): proxy ({address})" in html
    confirm = page(client, admin, cluster, "confirm/remove_node/?node=proxy2")
    assert "HAProxy and keepalived stop" in confirm
