"""A requirement profile's values, as a profile file gives them: rules, host names, the source.

``Rule`` and the constants are defined in resolver.profiles.rules (what a profile watch reads)
and importable from here. What resolving a profile gives (``ResolvedProfile``, ``ResolvedRule``,
``Special``, ``RuleFilter``) is in resolver.profiles.resolved: reading a profile does not build
those classes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from resolver.profiles.rules import DIRECTIONS as DIRECTIONS
from resolver.profiles.rules import LOAD_BALANCER_ADDRESS as LOAD_BALANCER_ADDRESS
from resolver.profiles.rules import PROTOCOLS as PROTOCOLS
from resolver.profiles.rules import REGION_PLACEHOLDER as REGION_PLACEHOLDER
from resolver.profiles.rules import SPECIAL_NAMES as SPECIAL_NAMES
from resolver.profiles.rules import Rule as Rule
from resolver.profiles.rules import special_name as special_name


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
