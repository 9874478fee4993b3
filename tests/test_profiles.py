"""Requirement profiles: the TOML format, its errors, the built-in azureml profile, resolution."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

import resolver.profiles as profiles_module
from resolver.errors import ConfigError, NotFoundError, ProfileError
from resolver.models import ServiceTag
from resolver.profiles import (
    FqdnRule,
    Profile,
    Rule,
    builtin_profiles,
    check_ports,
    get_profile,
    load_profiles,
    parse_profile,
    render_profile,
    resolve_profile,
)
from resolver.regions import RegionIndex
from tests.helpers import load_real_tags, require_data

FIXED_AZUREML = Path(__file__).parent / "profiles" / "azureml.toml"


def fixed_azureml() -> Profile:
    """The azureml profile as it was built in before issue 13 (a fixed copy): the resolution
    tests below check mechanics on it, whatever the built-in profile says today."""
    return parse_profile(FIXED_AZUREML.read_text(encoding="utf-8"), str(FIXED_AZUREML))


USER_PROFILE = textwrap.dedent(
    """\
    description = "Nightly backup"
    source = "change request 4711"

    [[rule]]
    direction = "Outbound"
    ports = "443"
    tag = "Storage.{region}"
    purpose = "blob uploads"
    source_name = "Storage.region"

    [[rule]]
    direction = "inbound"
    ports = 3389
    protocol = "UDP"
    tag = "AzureFrontDoor.Frontend"
    skip_clouds = ["china", "AzureGovernment"]

    [[fqdn]]
    host = "*.blob.core.windows.net"
    purpose = "uploads"
    ports = "443,8443"
    """
)


def problems_of(text: str, origin: str = "p.toml") -> list[str]:
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, origin)
    assert isinstance(caught.value, ConfigError)
    return caught.value.problems


# --- the format ------------------------------------------------------------------------------


def test_user_profile_is_read_as_written():
    profile = parse_profile(USER_PROFILE, "/etc/aztags/profiles/backup.toml")
    assert profile == Profile(
        name="backup",
        description="Nightly backup",
        source="change request 4711",
        rules=(
            Rule(
                "outbound",
                "443",
                "tcp",
                "Storage.{region}",
                "blob uploads",
                frozenset(),
                "Storage.region",
            ),
            Rule(
                "inbound",
                "3389",
                "udp",
                "AzureFrontDoor.Frontend",
                "",
                frozenset({"China", "AzureGovernment"}),
                None,
            ),
        ),
        fqdns=(FqdnRule("*.blob.core.windows.net", "uploads", "443,8443", "tcp"),),
        origin="/etc/aztags/profiles/backup.toml",
    )


def test_user_profile_round_trips_through_render():
    profile = parse_profile(USER_PROFILE, "backup.toml")
    again = parse_profile(render_profile(profile), "backup.toml")
    assert again == profile


def test_builtin_profile_round_trips_through_render():
    azureml = builtin_profiles()["azureml"]
    assert parse_profile(render_profile(azureml), azureml.origin) == azureml


def test_round_trip_keeps_awkward_text():
    profile = Profile(
        name="odd",
        description='quotes " and \\ backslashes, tabs\t, "Zürich", newline\nhere',
        source="",
        rules=(Rule("outbound", "*", "any", "AzureCloud.{region}", "x = 1 # not a comment"),),
        fqdns=(),
        origin="odd.toml",
    )
    assert parse_profile(render_profile(profile), "odd.toml") == profile


def test_docstring_example_parses():
    doc = profiles_module.__doc__
    example = doc.split("backup.toml``::", 1)[1]
    text = textwrap.dedent(example)
    profile = parse_profile(text, "backup.toml")
    assert profile.name == "backup"
    assert [r.tag for r in profile.rules] == [
        "Storage.{region}",
        "AzureKeyVault.{region}",
        "AzureFrontDoor.Frontend",
    ]
    assert profile.rules[2].skip_clouds == {"China"}
    assert profile.fqdns[0].host == "login.microsoftonline.com"


def test_name_key_wins_over_the_file_name_and_is_lower_case():
    profile = parse_profile('name = "MyCorp"\n' + USER_PROFILE, "whatever.toml")
    assert profile.name == "mycorp"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("443", "443"),
        ("29876-29877", "29876-29877"),
        ("*", "*"),
        ("80, 443", "80,443"),
        (443, "443"),
        ("1-65535", "1-65535"),
    ],
)
def test_good_ports(value, expected):
    assert check_ports(value) == (expected, None)


@pytest.mark.parametrize("value", ["70000", "a-b", "0", "10-5", "", "443-", "-1", True, 1.5, None])
def test_bad_ports(value):
    normalised, error = check_ports(value)
    assert normalised is None and error


# --- errors name the file, the line and the key ----------------------------------------------


def test_syntax_error_carries_tomllibs_line():
    text = 'description = "x"\n\n[[rule]]\ndirection = outbound\n'
    problems = problems_of(text, "site/bad.toml")
    assert len(problems) == 1
    assert problems[0].startswith("site/bad.toml:4: invalid TOML:")


def test_bad_port_names_line_and_key():
    text = textwrap.dedent(
        """\
        description = "x"

        [[rule]]
        direction = "outbound"
        tag = "Storage"
        ports = "70000"
        """
    )
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, "p.toml")
    message = str(caught.value)
    assert "p.toml:6:" in message
    assert "'ports'" in message and "70000" in message
    assert message.startswith("p.toml: 1 problem in profile:")


def test_all_problems_are_collected_into_one_error():
    text = textwrap.dedent(
        """\
        name = "demo"
        colour = "blue"

        [[rule]]
        direction = "sideways"
        ports = "443"
        tag = "Storage"

        [[rule]]
        direction = "outbound"
        ports = "a-b"
        prot = "tcp"

        [[rule]]
        direction = "outbound"
        ports = "443"
        tag = "Storage.region"
        skip_clouds = ["Mars"]

        [[fqdn]]
        host = "https://pypi.org/simple"
        """
    )
    problems = problems_of(text)
    assert len(problems) == 8
    lines = [int(re.match(r"p\.toml:(\d+):", p).group(1)) for p in problems]
    assert lines == sorted(lines)
    joined = "\n".join(problems)
    expected = [
        ("p.toml:2:", "unknown key 'colour'"),
        ("p.toml:5:", "[[rule]] #1: key 'direction' is 'sideways'"),
        ("p.toml:9:", "[[rule]] #2: missing key 'tag'"),  # no tag line: the table's header
        ("p.toml:11:", "[[rule]] #2: key 'ports'"),
        ("p.toml:12:", "unknown key 'prot' (did you mean 'protocol'?)"),
        ("p.toml:17:", "write Storage.{region}"),
        ("p.toml:18:", "unknown cloud 'Mars'"),
        ("p.toml:21:", "[[fqdn]] #1: key 'host'"),
    ]
    for prefix, fragment in expected:
        assert any(p.startswith(prefix) and fragment in p for p in problems), (prefix, joined)


def test_single_bracket_rule_table_is_explained():
    problems = problems_of('description = "x"\n\n[rule]\ndirection = "outbound"\n')
    assert problems[0].startswith("p.toml:3:")
    assert "[[rule]]" in problems[0]


def test_wrong_types_are_reported():
    text = '[[rule]]\ndirection = 1\nports = "443"\ntag = ["Storage"]\nskip_clouds = "China"\n'
    problems = problems_of(text)
    assert any(p.startswith("p.toml:2:") and "'direction' must be a string" in p for p in problems)
    assert any(p.startswith("p.toml:4:") and "'tag' must be a string" in p for p in problems)
    assert any(p.startswith("p.toml:5:") and "'skip_clouds' must be a list" in p for p in problems)


def test_empty_profile_is_an_error():
    problems = problems_of('description = "nothing"\n')
    assert "no [[rule]] and no [[fqdn]]" in problems[0]


def test_lines_inside_multiline_strings_are_not_mistaken_for_keys():
    text = textwrap.dedent(
        '''\
        description = """
        ports = "this is prose"
        """

        [[rule]]
        direction = "outbound"
        tag = "Storage"
        ports = "99999"
        '''
    )
    problems = problems_of(text)
    assert problems == [problems[0]] and problems[0].startswith("p.toml:8:")


# --- finding profiles ------------------------------------------------------------------------


def test_load_profiles_merges_builtins_and_user_folders(tmp_path):
    (tmp_path / "backup.toml").write_text(USER_PROFILE, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("ignored", encoding="utf-8")
    found = load_profiles([tmp_path, tmp_path / "missing"])
    assert set(found) == {*builtin_profiles(), "backup"}
    assert found["backup"] == parse_profile(USER_PROFILE, str(tmp_path / "backup.toml"))
    assert found["azureml"] == builtin_profiles()["azureml"]


def test_user_file_overrides_builtin(tmp_path):
    (tmp_path / "mine.toml").write_text('name = "AzureML"\n' + USER_PROFILE, encoding="utf-8")
    found = load_profiles([tmp_path])
    assert found["azureml"].description == "Nightly backup"
    assert builtin_profiles()["azureml"].description != "Nightly backup"


def test_later_folder_overrides_earlier(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "x.toml").write_text(USER_PROFILE, encoding="utf-8")
    (second / "x.toml").write_text(USER_PROFILE.replace("Nightly", "Hourly"), encoding="utf-8")
    assert load_profiles([first, second])["x"].description == "Hourly backup"


def test_problems_of_several_files_are_collected(tmp_path):
    (tmp_path / "a.toml").write_text('[[rule]]\ndirection = "up"\nports = "1"\ntag = "S"\n')
    (tmp_path / "b.toml").write_text("this is not toml\n")
    (tmp_path / "c.toml").write_text('name = "a"\n' + USER_PROFILE)
    (tmp_path / "d.toml").write_text('name = "dup"\n' + USER_PROFILE)
    (tmp_path / "e.toml").write_text('name = "dup"\n' + USER_PROFILE)
    with pytest.raises(ProfileError) as caught:
        load_profiles([tmp_path])
    problems = caught.value.problems
    assert len(problems) == 3
    assert problems[0].startswith(f"{tmp_path / 'a.toml'}:2:")
    assert problems[1].startswith(f"{tmp_path / 'b.toml'}:1: invalid TOML")
    assert "'dup' is also used by" in problems[2] and str(tmp_path / "e.toml") in problems[2]


def test_get_profile_any_case_and_suggestions():
    found = builtin_profiles()
    assert get_profile("AzureML", found).name == "azureml"
    with pytest.raises(NotFoundError) as caught:
        get_profile("azurml", found)
    assert caught.value.suggestions == ("azureml", "azureml-china")
    assert str(caught.value) == (
        f"Unknown profile 'azurml' (profiles: {', '.join(sorted(found))}). "
        "Did you mean: azureml, azureml-china?"
    )


# --- the built-in azureml profile ------------------------------------------------------------


def test_builtin_azureml_encodes_the_current_page():
    """The Basic configuration tables of the 2026-03 page, and its scenarios (optional)."""
    azureml = builtin_profiles()["azureml"]
    table = [
        (r.direction, r.ports, r.protocol, r.tag, tuple(sorted(r.skip_clouds)), r.optional)
        for r in azureml.rules
    ]
    assert table == [
        ("inbound", "44224", "tcp", "AzureMachineLearning", (), True),
        ("outbound", "80,443", "tcp", "AzureActiveDirectory", (), False),
        ("outbound", "443,8787,18881", "tcp", "AzureMachineLearning", (), False),
        ("outbound", "5831", "udp", "AzureMachineLearning", (), False),
        ("outbound", "443", "tcp", "BatchNodeManagement.{region}", (), False),
        ("outbound", "443", "tcp", "AzureResourceManager", (), False),
        ("outbound", "443", "tcp", "Storage.{region}", (), False),
        ("outbound", "443", "tcp", "AzureFrontDoor.Frontend", ("China",), False),
        ("outbound", "443", "tcp", "MicrosoftContainerRegistry", (), False),
        ("outbound", "443", "tcp", "AzureFrontDoor.FirstParty", (), False),
        ("outbound", "443", "tcp", "AzureMonitor", (), True),
        ("outbound", "443", "tcp", "VirtualNetwork", (), False),
        ("outbound", "445", "tcp", "Storage.{region}", (), True),
        ("outbound", "443", "tcp", "AzureKeyVault.{region}", (), True),
    ]
    assert all(r.purpose and r.source_name for r in azureml.rules)
    first_party = azureml.rules[9]
    assert first_party.source_name == "Frontdoor.FirstParty" and "Public" in (
        first_party.missing_reason or ""
    )
    ref = azureml.source_ref
    assert (ref.repo, ref.commit[:8], ref.page_date) == (
        "MicrosoftDocs/azure-ai-docs",
        "00bb5540",
        "2026-03-19",
    )
    hosts = {f.host: f for f in azureml.fqdns}
    assert hosts["*.instances.azureml.ms"].ports == "443,8787,18881"
    assert hosts["{region}.tundra.azureml.ms"].protocol == "udp"
    assert hosts["{region}.tundra.azureml.cn"].clouds == {"China"}
    assert hosts["*.pythonhosted.org"].optional and not hosts["pypi.org"].optional


# --- resolving (synthetic) -------------------------------------------------------------------


def tag(name: str, region: str = "", features: frozenset[str] | None = frozenset({"NSG"})):
    return ServiceTag(name, region, 1 if region else 0, "", features, 1, ("10.0.0.0/24",))


def synthetic() -> tuple[dict[str, ServiceTag], RegionIndex]:
    tags = [
        tag("BatchNodeManagement"),
        tag("AzureMachineLearning"),
        tag("AzureActiveDirectory"),
        tag("AzureResourceManager"),
        tag("AzureFrontDoor.Frontend"),
        tag("Storage.WestUS", "westus"),
        tag("AzureContainerRegistry.WestUS", "westus"),
        tag("MicrosoftContainerRegistry.WestUS", "westus"),
        tag("AzureMachineLearning.WestUS", "westus", features=None),
        tag("Storage.FranceCentral", "centralfrance"),
    ]
    return {t.name: t for t in tags}, RegionIndex.from_tags(tags)


def test_resolve_azureml_synthetic():
    tags, regions = synthetic()
    resolved = resolve_profile(
        fixed_azureml(),
        cloud="public",
        region_text="West US",
        tags=tags,
        regions=regions,
    )
    assert resolved.cloud == "Public" and resolved.region == "westus"
    assert [r.tag.name for r in resolved.rules] == [
        "BatchNodeManagement",
        "AzureMachineLearning",
        "AzureActiveDirectory",
        "AzureMachineLearning",
        "AzureResourceManager",
        "Storage.WestUS",
        "AzureFrontDoor.Frontend",
        "AzureContainerRegistry.WestUS",
        "MicrosoftContainerRegistry.WestUS",
    ]
    assert resolved.warnings == ()
    assert resolved.fqdns == fixed_azureml().fqdns


def test_resolve_needs_a_region_for_region_templates():
    tags, regions = synthetic()
    with pytest.raises(NotFoundError, match="profile azureml needs --region"):
        resolve_profile(
            fixed_azureml(),
            cloud="Public",
            region_text=None,
            tags=tags,
            regions=regions,
        )


def test_resolve_without_region_templates_needs_no_region():
    tags, regions = synthetic()
    profile = parse_profile(
        '[[rule]]\ndirection="outbound"\nports="443"\ntag="azureresourcemanager"\n', "arm.toml"
    )
    resolved = resolve_profile(
        profile, cloud="Public", region_text=None, tags=tags, regions=regions
    )
    assert resolved.rules[0].tag.name == "AzureResourceManager"  # case-insensitive plain name
    assert resolved.region == ""
    with_region = resolve_profile(
        profile, cloud="Public", region_text="westus", tags=tags, regions=regions
    )
    assert with_region.warnings == (
        "profile arm has no per-region rule in Public; region westus is not used",
    )


def test_resolve_unknown_region_suggests():
    tags, regions = synthetic()
    with pytest.raises(NotFoundError, match="Did you mean: westus"):
        resolve_profile(
            fixed_azureml(),
            cloud="Public",
            region_text="wetsus",
            tags=tags,
            regions=regions,
        )


def test_resolve_skips_front_door_in_china_and_needs_no_region_for_skipped_rules():
    tags, regions = synthetic()
    profile = parse_profile(
        '[[rule]]\ndirection="outbound"\nports="443"\ntag="Storage.{region}"\nskip_clouds=["China"]\n'
        '[[rule]]\ndirection="outbound"\nports="443"\ntag="AzureResourceManager"\n',
        "x.toml",
    )
    resolved = resolve_profile(profile, cloud="china", region_text=None, tags=tags, regions=regions)
    skipped, arm = resolved.rules
    assert skipped.tag is None and skipped.skipped_reason == "not needed in China"
    assert arm.tag.name == "AzureResourceManager" and arm.skipped_reason is None


def test_resolve_missing_tags_and_null_features_are_warnings():
    tags, regions = synthetic()
    profile = parse_profile(
        textwrap.dedent(
            """\
            [[rule]]
            direction = "outbound"
            ports = "443"
            tag = "AzureMachineLearning.{region}"
            [[rule]]
            direction = "outbound"
            ports = "443"
            tag = "AzureKeyVault.{region}"
            [[rule]]
            direction = "outbound"
            ports = "443"
            tag = "AzureMonitor"
            """
        ),
        "w.toml",
    )
    resolved = resolve_profile(
        profile, cloud="Public", region_text="westus", tags=tags, regions=regions
    )
    aml, keyvault, monitor = resolved.rules
    assert aml.tag.name == "AzureMachineLearning.WestUS"
    assert aml.warnings == (
        "AzureMachineLearning.WestUS has networkFeatures null: it is in the file only, "
        "not usable as an NSG/Azure Firewall tag",
    )
    assert keyvault.tag is None and "no AzureKeyVault tag for region westus" in keyvault.warnings[0]
    assert monitor.tag is None and "AzureMonitor is not in the Public file" in monitor.warnings[0]
    assert resolved.warnings == aml.warnings + keyvault.warnings + monitor.warnings


def test_resolve_uses_the_region_field_for_mismatched_suffixes():
    tags, regions = synthetic()
    profile = parse_profile(
        '[[rule]]\ndirection="outbound"\nports="443"\ntag="storage.{region}"\n', "s.toml"
    )
    resolved = resolve_profile(
        profile, cloud="Public", region_text="francecentral", tags=tags, regions=regions
    )
    assert resolved.region == "centralfrance"
    assert resolved.rules[0].tag.name == "Storage.FranceCentral"


def test_resolve_unknown_cloud():
    tags, regions = synthetic()
    with pytest.raises(NotFoundError, match="Unknown cloud"):
        resolve_profile(
            fixed_azureml(),
            cloud="Mars",
            region_text="westus",
            tags=tags,
            regions=regions,
        )


# --- resolving (real files) ------------------------------------------------------------------


def load_file(cloud: str, day: str) -> tuple[dict[str, ServiceTag], RegionIndex]:
    tags = load_real_tags(cloud, day)
    return {t.name: t for t in tags}, RegionIndex.from_tags(tags)


@pytest.fixture(scope="module")
def _public():
    return load_file("Public", "20250113")


@pytest.fixture
def public(request):
    require_data()  # first: the realdata guard sees every user, files or no files
    return request.getfixturevalue("_public")


def resolved_names(resolved):
    return [r.tag.name if r.tag else r.skipped_reason for r in resolved.rules]


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("region_text", "suffix"),
    [
        ("westus", "WestUS"),
        ("West Europe", "WestEurope"),
        ("uswest", "WestUS"),
        ("France Central", "FranceCentral"),
    ],
)
def test_real_public_azureml(public, region_text, suffix):
    tags, regions = public
    resolved = resolve_profile(
        fixed_azureml(),
        cloud="Public",
        region_text=region_text,
        tags=tags,
        regions=regions,
    )
    assert resolved_names(resolved) == [
        "BatchNodeManagement",
        "AzureMachineLearning",
        "AzureActiveDirectory",
        "AzureMachineLearning",
        "AzureResourceManager",
        f"Storage.{suffix}",
        "AzureFrontDoor.Frontend",
        f"AzureContainerRegistry.{suffix}",
        f"MicrosoftContainerRegistry.{suffix}",
    ]
    assert resolved.warnings == ()
    assert all(r.tag.prefixes for r in resolved.rules)


@pytest.mark.realdata
def test_real_china_skips_front_door():
    tags, regions = load_file("China", "20241118")
    assert "AzureFrontDoor.Frontend" in tags  # it exists there; the doc says it is not needed
    resolved = resolve_profile(
        fixed_azureml(),
        cloud="China",
        region_text="China North 2",
        tags=tags,
        regions=regions,
    )
    assert resolved.region == "chinanorth2"
    assert resolved_names(resolved) == [
        "BatchNodeManagement",
        "AzureMachineLearning",
        "AzureActiveDirectory",
        "AzureMachineLearning",
        "AzureResourceManager",
        "Storage.ChinaNorth2",
        "not needed in China",
        "AzureContainerRegistry.ChinaNorth2",
        "MicrosoftContainerRegistry.ChinaNorth2",
    ]
    assert resolved.rules[6].rule.tag == "AzureFrontDoor.Frontend"
    assert resolved.warnings == ()


@pytest.mark.realdata
def test_real_china_rejects_public_regions_with_suggestions():
    tags, regions = load_file("China", "20241118")
    with pytest.raises(NotFoundError) as caught:
        resolve_profile(
            fixed_azureml(),
            cloud="China",
            region_text="chinanorth4",
            tags=tags,
            regions=regions,
        )
    assert "chinanorth" in caught.value.suggestions[0]


@pytest.mark.realdata
def test_real_germany_warns_about_missing_front_door():
    tags, regions = load_file("AzureGermany", "20220307")
    resolved = resolve_profile(
        fixed_azureml(),
        cloud="germany",
        region_text="Germany Central",
        tags=tags,
        regions=regions,
    )
    front_door = resolved.rules[6]
    assert front_door.tag is None and front_door.skipped_reason is None
    assert resolved.warnings == (
        "AzureFrontDoor.Frontend is not in the AzureGermany file; "
        "this rule resolves to no prefixes",
    )
    assert resolved.rules[5].tag.name == "Storage.GermanyCentral"


def test_find_profile_answers_as_the_whole_library_does(tmp_path):
    from resolver.profiles import builtin_profiles, find_profile, get_profile, load_profiles

    for name in builtin_profiles():
        assert find_profile(name, ()) == get_profile(name, load_profiles(()))
    assert find_profile("AzureML", [tmp_path / "none"]).name == "azureml"  # any case
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "x.toml").write_text(
        'name = "azureml"\n[[rule]]\ndirection = "outbound"\nports = "443"\ntag = "Storage"\n'
    )
    found = find_profile("azureml", [mine])  # a user file named otherwise still wins
    assert [r.tag for r in found.rules] == ["Storage"]
    with pytest.raises(NotFoundError, match="Unknown profile 'azurml'"):
        find_profile("azurml", ())
