"""Exports for Check Point (issue 11): Generic Data Center JSON.

No gateway runs here: the document is checked against the GDC schema of sk167210 (version,
description, objects with name, id (a UUID), description, ranges), its ranges are parsed back to
prefixes on real files, and each object's id must stay the same across refreshes (a gateway's
rules refer to the id)."""

from __future__ import annotations

import ipaddress
import json
import uuid

import pytest
from click.testing import CliRunner

from cli import main
from tests.helpers import (
    FROZEN_PROFILES,
    WEEKLY_2023,
    cli_env,
    collapsed,
    expected_space,
    iso,
    simple_snapshot,
)

DAY = WEEKLY_2023[-1]
NAMES = ["AzureCloud.westeurope", "Sql.WestEurope"]


CLI_PROFILES = FROZEN_PROFILES  # the conftest's aztags fixture reads them


def gdc(text: str) -> dict:
    """The document, checked against the GDC schema: required keys and their types."""
    doc = json.loads(text)
    assert set(doc) == {"version", "description", "objects"}
    assert doc["version"] == "1.0" and isinstance(doc["description"], str)
    assert isinstance(doc["objects"], list) and doc["objects"]
    for obj in doc["objects"]:
        assert set(obj) == {"name", "id", "description", "ranges"}
        assert isinstance(obj["name"], str) and 0 < len(obj["name"]) <= 63
        assert str(uuid.UUID(obj["id"])) == obj["id"]
        assert isinstance(obj["description"], str)
        assert isinstance(obj["ranges"], list) and obj["ranges"]
        for entry in obj["ranges"]:
            assert isinstance(entry, str)
            ipaddress.ip_network(entry)  # a CIDR without host bits (GDC also takes a-b ranges)
    assert len({o["id"] for o in doc["objects"]}) == len(doc["objects"])
    return doc


@pytest.mark.realdata
@pytest.mark.parametrize("aggregate", [False, True])
def test_checkpoint_covers_exactly_the_query(aztags, aggregate):
    result = aztags("export", *NAMES, "-f", "checkpoint", *(["--aggregate"] if aggregate else []))
    assert result.exit_code == 0, result.output
    (obj,) = gdc(result.stdout)["objects"]
    assert collapsed(obj["ranges"]) == expected_space(NAMES)


@pytest.mark.realdata
def test_checkpoint_ids_stay_the_same_across_refreshes(aztags):
    old = gdc(
        aztags("export", "Sql.WestEurope", "-f", "checkpoint", "--at", iso(WEEKLY_2023[0])).stdout
    )
    new = gdc(aztags("export", "Sql.WestEurope", "-f", "checkpoint").stdout)
    assert old["objects"][0]["ranges"] != new["objects"][0]["ranges"]  # the list did change
    assert old["objects"][0]["id"] == new["objects"][0]["id"]
    other = gdc(aztags("export", "Sql.WestEurope", "-f", "checkpoint", "--name", "sql-weu").stdout)
    assert other["objects"][0]["id"] != new["objects"][0]["id"]  # another object, another id


@pytest.mark.realdata
def test_checkpoint_writes_a_profile_as_one_object_with_its_provenance(aztags):
    # without --rules a profile is one list: one GDC object holding every rule's prefixes
    result = aztags("export", "--profile", "azureml", "--region", "westus", "-f", "checkpoint")
    assert result.exit_code == 0, result.output
    doc = gdc(result.stdout)
    assert [o["name"] for o in doc["objects"]] == ["azureml-westus"]
    assert "changeNumber" in doc["description"] and "profile azureml" in doc["description"]
    # GDC takes no host names and JSON no comments: they are named in the description
    assert (
        "host names of the profile, not exported: anaconda.com, *.anaconda.com"
        in (doc["description"])
    )
    assert "checkpoint takes no host names: the profile's 12 host names" in result.stderr


def small_store(tmp_path, tags):
    env = cli_env(tmp_path / "small.db", tmp_path)
    path = tmp_path / "ServiceTags_Public_20250106.json"
    path.write_bytes(simple_snapshot(1, tags))
    runner = CliRunner()
    assert runner.invoke(main, ["import", str(path)], env=env).exit_code == 0
    return lambda *args: runner.invoke(main, ["export", *args], env=env)


def test_checkpoint_output_is_deterministic(tmp_path):
    export = small_store(tmp_path, {"Sql": ["20.0.0.0/16", "2001:db8::/48"]})
    first, again = export("Sql", "-f", "checkpoint"), export("Sql", "-f", "checkpoint")
    assert first.exit_code == 0 and first.stdout == again.stdout
    assert gdc(first.stdout)["objects"][0]["ranges"] == ["20.0.0.0/16", "2001:db8::/48"]


def test_an_empty_list_is_refused(tmp_path):
    export = small_store(tmp_path, {"Sql": ["20.0.0.0/16"]})
    result = export("Sql", "-f", "checkpoint", "--ipv6")
    assert result.exit_code == 3 and result.stdout == ""
    assert "no IPv6 prefixes" in result.stderr
