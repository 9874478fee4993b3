"""The query library (resolver.query.TagStore) against brute force over the published files.

Every expected value here is computed from the raw JSON with the standard library (ipaddress,
plain loops over every (tag, prefix) pair), never with the code under test. The 16 weekly Public
files of 2023 and one China file are imported once per session into one store.
"""

from __future__ import annotations

import ipaddress
import random
import sqlite3
from datetime import date, timedelta

import pytest

from cache.db import open_db
from cache.store import SaveOptions
from resolver.errors import NotFoundError, UsageError
from resolver.ingest import RawFile
from resolver.query import TagStore
from resolver.refresh import store_file
from tests.diffcount import summed_delta
from tests.helpers import (
    CHINA_DAY,
    WEEKLY_2023,
    address_delta,
    as_date,
    azureml_tags,
    brute_cidrs,
    brute_lookup,
    expected_history,
    expected_tag_changes,
    iso,
    random_addresses,
    random_cidrs,
    raw_cn,
    raw_pairs,
    raw_tags,
    require_data,
    sort_prefixes,
    synthetic_files,
    union_of,
)

# -- stores ----------------------------------------------------------------------------------------
# The store of the 16 weekly Public files of 2023 and the China file of 2024-11-18 is built once per
# run (conftest.py: weekly_db); the TagStores over it are opened once per module, read-only, and
# handed to each test through a function-scoped fixture so that the realdata guard sees every user.


@pytest.fixture(scope="module")
def _public_store(weekly_db) -> TagStore:
    return TagStore.open(weekly_db, cloud="public")


@pytest.fixture(scope="module")
def _china_store(weekly_db) -> TagStore:
    return TagStore.open(weekly_db, cloud="china")


@pytest.fixture
def store(request) -> TagStore:
    require_data()  # first: the realdata guard sees every user, files or no files
    return request.getfixturevalue("_public_store")


@pytest.fixture
def china(request) -> TagStore:
    require_data()  # first: the realdata guard sees every user, files or no files
    return request.getfixturevalue("_china_store")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> TagStore:
    folder = tmp_path_factory.mktemp("query-synthetic")
    conn = open_db(folder / "aztags.db")
    for path in synthetic_files(folder):
        day = date.fromisoformat(iso(path.stem.rsplit("_", 1)[1]))
        store_file(conn, RawFile(path.read_bytes(), str(path), day), SaveOptions())
    conn.close()
    return TagStore.open(folder / "aztags.db")


# -- forward queries: every tag at every weekly snapshot -------------------------------------------


def at_ref(i: int, day: str) -> str:
    """Alternate the two --at forms over the snapshots."""
    return f"cn:{raw_cn('Public', day)}" if i % 2 else iso(day)


@pytest.mark.realdata
@pytest.mark.parametrize("i", range(len(WEEKLY_2023)), ids=WEEKLY_2023)
def test_every_tag_at_every_weekly_snapshot_equals_the_file(store, i):
    day = WEEKLY_2023[i]
    raw = raw_tags("Public", day)
    # All tags in one call: each tag's prefixes come back in answer.tags, their union in prefixes.
    answer = store.cidrs(sorted(raw), at=at_ref(i, day))
    assert answer.snapshot.change_number == raw_cn("Public", day)
    assert answer.snapshot.file_date == as_date(day)
    got = {t.name: list(t.prefixes) for t in answer.tags}
    assert got.keys() == raw.keys()
    assert got == {name: sort_prefixes(p["addressPrefixes"]) for name, p in raw.items()}
    assert list(answer.prefixes) == sort_prefixes(union_of(raw, raw))
    # Tag by tag, as a user asks, for a fixed sample of 200 names, in any case.
    rng = random.Random(i)
    for name in rng.sample(sorted(raw), 200):
        asked = name.upper() if rng.random() < 0.3 else name
        one = store.cidrs([asked], at=at_ref(i + 1, day))
        assert [t.name for t in one.tags] == [name]
        assert list(one.prefixes) == sort_prefixes(raw[name]["addressPrefixes"]), name


@pytest.mark.realdata
def test_at_picks_the_snapshot_in_force_on_a_day(store):
    for day in WEEKLY_2023:
        cn = raw_cn("Public", day)
        for ref in (iso(day), (as_date(day) + timedelta(days=6)).isoformat(), f"cn:{cn}"):
            snap = store.snapshot(ref)
            assert (snap.change_number, snap.file_date) == (cn, as_date(day)), ref
    assert store.snapshot().change_number == raw_cn("Public", WEEKLY_2023[-1])
    assert store.snapshot("2026-01-01").change_number == raw_cn("Public", WEEKLY_2023[-1])
    with pytest.raises(NotFoundError, match="before the first stored Public snapshot"):
        store.snapshot("2023-03-05")
    with pytest.raises(NotFoundError, match="Did you mean: cn:"):
        store.snapshot("cn:9999")


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("region", "cloud", "day", "suffix"),
    [
        ("westus", "Public", WEEKLY_2023[-1], "WestUS"),
        ("West Europe", "Public", WEEKLY_2023[-1], "WestEurope"),
        ("westus", "Public", "20230320", "WestUS"),
        ("chinanorth2", "China", CHINA_DAY, "ChinaNorth2"),
    ],
)
def test_azureml_profile_is_the_union_of_the_real_tags(store, china, region, cloud, day, suffix):
    tags = raw_tags(cloud, day)
    expected = azureml_tags(cloud, suffix)
    at = None if day in (WEEKLY_2023[-1], CHINA_DAY) else iso(day)
    source = china if cloud == "China" else store
    answer = source.cidrs(profile="azureml", region=region, at=at)
    assert sorted(t.name for t in answer.tags) == sorted(expected)
    assert list(answer.prefixes) == sort_prefixes(union_of(tags, expected))
    merged = source.cidrs(profile="azureml", region=region, at=at, aggregate=True)
    nets = [ipaddress.ip_network(p) for p in union_of(tags, expected)]
    for version in (4, 6):
        collapsed = list(ipaddress.collapse_addresses(n for n in nets if n.version == version))
        assert [
            ipaddress.ip_network(p)
            for p in merged.prefixes
            if ipaddress.ip_network(p).version == version
        ] == collapsed


# -- names and regions -----------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize(
    "region", ["westeurope", "West Europe", "WestEurope", "west-europe", "WESTEUROPE"]
)
def test_base_service_and_any_spelling_of_a_region(store, region):
    answer = store.cidrs(["Storage"], region=region)
    assert [t.name for t in answer.tags] == ["Storage.WestEurope"]
    raw = raw_tags("Public", WEEKLY_2023[-1])
    assert list(answer.prefixes) == sort_prefixes(raw["Storage.WestEurope"]["addressPrefixes"])


@pytest.mark.realdata
def test_region_suffix_that_disagrees_with_the_region_code(store):
    raw = raw_tags("Public", WEEKLY_2023[-1])
    assert raw["Storage.FranceCentral"]["region"] == "centralfrance"  # the data's own mismatch
    for region in ("France Central", "francecentral", "centralfrance"):
        answer = store.cidrs(["storage"], region=region)
        assert [t.name for t in answer.tags] == ["Storage.FranceCentral"], region
        assert answer.tags[0].region == "centralfrance"
        assert list(answer.prefixes) == sort_prefixes(
            raw["Storage.FranceCentral"]["addressPrefixes"]
        )


@pytest.mark.realdata
def test_region_shared_by_two_tags_of_one_service_picks_the_plain_one(store):
    raw = raw_tags("Public", WEEKLY_2023[-1])
    assert raw["Sql.EastUS2"]["region"] == raw["Sql.EastUS2Stage"]["region"] == "eastus2"
    for region in ("eastus2", "East US 2", "EastUS2"):
        assert [t.name for t in store.cidrs(["Sql"], region=region).tags] == ["Sql.EastUS2"], region
    assert [t.name for t in store.cidrs(["Sql.EastUS2Stage"], region="eastus2").tags] == [
        "Sql.EastUS2Stage"
    ]
    assert [t.name for t in store.cidrs(["Sql.EastUS2Stage"]).tags] == ["Sql.EastUS2Stage"]


@pytest.mark.realdata
def test_dotted_global_tags_and_case_insensitive_names(store):
    raw = raw_tags("Public", WEEKLY_2023[-1])
    for asked, real in [
        ("AzureFrontDoor.Frontend", "AzureFrontDoor.Frontend"),
        ("azurefrontdoor.FRONTEND", "AzureFrontDoor.Frontend"),
        ("AzureActiveDirectory.ServiceEndpoint", "AzureActiveDirectory.ServiceEndpoint"),
        ("azurecloud.WestUS", "AzureCloud.westus"),
    ]:
        answer = store.cidrs([asked])
        assert [t.name for t in answer.tags] == [real]
        assert answer.tags[0].region == raw[real]["region"]
        assert list(answer.prefixes) == sort_prefixes(raw[real]["addressPrefixes"])


@pytest.mark.realdata
def test_unknown_names_and_regions_say_what_to_try(store):
    with pytest.raises(NotFoundError) as unknown:
        store.cidrs(["Storge"])
    assert "Unknown service tag 'Storge'" in str(unknown.value)
    assert "Storage" in unknown.value.suggestions
    with pytest.raises(NotFoundError) as region:
        store.cidrs(["Storage"], region="westeurop")
    assert region.value.suggestions == ("westeurope",)
    with pytest.raises(NotFoundError, match="Storage.WestUS is the tag of region westus"):
        store.cidrs(["Storage.WestUS"], region="westeurope")


@pytest.mark.realdata
def test_null_network_features_is_a_warning(store):
    raw = raw_tags("Public", WEEKLY_2023[-1])
    assert raw["AzureMachineLearning.WestUS"]["networkFeatures"] is None
    answer = store.cidrs(["AzureMachineLearning"], region="westus")
    assert [t.name for t in answer.tags] == ["AzureMachineLearning.WestUS"]
    assert any("AzureMachineLearning.WestUS has networkFeatures null" in w for w in answer.warnings)
    assert store.cidrs(["Storage"], region="westus").warnings == ()


@pytest.mark.realdata
def test_family_filter_splits_the_union(store):
    raw = raw_tags("Public", WEEKLY_2023[-1])
    both = union_of(raw, ["AzureCloud.westus"])
    v4 = store.cidrs(["AzureCloud.westus"], family=4).prefixes
    v6 = store.cidrs(["AzureCloud.westus"], family=6).prefixes
    assert list(v4) == sort_prefixes(p for p in both if ":" not in p)
    assert list(v6) == sort_prefixes(p for p in both if ":" in p)
    assert v4 and v6


# -- tags ------------------------------------------------------------------------------------------


def raw_summary(tags: dict[str, dict], names) -> list[tuple[str, int, int]]:
    rows = []
    for name in sorted(names):
        prefixes = tags[name]["addressPrefixes"]
        rows.append((name, sum(":" not in p for p in prefixes), sum(":" in p for p in prefixes)))
    return rows


@pytest.mark.realdata
@pytest.mark.parametrize("day", [WEEKLY_2023[0], WEEKLY_2023[-1]])
def test_tags_filters_agree_with_the_file(store, day):
    raw = raw_tags("Public", day)
    at = iso(day)

    def rows(found):
        return [(t.name, t.ipv4_count, t.ipv6_count) for t in found]

    snap, everything = store.tags(at=at)
    assert snap.change_number == raw_cn("Public", day)
    assert rows(everything) == raw_summary(raw, raw)
    by_region = {n for n, p in raw.items() if p["region"] == "westeurope"}
    assert rows(store.tags(at=at, region="West Europe")[1]) == raw_summary(raw, by_region)
    by_system = {n for n, p in raw.items() if p["systemService"] == "AzureStorage"}
    assert rows(store.tags(at=at, service="azurestorage")[1]) == raw_summary(raw, by_system)
    storage = {
        n for n, p in raw.items() if n == "Storage" or (n.startswith("Storage.") and p["region"])
    }
    assert rows(store.tags(at=at, service="Storage")[1]) == raw_summary(raw, storage)
    nsg = {n for n, p in raw.items() if "NSG" in (p["networkFeatures"] or [])}
    assert rows(store.tags(at=at, feature="nsg")[1]) == raw_summary(raw, nsg)
    vse_in_region = {n for n in by_region if "VSE" in (raw[n]["networkFeatures"] or [])}
    assert rows(store.tags(at=at, region="westeurope", feature="VSE")[1]) == raw_summary(
        raw, vse_in_region
    )
    # Properties as published: null stays None, [] stays empty (AzureCloud.uknorth has []).
    details = {t.name: t for t in everything}
    for name, props in raw.items():
        features = props["networkFeatures"]
        assert details[name].network_features == (
            None if features is None else frozenset(features)
        ), name
        assert (details[name].region, details[name].system_service) == (
            props["region"],
            props["systemService"],
        )


# -- reverse lookup --------------------------------------------------------------------------------


def as_pairs(matches) -> list[tuple[str, str]]:
    return [(m.tag, m.prefix) for m in matches]


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("day", "at"), [(WEEKLY_2023[-1], None), ("20230320", "2023-03-22"), ("20230306", "cn:244")]
)
def test_address_lookup_single_and_batch_agree_with_brute_force(store, day, at):
    pairs = raw_pairs("Public", day)
    # Queries drawn from the newest file too, so older snapshots are asked about prefixes they lack.
    newest = raw_pairs("Public", WEEKLY_2023[-1])
    addresses = list(
        dict.fromkeys(random_addresses(pairs, 1, 300) + random_addresses(newest, 2, 100))
    )
    expected = brute_lookup(pairs, addresses)
    assert (
        sum(1 for a in addresses if expected[a]) > len(addresses) // 3
    )  # the sample does hit tags
    answers = store.lookup(addresses, at=at)  # the single-query SQL path
    assert [a.query for a in answers] == addresses
    assert all(a.error is None and not a.result.is_cidr for a in answers)
    assert {a.query: as_pairs(a.result.containing) for a in answers} == expected
    batch = dict(store.lookup_batch(at).answers(addresses))  # the batch path: shared tuples
    assert {q: as_pairs(r) for q, r in batch.items()} == expected


@pytest.mark.realdata
@pytest.mark.parametrize(("day", "at"), [(WEEKLY_2023[-1], None), ("20230320", "cn:246")])
def test_cidr_lookup_containing_and_inside_agree_with_brute_force(store, day, at):
    pairs = raw_pairs("Public", day)
    cidrs = random_cidrs(raw_pairs("Public", WEEKLY_2023[-1]), 3)
    assert len(cidrs) >= 45
    answers = store.lookup(cidrs, at=at)
    batch = dict(store.lookup_batch(at).answers(cidrs))
    seen_inside = seen_containing = 0
    expected = brute_cidrs(pairs, cidrs)
    for answer in answers:
        containing, inside = expected[answer.query]
        assert answer.result.is_cidr
        assert as_pairs(answer.result.containing) == containing, answer.query
        assert as_pairs(answer.result.overlapping) == inside, answer.query
        assert as_pairs(batch[answer.query].containing) == containing
        assert as_pairs(batch[answer.query].overlapping) == inside
        seen_inside += bool(inside)
        seen_containing += bool(containing)
    assert seen_inside > 5 and seen_containing > 5


@pytest.mark.realdata
def test_lookup_reports_bad_queries_per_query(store):
    answers = store.lookup(["13.64.0.1", "13.64.0.1/16", "999.1.1.1", "", "2603:1030::/33"])
    ok, host_bits, bad, empty, v6_host_bits = answers
    assert ok.error is None and ok.result.containing
    assert "host bits set; the network it belongs to is 13.64.0.0/16" in host_bits.error
    assert host_bits.result is None and bad.result is None and empty.result is None
    assert "'999.1.1.1' is not an IPv4 or IPv6 address" in bad.error
    assert v6_host_bits.error is None  # 2603:1030::/33 has no host bits


@pytest.mark.realdata
def test_lookup_report_details_are_the_answered_tags_as_in_the_file(store):
    # The details a renderer prints (region, systemService) for exactly the tags answered, read
    # without loading every tag's summary; a wide CIDR with more than 500 tags inside too.
    day = WEEKLY_2023[-1]
    raw = raw_tags("Public", day)
    for queries in (["20.38.96.1", "2603:1030::1", "1.1.1.1"], ["20.0.0.0/8"], ["0.0.0.0/0"]):
        report = store.lookup_report(queries)
        named = {
            m.tag for a in report.answers for m in (*a.result.containing, *a.result.overlapping)
        }
        assert named and set(report.details) == named, queries
        for name, summary in report.details.items():
            props = raw[name]
            assert (summary.region, summary.system_service, summary.change_number) == (
                props["region"],
                props["systemService"],
                props["changeNumber"],
            ), name
    assert len(store.lookup_report(["0.0.0.0/0"]).details) > 500


@pytest.mark.realdata
@pytest.mark.slow  # 1,500 single-address lookups through SQL
def test_many_ipv6_queries_fit_a_standard_sqlite_build(db):
    fresh = TagStore.open(db)
    fresh.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32766)  # SQLite's compiled default
    rng = random.Random(5)
    addresses = [str(ipaddress.IPv6Address(rng.getrandbits(128))) for _ in range(1500)]
    answers = fresh.lookup(addresses)
    assert len(answers) == 1500


# -- diff ------------------------------------------------------------------------------------------


def folded(tag_diff) -> tuple[set[str], set[str]]:
    """A tag's added and removed prefixes with re-cuts folded back in."""
    added = set(tag_diff.added) | {p for r in tag_diff.recut for p in r.added}
    removed = set(tag_diff.removed) | {p for r in tag_diff.recut for p in r.removed}
    return added, removed


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("old_day", "new_day", "refs"),
    [
        ("20230320", "20230327", ("2023-03-20", "cn:247")),
        ("20230508", "20230515", ("cn:253", "2023-05-15")),
    ],
)
def test_diff_of_a_weekly_pair_agrees_with_the_files(store, old_day, new_day, refs):
    old, new = raw_tags("Public", old_day), raw_tags("Public", new_day)
    answer = store.diff(*refs)
    assert (answer.before.change_number, answer.after.change_number) == (
        raw_cn("Public", old_day),
        raw_cn("Public", new_day),
    )
    expected = expected_tag_changes(old, new)
    assert {d.name: folded(d) for d in answer.tags} == expected
    assert [d.name for d in answer.tags] == sorted(expected)
    for d in answer.tags:
        assert d.status == (
            "added" if d.name not in old else "removed" if d.name not in new else "changed"
        )
        for r in d.recut:  # a re-cut covers the same addresses on both sides
            assert set(address_delta(set(r.removed), set(r.added)).values()) == {0}, r
    s = answer.summary
    assert (s.tags_added, s.tags_removed, s.tags_changed) == (
        len(new.keys() - old.keys()),
        len(old.keys() - new.keys()),
        len(expected) - len(new.keys() ^ old.keys()),
    )
    delta = summed_delta(old, new)
    assert {k: getattr(s, k) for k in delta} == delta
    assert answer.usable_from == as_date(new_day) + timedelta(days=7)


@pytest.mark.realdata
def test_diff_of_a_week_where_only_the_file_change_number_moved_is_empty(store):
    assert (
        expected_tag_changes(raw_tags("Public", "20230410"), raw_tags("Public", "20230417")) == {}
    )
    answer = store.diff("2023-04-12", "2023-04-17")  # in force on the 12th: the file of the 10th
    assert (answer.before.change_number, answer.after.change_number) == (249, 250)
    assert answer.tags == ()
    assert set(vars_of(answer.summary).values()) == {0}


def vars_of(summary) -> dict[str, int]:
    return {name: getattr(summary, name) for name in summary.__slots__}


@pytest.mark.realdata
def test_diff_20230320_to_20230327_removes_537_pairs(store):
    answer = store.diff("cn:246", "cn:247")
    assert sum(len(folded(d)[1]) for d in answer.tags) == 537
    assert answer.summary.tags_changed == 64


@pytest.mark.realdata
def test_default_diff_is_previous_against_current(store):
    answer = store.diff()
    assert (answer.before.file_date, answer.after.file_date) == (
        as_date(WEEKLY_2023[-2]),
        as_date(WEEKLY_2023[-1]),
    )
    expected = expected_tag_changes(
        raw_tags("Public", WEEKLY_2023[-2]), raw_tags("Public", WEEKLY_2023[-1])
    )
    assert {d.name: folded(d) for d in answer.tags} == expected
    # --to alone: the snapshot before it
    earlier = store.diff(to_at="2023-04-03")
    assert (earlier.before.change_number, earlier.after.change_number) == (247, 248)


@pytest.mark.realdata
def test_diff_scoped_to_names_and_to_a_profile(store):
    old, new = raw_tags("Public", "20230306"), raw_tags("Public", "20230619")
    answer = store.diff("2023-03-06", "2023-06-19", ["Storage"], region="West Europe")
    scope = ["Storage.WestEurope"]
    expected = {
        n: c
        for n, c in expected_tag_changes(
            {n: old[n] for n in scope}, {n: new[n] for n in scope}
        ).items()
    }
    assert {d.name: folded(d) for d in answer.tags} == expected and expected
    delta = summed_delta(old, new, scope)
    assert {k: getattr(answer.summary, k) for k in delta} == delta

    profile = store.diff("2023-03-06", "2023-06-19", profile="azureml", region="westus")
    scope = azureml_tags("Public", "WestUS")
    expected = expected_tag_changes({n: old[n] for n in scope}, {n: new[n] for n in scope})
    assert {d.name: folded(d) for d in profile.tags} == expected
    assert len(expected) >= 3
    delta = summed_delta(old, new, scope)
    assert {k: getattr(profile.summary, k) for k in delta} == delta


def test_synthetic_recut_is_not_an_add_and_a_remove(synthetic):
    answer = synthetic.diff()
    by_name = {d.name: d for d in answer.tags}
    storage = by_name["Storage"]
    assert storage.status == "changed" and storage.added == () and storage.removed == ()
    assert [(r.removed, r.added) for r in storage.recut] == [
        (("10.0.0.0/16",), ("10.0.0.0/17", "10.0.128.0/17"))
    ]
    assert (
        by_name["Storage.WestUS"].added == ("10.0.1.0/24",) and not by_name["Storage.WestUS"].recut
    )
    assert (by_name["Gone"].status, by_name["Gone"].removed) == (
        "removed",
        ("30.0.0.0/24", "2001:db8::/48"),
    )
    assert (by_name["New"].status, by_name["New"].added) == ("added", ("40.0.0.0/24",))
    assert by_name["Sql"].properties == (("network_features", None, frozenset({"API", "NSG"})),)
    assert by_name["Sql"].added == by_name["Sql"].removed == ()
    s = answer.summary
    assert (s.tags_added, s.tags_removed, s.tags_changed) == (1, 1, 3)
    # Per tag: Storage.WestUS gained 10.0.1.0/24 (although Storage's 10.0.0.0/16 holds it), New
    # 40.0.0.0/24; Gone lost a /24 and a /48 (2**16 /64s); Storage's re-cut counts nothing.
    assert (s.ipv4_addresses_added, s.ipv4_addresses_removed) == (512, 256)
    assert (s.ipv6_64s_added, s.ipv6_64s_removed) == (0, 2**16)
    assert answer.usable_from == date(2025, 1, 20)
    scoped = synthetic.diff(names=["storage"])
    assert [d.name for d in scoped.tags] == ["Storage"]
    assert (scoped.summary.ipv4_addresses_added, scoped.summary.ipv4_addresses_removed) == (0, 0)


def test_synthetic_diff_of_a_tag_that_appeared(synthetic):
    answer = synthetic.diff(names=["New"])
    assert [(d.name, d.status, d.added) for d in answer.tags] == [
        ("New", "added", ("40.0.0.0/24",))
    ]


def test_synthetic_diff_of_a_tag_that_disappeared(synthetic):
    answer = synthetic.diff(names=["Gone"])
    assert [(d.name, d.status) for d in answer.tags] == [("Gone", "removed")]


def test_synthetic_diff_with_one_snapshot_only_says_so(synthetic):
    with pytest.raises(NotFoundError, match="nothing to compare it with"):
        synthetic.diff(to_at="cn:1")


# -- history ---------------------------------------------------------------------------------------


def history_rows(versions) -> list[tuple]:
    rows = []
    for v in versions:
        rows.append(
            (
                v.snapshot.file_date,
                v.change_number,
                v.ipv4_count,
                v.ipv6_count,
                v.prefixes_added,
                v.prefixes_removed,
            )
        )
        if v.ended:
            rows.append((v.ended.file_date, "removed"))
    return rows


@pytest.mark.realdata
def test_history_of_every_tag_lists_exactly_its_changes(store):
    names = set().union(*(raw_tags("Public", day) for day in WEEKLY_2023))
    wrong = {n: (history_rows(store.history(n)), expected_history(n)) for n in sorted(names)}
    wrong = {n: pair for n, pair in wrong.items() if pair[0] != pair[1]}
    assert not wrong, list(wrong.items())[:3]
    # Some tags really change often: the comparison is not trivially one row each.
    assert max(len(expected_history(n)) for n in ("AzureCloud", "Storage", "Sql")) >= 8


@pytest.mark.realdata
def test_history_name_is_case_insensitive_and_unknown_suggests(store):
    assert history_rows(store.history("storage.westus")) == expected_history("Storage.WestUS")
    with pytest.raises(NotFoundError) as e:
        store.history("Storage.WestUs2x")
    assert "Storage.WestUS2" in e.value.suggestions


def test_synthetic_history_shows_removal_and_property_changes(synthetic):
    gone = synthetic.history("Gone")
    assert [
        (v.snapshot.change_number, v.ipv4_count, v.ipv6_count, v.prefixes_added) for v in gone
    ] == [(1, 1, 1, 2)]
    assert gone[0].ended is not None and gone[0].ended.change_number == 2
    sql = synthetic.history("sql")
    assert [(v.snapshot.change_number, v.change_number, v.network_features) for v in sql] == [
        (1, 1, None),
        (2, 1, frozenset({"API", "NSG"})),
    ]
    assert [(v.prefixes_added, v.prefixes_removed) for v in sql] == [(1, 0), (0, 0)]
    storage = synthetic.history("Storage")
    assert [(v.prefixes_added, v.prefixes_removed, v.ipv4_count) for v in storage] == [
        (2, 0, 2),
        (2, 1, 3),
    ]
    assert [v.ended for v in storage] == [None, None]


# -- the documented library API --------------------------------------------------------------------


@pytest.mark.realdata
def test_documented_library_usage(db, monkeypatch):
    monkeypatch.setenv("AZTAGS_DB", str(db))
    from resolver import TagStore as Exported

    store = Exported.open(cloud="public")  # $AZTAGS_DB, read-only
    raw = raw_tags("Public", WEEKLY_2023[-1])
    assert list(store.cidrs(["Storage"], region="West Europe").prefixes) == sort_prefixes(
        raw["Storage.WestEurope"]["addressPrefixes"]
    )
    merged = store.cidrs(profile="azureml", region="westus", aggregate=True).prefixes
    expected = union_of(raw, azureml_tags("Public", "WestUS"))
    for version in (4, 6):
        nets = (ipaddress.ip_network(p) for p in expected)
        assert [p for p in merged if ipaddress.ip_network(p).version == version] == [
            str(n) for n in ipaddress.collapse_addresses(n for n in nets if n.version == version)
        ]
    (answer,) = store.lookup(["20.38.96.1"])
    assert (
        as_pairs(answer.result.containing)
        == brute_lookup(raw_pairs("Public", WEEKLY_2023[-1]), ["20.38.96.1"])["20.38.96.1"]
    )
    changes = store.diff(names=["AzureCloud"]).tags
    assert [d.name for d in changes] == ["AzureCloud"]
    with pytest.raises(sqlite3.OperationalError):  # read-only, as documented
        store.conn.execute("DELETE FROM snapshots")


@pytest.mark.realdata
def test_the_docstring_example_runs_as_written(db, monkeypatch):
    import resolver.query

    monkeypatch.setenv("AZTAGS_DB", str(db))
    lines = [
        line.strip() for line in resolver.query.__doc__.splitlines() if line.startswith("    ")
    ]
    assert any("store.lookup" in line for line in lines)
    namespace: dict = {}
    for line in lines:
        exec(line, namespace)  # noqa: S102 - the module's own documented example


@pytest.mark.realdata
def test_diff_over_several_weeks_dates_each_prefix_from_the_file_that_added_it(store):
    days = WEEKLY_2023[:4]  # 20230306 .. 20230327
    answer = store.diff(f"cn:{raw_cn('Public', days[0])}", f"cn:{raw_cn('Public', days[-1])}")
    files = [raw_tags("Public", day) for day in days]
    dated = 0
    for d in answer.tags:
        for prefix in d.added:
            # the first file of the run after which the prefix stayed until the last one
            first = len(days) - 1
            while first > 1 and prefix in files[first - 1].get(d.name, {}).get(
                "addressPrefixes", ()
            ):
                first -= 1
            expected = as_date(days[first]) + timedelta(days=7)
            assert answer.usable_by_prefix[(d.name, prefix)] == expected, (d.name, prefix)
            dated += expected < answer.usable_from
    assert dated > 0  # some prefixes came in before the last week: dated earlier than it


@pytest.mark.realdata
def test_diff_with_from_newer_than_to_says_swap(store):
    with pytest.raises(UsageError, match="swap them"):
        store.diff("cn:247", "cn:245")


@pytest.mark.realdata
def test_region_written_as_a_stage_suffix_names_that_tag(store):
    snapshot = store.snapshot()
    # both are region eastus2: the code leads to Sql.EastUS2, the suffix as written to the Stage
    assert [t.name for t in store.resolve_names(["Sql"], "eastus2", snapshot)] == ["Sql.EastUS2"]
    stage = store.resolve_names(["Sql"], "EastUS2Stage", snapshot)
    assert [t.name for t in stage] == ["Sql.EastUS2Stage"]


@pytest.mark.realdata
def test_service_family_before_the_dot_finds_every_front_door_tag(store):
    _, found = store.tags(service="AzureFrontDoor")
    assert {t.name for t in found} == {
        "AzureFrontDoor.Frontend",
        "AzureFrontDoor.Backend",
        "AzureFrontDoor.FirstParty",
    }
