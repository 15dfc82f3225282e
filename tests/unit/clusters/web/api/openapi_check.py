"""Checks an API answer against /api/v1/openapi.json: its status is one the operation lists,
its content type the one listed for it, and its JSON valid against that schema (jsonschema,
draft 2020-12, the dialect of OpenAPI 3.1)."""

import functools
import json
import re

from jsonschema import Draft202012Validator

from clusters.web.api.api import api


@functools.cache
def document() -> dict:
    """The document the API serves (the same object ninja renders at /api/v1/openapi.json)."""
    return json.loads(json.dumps(api.get_openapi_schema()))


@functools.cache
def _routes() -> list[tuple[re.Pattern, str]]:
    routes = []
    for template in document()["paths"]:
        pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template))
        routes.append((re.compile(f"^{pattern}$"), template))
    return routes


def operation_of(path: str, method: str) -> dict | None:
    """The document's operation for a request, None when the document has no such one."""
    paths = document()["paths"]
    if path in paths:  # a literal path wins over a template (clusters/adopt/, clusters/{pk}/)
        return paths[path].get(method.lower())
    for pattern, template in _routes():
        if pattern.match(path):
            return paths[template].get(method.lower())
    return None


def problems(path: str, method: str, response) -> list[str]:
    """What in `response` the document does not allow (empty: it conforms)."""
    if response.status_code == 405:
        # An unknown method has no operation to describe it; its answer is the error shape.
        schema = {"$ref": "#/components/schemas/ErrorOut"}
        return _invalid(schema, response)
    operation = operation_of(path, method)
    if operation is None:
        return [f"{method} {path}: not in the document"]
    declared = operation["responses"].get(str(response.status_code))
    if declared is None:
        return [f"{method} {path}: status {response.status_code} not in the document"]
    media = response["Content-Type"].split(";")[0].strip()
    content = declared.get("content", {})
    if media not in content:
        return [f"{method} {path}: {media} not declared for {response.status_code}"]
    if media != "application/json":
        return []
    return _invalid(content[media]["schema"], response)


def _invalid(schema: dict, response) -> list[str]:
    rooted = {**schema, "components": document()["components"]}
    validator = Draft202012Validator(rooted)
    body = json.loads(response.content)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)
    ]
