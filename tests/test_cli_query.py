"""The query commands as a user runs them: tags, cidrs, lookup, diff, history, profile list/show.

Through click's CliRunner (stdout and stderr apart) and, for every command, a real subprocess.
Expected values come from the raw JSON of the published files (tests/helpers.py, standard library
only). The store of the 16 weekly Public files and one China file is conftest.py's ``db``, built
once per run and opened read-only by every command.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from resolver.profiles import builtin_profiles
from tests.diffcount import summed_delta
from tests.helpers import (
    CHINA_DAY,
    ROOT,
    WEEKLY_2023,
    as_date,
    azureml_tags,
    brute_cidrs,
    brute_lookup,
    cli_env,
    collapsed,
    expected_history,
    expected_tag_changes,
    iso,
    parse_net,
    random_addresses,
    random_cidrs,
    raw_cn,
    raw_pairs,
    raw_tags,
    sort_prefixes,
    synthetic_files,
    union_of,
)

LATEST = WEEKLY_2023[-1]


clean_env = cli_env


@pytest.fixture
def run(request, tmp_path, monkeypatch):
    """aztags ARGS... through CliRunner against the weekly store (``store=`` for another one; the
    weekly store, which needs the real files, is only built when a test uses it)."""
    monkeypatch.chdir(tmp_path)  # no ./aztags.toml
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, store: Path | str | None = None):
        store = store or request.getfixturevalue("db")
        return runner.invoke(
            main, list(args), input=input, env=clean_env(store, tmp_path), catch_exceptions=False
        )

    return invoke


@pytest.fixture
def aztags(request, tmp_path):
    """aztags ARGS... as a real process: ``python cli.py`` with AZTAGS_DB set (the weekly store,
    or ``store=``, as in ``run``)."""

    def call(
        *args: str, input: str | None = None, store: Path | str | None = None
    ) -> subprocess.CompletedProcess:
        store = store or request.getfixturevalue("db")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AZTAGS_")}
        env.update({k: v for k, v in clean_env(store, tmp_path).items() if v})
        return subprocess.run(
            [sys.executable, str(ROOT / "cli.py"), *args],
            env=env,
            cwd=tmp_path,
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return call


@pytest.fixture(scope="module")
def synthetic_db(tmp_path_factory) -> Path:
    """A re-cut, a tag that disappears, a tag that appears, a networkFeatures change: imported
    through the CLI."""
    folder = tmp_path_factory.mktemp("cli-synthetic")
    path = folder / "aztags.db"
    result = CliRunner().invoke(
        main,
        ["import", *map(str, synthetic_files(folder))],
        env=clean_env(path, folder),
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return path


def fails_cleanly(result, code: int, *phrases: str) -> None:
    """Exit code, one message on stderr with every phrase, no data and no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr
    assert result.stderr.startswith("aztags: ")
    assert "Traceback" not in result.stderr


def as_nets(lines) -> list:
    return [ipaddress.ip_network(line) for line in lines]


# -- cidrs -----------------------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "day", "form"),
    [
        ("Storage.WestEurope", "20230306", "date"),
        ("AzureCloud.westus", "20230320", "cn"),
        ("ActionGroup", "20230320", "cn"),
        ("ActionGroup", "20230327", "date"),
        ("Sql.EastUS2", "20230508", "date"),
        ("AzureFrontDoor.Frontend", "20230605", "cn"),
        ("AzureManagedGrafana", LATEST, "date"),
    ],
)
def test_cidrs_at_a_weekly_snapshot_prints_the_files_prefixes(run, name, day, form):
    at = (
        f"cn:{raw_cn('Public', day)}"
        if form == "cn"
        else (as_date(day) + timedelta(days=2)).isoformat()
    )
    result = run("cidrs", name, "--at", at)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == sort_prefixes(
        raw_tags("Public", day)[name]["addressPrefixes"]
    )
    doc = json.loads(run("cidrs", name, "--at", at, "--json").stdout)
    assert doc["snapshot"]["change_number"] == raw_cn("Public", day)
    assert doc["snapshot"]["file_date"] == iso(day)
    assert doc["tags"] == [name] and doc["aggregated"] is False


@pytest.mark.realdata
def test_cidrs_of_a_tag_before_it_existed_is_unknown(run):
    assert "AzureManagedGrafana" not in raw_tags("Public", "20230306")
    fails_cleanly(
        run("cidrs", "AzureManagedGrafana", "--at", "2023-03-06"), 3, "Unknown service tag"
    )


@pytest.mark.realdata
@pytest.mark.parametrize("region", ["westeurope", "West Europe", "WestEurope"])
def test_cidrs_base_service_with_any_spelling_of_the_region(run, region):
    result = run("cidrs", "Storage", "--region", region, "--json")
    assert result.exit_code == 0 and result.stderr == ""
    doc = json.loads(result.stdout)
    assert doc["tags"] == ["Storage.WestEurope"]
    assert doc["prefixes"] == sort_prefixes(
        raw_tags("Public", LATEST)["Storage.WestEurope"]["addressPrefixes"]
    )


@pytest.mark.realdata
def test_cidrs_region_suffix_that_disagrees_with_the_region_code(run):
    raw = raw_tags("Public", LATEST)["Storage.FranceCentral"]
    assert raw["region"] == "centralfrance"
    result = run("cidrs", "Storage", "--region", "France Central", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["tags"] == ["Storage.FranceCentral"]
    assert doc["prefixes"] == sort_prefixes(raw["addressPrefixes"])


@pytest.mark.realdata
@pytest.mark.parametrize(
    "asked", ["AzureFrontDoor.Frontend", "azurefrontdoor.frontend", "AZUREFRONTDOOR.FRONTEND"]
)
def test_cidrs_dotted_global_tag_in_any_case(run, asked):
    result = run("cidrs", asked)
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.splitlines() == sort_prefixes(
        raw_tags("Public", LATEST)["AzureFrontDoor.Frontend"]["addressPrefixes"]
    )


@pytest.mark.realdata
def test_cidrs_unknown_tag_suggests_close_names(run):
    fails_cleanly(
        run("cidrs", "Storge"), 3, "Unknown service tag 'Storge'", "Did you mean: Storage"
    )


@pytest.mark.realdata
def test_cidrs_unknown_region_suggests_the_close_code(run):
    fails_cleanly(
        run("cidrs", "Storage", "--region", "westeurop"),
        3,
        "Unknown region 'westeurop'",
        "Did you mean: westeurope?",
    )
    fails_cleanly(
        run("cidrs", "Storage", "--region", "Atlantis"),
        3,
        "Unknown region 'Atlantis'",
        "region codes in this file",
    )


@pytest.mark.realdata
def test_cidrs_warns_on_stderr_about_null_network_features(run):
    raw = raw_tags("Public", LATEST)["AzureMachineLearning.WestUS"]
    assert raw["networkFeatures"] is None
    result = run("cidrs", "AzureMachineLearning", "--region", "westus")
    assert result.exit_code == 0
    assert "aztags: warning: AzureMachineLearning.WestUS has networkFeatures null" in result.stderr
    assert "warning" not in result.stdout
    assert result.stdout.splitlines() == sort_prefixes(raw["addressPrefixes"])
    as_nets(result.stdout.splitlines())  # every stdout line is a prefix
    assert run("cidrs", "Storage", "--region", "westus").stderr == ""


@pytest.mark.realdata
def test_cidrs_family_flags_and_csv(run):
    raw = raw_tags("Public", LATEST)["AzureCloud.westus"]["addressPrefixes"]
    v4 = run("cidrs", "AzureCloud.westus", "--ipv4").stdout.splitlines()
    v6 = run("cidrs", "AzureCloud.westus", "--ipv6").stdout.splitlines()
    assert v4 == sort_prefixes(p for p in raw if ":" not in p)
    assert v6 == sort_prefixes(p for p in raw if ":" in p)
    csv = run("cidrs", "Storage.WestUS", "AzureCloud.westus", "--csv").stdout.splitlines()
    assert csv[0] == "prefix,family,tags"
    both = raw_tags("Public", LATEST)
    for line in csv[1:]:
        prefix, family, tags = line.split(",")
        owners = [
            n
            for n in ("AzureCloud.westus", "Storage.WestUS")
            if prefix in both[n]["addressPrefixes"]
        ]
        assert (family, tags.split(";")) == (f"ipv{parse_net(prefix).version}", owners), line


AZUREML_CASES = [
    ("westus", "Public", LATEST, "WestUS"),
    ("westeurope", "Public", LATEST, "WestEurope"),
    ("chinanorth2", "China", CHINA_DAY, "ChinaNorth2"),
]


@pytest.mark.realdata
@pytest.mark.parametrize(("region", "cloud", "day", "suffix"), AZUREML_CASES)
def test_cidrs_azureml_profile_is_the_union_of_the_real_tags(run, region, cloud, day, suffix):
    raw = raw_tags(cloud, day)
    expected_tags = azureml_tags(cloud, suffix)
    assert all(name in raw for name in expected_tags)
    args = ["cidrs", "--profile", "azureml", "--region", region, "--cloud", cloud.lower()]
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == sort_prefixes(union_of(raw, expected_tags))
    doc = json.loads(run(*args, "--json").stdout)
    assert sorted(doc["tags"]) == sorted(expected_tags)
    assert ("AzureFrontDoor.Frontend" in doc["tags"]) == (cloud != "China")


@pytest.mark.realdata
@pytest.mark.parametrize(("region", "cloud", "day", "suffix"), AZUREML_CASES)
def test_cidrs_azureml_aggregate_covers_the_same_addresses_without_overlap(
    run, region, cloud, day, suffix
):
    expected = collapsed(union_of(raw_tags(cloud, day), azureml_tags(cloud, suffix)))
    result = run(
        "cidrs", "--profile", "azureml", "--region", region, "--cloud", cloud.lower(), "--aggregate"
    )
    assert result.exit_code == 0, result.stderr
    nets = as_nets(result.stdout.splitlines())
    for version in (4, 6):
        mine = [n for n in nets if n.version == version]
        assert list(ipaddress.collapse_addresses(mine)) == expected[version]  # the same addresses
        assert mine == expected[version]  # and minimal: no two prefixes overlap or could merge
        assert all(not a.overlaps(b) for a, b in zip(mine, mine[1:], strict=False))
    assert len(nets) < len(union_of(raw_tags(cloud, day), azureml_tags(cloud, suffix)))


@pytest.mark.realdata
def test_cidrs_profile_errors(run):
    fails_cleanly(
        run("cidrs", "--profile", "azurml", "--region", "westus"),
        3,
        "Unknown profile 'azurml'",
        "Did you mean: azureml",
    )
    fails_cleanly(run("cidrs", "--profile", "azureml"), 3, "needs --region")
    fails_cleanly(
        run("cidrs", "--profile", "azureml", "--region", "westus", "--cloud", "china"),
        3,
        "Unknown region 'westus'",
    )


# -- lookup ----------------------------------------------------------------------------------------


def parse_lookup_text(stdout: str) -> dict[str, tuple[list, list]]:
    """{query: (containing, inside)} from the tab-separated output (TAG,PREFIX,REGION,SERVICE)."""
    out = {}
    for line in stdout.splitlines():
        query, *fields = line.split("\t")
        assert not any(f.startswith("error:") for f in fields), line
        containing = [tuple(f.split(",")[:2]) for f in fields if not f.startswith("inside:")]
        inside = [
            tuple(f[len("inside:") :].split(",")[:2]) for f in fields if f.startswith("inside:")
        ]
        out[query] = containing, inside
    return out


def lookup_queries(day: str) -> list[str]:
    newest = raw_pairs("Public", LATEST)
    addresses = random_addresses(raw_pairs("Public", day), 11, 200) + random_addresses(
        newest, 12, 100
    )
    return list(dict.fromkeys(addresses + random_cidrs(newest, 13, 50)))


def expected_lookup(day: str, queries: list[str]) -> dict[str, tuple[list, list]]:
    pairs = raw_pairs("Public", day)
    addresses = [q for q in queries if "/" not in q]
    expected = {a: (m, []) for a, m in brute_lookup(pairs, addresses).items()}
    expected.update(brute_cidrs(pairs, [q for q in queries if "/" in q]))
    return expected


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("day", "at"), [(LATEST, None), ("20230320", "2023-03-20"), ("20230306", "cn:244")]
)
def test_lookup_file_agrees_with_brute_force(run, tmp_path, day, at):
    queries = lookup_queries(day)
    path = tmp_path / "ips.txt"
    path.write_text("\n".join(queries) + "\n")
    # --max-age-days 14 beats the pinned environment: the warning is part of what is checked
    result = run(
        "lookup", "--file", str(path), "--max-age-days", "14", *(["--at", at] if at else [])
    )
    assert result.exit_code == 0, result.stderr
    if at is None:  # the newest stored file is from 2023: one stale-data warning (issue 8)
        assert result.stderr.startswith("aztags: warning: answered from stale data: Public ")
        assert result.stderr.count("\n") == 1
    else:
        assert result.stderr == ""
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == queries  # input order
    expected = expected_lookup(day, queries)
    assert parse_lookup_text(result.stdout) == expected
    assert sum(1 for c, i in expected.values() if c or i) > len(queries) // 3


@pytest.mark.realdata
def test_lookup_file_json_lines_carry_region_and_service(run, tmp_path):
    queries = lookup_queries("20230320")[::5]
    raw = raw_tags("Public", "20230320")
    result = run("lookup", "--file", "-", "--json", "--at", "cn:246", input="\n".join(queries))
    assert result.exit_code == 0, result.stderr
    header, *docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert header["snapshot"]["change_number"] == 246  # the first line names the snapshot
    expected = expected_lookup("20230320", queries)
    assert [d["query"] for d in docs] == queries
    for doc in docs:
        containing, inside = expected[doc["query"]]
        assert [(m["tag"], m["prefix"]) for m in doc["tags"]] == containing
        assert [(m["tag"], m["prefix"]) for m in doc.get("inside", [])] == inside
        assert ("inside" in doc) == ("/" in doc["query"])
        for m in doc["tags"] + doc.get("inside", []):
            assert (m["region"], m["system_service"]) == (
                raw[m["tag"]]["region"],
                raw[m["tag"]]["systemService"],
            )


@pytest.mark.realdata
@pytest.mark.parametrize("at", [None, "2023-03-27"])
def test_lookup_arguments_and_file_print_the_same_lines(run, at):
    """The single-query SQL path (arguments) and the batch index path (--file) agree line by
    line."""
    queries = lookup_queries(LATEST)[::7]
    at_args = ["--at", at] if at else []
    single = run("lookup", *queries, *at_args)
    batch = run("lookup", "--file", "-", *at_args, input="\n".join(queries) + "\n")
    assert single.exit_code == batch.exit_code == 0
    assert single.stdout == batch.stdout
    assert parse_lookup_text(single.stdout) == expected_lookup(
        "20230327" if at else LATEST, queries
    )
    single_json = json.loads(run("lookup", *queries, *at_args, "--json").stdout)
    header, *batch_json = [
        json.loads(line)
        for line in run(
            "lookup", "--file", "-", "--json", *at_args, input="\n".join(queries)
        ).stdout.splitlines()
    ]
    assert single_json["answers"] == batch_json
    assert single_json["snapshot"] == header["snapshot"]


@pytest.mark.realdata
def test_lookup_of_an_address_in_no_tag_exits_3(run):
    assert brute_lookup(raw_pairs("Public", LATEST), ["10.0.0.1"]) == {"10.0.0.1": []}
    result = run("lookup", "10.0.0.1")
    assert result.exit_code == 3
    assert "10.0.0.1 is in no Public service tag" in result.stderr
    assert "\t" not in result.stdout  # no tag fields
    cidr = run("lookup", "10.0.0.0/8")
    assert cidr.exit_code == 3 and "10.0.0.0/8 is in no Public service tag" in cidr.stderr
    two = run("lookup", "10.0.0.1", "13.64.0.1")  # not a single lookup: 0
    assert two.exit_code == 0 and len(two.stdout.splitlines()) == 2


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("1.2.3", "'1.2.3' is not an IPv4 or IPv6 address or CIDR"),
        ("13.64.0.1/16", "has host bits set; the network it belongs to is 13.64.0.0/16"),
        ("13.64.0.0/33", "the prefix length must be a whole number from 0 to 32"),
        ("13.64.0.1:443", "drop the port and ask for '13.64.0.1'"),
        ("fe80::1%eth0", "IPv6 zone id"),
    ],
)
def test_lookup_of_bad_input_exits_1_without_traceback(run, query, message):
    result = run("lookup", query)
    assert result.exit_code == 1  # the help text: "1 an address did not parse"
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{query}\terror: '{query}' ") and message in line
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.realdata
def test_lookup_of_bad_input_says_so_on_stderr(run):
    result = run("lookup", "1.2.3")
    assert "1.2.3" in result.stderr


@pytest.mark.realdata
def test_lookup_file_with_a_bad_line_exits_1_like_arguments(run):
    single = run("lookup", "13.64.0.1", "not-an-ip")
    assert single.exit_code == 1
    batch = run("lookup", "--file", "-", input="13.64.0.1\nnot-an-ip\n")
    assert "not-an-ip\terror:" in batch.stdout
    assert "1 line(s) were not addresses" in batch.stderr
    assert batch.exit_code == 1


@pytest.mark.realdata
def test_lookup_file_keeps_one_output_line_per_input_line(run):
    result = run("lookup", "--file", "-", input="13.64.0.1\n\n10.0.0.1\n")
    assert len(result.stdout.splitlines()) == 3


@pytest.mark.realdata
def test_lookup_usage_errors(run, tmp_path):
    result = run("lookup")
    assert result.exit_code == 2 and "Give addresses" in result.stderr
    path = tmp_path / "x.txt"
    path.write_text("13.64.0.1\n")
    both = run("lookup", "13.64.0.1", "--file", str(path))
    assert both.exit_code == 2 and "not both" in both.stderr


# -- diff ------------------------------------------------------------------------------------------


def parse_diff_text(stdout: str) -> tuple[str, dict[str, dict], str]:
    """(header, {tag: {status, +, -, ~, *}}, summary line) of the text output."""
    lines = stdout.splitlines()
    header, summary = lines[0], lines[-1]
    tags: dict[str, dict] = {}
    current = None
    for line in lines[1:-1]:
        if not line:
            continue
        if not line.startswith("  "):
            name, status = line.rsplit(" (", 1)
            current = tags[name] = {
                "status": status.rstrip(")"),
                "+": [],
                "-": [],
                "~": [],
                "*": [],
            }
        else:
            mark, text = line[2], line[4:]
            current[mark].append(text)
    return header, tags, summary


def summary_line(tags_added, tags_removed, tags_changed, delta) -> str:
    return (
        f"{tags_added} tags added, {tags_removed} removed, {tags_changed} changed; summed per "
        f"tag: IPv4 addresses +{delta['ipv4_addresses_added']} "
        f"-{delta['ipv4_addresses_removed']}; "
        f"IPv6 /64s +{delta['ipv6_64s_added']} -{delta['ipv6_64s_removed']}"
    )


@pytest.mark.realdata
def test_diff_weekly_pair_text_agrees_with_the_files(run):
    """20230320 -> 20230327 removes 537 (tag, prefix) pairs."""
    old, new = raw_tags("Public", "20230320"), raw_tags("Public", "20230327")
    result = run("diff", "--from", "2023-03-20", "--to", "cn:247")
    assert result.exit_code == 0 and result.stderr == ""
    header, tags, summary = parse_diff_text(result.stdout)
    assert header == "Public: changeNumber 246 (2023-03-20) -> 247 (2023-03-27)"
    expected = expected_tag_changes(old, new)
    assert list(tags) == sorted(expected)
    usable = "  (usable from 2023-04-03)"  # the file date + 7 days
    for name, (added, removed) in expected.items():
        assert tags[name]["~"] == [] and tags[name]["*"] == []
        assert all(line.endswith(usable) for line in tags[name]["+"])
        assert tags[name]["+"] == [p + usable for p in sort_prefixes(added)]
        assert tags[name]["-"] == sort_prefixes(removed)
        assert tags[name]["status"] == "changed"
    assert sum(len(t["-"]) for t in tags.values()) == 537
    delta = summed_delta(old, new)  # per tag: the 537 removed pairs lose addresses
    assert summary == summary_line(0, 0, len(expected), delta)
    assert delta["ipv4_addresses_removed"] > 0


@pytest.mark.realdata
def test_diff_json_with_recuts_and_removed_addresses(run):
    old, new = raw_tags("Public", "20230508"), raw_tags("Public", "20230515")
    result = run("diff", "--from", "cn:253", "--to", "2023-05-15", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {"from", "to", "usable_from", "summary", "tags"}
    assert (doc["from"]["change_number"], doc["from"]["file_date"]) == (253, "2023-05-08")
    assert (doc["to"]["change_number"], doc["to"]["file_date"]) == (254, "2023-05-15")
    assert doc["usable_from"] == "2023-05-22"
    expected = expected_tag_changes(old, new)
    got = {}
    for t in doc["tags"]:
        keys = {"name", "status", "added", "usable_from", "removed", "recut", "properties"}
        assert set(t) == keys
        assert t["usable_from"] == {p: "2023-05-22" for p in t["added"]}
        added = set(t["added"]) | {p for r in t["recut"] for p in r["added"]}
        removed = set(t["removed"]) | {p for r in t["recut"] for p in r["removed"]}
        got[t["name"]] = (added, removed)
        for r in t["recut"]:
            assert collapsed(r["added"]) == collapsed(r["removed"])
    assert got == expected
    assert any(t["recut"] for t in doc["tags"])  # AzureCloud re-cuts 2603:1030:9:33c::/62
    delta = summed_delta(old, new)
    assert doc["summary"] == {
        "counted": "per tag, summed over the changed tags; IPv6 in /64 networks",
        "tags_added": len(new.keys() - old.keys()),
        "tags_removed": len(old.keys() - new.keys()),
        "tags_changed": len(expected & old.keys() & new.keys()),
        **delta,
    }
    assert delta["ipv4_addresses_removed"] > 0


@pytest.mark.realdata
def test_diff_default_is_previous_against_current(run):
    result = run("diff")
    assert result.exit_code == 0
    header, tags, _ = parse_diff_text(result.stdout)
    assert (
        header
        == f"Public: changeNumber 258 (2023-06-12) -> {raw_cn('Public', LATEST)} (2023-06-19)"
    )
    expected = expected_tag_changes(raw_tags("Public", WEEKLY_2023[-2]), raw_tags("Public", LATEST))
    assert list(tags) == sorted(expected)


@pytest.mark.realdata
def test_diff_scoped_to_a_tag_and_to_a_profile(run):
    old, new = raw_tags("Public", "20230306"), raw_tags("Public", LATEST)
    one = run("diff", "Storage.WestUS", "--from", "2023-03-06", "--to", "2023-06-19")
    _, tags, summary = parse_diff_text(one.stdout)
    added, removed = expected_tag_changes(
        {"S": old["Storage.WestUS"]}, {"S": new["Storage.WestUS"]}
    )["S"]
    assert list(tags) == ["Storage.WestUS"]
    assert [line.split()[0] for line in tags["Storage.WestUS"]["+"]] == sort_prefixes(added)
    assert tags["Storage.WestUS"]["-"] == sort_prefixes(removed)
    delta = summed_delta(old, new, ["Storage.WestUS"])
    assert summary == summary_line(0, 0, 1, delta)
    same = run(
        "diff", "storage", "--region", "westus", "--from", "2023-03-06", "--to", "2023-06-19"
    )
    assert same.stdout == one.stdout

    profile = run(
        "diff", "--profile", "azureml", "--region", "westus", "--from", "2023-03-06", "--json"
    )
    assert profile.exit_code == 0, profile.stderr
    doc = json.loads(profile.stdout)
    scope = azureml_tags("Public", "WestUS")
    expected = expected_tag_changes({n: old[n] for n in scope}, {n: new[n] for n in scope})
    assert {t["name"]: (set(t["added"]), set(t["removed"])) for t in doc["tags"]} == expected
    delta = summed_delta(old, new, scope)
    assert doc["summary"] == {
        "counted": "per tag, summed over the changed tags; IPv6 in /64 networks",
        "tags_added": 0,
        "tags_removed": 0,
        "tags_changed": len(expected),
        **delta,
    }


@pytest.mark.realdata
def test_diff_errors(run):
    fails_cleanly(run("diff", "--from", "2023-01-01"), 3, "before the first stored Public snapshot")
    fails_cleanly(run("diff", "--to", "cn:1"), 3, "No Public snapshot with changeNumber 1")
    fails_cleanly(run("diff", "Storge"), 3, "Unknown service tag 'Storge'", "Did you mean")
    fails_cleanly(run("diff", "--to", "cn:244"), 3, "nothing to compare it with")


def test_diff_synthetic_recut_removal_addition_and_property_change(run, synthetic_db):
    result = run("diff", store=synthetic_db)
    assert result.exit_code == 0, result.stderr
    header, tags, summary = parse_diff_text(result.stdout)
    assert header == "Public: changeNumber 1 (2025-01-06) -> 2 (2025-01-13)"
    assert tags["Storage"] == {
        "status": "changed",
        "+": [],
        "-": [],
        "*": [],
        "~": ["10.0.0.0/16 re-cut as 10.0.0.0/17 10.0.128.0/17"],
    }
    assert tags["Storage.WestUS"]["+"] == ["10.0.1.0/24  (usable from 2025-01-20)"]
    assert tags["Gone"] == {
        "status": "removed",
        "+": [],
        "-": ["30.0.0.0/24", "2001:db8::/48"],
        "~": [],
        "*": [],
    }
    assert tags["New"] == {
        "status": "added",
        "+": ["40.0.0.0/24  (usable from 2025-01-20)"],
        "-": [],
        "~": [],
        "*": [],
    }
    assert tags["Sql"] == {
        "status": "changed",
        "+": [],
        "-": [],
        "~": [],
        "*": ["network_features: null -> API,NSG"],
    }
    assert (
        summary == "1 tags added, 1 removed, 3 changed; summed per tag: IPv4 addresses "
        "+512 -256; IPv6 /64s +0 -65536"
    )
    recut = json.loads(run("diff", "Storage", "--json", store=synthetic_db).stdout)
    assert recut["tags"] == [
        {
            "name": "Storage",
            "status": "changed",
            "added": [],
            "usable_from": {},
            "removed": [],
            "properties": [],
            "recut": [{"removed": ["10.0.0.0/16"], "added": ["10.0.0.0/17", "10.0.128.0/17"]}],
        }
    ]
    assert (
        recut["summary"]["ipv4_addresses_added"] == recut["summary"]["ipv4_addresses_removed"] == 0
    )


def test_diff_of_a_removed_tag_by_name(run, synthetic_db):
    result = run("diff", "Gone", store=synthetic_db)
    assert result.exit_code == 0, result.stderr
    assert parse_diff_text(result.stdout)[1]["Gone"]["status"] == "removed"


# -- history ---------------------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize(
    "name",
    ["Storage.WestUS", "ActionGroup", "AzureManagedGrafana", "AzureCloud", "AzureCloud.uknorth"],
)
def test_history_json_lists_exactly_the_snapshots_where_the_tag_changed(run, name):
    result = run("history", name, "--json")
    assert result.exit_code == 0, result.stderr
    rows = []
    for v in json.loads(result.stdout)["versions"]:
        rows.append(
            (
                as_date(v["snapshot"]["file_date"].replace("-", "")),
                v["tag_change_number"],
                v["ipv4"],
                v["ipv6"],
                v["prefixes_added"],
                v["prefixes_removed"],
            )
        )
        assert v["removed_in"] is None
    assert rows == expected_history(name)
    latest = raw_tags("Public", LATEST)[name]
    assert (v["region"], v["system_service"]) == (latest["region"], latest["systemService"])
    assert v["network_features"] == (
        None if latest["networkFeatures"] is None else sorted(latest["networkFeatures"])
    )


@pytest.mark.realdata
def test_history_text_table(run):
    result = run("history", "actiongroup")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "changeNumber",
        "file",
        "date",
        "tag",
        "cn",
        "IPv4",
        "IPv6",
        "added",
        "removed",
        "networkFeatures",
    ]
    expected = expected_history("ActionGroup")
    assert len(lines) == 1 + len(expected)
    for line, (day, cn, v4, v6, added, removed) in zip(lines[1:], expected, strict=True):
        assert line.split()[1:8] == [
            day.isoformat(),
            str(cn),
            str(v4),
            str(v6),
            f"+{added}",
            f"-{removed}",
            "API,FW,NSG,UDR",
        ]


def test_history_shows_a_removed_tag(run, synthetic_db):
    text = run("history", "gone", store=synthetic_db)
    assert text.exit_code == 0
    rows = [line.split() for line in text.stdout.splitlines()[1:]]
    assert rows == [
        ["1", "2025-01-06", "1", "1", "1", "+2", "-0", "API,NSG"],
        ["2", "2025-01-13", "removed", "0", "0"],
    ]
    doc = json.loads(run("history", "Gone", "--json", store=synthetic_db).stdout)["versions"]
    assert [d["removed_in"]["change_number"] for d in doc] == [2]
    sql = json.loads(run("history", "Sql", "--json", store=synthetic_db).stdout)["versions"]
    assert [
        (d["snapshot"]["change_number"], d["tag_change_number"], d["network_features"]) for d in sql
    ] == [(1, 1, None), (2, 1, ["API", "NSG"])]


@pytest.mark.realdata
def test_history_unknown_tag(run):
    fails_cleanly(run("history", "Storage.WestUs2x"), 3, "Unknown service tag", "Storage.WestUS2")


# -- tags ------------------------------------------------------------------------------------------


def tag_rows(doc) -> list[tuple[str, int, int]]:
    return [(t["name"], t["ipv4"], t["ipv6"]) for t in doc["tags"]]


def raw_rows(tags: dict[str, dict], keep) -> list[tuple[str, int, int]]:
    return [
        (
            n,
            sum(":" not in p for p in tags[n]["addressPrefixes"]),
            sum(":" in p for p in tags[n]["addressPrefixes"]),
        )
        for n in sorted(tags)
        if keep(n, tags[n])
    ]


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("args", "keep"),
    [
        ((), lambda n, p: True),
        (("--region", "westeurope"), lambda n, p: p["region"] == "westeurope"),
        (("--region", "France Central"), lambda n, p: p["region"] == "centralfrance"),
        (
            ("--service", "Storage"),
            lambda n, p: n == "Storage" or (n.startswith("Storage.") and p["region"] != ""),
        ),
        (("--service", "AzureStorage"), lambda n, p: p["systemService"] == "AzureStorage"),
        (("--feature", "nsg"), lambda n, p: "NSG" in (p["networkFeatures"] or [])),
        (
            ("--region", "westus", "--feature", "FW"),
            lambda n, p: p["region"] == "westus" and "FW" in (p["networkFeatures"] or []),
        ),
    ],
)
@pytest.mark.parametrize(
    ("day", "at"), [(LATEST, None), ("20230306", "cn:244"), ("20230403", "2023-04-05")]
)
def test_tags_filters_count_like_the_file(run, args, keep, day, at):
    result = run("tags", *args, *(["--at", at] if at else []), "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["snapshot"]["change_number"] == raw_cn("Public", day)
    raw = raw_tags("Public", day)
    assert tag_rows(doc) == raw_rows(raw, keep)
    for t in doc["tags"]:
        p = raw[t["name"]]
        assert (t["region"], t["system_service"], t["change_number"]) == (
            p["region"],
            p["systemService"],
            p["changeNumber"],
        )
        assert t["network_features"] == (
            None if p["networkFeatures"] is None else sorted(p["networkFeatures"])
        )


@pytest.mark.realdata
def test_tags_text_table(run):
    result = run("tags", "--region", "uksouth")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "name",
        "region",
        "systemService",
        "networkFeatures",
        "IPv4",
        "IPv6",
    ]
    raw = raw_tags("Public", LATEST)
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert sorted(rows) == sorted(n for n, p in raw.items() if p["region"] == "uksouth")
    storage = raw["Storage.UKSouth"]
    assert rows["Storage.UKSouth"][1:] == [
        "uksouth",
        storage["systemService"],
        ",".join(sorted(storage["networkFeatures"])),
        str(sum(":" not in p for p in storage["addressPrefixes"])),
        str(sum(":" in p for p in storage["addressPrefixes"])),
    ]
    empty = run("tags", "--region", "uknorth").stdout.splitlines()
    assert "[]" in next(line for line in empty if line.startswith("AzureCloud.uknorth ")).split()
    null = run(
        "tags", "--service", "AzureMachineLearning", "--region", "westus"
    ).stdout.splitlines()
    assert null[1].split()[:4] == [
        "AzureMachineLearning.WestUS",
        "westus",
        "AzureMachineLearning",
        "null",
    ]


@pytest.mark.realdata
def test_tags_errors(run):
    fails_cleanly(run("tags", "--region", "Atlantis"), 3, "Unknown region 'Atlantis'")
    fails_cleanly(
        run("tags", "--service", "Storag"), 3, "No tag of service 'Storag'", "Did you mean"
    )
    fails_cleanly(run("tags", "--at", "2023-03-05"), 3, "before the first stored Public snapshot")
    fails_cleanly(
        run("tags", "--at", "yesterday"), 2, "neither a date (YYYY-MM-DD) nor a changeNumber"
    )
    fails_cleanly(
        run("tags", "--service", "AzureFrontDoor.Frontend", "--feature", "VSE"), 3, "No tag matches"
    )
    bad = run("tags", "--feature", "XYZ")
    assert bad.exit_code == 2 and "Traceback" not in bad.stderr


@pytest.mark.realdata
def test_tags_service_without_a_tag_in_the_region_names_the_region(run):
    result = run("tags", "--region", "westus", "--service", "AzureFrontDoor.Frontend")
    assert result.exit_code == 3
    assert "westus" in result.stderr
    assert "Did you mean: AzureFrontDoor.Frontend" not in result.stderr


# -- profile list / show ---------------------------------------------------------------------------


def test_profile_list(run, synthetic_db):
    # profile list reads no snapshot: any store will do, so not the weekly one (real files)
    result = run("profile", "list", store=synthetic_db)
    assert result.exit_code == 0
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["name", "rules", "fqdns", "page", "date", "source", "description"]
    azureml = builtin_profiles()["azureml"]
    n_rules, n_fqdns = len(azureml.rules), len(azureml.fqdns)
    assert [str(n_rules), str(n_fqdns)] in [r[1:3] for r in rows if r[0] == "azureml"]
    doc = json.loads(run("profile", "list", "--json", store=synthetic_db).stdout)
    assert ("azureml", n_rules, n_fqdns, "<builtin>/azureml.toml") in [
        (p["name"], p["rules"], p["fqdns"], p["origin"]) for p in doc
    ]


def test_profile_list_includes_user_profiles(run, synthetic_db, tmp_path):
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "backup.toml").write_text(
        'description = "Nightly backup"\n\n[[rule]]\ndirection = "outbound"\n'
        'ports = "443"\ntag = "Storage.{region}"\n'
    )
    doc = json.loads(
        run("profile", "list", "--profiles-dir", str(folder), "--json", store=synthetic_db).stdout
    )
    assert ("backup", 1) in [(p["name"], p["rules"]) for p in doc]
    assert sorted(p["name"] for p in doc) == sorted([*builtin_profiles(), "backup"])


@pytest.mark.realdata
@pytest.mark.parametrize(("region", "cloud", "day", "suffix"), AZUREML_CASES)
def test_profile_show_resolves_real_tags_with_counts(run, region, cloud, day, suffix):
    raw = raw_tags(cloud, day)
    result = run(
        "profile", "show", "azureml", "--region", region, "--cloud", cloud.lower(), "--json"
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["profile"], doc["cloud"], doc["region"]) == ("azureml", cloud, region)
    assert doc["snapshot"]["change_number"] == raw_cn(cloud, day)
    resolved = [r["tag"] for r in doc["rules"]]
    assert [r["template"] for r in doc["rules"]] == [
        r.tag for r in builtin_profiles()["azureml"].rules
    ]
    assert sorted(set(t for t in resolved if t)) == sorted(azureml_tags(cloud, suffix))
    for rule in doc["rules"]:
        if rule["tag"] is None:
            assert rule["template"] in (
                "AzureFrontDoor.Frontend",
                "AzureFrontDoor.FirstParty",
                "VirtualNetwork",
            )
            if rule["template"] == "AzureFrontDoor.Frontend":
                assert cloud == "China" and rule["skipped"] == "not needed in China"
            continue
        prefixes = raw[rule["tag"]]["addressPrefixes"]
        assert (rule["ipv4"], rule["ipv6"]) == (
            sum(":" not in p for p in prefixes),
            sum(":" in p for p in prefixes),
        )
    union = union_of(raw, azureml_tags(cloud, suffix))
    assert doc["union"] == {
        "ipv4": sum(":" not in p for p in union),
        "ipv6": sum(":" in p for p in union),
    }
    assert len(doc["fqdns"]) == sum(
        f.applies_to(cloud) for f in builtin_profiles()["azureml"].fqdns
    )
    # China has no AzureFrontDoor.FirstParty: a warning saying why, not an error
    assert all("AzureFrontDoor.FirstParty" in w for w in doc["warnings"])
    assert bool(doc["warnings"]) == (cloud == "China")


@pytest.mark.realdata
def test_profile_show_at_an_older_snapshot(run):
    raw = raw_tags("Public", "20230306")
    doc = json.loads(
        run(
            "profile", "show", "azureml", "--region", "westus", "--at", "2023-03-06", "--json"
        ).stdout
    )
    assert doc["snapshot"]["change_number"] == raw_cn("Public", "20230306")
    counts = {r["tag"]: (r["ipv4"], r["ipv6"]) for r in doc["rules"] if r["tag"]}
    assert counts == {
        n: (
            sum(":" not in p for p in raw[n]["addressPrefixes"]),
            sum(":" in p for p in raw[n]["addressPrefixes"]),
        )
        for n in azureml_tags("Public", "WestUS")
    }
    latest = raw_tags("Public", LATEST)
    assert any(
        counts[n]
        != (
            sum(":" not in p for p in latest[n]["addressPrefixes"]),
            sum(":" in p for p in latest[n]["addressPrefixes"]),
        )
        for n in counts
    )


@pytest.mark.realdata
def test_profile_show_text(run):
    result = run("profile", "show", "azureml", "--region", "chinanorth2", "--cloud", "china")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert (
        lines[0]
        == f"azureml for China, region chinanorth2 (changeNumber {raw_cn('China', CHINA_DAY)})"
    )
    assert any("skipped: not needed in China" in line for line in lines)
    assert any(line.split()[3:4] == ["Storage.ChinaNorth2"] for line in lines)
    assert "Host names (FQDN rules):" in lines and any(
        line.startswith("pypi.org ") for line in lines
    )


@pytest.mark.realdata
def test_profile_show_errors(run):
    fails_cleanly(
        run("profile", "show", "azurml", "--region", "westus"),
        3,
        "Unknown profile 'azurml'",
        "azureml",
    )
    fails_cleanly(run("profile", "show", "azureml"), 3, "needs --region")
    fails_cleanly(
        run("profile", "show", "azureml", "--region", "westeurop"), 3, "Did you mean: westeurope?"
    )


# -- an empty or missing store ---------------------------------------------------------------------


QUERIES = [
    ("tags",),
    ("cidrs", "Storage"),
    ("lookup", "13.64.0.1"),
    ("lookup", "--file", "-"),
    ("diff",),
    ("history", "Storage"),
    ("profile", "show", "azureml", "--region", "westus"),
]


@pytest.mark.parametrize("args", QUERIES, ids=lambda a: " ".join(a))
def test_queries_on_a_missing_database_say_run_fetch(run, tmp_path, args):
    fails_cleanly(
        run(*args, input="13.64.0.1\n", store=tmp_path / "none.db"),
        3,
        "No aztags database at",
        "Run 'aztags fetch'",
    )
    assert not (tmp_path / "none.db").exists()  # a query creates nothing


@pytest.mark.parametrize("args", QUERIES, ids=lambda a: " ".join(a))
def test_queries_on_a_store_without_the_cloud_say_run_fetch(run, synthetic_db, args):
    fails_cleanly(
        run(*args, "--cloud", "usgov", input="13.64.0.1\n", store=synthetic_db),
        3,
        "No AzureGovernment snapshot is stored yet",
        "Run 'aztags fetch --cloud usgov'",
    )


def test_queries_on_a_zero_byte_database_say_run_fetch(run, tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    result = run("tags", store=empty)
    assert result.exit_code == 3 and "aztags fetch" in result.stderr


# -- every command as a real process ---------------------------------------------------------------


@pytest.mark.realdata
def test_process_tags(aztags):
    done = aztags("tags", "--region", "westeurope", "--feature", "NSG")
    assert done.returncode == 0 and done.stderr == ""
    raw = raw_tags("Public", LATEST)
    names = [line.split()[0] for line in done.stdout.splitlines()[1:]]
    assert names == sorted(
        n
        for n, p in raw.items()
        if p["region"] == "westeurope" and "NSG" in (p["networkFeatures"] or [])
    )


@pytest.mark.realdata
def test_process_cidrs(aztags):
    done = aztags("cidrs", "Storage", "--region", "West Europe", "--at", "cn:244")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.splitlines() == sort_prefixes(
        raw_tags("Public", "20230306")["Storage.WestEurope"]["addressPrefixes"]
    )
    bad = aztags("cidrs", "Storge")
    assert bad.returncode == 3 and bad.stdout == ""
    assert (
        bad.stderr.startswith("aztags: Unknown service tag 'Storge'")
        and "Traceback" not in bad.stderr
    )


@pytest.mark.realdata
def test_process_lookup(aztags):
    queries = lookup_queries(LATEST)[:40] + ["20.38.96.0/20"]
    done = aztags("lookup", "--file", "-", input="\n".join(queries) + "\nnot-an-ip\n")
    assert "1 line(s) were not addresses" in done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1].startswith("not-an-ip\terror: 'not-an-ip' is not an IPv4 or IPv6 address")
    assert parse_lookup_text("\n".join(lines[:-1])) == expected_lookup(LATEST, queries)
    single = aztags("lookup", "20.38.96.1")
    assert single.returncode == 0
    expected = brute_lookup(raw_pairs("Public", LATEST), ["20.38.96.1"])["20.38.96.1"]
    assert parse_lookup_text(single.stdout) == {"20.38.96.1": (expected, [])}
    nothing = aztags("lookup", "10.0.0.1")
    assert nothing.returncode == 3 and "is in no Public service tag" in nothing.stderr


@pytest.mark.realdata
def test_process_diff(aztags):
    done = aztags("diff", "ActionGroup", "--from", "2023-03-20", "--to", "2023-03-27")
    assert done.returncode == 0 and done.stderr == ""
    _, tags, summary = parse_diff_text(done.stdout)
    added, removed = expected_tag_changes(
        raw_tags("Public", "20230320"), raw_tags("Public", "20230327")
    )["ActionGroup"]
    assert list(tags) == ["ActionGroup"] and not added
    assert tags["ActionGroup"]["-"] == sort_prefixes(removed)
    assert summary.startswith("0 tags added, 0 removed, 1 changed; ")


@pytest.mark.realdata
def test_process_history(aztags):
    done = aztags("history", "Storage.WestUS", "--json")
    assert done.returncode == 0 and done.stderr == ""
    rows = [
        (
            as_date(v["snapshot"]["file_date"].replace("-", "")),
            v["tag_change_number"],
            v["ipv4"],
            v["ipv6"],
            v["prefixes_added"],
            v["prefixes_removed"],
        )
        for v in json.loads(done.stdout)["versions"]
    ]
    assert rows == expected_history("Storage.WestUS")


@pytest.mark.slow
def test_process_profile_list(aztags, synthetic_db):
    done = aztags("profile", "list", "--json", store=synthetic_db)
    assert done.returncode == 0 and done.stderr == ""
    assert [p["name"] for p in json.loads(done.stdout)] == sorted(builtin_profiles())


@pytest.mark.realdata
def test_process_profile_show(aztags):
    done = aztags(
        "profile", "show", "azureml", "--region", "chinanorth2", "--cloud", "china", "--json"
    )
    # the one warning: China's file has no AzureFrontDoor.FirstParty (the rule says why)
    assert done.returncode == 0 and "AzureFrontDoor.FirstParty (the page writes" in done.stderr
    doc = json.loads(done.stdout)
    assert sorted({r["tag"] for r in doc["rules"] if r["tag"]}) == sorted(
        azureml_tags("China", "ChinaNorth2")
    )
    missing = aztags("profile", "show", "azureml")
    assert missing.returncode == 3 and "needs --region" in missing.stderr and missing.stdout == ""
