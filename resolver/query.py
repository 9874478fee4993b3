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

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeAlias, TypeVar, cast

from cache import history
from cache.db import read_view
from cache.history import load_current, load_snapshots
from resolver.clouds import CLOUDS, Cloud, get_cloud
from resolver.errors import EmptyStoreError, InvalidAddressError, NotFoundError, UsageError
from resolver.models import ServiceTag, SnapshotInfo, TagInfo, TagSummary
from resolver.prefixes import aggregate as merge_prefixes
from resolver.prefixes import family as prefix_family
from resolver.prefixes import (
    inner_range,
    parse_network,
    sort_prefixes,
    supernets,
    to_text,
)
from resolver.refs import USABLE_AFTER, AtRef, parse_at, pick_snapshot, shown
from resolver.regions import RegionIndex, UnknownRegionError, normalise, service_names
from resolver.staleness import DEFAULT_MAX_AGE_DAYS, Freshness, answer_freshness
from resolver.timelines import API, FILE, check_source, describe, nothing_stored, timeline_key

if TYPE_CHECKING:
    from resolver.diff import DiffAnswer, DiffSummary, TagDiff
    from resolver.history import PrefixHistory, TagHistory, TagVersion
    from resolver.lookup import (
        CommentLine,
        LookupAnswer,
        LookupIndex,
        LookupMatch,
        LookupReport,
        QueryResult,
    )
    from resolver.profiles import ResolvedProfile


# difflib, resolver.diff, resolver.lookup and resolver.profiles are imported on first use: a
# command that never needs them (a single `lookup`, `cidrs TAG`) does not pay for them at
# start-up.
def _close_matches(
    word: str, possibilities: Sequence[str], n: int = 3, cutoff: float = 0.6
) -> list[str]:
    import difflib

    return difflib.get_close_matches(word, possibilities, n=n, cutoff=cutoff)


FEATURES = ("API", "NSG", "UDR", "FW", "VSE")


@dataclass(frozen=True, slots=True)
class CidrAnswer:
    """The prefixes of tags or of a profile at one snapshot, with the tags they came from."""

    snapshot: SnapshotInfo
    tags: tuple[ServiceTag, ...]  # the tags resolved from the names or the profile
    prefixes: tuple[str, ...]  # their union (aggregated if asked), IPv4 first
    warnings: tuple[str, ...] = ()
    profile: ResolvedProfile | None = None  # when asked by profile (only the rules selected)
    # per rule of ``profile.rules``: its tag's prefixes (one family if asked, aggregated if asked)
    rule_prefixes: tuple[tuple[str, ...], ...] = ()


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
            try:
                return method(self, *args, **kwargs)
            except (UnknownRegionError, UnknownTagError) as e:
                if e.checked:
                    raise
                raise self.elsewhere(e) from None

    return in_view


class UnknownTagError(NotFoundError):
    """A tag name that a cloud's file does not have; ``name`` is as the user wrote it."""

    checked = False  # other clouds already looked at (TagStore.elsewhere)

    def __init__(self, message: str, name: str, suggestions: tuple[str, ...] = ()):
        super().__init__(message, suggestions)
        self.name = name


At = str | AtRef | None  # what every query's ``at`` takes: None (current), "YYYY-MM-DD", "cn:N"


# One line of a batch lookup: the index's shared tuple for an address, a QueryResult for a CIDR,
# the error for a line that is neither, None for a blank line, a CommentLine for a '#' line.
BatchAnswer: TypeAlias = (
    "tuple[LookupMatch, ...] | QueryResult | InvalidAddressError | CommentLine | None"
)


class LookupBatch:
    """A snapshot's whole reverse-lookup index, for many lines (``aztags lookup --file``).

    Built by :meth:`TagStore.lookup_batch` in one read; answering reads nothing more, so a batch
    of any length holds no transaction open. ``errors`` counts the bad lines answered so far.
    """

    __slots__ = ("snapshot", "details", "index", "errors", "freshness")

    def __init__(
        self,
        snapshot: SnapshotInfo,
        details: Mapping[str, TagSummary],
        index: LookupIndex,
        freshness: Freshness | None = None,
    ):
        self.snapshot = snapshot
        self.details = details  # tag name -> region, systemService...
        self.index = index
        self.errors = 0
        self.freshness = freshness  # what to say about the snapshot (stale, --at past it)

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


class CloudsBatch:
    """The batches of several clouds answering the same lines (``lookup --file --cloud all``)."""

    __slots__ = ("batches",)

    def __init__(self, batches: Sequence[LookupBatch]):
        self.batches = tuple(batches)

    @property
    def errors(self) -> int:
        """Bad lines answered so far (each cloud sees the same lines)."""
        return self.batches[0].errors

    def answers(
        self, lines: Iterable[str], chunk: int = 4096
    ) -> Iterator[tuple[str, tuple[BatchAnswer, ...]]]:
        """One (stripped line, one answer per cloud) per line, lazily and in input order."""
        from itertools import islice

        it = iter(lines)
        while block := list(islice(it, chunk)):
            per_cloud = [list(b.answers(block)) for b in self.batches]
            for i, (text, _) in enumerate(per_cloud[0]):
                yield text, tuple(answers[i][1] for answers in per_cloud)


@dataclass
class TagStore:
    """Read-only queries for one cloud. Cheap to create; snapshot data is read per call, each
    call in one read transaction. Caches are keyed by snapshot id, which never changes (a
    backfill moves a snapshot's ``seq``, never its id or content)."""

    conn: sqlite3.Connection
    cloud: Cloud
    _summaries: dict[int, list[TagSummary]] = field(default_factory=dict, repr=False)
    # Answers about now from a current snapshot older than this are stale (resolver.staleness).
    max_age_days: int = DEFAULT_MAX_AGE_DAYS
    # The clock (UTC): staleness, and --at dates after today. Tests inject a fixed one.
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), repr=False)
    # Which of the cloud's timelines answers: "file" (the published file) or "api" (the
    # Discovery API's answers). See resolver/timelines.py.
    source: str = FILE

    def __post_init__(self) -> None:
        self.source = check_source(self.source)

    @property
    def timeline(self) -> str:
        """The storage key of the timeline this store reads: ``"Public"`` or ``"Public@api"``
        (what ``cache/`` takes where it takes a cloud)."""
        return timeline_key(self.cloud, self.source)

    @property
    def what(self) -> str:
        """The timeline as messages name it: "the Public file" or "the Public Discovery API"."""
        return describe(self.cloud, self.source)

    def _nothing_stored(self) -> str:
        if self.source == API:
            return (
                f"No {self.cloud.name} Discovery API answer is stored yet. Run 'aztags fetch "
                f"--cloud {self.cloud.key} --api --subscription ID' (or 'aztags import FILE' with "
                "what az network list-service-tags or Get-AzNetworkServiceTag printed) first."
            )
        return (
            f"No {self.cloud.name} snapshot is stored yet. Run 'aztags fetch --cloud "
            f"{self.cloud.key}' (or 'aztags import FILE') first."
        )

    @classmethod
    def open(
        cls,
        db: Path | str | None = None,
        cloud: str = "public",
        *,
        max_age_days: int = DEFAULT_MAX_AGE_DAYS,
        now: Callable[[], datetime] | None = None,
        source: str = FILE,
    ) -> TagStore:
        from cache.db import default_db_path, open_db

        source = check_source(source)  # a usage error before the database is opened
        conn = open_db(db or default_db_path(), readonly=True)
        if now is None:
            return cls(conn, get_cloud(cloud), max_age_days=max_age_days, source=source)
        return cls(conn, get_cloud(cloud), max_age_days=max_age_days, now=now, source=source)

    def today(self) -> date:
        """Today in UTC, by this store's clock."""
        return self.now().astimezone(UTC).date()

    def other(self, cloud: Cloud) -> TagStore:
        """The same database, clock and limit, for another cloud."""
        return TagStore(
            self.conn, cloud, max_age_days=self.max_age_days, now=self.now, source=self.source
        )

    def stored_clouds(self) -> list[Cloud]:
        """The clouds that have a current snapshot in this database, in CLOUDS order."""
        with read_view(self.conn):
            return [
                c
                for c in CLOUDS
                if load_current(self.conn, timeline_key(c, self.source)) is not None
            ]

    # -- snapshots and names -----------------------------------------------------------------------

    @_one_view
    def snapshot(self, at: At = None) -> SnapshotInfo:
        """The snapshot a query at ``at`` reads. A malformed ``at`` raises UsageError, one that
        names nothing stored NotFoundError, an empty store EmptyStoreError; a date after today
        (UTC, by :attr:`now`) is a UsageError."""
        ref = None if at is None else parse_at(at, self.today())  # a usage error before any read
        if ref is None:  # the current one: one row, not the whole timeline (every feed asks)
            current = load_current(self.conn, self.timeline)
            if current is None:
                raise EmptyStoreError(self._nothing_stored())
            return current
        try:
            return pick_snapshot(history.timeline(self.conn, self.timeline), ref, self.timeline)
        except EmptyStoreError:
            raise EmptyStoreError(self._nothing_stored()) from None

    @_one_view
    def freshness(self, snapshot: SnapshotInfo, at: At = None) -> Freshness:
        """What an answer read from ``snapshot`` for ``at`` must say (resolver.staleness): stale
        (no ``at``, current snapshot older than :attr:`max_age_days`), or answered with the
        newest file for an ``at`` day after it. Every query command prints it the same way."""
        ref = None if at is None else parse_at(at)
        newest = self.snapshot()
        return answer_freshness(self.cloud, snapshot, newest, ref, self.max_age_days, self.now())

    @_one_view
    def snapshots(self) -> list[SnapshotInfo]:
        return load_snapshots(self.conn, self.timeline)

    @_one_view
    def summaries(self, snapshot: SnapshotInfo) -> list[TagSummary]:
        """Every tag of ``snapshot`` with its counts (cached per snapshot id)."""
        found = self._summaries.get(snapshot.id)
        if found is None:
            found = history.load_tag_summaries(self.conn, self.timeline, self._seq(snapshot))
            self._summaries[snapshot.id] = found
        return found

    def _seq(self, snapshot: SnapshotInfo) -> int:
        """The snapshot's place in the timeline as of this read: read again by id, because a
        SnapshotInfo from an earlier call may carry a seq that a backfill has moved since."""
        seq = history.snapshot_seq(self.conn, snapshot.id)
        if seq is None:
            raise NotFoundError(
                f"{self.timeline} snapshot {snapshot.id} (changeNumber "
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
        if not region:
            return self._exact_tags(names, snapshot)
        summaries = self.summaries(snapshot)
        by_fold = {t.name.casefold(): t for t in summaries}
        regions = self.regions(snapshot)
        code = regions.resolve(region)
        found: list[TagInfo] = []
        for name in names:
            exact = by_fold.get(name.strip().casefold())
            if exact is not None and exact.region:
                if exact.region != code:
                    raise NotFoundError(
                        f"{exact.name} is the tag of region {exact.region}, not {code}; "
                        "drop --region or name the service without its region."
                    )
                found.append(exact)
                continue
            regional = regions.regional_tag(name.strip(), code, as_written=region)
            if regional is None:
                if exact is None:
                    raise self._unknown_tag(name, [t.name for t in summaries])
                raise NotFoundError(
                    f"{exact.name} has no tag for region {code} in {self.what}. "
                    f"Drop --region to use the global {exact.name}."
                )
            found.append(regional)
        return list(dict.fromkeys(found))

    def _exact_tags(self, names: Sequence[str], snapshot: SnapshotInfo) -> list[TagInfo]:
        """:meth:`resolve_names` without a region: tag names in any case. Names spelled as the
        file spells them are read alone; otherwise every name of the snapshot is read to match
        the case, then the summaries of the tags found only (not one per tag of the snapshot),
        unless every summary is cached already."""
        cached = self._summaries.get(snapshot.id)
        typed = list(dict.fromkeys(name.strip() for name in names))
        if cached is None and all(name.isascii() for name in typed):  # (no lone surrogate)
            spelled = self.tag_details(snapshot, typed)
            if len(spelled) == len(typed):
                return [spelled[name] for name in typed]
        known = (
            [t.name for t in cached]
            if cached is not None
            else history.tag_names_at(self.conn, self.timeline, self._seq(snapshot))
        )
        by_fold = {name.casefold(): name for name in known}
        found: list[str] = []
        for name in names:
            exact = by_fold.get(name.strip().casefold())
            if exact is None:
                raise self._unknown_tag(name, known)
            found.append(exact)
        details = self.tag_details(snapshot, found)
        return [details[name] for name in dict.fromkeys(found)]

    def _unknown_tag(self, name: str, known: Sequence[str]) -> NotFoundError:
        folded = {n.casefold(): n for n in known}
        close = _close_matches(name.casefold(), list(folded))
        return UnknownTagError(
            f"Unknown service tag {shown(name)} in {self.what}.",
            name,
            tuple(folded[c] for c in close),
        )

    def elsewhere(
        self, error: UnknownRegionError | UnknownTagError
    ) -> UnknownRegionError | UnknownTagError:
        """``error`` (a region or tag unknown here), or, when the name belongs to another
        stored cloud's current snapshot and to none of this cloud's, the same error saying
        which: "chinaeast2 is a region of the China cloud; add --cloud china"."""
        error.checked = True
        with read_view(self.conn):
            if isinstance(error, UnknownRegionError):
                text = error.text
                try:
                    self.regions(self.snapshot()).resolve(text)
                    return error  # a region of this cloud, only not in the snapshot asked
                except (NotFoundError, EmptyStoreError):
                    pass
            else:
                text = error.name.strip()
                if text.casefold() in {
                    n.casefold() for n in history.tag_names(self.conn, self.timeline)
                }:
                    return error  # a tag of this cloud at another time
            hits: list[tuple[Cloud, str]] = []
            for cloud in self.stored_clouds():
                if cloud == self.cloud:
                    continue
                other = self.other(cloud)
                current = other.snapshot()
                if isinstance(error, UnknownRegionError):
                    with contextlib.suppress(NotFoundError):
                        hits.append((cloud, other.regions(current).resolve(text)))
                else:
                    names = {t.name.casefold(): t.name for t in other.summaries(current)}
                    if text.casefold() in names:
                        hits.append((cloud, names[text.casefold()]))
        if not hits:
            return error
        clouds = " and ".join(c.name for c, _ in hits)
        add = " or ".join(f"--cloud {c.key}" for c, _ in hits)
        plural = "s" if len(hits) > 1 else ""
        hinted: UnknownRegionError | UnknownTagError
        if isinstance(error, UnknownRegionError):
            code = hits[0][1]
            what = text if normalise(text) == code else f"{shown(text)} (region {code})"
            hinted = UnknownRegionError(
                f"Unknown region {shown(text)} in {self.what}: {what} is a region "
                f"of the {clouds} cloud{plural}; add {add}.",
                text,
            )
        else:
            hinted = UnknownTagError(
                f"Unknown service tag {shown(text)} in {self.what}: {hits[0][1]} "
                f"is a tag of the {clouds} cloud{plural}; add {add}.",
                text,
            )
        hinted.checked = True
        return hinted

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
            found = [t for t in found if wanted in service_names(t)]
            if not found:
                services = {n for t in self.summaries(snapshot) for n in service_names(t)}
                close = _close_matches(wanted, sorted(services))
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
        direction: str | None = None,
        protocol: str | None = None,
        port: int | None = None,
    ) -> CidrAnswer:
        """The prefixes of tags (by name, or a requirement profile's), their union, optionally
        one family only and aggregated (adjacent and contained prefixes merged per family).

        ``direction`` (inbound/outbound), ``protocol`` (tcp/udp) and ``port`` keep only the
        profile's rules that such traffic falls under (ports ``*`` match any port, a range the
        ports inside it, protocol ``any`` both). A rule whose tag the file lacks is in
        ``answer.profile.missing`` (not an error here: the caller decides)."""
        if not profile and (direction or protocol or port is not None):
            raise UsageError(
                "--direction, --protocol and --port select rules of a requirement profile; "
                "add --profile P (for example --profile azureml --region westus)."
            )
        snapshot = self.snapshot(at)
        resolved_profile = None
        chosen = self.resolve_names(names, region, snapshot) if names else []
        warnings: list[str] = []
        if profile:
            # here, not at the top: `cidrs TAG` does not pay for importing profiles (~10 ms)
            from resolver.profiles import RuleFilter, find_profile, resolve_profile

            selection = RuleFilter(
                direction.lower() if direction else None,
                protocol.lower() if protocol else None,
                port,
            )
            full = resolve_profile(
                find_profile(profile, profile_dirs),
                cloud=self.cloud.name,
                region_text=region,
                tags={t.name: t for t in self.summaries(snapshot)},
                regions=self.regions(snapshot),
            )
            resolved_profile = full.narrowed(selection)
            if not resolved_profile.rules:
                raise NotFoundError(
                    f"No rule of profile {full.profile.name} is for {selection.describe()} "
                    f"in {self.cloud.name}; 'aztags profile show {full.profile.name}' lists them."
                )
            chosen += [r.tag for r in resolved_profile.rules if r.tag is not None]
            warnings += resolved_profile.warnings
        if null := [t for t in chosen if t.network_features is None]:
            from resolver.profiles import null_features_warning

            warnings += [null_features_warning(t) for t in null]
        assert snapshot.seq is not None
        tags = history.load_tags(
            self.conn, self.timeline, snapshot.seq, [t.name for t in dict.fromkeys(chosen)]
        )

        def shaped(*lists: tuple[str, ...]) -> tuple[str, ...]:
            kept = [p for ps in lists for p in ps if family is None or prefix_family(p) == family]
            if aggregate:
                return merge_prefixes(kept)
            if len(lists) == 1:  # one tag's prefixes come sorted and distinct (load_tags)
                return tuple(kept)
            return sort_prefixes(set(kept))

        result = shaped(*(t.prefixes for t in tags))
        rule_prefixes: tuple[tuple[str, ...], ...] = ()
        if resolved_profile is not None:
            by_name = {t.name: t for t in tags}
            rule_prefixes = tuple(
                shaped(by_name[r.tag.name].prefixes) if r.tag is not None else ()
                for r in resolved_profile.rules
            )
        return CidrAnswer(
            snapshot,
            tuple(tags),
            result,
            tuple(dict.fromkeys(warnings)),
            resolved_profile,
            rule_prefixes,
        )

    @_one_view
    def history(self, name: str) -> list[TagVersion]:
        """Every snapshot where the tag changed (prefixes or properties), oldest first."""
        summaries = self.summaries(self.snapshot())
        exact = {t.name.casefold(): t.name for t in summaries}
        real = exact.get(name.strip().casefold())
        if real is None:
            gone = {n.casefold(): n for n in history.tag_names(self.conn, self.timeline)}
            real = gone.get(name.strip().casefold())
            if real is None:
                raise self._unknown_tag(name, [t.name for t in summaries])
        return history.load_tag_history(self.conn, self.timeline, real)

    @_one_view
    def history_report(self, name: str) -> TagHistory:
        """:meth:`history` with the snapshot it runs up to, read in one view."""
        from resolver.history import TagHistory

        snapshot = self.snapshot()
        return TagHistory(snapshot, name.strip(), tuple(self.history(name)))

    @_one_view
    def prefix_history(self, query: str) -> PrefixHistory:
        """Which tags held an address (through which of their prefixes) or a CIDR (the prefix
        itself, prefixes containing it, prefixes inside it), from which snapshot to which.

        Raises InvalidAddressError for text that is neither, NotFoundError when no stored
        snapshot of the cloud had it in any tag."""
        from resolver.history import PrefixHistory, PrefixSpan

        parsed = parse_network(query)
        if parsed is None:
            raise InvalidAddressError(query.strip())
        fam, value, length = parsed
        is_address = "/" not in query
        canonical = to_text(fam, value) if is_address else to_text(fam, value, length)
        current = self.snapshot()
        timeline = history.timeline(self.conn, self.timeline)
        by_seq = {s.seq: s for s in timeline}
        spans = []
        for tag, prefix, from_seq, to_seq in history.prefix_spans(
            self.conn,
            self.timeline,
            supernets(fam, value, length),
            inner_range(fam, value, length),
        ):
            held = [
                s
                for s in timeline
                if from_seq <= (s.seq or 0) and (to_seq is None or (s.seq or 0) < to_seq)
            ]
            if not held:
                continue
            if prefix == canonical:
                relation = "equal"
            else:
                relation = "contains" if int(prefix.rpartition("/")[2]) <= length else "inside"
            spans.append(
                PrefixSpan(
                    tag,
                    prefix,
                    relation,
                    held[0],
                    held[-1],
                    by_seq.get(to_seq) if to_seq is not None else None,
                )
            )
        if not spans:
            first = timeline[0]
            raise NotFoundError(
                f"{canonical} was in no {self.timeline} service tag in any stored snapshot "
                f"(changeNumber {first.change_number} of {first.file_date or '-'} to "
                f"{current.change_number} of {current.file_date or '-'}). "
                "Check the address, or try another --cloud."
            )
        return PrefixHistory(canonical, is_address, current, timeline[0], tuple(spans))

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
            # Every prefix that may contain it, one per length (33 for IPv4): each a probe of
            # the unique index on prefixes.prefix, cheaper than reading which lengths occur.
            candidates.update(supernets(*parsed))
            if (inside := inner_range(*parsed)) is not None:
                ranges.append(inside)
        pairs = history.load_pairs_for(self.conn, self.timeline, snapshot.seq, candidates)
        for within in ranges:
            pairs += history.load_pairs_for(self.conn, self.timeline, snapshot.seq, within=within)
        from resolver.lookup import LookupIndex

        return LookupIndex.build(pairs).answers(queries)

    @_one_view
    def lookup_report(self, queries: Sequence[str], at: At = None) -> LookupReport:
        """:meth:`lookup` with the snapshot it read and its tags' details, in one view (two
        calls could see two snapshots if a file is stored in between)."""
        from resolver.lookup import LookupReport

        snapshot = self.snapshot(at)
        answers = self.lookup(queries, at=at)  # the same snapshot: the same view
        named = {
            m.tag
            for a in answers
            if a.result is not None
            for m in (*a.result.containing, *a.result.overlapping)
        }
        return LookupReport(
            snapshot,
            tuple(answers),
            self.tag_details(snapshot, named),
            self.freshness(snapshot, at),
        )

    @_one_view
    def lookup_index(self, at: At = None) -> LookupIndex:
        """The whole snapshot's reverse-lookup index, for batches (about 0.2 s to build)."""
        from resolver.lookup import LookupIndex

        pairs = history.load_pairs(self.conn, self.timeline, self._seq(self.snapshot(at)))
        return LookupIndex.build(pairs)

    @_one_view
    def lookup_batch(self, at: At = None) -> LookupBatch:
        """The snapshot, its tag details and its whole reverse-lookup index, read in one view:
        the one batch-lookup path (``aztags lookup --file``, and any caller with many lines)."""
        from resolver.lookup import LookupIndex

        snapshot = self.snapshot(at)
        pairs = history.load_pairs(self.conn, self.timeline, self._seq(snapshot))
        details, freshness = self.tag_details(snapshot), self.freshness(snapshot, at)
        return LookupBatch(snapshot, details, LookupIndex.build(pairs), freshness)

    def found_elsewhere(self, queries: Sequence[str]) -> dict[str, tuple[Cloud, ...]]:
        """For addresses and CIDRs in no tag of this cloud: the other stored clouds whose current
        snapshot has them in a tag (query -> clouds; queries found nowhere are left out)."""
        found: dict[str, tuple[Cloud, ...]] = {}
        if not queries:
            return found
        with read_view(self.conn):
            others = [c for c in self.stored_clouds() if c != self.cloud]
            answers = {c: self.other(c).lookup(queries) for c in others}
        for i, query in enumerate(queries):
            clouds = tuple(c for c in others if (r := answers[c][i].result) is not None and r.tags)
            if clouds:
                found[query.strip()] = clouds
        return found

    def lookup_report_all(self, queries: Sequence[str], at: At = None) -> list[LookupReport]:
        """:meth:`lookup_report` in every stored cloud (``lookup --cloud all``), in CLOUDS order,
        read in one view. With ``at``, a cloud with no snapshot that early is left out."""
        with read_view(self.conn):
            return self._each_cloud(lambda store: store.lookup_report(queries, at), at)

    def lookup_batch_all(self, at: At = None) -> CloudsBatch:
        """:meth:`lookup_batch` of every stored cloud, read in one view (``lookup --file
        --cloud all``)."""
        with read_view(self.conn):
            return CloudsBatch(self._each_cloud(lambda store: store.lookup_batch(at), at))

    def _each_cloud(self, ask: Callable[[TagStore], R], at: At) -> list[R]:
        if at is not None:
            parse_at(at, self.today())  # a usage error first, whatever is stored
        clouds = self.stored_clouds()
        if not clouds:
            raise EmptyStoreError(
                "No snapshot is stored yet. Run 'aztags fetch --cloud all' (or 'aztags import "
                "FILE') first."
            )
        found, missed = [], []
        for cloud in clouds:
            try:
                found.append(ask(self.other(cloud)))
            except NotFoundError as e:
                if at is None:
                    raise
                missed.append(e)
        if not found:
            raise missed[0]
        return found

    @_one_view
    def tag_details(
        self, snapshot: SnapshotInfo, names: Iterable[str] | None = None
    ) -> dict[str, TagSummary]:
        """Tag name -> summary, for every tag of ``snapshot`` or only for ``names`` (those that
        ``snapshot`` has): a few tags are read without building a summary for each of them."""
        cached = self._summaries.get(snapshot.id)
        if names is None or cached is not None:
            every = {t.name: t for t in (cached or self.summaries(snapshot))}
            return every if names is None else {n: every[n] for n in names if n in every}
        found = history.load_tag_summaries(self.conn, self.timeline, self._seq(snapshot), names)
        return {t.name: t for t in found}

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
                    f"Only one {self.timeline} snapshot is stored up to changeNumber "
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
        tags, summary, since = self.changes_between(before.seq, after.seq, scope)
        usable = {s.seq: _usable(s) for s in self.snapshots() if s.seq is not None}
        usable_by_prefix = {}
        for d in tags:  # (a two-year diff adds some 30,000 prefixes: one date per snapshot)
            for p in d.added:
                seq = since.get(key := (d.name, p))
                if seq is not None:  # arrived after before.seq
                    usable_by_prefix[key] = usable[seq]
        from resolver.diff import DiffAnswer

        return DiffAnswer(before, after, tags, summary, _usable(after), usable_by_prefix)

    def changes_between(
        self, low: int, high: int, scope: list[str] | None
    ) -> tuple[tuple[TagDiff, ...], DiffSummary, dict[tuple[str, str], int]]:
        """diff_tags over the tags whose history has an interval starting or ending between the
        two snapshots (every other tag is the same in both), read with their prefixes' integer
        intervals: the prefixes that changed and the kept ones near them (history.load_tag_changes),
        so the cost follows the size of the change, not of the snapshots. Also: since which seq
        each (tag, prefix) at ``high`` that arrived after ``low`` has been there (tags in
        ``scope`` only, when given)."""
        from resolver.diff import diff_tags

        ids = history.changed_tag_ids(self.conn, self.timeline, low, high)
        old_tags, new_tags, intervals, since = history.load_tag_changes(
            self.conn, low, high, ids, scope
        )
        old = {t.name: t for t in old_tags}
        new = {t.name: t for t in new_tags}
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


def _usable(snapshot: SnapshotInfo) -> date | None:
    return snapshot.file_date + USABLE_AFTER if snapshot.file_date else None


def _answer_line(
    index: LookupIndex, text: str, error: InvalidAddressError
) -> QueryResult | InvalidAddressError | CommentLine | None:
    """The answer for a batch line that the index's address fast path refused: None for a blank
    line, a CommentLine for a '#' comment, the containing and inside tags for a CIDR, else the
    error itself."""
    if not text:
        return None
    if text[0] == "#":
        from resolver.lookup import CommentLine  # loaded already: the batch path imported it

        return CommentLine(text)
    if "/" in text:
        try:
            return index.query(text)
        except InvalidAddressError as e:
            return e
    return error


def list_snapshots(
    conn: sqlite3.Connection, clouds: Iterable[Cloud], source: str = FILE
) -> list[SnapshotInfo]:
    """Every stored snapshot of these clouds' ``source`` timelines (quarantined ones too), per
    cloud in timeline order, read in one view. Raises EmptyStoreError when there is none."""
    source = check_source(source)
    with read_view(conn):
        found = [s for c in clouds for s in load_snapshots(conn, timeline_key(c, source))]
    if not found:
        raise nothing_stored(source)
    return found
