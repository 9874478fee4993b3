"""The newest file of a cloud against its newest Discovery API answer (``aztags reconcile``).

The file announces; the API says what Azure applies now, and lags the file by up to four weeks
(Microsoft: new ranges in the file "will not be used in Azure for at least one week"). So, per
tag present in both, a prefix in the file and not in the API is *announced, not yet applied*, and
a prefix in the API and no longer in the file is *being withdrawn*. Tags present in one only are
listed by name. A tag whose file entry does not list ``API`` in its networkFeatures (null, or a
list without it) is, by a reading of the files that Microsoft does not document, a tag the
Discovery API does not return: its absence from the API is expected, counted apart and not a
difference.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from cache.db import read_view
from cache.history import first_seen, load_current, load_tags, prefix_spans, timeline
from resolver.clouds import Cloud
from resolver.errors import EmptyStoreError
from resolver.models import ServiceTag, SnapshotInfo
from resolver.prefixes import sort_prefixes
from resolver.refs import snapshot_day
from resolver.timelines import API, FILE, timeline_key


@dataclass(frozen=True, slots=True)
class TagGap:
    """A tag in both whose prefixes differ."""

    name: str
    announced: tuple[str, ...]  # in the file, not yet in the API (IPv4 first, sorted)
    withdrawing: tuple[str, ...]  # in the API, no longer in the file


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """One cloud's newest file against its newest Discovery API answer."""

    cloud: Cloud
    file: SnapshotInfo
    api: SnapshotInfo
    only_in_file: tuple[str, ...]  # tags the API should have (their networkFeatures say API)
    only_in_api: tuple[str, ...]
    file_only_expected: tuple[str, ...]  # in the file only, as their networkFeatures say
    tags: tuple[TagGap, ...]  # by name

    @property
    def differs(self) -> bool:
        return bool(self.only_in_file or self.only_in_api or self.tags)

    @property
    def announced(self) -> int:
        return sum(len(t.announced) for t in self.tags)

    @property
    def withdrawing(self) -> int:
        return sum(len(t.withdrawing) for t in self.tags)


def _api_expected(tag: ServiceTag) -> bool:
    """Whether the file says the Discovery API returns the tag (networkFeatures holds API)."""
    return tag.network_features is not None and "API" in tag.network_features


def compare(
    cloud: Cloud,
    file: SnapshotInfo,
    api: SnapshotInfo,
    file_tags: Iterable[ServiceTag],
    api_tags: Iterable[ServiceTag],
) -> Reconciliation:
    """The pure comparison of two snapshots' tags (with their prefixes)."""
    in_file = {t.name: t for t in file_tags}
    in_api = {t.name: t for t in api_tags}
    missing = sorted(in_file.keys() - in_api.keys())
    gaps = []
    for name in sorted(in_file.keys() & in_api.keys()):
        have, applied = set(in_file[name].prefixes), set(in_api[name].prefixes)
        if have != applied:
            gaps.append(TagGap(name, sort_prefixes(have - applied), sort_prefixes(applied - have)))
    return Reconciliation(
        cloud=cloud,
        file=file,
        api=api,
        only_in_file=tuple(n for n in missing if _api_expected(in_file[n])),
        only_in_api=tuple(sorted(in_api.keys() - in_file.keys())),
        file_only_expected=tuple(n for n in missing if not _api_expected(in_file[n])),
        tags=tuple(gaps),
    )


def reconcile(conn: sqlite3.Connection, cloud: Cloud) -> Reconciliation:
    """The newest file of ``cloud`` against its newest API answer, read in one view. Raises
    EmptyStoreError naming what is missing and how to get it."""
    file_key, api_key = timeline_key(cloud, FILE), timeline_key(cloud, API)
    with read_view(conn):
        file, api = load_current(conn, file_key), load_current(conn, api_key)
        if file is None or api is None:
            raise EmptyStoreError(_missing(cloud, file is None, api is None))
        assert file.seq is not None and api.seq is not None  # current snapshots have a seq
        file_tags = load_tags(conn, file_key, file.seq)
        api_tags = load_tags(conn, api_key, api.seq)
    return compare(cloud, file, api, file_tags, api_tags)


def reconcile_all(conn: sqlite3.Connection, clouds: Iterable[Cloud]) -> list[Reconciliation]:
    """:func:`reconcile` for each of ``clouds`` that has both a file and an API answer (with
    one cloud named, what it lacks is an error), read in one view."""
    wanted = list(clouds)
    with read_view(conn):
        if len(wanted) == 1:
            return [reconcile(conn, wanted[0])]
        found = [
            c
            for c in wanted
            if load_current(conn, timeline_key(c, FILE)) is not None
            and load_current(conn, timeline_key(c, API)) is not None
        ]
        if not found:
            raise EmptyStoreError(
                "No cloud has both a file and a Discovery API answer stored, so there is nothing "
                "to reconcile. Run 'aztags fetch --cloud C' and 'aztags fetch --cloud C --api "
                "--subscription ID' first."
            )
        return [reconcile(conn, c) for c in found]


def _missing(cloud: Cloud, no_file: bool, no_api: bool) -> str:
    if cloud.frozen:
        return (
            f"Nothing to reconcile for {cloud.name}: Microsoft Cloud Germany closed in 2021, and "
            "its Resource Manager (and Discovery API) with it."
        )
    what = []
    if no_file:
        what.append(f"no {cloud.name} file ('aztags fetch --cloud {cloud.key}')")
    if no_api:
        what.append(
            f"no {cloud.name} Discovery API answer ('aztags fetch --cloud {cloud.key} --api "
            "--subscription ID', or 'aztags import' of az or PowerShell output)"
        )
    return f"Nothing to reconcile: {' and '.join(what)} is stored yet."


ANNOUNCED = "announced"  # in the file, not yet in the API
WITHDRAWING = "withdrawing"  # in the API, no longer in the file


@dataclass(frozen=True, slots=True)
class Lag:
    """One prefix of a tag present in both timelines that one has and the other has not, with
    the day the difference began: the day of the first file that had it without a break
    (announced), or of the first file without it (withdrawing; a prefix no file ever had
    counts from the first API answer that had it). Days are file dates, an API answer's the day
    it was fetched."""

    tag: str
    prefix: str
    side: str  # ANNOUNCED or WITHDRAWING
    since: date


def lags(conn: sqlite3.Connection, found: Reconciliation) -> list[Lag]:
    """The differences of ``found`` (per tag in both) dated, read in one view; by tag, side,
    then prefix."""
    file_key, api_key = timeline_key(found.cloud, FILE), timeline_key(found.cloud, API)
    announced = {(t.name, p) for t in found.tags for p in t.announced}
    withdrawing = {(t.name, p) for t in found.tags for p in t.withdrawing}
    out: list[Lag] = []
    with read_view(conn):
        files = {s.seq: s for s in timeline(conn, file_key)}
        answers = {s.seq: s for s in timeline(conn, api_key)}
        assert found.file.seq is not None and found.api.seq is not None
        for (tag, prefix), seq in first_seen(conn, file_key, found.file.seq, announced).items():
            out.append(Lag(tag, prefix, ANNOUNCED, snapshot_day(files[seq])))
        left: dict[tuple[str, str], int] = {}
        spans = prefix_spans(conn, file_key, sorted({p for _, p in withdrawing}))
        for tag, prefix, _from, to_seq in spans:
            if (tag, prefix) in withdrawing and to_seq is not None:
                left[(tag, prefix)] = max(left.get((tag, prefix), 0), to_seq)
        for (tag, prefix), seq in left.items():
            out.append(Lag(tag, prefix, WITHDRAWING, snapshot_day(files[seq])))
        never = withdrawing - left.keys()
        for (tag, prefix), seq in first_seen(conn, api_key, found.api.seq, never).items():
            out.append(Lag(tag, prefix, WITHDRAWING, snapshot_day(answers[seq])))
    return sorted(out, key=lambda g: (g.tag, g.side, g.prefix))
