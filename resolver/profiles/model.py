"""A requirement profile's values: rules, host names, and a profile resolved for a cloud/region."""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    optional: bool = False  # for a feature the user may not use: a missing tag is not an error
    clouds: frozenset[str] = frozenset()  # only in these clouds (file names); empty: every cloud

    def applies_to(self, cloud: str) -> bool:
        """True when the rule is needed in ``cloud`` (a file name: ``Public``, ``China``)."""
        return cloud not in self.skip_clouds and (not self.clouds or cloud in self.clouds)

    def port_ranges(self) -> tuple[tuple[int, int], ...]:
        """The ports as inclusive ranges; ``*`` is (1, 65535)."""
        if self.ports == "*":
            return ((1, 65535),)
        ranges = []
        for item in self.ports.split(","):
            low, _, high = item.partition("-")
            ranges.append((int(low), int(high or low)))
        return tuple(ranges)

    def matches(
        self, direction: str | None = None, protocol: str | None = None, port: int | None = None
    ) -> bool:
        """Whether traffic of this direction, protocol and port falls under the rule (None: any).

        Ports ``*`` match every port and a range the ports inside it; protocol ``any`` matches
        both tcp and udp.
        """
        if direction is not None and direction != self.direction:
            return False
        if protocol is not None and self.protocol not in ("any", protocol):
            return False
        return port is None or any(low <= port <= high for low, high in self.port_ranges())

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
    """A host name (pattern) to allow, for firewalls and proxies with FQDN objects (outbound)."""

    host: str
    purpose: str
    ports: str = "443"
    protocol: str = "tcp"

    def matches(
        self, direction: str | None = None, protocol: str | None = None, port: int | None = None
    ) -> bool:
        """Like :meth:`Rule.matches`; host names are always outbound."""
        return Rule("outbound", self.ports, self.protocol, self.host, "").matches(
            direction, protocol, port
        )


@dataclass(frozen=True, slots=True)
class RuleFilter:
    """Which rules of a profile a question is about: a direction, a protocol, a port (None: any)."""

    direction: str | None = None
    protocol: str | None = None
    port: int | None = None

    def __bool__(self) -> bool:
        return (self.direction, self.protocol, self.port) != (None, None, None)

    def describe(self) -> str:
        """``outbound, tcp, port 443``; "" when nothing is filtered."""
        parts = [self.direction or "", self.protocol or ""]
        parts.append(f"port {self.port}" if self.port is not None else "")
        return ", ".join(p for p in parts if p)


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

    @property
    def missing(self) -> bool:
        """The rule applies here, but its tag is not in the file (or not for this region)."""
        return self.tag is None and self.skipped_reason is None


@dataclass(frozen=True, slots=True)
class ResolvedProfile:
    profile: Profile
    cloud: str  # the cloud's file name: "Public", "China", ...
    region: str  # ARM region code, "" when none was given
    rules: tuple[ResolvedRule, ...]
    fqdns: tuple[FqdnRule, ...]
    warnings: tuple[str, ...]  # every rule's warnings and the profile's own, without repeats
    selected_by: RuleFilter = RuleFilter()  # the rules kept by narrowed(); empty: every rule

    @property
    def missing(self) -> tuple[ResolvedRule, ...]:
        """Rules whose tag is missing and that do not say they may be (``optional``)."""
        return tuple(r for r in self.rules if r.missing and not r.rule.optional)

    def select(
        self, direction: str | None = None, protocol: str | None = None, port: int | None = None
    ) -> tuple[ResolvedRule, ...]:
        """The rules that traffic of this direction, protocol and port falls under."""
        return tuple(r for r in self.rules if r.rule.matches(direction, protocol, port))

    @property
    def missing_optional(self) -> tuple[ResolvedRule, ...]:
        """Rules whose tag is missing and that say it may be (``optional = true``)."""
        return tuple(r for r in self.rules if r.missing and r.rule.optional)

    def narrowed(self, selection: RuleFilter) -> ResolvedProfile:
        """Only the rules (and host names) that ``selection`` falls under, with only their
        warnings (and the profile's own); the same profile when nothing is filtered."""
        if not selection:
            return self
        args = (selection.direction, selection.protocol, selection.port)
        kept = self.select(*args)
        rule_warnings = {w for r in self.rules for w in r.warnings}
        warnings = [w for r in kept for w in r.warnings]
        warnings += [w for w in self.warnings if w not in rule_warnings]
        return replace(
            self,
            rules=kept,
            fqdns=tuple(f for f in self.fqdns if f.matches(*args)),
            warnings=tuple(dict.fromkeys(warnings)),
            selected_by=selection,
        )
