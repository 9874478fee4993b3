"""The questions users come with, over the store: the library API behind every query command.

    from resolver import TagStore
    store = TagStore.open(cloud="public")            # read-only; $AZTAGS_DB or the default path
    store.cidrs(["Storage"], region="West Europe").prefixes
    store.cidrs(profile="azureml", region="westus", aggregate=True).prefixes
    store.lookup(["20.38.96.1"])[0].result.containing
    store.diff(names=["AzureCloud"]).tags

Every method takes ``at`` (``None`` for the current snapshot, ``"YYYY-MM-DD"`` or ``"cn:N"``;
resolver/refs.py). Answers carry the snapshot they were read from and the warnings a user should
see. Each call reads inside one read transaction (``cache.db.read_view``), so its answer is one
state of the database even while a writer commits; no transaction is held between calls.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, cast

from cache import history
from cache.db import read_view
from cache.store import load_snapshots
from resolver.clouds import Cloud, get_cloud
from resolver.errors import EmptyStoreError, NotFoundError, UsageError
from resolver.lookup import InvalidAddressError, LookupIndex, LookupMatch, QueryResult
from resolver.models import ServiceTag, SnapshotInfo, TagInfo, TagSummary, TagVersion
from resolver.prefixes import BITS, aggregate, parse_network, sort_prefixes, to_text
from resolver.prefixes import family as prefix_family
from resolver.refs import AtRef, parse_at, pick_snapshot, shown
from resolver.regions import RegionIndex

if TYPE_CHECKING:
    from resolver.diff import DiffSummary, TagDiff
    from resolver.profiles import ResolvedProfile


# Imported on first use: a command that never needs them (a single `lookup`, `cidrs TAG`) does not
# pay for them at start-up (issue 9: 25-30 ms per process with resolver.diff and difflib).
class _Difflib:
    def __getattr__(self, name: str) -> Any:
        import difflib

        return getattr(difflib, name)


difflib = _Difflib()


def null_features_warning(tag: TagInfo) -> str:
    from resolver.profiles import null_features_warning as warning

    return warning(tag)


# Microsoft: "New ranges appearing in the file will not be used in Azure for at least one week."
USABLE_AFTER = timedelta(days=7)
FEATURES = ("API", "NSG", "UDR", "FW", "VSE")


@dataclass(frozen=True, slots=True)
class CidrAnswer:
    snapshot: SnapshotInfo
    tags: tuple[ServiceTag, ...]  # the tags resolved from the names or the profile
    prefixes: tuple[str, ...]  # their union (aggregated if asked), IPv4 first
    warnings: tuple[str, ...] = ()
    profile: ResolvedProfile | None = None  # when asked by profile


@dataclass(frozen=True, slots=True)
class LookupAnswer:
    query: str
    result: QueryResult | None  # None when the query is not an address or CIDR
    error: str | None = None


@dataclass(frozen=True, slots=True)
class LookupReport:
    """Lookups with what a renderer needs, all read from one snapshot in one view."""

    snapshot: SnapshotInfo
    answers: tuple[LookupAnswer, ...]
    details: Mapping[str, TagSummary]  # tag name -> region, systemService...


@dataclass(frozen=True, slots=True)
class DiffAnswer:
    before: SnapshotInfo
    after: SnapshotInfo
    tags: tuple[TagDiff, ...]
    summary: DiffSummary
    usable_from: date | None  # prefixes new in the newer file may be used by Azure from this day
    # per added (tag, prefix): the day Azure may use it, from the first snapshot that had it
    # (earlier than usable_from when the diff spans several weeks)
    usable_by_prefix: Mapping[tuple[str, str], date | None] = field(default_factory=dict)


P = ParamSpec("P")
R = TypeVar("R")


def _one_view(
    method: Callable[Concatenate[TagStore, P], R],
) -> Callable[Concatenate[TagStore, P], R]:
    """Run a TagStore query inside one read view of its connection (re-entrant: a query that
    calls another reads the same state)."""

    @functools.wraps(method)
    def in_view(self: TagStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with read_view(self.conn):
            return method(self, *args, **kwargs)

    return in_view


At = str | AtRef | None  # what every query's ``at`` takes: None (current), "YYYY-MM-DD", "cn:N"
# One line of a batch lookup: the index's shared tuple for an address, a QueryResult for a CIDR,
# the error for a line that is neither, None for a blank line.
BatchAnswer = tuple[LookupMatch, ...] | QueryResult | InvalidAddressError | None


class LookupBatch:
    """A snapshot's whole reverse-lookup index, for many lines (``aztags lookup --file``).

    Built by :meth:`TagStore.lookup_batch` in one read; answering reads nothing more, so a batch
    of any length holds no transaction open. ``errors`` counts the bad lines answered so far.
    """

    __slots__ = ("snapshot", "details", "index", "errors")

    def __init__(
        self, snapshot: SnapshotInfo, details: Mapping[str, TagSummary], index: LookupIndex
    ):
        self.snapshot = snapshot
        self.details = details  # tag name -> region, systemService...
        self.index = index
        self.errors = 0

    def answers(self, lines: Iterable[str]) -> Iterator[tuple[str, BatchAnswer]]:
        """One (stripped line, answer) per line, lazily and in input order (see BatchAnswer).

        Addresses take the index's fast path and yield the tuple it shares among every address
        of one range, so a renderer can format each distinct tuple once (resolver.render). A bad
        line yields its error and the batch goes on.
        """
        index = self.index
        for pair in index.lookup_many(lines):
            if pair[1].__class__ is tuple:
                yield pair  # the fast path: the index's own pair, passed on as is
                continue
            text, error = pair
            answer = _answer_line(index, text, cast(InvalidAddressError, error))
            if answer.__class__ is InvalidAddressError:
                self.errors += 1
            yield text, answer


@dataclass
class TagStore:
    """Read-only queries for one cloud. Cheap to create; snapshot data is read per call, each
    call in one read transaction. Caches are keyed by snapshot id, which never changes (a
    backfill moves a snapshot's ``seq``, never its id or content)."""

    conn: sqlite3.Connection
    cloud: Cloud
    _summaries: dict[int, list[TagSummary]] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, db: Path | str | None = None, cloud: str = "public") -> TagStore:
        from cache.db import default_db_path, open_db

        return cls(open_db(db or default_db_path(), readonly=True), get_cloud(cloud))

    # -- snapshots and names -----------------------------------------------------------------------

    @_one_view
    def snapshot(self, at: At = None) -> SnapshotInfo:
        """The snapshot a query at ``at`` reads. A malformed ``at`` raises UsageError, one that
        names nothing stored NotFoundError, an empty store EmptyStoreError."""
        ref = None if at is None else parse_at(at)  # a usage error before any read
        try:
            return pick_snapshot(history.timeline(self.conn, self.cloud.name), ref, self.cloud.name)
        except EmptyStoreError:
            raise EmptyStoreError(
                f"No {self.cloud.name} snapshot is stored yet. Run 'aztags fetch --cloud "
                f"{self.cloud.key}' (or 'aztags import FILE') first."
            ) from None

    @_one_view
    def snapshots(self) -> list[SnapshotInfo]:
        return load_snapshots(self.conn, self.cloud.name)

    @_one_view
    def summaries(self, snapshot: SnapshotInfo) -> list[TagSummary]:
        """Every tag of ``snapshot`` with its counts (cached per snapshot id)."""
        found = self._summaries.get(snapshot.id)
        if found is None:
            found = history.load_tag_summaries(self.conn, self.cloud.name, self._seq(snapshot))
            self._summaries[snapshot.id] = found
        return found

    def _seq(self, snapshot: SnapshotInfo) -> int:
        """The snapshot's place in the timeline as of this read: read again by id, because a
        SnapshotInfo from an earlier call may carry a seq that a backfill has moved since."""
        seq = history.snapshot_seq(self.conn, snapshot.id)
        if seq is None:
            raise NotFoundError(
                f"{self.cloud.name} snapshot {snapshot.id} (changeNumber "
                f"{snapshot.change_number}) is quarantined or gone; it cannot be queried."
            )
        return seq

    @_one_view
    def regions(self, snapshot: SnapshotInfo) -> RegionIndex:
        return RegionIndex.from_tags(self.summaries(snapshot))

    @_one_view
    def resolve_names(
        self, names: Sequence[str], region: str | None, snapshot: SnapshotInfo
    ) -> list[TagInfo]:
        """Tags for user-typed names: exact tag names in any case, or a base service that
        ``region`` narrows through the tag's region field (``Storage`` + ``West Europe`` ->
        ``Storage.WestEurope``). Unknown names raise NotFoundError with close matches."""
        summaries = self.summaries(snapshot)
        by_fold = {t.name.casefold(): t for t in summaries}
        regions = self.regions(snapshot) if region else None
        code = regions.resolve(region) if regions and region else None
        found: list[TagInfo] = []
        for name in names:
            exact = by_fold.get(name.strip().casefold())
            if code is None:
                if exact is None:
                    raise self._unknown_tag(name, summaries)
                found.append(exact)
                continue
            if exact is not None and exact.region:
                if exact.region != code:
                    raise NotFoundError(
                        f"{exact.name} is the tag of region {exact.region}, not {code}; "
                        "drop --region or name the service without its region."
                    )
                found.append(exact)
                continue
            assert regions is not None
            regional = regions.regional_tag(name.strip(), code, as_written=region)
            if regional is None:
                if exact is None:
                    raise self._unknown_tag(name, summaries)
                raise NotFoundError(
                    f"{exact.name} has no tag for region {code} in the {self.cloud.name} file. "
                    f"Drop --region to use the global {exact.name}."
                )
            found.append(regional)
        return list(dict.fromkeys(found))

    def _unknown_tag(self, name: str, summaries: list[TagSummary]) -> NotFoundError:
        folded = {t.name.casefold(): t.name for t in summaries}
        close = difflib.get_close_matches(name.casefold(), list(folded), n=3, cutoff=0.6)
        return NotFoundError(
            f"Unknown service tag {shown(name)} in the {self.cloud.name} file.",
            tuple(folded[c] for c in close),
        )

    # -- forward queries ---------------------------------------------------------------------------

    @_one_view
    def tags(
        self,
        *,
        at: At = None,
        region: str | None = None,
        service: str | None = None,
        feature: str | None = None,
    ) -> tuple[SnapshotInfo, list[TagSummary]]:
        """Tags with their properties and prefix counts, filtered by region, service, feature."""
        snapshot = self.snapshot(at)
        found = self.summaries(snapshot)
        if service:
            wanted = service.casefold()
            found = [t for t in found if wanted in _service_names(t)]
            if not found:
                services = {n for t in self.summaries(snapshot) for n in _service_names(t)}
                close = difflib.get_close_matches(wanted, sorted(services), n=3)
                raise NotFoundError(f"No tag of service {shown(service)}.", tuple(close))
        if region:
            code = self.regions(snapshot).resolve(region)
            found = [t for t in found if t.region == code]
            if not found and service:
                raise NotFoundError(f"Service {shown(service)} has no tag in region {code}.")
        if feature:
            wanted = feature.upper()
            found = [t for t in found if t.network_features and wanted in t.network_features]
        return snapshot, found

    @_one_view
    def cidrs(
        self,
        names: Sequence[str] = (),
        *,
        region: str | None = None,
        profile: str | None = None,
        family: int | None = None,
        aggregate: bool = False,
        at: At = None,
        profile_dirs: Iterable[Path] = (),
    ) -> CidrAnswer:
        """The prefixes of tags (by name, or a requirement profile's), their union, optionally
        one family only and aggregated (adjacent and contained prefixes merged per family)."""
        snapshot = self.snapshot(at)
        resolved_profile = None
        chosen = self.resolve_names(names, region, snapshot) if names else []
        warnings: list[str] = []
        if profile:
            from resolver.profiles import get_profile, load_profiles, resolve_profile

            resolved_profile = resolve_profile(
                get_profile(profile, load_profiles(profile_dirs)),
                cloud=self.cloud.name,
                region_text=region,
                tags={t.name: t for t in self.summaries(snapshot)},
                regions=self.regions(snapshot),
            )
            chosen += [r.tag for r in resolved_profile.rules if r.tag is not None]
            warnings += resolved_profile.warnings
        warnings += [null_features_warning(t) for t in chosen if t.network_features is None]
        assert snapshot.seq is not None
        tags = history.load_tags(
            self.conn, self.cloud.name, snapshot.seq, [t.name for t in dict.fromkeys(chosen)]
        )
        prefixes = {p for t in tags for p in t.prefixes}
        if family is not None:
            prefixes = {p for p in prefixes if prefix_family(p) == family}
        result = aggregate_prefixes(prefixes) if aggregate else sort_prefixes(prefixes)
        return CidrAnswer(
            snapshot, tuple(tags), result, tuple(dict.fromkeys(warnings)), resolved_profile
        )

    @_one_view
    def history(self, name: str) -> list[TagVersion]:
        """Every snapshot where the tag changed (prefixes or properties), oldest first."""
        summaries = self.summaries(self.snapshot())
        exact = {t.name.casefold(): t.name for t in summaries}
        real = exact.get(name.strip().casefold())
        if real is None:
            gone = {n.casefold(): n for n in history.tag_names(self.conn, self.cloud.name)}
            real = gone.get(name.strip().casefold())
            if real is None:
                raise self._unknown_tag(name, summaries)
        return history.load_tag_history(self.conn, self.cloud.name, real)

    # -- reverse lookup ----------------------------------------------------------------------------

    @_one_view
    def lookup(self, queries: Sequence[str], at: At = None) -> list[LookupAnswer]:
        """Every tag containing each address (and for a CIDR, the tags overlapping it).

        Reads only the candidate prefixes from SQLite (one probe per prefix length), then answers
        with the same :class:`LookupIndex` as batch lookups, so both agree by construction.
        """
        snapshot = self.snapshot(at)
        assert snapshot.seq is not None
        candidates: set[str] = set()
        ranges: list[tuple[int, bytes, bytes, int]] = []
        for query in queries:
            parsed = parse_network(query)
            if parsed is None:
                continue
            family, value, length = parsed
            bits = BITS[family]
            # Every prefix that may contain it, one per length (33 for IPv4): each a probe of
            # the unique index on prefixes.prefix, cheaper than reading which lengths occur.
            for candidate in range(length + 1):
                network = value >> (bits - candidate) << (bits - candidate)
                candidates.add(to_text(family, network, candidate))
            if length < bits:
                last = value | ((1 << (bits - length)) - 1)
                ranges.append(
                    (
                        family,
                        value.to_bytes(bits // 8, "big"),
                        last.to_bytes(bits // 8, "big"),
                        length,
                    )
                )
        pairs = history.load_pairs_for(self.conn, self.cloud.name, snapshot.seq, candidates)
        for within in ranges:
            pairs += history.load_pairs_for(self.conn, self.cloud.name, snapshot.seq, within=within)
        index = LookupIndex.build(pairs)
        answers = []
        for query in queries:
            try:
                answers.append(LookupAnswer(query.strip(), index.query(query)))
            except InvalidAddressError as e:
                answers.append(LookupAnswer(query.strip(), None, str(e)))
        return answers

    @_one_view
    def lookup_report(self, queries: Sequence[str], at: At = None) -> LookupReport:
        """:meth:`lookup` with the snapshot it read and its tags' details, in one view (two
        calls could see two snapshots if a file is stored in between)."""
        snapshot = self.snapshot(at)
        answers = self.lookup(queries, at=at)  # the same snapshot: the same view
        return LookupReport(snapshot, tuple(answers), self.tag_details(snapshot))

    @_one_view
    def lookup_index(self, at: At = None) -> LookupIndex:
        """The whole snapshot's reverse-lookup index, for batches (about 0.2 s to build)."""
        pairs = history.load_pairs(self.conn, self.cloud.name, self._seq(self.snapshot(at)))
        return LookupIndex.build(pairs)

    @_one_view
    def lookup_batch(self, at: At = None) -> LookupBatch:
        """The snapshot, its tag details and its whole reverse-lookup index, read in one view:
        the one batch-lookup path (``aztags lookup --file``, and any caller with many lines)."""
        snapshot = self.snapshot(at)
        pairs = history.load_pairs(self.conn, self.cloud.name, self._seq(snapshot))
        return LookupBatch(snapshot, self.tag_details(snapshot), LookupIndex.build(pairs))

    @_one_view
    def tag_details(self, snapshot: SnapshotInfo) -> dict[str, TagSummary]:
        return {t.name: t for t in self.summaries(snapshot)}

    # -- diff --------------------------------------------------------------------------------------

    @_one_view
    def diff(
        self,
        from_at: At = None,
        to_at: At = None,
        names: Sequence[str] = (),
        *,
        profile: str | None = None,
        region: str | None = None,
        profile_dirs: Iterable[Path] = (),
    ) -> DiffAnswer:
        """Changes between two snapshots (default: the previous and the current one)."""
        after = self.snapshot(to_at)
        if from_at is None:
            earlier = [
                s for s in self.snapshots() if s.seq is not None and s.seq < (after.seq or 0)
            ]
            if not earlier:
                raise NotFoundError(
                    f"Only one {self.cloud.name} snapshot is stored up to changeNumber "
                    f"{after.change_number}: there is nothing to compare it with. "
                    "Fetch again next week, or import older files."
                )
            before = earlier[-1]
        else:
            before = self.snapshot(from_at)
        assert before.seq is not None and after.seq is not None
        if before.seq > after.seq:
            raise UsageError(
                f"--from (changeNumber {before.change_number}) is newer than --to (changeNumber "
                f"{after.change_number}); swap them."
            )
        scope = self._diff_scope(names, profile, region, (before, after), profile_dirs)
        tags, summary, since = self._diff_changed(before.seq, after.seq, scope)
        snapshots = {s.seq: s for s in self.snapshots() if s.seq is not None}
        usable_by_prefix = {
            (d.name, p): _usable(snapshots[since[(d.name, p)]])
            for d in tags
            for p in d.added
            if (d.name, p) in since  # arrived after before.seq
        }
        return DiffAnswer(before, after, tags, summary, _usable(after), usable_by_prefix)

    def _diff_changed(
        self, low: int, high: int, scope: list[str] | None
    ) -> tuple[tuple[TagDiff, ...], DiffSummary, dict[tuple[str, str], int]]:
        """diff_tags over the tags whose history has an interval starting or ending between the
        two snapshots (every other tag is the same in both), read in one pass with their
        prefixes' integer intervals: the cost follows the size of the change, not of the
        snapshots. Also: since which seq each (tag, prefix) at ``high`` has been there."""
        from resolver.diff import diff_tags

        ids = history.changed_tag_ids(self.conn, self.cloud.name, low, high)
        old_tags, new_tags, intervals, since = history.load_tag_pair(self.conn, low, high, ids)
        wanted = None if scope is None else set(scope)
        old = {t.name: t for t in old_tags if wanted is None or t.name in wanted}
        new = {t.name: t for t in new_tags if wanted is None or t.name in wanted}
        tags, summary = diff_tags(old, new, intervals)
        return tags, summary, since

    def _diff_scope(
        self,
        names: Sequence[str],
        profile: str | None,
        region: str | None,
        snapshots: tuple[SnapshotInfo, SnapshotInfo],
        profile_dirs: Iterable[Path],
    ) -> list[str] | None:
        """The tags a scoped diff compares: NAMEs and the profile's tags, resolved in either
        snapshot (a tag removed in the newer one is still in scope). None: every tag."""
        if not names and not profile:
            return None
        scope: list[str] = []
        for name in names:
            errors = []
            for snap in snapshots:
                try:
                    scope += [t.name for t in self.resolve_names([name], region, snap)]
                except NotFoundError as e:
                    errors.append(e)
            if len(errors) == len(snapshots):
                raise errors[-1]
        if profile:
            for snap in snapshots:
                answer = self.cidrs(
                    profile=profile,
                    region=region,
                    at=f"cn:{snap.change_number}",
                    profile_dirs=profile_dirs,
                )
                scope += [t.name for t in answer.tags]
        return list(dict.fromkeys(scope))


def _service_names(tag: TagSummary) -> set[str]:
    """What ``--service`` matches, case-folded: the systemService, the name without its region
    suffix, and the family before the first dot (AzureFrontDoor for AzureFrontDoor.Frontend)."""
    base = tag.name.rpartition(".")[0] if tag.region and "." in tag.name else tag.name
    names = {tag.system_service, base, tag.name, tag.name.partition(".")[0]}
    return {n.casefold() for n in names if n}


def _usable(snapshot: SnapshotInfo) -> date | None:
    return snapshot.file_date + USABLE_AFTER if snapshot.file_date else None


def aggregate_prefixes(prefixes: Iterable[str]) -> tuple[str, ...]:
    """Merge adjacent and contained prefixes, per family (resolver.prefixes.aggregate)."""
    return aggregate(prefixes)


def _answer_line(
    index: LookupIndex, text: str, error: InvalidAddressError
) -> QueryResult | InvalidAddressError | None:
    """The answer for a batch line that the index's address fast path refused: None for a blank
    line, the containing and inside tags for a CIDR, else the error itself."""
    if not text:
        return None
    if "/" in text:
        try:
            return index.query(text)
        except InvalidAddressError as e:
            return e
    return error


def list_snapshots(conn: sqlite3.Connection, clouds: Iterable[Cloud]) -> list[SnapshotInfo]:
    """Every stored snapshot of these clouds (quarantined ones too), per cloud in timeline order,
    read in one view. Raises EmptyStoreError when there is none."""
    with read_view(conn):
        found = [s for c in clouds for s in load_snapshots(conn, c.name)]
    if not found:
        raise EmptyStoreError("No snapshot is stored yet. Run 'aztags fetch' first.")
    return found
