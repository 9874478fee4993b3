"""Profile files: TOML text -> :class:`Profile` (every problem with its line), and back; the
built-in profiles (``resolver/profiles/builtin/*.toml``) and the user's folders. Rules are read
by :mod:`resolver.profiles.rules`, host names, the source and the profile here."""

from __future__ import annotations

import datetime
import difflib
import functools
import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from resolver.clouds import CLOUDS
from resolver.errors import NotFoundError, ProfileError
from resolver.profiles.model import FqdnRule, Profile, SourceRef
from resolver.profiles.rules import (
    BUILTIN,
    NO_LINES,
    REGION_PLACEHOLDER,
    LineMap,
    Problems,
    is_builtin,
    open_table,
    parse_rule,
    read_clouds,
    read_scope,
    read_string,
    read_traffic,
    unknown_key_message,
)

_TOP_KEYS = ("name", "description", "source", "clouds", "rule", "fqdn")
_SOURCE_KEYS = ("url", "repo", "path", "commit", "section", "page_date", "note")
_FQDN_KEYS = ("host", "purpose", "ports", "protocol", "clouds", "skip_clouds", "optional")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_HOST_RE = re.compile(r"[A-Za-z0-9*](?:[A-Za-z0-9*.-]*[A-Za-z0-9])?")
_COMMIT_RE = re.compile(r"[0-9a-fA-F]{7,40}")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _parse_fqdn(data: Any, index: int, lines: LineMap, problems: Problems) -> FqdnRule | None:
    before = len(problems.items)
    opened = open_table("fqdn", data, index, _FQDN_KEYS, lines, problems)
    if opened is None:
        return None
    where, at = opened
    host = read_string(data, "host", where, at("host"), problems, required=True).strip()
    plain = host.replace(REGION_PLACEHOLDER, "region")
    if "host" in data and isinstance(data["host"], str) and not _HOST_RE.fullmatch(plain):
        problems.add(
            at("host"),
            f"{where}: key 'host' is {data['host']!r}; write a host name or pattern such as"
            " *.anaconda.org or *.hcp.{region}.azmk8s.io (no scheme, no path)",
        )
    purpose = read_string(data, "purpose", where, at("purpose"), problems)
    ports, protocol = read_traffic(data, where, at, problems, default_ports="443")
    skip, only, optional = read_scope(data, where, at, problems)
    if len(problems.items) > before:
        return None
    return FqdnRule(host, purpose, ports, protocol, only, skip, optional)


def _source(data: dict[str, Any], lines: LineMap, problems: Problems) -> tuple[str, SourceRef]:
    """The ``source`` key: a sentence or URL, or a ``[source]`` table (repository, path, commit,
    section, page date) -> (the text shown in listings, the reference)."""
    if "source" not in data:
        return "", SourceRef()
    raw = data["source"]
    if isinstance(raw, str):
        return raw, SourceRef()
    if not isinstance(raw, dict):
        problems.add(
            lines.key("source"),
            f"profile: key 'source' must be a string or a [source] table, not {raw!r}",
        )
        return "", SourceRef()
    line = lines.key("source")
    for key in raw:
        if key not in _SOURCE_KEYS:
            problems.add(line, unknown_key_message("[source]", key, _SOURCE_KEYS))
    values: dict[str, str] = {}
    for key in _SOURCE_KEYS:
        value = raw.get(key, "")
        if key == "page_date" and isinstance(value, datetime.date):
            value = value.isoformat()
        if not isinstance(value, str):
            problems.add(line, f"[source]: key {key!r} must be a string, not {value!r}")
            value = ""
        values[key] = value.strip()
    if values["commit"] and not _COMMIT_RE.fullmatch(values["commit"]):
        problems.add(line, f"[source]: key 'commit' is {values['commit']!r}; write its hex digits")
    if values["page_date"]:
        try:
            if not _DATE_RE.fullmatch(values["page_date"]):
                raise ValueError
            datetime.date.fromisoformat(values["page_date"])
        except ValueError:
            problems.add(
                line,
                f"[source]: key 'page_date' is {values['page_date']!r}; write YYYY-MM-DD",
            )
    ref = SourceRef(**values)
    return values["url"] or ref.short(), ref


def _array(data: dict[str, Any], key: str, lines: LineMap, problems: Problems) -> list[Any]:
    value = data.get(key, [])
    if isinstance(value, list):
        return value
    problems.add(
        lines.key(key), f"{key!r} must be written [[{key}]], one table per entry, not [{key}]"
    )
    return []


def parse_profile(text: str, origin: str, *, default_name: str | None = None) -> Profile:
    """Parse one profile file (see the module docstring for the format).

    ``origin`` names the file in error messages. The profile's name is the file's ``name`` key,
    else ``default_name``, else the stem of ``origin``. Raises :class:`ProfileError` (a
    ConfigError) listing every problem, each as ``origin:line: what is wrong``.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        found = re.search(r"at line (\d+)", message)
        line = int(found.group(1)) if found else 1
        raise ProfileError(origin, [f"{origin}:{line}: invalid TOML: {message}"]) from None
    try:  # without line numbers first: only a file with problems needs them (~0.8 ms a file)
        return _profile(data, origin, default_name, NO_LINES)
    except ProfileError:
        return _profile(data, origin, default_name, LineMap(text))  # raises, with the lines


def _profile(
    data: dict[str, Any], origin: str, default_name: str | None, lines: LineMap
) -> Profile:
    """The profile of a parsed file; ProfileError with every problem, each at its line of
    ``lines``."""
    problems = Problems(origin, lines)
    for key in data:
        if key not in _TOP_KEYS:
            problems.add(lines.key(key), unknown_key_message("profile", key, _TOP_KEYS))

    name_line = lines.key("name")
    if "name" in data:
        name = read_string(data, "name", "profile", name_line, problems)
        name_from = "key 'name'"
    else:
        name = default_name if default_name is not None else Path(origin).stem
        name_from = "the file name (set name = ... to choose another)"
    if isinstance(data.get("name", ""), str) and not _NAME_RE.fullmatch(name):
        problems.add(
            name_line,
            f"profile: the name {name!r} from {name_from} is not usable; use letters, digits,"
            " '.', '_' and '-'",
        )
    description = read_string(data, "description", "profile", lines.key("description"), problems)
    source, source_ref = _source(data, lines, problems)
    profile_clouds: tuple[str, ...] = ()
    if "clouds" in data:
        named = read_clouds(data, "clouds", "profile", lambda _key: lines.key("clouds"), problems)
        profile_clouds = tuple(c.name for c in CLOUDS if c.name in named)

    raw_rules = _array(data, "rule", lines, problems)
    raw_fqdns = _array(data, "fqdn", lines, problems)
    rules = [parse_rule(item, i, lines, problems) for i, item in enumerate(raw_rules)]
    fqdns = [_parse_fqdn(item, i, lines, problems) for i, item in enumerate(raw_fqdns)]
    arrays_ok = all(isinstance(data.get(k, []), list) for k in ("rule", "fqdn"))
    if arrays_ok and not raw_rules and not raw_fqdns:
        problems.add(1, "profile: no [[rule]] and no [[fqdn]]; a profile needs at least one")
    problems.raise_if_any()
    return Profile(
        name=name.lower(),
        description=description,
        source=source,
        rules=tuple(r for r in rules if r is not None),
        fqdns=tuple(f for f in fqdns if f is not None),
        origin=origin,
        source_ref=source_ref,
        clouds=profile_clouds,
    )


def _toml_string(value: str) -> str:
    # A JSON string with non-ASCII kept is a valid TOML basic string (same escapes).
    return json.dumps(value, ensure_ascii=False)


def render_profile(profile: Profile) -> str:
    """The profile as a TOML file that :func:`parse_profile` reads back to an equal profile.

    Useful as a starting point for a user profile (``aztags`` users copy the built-in one).
    """
    out = [
        f"name = {_toml_string(profile.name)}",
        f"description = {_toml_string(profile.description)}",
    ]
    if profile.clouds:
        out.append(f"clouds = {_toml_list(profile.clouds)}")
    if profile.source_ref:
        out += ["", "[source]"]
        ref = profile.source_ref
        for key in _SOURCE_KEYS:
            if getattr(ref, key):
                out.append(f"{key} = {_toml_string(getattr(ref, key))}")
    else:
        out.insert(2, f"source = {_toml_string(profile.source)}")
    for rule in profile.rules:
        out += [
            "",
            "[[rule]]",
            f"direction = {_toml_string(rule.direction)}",
            f"ports = {_toml_string(rule.ports)}",
            f"protocol = {_toml_string(rule.protocol)}",
            f"tag = {_toml_string(rule.tag)}",
            f"purpose = {_toml_string(rule.purpose)}",
        ]
        out += _scope_lines(rule.skip_clouds, rule.clouds, rule.optional)
        if rule.source_name is not None:
            out.append(f"source_name = {_toml_string(rule.source_name)}")
        if rule.missing_reason is not None:
            out.append(f"missing_reason = {_toml_string(rule.missing_reason)}")
    for fqdn in profile.fqdns:
        out += [
            "",
            "[[fqdn]]",
            f"host = {_toml_string(fqdn.host)}",
            f"purpose = {_toml_string(fqdn.purpose)}",
            f"ports = {_toml_string(fqdn.ports)}",
            f"protocol = {_toml_string(fqdn.protocol)}",
        ]
        out += _scope_lines(fqdn.skip_clouds, fqdn.clouds, fqdn.optional)
    return "\n".join(out) + "\n"


def _toml_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(_toml_string(i) for i in items) + "]"


def _scope_lines(skip: frozenset[str], only: frozenset[str], optional: bool) -> list[str]:
    out = []
    if skip:
        out.append(f"skip_clouds = {_toml_list(sorted(skip))}")
    if only:
        out.append(f"clouds = {_toml_list(sorted(only))}")
    if optional:
        out.append("optional = true")
    return out


# --- finding profiles ---------------------------------------------------------------------------


@functools.cache
def _load_builtins() -> tuple[Profile, ...]:
    return tuple(_builtin(p.stem) for p in sorted(BUILTIN.glob("*.toml")))


@functools.cache
def _builtin(stem: str) -> Profile:
    """One built-in profile, parsed once per process."""
    entry = BUILTIN / f"{stem}.toml"
    return parse_profile(
        entry.read_text(encoding="utf-8"), f"<builtin>/{entry.name}", default_name=stem
    )


def builtin_profiles() -> dict[str, Profile]:
    """The profiles shipped with aztags (``resolver.profiles.builtin/*.toml``), by name."""
    return {p.name: p for p in _load_builtins()}


def load_profiles(user_dirs: Iterable[Path]) -> dict[str, Profile]:
    """Built-in profiles plus every ``*.toml`` in ``user_dirs``, by name.

    A user profile replaces a built-in one of the same name (so a site can adjust ``azureml``),
    and a later folder replaces an earlier one. Folders that do not exist are skipped. Two files of
    one folder that give the same name are an error. Every problem of every file is collected into
    one :class:`ProfileError`.
    """
    profiles = builtin_profiles()
    problems: list[str] = []
    folders: list[str] = []
    for folder in user_dirs:
        folder = Path(folder).expanduser()
        folders.append(str(folder))
        if not folder.exists():
            continue
        if not folder.is_dir():
            problems.append(f"{folder}: is not a folder of profile files")
            continue
        names_here: dict[str, Path] = {}
        for path in sorted(folder.glob("*.toml")):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                problems.append(f"{path}: cannot read: {error}")
                continue
            try:
                profile = parse_profile(text, str(path), default_name=path.stem)
            except ProfileError as error:
                problems.extend(error.problems)
                continue
            if profile.name in names_here:
                other = names_here[profile.name]
                problems.append(f"{path}: profile name {profile.name!r} is also used by {other}")
                continue
            names_here[profile.name] = path
            profiles[profile.name] = profile
    if problems:
        raise ProfileError("profiles in " + ", ".join(folders), problems)
    return profiles


def find_profile(name: str, user_dirs: Iterable[Path]) -> Profile:
    """``get_profile(name, load_profiles(user_dirs))``, reading one file where that gives the
    same answer: with no user profile at all (no ``*.toml`` in ``user_dirs``), only the built-in
    file named after the profile is parsed (all twelve: 40 ms, one: 3 ms)."""
    folders = [Path(f).expanduser() for f in user_dirs]
    stem = name.strip().lower()
    no_user_profile = not any(f.is_dir() and any(f.glob("*.toml")) for f in folders)
    if no_user_profile and is_builtin(stem) and _builtin(stem).name == stem:
        return _builtin(stem)
    return get_profile(name, load_profiles(folders))


def get_profile(name: str, profiles: Mapping[str, Profile]) -> Profile:
    """The profile called ``name`` (any case); NotFoundError with close matches otherwise."""
    wanted = name.strip().lower()
    by_name = {key.lower(): profile for key, profile in profiles.items()}
    if wanted in by_name:
        return by_name[wanted]
    close = tuple(difflib.get_close_matches(wanted, sorted(by_name), n=3, cutoff=0.6))
    known = ", ".join(sorted(by_name)) or "none"
    raise NotFoundError(f"Unknown profile {name!r} (profiles: {known}).", suggestions=close)
