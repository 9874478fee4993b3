"""From a request to a rendered export: query the store, shape the objects, compute the delta,
apply the checks every format shares, render."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from resolver.errors import NotFoundError, UsageError
from resolver.exports.model import (
    ExportInput,
    ExportObject,
    ExportOptions,
    Format,
    Header,
    ObjectDelta,
    RuleInfo,
    local_networks,
)
from resolver.prefixes import family as prefix_family
from resolver.prefixes import sort_prefixes

if TYPE_CHECKING:
    from resolver.models import SnapshotInfo
    from resolver.query import CidrAnswer, TagStore


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What ``aztags export`` was asked (the flags, by name)."""

    format: str
    names: tuple[str, ...] = ()
    profile: str | None = None
    region: str | None = None
    direction: str | None = None
    protocol: str | None = None
    port: int | None = None
    family: int | None = None  # 4 or 6; None: both
    aggregate: bool = False
    at: str | None = None
    since: str | None = None  # delta from this snapshot (a --at reference)
    base: Mapping[str, Sequence[str]] | None = None  # delta from these objects (a state file)
    base_label: str = ""  # where ``base`` came from, for the header ("state file x.json")
    options: ExportOptions = ExportOptions()
    profile_dirs: tuple[Path, ...] = ()
    allow_missing: bool = False
    version: str = ""


@dataclass(frozen=True, slots=True)
class ExportResult:
    """A finished export: its text, what it was rendered from and the snapshot exported."""

    text: str
    input: ExportInput
    format: Format
    snapshot: SnapshotInfo  # the snapshot exported
    warnings: tuple[str, ...] = field(default=())


def get_format(name: str) -> Format:
    """The format called ``name``; UsageError with close matches otherwise."""
    from resolver.exports.formats import formats

    known = formats()
    found = known.get(name.strip().lower())
    if found is None:
        close = difflib.get_close_matches(name.lower(), list(known), n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise UsageError(
            f"Unknown export format {name!r}.{hint} 'aztags export --list-formats' lists them."
        )
    return found


def export(store: TagStore, request: ExportRequest) -> ExportResult:
    """Render ``request`` from ``store`` (see the module doc of resolver.exports)."""
    fmt = get_format(request.format)
    _check(request, fmt)
    request = replace(
        request, options=replace(request.options, local=local_networks(request.options.local))
    )
    answer = _query(store, request, request.at)
    warnings = list(answer.warnings)
    if answer.profile is not None and answer.profile.missing and not request.allow_missing:
        names = "; ".join(r.rule.tag for r in answer.profile.missing)
        raise NotFoundError(
            f"{len(answer.profile.missing)} rule(s) of profile {answer.profile.profile.name} "
            f"found no tag in the {answer.profile.cloud} file: {names}; the export would be "
            "incomplete. Pass --allow-missing if that is expected."
        )
    objects = _objects(answer, request)
    if request.options.rules:
        empty = [o.name for o in objects if not o.prefixes]
        if empty:
            local = (
                " (VirtualNetwork is your own address space: give it with --local CIDR)"
                if any(o.endswith("-VirtualNetwork") for o in empty)
                else ""
            )
            warnings.append(
                f"{len(empty)} rule(s) have no prefixes "
                f"{'in this family ' if request.family else ''}and are left out: "
                + ", ".join(empty)
                + local
            )
        objects = [o for o in objects if o.prefixes]
    fqdns = _fqdns(answer, request)
    snapshot = answer.snapshot
    header = Header(
        cloud=store.cloud.name,
        change_number=snapshot.change_number,
        file_date=snapshot.file_date,
        query=_describe(request),
        version=request.version,
    )
    delta = None
    if request.since is not None or request.base is not None:
        if request.since is not None:
            base_answer = _query(store, request, request.since)
            base: Mapping[str, Sequence[str]] = {
                o.name: o.prefixes for o in _objects(base_answer, request)
            }
            s = base_answer.snapshot
            label = f"changeNumber {s.change_number}" + (
                f" ({s.file_date.isoformat()})" if s.file_date else ""
            )
        else:
            base, label = request.base or {}, request.base_label
        delta = _delta(objects, base)
        header = replace(header, since=label)
    options = replace(request.options, family=request.family)
    inp = ExportInput(header, tuple(objects), options, fqdns, delta)
    _check_empty(inp, fmt, request)
    if delta is not None and fmt.delta is None:
        warnings.append(
            f"{fmt.name} has no incremental commands: writing the full list, which replaces "
            "the device's list as a whole."
        )
    if request.options.rules:
        assert fmt.rules is not None  # _check
        output = fmt.rules(inp)
    elif delta is not None and fmt.delta is not None:
        output = fmt.delta(inp)
    else:
        output = fmt.render(inp)
    return ExportResult(
        output.text, inp, fmt, snapshot, tuple(dict.fromkeys([*warnings, *output.warnings]))
    )


def _check(request: ExportRequest, fmt: Format) -> None:
    if request.since is not None and request.base is not None:
        raise UsageError("--since and --state both say where a delta starts; give one.")
    if bool(request.names) == bool(request.profile):
        raise UsageError(
            "Name the tags to export (aztags export Storage.WestEurope --format F) or a profile "
            "(--profile azureml --region westus), not both and not neither."
        )
    if request.options.rules:
        if not request.profile:
            raise UsageError("--rules writes a profile's rules; add --profile P --region R.")
        if fmt.rules is None:
            from resolver.exports.formats import formats

            with_rules = sorted({f.name for f in formats().values() if f.rules is not None})
            raise UsageError(
                f"Format {fmt.name} has no rule syntax; --rules works with: "
                f"{', '.join(with_rules)}."
            )
        if request.since is not None or request.base is not None:
            raise UsageError("--rules writes a whole rule set; it takes no --since or --state.")
    if fmt.hosts and not request.profile:
        raise UsageError(
            f"Format {fmt.name} lists a profile's host names; add --profile P (tags have none)."
        )


def _query(store: TagStore, request: ExportRequest, at: str | None) -> CidrAnswer:
    return store.cidrs(
        request.names,
        region=request.region,
        profile=request.profile,
        family=request.family,
        aggregate=request.aggregate,
        at=at,
        profile_dirs=request.profile_dirs,
        direction=request.direction,
        protocol=request.protocol,
        port=request.port,
    )


def _base_name(request: ExportRequest) -> str:
    if request.options.name:
        return request.options.name
    if request.profile:
        return "-".join(p for p in (request.profile, request.region or "") if p)
    if len(request.names) == 1:
        return request.names[0]
    return "aztags-" + "-".join(request.names)


def _objects(answer: CidrAnswer, request: ExportRequest) -> list[ExportObject]:
    base = _base_name(request)
    if not request.options.rules:
        return [ExportObject(base, answer.prefixes, tuple(t.name for t in answer.tags))]
    assert answer.profile is not None
    profile = answer.profile.with_local(request.options.local)
    objects = []
    for n, (resolved, prefixes) in enumerate(
        zip(profile.rules, answer.rule_prefixes, strict=True), 1
    ):
        rule = resolved.rule
        special = resolved.special
        if special is not None:
            # VirtualNetwork (the user's --local), AzureLoadBalancer (a constant), Internet
            # (any): their own addresses; NSGs know all three by name.
            kept = tuple(p for p in special.addresses if request.family in (None, prefix_family(p)))
            info = RuleInfo(
                rule.direction, rule.protocol, rule.port_ranges(), special.name, True, rule.purpose
            )
            objects.append(ExportObject(f"{base}-{n:02d}-{special.name}", kept, (), info))
            continue
        tag = resolved.tag
        if tag is None:
            continue
        features = tag.network_features or frozenset()
        info = RuleInfo(
            rule.direction,
            rule.protocol,
            rule.port_ranges(),
            tag.name,
            "NSG" in features,
            rule.purpose,
        )
        objects.append(ExportObject(f"{base}-{n:02d}-{tag.name}", prefixes, (tag.name,), info))
    return objects


def _fqdns(answer: CidrAnswer, request: ExportRequest) -> tuple[str, ...]:
    if answer.profile is None:
        return ()
    hosts = [
        f.host
        for f in answer.profile.fqdns
        if f.matches(request.direction, request.protocol, request.port)
    ]
    return tuple(dict.fromkeys(hosts))


def _delta(
    objects: Iterable[ExportObject], base: Mapping[str, Sequence[str]]
) -> tuple[ObjectDelta, ...]:
    found = []
    current = {o.name: o for o in objects}
    for name in [*current, *(n for n in base if n not in current)]:
        now = set(current[name].prefixes) if name in current else set()
        before = set(base.get(name, ()))
        found.append(ObjectDelta(name, sort_prefixes(now - before), sort_prefixes(before - now)))
    return tuple(found)


def _check_empty(inp: ExportInput, fmt: Format, request: ExportRequest) -> None:
    if fmt.empty_ok:
        return
    if fmt.hosts:
        if not inp.fqdns:
            raise NotFoundError(
                f"Profile {request.profile} lists no host names"
                f"{' for this traffic' if request.direction or request.port else ''}; "
                f"a {fmt.name} export would be empty."
            )
        return
    if not any(o.prefixes for o in inp.objects):
        family = f"IPv{request.family} " if request.family else ""
        raise NotFoundError(
            f"The export has no {family}prefixes ({inp.header.query}); an empty {fmt.name} list "
            "would allow everything or match nothing without saying so, so nothing was written."
        )


def _describe(request: ExportRequest) -> str:
    if request.profile:
        parts = [f"profile {request.profile}"]
        if request.region:
            parts.append(f"region {request.region}")
        for key in ("direction", "protocol"):
            if value := getattr(request, key):
                parts.append(f"{key} {value}")
        if request.port is not None:
            parts.append(f"port {request.port}")
    else:
        parts = [f"tags {', '.join(request.names)}"]
    if request.family:
        parts.append(f"IPv{request.family} only")
    if request.aggregate:
        parts.append("aggregated")
    return "; ".join(parts)
