"""Helpers the vendor formats share (cisco, juniper, fortinet, checkpoint, mikrotik).

Not a format module: it lists no FORMATS and is not in the registry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from resolver.exports.model import ExportInput, ExportObject
from resolver.prefixes import family, sort_prefixes, to_text


def address_mask(prefix: str) -> tuple[str, str]:
    """``20.38.96.0/20`` -> ``("20.38.96.0", "255.255.240.0")`` (IPv4 only; the store's
    prefixes are canonical, host bits zero, so the address is kept as written)."""
    address, _, length = prefix.partition("/")
    return address, MASKS[int(length)]


MASKS = [to_text(4, (0xFFFFFFFF << (32 - n)) & 0xFFFFFFFF) for n in range(33)]


def split(prefixes: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(IPv4, IPv6), each sorted."""
    found = sort_prefixes(prefixes)
    return (
        tuple(p for p in found if family(p) == 4),
        tuple(p for p in found if family(p) == 6),
    )


def previous(inp: ExportInput) -> dict[str, tuple[str, ...]]:
    """In delta mode, each object's list on the device before the delta, by object name:
    the current list minus what was added plus what was removed (objects that are gone
    included). Empty when ``inp.delta`` is None."""
    current = {o.name: o.prefixes for o in inp.objects}
    return {d.name: d.before(current.get(d.name, ())) for d in inp.delta or ()}


def with_prefixes(inp: ExportInput, lists: dict[str, tuple[str, ...]]) -> tuple[ExportObject, ...]:
    """The objects of ``inp`` with the prefixes of ``lists`` (same names, tags and rules; names
    only in ``lists`` become plain objects), in the order of ``inp.objects`` then the others."""
    known = {o.name: o for o in inp.objects}
    out = [ExportObject(o.name, lists.get(o.name, ()), o.tags, o.rule) for o in inp.objects]
    out += [ExportObject(n, p) for n, p in lists.items() if n not in known]
    return tuple(out)


def token(prefix: str) -> str:
    """A prefix as characters every target's names take: ``20.38.96.0/20`` ->
    ``20.38.96.0_20``, ``2603:1020:200::/46`` -> ``2603-1020-200--_46``."""
    return prefix.replace(":", "-").replace("/", "_")


def describe(inp: ExportInput, obj: ExportObject | None = None, limit: int = 255) -> str:
    """A one-line description: the tags and the changeNumber, cut to ``limit`` characters."""
    tags = sorted(obj.tags if obj is not None else {t for o in inp.objects for t in o.tags})
    shown = ",".join(tags) if len(tags) <= 3 else f"{','.join(tags[:3])},+{len(tags) - 3}"
    text = f"aztags {shown} changeNumber {inp.header.change_number}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def quote_free(text: str) -> str:
    """Text without double quotes or backslashes (for quoted CLI strings)."""
    return re.sub(r'["\\]', "'", text)


def rule_base(inp: ExportInput) -> str:
    """The base name of a ``--rules`` export: ``--name``, or the object names' common part
    (``azureml-westus`` from ``azureml-westus-01-BatchNodeManagement``)."""
    if inp.options.name:
        return inp.options.name
    for obj in inp.objects:
        if obj.rule is not None:
            stem = obj.name.removesuffix("-" + obj.rule.tag)
            match = re.fullmatch(r"(.+)-\d+", stem)
            if match:
                return match.group(1)
    return "aztags"


def host_note(inp: ExportInput, fmt: str, marker: str = "#") -> tuple[str, tuple[str, ...]]:
    """For a target that takes no host names: the profile's host names as comment lines, and
    a warning that says so (issue 11: "other targets list them in a comment, and say so")."""
    if not inp.fqdns:
        return "", ()
    text = f"{marker} host names of the profile ({fmt} takes none; allow them by name elsewhere):\n"
    text += "".join(f"{marker}   {host}\n" for host in inp.fqdns)
    return text, (
        f"{fmt} takes no host names: the profile's {len(inp.fqdns)} host names are listed "
        "in a comment, not exported.",
    )
