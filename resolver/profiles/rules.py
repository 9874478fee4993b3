"""A profile's rules: the :class:`Rule` value, and reading rules from a profile file.

What a ``[[watch]]`` with ``profile = NAME`` needs of its profile: the rules (which tags, which
clouds, which are per-region), without the profile's host names, source and the rest
(:mod:`resolver.profiles.model`, :mod:`resolver.profiles.load`, which build on this module).
:func:`builtin_rules` reads a built-in profile's rules alone, once per process. The format is
in the docstring of :mod:`resolver.profiles`.
"""

from __future__ import annotations

import difflib
import functools
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resolver.clouds import CLOUD_KEYS, get_cloud
from resolver.errors import NotFoundError, ProfileError

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


_RULE_KEYS = (
    "direction",
    "ports",
    "protocol",
    "tag",
    "purpose",
    "skip_clouds",
    "clouds",
    "optional",
    "source_name",
    "missing_reason",
)
_TAG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# --- parsing ------------------------------------------------------------------------------------

# The built-in profiles, shipped as package data beside this module (a plain folder: cheaper to
# reach than importlib.resources, which costs 4-5 ms of imports).
BUILTIN = Path(__file__).resolve().parent / "builtin"


class LineMap:
    """Where keys and tables are in a TOML text, to point error messages at a line.

    tomllib reports no positions for valid TOML, so the text is scanned line by line: good enough
    for hand-written profiles (keys at the start of a line, ``[[rule]]`` headers). Lines inside
    multi-line strings are skipped.
    """

    # Patterns, compiled (and cached by re) on the first scan: a file with no problem needs none.
    _ARRAY_HEADER = r"\[\[\s*([A-Za-z0-9_.-]+)\s*\]\]"
    _HEADER = r"\[\s*([A-Za-z0-9_.-]+)\s*\]"
    _KEY = r"""(["']?)([A-Za-z0-9_-]+)\1\s*="""

    def __init__(self, text: str):
        self.top: dict[str, int] = {}
        self.arrays: dict[str, list[tuple[int, dict[str, int]]]] = {}
        self.tables: dict[str, int] = {}
        current = self.top
        in_string: str | None = None
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if in_string is not None:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            if not line or line.startswith("#"):
                continue
            if m := re.match(self._ARRAY_HEADER, line):
                keys: dict[str, int] = {}
                self.arrays.setdefault(m.group(1), []).append((number, keys))
                current = keys
            elif m := re.match(self._HEADER, line):
                self.tables.setdefault(m.group(1), number)
                current = {}
            elif m := re.match(self._KEY, line):
                current.setdefault(m.group(2), number)
            for delimiter in ('"""', "'''"):
                if line.count(delimiter) % 2 == 1:
                    in_string = delimiter
                    break

    def key(self, key: str) -> int:
        """Line of a top-level key, or of a ``[key]`` / ``[[key]]`` header; 1 if not found."""
        if key in self.top:
            return self.top[key]
        if key in self.tables:
            return self.tables[key]
        if key in self.arrays:
            return self.arrays[key][0][0]
        return 1

    def item(self, table: str, index: int, key: str | None = None) -> int:
        """Line of ``key`` in the ``index``-th ``[[table]]``, else of its header or ``table``."""
        entries = self.arrays.get(table, [])
        if index < len(entries):
            header, keys = entries[index]
            return keys.get(key, header) if key is not None else header
        return self.key(table)


class NoLines(LineMap):
    """The lines of a file not scanned: every key at line 1 (for a file with no problem)."""

    def __init__(self) -> None:
        self.top, self.arrays, self.tables = {}, {}, {}

    def key(self, key: str) -> int:
        return 1

    def item(self, table: str, index: int, key: str | None = None) -> int:
        return 1


NO_LINES = NoLines()


class Problems:
    def __init__(self, origin: str, lines: LineMap):
        self.origin = origin
        self.lines = lines
        self.items: list[tuple[int, str]] = []

    def add(self, line: int, message: str) -> None:
        self.items.append((line, message))

    def raise_if_any(self) -> None:
        if self.items:
            ordered = sorted(self.items, key=lambda item: item[0])  # stable: same line keeps order
            raise ProfileError(self.origin, [f"{self.origin}:{ln}: {msg}" for ln, msg in ordered])


def unknown_key_message(where: str, key: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(known)})"
    return f"{where}: unknown key {key!r}{hint}"


def check_ports(value: object) -> tuple[str | None, str | None]:
    """(normalised ports, None) or (None, what is wrong); the syntax is in the module docstring."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None, f'must be a string such as "443", "29876-29877" or "*", not {value!r}'
    text = str(value).replace(" ", "")
    if text == "*":
        return text, None
    if not text:
        return None, 'is empty; use "*" for any port'
    for item in text.split(","):
        low, sep, high = item.partition("-")
        numbers = [low, high] if sep else [low]
        which = "" if item == text else f" {item!r}"
        if not all(n.isdigit() and 1 <= int(n) <= 65535 for n in numbers):
            return None, (
                f"is {value!r}:{which or ' that'} is not a port 1-65535"
                " or a range such as 29876-29877"
            )
        if sep and int(low) > int(high):
            return None, f"is {value!r}: the range{which} runs backwards"
    return text, None


def _check_cloud(name: object) -> str | None:
    if not isinstance(name, str):
        return None
    try:
        return get_cloud(name).name
    except NotFoundError:
        return None


def read_string(
    table: Mapping[str, Any],
    key: str,
    where: str,
    line: int,
    problems: Problems,
    *,
    required: bool = False,
    default: str = "",
) -> str:
    if key not in table:
        if required:
            problems.add(line, f"{where}: missing key {key!r}")
        return default
    value = table[key]
    if not isinstance(value, str):
        problems.add(line, f"{where}: key {key!r} must be a string, not {value!r}")
        return default
    return value


def open_table(
    table: str,
    data: Any,
    index: int,
    known: tuple[str, ...],
    lines: LineMap,
    problems: Problems,
) -> tuple[str, Callable[[str], int]] | None:
    """Start checking one ``[[table]]`` entry: (its name for messages, key -> line), with unknown
    keys reported; None when the entry is not a table at all."""
    where = f"[[{table}]] #{index + 1}"
    if not isinstance(data, dict):
        problems.add(lines.item(table, index), f"{where}: must be a table of keys, not {data!r}")
        return None

    def at(key: str) -> int:
        return lines.item(table, index, key)

    for key in data:
        if key not in known:
            problems.add(at(key), unknown_key_message(where, key, known))
    return where, at


def read_traffic(
    data: dict[str, Any],
    where: str,
    at: Callable[[str], int],
    problems: Problems,
    *,
    default_ports: str | None,
) -> tuple[str, str]:
    """A table's ``ports`` (required when there is no default) and ``protocol`` (default tcp)."""
    ports = default_ports or ""
    if "ports" in data:
        checked, error = check_ports(data["ports"])
        if error:
            problems.add(at("ports"), f"{where}: key 'ports' {error}")
        ports = checked or ""
    elif default_ports is None:
        problems.add(at("ports"), f"{where}: missing key 'ports'")  # the header's line
    protocol = read_string(data, "protocol", where, at("protocol"), problems, default="tcp")
    protocol = protocol.strip().lower()
    if protocol not in PROTOCOLS:
        problems.add(
            at("protocol"), f"{where}: key 'protocol' is {data['protocol']!r}; use tcp, udp or any"
        )
    return ports, protocol


def parse_rule(data: Any, index: int, lines: LineMap, problems: Problems) -> Rule | None:
    before = len(problems.items)
    opened = open_table("rule", data, index, _RULE_KEYS, lines, problems)
    if opened is None:
        return None
    where, at = opened

    direction = read_string(data, "direction", where, at("direction"), problems, required=True)
    if "direction" in data and isinstance(data["direction"], str):
        direction = direction.strip().lower()
        if direction not in DIRECTIONS:
            problems.add(
                at("direction"),
                f"{where}: key 'direction' is {data['direction']!r}; use inbound or outbound",
            )

    ports, protocol = read_traffic(data, where, at, problems, default_ports=None)

    tag = read_string(data, "tag", where, at("tag"), problems, required=True).strip()
    if "tag" in data and isinstance(data["tag"], str):
        base = (
            tag[: -len(REGION_PLACEHOLDER) - 1] if tag.endswith("." + REGION_PLACEHOLDER) else tag
        )
        if not _TAG_RE.fullmatch(base):
            problems.add(
                at("tag"),
                f"{where}: key 'tag' is {data['tag']!r}; write a tag name (AzureMachineLearning)"
                " or <Base>.{region} (Storage.{region})",
            )
        elif base.lower().endswith(".region"):
            problems.add(
                at("tag"),
                f"{where}: key 'tag' is {data['tag']!r}; write "
                f"{base[: -len('.region')]}.{{region}} to mean the regional tag",
            )
        elif base != tag and special_name(base):
            problems.add(
                at("tag"),
                f"{where}: key 'tag' is {data['tag']!r}; {special_name(base)} has no regional "
                "form: write it without .{region}",
            )

    purpose = read_string(data, "purpose", where, at("purpose"), problems)
    source_name: str | None = None
    if "source_name" in data:
        source_name = read_string(data, "source_name", where, at("source_name"), problems) or None
    missing_reason: str | None = None
    if "missing_reason" in data:
        missing_reason = (
            read_string(data, "missing_reason", where, at("missing_reason"), problems).strip()
            or None
        )
        if missing_reason is None and isinstance(data["missing_reason"], str):
            problems.add(
                at("missing_reason"),
                f"{where}: key 'missing_reason' is empty; say why the tag may be missing",
            )

    skip, only, optional = read_scope(data, where, at, problems)
    if len(problems.items) > before:
        return None
    return Rule(
        direction,
        ports,
        protocol,
        tag,
        purpose,
        skip,
        source_name,
        optional,
        only,
        missing_reason,
    )


def read_scope(
    data: dict[str, Any], where: str, at: Callable[[str], int], problems: Problems
) -> tuple[frozenset[str], frozenset[str], bool]:
    """A table's ``skip_clouds``, ``clouds`` and ``optional``."""
    skip = read_clouds(data, "skip_clouds", where, at, problems)
    only = read_clouds(data, "clouds", where, at, problems)
    if skip & only:
        problems.add(
            at("clouds"),
            f"{where}: {', '.join(sorted(skip & only))} is in both 'clouds' and 'skip_clouds'",
        )
    optional = data.get("optional", False)
    if not isinstance(optional, bool):
        problems.add(at("optional"), f"{where}: key 'optional' must be true or false")
    return skip, only, optional is True


def read_clouds(
    data: dict[str, Any], key: str, where: str, at: Callable[[str], int], problems: Problems
) -> frozenset[str]:
    """A list of cloud names or keys (``["China"]``, ``["usgov"]``) as file names."""
    raw = data.get(key, [])
    if not isinstance(raw, list):
        problems.add(at(key), f'{where}: key {key!r} must be a list such as ["China"], not {raw!r}')
        return frozenset()
    found = set()
    for item in raw:
        cloud = _check_cloud(item)
        if cloud is None:
            problems.add(
                at(key),
                f"{where}: key {key!r} names unknown cloud {item!r}; use one of "
                f"{', '.join(CLOUD_KEYS)} (or the file names Public, AzureGovernment, China,"
                " AzureGermany)",
            )
        else:
            found.add(cloud)
    return frozenset(found)


def is_builtin(name: str) -> bool:
    """Whether a built-in profile has this name (each is named after its file)."""
    stem = name.strip().lower()
    return stem.replace("-", "").replace("_", "").isalnum() and (BUILTIN / f"{stem}.toml").is_file()


def builtin_rules(name: str, user_dirs: Iterable[Path]) -> tuple[str, tuple[Rule, ...]] | None:
    """The name and rules of built-in profile ``name`` when no user profile can replace it (no
    ``*.toml`` in ``user_dirs``), read once per process (:func:`_builtin_rules`); None
    otherwise: then find the profile and read it whole
    (:func:`resolver.profiles.profile_rules`)."""
    folders = [Path(f).expanduser() for f in user_dirs]
    stem = name.strip().lower()
    if any(f.is_dir() and any(f.glob("*.toml")) for f in folders) or not is_builtin(stem):
        return None
    return _builtin_rules(stem)


@functools.cache
def _builtin_rules(stem: str) -> tuple[str, tuple[Rule, ...]] | None:
    """The name and rules of a built-in profile, read once per process without building its
    host names, source or profile; None when the file does not give them plainly (a name other
    than the file's, a problem), and the whole profile is read instead."""
    text = (BUILTIN / f"{stem}.toml").read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
    name, raw = data.get("name", stem), data.get("rule", [])
    if not isinstance(name, str) or name.lower() != stem or not isinstance(raw, list):
        return None
    problems = Problems(stem, NO_LINES)
    rules = [parse_rule(item, i, NO_LINES, problems) for i, item in enumerate(raw)]
    if problems.items:
        return None
    return stem, tuple(r for r in rules if r is not None)
