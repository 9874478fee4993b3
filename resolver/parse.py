"""Raw bytes of a Service Tags file -> a validated :class:`Snapshot`.

This is the only module that knows the JSON field names (``changeNumber``, ``addressPrefixes``...).
Validation collects every problem into one :class:`SnapshotError`, naming the tag and the field,
so a broken file is reported in one go rather than one fix-and-retry at a time.

Whatever the bytes, the only exception that leaves ``parse_snapshot`` is ``SnapshotError``, and
what it accepts is what Azure publishes: UTF-8 JSON, one of the four clouds, integers that fit
SQLite (0 to 2**63 - 1), text that can be stored, canonical prefixes, at least one tag.

Three shapes are read, recognised by their keys (:func:`detect_shape`), and validated alike:

- the published file (``changeNumber`` a number, ``cloud``, ``values``);
- an answer of the Service Tag Discovery API, which is also what ``az network list-service-tags``
  prints: ``name``, ``id``, ``type``, ``changeNumber`` *as a string*, ``cloud``, ``values`` and
  ``nextLink``; each tag's ``properties`` hold ``changeNumber`` (a string), ``region``,
  ``systemService``, ``addressPrefixes`` and ``state``, and no ``regionId`` nor ``platform``.
  Read from Azure/azure-rest-api-specs at commit 3cab51ba6ff8243bba2a305420128f9db9047f98:
  specification/network/resource-manager/Microsoft.Network/stable/2024-07-01/serviceTags.json
  (ServiceTagsListResult, ServiceTagInformation, ServiceTagInformationPropertiesFormat) and its
  examples/ServiceTagsList.json. Real answers also carry ``networkFeatures``, read as in the
  file when present;
- what ``Get-AzNetworkServiceTag | ConvertTo-Json -Depth 10`` prints: the same answer as
  PowerShell's model holds it, with PascalCase keys (``Name``, ``Id``, ``Type``, ``Cloud``,
  ``ChangeNumber``, ``Values``; per tag ``Name``, ``Id``, ``Properties`` with ``Region``,
  ``SystemService``, ``ChangeNumber``, ``AddressPrefixes``). Read from Azure/azure-powershell:
  src/Network/Network/Models/PSNetworkServiceTag.cs (commit
  1ca78d0affdc2bc5be010a8edaf753fdf5da6994), PSNetworkServiceTagInformation.cs and
  PSNetworkServiceTagInformationProperties.cs (commit 1d88fb13a1f1c3964c48aeb3e09d2d2d9ae2c749).

An API answer (either form) is stored on the cloud's API timeline (resolver/timelines.py): the
snapshot's ``cloud`` is ``"Public@api"``. Its string changeNumbers must be ASCII digits; a tag's
missing ``regionId`` is stored as 0 and its missing ``platform`` as ``""``; ``state`` is checked
to be text and not stored.
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from typing import cast

from resolver.clouds import CLOUDS, get_cloud
from resolver.errors import SnapshotError
from resolver.models import ServiceTag, Snapshot
from resolver.prefixes import parse_prefix
from resolver.timelines import API, timeline_key

_MAX_PROBLEMS = 200
MAX_INTEGER = 2**63 - 1  # SQLite's largest integer: changeNumber and regionId are stored as such
KNOWN_CLOUDS = tuple(c.name for c in CLOUDS)
_IPV4_MAPPED = b"\x00" * 10 + b"\xff\xff"
_UTF16_32_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)

Problem = Callable[[str], None]


class _NotJson(Exception):
    """Something json.loads accepts but JSON (and Azure) does not: NaN, Infinity, a key twice."""


def _no_constant(name: str) -> object:
    raise _NotJson(f"the body holds {name}, which is not a JSON number")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _NotJson(f"the key {_q(twice)} appears twice in one object, so its value is unclear")
    return obj


def decode_json(data: bytes, source: str) -> object:
    """Decode a body as JSON, turning the usual wrong bodies into one clear sentence.

    Only UTF-8 is accepted (a UTF-8 byte order mark is skipped), and only JSON: no NaN or
    Infinity, no key twice in one object, no number of more than 4300 digits, nesting as deep as
    Python's stack allows.
    """
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    for bom, name in _UTF16_32_BOMS:
        if data.startswith(bom):
            raise SnapshotError(
                source,
                [
                    f"the body is {name} text (it starts with a {name} byte order mark); Azure "
                    "publishes UTF-8: download the file again, or convert it to UTF-8 (Windows "
                    "PowerShell's '>' writes UTF-16: save with '| Out-File -Encoding utf8')"
                ],
            )
    head = data[:512].lstrip()
    if not head:
        raise SnapshotError(source, ["the body is empty (0 bytes of JSON); try the download again"])
    if head[:1] == b"<":
        raise SnapshotError(
            source,
            [
                "the body is HTML, not JSON: the URL points at a web page (a Download Center page, "
                "a proxy login or an error page), not at the ServiceTags_*.json file"
            ],
        )
    if b"\x00" in head:
        raise SnapshotError(
            source, ["the body holds NUL bytes: it is UTF-16 text or a binary file, not UTF-8 JSON"]
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = f"byte {e.start} is 0x{data[e.start]:02x}"
        raise SnapshotError(
            source, [f"the body is not UTF-8 text ({bad}); is it a binary file?"]
        ) from None
    try:
        return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        # The parser ran out of text (a string left open runs to the end too): cut short.
        at_end = e.pos >= len(text.rstrip()) or e.msg.startswith("Unterminated string")
        what = (
            f"the JSON ends early at character {e.pos} of {len(text)}: the file is truncated; "
            "download it again"
            if at_end
            else f"the body is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})"
        )
        raise SnapshotError(source, [what]) from None
    except _NotJson as e:
        raise SnapshotError(source, [str(e)]) from None
    except RecursionError:
        raise SnapshotError(
            source,
            ["the JSON is nested too deeply to read (a Service Tags file is 5 levels deep)"],
        ) from None
    except ValueError as e:  # an integer of more than 4300 digits
        raise SnapshotError(source, [f"the body holds a number too large to read ({e})"]) from None


Network = tuple[int, bytes, int, str]  # (family, network bytes, length, canonical text)


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """A validated snapshot, with what its parse learnt that the store would compute again.

    ``digests``: each tag's :func:`prefix_digest` (by tag name). ``networks``: prefix text as
    written in the file -> :data:`Network`, for the prefixes that were parsed (not those of
    tags taken as they are through ``validated``)."""

    snapshot: Snapshot
    digests: dict[str, str]
    networks: dict[str, Network]


def parse_snapshot(
    data: bytes,
    source: str,
    expected_cloud: str | None = None,
    *,
    allow_empty: bool = False,
    validated: Container[str] = frozenset(),
) -> Snapshot:
    """Validate a Service Tags file and build a :class:`Snapshot`: :func:`parse_file`'s
    snapshot."""
    return parse_file(
        data, source, expected_cloud, allow_empty=allow_empty, validated=validated
    ).snapshot


def parse_file(
    data: bytes,
    source: str,
    expected_cloud: str | None = None,
    *,
    allow_empty: bool = False,
    validated: Container[str] = frozenset(),
) -> ParsedFile:
    """Validate a Service Tags file against the published schema and build a :class:`Snapshot`.

    ``expected_cloud`` is the cloud's file name ("Public"); a file for another cloud is an error.
    A file with no tags is refused unless ``allow_empty``: Azure never publishes one, and storing
    it as the current file would empty every answer.

    ``validated``: prefix digests (:func:`prefix_digest`) of lists already validated (the store's
    ``tag_versions.prefix_digest``). A tag whose raw list has one of them is that canonical,
    sorted, valid list, and is taken as it is: a weekly file re-parses only the tags whose
    content changed, whatever their changeNumber says. Every other list is validated prefix by
    prefix as ever, and any bad prefix still refuses the whole file.
    """
    doc = decode_json(data, source)
    problems: list[str] = []

    def problem(text: str) -> None:
        if len(problems) < _MAX_PROBLEMS:
            problems.append(text)

    if not isinstance(doc, dict):
        raise SnapshotError(source, [f"the top level is a JSON {_kind(doc)}, not an object"])
    shape = detect_shape(doc)
    if shape == POWERSHELL:
        source = f"{source} (read as Get-AzNetworkServiceTag | ConvertTo-Json output)"
        doc = _camel_case(doc, problem)
    elif shape == API_ANSWER:
        source = (
            f"{source} (read as a Discovery API answer, as az network list-service-tags prints)"
        )
    api = shape != FILE_SHAPE
    change_number = doc.get("changeNumber")
    if api:
        change_number = _api_count("changeNumber", change_number, problem)
        _check_api_top(doc, problem)
    else:
        _check_count("changeNumber", change_number, problem)
    cloud = doc.get("cloud")
    known = ", ".join(KNOWN_CLOUDS)
    if not isinstance(cloud, str) or not cloud:
        problem(f"cloud: expected one of {known}, found {_show(cloud)}")
    elif cloud not in KNOWN_CLOUDS:
        problem(f"cloud: {_q(cloud)} is not an Azure cloud; expected one of {known} (as written)")
    elif expected_cloud is not None and cloud != expected_cloud:
        problem(
            f"cloud: the file is for cloud {cloud!r}, but {expected_cloud!r} was requested; "
            f"use --cloud for {cloud!r} or check the source"
        )
    values = doc.get("values")
    if not isinstance(values, list):
        problem(f"values: expected a list of tags, found {_show(values)}")
        values = []
    elif not values and not allow_empty:
        problem(
            "values: the file lists no tags; an empty file is never plausible (Azure's list "
            "thousands), so it is not stored: check the source, or pass --allow-empty"
        )
    unknown_top = set(doc) - (_API_TOP if api else {"changeNumber", "cloud", "values"})
    if unknown_top:
        problem(f"unexpected top-level field(s): {', '.join(_q(k) for k in sorted(unknown_top))}")

    tags: list[ServiceTag] = []
    seen: dict[str, str] = {}  # casefolded name -> name: tags are looked up in any case
    digests: dict[str, str] = {}
    networks: dict[str, Network] = {}  # every valid prefix text parsed so far
    for position, value in enumerate(values):
        parsed = _parse_tag(value, position, problem, validated, networks, api=api)
        if parsed is None:
            continue
        tag, digest = parsed
        other = seen.get(tag.name.casefold())
        if other == tag.name:
            problem(f"tag {_q(tag.name)}: appears more than once")
            continue
        if other is not None:
            problem(
                f"tag {_q(tag.name)}: appears more than once (also as {_q(other)}; tag names "
                "are matched in any case)"
            )
            continue
        seen[tag.name.casefold()] = tag.name
        tags.append(tag)
        digests[tag.name] = digest

    if problems:
        raise SnapshotError(source, problems)
    tags.sort(key=lambda t: t.name)
    key = timeline_key(get_cloud(cast(str, cloud)), API) if api else cast(str, cloud)
    snapshot = Snapshot(cloud=key, change_number=cast(int, change_number), tags=tuple(tags))
    return ParsedFile(snapshot, digests, networks)


# -- shapes ------------------------------------------------------------------------------------

FILE_SHAPE = "file"
API_ANSWER = "api"  # the Discovery API's JSON, as az network list-service-tags prints it too
POWERSHELL = "powershell"  # Get-AzNetworkServiceTag | ConvertTo-Json: PascalCase keys
# The top-level fields of ServiceTagsListResult (serviceTags.json, 2024-07-01)
_API_TOP = frozenset({"name", "id", "type", "changeNumber", "cloud", "values", "nextLink"})
_API_ONLY = ("name", "id", "type", "nextLink")  # no published file has these
_PS_TOP = ("Name", "Id", "Type", "Cloud", "ChangeNumber", "Values")  # PSNetworkServiceTag
_API_TYPE = "Microsoft.Network/serviceTags"


def detect_shape(doc: dict[str, object]) -> str:
    """Which of the three shapes a top-level object is: PascalCase keys (and none of the file's
    own) are PowerShell's; the file's keys with any of the API's own (name, id, type, nextLink)
    are an API answer; anything else is taken as a file and validated as one."""
    if not any(k in doc for k in ("changeNumber", "cloud", "values")) and any(
        k in doc for k in _PS_TOP
    ):
        return POWERSHELL
    if any(k in doc for k in _API_ONLY):
        return API_ANSWER
    return FILE_SHAPE


def _camel_case(doc: dict[str, object], problem: Problem) -> dict[str, object]:
    """PowerShell's PascalCase keys as the API writes them (``ChangeNumber`` ->
    ``changeNumber``), at the top, in each tag and in each tag's properties."""

    def lowered(obj: dict[str, object], where: str) -> dict[str, object]:
        out: dict[str, object] = {}
        for k, v in obj.items():
            name = k[:1].lower() + k[1:]
            if name in out:
                problem(
                    f"{where}: the keys {_q(name)} and {_q(k)} both appear, so the value is unclear"
                )
            out[name] = v
        return out

    top = lowered(doc, "top level")
    values = top.get("values")
    if isinstance(values, list):
        tags: list[object] = []
        for position, value in enumerate(values):
            if isinstance(value, dict):
                value = lowered(value, f"values[{position}]")
                props = value.get("properties")
                if isinstance(props, dict):
                    value["properties"] = lowered(props, f"values[{position}]: properties")
            tags.append(value)
        top["values"] = tags
    return top


def _check_api_top(doc: dict[str, object], problem: Problem) -> None:
    """What only an API answer has: its ``type``, and a ``nextLink`` that must be empty (a
    page of a longer answer is not the whole list: 'aztags fetch --api' follows the links)."""
    kind = doc.get("type")
    if kind is not None and (not isinstance(kind, str) or kind.casefold() != _API_TYPE.casefold()):
        problem(f"type: expected {_API_TYPE!r} (a service tags answer), found {_show(kind)}")
    for key in ("name", "id"):
        if doc.get(key) is not None and not isinstance(doc.get(key), str):
            problem(f"{key}: expected a string, found {_show(doc.get(key))}")
    link = doc.get("nextLink")
    if link is not None and link != "":
        problem(
            "nextLink: the answer goes on at another page, so this is one page of it, not the "
            "whole list; fetch it whole with 'aztags fetch --api', which follows the pages"
        )


def _api_count(where: str, value: object, problem: Problem) -> int | None:
    """An API changeNumber: a string of ASCII digits (as the API writes it), or an integer; in
    the range of :func:`_check_count`. None (after one problem naming the field) otherwise."""
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            problem(
                f"{where}: {_show(value)} is not a changeNumber: the Discovery API writes it as "
                'a string of digits (such as "63")'
            )
            return None
        if len(value.lstrip("0")) > 19:
            problem(
                f"{where}: {_show(value)} is too large; expected an integer from 0 to {MAX_INTEGER}"
            )
            return None
        value = int(value)
    return value if _check_count(where, value, problem) else None  # type: ignore[return-value]


def prefix_digest(prefixes: Sequence[str]) -> str:
    """The digest of a prefix list as the store keeps it (sha1 of the lines)."""
    return hashlib.sha1("\n".join(prefixes).encode("utf-8", "surrogatepass")).hexdigest()


def _parse_tag(
    value: object,
    position: int,
    problem: Problem,
    validated: Container[str],
    networks: dict[str, Network],
    *,
    api: bool = False,
) -> tuple[ServiceTag, str] | None:
    """The tag and its prefix digest, or None after reporting its problems. ``networks``: the
    prefixes parsed so far in this file, valid ones only; those parsed here are added."""
    where = f"values[{position}]"
    if not isinstance(value, dict):
        problem(f"{where}: expected an object, found {_show(value)}")
        return None
    name = value.get("name")
    if not isinstance(name, str) or not name:
        problem(f"{where}: name: expected a tag name, found {_show(name)}")
        return None
    if not _storable(name):
        problem(f"{where}: name: {_q(name)} {_NOT_TEXT}")
        return None
    where = f"tag {_q(name)}"
    if value.get("id") != name:
        problem(f"{where}: id {_show(value.get('id'))} differs from name")
    props = value.get("properties")
    if not isinstance(props, dict):
        problem(f"{where}: properties: expected an object, found {_show(props)}")
        return None
    ok = True
    fields: dict[str, object] = {}
    if api:  # what an API answer lacks (see the module docstring), and its string numbers
        props = {"regionId": 0, "platform": "", **props}
        number = _api_count(f"{where}: changeNumber", props.get("changeNumber"), problem)
        props["changeNumber"] = number
        if number is None:
            ok = False
            props["changeNumber"] = 0  # reported just above: not again below
        state = props.get("state")
        if state is not None and not (isinstance(state, str) and _storable(state)):
            problem(f"{where}: state: expected a string such as 'GA', found {_show(state)}")
            ok = False
    for key, kind in _TAG_FIELDS:
        fields[key] = field = props.get(key)
        if kind == "count":
            if not (field.__class__ is int and 0 <= field <= MAX_INTEGER):
                ok = _check_count(f"{where}: {key}", field, problem) and ok
        elif not isinstance(field, str):
            problem(f"{where}: {key}: expected {kind}, found {_show(field)}")
            ok = False
        elif not _storable(field):
            problem(f"{where}: {key}: {_q(field)} {_NOT_TEXT}")
            ok = False
    features = props.get("networkFeatures")
    feature_set: frozenset[str] | None = None
    if features.__class__ is list and all(
        f.__class__ is str and f and "," not in f and f.isprintable() for f in features
    ):  # the usual case, checked in one pass; else the checks below say what is wrong
        feature_set = frozenset(features)
    elif features is not None:
        if not isinstance(features, list) or not all(isinstance(f, str) and f for f in features):
            problem(
                f"{where}: networkFeatures: expected null or a list of names, "
                f"found {_show(features)}"
            )
            ok = False
        elif not all(_storable(f) for f in features):
            problem(f"{where}: networkFeatures: {_show(features)} {_NOT_TEXT}")
            ok = False
        elif any("," in f for f in features):
            problem(
                f"{where}: networkFeatures: {_show(features)}: a name holds a comma, which no "
                "feature name has (they are stored comma-separated)"
            )
            ok = False
        else:
            feature_set = frozenset(features)
    raw_prefixes = props.get("addressPrefixes")
    if not isinstance(raw_prefixes, list):
        problem(f"{where}: addressPrefixes: expected a list, found {_show(raw_prefixes)}")
        return None
    if validated:
        try:
            digest: str | None = prefix_digest(raw_prefixes)
        except TypeError:  # something else than text in the list: reported below
            digest = None
        if digest is not None and digest in validated:  # validated before, canonical, sorted
            return (_tag(name, fields, feature_set, tuple(raw_prefixes)), digest) if ok else None
    keyed: list[Network] = []
    seen: set[str] = set()
    for text in raw_prefixes:
        try:
            network = networks.get(text)
        except TypeError:  # a list or an object where a prefix should be: reported below
            network = None
        if network is None:
            if not isinstance(text, str):
                problem(f"{where}: addressPrefixes: {_show(text)} is not a string")
                ok = False
                continue
            try:
                network = parse_prefix(text)
            except ValueError as e:  # UnicodeEncodeError (a lone surrogate) is a ValueError too
                problem(f"{where}: prefix {_q(text)}: {e}")
                ok = False
                continue
            if network[0] == 6 and network[1][:12] == _IPV4_MAPPED and network[2] >= 96:
                problem(
                    f"{where}: prefix {_q(text)}: an IPv4-mapped IPv6 prefix; Azure lists IPv4 "
                    "ranges as a.b.c.d/n, and an IPv4 address would never match this one"
                )
                ok = False
                continue
            networks[text] = network
        canonical = network[3]
        if canonical in seen:
            problem(f"{where}: prefix {_q(text)} is listed twice")
            ok = False
            continue
        seen.add(canonical)
        keyed.append(network)
    if not ok:
        return None
    keyed.sort()
    prefixes = tuple([k[3] for k in keyed])
    return _tag(name, fields, feature_set, prefixes), prefix_digest(prefixes)


def _tag(
    name: str,
    fields: dict[str, object],
    feature_set: frozenset[str] | None,
    prefixes: tuple[str, ...],
) -> ServiceTag:
    return ServiceTag(
        name=name,
        region=cast(str, fields["region"]),
        region_id=cast(int, fields["regionId"]),
        system_service=cast(str, fields["systemService"]),
        network_features=feature_set,
        change_number=cast(int, fields["changeNumber"]),
        prefixes=prefixes,
        platform=cast(str, fields["platform"]),
    )


# The scalar properties of a tag: (JSON key, "count" for a number stored as an integer, else
# what was expected of a string).
_TAG_FIELDS = (
    ("changeNumber", "count"),
    ("region", "a string ('' for global tags)"),
    ("regionId", "count"),
    ("platform", "a string"),
    ("systemService", "a string"),
)
_NOT_TEXT = (
    "holds a control character or a lone UTF-16 surrogate escape (such as \\ud800): not text "
    "Azure publishes, nor text that can be stored and printed safely"
)


def _check_count(where: str, value: object, problem: Problem) -> bool:
    """An integer from 0 to SQLite's largest; else one problem naming the field."""
    if not isinstance(value, int) or isinstance(value, bool):
        problem(f"{where}: expected an integer, found {_show(value)}")
        return False
    if value < 0:
        problem(f"{where}: {value} is negative; expected an integer from 0 to {MAX_INTEGER}")
        return False
    if value > MAX_INTEGER:
        problem(
            f"{where}: {_show(value)} is too large; expected an integer from 0 to {MAX_INTEGER}"
        )
        return False
    return True


def _storable(text: str) -> bool:
    """True for printable text. Not: a lone surrogate (JSON's \\ud800 escape), which cannot be
    written as UTF-8 and so cannot be stored; a control character (an escape sequence in a tag
    name would reach the terminal of everyone who lists tags)."""
    return text.isprintable()


def _kind(value: object) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean"}.get(
        type(value), "number" if isinstance(value, int | float) else "null"
    )


def _q(text: str, limit: int = 80) -> str:
    """A string from the file, quoted for a message: control characters and lone surrogates
    escaped (repr), cut to ``limit`` characters."""
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


def _show(value: object) -> str:
    if value is None:
        return "null (or missing)"
    text = _preview(value, 61)
    return text if len(text) <= 60 else text[:57] + "..."


def _preview(value: object, budget: int, depth: int = 0) -> str:
    """The start of ``value``'s JSON text, about ``budget`` characters: the cost stays bounded
    however large or deep the value is."""
    if isinstance(value, str):
        return json.dumps(value[:budget])  # escapes control characters and lone surrogates
    if isinstance(value, bool | float) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # more digits than int -> str allows
            return "a number of more than 4300 digits"
    if depth >= 8 or budget <= 0:
        return "..."
    if isinstance(value, dict):
        pairs: list[tuple[str, object]] = [
            (json.dumps(str(k)[:budget]) + ": ", v) for k, v in value.items()
        ]
        opener, closer = "{", "}"
    elif isinstance(value, list):
        pairs = [("", v) for v in value]
        opener, closer = "[", "]"
    else:
        return repr(value)[:budget]
    out = opener
    for label, child in pairs:
        if len(out) > budget:
            out += "..."
            break
        out += (", " if len(out) > 1 else "") + label
        out += _preview(child, budget - len(out), depth + 1)
    return out + closer
