"""Resolving a profile for a cloud and a region: each rule's tag template -> a real tag."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from resolver.clouds import get_cloud
from resolver.errors import NotFoundError
from resolver.models import TagInfo
from resolver.profiles.rules import REGION_PLACEHOLDER, Rule

if TYPE_CHECKING:  # built where used: profile_tag_names (a profile watch) needs none of them
    from collections.abc import Sequence

    from resolver.profiles.model import FqdnRule, Profile
    from resolver.profiles.resolved import ResolvedProfile
    from resolver.regions import RegionIndex


def _kind(rule: Rule) -> str:
    return "optional rule " if rule.optional else "rule "


def _why(rule: Rule) -> str:
    return f" ({rule.missing_reason})" if rule.missing_reason else ""


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
    local: tuple[str, ...] = (),
) -> ResolvedProfile:
    """Map each rule of ``profile`` to a tag of one cloud's file.

    ``cloud`` is a cloud key or file name (``china``, ``China``). ``tags`` maps exact tag names to
    tags and ``regions`` is built from the same file. A region is needed when a rule that applies in
    this cloud uses ``{region}``; it is resolved with ``regions.resolve`` (so "West Europe",
    ``WestEurope`` and ``westeurope`` all work). Rules for clouds in their ``skip_clouds`` are kept
    with ``skipped_reason``; a tag missing from the file is kept with ``tag=None`` and a warning;
    a tag whose ``networkFeatures`` is null is kept with a warning (with the rule's
    ``missing_reason`` when it gives one). ``VirtualNetwork``, ``AzureLoadBalancer`` and
    ``Internet`` are not looked up: their rules carry a :class:`Special` (``VirtualNetwork``'s
    addresses are ``local``, the user's ``--local``). Host names that apply in this cloud get
    ``{region}`` replaced by the region code; without a region they stay as written, with a
    warning. Raises NotFoundError for an unknown cloud or region, or when a tag rule needs a
    region and none is given.
    """
    from resolver.profiles.resolved import ResolvedProfile, ResolvedRule, Special

    cloud_name = get_cloud(cloud).name
    applies = [r for r in profile.rules if r.applies_to(cloud_name)]
    regional = [r for r in applies if r.is_regional]
    hosts = [f for f in profile.fqdns if f.applies_to(cloud_name)]
    regional_hosts = [f for f in hosts if f.is_regional]
    profile_warnings: list[str] = []
    if profile.clouds and cloud_name not in profile.clouds:
        profile_warnings.append(
            f"profile {profile.name}'s source covers {', '.join(profile.clouds)}, not "
            f"{cloud_name}: its rules may not be what {cloud_name} needs"
        )

    code = _region_code(profile.name, regional, region_text, regions)
    if code and not regional and not regional_hosts:
        profile_warnings.append(
            f"profile {profile.name} has no per-region rule in {cloud_name}; "
            f"region {code} is not used"
        )
    elif not code and regional_hosts:
        profile_warnings.append(
            f"profile {profile.name}: host names "
            f"{', '.join(dict.fromkeys(f.host for f in regional_hosts))} name the region; "
            f"shown with {REGION_PLACEHOLDER} until --region is given"
        )

    by_fold = {name.casefold(): tag for name, tag in tags.items()}
    resolved: list[ResolvedRule] = []
    for rule in profile.rules:
        if not rule.applies_to(cloud_name):
            resolved.append(ResolvedRule(rule, None, f"not needed in {cloud_name}", ()))
            continue
        if rule.special is not None:
            special = Special.of(rule.special, tuple(local))
            resolved.append(ResolvedRule(rule, None, None, (), special))
            continue
        warnings: list[str] = []
        tag = _rule_tag(rule, code, region_text, regions, by_fold)
        if tag is None and rule.is_regional:
            warnings.append(
                f"{rule.tag}: the {cloud_name} file has no {rule.base} tag for region {code}; "
                f"this {_kind(rule)}resolves to no prefixes{_why(rule)}"
            )
        elif tag is None:
            warnings.append(
                f"{rule.tag} is not in the {cloud_name} file; "
                f"this {_kind(rule)}resolves to no prefixes{_why(rule)}"
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
        fqdns=_hosts(hosts, code),
        warnings=tuple(dict.fromkeys(all_warnings)),
    )


def profile_tag_names(
    name: str,
    rules: Sequence[Rule],
    *,
    cloud: str,
    region_text: str | None,
    tags: Mapping[str, TagInfo],
    regions: RegionIndex,
) -> set[str]:
    """The names of the tags :func:`resolve_profile` maps the rules of profile ``name`` to, given
    the same arguments (and raising the same errors), without building the resolved profile:
    what a profile watch follows (it reads only the rules: resolver.profiles.rules)."""
    cloud_name = get_cloud(cloud).name
    applies = [r for r in rules if r.applies_to(cloud_name)]
    code = _region_code(name, [r for r in applies if r.is_regional], region_text, regions)
    by_fold = {tag_name.casefold(): tag for tag_name, tag in tags.items()}
    found = (
        _rule_tag(rule, code, region_text, regions, by_fold)
        for rule in applies
        if rule.special is None
    )
    return {tag.name for tag in found if tag is not None}


def _region_code(
    profile: str, regional: list[Rule], region_text: str | None, regions: RegionIndex
) -> str:
    """The region code of ``region_text``; "" when none is given, which the rules in
    ``regional`` (``<Base>.{region}`` rules that apply) make a NotFoundError."""
    if region_text is not None and region_text.strip():
        return regions.resolve(region_text)
    if regional:
        example = regions.codes()[0] if regions.codes() else "westeurope"
        raise NotFoundError(
            f"profile {profile} needs --region: "
            f"{', '.join(dict.fromkeys(r.tag for r in regional))} name the tag of one region "
            f"(for example --region {example})."
        )
    return ""


def _rule_tag(
    rule: Rule,
    code: str,
    region_text: str | None,
    regions: RegionIndex,
    by_fold: Mapping[str, TagInfo],
) -> TagInfo | None:
    """The tag of the file a (non-special) rule names: its region's for a ``<Base>.{region}``
    rule, else the tag of that name in any case; None when the file has none."""
    if rule.is_regional:
        return regions.regional_tag(rule.base, code, as_written=region_text)
    return by_fold.get(rule.tag.casefold())


def _hosts(hosts: list[FqdnRule], code: str) -> tuple[FqdnRule, ...]:
    """The host names of this cloud, ``{region}`` replaced when a region is known."""
    return tuple(f.for_region(code) if code else f for f in hosts)
