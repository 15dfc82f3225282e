"""Issue 19, observations 8 and 9, in the pages' markup: the servers table that folds into
cards on a phone, the menu button, the favicon, confirmations before removing an alert
channel and before running setup again, the recommended rebuild not drawn as a danger, the
compact audit filter, and the wizard's credential picked once for every server. (The browser
test in tests/e2e/test_console_browser.py checks the same pages at 390 px.)"""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from clusters.models import AlertChannel, AlertDelivery, Credential, NodeStatus, WizardDraft
from clusters.web import wizard
from tests.conftest import make_user
from tests.unit.clusters.web.test_page_markup import HANDLER, INLINE_SCRIPT, STYLE_ATTR
from tests.unit.conftest import three_node_cluster

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(django_user_model):
    return make_user(django_user_model, "boss", "admin")


@pytest.fixture
def cluster():
    """pg1, degraded: node2 stopped and needs a rebuild."""
    cluster, nodes = three_node_cluster(
        state="degraded", last_checked=timezone.now(), last_leader="node1"
    )
    for node, role, state in ((nodes[0], "primary", "running"), (nodes[1], "replica", "stopped")):
        NodeStatus.objects.create(
            node=node, role=role, state=state, lag_bytes=None if role == "primary" else 4096
        )
    return cluster


def _csp_safe(html: str) -> None:
    assert not INLINE_SCRIPT.search(html) and not HANDLER.search(html)
    assert not STYLE_ATTR.search(html)


def test_every_page_links_the_favicon_and_the_static_file_is_an_svg(client, admin):
    client.force_login(admin)
    for url in ("/", "/alerts/", "/audit/", "/users/", "/users/tokens/", "/login/"):
        html = client.get(url).content.decode()
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html, url
    favicon = Path(settings.BASE_DIR) / "static" / "favicon.svg"
    assert favicon.read_text().startswith("<svg xmlns=")


def test_the_menu_folds_under_a_button_that_needs_no_script(client, admin):
    client.force_login(admin)
    html = client.get("/").content.decode()
    toggle = re.search(r'<input type="checkbox" id="menu-toggle"[^>]*>', html)
    assert toggle and 'aria-controls="main-menu"' in toggle.group(0)
    assert '<label for="menu-toggle" class="menu-button">Menu</label>' in html
    menu = html.split('id="main-menu"', 1)[1]
    assert 'aria-label="Main"' in menu and "Log out" in menu
    _csp_safe(html)


def test_the_servers_table_labels_every_cell_for_its_phone_card(client, admin, cluster):
    client.force_login(admin)
    html = client.get(f"/clusters/{cluster.pk}/").content.decode()
    table = html.split('<table class="nodes stack">', 1)[1].split("</table>", 1)[0]
    row = table.split('data-node="node2"', 1)[1].split("</tr>", 1)[0]
    for label in ("Role", "State", "Timeline", "LSN", "Lag", "Last seen", "Address"):
        assert f'data-label="{label}"' in row
    assert 'class="card-title">node2' in row and 'class="card-actions"' in row
    assert "4 KiB" in row.split('data-label="Lag"', 1)[1].split("</td>", 1)[0]


def test_the_recommended_rebuild_is_the_main_button_and_danger_stays_for_removals(
    client, admin, cluster
):
    client.force_login(admin)
    html = client.get(f"/clusters/{cluster.pk}/").content.decode()
    rebuild = re.search(r'<a class="([^"]*)" href="[^"]*/confirm/rebuild/\?node=node2">', html)
    assert rebuild and "danger" not in rebuild.group(1) and "recommended" in rebuild.group(1)
    assert re.search(r'class="button danger small" href="[^"]*/confirm/fence/\?node=node2"', html)
    assert '<button type="submit" class="danger">Remove pg1 from its servers</button>' in html


def test_run_setup_again_asks_before_it_posts(client, admin, cluster):
    client.force_login(admin)
    html = client.get(f"/clusters/{cluster.pk}/").content.decode()
    box = html.split('<details class="confirm-in-place" id="setup-again">', 1)[1]
    box = box.split("</details>", 1)[0]
    assert "Run setup again…</summary>" in box
    assert f'action="/clusters/{cluster.pk}/jobs/"' in box
    assert 'name="kind" value="setup"' in box and "restart or reload" in box
    assert "Yes, run setup again</button>" in box
    # Only inside the box: nothing outside it posts a setup in one click.
    outside = html.replace(box, "")
    assert 'name="kind" value="setup"' not in outside
    # A cluster never set up starts its first setup with one button, as before.
    cluster.state = "new"
    cluster.save()
    html = client.get(f"/clusters/{cluster.pk}/").content.decode()
    assert "Set up the cluster</button>" in html and "setup-again" not in html


def test_removing_an_alert_channel_asks_first_on_a_page_of_its_own(client, admin, cluster):
    channel = AlertChannel.objects.create(kind="email", target="oncall@example.com")
    AlertDelivery.objects.create(channel=channel, status="sent")
    client.force_login(admin)
    listing = client.get("/alerts/").content.decode()
    # The list links to the question; no form there removes in one click.
    assert f'<a class="button danger" href="/alerts/{channel.pk}/delete/">Remove…</a>' in listing
    assert f'action="/alerts/{channel.pk}/delete/"' not in listing
    page = client.get(f"/alerts/{channel.pk}/delete/")
    html = page.content.decode()
    assert page.status_code == 200 and AlertChannel.objects.filter(pk=channel.pk).exists()
    assert f'<form method="post" action="/alerts/{channel.pk}/delete/"' in html
    assert "its 1 recorded delivery is deleted" in html
    assert "Remove this channel</button>" in html and 'href="/alerts/"' in html
    _csp_safe(html)
    assert client.post(f"/alerts/{channel.pk}/delete/").url == "/alerts/"
    assert not AlertChannel.objects.exists()


def test_a_viewer_cannot_open_the_removal_question(client, django_user_model):
    channel = AlertChannel.objects.create(kind="email", target="oncall@example.com")
    client.force_login(make_user(django_user_model, "eve", "viewer"))
    assert client.get(f"/alerts/{channel.pk}/delete/").status_code == 403
    assert "/delete/" not in client.get("/alerts/").content.decode()


def test_the_audit_filter_is_one_folded_line_until_a_filter_is_used(client, admin):
    client.force_login(admin)
    client.post("/alerts/", {"kind": "email", "target": "a@example.com"})  # an audited change
    html = client.get("/audit/").content.decode()
    assert '<details class="filters">' in html
    assert html.index('<details class="filters">') < html.index('<table class="audit stack">')
    assert '<form method="get" class="filter-grid">' in html
    html = client.get("/audit/?user=boss").content.decode()
    assert '<details class="filters" open>' in html and "filters in use" in html


def _step2(client, **fields) -> str:
    data = {"rows": "3", "action": "add"}
    for i, (name, address, role) in enumerate(
        (
            ("node1", "10.0.0.11", "master"),
            ("node2", "10.0.0.12", "standby"),
            ("proxy", "10.0.0.10", "proxy"),
        )
    ):
        data.update(
            {
                f"servers-{i}-name": name,
                f"servers-{i}-address": address,
                f"servers-{i}-ssh_port": "22",
                f"servers-{i}-role": role,
                f"servers-{i}-credential": "",
            }
        )
    data.update(fields)
    return client.post("/wizard/2/", data)


@pytest.fixture
def at_step2(client, admin):
    client.force_login(admin)
    draft = wizard.draft_get(user=admin)
    draft.reached = WizardDraft.Step.SERVERS
    draft.save()
    return draft


def test_the_wizard_picks_the_credential_once_for_every_server(client, at_step2):
    root = Credential.objects.create(name="root", username="root", password="pw-123456")
    other = Credential.objects.create(name="dmz", username="ops", password="pw-123456")
    html = client.get("/wizard/2/").content.decode()
    assert html.count('name="credential"') == 1  # one pick for all
    assert '<label for="s-cred">SSH credential for every server</label>' in html
    assert 'class="own-credential"' in html and "the one for every server" in html

    # One pick: every server uses it ("add" keeps the step without judging it).
    _step2(client, credential=str(root.pk))
    draft = WizardDraft.objects.get(pk=at_step2.pk)
    assert [r["credential"] for r in draft.servers] == [str(root.pk)] * 4  # the added row too
    assert {r["own_credential"] for r in draft.servers} == {""}

    # One server overrides it; the page shows the shared pick and that server's own.
    _step2(client, credential=str(root.pk), **{"servers-2-credential": str(other.pk)})
    draft = WizardDraft.objects.get(pk=at_step2.pk)
    assert [r["credential"] for r in draft.servers[:3]] == [str(root.pk)] * 2 + [str(other.pk)]
    assert draft.servers[2]["own_credential"] == "on"
    html = client.get("/wizard/2/").content.decode()
    shared = html.split('id="s-cred"', 1)[1].split("</select>", 1)[0]
    assert f'<option value="{root.pk}" selected>' in shared
    proxy = html.split('id="s2-cred"', 1)[1].split("</select>", 1)[0]
    assert f'<option value="{other.pk}" selected>' in proxy
    node1 = html.split('id="s0-cred"', 1)[1].split("</select>", 1)[0]
    assert "selected" not in node1  # "the one for every server"
    assert '<details class="own-credential" open>' in html  # the proxy's pick shows


def test_a_draft_from_before_the_shared_pick_reads_as_shared_plus_overrides(at_step2):
    """Old drafts hold one credential per row and no marks: the one most servers use is the
    shared pick, the others are each server's own; nothing is lost or migrated."""
    a = Credential.objects.create(name="a", username="root", password="pw-123456")
    b = Credential.objects.create(name="b", username="root", password="pw-123456")
    rows = [{"name": n, "credential": str(c.pk)} for n, c in (("n1", a), ("n2", a), ("p", b))]
    assert wizard.credential_choice(rows) == (str(a.pk), ["", "", str(b.pk)])
    # Saving it back unchanged keeps the draft's cluster (the marks alone are no change).
    at_step2.servers = [dict(r, address="10.0.0.1", ssh_port="22", role="master") for r in rows]
    at_step2.save()
    before = [{k: r[k] for k in wizard.SERVER_FIELDS} for r in at_step2.servers]
    posted = wizard.rows_with_credential(
        [
            dict(r, credential="" if r["credential"] == str(a.pk) else r["credential"])
            for r in before
        ],
        str(a.pk),
    )
    assert [{k: r[k] for k in wizard.SERVER_FIELDS} for r in posted] == before
