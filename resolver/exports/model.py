"""What an export is made of: the objects to write, their provenance, the delta, the output.

A format is a set of pure functions from an :class:`ExportInput` to an :class:`Output` (text plus
warnings); ``resolver/exports/build.py`` builds the input from the store, ``formats/`` holds
one module per family of targets, and the registry in ``formats/__init__.py`` names them.

Objects: without ``--rules`` an export is ONE object (the union of the tags or of the profile's
rules), named by ``--name`` or after the query. With ``--rules`` there is one object per
profile rule, carrying its direction, protocol and ports (:class:`RuleInfo`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from resolver.prefixes import family, sort_prefixes


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """A profile rule an object comes from (``--rules``)."""

    direction: str  # inbound | outbound
    protocol: str  # tcp | udp | any
    ports: tuple[tuple[int, int], ...]  # inclusive ranges; ((1, 65535),) for "*"
    tag: str  # the service tag the rule resolved to
    nsg_tag: bool  # the tag's networkFeatures include NSG: an NSG can name the tag itself
    purpose: str = ""

    @property
    def any_port(self) -> bool:
        return self.ports == ((1, 65535),)

    def port_text(self, joiner: str = ",", span: str = "-") -> str:
        """``443``, ``29876-29877``, ``80,443``; ``*`` for any port."""
        if self.any_port:
            return "*"
        return joiner.join(str(lo) if lo == hi else f"{lo}{span}{hi}" for lo, hi in self.ports)

    @property
    def protocols(self) -> tuple[str, ...]:
        """``("tcp",)``, ``("udp",)`` or both for ``any``."""
        return ("tcp", "udp") if self.protocol == "any" else (self.protocol,)


@dataclass(frozen=True, slots=True)
class ExportObject:
    """One address object: a name as the user would read it (formats sanitise it with
    :func:`resolver.exports.names.object_names`), its prefixes (IPv4 first, sorted;
    aggregated when asked) and, with ``--rules``, the rule it implements."""

    name: str
    prefixes: tuple[str, ...]
    tags: tuple[str, ...] = ()  # the service tags behind it
    rule: RuleInfo | None = None

    @property
    def ipv4(self) -> tuple[str, ...]:
        return tuple(p for p in self.prefixes if family(p) == 4)

    @property
    def ipv6(self) -> tuple[str, ...]:
        return tuple(p for p in self.prefixes if family(p) == 6)

    def uuid(self, scope: str = "") -> str:
        """A UUID that stays the same for this object name across refreshes (Check Point)."""
        digest = hashlib.sha1(f"aztags:{scope}:{self.name}".encode()).hexdigest()
        return f"{digest[:8]}-{digest[8:12]}-5{digest[13:16]}-a{digest[17:20]}-{digest[20:32]}"


@dataclass(frozen=True, slots=True)
class ObjectDelta:
    """What moves a device's object from the base list to the current one."""

    name: str
    added: tuple[str, ...]
    removed: tuple[str, ...]

    def before(self, now: Iterable[str]) -> tuple[str, ...]:
        """The list the device holds before the delta, given the object's list ``now``: ``now``
        without what was added, with what was removed (sorted)."""
        added = set(self.added)
        return sort_prefixes({p for p in now if p not in added} | set(self.removed))


@dataclass(frozen=True, slots=True)
class Header:
    """Provenance, for the comment at the top of formats that allow comments."""

    cloud: str  # the cloud's file name: Public, AzureGovernment...
    change_number: int
    file_date: date | None
    query: str  # "tags Storage.WestEurope, Sql" or "profile azureml, region westus"
    version: str = ""  # aztags version
    since: str | None = None  # delta: "changeNumber 246 (2023-03-20)" or "state file x.json"

    def lines(self) -> list[str]:
        """The header's lines, without a comment marker."""
        lines = [
            f"aztags{' ' + self.version if self.version else ''} export: {self.query}",
            f"cloud {self.cloud}, changeNumber {self.change_number}, file date "
            f"{self.file_date.isoformat() if self.file_date else 'unknown'}",
        ]
        if self.since:
            lines.append(f"delta from {self.since}: for a device that holds that list")
        return lines

    def comment(self, marker: str = "#", end: str = "") -> str:
        """The header as comment lines (``# ...``), with a final newline."""
        return "".join(f"{marker} {line}{end}\n" for line in self.lines())


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """Flags that shape the output: local side of rules, chains, zones, priorities."""

    name: str | None = None  # --name: the object's (base) name
    rules: bool = False  # --rules
    local: tuple[str, ...] = ()  # --local CIDR: the workload's own addresses
    chain: str | None = None  # --chain (iptables, nftables)
    zone: str | None = None  # --zone (junos/srx)
    interface: str | None = None  # --interface (iptables, nftables, asa: the ACL's interface)
    priority_base: int = 1000  # --priority-base (azure-nsg)
    family: int | None = None  # --ipv4 / --ipv6 (4 or 6): the query kept one family only


@dataclass(frozen=True, slots=True)
class ExportInput:
    """What a format renders: the header, the objects (or their deltas) and the options."""

    header: Header
    objects: tuple[ExportObject, ...]
    options: ExportOptions = ExportOptions()
    fqdns: tuple[str, ...] = ()  # the profile's host names (PAN-OS domain EDL, FortiOS, squid)
    delta: tuple[ObjectDelta, ...] | None = None  # --since / --state: None for a full export

    @property
    def all_prefixes(self) -> tuple[str, ...]:
        """Every object's prefixes, once each, IPv4 first, sorted."""
        if len(self.objects) == 1:
            return self.objects[0].prefixes  # already sorted
        return sort_prefixes({p for o in self.objects for p in o.prefixes})


@dataclass(frozen=True, slots=True)
class Output:
    """A format's rendered text and the warnings it has for the user."""

    text: str
    warnings: tuple[str, ...] = ()


Render = Callable[[ExportInput], Output]


@dataclass(frozen=True, slots=True)
class Format:
    """One target. ``render``: the full list (every format). ``delta``: incremental commands
    for a device that has the base list (None: the format is a full replace; the command says
    so and writes the full list). ``rules``: firewall rules from a profile (None: objects
    only). ``empty_ok``: False where an empty list would mean "allow everything" or match
    nothing silently, so an empty result is an error."""

    name: str
    summary: str
    render: Render
    delta: Render | None = None
    rules: Render | None = None
    empty_ok: bool = False
    hosts: bool = False  # writes the profile's host names (domain EDL, FortiOS FQDN, squid)
    aliases: tuple[str, ...] = field(default=())


# -- names -----------------------------------------------------------------------------------------


def object_names(
    names: Sequence[str],
    *,
    allowed: str = r"A-Za-z0-9_.-",
    max_length: int = 63,
    replacement: str = "_",
    first: str | None = None,
    case: str | None = None,
) -> list[str]:
    """Each name made valid for a target: characters outside ``allowed`` (a regex class body)
    replaced, ``first`` (a class body) enforced on the first character by a prefix, ``case``
    ("upper"/"lower") applied, and cut to ``max_length`` with a short hash of the original
    (``Storage.WestEurope`` -> ``Storage_WestEur_3f9a1c``) so distinct names stay distinct.
    Names that still collide get the hash too."""
    out: list[str] = []
    seen: set[str] = set()
    for name in names:
        clean = name.upper() if case == "upper" else name.lower() if case == "lower" else name
        clean = re.sub(f"[^{allowed}]", replacement, clean)
        if first is not None and not re.match(f"[{first}]", clean[:1]):
            clean = "az" + replacement + clean if re.match(f"[{first}]", "a") else "A" + clean
        if len(clean) > max_length or clean in seen or clean != name and clean in names:
            suffix = replacement + hashlib.sha1(name.encode()).hexdigest()[:6]
            clean = clean[: max_length - len(suffix)] + suffix
        seen.add(clean)
        out.append(clean)
    return out


def chunks(items: Sequence[str], size: int) -> list[Sequence[str]]:
    """``items`` in pieces of at most ``size`` (one empty piece for no items)."""
    return [items[i : i + size] for i in range(0, len(items), size)] or [items[:0]]


def local_networks(given: Sequence[str]) -> tuple[str, ...]:
    """``--local`` as canonical prefixes (host bits cleared, a bare address a /32 or /128),
    sorted; UsageError naming what is neither an address nor a CIDR prefix."""
    from resolver.errors import UsageError
    from resolver.prefixes import canonical_network

    found = []
    for text in given:
        network = canonical_network(text)
        if network is None:
            raise UsageError(f"--local {text!r} is not an address or a CIDR prefix.")
        found.append(network)
    return sort_prefixes(found)
