"""A requirement profile's values, as a profile file gives them: rules, host names, the source.

What resolving a profile gives (``ResolvedProfile``, ``ResolvedRule``, ``Special``, ``RuleFilter``)
is in resolver.profiles.resolved, so that reading a profile does not build those classes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

REGION_PLACEHOLDER = "{region}"
DIRECTIONS = ("inbound", "outbound")
PROTOCOLS = ("tcp", "udp", "any")

# Names the requirement pages use like service tags although no Service Tags file has them: they
# are NSG keywords. Each is resolved, never looked up in the file (resolver.profiles.resolved).
LOAD_BALANCER_ADDRESS = "168.63.129.16/32"  # the documented address of Azure's health probes
SPECIAL_NAMES = ("VirtualNetwork", "AzureLoadBalancer", "Internet")


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
