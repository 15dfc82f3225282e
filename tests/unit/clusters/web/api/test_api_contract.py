"""The REST API's contract, held: each endpoint's status, content type, caching and the keys
and value types of its JSON, for a success and an error each (contract_cases.CASES).

The recorded answers are in api_contract.json. A change there is a change of the API that
clients (hacenter_cli, scripts) see: regenerate it on purpose only, with
`HACENTER_UPDATE_API_CONTRACT=1 pytest tests/unit/clusters/web/api/test_api_contract.py`,
and read the diff.
"""

import json
import os
from pathlib import Path

import pytest

from tests.unit.clusters.web.api.contract_cases import CASES, Case, send, world  # noqa: F401

pytestmark = pytest.mark.django_db

GOLDEN = Path(__file__).with_name("api_contract.json")
UPDATE = os.environ.get("HACENTER_UPDATE_API_CONTRACT") == "1"


def shape(value: object) -> object:
    """The JSON value's keys and types, not its data: {"id": "integer", "tags": ["string"]}.
    A list's items are described by the distinct shapes they have (none when it is empty)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        shapes = {json.dumps(shape(item), sort_keys=True) for item in value}
        return [json.loads(s) for s in sorted(shapes)]
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def answer_of(response) -> dict:
    """What the contract holds of one response."""
    # The media type: a charset parameter (ninja adds "; charset=utf-8") changes nothing.
    content_type = response["Content-Type"].split(";")[0].strip()
    recorded = {
        "status": response.status_code,
        "content_type": content_type,
        "no_store": "no-store" in response.get("Cache-Control", ""),
    }
    if content_type.startswith("application/json"):
        body = json.loads(response.content)
        recorded["body"] = shape(body)
        if isinstance(body, dict) and "field_errors" in body:
            # Which fields were named is part of the contract too (clients show them).
            recorded["field_error_names"] = sorted(body["field_errors"])
    return recorded


def _golden() -> dict:
    return json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}


@pytest.fixture(scope="module")
def recorded():
    """The golden answers; with HACENTER_UPDATE_API_CONTRACT=1, rewritten after the module."""
    answers = _golden()
    yield answers
    if UPDATE:
        GOLDEN.write_text(json.dumps(answers, indent=1, sort_keys=True) + "\n")


def test_every_case_has_a_unique_name():
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.skipif(UPDATE, reason="the golden file is being rewritten")
def test_every_recorded_case_is_still_sent():
    """A case removed from CASES must be removed from the golden file on purpose."""
    assert set(_golden()) == {c.name for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_answer_matches_the_contract(world, recorded, case: Case):  # noqa: F811
    answer = answer_of(send(world, case))
    if UPDATE:
        recorded[case.name] = answer
    assert answer == recorded.get(case.name), case
