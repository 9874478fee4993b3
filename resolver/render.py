"""What every command prints: answers in, text or JSON-able documents out.

Pure functions (no I/O, no click), shared by the command line and, later, the HTTP server. Each
``render_*_text`` returns the text of stdout without its final newline (the caller writes one);
each ``render_*_json`` returns a document for :func:`render_json`. Text that came from a user
(a bad lookup line, a file's bytes) goes through :func:`readable` before it is shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resolver.clouds import CLOUDS
from resolver.errors import AztagsError, InvalidAddressError
from resolver.prefixes import count
from resolver.prefixes import family as prefix_family

if TYPE_CHECKING:  # answers only: rendering needs none of these modules at run time
    from datetime import datetime

    from cache.outbox import DeliveryRow
    from resolver.alerts.deliver import Report as DeliveryReport
    from resolver.clouds import Cloud
    from resolver.diff import DiffAnswer
    from resolver.history import PrefixHistory, TagHistory, TagVersion
    from resolver.ingest import IngestResult
    from resolver.lookup import LookupAnswer, LookupMatch, LookupReport, QueryResult
    from resolver.models import SnapshotInfo, TagSummary
    from resolver.profiles import Profile, ResolvedProfile, ResolvedRule, SourceRef
    from resolver.profiles.check import ProfileCheck
    from resolver.query import BatchAnswer, CidrAnswer, CloudsBatch
    from resolver.reconcile import Reconciliation
    from resolver.refresh import RefreshResult
    from resolver.staleness import Freshness
    from resolver.status import CloudStatus

Details = Mapping[str, "TagSummary"]  # tag name -> its region, systemService... (tag_details)

# -- shared pieces ---------------------------------------------------------------------------------


def render_json(doc: Any) -> str:
    """One JSON document as every command prints it (dates as ISO text)."""
    import json  # where JSON is written: a text answer does not import it

    return json.dumps(doc, indent=2, default=str)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell, two spaces apart, trailing spaces cut; None is ''."""
    text = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in text)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in text:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def readable(text: str, limit: int | None = None, *, controls: bool = True) -> str:
    """User text made safe to print: bytes that were not UTF-8 (read with surrogateescape) as
    ``\\xNN``, other lone surrogates as ``\\udNNN``, control characters escaped (unless
    ``controls`` is False: a message's own line breaks); cut to ``limit`` characters (and
    "...") when given."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if controls and any(c < " " or c == "\x7f" for c in text):
        text = "".join(repr(c)[1:-1] if c < " " or c == "\x7f" else c for c in text)
    return text


def render_snapshot_json(info: SnapshotInfo) -> dict[str, Any]:
    """The snapshot an answer was read from."""
    return {
        "cloud": info.cloud,
        "change_number": info.change_number,
        "file_date": info.file_date,
        "fetched_at": info.fetched_at.isoformat(),
    }


def render_timeline_note(info: SnapshotInfo) -> str:
    """The stderr note of an answer read from a Discovery API timeline (``Public@api``)."""
    cloud = info.cloud.removesuffix("@api")
    return (
        f"aztags: note: answered from the {cloud} Discovery API ({info.cloud}): changeNumber "
        f"{info.change_number}, fetched {info.fetched_at.strftime('%Y-%m-%d %H:%M')} UTC."
    )


def render_warnings(warnings: Iterable[str]) -> list[str]:
    """stderr lines for an answer's warnings."""
    return [f"aztags: warning: {w}" for w in warnings]


def render_freshness_lines(freshness: Iterable[Freshness]) -> list[str]:
    """The stderr lines for the snapshots an answer was read from: at most one warning (stale
    data, every stale cloud in it) and one note (an --at day after the newest file)."""
    found = list(freshness)
    lines = []
    stale = [(f, f.stale) for f in found if f.stale is not None]
    if stale:
        which = ", ".join(
            f"{f.snapshot.cloud} changeNumber {f.snapshot.change_number} "
            f"({f.snapshot.file_date or '-'}, {s.age_days} days old)"
            for f, s in stale
        )
        key = stale[0][0].cloud.key if len(stale) == 1 else "all"
        api = " --api --subscription ID" if stale[0][0].snapshot.cloud.endswith("@api") else ""
        lines.append(
            f"aztags: warning: answered from stale data: {which}, older than "
            f"{stale[0][1].max_age_days} days (--max-age-days); run 'aztags fetch --cloud {key}"
            f"{api}'."
        )
    after = [f for f in found if f.after_newest is not None]
    if after:
        which = ", ".join(
            f"{f.cloud.name} {f.snapshot.file_date or '-'}, changeNumber {f.snapshot.change_number}"
            for f in after
        )
        lines.append(
            f"aztags: note: --at {after[0].after_newest} is after the newest stored file "
            f"({which}): answered with it; a newer file may be out ('aztags fetch')."
        )
    return lines


def render_stale_json(freshness: Freshness) -> dict[str, Any] | None:
    """The ``"stale"`` field of a --json answer: null, or how old the snapshot is."""
    s = freshness.stale
    if s is None:
        return None
    return {
        "cloud": freshness.cloud.name,
        "change_number": freshness.snapshot.change_number,
        "file_date": freshness.snapshot.file_date,
        "age_days": s.age_days,
        "max_age_days": s.max_age_days,
    }


def render_freshness_json(freshness: Freshness) -> dict[str, Any]:
    """What a --json document gets for the freshness of its snapshot: ``{"stale": ...}``."""
    return {"stale": render_stale_json(freshness)}


def _features(features: frozenset[str] | None) -> str:
    """networkFeatures for a table: ``null`` (JSON null), ``[]`` (empty list) or ``A,B``."""
    if features is None:
        return "null"
    return ",".join(sorted(features)) or "[]"


def _jsonable(value: object) -> object:
    return sorted(value) if isinstance(value, frozenset) else value


def _shown(value: object) -> str:
    if value is None:
        return "null"
    return _features(value) if isinstance(value, frozenset) else str(value)


def _state(info: SnapshotInfo) -> str:
    if info.quarantined:
        return "QUARANTINED"
    return "current" if info.is_current else "history"


# -- fetch / import --------------------------------------------------------------------------------


def render_ingest_json(result: IngestResult) -> dict[str, Any]:
    """What storing one file did, as a document."""
    # per-tag detail is for the library (alerts); the document keeps counts. Left out before
    # asdict, which would deep-copy every prefix of a first ingest (86k) only to drop them.
    doc = asdict(replace(result, changes=()))
    del doc["changes"]
    doc["snapshot"]["fetched_at"] = result.snapshot.fetched_at.isoformat()
    return doc


def render_ingest_text(name: str, result: IngestResult) -> str:
    """One line per stored file: what it is, what became of it, what it changed."""
    info = result.snapshot
    what = f"{name}: changeNumber {info.change_number}"
    if info.file_date:
        what += f" ({info.file_date})"
    if result.outcome == "duplicate":
        return f"{what}: already stored, nothing to do"
    if result.outcome == "quarantined":
        return f"{what}: QUARANTINED, not made current"
    role = "now current" if result.outcome == "current" else "stored as history (backfill)"
    return (
        f"{what}: {role}; {info.tag_count} tags, {info.prefix_count} prefix entries; "
        f"+{result.tags_added} tags, -{result.tags_removed} tags, {result.tags_changed} changed, "
        f"+{result.prefixes_added}/-{result.prefixes_removed} prefix entries"
    )


def render_ingest_notes(result: IngestResult) -> list[str]:
    """stderr lines that go with a stored file: why it was quarantined and what to do."""
    if result.outcome != "quarantined":
        return []
    return [f"aztags: quarantined because {note}." for note in result.notes] + [
        "aztags: inspect it with 'aztags snapshots'; accept it with --force if the drop is real."
    ]


def render_fetch_json(cloud: str, outcome: RefreshResult | AztagsError) -> dict[str, Any]:
    """One cloud's fetch: its error, 'unchanged', or what storing the file did."""
    if isinstance(outcome, AztagsError):
        return {"cloud": cloud, "error": str(outcome)}
    if outcome.ingest is None:
        return {"cloud": cloud, "outcome": "unchanged", "source": outcome.source}
    return {"cloud": cloud, **render_ingest_json(outcome.ingest)}


def render_fetch_failure(cloud: str, error: AztagsError, *, verbose: bool = False) -> str:
    """The stderr line for one cloud that failed in a fetch of several: one line (the first of
    the message, or a discovery's summary), the whole message with ``verbose`` (-v)."""
    text = str(error)
    if not verbose:
        summary = getattr(error, "summary", None)
        first, _, rest = text.partition("\n")
        if summary:
            text = f"could not find the current file: {summary}"
        elif rest:
            text = f"{first.removesuffix(' Tried:')} (-v for the detail)"
    return f"aztags: {cloud}: {readable(text, controls=False)}"


def render_fetch_hint() -> str:
    """Said once after clouds that could not be downloaded."""
    return (
        "aztags: hint: without internet access, download the files elsewhere and store them "
        "with 'aztags import FILE...' or 'aztags fetch --source FILE' (both read the cloud from "
        "the file: no --cloud needed); behind a proxy, set HTTPS_PROXY (and NO_PROXY, "
        "REQUESTS_CA_BUNDLE). -v shows every step tried."
    )


def render_unchanged_text(cloud: str, source: str) -> str:
    return f"{cloud}: unchanged since the last fetch ({source})"


def render_import_json(path: Path, outcome: IngestResult | AztagsError) -> dict[str, Any]:
    """One imported file: its error or what storing it did."""
    if isinstance(outcome, AztagsError):
        return {"file": str(path), "error": str(outcome)}
    return {"file": str(path), **render_ingest_json(outcome)}


def render_import_skipped(path: Path) -> dict[str, Any]:
    """A folder's file that an import did not read (not named ServiceTags_*.json[.gz])."""
    return {
        "file": str(path),
        "outcome": "skipped",
        "reason": "not named ServiceTags_*.json or ServiceTags_*.json.gz",
    }


def render_import_summary(outcomes: Sequence[str], skipped: int) -> str:
    """The last line of an import of several files: how many became what, and how many files
    of the folders were skipped."""
    n = len(outcomes)
    stored = sum(o in ("current", "backfill") for o in outcomes)
    parts = [f"{stored} stored"]
    for outcome, label in (
        ("duplicate", "already stored"),
        ("quarantined", "quarantined"),
        ("failed", "failed"),
    ):
        if k := outcomes.count(outcome):
            parts.append(f"{k} {label}")
    line = f"{n} file{'s' if n != 1 else ''} imported: {', '.join(parts)}"
    if skipped:
        line += (
            f"; {skipped} other file{'s' if skipped != 1 else ''} in the folder(s) skipped "
            "(not named ServiceTags_*.json[.gz]; -v lists them)"
        )
    return line


# -- status / snapshots ----------------------------------------------------------------------------


def _status_json(s: CloudStatus) -> dict[str, Any]:
    return {
        "cloud": s.cloud.name,
        "source": s.source,
        "timeline": s.timeline,
        "change_number": s.snapshot.change_number,
        "file_date": s.snapshot.file_date,
        "fetched_at": s.snapshot.fetched_at.isoformat(),
        "age_days": s.staleness.age_days,
        "tags": s.snapshot.tag_count,
        "prefixes": s.snapshot.prefix_count,
        "stale": s.staleness.stale,
        "frozen": s.staleness.frozen,
    }


def render_status_json(
    statuses: Sequence[CloudStatus],
    max_age_days: int,
    alongside: Sequence[CloudStatus] | None = None,
) -> dict[str, Any]:
    """``clouds``: the timeline judged (its staleness is the exit code); ``alongside`` (when
    given): the newest snapshot of each cloud's other timeline (file or Discovery API)."""
    doc: dict[str, Any] = {
        "max_age_days": max_age_days,
        "clouds": [_status_json(s) for s in statuses],
    }
    if alongside is not None:
        doc["source"] = statuses[0].source if statuses else None
        doc["alongside"] = [_status_json(s) for s in alongside]
    return doc


def render_status_text(
    statuses: Sequence[CloudStatus], alongside: Sequence[CloudStatus] = ()
) -> str:
    """One row per cloud and timeline (``Public``: the file, ``Public@api``: the newest
    Discovery API answer, dated by when it was fetched), a cloud's rows together."""
    headers = ["cloud", "changeNumber", "file date", "fetched (UTC)", "age", "tags", "prefixes"]
    order = {c.key: i for i, c in enumerate(CLOUDS)}
    every = sorted(
        [*statuses, *alongside], key=lambda s: (order.get(s.cloud.key, 99), s.source != "file")
    )
    rows = [
        [
            s.timeline,
            s.snapshot.change_number,
            s.snapshot.file_date or "-",
            s.snapshot.fetched_at.strftime("%Y-%m-%d %H:%M"),
            f"{s.staleness.age_days}d",
            s.snapshot.tag_count,
            s.snapshot.prefix_count,
            s.staleness.state,
        ]
        for s in every
    ]
    return render_table([*headers, "state"], rows)


def render_stale_note(statuses: Sequence[CloudStatus], max_age_days: int) -> str | None:
    """The stderr line naming the stale clouds, or None when every cloud is fresh."""
    stale = [f"{s.cloud.name} ({s.staleness.age_days} days)" for s in statuses if s.staleness.stale]
    if not stale:
        return None
    return (
        f"aztags: stale: {', '.join(stale)} older than {max_age_days} days; "
        "is 'aztags fetch' running?"
    )


def render_snapshots_json(infos: Sequence[SnapshotInfo]) -> list[dict[str, Any]]:
    return [
        {
            "id": s.id,
            "cloud": s.cloud,
            "change_number": s.change_number,
            "file_date": s.file_date,
            "fetched_at": s.fetched_at.isoformat(),
            "tags": s.tag_count,
            "prefixes": s.prefix_count,
            "size": s.size,
            "sha256": s.sha256,
            "source": s.source,
            "etag": s.etag,
            "state": _state(s),
            "quarantine_reason": s.quarantine_reason,
        }
        for s in infos
    ]


def render_snapshots_text(infos: Sequence[SnapshotInfo]) -> str:
    headers = ["id", "cloud", "changeNumber", "file date", "fetched (UTC)", "tags", "prefixes"]
    rows = [
        [
            s.id,
            s.cloud,
            s.change_number,
            s.file_date or "-",
            s.fetched_at.strftime("%Y-%m-%d %H:%M"),
            s.tag_count,
            s.prefix_count,
            _state(s),
            s.source,
        ]
        for s in infos
    ]
    return render_table([*headers, "state", "source"], rows)


def render_quarantined_notes(infos: Sequence[SnapshotInfo]) -> list[str]:
    """stderr lines for the quarantined snapshots of a listing."""
    return [
        f"aztags: snapshot {s.id} is quarantined: {s.quarantine_reason}"
        for s in infos
        if s.quarantined
    ]


# -- reconcile -------------------------------------------------------------------------------------


def _snapshot_line(info: SnapshotInfo) -> str:
    day = info.file_date or f"fetched {info.fetched_at.strftime('%Y-%m-%d %H:%M')} UTC"
    return f"changeNumber {info.change_number} ({day})"


def render_reconcile_text(found: Sequence[Reconciliation]) -> str:
    """Per cloud: a header naming both snapshots, the tags in one only, then per tag the
    prefixes announced (``+``: in the file, not yet in the API) and being withdrawn (``-``: in
    the API, no longer in the file), and a summary line."""
    blocks = []
    for r in found:
        lines = [
            f"{r.cloud.name}: file {_snapshot_line(r.file)} vs Discovery API "
            f"{_snapshot_line(r.api)}"
        ]
        if r.only_in_file:
            lines.append(f"\nin the file only ({len(r.only_in_file)}): {', '.join(r.only_in_file)}")
        if r.only_in_api:
            lines.append(f"\nin the API only ({len(r.only_in_api)}): {', '.join(r.only_in_api)}")
        for t in r.tags:
            lines.append(f"\n{t.name}")
            lines += [f"  + {p}  (in the file, not yet in the API)" for p in t.announced]
            lines += [f"  - {p}  (in the API, no longer in the file)" for p in t.withdrawing]
        verdict = "differences found" if r.differs else "the same"
        lines.append(
            f"\n{verdict}: {len(r.tags)} tags differ (+{r.announced} announced, "
            f"-{r.withdrawing} being withdrawn); {len(r.only_in_file)} tags in the file only, "
            f"{len(r.only_in_api)} in the API only; {len(r.file_only_expected)} more in the file "
            "only, as their networkFeatures (no API) say"
        )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def render_reconcile_json(found: Sequence[Reconciliation]) -> dict[str, Any]:
    return {
        "clouds": [
            {
                "cloud": r.cloud.name,
                "differs": r.differs,
                "file": render_snapshot_json(r.file),
                "api": render_snapshot_json(r.api),
                "only_in_file": list(r.only_in_file),
                "only_in_api": list(r.only_in_api),
                "file_only_expected": list(r.file_only_expected),
                "summary": {
                    "tags_differ": len(r.tags),
                    "announced": r.announced,
                    "withdrawing": r.withdrawing,
                },
                "tags": [
                    {
                        "name": t.name,
                        "announced": list(t.announced),
                        "withdrawing": list(t.withdrawing),
                    }
                    for t in r.tags
                ],
            }
            for r in found
        ]
    }


# -- tags / cidrs ----------------------------------------------------------------------------------


def render_tags_json(snapshot: SnapshotInfo, found: Sequence[TagSummary]) -> dict[str, Any]:
    return {
        "snapshot": render_snapshot_json(snapshot),
        "tags": [
            {
                "name": t.name,
                "region": t.region,
                "system_service": t.system_service,
                "network_features": _jsonable(t.network_features),
                "change_number": t.change_number,
                "ipv4": t.ipv4_count,
                "ipv6": t.ipv6_count,
            }
            for t in found
        ],
    }


def render_tags_text(found: Sequence[TagSummary]) -> str:
    return render_table(
        ["name", "region", "systemService", "networkFeatures", "IPv4", "IPv6"],
        [
            [
                t.name,
                t.region or "-",
                t.system_service or "-",
                _features(t.network_features),
                t.ipv4_count,
                t.ipv6_count,
            ]
            for t in found
        ],
    )


def render_cidrs_json(answer: CidrAnswer, aggregated: bool) -> dict[str, Any]:
    """The snapshot, the tags, the prefixes; for a profile also its name, the rule filter and
    the rules whose tag is missing."""
    doc: dict[str, Any] = {
        "snapshot": render_snapshot_json(answer.snapshot),
        "tags": [t.name for t in answer.tags],
        "aggregated": aggregated,
        "prefixes": list(answer.prefixes),
    }
    if answer.profile is not None:
        doc["profile"] = answer.profile.profile.name
        doc["filter"] = _filter_json(answer.profile)
        doc["missing_rules"] = [_rule_name(r) for r in answer.profile.missing]
    return doc


def render_cidrs_csv(answer: CidrAnswer, aggregated: bool) -> str:
    """``prefix,family,tags``; the tags column is empty for aggregated prefixes."""
    owners: dict[str, list[str]] = {}
    if not aggregated:
        for t in answer.tags:
            for p in t.prefixes:
                owners.setdefault(p, []).append(t.name)
    lines = ["prefix,family,tags"]
    for p in answer.prefixes:
        lines.append(f"{p},ipv{prefix_family(p)},{';'.join(owners.get(p, []))}")
    return "\n".join(lines)


def render_cidrs_text(answer: CidrAnswer) -> str:
    return "\n".join(answer.prefixes)


# -- lookup ----------------------------------------------------------------------------------------


def _match_fields(matches: Iterable[LookupMatch], details: Details, prefix: str = "") -> list[str]:
    fields = []
    for m in matches:
        t = details.get(m.tag)
        fields.append(
            f"{prefix}{m.tag},{m.prefix},{t.region if t else ''},{t.system_service if t else ''}"
        )
    return fields


def _match_json(match: LookupMatch, details: Details) -> dict[str, Any]:
    t = details.get(match.tag)
    return {
        "tag": match.tag,
        "prefix": match.prefix,
        "region": t.region if t else None,
        "system_service": t.system_service if t else None,
    }


def render_lookup_line(
    query: str, result: QueryResult | None, error: str | None, details: Details
) -> str:
    """One tab-separated line: the query, then TAG,PREFIX,REGION,SERVICE per containing match,
    then ``inside:``-marked matches for a CIDR; or ``QUERY<TAB>error: ...``."""
    if result is None:
        return f"{readable(query)}\terror: {readable(error or '')}"
    fields = [query, *_match_fields(result.containing, details)]
    fields += _match_fields(result.overlapping, details, "inside:")
    return "\t".join(fields)


def render_lookup_doc(
    query: str, result: QueryResult | None, error: str | None, details: Details
) -> dict[str, Any]:
    """One lookup as a document: ``tags`` (and ``inside`` for a CIDR), or ``error``."""
    if result is None:
        return {"query": readable(query), "error": readable(error or "")}
    doc: dict[str, Any] = {
        "query": query,
        "tags": [_match_json(m, details) for m in result.containing],
    }
    if result.is_cidr:
        doc["inside"] = [_match_json(m, details) for m in result.overlapping]
    return doc


def render_lookup_json(answers: Sequence[LookupAnswer], details: Details) -> list[dict[str, Any]]:
    return [render_lookup_doc(a.query, a.result, a.error, details) for a in answers]


def render_lookup_report_json(report: LookupReport) -> dict[str, Any]:
    """``aztags lookup --json``: the snapshot answered from, ``stale``, then one entry per query."""
    doc = {"snapshot": render_snapshot_json(report.snapshot)}
    if report.freshness is not None:
        doc.update(render_freshness_json(report.freshness))
    return {**doc, "answers": render_lookup_json(report.answers, report.details)}


def render_found_elsewhere(asked: Cloud, found: Mapping[str, Sequence[Cloud]]) -> list[str]:
    """stderr lines for addresses in no tag of the cloud asked that another stored cloud has."""
    lines = []
    for query, clouds in found.items():
        names = " and ".join(c.name for c in clouds)
        add = " or ".join(f"--cloud {c.key}" for c in clouds)
        lines.append(
            f"aztags: {readable(query, 80)} is in no {asked.name} service tag, but in the {names} "
            f"cloud{'s' if len(clouds) > 1 else ''}: add {add} (or --cloud all)."
        )
    return lines


def render_lookup_header(snapshot: SnapshotInfo, freshness: Freshness | None) -> str:
    """The first line of ``lookup --file --json``: the snapshot every later line answers from,
    and ``stale``, once (the lines that follow each have ``query``; this one has none)."""
    import json

    doc: dict[str, Any] = {"snapshot": render_snapshot_json(snapshot)}
    if freshness is not None:
        doc.update(render_freshness_json(freshness))
    return json.dumps(doc, default=str) + "\n"


def render_lookup_text(answers: Sequence[LookupAnswer], details: Details) -> str:
    return "\n".join(render_lookup_line(a.query, a.result, a.error, details) for a in answers)


def render_lookup_stream(
    answers: Iterable[tuple[str, BatchAnswer]], details: Details, *, as_json: bool = False
) -> Iterator[str]:
    """Batch lookups (``LookupBatch.answers``) as output lines, each ending in a newline: the
    text line of :func:`render_lookup_line` or, with ``as_json``, one JSON document per line.
    A blank input line stays a blank line.

    Addresses come as the index's result tuples, shared by every address of one range: each
    distinct tuple is formatted once and its text reused (most of the time of a large batch).
    """
    return _json_lines(answers, details) if as_json else _text_lines(answers, details)


def _text_lines(answers: Iterable[tuple[str, BatchAnswer]], details: Details) -> Iterator[str]:
    cache: dict[int, str] = {}  # id of a shared result tuple -> its rendered fields
    for text, result in answers:
        if result.__class__ is tuple:
            body = cache.get(id(result))
            if body is None:
                body = "".join("\t" + f for f in _match_fields(result, details)) + "\n"
                cache[id(result)] = body
            yield text + body
        else:
            yield _other_line(text, result, details, as_json=False)


def _json_lines(answers: Iterable[tuple[str, BatchAnswer]], details: Details) -> Iterator[str]:
    import json

    cache: dict[int, str] = {}
    for text, result in answers:
        if result.__class__ is tuple:
            body = cache.get(id(result))
            if body is None:
                body = '", "tags": ' + json.dumps([_match_json(m, details) for m in result]) + "}\n"
                cache[id(result)] = body
            # the text is an address inet_pton accepted (hex digits, '.', ':'): JSON as it is
            yield '{"query": "' + text + body
        else:
            yield _other_line(text, result, details, as_json=True)


# -- lookup --cloud all: every stored cloud, each match naming its cloud ---------------------------

CloudPart = tuple[str, "QueryResult", Details]  # (cloud name, its answer, its tag details)


def _cloud_line(query: str, parts: Sequence[CloudPart]) -> str:
    """One text line: the query, then TAG,PREFIX,REGION,SERVICE,CLOUD per containing match of
    every cloud (clouds in order), then the ``inside:`` ones."""
    fields = [query]
    for cloud, result, details in parts:
        fields += [f"{f},{cloud}" for f in _match_fields(result.containing, details)]
    for cloud, result, details in parts:
        fields += [f"{f},{cloud}" for f in _match_fields(result.overlapping, details, "inside:")]
    return "\t".join(fields)


def _cloud_doc(query: str, parts: Sequence[CloudPart]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "query": query,
        "tags": [
            {**_match_json(m, details), "cloud": cloud}
            for cloud, result, details in parts
            for m in result.containing
        ],
    }
    if parts and parts[0][1].is_cidr:
        doc["inside"] = [
            {**_match_json(m, details), "cloud": cloud}
            for cloud, result, details in parts
            for m in result.overlapping
        ]
    return doc


def _snapshot_with_freshness(snapshot: SnapshotInfo, freshness: Freshness | None) -> dict[str, Any]:
    doc = render_snapshot_json(snapshot)
    doc["stale"] = None if freshness is None else render_stale_json(freshness)
    return doc


def _parts(reports: Sequence[LookupReport], i: int) -> list[CloudPart]:
    """Query ``i`` as answered by each cloud."""
    parts: list[CloudPart] = []
    for r in reports:
        result = r.answers[i].result
        if result is not None:
            parts.append((r.snapshot.cloud, result, r.details))
    return parts


def render_lookup_all_text(reports: Sequence[LookupReport]) -> str:
    """``lookup --cloud all``: one line per query, each match with a fifth field, its cloud."""
    lines = []
    for i, first in enumerate(reports[0].answers):
        if first.result is None:
            lines.append(render_lookup_line(first.query, None, first.error, {}))
            continue
        lines.append(_cloud_line(first.query, _parts(reports, i)))
    return "\n".join(lines)


def render_lookup_all_json(reports: Sequence[LookupReport]) -> dict[str, Any]:
    """``lookup --cloud all --json``: ``snapshots`` (one per cloud, each with ``stale``), then
    one entry per query whose matches each name their ``cloud``."""
    answers = []
    for i, first in enumerate(reports[0].answers):
        if first.result is None:
            answers.append(render_lookup_doc(first.query, None, first.error, {}))
            continue
        answers.append(_cloud_doc(first.query, _parts(reports, i)))
    return {
        "snapshots": [_snapshot_with_freshness(r.snapshot, r.freshness) for r in reports],
        "answers": answers,
    }


def render_lookup_all_header(batch: CloudsBatch) -> str:
    """The first line of ``lookup --file --json --cloud all``: every cloud's snapshot, once."""
    import json

    snapshots = [_snapshot_with_freshness(b.snapshot, b.freshness) for b in batch.batches]
    return json.dumps({"snapshots": snapshots}, default=str) + "\n"


def render_lookup_all_stream(
    answers: Iterable[tuple[str, tuple[BatchAnswer, ...]]],
    batch: CloudsBatch,
    *,
    as_json: bool = False,
) -> Iterator[str]:
    """:func:`render_lookup_stream` for ``CloudsBatch.answers``: the layout of
    :func:`render_lookup_all_text` (or JSON lines), blank and comment lines as there."""
    import json

    from resolver.lookup import (
        CommentLine,
        QueryResult,  # loaded already, as the next one
    )

    clouds = [(b.snapshot.cloud, b.details) for b in batch.batches]
    cache: dict[tuple[int, ...], str] = {}
    for text, per_cloud in answers:
        first = per_cloud[0]
        if first is None or isinstance(first, CommentLine | InvalidAddressError):
            yield _other_line(text, first, {}, as_json=as_json)
            continue
        key = tuple(map(id, per_cloud))
        if all(a.__class__ is tuple for a in per_cloud) and key in cache:
            body = cache[key]
        else:
            parts: list[CloudPart] = []
            for (cloud, details), answer in zip(clouds, per_cloud, strict=True):
                if isinstance(answer, QueryResult):
                    parts.append((cloud, answer, details))
                elif isinstance(answer, tuple):
                    parts.append((cloud, QueryResult(text, False, answer), details))
            if as_json:
                doc = _cloud_doc(text, parts)
                body = json.dumps(doc)[len(json.dumps({"query": text})) - 1 :]
            else:
                body = _cloud_line("", parts)
            if all(a.__class__ is tuple for a in per_cloud):
                cache[key] = body
        if as_json:
            yield json.dumps({"query": text})[:-1] + body + "\n"
        else:
            yield text + body + "\n"


def _other_line(text: str, result: BatchAnswer, details: Details, *, as_json: bool) -> str:
    """A batch line off the fast path: blank, a comment, a CIDR's answer, or a bad line's
    error. A comment passes through as written in text, and is left out of JSON lines."""
    import json

    from resolver.lookup import (
        CommentLine,  # loaded already: only the batch path gets here
        QueryResult,  # loaded already, as the next one
    )

    if result is None:
        return "\n"
    if isinstance(result, CommentLine):
        return "" if as_json else readable(result.text) + "\n"
    if isinstance(result, InvalidAddressError):
        query, error = None, str(result)
    elif isinstance(result, QueryResult):
        query, error = result, None
    else:  # an address's tuple: only the fast path sees those
        query, error = QueryResult(text, False, result), None
    if as_json:
        return json.dumps(render_lookup_doc(text, query, error, details)) + "\n"
    return render_lookup_line(text, query, error, details) + "\n"


# -- diff / history --------------------------------------------------------------------------------


def render_diff_json(answer: DiffAnswer) -> dict[str, Any]:
    s = answer.summary
    return {
        "from": render_snapshot_json(answer.before),
        "to": render_snapshot_json(answer.after),
        "usable_from": answer.usable_from,
        "summary": {
            "tags_added": s.tags_added,
            "tags_removed": s.tags_removed,
            "tags_changed": s.tags_changed,
            "ipv4_addresses_added": s.ipv4_addresses_added,
            "ipv4_addresses_removed": s.ipv4_addresses_removed,
            "ipv6_64s_added": s.ipv6_64s_added,
            "ipv6_64s_removed": s.ipv6_64s_removed,
            "counted": "per tag, summed over the changed tags; IPv6 in /64 networks",
        },
        "tags": [
            {
                "name": d.name,
                "status": d.status,
                "added": list(d.added),
                "usable_from": {
                    p: answer.usable_by_prefix.get((d.name, p), answer.usable_from) for p in d.added
                },
                "removed": list(d.removed),
                "recut": [{"removed": list(r.removed), "added": list(r.added)} for r in d.recut],
                "properties": [
                    {"field": f, "before": _jsonable(b), "after": _jsonable(a)}
                    for f, b, a in d.properties
                ],
            }
            for d in answer.tags
        ],
    }


def render_diff_text(answer: DiffAnswer) -> str:
    """The header, a block per changed tag (``*`` properties, ``~`` re-cuts, ``+``/``-``
    prefixes, each added one with the day Azure may use it) and the summary line."""
    b, a, s = answer.before, answer.after, answer.summary
    lines = [
        f"{a.cloud}: changeNumber {b.change_number} ({b.file_date or '-'}) -> "
        f"{a.change_number} ({a.file_date or '-'})"
    ]
    suffixes: dict[object, str] = {}  # "  (usable from DAY)" per day: a long diff has few days
    by_prefix, default = answer.usable_by_prefix, answer.usable_from
    for d in answer.tags:
        lines.append(f"\n{d.name} ({d.status})")
        for field_name, old, new in d.properties:
            lines.append(f"  * {field_name}: {_shown(old)} -> {_shown(new)}")
        for r in d.recut:
            lines.append(f"  ~ {' '.join(r.removed)} re-cut as {' '.join(r.added)}")
        for p in d.added:
            usable = by_prefix.get((d.name, p), default)
            suffix = suffixes.get(usable)
            if suffix is None:
                suffix = suffixes[usable] = f"  (usable from {usable})" if usable else ""
            lines.append(f"  + {p}{suffix}")
        lines.extend([f"  - {p}" for p in d.removed])
    lines.append(
        f"\n{s.tags_added} tags added, {s.tags_removed} removed, {s.tags_changed} changed; "
        f"summed per tag: IPv4 addresses +{s.ipv4_addresses_added} "
        f"-{s.ipv4_addresses_removed}; IPv6 /64s +{s.ipv6_64s_added} -{s.ipv6_64s_removed}"
    )
    return "\n".join(lines)


def render_tag_history_json(answer: TagHistory) -> dict[str, Any]:
    """A tag's history with the snapshot it runs up to (the current one when asked)."""
    return {
        "snapshot": render_snapshot_json(answer.snapshot),
        "query": answer.query,
        "versions": render_history_json(answer.versions),
    }


def _at(info: SnapshotInfo) -> str:
    return f"{info.change_number} ({info.file_date or '-'})"


def _snapshot_ref(info: SnapshotInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {"change_number": info.change_number, "file_date": info.file_date}


def render_prefix_history_json(answer: PrefixHistory) -> dict[str, Any]:
    return {
        "snapshot": render_snapshot_json(answer.snapshot),
        "query": answer.query,
        "kind": "address" if answer.is_address else "cidr",
        "since": _snapshot_ref(answer.first_snapshot),
        "spans": [
            {
                "tag": s.tag,
                "prefix": s.prefix,
                "relation": s.relation,
                "from": _snapshot_ref(s.first),
                "to": _snapshot_ref(s.last),
                "removed_in": _snapshot_ref(s.removed_in),
                "current": s.removed_in is None and s.last.id == answer.snapshot.id,
            }
            for s in answer.spans
        ],
    }


def render_prefix_history_text(answer: PrefixHistory) -> str:
    """A header naming the snapshots searched, then one row per tag and prefix that held the
    address or CIDR: from which snapshot to which (changeNumber and file date), and when it
    was removed (``-``: still in the current snapshot)."""
    kind = "address" if answer.is_address else "CIDR"
    header = (
        f"{kind} {answer.query} in the {answer.snapshot.cloud} snapshots from changeNumber "
        f"{_at(answer.first_snapshot)} to {_at(answer.snapshot)}:"
    )
    rows = []
    for s in answer.spans:
        prefix = {"equal": s.prefix, "contains": s.prefix, "inside": "inside:" + s.prefix}
        rows.append(
            [
                s.tag,
                prefix[s.relation],
                _at(s.first),
                _at(s.last),
                _at(s.removed_in) if s.removed_in else "-",
            ]
        )
    table = render_table(["tag", "prefix", "from", "to", "removed in"], rows)
    return header + "\n" + table


def render_history_json(versions: Sequence[TagVersion]) -> list[dict[str, Any]]:
    return [
        {
            "snapshot": render_snapshot_json(v.snapshot),
            "tag_change_number": v.change_number,
            "region": v.region,
            "system_service": v.system_service,
            "network_features": _jsonable(v.network_features),
            "ipv4": v.ipv4_count,
            "ipv6": v.ipv6_count,
            "prefixes_added": v.prefixes_added,
            "prefixes_removed": v.prefixes_removed,
            "removed_in": render_snapshot_json(v.ended) if v.ended else None,
        }
        for v in versions
    ]


def render_history_text(versions: Sequence[TagVersion]) -> str:
    rows: list[list[Any]] = []
    for v in versions:
        rows.append(
            [
                v.snapshot.change_number,
                v.snapshot.file_date or "-",
                v.change_number,
                v.ipv4_count,
                v.ipv6_count,
                f"+{v.prefixes_added}",
                f"-{v.prefixes_removed}",
                _shown(v.network_features),
            ]
        )
        if v.ended:
            rows.append(
                [v.ended.change_number, v.ended.file_date or "-", "removed", 0, 0, "", "", ""]
            )
    headers = ["changeNumber", "file date", "tag cn", "IPv4", "IPv6", "added", "removed"]
    return render_table([*headers, "networkFeatures"], rows)


# -- profiles --------------------------------------------------------------------------------------


def _source_json(profile: Profile) -> dict[str, Any]:
    ref: SourceRef = profile.source_ref
    return {
        "text": profile.source,
        "url": ref.url or None,
        "repo": ref.repo or None,
        "path": ref.path or None,
        "commit": ref.commit or None,
        "section": ref.section or None,
        "page_date": ref.page_date or None,
        "note": ref.note or None,
    }


def render_profiles_json(profiles: Iterable[Profile]) -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "description": p.description,
            "origin": p.origin,
            "rules": len(p.rules),
            "fqdns": len(p.fqdns),
            "clouds": list(p.clouds),
            "source": _source_json(p),
        }
        for p in sorted(profiles, key=lambda p: p.name)
    ]


def render_profiles_text(profiles: Iterable[Profile]) -> str:
    """One row per profile: counts, the page's date and where it was read (repository:path@commit,
    or the URL or sentence of a user's profile); ``--json`` adds the section and the note."""
    return render_table(
        ["name", "rules", "fqdns", "page date", "source", "description"],
        [
            [
                p.name,
                len(p.rules),
                len(p.fqdns),
                p.source_ref.page_date or "-",
                p.source_ref.short() or p.source or "-",
                p.description,
            ]
            for p in sorted(profiles, key=lambda p: p.name)
        ],
    )


def _filter_json(resolved: ResolvedProfile) -> dict[str, Any]:
    f = resolved.selected_by
    return {"direction": f.direction, "protocol": f.protocol, "port": f.port}


def _rule_name(r: ResolvedRule) -> str:
    """A rule as a user recognises it: ``outbound tcp 443 AzureFrontDoor.Frontend``."""
    return f"{r.rule.direction} {r.rule.protocol} {r.rule.ports} {r.rule.tag}"


def _special_json(r: ResolvedRule) -> dict[str, Any] | None:
    """A rule naming VirtualNetwork, AzureLoadBalancer or Internet: which, where its addresses
    come from (``local``: --local, ``constant``, ``any``) and the addresses."""
    if r.special is None:
        return None
    return {
        "name": r.special.name,
        "origin": r.special.origin,
        "addresses": list(r.special.addresses),
    }


def render_profile_json(answer: CidrAnswer, aggregated: bool = False) -> dict[str, Any]:
    """A profile resolved in one snapshot (``TagStore.cidrs(profile=...)``): per rule its
    template and tag, direction, protocol, ports, purpose, whether it is optional or missing,
    and its prefixes (aggregated when ``aggregated``), enough for one firewall object per rule."""
    resolved = answer.profile
    if resolved is None:
        raise ValueError("render_profile_json needs the answer of a profile query")
    per_rule = answer.rule_prefixes or tuple(() for _ in resolved.rules)
    return {
        "profile": resolved.profile.name,
        "cloud": resolved.cloud,
        "region": resolved.region,
        "source": _source_json(resolved.profile),
        "snapshot": render_snapshot_json(answer.snapshot),
        "filter": _filter_json(resolved),
        "aggregated": aggregated,
        "rules": [
            {
                "direction": r.rule.direction,
                "ports": r.rule.ports,
                "protocol": r.rule.protocol,
                "template": r.rule.tag,
                "source_name": r.rule.source_name,
                "purpose": r.rule.purpose,
                "tag": r.tag.name if r.tag else None,
                "special": _special_json(r),
                "optional": r.rule.optional,
                "missing": r.missing,
                "missing_reason": r.rule.missing_reason,
                "ipv4": r.tag.ipv4_count if r.tag else 0,
                "ipv6": r.tag.ipv6_count if r.tag else 0,
                "skipped": r.skipped_reason,
                "warnings": list(r.warnings),
                "prefixes": list(prefixes),
            }
            for r, prefixes in zip(resolved.rules, per_rule, strict=True)
        ],
        "fqdns": [
            {
                "host": f.host,
                "template": f.template or f.host,
                "ports": f.ports,
                "protocol": f.protocol,
                "optional": f.optional,
                "purpose": f.purpose,
            }
            for f in resolved.fqdns
        ],
        "warnings": list(resolved.warnings),
        "missing_rules": [_rule_name(r) for r in resolved.missing],
        "union": dict(zip(("ipv4", "ipv6"), count(answer.prefixes), strict=True)),
    }


def render_profile_text(answer: CidrAnswer) -> str:
    """The header, one row per rule (first sentence of its purpose: --json has all of it) and
    the host names for FQDN rules."""
    resolved = answer.profile
    if resolved is None:
        raise ValueError("render_profile_text needs the answer of a profile query")
    header = (
        f"{resolved.profile.name} for {resolved.cloud}"
        + (f", region {resolved.region}" if resolved.region else "")
        + f" (changeNumber {answer.snapshot.change_number})"
        + (f"; rules for {resolved.selected_by.describe()}" if resolved.selected_by else "")
    )
    rows = []
    for r in resolved.rules:
        if r.tag:
            tag = r.tag.name
        elif r.skipped_reason:
            tag = "skipped: " + r.skipped_reason
        elif r.special is not None:
            tag = r.special.describe()
        elif r.rule.missing_reason:
            tag = "(missing, explained)"
        else:
            tag = "(missing, optional)" if r.rule.optional else "(missing)"
        rows.append(
            [
                r.rule.direction,
                r.rule.protocol,
                r.rule.ports,
                tag,
                r.tag.ipv4_count if r.tag else "",
                r.tag.ipv6_count if r.tag else "",
                r.rule.purpose.split(". ")[0].rstrip("."),
            ]
        )
    parts = [
        header,
        render_table(["direction", "proto", "ports", "tag", "IPv4", "IPv6", "purpose"], rows),
    ]
    if resolved.fqdns:
        parts.append("\nHost names (FQDN rules):")
        parts.append(
            render_table(
                ["host", "proto", "ports", "purpose"],
                [
                    [f.host, f.protocol, f.ports, ("(optional) " if f.optional else "") + f.purpose]
                    for f in resolved.fqdns
                ],
            )
        )
    ref = resolved.profile.source_ref
    if source := ref.short():  # a [source] table; a plain source sentence is in profile list
        parts.append(
            "\nSource: "
            + source
            + (f", {ref.section}" if ref.section else "")
            + (f" (page of {ref.page_date})" if ref.page_date else "")
        )
    return "\n".join(parts)


def render_profile_check_json(check: ProfileCheck) -> dict[str, Any]:
    """``profile check --json``: the profile, the snapshot checked against and every finding."""
    return {
        "file": check.profile.origin,
        "profile": check.profile.name,
        "cloud": check.cloud,
        "region": check.region or None,
        "snapshot": render_snapshot_json(check.snapshot) if check.snapshot else None,
        "rules": len(check.profile.rules),
        "fqdns": len(check.profile.fqdns),
        "ok": not check.errors,
        "findings": [
            {
                "level": f.level,
                "where": f.where,
                "message": f.message,
                "suggestions": list(f.suggestions),
            }
            for f in check.findings
        ],
    }


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def render_profile_check_text(check: ProfileCheck) -> str:
    """A summary line, then one line per finding (``error: where: what; did you mean ...?``)."""
    snap = check.snapshot
    against = f"the {check.cloud} file"
    if snap is not None:
        against += f" (changeNumber {snap.change_number}"
        against += f", {snap.file_date.isoformat()})" if snap.file_date else ")"
    n_err = len(check.errors)
    verdict = "no problem found" if not n_err else f"{n_err} error{'s' if n_err != 1 else ''}"
    lines = [
        f"{check.profile.origin}: profile {check.profile.name}, "
        f"{_n(len(check.profile.rules), 'rule')}, {_n(len(check.profile.fqdns), 'host name')}"
        + (f", region {check.region}" if check.region else "")
        + f": checked against {against}: {verdict}"
    ]
    for f in check.findings:
        hint = f"; did you mean {', '.join(f.suggestions)}?" if f.suggestions else ""
        lines.append(f"{f.level}: {f.where}: {f.message}{hint}")
    return "\n".join(lines)


def render_profile_missing(answer: CidrAnswer, allowed: bool) -> list[str]:
    """stderr lines for the rules whose tag the file lacks: an error line naming the required
    ones (a warning when ``allowed``: --allow-missing), a warning for the optional ones."""
    resolved = answer.profile
    if resolved is None:
        return []
    lines = []
    snap = answer.snapshot
    where = f"the {resolved.cloud} file (changeNumber {snap.change_number})"
    if resolved.missing:
        names = "; ".join(_rule_name(r) for r in resolved.missing)
        n = len(resolved.missing)
        what = f"{n} rule{'s' if n != 1 else ''} of profile {resolved.profile.name}"
        if allowed:
            lines.append(
                f"aztags: warning: {what} found no tag in {where}: {names}; "
                "the prefixes printed leave them out (--allow-missing)."
            )
        else:
            lines.append(
                f"aztags: {what} found no tag in {where}: {names}; the prefixes printed are "
                "incomplete. Pass --allow-missing if that is expected, or mark the rule "
                "optional = true in the profile."
            )
    optional = [r for r in resolved.missing_optional if not r.rule.missing_reason]
    if optional:
        names = "; ".join(_rule_name(r) for r in optional)
        lines.append(f"aztags: warning: optional rule(s) with no tag in {where}: {names}.")
    explained = [r for r in resolved.missing_optional if r.rule.missing_reason]
    if explained:
        names = "; ".join(f"{_rule_name(r)} ({r.rule.missing_reason})" for r in explained)
        lines.append(
            f"aztags: warning: rule(s) with no tag in {where}, as the profile says: {names}."
        )
    return lines


# -- alerts ----------------------------------------------------------------------------------------


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def _delivery_state(row: DeliveryRow) -> str:
    if row.channel is None:
        return "recorded (not sent)"
    message = row.message
    if message is None:
        return "pending (not tried yet)"
    if message.state == "pending":
        if not message.attempts:
            return "pending (not tried yet)"
        return (
            f"pending: {message.attempts} attempt(s), next {_when(message.next_attempt)}: "
            f"{message.last_error or ''}"
        )
    if message.state == "dead":
        return f"dead: {message.last_error or ''}"
    return f"sent {_when(message.finished)}"


def render_alerts_text(rows: Sequence[DeliveryRow]) -> str:
    """``aztags alerts list``: one line per event and channel, newest first."""
    if not rows:
        return "No alert events."
    table = [
        (
            _when(r.event.created),
            r.event.id,
            r.event.type.split(".")[-1] if r.event.type != "aztags.test" else "test",
            r.channel or "-",
            readable(_delivery_state(r), 80),
            readable(r.event.summary, 100),
        )
        for r in rows
    ]
    return render_table(("created (UTC)", "event", "type", "channel", "state", "what"), table)


def render_alerts_json(rows: Sequence[DeliveryRow]) -> list[dict[str, Any]]:
    """``aztags alerts list --json``: each event once, with its deliveries per channel."""
    docs: dict[str, dict[str, Any]] = {}
    for r in rows:
        doc = docs.setdefault(r.event.id, {**r.event.as_json(), "deliveries": []})
        if r.channel is None:
            continue
        m = r.message
        doc["deliveries"].append(
            {
                "channel": r.channel,
                "state": "pending" if m is None else m.state,
                "message": None if m is None else m.id,
                "attempts": 0 if m is None else m.attempts,
                "next_attempt": None
                if m is None or m.state != "pending"
                else m.next_attempt.isoformat().replace("+00:00", "Z"),
                "last_error": None if m is None else m.last_error,
                "finished": None
                if m is None or m.finished is None
                else m.finished.isoformat().replace("+00:00", "Z"),
            }
        )
    return list(docs.values())


def render_delivery_lines(report: DeliveryReport) -> list[str]:
    """stderr lines after a command delivered alerts: what failed and what waits."""
    lines = []
    for a in report.attempts:
        if a.outcome != "sent":
            lines.append(
                f"aztags: warning: alert to {a.channel} ({a.events} event(s), attempt "
                f"{a.attempt}): {a.outcome}: {readable(a.detail, 200)}"
            )
    for channel in report.waiting:
        lines.append(
            f"aztags: warning: alerts for channel {channel} wait: the config file has no "
            "[[channel]] of that name."
        )
    return lines
