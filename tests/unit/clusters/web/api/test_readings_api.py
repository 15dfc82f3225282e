"""GET /api/v1/audit/ (admins, the audit page's filters, bad ones a 400) and
GET /api/v1/clusters/{id}/lag/ (the lag chart's data), and the fence state in a cluster's
nodes."""

from datetime import timedelta

import pytest
from django.utils import timezone

from clusters.models import AuditEntry, ClusterEvent, NodeStatus, StatusSample
from tests.conftest import api_client, make_user
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db


def _entry(**fields) -> AuditEntry:
    return AuditEntry.objects.create(**{"action": "x", "result": "ok", **fields})


def test_audit_filters_like_the_page_newest_first(api, user):
    _entry(username="ops", action="cluster.create", target="cluster pg1")
    _entry(username="ops", action="job.start.lint", target="cluster pg1", result="refused: no")
    _entry(
        username="other", action="cluster.create", target="cluster pg2", source_address="10.1.2.3"
    )
    answer = api.get("/api/v1/audit/?action=cluster.&user=OPS").json()
    assert [e["target"] for e in answer["entries"]] == ["cluster pg1"]
    refused = api.get("/api/v1/audit/?result=refused").json()["entries"]
    assert [e["action"] for e in refused] == ["job.start.lint"]
    by_address = api.get("/api/v1/audit/?address=10.1.2.3").json()["entries"]
    assert [e["user"] for e in by_address] == ["other"]
    everything = api.get("/api/v1/audit/").json()
    assert everything["count"] == len(everything["entries"]) and everything["pages"] == 1
    ats = [e["at"] for e in everything["entries"]]
    assert ats == sorted(ats, reverse=True)


def test_audit_refuses_bad_filters_by_name(api):
    answer = api.get("/api/v1/audit/?since=2026-13-01&until=soon&address=1.2.3&page=0")
    assert answer.status_code == 400
    assert set(answer.json()["field_errors"]) == {"since", "until", "address", "page"}
    assert api.get("/api/v1/audit/?page=7").json()["field_errors"]["page"] == ["There are 1 pages."]


def test_audit_is_for_admins(client, django_user_model):
    operator = make_user(django_user_model, "op", "operator")
    answer = api_client(client, operator).get("/api/v1/audit/")
    assert answer.status_code == 403 and "admin role" in answer.json()["error"]


def test_lag_answers_the_chart_data_and_refuses_an_unknown_range(api):
    cluster, nodes = three_node_cluster()
    now = timezone.now()
    for i, node in enumerate(nodes[:2]):
        StatusSample.objects.create(
            node=node,
            at=now - timedelta(minutes=5),
            up=True,
            role="replica",
            lag_bytes=100 * i,
            lag_seconds=0.5 * i,
        )
    answer = api.get(f"/api/v1/clusters/{cluster.pk}/lag/?range=1h").json()
    assert answer["range"] == "1h" and answer["nodes"] == ["node1", "node2"]
    assert len(answer["t"]) == 1 and answer["bytes"] == [[0], [100]]
    assert answer["events"] == [] and answer["threshold_bytes"] == 16 * 1024 * 1024
    bad = api.get(f"/api/v1/clusters/{cluster.pk}/lag/?range=1w")
    assert bad.status_code == 400 and "range" in bad.json()["field_errors"]
    assert api.get("/api/v1/clusters/999999/lag/").status_code == 404


def test_a_fenced_node_says_so_in_the_cluster_answer(api):
    cluster, nodes = three_node_cluster()
    NodeStatus.objects.create(node=nodes[1], fenced=True, fence_reason="wrote without the key")
    found = {n["name"]: n for n in api.get(f"/api/v1/clusters/{cluster.pk}/").json()["nodes"]}
    assert (found["node2"]["fenced"], found["node2"]["fence_reason"]) == (
        True,
        "wrote without the key",
    )
    assert (found["node1"]["fenced"], found["node1"]["fence_reason"]) == (False, None)


def test_lag_lists_the_failovers_and_switchovers_in_the_range_for_the_charts_markers(api):
    cluster, _nodes = three_node_cluster()
    now = timezone.now()
    for minutes, kind, summary in (
        (90, "failover", "too old for the hour"),
        (30, "failover", "node2 promoted after node1 stopped answering"),
        (20, "node_down", "not a change of primary"),
        (10, "switchover", "node1 took over from node2"),
    ):
        ClusterEvent.objects.create(
            cluster=cluster, kind=kind, at=now - timedelta(minutes=minutes), summary=summary
        )
    events = api.get(f"/api/v1/clusters/{cluster.pk}/lag/?range=1h").json()["events"]
    assert [(e["kind"], e["summary"]) for e in events] == [
        ("failover", "node2 promoted after node1 stopped answering"),
        ("switchover", "node1 took over from node2"),
    ]
    assert abs(events[0]["t"] - int((now - timedelta(minutes=30)).timestamp())) <= 1
    day = api.get(f"/api/v1/clusters/{cluster.pk}/lag/?range=1d").json()["events"]
    assert len(day) == 3
