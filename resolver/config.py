"""The TOML config file: what it may hold, and the checked ``Config`` it gives.

Precedence (applied by cli.py through click): flag > environment variable (``AZTAGS_*``) > config
file > built-in default. Where the file is (``--config PATH``, ``$AZTAGS_CONFIG``, the default
locations) is resolver/configfile.py, which the command line imports alone: this module (the
schema, tomllib) loads only when there is a file.

Layout: top-level keys are the settings of the command-line options (``db``, ``cloud``,
``max_age_days``, ...; ``_`` or ``-``), checked against the types the caller derives from the
options, so the list never drifts from the CLI. Tables are sections, each with a declared schema
(``SECTIONS``): arrays of tables ``[[refresh]]``, ``[[channel]]``, ``[[watch]]`` (scheduler and
alerts) and tables ``[alerts]`` (delivery retries), ``[serve]``, ``[auth]`` (the HTTP server)::

    db = "/var/lib/aztags/aztags.db"
    max_age_days = 10

    [[channel]]
    name = "netops"
    type = "webhook"
    url = "https://hooks.example.internal/aztags"

Unknown keys (top level and in sections) are errors with close matches; so are values of the
wrong type, missing required keys and references to undefined channels.
"""

from __future__ import annotations

import difflib
import json
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Protocol

from resolver.configfile import FoundConfig, find_config
from resolver.errors import ConfigError

# -- value types -----------------------------------------------------------------------------------


class ValueType(Protocol):
    """What a key accepts; ``describe()`` completes "KEY must be ..."."""

    def accepts(self, value: object) -> bool: ...

    def describe(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Text:
    """A string; ``what`` says which kind ("a path", "a URL or a path")."""

    what: str = ""

    def accepts(self, value: object) -> bool:
        return isinstance(value, str)

    def describe(self) -> str:
        return f"a string ({self.what})" if self.what else "a string"


@dataclass(frozen=True, slots=True)
class Integer:
    """A whole number (not true/false), optionally within ``low..high`` (inclusive)."""

    low: int | None = None
    high: int | None = None

    def accepts(self, value: object) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and (self.low is None or value >= self.low)
            and (self.high is None or value <= self.high)
        )

    def describe(self) -> str:
        return "an integer" + _range_text(self.low, self.high, False, False)


@dataclass(frozen=True, slots=True)
class Number:
    """An integer or a float (not nan), optionally within a range (``*_open``: bound excluded)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def accepts(self, value: object) -> bool:
        if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self) -> str:
        return "a number" + _range_text(self.low, self.high, self.low_open, self.high_open)


@dataclass(frozen=True, slots=True)
class Boolean:
    """A setting that takes true or false."""

    def accepts(self, value: object) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True, slots=True)
class OneOf:
    """One of a fixed set of strings (or numbers, for flags such as ``--ipv4``)."""

    choices: tuple[str | int | float, ...]
    case_sensitive: bool = True

    def accepts(self, value: object) -> bool:
        for choice in self.choices:
            if type(value) is not type(choice):  # 1 is not true, "4" is not 4
                continue
            if value == choice:
                return True
            if (
                isinstance(value, str)
                and not self.case_sensitive
                and value.casefold() == str(choice).casefold()
            ):
                return True
        return False

    def describe(self) -> str:
        return "one of " + ", ".join(json.dumps(c) for c in self.choices)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | int | float) -> float:
    """Seconds in a duration: ``45s``, ``30m``, ``6h``, ``1d`` (or a bare number of seconds).
    ValueError when it is none of those, or not above zero."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        unit = _UNITS.get(text[-1:]) if text else None
        number = text[:-1] if unit else text
        try:
            seconds = float(number) * (unit or 1)
        except ValueError:
            raise ValueError(f"not a duration: {value!r}") from None
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"not a positive duration: {value!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class Duration:
    """A length of time with its unit: ``"30m"``, ``"6h"``, ``"1d"``, ``"45s"`` (a bare number
    is refused: 6 could mean seconds or hours)."""

    def accepts(self, value: object) -> bool:
        if not isinstance(value, str) or value.strip()[-1:].lower() not in _UNITS:
            return False
        try:
            parse_duration(value)
        except ValueError:
            return False
        return True

    def describe(self) -> str:
        return 'a duration with its unit ("45s", "30m", "6h", "1d")'


@dataclass(frozen=True, slots=True)
class ListOf:
    """A list of ``item``; with ``single_ok`` one bare item stands for a list of one."""

    item: ValueType
    single_ok: bool = False

    def accepts(self, value: object) -> bool:
        if self.single_ok and self.item.accepts(value):
            return True
        return isinstance(value, list) and all(self.item.accepts(v) for v in value)

    def describe(self) -> str:
        if self.single_ok:
            return f"{self.item.describe()}, or a list of them"
        return f"a list whose items are each {self.item.describe()}"


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Any of several types (one option name used with different types by two commands)."""

    options: tuple[ValueType, ...]

    def accepts(self, value: object) -> bool:
        return any(option.accepts(value) for option in self.options)

    def describe(self) -> str:
        return " or ".join(option.describe() for option in self.options)


def either(a: ValueType, b: ValueType) -> ValueType:
    """A type accepting what ``a`` or ``b`` accepts (choices are merged into one list)."""
    if a == b:
        return a
    if isinstance(a, OneOf) and isinstance(b, OneOf) and a.case_sensitive == b.case_sensitive:
        return OneOf((*a.choices, *(c for c in b.choices if c not in a.choices)), a.case_sensitive)
    left = a.options if isinstance(a, AnyOf) else (a,)
    right = b.options if isinstance(b, AnyOf) else (b,)
    return AnyOf((*left, *(t for t in right if t not in left)))


def normalized(kind: ValueType, value: object) -> object:
    """``value`` as the code reading it wants it: a bare item for a list becomes a list of one."""
    if isinstance(kind, ListOf) and not isinstance(value, list):
        return [value]
    return value


def _range_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    def n(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else str(x)

    if low is not None and high is not None and not (low_open or high_open):
        return f" from {n(low)} to {n(high)}"
    parts = []
    if low is not None:
        parts.append(f"above {n(low)}" if low_open else f"of at least {n(low)}")
    if high is not None:
        parts.append(f"below {n(high)}" if high_open else f"of at most {n(high)}")
    return (" " + " and ".join(parts)) if parts else ""


def _found(value: object) -> str:
    """What a wrong value is, for "..., found the integer 5"."""
    if isinstance(value, bool):
        return f"the boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"the string {json.dumps(shown, ensure_ascii=False)}"
    if isinstance(value, list):
        wrong = ", ".join(_found(v) for v in value[:3] if not isinstance(v, list | dict))
        return f"a list ({wrong}{', ...' if len(value) > 3 else ''})" if wrong else "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime | date | time):
        return f"the date/time {value.isoformat()}"
    return f"a {type(value).__name__}"


# -- sections --------------------------------------------------------------------------------------

CLOUD = OneOf(("public", "usgov", "china", "germany"), case_sensitive=False)
SECRET = Text("a secret: env:NAME or file:PATH")
PORT = Integer(0, 65535)
NAMES = ListOf(Text())


@dataclass(frozen=True, slots=True)
class Key:
    """One key of a config section: the type of its value and whether it must be there."""

    type: ValueType
    required: bool = False


@dataclass(frozen=True, slots=True)
class Section:
    """A part of the file with its own keys: ``[[name]]`` when ``many``, else ``[name]``."""

    name: str
    many: bool
    keys: Mapping[str, Key]
    purpose: str

    @property
    def header(self) -> str:
        return f"[[{self.name}]]" if self.many else f"[{self.name}]"


SECTIONS: Mapping[str, Section] = {
    s.name: s
    for s in (
        Section(
            "refresh",
            True,
            {
                "cloud": Key(CLOUD, required=True),
                "every": Key(Duration()),
                "cron": Key(Text('a cron expression: "0 */6 * * *"')),
                "source": Key(Text("a URL or a path")),
                # also ask the cloud's Discovery API through this subscription (fetch --api)
                "subscription": Key(Text("a subscription id")),
                "location": Key(Text("an Azure location code")),
                "api_lag_alert_days": Key(Integer(1)),
                "fail_alert_after": Key(Integer(1)),
                "stale_after_days": Key(Integer(1)),
            },
            "a cloud the scheduler refreshes (aztags run)",
        ),
        Section(
            "channel",
            True,
            {
                "name": Key(Text(), required=True),
                "type": Key(
                    OneOf(("webhook", "slack", "teams", "email", "syslog", "command")),
                    required=True,
                ),
                # webhook, slack, teams
                "url": Key(Text("a URL")),
                "secret": Key(SECRET),
                "github_signature": Key(Boolean()),
                # email (host and port also for syslog)
                "host": Key(Text("a host name")),
                "port": Key(PORT),
                "tls": Key(OneOf(("starttls", "implicit"))),
                "username": Key(Text()),
                "password": Key(SECRET),
                "from": Key(Text("an email address")),
                "to": Key(ListOf(Text("an email address"), single_ok=True)),
                "ca_file": Key(Text("a path")),
                # syslog (with host and port); facility: the RFC 5424 names
                "protocol": Key(OneOf(("udp", "tcp"))),
                "facility": Key(
                    OneOf(
                        (
                            *("kern", "user", "mail", "daemon", "auth", "syslog", "lpr"),
                            *("news", "uucp", "cron", "authpriv", "ftp", "ntp", "security"),
                            *("console", "solaris-cron", *(f"local{n}" for n in range(8))),
                        )
                    )
                ),
                # command
                "argv": Key(NAMES),
                "timeout": Key(Number(0, low_open=True)),
            },
            "where alerts are sent",
        ),
        Section(
            "alerts",
            False,
            {
                "max_attempts": Key(Integer(1, 100)),
                "retry_delays": Key(ListOf(Duration())),
                "round_wait": Key(Number(0)),
            },
            "how undelivered alerts are retried",
        ),
        Section(
            "watch",
            True,
            {
                "name": Key(Text(), required=True),
                "profile": Key(Text("a profile name")),
                "tags": Key(NAMES),
                "service": Key(Text("a service name")),
                "region": Key(Text("a region")),
                "regions": Key(NAMES),
                "all": Key(Boolean()),
                "cloud": Key(CLOUD),
                "family": Key(OneOf(("any", "ipv4", "ipv6"))),
                "channels": Key(NAMES),
                "min_change": Key(Integer(0)),
            },
            "the tags whose changes raise alerts",
        ),
        Section(
            "serve",
            False,
            {
                "host": Key(Text("an address to listen on")),
                "port": Key(PORT),
                "with_scheduler": Key(Boolean()),
                "tls_cert": Key(Text("a path")),
                "tls_key": Key(Text("a path")),
            },
            "the HTTP server (aztags serve)",
        ),
        Section(
            "auth",
            False,
            {
                "username": Key(Text()),
                "password": Key(SECRET),
                "tokens": Key(ListOf(SECRET)),
            },
            "who may use the HTTP server",
        ),
    )
}

Entry = dict[str, object]


@dataclass(frozen=True, slots=True)
class Config:
    """A checked config file. ``settings`` are option defaults by option name; each section is a
    tuple of entries (``[[...]]``) or one entry (``[...]``, empty when absent), keys as declared."""

    path: Path | None = None
    settings: dict[str, object] = field(default_factory=dict)
    refresh: tuple[Entry, ...] = ()
    channel: tuple[Entry, ...] = ()
    watch: tuple[Entry, ...] = ()
    alerts: Entry = field(default_factory=dict)
    serve: Entry = field(default_factory=dict)
    auth: Entry = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # what the loader skipped (an unreadable default location)


# -- reading ---------------------------------------------------------------------------------------


def read_config(explicit: str | Path | None, settings: Mapping[str, ValueType]) -> Config:
    """Find, read and check the config file in force (``explicit``, else ``$AZTAGS_CONFIG``,
    else the default locations); an empty ``Config`` when there is none.

    ``settings`` maps each top-level key to its type (cli.py derives it from the options). A file
    named explicitly that cannot be read is a ConfigError; a default location that cannot be read
    is skipped, with a line in ``Config.warnings``."""
    return load_config(find_config(explicit), settings)


def load_config(found: FoundConfig, settings: Mapping[str, ValueType]) -> Config:
    """The checked ``Config`` of a file :func:`~resolver.configfile.find_config` found (an empty
    one, with its warnings, when it found none)."""
    if found.path is None or found.text is None:
        return Config(warnings=found.warnings)
    config = parse_config(found.text, found.path, settings)
    return replace(config, warnings=found.warnings)


def parse_config(
    text: str, path: Path | str, settings: Mapping[str, ValueType], *, check_names: bool = True
) -> Config:
    """Check TOML ``text`` (from ``path``, named in messages) and return its ``Config``.

    ``settings`` maps each top-level key to its type; ``check_names``: also check that watches
    name defined channels. Every problem found is reported in one ConfigError."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"The config file {path} is not valid TOML: {e}.") from None
    problems: list[str] = []
    top = _keys(doc, str(path), problems)
    overlap = set(settings) & set(SECTIONS)
    if overlap:  # a programming error: an option was named like a section
        raise ValueError(f"options named like config sections: {sorted(overlap)}")
    values: dict[str, object] = {}
    sections: dict[str, Any] = {}
    unknown = []
    for key, value in top.items():
        if key in SECTIONS:
            sections[key] = _section(SECTIONS[key], value, str(path), problems)
        elif key in settings:
            if _check(key, value, settings[key], str(path), problems):
                values[key] = normalized(settings[key], value)
        elif isinstance(value, dict):
            unknown.append(f"[{key}]")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            unknown.append(f"[[{key}]]")
        else:
            unknown.append(key)
    if unknown:
        known = [*settings, *(s.header for s in SECTIONS.values())]
        problems.insert(0, _unknown(unknown, known, str(path), list_known=False))
    config = Config(path=Path(path), settings=values, **sections)
    if check_names:
        problems.extend(_references(config, str(path)))
    if problems:
        if len(problems) == 1:
            raise ConfigError(problems[0])
        raise ConfigError(
            f"{len(problems)} problems in the config file {path}:\n  " + "\n  ".join(problems)
        )
    return config


def _keys(table: Mapping[str, object], where: str, problems: list[str]) -> dict[str, object]:
    """The table with ``-`` in keys read as ``_``; a key written both ways is a problem."""
    keys: dict[str, object] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name in keys:
            problems.append(f"Setting {name} is given twice in {where} (as - and as _).")
        keys[name] = value
    return keys


def _check(key: str, value: object, kind: ValueType, where: str, problems: list[str]) -> bool:
    if kind.accepts(value):
        return True
    problems.append(
        f"Wrong value in {where}: {key} must be {kind.describe()}, found {_found(value)}."
    )
    return False


def _unknown(keys: Iterable[str], known: list[str], where: str, *, list_known: bool) -> str:
    shown = []
    for key in keys:
        table = key.startswith("[")  # an unknown table: only sections are close
        candidates = [k for k in known if k.startswith("[") or not table]
        bare = [k.strip("[]") for k in candidates]
        close = difflib.get_close_matches(key.strip("[]"), bare, n=3, cutoff=0.6)
        close_shown = [candidates[bare.index(c)] for c in close]
        shown.append(f"{key} (did you mean {' or '.join(close_shown)}?)" if close else key)
    text = f"Unknown setting(s) in {where}: {', '.join(shown)}."
    return text + (f" Known there: {', '.join(known)}." if list_known else "")


def _section(section: Section, value: object, path: str, problems: list[str]) -> object:
    """The checked entries of one section: a tuple of entries, or one entry."""
    if section.many and isinstance(value, list) and all(isinstance(v, dict) for v in value):
        entries = []
        for n, raw in enumerate(value, 1):
            entries.append(_entry(section, raw, _where(path, section, n, raw), problems))
        return tuple(entries)
    if not section.many and isinstance(value, dict):
        return _entry(section, value, f"{path}, {section.header}", problems)
    wanted = "an array of tables" if section.many else "a table"
    problems.append(
        f"Wrong value in {path}: {section.name} must be {wanted}, written {section.header} "
        f"({section.purpose}), found {_found(value)}."
    )
    return () if section.many else {}


def _where(path: str, section: Section, n: int, entry: Mapping[str, object]) -> str:
    """``aztags.toml, [[channel]] #2 ("netops")``: the file, the section, the entry."""
    name = entry.get("name")
    label = f" ({json.dumps(name, ensure_ascii=False)})" if isinstance(name, str) else ""
    return f"{path}, {section.header} #{n}{label}"


def _entry(section: Section, table: dict[str, object], where: str, problems: list[str]) -> Entry:
    raw = _keys(table, where, problems)
    entry: Entry = {}
    unknown = [k for k in raw if k not in section.keys]
    if unknown:
        problems.append(_unknown(unknown, list(section.keys), where, list_known=True))
    for key, spec in section.keys.items():
        if key not in raw:
            if spec.required:
                problems.append(f"Missing setting in {where}: {key} ({spec.type.describe()}).")
            continue
        if _check(key, raw[key], spec.type, where, problems):
            entry[key] = normalized(spec.type, raw[key])
    return entry


def _references(config: Config, path: str) -> list[str]:
    """Names that must be unique, and channels that watches name, must exist."""
    problems = []
    for name in ("channel", "watch"):
        seen: set[object] = set()
        for entry in getattr(config, name):
            if "name" in entry and entry["name"] in seen:
                problems.append(
                    f"Two [[{name}]] entries in {path} are named {json.dumps(entry['name'])}; "
                    "names must be unique."
                )
            seen.add(entry.get("name"))
    channels = [str(c["name"]) for c in config.channel if "name" in c]
    for n, watch in enumerate(config.watch, 1):
        wanted_names = watch.get("channels", [])
        for wanted in wanted_names if isinstance(wanted_names, list) else []:
            if wanted not in channels:
                close = difflib.get_close_matches(str(wanted), channels, n=3, cutoff=0.6)
                hint = f" Did you mean {' or '.join(close)}?" if close else ""
                defined = ", ".join(channels) or "none"
                where = _where(path, SECTIONS["watch"], n, watch)
                problems.append(
                    f"Unknown channel in {where}: {json.dumps(wanted)} is not the name of a "
                    f"[[channel]] (defined: {defined}).{hint}"
                )
    return problems
