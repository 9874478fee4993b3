"""Property-based tests of the HTTP API against its own OpenAPI document (issue 12): schemathesis
generates requests for every operation of /openapi.json (valid and invalid parameters, bodies,
odd text), sends them through FastAPI's TestClient and checks each answer: never a 5xx, a
status the document lists, the media type it lists, a body matching its schema; every error is
an RFC 9457 problem document without a stack trace.

The store is small and synthetic (a few snapshots) so that answers are quick and every code
path, found or not found, is reached."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from resolver.server.app import Auth, Settings, create_app
from tests.build_store import import_into
from tests.helpers import simple_snapshot

pytestmark = pytest.mark.slow

# Every cloud holds a snapshot: "no snapshot stored yet" is a designed 503 (tested in
# test_server_api.py), which this test's "never a 5xx" would otherwise report for ?cloud=usgov.
FILES = [
    (
        "Public",
        "20250106",
        1,
        {"Storage": ["10.0.0.0/16"], "Sql": ["20.0.0.0/16", "2001:db8::/48"]},
    ),
    (
        "Public",
        "20250113",
        2,
        {"Storage": ["10.0.0.0/16", "10.2.0.0/16"], "Storage.WestUS": ["10.2.0.0/24"]},
    ),
    ("AzureGovernment", "20250106", 1, {"Storage": ["30.0.0.0/16"]}),
    ("China", "20250106", 1, {"Storage": ["40.0.0.0/16"]}),
    ("AzureGermany", "20250106", 1, {"Storage": ["50.0.0.0/16"]}),
]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("schema-store")
    paths = []
    for cloud, day, cn, tags in FILES:
        path = folder / f"ServiceTags_{cloud}_{day}.json"
        path.write_bytes(simple_snapshot(cn, tags, cloud))
        paths.append(path)
    import_into(folder / "aztags.db", paths)
    return create_app(Settings(db=folder / "aztags.db", auth=Auth(), max_age_days=36500))


@pytest.fixture(scope="module")
def api_schema(app):
    # schemathesis is imported here, not at module level (and its pytest plugin is off in
    # pyproject.toml): importing it costs about a second, which every run would pay at collection
    import schemathesis

    return schemathesis.openapi.from_asgi("/openapi.json", app)


def assert_problem_when_error(response) -> None:
    if response.status_code < 400:
        return
    text = response.content.decode("utf-8", "replace")
    media = response.headers["content-type"][0]  # schemathesis: lower-case keys, list values
    assert media.startswith("application/problem+json"), (response.status_code, text)
    doc = json.loads(text)
    assert doc["status"] == response.status_code and doc["title"] and doc["detail"]
    assert "Traceback" not in text


# Every check of schemathesis but positive_data_acceptance ("a request the schema allows must
# not be a 4xx"): the document cannot say which text is an address, a real date up to today or
# a known name, so ?at=2025-02-30 or ?ip=abc are schema-valid and rightly answered with 400.
# (schemathesis' own pytest loader, from_fixture, fails under pytest 9: the operations are
# walked here, each with a Hypothesis test of its own)
@pytest.mark.parametrize("mode_name", ["positive", "negative"])
def test_every_operation_conforms_to_the_schema(api_schema, mode_name):
    from schemathesis import GenerationMode
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    mode = GenerationMode(mode_name)
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10, [o.label for o in operations]
    tested = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case):
            response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
            assert response.status_code < 500, (case.operation.label, response.content)
            assert_problem_when_error(response)

        try:
            conforms()
        except Unsatisfiable:  # an operation with no parameter has no invalid request
            assert mode == GenerationMode.NEGATIVE, operation.label
            continue
        tested.append(operation.label)
    assert len(tested) >= 8, tested
