"""Every answer the API gives in this folder's tests is checked against the OpenAPI document
(openapi_check): a view that answers a shape, status or content type the document does not
list fails the test that made it."""

import pytest
from django.test.client import Client

from tests.unit.clusters.web.api import openapi_check

NOT_OPERATIONS = ("/api/v1/openapi.json", "/api/v1/docs/")


@pytest.fixture(autouse=True)
def answers_match_the_document(monkeypatch):
    request = Client.request

    def checked(self, **environ):
        response = request(self, **environ)
        path = environ.get("PATH_INFO", "")
        if path.startswith("/api/v1/") and path not in NOT_OPERATIONS:
            found = openapi_check.problems(path, environ["REQUEST_METHOD"], response)
            assert found == [], (found, response.content[:400])
        return response

    monkeypatch.setattr(Client, "request", checked)
