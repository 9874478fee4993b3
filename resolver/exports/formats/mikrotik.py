"""MikroTik RouterOS address lists, as a script for ``/import``.

IPv4 entries go under ``/ip firewall address-list`` and IPv6 ones under ``/ipv6 firewall
address-list``, with the same list name in both. RouterOS has no atomic replace; a full export
refreshes each list in place without a gap (the common pattern, remove then add, leaves the
list empty for a while):

1. every static entry of the list is marked ``comment="aztags-stale"``;
2. each wanted entry is added, or, when it is already there (``add`` fails), its mark is
   replaced by the normal comment;
3. the entries still marked stale are removed.

So the export owns the list: entries added to it by hand are removed by the next full export.
Only the families the export has are touched (an ``--ipv4`` export leaves the IPv6 list alone).
A delta adds the new entries (``add`` wrapped in ``:do {} on-error={}``, so a re-run does not
stop the script) and then removes the stale ones with ``remove [find list=... address=...]``.

IPv4 /32 entries are written as bare addresses, the way RouterOS prints them, so that
``find address=`` matches them [unverified: RouterOS's normalisation of /32 as remembered].
"""

from __future__ import annotations

from resolver.exports.formats._vendor import host_note, split
from resolver.exports.model import ExportInput, Format, Output, object_names

MENUS = ("/ip firewall address-list", "/ipv6 firewall address-list")
STALE = "aztags-stale"


def names(items: list[str]) -> list[str]:
    """Letters, digits and ``_ . -``, at most 63 characters [unverified: RouterOS documents no
    rule for list names; these need no quoting anywhere]."""
    return object_names(items, allowed=r"A-Za-z0-9_.-", max_length=63)


def address(prefix: str) -> str:
    return prefix.removesuffix("/32") if ":" not in prefix else prefix


def mikrotik(inp: ExportInput) -> Output:
    note, warnings = host_note(inp, "mikrotik")
    text = inp.header.comment("#") + note
    listed = names([o.name for o in inp.objects])
    for menu, index in zip(MENUS, (0, 1), strict=True):
        blocks = [(n, split(o.prefixes)[index]) for n, o in zip(listed, inp.objects, strict=True)]
        blocks = [(n, p) for n, p in blocks if p]
        if not blocks:
            continue
        text += f"{menu}\n"
        for name, prefixes in blocks:
            comment = f"aztags {name}"
            text += f'set [find list="{name}" dynamic=no] comment="{STALE}"\n'
            for prefix in prefixes:
                a = address(prefix)
                text += (
                    f':do {{ add list="{name}" address={a} comment="{comment}" }} '
                    f'on-error={{ set [find list="{name}" address={a} dynamic=no] '
                    f'comment="{comment}" }}\n'
                )
            text += f'remove [find list="{name}" comment="{STALE}"]\n'
    return Output(text, warnings)


def mikrotik_delta(inp: ExportInput) -> Output:
    deltas = inp.delta or ()
    listed = dict(zip([d.name for d in deltas], names([d.name for d in deltas]), strict=True))
    adds = ["", ""]
    removes = ["", ""]
    for d in deltas:
        name = listed[d.name]
        for index, prefixes in enumerate(split(d.added)):
            adds[index] += "".join(
                f':do {{ add list="{name}" address={address(p)} comment="aztags {name}" }} '
                "on-error={}\n"
                for p in prefixes
            )
        for index, prefixes in enumerate(split(d.removed)):
            removes[index] += "".join(
                f'remove [find list="{name}" address={address(p)}]\n' for p in prefixes
            )
    text = inp.header.comment("#")
    for block, index in [(adds, 0), (adds, 1), (removes, 0), (removes, 1)]:
        if block[index]:
            text += f"{MENUS[index]}\n{block[index]}"
    if not any(adds + removes):
        text += "# no changes\n"
    return Output(text)


FORMATS = (
    Format(
        "mikrotik",
        "MikroTik RouterOS /ip and /ipv6 firewall address-list script, refreshed in place",
        mikrotik,
        delta=mikrotik_delta,
    ),
)
