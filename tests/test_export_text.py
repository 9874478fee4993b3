"""Exports (issue 11): the command, the shared rules every format follows (delta, state file,
atomic output, empty results, names), and the text formats (plain, csv, json, PAN-OS EDL).

Fidelity: each format's output is parsed back to prefixes and must cover exactly the address
space of the query, computed from the raw published JSON (tests/helpers.py), not by aztags."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from resolver.exports.model import object_names
from tests.helpers import (
    WEEKLY_2023,
    cli_env,
    cli_invoker,
    collapsed,
    expected_space,
    simple_snapshot,
)

DAY = WEEKLY_2023[-1]  # the current snapshot of the weekly store (the `db` fixture)


def run_in(db: Path, tmp_path: Path):
    env = cli_env(db, tmp_path)
    return cli_invoker(env)


# -- fidelity on real files ------------------------------------------------------------------------


def parse_plain(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


def parse_edl(text: str) -> list[str]:
    return [line.split(" ", 1)[0] for line in text.splitlines() if line]


def parse_csv(text: str) -> list[str]:
    return [row["prefix"] for row in csv.DictReader(io.StringIO(text))]


def parse_json(text: str) -> list[str]:
    return [p for o in json.loads(text)["objects"] for p in (*o["ipv4"], *o["ipv6"])]


PARSERS = {"plain": parse_plain, "paloalto-edl": parse_edl, "csv": parse_csv, "json": parse_json}


@pytest.mark.realdata
@pytest.mark.parametrize("fmt", sorted(PARSERS))
@pytest.mark.parametrize("aggregate", [False, True])
def test_text_formats_cover_exactly_the_query(aztags, fmt, aggregate):
    names = ["AzureCloud.westeurope", "Sql.WestEurope"]
    flags = ["--aggregate"] if aggregate else []
    result = aztags("export", *names, "--format", fmt, *flags)
    assert result.exit_code == 0, result.output
    assert collapsed(PARSERS[fmt](result.stdout)) == expected_space(names)


@pytest.mark.realdata
def test_one_family(aztags):
    result = aztags("export", "Storage.WestEurope", "-f", "plain", "--ipv6")
    assert collapsed(parse_plain(result.stdout)) == expected_space(["Storage.WestEurope"], family=6)


@pytest.mark.realdata
def test_edl_carries_provenance_on_each_line(aztags):
    result = aztags("export", "Sql.WestEurope", "-f", "paloalto-edl")
    cn = json.loads(aztags("snapshots", "--json").stdout)  # newest Public is current
    current = max(s["change_number"] for s in cn if s["cloud"] == "Public")
    assert all(
        line.endswith(f" Sql.WestEurope cn={current}") for line in result.stdout.splitlines()
    )


# -- delta, state, output, empties: with small files -----------------------------------------------


@pytest.fixture
def small(tmp_path):
    """A store with three Public files: Sql gains a prefix in 2, loses one in 3."""
    db = tmp_path / "small.db"
    aztags = run_in(db, tmp_path)
    base = {"AzureCloud": [f"10.{i}.0.0/16" for i in range(10)]}
    versions = [
        {**base, "Sql": ["20.0.0.0/16", "20.1.0.0/16", "2001:db8::/48"]},
        {**base, "Sql": ["20.0.0.0/16", "20.1.0.0/16", "20.2.0.0/16", "2001:db8::/48"]},
        {**base, "Sql": ["20.0.0.0/16", "20.2.0.0/16", "2001:db8::/48"]},
    ]
    for cn, tags in enumerate(versions, 1):
        path = tmp_path / f"ServiceTags_Public_202501{cn:02d}.json"
        path.write_bytes(simple_snapshot(cn, tags))
        assert aztags("import", str(path)).exit_code == 0
    return aztags


def test_since_with_a_full_replace_format_says_so_and_writes_everything(small):
    result = small("export", "Sql", "-f", "plain", "--since", "cn:1")
    assert result.exit_code == 0
    assert parse_plain(result.stdout) == ["20.0.0.0/16", "20.2.0.0/16", "2001:db8::/48"]
    assert "plain has no incremental commands: writing the full list" in result.stderr


def test_state_file_records_what_was_exported(small, tmp_path):
    state = tmp_path / "fw1.state"
    first = small("export", "Sql", "-f", "json", "--state", str(state), "--at", "cn:2")
    assert first.exit_code == 0
    doc = json.loads(state.read_text())
    assert doc["format"] == "json" and doc["snapshot"]["change_number"] == 2
    assert doc["objects"] == {"Sql": ["20.0.0.0/16", "20.1.0.0/16", "20.2.0.0/16", "2001:db8::/48"]}
    second = small("export", "Sql", "-f", "json", "--state", str(state))
    assert second.exit_code == 0
    assert json.loads(state.read_text())["snapshot"]["change_number"] == 3
    other = small("export", "Sql", "-f", "plain", "--state", str(state))
    assert other.exit_code == 2 and "records a json export; this is plain" in other.stderr


def test_output_file_is_replaced_whole(small, tmp_path):
    out = tmp_path / "list.txt"
    out.write_text("old\n")
    out.chmod(0o640)
    assert small("export", "Sql", "-f", "plain", "-o", str(out)).exit_code == 0
    assert parse_plain(out.read_text()) == ["20.0.0.0/16", "20.2.0.0/16", "2001:db8::/48"]
    assert out.stat().st_mode & 0o777 == 0o640  # the file's mode is kept
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".list.txt")] == []


def test_output_into_a_missing_folder_is_a_sentence(small, tmp_path):
    result = small("export", "Sql", "-f", "plain", "-o", str(tmp_path / "nope" / "x.txt"))
    assert result.exit_code == 1 and "check that the folder exists" in result.stderr


def test_an_empty_list_is_an_error_where_it_would_be_silent(small):
    result = small("export", "AzureCloud", "-f", "paloalto-edl", "--ipv6")
    assert result.exit_code == 3
    assert "no IPv6 prefixes" in result.stderr and result.stdout == ""
    assert small("export", "AzureCloud", "-f", "json", "--ipv6").exit_code == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["Sql"], "--format F"),
        (["Sql", "-f", "plian"], "Did you mean plain?"),
        (["-f", "plain"], "Name the tags to export"),
        (["Sql", "-f", "plain", "--rules"], "--rules writes a profile's rules"),
        (
            ["--profile", "azureml", "--region", "westus", "-f", "plain", "--rules"],
            "has no rule syntax",
        ),
        (["Sql", "-f", "paloalto-domain-edl"], "lists a profile's host names"),
        (["Sql", "-f", "plain", "--since", "cn:1", "--state", "x"], "give one"),
        (["Sql", "-f", "plain", "--local", "10.0.0.300/24"], "is not an address"),
    ],
)
def test_bad_requests_are_usage_errors(small, args, problem):
    result = small("export", *args)
    assert result.exit_code == 2, result.output
    assert problem in result.stderr and "Traceback" not in result.output


def test_list_formats_names_each_format_once():
    result = CliRunner().invoke(main, ["export", "--list-formats"])
    names = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert result.exit_code == 0 and len(names) == len(set(names))
    assert {"plain", "csv", "json", "paloalto-edl"} <= set(names)


def test_object_names_are_sanitised_unique_and_hashed_when_cut():
    names = object_names(
        ["Storage.WestEurope", "Storage_WestEurope", "A" * 40], allowed="A-Za-z0-9_", max_length=20
    )
    # the dotted name would collide with the other one as written: it gets the hash
    assert names[1] == "Storage_WestEurope"
    assert names[0].startswith("Storage_WestE") and names[0] != names[1]
    assert len(names[2]) == 20 and names[2].startswith("AAAA")
    assert len(set(names)) == 3
