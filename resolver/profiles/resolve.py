"""Resolving a profile for a cloud and a region: each rule's tag template -> a real tag."""

from __future__ import annotations

from collections.abc import Mapping

from resolver.clouds import get_cloud
from resolver.errors import NotFoundError
from resolver.models import TagInfo
from resolver.profiles.model import Profile, ResolvedProfile, ResolvedRule, Rule
from resolver.regions import RegionIndex


def _kind(rule: Rule) -> str:
    return "optional rule " if rule.optional else "rule "


# --- resolving ----------------------------------------------------------------------------------


def null_features_warning(tag: TagInfo) -> str:
    return (
        f"{tag.name} has networkFeatures null: it is in the file only, "
        "not usable as an NSG/Azure Firewall tag"
    )


def resolve_profile(
    profile: Profile,
    *,
    cloud: str,
    region_text: str | None,
    tags: Mapping[str, TagInfo],
    regions: RegionIndex,
) -> ResolvedProfile:
    """Map each rule of ``profile`` to a tag of one cloud's file.

    ``cloud`` is a cloud key or file name (``china``, ``China``). ``tags`` maps exact tag names to
    tags and ``regions`` is built from the same file. A region is needed when a rule that applies in
    this cloud uses ``{region}``; it is resolved with ``regions.resolve`` (so "West Europe",
    ``WestEurope`` and ``westeurope`` all work). Rules for clouds in their ``skip_clouds`` are kept
    with ``skipped_reason``; a tag missing from the file is kept with ``tag=None`` and a warning;
    a tag whose ``networkFeatures`` is null is kept with a warning. Raises NotFoundError for an
    unknown cloud or region, or when a region is needed and not given.
    """
    cloud_name = get_cloud(cloud).name
    applies = [r for r in profile.rules if r.applies_to(cloud_name)]
    regional = [r for r in applies if r.is_regional]
    profile_warnings: list[str] = []

    code = ""
    if region_text is not None and region_text.strip():
        code = regions.resolve(region_text)
        if not regional:
            profile_warnings.append(
                f"profile {profile.name} has no per-region rule in {cloud_name}; "
                f"region {code} is not used"
            )
    elif regional:
        example = regions.codes()[0] if regions.codes() else "westeurope"
        raise NotFoundError(
            f"profile {profile.name} needs --region: "
            f"{', '.join(dict.fromkeys(r.tag for r in regional))} name the tag of one region "
            f"(for example --region {example})."
        )

    by_fold = {name.casefold(): tag for name, tag in tags.items()}
    resolved: list[ResolvedRule] = []
    for rule in profile.rules:
        if not rule.applies_to(cloud_name):
            resolved.append(ResolvedRule(rule, None, f"not needed in {cloud_name}", ()))
            continue
        warnings: list[str] = []
        tag: TagInfo | None
        if rule.is_regional:
            tag = regions.regional_tag(rule.base, code, as_written=region_text)
            if tag is None:
                warnings.append(
                    f"{rule.tag}: the {cloud_name} file has no {rule.base} tag for region {code}; "
                    f"this {_kind(rule)}resolves to no prefixes"
                )
        else:
            tag = by_fold.get(rule.tag.casefold())
            if tag is None:
                warnings.append(
                    f"{rule.tag} is not in the {cloud_name} file; "
                    f"this {_kind(rule)}resolves to no prefixes"
                )
        if tag is not None and tag.network_features is None:
            warnings.append(null_features_warning(tag))
        resolved.append(ResolvedRule(rule, tag, None, tuple(warnings)))

    all_warnings = [w for r in resolved for w in r.warnings] + profile_warnings
    return ResolvedProfile(
        profile=profile,
        cloud=cloud_name,
        region=code,
        rules=tuple(resolved),
        fqdns=profile.fqdns,
        warnings=tuple(dict.fromkeys(all_warnings)),
    )
