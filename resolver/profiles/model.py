"""A requirement profile's values: rules, host names, and a profile resolved for a cloud/region."""

from __future__ import annotations

from dataclasses import dataclass, replace

from resolver.models import TagInfo

REGION_PLACEHOLDER = "{region}"
DIRECTIONS = ("inbound", "outbound")
PROTOCOLS = ("tcp", "udp", "any")

# Names the requirement pages use like service tags although no Service Tags file has them: they
# are NSG keywords. Each is resolved here, never looked up in the file (see :class:`Special`).
LOAD_BALANCER_ADDRESS = "168.63.129.16/32"  # the documented address of Azure's health probes
SPECIAL_NAMES = ("VirtualNetwork", "AzureLoadBalancer", "Internet")


@dataclass(frozen=True, slots=True)
class Special:
    """What a rule naming ``VirtualNetwork``, ``AzureLoadBalancer`` or ``Internet`` allows.

    ``origin`` says where ``addresses`` come from: ``"local"`` (``VirtualNetwork``: the user's own
    address space, the ``--local`` CIDRs; empty until given), ``"constant"`` (``AzureLoadBalancer``:
    the documented 168.63.129.16/32) or ``"any"`` (``Internet``: 0.0.0.0/0 and ::/0).
    """

    name: str  # "VirtualNetwork" | "AzureLoadBalancer" | "Internet"
    origin: str  # "local" | "constant" | "any"
    addresses: tuple[str, ...]

    @classmethod
    def of(cls, name: str, local: tuple[str, ...] = ()) -> Special:
        """The special address ``name`` (one of :data:`SPECIAL_NAMES`, any case)."""
        canonical = special_name(name)
        if canonical == "VirtualNetwork":
            return cls(canonical, "local", tuple(local))
        if canonical == "AzureLoadBalancer":
            return cls(canonical, "constant", (LOAD_BALANCER_ADDRESS,))
        if canonical == "Internet":
            return cls(canonical, "any", ("0.0.0.0/0", "::/0"))
        raise ValueError(f"{name!r} is not one of {', '.join(SPECIAL_NAMES)}")

    def describe(self) -> str:
        """``VirtualNetwork (--local 10.1.0.0/24)``, ``AzureLoadBalancer = 168.63.129.16/32``,
        ``Internet (any address)``."""
        if self.origin == "local":
            given = ", ".join(self.addresses)
            return f"{self.name} (--local {given})" if given else f"{self.name} (yours: --local)"
        if self.origin == "constant":
            return f"{self.name} = {', '.join(self.addresses)}"
        return f"{self.name} (any address)"


def special_name(tag: str) -> str | None:
    """The canonical special name (``VirtualNetwork``) when ``tag`` is one, in any case."""
    folded = tag.strip().casefold()
    return next((n for n in SPECIAL_NAMES if n.casefold() == folded), None)


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a profile's requirements were read: a page of a public repository, at a commit.

    Every field may be empty for a user's profile; the built-in ones fill ``repo``, ``path``,
    ``commit``, ``section`` and ``page_date`` (the page's own ``ms.date``, YYYY-MM-DD).
    """

    url: str = ""
    repo: str = ""  # "MicrosoftDocs/azure-docs"
    path: str = ""  # "articles/batch/batch-virtual-network.md"
    commit: str = ""  # the commit read, 40 hex digits
    section: str = ""  # the section(s) the rules come from
    page_date: str = ""  # the page's date (ms.date), YYYY-MM-DD
    note: str = ""  # anything else a reader should know about the source

    def __bool__(self) -> bool:
        return any((self.url, self.repo, self.path, self.commit, self.section, self.page_date))

    def short(self) -> str:
        """``MicrosoftDocs/azure-docs:articles/x.md@0819162b`` (or the URL when no repository)."""
        if self.repo or self.path:
            where = ":".join(p for p in (self.repo, self.path) if p)
            return where + (f"@{self.commit[:8]}" if self.commit else "")
        return self.url


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
    # Why the tag may be missing from a cloud's file (a name only the page uses, a tag newer than
    # the data): a missing tag is then a warning carrying this reason, not an error.
    missing_reason: str | None = None

    @property
    def special(self) -> str | None:
        """``VirtualNetwork``, ``AzureLoadBalancer`` or ``Internet`` when the rule names one of
        those (addresses from the user, a constant, or any), else None."""
        return special_name(self.tag)

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
    def missing_allowed(self) -> bool:
        """A missing tag is a warning, not an error: the rule is optional or says why."""
        return self.optional or self.missing_reason is not None

    @property
    def base(self) -> str:
        """The service part of a regional template (``Storage``), else the tag itself."""
        return self.tag[: -len(REGION_PLACEHOLDER) - 1] if self.is_regional else self.tag


@dataclass(frozen=True, slots=True)
class FqdnRule:
    """A host name (pattern) to allow, for firewalls and proxies with FQDN objects (outbound)."""

    host: str  # may hold {region}: "*.hcp.{region}.azmk8s.io"
    purpose: str
    ports: str = "443"
    protocol: str = "tcp"
    clouds: frozenset[str] = frozenset()  # only in these clouds (file names); empty: every cloud
    skip_clouds: frozenset[str] = frozenset()  # clouds where the host is not needed
    optional: bool = False  # for a feature the workload may not use
    template: str = ""  # once resolved: the host as written, when it held {region}

    def applies_to(self, cloud: str) -> bool:
        """True when the host is needed in ``cloud`` (a file name: ``Public``, ``China``)."""
        return cloud not in self.skip_clouds and (not self.clouds or cloud in self.clouds)

    @property
    def is_regional(self) -> bool:
        """True when the host holds the ``{region}`` placeholder."""
        return REGION_PLACEHOLDER in self.host

    def for_region(self, code: str) -> FqdnRule:
        """The host with ``{region}`` replaced by the region code, the template kept."""
        if not self.is_regional:
            return self
        return replace(self, host=self.host.replace(REGION_PLACEHOLDER, code), template=self.host)

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
    """A requirement profile as written: its rules (tags by direction and port) and host names."""

    name: str
    description: str
    source: str  # URL or text
    rules: tuple[Rule, ...]
    fqdns: tuple[FqdnRule, ...]
    origin: str = ""  # file the profile was read from, or "<builtin>/azureml.toml"
    source_ref: SourceRef = SourceRef()  # the page read: repository, path, commit, section, date
    clouds: tuple[str, ...] = ()  # the clouds the source covers (file names); empty: not said


@dataclass(frozen=True, slots=True)
class ResolvedRule:
    """A rule of a profile resolved against one snapshot: the tag it names there, or why none."""

    rule: Rule
    tag: TagInfo | None  # None when skipped, special, or when the tag is missing here
    skipped_reason: str | None  # "not needed in China"
    warnings: tuple[str, ...]
    # VirtualNetwork, AzureLoadBalancer, Internet: not a tag of the file but addresses from the
    # user (--local), a documented constant, or any. None for every other rule.
    special: Special | None = None

    @property
    def missing(self) -> bool:
        """The rule applies here, but its tag is not in the file (or not for this region)."""
        return self.tag is None and self.skipped_reason is None and self.special is None


@dataclass(frozen=True, slots=True)
class ResolvedProfile:
    """A profile resolved against one snapshot, cloud and region: each rule with its tag."""

    profile: Profile
    cloud: str  # the cloud's file name: "Public", "China", ...
    region: str  # ARM region code, "" when none was given
    rules: tuple[ResolvedRule, ...]
    fqdns: tuple[FqdnRule, ...]
    warnings: tuple[str, ...]  # every rule's warnings and the profile's own, without repeats
    selected_by: RuleFilter = RuleFilter()  # the rules kept by narrowed(); empty: every rule

    @property
    def missing(self) -> tuple[ResolvedRule, ...]:
        """Rules whose tag is missing and that do not say they may be (``optional`` or
        ``missing_reason``)."""
        return tuple(r for r in self.rules if r.missing and not r.rule.missing_allowed)

    def select(
        self, direction: str | None = None, protocol: str | None = None, port: int | None = None
    ) -> tuple[ResolvedRule, ...]:
        """The rules that traffic of this direction, protocol and port falls under."""
        return tuple(r for r in self.rules if r.rule.matches(direction, protocol, port))

    @property
    def missing_optional(self) -> tuple[ResolvedRule, ...]:
        """Rules whose tag is missing and that say it may be (``optional = true``, or a
        ``missing_reason``)."""
        return tuple(r for r in self.rules if r.missing and r.rule.missing_allowed)

    def with_local(self, local: tuple[str, ...] | list[str]) -> ResolvedProfile:
        """The same profile with the user's own addresses (``--local``) as the addresses of its
        ``VirtualNetwork`` rules; the same profile when ``local`` is empty."""
        if not local:
            return self
        rules = tuple(
            replace(r, special=Special.of(r.special.name, tuple(local)))
            if r.special is not None and r.special.origin == "local"
            else r
            for r in self.rules
        )
        return replace(self, rules=rules)

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
