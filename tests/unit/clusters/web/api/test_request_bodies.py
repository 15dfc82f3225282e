"""Request bodies are validated by their declared schema (schemas.BodyIn, through
plumbing.validated_body), strictly: a JSON string is no number, `true` no 1, a list no name.
Field names are the services' (`nodes[1].ssh_port`); a huge, non-UTF-8 or garbage body is
answered as before; and each documented body is the one its view checks."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.forms.models import model_to_dict

from clusters.models import (
    AlertChannel,
    ApiToken,
    AuditEntry,
    Cluster,
    Credential,
    EventSubscription,
    Node,
)
from clusters.web.api.openapi import ALL_REQUEST_SCHEMAS
from clusters.web.api.plumbing import error_message, field_errors
from jobs.models import Job
from tests.conftest import api_client, make_user
from tests.unit.clusters.web.api import openapi_check
from tests.unit.clusters.web.api.contract_cases import world  # noqa: F401
from tests.unit.clusters.web.api.test_alerts_api import As
from tests.unit.clusters.web.api.test_api import _cluster_body

pytestmark = pytest.mark.django_db

CREDS, CLUSTERS, SCAN, TOKENS = (
    "/api/v1/credentials/",
    "/api/v1/clusters/",
    "/api/v1/host-keys/scan/",
    "/api/v1/tokens/",
)


WRITTEN = (Credential, Cluster, Node, Job, ApiToken, AlertChannel, EventSubscription)


def _written() -> dict:
    """What a refused request must not add to or change: counts, and the rows a PATCH or PUT
    could change (channels, subscriptions, users' roles)."""
    counts = {m.__name__: m.objects.count() for m in WRITTEN}
    rows = [model_to_dict(r) for m in (AlertChannel, EventSubscription) for r in m.objects.all()]
    users = get_user_model().objects.values_list("username", "groups__name", "is_active")
    return {"counts": counts, "rows": rows, "users": sorted(users, key=str)}


def _refused(response, field: str, says: str | None = None) -> dict:
    assert response.status_code == 400, response.content[:400]
    errors = response.json()["field_errors"]
    assert field in errors, errors
    if says is not None:
        assert says in " ".join(errors[field]), errors
    return errors


# --- strict types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "body", "field", "says"),
    [
        # a string where a number belongs
        (SCAN, {"address": "198.18.0.11", "port": "22"}, "port", "1 to 65535"),
        (TOKENS, {"name": "ci", "days": "30"}, "days", "from 1 to 365"),
        # a boolean where a number belongs (bool is an int in Python, not in this API)
        (SCAN, {"address": "198.18.0.11", "port": True}, "port", "1 to 65535"),
        (TOKENS, {"name": "ci", "days": True}, "days", "from 1 to 365"),
        # a number where a boolean belongs
        (TOKENS, {"name": "ci", "never": 1}, "never", "Say true or false"),
        # a list where text belongs
        (TOKENS, {"name": ["ci"]}, "name", "must be text"),
        (CREDS, {"name": ["lab"], "username": "root", "password": "pw-123456"}, "name", "text"),
        (SCAN, {"address": ["198.18.0.11"]}, "address", "must be text"),
        # a float where a whole number belongs
        (TOKENS, {"name": "ci", "days": 30.0}, "days", "from 1 to 365"),
    ],
)
def test_a_value_of_the_wrong_json_type_is_refused_not_coerced(api, url, body, field, says):
    before = _written()
    _refused(api.post(url, body), field, says)
    assert _written() == before
    assert AuditEntry.objects.filter(result__startswith="refused").exists()


def test_strict_types_in_a_cluster_are_refused_with_the_nested_field_named(api, cred, scanned):
    body = _cluster_body(cred.pk, require_client_tls=1, postgres_version="15")
    body["nodes"][0]["ssh_port"] = "22"
    body["nodes"][1]["ssh_port"] = True
    body["nodes"][1]["credential"] = str(cred.pk)
    body["nodes"][2]["kind"] = "witness"
    body["database"] = {"name": 5, "user": "app"}
    body["http_frontends"] = [{"listen_port": "80", "app_port": 8080}]
    errors = _refused(api.post(CLUSTERS, body), "nodes[0].ssh_port", "Enter a whole number")
    assert set(errors) == {
        "require_client_tls",
        "postgres_version",
        "nodes[0].ssh_port",
        "nodes[1].ssh_port",
        "nodes[1].credential",
        "nodes[2].kind",
        "database.name",
        "http_frontends[0].listen_port",
    }
    assert "Select a valid choice" in errors["nodes[2].kind"][0]
    assert errors["require_client_tls"] == ["Expected true or false."]
    assert not Cluster.objects.exists()
    entry = AuditEntry.objects.get(action="cluster.create")
    assert entry.target == "cluster pg1" and entry.result.startswith("refused: invalid")


def test_a_list_where_a_list_of_servers_belongs_keeps_each_servers_field_names(api, cred, scanned):
    body = _cluster_body(cred.pk)
    body["nodes"][1] = "node2"
    errors = _refused(api.post(CLUSTERS, body), "nodes[1]", "Expected an object")
    assert set(errors) == {"nodes[1]"}
    # A text where an object belongs is refused, not read as an object of defaults.
    adopt = {"nodes": [], "rest_api": "admin:pw"}
    _refused(api.post("/api/v1/clusters/adopt/", adopt), "rest_api", "Expected an object")


def test_a_secret_of_the_wrong_type_is_named_but_never_echoed(api):
    body = {"name": "lab", "username": "root", "password": ["Very-secret-pw"]}
    response = api.post(CREDS, body)
    _refused(response, "password", "must be text")
    assert "Very-secret-pw" not in response.content.decode()
    entry = AuditEntry.objects.get(action="credential.create")
    assert entry.result == "refused: invalid password"
    assert "Very-secret-pw" not in str(entry.params) + entry.target + entry.result


def test_a_job_refused_for_its_body_says_why_in_its_message_and_is_audited(api, cred, scanned):
    cluster_id = api.post(CLUSTERS, _cluster_body(cred.pk)).json()["id"]
    url = f"/api/v1/clusters/{cluster_id}/jobs/"
    missing = api.post(url, {"node": "node1"})
    _refused(missing, "kind", "This field is required.")
    assert missing.json()["error"] == "kind: This field is required."
    for body, field, says in (
        ({"kind": "rebuild", "node": "node1", "full_copy": "yes"}, "full_copy", "true or false"),
        ({"kind": "rebuild", "node": 1}, "node", "must be text"),
        ({"kind": "remove_cluster", "confirm": 0}, "confirm", "the cluster's name"),
        ({"kind": "setup", "service_manager": "init"}, "service_manager", "systemd or process"),
        ({"kind": "explode"}, "kind", "unknown job kind"),
    ):
        response = api.post(url, body)
        _refused(response, field, says)
        assert says in response.json()["error"]
    assert not Job.objects.exists()
    # Every one audited, the bad full_copy too (it was the one refusal that was not).
    assert AuditEntry.objects.filter(action__startswith="job.start").count() == 6


def test_null_is_the_same_as_leaving_a_job_field_out(api, cred, scanned):
    cluster_id = api.post(CLUSTERS, _cluster_body(cred.pk)).json()["id"]
    body = {"kind": "preflight", "node": None, "full_copy": None, "confirm": None}
    response = api.post(f"/api/v1/clusters/{cluster_id}/jobs/", body)
    assert response.status_code == 202, response.json()
    job = Job.objects.get(pk=response.json()["id"])
    assert job.node is None and job.params == {}


def test_fields_the_schema_does_not_declare_are_ignored_as_the_document_says(api):
    body = {"name": "lab", "username": "root", "password": "pw-123456", "colour": "blue"}
    assert api.post(CREDS, body).status_code == 201
    channel = {"kind": "email", "target": "ops@example.com", "colour": "blue"}
    assert api.post("/api/v1/alert-channels/", channel).status_code == 201
    user = {"username": "newbie", "password": "Correct-horse-battery-42", "colour": "blue"}
    assert api.post("/api/v1/users/", user).status_code == 201
    components = openapi_check.document()["components"]["schemas"]
    said = {}
    for schema in ALL_REQUEST_SCHEMAS:
        component = components[schema.__name__]
        ignored = schema.model_config.get("extra") == "ignore"
        assert component["additionalProperties"] is ignored, schema.__name__
        words = "not listed here are ignored" if ignored else "not listed here are refused"
        assert words in component["description"], schema.__name__
        said[schema.__name__] = ignored
    # The bodies that have always refused unknown fields still do, and say so.
    refused = {"AlertChannelPatchIn", "SubscriptionIn", "SubscriptionPatchIn"}
    assert {name for name, ignored in said.items() if not ignored} == refused


def test_fields_a_body_does_not_take_are_refused_where_the_document_says_so(api, client, user):
    channel = AlertChannel.objects.create(kind="email", target="ops@example.com")
    url = f"/api/v1/alert-channels/{channel.pk}/"
    # One answer names every wrong field: a bad type and the fields the body does not take.
    response = As(client, user).patch(url, {"enabled": "no", "kind": "webhook", "colour": "red"})
    errors = _refused(response, "kind", "kind and cluster cannot change")
    assert set(errors) == {"enabled", "kind", "colour"}
    assert "Unknown field" in errors["colour"][0]
    hook = {"name": "bot", "url": "https://hooks.example.com/x", "secret": "mine"}
    errors = _refused(api.post("/api/v1/subscriptions/", hook), "non_field_errors", "secret")
    assert set(errors) == {"non_field_errors"}
    assert not EventSubscription.objects.exists()
    channel.refresh_from_db()
    assert (channel.kind, channel.enabled) == ("email", True)


# --- bodies that are no JSON object: answered as before, before any schema --------------------


@pytest.mark.parametrize(
    ("raw", "status", "says"),
    [
        ("{not json", 400, "not valid JSON"),
        ("[1, 2]", 400, "must be a JSON object"),
        ('"text"', 400, "must be a JSON object"),
        (b'{"name": "\xff\xfe"}', 400, "not UTF-8"),
        ('{"name": "\\udcff"}', 400, "broken Unicode escape"),
        ("[" * 100_000 + "]" * 100_000, 400, "nested too deeply"),
        # Python's parser takes 300 levels, pydantic's stops at 200: still a clear 400.
        ('{"name": ' + "[" * 300 + "]" * 300 + "}", 400, "not valid JSON"),
        ('{"name": "' + "x" * (1024 * 1024 + 10) + '"}', 413, "at most 1024 KB"),
    ],
)
@pytest.mark.parametrize("url", [CREDS, CLUSTERS, SCAN, TOKENS, "/api/v1/clusters/adopt/"])
def test_a_body_that_is_no_json_object_is_answered_as_before(api, url, raw, status, says):
    before = _written()
    response = api.post(url, raw)
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert says in body["error"] and body["field_errors"] == {}
    assert _written() == before


def test_the_role_and_the_token_are_checked_before_the_body(client, django_user_model):
    viewer = api_client(client, make_user(django_user_model, "watcher", "viewer"))
    assert viewer.post(CREDS, "{not json").status_code == 403
    assert viewer.post(CREDS, {"name": 5}).status_code == 403
    answer = client.post(CREDS, "{not json", content_type="application/json")
    assert answer.status_code == 401
    assert client.put(CREDS, "{not json", content_type="application/json").status_code == 405


def test_a_job_kind_the_caller_may_not_start_is_a_403_whatever_the_rest_of_the_body(
    client, django_user_model, api, cred, scanned
):
    cluster_id = api.post(CLUSTERS, _cluster_body(cred.pk)).json()["id"]
    operator = api_client(client, make_user(django_user_model, "op", "operator"))
    body = {"kind": "remove_cluster", "confirm": ["pg1"], "full_copy": "yes"}
    response = operator.post(f"/api/v1/clusters/{cluster_id}/jobs/", body)
    assert response.status_code == 403 and "admin" in response.json()["error"]


# --- the admin's and the subscriptions' bodies -------------------------------------------------


HOOK = "https://hooks.example.com/services/T0KEN"


@pytest.fixture
def admin(client, user) -> As:
    return As(client, user)  # `user` is "ops", an admin


@pytest.mark.parametrize(
    ("url", "body", "field", "says"),
    [
        ("/api/v1/alert-channels/", {"kind": "email", "target": 5}, "target", "must be text"),
        ("/api/v1/alert-channels/", {"kind": "pager", "target": "a@b.example"}, "kind", "email"),
        (
            "/api/v1/alert-channels/",
            {"kind": "email", "target": "a@b.example", "cluster": 1},
            "cluster",
            "cluster's name",
        ),
        (
            "/api/v1/alert-channels/",
            {"kind": "email", "target": "a@b.example", "min_severity": None},
            "min_severity",
            "Choose info",
        ),
        ("/api/v1/users/", {"username": "a", "password": "x", "role": None}, "role", "Choose one"),
        ("/api/v1/users/", {"username": ["a"], "password": "x"}, "username", "must be text"),
        (
            "/api/v1/subscriptions/",
            {"name": "bot", "url": HOOK, "cluster": "1"},
            "cluster",
            "cluster's id",
        ),
        (
            "/api/v1/subscriptions/",
            {"name": "bot", "url": HOOK, "cluster": True},
            "cluster",
            "cluster's id",
        ),
        (
            "/api/v1/subscriptions/",
            {"name": "bot", "url": HOOK, "enabled": 1},
            "enabled",
            "true or false",
        ),
        ("/api/v1/subscriptions/", {"name": "b" * 101, "url": HOOK}, "name", "at most 100"),
        (
            "/api/v1/subscriptions/",
            {"name": "bot", "url": HOOK, "kinds": "failover"},
            "kinds",
            "list of event kinds",
        ),
        (
            "/api/v1/subscriptions/",
            {"name": "bot", "url": HOOK, "kinds": ["failover", "boom"]},
            "kinds",
            "Unknown event kind 'boom'",
        ),
    ],
)
def test_the_admin_and_subscription_bodies_are_strict_and_say_why(admin, url, body, field, says):
    before = _written()
    errors = _refused(admin.post(url, body), field, says)
    assert set(errors) == {field}
    assert _written() == before
    assert AuditEntry.objects.get().result == f"refused: invalid {field}"
    assert "T0KEN" not in str(errors)


def test_a_patch_null_stays_on_a_channel_and_nothing_to_change_is_still_refused(admin):
    channel = AlertChannel.objects.create(kind="email", target="ops@example.com")
    url = f"/api/v1/alert-channels/{channel.pk}/"
    # Null stays, as the API has always said: here only `enabled` changes.
    body = {"target": None, "min_severity": None, "enabled": False}
    response = admin.patch(url, body)
    assert response.status_code == 200, response.json()
    channel.refresh_from_db()
    assert (channel.target, channel.min_severity, channel.enabled) == (
        "ops@example.com",
        "warning",
        False,
    )
    before = _written()
    errors = _refused(admin.patch(url, {"target": None}), "non_field_errors", "Nothing to change")
    assert set(errors) == {"non_field_errors"}
    assert _written() == before


@pytest.mark.parametrize("field", ["name", "url", "kinds", "min_severity", "enabled"])
def test_a_subscription_patch_refuses_null_where_a_field_has_no_null(admin, field):
    subscription = EventSubscription.objects.create(name="bot", url=HOOK, secret="s" * 43)
    before = _written()
    response = admin.patch(f"/api/v1/subscriptions/{subscription.pk}/", {field: None})
    assert set(_refused(response, field)) == {field}
    assert _written() == before
    entry = AuditEntry.objects.get(action="event_subscription.update")
    assert entry.result == f"refused: invalid {field}"


def test_a_subscription_patch_takes_null_for_every_cluster_and_changes_only_what_is_sent(admin):
    pg1 = Cluster.objects.create(name="pg1")
    subscription = EventSubscription.objects.create(
        name="bot", url=HOOK, secret="s" * 43, cluster=pg1, kinds=["failover"]
    )
    url = f"/api/v1/subscriptions/{subscription.pk}/"
    response = admin.patch(url, {"cluster": None})
    assert response.status_code == 200 and response.json()["cluster"] is None
    subscription.refresh_from_db()
    assert (subscription.cluster, subscription.kinds, subscription.min_severity) == (
        None,
        ["failover"],
        "info",
    )
    entry = AuditEntry.objects.get(action="event_subscription.update")
    assert entry.params["changed"] == ["cluster"]


def test_a_role_put_without_a_role_never_takes_access_away(admin, django_user_model):
    watcher = make_user(django_user_model, "watcher", "viewer")
    for body in ({}, {"role": None}, {"rôle": "none"}):
        response = admin.put(f"/api/v1/users/{watcher.pk}/role/", body)
        assert set(_refused(response, "role")) == {"role"}
    assert watcher.groups.get().name == "viewer"
    assert AuditEntry.objects.filter(result__startswith="refused: ").count() == 3


# --- the document's body is the view's schema ------------------------------------------------


def _component(schema: dict) -> dict:
    if "$ref" in schema:
        return openapi_check.document()["components"]["schemas"][schema["$ref"].split("/")[-1]]
    return schema


def _wrong_value(schema: dict) -> object:
    """A JSON value of another type than `schema` allows (null aside)."""
    schema = _component(schema)
    if "anyOf" in schema:
        schema = _component(next(s for s in schema["anyOf"] if s.get("type") != "null"))
    if "enum" in schema:
        return 12345
    return {
        "string": 12345,
        "integer": "12",
        "number": "1.5",
        "boolean": "true",
        "array": "x",
        "object": "x",
    }[schema["type"]]


def _operations_with_a_body() -> list[tuple[str, str, str]]:
    found = []
    for path, operations in openapi_check.document()["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                found.append((path, method, ref.split("/")[-1]))
    return found


def test_every_documented_request_schema_is_one_a_view_reads():
    documented = {name for _, _, name in _operations_with_a_body()}
    listed = [schema.__name__ for schema in ALL_REQUEST_SCHEMAS]
    assert documented == set(listed) and len(listed) == len(set(listed))


def _rows_to_change() -> dict[str, int]:
    """The id each path's {pk} names, by the path's start: a row of its kind (a cluster's by
    default); for a user, the world's viewer: an admin may not change their own role."""
    channel = AlertChannel.objects.create(kind="email", target="ops@example.com")
    subscription = EventSubscription.objects.create(
        name="bot", url="https://hooks.example.com/x", secret="s" * 43
    )
    watcher = get_user_model().objects.get(username="watcher")
    return {
        "/api/v1/alert-channels/": channel.pk,
        "/api/v1/subscriptions/": subscription.pk,
        "/api/v1/users/": watcher.pk,
    }


def _pk_for(path: str, rows: dict[str, int], cluster: int) -> int:
    return next((pk for start, pk in rows.items() if path.startswith(start)), cluster)


@pytest.mark.parametrize(
    ("path", "method", "component"), _operations_with_a_body(), ids=lambda v: str(v)
)
def test_the_view_validates_the_body_its_document_shows(world, path, method, component):  # noqa: F811
    """Every property of the documented body sent with the wrong type is named by the answer,
    and every required one left out is too: the view checks the schema the document shows."""
    schema = openapi_check.document()["components"]["schemas"][component]
    pk = _pk_for(path, _rows_to_change(), world["ids"]["cluster"])
    url = path.replace("{pk}", str(pk)).replace("{name}", "node2")
    headers = {"HTTP_AUTHORIZATION": f"Token {world['keys']['admin']}"}
    send = getattr(world["client"], method)
    before = _written()
    wrong = {name: _wrong_value(prop) for name, prop in schema["properties"].items()}
    response = send(url, wrong, content_type="application/json", **headers)
    assert response.status_code == 400, response.content[:300]
    assert set(response.json()["field_errors"]) == set(wrong)
    if schema.get("required"):
        response = send(url, {}, content_type="application/json", **headers)
        assert response.status_code == 400, response.content[:300]
        named = response.json()["field_errors"]
        assert set(schema["required"]) == set(named)
        assert all(messages == ["This field is required."] for messages in named.values())
    assert _written() == before


# --- the messages ---------------------------------------------------------------------------


def test_pydantic_errors_become_field_errors_with_clear_messages():
    errors = [
        {"type": "missing", "loc": ("nodes", 1, "address"), "msg": "Field required"},
        {"type": "int_type", "loc": ("nodes", 1, "ssh_port"), "msg": "Input should be …"},
        {"type": "int_type", "loc": ("nodes", 1, "ssh_port"), "msg": "Input should be …"},
        {"type": "greater_than_equal", "loc": ("days",), "msg": "…", "ctx": {"ge": 1}},
        {"type": "something_new", "loc": (), "msg": "Pydantic's own words"},
    ]
    assert field_errors(errors) == {
        "nodes[1].address": ["This field is required."],
        "nodes[1].ssh_port": ["Enter a whole number (a JSON number, not text)."],
        "days": ["Ensure this value is greater than or equal to 1."],
        "non_field_errors": ["Pydantic's own words"],
    }
    assert error_message({"type": "enum", "msg": "x", "ctx": {"expected": "'a' or 'b'"}}) == (
        "Select a valid choice: 'a' or 'b'."
    )


def test_a_post_without_a_body_is_read_as_an_empty_object(client, user):
    key = ApiToken.issue(user)
    response = client.post(
        SCAN, "", content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}"
    )
    errors = _refused(response, "address", "This field is required.")
    assert set(errors) == {"address"}
    assert json.loads(response.content)["error"] == "Cannot scan this host."
