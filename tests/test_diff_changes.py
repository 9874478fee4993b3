"""The diff read in proportion to the change (history.load_tag_changes): the law it rests on
(diff_tags is the same without the kept prefixes that overlap no changed one), and the fast diff
against a diff of every tag of both snapshots on generated timelines whose prefixes sit on the
edges of the buckets that the reading groups prefixes by (IPv4 /16, IPv6 /32)."""

from __future__ import annotations

import ipaddress
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cache import history
from cache.db import open_db
from cache.store import SaveOptions
from resolver.diff import diff_tags
from resolver.ingest import RawFile
from resolver.models import ServiceTag
from resolver.query import TagStore
from resolver.refresh import store_file
from tests.helpers import simple_snapshot

# Nested and neighbouring prefixes across the IPv4 /16 and IPv6 /32 bucket edges, and a few
# shorter than a bucket: 10.0.0.0/14 spans 4 buckets, 8.0.0.0/7 and 2001:c00::/23 more than
# the 256 a changed prefix may name (every kept prefix of its tag is then read).
EDGES = [
    "8.0.0.0/7",
    "8.0.0.0/8",
    "9.255.0.0/16",
    "10.0.0.0/14",
    "10.0.0.0/15",
    "10.0.0.0/16",
    "10.0.0.0/24",
    "10.0.255.0/24",
    "10.0.255.128/25",
    "10.1.0.0/16",
    "10.1.0.0/24",
    "10.1.0.0/32",
    "10.2.0.0/16",
    "10.3.255.255/32",
    "2001:c00::/23",
    "2001:db8::/31",
    "2001:db8::/32",
    "2001:db8::/48",
    "2001:db8:ffff::/48",
    "2001:db8:ffff:ffff::/64",
    "2001:db9::/32",
    "2001:db9::/120",
    "2001:dba::/48",
]
edge_sets = st.sets(st.sampled_from(EDGES), max_size=7)


def _tag(name: str, prefixes) -> ServiceTag:
    key = lambda p: (ipaddress.ip_network(p).version, ipaddress.ip_network(p))  # noqa: E731
    return ServiceTag(name, "", 0, "", None, 1, tuple(sorted(prefixes, key=key)))


def _overlaps(a: str, b: str) -> bool:
    x, y = ipaddress.ip_network(a), ipaddress.ip_network(b)
    return x.version == y.version and x.overlaps(y)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from("ABC"), edge_sets),
    st.dictionaries(st.sampled_from("ABC"), edge_sets),
)
def test_kept_prefixes_that_overlap_no_change_change_nothing(a, b):
    """What history.load_tag_changes relies on: a tag on both sides may leave out the prefixes
    it keeps that overlap none it gained or lost (the lists and the address counts are equal)."""
    full = diff_tags({n: _tag(n, p) for n, p in a.items()}, {n: _tag(n, p) for n, p in b.items()})
    pruned_old, pruned_new = {}, {}
    for name in a.keys() | b.keys():
        old, new = a.get(name), b.get(name)
        if old is not None and new is not None:
            changed = old ^ new
            near = {p for p in old & new if any(_overlaps(p, c) for c in changed)}
            old, new = (old - new) | near, (new - old) | near
        if old is not None:
            pruned_old[name] = _tag(name, old)
        if new is not None:
            pruned_new[name] = _tag(name, new)
    assert diff_tags(pruned_old, pruned_new) == full


# A timeline: a first snapshot (tags -> prefix sets), then weeks that each toggle a few
# (tag, prefix) pairs, so that most prefixes are kept from one week to the next, as in the real
# files. "Fixed" never changes (no file is empty).
toggles = st.lists(st.tuples(st.sampled_from("ABCD"), st.sampled_from(EDGES)), max_size=4)
timelines = st.tuples(
    st.dictionaries(st.sampled_from("ABCD"), edge_sets), st.lists(toggles, min_size=1, max_size=4)
)


def _weeks(first: dict[str, set[str]], edits: list[list[tuple[str, str]]]):
    week = {name: set(p) for name, p in first.items()}
    yield week
    for edit in edits:
        week = {name: set(p) for name, p in week.items()}
        for name, prefix in edit:
            week.setdefault(name, set()).symmetric_difference_update({prefix})
        yield week


def _check(tmp_path, first: dict[str, set[str]], edits: list[list[tuple[str, str]]]) -> None:
    """Store the timeline, then compare changes_between with diff_tags of the whole snapshots
    for every pair of its snapshots (a snapshot with itself too)."""
    path = tmp_path / "aztags.db"
    conn = open_db(path)
    try:
        day = date(2025, 1, 6)
        for cn, tags in enumerate(_weeks(first, edits), start=1):
            content = {name: sorted(p) for name, p in tags.items() if p}
            raw = RawFile(
                simple_snapshot(cn, {"Fixed": ["192.0.2.0/24"], **content}),
                f"ServiceTags_Public_{day:%Y%m%d}.json",
                day,
            )
            store_file(conn, raw, SaveOptions(force=True))
            day += timedelta(days=7)
    finally:
        conn.close()
    store = TagStore.open(path, cloud="Public")
    seqs = [s.seq for s in store.snapshots() if s.seq is not None]
    whole = {q: {t.name: t for t in history.load_tags(store.conn, "Public", q)} for q in seqs}
    for i, low in enumerate(seqs):
        for high in seqs[i:]:
            tags, summary, since = store.changes_between(low, high, None)
            assert (tags, summary) == diff_tags(whole[low], whole[high]), (low, high)
            for d in tags:  # every added prefix says since when it has been there
                assert all((d.name, p) in since for p in d.added), (low, high, d.name)


@pytest.mark.parametrize(
    ("kept", "changed"),
    [
        # a kept prefix shorter than a bucket, over a change in another bucket
        ({"10.0.0.0/15"}, "10.1.0.0/24"),
        ({"2001:db8::/31"}, "2001:db9::/120"),
        # a change shorter than a bucket, over kept prefixes in the buckets it covers
        ({"10.2.0.0/16", "10.3.255.255/32"}, "10.0.0.0/14"),
        # ... in more buckets than a change may name: every kept prefix of the tag is read
        ({"9.255.0.0/16"}, "8.0.0.0/7"),
        ({"2001:dba::/48"}, "2001:c00::/23"),
        # a change in the bucket of a kept prefix, and one holding it
        ({"10.0.255.0/24"}, "10.0.255.128/25"),
        ({"2001:db8:ffff:ffff::/64"}, "2001:db8:ffff::/48"),
    ],
)
def test_kept_prefixes_near_a_change_are_counted(tmp_path, kept, changed):
    """Added, then removed, then added again: the addresses the tag already had are no
    change, whichever bucket the kept prefix sits in (the counts come out wrong otherwise)."""
    first = {"A": set(kept), "B": {"10.1.0.0/16", "2001:db9::/32"}}
    _check(tmp_path, first, [[("A", changed)], [("A", changed)], [("A", changed)]])


def test_a_prefix_dropped_and_taken_again_in_between_is_no_change(tmp_path):
    first = {"A": {"10.0.0.0/24", "10.1.0.0/24"}}
    edits = [[("A", "10.0.0.0/24")], [("A", "10.0.0.0/24"), ("A", "10.2.0.0/16")], []]
    _check(tmp_path, first, edits)


@pytest.mark.slow
@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(timelines)
def test_fast_diff_equals_the_diff_of_whole_snapshots_for_every_pair(tmp_path_factory, timeline):
    _check(tmp_path_factory.mktemp("timeline"), *timeline)
