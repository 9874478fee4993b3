"""Proxies and web servers: nginx (a ``geo`` block), HAProxy (an ACL file), Squid (``dst`` and
``dstdomain`` ACL files).

nginx: a ``geo`` block, not ``allow``/``deny`` lines. nginx checks ``allow`` rules one by one
until the first match and its own documentation says to use ``ngx_http_geo_module`` for large
lists; ``geo`` builds a radix tree (AzureCloud has thousands of prefixes), takes IPv4 and IPv6
in one block, and keeps the policy (``return 403``) in the user's own server or location,
where it is visible. The file is included in the ``http {}`` context; a variable per object
is 1 for an address in the list and 0 otherwise.

HAProxy and Squid read one prefix per line and whole-line ``#`` comments, so those files carry
the header; both refresh by reloading (HAProxy >= 2.4 can also swap an ACL at run time with
``prepare acl``/``add acl``/``commit acl``, which does not rewrite the file).
"""

from __future__ import annotations

from resolver.exports.model import ExportInput, Format, Output, object_names
from resolver.prefixes import interval


def nginx_geo(inp: ExportInput) -> Output:
    names = object_names([o.name.lower() for o in inp.objects], allowed="a-z0-9_", first="a-z_")
    out = [inp.header.comment("#")]
    out.append(
        "# nginx geo block: include this file in the http {} context; each variable is 1 for\n"
        "# a client address in the list, 0 otherwise. In a server or location:\n"
    )
    out += [f"#     if (${name} = 0) {{ return 403; }}\n" for name in names]
    for name, obj in zip(names, inp.objects, strict=True):
        out.append(f"geo ${name} {{\n    default 0;\n")
        out += [f"    {p} 1;\n" for p in obj.prefixes]
        out.append("}\n")
    return Output("".join(out))


def haproxy_acl(inp: ExportInput) -> Output:
    (name,) = object_names(
        [inp.objects[0].name if len(inp.objects) == 1 else "aztags"], allowed="A-Za-z0-9_.:-"
    )
    head = inp.header.comment("#") + (
        f"# HAProxy ACL file, one prefix per line: acl {name} src -f /etc/haproxy/{name}.lst\n"
    )
    return Output(head + "".join(f"{p}\n" for p in inp.all_prefixes))


def squid_dst(inp: ExportInput) -> Output:
    """Squid ignores, with three lines of warnings each, a prefix inside another prefix of the
    same ACL; those are left out here (the list covers the same addresses), and the file says
    how many. Adjacent prefixes are not merged: that is --aggregate's job."""
    (name,) = object_names(
        [inp.objects[0].name if len(inp.objects) == 1 else "aztags"], allowed="A-Za-z0-9_.-"
    )
    prefixes = _outermost(inp.all_prefixes)
    head = inp.header.comment("#") + (
        f'# Squid ACL file, one prefix per line: acl {name} dst "/etc/squid/{name}.txt"\n'
    )
    if dropped := len(inp.all_prefixes) - len(prefixes):
        head += f"# {dropped} prefixes inside other prefixes of the list are left out.\n"
    return Output(head + "".join(f"{p}\n" for p in prefixes))


def _outermost(prefixes: tuple[str, ...]) -> list[str]:
    """``prefixes`` (sorted: family, address, length) without those inside an earlier one."""
    kept: list[str] = []
    cover: tuple[int, int] = (0, -1)  # (family, last address) of the widest block so far
    for prefix in prefixes:
        fam, (first, last) = interval(prefix)
        if fam == cover[0] and last <= cover[1]:
            continue
        kept.append(prefix)
        cover = (fam, last)
    return kept


def squid_dstdomain(inp: ExportInput) -> Output:
    """The profile's host names as a ``dstdomain`` file. Squid has no "subdomains only"
    pattern: ``.example.com`` matches example.com and every name under it, so a profile's
    ``*.example.com`` becomes ``.example.com`` (it also lets example.com through: a warning says
    which names gain their apex this way) and ``*example.com`` (no dot: the profile's way to say
    "example.com and its subdomains") becomes ``.example.com`` too, which is narrower than the
    glob (``fooexample.com`` is not matched). Exact names covered by a ``.domain`` entry are left
    out, since Squid rejects or warns about entries that overlap."""
    entries: list[str] = []
    apex_added: list[str] = []
    exact = {h.lower() for h in inp.fqdns if not h.startswith("*")}
    for host in inp.fqdns:
        host = host.lower().rstrip(".")
        if host.startswith("*."):
            domain = host[2:]
            if domain not in exact:
                apex_added.append(domain)
            entries.append("." + domain)
        elif host.startswith("*"):
            entries.append("." + host[1:].lstrip("."))
        else:
            entries.append(host)
    entries = list(dict.fromkeys(entries))
    wide = [e for e in entries if e.startswith(".")]
    kept = [e for e in entries if not _covered(e, wide)]
    head = inp.header.comment("#") + (
        '# Squid dstdomain ACL file: acl NAME dstdomain "/etc/squid/NAME.domains"\n'
        "# .example.com matches example.com and every name under it.\n"
    )
    warnings: tuple[str, ...] = ()
    if apex_added:
        warnings = (
            "squid dstdomain has no 'subdomains only' pattern: "
            + ", ".join(f"*.{d}" for d in apex_added)
            + f" written as .{apex_added[0]}{' etc.' if len(apex_added) > 1 else ''}, which also "
            "matches the domain itself.",
        )
    return Output(head + "".join(f"{e}\n" for e in kept), warnings)


def _covered(entry: str, wide: list[str]) -> bool:
    """``entry`` is matched by another ``.domain`` entry of ``wide`` already."""
    return any(entry != w and (entry == w[1:] or entry.endswith(w)) for w in wide)


FORMATS = (
    Format(
        "nginx",
        "nginx geo block (http context): a variable per object, 1 for listed client addresses",
        nginx_geo,
    ),
    Format(
        "haproxy",
        "HAProxy ACL file for 'acl NAME src -f FILE', one prefix per line",
        haproxy_acl,
    ),
    Format(
        "squid",
        "Squid ACL file for 'acl NAME dst \"FILE\"', one prefix per line",
        squid_dst,
    ),
    Format(
        "squid-dstdomain",
        "Squid dstdomain ACL file: the profile's host names",
        squid_dstdomain,
        hosts=True,
    ),
)
