"""What every command prints: answers in, text or JSON-able documents out.

Pure functions (no I/O, no click), shared by the command line and, later, the HTTP server. Each
``render_*_text`` returns the text of stdout without its final newline (the caller writes one);
each ``render_*_json`` returns a document for :func:`render_json`. Text that came from a user
(a bad lookup line, a file's bytes) goes through :func:`readable` before it is shown.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resolver.errors import AztagsError
from resolver.lookup import InvalidAddressError, LookupMatch, QueryResult
from resolver.models import IngestResult, SnapshotInfo, TagSummary, TagVersion
from resolver.prefixes import count
from resolver.prefixes import family as prefix_family

if TYPE_CHECKING:  # answers only: rendering needs none of these modules at run time
    from resolver.profiles import Profile
    from resolver.query import BatchAnswer, CidrAnswer, DiffAnswer, LookupAnswer
    from resolver.refresh import RefreshResult
    from resolver.staleness import CloudStatus

Details = Mapping[
    str, TagSummary
]  # tag name -> its region, systemService... (TagStore.tag_details)

# -- shared pieces ---------------------------------------------------------------------------------


def render_json(doc: Any) -> str:
    """One JSON document as every command prints it (dates as ISO text)."""
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


def render_warnings(warnings: Iterable[str]) -> list[str]:
    """stderr lines for an answer's warnings."""
    return [f"aztags: warning: {w}" for w in warnings]


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


def render_unchanged_text(cloud: str, source: str) -> str:
    return f"{cloud}: unchanged since the last fetch ({source})"


def render_import_json(path: Path, outcome: IngestResult | AztagsError) -> dict[str, Any]:
    """One imported file: its error or what storing it did."""
    if isinstance(outcome, AztagsError):
        return {"file": str(path), "error": str(outcome)}
    return {"file": str(path), **render_ingest_json(outcome)}


# -- status / snapshots ----------------------------------------------------------------------------


def render_status_json(statuses: Sequence[CloudStatus], max_age_days: int) -> dict[str, Any]:
    return {
        "max_age_days": max_age_days,
        "clouds": [
            {
                "cloud": s.cloud.name,
                "change_number": s.snapshot.change_number,
                "file_date": s.snapshot.file_date,
                "fetched_at": s.snapshot.fetched_at.isoformat(),
                "age_days": s.staleness.age_days,
                "tags": s.snapshot.tag_count,
                "prefixes": s.snapshot.prefix_count,
                "stale": s.staleness.stale,
                "frozen": s.staleness.frozen,
            }
            for s in statuses
        ],
    }


def render_status_text(statuses: Sequence[CloudStatus]) -> str:
    headers = ["cloud", "changeNumber", "file date", "fetched (UTC)", "age", "tags", "prefixes"]
    rows = [
        [
            s.cloud.name,
            s.snapshot.change_number,
            s.snapshot.file_date or "-",
            s.snapshot.fetched_at.strftime("%Y-%m-%d %H:%M"),
            f"{s.staleness.age_days}d",
            s.snapshot.tag_count,
            s.snapshot.prefix_count,
            s.staleness.state,
        ]
        for s in statuses
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
    return {
        "snapshot": render_snapshot_json(answer.snapshot),
        "tags": [t.name for t in answer.tags],
        "aggregated": aggregated,
        "prefixes": list(answer.prefixes),
    }


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


def _other_line(text: str, result: BatchAnswer, details: Details, *, as_json: bool) -> str:
    """A batch line off the fast path: blank, a CIDR's answer, or a bad line's error."""
    if result is None:
        return "\n"
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
    for d in answer.tags:
        lines.append(f"\n{d.name} ({d.status})")
        for field_name, old, new in d.properties:
            lines.append(f"  * {field_name}: {_shown(old)} -> {_shown(new)}")
        for r in d.recut:
            lines.append(f"  ~ {' '.join(r.removed)} re-cut as {' '.join(r.added)}")
        for p in d.added:
            usable = answer.usable_by_prefix.get((d.name, p), answer.usable_from)
            lines.append(f"  + {p}" + (f"  (usable from {usable})" if usable else ""))
        for p in d.removed:
            lines.append(f"  - {p}")
    lines.append(
        f"\n{s.tags_added} tags added, {s.tags_removed} removed, {s.tags_changed} changed; "
        f"summed per tag: IPv4 addresses +{s.ipv4_addresses_added} "
        f"-{s.ipv4_addresses_removed}; IPv6 /64s +{s.ipv6_64s_added} -{s.ipv6_64s_removed}"
    )
    return "\n".join(lines)


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


def render_profiles_json(profiles: Iterable[Profile]) -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "description": p.description,
            "origin": p.origin,
            "rules": len(p.rules),
            "fqdns": len(p.fqdns),
        }
        for p in profiles
    ]


def render_profiles_text(profiles: Iterable[Profile]) -> str:
    return render_table(
        ["name", "rules", "fqdns", "description"],
        [[p.name, len(p.rules), len(p.fqdns), p.description] for p in profiles],
    )


def render_profile_json(answer: CidrAnswer) -> dict[str, Any]:
    """A profile resolved in one snapshot (``TagStore.cidrs(profile=...)``)."""
    resolved = answer.profile
    if resolved is None:
        raise ValueError("render_profile_json needs the answer of a profile query")
    return {
        "profile": resolved.profile.name,
        "cloud": resolved.cloud,
        "region": resolved.region,
        "snapshot": render_snapshot_json(answer.snapshot),
        "rules": [
            {
                "direction": r.rule.direction,
                "ports": r.rule.ports,
                "protocol": r.rule.protocol,
                "template": r.rule.tag,
                "source_name": r.rule.source_name,
                "purpose": r.rule.purpose,
                "tag": r.tag.name if r.tag else None,
                "ipv4": r.tag.ipv4_count if r.tag else 0,
                "ipv6": r.tag.ipv6_count if r.tag else 0,
                "skipped": r.skipped_reason,
                "warnings": list(r.warnings),
            }
            for r in resolved.rules
        ],
        "fqdns": [
            {"host": f.host, "ports": f.ports, "protocol": f.protocol, "purpose": f.purpose}
            for f in resolved.fqdns
        ],
        "warnings": list(resolved.warnings),
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
    )
    rows = []
    for r in resolved.rules:
        if r.tag:
            tag = r.tag.name
        else:
            tag = "skipped: " + r.skipped_reason if r.skipped_reason else "(missing)"
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
                [[f.host, f.protocol, f.ports, f.purpose] for f in resolved.fqdns],
            )
        )
    return "\n".join(parts)
