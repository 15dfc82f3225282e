"""Every action a console page offers has a twin in the REST API (issue 18: automation can
do whatever the console does), and every page's reading has one too.

The actions are found in the templates themselves: each `<form method="post">` (and each
`hx-post`/`hx-put`/`hx-patch`/`hx-delete`) names the view it posts to, or posts to the page
that renders it. A form added without an API twin, or a page added without a read twin, fails
here; so does a twin that is not in the OpenAPI document.
"""

import re
from pathlib import Path

import pytest
from django.urls import URLPattern

from clusters.web import actions
from clusters.web import urls as console_urls
from clusters.web.api.api import api

ROOT = Path(__file__).resolve().parents[4]
TEMPLATE_DIRS = [ROOT / "templates", ROOT / "clusters" / "templates"]

FORM = re.compile(r"<form\b[^>]*>", re.IGNORECASE | re.DOTALL)
HTMX_WRITE = re.compile(r"\bhx-(?:post|put|patch|delete)=\"\{% url '([\w-]+)'")
URL_NAME = re.compile(r"action=\"\{% url '([\w-]+)'")
KIND_VALUE = re.compile(r"name=\"kind\" value=\"(\w+)\"")

# Templates whose forms post back to the page that renders them (no `action`).
SELF_POSTING = {
    "registration/login.html": ["login"],
    "clusters/cluster_new.html": ["cluster-new"],
    "clusters/credential_list.html": ["credential-list"],
    "clusters/tokens.html": ["token-list"],
    "clusters/alerts.html": ["alert-channels"],
    "clusters/alert_edit.html": ["alert-channel-edit"],
    "clusters/users.html": ["user-list"],
    "clusters/node_change.html": ["node-add", "node-replace"],
    "clusters/restore.html": ["cluster-restore"],
    "clusters/node_fence.html": ["node-fence"],
    "clusters/fast_failover.html": ["cluster-fast-failover"],
    "clusters/parameters.html": ["cluster-parameters"],
    "clusters/subscriptions.html": ["subscriptions"],
    "clusters/wizard/servers.html": ["wizard-step"],
    "clusters/wizard/cluster.html": ["wizard-step"],
    "clusters/wizard/application.html": ["wizard-step"],
    "clusters/wizard/host_keys.html": ["wizard-step"],
    "clusters/wizard/preflight.html": ["wizard-step"],
    "clusters/wizard/review.html": ["wizard-step"],
}

# Each page action (the URL name it posts to) and its twin: (method, path in the document).
ACTION_TWINS = {
    "cluster-new": [("post", "/api/v1/clusters/")],
    "wizard-step": [
        ("post", "/api/v1/host-keys/scan/"),  # the host keys step
        ("post", "/api/v1/clusters/"),  # the review step saves the cluster
        ("post", "/api/v1/clusters/{}/jobs/"),  # preflight, then setup
    ],
    "credential-list": [("post", "/api/v1/credentials/")],
    "token-list": [("post", "/api/v1/tokens/")],
    "token-revoke": [("post", "/api/v1/tokens/{}/revoke/"), ("delete", "/api/v1/tokens/{}/")],
    "alert-channels": [("post", "/api/v1/alert-channels/")],
    "alert-channel-edit": [("patch", "/api/v1/alert-channels/{}/")],
    "alert-channel-test": [("post", "/api/v1/alert-channels/{}/test/")],
    "alert-channel-toggle": [("patch", "/api/v1/alert-channels/{}/")],
    "alert-channel-delete": [("delete", "/api/v1/alert-channels/{}/")],
    "user-list": [("post", "/api/v1/users/")],
    "user-role": [("put", "/api/v1/users/{}/role/")],
    "subscriptions": [("post", "/api/v1/subscriptions/")],
    "subscription-test": [("post", "/api/v1/subscriptions/{}/test/")],
    "subscription-toggle": [("patch", "/api/v1/subscriptions/{}/")],
    "subscription-rotate": [("post", "/api/v1/subscriptions/{}/rotate-secret/")],
    "subscription-delete": [("delete", "/api/v1/subscriptions/{}/")],
    "node-add": [("post", "/api/v1/clusters/{}/nodes/")],
    "node-replace": [("post", "/api/v1/clusters/{}/nodes/{}/replace/")],
    "cluster-restore": [
        ("post", "/api/v1/host-keys/scan/"),
        ("post", "/api/v1/clusters/{}/jobs/"),  # kind "restore"
    ],
    "job-start": [("post", "/api/v1/clusters/{}/jobs/")],
    # Save, remove and "Test fence device" are one page's three buttons.
    "node-fence": [
        ("put", "/api/v1/clusters/{}/nodes/{}/fence/"),
        ("delete", "/api/v1/clusters/{}/nodes/{}/fence/"),
        ("post", "/api/v1/clusters/{}/nodes/{}/fence/test/"),
    ],
    "cluster-fast-failover": [("put", "/api/v1/clusters/{}/fast-failover/")],
    "job-cancel": [("post", "/api/v1/jobs/{}/cancel/")],
    "job-retry": [("post", "/api/v1/jobs/{}/retry/")],
    # The page posts to show the strings with their password (never in a GET's URL or cache).
    "cluster-connection": [("get", "/api/v1/clusters/{}/connection/")],
    # Preview and confirm are one POST (confirm: true starts the job); PATCH does the same.
    "cluster-parameters": [("post", "/api/v1/clusters/{}/parameters/")],
}
# Page actions that need no twin, and why.
NO_TWIN = {
    "login": "the API authenticates each request with a token, not a session",
    "logout": "the API has no session to end (revoke the token instead)",
    "wizard-discard": "drops the wizard's browser draft; the API takes a cluster in one request",
}

# Each console page (GET) and the API read that answers the same question.
READ_TWINS = {
    "cluster-list": "/api/v1/clusters/",
    "cluster-new": "/api/v1/credentials/",  # the form's choices; the rest is POST /clusters/
    "cluster-detail": "/api/v1/clusters/{}/",
    "cluster-action-confirm": "/api/v1/clusters/{}/",  # what the confirmation shows
    "cluster-lag": "/api/v1/clusters/{}/lag/",
    "cluster-incident": "/api/v1/clusters/{}/incidents/",
    "cluster-connection": "/api/v1/clusters/{}/connection/",
    "cluster-parameters": "/api/v1/clusters/{}/parameters/",
    "cluster-ca": "/api/v1/clusters/{}/ca/",
    "node-add": "/api/v1/clusters/{}/",
    "node-replace": "/api/v1/clusters/{}/",
    "cluster-restore": "/api/v1/clusters/{}/backups/",
    "node-fence": "/api/v1/clusters/{}/nodes/{}/fence/",
    "cluster-fast-failover": "/api/v1/clusters/{}/fast-failover/",
    "credential-list": "/api/v1/credentials/",
    "audit-log": "/api/v1/audit/",
    "user-list": "/api/v1/users/",
    "token-list": "/api/v1/tokens/",
    "alert-channels": "/api/v1/alert-channels/",
    "alert-channel-edit": "/api/v1/alert-channels/{}/",
    "subscriptions": "/api/v1/subscriptions/",
    "job-list": "/api/v1/jobs/",
    "job-detail": "/api/v1/jobs/{}/",
    "job-steps": "/api/v1/jobs/{}/",
    "job-log": "/api/v1/jobs/{}/log/",
    "job-log-text": "/api/v1/jobs/{}/log/",  # the download: the same lines, as text
    "wizard": "/api/v1/clusters/",
    "wizard-step": "/api/v1/clusters/",
    "wizard-preflight": "/api/v1/jobs/{}/",  # the wizard's preflight is a job
}
# URL names that are not pages of their own (they only take a POST), so have no read twin.
POST_ONLY = {
    "wizard-discard",
    "user-role",
    "token-revoke",
    "alert-channel-test",
    "alert-channel-toggle",
    "alert-channel-delete",
    "subscription-test",
    "subscription-toggle",
    "subscription-rotate",
    "subscription-delete",
    "job-cancel",
    "job-retry",
    "job-start",
}


def templates() -> dict[str, str]:
    """Every template's text by its name (relative to its template folder)."""
    found = {}
    for folder in TEMPLATE_DIRS:
        for path in folder.rglob("*.html"):
            found[str(path.relative_to(folder))] = path.read_text()
    return found


def page_actions() -> dict[str, set[str]]:
    """The URL names the templates' forms and htmx writes post to, with the templates that do."""
    posted: dict[str, set[str]] = {}
    unplaced = []
    for name, text in templates().items():
        for form in FORM.findall(text):
            if 'method="post"' not in form.lower():
                continue
            named = URL_NAME.search(form)
            if named:
                targets = [named.group(1)]
            elif name in SELF_POSTING:
                targets = SELF_POSTING[name]
            else:
                unplaced.append(name)
                continue
            for target in targets:
                posted.setdefault(target, set()).add(name)
        for target in HTMX_WRITE.findall(text):
            posted.setdefault(target, set()).add(name)
    assert unplaced == [], f"forms without an action: add their pages to SELF_POSTING: {unplaced}"
    return posted


def documented() -> set[tuple[str, str]]:
    """(method, path with every parameter as {}) of each operation in the OpenAPI document."""
    doc = api.get_openapi_schema()
    found = set()
    for path, operations in doc["paths"].items():
        shape = re.sub(r"\{[^}]+\}", "{}", path)
        found |= {(method, shape) for method in operations}
    return found


def console_page_names() -> set[str]:
    return {p.name for p in console_urls.urlpatterns if isinstance(p, URLPattern) and p.name}


def test_every_page_action_has_an_api_twin_in_the_document():
    operations = documented()
    missing, undocumented = [], []
    for target, where in sorted(page_actions().items()):
        if target in NO_TWIN:
            continue
        if target not in ACTION_TWINS:
            missing.append(f"{target} (posted from {', '.join(sorted(where))})")
            continue
        undocumented += [
            f"{target}: {method.upper()} {path}"
            for method, path in ACTION_TWINS[target]
            if (method, path) not in operations
        ]
    assert missing == [], "page actions without an API twin: name one in ACTION_TWINS"
    assert undocumented == [], "API twins that the OpenAPI document does not list"


def test_the_twin_lists_name_only_actions_the_pages_still_offer():
    offered = set(page_actions())
    assert set(ACTION_TWINS) - offered == set()
    assert set(NO_TWIN) - offered == set()


def test_every_job_a_page_can_start_is_a_kind_the_api_accepts():
    doc = api.get_openapi_schema()
    api_kinds = set(doc["components"]["schemas"]["JobKind"]["enum"])
    in_templates = {kind for text in templates().values() for kind in KIND_VALUE.findall(text)}
    confirmed = set(actions.ACTIONS)  # the confirmation page's kinds (action_confirm.html)
    assert in_templates and confirmed
    assert (in_templates | confirmed) - api_kinds == set()


@pytest.mark.parametrize("page", sorted(console_page_names()))
def test_every_console_page_has_a_read_twin(page):
    if page in POST_ONLY:
        assert page in page_actions() or page in ACTION_TWINS, f"{page} is no action any more"
        return
    assert page in READ_TWINS, f"the page {page} has no read twin: name one in READ_TWINS"
    assert ("get", READ_TWINS[page]) in documented()
