"""The fast diff (only the tags whose history has an interval starting or ending between the two
snapshots) against the set difference of the raw files: every adjacent pair of the shared data,
per cloud, in date order, and each cloud's first file against its last."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from cache import history
from cache.db import open_db
from cache.store import SaveOptions
from resolver.diff import diff_tags
from resolver.query import TagStore
from resolver.refresh import import_files
from resolver.sources import HttpSettings
from tests.diffcount import summed_delta
from tests.helpers import expected_tag_changes, manifest, raw_cn, raw_tags, real_path, require_data

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def _days() -> dict[str, list[str]]:
    by_cloud: dict[str, list[str]] = defaultdict(list)
    for row in manifest():
        by_cloud[row["cloud"]].append(row["date"])
    return {cloud: sorted(days) for cloud, days in sorted(by_cloud.items())}


@pytest.fixture(scope="module")
def _every_file(tmp_path_factory) -> Path:
    """One store holding every shared file of every cloud, imported in date order per cloud."""
    path = tmp_path_factory.mktemp("every-file") / "aztags.db"
    conn = open_db(path)
    try:
        files = [real_path(cloud, day) for cloud, days in _days().items() for day in days]
        for _, result in import_files(conn, files, HttpSettings(), SaveOptions()):
            assert not isinstance(result, Exception), result
    finally:
        conn.close()
    return path


@pytest.fixture
def every_file(request) -> Path:
    require_data()  # first: the realdata guard sees every user, files or no files
    return request.getfixturevalue("_every_file")


def folded(tag_diff) -> tuple[set[str], set[str]]:
    added = set(tag_diff.added) | {p for r in tag_diff.recut for p in r.added}
    removed = set(tag_diff.removed) | {p for r in tag_diff.recut for p in r.removed}
    return added, removed


def check_pair(store: TagStore, cloud: str, old_day: str, new_day: str) -> int:
    """Compare the fast diff of two files with their raw set difference and with a diff of
    every tag of both snapshots; returns how many tags changed."""
    old_cn, new_cn = raw_cn(cloud, old_day), raw_cn(cloud, new_day)
    old, new = raw_tags(cloud, old_day), raw_tags(cloud, new_day)
    expected = expected_tag_changes(old, new)
    if old_cn == new_cn:  # the same snapshot stored once
        assert expected == {}, (old_day, new_day)
        return 0
    answer = store.diff(f"cn:{old_cn}", f"cn:{new_cn}")
    assert {d.name: folded(d) for d in answer.tags} == expected, (old_day, new_day)
    s = answer.summary
    assert (s.tags_added, s.tags_removed, s.tags_changed) == (
        len(new.keys() - old.keys()),
        len(old.keys() - new.keys()),
        len(expected.keys() & old.keys() & new.keys()),
    )
    counts = {k: getattr(s, k) for k in summed_delta(old, new)}
    assert counts == summed_delta(old, new), (old_day, new_day)
    # the same as diffing every tag of both snapshots
    seqs = answer.before.seq, answer.after.seq
    assert seqs[0] is not None and seqs[1] is not None
    whole = [{t.name: t for t in history.load_tags(store.conn, cloud, q)} for q in seqs]
    assert diff_tags(*whole) == (answer.tags, answer.summary)
    return len(expected)


@pytest.mark.parametrize("cloud", ["Public", "AzureGovernment", "China"])  # Germany: one file
def test_fast_diff_equals_the_raw_files_for_every_adjacent_pair(every_file, cloud):
    days = _days()[cloud]
    assert len(days) >= 2
    store = TagStore.open(every_file, cloud=cloud)
    changed = [check_pair(store, cloud, a, b) for a, b in zip(days, days[1:], strict=False)]
    assert any(changed)  # some pair differs: the comparison is not vacuous
    check_pair(store, cloud, days[0], days[-1])
