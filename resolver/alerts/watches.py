"""``[[watch]]`` entries: which tags of which cloud a team follows, and where its alerts go.

A watch selects tags in exactly one way: ``tags = [...]`` (exact names), ``profile`` (with
``region`` when the profile has per-region rules: the tags its rules resolve to), ``service``
(with ``region`` or ``regions``, else every tag of the service), or ``all = true``. ``family``
keeps IPv4 or IPv6 prefixes only; changes of fewer than ``min_change`` prefixes are recorded
and not sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from resolver.clouds import get_cloud
from resolver.errors import ConfigError
from resolver.models import TagInfo
from resolver.prefixes import family
from resolver.regions import RegionIndex, normalise, service_names

SELECTORS = ("tags", "profile", "service", "all")


@dataclass(frozen=True, slots=True)
class Watch:
    """A ``[[watch]]`` of the config file: which tags of a cloud to alert on, and where to send."""

    name: str
    cloud: str  # cloud key: public | usgov | china | germany
    channels: tuple[str, ...]
    tags: tuple[str, ...] = ()
    profile: str | None = None
    service: str | None = None
    regions: tuple[str, ...] = ()  # as written; resolved against each snapshot
    all: bool = False
    family: str = "any"  # any | ipv4 | ipv6
    min_change: int = 1

    def keeps(self, prefix: str) -> bool:
        """Whether a prefix of this family is watched."""
        if self.family == "any":
            return True
        return family(prefix) == (4 if self.family == "ipv4" else 6)


def watches_from_config(entries: Sequence[Mapping[str, object]], where: str) -> tuple[Watch, ...]:
    """The checked ``[[watch]]`` entries (their keys and types are checked by resolver.config)
    as Watch objects; a watch that selects nothing, or in two ways, is a ConfigError."""
    problems = []
    found = []
    for n, entry in enumerate(entries, 1):
        name = str(entry.get("name", f"#{n}"))
        label = f'{where}, [[watch]] "{name}"'
        chosen = [key for key in SELECTORS if entry.get(key) not in (None, False, [])]
        if len(chosen) != 1:
            what = "none" if not chosen else " and ".join(chosen)
            problems.append(
                f"{label} must select tags in exactly one way (tags = [...], profile = NAME, "
                f"service = NAME or all = true); it has {what}."
            )
            continue
        region = entry.get("region")
        regions = [*([region] if isinstance(region, str) else []), *_strings(entry.get("regions"))]
        if regions and chosen[0] not in ("profile", "service"):
            problems.append(f"{label}: region(s) narrow a profile or a service, not {chosen[0]}.")
            continue
        if chosen[0] == "profile" and len(regions) > 1:
            problems.append(f"{label}: a profile watch takes one region (region = NAME).")
            continue
        found.append(
            Watch(
                name=name,
                cloud=get_cloud(str(entry.get("cloud", "public"))).key,
                channels=tuple(_strings(entry.get("channels"))),
                tags=tuple(_strings(entry.get("tags"))),
                profile=_text(entry.get("profile")),
                service=_text(entry.get("service")),
                regions=tuple(regions),
                all=bool(entry.get("all", False)),
                family=str(entry.get("family", "any")),
                min_change=int(str(entry.get("min_change", 1))),
            )
        )
    if problems:
        raise ConfigError(problems[0] if len(problems) == 1 else "\n  ".join(problems))
    return tuple(found)


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


# -- selecting -------------------------------------------------------------------------------------


class SnapshotView:
    """One snapshot's tags by name (region, service), with its region index, the service names
    of a tag and the tags each (profile, region) resolves to, each computed once however many
    watches ask."""

    def __init__(
        self,
        load: Callable[[], Mapping[str, TagInfo]],
        resolve_profile_tags: Callable[[Watch, SnapshotView], set[str]],
    ):
        self._load = load
        self._resolve = resolve_profile_tags
        self._tags: Mapping[str, TagInfo] | None = None
        self._regions: RegionIndex | None = None
        self._profiles: dict[tuple[str, str | None], set[str]] = {}
        self._services: dict[str, set[str]] = {}  # tag name -> service_names

    @property
    def tags(self) -> Mapping[str, TagInfo]:
        if self._tags is None:
            self._tags = self._load()
        return self._tags

    @property
    def regions(self) -> RegionIndex:
        if self._regions is None:
            self._regions = RegionIndex.from_tags(self.tags.values())
        return self._regions

    def service_names(self, tag: TagInfo) -> set[str]:
        """:func:`resolver.regions.service_names` of one of the view's tags, worked out once."""
        found = self._services.get(tag.name)
        if found is None:
            found = self._services[tag.name] = service_names(tag)
        return found

    def profile_tags(self, watch: Watch) -> set[str]:
        assert watch.profile is not None
        key = (watch.profile.casefold(), watch.regions[0] if watch.regions else None)
        if key not in self._profiles:
            self._profiles[key] = self._resolve(watch, self)
        return self._profiles[key]


def watched_names(watch: Watch, names: Iterable[str], view: SnapshotView) -> set[str]:
    """Which of ``names`` (tag names of one snapshot, ``view``) the watch follows. The view's
    tags are only read for profile and service watches."""
    if watch.all:
        return set(names)
    if watch.tags:
        wanted = {t.casefold() for t in watch.tags}
        return {n for n in names if n.casefold() in wanted}
    names = list(names)
    if not names:
        return set()
    if watch.profile:
        return view.profile_tags(watch) & set(names)
    assert watch.service is not None  # watches_from_config: exactly one selector
    service = watch.service.casefold()
    codes = _region_codes(watch.regions, view)
    tags = view.tags
    return {
        n
        for n in names
        if (tag := tags.get(n)) is not None
        and service in view.service_names(tag)
        and (not codes or tag.region in codes)
    }


def _region_codes(regions: Sequence[str], view: SnapshotView) -> set[str]:
    """ARM codes for regions as written ("West Europe", WestEurope, westeurope); a region the
    snapshot does not know matches no tag (a ConfigError would stop every other watch)."""
    codes = set()
    for text in regions:
        try:
            codes.add(view.regions.resolve(text))
        except LookupError:
            codes.add(normalise(text))
    return codes
