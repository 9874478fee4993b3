"""A requirement profile resolved for a cloud and a region: each rule with the tag it names there
(:class:`ResolvedRule`, :class:`ResolvedProfile`), the addresses of the NSG keywords
(:class:`Special`) and which rules a question is about (:class:`RuleFilter`).

Apart from resolver.profiles.model (what a profile file says) so that reading a profile, as a
config file's profile watch does, does not build these classes; ``from resolver.profiles
import ResolvedProfile`` loads this module on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from resolver.models import TagInfo
from resolver.profiles.model import (
    LOAD_BALANCER_ADDRESS,
    SPECIAL_NAMES,
    FqdnRule,
    Profile,
    Rule,
    special_name,
)


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
