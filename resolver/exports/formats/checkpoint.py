"""Check Point Generic Data Center (GDC) JSON (Check Point sk167210).

The gateway pulls the file (R81+, every 60 s by default) and needs no policy install; GDC
objects cannot go into groups, so each exported object is one GDC object with all of its
ranges, IPv4 and IPv6 together. Each object's ``id`` is a UUID derived from its name and cloud
(:meth:`ExportObject.uuid`), so it stays the same across refreshes and a rule that uses the
object keeps using it. JSON has no comments: the provenance goes in the ``description`` fields.
A refresh rewrites the whole file (there is no delta: the gateway replaces its copy).
"""

from __future__ import annotations

import json

from resolver.exports.formats._vendor import describe
from resolver.exports.model import ExportInput, Format, Output, object_names


def names(items: list[str]) -> list[str]:
    """Letters, digits and ``_ . -``, at most 63 characters [unverified: sk167210 gives no
    rule; this keeps every name valid as a SmartConsole object name]."""
    return object_names(items, allowed=r"A-Za-z0-9_.-", max_length=63)


def checkpoint(inp: ExportInput) -> Output:
    """JSON has no comments: a profile's host names (GDC takes none) are listed in the
    document's description, and a warning says so."""
    description = "; ".join(inp.header.lines())
    warnings: tuple[str, ...] = ()
    if inp.fqdns:
        description += "; host names of the profile, not exported: " + ", ".join(inp.fqdns)
        warnings = (
            f"checkpoint takes no host names: the profile's {len(inp.fqdns)} host names are "
            "listed in the document's description, not exported.",
        )
    doc = {
        "version": "1.0",
        "description": description,
        "objects": [
            {
                "name": name,
                "id": obj.uuid(inp.header.cloud),
                "description": describe(inp, obj),
                "ranges": list(obj.prefixes),
            }
            for name, obj in zip(names([o.name for o in inp.objects]), inp.objects, strict=True)
        ],
    }
    return Output(json.dumps(doc, indent=2) + "\n", warnings)


FORMATS = (
    Format(
        "checkpoint",
        "Check Point Generic Data Center JSON, one object per list with a stable UUID",
        checkpoint,
    ),
)
