"""Raw bytes of a Service Tags file -> a validated :class:`Snapshot`.

This is the only module that knows the JSON field names (``changeNumber``, ``addressPrefixes``...).
Validation collects every problem into one :class:`SnapshotError`, naming the tag and the field,
so a broken file is reported in one go rather than one fix-and-retry at a time.
"""

from __future__ import annotations

import json
from typing import cast

from resolver.errors import SnapshotError
from resolver.models import ServiceTag, Snapshot
from resolver.prefixes import parse_prefix

_MAX_PROBLEMS = 200


def decode_json(data: bytes, source: str) -> object:
    """Decode a body as JSON, turning the usual wrong bodies into one clear sentence."""
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
    try:
        return json.loads(data)
    except UnicodeDecodeError:
        raise SnapshotError(source, ["the body is not UTF-8 text; is it a binary file?"]) from None
    except json.JSONDecodeError as e:
        at_end = e.pos >= len(data.rstrip()) - 1
        what = (
            f"the JSON ends early at byte {e.pos} of {len(data)}: the file is truncated; "
            "download it again"
            if at_end
            else f"the body is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})"
        )
        raise SnapshotError(source, [what]) from None


def parse_snapshot(data: bytes, source: str, expected_cloud: str | None = None) -> Snapshot:
    """Validate a Service Tags file against the published schema and build a :class:`Snapshot`.

    ``expected_cloud`` is the cloud's file name ("Public"); a file for another cloud is an error.
    """
    doc = decode_json(data, source)
    problems: list[str] = []

    def problem(text: str) -> None:
        if len(problems) < _MAX_PROBLEMS:
            problems.append(text)

    if not isinstance(doc, dict):
        raise SnapshotError(source, [f"the top level is a JSON {_kind(doc)}, not an object"])
    change_number = doc.get("changeNumber")
    if not _is_int(change_number):
        problem(f"changeNumber: expected an integer, found {_show(change_number)}")
    cloud = doc.get("cloud")
    if not isinstance(cloud, str) or not cloud:
        problem(f"cloud: expected a cloud name such as 'Public', found {_show(cloud)}")
    elif expected_cloud is not None and cloud != expected_cloud:
        problem(
            f"cloud: the file is for cloud {cloud!r}, but {expected_cloud!r} was requested; "
            f"use --cloud for {cloud!r} or check the source"
        )
    values = doc.get("values")
    if not isinstance(values, list):
        problem(f"values: expected a list of tags, found {_show(values)}")
        values = []
    unknown_top = set(doc) - {"changeNumber", "cloud", "values"}
    if unknown_top:
        problem(f"unexpected top-level field(s): {', '.join(sorted(unknown_top))}")

    tags: list[ServiceTag] = []
    seen: set[str] = set()
    for position, value in enumerate(values):
        tag = _parse_tag(value, position, problem)
        if tag is None:
            continue
        if tag.name in seen:
            problem(f"tag {tag.name!r}: appears more than once")
            continue
        seen.add(tag.name)
        tags.append(tag)

    if problems:
        raise SnapshotError(source, problems)
    tags.sort(key=lambda t: t.name)
    return Snapshot(
        cloud=cast(str, cloud), change_number=cast(int, change_number), tags=tuple(tags)
    )


def _parse_tag(value: object, position: int, problem) -> ServiceTag | None:
    where = f"values[{position}]"
    if not isinstance(value, dict):
        problem(f"{where}: expected an object, found {_show(value)}")
        return None
    name = value.get("name")
    if not isinstance(name, str) or not name:
        problem(f"{where}: name: expected a tag name, found {_show(name)}")
        return None
    where = f"tag {name!r}"
    if value.get("id") != name:
        problem(f"{where}: id {_show(value.get('id'))} differs from name")
    props = value.get("properties")
    if not isinstance(props, dict):
        problem(f"{where}: properties: expected an object, found {_show(props)}")
        return None
    ok = True
    fields: dict[str, object] = {}
    for key, check, expected in _TAG_FIELDS:
        fields[key] = field = props.get(key)
        if not check(field):
            problem(f"{where}: {key}: expected {expected}, found {_show(field)}")
            ok = False
    features = props.get("networkFeatures")
    feature_set: frozenset[str] | None = None
    if features is not None:
        if not isinstance(features, list) or not all(isinstance(f, str) and f for f in features):
            problem(
                f"{where}: networkFeatures: expected null or a list of names, "
                f"found {_show(features)}"
            )
            ok = False
        else:
            feature_set = frozenset(features)
    raw_prefixes = props.get("addressPrefixes")
    if not isinstance(raw_prefixes, list):
        problem(f"{where}: addressPrefixes: expected a list, found {_show(raw_prefixes)}")
        return None
    keyed: list[tuple[int, bytes, int, str]] = []
    seen: set[str] = set()
    for text in raw_prefixes:
        if not isinstance(text, str):
            problem(f"{where}: addressPrefixes: {_show(text)} is not a string")
            ok = False
            continue
        try:
            family, packed, length, canonical = parse_prefix(text)
        except ValueError as e:
            problem(f"{where}: prefix {text!r}: {e}")
            ok = False
            continue
        if canonical in seen:
            problem(f"{where}: prefix {text!r} is listed twice")
            ok = False
            continue
        seen.add(canonical)
        keyed.append((family, packed, length, canonical))
    if not ok:
        return None
    keyed.sort()
    return ServiceTag(
        name=name,
        region=cast(str, fields["region"]),
        region_id=cast(int, fields["regionId"]),
        system_service=cast(str, fields["systemService"]),
        network_features=feature_set,
        change_number=cast(int, fields["changeNumber"]),
        prefixes=tuple(k[3] for k in keyed),
        platform=cast(str, fields["platform"]),
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str(value: object) -> bool:
    return isinstance(value, str)


# The scalar properties of a tag: (JSON key, check, what was expected).
_TAG_FIELDS = (
    ("changeNumber", _is_int, "an integer"),
    ("region", _is_str, "a string ('' for global tags)"),
    ("regionId", _is_int, "an integer"),
    ("platform", _is_str, "a string"),
    ("systemService", _is_str, "a string"),
)


def _kind(value: object) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean"}.get(
        type(value), "number" if isinstance(value, int | float) else "null"
    )


def _show(value: object) -> str:
    if value is None:
        return "null (or missing)"
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
