"""Requirement profiles as firewall rules: direction/protocol/port filters, per-rule prefixes in
``profile show --json``, missing tags as exit 3, and ``--ipv4 --ipv6`` meaning both families.

The real numbers come from the Public file of 2025-01-13 (imported once per module); the
missing-tag cases use a small synthetic store and user profiles written by the test.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from resolver.profiles import FqdnRule, Profile, ResolvedProfile, ResolvedRule, Rule, RuleFilter
from tests.helpers import cli_env, real_path, require_data, simple_snapshot, sort_prefixes

DAY = "20250113"
WESTUS_OUTBOUND = [
    "AzureActiveDirectory",
    "AzureMachineLearning",
    "AzureResourceManager",
    "Storage.WestUS",
    "AzureFrontDoor.Frontend",
    "AzureContainerRegistry.WestUS",
    "MicrosoftContainerRegistry.WestUS",
]
WESTUS_INBOUND = ["BatchNodeManagement", "AzureMachineLearning"]
# The azureml profile these numbers come from: a fixed copy (the built-in one follows the page).
FIXED_PROFILES = Path(__file__).parent / "profiles"


env_for = cli_env


@pytest.fixture(scope="module")
def _public_2025(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("public-2025")
    path = folder / "aztags.db"
    result = CliRunner().invoke(
        main,
        ["import", str(real_path("Public", DAY))],
        env=env_for(path, folder),
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def public_2025(request) -> Path:
    require_data()  # first: the realdata guard sees every user
    return request.getfixturevalue("_public_2025")


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str, store: Path):
        env = env_for(store, tmp_path) | {"AZTAGS_PROFILES_DIR": str(FIXED_PROFILES)}
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return invoke


def raw_union(names: list[str]) -> list[str]:
    doc = json.loads(gzip.decompress(real_path("Public", DAY).read_bytes()))
    tags = {v["name"]: v["properties"]["addressPrefixes"] for v in doc["values"]}
    return sort_prefixes({p for n in names for p in tags[n]})


# -- 1. direction, protocol and port filters ------------------------------------------------------


@pytest.mark.realdata
def test_azureml_westus_all_rules_and_outbound_only(run, public_2025):
    every = run("cidrs", "--profile", "azureml", "--region", "westus", store=public_2025)
    assert every.exit_code == 0, every.stderr
    assert len(every.stdout.splitlines()) == 1646
    out = run(
        "cidrs",
        "--profile",
        "azureml",
        "--region",
        "westus",
        "--direction",
        "outbound",
        store=public_2025,
    )
    assert out.exit_code == 0, out.stderr
    assert len(out.stdout.splitlines()) == 1199
    assert out.stdout.splitlines() == raw_union(WESTUS_OUTBOUND)
    inbound = run(
        "cidrs", "--profile", "azureml", "--region", "westus", "--direction", "INBOUND",
        store=public_2025,
    )  # fmt: skip
    assert inbound.stdout.splitlines() == raw_union(WESTUS_INBOUND)


@pytest.mark.realdata
def test_port_filter_keeps_star_and_ranges_that_cover_the_port(run, public_2025):
    args = ["cidrs", "--profile", "azureml", "--region", "westus"]
    # 29877 is inside the range 29876-29877 (BatchNodeManagement) and nothing else inbound
    batch = run(*args, "--direction", "inbound", "--port", "29877", store=public_2025)
    assert batch.stdout.splitlines() == raw_union(["BatchNodeManagement"])
    # outbound port 22: only the rule with ports "*" (AzureActiveDirectory)
    ssh = run(*args, "--direction", "outbound", "--port", "22", "--protocol", "tcp",
              store=public_2025)  # fmt: skip
    assert ssh.stdout.splitlines() == raw_union(["AzureActiveDirectory"])
    # no azureml rule is for udp: nothing found, exit 3, said in a sentence
    udp = run(*args, "--protocol", "udp", store=public_2025)
    assert udp.exit_code == 3 and udp.stdout == ""
    assert "No rule of profile azureml is for udp" in udp.stderr


@pytest.mark.realdata
def test_profile_show_takes_the_same_filters(run, public_2025):
    result = run(
        "profile", "show", "azureml", "--region", "westus", "--direction", "inbound",
        store=public_2025,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("; rules for inbound")
    rows = [line.split()[:4] for line in lines[2:] if line.strip()]
    assert rows[:2] == [
        ["inbound", "tcp", "29876-29877", "BatchNodeManagement"],
        ["inbound", "tcp", "44224", "AzureMachineLearning"],
    ]
    assert "outbound" not in result.stdout  # no outbound rule, no (outbound) host names
    assert "Host names" not in result.stdout


def test_filters_without_a_profile_are_a_usage_error(run, tmp_path):
    store = tmp_path / "x.db"
    result = run("cidrs", "Storage", "--direction", "outbound", store=store)
    assert result.exit_code == 2 and "apply to --profile" in result.stderr


def test_rule_filter_on_a_resolved_profile_keeps_rules_and_host_names():
    rules = (
        Rule("inbound", "29876-29877", "tcp", "A", ""),
        Rule("outbound", "*", "any", "B", ""),
        Rule("outbound", "443,8443", "udp", "C", ""),
    )
    profile = Profile("p", "", "", rules, (FqdnRule("pypi.org", ""),))
    resolved = ResolvedProfile(
        profile, "Public", "", tuple(ResolvedRule(r, None, None, ()) for r in rules),
        profile.fqdns, (),
    )  # fmt: skip
    out_udp = resolved.narrowed(RuleFilter("outbound", "udp", 8443))
    assert [r.rule.tag for r in out_udp.rules] == ["B", "C"]
    assert out_udp.fqdns == ()  # host names are tcp 443
    assert [r.rule.tag for r in resolved.narrowed(RuleFilter(port=29876)).rules] == ["A", "B"]
    assert resolved.narrowed(RuleFilter(port=443)).fqdns == profile.fqdns
    assert resolved.narrowed(RuleFilter()) is resolved


# -- 2. profile show --json: one document per rule with its prefixes ------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize("aggregate", [False, True])
def test_profile_show_json_gives_each_rules_prefixes(run, public_2025, aggregate):
    args = ["profile", "show", "azureml", "--region", "westus", "--json"]
    result = run(*args, *(["--aggregate"] if aggregate else []), store=public_2025)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["snapshot"]["change_number"] == 341
    assert doc["snapshot"]["file_date"] == "2025-01-13"
    assert doc["aggregated"] is aggregate
    assert doc["missing_rules"] == []
    for rule in doc["rules"]:
        assert {"template", "tag", "direction", "protocol", "ports", "purpose", "optional"} <= set(
            rule
        )
        assert rule["optional"] is False and rule["missing"] is False
        raw = raw_union([rule["tag"]])
        if aggregate:
            mine = [ipaddress.ip_network(p) for p in rule["prefixes"]]
            for version in (4, 6):
                want = [ipaddress.ip_network(p) for p in raw if ipaddress.ip_network(p).version
                        == version]  # fmt: skip
                got = [n for n in mine if n.version == version]
                assert got == list(ipaddress.collapse_addresses(want))
        else:
            assert rule["prefixes"] == raw
            assert (rule["ipv4"], rule["ipv6"]) == (
                sum(":" not in p for p in raw),
                sum(":" in p for p in raw),
            )
    by_template = {r["template"]: r for r in doc["rules"]}
    assert by_template["Storage.{region}"]["tag"] == "Storage.WestUS"
    assert by_template["BatchNodeManagement"]["ports"] == "29876-29877"


# -- 3. a rule whose tag the file lacks ------------------------------------------------------------


PROFILE = """\
description = "test"

[[rule]]
direction = "outbound"
ports = "443"
tag = "Storage"

[[rule]]
direction = "outbound"
ports = "1433"
tag = "Sql"
{optional}
"""


@pytest.fixture
def no_sql(tmp_path) -> Path:
    """A store whose file has Storage but no Sql."""
    path = tmp_path / "nosql.db"
    file = tmp_path / "ServiceTags_Public_20250113.json"
    file.write_bytes(simple_snapshot(7, {"Storage": ["10.0.0.0/16"], "AzureCloud": ["10.0.0.0/8"]}))
    result = CliRunner().invoke(
        main, ["import", str(file)], env=env_for(path, tmp_path), catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return path


def profiles(tmp_path: Path, optional: bool) -> str:
    folder = tmp_path / ("optional" if optional else "required")
    folder.mkdir(exist_ok=True)
    text = PROFILE.format(optional="optional = true" if optional else "")
    (folder / "db.toml").write_text(text)
    return str(folder)


@pytest.mark.parametrize("command", ["cidrs", "show"])
def test_a_missing_tag_prints_what_was_found_warns_and_exits_3(run, no_sql, tmp_path, command):
    dirs = ["--profiles-dir", profiles(tmp_path, optional=False)]
    args = ["cidrs", "--profile", "db"] if command == "cidrs" else ["profile", "show", "db"]
    result = run(*args, *dirs, store=no_sql)
    assert result.exit_code == 3
    if command == "cidrs":
        assert result.stdout == "10.0.0.0/16\n"  # what was found
    else:
        assert "(missing)" in result.stdout and "Storage" in result.stdout
    assert "1 rule of profile db found no tag in the Public file (changeNumber 7)" in result.stderr
    assert "outbound tcp 1433 Sql" in result.stderr
    assert "--allow-missing" in result.stderr
    assert "Traceback" not in result.stderr

    allowed = run(*args, *dirs, "--allow-missing", store=no_sql)
    assert allowed.exit_code == 0
    assert allowed.stdout == result.stdout
    assert "aztags: warning: 1 rule of profile db found no tag" in allowed.stderr


@pytest.mark.parametrize("command", ["cidrs", "show"])
def test_an_optional_rules_missing_tag_is_a_warning(run, no_sql, tmp_path, command):
    dirs = ["--profiles-dir", profiles(tmp_path, optional=True)]
    args = ["cidrs", "--profile", "db"] if command == "cidrs" else ["profile", "show", "db"]
    result = run(*args, *dirs, store=no_sql)
    assert result.exit_code == 0, result.stderr
    assert "optional rule(s) with no tag in the Public file" in result.stderr
    assert "this optional rule resolves to no prefixes" in result.stderr
    if command == "show":
        assert "(missing, optional)" in result.stdout


def test_missing_rules_are_named_in_json_and_still_exit_3(run, no_sql, tmp_path):
    dirs = ["--profiles-dir", profiles(tmp_path, optional=False)]
    shown = run("profile", "show", "db", "--json", *dirs, store=no_sql)
    assert shown.exit_code == 3
    doc = json.loads(shown.stdout)
    assert doc["missing_rules"] == ["outbound tcp 1433 Sql"]
    assert [(r["tag"], r["missing"], r["prefixes"]) for r in doc["rules"]] == [
        ("Storage", False, ["10.0.0.0/16"]),
        (None, True, []),
    ]
    listed = run("cidrs", "--profile", "db", "--json", *dirs, store=no_sql)
    assert listed.exit_code == 3
    assert json.loads(listed.stdout)["missing_rules"] == ["outbound tcp 1433 Sql"]


def test_a_missing_rule_filtered_out_is_not_missing(run, no_sql, tmp_path):
    dirs = ["--profiles-dir", profiles(tmp_path, optional=False)]
    result = run("cidrs", "--profile", "db", "--port", "443", *dirs, store=no_sql)
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout == "10.0.0.0/16\n"


# -- 4. --ipv4 --ipv6 -----------------------------------------------------------------------------


@pytest.fixture
def two_families(tmp_path) -> Path:
    path = tmp_path / "fam.db"
    file = tmp_path / "ServiceTags_Public_20250113.json"
    file.write_bytes(simple_snapshot(3, {"AzureCloud": ["10.0.0.0/8", "2001:db8::/32"]}))
    result = CliRunner().invoke(
        main, ["import", str(file)], env=env_for(path, tmp_path), catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return path


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ((), ["10.0.0.0/8", "2001:db8::/32"]),
        (("--ipv4",), ["10.0.0.0/8"]),
        (("--ipv6",), ["2001:db8::/32"]),
        (("--ipv4", "--ipv6"), ["10.0.0.0/8", "2001:db8::/32"]),
        (("--ipv6", "--ipv4"), ["10.0.0.0/8", "2001:db8::/32"]),
    ],
)
def test_both_family_flags_mean_both_families(run, two_families, flags, expected):
    result = run("cidrs", "AzureCloud", *flags, store=two_families)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == expected


def test_family_from_the_config_file_and_a_flag(run, two_families, tmp_path):
    (tmp_path / "aztags.toml").write_text("family = 6\n")
    assert run("cidrs", "AzureCloud", store=two_families).stdout == "2001:db8::/32\n"
    assert run("cidrs", "AzureCloud", "--ipv4", store=two_families).stdout == "10.0.0.0/8\n"


@pytest.mark.realdata
def test_the_real_germany_file_lacks_front_door_and_says_so(run, tmp_path):
    store = tmp_path / "germany.db"
    imported = CliRunner().invoke(
        main,
        ["import", str(real_path("AzureGermany", "20220307"))],
        env=env_for(store, tmp_path),
        catch_exceptions=False,
    )
    assert imported.exit_code == 0, imported.output
    args = ["profile", "show", "azureml", "--region", "Germany Central", "--cloud", "germany"]
    result = run(*args, store=store)
    assert result.exit_code == 3
    assert any(
        line.split()[:4] == ["outbound", "tcp", "443", "(missing)"]
        for line in result.stdout.splitlines()
    )
    assert "outbound tcp 443 AzureFrontDoor.Frontend" in result.stderr
    assert "the AzureGermany file (changeNumber 193)" in result.stderr
    assert run(*args, "--allow-missing", store=store).exit_code == 0
    # a question that the missing rule is not part of is complete: exit 0
    inbound = run(*args, "--direction", "inbound", store=store)
    assert inbound.exit_code == 0 and "missing" not in inbound.stderr
