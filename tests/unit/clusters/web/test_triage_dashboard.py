"""The triage-first dashboard: counts by state that filter, the most urgent clusters first, the
dense rows view, the search, the tab title and favicon, and the refresh that sends only what
changed (204 when nothing did). Pages only read the database."""

import gzip
import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from clusters.models import Cluster, ClusterEvent, NodeStatus
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db

WRITES_NOWHERE = "HAProxy routes writes to no server: clients cannot write."
LAGGING = "node2 lags 40.0 MiB, 12.5 s behind the primary (threshold 16.0 MiB)."
NOTHING = "No node answered: the console's own network may be cut off."


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()


@pytest.fixture
def viewer(client, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw-123456789")
    from clusters.access.roles import assign_role

    assign_role(user, "viewer")
    client.force_login(user)
    return user


def add_cluster(
    name: str, state: str, *, since_min: float | None = 0, reason: str = "", index: int = 0
) -> Cluster:
    """A cluster in `state` for `since_min` minutes, node1 primary and node2 streaming (both
    silent while unknown; node2 down while down), node addresses 10.9.<index>.1-3."""
    now = timezone.now()
    cluster, nodes = three_node_cluster(
        name,
        network=f"10.9.{index}.",
        first=1,
        state=state,
        last_checked=now,
        last_leader="node1",
        state_reasons=[reason] if reason else [],
        state_since=None if since_min is None else now - timedelta(minutes=since_min),
    )
    for h, node in enumerate(nodes[:2]):  # the database nodes
        role = "primary" if h == 0 else "replica"
        if state == "unknown" or (state == "down" and h == 0):
            role = "unknown"
        NodeStatus.objects.create(
            node=node,
            role=role,
            state={"primary": "running", "replica": "streaming"}.get(role, "stopped"),
            lag_bytes=2048 if role == "replica" else None,
            lag_seconds=0.4 if role == "replica" else None,
            proxy_status="UP" if role == "primary" else "DOWN",
            last_seen=now,
        )
    return cluster


@pytest.fixture
def fleet():
    """Eight healthy clusters and, among them, two down, a degraded and an unknown one."""
    clusters = {
        name: add_cluster(name, "healthy", index=i)
        for i, name in enumerate(("alpha", "bravo", "charlie", "delta", "echo", "golf", "hotel"))
    }
    clusters["zulu"] = add_cluster("zulu", "healthy", index=7)
    clusters["down-new"] = add_cluster(
        "down-new", "down", since_min=2, reason=WRITES_NOWHERE, index=20
    )
    clusters["down-old"] = add_cluster(
        "down-old", "down", since_min=30, reason=WRITES_NOWHERE, index=21
    )
    clusters["slow"] = add_cluster("slow", "degraded", since_min=5, reason=LAGGING, index=22)
    clusters["dark"] = add_cluster("dark", "unknown", since_min=1, reason=NOTHING, index=23)
    return clusters


def shown_names(html: str) -> list[str]:
    return re.findall(r'<(?:article|tr) id="(?:cluster|row)-\d+"[^>]* data-cluster="([^"]+)"', html)


def counts_of(html: str) -> dict[str, int]:
    strip = html.split('id="triage-counts"', 1)[1].split("</nav>", 1)[0]
    return {
        state or "all": int(n)
        for state, n in re.findall(r'data-state="(\w*)"><strong>(\d+)</strong>', strip)
    }


def poll_url(html: str) -> str:
    found = re.search(r'id="dashboard-poll"[^>]* hx-get="([^"]+)"', html)
    return found.group(1).replace("&amp;", "&")


def test_the_strip_counts_every_state_and_dims_the_zeros(client, viewer, fleet):
    html = client.get("/").content.decode()
    assert counts_of(html) == {
        "all": 12,
        "down": 2,
        "failing_over": 0,
        "degraded": 1,
        "unknown": 1,
        "maintenance": 0,
        "provisioning": 0,
        "new": 0,
        "healthy": 8,
    }
    assert 'class="count count-failing_over count-zero"' in html
    assert 'class="count count-down"' in html  # not dim
    # Each count is a plain link (works without script) that htmx also follows in place.
    assert '<a class="count count-down" href="/?state=down&amp;view=cards" hx-get=' in html


def test_clusters_come_most_urgent_first_longest_in_trouble_first_healthy_by_name(
    client, viewer, fleet
):
    names = shown_names(client.get("/").content.decode())
    assert names == [
        "down-old",  # down for 30 min
        "down-new",  # down for 2 min
        "slow",
        "dark",
        "alpha",
        "bravo",
        "charlie",
        "delta",
        "echo",
        "golf",
        "hotel",
        "zulu",
    ]


def test_a_count_filters_to_its_state_and_the_counts_stay_whole(client, viewer, fleet):
    html = client.get("/?state=down").content.decode()
    assert shown_names(html) == ["down-old", "down-new"]
    assert counts_of(html)["healthy"] == 8  # the strip still shows the whole fleet
    assert re.search(r'aria-current="true" data-state="down">', html)
    assert "Showing 2 of 12." in html
    # An unknown state filters nothing rather than failing.
    assert len(shown_names(client.get("/?state=bogus").content.decode())) == 12


def test_search_finds_a_cluster_by_its_name_a_node_name_or_an_address(client, viewer, fleet):
    assert shown_names(client.get("/?q=ELT").content.decode()) == ["delta"]
    assert shown_names(client.get("/?q=10.9.22.2").content.decode()) == ["slow"]
    assert len(shown_names(client.get("/?q=node2").content.decode())) == 12
    # Combined with the state filter; the counts' links keep the search.
    html = client.get("/?q=down&state=down").content.decode()
    assert shown_names(html) == ["down-old", "down-new"]
    assert 'href="/?state=healthy&amp;q=down&amp;view=cards"' in html
    html = client.get("/?q=10.9.21&state=degraded").content.decode()
    assert shown_names(html) == [] and "No cluster in state degraded matching “10.9.21”." in html


def test_the_search_text_is_escaped_wherever_it_is_shown(client, viewer, fleet):
    html = client.get('/?q="><script>x</script>').content.decode()
    assert "<script>x" not in html
    assert "&quot;&gt;&lt;script&gt;x&lt;/script&gt;" in html


def test_the_rows_view_shows_one_row_per_cluster_and_is_remembered(client, viewer, fleet):
    ClusterEvent.objects.create(
        cluster=fleet["slow"], kind="alarm", at=timezone.now(), summary="node2 lags 40 MiB"
    )
    response = client.get("/?view=rows")
    html = response.content.decode()
    assert response.cookies["hacenter_dashboard_view"].value == "rows"
    assert '<table id="dashboard-list" class="cluster-rows stack">' in html
    assert shown_names(html)[:4] == ["down-old", "down-new", "slow", "dark"]
    row = re.search(r'<tr id="row-\d+" class="row-degraded".*?</tr>', html).group(0)
    for cell in (
        'data-label="Cluster"><a href="/clusters/',
        'data-state="degraded"',
        f'<td class="reason" data-label="Why">{LAGGING}</td>',
        "5 min ago",
        '<td class="primary" data-label="Primary"><strong>node1</strong></td>',
        '<span class="node-name">node2</span> <span class="lag">2 KiB · 0.4 s</span>',
        "writes → node1",
        "node2 lags 40 MiB",
    ):
        assert cell in row, cell
    dark = re.search(r'<tr id="row-\d+" class="row-unknown".*?</tr>', html).group(0)
    assert "unknown (last known: node1)" in dark and "no answer" in dark and "✖" not in dark
    down = re.search(r'<tr id="row-\d+" class="row-down".*?</tr>', html).group(0)
    assert WRITES_NOWHERE in down
    # The cookie keeps the view for the next visit; the toggle goes back to cards.
    again = client.get("/").content.decode()
    assert "cluster-rows" in again and 'hx-get="/?view=cards"' in again
    assert "cluster-rows" not in client.get("/?view=cards").content.decode()


def test_the_tab_title_and_favicon_carry_the_clusters_that_need_someone(client, viewer, fleet):
    html = client.get("/").content.decode()
    assert "<title>2 down · 1 degraded · 1 unknown · HA Center</title>" in html
    assert '<link rel="icon" href="/static/favicon-down.svg" type="image/svg+xml">' in html
    assert 'data-title="2 down · 1 degraded · 1 unknown · HA Center"' in html
    assert '<script src="/static/dashboard.js" defer></script>' in html
    Cluster.objects.filter(state="down").update(state="healthy")
    html = client.get("/").content.decode()
    assert "<title>1 degraded · 1 unknown · HA Center</title>" in html
    assert 'href="/static/favicon-warn.svg"' in html
    Cluster.objects.update(state="healthy")
    html = client.get("/").content.decode()
    assert "<title>All healthy · HA Center</title>" in html
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html


def test_a_refresh_with_nothing_changed_answers_204_without_a_body(client, viewer, fleet):
    url = poll_url(client.get("/").content.decode())
    assert re.search(r"[?&]v=[0-9a-f]{16}$", url)
    response = client.get(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 204 and response.content == b""


def test_a_refresh_sends_only_the_card_that_changed(client, viewer, fleet):
    html = client.get("/").content.decode()
    full = len(client.get("/", HTTP_HX_REQUEST="true").content)
    url = poll_url(html)
    NodeStatus.objects.filter(node__cluster=fleet["echo"], node__name="node2").update(
        lag_bytes=8192
    )
    response = client.get(url, HTTP_HX_REQUEST="true")
    part = response.content.decode()
    assert response.status_code == 200
    assert part.count("hx-swap-oob") == 2  # the poller with its new version, and echo's card
    assert part.startswith('<p hx-swap-oob="true" id="dashboard-poll"')
    assert f'<article hx-swap-oob="true" id="cluster-{fleet["echo"].pk}"' in part
    assert "8 KiB · 0.4 s" in part and 'data-cluster="alpha"' not in part
    assert "triage-counts" not in part  # the counts did not move
    assert len(part) * 6 < full  # one card and a line, not twelve cards
    # The new version is current: polling with it again finds nothing new.
    assert client.get(poll_url(part), HTTP_HX_REQUEST="true").status_code == 204
    assert client.get(url, HTTP_HX_REQUEST="true").status_code == 200  # the old one still diffs


def test_a_change_of_state_sends_the_counts_and_the_reordered_list(client, viewer, fleet):
    url = poll_url(client.get("/").content.decode())
    Cluster.objects.filter(pk=fleet["hotel"].pk).update(
        state="down", state_since=timezone.now(), state_reasons=[WRITES_NOWHERE]
    )
    part = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert part.startswith('<nav hx-swap-oob="true" id="triage-counts"')
    assert 'data-title="3 down · 1 degraded · 1 unknown · HA Center"' in part
    assert '<section id="dashboard" hx-swap-oob="true"' in part
    assert shown_names(part)[:3] == ["down-old", "down-new", "hotel"]


def test_a_refresh_from_a_version_this_process_does_not_know_gets_the_whole_list(
    client, viewer, fleet
):
    part = client.get("/?v=0123456789abcdef", HTTP_HX_REQUEST="true").content.decode()
    assert '<section id="dashboard" hx-swap-oob="true"' in part and len(shown_names(part)) == 12
    # A malformed version is no cache key, and no error.
    part = client.get("/?v=../../etc", HTTP_HX_REQUEST="true").content.decode()
    assert '<section id="dashboard" hx-swap-oob="true"' in part


def test_a_changed_row_is_sent_inside_a_template(client, viewer, fleet):
    url = poll_url(client.get("/?view=rows").content.decode())
    assert "view=rows" in url
    NodeStatus.objects.filter(node__cluster=fleet["golf"], node__name="node2").update(
        lag_bytes=8192
    )
    part = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert re.search(
        rf'<template><tr hx-swap-oob="true" id="row-{fleet["golf"].pk}".*</tr></template>$', part
    )


def test_the_first_cluster_brings_the_counts_to_an_empty_dashboard(client, viewer):
    html = client.get("/").content.decode()
    assert "No clusters yet." in html and "<title>Clusters · HA Center</title>" in html
    assert '<nav id="triage-counts" class="triage-counts" hidden></nav>' in html
    assert client.get(poll_url(html), HTTP_HX_REQUEST="true").status_code == 204
    add_cluster("first", "degraded", reason=LAGGING)
    part = client.get(poll_url(html), HTTP_HX_REQUEST="true").content.decode()
    assert part.startswith('<nav hx-swap-oob="true" id="triage-counts"')
    assert 'data-title="1 degraded · HA Center"' in part and shown_names(part) == ["first"]


def test_the_htmx_fragments_are_compressed_and_the_page_is_not(client, viewer, fleet):
    fragment = client.get("/", HTTP_HX_REQUEST="true", HTTP_ACCEPT_ENCODING="gzip")
    assert fragment["Content-Encoding"] == "gzip"
    assert b'id="triage"' in gzip.decompress(fragment.content)
    # The page carries the CSRF token (hx-headers): compressed, it would be open to BREACH.
    page = client.get("/", HTTP_ACCEPT_ENCODING="gzip")
    assert not page.has_header("Content-Encoding") and b"X-CSRFToken" in page.content
    assert "X-CSRFToken" not in gzip.decompress(fragment.content).decode()


def test_the_dashboard_reads_a_constant_number_of_queries_with_a_search(
    client, viewer, fleet, django_assert_max_num_queries
):
    # session, user, groups, clusters, statuses, the search, wizard draft: not per cluster
    with django_assert_max_num_queries(8):
        html = client.get("/?q=node&view=rows").content.decode()
    assert len(shown_names(html)) == 12
