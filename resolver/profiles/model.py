"""A requirement profile's values: rules, host names, and a profile resolved for a cloud/region."""

from __future__ import annotations

from dataclasses import dataclass

from resolver.models import TagInfo

REGION_PLACEHOLDER = "{region}"
DIRECTIONS = ("inbound", "outbound")
PROTOCOLS = ("tcp", "udp", "any")


@dataclass(frozen=True, slots=True)
class Rule:
    """One requirement: traffic in ``direction`` on ``ports`` to or from ``tag`` (a template)."""

    direction: str  # "inbound" | "outbound"
    ports: str  # "*", "443", "29876-29877", "80,443"
    protocol: str  # "tcp" | "udp" | "any"
    tag: str  # "AzureMachineLearning" or "Storage.{region}"
    purpose: str
    skip_clouds: frozenset[str] = frozenset()  # cloud names as in the file ("China")
    source_name: str | None = None  # the name as the source doc wrote it ("Storage.region")

    @property
    def is_regional(self) -> bool:
        """True when the tag is a ``<Base>.{region}`` template."""
        return self.tag.endswith("." + REGION_PLACEHOLDER)

    @property
    def base(self) -> str:
        """The service part of a regional template (``Storage``), else the tag itself."""
        return self.tag[: -len(REGION_PLACEHOLDER) - 1] if self.is_regional else self.tag


@dataclass(frozen=True, slots=True)
class FqdnRule:
    """A host name (pattern) to allow, for firewalls and proxies with FQDN objects."""

    host: str
    purpose: str
    ports: str = "443"
    protocol: str = "tcp"


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str
    source: str  # URL or text
    rules: tuple[Rule, ...]
    fqdns: tuple[FqdnRule, ...]
    origin: str = ""  # file the profile was read from, or "<builtin>/azureml.toml"


@dataclass(frozen=True, slots=True)
class ResolvedRule:
    rule: Rule
    tag: TagInfo | None  # None when skipped or when the tag is missing in this cloud/region
    skipped_reason: str | None  # "not needed in China"
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ResolvedProfile:
    profile: Profile
    cloud: str  # the cloud's file name: "Public", "China", ...
    region: str  # ARM region code, "" when none was given
    rules: tuple[ResolvedRule, ...]
    fqdns: tuple[FqdnRule, ...]
    warnings: tuple[str, ...]  # every rule's warnings and the profile's own, without repeats
