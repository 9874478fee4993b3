"""``aztags history ADDRESS|CIDR``: which tags held it, through which prefix, from which snapshot
to which; and every ``--json`` answer of tags, cidrs, profile show and history names its snapshot.

Expected spans are computed from the raw weekly files with ipaddress, never with the code under
test.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from tests.helpers import WEEKLY_2023, cli_env, iso, raw_cn, raw_tags, synthetic_files

LATEST = WEEKLY_2023[-1]


env_for = cli_env


@pytest.fixture
def run(request, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str, store: Path | None = None):
        store = store or request.getfixturevalue("db")
        return CliRunner().invoke(
            main, list(args), env=env_for(store, tmp_path), catch_exceptions=False
        )

    return invoke


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("prefix-history")
    path = folder / "aztags.db"
    result = CliRunner().invoke(
        main,
        ["import", *map(str, synthetic_files(folder))],
        env=env_for(path, folder),
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return path


@functools.cache
def _bounds(cidr: str) -> tuple[int, int, int]:
    net = ipaddress.ip_network(cidr)
    return net.version, int(net.network_address), int(net.broadcast_address)


def expected_spans(query: str) -> list[tuple[str, str, str, int, int, int | None]]:
    """(tag, prefix, relation, first cn, last cn, removed-in cn) from the raw weekly files."""
    version, first, last = _bounds(
        query if "/" in query else f"{query}/{32 if '.' in query else 128}"
    )
    held: dict[tuple[str, str, str], list[int]] = {}
    for i, day in enumerate(WEEKLY_2023):
        for name, props in raw_tags("Public", day).items():
            for p in props["addressPrefixes"]:
                v, lo, hi = _bounds(p)  # ipaddress, once per distinct prefix
                if v != version or hi < first or lo > last:
                    continue
                if (lo, hi) == (first, last) and "/" in query:
                    relation = "equal"
                else:
                    relation = "contains" if lo <= first and last <= hi else "inside"
                held.setdefault((name, p, relation), []).append(i)
    spans = []
    cns = [raw_cn("Public", d) for d in WEEKLY_2023]
    for (name, prefix, relation), seen in held.items():
        start = prev = seen[0]
        for i in [*seen[1:], None]:
            if i is not None and i == prev + 1:
                prev = i
                continue
            removed = cns[prev + 1] if prev + 1 < len(cns) else None
            spans.append((name, prefix, relation, cns[start], cns[prev], removed))
            if i is not None:
                start = prev = i
    return sorted(spans)


def spans_of(doc) -> list[tuple]:
    return sorted(
        (
            s["tag"],
            s["prefix"],
            s["relation"],
            s["from"]["change_number"],
            s["to"]["change_number"],
            s["removed_in"]["change_number"] if s["removed_in"] else None,
        )
        for s in doc["spans"]
    )


@pytest.mark.realdata
@pytest.mark.parametrize("query", ["20.33.2.0/24", "20.33.2.7", "20.38.96.1", "13.64.0.0/16"])
def test_history_of_an_address_or_cidr_agrees_with_the_files(run, query):
    result = run("history", query, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["query"] == query
    assert doc["snapshot"]["change_number"] == raw_cn("Public", LATEST)
    assert doc["snapshot"]["file_date"] == iso(LATEST)
    assert doc["since"]["change_number"] == raw_cn("Public", WEEKLY_2023[0])
    assert spans_of(doc) == expected_spans(query)


@pytest.mark.realdata
def test_history_of_the_readme_prefix_names_the_week_it_came_in(run):
    # AzureCloud.westeurope gained 20.33.2.0/24 in changeNumber 247 (2023-03-27)
    result = run("history", "20.33.2.0/24")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("CIDR 20.33.2.0/24 in the Public snapshots from changeNumber 244")
    assert lines[1].split() == ["tag", "prefix", "from", "to", "removed", "in"]
    row = next(line for line in lines if line.startswith("AzureCloud.westeurope "))
    assert row.split()[1:4] == ["20.33.2.0/24", "247", "(2023-03-27)"]
    assert row.split()[-1] == "-"  # still there in the newest snapshot


def test_history_of_a_removed_prefix_says_when_it_went(run, synthetic):
    doc = json.loads(run("history", "30.0.0.9", "--json", store=synthetic).stdout)
    assert [(s["tag"], s["prefix"], s["relation"]) for s in doc["spans"]] == [
        ("Gone", "30.0.0.0/24", "contains")
    ]
    span = doc["spans"][0]
    assert (span["from"]["change_number"], span["to"]["change_number"]) == (1, 1)
    assert span["removed_in"] == {"change_number": 2, "file_date": "2025-01-13"}
    assert span["current"] is False
    text = run("history", "30.0.0.9", store=synthetic).stdout.splitlines()
    assert text[2].split() == ["Gone", "30.0.0.0/24", "1", "(2025-01-06)", "1", "(2025-01-06)",
                               "2", "(2025-01-13)"]  # fmt: skip


def test_history_of_a_cidr_lists_recut_prefixes_inside_it(run, synthetic):
    doc = json.loads(run("history", "10.0.0.0/16", "--json", store=synthetic).stdout)
    got = {(s["tag"], s["prefix"], s["relation"]) for s in doc["spans"]}
    assert got == {
        ("Storage", "10.0.0.0/16", "equal"),
        ("Storage", "10.0.0.0/17", "inside"),
        ("Storage", "10.0.128.0/17", "inside"),
        ("Storage.WestUS", "10.0.0.0/24", "inside"),
        ("Storage.WestUS", "10.0.1.0/24", "inside"),
    }
    equal = next(s for s in doc["spans"] if s["relation"] == "equal")
    assert equal["removed_in"]["change_number"] == 2  # re-cut into two /17s
    text = run("history", "10.0.0.0/16", store=synthetic).stdout
    assert "inside:10.0.0.0/17" in text


def test_history_of_an_address_no_tag_ever_had_exits_3(run, synthetic):
    result = run("history", "192.0.2.1", store=synthetic)
    assert result.exit_code == 3 and result.stdout == ""
    assert "192.0.2.1 was in no Public service tag in any stored snapshot" in result.stderr
    assert "changeNumber 1 of 2025-01-06 to 2 of 2025-01-13" in result.stderr


def test_history_of_a_tag_still_works_and_names_its_snapshot(run, synthetic):
    doc = json.loads(run("history", "Gone", "--json", store=synthetic).stdout)
    assert doc["snapshot"]["change_number"] == 2 and doc["snapshot"]["cloud"] == "Public"
    assert doc["query"] == "Gone"
    assert [v["removed_in"]["change_number"] for v in doc["versions"]] == [2]


# -- every --json answer names its snapshot --------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("tags",),
        ("tags", "--at", "cn:1"),
        ("cidrs", "Storage"),
        ("cidrs", "--profile", "azureml", "--region", "westus", "--allow-missing"),
        ("profile", "show", "azureml", "--region", "westus", "--allow-missing"),
        ("history", "Storage"),
        ("history", "10.0.0.1"),
    ],
    ids=" ".join,
)
def test_every_json_answer_names_its_snapshot(run, synthetic, args):
    result = run(*args, "--json", store=synthetic)
    assert result.exit_code == 0, result.stderr
    snapshot = json.loads(result.stdout)["snapshot"]
    at_one = "cn:1" in args
    assert snapshot["cloud"] == "Public"
    assert snapshot["change_number"] == (1 if at_one else 2)
    assert snapshot["file_date"] == ("2025-01-06" if at_one else "2025-01-13")
