"""BIRD 2: prefix sets, one ``define`` per object and family.

BIRD refuses a set mixing families ("Mixed IPv4/IPv6 prefixes in prefix set",
[tested]), so an object becomes ``NAME_v4`` and/or ``NAME_v6``, only for the families it has (an
empty set ``[ ]`` is a syntax error). Symbols are letters, digits and ``_``, not starting with a
digit, at most 64 characters ("Symbol too long" past that, BIRD 2.0.12; ``SYM_MAX_LEN`` in
conf/conf.h). The sets hold the prefixes as exported: ``net ~ NAME_v4`` matches a route for one
of them exactly (write your own ``+`` set to match more-specific routes). ``birdc configure``
reloads the configuration as a whole, so there is no delta.
"""

from __future__ import annotations

from resolver.exports.model import ExportInput, Format, Output, object_names

BIRD_SYMBOL_MAX = 64


def set_names(inp: ExportInput) -> list[str]:
    """Each object's base symbol (``_v4``/``_v6`` are added)."""
    return object_names(
        [o.name for o in inp.objects],
        allowed=r"A-Za-z0-9_",
        max_length=BIRD_SYMBOL_MAX - len("_v4"),
        first="A-Za-z_",
    )


def bird(inp: ExportInput) -> Output:
    out = [inp.header.comment()]
    defined = []
    for base, obj in zip(set_names(inp), inp.objects, strict=True):
        for fam, prefixes in ((4, obj.ipv4), (6, obj.ipv6)):
            if not prefixes:
                continue
            name = f"{base}_v{fam}"
            defined.append(name)
            body = ",\n".join(f"\t{p}" for p in prefixes)
            out.append(f"define {name} = [\n{body}\n];\n")
    usage = (
        "# Include from bird.conf and use in a filter, e.g.\n"
        f"#   if net ~ {defined[0]} then accept;\n# Reload with: birdc configure\n"
        if defined
        else ""
    )
    return Output(out[0] + usage + "".join(out[1:]))


FORMATS = (
    Format(
        "bird",
        "BIRD 2 prefix sets (define NAME_v4 / NAME_v6 = [ ... ];) for route filters",
        bird,
    ),
)
