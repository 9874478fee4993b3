"""``aztags profile check FILE``: a user's profile against one stored snapshot, not installed.

The file is parsed first (unknown keys, bad ports... are a :class:`ProfileError`, every problem at
once). Then each rule that applies in the cloud is checked against the snapshot's tags: a tag the
file lacks is an error (a warning when the rule is optional or gives ``missing_reason``) with the
closest tag names as suggestions; a ``Base.{region}`` template needs some regional ``Base.*`` tag,
and with a region, that region's. The region itself is checked when given.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from resolver.clouds import get_cloud
from resolver.errors import NotFoundError, ProfileError
from resolver.models import TagInfo
from resolver.profiles.load import parse_profile
from resolver.profiles.model import Profile
from resolver.profiles.rules import LineMap, is_builtin
from resolver.regions import RegionIndex

if TYPE_CHECKING:
    from resolver.models import SnapshotInfo
    from resolver.query import TagStore


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing ``profile check`` found: ``error`` (exit 3), ``warning`` or ``note``."""

    level: str  # "error" | "warning" | "note"
    where: str  # "p.toml:12 [[rule]] #2", or the file alone
    message: str
    suggestions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProfileCheck:
    """What ``aztags profile check`` found in one profile for one cloud and region."""

    profile: Profile
    cloud: str  # the cloud's file name
    region: str  # the region code checked, "" when none was given (or it is unknown)
    snapshot: SnapshotInfo | None
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.level == "error")


def _close(name: str, candidates: list[str]) -> tuple[str, ...]:
    by_fold = {c.casefold(): c for c in candidates}
    found = difflib.get_close_matches(name.casefold(), list(by_fold), n=3, cutoff=0.6)
    return tuple(by_fold[f] for f in found)


def check_profile(
    profile: Profile,
    *,
    cloud: str,
    tags: Mapping[str, TagInfo],
    regions: RegionIndex,
    region_text: str | None = None,
    lines: LineMap | None = None,
) -> tuple[str, tuple[Finding, ...]]:
    """(the region code checked or "", the findings) for ``profile`` against one cloud's tags."""
    cloud_name = get_cloud(cloud).name
    findings: list[Finding] = []
    origin = profile.origin

    def where(index: int, key: str | None = None) -> str:
        line = lines.item("rule", index, key) if lines is not None else None
        at = f"{origin}:{line}" if line else origin
        return f"{at} [[rule]] #{index + 1}"

    code = ""
    if region_text is not None and region_text.strip():
        try:
            code = regions.resolve(region_text)
        except NotFoundError as error:
            findings.append(Finding("error", origin, str(error)))  # names its close matches
    if is_builtin(profile.name) and not profile.origin.startswith("<builtin>"):
        findings.append(
            Finding(
                "note",
                origin,
                f"profile name {profile.name!r} is a built-in profile's: installed, this file "
                "replaces it",
            )
        )
    if profile.clouds and cloud_name not in profile.clouds:
        findings.append(
            Finding(
                "warning",
                origin,
                f"the profile says it covers {', '.join(profile.clouds)}, not {cloud_name}",
            )
        )

    names = sorted(tags)
    by_fold = {n.casefold(): n for n in names}
    bases = sorted({n.split(".", 1)[0] for n in names if "." in n and tags[n].region})
    regional_needed = False
    for index, rule in enumerate(profile.rules):
        if not rule.applies_to(cloud_name) or rule.special is not None:
            continue
        level = "warning" if rule.missing_allowed else "error"
        why = f" ({rule.missing_reason})" if rule.missing_reason else ""
        if rule.is_regional:
            regional_needed = True
            has_base = any(n.casefold().startswith(rule.base.casefold() + ".") for n in names)
            if not has_base:
                findings.append(
                    Finding(
                        level,
                        where(index, "tag"),
                        f"tag {rule.tag!r}: the {cloud_name} file has no regional "
                        f"{rule.base}.* tag{why}",
                        tuple(f"{b}.{{region}}" for b in _close(rule.base, bases)),
                    )
                )
            elif code and regions.regional_tag(rule.base, code) is None:
                findings.append(
                    Finding(
                        level,
                        where(index, "tag"),
                        f"tag {rule.tag!r}: the {cloud_name} file has no {rule.base} tag for "
                        f"region {code}{why}",
                    )
                )
        elif rule.tag.casefold() not in by_fold:
            findings.append(
                Finding(
                    level,
                    where(index, "tag"),
                    f"tag {rule.tag!r} is not in the {cloud_name} file{why}",
                    _close(rule.tag, names),
                )
            )
        elif tags[by_fold[rule.tag.casefold()]].network_features is None:
            findings.append(
                Finding(
                    "warning",
                    where(index, "tag"),
                    f"tag {by_fold[rule.tag.casefold()]} has networkFeatures null: an address "
                    "list only, not usable as an NSG or Azure Firewall tag",
                )
            )
    if regional_needed and not (region_text and region_text.strip()):
        findings.append(
            Finding(
                "note",
                origin,
                "rules with {region} were checked for some region of the file; give --region "
                "to check the one you deploy to",
            )
        )
    return code, tuple(findings)


def check_profile_file(
    path: Path, store: TagStore, *, region: str | None = None, at: str | None = None
) -> ProfileCheck:
    """Read and check the profile file ``path`` against ``store``'s snapshot (``at``, default
    the current one), without installing it. Raises ProfileError for a file that does not parse
    (every problem with its line), ConfigError when it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ProfileError(str(path), [f"{path}: cannot read: {reason}"]) from None
    profile = parse_profile(text, str(path), default_name=Path(path).stem)
    snapshot = store.snapshot(at)
    summaries = store.summaries(snapshot)
    code, findings = check_profile(
        profile,
        cloud=store.cloud.name,
        tags={t.name: t for t in summaries},
        regions=store.regions(snapshot),
        region_text=region,
        lines=LineMap(text),
    )
    return ProfileCheck(profile, store.cloud.name, code, snapshot, findings)
