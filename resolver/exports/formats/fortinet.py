"""Fortinet FortiOS: ``config firewall address`` / ``address6`` objects and ``addrgrp`` /
``addrgrp6`` groups, as a CLI script.

One address object per prefix, named after the object and the prefix
(``Sql.WestEurope_20.38.96.0_20``, stable across refreshes, so a delta can remove exactly the
stale ones), in a group per family: ``NAME`` (IPv4) and ``NAME_v6`` (FortiOS never mixes the
families in a group). A profile's host names become FQDN address objects (``set type fqdn``;
``wildcard-fqdn`` for names with ``*``) in a group ``NAME_fqdn``.

Groups hold at most 600 members [unverified: Fortinet says per model ("Maximum Values
Table", ``firewall.addrgrp:member``; ``print tablesize`` on the device shows it); 600 is the
figure given for many models]. A bigger list becomes child groups ``NAME_1``, ``NAME_2``...
of at most 600 inside ``NAME``, with a warning. Member lists are written 50 names per line
(``set member`` then ``append member``) to keep CLI lines short; FortiOS applies an ``edit``
block at its ``next``, so the group changes at once.

Delta (FortiOS 6.2+, ``append member`` / ``unselect member``): new address objects first, new
groups, then the member changes, then the deletions (groups, then address objects). A group
never holds more than 600 members after an ``edit`` block: where a kept prefix moves between
child groups (the split is by position), it is appended to its new group before it leaves the
old one, and a full group first gives up members that are already in their new group, or that
go. Host names are not recorded in a state file: a delta writes the FQDN objects again and sets
the FQDN group's members whole (both idempotent).

``#`` lines are comments in a FortiOS CLI script [unverified: configuration files start with
``#config-version`` lines; Fortinet does not say]; each group also gets ``set comment``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from resolver.exports.formats._vendor import (
    address_mask,
    describe,
    previous,
    quote_free,
    token,
    with_prefixes,
)
from resolver.exports.model import ExportInput, ExportObject, Format, Output, chunks, object_names
from resolver.prefixes import family

GROUP_LIMIT = 600
PER_LINE = 50  # member names per set/append/unselect line


def names(items: list[str]) -> list[str]:
    """FortiOS 6.0 caps group names at 63 characters (later releases at 79); letters, digits,
    ``_ . -`` are safe in every release."""
    return object_names(items, allowed=r"A-Za-z0-9_.-", max_length=63)


@dataclass(slots=True)
class Address:
    """A FortiOS address object: a subnet, an IPv6 prefix or a host name."""

    kind: str  # "subnet" (IPv4), "ip6", "fqdn", "wildcard-fqdn"
    value: str

    @property
    def table(self) -> str:
        return "address6" if self.kind == "ip6" else "address"


@dataclass(slots=True)
class Group:
    """A FortiOS address group and the members it holds."""

    table: str  # addrgrp | addrgrp6
    members: list[str]
    comment: str
    top: str  # the group the object is exported as (itself for a top group)


@dataclass(slots=True)
class Config:
    """What an export leaves on the device: address objects and groups (children before
    their parents), in writing order."""

    addresses: dict[str, Address] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def build(inp: ExportInput, objects: tuple[ExportObject, ...], fqdns: tuple[str, ...]) -> Config:
    """The configuration of ``objects`` (and of ``fqdns``, named after ``inp``'s objects)."""
    config = Config()
    bases = names([o.name for o in objects])
    for base, obj in zip(bases, objects, strict=True):
        comment = quote_free(describe(inp, obj, 255).rsplit(" changeNumber", 1)[0])
        for fam, table, suffix in ((4, "addrgrp", ""), (6, "addrgrp6", "_v6")):
            prefixes = [p for p in obj.prefixes if family(p) == fam]
            if not prefixes:
                continue
            members = []
            for prefix in prefixes:
                name = names([f"{base}_{token(prefix)}"])[0]
                config.addresses[name] = Address("subnet" if fam == 4 else "ip6", prefix)
                members.append(name)
            _group(config, names([base + suffix])[0], table, members, comment, obj.name)
    if fqdns:
        base = names([inp.objects[0].name if len(inp.objects) == 1 else "aztags"])[0]
        members = []
        for host in fqdns:
            name = names([f"{base}_{host.replace('*', 'wildcard')}"])[0]
            kind = "wildcard-fqdn" if "*" in host else "fqdn"
            config.addresses[name] = Address(kind, host)
            members.append(name)
        group = names([f"{base}_fqdn"])[0]
        _group(config, group, "addrgrp", members, "aztags host names", "host names")
    return config


def _group(
    config: Config, name: str, table: str, members: list[str], comment: str, what: str
) -> None:
    if len(members) <= GROUP_LIMIT:
        config.groups[name] = Group(table, members, comment, name)
        return
    parts = chunks(members, GROUP_LIMIT)
    children = [f"{name}_{n}" for n in range(1, len(parts) + 1)]
    for child, part in zip(children, parts, strict=True):
        config.groups[child] = Group(table, list(part), comment, name)
    config.groups[name] = Group(table, children, comment, name)
    family_name = "IPv6" if table == "addrgrp6" else "IPv4"
    config.warnings.append(
        f"{what}: {len(members):,} {family_name} entries split into {len(parts)} groups of at "
        f"most {GROUP_LIMIT} inside {name}"
    )


# -- writing --------------------------------------------------------------------------------------


class Script:
    """CLI lines, opening ``config`` and ``edit`` blocks only when the table or object changes."""

    def __init__(self, header: str):
        self.lines: list[str] = [header.rstrip("\n")] if header else []
        self.table: str | None = None
        self.editing: str | None = None

    def _config(self, table: str) -> None:
        if self.table != table:
            self.close()
            self.lines.append(f"config firewall {table}")
            self.table = table

    def edit(self, table: str, name: str) -> None:
        self._config(table)
        if self.editing != name:
            self.next_()
            self.lines.append(f'    edit "{name}"')
            self.editing = name

    def set(self, text: str) -> None:
        self.lines.append(f"        {text}")

    def members(self, verb: str, members: list[str]) -> None:
        for n, part in enumerate(chunks(members, PER_LINE)):
            word = "append" if verb == "set" and n else verb
            self.set(f"{word} member " + " ".join(f'"{m}"' for m in part))

    def delete(self, table: str, name: str) -> None:
        self._config(table)
        self.next_()
        self.lines.append(f'    delete "{name}"')

    def next_(self) -> None:
        if self.editing is not None:
            self.lines.append("    next")
            self.editing = None

    def close(self) -> None:
        self.next_()
        if self.table is not None:
            self.lines.append("end")
            self.table = None

    def text(self) -> str:
        self.close()
        return "".join(f"{line}\n" for line in self.lines)


def _write_address(script: Script, name: str, address: Address) -> None:
    script.edit(address.table, name)
    if address.kind == "subnet":
        script.set("set subnet {} {}".format(*address_mask(address.value)))
    elif address.kind == "ip6":
        script.set(f"set ip6 {address.value}")
    else:
        script.set(f"set type {address.kind}")
        script.set(f'set {address.kind} "{quote_free(address.value)}"')


def _write_group(script: Script, name: str, group: Group) -> None:
    script.edit(group.table, name)
    script.members("set", group.members)
    script.set(f'set comment "{group.comment}"')


def _write_all(script: Script, config: Config) -> None:
    for table in ("address", "address6"):
        for name, address in config.addresses.items():
            if address.table == table:
                _write_address(script, name, address)
    for table in ("addrgrp", "addrgrp6"):
        for name, group in config.groups.items():
            if group.table == table:
                _write_group(script, name, group)


def fortios(inp: ExportInput) -> Output:
    config = build(inp, inp.objects, inp.fqdns)
    script = Script(inp.header.comment("#"))
    _write_all(script, config)
    return Output(script.text(), tuple(config.warnings))


# -- delta ----------------------------------------------------------------------------------------


def fortios_delta(inp: ExportInput) -> Output:
    base = previous(inp)
    current = {o.name: o.prefixes for o in inp.objects}
    old = build(inp, with_prefixes(inp, base), ())
    new = build(inp, with_prefixes(inp, {n: current.get(n, ()) for n in base}), inp.fqdns)
    script = Script(inp.header.comment("#"))
    start = len(script.lines)
    warnings = list(new.warnings)
    for name in base:
        if name not in current:
            warnings.append(
                f"{name} is no longer exported: the delta deletes its groups and address "
                "objects, which FortiOS refuses while a policy uses them."
            )
    for name, address in new.addresses.items():
        if old.addresses.get(name) != address:
            _write_address(script, name, address)
    for name, group in new.groups.items():
        if name not in old.groups:
            _write_group(script, name, group)
    warnings += _member_changes(script, old, new)
    for name in reversed(old.groups):  # parents before their children
        if name not in new.groups:
            script.delete(old.groups[name].table, name)
    for table in ("address", "address6"):
        for name, address in old.addresses.items():
            if address.table == table and name not in new.addresses:
                script.delete(table, name)
    if len(script.lines) == start:
        script.lines.append("# no changes")
    return Output(script.text(), tuple(dict.fromkeys(warnings)))


def _member_changes(script: Script, old: Config, new: Config) -> list[str]:
    """Appends and unselects for the groups both configurations have, in an order that keeps
    every group within GROUP_LIMIT after each edit block and every kept prefix in its object
    (see the module doc)."""
    holders: dict[str, set[str]] = {}  # address or group -> the groups it is a member of now
    members: dict[str, set[str]] = {}
    for name, group in [*old.groups.items(), *new.groups.items()]:
        if name in old.groups:
            members[name] = set(old.groups[name].members)
        elif name not in members:
            members[name] = set(group.members)  # created whole before the member changes
    for name, now in members.items():
        for m in now:
            holders.setdefault(m, set()).add(name)
    appends: dict[tuple[str, str], None] = {}  # ordered sets
    unselects: dict[tuple[str, str], None] = {}
    for name, group in new.groups.items():
        if name in old.groups:
            before, after = set(old.groups[name].members), set(group.members)
            appends.update(
                (op, None) for op in [(name, m) for m in group.members] if op[1] not in before
            )
            unselects.update(
                (op, None)
                for op in [(name, m) for m in old.groups[name].members]
                if op[1] not in after
            )
    kept = {m for g in new.groups.values() for m in g.members if m in old.addresses}

    def covered(address: str, top: str, without: tuple[str, str]) -> bool:
        for g in holders.get(address, ()):
            if (g, address) == without:
                continue
            if g == top:
                return True
            if any(p == top and (p, g) != without for p in holders.get(g, ())):
                return True
        return False

    def safe(op: tuple[str, str]) -> bool:
        group, member = op
        top = (new.groups.get(group) or old.groups[group]).top
        inside = members.get(member, {member}) if member in members else {member}
        return all(covered(a, top, op) for a in inside if a in kept)

    def goes(op: tuple[str, str]) -> bool:
        group, member = op
        inside = members.get(member, {member}) if member in members else {member}
        return not any(a in kept for a in inside)

    warnings = []
    ops: list[tuple[str, str, str]] = []

    def do(verb: str, op: tuple[str, str]) -> None:
        group, member = op
        del (appends if verb == "append" else unselects)[op]
        (members[group].add if verb == "append" else members[group].discard)(member)
        (holders.setdefault(member, set()).add if verb == "append" else holders[member].discard)(
            group
        )
        ops.append((verb, group, member))

    while appends:
        room = [op for op in appends if len(members[op[0]]) < GROUP_LIMIT]
        if room:
            for op in room:
                if len(members[op[0]]) < GROUP_LIMIT:
                    do("append", op)
            continue
        full = {g for g, _ in appends}
        count = len(unselects)
        for op in [op for op in unselects if not goes(op) and safe(op)]:
            # checked again: an earlier one may have been this one's cover; and a group
            # is never left empty (FortiOS refuses a group without members)
            if safe(op) and len(members[op[0]]) > 1:
                do("unselect", op)
        if len(unselects) < count:
            continue
        wanted = Counter(g for g, _ in appends)
        freeing = [op for op in unselects if op[0] in full and goes(op)]
        for op in freeing:  # as many as the appends need, never the last member
            if wanted[op[0]] > 0 and len(members[op[0]]) > 1:
                wanted[op[0]] -= 1
                do("unselect", op)
        if len(unselects) < count:
            continue
        step = next((op for op in unselects if op[0] in full), None)
        if step is None:
            raise RuntimeError("FortiOS delta: a group is full and nothing can leave it")
        warnings.append(
            f"Group {step[0]} is full: {step[1]} leaves it before its new group is in "
            "place, so some entries are missing for a moment while the script runs."
        )
        do("unselect", step)
    ops += [("unselect", group, member) for group, member in unselects]  # removes last
    table = {
        **{n: g.table for n, g in old.groups.items()},
        **{n: g.table for n, g in new.groups.items()},
    }
    n = 0
    while n < len(ops):  # one edit block per run of one verb on one group
        verb, target, _ = ops[n]
        run = []
        while n < len(ops) and ops[n][:2] == (verb, target):
            run.append(ops[n][2])
            n += 1
        script.edit(table[target], target)
        script.members(verb, run)
        script.next_()
    return warnings


FORMATS = (
    Format(
        "fortios",
        "FortiOS address/address6 objects in addrgrp/addrgrp6 groups (600 per group); "
        "a profile's host names as FQDN objects",
        fortios,
        delta=fortios_delta,
    ),
)
