"""Juniper: Junos ``policy-options prefix-list`` and the SRX security address book, as ``set``
commands for ``load set``.

Both are loaded into one candidate configuration and applied by ``commit``, which is atomic:
a full export deletes the list (or address-set) and sets every entry again, so the commit
replaces it whole; a delta sets what is new and deletes what is gone. ``#`` lines are
comments: the Junos CLI skips them in ``load set`` input [unverified: Juniper's documentation
leaves the ``#`` rule in ``load set`` open; we rely on the CLI's comment handling]. ``delete``
of a list the device does not have yet is only a warning in ``load set``, so the first full
export loads too.

prefix-list: IPv4 and IPv6 share one list (each filter uses the entries of its own family).

SRX address book: one address per prefix, named after the address-set and the prefix
(``Sql-WestEurope_20-38-96-0_20``: stable across refreshes, so a delta can delete exactly the
stale ones), and an address-set holding them; the global address book unless ``--zone Z``
(then the zone's own book, ``security zones security-zone Z address-book``). A set holds at most
1,024 members [unverified: Juniper gives 1,024 for older releases and says newer ones are
platform dependent]; a bigger list becomes child sets ``<set>-1``, ``<set>-2``... inside the set.
"""

from __future__ import annotations

from collections.abc import Iterable

from resolver.exports.formats._vendor import host_note, previous, token, with_prefixes
from resolver.exports.model import ExportInput, ExportObject, Format, Output, chunks, object_names

SRX_SET_LIMIT = 1024


def names(items: Iterable[str]) -> list[str]:
    """Junos names: letters, digits, - and _, first alphanumeric, at most 63 characters
    (the SRX address-book rule; prefix-list names follow it too)."""
    return object_names(
        list(items), allowed=r"A-Za-z0-9_-", max_length=63, replacement="-", first="A-Za-z0-9"
    )


# -- policy-options prefix-list ------------------------------------------------------------------


def junos(inp: ExportInput) -> Output:
    note, warnings = host_note(inp, "junos")
    text = inp.header.comment("#") + note
    for name, obj in zip(names(o.name for o in inp.objects), inp.objects, strict=True):
        text += f"delete policy-options prefix-list {name}\n"
        text += "".join(f"set policy-options prefix-list {name} {p}\n" for p in obj.prefixes)
    return Output(text, warnings)


def junos_delta(inp: ExportInput) -> Output:
    deltas = inp.delta or ()
    listed = dict(zip([d.name for d in deltas], names(d.name for d in deltas), strict=True))
    current = {o.name for o in inp.objects}
    text = inp.header.comment("#")
    warnings = []
    for d in deltas:
        text += "".join(f"set policy-options prefix-list {listed[d.name]} {p}\n" for p in d.added)
    for d in deltas:
        text += "".join(
            f"delete policy-options prefix-list {listed[d.name]} {p}\n" for p in d.removed
        )
        if d.name not in current and d.removed:
            warnings.append(
                f"Prefix list {listed[d.name]} is no longer exported: the delta empties it; "
                f"delete it ('delete policy-options prefix-list {listed[d.name]}') with its uses."
            )
    if not any(d.added or d.removed for d in deltas):
        text += "# no changes\n"
    return Output(text, tuple(warnings))


# -- SRX address book ----------------------------------------------------------------------------


def _book(inp: ExportInput) -> str:
    zone = inp.options.zone
    return (
        f"security zones security-zone {zone} address-book"
        if zone
        else "security address-book global"
    )


def _statements(
    inp: ExportInput, objects: tuple[ExportObject, ...]
) -> tuple[list[str], list[str], list[str]]:
    """The address book an export leaves on the device: (statements without ``set``, the
    address-sets it owns, warnings)."""
    book = _book(inp)
    out: list[str] = []
    sets: list[str] = []
    warnings = []
    for set_name, obj in zip(names(o.name for o in objects), objects, strict=True):
        addresses = [names([f"{set_name}_{token(p).replace('.', '-')}"])[0] for p in obj.prefixes]
        out += [f"{book} address {a} {p}" for a, p in zip(addresses, obj.prefixes, strict=True)]
        sets.append(set_name)
        if len(addresses) <= SRX_SET_LIMIT:
            out += [f"{book} address-set {set_name} address {a}" for a in addresses]
            continue
        parts = chunks(addresses, SRX_SET_LIMIT)
        children = names(f"{set_name}-{n}" for n in range(1, len(parts) + 1))
        for child, part in zip(children, parts, strict=True):
            out += [f"{book} address-set {child} address {a}" for a in part]
            out.append(f"{book} address-set {set_name} address-set {child}")
        sets += children
        warnings.append(
            f"{obj.name}: {len(addresses):,} prefixes split into {len(parts)} address-sets of "
            f"at most {SRX_SET_LIMIT:,} inside {set_name}"
        )
    return out, sets, warnings


def srx(inp: ExportInput) -> Output:
    statements, sets, warnings = _statements(inp, inp.objects)
    note, more = host_note(inp, "junos-srx")
    book = _book(inp)
    text = inp.header.comment("#") + note
    text += "".join(f"delete {book} address-set {s}\n" for s in sets)
    text += "".join(f"set {s}\n" for s in statements)
    return Output(text, (*warnings, *more))


def srx_delta(inp: ExportInput) -> Output:
    """What turns the book of the base list into the book of the current one: new statements
    set first, then stale ones deleted (a whole address-set when none of it stays)."""
    base = previous(inp)
    current = {o.name: o.prefixes for o in inp.objects}
    old, old_sets, _ = _statements(inp, with_prefixes(inp, base))
    new, new_sets, warnings = _statements(
        inp, with_prefixes(inp, {n: current.get(n, ()) for n in base})
    )
    book = _book(inp)
    kept = set(new)
    gone_sets = {s for s in old_sets if s not in new_sets or not _members(new, book, s)}
    text = inp.header.comment("#")
    seen = set(old)
    text += "".join(f"set {s}\n" for s in new if s not in seen)
    deletes: list[str] = []
    for statement in old:
        if statement in kept:
            continue
        owner = _set_of(statement, book)
        if owner in gone_sets:
            line = f"delete {book} address-set {owner}"
        elif owner is None:  # an address: "<book> address NAME PREFIX"
            line = "delete " + statement.rsplit(" ", 1)[0]
        else:
            line = f"delete {statement}"
        if line not in deletes:
            deletes.append(line)
    text += "".join(f"{line}\n" for line in deletes)
    if text == inp.header.comment("#"):
        text += "# no changes\n"
    return Output(text, tuple(warnings))


def _set_of(statement: str, book: str) -> str | None:
    rest = statement.removeprefix(book + " ")
    return rest.split(" ")[1] if rest.startswith("address-set ") else None


def _members(statements: list[str], book: str, set_name: str) -> bool:
    return any(_set_of(s, book) == set_name for s in statements)


FORMATS = (
    Format(
        "junos",
        "Juniper Junos policy-options prefix-list as set commands (IPv4 and IPv6 in one list)",
        junos,
        delta=junos_delta,
    ),
    Format(
        "junos-srx",
        "Juniper SRX address book (global, or --zone): addresses and an address-set",
        srx,
        delta=srx_delta,
    ),
)
