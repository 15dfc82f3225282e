"""The OpenAPI document: served to viewers only, a valid document, every enumeration spelled
out, and every answer of the contract cases valid against it (the answers of the other tests
in this folder are checked too, by conftest.py)."""

import collections
import enum
import json

import pytest
from jsonschema import Draft202012Validator

from clusters.models import Cluster, ClusterEvent, Node, NodeStatus
from jobs.models import JobKind, JobStatus, StepStatus
from tests.conftest import api_client, make_user
from tests.unit.clusters.web.api import openapi_check
from tests.unit.clusters.web.api.contract_cases import CASES, Case, send, world  # noqa: F401
from tests.unit.clusters.web.api.test_api_contract import GOLDEN

pytestmark = pytest.mark.django_db


def test_the_document_is_served_to_a_viewer_token_and_a_viewer_session(client, django_user_model):
    viewer = make_user(django_user_model, "watcher", "viewer")
    answer = api_client(client, viewer).get("/api/v1/openapi.json")
    assert answer.status_code == 200
    assert answer.json()["openapi"].startswith("3.1")
    client.force_login(viewer)
    assert client.get("/api/v1/openapi.json").json() == answer.json()
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    # Swagger UI from our own static files, never a CDN (the CSP allows 'self' only).
    assert "/static/ninja/swagger-ui-bundle.js" in html and "cdn" not in html.lower()


def test_the_document_and_its_page_need_the_viewer_role(client, django_user_model):
    assert client.get("/api/v1/openapi.json").status_code == 302  # to the login page
    assert client.get("/api/v1/docs/")["Location"].startswith("/login/")
    assert client.get("/api/v1/openapi.json", HTTP_AUTHORIZATION="Token nope").status_code == 401
    nobody = make_user(django_user_model, "nobody", None)
    assert api_client(client, nobody).get("/api/v1/openapi.json").status_code == 403
    client.force_login(nobody)
    assert client.get("/api/v1/docs/").status_code == 403


def test_every_schema_in_the_document_is_valid_json_schema():
    for schema in openapi_check.document()["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)  # raises, naming the bad keyword


def test_every_path_of_the_api_is_in_the_document():
    golden = json.loads(GOLDEN.read_text())
    for case in CASES:
        if golden[case.name]["status"] != 405:  # a method the path refuses has no operation
            filled = case.path.format_map(collections.defaultdict(lambda: 1))
            assert openapi_check.operation_of(filled, case.method) is not None, case


@pytest.mark.parametrize(
    ("component", "values"),
    [
        ("ClusterState", Cluster.State.values),
        ("NodeRole", NodeStatus.Role.values),
        ("NodeKind", Node.Kind.values),
        ("JobKind", JobKind.values),
        ("JobStatus", JobStatus.values),
        ("StepStatus", StepStatus.values),
        ("EventKind", ClusterEvent.Kind.values),
    ],
)
def test_enumerations_are_spelled_out_from_the_models(component, values):
    assert openapi_check.document()["components"]["schemas"][component]["enum"] == values


def test_the_token_scheme_is_declared():
    schemes = openapi_check.document()["components"]["securitySchemes"]
    assert {"type": "apiKey", "in": "header", "name": "Authorization"}.items() <= next(
        iter(schemes.values())
    ).items()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_contract_answer_is_valid_against_the_document(world, case: Case):  # noqa: F811
    response = send(world, case)
    path = case.path.format(**world["ids"])
    assert openapi_check.problems(path, case.method, response) == [], response.content[:500]


def test_the_check_catches_a_wrong_answer():
    """The conftest's check has teeth: a wrong type, a missing key, an unlisted status."""
    from django.http import JsonResponse

    url = "/api/v1/jobs/1/cancel/"
    assert openapi_check.problems(url, "POST", JsonResponse({"id": 1, "status": "ok"}, status=202))
    assert openapi_check.problems(url, "POST", JsonResponse({"id": 1}, status=202))
    assert openapi_check.problems(url, "POST", JsonResponse({}, status=201))
    good = JsonResponse({"id": 1, "status": "canceled"}, status=202)
    assert openapi_check.problems(url, "POST", good) == []


def test_the_console_footer_links_the_reference_and_the_document(client, user):
    client.force_login(user)
    html = client.get("/").content.decode()
    assert 'href="/api/v1/docs/"' in html and 'href="/api/v1/openapi.json"' in html


def test_token_requests_need_no_csrf_token_and_a_session_alone_is_not_enough(django_user_model):
    """As before the port: the API authenticates by header only, so it has no cookie a
    cross-site request could ride on, and asks for no CSRF token."""
    from django.test import Client

    from clusters.models import ApiToken

    admin = make_user(django_user_model, "boss", "admin")
    strict = Client(enforce_csrf_checks=True)
    body = {"name": "x", "username": "root", "password": "pw-123456"}
    answer = strict.post(
        "/api/v1/credentials/",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {ApiToken.issue(admin)}",
    )
    assert answer.status_code == 201, answer.content
    strict.force_login(admin)
    assert (
        strict.post("/api/v1/credentials/", body, content_type="application/json").status_code
        == 401
    )


def test_operation_ids_are_unique():
    ids = [
        operation["operationId"]
        for operations in openapi_check.document()["paths"].values()
        for operation in operations.values()
    ]
    assert len(ids) == len(set(ids)), sorted(ids)


def test_ninja_error_locations_are_named_as_the_services_name_fields():
    from clusters.web.api.plumbing import field_name

    assert field_name(("body", "payload", "nodes", 1, "address")) == "nodes[1].address"
    assert field_name(("query", "after")) == "after"
    assert field_name(("body",)) == "non_field_errors"


def test_no_two_schemas_share_a_component_name():
    """The document names each schema and enumeration by its class name: two of one name (in
    two schema modules) would silently describe one answer with the other's."""
    import importlib
    import pkgutil

    from django.db.models import Choices  # the models' own: not in the document
    from pydantic import BaseModel

    from clusters.web import api as api_package

    modules = [
        importlib.import_module(f"clusters.web.api.{found.name}")
        for found in pkgutil.iter_modules(api_package.__path__)
        if found.name.startswith("schemas")
    ]
    assert len(modules) >= 4  # schemas, schemas_admin, schemas_hooks, schemas_incidents
    named: dict[str, set[int]] = {}
    for module in modules:
        for value in vars(module).values():
            documented = isinstance(value, type) and (
                (issubclass(value, enum.Enum) and not issubclass(value, Choices))
                or (issubclass(value, BaseModel) and value.__module__ == module.__name__)
            )
            if documented:
                named.setdefault(value.__name__, set()).add(id(value))
    assert [name for name, found in named.items() if len(found) > 1] == []
