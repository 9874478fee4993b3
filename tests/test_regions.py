"""Region aliases: codes, display names, tag suffixes, the 14 mismatches, typos; real files too."""

from __future__ import annotations

import random

import pytest

from resolver.errors import NotFoundError
from resolver.models import ServiceTag
from resolver.regions import RegionIndex, normalise
from tests.helpers import load_real_tags, require_data

# (tag suffix, region field) pairs where the two disagree, as listed in docs/domain.md.
MISMATCHES = [
    ("BrazilSoutheast", "brazilse"),
    ("ChileCentral", "chilec"),
    ("EastUSSTG", "usstagee"),
    ("FranceCentral", "centralfrance"),
    ("FranceSouth", "southfrance"),
    ("GermanyNorth", "germanyn"),
    ("GermanyWestCentral", "germanywc"),
    ("NorwayEast", "norwaye"),
    ("NorwayWest", "norwayw"),
    ("SouthCentralUSSTG", "usstagec"),
    ("SwitzerlandNorth", "switzerlandn"),
    ("SwitzerlandWest", "switzerlandw"),
    ("EastUS2Stage", "eastus2"),
    ("NorthCentralUSStage", "northcentralus"),
]
STAGE_SUFFIXES = {"EastUS2Stage", "NorthCentralUSStage"}


def tag(name: str, region: str = "", features: frozenset[str] | None = frozenset({"NSG"})):
    return ServiceTag(
        name=name,
        region=region,
        region_id=0 if not region else 1,
        system_service="",
        network_features=features,
        change_number=1,
        prefixes=("10.0.0.0/24",),
    )


def synthetic_tags() -> list[ServiceTag]:
    tags = [
        tag("AzureCloud"),
        tag("Storage"),
        tag("Sql"),
        # global tags whose names contain dots: never regions
        tag("AzureFrontDoor.Frontend"),
        tag("AzureActiveDirectory.ServiceEndpoint"),
        tag("AzureMonitor.Core"),
        tag("Storage.WestEurope", "westeurope"),
        tag("AzureCloud.westeurope", "westeurope"),
        tag("Storage.WestUS", "westus"),
        tag("AzureCloud.westus", "westus"),
        tag("AzureContainerRegistry.WestUS", "westus"),
        tag("Sql.EastUS2", "eastus2"),
        tag("Storage.EastUS2", "eastus2"),
        tag("AzureCloud.eastus2", "eastus2"),
        tag("Sql.NorthCentralUS", "northcentralus"),
    ]
    for suffix, code in MISMATCHES:
        tags.append(tag(f"Sql.{suffix}", code))
        if suffix not in STAGE_SUFFIXES:
            tags.append(tag(f"Storage.{suffix}", code))
            tags.append(tag(f"AzureCloud.{code}", code))
    return tags


@pytest.fixture(scope="module")
def index() -> RegionIndex:
    return RegionIndex.from_tags(synthetic_tags())


def test_normalise_drops_case_spaces_hyphens_underscores():
    assert normalise(" West-Europe_2 ") == "westeurope2"


@pytest.mark.parametrize(
    "text",
    ["westeurope", "West Europe", "WestEurope", "west-europe", "WEST_EUROPE", "  west europe  "],
)
def test_the_many_spellings_of_west_europe(index, text):
    assert index.resolve(text) == "westeurope"


@pytest.mark.parametrize(("suffix", "code"), MISMATCHES)
def test_every_mismatched_suffix_resolves_to_its_region_field(index, suffix, code):
    assert index.resolve(suffix) == code
    assert index.resolve(suffix.lower()) == code
    assert index.resolve(code) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("France Central", "centralfrance"),
        ("francecentral", "centralfrance"),  # the real ARM code, not the file's region field
        ("Germany West Central", "germanywc"),
        ("switzerland-north", "switzerlandn"),
        ("East US 2", "eastus2"),
        ("East US STG", "usstagee"),
    ],
)
def test_display_names_and_arm_codes_reach_the_file_code(index, text, code):
    assert index.resolve(text) == code


def test_stage_suffix_is_an_alias_but_does_not_steal_the_code(index):
    assert index.resolve("EastUS2Stage") == "eastus2"
    assert index.resolve("eastus2") == "eastus2"
    assert index.resolve("East US 2") == "eastus2"


def test_a_code_wins_over_a_suffix_of_another_region():
    # A (hypothetical) tag whose suffix equals another region's code must not redirect that code.
    idx = RegionIndex.from_tags([tag("X.Virginia", "eastus"), tag("Odd.EastUS", "usstagee")])
    assert idx.resolve("eastus") == "eastus"
    assert idx.resolve("East US") == "eastus"


def test_a_suffix_pointing_at_two_codes_is_reported_as_ambiguous():
    idx = RegionIndex.from_tags([tag("A.Central", "regiona"), tag("B.Central", "regionb")])
    with pytest.raises(NotFoundError, match="ambiguous") as caught:
        idx.resolve("central")
    assert caught.value.suggestions == ("regiona", "regionb")


def test_new_region_works_without_code_changes():
    # Microsoft's own misspelt code: the suffix spells the region right, the data decides the code.
    idx = RegionIndex.from_tags([tag("Storage.IsraelCentral", "isrealcentral")])
    assert idx.resolve("Israel Central") == "isrealcentral"
    assert idx.resolve("isrealcentral") == "isrealcentral"


def test_doc_typos(index):
    assert index.resolve("uswest") == "westus"
    assert index.resolve("US West") == "westus"


def test_typos_only_apply_when_their_region_exists():
    china = RegionIndex.from_tags([tag("Storage.ChinaNorth2", "chinanorth2")])
    with pytest.raises(NotFoundError, match="Unknown region 'uswest'"):
        china.resolve("uswest")


def test_unknown_region_suggests_close_codes(index):
    with pytest.raises(NotFoundError) as caught:
        index.resolve("westeuorpe")
    assert str(caught.value) == "Unknown region 'westeuorpe'. Did you mean: westeurope?"
    assert caught.value.suggestions == ("westeurope",)


def test_unknown_region_suggestion_via_display_name_gives_the_code(index):
    with pytest.raises(NotFoundError) as caught:
        index.resolve("France Centrl")
    assert "centralfrance" in caught.value.suggestions


def test_hopeless_region_lists_some_codes(index):
    with pytest.raises(NotFoundError) as caught:
        index.resolve("mars")
    message = str(caught.value)
    assert message.startswith("Unknown region 'mars'.")
    assert "Did you mean" not in message
    assert "brazilse" in message  # the first codes, sorted


def test_empty_region_is_an_error(index):
    with pytest.raises(NotFoundError, match="empty"):
        index.resolve("  ")


def test_dotted_global_names_are_not_regions(index):
    assert "" not in index.codes()
    for part in ("Frontend", "ServiceEndpoint", "Core"):
        with pytest.raises(NotFoundError):
            index.resolve(part)
    assert index.regional_tag("AzureFrontDoor", "westus") is None


def test_codes_sorted_and_complete(index):
    codes = index.codes()
    assert codes == tuple(sorted(codes))
    assert set(codes) == {"westeurope", "westus", "eastus2", "northcentralus"} | {
        c for _, c in MISMATCHES
    }


def test_regional_tag_is_case_insensitive_on_base(index):
    assert index.regional_tag("storage", "westeurope").name == "Storage.WestEurope"
    assert index.regional_tag("AZURECONTAINERREGISTRY", "westus").name == (
        "AzureContainerRegistry.WestUS"
    )
    assert index.regional_tag("azurecloud", "westus").name == "AzureCloud.westus"
    assert index.regional_tag("Storage", "centralfrance").name == "Storage.FranceCentral"
    assert index.regional_tag("AzureCloud", "centralfrance").name == "AzureCloud.centralfrance"
    assert index.regional_tag("Storage", "nowhere") is None
    assert index.regional_tag("NoSuchService", "westus") is None


@pytest.mark.parametrize("seed", range(5))
def test_regional_tag_prefers_the_plain_suffix_over_stage(seed):
    tags = synthetic_tags()
    random.Random(seed).shuffle(tags)  # the rule, not the input order, decides
    idx = RegionIndex.from_tags(tags)
    assert idx.regional_tag("Sql", "eastus2").name == "Sql.EastUS2"
    assert idx.regional_tag("Sql", "northcentralus").name == "Sql.NorthCentralUS"


def test_regional_tag_falls_back_to_the_only_candidate():
    idx = RegionIndex.from_tags([tag("Sql.EastUS2Stage", "eastus2")])
    assert idx.regional_tag("Sql", "eastus2").name == "Sql.EastUS2Stage"


def test_regional_tag_prefers_the_regions_canonical_suffix():
    # Neither suffix equals the code; FranceCentral is what the region's tags mostly use.
    idx = RegionIndex.from_tags(
        [
            tag("Storage.FranceCentral", "centralfrance"),
            tag("Sql.FranceCentral", "centralfrance"),
            tag("Sql.AFranceCentralStage", "centralfrance"),  # sorts first by name
        ]
    )
    assert idx.regional_tag("Sql", "centralfrance").name == "Sql.FranceCentral"


def test_regional_tag_does_not_match_a_longer_dotted_base():
    idx = RegionIndex.from_tags([tag("AzureMonitor.Core.WestUS", "westus")])
    assert idx.regional_tag("AzureMonitor", "westus") is None
    assert idx.regional_tag("AzureMonitor.Core", "westus").name == "AzureMonitor.Core.WestUS"


def test_tags_in_region(index):
    names = [t.name for t in index.tags_in_region("eastus2")]
    assert names == ["AzureCloud.eastus2", "Sql.EastUS2", "Sql.EastUS2Stage", "Storage.EastUS2"]
    assert index.tags_in_region("nowhere") == ()


# --- real files ------------------------------------------------------------------------------


def load_tags(cloud: str, day: str) -> list[ServiceTag]:
    return load_real_tags(cloud, day)


@pytest.fixture(scope="module")
def _public_tags() -> list[ServiceTag]:
    return load_tags("Public", "20250113")


@pytest.fixture
def public_tags(request) -> list[ServiceTag]:
    require_data()  # first: the realdata guard sees every user, files or no files
    return request.getfixturevalue("_public_tags")


@pytest.mark.realdata
def test_real_every_regional_suffix_resolves_to_its_region_field(public_tags):
    idx = RegionIndex.from_tags(public_tags)
    regional = [t for t in public_tags if t.region]
    assert len(regional) > 2000
    wrong = [t.name for t in regional if idx.resolve(t.name.rpartition(".")[2]) != t.region]
    assert wrong == []


@pytest.mark.realdata
def test_real_regional_tag_finds_every_tag_with_its_own_base(public_tags):
    idx = RegionIndex.from_tags(public_tags)
    for t in public_tags:
        if not t.region:
            continue
        found = idx.regional_tag(t.name.rpartition(".")[0], t.region)
        if t.name.endswith(("Stage", "STG")) and t.region in ("eastus2", "northcentralus"):
            assert found is not None and found.name != t.name  # the plain one wins
        else:
            assert found is t


@pytest.mark.realdata
def test_real_mismatches_resolve(public_tags):
    idx = RegionIndex.from_tags(public_tags)
    present = {t.name.rpartition(".")[2] for t in public_tags if t.region}
    checked = 0
    for suffix, code in MISMATCHES:
        if suffix not in present:  # ChileCentral is newer than this file
            continue
        assert idx.resolve(suffix) == code
        checked += 1
    assert checked == 13
    assert idx.regional_tag("Sql", "eastus2").name == "Sql.EastUS2"
    assert idx.resolve("France Central") == "centralfrance"
    assert idx.resolve("uswest") == "westus"


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("cloud", "day"),
    [
        ("AzureGovernment", "20241118"),
        ("China", "20241118"),
        ("AzureGermany", "20220307"),
    ],
    ids=["usgov", "china", "germany"],
)
def test_real_small_clouds(cloud, day):
    tags = load_tags(cloud, day)
    idx = RegionIndex.from_tags(tags)
    assert idx.codes()
    for t in tags:
        if t.region:
            assert idx.resolve(t.name.rpartition(".")[2]) == t.region


def test_regional_tag_prefers_the_code_spelling_even_when_stage_is_more_common():
    idx = RegionIndex.from_tags(
        [
            tag("Sql.EastUS2Stage", "eastus2"),
            tag("Storage.EastUS2Stage", "eastus2"),
            tag("Sql.EastUS2", "eastus2"),
        ]
    )
    assert idx.regional_tag("Sql", "eastus2").name == "Sql.EastUS2"


def test_region_written_as_a_suffix_picks_that_tag(index):
    assert index.regional_tag("Sql", "eastus2").name == "Sql.EastUS2"
    code = index.resolve("EastUS2Stage")
    assert code == "eastus2"
    assert index.regional_tag("Sql", code, as_written="EastUS2Stage").name == "Sql.EastUS2Stage"
    assert index.regional_tag("Sql", code, as_written="East US 2").name == "Sql.EastUS2"


def _answer(idx: RegionIndex, text: str) -> str | tuple[str, tuple[str, ...]]:
    try:
        return idx.resolve(text)
    except NotFoundError as e:
        return (str(e), e.suggestions)


def test_answers_do_not_depend_on_what_was_asked_first():
    # Suffix aliases are worked out on the first text that is not a code: asking a code, a
    # suffix, a typo, an ambiguous or unknown text first must not change any answer.
    tags = [*synthetic_tags(), tag("A.Central", "regiona"), tag("B.Central", "regionb")]
    texts = ["westus", "WestEurope", "uswest", "central", "westeuorpe", "EastUS2Stage", " "]
    expected = [_answer(RegionIndex.from_tags(tags), t) for t in texts]
    assert expected[:3] == ["westus", "westeurope", "westus"]
    for first in texts:
        idx = RegionIndex.from_tags(tags)
        _answer(idx, first)
        assert [_answer(idx, t) for t in texts] == expected
