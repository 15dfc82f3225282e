"""Request bodies are validated by their declared schema (schemas.BodyIn, through
plumbing.validated_body), strictly: a JSON string is no number, `true` no 1, a list no name.
Field names are the services' (`nodes[1].ssh_port`); a huge, non-UTF-8 or garbage body is
answered as before; and each documented body is the one its view checks."""

import json

import pytest

from clusters.models import ApiToken, AuditEntry, Cluster, Credential, Node
from clusters.web.api.plumbing import error_message, field_errors
from clusters.web.api.schemas import REQUEST_SCHEMAS
from jobs.models import Job
from tests.conftest import api_client, make_user
from tests.unit.clusters.web.api import openapi_check
from tests.unit.clusters.web.api.contract_cases import world  # noqa: F401
from tests.unit.clusters.web.api.test_api import _cluster_body

pytestmark = pytest.mark.django_db

CREDS, CLUSTERS, SCAN, TOKENS = (
    "/api/v1/credentials/",
    "/api/v1/clusters/",
    "/api/v1/host-keys/scan/",
    "/api/v1/tokens/",
)


def _written() -> dict:
    """Counts of what a refused request must not add to."""
    return {m.__name__: m.objects.count() for m in (Credential, Cluster, Node, Job, ApiToken)}


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
    components = openapi_check.document()["components"]["schemas"]
    for schema in REQUEST_SCHEMAS:
        assert components[schema.__name__]["additionalProperties"] is True
        assert "not listed here are ignored" in components[schema.__name__]["description"]


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
    assert documented == {schema.__name__ for schema in REQUEST_SCHEMAS}


@pytest.mark.parametrize(
    ("path", "method", "component"), _operations_with_a_body(), ids=lambda v: str(v)
)
def test_the_view_validates_the_body_its_document_shows(world, path, method, component):  # noqa: F811
    """Every property of the documented body sent with the wrong type is named by the answer,
    and every required one left out is too: the view checks the schema the document shows."""
    schema = openapi_check.document()["components"]["schemas"][component]
    url = path.replace("{pk}", str(world["ids"]["cluster"])).replace("{name}", "node2")
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
