"""The console's pages carry no inline script, event handler or style attribute, so a strict
Content Security Policy (script-src 'self') can hold; every chart and poll works from static
files and htmx attributes."""

import re

import pytest

from clusters.models import Cluster, Credential, Node, NodeStatus
from jobs.models import Job, Step

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
HANDLER = re.compile(r"\s(?:hx-)?on[a-z:-]*\s*=", re.I)  # onclick=, and htmx's hx-on:…=
STYLE_ATTR = re.compile(r"\sstyle\s*=", re.I)


@pytest.fixture
def pages(django_user_model):
    cred = Credential.objects.create(name="c", username="root", password="pw-123456")
    cluster = Cluster.objects.create(name="pg1", state="healthy", database_name="app")
    for i, kind in enumerate(("database", "database", "proxy")):
        node = Node.objects.create(
            cluster=cluster,
            name=f"n{i}",
            address=f"10.0.0.{i + 1}",
            credential=cred,
            kind=kind,
            host_key_type="ssh-ed25519",
            host_key_base64="AAAA",
            host_key_fingerprint="SHA256:x",
        )
        if kind == "database":
            NodeStatus.objects.create(node=node, role="primary" if i == 0 else "replica")
    job = Job.objects.create(kind="setup", cluster=cluster, status="succeeded")
    Step.objects.create(job=job, position=1, name="s", title="s", status="running", progress=40)
    django_user_model.objects.create_superuser("a", password="pw-123456789")
    return [
        "/",
        "/wizard/1/",
        f"/clusters/{cluster.pk}/",
        f"/clusters/{cluster.pk}/confirm/switchover/",
        f"/clusters/{cluster.pk}/confirm/failover/?node=n1",
        f"/clusters/{cluster.pk}/nodes/new/",
        f"/jobs/{job.pk}/",
        "/credentials/",
    ]


def test_the_patterns_catch_what_a_strict_csp_blocks():
    assert INLINE_SCRIPT.search("<script>alert(1)</script>")
    assert not INLINE_SCRIPT.search('<script src="/static/x.js" defer></script>')
    assert HANDLER.search('<button onclick="go()">') and HANDLER.search('<a hx-on:click="x">')
    assert not HANDLER.search('<form hx-post="/x">') and STYLE_ATTR.search('<p style="x">')


def test_pages_have_no_inline_script_handler_or_style(client, pages, django_user_model):
    client.force_login(django_user_model.objects.get(username="a"))
    checked = 0
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        # htmx's own <script src> is fine; what a CSP without 'unsafe-inline' would block is not.
        assert not INLINE_SCRIPT.search(html), (url, INLINE_SCRIPT.search(html).group(0))
        assert not HANDLER.search(html), (url, HANDLER.search(html).group(0))
        assert not STYLE_ATTR.search(html), (url, STYLE_ATTR.search(html).group(0))
        checked += 1
    assert checked == len(pages)
