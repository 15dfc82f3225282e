"""The OpenAPI document's parts ninja cannot infer: the request bodies (each a schemas.BodyIn,
which its view validates with plumbing.validated_body) and the error answers each operation
can give."""

from typing import Any

from django.urls import reverse
from ninja import NinjaAPI, Schema
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from clusters.web.api import (
    schemas_admin,
    schemas_backups,
    schemas_failover_drills,
    schemas_fencing,
)
from clusters.web.api.schemas import REQUEST_SCHEMAS, BodyIn, ErrorOut
from clusters.web.api.schemas_hooks import REQUEST_SCHEMAS as HOOK_REQUEST_SCHEMAS
from clusters.web.api.schemas_parameters import REQUEST_SCHEMAS as PARAMETER_REQUEST_SCHEMAS

COMPONENTS = "#/components/schemas/{model}"
# Every request body's schema, one list: the document lists them as components (the views
# validate their bodies themselves, so ninja does not find them), and a test holds that each
# is the body of an operation and the one its view validates.
ALL_REQUEST_SCHEMAS: tuple[type[BodyIn], ...] = (
    *REQUEST_SCHEMAS,
    *schemas_admin.REQUEST_SCHEMAS,
    *HOOK_REQUEST_SCHEMAS,
    *PARAMETER_REQUEST_SCHEMAS,
    *schemas_backups.REQUEST_SCHEMAS,
    *schemas_fencing.REQUEST_SCHEMAS,
    *schemas_failover_drills.REQUEST_SCHEMAS,
)


def errors(*statuses: int) -> dict[int, type[Schema]]:
    """`response=` entries for the error answers an operation gives, all in one shape."""
    return dict.fromkeys(statuses, ErrorOut)


def body_of(schema: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra=` naming the JSON body an operation validates (see DocumentedApi)."""
    ref = {"$ref": COMPONENTS.format(model=schema.__name__)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


class DocumentedApi(NinjaAPI):
    """NinjaAPI whose document also holds the request bodies' schemas.

    A view validates its body with the schema the document shows (plumbing.validated_body:
    strict JSON types, required fields, closed value sets) after the role check, then hands
    the values to the services the console's pages share for the rest (names, addresses,
    existence). ninja never sees a body as a parameter: the view validates it itself, so it
    answers and audits a refusal in its own words (and a job's role, which depends on the
    body's kind, is checked first). So the schemas are added to the components here and
    referenced by `body_of`.
    """

    def get_root_path(self, path_params: dict) -> str:
        # Where the API is mounted, from the document's own URL (ninja's root view, whose
        # name it reverses, is not mounted: urls.py).
        return reverse(f"{self.urls_namespace}:openapi-json").removesuffix("openapi.json")

    def get_openapi_operation_id(self, operation) -> str:
        # The view's name (cluster_create, job_log): short, and unique in this API (a test
        # checks), so generated clients get readable method names.
        return operation.view_func.__name__

    def get_content_type(self) -> str:
        # As Django's JsonResponse says it (and the API did before ninja): JSON is UTF-8 by
        # definition (RFC 8259), and clients compare the header.
        return "application/json"

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        _, found = models_json_schema(
            [(model, "validation") for model in ALL_REQUEST_SCHEMAS],
            ref_template=COMPONENTS,
        )
        schema["components"].setdefault("schemas", {}).update(found.get("$defs", {}))
        return schema
