"""The library of built-in profiles (issue 13): each traced to its page, each resolving on the real
files of every cloud it claims; special addresses (VirtualNetwork, AzureLoadBalancer, Internet);
host names with {region}; missing_reason; ``profile list``, ``profile show`` and ``profile check``.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from resolver.errors import NotFoundError, ProfileError
from resolver.models import ServiceTag
from resolver.profiles import (
    LOAD_BALANCER_ADDRESS,
    builtin_profiles,
    find_profile,
    parse_profile,
    profile_rules,
    profile_tag_names,
    render_profile,
    resolve_profile,
)
from resolver.regions import RegionIndex
from tests.helpers import cli_env, load_real_tags, real_path, require_data, simple_snapshot

NEWEST = {"Public": "20250113", "AzureGovernment": "20241118", "China": "20241118"}
REGIONS = {
    "Public": ["westeurope", "eastus", "westus2", "southeastasia", "francecentral", "japaneast"],
    "AzureGovernment": ["usgovvirginia", "usgovarizona", "usgovtexas"],
    "China": ["chinanorth2", "chinaeast2", "chinanorth3"],
}


# --- every built-in profile, traced and checked against the newest real files -------------------


def test_at_least_ten_builtins_each_with_its_source():
    found = builtin_profiles()
    assert len(found) >= 10
    assert {"azureml", "aks", "aks-monitoring", "apim", "ase", "hdinsight", "batch"} <= set(found)
    assert {"arc-servers", "avd", "sqlmi", "databricks", "azureml-china"} <= set(found)
    for name, profile in found.items():
        ref = profile.source_ref
        assert ref.url.startswith("https://") and ref.section, name
        if name == "databricks":  # published at learn.microsoft.com only: the note says so
            assert not ref.repo and "no public repository" in ref.note
            continue
        assert re.fullmatch(r"[0-9a-f]{40}", ref.commit), name
        assert (
            ref.repo
            and ref.path.endswith(".md")
            and re.fullmatch(r"\d{4}-\d\d-\d\d", ref.page_date)
        )
        assert profile.clouds, name
        assert all(r.purpose for r in profile.rules) and all(f.purpose for f in profile.fqdns)


def test_every_builtin_round_trips_through_render():
    for profile in builtin_profiles().values():
        assert parse_profile(render_profile(profile), profile.origin) == profile


@pytest.fixture(scope="module")
def _newest():
    loaded = {}
    for cloud, day in NEWEST.items():
        tags = load_real_tags(cloud, day)
        loaded[cloud] = ({t.name: t for t in tags}, RegionIndex.from_tags(tags))
    return loaded


@pytest.fixture
def newest(request):
    require_data()  # first: the realdata guard sees every user
    return request.getfixturevalue("_newest")


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(builtin_profiles()))
def test_builtin_resolves_in_every_cloud_it_claims_with_no_unexplained_missing_tag(newest, name):
    profile = builtin_profiles()[name]
    for cloud in profile.clouds:
        tags, regions = newest[cloud]
        for region in REGIONS[cloud]:
            resolved = resolve_profile(
                profile, cloud=cloud, region_text=region, tags=tags, regions=regions
            )
            unexplained = [
                r.rule.tag for r in resolved.rules if r.missing and not r.rule.missing_reason
            ]
            assert unexplained == [], (name, cloud, region)
            assert resolved.missing == ()
            for host in resolved.fqdns:  # every {region} of a host name was filled in
                assert "{region}" not in host.host and host.applies_to(cloud)


def _tag_names_or_error(how, *args, cloud, region, tags, regions):
    try:
        return how(*args, cloud=cloud, region_text=region, tags=tags, regions=regions)
    except NotFoundError as e:
        return (type(e), str(e), e.suggestions)


@pytest.mark.parametrize("name", sorted(builtin_profiles()))
def test_a_profile_watch_reads_the_rules_of_the_whole_profile(name, tmp_path):
    # profile_rules reads a built-in file's rules alone: the same name and rules as the whole
    # profile, and as a user copy of it (read whole, as find_profile does).
    profile = builtin_profiles()[name]
    assert profile_rules(name.upper(), [tmp_path / "none"]) == (profile.name, profile.rules)
    (tmp_path / f"{name}.toml").write_text(render_profile(profile), encoding="utf-8")
    assert profile_rules(name, [tmp_path]) == (profile.name, profile.rules)


def test_a_profile_watch_of_an_unknown_profile_fails_as_find_profile_does(tmp_path):
    with pytest.raises(NotFoundError) as expected:
        find_profile("azurml", ())
    with pytest.raises(NotFoundError) as caught:
        profile_rules("azurml", ())
    assert (str(caught.value), caught.value.suggestions) == (
        str(expected.value),
        expected.value.suggestions,
    )
    (tmp_path / "bad.toml").write_text('name = "azureml"\n[[rule]]\ndirection = "up"\n')
    with pytest.raises(ProfileError) as expected_error:
        find_profile("azureml", [tmp_path])
    with pytest.raises(ProfileError) as caught_error:
        profile_rules("azureml", [tmp_path])
    assert caught_error.value.problems == expected_error.value.problems


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(builtin_profiles()))
def test_a_profile_watch_follows_the_tags_the_profile_resolves_to(newest, name):
    # profile_tag_names (what a profile watch follows) answers as resolve_profile does, in every
    # cloud and region, without a region and with an unknown one: the same tags or the same error.
    def resolved(profile, **where):
        return {r.tag.name for r in resolve_profile(profile, **where).rules if r.tag is not None}

    profile = builtin_profiles()[name]
    for cloud, (tags, regions) in newest.items():
        for region in [*REGIONS[cloud], None, "", "West Europe", "atlantis"]:
            where = {"cloud": cloud, "region": region, "tags": tags, "regions": regions}
            expected = _tag_names_or_error(resolved, profile, **where)
            found = _tag_names_or_error(profile_tag_names, *profile_rules(name, ()), **where)
            assert found == expected, (cloud, region)


@pytest.mark.realdata
def test_azureml_in_china_explains_the_first_party_tag(newest):
    tags, regions = newest["China"]
    resolved = resolve_profile(
        builtin_profiles()["azureml"], cloud="China", region_text="chinaeast2", tags=tags,
        regions=regions,
    )  # fmt: skip
    (first_party,) = resolved.missing_optional
    assert first_party.rule.tag == "AzureFrontDoor.FirstParty"
    assert any("AzureFrontDoor.FirstParty is not in the China file" in w and "Frontdoor" in w
               for w in resolved.warnings)  # fmt: skip
    skipped = [r.rule.tag for r in resolved.rules if r.skipped_reason]
    assert skipped == ["AzureFrontDoor.Frontend"]


# --- special addresses --------------------------------------------------------------------------


def _synthetic():
    tags = [
        ServiceTag("Storage.WestUS", "westus", 1, "", frozenset({"NSG"}), 1, ("10.0.0.0/24",)),
        ServiceTag("AzureMonitor", "", 0, "", frozenset({"NSG"}), 1, ("10.1.0.0/24",)),
    ]
    return {t.name: t for t in tags}, RegionIndex.from_tags(tags)


SPECIAL_PROFILE = textwrap.dedent(
    """\
    [[rule]]
    direction = "inbound"
    ports = "6390"
    tag = "AzureLoadBalancer"
    [[rule]]
    direction = "outbound"
    ports = "80"
    tag = "internet"
    [[rule]]
    direction = "outbound"
    ports = "*"
    protocol = "any"
    tag = "VirtualNetwork"
    [[rule]]
    direction = "outbound"
    ports = "443"
    tag = "Storage.{region}"
    [[fqdn]]
    host = "*.hcp.{region}.azmk8s.io"
    [[fqdn]]
    host = "only.china.example"
    clouds = ["China"]
    """
)


def test_special_names_are_addresses_not_missing_tags():
    tags, regions = _synthetic()
    profile = parse_profile(SPECIAL_PROFILE, "s.toml")
    resolved = resolve_profile(profile, cloud="Public", region_text="westus", tags=tags,
                               regions=regions)  # fmt: skip
    lb, internet, vnet, storage = resolved.rules
    assert (lb.special.name, lb.special.origin, lb.special.addresses) == (
        "AzureLoadBalancer", "constant", (LOAD_BALANCER_ADDRESS,)
    )  # fmt: skip
    assert LOAD_BALANCER_ADDRESS == "168.63.129.16/32"
    assert (internet.special.name, internet.special.addresses) == (
        "Internet",
        ("0.0.0.0/0", "::/0"),
    )
    assert (vnet.special.origin, vnet.special.addresses) == ("local", ())
    assert not any(r.missing for r in (lb, internet, vnet)) and resolved.missing == ()
    assert resolved.warnings == ()
    assert storage.tag.name == "Storage.WestUS" and storage.special is None
    local = resolved.with_local(("10.20.0.0/27",))
    assert local.rules[2].special.addresses == ("10.20.0.0/27",)
    assert local.rules[0] == lb  # only VirtualNetwork takes --local
    assert [f.host for f in resolved.fqdns] == ["*.hcp.westus.azmk8s.io"]  # China's left out
    assert resolved.fqdns[0].template == "*.hcp.{region}.azmk8s.io"


def test_host_names_without_a_region_stay_as_written_with_a_warning():
    tags, regions = _synthetic()
    profile = parse_profile(
        '[[rule]]\ndirection = "outbound"\nports = "443"\ntag = "AzureMonitor"\n'
        '[[fqdn]]\nhost = "{region}.handler.control.monitor.azure.com"\n',
        "m.toml",
    )
    resolved = resolve_profile(profile, cloud="Public", region_text=None, tags=tags,
                               regions=regions)  # fmt: skip
    assert resolved.fqdns[0].host == "{region}.handler.control.monitor.azure.com"
    assert "shown with {region} until --region is given" in resolved.warnings[0]


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        (
            '[[rule]]\ndirection="inbound"\nports="1"\ntag="VirtualNetwork.{region}"\n',
            "no regional form",
        ),
        ('[[fqdn]]\nhost="https://{region}.x.com/"\n', "no scheme, no path"),
        ('[source]\nrepo="a"\ncommit="xyz"\n[[fqdn]]\nhost="a.com"\n', "write its hex digits"),
        ('[source]\npage_date="2025-13-01"\n[[fqdn]]\nhost="a.com"\n', "write YYYY-MM-DD"),
        (
            '[source]\nrepository="a"\n[[fqdn]]\nhost="a.com"\n',
            "unknown key 'repository' (known keys: url, repo,",
        ),
        ('clouds=["Mars"]\n[[fqdn]]\nhost="a.com"\n', "unknown cloud 'Mars'"),
        ('[[rule]]\ndirection="in"\nports="1"\ntag="A"\nmissing_reason=""\n', "say why"),
    ],
)
def test_new_keys_are_checked(text, phrase):
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, "p.toml")
    assert any(phrase in p for p in caught.value.problems), caught.value.problems


# --- the CLI: profile list, show, check ---------------------------------------------------------


@pytest.fixture
def store(tmp_path) -> Path:
    db = tmp_path / "aztags.db"
    source = tmp_path / "ServiceTags_Public_20250106.json"
    source.write_bytes(
        simple_snapshot(
            12,
            {
                "Storage": ["10.0.0.0/16"],
                "Storage.WestUS": ["10.0.1.0/24"],
                "AzureKeyVault": ["10.2.0.0/24"],
                "AzureMonitor": ["10.3.0.0/24"],
            },
        )
    )
    assert run(db, tmp_path, "import", str(source)).exit_code == 0
    return db


def run(db: Path, home: Path, *args: str):
    return CliRunner().invoke(main, list(args), env=cli_env(db, home), catch_exceptions=False)


def test_profile_list_shows_each_builtins_page_date_and_source(store, tmp_path):
    result = run(store, tmp_path, "profile", "list")
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    for name, profile in builtin_profiles().items():
        ref = profile.source_ref
        assert ref.short() in lines[name]
        assert (ref.page_date or "-") in lines[name].split()
    doc = json.loads(run(store, tmp_path, "profile", "list", "--json").stdout)
    batch = next(p for p in doc if p["name"] == "batch")
    assert batch["source"]["path"] == "articles/batch/batch-virtual-network.md"
    assert batch["source"]["section"].startswith("Network security groups")
    assert batch["clouds"] == ["Public", "AzureGovernment", "China"]


def test_profile_show_marks_special_rules_and_takes_local(store, tmp_path):
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "s.toml").write_text(SPECIAL_PROFILE)
    args = ["profile", "show", "s", "--region", "westus", "--profiles-dir", str(folder)]
    text = run(store, tmp_path, *args)
    assert text.exit_code == 0, text.stderr
    assert "AzureLoadBalancer = 168.63.129.16/32" in text.stdout
    assert "Internet (any address)" in text.stdout
    assert "VirtualNetwork (yours: --local)" in text.stdout
    assert "*.hcp.westus.azmk8s.io" in text.stdout and "(missing" not in text.stdout
    doc = json.loads(run(store, tmp_path, *args, "--json", "--local", "10.9.0.0/24").stdout)
    specials = [r["special"] for r in doc["rules"]]
    assert specials[:3] == [
        {"name": "AzureLoadBalancer", "origin": "constant", "addresses": ["168.63.129.16/32"]},
        {"name": "Internet", "origin": "any", "addresses": ["0.0.0.0/0", "::/0"]},
        {"name": "VirtualNetwork", "origin": "local", "addresses": ["10.9.0.0/24"]},
    ]
    assert specials[3] is None and doc["rules"][3]["prefixes"] == ["10.0.1.0/24"]
    assert doc["missing_rules"] == [] and doc["union"] == {"ipv4": 1, "ipv6": 0}
    assert doc["fqdns"][0]["template"] == "*.hcp.{region}.azmk8s.io"
    bad = run(store, tmp_path, *args, "--local", "10.9.0.300/24")
    assert bad.exit_code == 2 and "is not an address or a CIDR prefix" in bad.stderr


def test_missing_reason_is_a_warning_with_the_reason_not_exit_3(store, tmp_path):
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "r.toml").write_text(
        '[[rule]]\ndirection = "outbound"\nports = "443"\ntag = "AzureFrontDoor.FirstParty"\n'
        'missing_reason = "only the Public file of 2025 has it"\n'
    )
    result = run(store, tmp_path, "profile", "show", "r", "--profiles-dir", str(folder))
    assert result.exit_code == 0
    assert "(missing, explained)" in result.stdout
    assert "as the profile says: outbound tcp 443 AzureFrontDoor.FirstParty (only the Public" in (
        result.stderr
    )


CHECKED = textwrap.dedent(
    """\
    description = "Payroll"

    [[rule]]
    direction = "outbound"
    ports = "443"
    tag = "Storage.{region}"

    [[rule]]
    direction = "outbound"
    ports = "443"
    tag = "AzureKeyValt"

    [[rule]]
    direction = "outbound"
    ports = "443"
    tag = "Storag.{region}"

    [[rule]]
    direction = "inbound"
    ports = "80"
    tag = "AzureLoadBalancer"
    """
)


def test_profile_check_names_unknown_tags_with_close_matches(store, tmp_path):
    path = tmp_path / "payroll.toml"
    path.write_text(CHECKED)
    result = run(store, tmp_path, "profile", "check", str(path))
    assert result.exit_code == 3
    lines = result.stdout.splitlines()
    assert lines[0].endswith(
        "checked against the Public file (changeNumber 12, 2025-01-06): 2 errors"
    )
    assert f"error: {path}:11 [[rule]] #2: tag 'AzureKeyValt' is not in the Public file; " \
        "did you mean AzureKeyVault?" in lines  # fmt: skip
    assert any("#3: tag 'Storag.{region}'" in line and "Storage.{region}" in line for line in lines)
    assert any(line.startswith("note:") and "--region" in line for line in lines)
    path.write_text(CHECKED.replace("AzureKeyValt", "AzureKeyVault").replace("Storag.", "Storage."))
    ok = run(store, tmp_path, "profile", "check", str(path), "--region", "West US", "--json")
    assert ok.exit_code == 0, ok.stdout
    doc = json.loads(ok.stdout)
    assert (doc["ok"], doc["region"], doc["findings"]) == (True, "westus", [])
    region = run(store, tmp_path, "profile", "check", str(path), "--region", "westeu")
    assert region.exit_code == 3 and "Unknown region 'westeu'" in region.stdout


def test_profile_check_reports_every_problem_of_a_bad_file_and_installs_nothing(store, tmp_path):
    path = tmp_path / "azureml.toml"
    path.write_text('sorce = "x"\n[[rule]]\ndirection = "outbound"\nports = "99999"\ntag = "A"\n')
    result = run(store, tmp_path, "profile", "check", str(path))
    assert result.exit_code == 2 and result.stdout == ""
    assert "unknown key 'sorce' (did you mean 'source'?)" in result.stderr
    assert f"{path}:4:" in result.stderr and "not a port 1-65535" in result.stderr
    path.write_text('[[rule]]\ndirection = "outbound"\nports = "443"\ntag = "Storage"\n')
    good = run(store, tmp_path, "profile", "check", str(path))
    assert good.exit_code == 0 and "a built-in profile's" in good.stdout  # a note, not an error
    listed = run(store, tmp_path, "profile", "list", "--json")
    azureml = next(p for p in json.loads(listed.stdout) if p["name"] == "azureml")
    assert azureml["origin"] == "<builtin>/azureml.toml"  # checking did not install it
    missing = run(store, tmp_path, "profile", "check", str(tmp_path / "none.toml"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


@pytest.mark.realdata
def test_profile_check_a_builtin_copy_on_the_real_file(tmp_path):
    db = tmp_path / "aztags.db"
    assert run(db, tmp_path, "import", str(real_path("Public", NEWEST["Public"]))).exit_code == 0
    path = tmp_path / "mine.toml"
    path.write_text(
        render_profile(builtin_profiles()["apim"]).replace('name = "apim"', 'name = "mine"')
    )
    result = run(db, tmp_path, "profile", "check", str(path), "--region", "westeurope")
    assert result.exit_code == 0, result.stdout
    assert result.stdout.splitlines()[0].endswith(
        "(changeNumber 341, 2025-01-13): no problem found"
    )
